//! Semantic versions as the go command understands them.
//!
//! Versions always start with `v` (`v1.2.3`, `v1.2.3-pre.1+build`). The
//! shorthands `vMAJOR` and `vMAJOR.MINOR` are accepted and stand for
//! `vMAJOR.0.0` and `vMAJOR.MINOR.0`, but shorthands cannot carry a
//! pre-release or build suffix. Numbers may be arbitrarily long; they are
//! compared as decimal strings, never converted to machine integers.

use std::cmp::Ordering;

/// The pieces of a valid version; every field borrows from the input.
#[derive(Debug, Default, Clone, Copy)]
struct Parsed<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    /// What a shorthand lacks to be complete: ".0.0", ".0" or "".
    short: &'static str,
    /// "-..." including the dash, or "".
    prerelease: &'a str,
    /// "+..." including the plus sign, or "".
    build: &'a str,
}

/// Splits off a leading decimal number without superfluous leading zeros.
fn parse_number(v: &str) -> Option<(&str, &str)> {
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || (digits > 1 && v.as_bytes()[0] == b'0') {
        return None;
    }
    Some(v.split_at(digits))
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// A numeric pre-release identifier must not have leading zeros.
fn is_bad_number(ident: &str) -> bool {
    ident.len() > 1 && ident.bytes().all(|b| b.is_ascii_digit()) && ident.starts_with('0')
}

/// Splits off "-ident.ident..." up to (not including) a '+' or the end.
fn parse_prerelease(v: &str) -> Option<(&str, &str)> {
    let end = v.find('+').unwrap_or(v.len());
    let (pre, rest) = v.split_at(end);
    let body = pre.strip_prefix('-')?;
    for ident in body.split('.') {
        if ident.is_empty() || !ident.bytes().all(is_ident_byte) || is_bad_number(ident) {
            return None;
        }
    }
    Some((pre, rest))
}

/// Checks "+ident.ident..." running to the end of the string.
fn parse_build(v: &str) -> Option<&str> {
    let body = v.strip_prefix('+')?;
    for ident in body.split('.') {
        if ident.is_empty() || !ident.bytes().all(is_ident_byte) {
            return None;
        }
    }
    Some(v)
}

fn parse(v: &str) -> Option<Parsed<'_>> {
    let mut p = Parsed::default();
    let rest = v.strip_prefix('v')?;
    let (major, rest) = parse_number(rest)?;
    p.major = major;
    if rest.is_empty() {
        p.minor = "0";
        p.patch = "0";
        p.short = ".0.0";
        return Some(p);
    }
    let (minor, rest) = parse_number(rest.strip_prefix('.')?)?;
    p.minor = minor;
    if rest.is_empty() {
        p.patch = "0";
        p.short = ".0";
        return Some(p);
    }
    let (patch, mut rest) = parse_number(rest.strip_prefix('.')?)?;
    p.patch = patch;
    if rest.starts_with('-') {
        let (pre, after) = parse_prerelease(rest)?;
        p.prerelease = pre;
        rest = after;
    }
    if rest.starts_with('+') {
        p.build = parse_build(rest)?;
        rest = "";
    }
    if !rest.is_empty() {
        return None;
    }
    Some(p)
}

/// Reports whether `v` is a valid semantic version (shorthands included).
pub fn is_valid(v: &str) -> bool {
    parse(v).is_some()
}

/// Returns the canonical form of `v`: shorthands are completed
/// (`v1` → `v1.0.0`) and build metadata is dropped — including
/// `+incompatible`; use [`crate::module::canonical_version`] to keep that.
/// Returns "" when `v` is invalid.
pub fn canonical(v: &str) -> String {
    let Some(p) = parse(v) else {
        return String::new();
    };
    if !p.build.is_empty() {
        return v[..v.len() - p.build.len()].to_string();
    }
    format!("{v}{}", p.short)
}

/// Returns the major version prefix of `v` (`v2` for `v2.1.0`), or "" when
/// `v` is invalid.
pub fn major(v: &str) -> &str {
    match parse(v) {
        Some(p) => &v[..1 + p.major.len()],
        None => "",
    }
}

/// Returns the `vMAJOR.MINOR` prefix of `v` (`v2.1` for `v2.1.0`, `v2.0` for
/// `v2`), or "" when `v` is invalid.
pub fn major_minor(v: &str) -> String {
    let Some(p) = parse(v) else {
        return String::new();
    };
    let major_end = 1 + p.major.len();
    let minor_end = major_end + 1 + p.minor.len();
    if v.len() >= minor_end
        && v.as_bytes()[major_end] == b'.'
        && &v[major_end + 1..minor_end] == p.minor
    {
        return v[..minor_end].to_string();
    }
    format!("{}.{}", &v[..major_end], p.minor)
}

/// Returns the pre-release suffix of `v` including its dash (`-rc.1`), or ""
/// when there is none or `v` is invalid.
pub fn prerelease(v: &str) -> &str {
    parse(v).map_or("", |p| p.prerelease)
}

