//! Mercurial, Subversion and Fossil repositories, read through their
//! command-line tools exactly as the go command drives them
//! (`cmd/go/internal/modfetch/codehost/vcs.go` and `svn.go`).
//!
//! Each [`CliRepo`] works in a fresh directory of its own under the work
//! root (the fetcher's `GoGetDir/vcs`), removed when it is dropped: `hg
//! init` plus `hg pull` for Mercurial, `fossil clone` for Fossil, nothing
//! for Subversion (whose commands go straight to the server). The commands,
//! their arguments and the parsing of their output follow the go command,
//! so tags, branches, revisions and pseudo-versions come out the same:
//!
//! - Mercurial: tags from `hg tags` (without `tip`), named branches from
//!   `hg branches -c` (a branch name or `tip` always fetches before it is
//!   looked up), revisions through `hg log --rev=REV`, pseudo-version bases
//!   from the tags on `ancestors(REV)`, zips from `hg archive` (which adds
//!   `.hg_archival.txt` to a root module, as it does for the go command);
//! - Subversion: tags as `svn list REMOTE/tags` prints them (with their
//!   trailing slash, so none is ever a version), revisions by number through
//!   `svn log REMOTE@REV`, no pseudo-version base, zips from `svn list` and
//!   `svn export`; the `.info` origin carries no hash;
//! - Fossil: no tags (the go command's tag pattern matches nothing),
//!   revisions through `fossil info`, zips from `fossil zip`.
//!
//! Unlike the go command, every command runs under the fetch's deadline
//! (the child and everything it started are killed), with its output
//! capped, stdin closed, and arguments that cannot be read as options: the
//! remote is refused unless it is a URL whose host and user do not start
//! with `-`, and revisions and file names are passed after `--` or as
//! `--rev=` values, as the go command passes them.

mod run;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use modzip::zip::{FileKind, FileMeta, ModuleFile, MAX_ZIP_FILE};
use time::OffsetDateTime;

pub use run::RunError;
use run::{Job, Runner};

use crate::codehost::{CodeError, CodeRepo, RevInfo, Tag, TreeFile};
use crate::discovery::Vcs;
use crate::interrupt::Interrupt;

/// Most bytes of standard output kept from a listing or log command.
const MAX_LISTING: u64 = 64 << 20;

/// What a [`CliRepo`] runs its commands with.
#[derive(Debug, Clone, Default)]
pub struct CliOptions {
    /// Variables set for every command on top of the server's environment
    /// (`HOME`, whose `.subversion` directory holds Subversion's cached
    /// credentials; proxies).
    pub env: Vec<(String, String)>,
    /// Mercurial's configuration file (Athens' `HGRCPath`), read after the
    /// system configuration in place of the user's `~/.hgrc`.
    pub hgrc_path: Option<PathBuf>,
    /// The fetch's deadline and cancellation.
    pub interrupt: Interrupt,
}

/// The version-control systems driven through their command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hg,
    Svn,
    Fossil,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Hg => "hg",
            Kind::Svn => "svn",
            Kind::Fossil => "fossil",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Hg => "Mercurial",
            Kind::Svn => "Subversion",
            Kind::Fossil => "Fossil",
        }
    }

    /// The revision the go command stats for `latest`.
    fn latest(self) -> &'static str {
        match self {
            Kind::Hg => "tip",
            Kind::Svn => "latest",
            Kind::Fossil => "trunk",
        }
    }

    /// Names that must never be served from the local copy without
    /// fetching first (the go command's `badLocalRevRE`).
    fn bad_local_rev(self, rev: &str) -> bool {
        self == Kind::Hg && rev == "tip"
    }
}

/// A Mercurial, Subversion or Fossil repository read through its command
/// line.
pub struct CliRepo {
    kind: Kind,
    remote: String,
    /// This repository's private directory, removed on drop.
    work: PathBuf,
    /// The local clone (Mercurial, Fossil) inside `work`.
    repo_dir: PathBuf,
    runner: Runner,
    state: Mutex<State>,
}

impl std::fmt::Debug for CliRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CliRepo")
            .field("vcs", &self.kind.name())
            .field("remote", &self.remote)
            .finish()
    }
}

/// What the go command computes once per repository.
#[derive(Default)]
struct State {
    tags: Option<BTreeSet<String>>,
    branches: Option<HashSet<String>>,
    fetched: Option<Result<(), CodeError>>,
    /// Stat answers by revision, with the version the code host named
    /// (the go command's `RevInfo.Version`).
    stats: HashMap<String, (RevInfo, String)>,
    /// File contents by (revision, path); `None` for absent files.
    files: HashMap<(String, String), Option<Vec<u8>>>,
}

