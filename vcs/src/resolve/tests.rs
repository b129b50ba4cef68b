//! Resolution tests against an in-memory repository.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{Cursor, Read};
use std::sync::Arc;

use time::OffsetDateTime;

use super::*;
use crate::codehost::{CodeError, CodeRepo, RevInfo, Tag, TreeFile};

/// One commit of the fake repository.
struct Commit {
    hash: String,
    parents: Vec<String>,
    time: OffsetDateTime,
    files: BTreeMap<String, Vec<u8>>,
}

/// An in-memory repository with commits, tags, branches and HEAD.
#[derive(Default)]
struct FakeRepo {
    commits: Vec<Commit>,
    tags: BTreeMap<String, String>,
    branches: BTreeMap<String, String>,
    head_branch: String,
}

impl FakeRepo {
    fn new() -> FakeRepo {
        FakeRepo {
            head_branch: "main".into(),
            ..FakeRepo::default()
        }
    }

    /// Adds a commit; `parents` are indexes returned by earlier calls.
    fn commit(&mut self, parents: &[usize], unix: i64, files: &[(&str, &str)]) -> usize {
        let n = self.commits.len() + 1;
        let hash = format!("{:06x}{:06x}{:028x}", n * 0x10101, 0xabcdef ^ n, n);
        self.commits.push(Commit {
            hash,
            parents: parents
                .iter()
                .map(|&p| self.commits[p].hash.clone())
                .collect(),
            time: OffsetDateTime::from_unix_timestamp(unix).unwrap(),
            files: files
                .iter()
                .map(|(p, d)| (p.to_string(), d.as_bytes().to_vec()))
                .collect(),
        });
        n - 1
    }

    fn tag(&mut self, name: &str, commit: usize) {
        self.tags
            .insert(name.into(), self.commits[commit].hash.clone());
    }

    fn branch(&mut self, name: &str, commit: usize) {
        self.branches
            .insert(name.into(), self.commits[commit].hash.clone());
    }

    fn hash(&self, commit: usize) -> String {
        self.commits[commit].hash.clone()
    }

    fn by_hash(&self, hash: &str) -> &Commit {
        self.commits.iter().find(|c| c.hash == hash).unwrap()
    }

    fn refs(&self) -> Vec<(String, String)> {
        let mut refs = Vec::new();
        if let Some(h) = self.branches.get(&self.head_branch) {
            refs.push(("HEAD".to_string(), h.clone()));
        }
        refs.extend(
            self.branches
                .iter()
                .map(|(b, h)| (format!("refs/heads/{b}"), h.clone())),
        );
        refs.extend(
            self.tags
                .iter()
                .map(|(t, h)| (format!("refs/tags/{t}"), h.clone())),
        );
        refs
    }

    fn info(&self, hash: &str, origin_ref: Option<String>) -> RevInfo {
        let c = self.by_hash(hash);
        RevInfo {
            hash: c.hash.clone(),
            short: c.hash[..12].to_string(),
            time: c.time,
            tags: self
                .tags
                .iter()
                .filter(|(_, h)| **h == c.hash)
                .map(|(t, _)| t.clone())
                .collect(),
            origin_ref,
        }
    }

    fn ancestors(&self, hash: &str) -> HashSet<String> {
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([hash.to_string()]);
        while let Some(h) = queue.pop_front() {
            if seen.insert(h.clone()) {
                queue.extend(self.by_hash(&h).parents.iter().cloned());
            }
        }
        seen
    }
}

struct TestFile {
    path: String,
    data: Vec<u8>,
}

impl modzip::zip::ModuleFile for TestFile {
    fn path(&self) -> &str {
        &self.path
    }
    fn metadata(&self) -> std::io::Result<modzip::zip::FileMeta> {
        Ok(modzip::zip::FileMeta {
            kind: modzip::zip::FileKind::Regular,
            size: self.data.len() as u64,
        })
    }
    fn open(&self) -> std::io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.data.as_slice()))
    }
}

impl CodeRepo for FakeRepo {
    fn url(&self) -> &str {
        "https://example.com/repo"
    }

    fn tags(&self, prefix: &str) -> Result<Vec<Tag>, CodeError> {
        Ok(self
            .tags
            .iter()
            .filter(|(t, _)| t.starts_with(prefix))
            .map(|(t, h)| Tag {
                name: t.clone(),
                hash: h.clone(),
            })
            .collect())
    }

