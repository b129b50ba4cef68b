//! Athens' matching of module paths against path patterns (download mode
//! rules, `NoSumPatterns`): a pattern with N slashes is matched, with Go's
//! `path.Match`, against the first N+1 path elements of the module path.
//! The `path.Match` rules themselves live in [`modzip::module`].

pub use modzip::module::check_pattern;
use modzip::module::{path_match, prefix_for_pattern};

/// Whether a leading part of `target` with as many path elements as
/// `pattern` has matches it: `example.com/*` matches
/// `example.com/a/b/c`. A malformed pattern matches nothing.
pub fn matches_path_prefix(pattern: &str, target: &str) -> bool {
    prefix_for_pattern(pattern, target)
        .is_some_and(|prefix| path_match(pattern, prefix).unwrap_or(false))
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