/// Distinguishes work directories made by one process.
static WORK_SEQ: AtomicU64 = AtomicU64::new(0);

impl CliRepo {
    /// Opens the `vcs` repository at `remote`, in a new directory under
    /// `work_root`. Mercurial's is initialised with `remote` as its default
    /// path; Fossil's is cloned now. `vcs` must be Mercurial, Subversion or
    /// Fossil.
    pub fn open(
        vcs: Vcs,
        remote: &str,
        work_root: &Path,
        options: CliOptions,
    ) -> Result<CliRepo, CodeError> {
        let kind = match vcs {
            Vcs::Hg => Kind::Hg,
            Vcs::Svn => Kind::Svn,
            Vcs::Fossil => Kind::Fossil,
            other => {
                return Err(CodeError::Other(format!(
                    "{other} repositories are not read through a command line"
                )))
            }
        };
        check_remote(kind, remote)?;
        std::fs::create_dir_all(work_root)
            .map_err(|e| CodeError::Other(format!("creating {}: {e}", work_root.display())))?;
        let work = loop {
            let candidate = work_root.join(format!(
                "{}-{}-{}",
                kind.name(),
                std::process::id(),
                WORK_SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            match std::fs::create_dir(&candidate) {
                Ok(()) => break candidate,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // Left behind by an earlier process with the same id.
                    let _ = std::fs::remove_dir_all(&candidate);
                }
                Err(e) => {
                    return Err(CodeError::Other(format!(
                        "creating {}: {e}",
                        candidate.display()
                    )))
                }
            }
        };
        let repo_dir = work.join("repo");
        let mut env = options.env.clone();
        if kind == Kind::Hg {
            if let Some(hgrc) = &options.hgrc_path {
                // Athens copies HGRCPath over the user's ~/.hgrc; naming it
                // after the system files has the same effect without
                // touching the home directory.
                env.push((
                    "HGRCPATH".to_string(),
                    format!(
                        "/etc/mercurial/hgrc:/etc/mercurial/hgrc.d:{}",
                        hgrc.display()
                    ),
                ));
            }
        }
        let repo = CliRepo {
            kind,
            remote: remote.to_string(),
            work,
            repo_dir,
            runner: Runner {
                env,
                interrupt: options.interrupt,
                what: kind.title().to_string(),
            },
            state: Mutex::new(State::default()),
        };
        let dir_err = |e: std::io::Error| CodeError::Other(format!("creating work dir: {e}"));
        match kind {
            Kind::Hg => {
                std::fs::create_dir(&repo.repo_dir).map_err(dir_err)?;
                repo.run(&["hg", "init", "."], MAX_LISTING)?;
                std::fs::write(
                    repo.repo_dir.join(".hg/hgrc"),
                    format!("[paths]\ndefault = {remote}\n"),
                )
                .map_err(dir_err)?;
            }
            Kind::Fossil => {
                std::fs::create_dir(&repo.repo_dir).map_err(dir_err)?;
                repo.run(&["fossil", "clone", "--", remote, ".fossil"], MAX_LISTING)
                    .map_err(|e| match e {
                        // The repository is not there (or not a fossil).
                        CodeError::Other(reason) if !is_local_fault(&reason) => {
                            CodeError::NotFound(reason)
                        }
                        other => other,
                    })?;
            }
            Kind::Svn => std::fs::create_dir(&repo.repo_dir).map_err(dir_err)?,
        }
        Ok(repo)
    }

    /// Runs a command in the local clone's directory.
    fn run(&self, args: &[&str], max_stdout: u64) -> Result<Vec<u8>, CodeError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        self.runner
            .run(Job {
                args: &args,
                dir: &self.repo_dir,
                max_stdout,
                output_file: None,
            })
            .map_err(code_error)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pulls everything from the remote, once (the go command's `fetch`).
    fn fetch(&self, state: &mut State) -> Result<(), CodeError> {
        if state.fetched.is_none() {
            let result = match self.kind {
                Kind::Hg => self.run(&["hg", "pull", "-f"], MAX_LISTING).map(drop),
                Kind::Fossil => self
                    .run(&["fossil", "pull", "-R", ".fossil"], MAX_LISTING)
                    .map(drop),
                Kind::Svn => Ok(()),
            };
            state.fetched = Some(result);
        }
        match state.fetched.as_ref() {
            Some(Err(e)) => Err(clone_error(e)),
            _ => Ok(()),
        }
    }

    fn load_tags(&self, state: &mut State) -> Result<(), CodeError> {
        if state.tags.is_some() {
            return Ok(());
        }
        let out = match self.kind {
            Kind::Hg => {
                // Unlike the go command, a failed pull is reported rather
                // than listed as "no tags": a proxy must not record an
                // empty list for an origin it could not reach.
                self.fetch(state)?;
                self.run(&["hg", "tags", "-q"], MAX_LISTING).ok()
            }
            Kind::Svn => {
                let tags = format!(
                    "{}/tags",
                    self.remote.strip_suffix("/trunk").unwrap_or(&self.remote)
                );
                // A repository without a tags directory has no tags.
                self.run(&["svn", "list", "--", &tags], MAX_LISTING).ok()
            }
            // The go command's pattern for `fossil tag list` output
            // matches nothing: Fossil repositories have no tagged versions.
            Kind::Fossil => None,
        };
        let text = out
            .map(|o| String::from_utf8_lossy(&o).into_owned())
            .unwrap_or_default();
        let tags = match self.kind {
            Kind::Hg => text
                .split('\n')
                .filter(|line| !line.is_empty() && !self.kind.bad_local_rev(line))
                .map(str::to_string)
                .collect(),
            // `(?m)^(.*?)/?$`, whole matches: each line with its trailing
            // slash, and an empty match at the end of the text.
            Kind::Svn => svn_tag_matches(&text).into_iter().collect(),
            Kind::Fossil => BTreeSet::new(),
        };
        state.tags = Some(tags);
        Ok(())
    }

    fn load_branches(&self, state: &mut State) {
        if state.branches.is_some() {
            return;
        }
        let mut branches = HashSet::new();
        if self.kind == Kind::Hg && self.fetch(state).is_ok() {
            if let Ok(out) = self.run(&["hg", "branches", "-c", "-q"], MAX_LISTING) {
                for line in String::from_utf8_lossy(&out).split('\n') {
                    if !line.is_empty() && !self.kind.bad_local_rev(line) {
                        branches.insert(line.to_string());
                    }
                }
            }
        }
        state.branches = Some(branches);
    }

    /// The go command's `vcsRepo.Stat`: the answer and the version the
    /// code host names for `rev`.
    fn stat_rev(&self, rev: &str) -> Result<(RevInfo, String), CodeError> {
        let mut state = self.state();
        if let Some(hit) = state.stats.get(rev) {
            return Ok(hit.clone());
        }
        let asked = rev;
        let rev = if rev == "latest" {
            self.kind.latest()
        } else {
            rev
        };
        self.load_branches(&mut state);
        let branches = state.branches.as_ref().expect("loaded");
        let rev_ok = !self.kind.bad_local_rev(rev) && !branches.contains(rev);
        let mut found = None;
        if rev_ok {
            found = self.stat_local(rev).ok();
        }
        let (info, mut version) = match found {
            Some(hit) => hit,
            None => {
                self.fetch(&mut state)?;
                self.stat_local(rev)?
            }
        };
        if !rev_ok {
            version = info.hash.clone();
        }
        state
            .stats
            .insert(asked.to_string(), (info.clone(), version.clone()));
        Ok((info, version))
    }

    fn stat_local(&self, rev: &str) -> Result<(RevInfo, String), CodeError> {
        let unknown = || CodeError::NotFound(format!("unknown revision {rev}"));
        let out = match self.kind {
            Kind::Hg => self.run(
                &[
                    "hg",
                    "log",
                    "-l1",
                    &format!("--rev={rev}"),
                    "--template",
                    "{node} {date|hgdate} {tags}",
                ],
                MAX_LISTING,
            ),
            Kind::Svn => {
                let target = if rev == "latest" {
                    self.remote.clone()
                } else {
                    format!("{}@{rev}", self.remote)
                };
                self.run(&["svn", "log", "-l1", "--xml", "--", &target], MAX_LISTING)
            }
            Kind::Fossil => self.run(&["fossil", "info", "-R", ".fossil", "--", rev], MAX_LISTING),
        };
        let out = match out {
            Ok(out) => out,
            // The go command reads any failure as an unknown revision;
            // a stopped or missing command is reported as what it is.
            Err(CodeError::Other(reason)) if !is_local_fault(&reason) => return Err(unknown()),
            Err(e) => return Err(e),
        };
        let text = String::from_utf8_lossy(&out);
        let (mut info, version) = match self.kind {
            Kind::Hg => parse_hg_stat(rev, &text)?,
            Kind::Svn => parse_svn_stat(rev, &text)?,
            Kind::Fossil => parse_fossil_stat(rev, &text)?,
        };
        let duplicates_hash = info.hash.starts_with(rev) && rev.len() >= 12;
        info.origin_ref = if duplicates_hash {
            None
        } else {
            Some(rev.to_string())
        };
        Ok((info, version))
    }

    /// Writes the archive of `rev`'s `subdir` made by `hg archive` or
    /// `fossil zip` into the work directory and opens it.
    fn archive(&self, rev: &str, subdir: &str) -> Result<Vec<TreeFile>, CodeError> {
        let target = self.work.join("archive.zip");
        let _ = std::fs::remove_file(&target);
        let target_text = target.display().to_string();
        let args: Vec<String> = match self.kind {
            Kind::Hg => {
                let mut a = vec![
                    "hg".to_string(),
                    "archive".into(),
                    "-t".into(),
                    "zip".into(),
                    "--no-decode".into(),
                    format!("--rev={rev}"),
                    "--prefix=prefix/".into(),
                ];
                if !subdir.is_empty() {
                    a.push(format!("--include={subdir}/**"));
                }
                a.push("--".into());
                a.push(target_text);
                a
            }
            _ => {
                // Run beside the clone with an absolute -R, as the go
                // command does to avoid a fossil bug with output paths.
                let mut a = vec![
                    "fossil".to_string(),
                    "zip".into(),
                    "-R".into(),
                    self.repo_dir.join(".fossil").display().to_string(),
                    "--name".into(),
                    "prefix".into(),
                ];
                if !subdir.is_empty() && !subdir.contains(['*', '?', '[', ']', ',']) {
                    a.push(format!("--include={subdir}"));
                }
                a.push("--".into());
                a.push(rev.to_string());
                a.push("archive.zip".into());
                a
            }
        };
        let dir = if self.kind == Kind::Hg {
            &self.repo_dir
        } else {
            &self.work
        };
        self.runner
            .run(Job {
                args: &args,
                dir,
                max_stdout: MAX_LISTING,
                output_file: Some((target.clone(), MAX_ZIP_FILE)),
            })
            .map_err(code_error)?;
        read_archive(&target, subdir)
    }

    /// The go command's `svnReadZip`: `svn list` for the names, `svn
    /// export` for the contents.
    fn svn_export(&self, rev: &str, subdir: &str) -> Result<Vec<TreeFile>, CodeError> {
        let mut remote_path = self.remote.clone();
        if !subdir.is_empty() {
            remote_path = format!("{remote_path}/{subdir}");
        }
        let listing = self.run(
            &[
                "svn",
                "list",
                "--non-interactive",
                "--xml",
                "--incremental",
                "--recursive",
                "--revision",
                rev,
                "--",
                &remote_path,
            ],
            MAX_LISTING,
        )?;
        let entries = parse_svn_list(&String::from_utf8_lossy(&listing))?;
        let export = self.work.join("export");
        let _ = std::fs::remove_dir_all(&export);
        let export_text = export.display().to_string();
        self.run(
            &[
                "svn",
                "export",
                "--non-interactive",
                "--quiet",
                "--native-eol",
                "LF",
                "--ignore-externals",
                "--ignore-keywords",
                "--revision",
                rev,
                "--",
                &remote_path,
                &export_text,
            ],
            MAX_LISTING,
        )?;
        let mut files: Vec<TreeFile> = Vec::new();
        let mut total = 0u64;
        for entry in entries.into_iter().filter(|e| e.kind == "file") {
            let disk = export.join(&entry.name);
            let meta = std::fs::metadata(&disk).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    CodeError::Other(format!(
                        "file reported by 'svn list', but not written by 'svn export': {}",
                        entry.name
                    ))
                } else {
                    CodeError::Other(format!("error opening file created by 'svn export': {e}"))
                }
            })?;
            if meta.len() != entry.size {
                return Err(CodeError::Other(format!(
                    "file size differs between 'svn list' and 'svn export': file {} listed as {} bytes, but exported as {} bytes",
                    entry.name, entry.size, meta.len()
                )));
            }
            total += meta.len();
            if total > MAX_ZIP_FILE {
                return Err(CodeError::Refused(
                    "ReadZip: encoded file exceeds allowed size".to_string(),
                ));
            }
            files.push(Box::new(DiskFile {
                path: entry.name,
                disk,
                size: meta.len(),
            }));
        }
        Ok(files)
    }
}

