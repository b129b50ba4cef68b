//! The code repository behind one module path (Go's
//! `cmd/go/internal/modfetch/coderepo.go`): which repository and directory
//! hold the module, which major version its path claims, and where its go.mod
//! lives at a revision (the module directory, or `vN/` in the major
//! subdirectory layout), with `module PATH` synthesized when there is none.

use std::sync::Arc;

use modzip::{module, pseudo, semver};

use super::info;
use super::{ResolveError, VersionProblem, MAX_GO_MOD};
use crate::codehost::{CodeError, CodeRepo};

/// One module path backed by one repository.
pub struct ModuleRepo {
    pub(super) module_path: String,
    pub(super) repo: Arc<dyn CodeRepo>,
    pub(super) code_root: String,
    pub(super) code_dir: String,
    pub(super) path_prefix: String,
    pub(super) path_major: String,
    pub(super) pseudo_major: String,
    /// Deflated files kept from earlier zips (see [`ModuleRepo::with_deflate_cache`]).
    pub(super) deflate_cache: Option<Arc<modzip::zip::DeflateCache>>,
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
pub(super) struct ModuleDir {
    /// The revision to read, as passed to the code host.
    pub(super) rev: String,
    /// The module root inside the repository.
    pub(super) dir: String,
    /// The module's go.mod, when it has one.
    pub(super) gomod: Option<Vec<u8>>,
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
            deflate_cache: None,
        })
    }

    /// The same module, its zips taking the deflated form of files they
    /// share with earlier zips of the module from `cache` (and keeping
    /// theirs there). The zips are byte for byte the same.
    pub fn with_deflate_cache(mut self, cache: Arc<modzip::zip::DeflateCache>) -> ModuleRepo {
        self.deflate_cache = Some(cache);
        self
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
    pub(super) fn tag_prefix(&self) -> String {
        if self.code_dir.is_empty() {
            String::new()
        } else {
            format!("{}/", self.code_dir)
        }
    }

    /// A code-host failure other than "not found": a limit crossed stays a
    /// refusal, anything else is an upstream failure.
    pub(super) fn upstream(&self, source: CodeError) -> ResolveError {
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

    pub(super) fn problem(
        &self,
        version: &str,
        pseudo: bool,
        reason: impl Into<String>,
    ) -> VersionProblem {
        VersionProblem {
            module: self.module_path.clone(),
            version: Some(version.to_string()),
            pseudo,
            reason: reason.into(),
        }
    }

    pub(super) fn invalid(&self, version: &str, reason: impl Into<String>) -> ResolveError {
        ResolveError::InvalidVersion(self.problem(version, false, reason))
    }

    pub(super) fn not_found(&self, version: &str, reason: impl Into<String>) -> ResolveError {
        ResolveError::NotFound(self.problem(version, false, reason))
    }

    /// A code-host failure while resolving `version`: a missing revision is
    /// "not found", anything else an upstream failure.
    pub(super) fn code_error(&self, version: &str, err: CodeError) -> ResolveError {
        match err {
            CodeError::NotFound(reason) => self.not_found(version, reason),
            other => self.upstream(other),
        }
    }

    /// The revision to ask the code host for, for a module version or any
    /// other revision string.
    pub(super) fn rev_to_rev(&self, rev: &str) -> String {
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
    pub(super) fn find_dir(&self, version: &str) -> Result<ModuleDir, ResolveError> {
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

/// Joins slash paths, skipping empty elements, and cleans the result
/// lexically ("" when every element is empty).
pub(super) fn join_clean(elements: &[&str]) -> String {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::resolve::testrepo::{module, zip_names, FakeRepo, T0};
    use crate::resolve::ResolveError;

    #[test]
    fn new_computes_dirs_and_majors() {
        let m = module(
            FakeRepo::new(),
            "example.com/repo/sub/v2",
            "example.com/repo",
            None,
        );
        assert_eq!(
            (
                m.code_dir(),
                m.path_prefix(),
                m.path_major(),
                m.pseudo_major()
            ),
            ("sub", "example.com/repo/sub", "/v2", "v2")
        );
        let m = module(
            FakeRepo::new(),
            "nanomsg.org/go/mangos/v2",
            "nanomsg.org/go/mangos/v2",
            None,
        );
        assert_eq!(
            (m.code_dir(), m.path_prefix(), m.path_major()),
            ("", "nanomsg.org/go/mangos/v2", "/v2")
        );
        let m = module(
            FakeRepo::new(),
            "gopkg.in/yaml.v2",
            "gopkg.in/yaml.v2",
            None,
        );
        assert_eq!(
            (m.code_dir(), m.path_major(), m.pseudo_major()),
            ("", ".v2", "v2")
        );
        let m = module(
            FakeRepo::new(),
            "example.com/repo/v3",
            "example.com/repo",
            Some("go/lib"),
        );
        assert_eq!((m.code_dir(), m.path_major()), ("go/lib", "/v3"));
        let m = module(
            FakeRepo::new(),
            "example.com/repo/a",
            "example.com/repo",
            Some("b/"),
        );
        assert_eq!(m.code_dir(), "a/b");

        let err = ModuleRepo::new(
            "example.com/other",
            Arc::new(FakeRepo::new()),
            "example.com/repo",
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "mismatched repo: found example.com/repo for example.com/other"
        );
        let err = ModuleRepo::new(
            "example.com/repo/v1",
            Arc::new(FakeRepo::new()),
            "example.com/repo",
            None,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("invalid module path"), "{err}");
        let err = ModuleRepo::new(
            "example.com/a/v2",
            Arc::new(FakeRepo::new()),
            "example.com/a/v2x",
            None,
        )
        .unwrap_err();
        assert!(matches!(err, ResolveError::BadModulePath { .. }));
    }

    #[test]
    fn major_branch_layout() {
        let mut r = FakeRepo::new();
        let c1 = r.commit(&[], T0, &[("go.mod", "module example.com/m\n")]);
        let c2 = r.commit(
            &[c1],
            T0 + 10,
            &[
                ("go.mod", "module example.com/m/v2\n"),
                ("x.go", "package x\n"),
            ],
        );
        r.tag("v1.0.0", c1);
        r.tag("v2.0.0", c2);
        r.branch("main", c2);
        let m = module(r, "example.com/m/v2", "example.com/m", None);
        assert_eq!(m.versions("").unwrap(), ["v2.0.0"]);
        assert_eq!(m.stat("v2.0.0").unwrap().version, "v2.0.0");
        assert_eq!(m.go_mod("v2.0.0").unwrap(), b"module example.com/m/v2\n");
        // v1.0.0's go.mod names the unsuffixed module: no v2 module there.
        let err = m.stat("v1.0.0").unwrap_err();
        assert!(err.is_not_found());
        assert!(err.to_string().contains("go.mod has non-.../v2 module path \"example.com/m\" (and .../v2/go.mod does not exist) at revision v1.0.0"), "{err}");
        let names = zip_names(&m, "v2.0.0");
        assert_eq!(
            names,
            [
                "example.com/m/v2@v2.0.0/go.mod",
                "example.com/m/v2@v2.0.0/x.go"
            ]
        );
    }

    #[test]
    fn go_mod_synthesis_and_mismatches() {
        let mut r = FakeRepo::new();
        let c1 = r.commit(&[], T0, &[("a.go", "package a\n")]);
        let c2 = r.commit(
            &[c1],
            T0 + 1,
            &[("go.mod", "module github.com/orig/x\n\nrequire y v1.0.0\n")],
        );
        let c3 = r.commit(&[c2], T0 + 2, &[("go.mod", "module example.com/fork/v3\n")]);
        r.tag("v1.0.0", c1);
        r.tag("v1.1.0", c2);
        r.tag("v1.2.0", c3);
        r.branch("main", c3);
        let r = Arc::new(r);
        let m = ModuleRepo::new("example.com/fork", r.clone(), "example.com/fork", None).unwrap();
        assert_eq!(m.go_mod("v1.0.0").unwrap(), b"module example.com/fork\n");
        // A go.mod naming another module of the same major version is served as is.
        assert_eq!(
            m.go_mod("v1.1.0").unwrap(),
            b"module github.com/orig/x\n\nrequire y v1.0.0\n"
        );
        let err = m.go_mod("v1.2.0").unwrap_err();
        assert!(
            err.to_string().contains(
                "go.mod has post-v1 module path \"example.com/fork/v3\" at revision v1.2.0"
            ),
            "{err}"
        );
        assert!(m.go_mod("v1.0").is_err());
        assert!(matches!(
            m.go_mod("v1.0").unwrap_err(),
            ResolveError::InvalidVersion(_)
        ));

        // A module in a subdirectory must have its own go.mod.
        let sub = ModuleRepo::new("example.com/fork/sub", r, "example.com/fork", None).unwrap();
        let err = sub.go_mod("v1.0.0").unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert_eq!(
            legacy_go_mod("example.com/a b"),
            b"module \"example.com/a b\"\n"
        );
    }

    #[test]
    fn gopkg_in_paths() {
        let mut r = FakeRepo::new();
        let c1 = r.commit(&[], T0, &[("yaml.go", "package yaml\n")]);
        r.tag("v2.1.0", c1);
        r.tag("v1.0.0", c1);
        r.branch("main", c1);
        let r = Arc::new(r);
        let m = ModuleRepo::new("gopkg.in/yaml.v2", r.clone(), "gopkg.in/yaml.v2", None).unwrap();
        assert_eq!(m.versions("").unwrap(), ["v2.1.0"]);
        assert_eq!(m.stat("v2.1.0").unwrap().version, "v2.1.0");
        assert_eq!(m.go_mod("v2.1.0").unwrap(), b"module gopkg.in/yaml.v2\n");
        let unstable = ModuleRepo::new(
            "gopkg.in/yaml.v2-unstable",
            r,
            "gopkg.in/yaml.v2-unstable",
            None,
        )
        .unwrap();
        assert!(unstable.versions("").unwrap().is_empty());
    }

    #[test]
    fn helpers_follow_go_path_rules() {
        assert!(
            has_path_prefix("a/b", "a") && has_path_prefix("a", "a") && !has_path_prefix("ab", "a")
        );
        assert!(has_path_prefix("a/b", "a/"));
        assert_eq!(join_clean(&["", "go.mod"]), "go.mod");
        assert_eq!(join_clean(&["a", "../b/./c/"]), "b/c");
        assert_eq!(join_clean(&["", ""]), "");
        assert!(is_major("example.com/m", "") && is_major("gopkg.in/x.v1", ""));
        assert!(
            !is_major("example.com/m/v2", "")
                && is_major("gopkg.in/x.v2", "/v2")
                && !is_major("example.com/m", "/v2")
        );
    }
}
