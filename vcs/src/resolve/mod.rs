//! The go command's rules for turning a repository into module versions.
//!
//! A [`ModuleRepo`] is one module path served from one repository (possibly
//! from a subdirectory, possibly at a major version `/vN` or `.vN`). It
//! answers the module proxy's questions — `list`, `.info`, `@latest`,
//! `.mod`, `.zip` — from tags, commits and files of a [`CodeRepo`],
//! following `cmd/go/internal/modfetch/coderepo.go` and the query rules of
//! `cmd/go/internal/modload/query.go`:
//!
//! - versions are the module's canonical semver tags (with the directory
//!   prefix for modules in subdirectories), plus `+incompatible` for v2+
//!   tags of unsuffixed modules without go.mod;
//! - any other revision becomes a pseudo-version based on the highest
//!   reachable tag;
//! - go.mod is read from the module directory (or `vN/` for the major
//!   subdirectory layout), or synthesized as `module PATH` when absent;
//! - zips take the module directory's files, plus the repository root's
//!   LICENSE for modules in subdirectories that lack their own.
//!
//! Everything is synchronous; async callers use `spawn_blocking`.

mod error;
mod info;
mod retract;
#[cfg(test)]
mod tests;

pub use error::{ResolveError, VersionProblem};
pub use info::{format_rfc3339, Info, Origin};

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::sync::Arc;

use modzip::{module, pseudo, semver};

use crate::codehost::{CodeError, CodeRepo, RevInfo, TreeFile};

/// Largest go.mod the go command reads from a repository, and largest
/// LICENSE it copies from a repository root: the module zip limits.
pub use modzip::zip::{MAX_GO_MOD, MAX_LICENSE};

/// One module path backed by one repository.
pub struct ModuleRepo {
    module_path: String,
    repo: Arc<dyn CodeRepo>,
    code_root: String,
    code_dir: String,
    path_prefix: String,
    path_major: String,
    pseudo_major: String,
}

impl std::fmt::Debug for ModuleRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleRepo")
            .field("module_path", &self.module_path)
            .field("code_root", &self.code_root)
            .field("code_dir", &self.code_dir)
            .field("path_prefix", &self.path_prefix)
            .field("path_major", &self.path_major)
            .field("pseudo_major", &self.pseudo_major)
            .finish()
    }
}

