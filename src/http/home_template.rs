//! The home page template (`HomeTemplatePath`): the part of Go's
//! html/template that Athens' home page needs, rendered as html/template
//! renders it, and every other construct refused with the line it is on.
//!
//! Athens executes the file with html/template over a map of two strings,
//! `Host` and `NoSumPatterns`. Supported here:
//! - text, `{{/* comments */}}` and the `{{-`/`-}}` trim markers;
//! - `{{ .Field }}`: a field of that map (a missing one is empty, as Go
//!   prints a missing key of a `map[string]string`);
//! - `{{ if .Field }}`, `{{ else if .Field }}`, `{{ else }}`, `{{ end }}`
//!   (a field is true when not empty).
//!
//! html/template escapes by HTML context. Values may stand in element text
//! and in `<title>`/`<textarea>` text, where they are escaped as Go's
//! HTML escaper does; inside an HTML comment they print nothing, as in Go.
//! A value inside a tag, an attribute, `<script>` or `<style>` is refused,
//! and so is inline `<script>` code and a comment in CSS or in an event or
//! style attribute (html/template would rewrite those). HTML comments in
//! the template's text are dropped, and a `<` that starts no tag is
//! written `&lt;`, as html/template does.

use std::fmt;

/// Why a template is refused, with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError {
    line: usize,
    message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for TemplateError {}

/// What the supported subset is, for refusals.
const SUPPORTED: &str = "HomeTemplatePath supports {{ .Field }}, {{ if .Field }}, \
    {{ else if .Field }}, {{ else }}, {{ end }}, {{/* comments */}} and the {{- -}} trim markers";