impl Drop for CliRepo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

impl CodeRepo for CliRepo {
    fn vcs(&self) -> &str {
        self.kind.name()
    }

    fn url(&self) -> &str {
        &self.remote
    }

    fn tags(&self, prefix: &str) -> Result<Vec<Tag>, CodeError> {
        let mut state = self.state();
        self.load_tags(&mut state)?;
        Ok(state
            .tags
            .as_ref()
            .expect("loaded")
            .iter()
            .filter(|t| t.starts_with(prefix))
            .map(|name| Tag {
                name: name.clone(),
                hash: String::new(),
            })
            .collect())
    }

    fn stat(&self, rev: &str) -> Result<RevInfo, CodeError> {
        self.stat_rev(rev).map(|(info, _)| info)
    }

    fn latest(&self) -> Result<RevInfo, CodeError> {
        self.stat("latest")
    }

    fn read_file(
        &self,
        rev: &str,
        file: &str,
        max_size: u64,
    ) -> Result<Option<Vec<u8>>, CodeError> {
        let rev = if rev == "latest" {
            self.kind.latest()
        } else {
            rev
        };
        self.stat_rev(rev)?;
        let key = (rev.to_string(), file.to_string());
        if let Some(hit) = self.state().files.get(&key) {
            if hit.as_ref().is_none_or(|d| d.len() as u64 <= max_size) {
                return Ok(hit.clone());
            }
        }
        let args: Vec<String> = match self.kind {
            Kind::Hg => vec![
                "hg".into(),
                "cat".into(),
                format!("--rev={rev}"),
                "--".into(),
                file.into(),
            ],
            Kind::Svn => vec![
                "svn".into(),
                "cat".into(),
                "--".into(),
                format!("{}/{file}@{rev}", self.remote),
            ],
            Kind::Fossil => vec![
                "fossil".into(),
                "cat".into(),
                "-R".into(),
                ".fossil".into(),
                format!("-r={rev}"),
                "--".into(),
                file.into(),
            ],
        };
        let found = match self.runner.run(Job {
            args: &args,
            dir: &self.repo_dir,
            max_stdout: max_size,
            output_file: None,
        }) {
            Ok(data) => Some(data),
            Err(RunError::TooLarge { .. }) => {
                return Err(CodeError::Refused(format!(
                    "{file} file too large (max size is {max_size} bytes) at {rev}"
                )))
            }
            Err(
                e @ (RunError::Missing { .. } | RunError::Spawn { .. } | RunError::Stopped { .. }),
            ) => return Err(CodeError::Other(format!("{LOCAL_FAULT}{e}"))),
            // The go command reads any failure as "no such file".
            Err(RunError::Failed { .. }) => None,
        };
        self.state().files.insert(key, found.clone());
        Ok(found)
    }

