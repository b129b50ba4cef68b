//! [`CodeRepo`] for git remotes, on gix.
//!
//! http(s) and ssh remotes are cached in a bare repository per remote under
//! a cache root, filled only as far as questions need (see
//! [`GitRepo::open`]); `file://` URLs and plain paths are read in place.
//! http(s) is spoken in-process; ssh remotes are reached by running the ssh
//! program, as git does (see `ssh.rs`). Answers follow the go
//! command's git code host: which names a revision may be, which tags
//! count, and what `git archive` exports.

mod archive;
pub mod budget;
mod cache;
mod credentials;
mod lock;
mod loose;
mod options;
mod quiet;
mod replay;
mod ssh;
mod transport;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use gix::bstr::ByteSlice;
use gix::ObjectId;
use time::OffsetDateTime;

use crate::codehost::{CodeError, CodeRepo, RevInfo, Tag, TreeFile};

pub use options::{
    GitLimits, GitOptions, HostCredentials, TreeLimits, DEFAULT_MAX_OBJECT_BYTES,
    DEFAULT_MAX_PACK_BYTES, DEFAULT_MAX_PACK_OBJECTS, DEFAULT_MAX_REFS,
};
pub use replay::KnownCapabilities;
pub use transport::HttpBackends;

/// Shortest hex string accepted as an abbreviated commit hash.
const MIN_HASH_DIGITS: usize = 7;
/// Hex digits in a full SHA-1 object name.
const FULL_HASH_DIGITS: usize = 40;
/// Commits walked between two looks at the interrupt.
const WALK_CHECK_EVERY: usize = 4096;

/// Options for every repository this module opens: repository-local
/// configuration only, and never the git binary (gix would otherwise run
/// `git config` to locate the installation's config file).
///
/// gix sizes its buffers by what pack entries and deltas declare, when
/// indexing a received pack and when reading objects; its allocation limit
/// turns a declared size over `limits.max_object_bytes` into an error
/// rather than an allocation (see [`OBJECT_TOO_LARGE`]).
///
/// The bases gix appends to complete a thin pack (a fetch of a new version
/// receives its changed files as deltas against the cached ones) are
/// deflated at `core.looseCompression`; level 0 copies them in. Compressing
/// them (level 1, the default) took about a millisecond and a half of a
/// gin release's ~45 ms fetch, for a cache entry that only this machine
/// reads; the entry grows by what level 1 would have saved, and the cache
/// budget counts it.
fn gix_open_options(limits: &GitLimits) -> gix::open::Options {
    gix::open::Options::isolated().config_overrides([
        format!("gitoxide.objects.allocLimit={}", limits.max_object_bytes),
        "core.looseCompression=0".to_string(),
    ])
}

/// What gix's errors say when something is over its allocation limit.
const OBJECT_TOO_LARGE: &str = "too large to fit in memory";
/// What they say when that something is the index gix builds of a
/// received pack, sized by the object count the pack announces.
const PACK_INDEX_TOO_LARGE: &str = "delta tree is too large";

/// The refs a remote advertised (or a local repository holds), which is what
/// tag listing, branch names and `HEAD` are answered from.
#[derive(Debug, Clone, Default)]
pub(crate) struct RefSnapshot {
    /// Commit (or other object) `HEAD` points at, fully peeled.
    head: Option<ObjectId>,
    /// Branch name without `refs/heads/` to its peeled target.
    heads: BTreeMap<String, ObjectId>,
    /// Tag name without `refs/tags/` to its peeled target.
    tags: BTreeMap<String, ObjectId>,
    /// Full branch and tag ref names to their unpeeled targets.
    direct: BTreeMap<String, ObjectId>,
}

