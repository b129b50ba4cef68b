//! Lax reading of `go.mod` files: the module path and the `go` directive,
//! with the same acceptance rules as the go command's `modfile` package.
//!
//! Only what the zip and fetch code needs is implemented: [`module_path()`]
//! follows the forgiving line scan the go command uses to find a module path,
//! and [`go_version`] runs the real tokenizer and grammar so that it returns
//! `None` exactly when the go command's lax parse would reject the file.

use crate::module;

/// Returns the module path declared by a `go.mod` file, or `None` when no
/// `module` line is found (or its quoted path is malformed or empty).
///
/// Like the go command, this does not parse the whole file: it scans line by
/// line, drops `//` comments, and takes the first line starting with the word
/// `module` followed by white space and something else. A path in double
/// quotes or back quotes is unquoted with Go string-literal rules. Unrelated
/// syntax errors elsewhere in the file are ignored. A path that is not valid
/// UTF-8 is returned with the bad bytes replaced by U+FFFD, so it can never
/// be mistaken for a valid module path.
pub fn module_path(data: &[u8]) -> Option<String> {
    let mut rest = data;
    while !rest.is_empty() {
        let mut line = rest;
        rest = &[];
        if let Some(nl) = line.iter().position(|&b| b == b'\n') {
            rest = &line[nl + 1..];
            line = &line[..nl];
        }
        if let Some(comment) = find(line, b"//") {
            line = &line[..comment];
        }
        let line = trim_space(line);
        let Some(after) = line.strip_prefix(b"module") else {
            continue;
        };
        let path = trim_space(after);
        // "module" must be followed by white space and then something.
        if path.len() == after.len() || path.is_empty() {
            continue;
        }
        let path = if path[0] == b'"' || path[0] == b'`' {
            unquote(path)?
        } else {
            path.to_vec()
        };
        if path.is_empty() {
            return None;
        }
        return Some(String::from_utf8_lossy(&path).into_owned());
    }
    None
}

/// Returns the version named by the `go` directive (such as `1.21` or
/// `1.22.3`), as the go command's lax parser (`modfile.ParseLax`) records it.
///
/// Returns `None` when the file has no top-level `go` line, or when the lax
/// parse fails anywhere in the file: a tokenizer or grammar error, a
/// malformed `module`, `go`, `require` or `ignore` statement, or a repeated
/// `module` or `go` statement. Statements a dependency's go.mod may carry
/// without being checked (`replace`, `exclude`, `toolchain`, unknown verbs,
/// blocks of those) are skipped. A version like `1.21.0-foo` or `v1.21x`,
/// which only the lax rules accept, is reduced to its `major.minor` part.
pub fn go_version(data: &[u8]) -> Option<String> {
    parse_lax(data).ok()?.go
}

/// What the go command's lax parse (`modfile.ParseLax`, the parse it applies
/// to every dependency's go.mod) records of a go.mod file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaxGoMod {
    /// The path of the `module` statement, unquoted; `None` when there is
    /// no `module` statement. Bytes that are not UTF-8 become U+FFFD, so
    /// such a path can never equal a valid module path.
    pub module: Option<String>,
    /// The `go` version as [`go_version`] reports it.
    pub go: Option<String>,
}

/// Why the lax parse rejects a go.mod file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoModError {
    /// The tokenizer or the grammar failed (unterminated string, `/*`,
    /// unbalanced block, unexpected character...).
    #[error("go.mod syntax error")]
    Syntax,
    /// A `module`, `go`, `require` or `ignore` statement is malformed, or a
    /// `module` or `go` statement is repeated.
    #[error("malformed or repeated {verb} statement in go.mod")]
    Directive {
        /// The statement's verb.
        verb: String,
    },
}

/// Parses a go.mod file the way the go command parses a dependency's
/// go.mod: the whole file must tokenize and parse, and the statements a
/// dependency's go.mod is held to (`module`, `go`, `require`, `ignore`)
/// must be well formed; everything else is skipped. A missing `module`
/// statement is not an error here (the callers decide).
pub fn parse_lax(data: &[u8]) -> Result<LaxGoMod, GoModError> {
    let statements = Parser::parse(data).map_err(|SyntaxError| GoModError::Syntax)?;
    let mut parsed = LaxGoMod::default();
    let mut saw_module = false;
    let rejected = |verb: &[u8]| GoModError::Directive {
        verb: String::from_utf8_lossy(verb).into_owned(),
    };
    for statement in &statements {
        match statement {
            Statement::Line(tokens) => {
                let Some((verb, args)) = tokens.split_first() else {
                    return Err(GoModError::Syntax);
                };
                check_lax_directive(verb, args, &mut parsed, &mut saw_module)
                    .map_err(|Rejected| rejected(verb))?;
            }
            Statement::Block { head, lines } => {
                let [verb] = head.as_slice() else {
                    continue;
                };
                if !BLOCK_VERBS.contains(verb) {
                    continue;
                }
                for line in lines {
                    check_lax_directive(verb, line, &mut parsed, &mut saw_module)
                        .map_err(|Rejected| rejected(verb))?;
                }
            }
        }
    }
    Ok(parsed)
}

/// Block heads whose lines the lax parser looks at (the others are skipped
/// without looking inside).
const BLOCK_VERBS: [&[u8]; 8] = [
    b"module", b"godebug", b"require", b"exclude", b"replace", b"retract", b"tool", b"ignore",
];

/// A statement the lax parser rejects.
pub(crate) struct Rejected;

/// Applies the lax-mode checks for one directive, recording the module
/// path and go version.
fn check_lax_directive(
    verb: &[u8],
    args: &[&[u8]],
    parsed: &mut LaxGoMod,
    saw_module: &mut bool,
) -> Result<(), Rejected> {
    match verb {
        b"go" => {
            if parsed.go.is_some() {
                return Err(Rejected);
            }
            let [version] = args else {
                return Err(Rejected);
            };
            let accepted = if is_strict_go_version(version) {
                version
            } else {
                lax_go_version(version).ok_or(Rejected)?
            };
            // Both shapes are pure ASCII.
            parsed.go = Some(String::from_utf8_lossy(accepted).into_owned());
            Ok(())
        }
        b"module" => {
            // A second module line is an error even when the first was bad.
            if std::mem::replace(saw_module, true) {
                return Err(Rejected);
            }
            let [path] = args else {
                return Err(Rejected);
            };
            let path = parse_string(path)?;
            parsed.module = Some(String::from_utf8_lossy(&path).into_owned());
            Ok(())
        }
        b"require" => {
            let [path, version] = args else {
                return Err(Rejected);
            };
            let path = parse_string(path)?;
            let version = parse_version(version)?;
            let path = String::from_utf8_lossy(&path);
            let (_, path_major) = module::split_path_version(&path).ok_or(Rejected)?;
            module::check_path_major(&version, path_major).map_err(|_| Rejected)
        }
        b"ignore" => {
            let [path] = args else {
                return Err(Rejected);
            };
            parse_string(path).map(drop)
        }
        // Retractions are never an error in lax mode; everything else is
        // ignored in a dependency's go.mod.
        _ => Ok(()),
    }
}