    fn recent_tag(
        &self,
        rev: &str,
        prefix: &str,
        allowed: &dyn Fn(&str) -> bool,
    ) -> Result<Option<String>, CodeError> {
        if self.kind != Kind::Hg {
            // Unsupported there; the go command then bases the
            // pseudo-version on no tag.
            return Ok(None);
        }
        let out = self.run(
            &[
                "hg",
                "log",
                &format!("--rev=ancestors({rev}) and tag()"),
                "--template",
                "{tags}\n",
            ],
            MAX_LISTING,
        )?;
        let mut highest = String::new();
        for tag in String::from_utf8_lossy(&out).split_whitespace() {
            let Some(semtag) = tag.strip_prefix(prefix) else {
                continue;
            };
            if !allowed(tag) {
                continue;
            }
            if modzip::semver::compare(semtag, &highest) == std::cmp::Ordering::Greater {
                highest = semtag.to_string();
            }
        }
        Ok((!highest.is_empty()).then(|| format!("{prefix}{highest}")))
    }

    fn descends_from(&self, rev: &str, tag: &str) -> Result<bool, CodeError> {
        if self.kind != Kind::Hg {
            return Err(CodeError::Other(format!(
                "vcs {}: DescendsFrom: unsupported operation",
                self.kind.name()
            )));
        }
        let out = self.run(
            &["hg", "log", &format!("--rev=ancestors({rev}) and {tag}")],
            MAX_LISTING,
        )?;
        Ok(!String::from_utf8_lossy(&out).trim().is_empty())
    }

