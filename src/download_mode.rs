//! What to do when a requested module version is not in storage
//! (Athens' `DownloadMode`): fetch it now, fetch it in the background,
//! send the client elsewhere, or do nothing.
//!
//! The setting is a keyword (`sync`, `async`, `redirect`,
//! `async_redirect`, `none`), or `file:PATH` / `custom:BASE64` naming an
//! HCL document with a top-level `mode`, an optional top-level
//! `downloadURL`, and `download "PATTERN" { mode = "...", downloadURL =
//! "..." }` blocks. Patterns use Go's `path.Match` syntax against a
//! leading part of the module path ([`crate::pathmatch`]); the first block
//! whose pattern matches decides the mode, and the first matching block
//! that names a `downloadURL` decides the redirect target, as in Athens.

use std::path::PathBuf;

use base64::Engine;
use hcl::edit::structure::{BlockLabel, Body, Structure};
use hcl::edit::Span;
use thiserror::Error;

use crate::pathmatch::{check_pattern, matches_path_prefix};

/// Behaviour for a module version missing from storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadMode {
    /// Fetch and store it, then answer.
    Sync,
    /// Answer 404 and fetch it in the background.
    Async,
    /// Answer 404 and do nothing.
    None,
    /// Redirect the client to the download URL.
    Redirect,
    /// Redirect the client and fetch it in the background.
    AsyncRedirect,
}

impl DownloadMode {
    /// Parses one of the five keywords.
    pub fn parse(keyword: &str) -> Option<DownloadMode> {
        Some(match keyword {
            "sync" => DownloadMode::Sync,
            "async" => DownloadMode::Async,
            "none" => DownloadMode::None,
            "redirect" => DownloadMode::Redirect,
            "async_redirect" => DownloadMode::AsyncRedirect,
            _ => return Option::None,
        })
    }

    /// Whether the client is sent to the download URL.
    pub fn redirects(self) -> bool {
        matches!(self, DownloadMode::Redirect | DownloadMode::AsyncRedirect)
    }

    /// Whether the version is fetched in the background.
    pub fn fetches_in_background(self) -> bool {
        matches!(self, DownloadMode::Async | DownloadMode::AsyncRedirect)
    }
}

/// Why the download mode setting is unusable.
#[derive(Debug, Error)]
pub enum DownloadModeError {
    /// Not a keyword, `file:` or `custom:`.
    #[error("DownloadMode {0:?} is not one of sync, async, none, redirect, async_redirect, file:PATH, custom:BASE64")]
    UnknownMode(String),
    /// A redirecting mode without anywhere to redirect to.
    #[error("DownloadMode {mode:?} redirects but no DownloadURL is set")]
    MissingUrl {
        /// The mode.
        mode: String,
    },
    /// The `file:` could not be read.
    #[error("reading download mode file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The `custom:` value is not base64.
    #[error("DownloadMode custom: value is not valid base64: {0}")]
    Base64(String),
    /// The HCL document is malformed or says something unsupported.
    #[error("download mode file {source_name}, line {line}: {reason}")]
    Invalid {
        /// The file path, or `custom:` for an inline document.
        source_name: String,
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// A `download "PATTERN" { ... }` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadRule {
    /// Go `path.Match` pattern, matched against a module path prefix.
    pub pattern: String,
    /// The mode for matching modules.
    pub mode: DownloadMode,
    /// Redirect target for matching modules; empty to fall through.
    pub download_url: String,
}

/// The complete download policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadPolicy {
    /// Mode when no rule matches.
    pub mode: DownloadMode,
    /// Redirect target when no matching rule names one.
    pub download_url: String,
    /// Rules in file order.
    pub rules: Vec<DownloadRule>,
}

impl Default for DownloadPolicy {
    fn default() -> Self {
        DownloadPolicy {
            mode: DownloadMode::Sync,
            download_url: String::new(),
            rules: Vec::new(),
        }
    }
}

