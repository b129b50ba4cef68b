//! `GoGetDir`, the native fetcher's working directory: the git cache
//! (`vcs/`), zips staged while fetching, and the netrc written for
//! `GithubToken`. It holds credentials and repository contents, so it
//! must be private to the user the server runs as.
//!
//! Unset, it is `athens-<uid>` in the system temporary directory, created
//! with mode 0700; one that exists already must be a directory (not a
//! symbolic link) owned by that user, and is made 0700. A configured
//! `GoGetDir` is created (0700) if missing and refused when another user
//! owns it or anyone may write to it, since whoever can write there can
//! plant repositories, zips or credentials.
//!
//! Several instances may share one `GoGetDir`, so what a crashed fetch
//! left behind (staged zips, the git cache's scratch directories) is
//! removed at start only once older than [`stale_age`]: no live fetch of
//! any instance runs that long.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::Config;

/// Prefixes of the files fetches stage in `GoGetDir`: native fetches'
/// zips, upstream proxies' zips, and the netrc being written.
const STAGING_PREFIXES: [&str; 3] = [".athens-fetch-", ".athens-zip-", ".athens-netrc-"];

/// Age past which temporary files cannot belong to a live fetch or save
/// of any instance: each runs under `StashTimeout`, and twice that (at
/// least two minutes) leaves room for clocks and slow file systems.
pub fn stale_age(config: &Config) -> Duration {
    config
        .stash_timeout_duration()
        .max(Duration::from_secs(60))
        .saturating_mul(2)
}

/// The effective user id the server runs as.
#[cfg(unix)]
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The default `GoGetDir`: private per user.
pub fn default_dir() -> PathBuf {
    #[cfg(unix)]
    let name = format!("athens-{}", euid());
    #[cfg(not(unix))]
    let name = "athens".to_string();
    std::env::temp_dir().join(name)
}

/// Creates or checks `GoGetDir` as described in the module documentation
/// and returns it.
pub fn prepare(configured: &str) -> Result<PathBuf, String> {
    if configured.is_empty() {
        let dir = default_dir();
        prepare_default(&dir)?;
        Ok(dir)
    } else {
        let dir = PathBuf::from(configured);
        prepare_configured(&dir)?;
        Ok(dir)
    }
}