    fn files(&self, rev: &str, subdir: &str) -> Result<Vec<TreeFile>, CodeError> {
        let rev = if rev == "latest" {
            self.kind.latest()
        } else {
            rev
        };
        self.stat_rev(rev)?;
        match self.kind {
            Kind::Svn => self.svn_export(rev, subdir),
            _ => self.archive(rev, subdir),
        }
    }

    fn origin_hash<'a>(&self, info: &'a RevInfo) -> &'a str {
        // svn revisions are numbers; the go command records no hash.
        if self.kind == Kind::Svn {
            ""
        } else {
            &info.hash
        }
    }

    fn vcs_version(&self, code_rev: &str, info: &RevInfo) -> String {
        match self.state().stats.get(code_rev) {
            Some((_, version)) => version.clone(),
            None => info.hash.clone(),
        }
    }
}

/// Refuses remotes a command line could read as an option, or that could
/// smuggle configuration into `.hg/hgrc`.
fn check_remote(kind: Kind, remote: &str) -> Result<(), CodeError> {
    let invalid = |why: &str| {
        CodeError::NotFound(format!("invalid {} remote {remote:?}: {why}", kind.name()))
    };
    if !remote.contains("://") {
        return Err(invalid("not a URL"));
    }
    if remote.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid("contains spaces or control characters"));
    }
    let url = url::Url::parse(remote).map_err(|e| invalid(&e.to_string()))?;
    if url.host_str().is_some_and(|h| h.starts_with('-')) || url.username().starts_with('-') {
        return Err(invalid("host or user starts with '-'"));
    }
    if remote.starts_with('-') {
        return Err(invalid("starts with '-'"));
    }
    Ok(())
}