/// A parsed, checked home page template.
#[derive(Debug, Clone)]
pub(crate) struct HomeTemplate {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    /// Template text as html/template emits it (HTML comments removed).
    Text(String),
    /// A field printed HTML-escaped.
    Field(String),
    /// A field inside an HTML comment: evaluated, never printed.
    Hidden,
    /// `if` with its `else if` branches and the `else` part.
    If {
        branches: Vec<(String, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
}

/// One lexed piece of the template.
#[derive(Debug)]
enum Item {
    Text(String),
    Action { words: Vec<Word>, line: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Word {
    Field(String),
    Keyword(String),
}

fn err(line: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        line,
        message: message.into(),
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Splits the template into text and actions, applying trim markers and
/// dropping template comments, as Go's lexer does.
fn lex(src: &str) -> Result<Vec<Item>, TemplateError> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut offset = 0;
    let mut trim_next_left = false;
    let line_at = |pos: usize| src[..pos].matches('\n').count() + 1;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            let text = if trim_next_left {
                rest.trim_start_matches(is_space)
            } else {
                rest
            };
            items.push(Item::Text(text.to_string()));
            break;
        };
        let line = line_at(offset + open);
        let mut inner = &rest[open + 2..];
        let trim_left = inner.starts_with('-') && inner[1..].starts_with(is_space);
        if trim_left {
            inner = &inner[1..];
        }
        let mut text = &rest[..open];
        if trim_next_left {
            text = text.trim_start_matches(is_space);
        }
        if trim_left {
            text = text.trim_end_matches(is_space);
        }
        items.push(Item::Text(text.to_string()));
        // A comment starts right after `{{` or after the trim marker `{{- `.
        let comment = if trim_left { &inner[1..] } else { inner };
        let (body, after) = if let Some(comment) = comment.strip_prefix("/*") {
            // A comment: `*/` must be followed at once by the closing
            // delimiter (with an optional trim marker).
            let close = comment
                .find("*/")
                .ok_or_else(|| err(line, "unclosed comment"))?;
            let after_comment = &comment[close + 2..];
            let (trim_right, after) = if let Some(a) = after_comment.strip_prefix("}}") {
                (false, a)
            } else if after_comment.starts_with(is_space) && after_comment[1..].starts_with("-}}") {
                (true, &after_comment[4..])
            } else {
                return Err(err(line, "comment ends before closing delimiter"));
            };
            trim_next_left = trim_right;
            offset += rest.len() - after.len();
            rest = after;
            continue;
        } else {
            let close = inner
                .find("}}")
                .ok_or_else(|| err(line, "unclosed action (no closing }})"))?;
            (&inner[..close], &inner[close + 2..])
        };
        let (body, trim_right) = match body.strip_suffix('-') {
            Some(b) if b.ends_with(is_space) => (b, true),
            _ => (body, false),
        };
        items.push(Item::Action {
            words: words(body, line)?,
            line,
        });
        trim_next_left = trim_right;
        offset += rest.len() - after.len();
        rest = after;
    }
    Ok(items)
}

/// The words of one action: `.Field`s and bare identifiers.
fn words(body: &str, line: usize) -> Result<Vec<Word>, TemplateError> {
    let shown = format!("{{{{{body}}}}}");
    let unsupported = || err(line, format!("{shown} is not supported; {SUPPORTED}"));
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut chars = body.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if is_space(c) {
            chars.next();
            continue;
        }
        let (field, start) = if c == '.' { (true, i + 1) } else { (false, i) };
        if field {
            chars.next();
        }
        let mut end = start;
        while let Some(&(j, d)) = chars.peek() {
            if !is_ident(d) {
                break;
            }
            end = j + d.len_utf8();
            chars.next();
        }
        let name = &body[start..end];
        if name.is_empty() || name.starts_with(|d: char| d.is_ascii_digit()) {
            return Err(unsupported());
        }
        // A word must end at a space or the end of the action.
        if chars.peek().is_some_and(|&(_, d)| !is_space(d) && d != '.') {
            return Err(unsupported());
        }
        if chars.peek().is_some_and(|&(_, d)| d == '.') && field {
            return Err(unsupported());
        }
        out.push(if field {
            Word::Field(name.to_string())
        } else {
            Word::Keyword(name.to_string())
        });
    }
    if out.is_empty() {
        return Err(err(line, "missing value for command"));
    }
    // Only the shapes listed in SUPPORTED.
    let kw = |w: &Word, k: &str| matches!(w, Word::Keyword(x) if x == k);
    let field = |w: &Word| matches!(w, Word::Field(_));
    let ok = match out.as_slice() {
        [f] => field(f) || kw(f, "else") || kw(f, "end"),
        [i, f] => kw(i, "if") && field(f),
        [e, i, f] => kw(e, "else") && kw(i, "if") && field(f),
        _ => false,
    };
    if ok {
        Ok(out)
    } else {
        Err(unsupported())
    }
}

/// The tree of `if`s, before HTML contexts are checked.
#[derive(Debug)]
enum Raw {
    Text(String),
    Field(String, usize),
    If {
        branches: Vec<(String, Vec<Raw>)>,
        otherwise: Vec<Raw>,
        line: usize,
    },
}

/// Builds the tree; `items` is consumed up to the `end` closing `open_if`.
fn tree(
    items: &mut std::vec::IntoIter<Item>,
    open_if: Option<usize>,
) -> Result<(Vec<Raw>, Terminator), TemplateError> {
    let mut nodes = Vec::new();
    while let Some(item) = items.next() {
        let (words, line) = match item {
            Item::Text(t) => {
                if !t.is_empty() {
                    nodes.push(Raw::Text(t));
                }
                continue;
            }
            Item::Action { words, line } => (words, line),
        };
        match words.as_slice() {
            [Word::Field(name)] => nodes.push(Raw::Field(name.clone(), line)),
            [Word::Keyword(k), Word::Field(cond)] if k == "if" => {
                let mut branches = Vec::new();
                let mut otherwise = Vec::new();
                let mut cond = cond.clone();
                loop {
                    let (body, end) = tree(items, Some(line))?;
                    match end {
                        Terminator::End => {
                            branches.push((cond, body));
                            break;
                        }
                        Terminator::ElseIf(next) => {
                            branches.push((cond, body));
                            cond = next;
                        }
                        Terminator::Else(else_line) => {
                            branches.push((cond, body));
                            let (body, end) = tree(items, Some(line))?;
                            if !matches!(end, Terminator::End) {
                                return Err(err(else_line, "{{ else }} after {{ else }}"));
                            }
                            otherwise = body;
                            break;
                        }
                    }
                }
                nodes.push(Raw::If {
                    branches,
                    otherwise,
                    line,
                });
            }
            [Word::Keyword(k)] if k == "end" => {
                return match open_if {
                    Some(_) => Ok((nodes, Terminator::End)),
                    None => Err(err(line, "unexpected {{ end }}")),
                };
            }
            [Word::Keyword(k)] if k == "else" => {
                return match open_if {
                    Some(_) => Ok((nodes, Terminator::Else(line))),
                    None => Err(err(line, "unexpected {{ else }}")),
                };
            }
            [Word::Keyword(e), Word::Keyword(_), Word::Field(cond)] if e == "else" => {
                return match open_if {
                    Some(_) => Ok((nodes, Terminator::ElseIf(cond.clone()))),
                    None => Err(err(line, "unexpected {{ else if }}")),
                };
            }
            _ => unreachable!("words() admits only the shapes above"),
        }
    }
    match open_if {
        Some(line) => Err(err(line, "{{ if }} has no {{ end }}")),
        None => Ok((nodes, Terminator::End)),
    }
}

#[derive(Debug)]
enum Terminator {
    End,
    Else(usize),
    ElseIf(String),
}

/// Elements whose content html/template treats apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Element {
    None,
    Script,
    Style,
    Textarea,
    Title,
    Meta,
}

