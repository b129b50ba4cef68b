//! Reading `<meta name="go-import" content="...">` tags from a `?go-get=1`
//! page.
//!
//! The go command does not parse these pages as HTML: it runs a lenient XML
//! tokenizer over them and stops at `<body>` or `</head>`. HTML parsers
//! disagree with it on real pages (they repair unclosed heads, move stray
//! tags, tolerate `a < b` inside scripts), so to pick exactly the tags the go
//! command picks we tokenize the same way: unquoted attribute values limited
//! to `[A-Za-z0-9_:-]`, valueless attributes taking their own name, entity
//! decoding in attribute values, `<?xml encoding=...?>` limited to UTF-8 and
//! ASCII, and syntax errors that only matter when no tag was found before
//! them.

use std::fmt;

/// One go-import declaration from a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaImport {
    /// The import-path prefix the tag claims.
    pub prefix: String,
    /// The VCS name as written (`git`, `hg`, `svn`, `fossil`, `mod`, ...).
    pub vcs: String,
    /// The repository (or, for `mod`, proxy) URL.
    pub repo_root: String,
    /// The optional fourth field: a subdirectory of the repository.
    pub subdir: String,
}

/// A tokenizer error, reported only when no go-import tag preceded it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed page at line {line}: {problem}")]
pub struct MetaSyntaxError {
    /// 1-based line where the tokenizer gave up.
    pub line: usize,
    /// What it found.
    pub problem: String,
}

/// Whether `mod` entries are considered (the module-aware lookup does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModMode {
    /// Drop `mod` entries.
    IgnoreMod,
    /// `mod` entries come first and hide other entries for the same prefix.
    PreferMod,
}

/// Extracts go-import declarations from `page`, ordered as the go command
/// orders them for matching (with [`ModMode::PreferMod`], `mod` entries first).
///
/// This is the go command's `parseMetaGoImports`
/// (`cmd/go/internal/vcs/discovery.go`); [`match_go_import`] then picks the
/// declaration for an import path as its `matchGoImport`
/// (`cmd/go/internal/vcs/vcs.go`) does.
///
/// ```
/// use vcs::discovery::{match_go_import, parse_meta_go_imports, ModMode};
///
/// let page = br#"<!DOCTYPE html>
/// <html><head>
/// <meta name="go-import" content="example.com/tools git https://git.example.com/tools">
/// <meta name="go-import" content="example.com/tools mod https://proxy.example.com">
/// <meta name="go-import" content="example.com/other git https://git.example.com/other">
/// </head>
/// <body><meta name="go-import" content="example.com/tools git https://ignored.example.com"></body>
/// </html>"#;
///
/// // Module mode: the `mod` entry comes first and hides the git entry for
/// // the same prefix.
/// let imports = parse_meta_go_imports(page, ModMode::PreferMod)?;
/// assert_eq!(imports.len(), 2);
/// assert_eq!(imports[0].vcs, "mod");
/// let chosen = match_go_import(&imports, "example.com/tools/cmd/stringer").unwrap();
/// assert_eq!((chosen.vcs.as_str(), chosen.repo_root.as_str()), ("mod", "https://proxy.example.com"));
///
/// // Without `mod` entries the git repository is the answer.
/// // Reading stops at <body>, so the tag inside it is never seen.
/// let imports = parse_meta_go_imports(page, ModMode::IgnoreMod)?;
/// assert_eq!(imports.len(), 2);
/// let chosen = match_go_import(&imports, "example.com/tools").unwrap();
/// assert_eq!(chosen.repo_root, "https://git.example.com/tools");
/// assert!(match_go_import(&imports, "example.com/toolsx").is_err());
/// # Ok::<(), vcs::discovery::MetaSyntaxError>(())
/// ```
pub fn parse_meta_go_imports(
    page: &[u8],
    mode: ModMode,
) -> Result<Vec<MetaImport>, MetaSyntaxError> {
    let mut tokens = Tokenizer::new(page);
    let mut found: Vec<MetaImport> = Vec::new();
    loop {
        let token = match tokens.next_token() {
            Ok(Some(t)) => t,
            Ok(None) => break,
            Err(e) => {
                if found.is_empty() {
                    return Err(e);
                }
                break;
            }
        };
        match token {
            Token::Start { name, attrs } => {
                if name.eq_ignore_ascii_case("body") {
                    break;
                }
                if !name.eq_ignore_ascii_case("meta") {
                    continue;
                }
                if attr_value(&attrs, "name") != "go-import" {
                    continue;
                }
                let fields: Vec<&str> = attr_value(&attrs, "content").split_whitespace().collect();
                if fields.len() == 3 || fields.len() == 4 {
                    found.push(MetaImport {
                        prefix: fields[0].to_string(),
                        vcs: fields[1].to_string(),
                        repo_root: fields[2].to_string(),
                        subdir: fields.get(3).map(|s| s.to_string()).unwrap_or_default(),
                    });
                }
            }
            Token::End { name } => {
                if name.eq_ignore_ascii_case("head") {
                    break;
                }
            }
            Token::Other => {}
        }
    }

    let mut ordered = Vec::with_capacity(found.len());
    let mut mod_prefixes: Vec<&str> = Vec::new();
    if mode == ModMode::PreferMod {
        for m in found.iter().filter(|m| m.vcs == "mod") {
            mod_prefixes.push(&m.prefix);
            ordered.push(m.clone());
        }
    }
    for m in &found {
        if m.vcs != "mod" && !mod_prefixes.contains(&m.prefix.as_str()) {
            ordered.push(m.clone());
        }
    }
    Ok(ordered)
}