/// Whether a command's error is a local fault (missing tool, deadline)
/// rather than the command's own failure.
fn is_local_fault(reason: &str) -> bool {
    reason.starts_with(LOCAL_FAULT)
}

/// Marks [`CodeError::Other`] messages that are not the command's answer.
const LOCAL_FAULT: &str = "vcs: ";

fn code_error(e: RunError) -> CodeError {
    match e {
        RunError::TooLarge { .. } => CodeError::Refused(e.to_string()),
        RunError::Failed { .. } => CodeError::Other(e.to_string()),
        other => CodeError::Other(format!("{LOCAL_FAULT}{other}")),
    }
}

fn clone_error(e: &CodeError) -> CodeError {
    match e {
        CodeError::NotFound(s) => CodeError::NotFound(s.clone()),
        CodeError::Refused(s) => CodeError::Refused(s.clone()),
        CodeError::Other(s) => CodeError::Other(s.clone()),
    }
}

/// The go command's `ShortenSHA1`: 12 digits of a 40-digit hash.
fn shorten(hash: &str) -> String {
    if hash.len() == 40 {
        hash[..12].to_string()
    } else {
        hash.to_string()
    }
}

fn unix_time(secs: i64) -> Result<OffsetDateTime, CodeError> {
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|e| CodeError::Other(format!("invalid time {secs}: {e}")))
}

/// `hgParseStat`: `{node} {date|hgdate} {tags}`.
fn parse_hg_stat(rev: &str, out: &str) -> Result<(RevInfo, String), CodeError> {
    let f: Vec<&str> = out.split_whitespace().collect();
    if f.len() < 3 {
        return Err(CodeError::Other(format!(
            "unexpected response from hg log: {out:?}"
        )));
    }
    let hash = f[0].to_string();
    let version = if hash.starts_with(rev) {
        hash.clone()
    } else {
        rev.to_string()
    };
    let secs: i64 = f[1]
        .parse()
        .map_err(|_| CodeError::Other(format!("invalid time from hg log: {out:?}")))?;
    let mut tags: Vec<String> = f[3..]
        .iter()
        .filter(|t| **t != "tip")
        .map(|t| t.to_string())
        .collect();
    tags.sort();
    Ok((
        RevInfo {
            short: shorten(&hash),
            hash,
            time: unix_time(secs)?,
            tags,
            origin_ref: None,
        },
        version,
    ))
}

/// `svnParseStat`: the revision number and date of `svn log --xml`.
fn parse_svn_stat(rev: &str, out: &str) -> Result<(RevInfo, String), CodeError> {
    let bad = |why: &str| {
        CodeError::Other(format!(
            "unexpected response from svn log --xml: {why}\n{out}"
        ))
    };
    let entry_start = out.find("<logentry").ok_or_else(|| bad("no logentry"))?;
    let entry = &out[entry_start..];
    let revision: i64 = xml_attr(entry, "revision")
        .ok_or_else(|| bad("no revision"))?
        .parse()
        .map_err(|_| bad("bad revision"))?;
    let date = xml_element(entry, "date").ok_or_else(|| bad("no date"))?;
    let time = OffsetDateTime::parse(&date, &time::format_description::well_known::Rfc3339)
        .map_err(|e| bad(&e.to_string()))?
        .to_offset(time::UtcOffset::UTC);
    Ok((
        RevInfo {
            hash: revision.to_string(),
            short: format!("{revision:012}"),
            time,
            tags: Vec::new(),
            origin_ref: None,
        },
        rev.to_string(),
    ))
}