    fn stat(&self, rev: &str) -> Result<RevInfo, CodeError> {
        if let Some(h) = self.tags.get(rev) {
            return Ok(self.info(h, Some(format!("refs/tags/{rev}"))));
        }
        if let Some(h) = self.branches.get(rev) {
            return Ok(self.info(h, Some(format!("refs/heads/{rev}"))));
        }
        if rev == "HEAD" {
            return self.latest();
        }
        if rev.len() >= 7 && rev.len() <= 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()) {
            let matches: Vec<&Commit> = self
                .commits
                .iter()
                .filter(|c| c.hash.starts_with(rev))
                .collect();
            if matches.len() > 1 {
                return Err(CodeError::Other(format!("ambiguous revision {rev}")));
            }
            if let Some(c) = matches.first() {
                let origin_ref = self
                    .refs()
                    .into_iter()
                    .filter(|(_, h)| *h == c.hash)
                    .map(|(r, _)| r)
                    .min();
                return Ok(self.info(&c.hash, origin_ref));
            }
        }
        Err(CodeError::NotFound(format!("unknown revision {rev}")))
    }

    fn latest(&self) -> Result<RevInfo, CodeError> {
        let h = self
            .branches
            .get(&self.head_branch)
            .ok_or_else(|| CodeError::NotFound("no commits".into()))?;
        Ok(self.info(h, Some("HEAD".into())))
    }

    fn read_file(
        &self,
        rev: &str,
        file: &str,
        _max_size: u64,
    ) -> Result<Option<Vec<u8>>, CodeError> {
        let info = self.stat(rev)?;
        Ok(self.by_hash(&info.hash).files.get(file).cloned())
    }

    fn recent_tag(
        &self,
        rev: &str,
        prefix: &str,
        allowed: &dyn Fn(&str) -> bool,
    ) -> Result<Option<String>, CodeError> {
        let info = self.stat(rev)?;
        let reachable = self.ancestors(&info.hash);
        let mut best: Option<String> = None;
        for (tag, hash) in &self.tags {
            if !reachable.contains(hash) || !tag.starts_with(prefix) || !allowed(tag) {
                continue;
            }
            let better = match &best {
                None => true,
                Some(b) => {
                    semver::compare(&tag[prefix.len()..], &b[prefix.len()..])
                        == std::cmp::Ordering::Greater
                }
            };
            if better {
                best = Some(tag.clone());
            }
        }
        Ok(best)
    }

    fn descends_from(&self, rev: &str, tag: &str) -> Result<bool, CodeError> {
        let info = self.stat(rev)?;
        let Some(tag_hash) = self.tags.get(tag) else {
            return Ok(false);
        };
        Ok(self.ancestors(&info.hash).contains(tag_hash))
    }

    fn files(&self, rev: &str, subdir: &str) -> Result<Vec<TreeFile>, CodeError> {
        let info = self.stat(rev)?;
        let prefix = if subdir.is_empty() {
            String::new()
        } else {
            format!("{subdir}/")
        };
        Ok(self
            .by_hash(&info.hash)
            .files
            .iter()
            .filter_map(|(p, d)| {
                let rel = p.strip_prefix(&prefix)?;
                let file: TreeFile = Box::new(TestFile {
                    path: rel.to_string(),
                    data: d.clone(),
                });
                Some(file)
            })
            .collect())
    }
}

const T0: i64 = 1_577_934_245; // 2020-01-02T03:04:05Z

fn module(repo: FakeRepo, path: &str, root: &str, subdir: Option<&str>) -> ModuleRepo {
    ModuleRepo::new(path, Arc::new(repo), root, subdir).unwrap()
}

fn short(repo: &FakeRepo, commit: usize) -> String {
    repo.hash(commit)[..12].to_string()
}