/// Returns the build suffix of `v` including its plus sign
/// (`+incompatible`), or "" when there is none or `v` is invalid.
pub fn build(v: &str) -> &str {
    parse(v).map_or("", |p| p.build)
}

/// The build metadata of `v` ("" for none) when `v` is valid and complete
/// (`vMAJOR.MINOR.PATCH`, not a `v1` or `v1.2` shorthand); `None` otherwise.
pub(crate) fn complete_build(v: &str) -> Option<&str> {
    parse(v).filter(|p| p.short.is_empty()).map(|p| p.build)
}

/// Orders decimal strings without leading zeros.
fn compare_number(x: &str, y: &str) -> Ordering {
    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
}

/// Orders pre-release suffixes (each "" or "-id.id..."): a release follows
/// all of its pre-releases; numeric identifiers precede alphanumeric ones.
fn compare_prerelease(x: &str, y: &str) -> Ordering {
    if x == y {
        return Ordering::Equal;
    }
    if x.is_empty() {
        return Ordering::Greater;
    }
    if y.is_empty() {
        return Ordering::Less;
    }
    let mut xs = x[1..].split('.');
    let mut ys = y[1..].split('.');
    loop {
        match (xs.next(), ys.next()) {
            (Some(dx), Some(dy)) => {
                if dx == dy {
                    continue;
                }
                let x_numeric = dx.bytes().all(|b| b.is_ascii_digit());
                let y_numeric = dy.bytes().all(|b| b.is_ascii_digit());
                return match (x_numeric, y_numeric) {
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (true, true) => compare_number(dx, dy),
                    (false, false) => dx.cmp(dy),
                };
            }
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            // Equal identifier lists mean equal strings, handled above.
            (None, None) => return Ordering::Equal,
        }
    }
}

/// Compares two versions. Build metadata is ignored; an invalid version
/// sorts before every valid one, and two invalid versions are equal.
pub fn compare(v: &str, w: &str) -> Ordering {
    match (parse(v), parse(w)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(pv), Some(pw)) => compare_number(pv.major, pw.major)
            .then_with(|| compare_number(pv.minor, pw.minor))
            .then_with(|| compare_number(pv.patch, pw.patch))
            .then_with(|| compare_prerelease(pv.prerelease, pw.prerelease)),
    }
}

/// Returns whichever argument is the larger version by [`compare`]
/// (`w` on ties, and `w` when both are invalid), unchanged.
///
/// Go's `semver.Max` returns the *canonical* form of the winner and "" when
/// both are invalid; that is [`max_canonical`].
pub fn max<'a>(v: &'a str, w: &'a str) -> &'a str {
    if compare(v, w) == Ordering::Greater {
        v
    } else {
        w
    }
}

/// Returns the canonical form of the larger version, exactly like Go's
/// `semver.Max`: "" when both are invalid.
pub fn max_canonical(v: &str, w: &str) -> String {
    let v = canonical(v);
    let w = canonical(w);
    if compare(&v, &w) == Ordering::Greater {
        v
    } else {
        w
    }
}

/// Orders two version strings by [`compare`], breaking ties (such as `v1`
/// versus `v1.0.0`, or differing build metadata, or two invalid strings)
/// by plain string order.
pub fn compare_for_sort(a: &str, b: &str) -> Ordering {
    compare(a, b).then_with(|| a.cmp(b))
}

