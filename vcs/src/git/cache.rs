//! The persistent bare repository kept per http(s) remote, and keeping it in
//! step with the remote through gix.
//!
//! Layout under the cache root: `<sha1 of url>/` is the bare repository and
//! `<sha1 of url>.lock` the file locked exclusively (flock) while the entry is
//! created or fetched into. Readers take no lock: gix writes objects before
//! the refs that name them and replaces each ref file atomically, so a reader
//! sees either the old or the new value of a ref, never a partial one.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use gix::remote::Direction;

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

/// Opens (creating on first use) the cache entry for `url` and brings it up
/// to date with the remote. Returns the repository and the refs the remote
/// advertised.
pub(crate) fn open_synced(
    url: &str,
    cache_root: &Path,
    opts: &GitOptions,
) -> Result<(gix::ThreadSafeRepository, RefSnapshot), CodeError> {
    fs::create_dir_all(cache_root).map_err(|e| {
        CodeError::Other(format!("creating cache root {}: {e}", cache_root.display()))
    })?;
    let name = entry_name(url)?;
    let dir = cache_root.join(&name);
    let _lock = EntryLock::acquire(&cache_root.join(format!("{name}.lock")))?;
    if !dir.join("objects").is_dir() {
        create_entry(&dir, cache_root, &name)?;
    }
    let repo = gix_open_options()
        .open(&dir)
        .map_err(|e| CodeError::Other(format!("opening cache {}: {e}", dir.display())))?;
    let snapshot = sync(&repo.to_thread_local(), url, opts)?;
    Ok((repo, snapshot))
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

/// Lists the remote's refs and, when any branch or tag differs from the
/// cache, fetches all branches and tags. Must run under the entry lock.
fn sync(repo: &gix::Repository, url: &str, opts: &GitOptions) -> Result<RefSnapshot, CodeError> {
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
        .with_refspecs(MIRROR_REFSPECS, Direction::Fetch)
        .map_err(|e| fail("refspecs", &e))?
        .with_fetch_tags(gix::remote::fetch::Tags::None);
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string));
    let account = host
        .as_deref()
        .and_then(|h| opts.credentials_for(h))
        .map(|c| gix::sec::identity::Account {
            username: c.username.clone(),
            password: c.password.clone(),
            oauth_refresh_token: None,
        });
    let connection = remote
        .connect(Direction::Fetch)
        .map_err(|e| fail("connecting", &e))?
        // Never fall back to git's credential helpers: they are external
        // programs, and this crate must not spawn any.
        .with_credentials(move |action| match action {
            gix::credentials::helper::Action::Get(ctx) => {
                Ok(account
                    .clone()
                    .map(|identity| gix::credentials::protocol::Outcome {
                        identity,
                        next: ctx.into(),
                    }))
            }
            _ => Ok(None),
        });
    let head_spec = gix::refspec::parse("HEAD".into(), gix::refspec::parse::Operation::Fetch)
        .map_err(|e| fail("refspec", &e))?
        .to_owned();
    let prepare = connection
        .prepare_fetch(
            gix::progress::Discard,
            gix::remote::ref_map::Options {
                extra_refspecs: vec![head_spec],
                ..Default::default()
            },
        )
        .map_err(|e| fail("listing remote refs", &e))?;
    let snapshot = RefSnapshot::from_remote(&prepare.ref_map().remote_refs);
    if cache_matches(repo, &snapshot) {
        tracing::debug!(remote = %shown, "git cache up to date, no fetch");
        return Ok(snapshot);
    }
    tracing::debug!(remote = %shown, "fetching into git cache");
    prepare
        .receive(gix::progress::Discard, &AtomicBool::new(false))
        .map_err(|e| fail("fetching", &e))?;
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