impl Element {
    fn named(name: &str) -> Element {
        match name.to_ascii_lowercase().as_str() {
            "script" => Element::Script,
            "style" => Element::Style,
            "textarea" => Element::Textarea,
            "title" => Element::Title,
            "meta" => Element::Meta,
            _ => Element::None,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Element::Script => "script",
            Element::Style => "style",
            Element::Textarea => "textarea",
            Element::Title => "title",
            Element::Meta => "meta",
            Element::None => "",
        }
    }
}

/// What an attribute's value holds, as far as comments in it matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttrKind {
    Plain,
    Code,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delim {
    Double,
    Single,
    SpaceOrTagEnd,
}

/// The HTML context at a point of the template, as html/template tracks
/// it (only the distinctions the supported subset needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Text,
    Comment,
    Tag(Element),
    AttrName(Element, AttrKind),
    AfterName(Element, AttrKind),
    BeforeValue(Element, AttrKind),
    Value(Element, AttrKind, Delim),
    /// Inside `<script>`, `<style>`, `<title>` or `<textarea>`.
    Content(Element),
}

impl Ctx {
    fn describe(self) -> String {
        match self {
            Ctx::Text => "element text".into(),
            Ctx::Comment => "an HTML comment".into(),
            Ctx::Tag(_) | Ctx::AttrName(..) | Ctx::AfterName(..) | Ctx::BeforeValue(..) => {
                "an HTML tag".into()
            }
            Ctx::Value(..) => "an attribute value".into(),
            Ctx::Content(e) => format!("<{}>", e.tag()),
        }
    }
}

fn attr_kind(name: &str) -> AttrKind {
    let name = name.to_ascii_lowercase();
    let name = match name.strip_prefix("data-") {
        Some(rest) => rest.to_string(),
        None => match name.split_once(':') {
            Some((_, short)) => short.to_string(),
            None => name,
        },
    };
    if name == "style" || name.starts_with("on") {
        AttrKind::Code
    } else {
        AttrKind::Plain
    }
}

fn html_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r')
}

fn eat_space(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && html_space(s[i]) {
        i += 1;
    }
    i
}