/// The value of the first attribute whose local name equals `key` ignoring
/// ASCII case, or "" (the go command treats a missing attribute as empty).
fn attr_value<'a>(attrs: &'a [(String, String)], key: &str) -> &'a str {
    attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// Why [`match_go_import`] found nothing usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchError {
    /// No declaration's prefix is a path prefix of the import path; holds
    /// the prefixes that were seen.
    NoMatch(Vec<String>),
    /// Two or more non-`mod` declarations (or two `mod` ones) match.
    Multiple,
}

impl fmt::Display for MatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatchError::NoMatch(seen) if seen.is_empty() => f.write_str("no go-import meta tags"),
            MatchError::NoMatch(seen) => {
                write!(
                    f,
                    "no go-import meta tag matches (saw prefixes {})",
                    seen.join(", ")
                )
            }
            MatchError::Multiple => f.write_str("multiple go-import meta tags match"),
        }
    }
}

/// Picks the declaration whose prefix is a path prefix of `import_path`.
/// Entries must be ordered as [`parse_meta_go_imports`] returns them.
pub fn match_go_import(
    imports: &[MetaImport],
    import_path: &str,
) -> Result<MetaImport, MatchError> {
    let mut chosen: Option<&MetaImport> = None;
    let mut mismatched = Vec::new();
    for m in imports {
        if !has_path_prefix(import_path, &m.prefix) {
            mismatched.push(m.prefix.clone());
            continue;
        }
        if let Some(prev) = chosen {
            // mod entries precede all others, so a mod match settles it.
            if prev.vcs == "mod" && m.vcs != "mod" {
                break;
            }
            return Err(MatchError::Multiple);
        }
        chosen = Some(m);
    }
    chosen.cloned().ok_or(MatchError::NoMatch(mismatched))
}

/// Whether `prefix` is `s` or a leading run of whole `/`-separated elements.
pub(crate) fn has_path_prefix(s: &str, prefix: &str) -> bool {
    if s.len() == prefix.len() {
        return s == prefix;
    }
    if prefix.is_empty() {
        return true;
    }
    if s.len() > prefix.len() {
        let at_boundary = prefix.ends_with('/') || s.as_bytes()[prefix.len()] == b'/';
        return at_boundary && s.starts_with(prefix);
    }
    false
}

enum Token {
    Start {
        name: String,
        attrs: Vec<(String, String)>,
    },
    End {
        name: String,
    },
    Other,
}

struct Tokenizer<'a> {
    data: &'a [u8],
    pos: usize,
    line: usize,
    /// A self-closing element's end half is still owed to the caller.
    pending_end: Option<String>,
}

type Res<T> = Result<T, MetaSyntaxError>;

impl<'a> Tokenizer<'a> {
    fn new(data: &'a [u8]) -> Self {
        Tokenizer {
            data,
            pos: 0,
            line: 1,
            pending_end: None,
        }
    }

