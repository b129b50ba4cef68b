//! The module filter file (Athens' `FilterFile`): which modules this proxy
//! serves, refuses, or sends to the global endpoint.
//!
//! One rule per line, `#` starts a comment line:
//!
//! ```text
//! -                                  # default for everything: exclude
//! + github.com/gomods                # include this path and below
//! D golang.org/x                     # send clients to GlobalEndpoint
//! - github.com/gomods/athens v0.1,~v0.2.3,^v1.2.0,<v0.0.9
//! ```
//!
//! A sign alone sets the default. A path applies to itself and every
//! module below it; the deepest applicable rule wins. An optional comma
//! list of version qualifiers limits a rule to matching versions:
//! `v1.2` matches versions starting with `v1.2.` (a qualifier with fewer
//! than two dots gets a trailing dot, and trailing `*` are dropped), `~v1.2.3`
//! means `v1.2.x` at least `v1.2.3`, `^v1.2.3` means `v1.x.y` at least
//! `v1.2.3`, and `<v1.2.3` means at most `v1.2.3`. Requests without a
//! version (lists, `@latest`) see every rule on their path. Without any
//! applicable rule a module is included.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// What the filter says about a module request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterRule {
    /// No opinion; the parent's rule applies.
    Default,
    /// Serve it as usual (`+`).
    Include,
    /// Refuse it with 403 (`-`).
    Exclude,
    /// Redirect the client to the global endpoint (`D`).
    Direct,
}

/// Why the filter file is unusable.
#[derive(Debug, Error)]
pub enum FilterError {
    /// The file could not be read.
    #[error("reading filter file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("filter file {path}, line {line}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Debug, Clone)]
struct Node {
    rule: FilterRule,
    qualifiers: Vec<String>,
    children: HashMap<String, Node>,
}

impl Node {
    fn new(rule: FilterRule) -> Self {
        Node {
            rule,
            qualifiers: Vec::new(),
            children: HashMap::new(),
        }
    }
}

/// A parsed filter file.
#[derive(Debug, Clone)]
pub struct Filter {
    root: Node,
}

fn path_segments(path: &str) -> Vec<&str> {
    let trimmed = path.trim().trim_matches('/');
    if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    }
}

impl Filter {
    /// A filter with only a default rule.
    pub fn new(default: FilterRule) -> Self {
        Filter {
            root: Node::new(default),
        }
    }

    /// Reads and parses the filter file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, FilterError> {
        let text = std::fs::read_to_string(path).map_err(|source| FilterError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses filter file text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, FilterError> {
        let mut filter = Filter::new(FilterRule::Default);
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let invalid = |reason: String| FilterError::Invalid {
                path: path.to_path_buf(),
                line: index + 1,
                reason,
            };
            // Fields are separated by single spaces, as in Athens.
            let fields: Vec<&str> = line.split(' ').collect();
            if fields.len() > 3 {
                return Err(invalid(format!(
                    "{line:?} has more than three space-separated fields (sign, path, versions)"
                )));
            }
            let rule = match fields[0].trim() {
                "+" => FilterRule::Include,
                "-" => FilterRule::Exclude,
                "D" => FilterRule::Direct,
                other => {
                    return Err(invalid(format!(
                        "rule sign {other:?} is not one of +, -, D"
                    )))
                }
            };
            let Some(module_path) = fields.get(1) else {
                filter.root.rule = rule;
                continue;
            };
            let mut qualifiers = Vec::new();
            if let Some(list) = fields.get(2) {
                for item in list.split(',') {
                    let mut q = item.trim_end_matches('*').to_string();
                    if q.is_empty() {
                        return Err(invalid(format!("empty version qualifier in {list:?}")));
                    }
                    if !q.ends_with('.') && q.matches('.').count() < 2 {
                        q.push('.');
                    }
                    qualifiers.push(q);
                }
            }
            filter.add_rule(module_path.trim(), qualifiers, rule);
        }
        Ok(filter)
    }

    /// Sets `rule` (limited to `qualifiers`, if any) for `path` and below;
    /// an empty path sets the default.
    pub fn add_rule(&mut self, path: &str, qualifiers: Vec<String>, rule: FilterRule) {
        let segments = path_segments(path);
        if segments.is_empty() {
            self.root.rule = rule;
            return;
        }
        let mut node = &mut self.root;
        for segment in segments {
            node = node
                .children
                .entry(segment.to_string())
                .or_insert_with(|| Node::new(FilterRule::Default));
        }
        node.rule = rule;
        node.qualifiers = qualifiers;
    }

    /// The rule for `module` at `version` (empty for requests without a
    /// version); never [`FilterRule::Default`].
    pub fn rule(&self, module: &str, version: &str) -> FilterRule {
        let segments = path_segments(module);
        let mut applicable = FilterRule::Default;
        let mut node = &self.root;
        for segment in segments {
            let Some(child) = node.children.get(segment) else {
                break;
            };
            node = child;
            let version_ok = version.is_empty()
                || node.qualifiers.is_empty()
                || node.qualifiers.iter().any(|q| version_matches(version, q));
            if version_ok && node.rule != FilterRule::Default {
                applicable = node.rule;
            }
        }
        let rule = if applicable == FilterRule::Default {
            self.root.rule
        } else {
            applicable
        };
        if rule == FilterRule::Default {
            FilterRule::Include
        } else {
            rule
        }
    }