/// Where the module's files live at one revision (the go command's
/// `findDir` result).
struct ModuleDir {
    /// The revision to read, as passed to the code host.
    rev: String,
    /// The module root inside the repository.
    dir: String,
    /// The module's go.mod, when it has one.
    gomod: Option<Vec<u8>>,
}

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
    /// Maps `module_path` onto the repository whose root has import path
    /// `code_root`, with the module root in `subdir_from_meta` when a
    /// go-import meta tag names one.
    ///
    /// Fails when `code_root` is not a path prefix of `module_path`, when the
    /// module path has a malformed major-version suffix, or when the
    /// repository root falls inside the major-version suffix.
    pub fn new(
        module_path: &str,
        repo: Arc<dyn CodeRepo>,
        code_root: &str,
        subdir_from_meta: Option<&str>,
    ) -> Result<ModuleRepo, ResolveError> {
        let bad = |reason: String| ResolveError::BadModulePath {
            module: module_path.to_string(),
            reason,
        };
        if !has_path_prefix(module_path, code_root) {
            return Err(bad(format!(
                "mismatched repo: found {code_root} for {module_path}"
            )));
        }
        let Some((split_prefix, path_major)) = module::split_path_version(module_path) else {
            return Err(bad(format!(
                "invalid module path {}",
                info::go_quote(module_path)
            )));
        };
        let path_prefix = if code_root == module_path {
            module_path
        } else {
            split_prefix
        };
        let pseudo_major = module::path_major_prefix(path_major).to_string();
        let mut code_dir = String::new();
        if code_root != module_path {
            if !has_path_prefix(path_prefix, code_root) {
                return Err(bad(format!(
                    "repository rooted at {code_root} cannot contain module {module_path}"
                )));
            }
            code_dir = path_prefix[code_root.len()..].trim_matches('/').to_string();
        }
        if let Some(subdir) = subdir_from_meta.filter(|s| !s.is_empty()) {
            code_dir = join_clean(&[&code_dir, subdir]);
        }
        Ok(ModuleRepo {
            module_path: module_path.to_string(),
            repo,
            code_root: code_root.to_string(),
            code_dir,
            path_prefix: path_prefix.to_string(),
            path_major: path_major.to_string(),
            pseudo_major,
        })
    }

    /// The module path.
    pub fn module_path(&self) -> &str {
        &self.module_path
    }

    /// The module root's directory inside the repository ("" for the root).
    pub fn code_dir(&self) -> &str {
        &self.code_dir
    }

    /// The module path without its major-version suffix (the whole path when
    /// the path equals the repository root).
    pub fn path_prefix(&self) -> &str {
        &self.path_prefix
    }

    /// The major-version suffix of the module path: `/v2`, `.v2`,
    /// `.v2-unstable`, or "".
    pub fn path_major(&self) -> &str {
        &self.path_major
    }

    /// The major version pseudo-versions must carry (`v2`), "" for v0/v1.
    pub fn pseudo_major(&self) -> &str {
        &self.pseudo_major
    }

    /// The tag prefix for this module's versions: `dir/` for a module in a
    /// subdirectory, else "".
    fn tag_prefix(&self) -> String {
        if self.code_dir.is_empty() {
            String::new()
        } else {
            format!("{}/", self.code_dir)
        }
    }

    /// A code-host failure other than "not found": a limit crossed stays a
    /// refusal, anything else is an upstream failure.
    fn upstream(&self, source: CodeError) -> ResolveError {
        match source {
            CodeError::Refused(_) => ResolveError::Refused {
                module: self.module_path.clone(),
                source,
            },
            source => ResolveError::Upstream {
                module: self.module_path.clone(),
                source,
            },
        }
    }

    fn problem(&self, version: &str, pseudo: bool, reason: impl Into<String>) -> VersionProblem {
        VersionProblem {
            module: self.module_path.clone(),
            version: Some(version.to_string()),
            pseudo,
            reason: reason.into(),
        }
    }

    fn invalid(&self, version: &str, reason: impl Into<String>) -> ResolveError {
        ResolveError::InvalidVersion(self.problem(version, false, reason))
    }

    fn not_found(&self, version: &str, reason: impl Into<String>) -> ResolveError {
        ResolveError::NotFound(self.problem(version, false, reason))
    }

    /// A code-host failure while resolving `version`: a missing revision is
    /// "not found", anything else an upstream failure.
    fn code_error(&self, version: &str, err: CodeError) -> ResolveError {
        match err {
            CodeError::NotFound(reason) => self.not_found(version, reason),
            other => self.upstream(other),
        }
    }

    /// The `list` answer: this module's tagged versions starting with
    /// `prefix` (pseudo-version-shaped tags excluded), sorted as Go sorts
    /// them, with `+incompatible` versions appended when the module path
    /// allows them.
    pub fn versions(&self, prefix: &str) -> Result<Vec<String>, ResolveError> {
        // gopkg.in's -unstable paths share tags with their stable twin and
        // so can have no tagged versions of their own.
        if self.module_path.starts_with("gopkg.in/") && self.module_path.ends_with("-unstable") {
            return Ok(Vec::new());
        }
        let tag_prefix = format!("{}{}", self.tag_prefix(), prefix);
        let tags = self.repo.tags(&tag_prefix).map_err(|e| match e {
            CodeError::NotFound(reason) => ResolveError::NotFound(VersionProblem {
                module: self.module_path.clone(),
                version: None,
                pseudo: false,
                reason,
            }),
            other => self.upstream(other),
        })?;
        let mut list = Vec::new();
        let mut incompatible = Vec::new();
        let dir_prefix_len = self.tag_prefix().len();
        for tag in tags {
            if !tag.name.starts_with(&tag_prefix) {
                continue;
            }
            let v = &tag.name[dir_prefix_len..];
            if v.is_empty() || v != semver::canonical(v) {
                continue;
            }
            if pseudo::is_pseudo_version(v) {
                continue;
            }
            if !module::match_path_major(v, &self.path_major) {
                if self.code_dir.is_empty() && self.path_major.is_empty() && semver::major(v) > "v1"
                {
                    incompatible.push(v.to_string());
                }
                continue;
            }
            list.push(v.to_string());
        }
        semver::sort(&mut list);
        semver::sort(&mut incompatible);
        self.append_incompatible(list, incompatible)
    }

    /// Whether the repository has a go.mod at the root at tag `version`
    /// (a missing revision counts as "no").
    fn tag_has_go_mod(&self, version: &str) -> Result<bool, ResolveError> {
        match self.repo.read_file(version, "go.mod", MAX_GO_MOD) {
            Ok(found) => Ok(found.is_some()),
            // Too large to read, but there: the go command reads it whole.
            Err(CodeError::Refused(_)) => Ok(true),
            Err(CodeError::NotFound(_)) => Ok(false),
            Err(other) => Err(self.upstream(other)),
        }
    }

    fn append_incompatible(
        &self,
        mut list: Vec<String>,
        incompatible: Vec<String>,
    ) -> Result<Vec<String>, ResolveError> {
        if incompatible.is_empty() || !self.path_major.is_empty() {
            return Ok(list);
        }
        // A go.mod at the highest compatible tag shows the author has moved
        // to modules; higher-major tags are then not offered as +incompatible.
        if let Some(last) = list.last() {
            if self.tag_has_go_mod(last)? {
                return Ok(list);
            }
        }
        let mut last_major = "";
        let mut last_major_has_go_mod = false;
        for (i, v) in incompatible.iter().enumerate() {
            let major = semver::major(v);
            if major != last_major {
                let end = incompatible[i..]
                    .iter()
                    .position(|w| semver::major(w) != major)
                    .map_or(incompatible.len(), |n| i + n);
                last_major = major;
                last_major_has_go_mod = self.tag_has_go_mod(&incompatible[end - 1])?;
            }
            if !last_major_has_go_mod {
                list.push(format!("{v}+incompatible"));
            }
        }
        Ok(list)
    }

    /// The `.info` answer for any revision: a canonical version, a
    /// non-canonical tag, a branch, a full or short commit hash, `HEAD`, or
    /// `latest` (the default branch, like [`ModuleRepo::latest`]).
    pub fn stat(&self, rev: &str) -> Result<Info, ResolveError> {
        if rev == "latest" {
            return self.latest();
        }
        let code_rev = self.rev_to_rev(rev);
        let info = self
            .repo
            .stat(&code_rev)
            .map_err(|e| self.code_error(rev, e))?;
        self.convert(&info, &code_rev, rev)
    }

    /// The default branch's tip as a module version (Go's `Repo.Latest`):
    /// its tag when it carries one, else a pseudo-version.
    pub fn latest(&self) -> Result<Info, ResolveError> {
        let info = self.repo.latest().map_err(|e| match e {
            CodeError::NotFound(reason) => ResolveError::NotFound(VersionProblem {
                module: self.module_path.clone(),
                version: None,
                pseudo: false,
                reason,
            }),
            other => self.upstream(other),
        })?;
        let hash = info.hash.clone();
        self.convert(&info, &hash, "")
    }

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

    /// The revision to ask the code host for, for a module version or any
    /// other revision string.
    fn rev_to_rev(&self, rev: &str) -> String {
        if !semver::is_valid(rev) {
            return rev.to_string();
        }
        if pseudo::is_pseudo_version(rev) {
            return pseudo::pseudo_version_rev(rev).unwrap_or_default();
        }
        let rev = rev
            .strip_suffix("+incompatible")
            .filter(|_| semver::build(rev) == "+incompatible")
            .unwrap_or(rev);
        if self.code_dir.is_empty() {
            rev.to_string()
        } else {
            format!("{}/{}", self.code_dir, rev)
        }
    }

    /// Finds the module root at `version` and checks that the go.mod found
    /// there (if any) agrees with the module path's major version.
    fn find_dir(&self, version: &str) -> Result<ModuleDir, ResolveError> {
        if !semver::is_valid(version) {
            return Err(self.invalid(version, "syntax error"));
        }
        let rev = self.rev_to_rev(version);
        let read = |file: &str| -> Result<Option<Vec<u8>>, ResolveError> {
            match self.repo.read_file(&rev, file, MAX_GO_MOD) {
                Ok(data) => Ok(data),
                Err(CodeError::NotFound(_)) => Ok(None),
                Err(refused @ CodeError::Refused(_)) => Err(self.upstream(refused)),
                Err(CodeError::Other(e)) => Err(self.upstream(CodeError::Other(format!(
                    "reading {}/{} at revision {}: {}",
                    self.code_root, file, rev, e
                )))),
            }
        };
        let file1 = join_clean(&[&self.code_dir, "go.mod"]);
        let gomod1 = read(&file1)?;
        let mpath1 = gomod1
            .as_deref()
            .and_then(modzip::gomod::module_path)
            .unwrap_or_default();
        let found1 = gomod1.is_some() && is_major(&mpath1, &self.path_major);
        let missing = |reason: String| self.not_found(version, reason);

        let mut file2 = String::new();
        if !self.path_major.is_empty()
            && self.code_root != self.module_path
            && !self.path_major.starts_with('.')
        {
            // Either go.mod claims the major version and vN/go.mod is absent,
            // or vN/go.mod exists and claims it; not both.
            let dir2 = join_clean(&[&self.code_dir, &self.path_major[1..]]);
            file2 = join_clean(&[&dir2, "go.mod"]);
            let gomod2 = read(&file2)?;
            let mpath2 = gomod2
                .as_deref()
                .and_then(modzip::gomod::module_path)
                .unwrap_or_default();
            let found2 = gomod2.is_some() && is_major(&mpath2, &self.path_major);
            if found1 && found2 {
                return Err(missing(format!(
                    "{}/{} and ...{}/go.mod both have ...{} module paths at revision {}",
                    self.path_prefix, file1, self.path_major, self.path_major, rev
                )));
            }
            if found2 {
                return Ok(ModuleDir {
                    rev,
                    dir: dir2,
                    gomod: gomod2,
                });
            }
            if gomod2.is_some() {
                if mpath2.is_empty() {
                    return Err(missing(format!(
                        "{}/{} is missing module path at revision {}",
                        self.code_root, file2, rev
                    )));
                }
                return Err(missing(format!(
                    "{}/{} has non-...{} module path {} at revision {}",
                    self.code_root,
                    file2,
                    self.path_major,
                    info::go_quote(&mpath2),
                    rev
                )));
            }
        }

        if found1 {
            return Ok(ModuleDir {
                rev,
                dir: self.code_dir.clone(),
                gomod: gomod1,
            });
        }
        if gomod1.is_some() {
            let suffix = if file2.is_empty() {
                String::new()
            } else {
                format!(" (and ...{}/go.mod does not exist)", self.path_major)
            };
            if mpath1.is_empty() {
                return Err(missing(format!(
                    "{file1} is missing module path{suffix} at revision {rev}"
                )));
            }
            if !self.path_major.is_empty() {
                return Err(missing(format!(
                    "{file1} has non-...{} module path {}{suffix} at revision {rev}",
                    self.path_major,
                    info::go_quote(&mpath1)
                )));
            }
            if module::split_path_version(&mpath1).is_none() {
                return Err(missing(format!(
                    "{file1} has malformed module path {}{suffix} at revision {rev}",
                    info::go_quote(&mpath1)
                )));
            }
            return Err(missing(format!(
                "{file1} has post-{} module path {}{suffix} at revision {rev}",
                semver::major(version),
                info::go_quote(&mpath1)
            )));
        }
        if self.code_dir.is_empty()
            && (self.path_major.is_empty() || self.path_major.starts_with('.'))
        {
            // No go.mod at the root is fine for v0/v1 and for gopkg.in.
            return Ok(ModuleDir {
                rev,
                dir: String::new(),
                gomod: None,
            });
        }
        if !file2.is_empty() {
            return Err(missing(format!(
                "missing {}/go.mod and ...{}/go.mod at revision {}",
                self.path_prefix, self.path_major, rev
            )));
        }
        Err(missing(format!(
            "missing {}/go.mod at revision {}",
            self.path_prefix, rev
        )))
    }

    /// The `.mod` answer: the module's go.mod at canonical `version`, or
    /// `module PATH` when the module has none.
    pub fn go_mod(&self, version: &str) -> Result<Vec<u8>, ResolveError> {
        if version != module::canonical_version(version) {
            return Err(self.invalid(version, format!("version {version} is not canonical")));
        }
        if pseudo::is_pseudo_version(version) {
            // The directory lookup only uses the hash; the rest of the
            // pseudo-version must be checked before serving anything.
            self.stat(version)?;
        }
        let found = self.find_dir(version)?;
        if let Some(gomod) = found.gomod {
            return Ok(gomod);
        }
        let file = join_clean(&[&found.dir, "go.mod"]);
        match self.repo.read_file(&found.rev, &file, MAX_GO_MOD) {
            Ok(Some(data)) => Ok(data),
            Ok(None) | Err(CodeError::NotFound(_)) => Ok(legacy_go_mod(&self.module_path)),
            Err(other) => Err(self.upstream(other)),
        }
    }

    /// The `.zip` answer for canonical `version`, written to `w`: the files
    /// of the module directory (the repository root's LICENSE added for
    /// modules in subdirectories without their own), in the canonical
    /// module zip layout.
    pub fn zip<W: Write + Seek>(&self, version: &str, w: W) -> Result<W, ResolveError> {
        if version != module::canonical_version(version) {
            return Err(self.invalid(version, format!("version {version} is not canonical")));
        }
        if pseudo::is_pseudo_version(version) {
            self.stat(version)?;
        }
        let found = self.find_dir(version)?;
        let subdir = found.dir.trim_matches('/').to_string();
        let tree = self
            .repo
            .files(&found.rev, &subdir)
            .map_err(|e| self.code_error(version, e))?;
        let mut entries: Vec<ZipEntry> = Vec::with_capacity(tree.len() + 1);
        let mut have_license = false;
        for file in tree {
            let path = file.path();
            if path.is_empty() || path.ends_with('/') {
                continue;
            }
            have_license |= path == "LICENSE";
            entries.push(ZipEntry::Tree(file));
        }
        if !have_license && !subdir.is_empty() {
            // A root LICENSE over the limit makes the go command's zip
            // invalid (it copies it whatever its size); any other failure
            // reading it just means none is copied.
            match self.repo.read_file(&found.rev, "LICENSE", MAX_LICENSE) {
                Ok(Some(data)) => entries.push(ZipEntry::Data {
                    path: "LICENSE".to_string(),
                    data,
                }),
                Err(refused @ CodeError::Refused(_)) => return Err(self.upstream(refused)),
                Ok(None) | Err(_) => {}
            }
        }
        let m = modzip::Version {
            path: self.module_path.clone(),
            version: version.to_string(),
        };
        modzip::zip::create(w, &m, &entries).map_err(|source| ResolveError::Zip {
            module: self.module_path.clone(),
            version: version.to_string(),
            source: Box::new(source),
        })
    }

    /// The versions retracted by the go.mod of the module's highest
    /// release (or highest prerelease); empty when that cannot be read.
    fn retracted(&self) -> Vec<retract::Interval> {
        let Ok(mut versions) = self.versions("") else {
            return Vec::new();
        };
        if let Some(i) = versions.iter().position(|v| v.ends_with("+incompatible")) {
            versions.truncate(i);
        }
        let Some(highest) = versions
            .iter()
            .rev()
            .find(|v| semver::prerelease(v).is_empty())
            .or_else(|| versions.last())
        else {
            return Vec::new();
        };
        match self.go_mod(highest) {
            Ok(data) => retract::retractions(&data).unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Turns what the code host says about a revision into a module version
    /// (Go's `codeRepo.convert`). `code_rev` is the revision as passed to
    /// the code host; `stat_vers` is what the caller asked for ("" for the
    /// default branch).
    fn convert(
        &self,
        rev_info: &RevInfo,
        code_rev: &str,
        stat_vers: &str,
    ) -> Result<Info, ResolveError> {
        let mut tags = rev_info.tags.clone();
        tags.sort();
        tags.dedup();
        let ctx = Convert {
            repo: self,
            info: rev_info,
            stat_vers,
            incompatible_ok: RefCell::new(HashMap::new()),
            retracted: RefCell::new(None),
        };
        let version = ctx.resolve(code_rev, &tags)?;
        let is_pseudo = pseudo::is_pseudo_version(&version);
        let origin = Origin {
            vcs: self.repo.vcs().to_string(),
            url: self.repo.url().to_string(),
            subdir: self.code_dir.clone(),
            hash: rev_info.hash.clone(),
            reference: if is_pseudo {
                String::new()
            } else {
                rev_info.origin_ref.clone().unwrap_or_default()
            },
        };
        Ok(Info {
            version,
            time: rev_info.time,
            origin,
        })
    }
}

/// State for converting one revision: the answers that are costly to
/// compute and asked for repeatedly.
struct Convert<'a> {
    repo: &'a ModuleRepo,
    info: &'a RevInfo,
    stat_vers: &'a str,
    incompatible_ok: RefCell<HashMap<String, bool>>,
    retracted: RefCell<Option<Vec<retract::Interval>>>,
}

