//! What an error may say to a client: the message without local file
//! system paths. Storage, cache and fetch errors name the files they failed
//! on (storage root, `GoGetDir`, temporary files, git cache entries), which
//! is right for the log but tells an outside client how the server's disk
//! is laid out. The full error is logged where it is turned into a body.
//!
//! Two passes: directories the configuration names (registered at start,
//! so even relative ones are caught) are replaced wherever they occur, then
//! any remaining absolute path (a `/` that starts a word) or `file:` URL.
//! Module paths and http(s) URLs never start a word with `/`, so they stay.

use std::sync::{Mutex, OnceLock};

/// What a hidden path is replaced with.
const HIDDEN: &str = "<local path>";

fn registered() -> &'static Mutex<Vec<String>> {
    static DIRS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    DIRS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Adds local directories whose names must never reach a client (each as
/// given and as an absolute path). Process-wide: every router in the
/// process hides them.
pub(crate) fn hide_local_dirs<'a>(dirs: impl IntoIterator<Item = &'a str>) {
    let Ok(mut known) = registered().lock() else {
        return;
    };
    for dir in dirs {
        let dir = dir.trim_end_matches('/');
        // A one-character name (".", "a") would blank out ordinary words.
        if dir.len() < 2 {
            continue;
        }
        let mut forms = vec![dir.to_string()];
        if let Ok(abs) = std::path::absolute(dir) {
            forms.push(abs.to_string_lossy().trim_end_matches('/').to_string());
        }
        for form in forms {
            if form.len() >= 2 && !known.contains(&form) {
                known.push(form);
            }
        }
    }
    // Longest first, so a directory inside another is replaced whole.
    known.sort_by_key(|d| std::cmp::Reverse(d.len()));
}

/// `message` with local paths replaced, for an HTTP error body.
pub(crate) fn public_message(message: &str) -> String {
    let mut text = message.to_string();
    if let Ok(known) = registered().lock() {
        for dir in known.iter() {
            if text.contains(dir.as_str()) {
                text = replace_whole(&text, dir);
            }
        }
    }
    hide_absolute_paths(&text)
}

/// `text` with each path that is `dir` or lies inside it (`dir` starting a
/// word, followed by `/` or the end of the path) replaced.
fn replace_whole(text: &str, dir: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(dir) {
        let before = if at > 0 {
            rest[..at].chars().last()
        } else {
            out.chars().last()
        };
        let after = rest[at + dir.len()..].chars().next();
        let whole = starts_word(before) && after.is_none_or(|c| c == '/' || ends_path(c));
        out.push_str(&rest[..at]);
        let tail = &rest[at + dir.len()..];
        if whole {
            // The file inside the directory goes too, as absolute paths do.
            out.push_str(HIDDEN);
            rest = &tail[tail.find(ends_path).unwrap_or(tail.len())..];
        } else {
            out.push_str(dir);
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// Characters after which a `/` starts a path rather than continuing a
/// URL or module path.
fn starts_word(prev: Option<char>) -> bool {
    match prev {
        None => true,
        Some(c) => {
            c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '(' | '[' | '{' | '<' | '=' | ',')
        }
    }
}

/// Characters that end a path token in a message.
fn ends_path(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '`' | ')' | ']' | '}' | '>' | ',' | ';' | ':'
        )
}

fn hide_absolute_paths(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev: Option<char> = None;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let is_file_url = rest
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("file:"));
        let is_path = c == '/' && rest[1..].chars().next().is_some_and(|n| !ends_path(n));
        if starts_word(prev) && (is_file_url || is_path) {
            // A file: URL runs past its own "file:" colon.
            let skip = if is_file_url { 5 } else { 0 };
            let len = rest[skip..]
                .find(ends_path)
                .map_or(rest.len(), |n| n + skip);
            out.push_str(HIDDEN);
            rest = &rest[len..];
            prev = Some('>');
            continue;
        }
        out.push(c);
        prev = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_and_file_urls_are_hidden() {
        let cases = [
            (
                "internal error: storage: reading /var/lib/athens/example.com/m/v1.0.0/go.mod: Permission denied (os error 13)",
                "internal error: storage: reading <local path>: Permission denied (os error 13)",
            ),
            (
                "staging zip: No such file or directory (os error 2) at path \"/tmp/x/.athens-fetch-1.zip\"",
                "staging zip: No such file or directory (os error 2) at path \"<local path>\"",
            ),
            (
                "bad gateway: example.com/m: file:///srv/git/m.git: listing remote refs: not found",
                "bad gateway: example.com/m: <local path>: listing remote refs: not found",
            ),
            ("opening cache (/root/.cache/vcs/ab12)", "opening cache (<local path>)"),
            ("path=/x/y done", "path=<local path> done"),
            ("/only/a/path", "<local path>"),
        ];
        for (input, want) in cases {
            assert_eq!(hide_absolute_paths(input), want, "{input}");
        }
    }

    #[test]
    fn module_paths_urls_and_plain_words_stay() {
        for keep in [
            "not found: example.com/m@v1.0.0: unknown revision v1.0.0",
            "bad gateway: https://proxy.example/a/b/@v/list: 502 Bad Gateway",
            "reading http://127.0.0.1:8080/x?go-get=1: connection refused",
            "a / b and 3/4 and and/or",
            "gateway timeout: example.com/m@v1.0.0: fetch did not finish within 5s",
        ] {
            assert_eq!(hide_absolute_paths(keep), keep);
        }
    }

    #[test]
    fn registered_directories_are_hidden_even_when_relative() {
        hide_local_dirs(["rel-athens-test-root/store", "/opt/athens-test-gogetdir/"]);
        let got = public_message(
            "storage: open rel-athens-test-root/store/example.com/m: denied; cache /opt/athens-test-gogetdir/vcs/x",
        );
        assert_eq!(
            got,
            "storage: open <local path>: denied; cache <local path>"
        );
        assert!(!got.contains("rel-athens-test-root"));
        // Only whole paths: the same letters inside a URL or a longer name
        // stay.
        assert_eq!(
            public_message("https://h/opt/athens-test-gogetdir/x and /opt/athens-test-gogetdirs"),
            "https://h/opt/athens-test-gogetdir/x and <local path>"
        );
        assert_eq!(
            public_message("xrel-athens-test-root/store/y"),
            "xrel-athens-test-root/store/y"
        );
        // Too short to hide safely: left alone rather than blanking words.
        hide_local_dirs(["."]);
        assert_eq!(public_message("a.b"), "a.b");
    }
}
