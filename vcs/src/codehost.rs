//! The repository operations that module resolution is written against.
//!
//! Resolution (coderepo logic) never talks to git directly: it asks a
//! [`CodeRepo`] for tags, commits and files, so it can be tested against an
//! in-memory repository and served by the gix implementation in production.

use std::io::Read;

use time::OffsetDateTime;

/// One tag of a repository and the commit it points at (peeled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// The tag name without `refs/tags/`.
    pub name: String,
    /// The full hex hash of the commit the tag points at.
    pub hash: String,
}

/// What a revision (tag, branch, hash, `HEAD`) resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevInfo {
    /// Full hex commit hash.
    pub hash: String,
    /// Abbreviated hash as the go command uses it in pseudo-versions (12 chars).
    pub short: String,
    /// Committer time of the commit, in UTC.
    pub time: OffsetDateTime,
    /// Tags that point directly at this commit.
    pub tags: Vec<String>,
    /// The full ref the revision was resolved through, recorded as `Ref` in
    /// the `.info` origin: `refs/tags/T` for a tag, `refs/heads/B` for a
    /// branch, `HEAD` for `HEAD` and for [`CodeRepo::latest`]. For a (short
    /// or full) hash equal to the tip of one or more refs, the go command
    /// records the lexicographically smallest such ref name (so `HEAD` wins
    /// over `refs/heads/...`); for any other hash, `None`.
    pub origin_ref: Option<String>,
}

/// One file of a repository tree at a revision, as a module-zip source.
pub type TreeFile = Box<dyn modzip::zip::ModuleFile + Send + Sync>;

/// Errors a code host reports; `NotFound` is distinct so callers can answer
/// "unknown revision" rather than "upstream failed".
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// The revision, file or repository does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The revision exists but what it holds crosses a limit (a tree deeper
    /// than git reads, more tree entries than allowed, a file over the go
    /// command's size limits, a path git cannot archive). Permanent: that
    /// version can never be served, so a proxy answers "not found" and the
    /// client may try elsewhere.
    #[error("{0}")]
    Refused(String),
    /// Anything else: transport, corrupt objects, I/O.
    #[error("{0}")]
    Other(String),
}

/// Repository operations needed to resolve module versions.
///
/// Implementations are blocking; async callers use `spawn_blocking`.
pub trait CodeRepo: Send + Sync {
    /// The version-control system, recorded as `VCS` in `.info` origins.
    fn vcs(&self) -> &str {
        "git"
    }
    /// The repository URL the go command would clone (for example
    /// `https://github.com/rsc/quote`), recorded as `URL` in `.info` origins.
    fn url(&self) -> &str;
    /// Tags whose names start with `prefix`, each peeled to its commit.
    fn tags(&self, prefix: &str) -> Result<Vec<Tag>, CodeError>;
    /// Resolves a tag, branch, full or abbreviated commit hash, or `HEAD`,
    /// in the go command's order: tag, then branch, then `HEAD`, then a hex
    /// string of at least 7 digits (ambiguous prefixes are an `Other` error).
    /// Anything else is `NotFound`.
    fn stat(&self, rev: &str) -> Result<RevInfo, CodeError>;
    /// The commit at the tip of the default branch.
    fn latest(&self) -> Result<RevInfo, CodeError>;
    /// Contents of `file` (slash path from the repository root) at `rev`,
    /// `Ok(None)` when the file does not exist there. A file over `max_size`
    /// is [`CodeError::Refused`] (so that error also says the file exists),
    /// found out before its content is read.
    fn read_file(&self, rev: &str, file: &str, max_size: u64)
        -> Result<Option<Vec<u8>>, CodeError>;
    /// Among the tags named `prefix` + semver that are reachable from `rev`
    /// and whose full name satisfies `allowed`, the one with the highest
    /// semantic version (not the most recent): the base for a pseudo-version.
    fn recent_tag(
        &self,
        rev: &str,
        prefix: &str,
        allowed: &dyn Fn(&str) -> bool,
    ) -> Result<Option<String>, CodeError>;
    /// Whether `rev` has the commit that `tag` points at as an ancestor (or is it).
    fn descends_from(&self, rev: &str, tag: &str) -> Result<bool, CodeError>;
    /// The hash recorded as `Hash` in the `.info` origin of a version
    /// resolved to `info`: the commit hash, except for Subversion, whose
    /// revision numbers the go command does not record.
    fn origin_hash<'a>(&self, info: &'a RevInfo) -> &'a str {
        &info.hash
    }
    /// The name the code host gives revision `code_rev` once resolved to
    /// `info` (the go command's `RevInfo.Version`), which becomes the
    /// module version when it is a canonical tag: `code_rev` itself when it
    /// is one of the commit's tags, else the commit hash.
    fn vcs_version(&self, code_rev: &str, info: &RevInfo) -> String {
        if info.tags.iter().any(|t| t == code_rev) {
            code_rev.to_string()
        } else {
            info.hash.clone()
        }
    }
    /// The files of the tree at `rev` under `subdir` (empty for the root), with
    /// paths relative to `subdir`, as `git archive` would export them.
    fn files(&self, rev: &str, subdir: &str) -> Result<Vec<TreeFile>, CodeError>;
}

/// Reads a whole small file from a [`modzip::zip::ModuleFile`].
pub fn read_all(file: &dyn modzip::zip::ModuleFile) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    file.open()?.read_to_end(&mut data)?;
    Ok(data)
}