    /// Whether any rule (or the default) is [`FilterRule::Direct`].
    pub fn uses_direct(&self) -> bool {
        fn walk(node: &Node) -> bool {
            node.rule == FilterRule::Direct || node.children.values().any(walk)
        }
        walk(&self.root)
    }
}

fn numeric_segments(text: &str) -> Option<Vec<i64>> {
    let trimmed = text.trim().trim_matches('.');
    if trimmed.is_empty() {
        return Some(Vec::new());
    }
    trimmed.split('.').map(|s| s.parse::<i64>().ok()).collect()
}

/// Whether `version` satisfies one normalised qualifier.
fn version_matches(version: &str, qualifier: &str) -> bool {
    let q = qualifier.as_bytes();
    if q.len() < 2 || version.is_empty() {
        return false;
    }
    if q[0] == b'v' && q[1].is_ascii_digit() {
        return version.starts_with(qualifier);
    }
    let (Some(v_rest), Some(q_rest)) = (version.get(1..), qualifier.get(2..)) else {
        return false;
    };
    let (Some(v), Some(w)) = (numeric_segments(v_rest), numeric_segments(q_rest)) else {
        return false;
    };
    if v.len() != 3 || w.len() != 3 {
        return false;
    }
    let (v, w) = ((v[0], v[1], v[2]), (w[0], w[1], w[2]));
    match q[0] {
        b'~' => v.0 == w.0 && v.1 == w.1 && v.2 >= w.2,
        b'^' => v.0 == w.0 && (v.1 > w.1 || (v.1 == w.1 && v.2 >= w.2)),
        b'<' => v <= w,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Filter {
        Filter::parse(text, Path::new("filter.conf")).unwrap()
    }

    #[test]
    fn deepest_rule_wins_and_default_applies_elsewhere() {
        let f = parse("# comment\n\n-\n+ github.com/a\n- github.com/a/b\nD golang.org/x\n");
        assert_eq!(f.rule("github.com/a", ""), FilterRule::Include);
        assert_eq!(f.rule("github.com/a/c/d", "v1.0.0"), FilterRule::Include);
        assert_eq!(f.rule("github.com/a/b", "v1.0.0"), FilterRule::Exclude);
        assert_eq!(f.rule("github.com/a/b/sub", ""), FilterRule::Exclude);
        assert_eq!(f.rule("github.com/z", ""), FilterRule::Exclude);
        assert_eq!(f.rule("golang.org/x/text", "v0.3.0"), FilterRule::Direct);
        assert!(f.uses_direct());
        let open = parse("- github.com/secret\n");
        assert_eq!(open.rule("github.com/other", ""), FilterRule::Include);
        assert_eq!(open.rule("github.com/secret/x", ""), FilterRule::Exclude);
        assert!(!open.uses_direct());
    }

    #[test]
    fn version_qualifiers_limit_rules() {
        let f = parse("+\n- github.com/a v1.2,~v2.1.3,^v3.2.0,<v0.5.0\n");
        let excluded = |v: &str| f.rule("github.com/a", v) == FilterRule::Exclude;
        assert!(excluded("v1.2.0"));
        assert!(excluded("v1.2.9-pre"));
        assert!(!excluded("v1.20.0"));
        assert!(excluded("v2.1.3"));
        assert!(excluded("v2.1.9"));
        assert!(!excluded("v2.1.2"));
        assert!(!excluded("v2.2.0"));
        assert!(excluded("v3.2.0"));
        assert!(excluded("v3.9.0"));
        assert!(!excluded("v3.1.9"));
        assert!(!excluded("v4.0.0"));
        assert!(excluded("v0.5.0"));
        assert!(excluded("v0.4.99"));
        assert!(!excluded("v0.5.1"));
        assert!(!excluded("v0.6.0"));
        // Listings see every rule regardless of qualifiers.
        assert!(excluded(""));
        let star = parse("- github.com/a v1.*\n");
        assert_eq!(star.rule("github.com/a", "v1.4.0"), FilterRule::Exclude);
        assert_eq!(star.rule("github.com/a", "v10.0.0"), FilterRule::Include);
    }

    #[test]
    fn malformed_lines_report_their_number() {
        let cases = [
            ("+\n# ok\n* github.com/a\n", 3),
            ("-\n+ github.com/a v1 extra\n", 2),
            ("\n\n\n+ github.com/a ,v1\n", 4),
        ];
        for (text, want) in cases {
            match Filter::parse(text, Path::new("f.conf")) {
                Err(FilterError::Invalid { line, .. }) => assert_eq!(line, want, "{text:?}"),
                other => panic!("{text:?}: expected an invalid-line error, got {other:?}"),
            }
        }
        assert!(matches!(
            Filter::from_file(Path::new("/nonexistent/filter.conf")),
            Err(FilterError::Read { .. })
        ));
    }
}