/// `fossilParseStat`: the `hash:` (or `uuid:`) line of `fossil info`.
fn parse_fossil_stat(rev: &str, out: &str) -> Result<(RevInfo, String), CodeError> {
    for line in out.split('\n') {
        if !(line.starts_with("uuid:") || line.starts_with("hash:")) {
            continue;
        }
        let bad = || CodeError::Other(format!("unexpected response from fossil info: {line:?}"));
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 5 || f[1].len() != 40 || f[4] != "UTC" {
            return Err(bad());
        }
        let format =
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        let t = time::PrimitiveDateTime::parse(&format!("{} {}", f[2], f[3]), &format)
            .map_err(|_| bad())?
            .assume_utc();
        let hash = f[1].to_string();
        let version = if hash.starts_with(rev) {
            hash.clone()
        } else {
            rev.to_string()
        };
        return Ok((
            RevInfo {
                short: shorten(&hash),
                hash,
                time: t,
                tags: Vec::new(),
                origin_ref: None,
            },
            version,
        ));
    }
    Err(CodeError::Other(format!(
        "unexpected response from fossil info: {out:?}"
    )))
}

/// Whole matches of the go command's svn tag pattern `(?m)^(.*?)/?$` in
/// `svn list` output, as Go's `FindAllString` returns them.
fn svn_tag_matches(text: &str) -> Vec<String> {
    // Each line is matched whole (a trailing slash included, the pattern
    // being greedy on `/?` and anchored at the line end); after the last
    // newline an empty match remains.
    text.split('\n').map(str::to_string).collect()
}

/// The value of attribute `name` in the first tag of `xml`.
fn xml_attr(xml: &str, name: &str) -> Option<String> {
    let tag_end = xml.find('>')?;
    let tag = &xml[..tag_end];
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let len = tag[start..].find('"')?;
    Some(xml_unescape(&tag[start..start + len]))
}

/// The text of the first element `name` in `xml`.
fn xml_element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{name}>"))?;
    Some(xml_unescape(&xml[start..start + len]))
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// One entry of `svn list --xml`.
struct SvnEntry {
    kind: String,
    name: String,
    size: u64,
}

fn parse_svn_list(xml: &str) -> Result<Vec<SvnEntry>, CodeError> {
    let mut entries = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<entry") {
        let after = &rest[start..];
        let end = after.find("</entry>").ok_or_else(|| {
            CodeError::Other(format!("unexpected response from svn list --xml:\n{xml}"))
        })?;
        let entry = &after[..end];
        let kind = xml_attr(entry, "kind").unwrap_or_default();
        let name = xml_element(entry, "name").unwrap_or_default();
        let size = xml_element(entry, "size")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        entries.push(SvnEntry { kind, name, size });
        rest = &after[end..];
    }
    Ok(entries)
}

/// Reads an archive made by `hg archive` or `fossil zip` the way the go
/// command's `codeRepo.Zip` reads it: one top-level directory stripped,
/// then `subdir/`; directories skipped.
fn read_archive(path: &Path, subdir: &str) -> Result<Vec<TreeFile>, CodeError> {
    let bad = |e: &dyn std::fmt::Display| CodeError::Other(format!("reading archive: {e}"));
    let file = File::open(path).map_err(|e| bad(&e))?;
    let size = file.metadata().map_err(|e| bad(&e))?.len();
    if size > MAX_ZIP_FILE {
        return Err(CodeError::Refused(
            "downloaded zip file too large".to_string(),
        ));
    }
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(&e))?;
    let subdir = if subdir.is_empty() {
        String::new()
    } else {
        format!("{}/", subdir.trim_matches('/'))
    };
    let mut top = String::new();
    let mut wanted = Vec::new();
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(|e| bad(&e))?;
        let full = String::from_utf8_lossy(entry.name_raw()).into_owned();
        if top.is_empty() {
            let Some(i) = full.find('/') else {
                return Err(CodeError::Other(
                    "missing top-level directory prefix".to_string(),
                ));
            };
            top = full[..=i].to_string();
        }
        let Some(name) = full.strip_prefix(&top) else {
            return Err(CodeError::Other(
                "zip file contains more than one top-level directory".to_string(),
            ));
        };
        let Some(name) = name.strip_prefix(&subdir) else {
            continue;
        };
        if name.is_empty() || name.ends_with('/') {
            continue;
        }
        let mode = entry.unix_mode().unwrap_or(0o644);
        let kind = match mode & 0o170000 {
            0o120000 => FileKind::Symlink,
            0o040000 => FileKind::Dir,
            0o100000 | 0 => {
                if entry.is_dir() {
                    FileKind::Dir
                } else {
                    FileKind::Regular
                }
            }
            _ => FileKind::Other,
        };
        wanted.push((index, name.to_string(), kind, entry.size()));
    }
    let shared = Arc::new(Mutex::new(archive));
    Ok(wanted
        .into_iter()
        .map(|(index, path, kind, size)| {
            Box::new(ArchiveFile {
                archive: shared.clone(),
                index,
                path,
                meta: FileMeta { kind, size },
            }) as TreeFile
        })
        .collect())
}

