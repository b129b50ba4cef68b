//! The version query language (Go's `cmd/go/internal/modload/query.go`,
//! for a module that is not yet required): `latest` and `upgrade`,
//! version prefixes, comparisons (`<v`, `<=v`, `>v`, `>=v`), and any other
//! revision (branch, tag, commit hash) looked up as is. `patch` needs a
//! required version to be relative to, so it is refused as the go command
//! refuses it without one.

use modzip::{module, semver};

use super::info;
use super::{legacy_go_mod, Info, ModuleRepo, ResolveError};

/// A predicate on versions, for queries with bounds.
type VersionFilter = Box<dyn Fn(&str) -> bool>;

/// A version comparison operator of a query: its text, which orderings of
/// (candidate, bound) it accepts, whether the lowest match is preferred,
/// and whether a bound that is only a prefix (`v1.2`) is ambiguous.
type Comparison = (&'static str, fn(std::cmp::Ordering) -> bool, bool, bool);

/// The parsed form of a version query (`latest`, `v1.2`, `<v1.3.0`, ...).
struct QueryMatcher {
    prefix: String,
    filter: Option<VersionFilter>,
    prefer_lower: bool,
    may_use_latest: bool,
    prefer_incompatible: bool,
}

/// How a query must be answered.
enum QueryKind {
    /// Stat the query itself (a revision or a complete version).
    Stat,
    /// Pick from the version list.
    Match(QueryMatcher),
}

impl ModuleRepo {
    /// The proxy's `@latest` answer, as `go mod download MODULE@latest`
    /// resolves it: the highest release, else the highest prerelease, else
    /// the default branch's version. Retractions are not applied; the go
    /// command applies them itself.
    pub fn query_latest(&self) -> Result<Info, ResolveError> {
        self.query("latest")
    }

    /// Resolves a version query as the go command does with no module
    /// currently required and no exclusions or retractions: `latest`,
    /// `upgrade`, a complete version, a version prefix (`v1`, `v1.2`), a
    /// comparison (`<v1.2.0`, `>=v1.0.0`, ...), or any revision.
    pub fn query(&self, query: &str) -> Result<Info, ResolveError> {
        match self.parse_query(query)? {
            QueryKind::Stat => match self.stat(query) {
                Ok(info) => Ok(info),
                Err(first) => {
                    // A version with +metadata may name the tag without it.
                    let canonical = module::canonical_version(query);
                    if canonical.is_empty() || canonical == query {
                        return Err(first);
                    }
                    match self.stat(&canonical) {
                        Ok(info) => Ok(info),
                        Err(ResolveError::NotFound(_)) => Err(first),
                        Err(e) => Err(e),
                    }
                }
            },
            QueryKind::Match(matcher) => self.run_query(query, &matcher),
        }
    }

    fn parse_query(&self, query: &str) -> Result<QueryKind, ResolveError> {
        let path_major = module::split_path_version(&self.module_path).map(|(_, m)| m.to_string());
        let matches_major = |v: &str| {
            path_major
                .as_deref()
                .is_some_and(|m| module::match_path_major(v, m))
        };
        let mut matcher = QueryMatcher {
            prefix: String::new(),
            filter: None,
            prefer_lower: false,
            may_use_latest: false,
            prefer_incompatible: false,
        };
        let bad_version = |v: &str| {
            self.invalid(
                query,
                format!(
                    "invalid semantic version {} in range {}",
                    info::go_quote(v),
                    info::go_quote(query)
                ),
            )
        };
        let ambiguous = |v: &str| {
            self.invalid(
                query,
                format!(
                    "ambiguous semantic version {} in range {}",
                    info::go_quote(v),
                    info::go_quote(query)
                ),
            )
        };
        let comparisons: [Comparison; 4] = [
            ("<=", |o| o != std::cmp::Ordering::Greater, false, true),
            ("<", |o| o == std::cmp::Ordering::Less, false, false),
            (">=", |o| o != std::cmp::Ordering::Less, true, false),
            (">", |o| o == std::cmp::Ordering::Greater, true, true),
        ];
        if query == "latest" || query == "upgrade" {
            matcher.may_use_latest = true;
            return Ok(QueryKind::Match(matcher));
        }
        if query == "patch" {
            return Err(self.invalid(
                query,
                format!(
                    "can't query version \"patch\" of module {}: no existing version is required",
                    self.module_path
                ),
            ));
        }
        for (op, accept, prefer_lower, reject_prefix) in comparisons {
            if let Some(v) = query.strip_prefix(op) {
                if !semver::is_valid(v) {
                    return Err(bad_version(v));
                }
                if reject_prefix && is_version_prefix(v) {
                    return Err(ambiguous(v));
                }
                let bound = v.to_string();
                matcher.filter = Some(Box::new(move |mv: &str| {
                    accept(semver::compare(mv, &bound))
                }));
                matcher.prefer_lower = prefer_lower;
                matcher.prefer_incompatible = !matches_major(v);
                return Ok(QueryKind::Match(matcher));
            }
        }
        if semver::is_valid(query) {
            if is_version_prefix(query) {
                matcher.prefix = format!("{query}.");
                let bound = query.to_string();
                matcher.filter = Some(Box::new(move |mv: &str| {
                    semver::compare(mv, &bound) != std::cmp::Ordering::Less
                }));
                matcher.prefer_incompatible = !matches_major(query);
                return Ok(QueryKind::Match(matcher));
            }
            return Ok(QueryKind::Stat);
        }
        Ok(QueryKind::Stat)
    }

    fn run_query(&self, query: &str, matcher: &QueryMatcher) -> Result<Info, ResolveError> {
        let versions = self.versions(&matcher.prefix)?;
        let allows = |v: &str| {
            (matcher.prefix.is_empty() || v.starts_with(&matcher.prefix))
                && matcher.filter.as_ref().is_none_or(|f| f(v))
        };
        let mut need_incompatible = matcher.prefer_incompatible;
        let mut last_compatible: Option<&str> = None;
        let mut releases = Vec::new();
        let mut prereleases = Vec::new();
        for v in &versions {
            if !allows(v) {
                continue;
            }
            if !need_incompatible {
                if !v.ends_with("+incompatible") {
                    last_compatible = Some(v);
                } else if let Some(compatible) = last_compatible {
                    // A real go.mod in the highest compatible version means
                    // +incompatible versions are not wanted, even over a
                    // compatible prerelease.
                    if self.go_mod(compatible)? != legacy_go_mod(&self.module_path) {
                        break;
                    }
                    need_incompatible = true;
                }
            }
            if semver::prerelease(v).is_empty() {
                releases.push(v.as_str());
            } else {
                prereleases.push(v.as_str());
            }
        }
        let pick = |list: &[&str]| -> Option<String> {
            if matcher.prefer_lower {
                list.first()
            } else {
                list.last()
            }
            .map(|v| v.to_string())
        };
        if let Some(v) = pick(&releases).or_else(|| pick(&prereleases)) {
            return self.stat(&v);
        }
        if matcher.may_use_latest {
            match self.latest() {
                // The go command caches this answer as the stat of its own
                // version, so the lookup that follows returns it unchanged.
                Ok(latest) => {
                    if allows(&latest.version) {
                        return Ok(latest);
                    }
                }
                Err(ResolveError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Err(self.not_found(
            query,
            format!("no matching versions for query {}", info::go_quote(query)),
        ))
    }
}

/// Whether a valid semantic version is only a prefix (`v1`, `v1.2`) rather
/// than a complete version.
fn is_version_prefix(v: &str) -> bool {
    !v.contains(['-', '+']) && v.matches('.').count() < 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::testrepo::{module, FakeRepo, T0};

    #[test]
    fn latest_prefers_releases_then_prereleases_then_default_branch() {
        let mut r = FakeRepo::new();
        let c1 = r.commit(&[], T0, &[("go.mod", "module example.com/m\n")]);
        let c2 = r.commit(&[c1], T0 + 1, &[("go.mod", "module example.com/m\n")]);
        r.tag("v1.0.0", c1);
        r.tag("v1.1.0-rc.1", c2);
        r.branch("main", c2);
        let m = module(r, "example.com/m", "example.com/m", None);
        let latest = m.query_latest().unwrap();
        assert_eq!(latest.version, "v1.0.0");
        assert_eq!(latest.origin.reference, "refs/tags/v1.0.0");
        assert_eq!(m.latest().unwrap().version, "v1.1.0-rc.1");
        assert_eq!(m.query("v1").unwrap().version, "v1.0.0");
        assert_eq!(m.query(">v1.0.0").unwrap().version, "v1.1.0-rc.1");
        assert_eq!(m.query("<v1.0.0").unwrap_err().http_status(), 404);

        let mut r = FakeRepo::new();
        let c = r.commit(&[], T0, &[("go.mod", "module example.com/m\n")]);
        r.tag("v0.1.0-alpha", c);
        r.tag("v0.2.0-beta", c);
        r.branch("main", c);
        let m = module(r, "example.com/m", "example.com/m", None);
        assert_eq!(m.query_latest().unwrap().version, "v0.2.0-beta");

        let r = FakeRepo::new();
        let m = module(r, "example.com/m", "example.com/m", None);
        assert!(m.query_latest().unwrap_err().is_not_found());
    }

    #[test]
    fn version_prefixes_are_incomplete_versions() {
        assert!(
            is_version_prefix("v1")
                && is_version_prefix("v1.2")
                && !is_version_prefix("v1.2.3")
                && !is_version_prefix("v1-pre")
        );
    }
}