/// The zip's file names, with the `path@version/` prefix, sorted.
fn zip_names(m: &ModuleRepo, version: &str) -> Vec<String> {
    let bytes = m
        .zip(version, Cursor::new(Vec::new()))
        .unwrap()
        .into_inner();
    let checked = modzip::zip::check_zip(
        &modzip::Version::new(m.module_path(), version),
        Cursor::new(bytes),
    )
    .unwrap();
    assert!(checked.invalid.is_empty(), "{:?}", checked.invalid);
    // Like Go's CheckZip, `valid` holds full entry names, prefix included.
    let mut names: Vec<String> = checked.valid.clone();
    names.sort();
    names
}

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
fn major_subdirectory_layout_copies_license() {
    let mut r = FakeRepo::new();
    let c = r.commit(
        &[],
        T0,
        &[
            ("go.mod", "module example.com/m\n"),
            ("LICENSE", "root license\n"),
            ("v2/go.mod", "module example.com/m/v2\n"),
            ("v2/y.go", "package y\n"),
        ],
    );
    r.tag("v2.0.0", c);
    r.tag("v1.0.0", c);
    r.branch("main", c);
    let m = module(r, "example.com/m/v2", "example.com/m", None);
    assert_eq!(m.versions("").unwrap(), ["v2.0.0"]);
    assert_eq!(m.go_mod("v2.0.0").unwrap(), b"module example.com/m/v2\n");
    let names = zip_names(&m, "v2.0.0");
    assert_eq!(
        names,
        [
            "example.com/m/v2@v2.0.0/LICENSE",
            "example.com/m/v2@v2.0.0/go.mod",
            "example.com/m/v2@v2.0.0/y.go"
        ]
    );
}

#[test]
fn license_is_copied_only_into_subdirectory_modules_without_one() {
    let mut r = FakeRepo::new();
    let c = r.commit(
        &[],
        T0,
        &[
            ("LICENSE", "root\n"),
            ("go.mod", "module example.com/repo\n"),
            ("a/go.mod", "module example.com/repo/a\n"),
            ("b/go.mod", "module example.com/repo/b\n"),
            ("b/LICENSE", "own\n"),
        ],
    );
    r.tag("a/v1.0.0", c);
    r.tag("b/v1.0.0", c);
    r.tag("v1.0.0", c);
    r.branch("main", c);
    let r = Arc::new(r);
    let a = ModuleRepo::new("example.com/repo/a", r.clone(), "example.com/repo", None).unwrap();
    let zipped = a
        .zip("v1.0.0", Cursor::new(Vec::new()))
        .unwrap()
        .into_inner();
    let checked = modzip::zip::check_zip(
        &modzip::Version::new("example.com/repo/a", "v1.0.0"),
        Cursor::new(zipped.clone()),
    )
    .unwrap();
    let mut valid = checked.valid.clone();
    valid.sort();
    assert_eq!(
        valid,
        [
            "example.com/repo/a@v1.0.0/LICENSE",
            "example.com/repo/a@v1.0.0/go.mod"
        ]
    );
    // The copied LICENSE carries the root's contents.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a");
    modzip::zip::unzip(
        &out,
        &modzip::Version::new("example.com/repo/a", "v1.0.0"),
        Cursor::new(zipped),
    )
    .unwrap();
    assert_eq!(std::fs::read(out.join("LICENSE")).unwrap(), b"root\n");

    let b = ModuleRepo::new("example.com/repo/b", r.clone(), "example.com/repo", None).unwrap();
    let zipped = b
        .zip("v1.0.0", Cursor::new(Vec::new()))
        .unwrap()
        .into_inner();
    let checked = modzip::zip::check_zip(
        &modzip::Version::new("example.com/repo/b", "v1.0.0"),
        Cursor::new(zipped),
    )
    .unwrap();
    let mut valid = checked.valid;
    valid.sort();
    assert_eq!(
        valid,
        [
            "example.com/repo/b@v1.0.0/LICENSE",
            "example.com/repo/b@v1.0.0/go.mod"
        ]
    );

    let root = ModuleRepo::new("example.com/repo", r, "example.com/repo", None).unwrap();
    let names = zip_names(&root, "v1.0.0");
    // The root module holds everything except the nested modules' trees.
    assert!(names.iter().any(|n| n == "example.com/repo@v1.0.0/LICENSE"));
    assert!(!names.iter().any(|n| n.contains("/a/")));
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
        err.to_string()
            .contains("go.mod has post-v1 module path \"example.com/fork/v3\" at revision v1.2.0"),
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
    assert!(
        is_version_prefix("v1")
            && is_version_prefix("v1.2")
            && !is_version_prefix("v1.2.3")
            && !is_version_prefix("v1-pre")
    );
}