impl Convert<'_> {
    fn resolve(&self, code_rev: &str, tags: &[String]) -> Result<String, ResolveError> {
        let repo = self.repo;
        let stat_vers = self.stat_vers;
        if pseudo::is_pseudo_version(stat_vers) {
            // Cheap checks (directory, major version) first: checking the
            // base tag may need the full history.
            let version = self.check_canonical(stat_vers)?;
            self.validate_pseudo_version(stat_vers, tags)?;
            return Ok(version);
        }

        // What the code host called the revision: the asked-for tag when it
        // is a tag of this commit, else the commit hash.
        let vcs_version = if tags.iter().any(|t| t == code_rev) {
            code_rev
        } else {
            self.info.hash.as_str()
        };
        if let Some((v, true)) = self.tag_to_version(vcs_version) {
            if let Ok(version) = self.check_canonical(&v) {
                return Ok(version);
            }
        }

        let mut highest_canonical = String::new();
        let mut pseudo_base = String::new();
        for tag in tags {
            let parsed = self.tag_to_version(tag);
            let (v, canonical) = parsed.clone().unwrap_or_default();
            if !stat_vers.is_empty() && semver::compare(&v, stat_vers) == std::cmp::Ordering::Equal
            {
                if canonical {
                    return self.check_canonical(&v);
                }
                // An equivalent but non-canonical tag (v1.2.3+meta) may be
                // ambiguous; it can still serve as an unambiguous base.
                pseudo_base = v.clone();
            }
            if canonical
                && semver::compare(&highest_canonical, &v) == std::cmp::Ordering::Less
                && !self.is_retracted(&v)
                && (module::match_path_major(&v, &repo.path_major) || self.can_use_incompatible(&v))
            {
                highest_canonical = v;
            }
        }
        if !highest_canonical.is_empty() {
            return self.check_canonical(&highest_canonical);
        }

        if pseudo_base.is_empty() {
            let allowed = |tag: &str| -> bool {
                let Some((v, _)) = self.tag_to_version(tag) else {
                    return false;
                };
                if !module::match_path_major(&v, &repo.path_major) && !self.can_use_incompatible(&v)
                {
                    return false;
                }
                !self.is_retracted(&v)
            };
            let tag = repo
                .repo
                .recent_tag(&self.info.hash, &repo.tag_prefix(), &allowed)
                .map_err(|e| {
                    repo.code_error(
                        if stat_vers.is_empty() {
                            &self.info.hash
                        } else {
                            stat_vers
                        },
                        e,
                    )
                })?;
            if let Some(tag) = tag {
                if let Some((v, _)) = self.tag_to_version(&tag) {
                    pseudo_base = v;
                }
            }
        }
        let version = pseudo::pseudo_version(
            &repo.pseudo_major,
            &pseudo_base,
            self.info.time,
            &self.info.short,
        );
        self.check_canonical(&version)
    }

    /// The version a tag names for this module, and whether the tag is
    /// exactly that canonical version. `None` for tags of other directories,
    /// pseudo-version-shaped tags and tags that are not complete versions.
    fn tag_to_version(&self, tag: &str) -> Option<(String, bool)> {
        let trimmed = tag.strip_prefix(&self.repo.tag_prefix())?;
        if pseudo::is_pseudo_version(tag) {
            return None;
        }
        let v = semver::canonical(trimmed);
        if v.is_empty() || !trimmed.starts_with(&v) {
            return None;
        }
        let canonical = v == trimmed;
        Some((v, canonical))
    }

    fn is_retracted(&self, version: &str) -> bool {
        let mut cache = self.retracted.borrow_mut();
        let intervals = cache.get_or_insert_with(|| self.repo.retracted());
        intervals.iter().any(|i| i.contains(version))
    }

    /// Whether version `v` (without suffix) may be served as
    /// `v+incompatible`: only for an unsuffixed module at the repository
    /// root with no go.mod at this revision, and (unless the caller asked
    /// for +incompatible explicitly) no `vN/go.mod` either.
    fn can_use_incompatible(&self, v: &str) -> bool {
        let repo = self.repo;
        if !repo.code_dir.is_empty() || !repo.path_major.is_empty() {
            return false;
        }
        let absent = |file: &str| {
            // A go.mod too large to read is still there.
            !matches!(
                repo.repo.read_file(&self.info.hash, file, MAX_GO_MOD),
                Ok(Some(_)) | Err(CodeError::Refused(_))
            )
        };
        let root_ok = *self
            .incompatible_ok
            .borrow_mut()
            .entry(String::new())
            .or_insert_with(|| absent("go.mod"));
        if !root_ok {
            return false;
        }
        if !v.is_empty() && !self.stat_vers.ends_with("+incompatible") {
            let major = semver::major(v).to_string();
            let file = format!("{major}/go.mod");
            let sub_ok = *self
                .incompatible_ok
                .borrow_mut()
                .entry(major)
                .or_insert_with(|| absent(&file));
            if !sub_ok {
                return false;
            }
        }
        true
    }

    /// Checks canonical version `v` against the module (go.mod location,
    /// major version, +incompatible) and against the version asked for;
    /// returns the version to serve.
    fn check_canonical(&self, v: &str) -> Result<String, ResolveError> {
        let repo = self.repo;
        match repo.find_dir(v) {
            Ok(_) => {}
            Err(
                ResolveError::NotFound(mut problem) | ResolveError::InvalidVersion(mut problem),
            ) => {
                problem.version = Some(v.to_string());
                return Err(ResolveError::NotFound(problem));
            }
            Err(other) => return Err(other),
        }
        let stat_vers = self.stat_vers;
        let mut v = v.to_string();
        if Some(v.as_str()) == stat_vers.strip_suffix("+incompatible") {
            v = stat_vers.to_string();
        }
        let base = v.strip_suffix("+incompatible").unwrap_or(&v).to_string();
        let mut incompatible_error = None;
        if !module::match_path_major(&base, &repo.path_major) {
            if self.can_use_incompatible(&base) {
                v = format!("{base}+incompatible");
            } else if !repo.path_major.is_empty() {
                incompatible_error = Some(repo.invalid(
                    &v,
                    "module path includes a major version suffix, so major version must match",
                ));
            } else {
                let wanted = join_clean(&[&repo.path_prefix, semver::major(&v)]);
                incompatible_error = Some(repo.invalid(
                    &v,
                    format!(
                        "module contains a go.mod file, so module path must match major version ({})",
                        info::go_quote(&wanted)
                    ),
                ));
            }
        } else if v.ends_with("+incompatible") {
            incompatible_error = Some(repo.invalid(
                &v,
                format!(
                    "+incompatible suffix not allowed: major version {} is compatible",
                    semver::major(&v)
                ),
            ));
        }
        if !stat_vers.is_empty() && stat_vers == module::canonical_version(stat_vers) {
            // A canonical request must resolve to itself (give or take
            // +incompatible), never to some other tag on the same commit.
            let stat_base = stat_vers.strip_suffix("+incompatible").unwrap_or(stat_vers);
            if stat_base != base {
                return Err(repo.invalid(
                    stat_vers,
                    format!("resolves to version {v} ({stat_base} is not a tag)"),
                ));
            }
        }
        match incompatible_error {
            Some(e) => Err(e),
            None => Ok(v),
        }
    }

    /// Checks that pseudo-version `version` encodes this commit's hash and
    /// time, and that its base tag (if any) is an ancestor of the commit.
    fn validate_pseudo_version(&self, version: &str, tags: &[String]) -> Result<(), ResolveError> {
        let repo = self.repo;
        let fail =
            |reason: String| ResolveError::InvalidVersion(repo.problem(version, true, reason));
        let rev = pseudo::pseudo_version_rev(version).map_err(|e| fail(e.to_string()))?;
        let short = self.info.short.as_str();
        if rev != short {
            return Err(fail(if rev.starts_with(short) {
                format!("revision is longer than canonical (expected {short})")
            } else if short.starts_with(&rev) {
                format!("revision is shorter than canonical (expected {short})")
            } else {
                format!("does not match short name of revision (expected {short})")
            }));
        }
        let t = pseudo::pseudo_version_time(version).map_err(|e| fail(e.to_string()))?;
        let commit_time = self
            .info
            .time
            .replace_nanosecond(0)
            .unwrap_or(self.info.time);
        if t != commit_time {
            return Err(fail(format!(
                "does not match version-control timestamp (expected {})",
                pseudo::format_timestamp(self.info.time)
            )));
        }
        let tag_prefix = repo.tag_prefix();
        let without_suffix = version.strip_suffix("+incompatible").unwrap_or(version);
        let base = pseudo::pseudo_version_base(without_suffix).map_err(|e| fail(e.to_string()))?;
        if base.is_empty() {
            if repo.pseudo_major.is_empty() && semver::major(version) == "v1" {
                return Err(fail(
                    "major version without preceding tag must be v0, not v1".to_string(),
                ));
            }
            return Ok(());
        }
        for tag in tags {
            if tag.strip_prefix(&tag_prefix).unwrap_or(tag) == base {
                return Err(fail(format!(
                    "tag ({tag}) found on revision {rev} is already canonical, so should not be replaced with a pseudo-version derived from that tag"
                )));
            }
        }
        let mut candidates =
            repo.repo
                .tags(&format!("{tag_prefix}{base}"))
                .map_err(|e| match e {
                    CodeError::NotFound(reason) => fail(reason),
                    other => repo.upstream(other),
                })?;
        candidates.sort_by(|a, b| a.name.cmp(&b.name));
        let mut last_tag = String::new();
        let mut descends_error = None;
        for tag in &candidates {
            let version_only = tag.name.strip_prefix(&tag_prefix).unwrap_or(&tag.name);
            if semver::compare(version_only, &base) == std::cmp::Ordering::Equal {
                last_tag = tag.name.clone();
                match repo.repo.descends_from(&self.info.hash, &tag.name) {
                    Ok(true) => return Ok(()),
                    Ok(false) => descends_error = None,
                    Err(e) => descends_error = Some(e),
                }
            }
        }
        if last_tag.is_empty() {
            return Err(fail(format!("preceding tag ({base}) not found")));
        }
        if let Some(e) = descends_error {
            return Err(match e {
                CodeError::NotFound(reason) => fail(reason),
                other => repo.upstream(other),
            });
        }
        Err(fail(format!(
            "revision {rev} is not a descendent of preceding tag ({last_tag})"
        )))
    }
}