impl RefSnapshot {
    fn insert(&mut self, full_name: &str, direct: ObjectId, peeled: ObjectId) {
        if full_name == "HEAD" {
            self.head = Some(peeled);
        } else if let Some(branch) = full_name.strip_prefix("refs/heads/") {
            self.heads.insert(branch.to_string(), peeled);
            self.direct.insert(full_name.to_string(), direct);
        } else if let Some(tag) = full_name.strip_prefix("refs/tags/") {
            self.tags.insert(tag.to_string(), peeled);
            self.direct.insert(full_name.to_string(), direct);
        }
    }

    /// Every ref with its full name (`HEAD`, `refs/heads/B`, `refs/tags/T`)
    /// and peeled target.
    fn full_names(&self) -> Vec<(String, ObjectId)> {
        let heads = self
            .heads
            .iter()
            .map(|(name, id)| (format!("refs/heads/{name}"), *id));
        let tags = self
            .tags
            .iter()
            .map(|(name, id)| (format!("refs/tags/{name}"), *id));
        self.head
            .map(|id| ("HEAD".to_string(), id))
            .into_iter()
            .chain(heads)
            .chain(tags)
            .collect()
    }

    pub(crate) fn from_remote(refs: &[gix::protocol::handshake::Ref]) -> RefSnapshot {
        use gix::protocol::handshake::Ref;
        let mut snapshot = RefSnapshot::default();
        for r in refs {
            let (name, direct, peeled) = match r {
                Ref::Peeled {
                    full_ref_name,
                    tag,
                    object,
                } => (full_ref_name, *tag, *object),
                Ref::Direct {
                    full_ref_name,
                    object,
                } => (full_ref_name, *object, *object),
                Ref::Symbolic {
                    full_ref_name,
                    tag,
                    object,
                    ..
                } => (full_ref_name, tag.unwrap_or(*object), *object),
                Ref::Unborn { .. } => continue,
            };
            if let Ok(name) = name.to_str() {
                snapshot.insert(name, direct, peeled);
            }
        }
        snapshot
    }

    fn from_local(repo: &gix::Repository) -> Result<RefSnapshot, CodeError> {
        let mut snapshot = RefSnapshot::default();
        if let Ok(id) = repo.head_id() {
            snapshot.head = Some(id.detach());
        }
        let platform = repo
            .references()
            .map_err(|e| CodeError::Other(format!("reading refs: {e}")))?;
        for prefix in ["refs/heads/", "refs/tags/"] {
            let iter = platform
                .prefixed(prefix)
                .map_err(|e| CodeError::Other(format!("reading {prefix}: {e}")))?;
            for r in iter {
                let Ok(mut r) = r else { continue };
                let Ok(name) = r.name().as_bstr().to_str().map(str::to_string) else {
                    continue;
                };
                let direct = match r.target().try_id() {
                    Some(id) => id.to_owned(),
                    None => match r.clone().into_fully_peeled_id() {
                        Ok(id) => id.detach(),
                        Err(_) => continue,
                    },
                };
                let Ok(peeled) = r.peel_to_id() else { continue };
                snapshot.insert(&name, direct, peeled.detach());
            }
        }
        Ok(snapshot)
    }
}

/// A git repository answering [`CodeRepo`] questions.
pub struct GitRepo {
    /// The remote URL as given to [`GitRepo::open`], before rewriting.
    url: String,
    /// The URL or path actually read, after insteadOf rewriting (for messages).
    location: String,
    repo: gix::ThreadSafeRepository,
    /// What the remote advertised when this handle was opened. Tags, branches
    /// and `HEAD` are answered from this alone (as a fresh go module cache
    /// would), so tags deleted upstream but still cached are not reported.
    remote_refs: RefSnapshot,
    /// For http(s) remotes, the cache entry's on-demand filling; `None` for
    /// repositories read in place, which hold everything already.
    http: Option<cache::HttpCache>,
    /// Bounds on the trees walked to list files.
    tree_limits: TreeLimits,
    /// Stops long history walks (transfers see it through the cache).
    interrupt: crate::interrupt::Interrupt,
}

impl std::fmt::Debug for GitRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitRepo")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Where a (rewritten) remote URL leads.
enum Location {
    Local(PathBuf),
    Http(String),
    Ssh(String),
}

