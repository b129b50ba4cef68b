//! The `.info` answer for a module version and its JSON form.

use time::OffsetDateTime;

/// Where a resolved version came from, as the go command records it in a
/// direct fetch's `.info` file. Empty strings are omitted from the JSON.
///
/// The go command also tracks `TagPrefix`, `TagSum` and `RepoSum` while
/// resolving, but clears them before writing `.info`, and clears `Ref` for
/// pseudo-versions; this type holds exactly what is written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// Version-control system, `git`.
    pub vcs: String,
    /// Repository URL.
    pub url: String,
    /// Directory of the module root inside the repository ("" for the root).
    pub subdir: String,
    /// Full commit hash.
    pub hash: String,
    /// Full ref the version was resolved through (`refs/tags/v1.2.3`,
    /// `refs/heads/main`, `HEAD`); "" when none or for pseudo-versions.
    pub reference: String,
}

/// What `stat`, `latest` and queries answer: a version and its commit time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Canonical module version (tag, `+incompatible` tag or pseudo-version).
    pub version: String,
    /// Commit time, UTC.
    pub time: OffsetDateTime,
    /// Provenance, as written to `.info`.
    pub origin: Origin,
}

impl Info {
    /// The `.info` file contents exactly as the go command writes them for a
    /// direct fetch: compact JSON `{"Version":…,"Time":…,"Origin":{…}}`
    /// without a trailing newline, Go's string escaping (including `<`, `>`
    /// and `&` as `\u003c` and so on) and RFC 3339 time in UTC with the
    /// fractional part only when nonzero.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = String::with_capacity(256);
        out.push_str("{\"Version\":");
        push_json_string(&mut out, &self.version);
        out.push_str(",\"Time\":");
        push_json_string(&mut out, &format_rfc3339(self.time));
        let fields = [
            ("VCS", &self.origin.vcs),
            ("URL", &self.origin.url),
            ("Subdir", &self.origin.subdir),
            ("Hash", &self.origin.hash),
            ("Ref", &self.origin.reference),
        ];
        if fields.iter().any(|(_, value)| !value.is_empty()) {
            out.push_str(",\"Origin\":{");
            let mut first = true;
            for (name, value) in fields {
                if value.is_empty() {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                push_json_string(&mut out, name);
                out.push(':');
                push_json_string(&mut out, value);
            }
            out.push('}');
        }
        out.push('}');
        out.into_bytes()
    }
}

/// Formats `t` in UTC like Go's `time.RFC3339Nano` (as `time.Time`
/// marshals to JSON): trailing zeros of the fraction dropped, no fraction
/// when it is zero, `Z` for UTC.
pub fn format_rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let mut text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let nanos = t.nanosecond();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    text
}

/// Appends `s` as a JSON string the way Go's encoding/json writes it.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            // Go escapes these so JSON can be embedded in HTML and JavaScript.
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Quotes `s` like Go's `strconv.Quote` (used in the go command's messages
/// and in go.mod files). Non-ASCII characters are kept when printable;
/// Rust has no Unicode category table, so "printable" is approximated as
/// neither a control nor a whitespace character.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            ' ' => out.push(' '),
            c if c.is_ascii() && (c.is_ascii_control()) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_ascii() => out.push(c),
            c if c.is_control() || c.is_whitespace() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::resolve::testrepo::T0;

    #[test]
    fn info_json_matches_the_go_command() {
        let info = Info {
            version: "v1.2.3".into(),
            time: OffsetDateTime::from_unix_timestamp(T0).unwrap(),
            origin: Origin {
                vcs: "git".into(),
                url: "https://example.com/r?a=1&b=<2>".into(),
                subdir: String::new(),
                hash: "abc".into(),
                reference: "refs/tags/v1.2.3".into(),
            },
        };
        assert_eq!(
            String::from_utf8(info.to_json()).unwrap(),
            r#"{"Version":"v1.2.3","Time":"2020-01-02T03:04:05Z","Origin":{"VCS":"git","URL":"https://example.com/r?a=1\u0026b=\u003c2\u003e","Hash":"abc","Ref":"refs/tags/v1.2.3"}}"#
        );
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_577_934_245_120_000_000).unwrap();
        assert_eq!(format_rfc3339(t), "2020-01-02T03:04:05.12Z");
        let bare = Info {
            origin: Origin::default(),
            ..info
        };
        assert_eq!(
            String::from_utf8(bare.to_json()).unwrap(),
            r#"{"Version":"v1.2.3","Time":"2020-01-02T03:04:05Z"}"#
        );
    }
}
