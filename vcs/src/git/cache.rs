//! The persistent bare repository kept per http(s) remote, and filling it
//! from the remote through gix only as far as questions need.
//!
//! Opening lists the remote's refs and fetches nothing. A question about a
//! named ref (tag, branch, `HEAD`) whose commit is missing fetches just that
//! commit at depth 1 while the entry holds no full history; a question about
//! ancestry or an unadvertised hash fetches every branch and tag with full
//! history (unshallowing the entry), after which missing commits are fetched
//! incrementally with full history, keeping the entry complete.
//!
//! Layout under the cache root: `<sha1 of url>/` is the bare repository and
//! `<sha1 of url>.lock` the file locked exclusively (flock) while the entry is
//! created or fetched into. Readers take no lock: gix writes objects before
//! the refs that name them and replaces each ref file atomically, so a reader
//! sees either the old or the new value of a ref, never a partial one.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use gix::remote::Direction;
use gix::ObjectId;

use super::{gix_open_options, RefSnapshot};
use crate::codehost::CodeError;
use crate::git::options::GitOptions;

/// The refspecs mirrored from the remote. Tags are forced too: an upstream
/// tag that moved must be seen after the next fetch.
const MIRROR_REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// Directory name of the cache entry for `url`: only hex digits, so any URL
/// maps to a safe, fixed-length name.
pub(crate) fn entry_name(url: &str) -> Result<String, CodeError> {
    let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
    hasher.update(url.as_bytes());
    let id = hasher
        .try_finalize()
        .map_err(|e| CodeError::Other(format!("hashing remote URL: {e}")))?;
    Ok(id.to_hex().to_string())
}

/// An exclusive advisory lock on a cache entry, released on drop (and by the
/// kernel if the process dies, so a crash never leaves a stale lock).
struct EntryLock {
    file: File,
}

impl EntryLock {
    fn acquire(path: &Path) -> Result<EntryLock, CodeError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| CodeError::Other(format!("opening lock {}: {e}", path.display())))?;
        fs4::FileExt::lock(&file)
            .map_err(|e| CodeError::Other(format!("locking {}: {e}", path.display())))?;
        Ok(EntryLock { file })
    }
}

impl Drop for EntryLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock as well; unlocking first
        // just makes the release immediate for waiters.
        let _ = fs4::FileExt::unlock(&self.file);
    }
}

/// An error with all its causes, for messages: gix puts the telling detail
/// (an HTTP status, a refused credential) in the innermost cause.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Strips user information from a URL for messages.
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

/// What one connection to the remote should do after listing refs.
enum Transfer {
    /// Nothing: the listing is all that is wanted.
    ListOnly,
    /// Fetch the objects the refspecs select, with this shallow setting.
    Fetch(gix::remote::fetch::Shallow),
}

/// An http(s) remote and the cache entry mirroring it. The entry starts out
/// empty and is filled on demand: single commits shallowly while only named
/// refs are asked about, then everything once history is needed.
pub(crate) struct HttpCache {
    /// The rewritten remote URL (may hold user information: never shown).
    url: String,
    /// The entry's lock file.
    lock_path: PathBuf,
    /// Credentials and config for connecting.
    opts: GitOptions,
    /// Set once this handle has seen the entry hold the full history of
    /// every advertised ref, so later history questions skip the check.
    complete: AtomicBool,
}

/// Opens (creating on first use) the cache entry for `url` and lists the
/// remote's refs, fetching nothing. Returns the repository, the refs the
/// remote advertised and the handle that fills the entry on demand.
pub(crate) fn open_listed(
    url: &str,
    cache_root: &Path,
    opts: &GitOptions,
) -> Result<(gix::ThreadSafeRepository, RefSnapshot, HttpCache), CodeError> {
    fs::create_dir_all(cache_root).map_err(|e| {
        CodeError::Other(format!("creating cache root {}: {e}", cache_root.display()))
    })?;
    let name = entry_name(url)?;
    let dir = cache_root.join(&name);
    let lock_path = cache_root.join(format!("{name}.lock"));
    {
        let _lock = EntryLock::acquire(&lock_path)?;
        if !dir.join("objects").is_dir() {
            create_entry(&dir, cache_root, &name)?;
        }
    }
    let repo = gix_open_options()
        .open(&dir)
        .map_err(|e| CodeError::Other(format!("opening cache {}: {e}", dir.display())))?;
    let refspecs: Vec<String> = MIRROR_REFSPECS.iter().map(|s| s.to_string()).collect();
    let snapshot = transfer(
        &repo.to_thread_local(),
        url,
        opts,
        &refspecs,
        true,
        Transfer::ListOnly,
    )?;
    let cache = HttpCache {
        url: url.to_string(),
        lock_path,
        opts: opts.clone(),
        complete: AtomicBool::new(false),
    };
    Ok((repo, snapshot, cache))
}

