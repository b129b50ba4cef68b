//! Version conversion (the conversion half of Go's
//! `cmd/go/internal/modfetch/coderepo.go`): tags become the module's version
//! list, and any revision becomes a module version — its own canonical tag,
//! a `+incompatible` tag of an unsuffixed module without go.mod, or a
//! pseudo-version based on the highest reachable tag, checked against the
//! commit when one is asked for.

use std::cell::RefCell;
use std::collections::HashMap;

use modzip::{module, pseudo, semver};

use super::coderepo::join_clean;
use super::{info, retract};
use super::{Info, ModuleRepo, Origin, ResolveError, VersionProblem, MAX_GO_MOD};
use crate::codehost::{CodeError, RevInfo};

impl ModuleRepo {
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
            hash: self.repo.origin_hash(rev_info).to_string(),
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
        let vcs_version = repo.repo.vcs_version(code_rev, self.info);
        if let Some((v, true)) = self.tag_to_version(&vcs_version) {
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

#[cfg(test)]
mod tests {
    use crate::resolve::testrepo::{module, short, FakeRepo, T0};
    use crate::resolve::ResolveError;

    #[test]
    fn tags_become_versions_ignoring_invalid_ones() {
        let mut r = FakeRepo::new();
        let c = r.commit(&[], T0, &[("go.mod", "module example.com/m\n")]);
        for tag in [
            "v1.0.0",
            "v1.1.0",
            "v1.2.0-pre",
            "v1.10.0",
            "v1.3",
            "release",
            "v1.4.0+meta",
            "v0.0.0-20200101000000-abcdefabcdef",
            "sub/v1.0.0",
        ] {
            r.tag(tag, c);
        }
        r.branch("main", c);
        let m = module(r, "example.com/m", "example.com/m", None);
        assert_eq!(
            m.versions("").unwrap(),
            ["v1.0.0", "v1.1.0", "v1.2.0-pre", "v1.10.0"]
        );
        // The prefix is a string prefix, exactly as the go command applies it.
        assert_eq!(m.versions("v1.1").unwrap(), ["v1.1.0", "v1.10.0"]);
    }

    #[test]
    fn subdirectory_modules_use_prefixed_tags() {
        let mut r = FakeRepo::new();
        let c = r.commit(
            &[],
            T0,
            &[
                ("sub/go.mod", "module example.com/repo/sub\n"),
                ("go.mod", "module example.com/repo\n"),
            ],
        );
        r.tag("sub/v1.0.0", c);
        r.tag("sub/v1.1.0", c);
        r.tag("v1.5.0", c);
        r.tag("subx/v1.7.0", c);
        r.branch("main", c);
        let m = module(r, "example.com/repo/sub", "example.com/repo", None);
        assert_eq!(m.versions("").unwrap(), ["v1.0.0", "v1.1.0"]);
        let info = m.stat("v1.1.0").unwrap();
        assert_eq!(info.version, "v1.1.0");
        assert_eq!(info.origin.subdir, "sub");
        assert_eq!(info.origin.reference, "refs/tags/sub/v1.1.0");
    }

    #[test]
    fn incompatible_versions_depend_on_go_mod() {
        let mut r = FakeRepo::new();
        let c1 = r.commit(&[], T0, &[("a.go", "package a\n")]);
        let c2 = r.commit(&[c1], T0 + 10, &[("a.go", "package a\n")]);
        let c3 = r.commit(
            &[c2],
            T0 + 20,
            &[
                ("a.go", "package a\n"),
                ("v3/go.mod", "module example.com/m/v3\n"),
            ],
        );
        let c4 = r.commit(&[c3], T0 + 30, &[("go.mod", "module example.com/m/v4\n")]);
        r.tag("v1.0.0", c1);
        r.tag("v2.0.0", c2);
        r.tag("v2.1.0", c2);
        r.tag("v3.0.0", c3);
        r.tag("v4.0.0", c4);
        r.branch("main", c4);
        let m = module(r, "example.com/m", "example.com/m", None);
        // v3 and v4 have go.mod files at their latest tags (v3/go.mod does not
        // count for the list, but the root go.mod at v4.0.0 does).
        assert_eq!(
            m.versions("").unwrap(),
            [
                "v1.0.0",
                "v2.0.0+incompatible",
                "v2.1.0+incompatible",
                "v3.0.0+incompatible"
            ]
        );
        assert_eq!(m.stat("v2.0.0").unwrap().version, "v2.0.0+incompatible");
        assert_eq!(
            m.stat("v2.0.0+incompatible").unwrap().version,
            "v2.0.0+incompatible"
        );
        // v3/go.mod exists: only an explicit +incompatible request is honored.
        let err = m.stat("v3.0.0").unwrap_err();
        assert!(
            err.to_string()
                .contains("module path must match major version (\"example.com/m/v3\")"),
            "{err}"
        );
        assert_eq!(
            m.stat("v3.0.0+incompatible").unwrap().version,
            "v3.0.0+incompatible"
        );
        let err = m.stat("v4.0.0").unwrap_err();
        assert!(matches!(err, ResolveError::NotFound(_)), "{err}");
        let err = m.stat("v1.0.0+incompatible").unwrap_err();
        assert!(
            err.to_string()
                .contains("+incompatible suffix not allowed: major version v1 is compatible"),
            "{err}"
        );
        assert_eq!(
            m.go_mod("v2.0.0+incompatible").unwrap(),
            b"module example.com/m\n"
        );

        // A go.mod at the highest compatible tag hides every +incompatible tag.
        let mut r = FakeRepo::new();
        let c1 = r.commit(&[], T0, &[("go.mod", "module example.com/m\n")]);
        let c2 = r.commit(&[c1], T0 + 10, &[("a.go", "package a\n")]);
        r.tag("v1.0.0", c1);
        r.tag("v2.0.0", c2);
        r.branch("main", c2);
        let m = module(r, "example.com/m", "example.com/m", None);
        assert_eq!(m.versions("").unwrap(), ["v1.0.0"]);
        assert_eq!(m.query_latest().unwrap().version, "v1.0.0");
    }

    #[test]
    fn pseudo_versions_take_three_forms() {
        // No tags at all: vX.0.0-timestamp-hash.
        let mut r = FakeRepo::new();
        let c = r.commit(&[], T0, &[("go.mod", "module example.com/m\n")]);
        r.branch("main", c);
        let s = short(&r, c);
        let m = module(r, "example.com/m", "example.com/m", None);
        let info = m.latest().unwrap();
        assert_eq!(info.version, format!("v0.0.0-20200102030405-{s}"));
        assert_eq!(info.origin.reference, "");
        assert_eq!(m.query_latest().unwrap().version, info.version);

        // Release base: patch bumped, "-0." form. The highest reachable tag
        // wins even when a lower one is more recent; unreachable tags are ignored.
        let mut r = FakeRepo::new();
        let c1 = r.commit(&[], T0, &[("go.mod", "module example.com/m\n")]);
        let c2 = r.commit(&[c1], T0 + 60, &[("go.mod", "module example.com/m\n")]);
        let c3 = r.commit(&[c2], T0 + 120, &[("go.mod", "module example.com/m\n")]);
        let side = r.commit(&[c1], T0 + 180, &[("go.mod", "module example.com/m\n")]);
        r.tag("v1.5.0", c1);
        r.tag("v1.2.0", c2);
        r.tag("v1.9.0", side);
        r.tag("v1.6", c2);
        r.branch("main", c3);
        r.branch("side", side);
        let s3 = short(&r, c3);
        let m = module(r, "example.com/m", "example.com/m", None);
        assert_eq!(
            m.stat("main").unwrap().version,
            format!("v1.5.1-0.20200102030605-{s3}")
        );

        // Prerelease base: ".0." appended to the prerelease.
        let mut r = FakeRepo::new();
        let c1 = r.commit(&[], T0, &[("go.mod", "module example.com/m\n")]);
        let c2 = r.commit(&[c1], T0 + 1, &[("go.mod", "module example.com/m\n")]);
        r.tag("v1.3.0-pre", c1);
        r.branch("main", c2);
        let s2 = short(&r, c2);
        let m = module(r, "example.com/m", "example.com/m", None);
        let v = format!("v1.3.0-pre.0.20200102030406-{s2}");
        assert_eq!(m.stat("main").unwrap().version, v);
        // The prerelease is the latest version when there is no release.
        assert_eq!(m.query_latest().unwrap().version, "v1.3.0-pre");
        // And the pseudo-version itself validates.
        assert_eq!(m.stat(&v).unwrap().version, v);
    }

    #[test]
    fn pseudo_versions_for_major_and_incompatible_modules() {
        let mut r = FakeRepo::new();
        let c1 = r.commit(&[], T0, &[("go.mod", "module example.com/m/v2\n")]);
        let c2 = r.commit(&[c1], T0 + 1, &[("go.mod", "module example.com/m/v2\n")]);
        r.tag("v1.0.0", c1);
        r.branch("main", c2);
        let s2 = short(&r, c2);
        let m = module(r, "example.com/m/v2", "example.com/m", None);
        // v1.0.0 cannot be the base of a v2 pseudo-version.
        assert_eq!(
            m.latest().unwrap().version,
            format!("v2.0.0-20200102030406-{s2}")
        );
        assert_eq!(
            m.query_latest().unwrap().version,
            format!("v2.0.0-20200102030406-{s2}")
        );

        let mut r = FakeRepo::new();
        let c1 = r.commit(&[], T0, &[("a.go", "package a\n")]);
        let c2 = r.commit(&[c1], T0 + 1, &[("a.go", "package a\n")]);
        r.tag("v2.0.0", c1);
        r.branch("main", c2);
        let s2 = short(&r, c2);
        let m = module(r, "example.com/m", "example.com/m", None);
        let v = format!("v2.0.1-0.20200102030406-{s2}+incompatible");
        assert_eq!(m.stat("main").unwrap().version, v);
        assert_eq!(m.stat(&v).unwrap().version, v);
    }

    #[test]
    fn pseudo_version_checks() {
        let mut r = FakeRepo::new();
        let c1 = r.commit(&[], T0, &[("go.mod", "module example.com/m\n")]);
        let c2 = r.commit(&[c1], T0 + 1, &[("go.mod", "module example.com/m\n")]);
        let other = r.commit(&[], T0 + 2, &[("go.mod", "module example.com/m\n")]);
        r.tag("v1.0.0", c1);
        r.tag("v1.1.0", other);
        r.branch("main", c2);
        r.branch("other", other);
        let s1 = short(&r, c1);
        let s2 = short(&r, c2);
        let m = module(r, "example.com/m", "example.com/m", None);
        let good = format!("v1.0.1-0.20200102030406-{s2}");
        let info = m.stat(&good).unwrap();
        assert_eq!(info.version, good);

        // The base tag must be an ancestor.
        let err = m
            .stat(&format!("v1.1.1-0.20200102030406-{s2}"))
            .unwrap_err();
        assert!(matches!(err, ResolveError::InvalidVersion(_)), "{err}");
        assert!(
            err.to_string().contains(&format!(
                "revision {s2} is not a descendent of preceding tag (v1.1.0)"
            )),
            "{err}"
        );
        assert!(err.to_string().contains("invalid pseudo-version"), "{err}");
        // The base tag must exist.
        let err = m
            .stat(&format!("v1.4.1-0.20200102030406-{s2}"))
            .unwrap_err();
        assert!(
            err.to_string().contains("preceding tag (v1.4.0) not found"),
            "{err}"
        );
        // Timestamp and hash must match the commit.
        let err = m
            .stat(&format!("v1.0.1-0.20200102030407-{s2}"))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("does not match version-control timestamp (expected 20200102030406)"),
            "{err}"
        );
        let err = m
            .stat(&format!("v1.0.1-0.20200102030406-{}", &s2[..10]))
            .unwrap_err();
        assert!(
            err.to_string().contains(&format!(
                "revision is shorter than canonical (expected {s2})"
            )),
            "{err}"
        );
        // A tagged commit must not be named by a pseudo-version of its own tag.
        let err = m
            .stat(&format!("v1.0.1-0.20200102030405-{s1}"))
            .unwrap_err();
        assert!(
            err.to_string().contains("tag (v1.0.0) found on revision"),
            "{err}"
        );
        // Without a base, an unsuffixed module's pseudo-version must be v0.
        let err = m.stat(&format!("v1.0.0-20200102030406-{s2}")).unwrap_err();
        assert!(
            err.to_string()
                .contains("major version without preceding tag must be v0, not v1"),
            "{err}"
        );
        // The zero-base form is fine.
        let zero = format!("v0.0.0-20200102030406-{s2}");
        assert_eq!(m.stat(&zero).unwrap().version, zero);
        // go.mod and zip of a pseudo-version re-check it.
        assert!(m.go_mod(&format!("v1.1.1-0.20200102030406-{s2}")).is_err());
        assert_eq!(m.go_mod(&good).unwrap(), b"module example.com/m\n");
    }

    #[test]
    fn branches_hashes_and_tags_resolve() {
        let mut r = FakeRepo::new();
        let c1 = r.commit(&[], T0, &[("go.mod", "module example.com/m\n")]);
        let c2 = r.commit(&[c1], T0 + 1, &[("go.mod", "module example.com/m\n")]);
        r.tag("v1.0.0", c1);
        r.tag("v1.2.0+build", c2);
        r.tag("v1.3", c2);
        r.branch("main", c2);
        r.branch("v1.1.0", c1);
        let h1 = r.hash(c1);
        let s2 = short(&r, c2);
        let m = module(r, "example.com/m", "example.com/m", None);

        let by_tag = m.stat("v1.0.0").unwrap();
        assert_eq!(
            (by_tag.version.as_str(), by_tag.origin.reference.as_str()),
            ("v1.0.0", "refs/tags/v1.0.0")
        );
        let by_hash = m.stat(&h1).unwrap();
        assert_eq!(
            (by_hash.version.as_str(), by_hash.origin.reference.as_str()),
            ("v1.0.0", "refs/heads/v1.1.0")
        );
        assert_eq!(by_hash.origin.hash, h1);
        assert_eq!(m.stat(&h1[..7]).unwrap().version, "v1.0.0");
        assert_eq!(m.stat(&h1[..12]).unwrap().version, "v1.0.0");

        let pseudo = format!("v1.2.1-0.20200102030406-{s2}");
        // A non-canonical tag equivalent to the request becomes the base.
        assert_eq!(m.stat("v1.2.0+build").unwrap().version, pseudo);
        assert_eq!(m.query("v1.2.0+build").unwrap().version, pseudo);
        // Tags with build metadata also count as pseudo-version bases.
        let by_branch = m.stat("main").unwrap();
        assert_eq!(by_branch.version, pseudo);
        assert_eq!(by_branch.origin.reference, "", "pseudo-versions drop Ref");
        // "v1.3" is not a complete version, so it is just another name.
        assert_eq!(m.stat("v1.3").unwrap().version, by_branch.version);

        // A canonical version that is a branch, not a tag, is refused.
        let err = m.stat("v1.1.0").unwrap_err();
        assert!(
            err.to_string()
                .contains("resolves to version v1.0.0 (v1.1.0 is not a tag)"),
            "{err}"
        );
        let err = m.stat("v9.9.9").unwrap_err();
        assert!(matches!(err, ResolveError::NotFound(_)), "{err}");
        assert_eq!(err.http_status(), 404);
        let err = m.stat("nosuchbranch").unwrap_err();
        assert_eq!(
            err.to_string(),
            "example.com/m@nosuchbranch: invalid version: unknown revision nosuchbranch"
        );
    }

    #[test]
    fn retracted_tags_are_skipped_for_commit_versions() {
        let mut r = FakeRepo::new();
        let c1 = r.commit(&[], T0, &[("go.mod", "module example.com/m\n")]);
        let c2 = r.commit(
            &[c1],
            T0 + 1,
            &[("go.mod", "module example.com/m\nretract v1.0.1\n")],
        );
        r.tag("v1.0.0", c1);
        r.tag("v1.0.1", c1);
        r.tag("v1.1.0", c2);
        r.branch("main", c2);
        let h1 = r.hash(c1);
        let m = module(r, "example.com/m", "example.com/m", None);
        assert_eq!(m.stat(&h1).unwrap().version, "v1.0.0");
        // Explicit requests for a retracted version still resolve.
        assert_eq!(m.stat("v1.0.1").unwrap().version, "v1.0.1");
    }
}