impl DownloadPolicy {
    /// Builds the policy from the `DownloadMode` and `DownloadURL`
    /// settings; the URL setting is not used by `file:`/`custom:`
    /// documents, which carry their own.
    pub fn from_setting(mode: &str, download_url: &str) -> Result<Self, DownloadModeError> {
        let policy = if let Some(path) = mode.strip_prefix("file:") {
            let text = std::fs::read_to_string(path).map_err(|source| DownloadModeError::Read {
                path: PathBuf::from(path),
                source,
            })?;
            Self::parse_hcl(&text, path)?
        } else if let Some(encoded) = mode.strip_prefix("custom:") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|e| DownloadModeError::Base64(e.to_string()))?;
            let text = String::from_utf8(bytes)
                .map_err(|e| DownloadModeError::Base64(format!("decoded text: {e}")))?;
            Self::parse_hcl(&text, "custom:")?
        } else {
            let parsed = DownloadMode::parse(mode)
                .ok_or_else(|| DownloadModeError::UnknownMode(mode.to_string()))?;
            DownloadPolicy {
                mode: parsed,
                download_url: download_url.to_string(),
                rules: Vec::new(),
            }
        };
        if policy.mode.redirects() && policy.download_url.is_empty() {
            return Err(DownloadModeError::MissingUrl {
                mode: mode.to_string(),
            });
        }
        Ok(policy)
    }

    /// Parses an HCL download mode document; `source_name` names it in
    /// errors.
    pub fn parse_hcl(text: &str, source_name: &str) -> Result<Self, DownloadModeError> {
        let invalid = |line: usize, reason: String| DownloadModeError::Invalid {
            source_name: source_name.to_string(),
            line,
            reason,
        };
        let line_of = |span: Option<std::ops::Range<usize>>| {
            let offset = span.map(|s| s.start).unwrap_or(0).min(text.len());
            text.as_bytes()[..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1
        };
        let body: Body = hcl::edit::parser::parse_body(text).map_err(|e| {
            invalid(
                e.location().line(),
                format!("column {}: {}", e.location().column(), e.message()),
            )
        })?;
        let mut mode = Option::None;
        let mut download_url = String::new();
        let mut rules = Vec::new();
        for structure in body.iter() {
            match structure {
                Structure::Attribute(attr) => {
                    let line = line_of(attr.span());
                    let value = attr.value.as_str().ok_or_else(|| {
                        invalid(
                            line,
                            format!("{} must be a plain string", attr.key.as_str()),
                        )
                    })?;
                    match attr.key.as_str() {
                        "mode" => mode = Some(parse_mode(value).map_err(|r| invalid(line, r))?),
                        "downloadURL" => download_url = value.to_string(),
                        other => {
                            return Err(invalid(
                                line,
                                format!("unknown attribute {other:?} (expected mode, downloadURL or download blocks)"),
                            ))
                        }
                    }
                }
                Structure::Block(block) => {
                    let line = line_of(block.span());
                    if block.ident.as_str() != "download" {
                        return Err(invalid(
                            line,
                            format!(
                                "unknown block {:?} (expected download)",
                                block.ident.as_str()
                            ),
                        ));
                    }
                    let pattern = match block.labels.as_slice() {
                        [BlockLabel::String(s)] => s.as_str().to_string(),
                        [BlockLabel::Ident(s)] => s.as_str().to_string(),
                        _ => {
                            return Err(invalid(
                                line,
                                "a download block takes exactly one pattern label".into(),
                            ))
                        }
                    };
                    check_pattern(&pattern).map_err(|e| invalid(line, e.to_string()))?;
                    let mut rule_mode = Option::None;
                    let mut rule_url = String::new();
                    for inner in block.body.iter() {
                        let Structure::Attribute(attr) = inner else {
                            return Err(invalid(
                                line_of(inner.span()),
                                format!("download {pattern:?}: nested blocks are not allowed"),
                            ));
                        };
                        let line = line_of(attr.span());
                        let value = attr.value.as_str().ok_or_else(|| {
                            invalid(
                                line,
                                format!("{} must be a plain string", attr.key.as_str()),
                            )
                        })?;
                        match attr.key.as_str() {
                            "mode" => {
                                rule_mode = Some(parse_mode(value).map_err(|r| {
                                    invalid(line, format!("download {pattern:?}: {r}"))
                                })?)
                            }
                            "downloadURL" => rule_url = value.to_string(),
                            other => {
                                return Err(invalid(
                                    line,
                                    format!("download {pattern:?}: unknown attribute {other:?}"),
                                ))
                            }
                        }
                    }
                    let rule_mode = rule_mode.ok_or_else(|| {
                        invalid(line, format!("download {pattern:?}: mode is required"))
                    })?;
                    rules.push((
                        line,
                        DownloadRule {
                            pattern,
                            mode: rule_mode,
                            download_url: rule_url,
                        },
                    ));
                }
            }
        }
        let mode = mode.ok_or_else(|| invalid(1, "the top-level mode is required".into()))?;
        let policy = DownloadPolicy {
            mode,
            download_url,
            rules: rules.iter().map(|(_, rule)| rule.clone()).collect(),
        };
        // Every redirecting rule must end up with somewhere to send clients.
        for (line, rule) in &rules {
            if rule.mode.redirects() && policy.url_for_pattern_rule(rule).is_empty() {
                return Err(invalid(
                    *line,
                    format!(
                        "download {:?}: mode {:?} redirects but neither the block nor the top level sets downloadURL",
                        rule.pattern,
                        mode_keyword(rule.mode)
                    ),
                ));
            }
        }
        if policy.mode.redirects() && policy.download_url.is_empty() {
            return Err(invalid(
                1,
                "the top-level mode redirects but no top-level downloadURL is set".into(),
            ));
        }
        Ok(policy)
    }

    fn url_for_pattern_rule<'a>(&'a self, rule: &'a DownloadRule) -> &'a str {
        if rule.download_url.is_empty() {
            &self.download_url
        } else {
            &rule.download_url
        }
    }

    /// The mode for `module`: the first matching rule's, else the default.
    pub fn mode_for(&self, module: &str) -> DownloadMode {
        self.rules
            .iter()
            .find(|r| matches_path_prefix(&r.pattern, module))
            .map(|r| r.mode)
            .unwrap_or(self.mode)
    }

    /// The redirect base for `module`: the first matching rule that sets a
    /// URL, else the top-level URL.
    pub fn url_for(&self, module: &str) -> &str {
        self.rules
            .iter()
            .find(|r| !r.download_url.is_empty() && matches_path_prefix(&r.pattern, module))
            .map(|r| r.download_url.as_str())
            .unwrap_or(&self.download_url)
    }
}