fn classify(url: &str) -> Result<Location, CodeError> {
    if let Some((scheme, _)) = url.split_once("://") {
        return match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" => Ok(Location::Http(url.to_string())),
            "ssh" | "git+ssh" | "ssh+git" => Ok(Location::Ssh(url.to_string())),
            "file" => {
                let parsed = url::Url::parse(url)
                    .map_err(|e| CodeError::Other(format!("invalid file URL {url}: {e}")))?;
                parsed
                    .to_file_path()
                    .map(Location::Local)
                    .map_err(|_| CodeError::Other(format!("file URL {url} has no local path")))
            }
            other => Err(CodeError::Other(format!(
                "git remote {}: the {other} transport is not supported (only http, https, ssh and local repositories)",
                cache::redact(url)
            ))),
        };
    }
    // git reads "host:path" (with no slash before the colon) as ssh.
    if ssh::is_ssh(url) {
        return Ok(Location::Ssh(url.to_string()));
    }
    Ok(Location::Local(PathBuf::from(url)))
}

impl GitRepo {
    /// Opens the repository at `remote_url`.
    ///
    /// The URL is first rewritten by the longest matching
    /// `url.<base>.insteadOf` of the config files in `opts`
    /// (`pushInsteadOf` is for pushing and never applies). An http(s) or
    /// ssh remote is then listed, creating its cache entry under `cache_root` on
    /// first use; objects are fetched into that entry later, only when a
    /// question needs them (one commit shallowly for a named ref, all
    /// branches and tags with full history for ancestry or other hashes).
    /// `file://` URLs and local paths are read in place, bare or not.
    ///
    /// A remote that does not exist is reported as [`CodeError::NotFound`].
    pub fn open(
        remote_url: &str,
        cache_root: &Path,
        opts: GitOptions,
    ) -> Result<GitRepo, CodeError> {
        let config = options::GitConfig::load(&opts.config_files);
        let rewritten = options::rewrite_url(remote_url, &config.insteadof_rules());
        match classify(&rewritten)? {
            Location::Local(path) => Self::open_local(remote_url, &path, &opts),
            Location::Http(url) | Location::Ssh(url) => {
                let access = cache::RemoteAccess::new(&url, &config, &opts)?;
                let location = cache::redact(access.url());
                let (repo, remote_refs, http) = cache::open_listed(access, cache_root, &opts)?;
                Ok(GitRepo {
                    url: remote_url.to_string(),
                    location,
                    repo,
                    remote_refs,
                    http: Some(http),
                    tree_limits: opts.tree_limits,
                    interrupt: opts.interrupt,
                })
            }
        }
    }

    fn open_local(remote_url: &str, path: &Path, opts: &GitOptions) -> Result<GitRepo, CodeError> {
        if !path.is_dir() {
            return Err(CodeError::NotFound(format!(
                "git repository {}: no such directory",
                path.display()
            )));
        }
        let repo = gix_open_options(&opts.limits)
            .open(path)
            .map_err(|e| CodeError::NotFound(format!("git repository {}: {e}", path.display())))?;
        let snapshot = RefSnapshot::from_local(&repo.to_thread_local())?;
        Ok(GitRepo {
            url: remote_url.to_string(),
            location: path.display().to_string(),
            repo,
            remote_refs: snapshot,
            http: None,
            tree_limits: opts.tree_limits,
            interrupt: opts.interrupt.clone(),
        })
    }

    /// The git directory read for this remote (the cache entry for http(s)).
    pub fn git_dir(&self) -> &Path {
        self.repo.git_dir()
    }

    fn local(&self) -> gix::Repository {
        self.repo.to_thread_local()
    }

    /// Makes sure the object a ref was advertised with is readable (for an
    /// http(s) cache, fetching it shallowly when missing).
    fn need_ref_object(
        &self,
        repo: &gix::Repository,
        id: ObjectId,
        ref_name: &str,
    ) -> Result<(), CodeError> {
        match &self.http {
            Some(http) => http.ensure_object(repo, id, ref_name, &self.remote_refs),
            None => Ok(()),
        }
    }