    fn fail<T>(&self, problem: impl Into<String>) -> Res<T> {
        Err(MetaSyntaxError {
            line: self.line,
            problem: problem.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn getc(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
        }
        Some(b)
    }

    fn ungetc(&mut self) {
        self.pos -= 1;
        if self.data[self.pos] == b'\n' {
            self.line -= 1;
        }
    }

    fn must(&mut self) -> Res<u8> {
        match self.getc() {
            Some(b) => Ok(b),
            None => self.fail("unexpected end of page"),
        }
    }

    fn space(&mut self) {
        while let Some(b' ' | b'\r' | b'\n' | b'\t') = self.peek() {
            self.getc();
        }
    }

    /// `Ok(None)` at a clean end of input.
    fn next_token(&mut self) -> Res<Option<Token>> {
        if let Some(name) = self.pending_end.take() {
            return Ok(Some(Token::End { name }));
        }
        let Some(b) = self.getc() else {
            return Ok(None);
        };
        if b != b'<' {
            self.ungetc();
            self.text(None, false)?;
            return Ok(Some(Token::Other));
        }
        match self.must()? {
            b'/' => {
                let Some(name) = self.ns_name()? else {
                    return self.fail("expected element name after </");
                };
                self.space();
                if self.must()? != b'>' {
                    return self.fail(format!("unexpected characters after </{name}"));
                }
                Ok(Some(Token::End { name }))
            }
            b'?' => {
                self.processing_instruction()?;
                Ok(Some(Token::Other))
            }
            b'!' => {
                self.bang()?;
                Ok(Some(Token::Other))
            }
            _ => {
                self.ungetc();
                self.start_element().map(Some)
            }
        }
    }

    fn processing_instruction(&mut self) -> Res<()> {
        let Some(target) = self.name()? else {
            return self.fail("expected target name after <?");
        };
        self.space();
        let start = self.pos;
        let mut prev = 0u8;
        loop {
            let b = self.must()?;
            if prev == b'?' && b == b'>' {
                break;
            }
            prev = b;
        }
        if target != "xml" {
            return Ok(());
        }
        let content = String::from_utf8_lossy(&self.data[start..self.pos - 2]).into_owned();
        let version = pi_param("version", &content);
        if !version.is_empty() && version != "1.0" {
            return self.fail(format!("unsupported XML version {version:?}"));
        }
        let encoding = pi_param("encoding", &content);
        if !encoding.is_empty()
            && !encoding.eq_ignore_ascii_case("utf-8")
            && !encoding.eq_ignore_ascii_case("ascii")
        {
            return self.fail(format!("cannot decode page in charset {encoding:?}"));
        }
        Ok(())
    }

    /// After `<!`: a comment, a CDATA section or a directive such as DOCTYPE.
    fn bang(&mut self) -> Res<()> {
        let b = self.must()?;
        if b == b'-' {
            if self.must()? != b'-' {
                return self.fail("<!- is not the start of a comment");
            }
            let (mut b0, mut b1) = (0u8, 0u8);
            loop {
                let b = self.must()?;
                if b0 == b'-' && b1 == b'-' {
                    if b != b'>' {
                        return self.fail("\"--\" inside a comment");
                    }
                    return Ok(());
                }
                b0 = b1;
                b1 = b;
            }
        }
        if b == b'[' {
            for want in b"CDATA[" {
                if self.must()? != *want {
                    return self.fail("invalid <![ sequence");
                }
            }
            self.text(None, true)?;
            return Ok(());
        }
        // A directive: skip to the matching '>', where quoted text does not
        // count and nested <...> (including comments) must balance.
        let mut quote = 0u8;
        let mut depth = 0usize;
        let mut b = self.must()?;
        loop {
            if quote == 0 && b == b'>' && depth == 0 {
                return Ok(());
            }
            let mut next = None;
            if quote != 0 {
                if b == quote {
                    quote = 0;
                }
            } else if b == b'\'' || b == b'"' {
                quote = b;
            } else if b == b'>' {
                depth = depth.saturating_sub(1);
            } else if b == b'<' {
                let mut matched = 0;
                for want in b"!--" {
                    let c = self.must()?;
                    if c != *want {
                        next = Some(c);
                        break;
                    }
                    matched += 1;
                }
                if matched == 3 {
                    let (mut b0, mut b1) = (0u8, 0u8);
                    loop {
                        let c = self.must()?;
                        if b0 == b'-' && b1 == b'-' && c == b'>' {
                            break;
                        }
                        b0 = b1;
                        b1 = c;
                    }
                } else {
                    depth += 1;
                }
            }
            b = match next {
                Some(c) => c,
                None => self.must()?,
            };
        }
    }

    fn start_element(&mut self) -> Res<Token> {
        let Some(name) = self.ns_name()? else {
            return self.fail("expected element name after <");
        };
        let mut attrs = Vec::new();
        loop {
            self.space();
            let b = self.must()?;
            if b == b'/' {
                if self.must()? != b'>' {
                    return self.fail(format!("expected /> in element <{name}>"));
                }
                self.pending_end = Some(name.clone());
                break;
            }
            if b == b'>' {
                break;
            }
            self.ungetc();
            let Some(key) = self.ns_name()? else {
                return self.fail(format!("expected attribute name in element <{name}>"));
            };
            self.space();
            let b = self.must()?;
            let value = if b != b'=' {
                self.ungetc();
                key.clone()
            } else {
                self.space();
                self.attr_value()?
            };
            attrs.push((key, value));
        }
        Ok(Token::Start { name, attrs })
    }

    fn attr_value(&mut self) -> Res<String> {
        let b = self.must()?;
        if b == b'"' || b == b'\'' {
            return self.text(Some(b), false);
        }
        self.ungetc();
        let start = self.pos;
        loop {
            let b = self.must()?;
            if !(b.is_ascii_alphanumeric() || b == b'_' || b == b':' || b == b'-') {
                self.ungetc();
                break;
            }
        }
        Ok(String::from_utf8_lossy(&self.data[start..self.pos]).into_owned())
    }

    /// Character data up to `<` (or the closing `quote`, or `]]>` in CDATA),
    /// with the five predefined entities and numeric references decoded and
    /// unknown entities kept literally.
    fn text(&mut self, quote: Option<u8>, cdata: bool) -> Res<String> {
        let mut out: Vec<u8> = Vec::new();
        let (mut b0, mut b1) = (0u8, 0u8);
        loop {
            let Some(b) = self.getc() else {
                if cdata {
                    return self.fail("unexpected end of page in CDATA section");
                }
                break;
            };
            if quote.is_none() && b0 == b']' && b1 == b']' && b == b'>' {
                if cdata {
                    out.truncate(out.len().saturating_sub(2));
                    break;
                }
                return self.fail("]]> outside a CDATA section");
            }
            if b == b'<' && !cdata {
                if quote.is_some() {
                    return self.fail("unescaped < inside a quoted attribute value");
                }
                self.ungetc();
                break;
            }
            if quote == Some(b) {
                break;
            }
            if b == b'&' && !cdata {
                self.entity(&mut out)?;
                b0 = 0;
                b1 = 0;
                continue;
            }
            if b == b'\r' {
                out.push(b'\n');
            } else if !(b1 == b'\r' && b == b'\n') {
                out.push(b);
            }
            b0 = b1;
            b1 = b;
        }
        let text = match String::from_utf8(out) {
            Ok(t) => t,
            Err(_) => return self.fail("invalid UTF-8"),
        };
        if let Some(c) = text.chars().find(|&c| !is_xml_char(c)) {
            return self.fail(format!("illegal character U+{:04X}", u32::from(c)));
        }
        Ok(text)
    }

    /// After `&`: appends the decoded character, or the raw text when it is
    /// not a reference we know.
    fn entity(&mut self, out: &mut Vec<u8>) -> Res<()> {
        let before = out.len();
        out.push(b'&');
        let mut b = self.must()?;
        let mut decoded: Option<char> = None;
        if b == b'#' {
            out.push(b);
            b = self.must()?;
            let mut radix = 10;
            if b == b'x' {
                radix = 16;
                out.push(b);
                b = self.must()?;
            }
            let digits_start = out.len();
            while b.is_ascii_digit() || (radix == 16 && b.is_ascii_hexdigit()) {
                out.push(b);
                b = self.must()?;
            }
            if b != b';' {
                self.ungetc();
            } else {
                let digits = String::from_utf8_lossy(&out[digits_start..]).into_owned();
                out.push(b';');
                // Surrogate code points become U+FFFD, as a Go rune conversion does.
                decoded = u32::from_str_radix(&digits, radix)
                    .ok()
                    .filter(|&n| n <= 0x10FFFF)
                    .map(|n| char::from_u32(n).unwrap_or('\u{FFFD}'));
            }
        } else {
            self.ungetc();
            let name_start = out.len();
            self.read_name(out)?;
            b = self.must()?;
            if b != b';' {
                self.ungetc();
            } else {
                let name = String::from_utf8_lossy(&out[name_start..]).into_owned();
                out.push(b';');
                decoded = match name.as_str() {
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "amp" => Some('&'),
                    "apos" => Some('\''),
                    "quot" => Some('"'),
                    _ => None,
                };
            }
        }
        if let Some(c) = decoded {
            out.truncate(before);
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        Ok(())
    }

    /// Appends a run of name bytes (ASCII name characters and any non-ASCII
    /// byte) to `out`; returns whether there was at least one.
    fn read_name(&mut self, out: &mut Vec<u8>) -> Res<bool> {
        let b = self.must()?;
        if b.is_ascii() && !is_name_byte(b) {
            self.ungetc();
            return Ok(false);
        }
        out.push(b);
        loop {
            let b = self.must()?;
            if b.is_ascii() && !is_name_byte(b) {
                self.ungetc();
                return Ok(true);
            }
            out.push(b);
        }
    }

    /// A validated XML name, `None` when none starts here.
    fn name(&mut self) -> Res<Option<String>> {
        let mut raw = Vec::new();
        if !self.read_name(&mut raw)? {
            return Ok(None);
        }
        match String::from_utf8(raw) {
            Ok(s) if is_xml_name(&s) => Ok(Some(s)),
            Ok(s) => self.fail(format!("invalid name {s:?}")),
            Err(_) => self.fail("invalid UTF-8 in a name"),
        }
    }

    /// A name, reduced to its local part when it has a single `ns:` prefix.
    fn ns_name(&mut self) -> Res<Option<String>> {
        let Some(s) = self.name()? else {
            return Ok(None);
        };
        if s.matches(':').count() > 1 {
            return Ok(None);
        }
        match s.split_once(':') {
            Some((space, local)) if !space.is_empty() && !local.is_empty() => {
                Ok(Some(local.to_string()))
            }
            _ => Ok(Some(s)),
        }
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.' | b'-')
}

/// XML name rules, with non-ASCII letters approximated by Unicode classes.
fn is_xml_name(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let name_start = |c: char| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (!c.is_ascii() && c.is_alphabetic())
    };
    if !name_start(first) {
        return false;
    }
    chars.all(|c| {
        name_start(c)
            || c.is_ascii_digit()
            || c == '.'
            || c == '-'
            || c == '\u{B7}'
            || (!c.is_ascii() && c.is_alphanumeric())
            || ('\u{300}'..='\u{36F}').contains(&c)
            || ('\u{203F}'..='\u{2040}').contains(&c)
    })
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// The quoted value of `param=` in an `<?xml ...?>` body, or "".
fn pi_param(param: &str, s: &str) -> String {
    let key = format!("{param}=");
    let key = key.as_bytes();
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote = None;
    while i < b.len() {
        let sub = &b[i..];
        let Some(k) = sub.windows(key.len()).position(|w| w == key) else {
            return String::new();
        };
        if k + key.len() >= sub.len() {
            return String::new();
        }
        i += k + key.len() + 1;
        let c = sub[k + key.len()];
        if c == b'\'' || c == b'"' {
            quote = Some(c);
            break;
        }
    }
    let Some(q) = quote else {
        return String::new();
    };
    let rest = &b[i..];
    match rest.iter().position(|&c| c == q) {
        Some(j) => String::from_utf8_lossy(&rest[..j]).into_owned(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mi(prefix: &str, vcs: &str, repo: &str, subdir: &str) -> MetaImport {
        MetaImport {
            prefix: prefix.into(),
            vcs: vcs.into(),
            repo_root: repo.into(),
            subdir: subdir.into(),
        }
    }

    fn parse(page: &str) -> Result<Vec<MetaImport>, MetaSyntaxError> {
        parse_meta_go_imports(page.as_bytes(), ModMode::PreferMod)
    }

    #[test]
    fn basic_shapes() {
        let want = vec![mi("foo/bar", "git", "https://github.com/rsc/foo/bar", "")];
        for page in [
            r#"<meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar">"#,
            r#"<meta content="foo/bar git https://github.com/rsc/foo/bar" name="go-import">"#,
            r#"<meta name='go-import' content='foo/bar git https://github.com/rsc/foo/bar'/>"#,
            "<META NAME=\"go-import\" CONTENT=\"  foo/bar\tgit\n https://github.com/rsc/foo/bar \">",
            r#"<meta name=go-import content="foo/bar git https://github.com/rsc/foo/bar">"#,
            r#"<!DOCTYPE html><html><head><title>t</title><meta charset="utf-8"><meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar"></head><body><meta name="go-import" content="x git https://x"></body>"#,
            r#"<?xml version="1.0" encoding="UTF-8"?><meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar">"#,
            r#"<!-- comment --><meta xx:name="go-import" xx:content="foo/bar git https://github.com/rsc/foo/bar">"#,
            r#"<meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar" async defer>"#,
        ] {
            assert_eq!(parse(page).expect(page), want, "{page}");
        }
    }

    #[test]
    fn stops_at_body_or_head_end() {
        assert_eq!(
            parse(r#"<body><meta name="go-import" content="a git https://a"></body>"#).expect("ok"),
            vec![]
        );
        assert_eq!(
            parse(r#"<head></head><meta name="go-import" content="a git https://a">"#).expect("ok"),
            vec![]
        );
        // A self-closed head ends the scan too.
        assert_eq!(
            parse(r#"<head/><meta name="go-import" content="a git https://a">"#).expect("ok"),
            vec![]
        );
    }

    #[test]
    fn entities_and_whitespace() {
        let got = parse(r#"<meta name="go-import" content="a.com/x&#32;git&#x20;https://a.com/x?a=1&amp;b=2 &unknown;">"#)
            .expect("ok");
        assert_eq!(
            got,
            vec![mi("a.com/x", "git", "https://a.com/x?a=1&b=2", "&unknown;")]
        );
    }

    #[test]
    fn wrong_field_counts_and_names_are_ignored() {
        let page = r#"
            <meta name="go-import" content="a git">
            <meta name="go-import" content="a git https://a sub extra">
            <meta name="Go-Import" content="b git https://b">
            <meta name="go-source" content="c git https://c">
            <meta content="d git https://d">
            <meta name="go-import" content="e hg https://e sub/dir">"#;
        assert_eq!(
            parse(page).expect("ok"),
            vec![mi("e", "hg", "https://e", "sub/dir")]
        );
    }

    #[test]
    fn mod_entries_first_and_shadowing() {
        let page = r#"
            <meta name="go-import" content="example.com/a git https://a">
            <meta name="go-import" content="example.com/b git https://b">
            <meta name="go-import" content="example.com/a mod https://proxy">"#;
        assert_eq!(
            parse(page).expect("ok"),
            vec![
                mi("example.com/a", "mod", "https://proxy", ""),
                mi("example.com/b", "git", "https://b", "")
            ]
        );
        assert_eq!(
            parse_meta_go_imports(page.as_bytes(), ModMode::IgnoreMod).expect("ok"),
            vec![
                mi("example.com/a", "git", "https://a", ""),
                mi("example.com/b", "git", "https://b", "")
            ]
        );
    }

    #[test]
    fn syntax_errors_only_matter_before_a_tag() {
        for page in [
            "<script>if (a < b) {}</script><meta name=\"go-import\" content=\"a git https://a\">",
            "<a href=/x><meta name=\"go-import\" content=\"a git https://a\">",
            "<meta name=\"go-import\" content=\"a <b git https://a\">",
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><meta name=\"go-import\" content=\"a git https://a\">",
            "<?xml version=\"1.1\"?><meta name=\"go-import\" content=\"a git https://a\">",
            "<title>caf\u{e9}</title><!-- a -- b --><meta name=\"go-import\" content=\"a git https://a\">",
            "<meta name=\"go-import\" content=\"a git https://a\"",
            "]]><meta name=\"go-import\" content=\"a git https://a\">",
            "<1meta name=\"go-import\" content=\"a git https://a\">",
            "<meta a:b:c=\"x\" name=\"go-import\" content=\"a git https://a\">",
            "</head x>",
        ] {
            assert!(parse(page).is_err(), "{page}");
        }
        let mut latin1 = b"<title>caf".to_vec();
        latin1.push(0xE9);
        latin1.extend_from_slice(b"</title><meta name=\"go-import\" content=\"a git https://a\">");
        assert!(parse_meta_go_imports(&latin1, ModMode::PreferMod).is_err());

        let after =
            "<meta name=\"go-import\" content=\"a git https://a\"><script>if (a < b)</script>";
        assert_eq!(
            parse(after).expect("ok"),
            vec![mi("a", "git", "https://a", "")]
        );
        assert_eq!(parse("").expect("empty"), vec![]);
        assert_eq!(parse("plain text, no markup").expect("text"), vec![]);
    }

    #[test]
    fn directives_cdata_and_pis() {
        let page = r#"<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN" "x>y" [ <!ENTITY a "b"> <!-- c > --> ]>
            <![CDATA[ <meta name="go-import" content="hidden git https://h"> ]]>
            <?php echo 1; ?>
            <meta name="go-import" content="shown git https://s">"#;
        assert_eq!(
            parse(page).expect("ok"),
            vec![mi("shown", "git", "https://s", "")]
        );
        assert_eq!(
            parse("<?xml version='1.0' encoding='ascii'?><meta name=\"go-import\" content=\"a git https://a\">")
                .expect("ascii ok")
                .len(),
            1
        );
    }

    #[test]
    fn odd_directives_and_references() {
        // Checked against the go toolchain's own tokenizer.
        let tag = "<meta name=\"go-import\" content=\"a git https://a\">";
        assert_eq!(parse(&format!("<!>x>{tag}")).expect("ok").len(), 1);
        assert_eq!(parse(&format!("<!x<y>>{tag}")).expect("ok").len(), 1);
        assert_eq!(
            parse("<meta name=\"go-import\" content=\"a git &#xD800;https://a\">").expect("ok"),
            vec![mi("a", "git", "\u{FFFD}https://a", "")]
        );
        assert!(parse("<meta name=\"go-import\" content=\"a git https://a&#0;\">").is_err());
    }

    #[test]
    fn matching() {
        let imports = vec![
            mi("example.com/a", "git", "https://a", ""),
            mi("example.com/ab", "git", "https://ab", ""),
        ];
        assert_eq!(
            match_go_import(&imports, "example.com/a/x")
                .expect("match")
                .repo_root,
            "https://a"
        );
        assert_eq!(
            match_go_import(&imports, "example.com/ab")
                .expect("match")
                .repo_root,
            "https://ab"
        );
        assert_eq!(
            match_go_import(&imports, "example.com/abc"),
            Err(MatchError::NoMatch(vec![
                "example.com/a".into(),
                "example.com/ab".into()
            ]))
        );
        let dup = vec![
            mi("example.com", "git", "https://1", ""),
            mi("example.com/a", "git", "https://2", ""),
        ];
        assert_eq!(
            match_go_import(&dup, "example.com/a/b"),
            Err(MatchError::Multiple)
        );
        let with_mod = vec![
            mi("example.com", "mod", "https://p", ""),
            mi("example.com/a", "git", "https://2", ""),
        ];
        assert_eq!(
            match_go_import(&with_mod, "example.com/a")
                .expect("mod wins")
                .vcs,
            "mod"
        );
        let two_mods = vec![
            mi("example.com", "mod", "https://p", ""),
            mi("example.com/a", "mod", "https://q", ""),
        ];
        assert_eq!(
            match_go_import(&two_mods, "example.com/a"),
            Err(MatchError::Multiple)
        );
        assert_eq!(match_go_import(&[], "x"), Err(MatchError::NoMatch(vec![])));
    }

    #[test]
    fn path_prefix() {
        assert!(has_path_prefix("a/b", "a"));
        assert!(has_path_prefix("a/b", "a/"));
        assert!(has_path_prefix("a", "a"));
        assert!(has_path_prefix("a", ""));
        assert!(!has_path_prefix("ab", "a"));
        assert!(!has_path_prefix("a", "a/b"));
    }

    #[test]
    fn pi_params() {
        assert_eq!(
            pi_param("encoding", r#"version="1.0" encoding="UTF-8""#),
            "UTF-8"
        );
        assert_eq!(pi_param("encoding", "version='1.0' encoding='x'"), "x");
        assert_eq!(pi_param("encoding", "encoding=utf8"), "");
        assert_eq!(pi_param("encoding", "encoding="), "");
        assert_eq!(pi_param("encoding", "version=\"1.0\""), "");
    }
}
