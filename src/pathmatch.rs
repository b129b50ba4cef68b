//! Shell-style pattern matching of slash-separated paths with the rules of
//! Go's `path.Match`, and the prefix matching Athens (and the go command's
//! GOPRIVATE/GONOSUMDB lists) builds on it.
//!
//! Syntax: `*` is any run of characters other than `/`, `?` is one
//! character other than `/`, `[...]` is a character class (`[^...]`
//! negates it, `a-z` is a range, and a class may match `/`), `\c` is the
//! character `c` itself. A pattern that breaks these rules never matches
//! and reports [`BadPattern`].

use thiserror::Error;

/// The pattern is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("malformed pattern {pattern:?}: {reason}")]
pub struct BadPattern {
    /// The offending pattern.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Star,
    AnyChar,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Literal(char),
}

fn tokenize(pattern: &str) -> Result<Vec<Token>, BadPattern> {
    let bad = |reason| BadPattern {
        pattern: pattern.to_string(),
        reason,
    };
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                // Consecutive stars mean the same as one.
                if tokens.last() != Some(&Token::Star) {
                    tokens.push(Token::Star);
                }
            }
            '?' => tokens.push(Token::AnyChar),
            '\\' => match chars.next() {
                Some(escaped) => tokens.push(Token::Literal(escaped)),
                None => return Err(bad("trailing backslash")),
            },
            '[' => {
                let negated = chars.peek() == Some(&'^');
                if negated {
                    chars.next();
                }
                let mut ranges = Vec::new();
                // A class item: a plain or escaped character, which must
                // not be '-' or ']' and must not end the pattern.
                let item = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
                    let c = match chars.next() {
                        None => return Err(bad("unterminated character class")),
                        Some('-') | Some(']') => {
                            return Err(bad("'-' or ']' where a class character belongs"))
                        }
                        Some('\\') => chars
                            .next()
                            .ok_or_else(|| bad("unterminated character class"))?,
                        Some(c) => c,
                    };
                    if chars.peek().is_none() {
                        return Err(bad("unterminated character class"));
                    }
                    Ok(c)
                };
                loop {
                    if chars.peek() == Some(&']') && !ranges.is_empty() {
                        chars.next();
                        break;
                    }
                    let lo = item(&mut chars)?;
                    let hi = if chars.peek() == Some(&'-') {
                        chars.next();
                        item(&mut chars)?
                    } else {
                        lo
                    };
                    ranges.push((lo, hi));
                }
                tokens.push(Token::Class { negated, ranges });
            }
            c => tokens.push(Token::Literal(c)),
        }
    }
    Ok(tokens)
}

/// Whether all of `name` matches `pattern` (Go's `path.Match`).
pub fn path_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let tokens = tokenize(pattern)?;
    let name: Vec<char> = name.chars().collect();
    // Memo of (token, position) pairs already known not to match, which
    // keeps patterns with many stars linear in practice.
    let mut failed = std::collections::HashSet::new();
    Ok(match_from(&tokens, &name, 0, 0, &mut failed))
}

fn match_from(
    tokens: &[Token],
    name: &[char],
    ti: usize,
    ni: usize,
    failed: &mut std::collections::HashSet<(usize, usize)>,
) -> bool {
    if failed.contains(&(ti, ni)) {
        return false;
    }
    let matched = match tokens.get(ti) {
        None => ni == name.len(),
        Some(Token::Star) => {
            let mut end = ni;
            loop {
                if match_from(tokens, name, ti + 1, end, failed) {
                    break true;
                }
                match name.get(end) {
                    Some(&c) if c != '/' => end += 1,
                    _ => break false,
                }
            }
        }
        Some(token) => match name.get(ni) {
            None => false,
            Some(&c) => {
                let one = match token {
                    Token::AnyChar => c != '/',
                    Token::Literal(l) => c == *l,
                    Token::Class { negated, ranges } => {
                        ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
                    }
                    Token::Star => false,
                };
                one && match_from(tokens, name, ti + 1, ni + 1, failed)
            }
        },
    };
    if !matched {
        failed.insert((ti, ni));
    }
    matched
}

/// Checks that `pattern` is well formed.
pub fn check_pattern(pattern: &str) -> Result<(), BadPattern> {
    tokenize(pattern).map(|_| ())
}

/// Whether a leading part of `target` with as many path elements as
/// `pattern` has matches it: `example.com/*` matches
/// `example.com/a/b/c`. A malformed pattern matches nothing.
pub fn matches_path_prefix(pattern: &str, target: &str) -> bool {
    let slashes = pattern.matches('/').count();
    let mut seen = 0;
    let mut prefix = target;
    for (i, b) in target.bytes().enumerate() {
        if b == b'/' {
            if seen == slashes {
                prefix = &target[..i];
                break;
            }
            seen += 1;
        }
    }
    if seen < slashes {
        return false;
    }
    path_match(pattern, prefix).unwrap_or(false)
}

/// Whether `target` matches any of `patterns` by
/// [`matches_path_prefix`]; blank patterns are skipped, as the go command
/// skips empty GONOSUMDB entries.
pub fn matches_any_path_prefix<'a>(
    patterns: impl IntoIterator<Item = &'a String>,
    target: &str,
) -> bool {
    patterns
        .into_iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .any(|p| matches_path_prefix(p, target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_go_path_match() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[/]", "/", true),
            ("*x", "xxx", true),
        ];
        for &(pattern, name, want) in cases {
            assert_eq!(
                path_match(pattern, name),
                Ok(want),
                "pattern {pattern:?} name {name:?}"
            );
        }
    }

    #[test]
    fn rejects_malformed_patterns() {
        for pattern in [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "[\\", "a\\",
        ] {
            assert!(
                path_match(pattern, "a").is_err(),
                "pattern {pattern:?} should be rejected"
            );
            assert!(check_pattern(pattern).is_err());
            assert!(!matches_path_prefix(pattern, "a"));
        }
    }

    #[test]
    fn prefix_matching_counts_path_elements() {
        assert!(matches_path_prefix("example.com", "example.com/a/b"));
        assert!(matches_path_prefix("example.com/*", "example.com/a/b"));
        assert!(matches_path_prefix("*.example.com", "git.example.com/x"));
        assert!(matches_path_prefix("example.com/a", "example.com/a"));
        assert!(!matches_path_prefix("example.com/a/b", "example.com/a"));
        assert!(!matches_path_prefix("example.com/a", "example.com/ab/c"));
        assert!(!matches_path_prefix("example.com", "example.community/x"));
        let list = vec!["github.com/private".to_string(), String::new()];
        assert!(matches_any_path_prefix(&list, "github.com/private/x"));
        assert!(!matches_any_path_prefix(&list, "github.com/public/x"));
    }
}
