//! An in-memory repository for the resolution tests of every module here.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{Cursor, Read};
use std::sync::Arc;

use time::OffsetDateTime;

use modzip::semver;

use super::ModuleRepo;
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
pub(super) struct FakeRepo {
    commits: Vec<Commit>,
    tags: BTreeMap<String, String>,
    branches: BTreeMap<String, String>,
    head_branch: String,
}

impl FakeRepo {
    pub(super) fn new() -> FakeRepo {
        FakeRepo {
            head_branch: "main".into(),
            ..FakeRepo::default()
        }
    }

    /// Adds a commit; `parents` are indexes returned by earlier calls.
    pub(super) fn commit(&mut self, parents: &[usize], unix: i64, files: &[(&str, &str)]) -> usize {
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

    pub(super) fn tag(&mut self, name: &str, commit: usize) {
        self.tags
            .insert(name.into(), self.commits[commit].hash.clone());
    }

    pub(super) fn branch(&mut self, name: &str, commit: usize) {
        self.branches
            .insert(name.into(), self.commits[commit].hash.clone());
    }

    pub(super) fn hash(&self, commit: usize) -> String {
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

pub(super) const T0: i64 = 1_577_934_245; // 2020-01-02T03:04:05Z

pub(super) fn module(repo: FakeRepo, path: &str, root: &str, subdir: Option<&str>) -> ModuleRepo {
    ModuleRepo::new(path, Arc::new(repo), root, subdir).unwrap()
}

pub(super) fn short(repo: &FakeRepo, commit: usize) -> String {
    repo.hash(commit)[..12].to_string()
}

/// The zip's file names, with the `path@version/` prefix, sorted.
pub(super) fn zip_names(m: &ModuleRepo, version: &str) -> Vec<String> {
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
