//! Keeps the git cache bounded: a size budget over its entries, the least
//! recently used evicted first, and the entries of remotes that failed
//! removed.
//!
//! Next to each entry `<name>/` (see the `cache` module) lie two lock
//! files: `<name>.lock`, held exclusively while the entry is created or
//! fetched into, and `<name>.use`, held shared by every open handle on the
//! entry for as long as it lives. The `.use` file's modification time is
//! the entry's last use: it is touched when a handle opens, which costs one
//! `utimes` per open. Removal takes both locks exclusively without waiting,
//! so an entry that is being read, created or filled, by this process or
//! another sharing the directory, is never removed; it is skipped and
//! tried again at the next enforcement. The repository is renamed aside
//! (`<name>.evict<pid>`) before it is deleted, so a crash mid-way never
//! leaves a half-deleted entry under its name.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::lock::FileLock;
use crate::codehost::CodeError;

/// The default budget of the git cache: 10 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 10 << 30;

fn lock_path(root: &Path, name: &str) -> PathBuf {
    root.join(format!("{name}.lock"))
}

fn use_path(root: &Path, name: &str) -> PathBuf {
    root.join(format!("{name}.use"))
}

/// A handle's claim on an entry: held shared while the entry is open, so
/// eviction leaves it alone.
#[derive(Debug)]
pub(crate) struct InUse {
    _lock: FileLock,
}

impl InUse {
    /// Claims the entry `name` and records its use now.
    pub(crate) fn claim(root: &Path, name: &str) -> Result<InUse, CodeError> {
        let lock = FileLock::shared(&use_path(root, name))?;
        // Opening for writing does not change the mtime; setting it is the
        // use record. A failure only makes the entry look older.
        let _ = lock.file().set_modified(SystemTime::now());
        Ok(InUse { _lock: lock })
    }
}

/// What an enforcement pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Enforced {
    /// Entries removed (evicted or empty).
    pub removed: Vec<String>,
    /// Bytes the remaining entries hold.
    pub remaining_bytes: u64,
}

struct Entry {
    name: String,
    bytes: u64,
    last_use: SystemTime,
    empty: bool,
}

/// Entry names (40 hex digits) under `root`.
fn entry_names(root: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for item in fs::read_dir(root)? {
        let item = item?;
        let Ok(name) = item.file_name().into_string() else {
            continue;
        };
        if name.len() == 40
            && name.bytes().all(|c| c.is_ascii_hexdigit())
            && item.file_type()?.is_dir()
        {
            names.push(name);
        }
    }
    Ok(names)
}

