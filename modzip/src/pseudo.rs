//! Pseudo-versions: versions that name an untagged commit, such as
//! `v0.0.0-20191109021931-daa7c04131f5`.
//!
//! A pseudo-version is a semantic version whose pre-release part ends with a
//! UTC timestamp `yyyymmddhhmmss` and a revision identifier, and which sorts
//! just after the tag it was derived from (its "base"). It takes one of three
//! shapes:
//!
//! 1. `vX.0.0-yyyymmddhhmmss-rev` when no earlier tag is known;
//! 2. `vX.Y.(Z+1)-0.yyyymmddhhmmss-rev` after the release tag `vX.Y.Z`;
//! 3. `vX.Y.Z-pre.0.yyyymmddhhmmss-rev` after the pre-release tag
//!    `vX.Y.Z-pre`.
//!
//! Shapes 2 and 3 keep the base tag's `+incompatible`, if any.

use thiserror::Error;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::semver;

/// Why a string was rejected as a pseudo-version.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PseudoError {
    /// The string does not have the shape of a pseudo-version.
    #[error("pseudo-version {version:?} invalid: it does not have the form of a pseudo-version")]
    Syntax {
        /// The rejected string.
        version: String,
    },
    /// The shape is right but the 14 digits are not a real date and time.
    #[error(
        "pseudo-version {version:?} invalid: timestamp {timestamp:?} is not a valid date and time"
    )]
    MalformedTime {
        /// The rejected pseudo-version.
        version: String,
        /// Its timestamp digits.
        timestamp: String,
    },
    /// A shape-1 pseudo-version (no base tag) carries build metadata, which
    /// only a base tag could have contributed.
    #[error("pseudo-version {version:?} invalid: it has no base version but has build metadata {build:?}")]
    BuildWithoutBase {
        /// The rejected pseudo-version.
        version: String,
        /// The build suffix, like `+incompatible`.
        build: String,
    },
    /// A shape-2 pseudo-version whose patch number is 0, so no base
    /// `vX.Y.(Z-1)` can exist.
    #[error("pseudo-version {version:?} invalid: the version before {base} would have a negative patch number")]
    NegativePatch {
        /// The rejected pseudo-version.
        version: String,
        /// Its `vX.Y.Z-0` prefix.
        base: String,
    },
}

/// The components of a well-formed pseudo-version, borrowed from it.
struct Pieces<'a> {
    /// `vX.0.0`, `vX.Y.(Z+1)-0` or `vX.Y.Z-pre.0`.
    base: &'a str,
    timestamp: &'a str,
    rev: &'a str,
    build: &'a str,
}

fn all_ascii_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn all_alphanumeric(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Checks a build suffix: "" or "+" followed by dot-separated non-empty
/// identifiers of `[0-9A-Za-z-]`.
fn build_suffix_ok(build: &str) -> bool {
    if build.is_empty() {
        return true;
    }
    build.strip_prefix('+').is_some_and(|body| {
        body.split('.')
            .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    })
}

/// Checks the text before the timestamp, `vX.0.0-` or a version ending in
/// `-0.` (shape 2) or `.0.` (shape 3), as the pseudo-version grammar demands:
/// `vDIGITS.` then either `0.0-` or `DIGITS.DIGITS-` with an optional
/// `anything-but-plus.` then `0.`.
fn head_ok(head: &str) -> bool {
    let Some(rest) = head.strip_prefix('v') else {
        return false;
    };
    let Some((major, rest)) = rest.split_once('.') else {
        return false;
    };
    if major.is_empty() || !all_ascii_digits(major) {
        return false;
    }
    if rest == "0.0-" {
        return true;
    }
    // DIGITS.DIGITS- then ([^+]*\.)? then 0.
    let Some((minor, rest)) = rest.split_once('.') else {
        return false;
    };
    if minor.is_empty() || !all_ascii_digits(minor) {
        return false;
    }
    let Some((patch, rest)) = rest.split_once('-') else {
        return false;
    };
    if patch.is_empty() || !all_ascii_digits(patch) {
        return false;
    }
    let Some(middle) = rest.strip_suffix("0.") else {
        return false;
    };
    middle.is_empty() || (middle.ends_with('.') && !middle.contains('+'))
}

/// Splits a pseudo-version into its pieces, or `None` if `v` is not one.
fn split(v: &str) -> Option<Pieces<'_>> {
    if v.matches('-').count() < 2 || !semver::is_valid(v) {
        return None;
    }
    let (body, build) = match v.find('+') {
        Some(plus) => v.split_at(plus),
        None => (v, ""),
    };
    if !build_suffix_ok(build) {
        return None;
    }
    let (before_rev, rev) = body.rsplit_once('-')?;
    if !all_alphanumeric(rev) {
        return None;
    }
    // The timestamp is the last 14 characters before the revision and must
    // follow "-" (shape 1) or "." (shapes 2 and 3).
    let stamp_start = before_rev.len().checked_sub(14)?;
    if !before_rev.is_char_boundary(stamp_start) {
        return None;
    }
    let (head, timestamp) = before_rev.split_at(stamp_start);
    if !all_ascii_digits(timestamp) || !head_ok(head) {
        return None;
    }
    let base = &head[..head.len() - 1];
    Some(Pieces {
        base,
        timestamp,
        rev,
        build,
    })
}