fn parse_mode(value: &str) -> Result<DownloadMode, String> {
    DownloadMode::parse(value).ok_or_else(|| {
        format!("unknown mode {value:?} (use sync, async, none, redirect or async_redirect)")
    })
}

fn mode_keyword(mode: DownloadMode) -> &'static str {
    match mode {
        DownloadMode::Sync => "sync",
        DownloadMode::Async => "async",
        DownloadMode::None => "none",
        DownloadMode::Redirect => "redirect",
        DownloadMode::AsyncRedirect => "async_redirect",
    }
}

/// `base` with `request_path` appended to its path, for a redirect.
pub fn redirect_location(base: &str, request_path: &str) -> String {
    let (before_query, query) = match base.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        Option::None => (base, Option::None),
    };
    let mut location = before_query.trim_end_matches('/').to_string();
    if !request_path.starts_with('/') {
        location.push('/');
    }
    location.push_str(request_path);
    if let Some(q) = query {
        location.push('?');
        location.push_str(q);
    }
    location
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"
# default: fetch in the background, send clients upstream
mode = "async_redirect"
downloadURL = "https://proxy.golang.org"

download "github.com/gomods/*" {
    mode = "sync"
}

download "golang.org/x/*" {
    mode = "redirect"
    downloadURL = "https://mirror.example"
}