    /// Makes sure the full history of every advertised branch and tag is
    /// readable, for questions about ancestry or arbitrary hashes.
    fn need_history(&self, repo: &gix::Repository) -> Result<(), CodeError> {
        match &self.http {
            Some(http) => http.ensure_complete(repo, &self.remote_refs),
            None => Ok(()),
        }
    }

    fn unknown(&self, rev: &str) -> CodeError {
        CodeError::NotFound(format!("{}: unknown revision {rev}", self.location))
    }

    /// The commit `id` names, peeling tags; `None` when it is not a commit
    /// (or not present).
    fn peel_to_commit(repo: &gix::Repository, id: ObjectId) -> Option<ObjectId> {
        let object = repo.find_object(id).ok()?;
        object.peel_to_commit().ok().map(|c| c.id)
    }

    /// Looks a hex string up as an object name (full or abbreviated),
    /// preferring commits when an abbreviation is ambiguous, as `git log`
    /// does.
    fn lookup_hex(repo: &gix::Repository, hex: &str) -> Option<ObjectId> {
        if hex.len() == FULL_HASH_DIGITS {
            let id = ObjectId::from_hex(hex.as_bytes()).ok()?;
            return Self::peel_to_commit(repo, id);
        }
        let prefix = gix::hash::Prefix::from_hex(hex).ok()?;
        let mut candidates = HashSet::new();
        // The unique-or-ambiguous answer is not enough: git keeps only the
        // candidates that are commits, so collect them all.
        repo.objects
            .lookup_prefix(prefix, Some(&mut candidates))
            .ok()??
            .ok()
            .or(candidates.iter().next().copied())?;
        let commits: HashSet<ObjectId> = candidates
            .into_iter()
            .filter_map(|id| Self::peel_to_commit(repo, id))
            .collect();
        if commits.len() == 1 {
            commits.into_iter().next()
        } else {
            None
        }
    }

    /// A ref name as git's revision parser finds it in the repository read
    /// (tags before branches), peeled to a commit.
    fn local_ref(repo: &gix::Repository, name: &str) -> Option<ObjectId> {
        for full in [format!("refs/tags/{name}"), format!("refs/heads/{name}")] {
            if let Ok(Some(mut r)) = repo.try_find_reference(full.as_str()) {
                if let Ok(id) = r.peel_to_id() {
                    return Self::peel_to_commit(repo, id.detach());
                }
            }
        }
        None
    }

    /// Resolves `rev` to a commit the way the go command's git code host
    /// does with a fresh module cache: a tag, then a branch, then `HEAD` (all
    /// as the remote advertised them), then a hex string naming a ref's
    /// commit or, failing that, any commit. Also returns the ref recorded as
    /// the origin of the answer.
    fn resolve(
        &self,
        repo: &gix::Repository,
        rev: &str,
    ) -> Result<(ObjectId, Option<String>), CodeError> {
        let named = if let Some(id) = self.remote_refs.tags.get(rev) {
            Some((id, format!("refs/tags/{rev}")))
        } else if let Some(id) = self.remote_refs.heads.get(rev) {
            Some((id, format!("refs/heads/{rev}")))
        } else if rev == "HEAD" {
            self.remote_refs
                .head
                .as_ref()
                .map(|id| (id, "HEAD".to_string()))
        } else {
            None
        };
        if let Some((id, origin)) = named {
            self.need_ref_object(repo, *id, &origin)?;
            let id = Self::peel_to_commit(repo, *id).ok_or_else(|| self.unknown(rev))?;
            return Ok((id, Some(origin)));
        }
        if !is_hash_like(rev) {
            return Err(self.unknown(rev));
        }
        // A hex string naming the commit of one or more refs is recorded
        // with the smallest such ref name; two different commits sharing the
        // prefix make it ambiguous.
        let mut found: Option<(ObjectId, String)> = None;
        for (name, id) in self.remote_refs.full_names() {
            if !id.to_hex().to_string().starts_with(rev) {
                continue;
            }
            match &found {
                Some((other, _)) if *other != id => {
                    return Err(CodeError::Other(format!(
                        "{}: ambiguous revision {rev}",
                        self.location
                    )));
                }
                Some((_, smallest)) if *smallest <= name => {}
                _ => found = Some((id, name)),
            }
        }
        if let Some((id, name)) = found {
            self.need_ref_object(repo, id, &name)?;
            let id = Self::peel_to_commit(repo, id).ok_or_else(|| self.unknown(rev))?;
            return Ok((id, Some(name)));
        }
        // Any other commit is looked for among everything the refs reach, so
        // the answer (found, unknown, ambiguous) never depends on what an
        // earlier question happened to fetch.
        self.need_history(repo)?;
        Self::lookup_hex(repo, rev)
            .map(|id| (id, None))
            .ok_or_else(|| self.unknown(rev))
    }