/// Bytes of the regular files under `dir` (symbolic links not followed).
fn tree_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(items) = fs::read_dir(&dir) else {
            continue;
        };
        for item in items.flatten() {
            match item.file_type() {
                Ok(t) if t.is_dir() => stack.push(item.path()),
                Ok(t) if t.is_file() => total += item.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    total
}

/// Whether the repository has no branch or tag at all: it was created but
/// never filled (its remote failed before anything arrived).
fn holds_no_refs(dir: &Path) -> bool {
    let packed = fs::metadata(dir.join("packed-refs")).is_ok_and(|m| m.len() > 0);
    let any_in = |sub: &str| {
        let mut stack = vec![dir.join(sub)];
        while let Some(d) = stack.pop() {
            let Ok(items) = fs::read_dir(&d) else {
                continue;
            };
            for item in items.flatten() {
                match item.file_type() {
                    Ok(t) if t.is_dir() => stack.push(item.path()),
                    Ok(_) => return true,
                    Err(_) => {}
                }
            }
        }
        false
    };
    !packed && !any_in("refs/heads") && !any_in("refs/tags")
}

fn describe(root: &Path, name: String) -> Entry {
    let dir = root.join(&name);
    let last_use = fs::metadata(use_path(root, &name))
        .or_else(|_| fs::metadata(&dir))
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    Entry {
        bytes: tree_bytes(&dir),
        empty: holds_no_refs(&dir),
        last_use,
        name,
    }
}

/// Removes entry `name` if no one has it open, created or being filled;
/// `Ok(false)` when it is in use (then nothing is touched).
pub(crate) fn remove_if_unused(root: &Path, name: &str) -> io::Result<bool> {
    let Some(in_use) = FileLock::try_exclusive(&use_path(root, name))? else {
        return Ok(false);
    };
    let Some(filling) = FileLock::try_exclusive(&lock_path(root, name))? else {
        return Ok(false);
    };
    let dir = root.join(name);
    let aside = root.join(format!("{name}.evict{}", std::process::id()));
    match fs::rename(&dir, &aside) {
        Ok(()) => fs::remove_dir_all(&aside)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // Both lock files go too, while still held (see the `lock` module), so
    // remotes seen once leave nothing behind.
    filling.remove_file()?;
    in_use.remove_file()?;
    Ok(true)
}

/// Brings the cache under `root` within `max_bytes`: entries that hold no
/// refs and are not in use are removed whatever the budget; then, while
/// the total is over the budget, the least recently used entries that are
/// not in use are evicted. Entries in use are kept even if that leaves the
/// cache over its budget (a single repository larger than the budget is
/// kept while it is used). `max_bytes == 0` means no budget.
pub fn enforce(root: &Path, max_bytes: u64) -> io::Result<Enforced> {
    let mut entries: Vec<Entry> = entry_names(root)?
        .into_iter()
        .map(|name| describe(root, name))
        .collect();
    let mut done = Enforced::default();
    let mut kept = Vec::with_capacity(entries.len());
    for entry in entries.drain(..) {
        if entry.empty && remove_if_unused(root, &entry.name)? {
            done.removed.push(entry.name);
        } else {
            kept.push(entry);
        }
    }
    let mut total: u64 = kept.iter().map(|e| e.bytes).sum();
    if max_bytes > 0 && total > max_bytes {
        kept.sort_by_key(|e| e.last_use);
        let mut survivors = Vec::with_capacity(kept.len());
        for entry in kept {
            if total > max_bytes && remove_if_unused(root, &entry.name)? {
                tracing::debug!(entry = %entry.name, bytes = entry.bytes, "git cache: evicted");
                total -= entry.bytes;
                done.removed.push(entry.name);
            } else {
                survivors.push(entry);
            }
        }
        kept = survivors;
    }
    done.remaining_bytes = kept.iter().map(|e| e.bytes).sum();
    Ok(done)
}

/// Removes what interrupted work left under the cache root: scratch
/// repositories of entry creation (`<name>.tmp<pid>`) and entries renamed
/// aside for removal (`<name>.evict<pid>`), once older than `age`.
/// Several processes may share the root, so younger ones may still be in
/// the works and are kept. Returns how many were removed.
pub fn remove_stale_scratch(root: &Path, age: Duration) -> io::Result<usize> {
    let items = match fs::read_dir(root) {
        Ok(items) => items,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let cutoff = SystemTime::now()
        .checked_sub(age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut removed = 0;
    for item in items.flatten() {
        let Ok(name) = item.file_name().into_string() else {
            continue;
        };
        let Some((entry, rest)) = name.split_at_checked(40) else {
            continue;
        };
        let scratch = ["tmp", "evict"].iter().any(|kind| {
            rest.strip_prefix('.')
                .and_then(|r| r.strip_prefix(kind))
                .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|c| c.is_ascii_digit()))
        });
        if !scratch || !entry.bytes().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let is_dir = item.file_type().is_ok_and(|t| t.is_dir());
        let old = item
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < cutoff);
        if is_dir && old {
            fs::remove_dir_all(item.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Enforces the budget after an entry grew; failures are logged, never
/// fatal to the fetch that triggered it.
pub(crate) fn after_fill(root: &Path, max_bytes: u64) {
    if max_bytes == 0 {
        return;
    }
    if let Err(e) = enforce(root, max_bytes) {
        tracing::warn!(root = %root.display(), error = %e, "git cache: enforcing the size budget");
    }
}