/// Splits a pseudo-version, or explains that it is not one.
fn pieces(v: &str) -> Result<Pieces<'_>, PseudoError> {
    split(v).ok_or_else(|| PseudoError::Syntax {
        version: v.to_string(),
    })
}

/// Reports whether `v` has the form of a pseudo-version. (It does not check
/// that the timestamp is a real date; [`pseudo_version_time`] does.)
pub fn is_pseudo_version(v: &str) -> bool {
    split(v).is_some()
}

/// Reports whether `v` is the zero pseudo-version of its major version,
/// `vX.0.0-00010101000000-000000000000` (a version standing for "none yet").
pub fn is_zero_pseudo_version(v: &str) -> bool {
    v == zero_pseudo_version(semver::major(v))
}

/// Formats `t`, converted to UTC, as the 14 digits `yyyymmddhhmmss`. Years
/// outside 0..=9999 are written the way Go writes them (more digits, or a
/// minus sign) even though they cannot round-trip.
pub fn format_timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let year = t.year();
    let year_text = if year < 0 {
        format!("-{:04}", year.unsigned_abs())
    } else {
        format!("{year:04}")
    };
    format!(
        "{year_text}{:02}{:02}{:02}{:02}{:02}",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Adds one to a decimal string ("9" → "10").
fn increment_decimal(decimal: &str) -> String {
    let mut digits = decimal.as_bytes().to_vec();
    let mut i = digits.len();
    while i > 0 && digits[i - 1] == b'9' {
        digits[i - 1] = b'0';
        i -= 1;
    }
    if i > 0 {
        digits[i - 1] += 1;
    } else {
        digits.insert(0, b'1');
    }
    String::from_utf8_lossy(&digits).into_owned()
}

/// Subtracts one from a decimal string without leading zeros ("10" → "9");
/// `None` for "0".
fn decrement_decimal(decimal: &str) -> Option<String> {
    let mut digits = decimal.as_bytes().to_vec();
    let mut i = digits.len();
    while i > 0 && digits[i - 1] == b'0' {
        digits[i - 1] = b'9';
        i -= 1;
    }
    if i == 0 {
        return None;
    }
    if i == 1 && digits[0] == b'1' && digits.len() > 1 {
        digits.remove(0);
    } else {
        digits[i - 1] -= 1;
    }
    Some(String::from_utf8_lossy(&digits).into_owned())
}

/// Builds the pseudo-version for commit `rev` (the caller's 12-character
/// short hash) made at time `t`, given the major version `major` (`v2`; ""
/// means `v0`) and the most recent tag `older` reachable from it ("" or an
/// invalid version when there is none).
///
/// Build metadata of `older` (`+incompatible`) is carried over when `older`
/// is used as the base.
pub fn pseudo_version(major: &str, older: &str, t: OffsetDateTime, rev: &str) -> String {
    let major = if major.is_empty() { "v0" } else { major };
    let segment = format!("{}-{rev}", format_timestamp(t));
    let build = semver::build(older);
    let older = semver::canonical(older);
    if older.is_empty() {
        return format!("{major}.0.0-{segment}");
    }
    if !semver::prerelease(&older).is_empty() {
        return format!("{older}.0.{segment}{build}");
    }
    // A canonical release always has a patch number after its last dot.
    let patch_start = older.rfind('.').map_or(0, |dot| dot + 1);
    let (major_minor, patch) = older.split_at(patch_start);
    format!(
        "{major_minor}{}-0.{segment}{build}",
        increment_decimal(patch)
    )
}

/// Returns the pseudo-version used when a version must be named but no
/// commit is known: the zero time and an all-zero revision. `major` "" means
/// `v0`.
pub fn zero_pseudo_version(major: &str) -> String {
    let major = if major.is_empty() { "v0" } else { major };
    format!("{major}.0.0-00010101000000-000000000000")
}

/// Returns the tag that the pseudo-version `v` was derived from: "" for
/// shape 1, `vX.Y.Z` for `vX.Y.(Z+1)-0.…`, `vX.Y.Z-pre` for `vX.Y.Z-pre.0.…`
/// (each followed by `v`'s build metadata).
pub fn pseudo_version_base(v: &str) -> Result<String, PseudoError> {
    let Pieces { base, build, .. } = pieces(v)?;
    match semver::prerelease(base) {
        "" => {
            if build.is_empty() {
                Ok(String::new())
            } else {
                Err(PseudoError::BuildWithoutBase {
                    version: v.to_string(),
                    build: build.to_string(),
                })
            }
        }
        "-0" => {
            let release = &base[..base.len() - 2];
            let dot = release.rfind('.').map_or(0, |dot| dot + 1);
            match decrement_decimal(&release[dot..]) {
                Some(patch) => Ok(format!("{}{patch}{build}", &release[..dot])),
                None => Err(PseudoError::NegativePatch {
                    version: v.to_string(),
                    base: release.to_string(),
                }),
            }
        }
        _ => {
            let tag = base.strip_suffix(".0").unwrap_or(base);
            Ok(format!("{tag}{build}"))
        }
    }
}

/// Returns the revision identifier (usually a 12-character commit hash
/// prefix) of the pseudo-version `v`.
pub fn pseudo_version_rev(v: &str) -> Result<String, PseudoError> {
    Ok(pieces(v)?.rev.to_string())
}

/// Returns the commit time recorded in the pseudo-version `v`, in UTC.
pub fn pseudo_version_time(v: &str) -> Result<OffsetDateTime, PseudoError> {
    let timestamp = pieces(v)?.timestamp;
    parse_timestamp(timestamp).ok_or_else(|| PseudoError::MalformedTime {
        version: v.to_string(),
        timestamp: timestamp.to_string(),
    })
}

/// Parses 14 ASCII digits `yyyymmddhhmmss` as a UTC time, rejecting
/// impossible months, days, hours, minutes and seconds (no leap seconds).
fn parse_timestamp(digits: &str) -> Option<OffsetDateTime> {
    if digits.len() != 14 || !all_ascii_digits(digits) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| digits.get(range)?.parse::<u16>().ok();
    let year = i32::from(number(0..4)?);
    let month = Month::try_from(u8::try_from(number(4..6)?).ok()?).ok()?;
    let day = u8::try_from(number(6..8)?).ok()?;
    let hour = u8::try_from(number(8..10)?).ok()?;
    let minute = u8::try_from(number(10..12)?).ok()?;
    let second = u8::try_from(number(12..14)?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn recognises_pseudo_versions() {
        let yes = [
            "v0.0.0-20191109021931-daa7c04131f5",
            "v1.2.4-0.20191109021931-daa7c04131f5",
            "v1.2.3-pre.0.20191109021931-daa7c04131f5",
            "v1.2.3-pre.x.0.20191109021931-daa7c04131f5",
            "v2.0.1-0.20191109021931-daa7c04131f5+incompatible",
            "v2.0.0-20191109021931-daa7c04131f5",
            "v0.0.0-00010101000000-000000000000",
            "v1.2.3-a-b.0.20191109021931-abc",
            "v0.0.0-99999999999999-x",
            "v1.2.3-0.0.20191109021931-daa7c04131f5",
        ];
        for v in yes {
            assert!(is_pseudo_version(v), "{v} should be a pseudo-version");
        }
        let no = [
            "",
            "v1.2.3",
            "v1.2.3-pre",
            "v0.0.0-2019110902193-daa7c04131f5",
            "v0.0.0-201911090219311-daa7c04131f5",
            "v1.2.3-20191109021931-daa7c04131f5",
            "v1.2.3-1.20191109021931-daa7c04131f5",
            "v1.2.3-pre.20191109021931-daa7c04131f5",
            "v0.0.0-20191109021931-",
            "v0.0.0-20191109021931",
            "v0.0.0-20191109021931-daa7c041_31f5",
            "v0.0.0-20191109021931-daa7c04131f5+",
            "v0.0.0.0-20191109021931-daa7c04131f5",
            "v0.1.0-20191109021931-daa7c04131f5",
            "v00.0.0-20191109021931-daa7c04131f5",
            "0.0.0-20191109021931-daa7c04131f5",
            "v1.2.3-0.20191109021931-daa7c04131f5-",
            "v1.2.3-0.2019110902193a-daa7c04131f5",
        ];
        for v in no {
            assert!(!is_pseudo_version(v), "{v} should not be a pseudo-version");
            assert!(matches!(
                pseudo_version_rev(v),
                Err(PseudoError::Syntax { .. })
            ));
            assert!(pseudo_version_base(v).is_err());
            assert!(pseudo_version_time(v).is_err());
        }
    }

    #[test]
    fn builds_each_shape() {
        let t = datetime!(2019-11-09 02:19:31 UTC);
        let rev = "daa7c04131f5";
        let cases = [
            ("", "", "v0.0.0-20191109021931-daa7c04131f5"),
            ("v2", "", "v2.0.0-20191109021931-daa7c04131f5"),
            ("v2", "not-a-version", "v2.0.0-20191109021931-daa7c04131f5"),
            ("", "v1.2.3", "v1.2.4-0.20191109021931-daa7c04131f5"),
            ("", "v1.2.9", "v1.2.10-0.20191109021931-daa7c04131f5"),
            ("", "v1.2.99", "v1.2.100-0.20191109021931-daa7c04131f5"),
            ("", "v1.2", "v1.2.1-0.20191109021931-daa7c04131f5"),
            (
                "",
                "v1.2.3+meta",
                "v1.2.4-0.20191109021931-daa7c04131f5+meta",
            ),
            ("", "v1.2.3-pre", "v1.2.3-pre.0.20191109021931-daa7c04131f5"),
            (
                "v2",
                "v2.1.0+incompatible",
                "v2.1.1-0.20191109021931-daa7c04131f5+incompatible",
            ),
            (
                "v2",
                "v2.1.0-rc.1+incompatible",
                "v2.1.0-rc.1.0.20191109021931-daa7c04131f5+incompatible",
            ),
        ];
        for (major, older, want) in cases {
            let got = pseudo_version(major, older, t, rev);
            assert_eq!(got, want, "pseudo_version({major:?}, {older:?})");
            assert!(is_pseudo_version(&got));
            assert_eq!(pseudo_version_rev(&got).as_deref(), Ok(rev));
            assert_eq!(pseudo_version_time(&got), Ok(t));
        }
        // Non-UTC times are converted before formatting.
        let shifted = datetime!(2019-11-09 04:19:31 +02:00);
        assert_eq!(
            pseudo_version("", "", shifted, rev),
            "v0.0.0-20191109021931-daa7c04131f5"
        );
    }

    #[test]
    fn bases() {
        let cases: [(&str, Result<&str, ()>); 9] = [
            ("v0.0.0-20191109021931-daa7c04131f5", Ok("")),
            ("v1.2.4-0.20191109021931-daa7c04131f5", Ok("v1.2.3")),
            ("v1.2.10-0.20191109021931-daa7c04131f5", Ok("v1.2.9")),
            ("v1.2.100-0.20191109021931-daa7c04131f5", Ok("v1.2.99")),
            ("v1.2.3-pre.0.20191109021931-daa7c04131f5", Ok("v1.2.3-pre")),
            (
                "v2.1.1-0.20191109021931-daa7c04131f5+incompatible",
                Ok("v2.1.0+incompatible"),
            ),
            ("v1.2.0-0.20191109021931-daa7c04131f5", Err(())),
            ("v2.0.0-20191109021931-daa7c04131f5+incompatible", Err(())),
            ("v1.2.3", Err(())),
        ];
        for (v, want) in cases {
            let got = pseudo_version_base(v);
            assert_eq!(
                got.as_deref().map_err(|_| ()),
                want,
                "pseudo_version_base({v})"
            );
        }
        assert!(matches!(
            pseudo_version_base("v1.2.0-0.20191109021931-daa7c04131f5"),
            Err(PseudoError::NegativePatch { .. })
        ));
        assert!(matches!(
            pseudo_version_base("v2.0.0-20191109021931-daa7c04131f5+incompatible"),
            Err(PseudoError::BuildWithoutBase { .. })
        ));
    }

    #[test]
    fn timestamps() {
        let ok = [
            (
                "v0.0.0-20200229235959-abc",
                datetime!(2020-02-29 23:59:59 UTC),
            ),
            (
                "v0.0.0-00000101000000-abc",
                datetime!(0000-01-01 00:00:00 UTC),
            ),
            (
                "v0.0.0-00010101000000-000000000000",
                datetime!(0001-01-01 00:00:00 UTC),
            ),
            (
                "v0.0.0-99991231235959-abc",
                datetime!(9999-12-31 23:59:59 UTC),
            ),
        ];
        for (v, want) in ok {
            assert_eq!(pseudo_version_time(v), Ok(want), "{v}");
        }
        let bad = [
            "v0.0.0-20190229000000-abc",
            "v0.0.0-19000229000000-abc",
            "v0.0.0-20191301000000-abc",
            "v0.0.0-20190001000000-abc",
            "v0.0.0-20190100000000-abc",
            "v0.0.0-20190431000000-abc",
            "v0.0.0-20190101240000-abc",
            "v0.0.0-20190101006000-abc",
            "v0.0.0-20190101000060-abc",
        ];
        for v in bad {
            assert!(is_pseudo_version(v));
            assert!(
                matches!(
                    pseudo_version_time(v),
                    Err(PseudoError::MalformedTime { .. })
                ),
                "{v}"
            );
        }
        assert_eq!(
            format_timestamp(datetime!(0001-01-01 00:00:00 UTC)),
            "00010101000000"
        );
        assert_eq!(
            format_timestamp(datetime!(-0001-03-04 05:06:07 UTC)),
            "-00010304050607"
        );
    }

    #[test]
    fn zero_versions() {
        assert_eq!(
            zero_pseudo_version(""),
            "v0.0.0-00010101000000-000000000000"
        );
        assert_eq!(
            zero_pseudo_version("v2"),
            "v2.0.0-00010101000000-000000000000"
        );
        assert_eq!(
            zero_pseudo_version("v0"),
            pseudo_version("v0", "", datetime!(0001-01-01 00:00:00 UTC), "000000000000")
        );
        assert!(is_zero_pseudo_version("v0.0.0-00010101000000-000000000000"));
        assert!(is_zero_pseudo_version("v3.0.0-00010101000000-000000000000"));
        assert!(!is_zero_pseudo_version(
            "v0.0.0-00010101000000-000000000001"
        ));
        assert!(!is_zero_pseudo_version(
            "v0.0.0-20191109021931-daa7c04131f5"
        ));
        // An invalid version has no major, which stands for v0.
        assert!(!is_zero_pseudo_version(""));
        assert!(!is_zero_pseudo_version("v1.0.0"));
    }

    #[test]
    fn decimal_arithmetic() {
        assert_eq!(increment_decimal("0"), "1");
        assert_eq!(increment_decimal("9"), "10");
        assert_eq!(increment_decimal("199"), "200");
        assert_eq!(decrement_decimal("0"), None);
        assert_eq!(decrement_decimal("1").as_deref(), Some("0"));
        assert_eq!(decrement_decimal("10").as_deref(), Some("9"));
        assert_eq!(decrement_decimal("100").as_deref(), Some("99"));
        assert_eq!(decrement_decimal("200").as_deref(), Some("199"));
    }
}