/// End of an attribute name starting at `i`; a quote or `<` in it is bad
/// HTML, which html/template refuses.
fn eat_attr_name(s: &[u8], i: usize, line: usize) -> Result<usize, TemplateError> {
    for (j, &b) in s.iter().enumerate().skip(i) {
        match b {
            b' ' | b'\t' | b'\n' | b'\x0c' | b'\r' | b'=' | b'>' => return Ok(j),
            b'\'' | b'"' | b'<' => {
                return Err(err(
                    line,
                    format!("{:?} in an attribute name is not valid HTML", b as char),
                ))
            }
            _ => {}
        }
    }
    Ok(s.len())
}

/// End of a tag name starting at `i` (`i` itself when there is none).
fn eat_tag_name(s: &[u8], i: usize) -> usize {
    if i >= s.len() || !s[i].is_ascii_alphabetic() {
        return i;
    }
    let mut j = i + 1;
    while j < s.len() {
        if s[j].is_ascii_alphanumeric() {
            j += 1;
        } else if matches!(s[j], b':' | b'-') && j + 1 < s.len() && s[j + 1].is_ascii_alphanumeric()
        {
            j += 2;
        } else {
            break;
        }
    }
    j
}

/// Where `</tag` followed by a separator starts in `s`, if anywhere.
fn end_tag(s: &[u8], tag: &str) -> Option<usize> {
    let tag = tag.as_bytes();
    let mut from = 0;
    while let Some(i) = find(&s[from..], b"</").map(|i| i + from) {
        let name = &s[i + 2..];
        if name.len() > tag.len()
            && name[..tag.len()].eq_ignore_ascii_case(tag)
            && matches!(
                name[tag.len()],
                b'>' | b' ' | b'\t' | b'\n' | b'\x0c' | b'/'
            )
        {
            return Some(i);
        }
        from = i + 2;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Text with every `<` that starts no tag written as `&lt;`, as
/// html/template rewrites element and RCDATA text (a doctype is kept).
fn escape_lt_into(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let tail = &rest.as_bytes()[lt..];
        if tail.len() >= 9 && tail[..9].eq_ignore_ascii_case(b"<!DOCTYPE") {
            out.push('<');
        } else {
            out.push_str("&lt;");
        }
        rest = &rest[lt + 1..];
    }
    out.push_str(rest);
}

/// Comment markers html/template would strip from CSS or JavaScript.
fn refuse_code_comments(code: &str, what: &str, line: usize) -> Result<(), TemplateError> {
    if code.contains("/*") || code.contains("//") || code.contains("<!--") {
        return Err(err(
            line,
            format!(
                "comments (or \"//\") in {what} are not supported: html/template rewrites them"
            ),
        ));
    }
    Ok(())
}

/// Runs one text node through the HTML contexts; returns the context
/// after it and the text as html/template emits it.
fn text(mut ctx: Ctx, src: &str, line: usize) -> Result<(Ctx, String), TemplateError> {
    let s = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let (next, used) = match ctx {
            Ctx::Text => {
                let mut k = 0;
                let mut found = None;
                while let Some(lt) = rest[k..].iter().position(|&b| b == b'<').map(|p| p + k) {
                    if lt + 1 == rest.len() {
                        break;
                    }
                    if rest[lt..].starts_with(b"<!--") {
                        found = Some((Ctx::Comment, lt, lt + 4));
                        break;
                    }
                    let mut j = lt + 1;
                    let closing = rest[j] == b'/';
                    if closing {
                        if j + 1 == rest.len() {
                            break;
                        }
                        j += 1;
                    }
                    let end = eat_tag_name(rest, j);
                    if end != j {
                        let element = if closing {
                            Element::None
                        } else {
                            Element::named(&src[i + j..i + end])
                        };
                        found = Some((Ctx::Tag(element), lt, end));
                        break;
                    }
                    k = end.max(lt + 1);
                }
                match found {
                    Some((Ctx::Comment, lt, used)) => {
                        escape_lt_into(&src[i..i + lt], &mut out);
                        (Ctx::Comment, used)
                    }
                    Some((next, lt, used)) => {
                        escape_lt_into(&src[i..i + lt], &mut out);
                        out.push_str(&src[i + lt..i + used]);
                        (next, used)
                    }
                    None => {
                        escape_lt_into(&src[i..], &mut out);
                        (Ctx::Text, rest.len())
                    }
                }
            }
            Ctx::Comment => match find(rest, b"-->") {
                Some(end) => (Ctx::Text, end + 3),
                None => (Ctx::Comment, rest.len()),
            },
            Ctx::Tag(element) => {
                let j = eat_space(rest, 0);
                if j == rest.len() {
                    out.push_str(&src[i..]);
                    (ctx, rest.len())
                } else if rest[j] == b'>' {
                    out.push_str(&src[i..i + j + 1]);
                    let next = match element {
                        Element::None | Element::Meta => Ctx::Text,
                        other => Ctx::Content(other),
                    };
                    (next, j + 1)
                } else {
                    let end = eat_attr_name(rest, j, line)?;
                    if end == j {
                        return Err(err(
                            line,
                            format!(
                                "expected a space, an attribute name or the end of the tag, \
                                 found {:?}",
                                rest[j] as char
                            ),
                        ));
                    }
                    let kind = attr_kind(&src[i + j..i + end]);
                    out.push_str(&src[i..i + end]);
                    let next = if end == rest.len() {
                        Ctx::AttrName(element, kind)
                    } else {
                        Ctx::AfterName(element, kind)
                    };
                    (next, end)
                }
            }
            Ctx::AttrName(element, kind) => {
                let end = eat_attr_name(rest, 0, line)?;
                out.push_str(&src[i..i + end]);
                if end == rest.len() {
                    (ctx, end)
                } else {
                    (Ctx::AfterName(element, kind), end)
                }
            }
            Ctx::AfterName(element, kind) => {
                let j = eat_space(rest, 0);
                if j == rest.len() {
                    out.push_str(&src[i..]);
                    (ctx, j)
                } else if rest[j] != b'=' {
                    out.push_str(&src[i..i + j]);
                    (Ctx::Tag(element), j)
                } else {
                    out.push_str(&src[i..i + j + 1]);
                    (Ctx::BeforeValue(element, kind), j + 1)
                }
            }
            Ctx::BeforeValue(element, kind) => {
                let j = eat_space(rest, 0);
                if j == rest.len() {
                    out.push_str(&src[i..]);
                    (ctx, j)
                } else {
                    let (delim, used) = match rest[j] {
                        b'"' => (Delim::Double, j + 1),
                        b'\'' => (Delim::Single, j + 1),
                        _ => (Delim::SpaceOrTagEnd, j),
                    };
                    out.push_str(&src[i..i + used]);
                    (Ctx::Value(element, kind, delim), used)
                }
            }
            Ctx::Value(element, kind, delim) => {
                let end = match delim {
                    Delim::Double => rest.iter().position(|&b| b == b'"'),
                    Delim::Single => rest.iter().position(|&b| b == b'\''),
                    Delim::SpaceOrTagEnd => rest.iter().position(|&b| html_space(b) || b == b'>'),
                };
                let value_end = end.unwrap_or(rest.len());
                if kind == AttrKind::Code {
                    refuse_code_comments(
                        &src[i..i + value_end],
                        "style and event attributes",
                        line,
                    )?;
                }
                match end {
                    None => {
                        out.push_str(&src[i..]);
                        (ctx, rest.len())
                    }
                    Some(e) => {
                        let used = if delim == Delim::SpaceOrTagEnd {
                            e
                        } else {
                            e + 1
                        };
                        out.push_str(&src[i..i + used]);
                        (Ctx::Tag(element), used)
                    }
                }
            }
            Ctx::Content(element) => {
                let end = end_tag(rest, element.tag());
                let content = &src[i..i + end.unwrap_or(rest.len())];
                match element {
                    Element::Script if !content.trim().is_empty() => {
                        return Err(err(
                            line,
                            "inline <script> code is not supported (html/template rewrites \
                             it); load scripts with <script src=...></script>",
                        ))
                    }
                    Element::Style => refuse_code_comments(content, "<style>", line)?,
                    _ => {}
                }
                if matches!(element, Element::Title | Element::Textarea) {
                    escape_lt_into(content, &mut out);
                } else {
                    out.push_str(content);
                }
                match end {
                    Some(e) => (Ctx::Text, e),
                    None => (ctx, rest.len()),
                }
            }
        };
        ctx = next;
        i += used;
    }
    Ok((ctx, out))
}

