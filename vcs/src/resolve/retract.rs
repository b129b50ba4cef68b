//! The `retract` directives of a go.mod file, read the way the go command's
//! lax parser reads a dependency's go.mod.
//!
//! Resolution needs retractions only to skip retracted tags when choosing a
//! version for a commit; a go.mod that does not even tokenize yields no
//! retractions, as in the go command. Intervals the lax parser cannot read
//! are skipped one by one, also as there.

use std::cmp::Ordering;

/// A closed interval of versions named by one `retract` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interval {
    pub low: String,
    pub high: String,
}

impl Interval {
    /// Whether `version` lies in the interval (semantic comparison).
    pub fn contains(&self, version: &str) -> bool {
        modzip::semver::compare(&self.low, version) != Ordering::Greater
            && modzip::semver::compare(version, &self.high) != Ordering::Greater
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// End of a line, or a comment (which runs to the end of its line).
    EndOfLine,
    LeftParen,
    RightParen,
    /// Any other single token text: `[`, `]`, `{`, `}`, `,`, strings, words.
    Text(String),
}

/// The retracted intervals of `gomod`, or `None` when the file does not
/// lex or its blocks are unbalanced (the go command then ignores it).
pub(crate) fn retractions(gomod: &[u8]) -> Option<Vec<Interval>> {
    let text = std::str::from_utf8(gomod).ok()?;
    let tokens = lex(text)?;
    let mut intervals = Vec::new();
    let mut pos = 0;
    while pos < tokens.len() {
        if tokens[pos] == Token::EndOfLine {
            pos += 1;
            continue;
        }
        let mut verb_tokens: Vec<String> = Vec::new();
        let mut block = false;
        while pos < tokens.len() {
            match &tokens[pos] {
                Token::EndOfLine => {
                    pos += 1;
                    break;
                }
                Token::LeftParen => {
                    let next = tokens.get(pos + 1);
                    if matches!(next, None | Some(Token::EndOfLine)) {
                        pos += 1;
                        block = true;
                        break;
                    }
                    if next == Some(&Token::RightParen)
                        && matches!(tokens.get(pos + 2), None | Some(Token::EndOfLine))
                    {
                        // An empty block: nothing inside to read.
                        pos += 3;
                        verb_tokens.clear();
                        break;
                    }
                    verb_tokens.push("(".to_string());
                    pos += 1;
                }
                Token::RightParen => {
                    verb_tokens.push(")".to_string());
                    pos += 1;
                }
                Token::Text(t) => {
                    verb_tokens.push(t.clone());
                    pos += 1;
                }
            }
        }
        if block {
            let is_retract = verb_tokens.len() == 1 && verb_tokens[0] == "retract";
            loop {
                match tokens.get(pos) {
                    None => return None,
                    Some(Token::EndOfLine) => pos += 1,
                    Some(Token::RightParen) => {
                        if !matches!(tokens.get(pos + 1), None | Some(Token::EndOfLine)) {
                            return None;
                        }
                        pos += 2;
                        break;
                    }
                    Some(_) => {
                        let mut line = Vec::new();
                        while let Some(token) = tokens.get(pos) {
                            pos += 1;
                            match token {
                                Token::EndOfLine => break,
                                Token::LeftParen => line.push("(".to_string()),
                                Token::RightParen => line.push(")".to_string()),
                                Token::Text(t) => line.push(t.clone()),
                            }
                        }
                        if is_retract {
                            if let Some(interval) = parse_interval(&line) {
                                intervals.push(interval);
                            }
                        }
                    }
                }
            }
        } else if verb_tokens.first().map(String::as_str) == Some("retract") {
            if let Some(interval) = parse_interval(&verb_tokens[1..]) {
                intervals.push(interval);
            }
        }
    }
    Some(intervals)
}

/// Reads `v` or `[low, high]` from the start of `args`.
fn parse_interval(args: &[String]) -> Option<Interval> {
    let first = args.first()?;
    if first == "(" {
        return None;
    }
    if first != "[" {
        let version = parse_version(first)?;
        return Some(Interval {
            low: version.clone(),
            high: version,
        });
    }
    let low = parse_version(args.get(1)?)?;
    if args.get(2)? != "," {
        return None;
    }
    let high = parse_version(args.get(3)?)?;
    if args.get(4)? != "]" {
        return None;
    }
    Some(Interval { low, high })
}

/// A version token: a double-quoted string is unquoted, other quotes are
/// refused; retract versions are otherwise kept exactly as written.
fn parse_version(token: &str) -> Option<String> {
    if token.starts_with('"') {
        return unquote(token);
    }
    if token.contains(['"', '\'', '`']) {
        return None;
    }
    Some(token.to_string())
}

/// Unquotes a double-quoted Go string literal.
fn unquote(token: &str) -> Option<String> {
    let inner = token.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\n' => return None,
            '\\' => {
                let escaped = match chars.next()? {
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'v' => '\u{b}',
                    '\\' => '\\',
                    '"' => '"',
                    'x' => hex_char(&mut chars, 2)?,
                    'u' => hex_char(&mut chars, 4)?,
                    'U' => hex_char(&mut chars, 8)?,
                    _ => return None,
                };
                out.push(escaped);
            }
            c => out.push(c),
        }
    }
    Some(out)
}