/// Interprets a path argument: a double-quoted Go string, or a bare word
/// that must not contain any quote character.
pub(crate) fn parse_string(token: &[u8]) -> Result<Vec<u8>, Rejected> {
    if token.first() == Some(&b'"') {
        unquote(token).ok_or(Rejected)
    } else if token.iter().any(|b| matches!(b, b'"' | b'\'' | b'`')) {
        Err(Rejected)
    } else {
        Ok(token.to_vec())
    }
}

/// Interprets a version argument, which must have a canonical form.
pub(crate) fn parse_version(token: &[u8]) -> Result<String, Rejected> {
    let text = parse_string(token)?;
    let text = std::str::from_utf8(&text).map_err(|_| Rejected)?;
    let canonical = module::canonical_version(text);
    if canonical.is_empty() {
        Err(Rejected)
    } else {
        Ok(canonical)
    }
}

/// Consumes `0` or a decimal number without leading zero at `s[i..]`,
/// returning the index after it.
fn decimal_end(s: &[u8], i: usize) -> Option<usize> {
    match s.get(i) {
        Some(b'0') => Some(i + 1),
        Some(b'1'..=b'9') => {
            let digits = s[i..].iter().take_while(|b| b.is_ascii_digit()).count();
            Some(i + digits)
        }
        _ => None,
    }
}

/// The strict go version syntax: `1.21`, `1.21.3`, `1.21rc1`, `1.21.0rc2`.
pub(crate) fn is_strict_go_version(s: &[u8]) -> bool {
    let Some(major_end) = decimal_end(s, 0) else {
        return false;
    };
    if s[0] == b'0' || s.get(major_end) != Some(&b'.') {
        return false;
    }
    let Some(mut i) = decimal_end(s, major_end + 1) else {
        return false;
    };
    if s.get(i) == Some(&b'.') {
        match decimal_end(s, i + 1) {
            Some(end) => i = end,
            None => return false,
        }
    }
    if i == s.len() {
        return true;
    }
    let letters = s[i..].iter().take_while(|b| b.is_ascii_lowercase()).count();
    let digits = s[i + letters..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    letters > 0 && digits > 0 && i + letters + digits == s.len()
}

/// The forgiving syntax accepted only from dependencies: an optional `v`,
/// `major.minor`, then at least one more character that is not a digit.
/// Returns the `major.minor` part.
fn lax_go_version(s: &[u8]) -> Option<&[u8]> {
    let start = usize::from(s.first() == Some(&b'v'));
    let major_end = decimal_end(s, start)?;
    if s[start] == b'0' || s.get(major_end) != Some(&b'.') {
        return None;
    }
    let minor_end = decimal_end(s, major_end + 1)?;
    let rest = &s[minor_end..];
    let (first, tail) = rest.split_first()?;
    if first.is_ascii_digit() || tail.contains(&b'\n') {
        return None;
    }
    Some(&s[start..minor_end])
}

/// One parsed statement; tokens keep their source text (quotes included).
#[derive(Debug)]
pub(crate) enum Statement<'a> {
    /// A single line `verb args...`.
    Line(Vec<&'a [u8]>),
    /// A parenthesized block `head... ( lines )`.
    Block {
        head: Vec<&'a [u8]>,
        lines: Vec<Vec<&'a [u8]>>,
    },
}

/// Any error the go command's go.mod tokenizer or grammar would report.
#[derive(Debug)]
pub(crate) struct SyntaxError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Eof,
    /// A comment after other tokens on its line; ends a statement.
    EolComment,
    /// A comment alone on its line.
    Comment,
    Ident,
    Str,
    /// A newline or one of `( ) [ ] { } ,`.
    Punct(u8),
}

impl Kind {
    fn ends_line(self) -> bool {
        matches!(self, Kind::Eof | Kind::EolComment | Kind::Punct(b'\n'))
    }
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a [u8],
}

struct Lexer<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }

    fn peek_rune(&self) -> u32 {
        if self.pos >= self.data.len() {
            0
        } else {
            decode_rune(self.rest()).0
        }
    }

    fn advance_rune(&mut self) {
        let (_, width) = decode_rune(self.rest());
        self.pos += width;
    }

    fn token(&self, kind: Kind, start: usize) -> Token<'a> {
        Token {
            kind,
            text: &self.data[start..self.pos],
        }
    }

    fn next_token(&mut self) -> Result<Token<'a>, SyntaxError> {
        while let Some(&c) = self.data.get(self.pos) {
            if matches!(c, b' ' | b'\t' | b'\r') {
                self.pos += 1;
                continue;
            }
            if self.rest().starts_with(b"//") {
                let start = self.pos;
                let line_start = self.data[..start]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |nl| nl + 1);
                let after_code = !trim_space(&self.data[line_start..start]).is_empty();
                self.pos = match self.rest().iter().position(|&b| b == b'\n') {
                    Some(nl) => self.pos + nl + 1,
                    None => self.data.len(),
                };
                let kind = if after_code {
                    Kind::EolComment
                } else {
                    Kind::Comment
                };
                return Ok(self.token(kind, start));
            }
            if self.rest().starts_with(b"/*") {
                return Err(SyntaxError);
            }
            break;
        }

        let start = self.pos;
        let Some(&c) = self.data.get(self.pos) else {
            return Ok(self.token(Kind::Eof, start));
        };
        match c {
            b'\n' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b',' => {
                self.pos += 1;
                return Ok(self.token(Kind::Punct(c), start));
            }
            b'"' | b'`' => {
                self.pos += 1;
                loop {
                    // Byte steps are enough here: the delimiters are ASCII and
                    // never appear inside a multi-byte sequence.
                    let Some(&b) = self.data.get(self.pos) else {
                        return Err(SyntaxError);
                    };
                    if b == b'\n' {
                        return Err(SyntaxError);
                    }
                    self.pos += 1;
                    if b == c {
                        break;
                    }
                    if b == b'\\' && c != b'`' {
                        if self.pos >= self.data.len() {
                            return Err(SyntaxError);
                        }
                        // The escaped character is taken whatever it is,
                        // even a newline.
                        self.advance_rune();
                    }
                }
                return Ok(self.token(Kind::Str, start));
            }
            _ => {}
        }

        if !is_ident(self.peek_rune()) {
            return Err(SyntaxError);
        }
        while is_ident(self.peek_rune()) {
            if self.rest().starts_with(b"//") {
                break;
            }
            if self.rest().starts_with(b"/*") {
                return Err(SyntaxError);
            }
            self.advance_rune();
        }
        Ok(self.token(Kind::Ident, start))
    }
}

pub(crate) struct Parser<'a> {
    lexer: Lexer<'a>,
    next: Token<'a>,
    statements: Vec<Statement<'a>>,
}

impl<'a> Parser<'a> {
    pub(crate) fn parse(data: &'a [u8]) -> Result<Vec<Statement<'a>>, SyntaxError> {
        let mut lexer = Lexer { data, pos: 0 };
        let next = lexer.next_token()?;
        let mut parser = Parser {
            lexer,
            next,
            statements: Vec::new(),
        };
        parser.parse_file()?;
        Ok(parser.statements)
    }

    fn peek(&self) -> Kind {
        self.next.kind
    }

    /// Returns the pending token and scans the one after it, so that a
    /// scanning error anywhere in the file fails the parse.
    fn lex(&mut self) -> Result<Token<'a>, SyntaxError> {
        let token = self.next;
        self.next = self.lexer.next_token()?;
        Ok(token)
    }