#[cfg(unix)]
fn create_private(dir: &Path, recursive: bool) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(recursive).mode(0o700);
    match builder.create(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

#[cfg(not(unix))]
fn create_private(dir: &Path, recursive: bool) -> std::io::Result<()> {
    let made = if recursive {
        std::fs::create_dir_all(dir)
    } else {
        std::fs::create_dir(dir)
    };
    match made {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

fn prepare_default(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    create_private(dir, false).map_err(|e| format!("creating GoGetDir {shown}: {e}"))?;
    // Not followed: in a shared temporary directory, a link planted under
    // the predictable name would lead elsewhere.
    let meta =
        std::fs::symlink_metadata(dir).map_err(|e| format!("checking GoGetDir {shown}: {e}"))?;
    if !meta.is_dir() {
        return Err(format!(
            "GoGetDir {shown} is not a directory (a symbolic link or file planted there?); \
             remove it or set GoGetDir"
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if meta.uid() != euid() {
            return Err(format!(
                "GoGetDir {shown} is owned by uid {}, not by this user (uid {}); remove it or set GoGetDir",
                meta.uid(),
                euid()
            ));
        }
        if meta.mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("making GoGetDir {shown} private: {e}"))?;
        }
    }
    Ok(())
}

fn prepare_configured(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    create_private(dir, true).map_err(|e| format!("creating GoGetDir {shown}: {e}"))?;
    let meta = std::fs::metadata(dir).map_err(|e| format!("checking GoGetDir {shown}: {e}"))?;
    if !meta.is_dir() {
        return Err(format!("GoGetDir {shown} is not a directory"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.uid() != euid() {
            return Err(format!(
                "GoGetDir {shown} is owned by uid {}, not by the user this server runs as (uid {}): \
                 others could plant repositories or credentials there",
                meta.uid(),
                euid()
            ));
        }
        if meta.mode() & 0o002 != 0 {
            return Err(format!(
                "GoGetDir {shown} is writable by every user (mode {:o}): \
                 others could plant repositories or credentials there",
                meta.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

/// Writes `text` to `dir/name` with mode 0600 without ever opening an
/// existing path: the bytes go to a new file (created exclusively, so a
/// symbolic link planted in its place is not followed) that is renamed
/// over `name`, which replaces a link there rather than writing through
/// it.
pub fn write_private_file(dir: &Path, name: &str, text: &[u8]) -> Result<PathBuf, String> {
    let path = dir.join(name);
    let shown = path.display();
    // tempfile creates with O_EXCL and mode 0600.
    let mut file = tempfile::Builder::new()
        .prefix(".athens-netrc-")
        .tempfile_in(dir)
        .map_err(|e| format!("writing {shown}: {e}"))?;
    file.write_all(text)
        .and_then(|()| file.as_file().sync_all())
        .map_err(|e| format!("writing {shown}: {e}"))?;
    file.persist(&path)
        .map_err(|e| format!("writing {shown}: {}", e.error))?;
    Ok(path)
}

/// Removes what crashed fetches left in `dir` (staged zips and netrc
/// files, the git cache's scratch directories) once older than `age`.
/// Returns how many were removed.
pub fn remove_stale(dir: &Path, age: Duration) -> std::io::Result<usize> {
    let cutoff = SystemTime::now()
        .checked_sub(age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut removed = 0;
    let items = match std::fs::read_dir(dir) {
        Ok(items) => items,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for item in items.flatten() {
        let name = item.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if !STAGING_PREFIXES.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        // Regular files only (a link is never followed, a directory of
        // that name is not ours).
        let Ok(meta) = item.metadata() else {
            continue;
        };
        if meta.is_file() && meta.modified().is_ok_and(|t| t < cutoff) {
            match std::fs::remove_file(item.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    removed += vcs::git::budget::remove_stale_scratch(&dir.join("vcs"), age)?;
    Ok(removed)
}

/// Clears what crashed fetches left and brings the git cache within its
/// budget, in the background so the start is not delayed by a large
/// cache; failures are logged.
pub fn tidy_in_background(dir: PathBuf, age: Duration, git_cache_max_bytes: u64) {
    let spawned = std::thread::Builder::new()
        .name("gogetdir-tidy".into())
        .spawn(move || {
            match remove_stale(&dir, age) {
                Ok(0) => {}
                Ok(n) => tracing::info!(dir = %dir.display(), removed = n, "GoGetDir: removed leftovers of interrupted fetches"),
                Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "GoGetDir: removing leftovers"),
            }
            let vcs = dir.join("vcs");
            if git_cache_max_bytes > 0 && vcs.is_dir() {
                if let Err(e) = vcs::git::budget::enforce(&vcs, git_cache_max_bytes) {
                    tracing::warn!(dir = %vcs.display(), error = %e, "git cache: enforcing the size budget");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "GoGetDir: starting the clean-up");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn default_dir_is_private_and_planted_links_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("athens-x");
        prepare_default(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // An existing one of ours that is too open is tightened.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        prepare_default(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // A link planted under the name is refused, not followed.
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let planted = tmp.path().join("athens-y");
        std::os::unix::fs::symlink(&elsewhere, &planted).unwrap();
        let err = prepare_default(&planted).unwrap_err();
        assert!(err.contains("not a directory"), "{err}");
        assert!(default_dir().ends_with(format!("athens-{}", euid())));
    }

    #[cfg(unix)]
    #[test]
    fn world_writable_or_foreign_go_get_dir_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let fresh = tmp.path().join("a/b");
        prepare(fresh.to_str().unwrap()).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = prepare(open.to_str().unwrap()).unwrap_err();
        assert!(err.contains("writable by every user"), "{err}");
        // A group-shared directory of ours is the operator's choice.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o770)).unwrap();
        prepare(open.to_str().unwrap()).unwrap();
        // Owned by someone else: as root, a directory given to `nobody`;
        // otherwise "/", which root owns.
        let foreign = if euid() == 0 {
            let dir = tmp.path().join("foreign");
            std::fs::create_dir(&dir).unwrap();
            std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
            dir
        } else {
            PathBuf::from("/")
        };
        let err = prepare(foreign.to_str().unwrap()).unwrap_err();
        assert!(err.contains("owned by uid"), "{err}");
        let err = prepare_default(&foreign).unwrap_err();
        assert!(err.contains("owned by uid"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn netrc_replaces_a_planted_link_instead_of_following_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("goget");
        std::fs::create_dir(&dir).unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("netrc")).unwrap();
        let path = write_private_file(&dir, "netrc", b"machine github.com login t\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file());
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "machine github.com login t\n"
        );
        // Nothing staged is left next to it.
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn stale_staging_files_are_removed_and_fresh_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for name in [
            ".athens-fetch-1.zip",
            ".athens-zip-2",
            ".athens-netrc-3",
            "keep.zip",
        ] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        let scratch = dir
            .join("vcs")
            .join("0123456789abcdef0123456789abcdef01234567.tmp42");
        std::fs::create_dir_all(&scratch).unwrap();
        // Young files may belong to a live fetch of another instance.
        assert_eq!(remove_stale(dir, Duration::from_secs(3600)).unwrap(), 0);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(remove_stale(dir, Duration::from_millis(1)).unwrap(), 4);
        let mut left: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["keep.zip", "vcs"]);
    }
}