/// Checks the HTML contexts of `nodes` from `ctx`; returns the context at
/// their end and the nodes to render.
fn check(
    nodes: Vec<Raw>,
    mut ctx: Ctx,
    line: &mut usize,
) -> Result<(Ctx, Vec<Node>), TemplateError> {
    let mut out = Vec::new();
    for node in nodes {
        match node {
            Raw::Text(t) => {
                let (next, emitted) = text(ctx, &t, *line)?;
                *line += t.matches('\n').count();
                ctx = next;
                if !emitted.is_empty() {
                    out.push(Node::Text(emitted));
                }
            }
            Raw::Field(name, at) => {
                *line = at;
                out.push(match ctx {
                    Ctx::Text | Ctx::Content(Element::Title | Element::Textarea) => {
                        Node::Field(name)
                    }
                    Ctx::Comment => Node::Hidden,
                    other => {
                        return Err(err(
                            at,
                            format!(
                                "{{{{ .{name} }}}} inside {} is not supported; values may \
                                 only stand in element text (and <title>/<textarea> text)",
                                other.describe()
                            ),
                        ))
                    }
                });
            }
            Raw::If {
                branches,
                otherwise,
                line: at,
            } => {
                *line = at;
                let mut ends = Vec::new();
                let mut checked = Vec::new();
                for (cond, body) in branches {
                    let (end, body) = check(body, ctx, line)?;
                    ends.push(end);
                    checked.push((cond, body));
                }
                let (end, otherwise) = check(otherwise, ctx, line)?;
                ends.push(end);
                if ends.iter().any(|e| *e != ends[0]) {
                    return Err(err(
                        at,
                        "the branches of this {{ if }} end in different HTML contexts \
                         (one inside a tag or comment, another not)",
                    ));
                }
                ctx = ends[0];
                out.push(Node::If {
                    branches: checked,
                    otherwise,
                });
            }
        }
    }
    Ok((ctx, out))
}