    fn parse_file(&mut self) -> Result<(), SyntaxError> {
        loop {
            match self.peek() {
                Kind::Punct(b'\n') | Kind::Comment => {
                    self.lex()?;
                }
                Kind::Eof => return Ok(()),
                _ => self.parse_statement()?,
            }
        }
    }

    fn parse_statement(&mut self) -> Result<(), SyntaxError> {
        let mut tokens = vec![self.lex()?.text];
        loop {
            let token = self.lex()?;
            if token.kind.ends_line() {
                self.statements.push(Statement::Line(tokens));
                return Ok(());
            }
            if token.kind != Kind::Punct(b'(') {
                tokens.push(token.text);
                continue;
            }
            if self.peek().ends_line() {
                let lines = self.parse_block_lines()?;
                self.statements.push(Statement::Block {
                    head: tokens,
                    lines,
                });
                return Ok(());
            }
            if self.peek() == Kind::Punct(b')') {
                let close = self.lex()?;
                if self.peek().ends_line() {
                    self.lex()?;
                    self.statements.push(Statement::Block {
                        head: tokens,
                        lines: Vec::new(),
                    });
                    return Ok(());
                }
                // "( )" inside a line is just two more tokens.
                tokens.push(token.text);
                tokens.push(close.text);
            } else {
                tokens.push(token.text);
            }
        }
    }

    fn parse_block_lines(&mut self) -> Result<Vec<Vec<&'a [u8]>>, SyntaxError> {
        let mut lines = Vec::new();
        loop {
            match self.peek() {
                Kind::EolComment | Kind::Comment | Kind::Punct(b'\n') => {
                    self.lex()?;
                }
                Kind::Eof => return Err(SyntaxError),
                Kind::Punct(b')') => {
                    self.lex()?;
                    if !self.peek().ends_line() {
                        return Err(SyntaxError);
                    }
                    self.lex()?;
                    return Ok(lines);
                }
                _ => {
                    let mut tokens = vec![self.lex()?.text];
                    loop {
                        let token = self.lex()?;
                        if token.kind.ends_line() {
                            break;
                        }
                        tokens.push(token.text);
                    }
                    lines.push(tokens);
                }
            }
        }
    }
}

/// The rune Go's UTF-8 decoder reports for an invalid or truncated sequence.
const RUNE_ERROR: u32 = 0xFFFD;

/// Decodes the first rune the way Go does: an invalid sequence yields
/// U+FFFD with width 1, an empty input width 0.
fn decode_rune(b: &[u8]) -> (u32, usize) {
    match b.first() {
        None => (RUNE_ERROR, 0),
        Some(&c) if c < 0x80 => (u32::from(c), 1),
        Some(_) => {
            let head = &b[..b.len().min(4)];
            match head.utf8_chunks().next() {
                Some(chunk) => match chunk.valid().chars().next() {
                    Some(ch) => (u32::from(ch), ch.len_utf8()),
                    None => (RUNE_ERROR, 1),
                },
                None => (RUNE_ERROR, 1),
            }
        }
    }
}

/// Decodes the last rune the way Go does, from the nearest non-continuation
/// byte; anything that does not end exactly at the end is U+FFFD, width 1.
fn decode_last_rune(b: &[u8]) -> (u32, usize) {
    let Some(&last) = b.last() else {
        return (RUNE_ERROR, 0);
    };
    if last < 0x80 {
        return (u32::from(last), 1);
    }
    let lowest = b.len().saturating_sub(4);
    let mut start = b.len() - 1;
    while start > lowest && (b[start] & 0xC0) == 0x80 {
        start -= 1;
    }
    let (rune, width) = decode_rune(&b[start..]);
    if start + width == b.len() {
        (rune, width)
    } else {
        (RUNE_ERROR, 1)
    }
}

/// Go's `unicode.IsSpace`, which is the Unicode White_Space property.
fn is_space(r: u32) -> bool {
    char::from_u32(r).is_some_and(char::is_whitespace)
}

/// Trims leading and trailing Unicode white space, leaving invalid UTF-8
/// alone as Go's `bytes.TrimSpace` does.
pub(crate) fn trim_space(mut b: &[u8]) -> &[u8] {
    loop {
        let (rune, width) = decode_rune(b);
        if width == 0 || !is_space(rune) {
            break;
        }
        b = &b[width..];
    }
    loop {
        let (rune, width) = decode_last_rune(b);
        if width == 0 || !is_space(rune) {
            break;
        }
        b = &b[..b.len() - width];
    }
    b
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Interprets a double-quoted or back-quoted Go string literal that must
/// span all of `s`. Back-quoted text is taken raw except that carriage
/// returns are dropped. Returns `None` for a malformed literal.
fn unquote(s: &[u8]) -> Option<Vec<u8>> {
    let (&quote, body) = s.split_first()?;
    let close = body.iter().position(|&b| b == quote)?;
    match quote {
        b'`' => {
            if close + 2 != s.len() {
                return None;
            }
            Some(
                body[..close]
                    .iter()
                    .copied()
                    .filter(|&b| b != b'\r')
                    .collect(),
            )
        }
        b'"' => {
            let simple = &body[..close];
            if !simple.contains(&b'\\')
                && !simple.contains(&b'\n')
                && std::str::from_utf8(simple).is_ok()
            {
                return (close + 2 == s.len()).then(|| simple.to_vec());
            }
            let mut out = Vec::with_capacity(body.len());
            let mut rest = body;
            while let Some(&c) = rest.first() {
                if c == b'"' {
                    break;
                }
                if c == b'\n' {
                    return None;
                }
                rest = unquote_char(rest, &mut out)?;
            }
            // The closing quote must be the last byte.
            (rest == b"\"").then_some(out)
        }
        _ => None,
    }
}

/// Decodes one character or escape sequence of a double-quoted literal,
/// appending its bytes to `out` and returning the remaining input.
fn unquote_char<'s>(s: &'s [u8], out: &mut Vec<u8>) -> Option<&'s [u8]> {
    let &c = s.first()?;
    if c >= 0x80 {
        // Invalid UTF-8 becomes U+FFFD, as Go does in this slow path.
        let (rune, width) = decode_rune(s);
        push_rune(out, rune);
        return Some(&s[width..]);
    }
    if c != b'\\' {
        out.push(c);
        return Some(&s[1..]);
    }
    let &escape = s.get(1)?;
    let s = &s[2..];
    let simple = match escape {
        b'a' => Some(0x07),
        b'b' => Some(0x08),
        b'f' => Some(0x0C),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(0x0B),
        b'\\' => Some(b'\\'),
        b'"' => Some(b'"'),
        _ => None,
    };
    if let Some(byte) = simple {
        out.push(byte);
        return Some(s);
    }
    match escape {
        b'x' | b'u' | b'U' => {
            let digits = match escape {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            let hex = s.get(..digits)?;
            let mut value: u32 = 0;
            for &h in hex {
                value = value << 4 | char::from(h).to_digit(16)?;
            }
            if escape == b'x' {
                // A single byte, which need not be valid UTF-8.
                out.push(u8::try_from(value).ok()?);
            } else {
                let ch = char::from_u32(value)?;
                push_rune(out, u32::from(ch));
            }
            Some(&s[digits..])
        }
        b'0'..=b'7' => {
            let more = s.get(..2)?;
            let mut value = u32::from(escape - b'0');
            for &o in more {
                if !(b'0'..=b'7').contains(&o) {
                    return None;
                }
                value = value << 3 | u32::from(o - b'0');
            }
            out.push(u8::try_from(value).ok()?);
            Some(&s[2..])
        }
        _ => None,
    }
}