/// A file inside an archive made by the version-control tool.
struct ArchiveFile {
    archive: Arc<Mutex<zip::ZipArchive<File>>>,
    index: usize,
    path: String,
    meta: FileMeta,
}

impl ModuleFile for ArchiveFile {
    fn path(&self) -> &str {
        &self.path
    }

    fn metadata(&self) -> std::io::Result<FileMeta> {
        Ok(self.meta)
    }

    fn open(&self) -> std::io::Result<Box<dyn Read + '_>> {
        let mut archive = self.archive.lock().unwrap_or_else(|e| e.into_inner());
        let mut entry = archive
            .by_index(self.index)
            .map_err(std::io::Error::other)?;
        // One entry at a time, bounded by the size its header declares
        // (plus one byte, so a lying header is noticed by the zip writer).
        let mut data = Vec::new();
        (&mut entry)
            .take(self.meta.size.saturating_add(1))
            .read_to_end(&mut data)?;
        Ok(Box::new(std::io::Cursor::new(data)))
    }
}

/// A file `svn export` wrote.
struct DiskFile {
    path: String,
    disk: PathBuf,
    size: u64,
}

impl ModuleFile for DiskFile {
    fn path(&self) -> &str {
        &self.path
    }

    fn metadata(&self) -> std::io::Result<FileMeta> {
        Ok(FileMeta {
            kind: FileKind::Regular,
            size: self.size,
        })
    }

    fn open(&self) -> std::io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(File::open(&self.disk)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hg_stat_output_is_parsed_as_the_go_command_does() {
        let hash = "4bc574b665017f2315e99417f0695a4306b5d4af";
        let (info, version) =
            parse_hg_stat("v1.0.0", &format!("{hash} 1709294400 0 v1.0.0 tip")).unwrap();
        assert_eq!(info.hash, hash);
        assert_eq!(info.short, "4bc574b66501");
        assert_eq!(info.tags, ["v1.0.0"]);
        assert_eq!(version, "v1.0.0");
        assert_eq!(info.time.unix_timestamp(), 1709294400);
        let (_, version) = parse_hg_stat("4bc574b6", &format!("{hash} 1 0 ")).unwrap();
        assert_eq!(version, hash);
        assert!(parse_hg_stat("x", "garbage").is_err());
    }

    #[test]
    fn svn_and_fossil_stat_output() {
        let xml = "<?xml version=\"1.0\"?>\n<log>\n<logentry\n   revision=\"7\">\n<author>g</author>\n<date>2024-03-01T12:00:00.123456Z</date>\n<msg>m</msg>\n</logentry>\n</log>\n";
        let (info, version) = parse_svn_stat("latest", xml).unwrap();
        assert_eq!(info.hash, "7");
        assert_eq!(info.short, "000000000007");
        assert_eq!(version, "latest");
        assert_eq!(info.time.nanosecond(), 123456000);
        let out = "hash:         0123456789abcdef0123456789abcdef01234567 2024-03-01 12:00:00 UTC\nparent: x\n";
        let (info, _) = parse_fossil_stat("trunk", out).unwrap();
        assert_eq!(info.short, "0123456789ab");
        assert_eq!(info.time.unix_timestamp(), 1709294400);
    }

    #[test]
    fn remotes_that_look_like_options_are_refused() {
        for bad in [
            "ssh://-oProxyCommand=x/repo",
            "ssh://-u@host/repo",
            "--config=x",
            "http://h/\n[hooks]",
            "http://h/a b",
        ] {
            assert!(check_remote(Kind::Hg, bad).is_err(), "{bad}");
        }
        check_remote(Kind::Hg, "https://hg.example.com/repo").unwrap();
        check_remote(Kind::Svn, "svn://127.0.0.1:3690/repo/trunk").unwrap();
    }

    #[test]
    fn svn_tags_keep_their_slash() {
        assert_eq!(
            svn_tag_matches("v1.0.0/\nv1.1.0/\n"),
            ["v1.0.0/", "v1.1.0/", ""]
        );
    }
}