fn hex_char(chars: &mut std::str::Chars<'_>, digits: usize) -> Option<char> {
    let mut value = 0u32;
    for _ in 0..digits {
        value = value * 16 + chars.next()?.to_digit(16)?;
    }
    char::from_u32(value)
}

/// Whether `c` may appear in a bare word of a go.mod file.
fn is_word_char(c: char) -> bool {
    !matches!(c, ' ' | '(' | ')' | '[' | ']' | '{' | '}' | ',')
        && !c.is_whitespace()
        && !c.is_control()
}

/// Splits go.mod text into tokens; `None` on the inputs the go command's
/// lexer rejects (block comments, unterminated strings, stray characters).
fn lex(text: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if matches!(c, ' ' | '\t' | '\r') {
            rest = &rest[1..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("//") {
            rest = match after.find('\n') {
                Some(end) => &after[end + 1..],
                None => "",
            };
            tokens.push(Token::EndOfLine);
            continue;
        }
        if rest.starts_with("/*") {
            return None;
        }
        match c {
            '\n' => {
                tokens.push(Token::EndOfLine);
                rest = &rest[1..];
            }
            '(' => {
                tokens.push(Token::LeftParen);
                rest = &rest[1..];
            }
            ')' => {
                tokens.push(Token::RightParen);
                rest = &rest[1..];
            }
            '[' | ']' | '{' | '}' | ',' => {
                tokens.push(Token::Text(c.to_string()));
                rest = &rest[1..];
            }
            '"' | '`' => {
                let mut end = None;
                let mut escaped = false;
                for (i, d) in rest.char_indices().skip(1) {
                    if d == '\n' {
                        return None;
                    }
                    if escaped {
                        escaped = false;
                    } else if d == '\\' && c == '"' {
                        escaped = true;
                    } else if d == c {
                        end = Some(i + 1);
                        break;
                    }
                }
                let end = end?;
                tokens.push(Token::Text(rest[..end].to_string()));
                rest = &rest[end..];
            }
            c if is_word_char(c) => {
                let mut end = rest.len();
                for (i, d) in rest.char_indices() {
                    if !is_word_char(d) || rest[i..].starts_with("//") {
                        end = i;
                        break;
                    }
                    if rest[i..].starts_with("/*") {
                        return None;
                    }
                }
                tokens.push(Token::Text(rest[..end].to_string()));
                rest = &rest[end..];
            }
            _ => return None,
        }
    }
    Some(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(gomod: &str) -> Option<Vec<(String, String)>> {
        retractions(gomod.as_bytes())
            .map(|list| list.into_iter().map(|i| (i.low, i.high)).collect())
    }

    #[test]
    fn single_versions_intervals_and_blocks() {
        let gomod = "module m\n\nretract v1.0.0 // broken\nretract [v1.1.0, v1.2.0]\nretract (\n\tv0.1.0\n\t[v0.2.0,v0.3.0] // why\n\n)\nrequire x v1.0.0\n";
        assert_eq!(
            pairs(gomod).unwrap(),
            vec![
                ("v1.0.0".into(), "v1.0.0".into()),
                ("v1.1.0".into(), "v1.2.0".into()),
                ("v0.1.0".into(), "v0.1.0".into()),
                ("v0.2.0".into(), "v0.3.0".into()),
            ]
        );
    }

    #[test]
    fn unreadable_intervals_are_skipped_but_bad_files_yield_none() {
        assert_eq!(
            pairs("retract [v1.0.0 v2.0.0]\nretract \"v1.5.0\"\n").unwrap(),
            vec![("v1.5.0".into(), "v1.5.0".into())]
        );
        assert_eq!(pairs("retract 'v1.0.0'\n").unwrap(), vec![]);
        assert_eq!(pairs("module m /* no */\n"), None);
        assert_eq!(pairs("retract (\nv1.0.0\n"), None);
        assert_eq!(pairs("module \"m\n"), None);
    }

    #[test]
    fn interval_membership_is_semantic() {
        let i = Interval {
            low: "v1.1.0".into(),
            high: "v1.2.0".into(),
        };
        assert!(i.contains("v1.1.0") && i.contains("v1.1.5") && i.contains("v1.2.0"));
        assert!(!i.contains("v1.2.1") && !i.contains("v1.0.9"));
    }
}
