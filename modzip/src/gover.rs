//! Go toolchain and language version names, compared the way the go command
//! compares them (the `go/version` package semantics).
//!
//! Names carry a `go` prefix: `go1`, `go1.21`, `go1.21.3`, `go1.21rc2`,
//! `go1.22beta1`. Anything after the first `-` (as in `go1.21.3-custom`) is
//! ignored. Since Go 1.21 the bare language version `go1.21` names the
//! language and sorts *before* `go1.21rc1` and `go1.21.0`; for older minors
//! `go1.20` is the same release as `go1.20.0`.
//!
//! Go versions as written in a `go.mod` `go` directive have no prefix
//! (`1.21`); add `go` before calling these functions.

use std::cmp::Ordering;

/// A parsed version with the `go` prefix already removed. All numeric fields
/// are decimal strings without superfluous leading zeros, compared by length
/// first so that arbitrarily large numbers order correctly.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Parsed<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    /// "" for a release, otherwise "alpha", "beta", "rc" or any other run of
    /// lower-case letters; ordered as plain strings ("" sorts first).
    kind: &'a str,
    pre: &'a str,
}

/// Splits off a leading decimal number. Fails when there is none or when it
/// has a leading zero (only "0" itself may start with '0').
fn cut_decimal(s: &str) -> Option<(&str, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || (digits > 1 && s.as_bytes()[0] == b'0') {
        return None;
    }
    Some(s.split_at(digits))
}

/// Parses an un-prefixed version such as "1.21rc2". `None` means invalid.
fn parse(s: &str) -> Option<Parsed<'_>> {
    let mut v = Parsed::default();
    let (major, rest) = cut_decimal(s)?;
    v.major = major;
    if rest.is_empty() {
        v.minor = "0";
        v.patch = "0";
        return Some(v);
    }
    let rest = rest.strip_prefix('.')?;
    let (minor, rest) = cut_decimal(rest)?;
    v.minor = minor;
    if rest.is_empty() {
        // From 1.21 on, "1.N" names the language, which precedes every
        // release of it; before that "1.N" was itself the first release.
        if compare_decimal(minor, "21") == Ordering::Less {
            v.patch = "0";
        }
        return Some(v);
    }
    if let Some(after_dot) = rest.strip_prefix('.') {
        let (patch, tail) = cut_decimal(after_dot)?;
        if !tail.is_empty() {
            return None;
        }
        v.patch = patch;
        return Some(v);
    }
    let letters = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
    if letters == 0
        || !rest.as_bytes()[..letters]
            .iter()
            .all(u8::is_ascii_lowercase)
    {
        return None;
    }
    let (kind, rest) = rest.split_at(letters);
    v.kind = kind;
    if rest.is_empty() {
        return Some(v);
    }
    let (pre, tail) = cut_decimal(rest)?;
    if !tail.is_empty() {
        return None;
    }
    v.pre = pre;
    Some(v)
}

/// Orders decimal strings without leading zeros; "" sorts before any number.
fn compare_decimal(x: &str, y: &str) -> Ordering {
    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
}

/// Removes a "-suffix" and the "go" prefix; "" when there is no prefix.
fn strip_go(v: &str) -> &str {
    let v = v.split_once('-').map_or(v, |(head, _)| head);
    v.strip_prefix("go").unwrap_or("")
}

/// Reports whether `x` is a well-formed Go version name such as `go1.21rc2`.
pub fn is_valid(x: &str) -> bool {
    parse(strip_go(x)).is_some()
}

/// Compares two Go version names. Invalid names sort before all valid ones
/// and are equal to each other.
///
/// Order example: `go1.20 < go1.21 < go1.21rc1 < go1.21.0 < go1.21.1`.
pub fn compare(x: &str, y: &str) -> Ordering {
    let px = parse(strip_go(x)).unwrap_or_default();
    let py = parse(strip_go(y)).unwrap_or_default();
    compare_decimal(px.major, py.major)
        .then_with(|| compare_decimal(px.minor, py.minor))
        .then_with(|| compare_decimal(px.patch, py.patch))
        .then_with(|| px.kind.cmp(py.kind))
        .then_with(|| compare_decimal(px.pre, py.pre))
}

/// Returns the larger of two Go version names per [`compare`], preferring `x`
/// on ties.
pub fn max<'a>(x: &'a str, y: &'a str) -> &'a str {
    if compare(x, y) == Ordering::Less {
        y
    } else {
        x
    }
}