impl HttpCache {
    /// Makes sure object `id`, which the remote advertised as the value of
    /// `ref_name` (a full ref name or `HEAD`), is in the cache with
    /// everything it references. An entry holding no history yet gets that
    /// one commit (depth 1); an entry already holding full history gets
    /// every branch and tag incrementally, so it stays complete.
    pub(crate) fn ensure_object(
        &self,
        repo: &gix::Repository,
        id: ObjectId,
        ref_name: &str,
        snapshot: &RefSnapshot,
    ) -> Result<(), CodeError> {
        if repo.has_object(id) {
            return Ok(());
        }
        let _lock = EntryLock::acquire(&self.lock_path)?;
        // Another handle or process may have fetched it while we waited.
        if repo.has_object(id) {
            return Ok(());
        }
        if is_shallow(repo)? || !has_refs(repo) {
            let spec = if ref_name == "HEAD" {
                "HEAD".to_string()
            } else {
                format!("+{ref_name}:{ref_name}")
            };
            let depth_one = gix::remote::fetch::Shallow::DepthAtRemote(std::num::NonZeroU32::MIN);
            let shallow = transfer(
                repo,
                &self.url,
                &self.opts,
                &[spec],
                false,
                Transfer::Fetch(depth_one),
            );
            match shallow {
                Ok(_) if repo.has_object(id) => return Ok(()),
                // The ref moved upstream since it was listed, or the server
                // refused a shallow fetch: fall back to fetching everything,
                // as the go command does.
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(remote = %redact(&self.url), error = %e, "shallow fetch failed, fetching all")
                }
            }
        }
        self.fetch_all_locked(repo, snapshot)
    }

    /// Makes sure the cache holds every advertised branch and tag with its
    /// full history (unshallowing an entry filled with single commits).
    pub(crate) fn ensure_complete(
        &self,
        repo: &gix::Repository,
        snapshot: &RefSnapshot,
    ) -> Result<(), CodeError> {
        if self.complete.load(Ordering::Acquire) {
            return Ok(());
        }
        let _lock = EntryLock::acquire(&self.lock_path)?;
        self.fetch_all_locked(repo, snapshot)
    }

    /// Fetches all branches and tags with full history unless the entry
    /// already matches `snapshot` and is not shallow. Must run under the
    /// entry lock.
    fn fetch_all_locked(
        &self,
        repo: &gix::Repository,
        snapshot: &RefSnapshot,
    ) -> Result<(), CodeError> {
        let shallow = is_shallow(repo)?;
        if !shallow && cache_matches(repo, snapshot) {
            tracing::debug!(remote = %redact(&self.url), "git cache complete, no fetch");
            self.complete.store(true, Ordering::Release);
            return Ok(());
        }
        tracing::debug!(remote = %redact(&self.url), shallow, "fetching all refs into git cache");
        let refspecs: Vec<String> = MIRROR_REFSPECS.iter().map(|s| s.to_string()).collect();
        let depth = if shallow {
            gix::remote::fetch::Shallow::undo()
        } else {
            gix::remote::fetch::Shallow::NoChange
        };
        transfer(
            repo,
            &self.url,
            &self.opts,
            &refspecs,
            false,
            Transfer::Fetch(depth),
        )?;
        if is_shallow(repo)? {
            return Err(CodeError::Other(format!(
                "{}: still shallow after fetching full history",
                redact(&self.url)
            )));
        }
        self.complete.store(true, Ordering::Release);
        Ok(())
    }
}

/// Whether the entry holds commits whose parents it lacks.
fn is_shallow(repo: &gix::Repository) -> Result<bool, CodeError> {
    repo.is_shallow()
        .map_err(|e| CodeError::Other(format!("reading shallow state: {e}")))
}

/// Whether the entry has any branch or tag, i.e. has been fetched into by
/// name before.
fn has_refs(repo: &gix::Repository) -> bool {
    let Ok(platform) = repo.references() else {
        return false;
    };
    ["refs/heads/", "refs/tags/"].iter().any(|prefix| {
        platform
            .prefixed(*prefix)
            .is_ok_and(|mut refs| refs.next().is_some())
    })
}