fn push_rune(out: &mut Vec<u8>, rune: u32) {
    let ch = char::from_u32(rune).unwrap_or(char::REPLACEMENT_CHARACTER);
    let mut buf = [0u8; 4];
    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
}

/// Reports whether a rune may be part of a bare word in go.mod: any printable
/// character (Unicode letters, marks, numbers, punctuation, symbols) other
/// than white space and `( ) [ ] { } ,`.
fn is_ident(r: u32) -> bool {
    if r < 0x80 {
        return (0x21..=0x7E).contains(&r) && !b"()[]{},".contains(&(r as u8));
    }
    IDENT_RANGES
        .binary_search_by(|&(lo, hi)| {
            if hi < r {
                std::cmp::Ordering::Less
            } else if lo > r {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Non-ASCII code points in the Unicode 17.0 general categories L, M, N, P
/// and S (the printable, non-space characters), as inclusive ranges. Go's
/// go.mod tokenizer uses exactly this set for bare words.
#[rustfmt::skip]
const IDENT_RANGES: [(u32, u32); 740] = [
    (0xA1, 0xAC), (0xAE, 0x377), (0x37A, 0x37F), (0x384, 0x38A), (0x38C, 0x38C),
    (0x38E, 0x3A1), (0x3A3, 0x52F), (0x531, 0x556), (0x559, 0x58A), (0x58D, 0x58F),
    (0x591, 0x5C7), (0x5D0, 0x5EA), (0x5EF, 0x5F4), (0x606, 0x61B), (0x61D, 0x6DC),
    (0x6DE, 0x70D), (0x710, 0x74A), (0x74D, 0x7B1), (0x7C0, 0x7FA), (0x7FD, 0x82D),
    (0x830, 0x83E), (0x840, 0x85B), (0x85E, 0x85E), (0x860, 0x86A), (0x870, 0x88F),
    (0x897, 0x8E1), (0x8E3, 0x983), (0x985, 0x98C), (0x98F, 0x990), (0x993, 0x9A8),
    (0x9AA, 0x9B0), (0x9B2, 0x9B2), (0x9B6, 0x9B9), (0x9BC, 0x9C4), (0x9C7, 0x9C8),
    (0x9CB, 0x9CE), (0x9D7, 0x9D7), (0x9DC, 0x9DD), (0x9DF, 0x9E3), (0x9E6, 0x9FE),
    (0xA01, 0xA03), (0xA05, 0xA0A), (0xA0F, 0xA10), (0xA13, 0xA28), (0xA2A, 0xA30),
    (0xA32, 0xA33), (0xA35, 0xA36), (0xA38, 0xA39), (0xA3C, 0xA3C), (0xA3E, 0xA42),
    (0xA47, 0xA48), (0xA4B, 0xA4D), (0xA51, 0xA51), (0xA59, 0xA5C), (0xA5E, 0xA5E),
    (0xA66, 0xA76), (0xA81, 0xA83), (0xA85, 0xA8D), (0xA8F, 0xA91), (0xA93, 0xAA8),
    (0xAAA, 0xAB0), (0xAB2, 0xAB3), (0xAB5, 0xAB9), (0xABC, 0xAC5), (0xAC7, 0xAC9),
    (0xACB, 0xACD), (0xAD0, 0xAD0), (0xAE0, 0xAE3), (0xAE6, 0xAF1), (0xAF9, 0xAFF),
    (0xB01, 0xB03), (0xB05, 0xB0C), (0xB0F, 0xB10), (0xB13, 0xB28), (0xB2A, 0xB30),
    (0xB32, 0xB33), (0xB35, 0xB39), (0xB3C, 0xB44), (0xB47, 0xB48), (0xB4B, 0xB4D),
    (0xB55, 0xB57), (0xB5C, 0xB5D), (0xB5F, 0xB63), (0xB66, 0xB77), (0xB82, 0xB83),
    (0xB85, 0xB8A), (0xB8E, 0xB90), (0xB92, 0xB95), (0xB99, 0xB9A), (0xB9C, 0xB9C),
    (0xB9E, 0xB9F), (0xBA3, 0xBA4), (0xBA8, 0xBAA), (0xBAE, 0xBB9), (0xBBE, 0xBC2),
    (0xBC6, 0xBC8), (0xBCA, 0xBCD), (0xBD0, 0xBD0), (0xBD7, 0xBD7), (0xBE6, 0xBFA),
    (0xC00, 0xC0C), (0xC0E, 0xC10), (0xC12, 0xC28), (0xC2A, 0xC39), (0xC3C, 0xC44),
    (0xC46, 0xC48), (0xC4A, 0xC4D), (0xC55, 0xC56), (0xC58, 0xC5A), (0xC5C, 0xC5D),
    (0xC60, 0xC63), (0xC66, 0xC6F), (0xC77, 0xC8C), (0xC8E, 0xC90), (0xC92, 0xCA8),
    (0xCAA, 0xCB3), (0xCB5, 0xCB9), (0xCBC, 0xCC4), (0xCC6, 0xCC8), (0xCCA, 0xCCD),
    (0xCD5, 0xCD6), (0xCDC, 0xCDE), (0xCE0, 0xCE3), (0xCE6, 0xCEF), (0xCF1, 0xCF3),
    (0xD00, 0xD0C), (0xD0E, 0xD10), (0xD12, 0xD44), (0xD46, 0xD48), (0xD4A, 0xD4F),
    (0xD54, 0xD63), (0xD66, 0xD7F), (0xD81, 0xD83), (0xD85, 0xD96), (0xD9A, 0xDB1),
    (0xDB3, 0xDBB), (0xDBD, 0xDBD), (0xDC0, 0xDC6), (0xDCA, 0xDCA), (0xDCF, 0xDD4),
    (0xDD6, 0xDD6), (0xDD8, 0xDDF), (0xDE6, 0xDEF), (0xDF2, 0xDF4), (0xE01, 0xE3A),
    (0xE3F, 0xE5B), (0xE81, 0xE82), (0xE84, 0xE84), (0xE86, 0xE8A), (0xE8C, 0xEA3),
    (0xEA5, 0xEA5), (0xEA7, 0xEBD), (0xEC0, 0xEC4), (0xEC6, 0xEC6), (0xEC8, 0xECE),
    (0xED0, 0xED9), (0xEDC, 0xEDF), (0xF00, 0xF47), (0xF49, 0xF6C), (0xF71, 0xF97),
    (0xF99, 0xFBC), (0xFBE, 0xFCC), (0xFCE, 0xFDA), (0x1000, 0x10C5), (0x10C7, 0x10C7),
    (0x10CD, 0x10CD), (0x10D0, 0x1248), (0x124A, 0x124D), (0x1250, 0x1256), (0x1258, 0x1258),
    (0x125A, 0x125D), (0x1260, 0x1288), (0x128A, 0x128D), (0x1290, 0x12B0), (0x12B2, 0x12B5),
    (0x12B8, 0x12BE), (0x12C0, 0x12C0), (0x12C2, 0x12C5), (0x12C8, 0x12D6), (0x12D8, 0x1310),
    (0x1312, 0x1315), (0x1318, 0x135A), (0x135D, 0x137C), (0x1380, 0x1399), (0x13A0, 0x13F5),
    (0x13F8, 0x13FD), (0x1400, 0x167F), (0x1681, 0x169C), (0x16A0, 0x16F8), (0x1700, 0x1715),
    (0x171F, 0x1736), (0x1740, 0x1753), (0x1760, 0x176C), (0x176E, 0x1770), (0x1772, 0x1773),
    (0x1780, 0x17DD), (0x17E0, 0x17E9), (0x17F0, 0x17F9), (0x1800, 0x180D), (0x180F, 0x1819),
    (0x1820, 0x1878), (0x1880, 0x18AA), (0x18B0, 0x18F5), (0x1900, 0x191E), (0x1920, 0x192B),
    (0x1930, 0x193B), (0x1940, 0x1940), (0x1944, 0x196D), (0x1970, 0x1974), (0x1980, 0x19AB),
    (0x19B0, 0x19C9), (0x19D0, 0x19DA), (0x19DE, 0x1A1B), (0x1A1E, 0x1A5E), (0x1A60, 0x1A7C),
    (0x1A7F, 0x1A89), (0x1A90, 0x1A99), (0x1AA0, 0x1AAD), (0x1AB0, 0x1ADD), (0x1AE0, 0x1AEB),
    (0x1B00, 0x1B4C), (0x1B4E, 0x1BF3), (0x1BFC, 0x1C37), (0x1C3B, 0x1C49), (0x1C4D, 0x1C8A),
    (0x1C90, 0x1CBA), (0x1CBD, 0x1CC7), (0x1CD0, 0x1CFA), (0x1D00, 0x1F15), (0x1F18, 0x1F1D),
    (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B),
    (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4), (0x1FB6, 0x1FC4), (0x1FC6, 0x1FD3),
    (0x1FD6, 0x1FDB), (0x1FDD, 0x1FEF), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFE), (0x2010, 0x2027),
    (0x2030, 0x205E), (0x2070, 0x2071), (0x2074, 0x208E), (0x2090, 0x209C), (0x20A0, 0x20C1),
    (0x20D0, 0x20F0), (0x2100, 0x218B), (0x2190, 0x2429), (0x2440, 0x244A), (0x2460, 0x2B73),
    (0x2B76, 0x2CF3), (0x2CF9, 0x2D25), (0x2D27, 0x2D27), (0x2D2D, 0x2D2D), (0x2D30, 0x2D67),
    (0x2D6F, 0x2D70), (0x2D7F, 0x2D96), (0x2DA0, 0x2DA6), (0x2DA8, 0x2DAE), (0x2DB0, 0x2DB6),
    (0x2DB8, 0x2DBE), (0x2DC0, 0x2DC6), (0x2DC8, 0x2DCE), (0x2DD0, 0x2DD6), (0x2DD8, 0x2DDE),
    (0x2DE0, 0x2E5D), (0x2E80, 0x2E99), (0x2E9B, 0x2EF3), (0x2F00, 0x2FD5), (0x2FF0, 0x2FFF),
    (0x3001, 0x303F), (0x3041, 0x3096), (0x3099, 0x30FF), (0x3105, 0x312F), (0x3131, 0x318E),
    (0x3190, 0x31E5), (0x31EF, 0x321E), (0x3220, 0xA48C), (0xA490, 0xA4C6), (0xA4D0, 0xA62B),
    (0xA640, 0xA6F7), (0xA700, 0xA7DC), (0xA7F1, 0xA82C), (0xA830, 0xA839), (0xA840, 0xA877),
    (0xA880, 0xA8C5), (0xA8CE, 0xA8D9), (0xA8E0, 0xA953), (0xA95F, 0xA97C), (0xA980, 0xA9CD),
    (0xA9CF, 0xA9D9), (0xA9DE, 0xA9FE), (0xAA00, 0xAA36), (0xAA40, 0xAA4D), (0xAA50, 0xAA59),
    (0xAA5C, 0xAAC2), (0xAADB, 0xAAF6), (0xAB01, 0xAB06), (0xAB09, 0xAB0E), (0xAB11, 0xAB16),
    (0xAB20, 0xAB26), (0xAB28, 0xAB2E), (0xAB30, 0xAB6B), (0xAB70, 0xABED), (0xABF0, 0xABF9),
    (0xAC00, 0xD7A3), (0xD7B0, 0xD7C6), (0xD7CB, 0xD7FB), (0xF900, 0xFA6D), (0xFA70, 0xFAD9),
    (0xFB00, 0xFB06), (0xFB13, 0xFB17), (0xFB1D, 0xFB36), (0xFB38, 0xFB3C), (0xFB3E, 0xFB3E),
    (0xFB40, 0xFB41), (0xFB43, 0xFB44), (0xFB46, 0xFDCF), (0xFDF0, 0xFE19), (0xFE20, 0xFE52),
    (0xFE54, 0xFE66), (0xFE68, 0xFE6B), (0xFE70, 0xFE74), (0xFE76, 0xFEFC), (0xFF01, 0xFFBE),
    (0xFFC2, 0xFFC7), (0xFFCA, 0xFFCF), (0xFFD2, 0xFFD7), (0xFFDA, 0xFFDC), (0xFFE0, 0xFFE6),
    (0xFFE8, 0xFFEE), (0xFFFC, 0xFFFD), (0x10000, 0x1000B), (0x1000D, 0x10026), (0x10028, 0x1003A),
    (0x1003C, 0x1003D), (0x1003F, 0x1004D), (0x10050, 0x1005D), (0x10080, 0x100FA), (0x10100, 0x10102),
    (0x10107, 0x10133), (0x10137, 0x1018E), (0x10190, 0x1019C), (0x101A0, 0x101A0), (0x101D0, 0x101FD),
    (0x10280, 0x1029C), (0x102A0, 0x102D0), (0x102E0, 0x102FB), (0x10300, 0x10323), (0x1032D, 0x1034A),
    (0x10350, 0x1037A), (0x10380, 0x1039D), (0x1039F, 0x103C3), (0x103C8, 0x103D5), (0x10400, 0x1049D),
    (0x104A0, 0x104A9), (0x104B0, 0x104D3), (0x104D8, 0x104FB), (0x10500, 0x10527), (0x10530, 0x10563),
    (0x1056F, 0x1057A), (0x1057C, 0x1058A), (0x1058C, 0x10592), (0x10594, 0x10595), (0x10597, 0x105A1),
    (0x105A3, 0x105B1), (0x105B3, 0x105B9), (0x105BB, 0x105BC), (0x105C0, 0x105F3), (0x10600, 0x10736),
    (0x10740, 0x10755), (0x10760, 0x10767), (0x10780, 0x10785), (0x10787, 0x107B0), (0x107B2, 0x107BA),
    (0x10800, 0x10805), (0x10808, 0x10808), (0x1080A, 0x10835), (0x10837, 0x10838), (0x1083C, 0x1083C),
    (0x1083F, 0x10855), (0x10857, 0x1089E), (0x108A7, 0x108AF), (0x108E0, 0x108F2), (0x108F4, 0x108F5),
    (0x108FB, 0x1091B), (0x1091F, 0x10939), (0x1093F, 0x10959), (0x10980, 0x109B7), (0x109BC, 0x109CF),
    (0x109D2, 0x10A03), (0x10A05, 0x10A06), (0x10A0C, 0x10A13), (0x10A15, 0x10A17), (0x10A19, 0x10A35),
    (0x10A38, 0x10A3A), (0x10A3F, 0x10A48), (0x10A50, 0x10A58), (0x10A60, 0x10A9F), (0x10AC0, 0x10AE6),
    (0x10AEB, 0x10AF6), (0x10B00, 0x10B35), (0x10B39, 0x10B55), (0x10B58, 0x10B72), (0x10B78, 0x10B91),
    (0x10B99, 0x10B9C), (0x10BA9, 0x10BAF), (0x10C00, 0x10C48), (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2),
    (0x10CFA, 0x10D27), (0x10D30, 0x10D39), (0x10D40, 0x10D65), (0x10D69, 0x10D85), (0x10D8E, 0x10D8F),
    (0x10E60, 0x10E7E), (0x10E80, 0x10EA9), (0x10EAB, 0x10EAD), (0x10EB0, 0x10EB1), (0x10EC2, 0x10EC7),
    (0x10ED0, 0x10ED8), (0x10EFA, 0x10F27), (0x10F30, 0x10F59), (0x10F70, 0x10F89), (0x10FB0, 0x10FCB),
    (0x10FE0, 0x10FF6), (0x11000, 0x1104D), (0x11052, 0x11075), (0x1107F, 0x110BC), (0x110BE, 0x110C2),
    (0x110D0, 0x110E8), (0x110F0, 0x110F9), (0x11100, 0x11134), (0x11136, 0x11147), (0x11150, 0x11176),
    (0x11180, 0x111DF), (0x111E1, 0x111F4), (0x11200, 0x11211), (0x11213, 0x11241), (0x11280, 0x11286),
    (0x11288, 0x11288), (0x1128A, 0x1128D), (0x1128F, 0x1129D), (0x1129F, 0x112A9), (0x112B0, 0x112EA),
    (0x112F0, 0x112F9), (0x11300, 0x11303), (0x11305, 0x1130C), (0x1130F, 0x11310), (0x11313, 0x11328),
    (0x1132A, 0x11330), (0x11332, 0x11333), (0x11335, 0x11339), (0x1133B, 0x11344), (0x11347, 0x11348),
    (0x1134B, 0x1134D), (0x11350, 0x11350), (0x11357, 0x11357), (0x1135D, 0x11363), (0x11366, 0x1136C),
    (0x11370, 0x11374), (0x11380, 0x11389), (0x1138B, 0x1138B), (0x1138E, 0x1138E), (0x11390, 0x113B5),
    (0x113B7, 0x113C0), (0x113C2, 0x113C2), (0x113C5, 0x113C5), (0x113C7, 0x113CA), (0x113CC, 0x113D5),
    (0x113D7, 0x113D8), (0x113E1, 0x113E2), (0x11400, 0x1145B), (0x1145D, 0x11461), (0x11480, 0x114C7),
    (0x114D0, 0x114D9), (0x11580, 0x115B5), (0x115B8, 0x115DD), (0x11600, 0x11644), (0x11650, 0x11659),
    (0x11660, 0x1166C), (0x11680, 0x116B9), (0x116C0, 0x116C9), (0x116D0, 0x116E3), (0x11700, 0x1171A),
    (0x1171D, 0x1172B), (0x11730, 0x11746), (0x11800, 0x1183B), (0x118A0, 0x118F2), (0x118FF, 0x11906),
    (0x11909, 0x11909), (0x1190C, 0x11913), (0x11915, 0x11916), (0x11918, 0x11935), (0x11937, 0x11938),
    (0x1193B, 0x11946), (0x11950, 0x11959), (0x119A0, 0x119A7), (0x119AA, 0x119D7), (0x119DA, 0x119E4),
    (0x11A00, 0x11A47), (0x11A50, 0x11AA2), (0x11AB0, 0x11AF8), (0x11B00, 0x11B09), (0x11B60, 0x11B67),
    (0x11BC0, 0x11BE1), (0x11BF0, 0x11BF9), (0x11C00, 0x11C08), (0x11C0A, 0x11C36), (0x11C38, 0x11C45),
    (0x11C50, 0x11C6C), (0x11C70, 0x11C8F), (0x11C92, 0x11CA7), (0x11CA9, 0x11CB6), (0x11D00, 0x11D06),
    (0x11D08, 0x11D09), (0x11D0B, 0x11D36), (0x11D3A, 0x11D3A), (0x11D3C, 0x11D3D), (0x11D3F, 0x11D47),
    (0x11D50, 0x11D59), (0x11D60, 0x11D65), (0x11D67, 0x11D68), (0x11D6A, 0x11D8E), (0x11D90, 0x11D91),
    (0x11D93, 0x11D98), (0x11DA0, 0x11DA9), (0x11DB0, 0x11DDB), (0x11DE0, 0x11DE9), (0x11EE0, 0x11EF8),
    (0x11F00, 0x11F10), (0x11F12, 0x11F3A), (0x11F3E, 0x11F5A), (0x11FB0, 0x11FB0), (0x11FC0, 0x11FF1),
    (0x11FFF, 0x12399), (0x12400, 0x1246E), (0x12470, 0x12474), (0x12480, 0x12543), (0x12F90, 0x12FF2),
    (0x13000, 0x1342F), (0x13440, 0x13455), (0x13460, 0x143FA), (0x14400, 0x14646), (0x16100, 0x16139),
    (0x16800, 0x16A38), (0x16A40, 0x16A5E), (0x16A60, 0x16A69), (0x16A6E, 0x16ABE), (0x16AC0, 0x16AC9),
    (0x16AD0, 0x16AED), (0x16AF0, 0x16AF5), (0x16B00, 0x16B45), (0x16B50, 0x16B59), (0x16B5B, 0x16B61),
    (0x16B63, 0x16B77), (0x16B7D, 0x16B8F), (0x16D40, 0x16D79), (0x16E40, 0x16E9A), (0x16EA0, 0x16EB8),
    (0x16EBB, 0x16ED3), (0x16F00, 0x16F4A), (0x16F4F, 0x16F87), (0x16F8F, 0x16F9F), (0x16FE0, 0x16FE4),
    (0x16FF0, 0x16FF6), (0x17000, 0x18CD5), (0x18CFF, 0x18D1E), (0x18D80, 0x18DF2), (0x1AFF0, 0x1AFF3),
    (0x1AFF5, 0x1AFFB), (0x1AFFD, 0x1AFFE), (0x1B000, 0x1B122), (0x1B132, 0x1B132), (0x1B150, 0x1B152),
    (0x1B155, 0x1B155), (0x1B164, 0x1B167), (0x1B170, 0x1B2FB), (0x1BC00, 0x1BC6A), (0x1BC70, 0x1BC7C),
    (0x1BC80, 0x1BC88), (0x1BC90, 0x1BC99), (0x1BC9C, 0x1BC9F), (0x1CC00, 0x1CCFC), (0x1CD00, 0x1CEB3),
    (0x1CEBA, 0x1CED0), (0x1CEE0, 0x1CEF0), (0x1CF00, 0x1CF2D), (0x1CF30, 0x1CF46), (0x1CF50, 0x1CFC3),
    (0x1D000, 0x1D0F5), (0x1D100, 0x1D126), (0x1D129, 0x1D172), (0x1D17B, 0x1D1EA), (0x1D200, 0x1D245),
    (0x1D2C0, 0x1D2D3), (0x1D2E0, 0x1D2F3), (0x1D300, 0x1D356), (0x1D360, 0x1D378), (0x1D400, 0x1D454),
    (0x1D456, 0x1D49C), (0x1D49E, 0x1D49F), (0x1D4A2, 0x1D4A2), (0x1D4A5, 0x1D4A6), (0x1D4A9, 0x1D4AC),
    (0x1D4AE, 0x1D4B9), (0x1D4BB, 0x1D4BB), (0x1D4BD, 0x1D4C3), (0x1D4C5, 0x1D505), (0x1D507, 0x1D50A),
    (0x1D50D, 0x1D514), (0x1D516, 0x1D51C), (0x1D51E, 0x1D539), (0x1D53B, 0x1D53E), (0x1D540, 0x1D544),
    (0x1D546, 0x1D546), (0x1D54A, 0x1D550), (0x1D552, 0x1D6A5), (0x1D6A8, 0x1D7CB), (0x1D7CE, 0x1DA8B),
    (0x1DA9B, 0x1DA9F), (0x1DAA1, 0x1DAAF), (0x1DF00, 0x1DF1E), (0x1DF25, 0x1DF2A), (0x1E000, 0x1E006),
    (0x1E008, 0x1E018), (0x1E01B, 0x1E021), (0x1E023, 0x1E024), (0x1E026, 0x1E02A), (0x1E030, 0x1E06D),
    (0x1E08F, 0x1E08F), (0x1E100, 0x1E12C), (0x1E130, 0x1E13D), (0x1E140, 0x1E149), (0x1E14E, 0x1E14F),
    (0x1E290, 0x1E2AE), (0x1E2C0, 0x1E2F9), (0x1E2FF, 0x1E2FF), (0x1E4D0, 0x1E4F9), (0x1E5D0, 0x1E5FA),
    (0x1E5FF, 0x1E5FF), (0x1E6C0, 0x1E6DE), (0x1E6E0, 0x1E6F5), (0x1E6FE, 0x1E6FF), (0x1E7E0, 0x1E7E6),
    (0x1E7E8, 0x1E7EB), (0x1E7ED, 0x1E7EE), (0x1E7F0, 0x1E7FE), (0x1E800, 0x1E8C4), (0x1E8C7, 0x1E8D6),
    (0x1E900, 0x1E94B), (0x1E950, 0x1E959), (0x1E95E, 0x1E95F), (0x1EC71, 0x1ECB4), (0x1ED01, 0x1ED3D),
    (0x1EE00, 0x1EE03), (0x1EE05, 0x1EE1F), (0x1EE21, 0x1EE22), (0x1EE24, 0x1EE24), (0x1EE27, 0x1EE27),
    (0x1EE29, 0x1EE32), (0x1EE34, 0x1EE37), (0x1EE39, 0x1EE39), (0x1EE3B, 0x1EE3B), (0x1EE42, 0x1EE42),
    (0x1EE47, 0x1EE47), (0x1EE49, 0x1EE49), (0x1EE4B, 0x1EE4B), (0x1EE4D, 0x1EE4F), (0x1EE51, 0x1EE52),
    (0x1EE54, 0x1EE54), (0x1EE57, 0x1EE57), (0x1EE59, 0x1EE59), (0x1EE5B, 0x1EE5B), (0x1EE5D, 0x1EE5D),
    (0x1EE5F, 0x1EE5F), (0x1EE61, 0x1EE62), (0x1EE64, 0x1EE64), (0x1EE67, 0x1EE6A), (0x1EE6C, 0x1EE72),
    (0x1EE74, 0x1EE77), (0x1EE79, 0x1EE7C), (0x1EE7E, 0x1EE7E), (0x1EE80, 0x1EE89), (0x1EE8B, 0x1EE9B),
    (0x1EEA1, 0x1EEA3), (0x1EEA5, 0x1EEA9), (0x1EEAB, 0x1EEBB), (0x1EEF0, 0x1EEF1), (0x1F000, 0x1F02B),
    (0x1F030, 0x1F093), (0x1F0A0, 0x1F0AE), (0x1F0B1, 0x1F0BF), (0x1F0C1, 0x1F0CF), (0x1F0D1, 0x1F0F5),
    (0x1F100, 0x1F1AD), (0x1F1E6, 0x1F202), (0x1F210, 0x1F23B), (0x1F240, 0x1F248), (0x1F250, 0x1F251),
    (0x1F260, 0x1F265), (0x1F300, 0x1F6D8), (0x1F6DC, 0x1F6EC), (0x1F6F0, 0x1F6FC), (0x1F700, 0x1F7D9),
    (0x1F7E0, 0x1F7EB), (0x1F7F0, 0x1F7F0), (0x1F800, 0x1F80B), (0x1F810, 0x1F847), (0x1F850, 0x1F859),
    (0x1F860, 0x1F887), (0x1F890, 0x1F8AD), (0x1F8B0, 0x1F8BB), (0x1F8C0, 0x1F8C1), (0x1F8D0, 0x1F8D8),
    (0x1F900, 0x1FA57), (0x1FA60, 0x1FA6D), (0x1FA70, 0x1FA7C), (0x1FA80, 0x1FA8A), (0x1FA8E, 0x1FAC6),
    (0x1FAC8, 0x1FAC8), (0x1FACD, 0x1FADC), (0x1FADF, 0x1FAEA), (0x1FAEF, 0x1FAF8), (0x1FB00, 0x1FB92),
    (0x1FB94, 0x1FBFA), (0x20000, 0x2A6DF), (0x2A700, 0x2B81D), (0x2B820, 0x2CEAD), (0x2CEB0, 0x2EBE0),
    (0x2EBF0, 0x2EE5D), (0x2F800, 0x2FA1D), (0x30000, 0x3134A), (0x31350, 0x33479), (0xE0100, 0xE01EF),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lax_reports_the_module_path_and_rejects_what_go_rejects() {
        let parsed = parse_lax(b"// x\nmodule \"example.com/m\" // y\ngo 1.21.0\n").unwrap();
        assert_eq!(parsed.module.as_deref(), Some("example.com/m"));
        assert_eq!(parsed.go.as_deref(), Some("1.21.0"));
        assert_eq!(parse_lax(b"").unwrap(), LaxGoMod::default());
        // Parentheses inside a line are just more arguments.
        assert!(parse_lax(b"module ( example.com/m )\n").is_err());
        assert_eq!(
            parse_lax(b"module (\n\texample.com/b\n)\n")
                .unwrap()
                .module
                .as_deref(),
            Some("example.com/b")
        );
        assert_eq!(parse_lax(b"plain text here"), Ok(LaxGoMod::default()));
        assert_eq!(parse_lax(b"module a\n/* no */\n"), Err(GoModError::Syntax));
        assert_eq!(parse_lax(b"module \"a\n"), Err(GoModError::Syntax));
        assert!(matches!(
            parse_lax(b"module a\nmodule b\n"),
            Err(GoModError::Directive { verb }) if verb == "module"
        ));
        assert!(matches!(
            parse_lax(b"module a b\n"),
            Err(GoModError::Directive { .. })
        ));
        assert!(parse_lax(b"module a\nrequire b v1\n").is_ok());
        assert!(matches!(
            parse_lax(b"module a\nrequire b\n"),
            Err(GoModError::Directive { verb }) if verb == "require"
        ));
    }

    #[test]
    fn module_path_follows_the_line_scan() {
        let cases: [(&str, Option<&str>); 16] = [
            ("module example.com/m\n", Some("example.com/m")),
            (
                "// comment\nmodule   example.com/m // trailing\n",
                Some("example.com/m"),
            ),
            (
                "module \"example.com/quoted\"\n",
                Some("example.com/quoted"),
            ),
            ("module `example.com/raw`\n", Some("example.com/raw")),
            ("module \"example.com/\\u0041\"\n", Some("example.com/A")),
            ("module \"unterminated\n", None),
            ("module \"a\" b\n", None),
            ("module\n", None),
            ("modulex example.com/m\n", None),
            ("go 1.21\n", None),
            ("", None),
            ("module \"\"\n", None),
            (
                "\u{a0}module\u{a0}example.com/nbsp\u{a0}\n",
                Some("example.com/nbsp"),
            ),
            (
                "garbage ( (\nmodule example.com/later\n",
                Some("example.com/later"),
            ),
            (
                "module ( example.com/block )\n",
                Some("( example.com/block )"),
            ),
            ("module `a\r\nb`", None),
        ];
        for (input, want) in cases {
            assert_eq!(module_path(input.as_bytes()).as_deref(), want, "{input:?}");
        }
        assert_eq!(module_path(b"module `a\rb`").as_deref(), Some("ab"));
        assert_eq!(
            module_path(b"module \"\\x41\\101\\n\"").as_deref(),
            Some("AA\n")
        );
    }

    #[test]
    fn go_version_accepts_what_lax_parsing_accepts() {
        let cases: [(&str, Option<&str>); 24] = [
            ("module m\ngo 1.21\n", Some("1.21")),
            ("go 1.21.3", Some("1.21.3")),
            ("go 1.21rc1 // comment\n", Some("1.21rc1")),
            ("go 1.22.0rc2\n", Some("1.22.0rc2")),
            ("module m\n", None),
            ("go 1.21.0-custom\n", Some("1.21")),
            ("go v1.21x\n", Some("1.21")),
            ("go v1.21\n", None),
            ("go 1\n", None),
            ("go 01.21\n", None),
            ("go 1.021\n", None),
            ("go 1.21 1.22\n", None),
            ("go \"1.21\"\n", None),
            ("go 1.21\ngo 1.22\n", None),
            ("go (\n1.21\n)\n", None),
            (
                "require (\n\texample.com/a v1.0.0\n)\ngo 1.20\n",
                Some("1.20"),
            ),
            ("require example.com/a v1.0\ngo 1.20\n", Some("1.20")),
            ("require example.com/a 1.0.0\ngo 1.20\n", None),
            ("require example.com/a/v2 v1.0.0\ngo 1.20\n", None),
            (
                "require example.com/a v2.0.0+incompatible\ngo 1.20\n",
                Some("1.20"),
            ),
            (
                "replace nonsense\nexclude x\ntoolchain bad\nfoo bar\ngo 1.20\n",
                Some("1.20"),
            ),
            ("retract [v1.0.0\ngo 1.20\n", Some("1.20")),
            ("module a\nmodule b\ngo 1.20\n", None),
            ("go 1.20\n/* comment */\n", None),
        ];
        for (input, want) in cases {
            assert_eq!(go_version(input.as_bytes()).as_deref(), want, "{input:?}");
        }
    }

    #[test]
    fn go_version_rejects_syntax_errors() {
        let bad: [&[u8]; 10] = [
            b"require (\n\texample.com/a v1.0.0\n",
            b"require (\n) x\ngo 1.21\n",
            b"go 1.21\nx \"unterminated\n",
            b"go 1.21\nx \"a\\",
            b"go 1.21\nx \x07\n",
            b"go 1.21\n\x0b\n",
            b"go 1.21\nx \xc2\xa0y\n",
            b"go 1.21\nx \xe2\x80\x8b\n",
            b"go 1.21\nignore\n",
            b"go 1.21\nmodule \"a\\q\"\n",
        ];
        for input in bad {
            assert_eq!(
                go_version(input),
                None,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        // Things that look odd but lex fine.
        let good: [&[u8]; 7] = [
            b"go 1.21\nx \xff\xfe\n",
            b"go 1.21\nx \"a\\\nb\"\n",
            b"go 1.21\nx ( ) y\n",
            b"go 1.21\nx (\n)\n",
            b"go 1.21\r\n// c\r\nx y//z\n",
            b"go 1.21\nx \xe6\x97\xa5\xe6\x9c\xac\n",
            b"go 1.21\nignore ./x\nretract v1.0.0 // why\n",
        ];
        for input in good {
            assert_eq!(
                go_version(input).as_deref(),
                Some("1.21"),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn ident_table_is_sorted_and_classifies_samples() {
        assert!(IDENT_RANGES.windows(2).all(|w| w[0].1 < w[1].0));
        assert!(IDENT_RANGES.iter().all(|&(lo, hi)| lo <= hi));
        for c in ['é', 'ß', '日', '€', '\u{FFFD}', '\u{301}'] {
            assert!(is_ident(u32::from(c)), "{c:?}");
        }
        for c in [
            '\u{a0}', '\u{200b}', '\u{2028}', '\u{e000}', '\u{85}', '\u{378}',
        ] {
            assert!(!is_ident(u32::from(c)), "{c:?}");
        }
        assert!(is_ident(u32::from(b'a')) && is_ident(u32::from(b'/')));
        for c in b" ()[]{},\t\n" {
            assert!(!is_ident(u32::from(*c)));
        }
    }

    #[test]
    fn trim_space_handles_unicode_and_invalid_bytes() {
        assert_eq!(trim_space(b" \t x \r\n"), b"x");
        assert_eq!(trim_space("\u{3000}x\u{a0}".as_bytes()), b"x");
        assert_eq!(trim_space(b"\xffx\xff"), b"\xffx\xff");
        assert_eq!(trim_space(b"   "), b"");
    }
}