/// Sorts versions ascending by [`compare_for_sort`].
pub fn sort(list: &mut [String]) {
    list.sort_by(|a, b| compare_for_sort(a, b));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::{Equal, Greater, Less};

    #[test]
    fn valid_versions_and_their_parts() {
        // (input, canonical, major, major_minor, prerelease, build)
        let cases = [
            ("v0", "v0.0.0", "v0", "v0.0", "", ""),
            ("v1", "v1.0.0", "v1", "v1.0", "", ""),
            ("v1.2", "v1.2.0", "v1", "v1.2", "", ""),
            ("v1.2.3", "v1.2.3", "v1", "v1.2", "", ""),
            ("v1.2.3-pre", "v1.2.3-pre", "v1", "v1.2", "-pre", ""),
            (
                "v1.2.3-pre.0.a-b",
                "v1.2.3-pre.0.a-b",
                "v1",
                "v1.2",
                "-pre.0.a-b",
                "",
            ),
            ("v1.2.3-0", "v1.2.3-0", "v1", "v1.2", "-0", ""),
            ("v1.2.3--", "v1.2.3--", "v1", "v1.2", "--", ""),
            ("v1.2.3-01a", "v1.2.3-01a", "v1", "v1.2", "-01a", ""),
            ("v1.2.3+meta", "v1.2.3", "v1", "v1.2", "", "+meta"),
            ("v1.2.3+0001.x-y", "v1.2.3", "v1", "v1.2", "", "+0001.x-y"),
            (
                "v1.2.3-rc.1+meta",
                "v1.2.3-rc.1",
                "v1",
                "v1.2",
                "-rc.1",
                "+meta",
            ),
            (
                "v2.0.0+incompatible",
                "v2.0.0",
                "v2",
                "v2.0",
                "",
                "+incompatible",
            ),
            (
                "v123456789012345678901234567890.0.1",
                "v123456789012345678901234567890.0.1",
                "v123456789012345678901234567890",
                "v123456789012345678901234567890.0",
                "",
                "",
            ),
        ];
        for (v, canon, maj, mm, pre, bld) in cases {
            assert!(is_valid(v), "{v} should be valid");
            assert_eq!(canonical(v), canon, "canonical({v})");
            assert_eq!(major(v), maj, "major({v})");
            assert_eq!(major_minor(v), mm, "major_minor({v})");
            assert_eq!(prerelease(v), pre, "prerelease({v})");
            assert_eq!(build(v), bld, "build({v})");
        }
    }

    #[test]
    fn invalid_versions() {
        let cases = [
            "",
            "v",
            "1.2.3",
            "V1.2.3",
            "v01",
            "v1.02",
            "v1.2.03",
            "v1.",
            "v1.2.",
            "v1..2",
            "v1.2.3.4",
            "v1-pre",
            "v1.2-pre",
            "v1+meta",
            "v1.2+meta",
            "v1.2.3-",
            "v1.2.3-pre.",
            "v1.2.3-.pre",
            "v1.2.3-pre..1",
            "v1.2.3-01",
            "v1.2.3-pre.00",
            "v1.2.3-pre_1",
            "v1.2.3+",
            "v1.2.3+meta.",
            "v1.2.3+a..b",
            "v1.2.3+a+b",
            "v1.2.3-pre+",
            "v1.2.3 ",
            "v1.2.3-é",
            "vx",
            "v-1",
        ];
        for v in cases {
            assert!(!is_valid(v), "{v} should be invalid");
            assert_eq!(canonical(v), "", "canonical({v})");
            assert_eq!(major(v), "", "major({v})");
            assert_eq!(major_minor(v), "", "major_minor({v})");
            assert_eq!(prerelease(v), "", "prerelease({v})");
            assert_eq!(build(v), "", "build({v})");
        }
    }

    #[test]
    fn ordering() {
        let cases: &[(&str, &str, Ordering)] = &[
            ("v1", "v1.0.0", Equal),
            ("v1.2", "v1.2.0", Equal),
            ("v1.2.3", "v1.2.3+meta", Equal),
            ("v1.2.3+a", "v1.2.3+b", Equal),
            ("v1.2.3-alpha", "v1.2.3", Less),
            ("v1.2.3-alpha", "v1.2.3-alpha.1", Less),
            ("v1.2.3-alpha.1", "v1.2.3-alpha.beta", Less),
            ("v1.2.3-alpha.beta", "v1.2.3-beta", Less),
            ("v1.2.3-beta.2", "v1.2.3-beta.11", Less),
            ("v1.2.3-beta.11", "v1.2.3-rc.1", Less),
            ("v1.2.3-1", "v1.2.3-a", Less),
            ("v1.2.3-A", "v1.2.3-a", Less),
            ("v1.2.3-9", "v1.2.3-10", Less),
            ("v1.2.3-01a", "v1.2.3-1a", Less),
            ("v1.9.0", "v1.10.0", Less),
            ("v2.0.0", "v1.99.99", Greater),
            ("v1.0.0", "bad", Greater),
            ("v9", "v10", Less),
            ("v1.2.3", "v1.2.4-0", Less),
            ("bad", "v0.0.0", Less),
            ("bad", "", Equal),
            ("bad", "worse", Equal),
            ("v99999999999999999999", "v100000000000000000000", Less),
        ];
        for &(v, w, want) in cases {
            assert_eq!(compare(v, w), want, "compare({v}, {w})");
            assert_eq!(compare(w, v), want.reverse(), "compare({w}, {v})");
        }
    }

    #[test]
    fn maxima() {
        assert_eq!(max("v1.2.0", "v1.10.0"), "v1.10.0");
        assert_eq!(max("v1.10.0", "v1.2.0"), "v1.10.0");
        assert_eq!(max("v1", "v1.0.0"), "v1.0.0");
        assert_eq!(max("v1.0.0", "bad"), "v1.0.0");
        assert_eq!(max_canonical("v1", "bad"), "v1.0.0");
        assert_eq!(max_canonical("v2.1", "v1"), "v2.1.0");
        // A shorthand cannot carry build metadata, so "v2.1+x" is invalid.
        assert_eq!(max_canonical("v2.1+x", "v1"), "v1.0.0");
        assert_eq!(max_canonical("bad", "worse"), "");
        assert_eq!(max_canonical("v1.2.3+meta", "v1.2"), "v1.2.3");
    }

    #[test]
    fn sorting() {
        let mut list: Vec<String> = [
            "v1.0.0",
            "bad",
            "v1",
            "v0.9.0",
            "v1.0.0-rc.1",
            "v1.0.0+b",
            "abc",
            "v1.0.0+a",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        sort(&mut list);
        assert_eq!(
            list,
            [
                "abc",
                "bad",
                "v0.9.0",
                "v1.0.0-rc.1",
                "v1",
                "v1.0.0",
                "v1.0.0+a",
                "v1.0.0+b"
            ]
        );
    }
}