    fn rev_info(
        &self,
        repo: &gix::Repository,
        id: ObjectId,
        origin_ref: Option<String>,
    ) -> Result<RevInfo, CodeError> {
        let commit = repo.find_commit(id).map_err(|e| {
            CodeError::Other(format!("{}: reading commit {id}: {e}", self.location))
        })?;
        let seconds = commit
            .committer()
            .map_err(|e| CodeError::Other(format!("{}: commit {id}: {e}", self.location)))?
            .seconds();
        let time = OffsetDateTime::from_unix_timestamp(seconds).map_err(|e| {
            CodeError::Other(format!(
                "{}: commit {id} has time {seconds}: {e}",
                self.location
            ))
        })?;
        let mut tags: Vec<String> = self
            .remote_refs
            .tags
            .iter()
            .filter(|(_, target)| **target == id)
            .map(|(tag, _)| tag.clone())
            .collect();
        tags.sort();
        tags.dedup();
        let hash = id.to_hex().to_string();
        Ok(RevInfo {
            short: hash[..12].to_string(),
            hash,
            time,
            tags,
            origin_ref,
        })
    }

    /// Every commit reachable from `tip`, itself included.
    fn ancestors(
        &self,
        repo: &gix::Repository,
        tip: ObjectId,
    ) -> Result<HashSet<ObjectId>, CodeError> {
        let walk = repo
            .rev_walk([tip])
            .all()
            .map_err(|e| CodeError::Other(format!("{}: walking history: {e}", self.location)))?;
        let mut seen = HashSet::new();
        for info in walk {
            let info = info.map_err(|e| {
                CodeError::Other(format!("{}: walking history: {e}", self.location))
            })?;
            seen.insert(info.id);
            if seen.len() % WALK_CHECK_EVERY == 0 {
                self.check_interrupt()?;
            }
        }
        Ok(seen)
    }

    fn is_ancestor(
        &self,
        repo: &gix::Repository,
        ancestor: ObjectId,
        tip: ObjectId,
    ) -> Result<bool, CodeError> {
        if ancestor == tip {
            return Ok(true);
        }
        let walk = repo
            .rev_walk([tip])
            .all()
            .map_err(|e| CodeError::Other(format!("{}: walking history: {e}", self.location)))?;
        for (n, info) in walk.enumerate() {
            let info = info.map_err(|e| {
                CodeError::Other(format!("{}: walking history: {e}", self.location))
            })?;
            if info.id == ancestor {
                return Ok(true);
            }
            if n % WALK_CHECK_EVERY == WALK_CHECK_EVERY - 1 {
                self.check_interrupt()?;
            }
        }
        Ok(false)
    }

    /// Fails once the caller's deadline or interrupt says to stop.
    fn check_interrupt(&self) -> Result<(), CodeError> {
        self.interrupt
            .check()
            .map_err(|stopped| CodeError::Other(format!("{}: stopped: {stopped}", self.location)))
    }