download "*.corp.example" {
    mode = "none"
}
"#;

    #[test]
    fn keywords_parse_and_unknown_ones_are_refused() {
        for (kw, mode) in [
            ("sync", DownloadMode::Sync),
            ("async", DownloadMode::Async),
            ("none", DownloadMode::None),
            ("redirect", DownloadMode::Redirect),
            ("async_redirect", DownloadMode::AsyncRedirect),
        ] {
            let p = DownloadPolicy::from_setting(kw, "https://up.example").unwrap();
            assert_eq!(p.mode_for("example.com/m"), mode);
            assert_eq!(p.url_for("example.com/m"), "https://up.example");
        }
        assert!(matches!(
            DownloadPolicy::from_setting("eager", ""),
            Err(DownloadModeError::UnknownMode(_))
        ));
        assert!(matches!(
            DownloadPolicy::from_setting("redirect", ""),
            Err(DownloadModeError::MissingUrl { .. })
        ));
    }

    #[test]
    fn first_matching_block_wins() {
        let p = DownloadPolicy::parse_hcl(DOC, "test.hcl").unwrap();
        assert_eq!(p.rules.len(), 3);
        assert_eq!(p.mode_for("github.com/gomods/athens"), DownloadMode::Sync);
        assert_eq!(
            p.mode_for("github.com/other/x"),
            DownloadMode::AsyncRedirect
        );
        assert_eq!(p.mode_for("golang.org/x/text"), DownloadMode::Redirect);
        assert_eq!(p.url_for("golang.org/x/text"), "https://mirror.example");
        assert_eq!(
            p.url_for("github.com/gomods/athens"),
            "https://proxy.golang.org"
        );
        assert_eq!(p.mode_for("git.corp.example/team/repo"), DownloadMode::None);
    }

    #[test]
    fn custom_setting_is_base64_hcl_and_file_setting_reads_a_file() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(DOC);
        let p = DownloadPolicy::from_setting(&format!("custom:{encoded}"), "ignored").unwrap();
        assert_eq!(p.mode_for("golang.org/x/text"), DownloadMode::Redirect);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mode.hcl");
        std::fs::write(&path, DOC).unwrap();
        let p = DownloadPolicy::from_setting(&format!("file:{}", path.display()), "").unwrap();
        assert_eq!(p.mode_for("github.com/gomods/athens"), DownloadMode::Sync);
        assert!(matches!(
            DownloadPolicy::from_setting("file:/nonexistent/mode.hcl", ""),
            Err(DownloadModeError::Read { .. })
        ));
        assert!(matches!(
            DownloadPolicy::from_setting("custom:@@@", ""),
            Err(DownloadModeError::Base64(_))
        ));
    }

    fn invalid_line(doc: &str) -> (usize, String) {
        match DownloadPolicy::parse_hcl(doc, "bad.hcl") {
            Err(DownloadModeError::Invalid { line, reason, .. }) => (line, reason),
            other => panic!("expected an invalid-document error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_documents_report_the_line() {
        let (line, _) = invalid_line("mode = \"sync\"\n\ndownload \"a/*\" {\n  mode = \n}\n");
        assert_eq!(line, 4);
        let (line, reason) =
            invalid_line("mode = \"sync\"\ndownload \"a/*\" {\n  mode = \"eager\"\n}\n");
        assert_eq!(line, 3);
        assert!(reason.contains("eager"), "{reason}");
        let (line, reason) = invalid_line("mode = \"sync\"\n\n\nmodes = \"x\"\n");
        assert_eq!(line, 4);
        assert!(reason.contains("modes"), "{reason}");
        let (line, _) = invalid_line("mode = \"sync\"\ndownload \"[\" {\n  mode = \"sync\"\n}\n");
        assert_eq!(line, 2);
        let (line, reason) = invalid_line("downloadURL = \"https://x\"\n");
        assert_eq!(line, 1);
        assert!(reason.contains("mode"), "{reason}");
        let (line, reason) =
            invalid_line("mode = \"sync\"\n\ndownload \"a/*\" {\n  mode = \"redirect\"\n}\n");
        assert_eq!(line, 3);
        assert!(reason.contains("downloadURL"), "{reason}");
        let (line, _) = invalid_line("mode = \"sync\"\ndownload {\n  mode = \"sync\"\n}\n");
        assert_eq!(line, 2);
        let (line, reason) = invalid_line(
            "mode = \"sync\"\ndownload \"a\" {\n  mode = \"sync\"\n  mode = \"none\"\n}\n",
        );
        assert_eq!(line, 4);
        assert!(reason.contains("redefined"), "{reason}");
    }

    #[test]
    fn redirect_location_appends_the_request_path() {
        assert_eq!(
            redirect_location("https://proxy.golang.org", "/m/@v/v1.0.0.info"),
            "https://proxy.golang.org/m/@v/v1.0.0.info"
        );
        assert_eq!(
            redirect_location("https://x.example/base/", "/m/@v/list"),
            "https://x.example/base/m/@v/list"
        );
    }
}