/// Returns the language version that `x` belongs to: `go1.21rc2` and
/// `go1.21.3` give `go1.21`, `go1.0` gives `go1`. Returns "" when `x` is not
/// a valid version name.
pub fn lang(x: &str) -> String {
    let Some(v) = parse(strip_go(x)) else {
        return String::new();
    };
    if v.minor.is_empty() || (v.major == "1" && v.minor == "0") {
        format!("go{}", v.major)
    } else {
        format!("go{}.{}", v.major, v.minor)
    }
}

/// Reports whether `x` is a valid language version: a version name without
/// patch number or pre-release suffix, such as `go1.21` (but not `go1.21.0`
/// nor `go1.21rc1`). Note `go1.20` counts as `go1.20.0` (and `go1` as
/// `go1.0.0`) and is therefore not a language version, matching the go command.
pub fn is_lang(x: &str) -> bool {
    parse(strip_go(x)).is_some_and(|v| v.patch.is_empty() && v.kind.is_empty() && v.pre.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::{Equal, Greater, Less};

    #[test]
    fn validity() {
        let valid = [
            "go1",
            "go1.0",
            "go1.2",
            "go1.21",
            "go1.21.0",
            "go1.21.13",
            "go1.21rc2",
            "go1.22beta1",
            "go1.21alpha",
            "go1.21rc",
            "go2",
            "go1.21.3-custom",
            "go1.21-",
            "go1.21-rc1x",
            "go0",
            "go1.99999999999999999999",
        ];
        for x in valid {
            assert!(is_valid(x), "{x} should be valid");
        }
        let invalid = [
            "",
            "go",
            "1.21",
            "Go1.21",
            "go1.",
            "go1..2",
            "go01",
            "go1.02",
            "go1.2.03",
            "go1.21.0.1",
            "go1.21rc01",
            "go1.21RC1",
            "go1.21rc1x",
            "go1.21.0rc1",
            "go-1.21",
            "go1.21 ",
            "gox",
            "go1.2é",
            "go1.21.",
        ];
        for x in invalid {
            assert!(!is_valid(x), "{x} should be invalid");
        }
    }

    #[test]
    fn comparisons() {
        let cases: &[(&str, &str, Ordering)] = &[
            ("go1.20", "go1.20.0", Equal),
            ("go1.21", "go1.21.0", Less),
            ("go1.21", "go1.21rc1", Less),
            ("go1.21rc1", "go1.21.0", Less),
            ("go1.21alpha1", "go1.21beta1", Less),
            ("go1.21beta1", "go1.21rc1", Less),
            ("go1.21rc", "go1.21rc1", Less),
            ("go1.21rc2", "go1.21rc10", Less),
            ("go1.9", "go1.10", Less),
            ("go1", "go1.0", Equal),
            ("go1", "go1.0.0", Equal),
            ("go1.21.3-custom", "go1.21.3", Equal),
            ("go2", "go1.99", Greater),
            ("bad", "go1", Less),
            ("bad", "worse", Equal),
            ("go1.24", "go1.24", Equal),
            ("go1.23.9", "go1.24", Less),
            ("go1.24rc1", "go1.24", Greater),
            ("go100000000000000000000", "go99999999999999999999", Greater),
        ];
        for &(x, y, want) in cases {
            assert_eq!(compare(x, y), want, "compare({x}, {y})");
            assert_eq!(compare(y, x), want.reverse(), "compare({y}, {x})");
        }
        assert_eq!(max("go1.21", "go1.21.1"), "go1.21.1");
        assert_eq!(max("go1.20", "go1.20.0"), "go1.20");
    }

    #[test]
    fn languages() {
        let cases = [
            ("go1", "go1"),
            ("go1.0", "go1"),
            ("go1.0.1", "go1"),
            ("go1.2", "go1.2"),
            ("go1.2.3", "go1.2"),
            ("go1.21rc2", "go1.21"),
            ("go1.21.3-custom", "go1.21"),
            ("go2", "go2.0"),
            ("go2.1.4", "go2.1"),
            ("go1.21.x", ""),
            ("1.21", ""),
            ("", ""),
        ];
        for (x, want) in cases {
            assert_eq!(lang(x), want, "lang({x})");
        }
        assert!(is_lang("go1.21"));
        assert!(is_lang("go1.22"));
        assert!(!is_lang("go1"));
        assert!(!is_lang("go1.20"));
        assert!(!is_lang("go1.21.0"));
        assert!(!is_lang("go1.21rc1"));
        assert!(!is_lang("bad"));
    }
}