    fn commit_tree(&self, repo: &gix::Repository, commit: ObjectId) -> Result<ObjectId, CodeError> {
        repo.find_commit(commit)
            .and_then(|c| c.tree_id().map(|t| t.detach()))
            .map_err(|e| {
                CodeError::Other(format!("{}: reading commit {commit}: {e}", self.location))
            })
    }
}

/// Whether `rev` may be an object name: 7 to 40 lowercase hex digits.
fn is_hash_like(rev: &str) -> bool {
    (MIN_HASH_DIGITS..=FULL_HASH_DIGITS).contains(&rev.len())
        && rev.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// The tree entry at slash-separated `path` below tree `root`, if any.
pub(crate) fn lookup_path(
    repo: &gix::Repository,
    root: ObjectId,
    path: &str,
) -> Result<Option<(gix::objs::tree::EntryMode, ObjectId)>, CodeError> {
    let mut current = (gix::objs::tree::EntryKind::Tree.into(), root);
    for component in path.split('/') {
        if component.is_empty() || component == "." || component == ".." {
            return Ok(None);
        }
        let (mode, id): (gix::objs::tree::EntryMode, ObjectId) = current;
        if !mode.is_tree() {
            return Ok(None);
        }
        let tree = repo
            .find_tree(id)
            .map_err(|e| CodeError::Other(format!("reading tree {id}: {e}")))?;
        let decoded = tree
            .decode()
            .map_err(|e| CodeError::Other(format!("decoding tree {id}: {e}")))?;
        match decoded
            .entries
            .iter()
            .find(|e| e.filename.as_bytes() == component.as_bytes())
        {
            Some(entry) => current = (entry.mode, entry.oid.to_owned()),
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

impl CodeRepo for GitRepo {
    fn url(&self) -> &str {
        &self.url
    }

    fn tags(&self, prefix: &str) -> Result<Vec<Tag>, CodeError> {
        Ok(self
            .remote_refs
            .tags
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, id)| Tag {
                name: name.clone(),
                hash: id.to_hex().to_string(),
            })
            .collect())
    }

    fn stat(&self, rev: &str) -> Result<RevInfo, CodeError> {
        let repo = self.local();
        let (id, origin_ref) = self.resolve(&repo, rev)?;
        self.rev_info(&repo, id, origin_ref)
    }

    fn latest(&self) -> Result<RevInfo, CodeError> {
        let Some(head) = self.remote_refs.head else {
            return Err(CodeError::NotFound(format!(
                "{}: no commits",
                self.location
            )));
        };
        let repo = self.local();
        self.need_ref_object(&repo, head, "HEAD")?;
        let id = Self::peel_to_commit(&repo, head).ok_or_else(|| self.unknown("HEAD"))?;
        self.rev_info(&repo, id, Some("HEAD".to_string()))
    }

    fn read_file(
        &self,
        rev: &str,
        file: &str,
        max_size: u64,
    ) -> Result<Option<Vec<u8>>, CodeError> {
        let repo = self.local();
        let (commit, _) = self.resolve(&repo, rev)?;
        let tree = self.commit_tree(&repo, commit)?;
        let Some((mode, id)) = lookup_path(&repo, tree, file)? else {
            return Ok(None);
        };
        if mode.is_tree() || mode.is_commit() {
            return Ok(None);
        }
        let header = repo
            .find_header(id)
            .map_err(|e| CodeError::Other(format!("{}: {file} at {rev}: {e}", self.location)))?;
        // The header alone says the size: a blob over the limit is never
        // inflated.
        if header.size() > max_size {
            return Err(CodeError::Refused(format!(
                "{file} file too large (max size is {max_size} bytes): {} bytes at {rev}",
                header.size()
            )));
        }
        let blob = repo
            .find_blob(id)
            .map_err(|e| CodeError::Other(format!("{}: {file} at {rev}: {e}", self.location)))?;
        Ok(Some(blob.detach().data))
    }

    fn recent_tag(
        &self,
        rev: &str,
        prefix: &str,
        allowed: &dyn Fn(&str) -> bool,
    ) -> Result<Option<String>, CodeError> {
        let repo = self.local();
        // A name that is neither advertised nor possibly a hash is unknown
        // whatever the cache holds: no history is fetched to say so.
        let advertised = self.remote_refs.tags.contains_key(rev)
            || self.remote_refs.heads.contains_key(rev)
            || (rev == "HEAD" && self.remote_refs.head.is_some());
        if advertised || is_hash_like(rev) {
            self.need_history(&repo)?;
        }
        let (tip, _) = self.resolve(&repo, rev)?;
        let reachable = self.ancestors(&repo, tip)?;
        let mut highest = "";
        // Name order, so that among tags of equal precedence the first by
        // name is kept, as with for-each-ref's sorted output.
        for (name, target) in &self.remote_refs.tags {
            let Some(semantic) = name.strip_prefix(prefix) else {
                continue;
            };
            let Some(commit) = Self::peel_to_commit(&repo, *target) else {
                continue;
            };
            if !reachable.contains(&commit) || !allowed(name) {
                continue;
            }
            if modzip::semver::compare(semantic, highest) == std::cmp::Ordering::Greater {
                highest = semantic;
            }
        }
        Ok((!highest.is_empty()).then(|| format!("{prefix}{highest}")))
    }

    fn descends_from(&self, rev: &str, tag: &str) -> Result<bool, CodeError> {
        let repo = self.local();
        self.need_history(&repo)?;
        let tag_commit = if is_hash_like(tag) {
            Self::local_ref(&repo, tag).or_else(|| Self::lookup_hex(&repo, tag))
        } else {
            Self::local_ref(&repo, tag)
        };
        let Some(tag_commit) = tag_commit else {
            return Ok(false);
        };
        let (tip, _) = self.resolve(&repo, rev)?;
        self.is_ancestor(&repo, tag_commit, tip)
    }

    fn files(&self, rev: &str, subdir: &str) -> Result<Vec<TreeFile>, CodeError> {
        let repo = self.local();
        let (commit, _) = self.resolve(&repo, rev)?;
        let tree = self.commit_tree(&repo, commit)?;
        archive::list_files(
            &repo,
            tree,
            subdir,
            self.http.is_none(),
            &self.tree_limits,
            &self.interrupt,
        )?
        .ok_or_else(|| {
            CodeError::NotFound(format!(
                "{}: {subdir}: no such directory at {rev}",
                self.location
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_like_needs_lowercase_hex_of_7_to_40() {
        assert!(is_hash_like("abcdef0"));
        assert!(is_hash_like(&"a".repeat(40)));
        assert!(!is_hash_like("abcdef"));
        assert!(!is_hash_like(&"a".repeat(41)));
        assert!(!is_hash_like("ABCDEF0"));
        assert!(!is_hash_like("v1.0.0ab"));
    }

    #[test]
    fn classify_remotes() {
        assert!(matches!(
            classify("https://h/r").unwrap(),
            Location::Http(_)
        ));
        assert!(matches!(classify("HTTP://h/r").unwrap(), Location::Http(_)));
        assert!(
            matches!(classify("file:///tmp/r").unwrap(), Location::Local(p) if p == Path::new("/tmp/r"))
        );
        assert!(matches!(classify("/tmp/r").unwrap(), Location::Local(_)));
        assert!(matches!(classify("rel/dir").unwrap(), Location::Local(_)));
        assert!(matches!(classify("ssh://h/r").unwrap(), Location::Ssh(_)));
        assert!(matches!(
            classify("git@github.com:o/r").unwrap(),
            Location::Ssh(_)
        ));
        assert!(classify("git://h/r").is_err());
    }

    #[test]
    fn open_missing_local_path_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = GitRepo::open(
            dir.path().join("nope").to_str().unwrap(),
            dir.path(),
            GitOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, CodeError::NotFound(_)), "{err:?}");
    }
}