/// A file of the module zip: from the repository tree, or synthesized.
enum ZipEntry {
    Tree(TreeFile),
    Data { path: String, data: Vec<u8> },
}

impl modzip::zip::ModuleFile for ZipEntry {
    fn path(&self) -> &str {
        match self {
            ZipEntry::Tree(file) => file.path(),
            ZipEntry::Data { path, .. } => path,
        }
    }

    fn metadata(&self) -> std::io::Result<modzip::zip::FileMeta> {
        match self {
            ZipEntry::Tree(file) => file.metadata(),
            ZipEntry::Data { data, .. } => Ok(modzip::zip::FileMeta {
                kind: modzip::zip::FileKind::Regular,
                size: data.len() as u64,
            }),
        }
    }

    fn open(&self) -> std::io::Result<Box<dyn Read + '_>> {
        match self {
            ZipEntry::Tree(file) => file.open(),
            ZipEntry::Data { data, .. } => Ok(Box::new(data.as_slice())),
        }
    }
}

/// The go.mod served for a module without one: just its module line.
pub fn legacy_go_mod(module_path: &str) -> Vec<u8> {
    format!("module {}\n", auto_quote(module_path)).into_bytes()
}

/// Quotes a go.mod token only when it could not be read back unquoted.
fn auto_quote(s: &str) -> String {
    let needs_quotes = s.is_empty()
        || s.contains("//")
        || s.contains("/*")
        || s.chars().any(|c| {
            matches!(c, ' ' | '"' | '\'' | '`')
                || (matches!(c, '(' | ')' | '[' | ']' | '{' | '}' | ',') && s.len() > 1)
                || c.is_control()
                || (c.is_whitespace() && c != ' ')
        });
    if needs_quotes {
        info::go_quote(s)
    } else {
        s.to_string()
    }
}

/// Whether a go.mod declaring `mpath` may serve a module whose path has
/// the major version suffix `path_major` (the gopkg.in leniency included).
fn is_major(mpath: &str, path_major: &str) -> bool {
    module::go_mod_path_fits_major(mpath, path_major)
}

/// Whether `s` is `prefix` or lies under it as a slash-separated path.
fn has_path_prefix(s: &str, prefix: &str) -> bool {
    if s.len() == prefix.len() {
        return s == prefix;
    }
    if s.len() < prefix.len() || !s.starts_with(prefix) {
        return false;
    }
    if prefix.ends_with('/') {
        return true;
    }
    s.as_bytes()[prefix.len()] == b'/'
}

/// Whether a valid semantic version is only a prefix (`v1`, `v1.2`) rather
/// than a complete version.
fn is_version_prefix(v: &str) -> bool {
    !v.contains(['-', '+']) && v.matches('.').count() < 2
}

/// Joins slash paths, skipping empty elements, and cleans the result
/// lexically ("" when every element is empty).
fn join_clean(elements: &[&str]) -> String {
    let joined = elements
        .iter()
        .filter(|e| !e.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    if joined.is_empty() {
        return String::new();
    }
    let rooted = joined.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_string(),
        (false, false) => body,
    }
}