impl HomeTemplate {
    /// Parses and checks `src`; any construct outside the supported subset
    /// is an error naming its line.
    pub(crate) fn parse(src: &str) -> Result<HomeTemplate, TemplateError> {
        let items = lex(src)?;
        let (raw, _) = tree(&mut items.into_iter(), None)?;
        let mut line = 1;
        let (end, nodes) = check(raw, Ctx::Text, &mut line)?;
        if end != Ctx::Text {
            return Err(err(
                src.matches('\n').count() + 1,
                format!(
                    "the template ends inside {}; html/template requires it to end in \
                     element text",
                    end.describe()
                ),
            ));
        }
        Ok(HomeTemplate { nodes })
    }

    /// The page for the data map `fields` (Athens': `Host`,
    /// `NoSumPatterns`); fields not in it are empty.
    pub(crate) fn render(&self, fields: &[(&str, &str)]) -> String {
        let mut out = String::new();
        render(&self.nodes, fields, &mut out);
        out
    }
}

fn value<'a>(fields: &[(&str, &'a str)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| *v)
        .unwrap_or("")
}

fn render(nodes: &[Node], fields: &[(&str, &str)], out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Field(name) => html_escape_into(value(fields, name), out),
            Node::Hidden => {}
            Node::If {
                branches,
                otherwise,
            } => {
                let taken = branches
                    .iter()
                    .find(|(cond, _)| !value(fields, cond).is_empty())
                    .map(|(_, body)| body)
                    .unwrap_or(otherwise);
                render(taken, fields, out);
            }
        }
    }
}

/// html/template's escaper for element and RCDATA text.
fn html_escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '+' => out.push_str("&#43;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
#[path = "home_template_tests.rs"]
mod tests;