/// Creates the bare repository in a scratch directory and renames it into
/// place, so a crash mid-way never leaves a half-initialized entry behind.
fn create_entry(dir: &Path, cache_root: &Path, name: &str) -> Result<(), CodeError> {
    if dir.exists() {
        // Left over from an interrupted creation: the lock guarantees no one
        // else is using it.
        fs::remove_dir_all(dir).map_err(|e| {
            CodeError::Other(format!("removing broken cache {}: {e}", dir.display()))
        })?;
    }
    let scratch: PathBuf = cache_root.join(format!("{name}.tmp{}", std::process::id()));
    if scratch.exists() {
        let _ = fs::remove_dir_all(&scratch);
    }
    gix::ThreadSafeRepository::init_opts(
        &scratch,
        gix::create::Kind::Bare,
        gix::create::Options::default(),
        gix_open_options(),
    )
    .map_err(|e| CodeError::Other(format!("creating cache {}: {e}", scratch.display())))?;
    fs::rename(&scratch, dir).map_err(|e| {
        let _ = fs::remove_dir_all(&scratch);
        CodeError::Other(format!("placing cache {}: {e}", dir.display()))
    })
}

/// Connects to `url`, lists the refs `refspecs` select (and `HEAD` when
/// `list_head`), then does `what`. Returns the listed refs. Fetching must
/// run under the entry lock.
fn transfer(
    repo: &gix::Repository,
    url: &str,
    opts: &GitOptions,
    refspecs: &[String],
    list_head: bool,
    what: Transfer,
) -> Result<RefSnapshot, CodeError> {
    let shown = redact(url);
    let fail = |what: &str, e: &dyn std::error::Error| {
        let text = error_chain(e);
        // A server answering 404 for the repository means there is no such
        // repository, which callers report differently from an outage.
        if text.contains("404") || text.contains("not found") || text.contains("Not Found") {
            CodeError::NotFound(format!("{shown}: {what}: {text}"))
        } else {
            CodeError::Other(format!("{shown}: {what}: {text}"))
        }
    };
    let remote = repo
        .remote_at_without_url_rewrite(url)
        .map_err(|e| fail("invalid remote URL", &e))?
        .with_refspecs(refspecs.iter().map(String::as_str), Direction::Fetch)
        .map_err(|e| fail("refspecs", &e))?
        .with_fetch_tags(gix::remote::fetch::Tags::None);
    let auth_opts = opts.clone();
    let auth_remote = url.to_string();
    let connection = remote
        .connect(Direction::Fetch)
        .map_err(|e| fail("connecting", &e))?
        // Never fall back to git's credential helpers: they are external
        // programs, and this crate must not spawn any.
        .with_credentials(move |action| match action {
            gix::credentials::helper::Action::Get(ctx) => {
                let asked = ctx.url.as_ref().map(|u| u.to_string());
                let account = auth_opts.account_for(&auth_remote, asked.as_deref());
                Ok(account.map(|identity| gix::credentials::protocol::Outcome {
                    identity,
                    next: ctx.into(),
                }))
            }
            _ => Ok(None),
        });
    let mut extra_refspecs = Vec::new();
    if list_head {
        let head_spec = gix::refspec::parse("HEAD".into(), gix::refspec::parse::Operation::Fetch)
            .map_err(|e| fail("refspec", &e))?
            .to_owned();
        extra_refspecs.push(head_spec);
    }
    let prepare = connection
        .prepare_fetch(
            gix::progress::Discard,
            gix::remote::ref_map::Options {
                extra_refspecs,
                ..Default::default()
            },
        )
        .map_err(|e| fail("listing remote refs", &e))?;
    let snapshot = RefSnapshot::from_remote(&prepare.ref_map().remote_refs);
    if let Transfer::Fetch(shallow) = what {
        prepare
            .with_shallow(shallow)
            .receive(gix::progress::Discard, &AtomicBool::new(false))
            .map_err(|e| fail("fetching", &e))?;
    }
    Ok(snapshot)
}

/// Whether every advertised branch and tag already has the same value in the
/// cache (then the fetch would transfer nothing).
fn cache_matches(repo: &gix::Repository, snapshot: &RefSnapshot) -> bool {
    snapshot.direct.iter().all(|(name, id)| {
        matches!(
            repo.try_find_reference(name.as_str()),
            Ok(Some(r)) if r.target().try_id() == Some(id.as_ref())
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_hex_and_distinct() {
        let a = entry_name("https://example.com/a").unwrap();
        let b = entry_name("https://example.com/b").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 40);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn redact_removes_userinfo() {
        assert_eq!(
            redact("https://user:pw@example.com/r.git"),
            "https://example.com/r.git"
        );
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn lock_is_exclusive_between_handles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = EntryLock::acquire(&path).unwrap();
        let other = OpenOptions::new().write(true).open(&path).unwrap();
        assert!(fs4::FileExt::try_lock(&other).is_err());
        drop(held);
        assert!(fs4::FileExt::try_lock(&other).is_ok());
    }
}
