//! Disk storage in Athens' layout, so an existing Athens disk store can be
//! served as is:
//!
//! ```text
//! ROOT/<module path, not case-escaped>/<version>/go.mod
//! ROOT/<module path, not case-escaped>/<version>/source.zip
//! ROOT/<module path, not case-escaped>/<version>/<version>.info
//! ```
//!
//! A save writes the three files into a hidden temporary directory next to
//! the version directory, syncs them and renames the directory into place,
//! so a version directory only ever appears complete. Temporary names start
//! with a dot, which no module path element or version can, so they never
//! collide with stored data and listings skip them. A published version
//! directory is never replaced: renaming onto a non-empty directory fails,
//! and a concurrent save of the same version then keeps what is there.
//! Temporary directories a crash left behind (`.tmp-*` of saves, `.del-*`
//! of deletions) are removed by [`DiskStorage::remove_stale_temp`], which
//! the server runs at start for those old enough that no live instance
//! sharing the root can still be writing them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use bytes::Bytes;
use modzip::module::is_canonical_version;
use tokio::io::{AsyncRead, AsyncWriteExt};

use super::side::{RESERVED_PREFIX, SUMS_SUFFIX};
use super::{
    check_storable, ensure_side_key, ensure_storable, paginate, CatalogEntry, CatalogPage, SideKey,
    Storage, StorageError, StoredZip,
};

const GO_MOD_FILE: &str = "go.mod";
const ZIP_FILE: &str = "source.zip";
/// Deeper trees than this are not walked by the catalog; module paths
/// this deep do not occur in practice and the cap stops pathological trees.
const MAX_CATALOG_DEPTH: usize = 64;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Zips up to this size are read whole when opened: for files this small
/// the thread-pool hops of a streamed read (stat, read, read to EOF) cost
/// more than the bytes, and the cap keeps the memory held per request small.
const SMALL_ZIP_BYTES: u64 = 64 * 1024;

/// Opens a stored zip; small ones come back in memory, larger ones mapped
/// (or, where mapping fails, as a file to stream).
fn open_zip(path: &Path, mapped: &MappedZips) -> std::io::Result<StoredZip> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let size = meta.len();
    if size <= SMALL_ZIP_BYTES {
        // Stored files are renamed into place complete and never rewritten,
        // so the length read is the length stat reported; `take` bounds the
        // buffer regardless.
        let mut data = Vec::with_capacity(size as usize);
        file.take(SMALL_ZIP_BYTES).read_to_end(&mut data)?;
        return Ok(StoredZip::from_bytes(Bytes::from(data)));
    }
    if let Some(whole) = mapped.map(&file, &meta) {
        return Ok(StoredZip::from_bytes(whole));
    }
    Ok(StoredZip {
        size,
        reader: Box::pin(InPlaceFile(file)),
        in_memory: None,
    })
}

/// The file mapped read-only; `None` where the file system cannot map it.
///
/// A mapped zip reaches the socket with one copy (the kernel's, from the
/// page cache) instead of two (into a read buffer, then to the socket), and
/// no per-chunk buffers or wake-ups: what a large zip costs to serve is then
/// close to what `sendfile` costs a web server.
fn map_whole(file: &std::fs::File, size: u64) -> Option<memmap2::Mmap> {
    // SAFETY: a mapping is only sound while nobody rewrites the file.
    // Stored files are written under a temporary name and renamed into
    // place complete; no code in this proxy opens one for writing again,
    // and deleting (unlinking) a mapped file leaves the mapping whole, as
    // for the pack files gix maps. A file cut short by another program
    // under the storage root makes reads of the missing pages fail: in the
    // kernel's copy to a plain socket that is an EFAULT error for that one
    // response (tested), while code that reads the bytes itself (TLS
    // encryption, `athens verify`) would get SIGBUS, as git would on a cut
    // pack. The storage root belongs to the proxy (README).
    let map = unsafe { memmap2::Mmap::map(file) }.ok()?;
    if map.len() as u64 != size {
        return None;
    }
    // Responses read a zip front to back: read ahead generously.
    let _ = map.advise(memmap2::Advice::Sequential);
    Some(map)
}

/// What identifies a stored file's bytes. Files are never rewritten, so
/// the same device and inode mean the same bytes while the file exists;
/// size and times tell apart a new file given the inode number of a
/// deleted one whose mapping is still in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileIdentity {
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The zips mapped for responses in progress, so that concurrent
/// responses of one file share one mapping: each mapping costs page-table
/// work to fill and to tear down, and counts in the process's resident
/// size again (64 downloads of one 20 MB zip would otherwise show as
/// 1.3 GB resident, all of it the same page-cache pages). A mapping is
/// dropped with its last response; entries only point at live ones.
#[derive(Default)]
struct MappedZips(std::sync::Mutex<HashMap<FileIdentity, Weak<memmap2::Mmap>>>);

/// A shared mapping as the owner of `Bytes`.
struct SharedMapping(Arc<memmap2::Mmap>);

impl AsRef<[u8]> for SharedMapping {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl MappedZips {
    /// `file`'s bytes, from the mapping a response in progress already
    /// holds, or from a new one.
    fn map(&self, file: &std::fs::File, meta: &std::fs::Metadata) -> Option<Bytes> {
        let id = FileIdentity::of(meta);
        let mut live = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shared) = live.get(&id).and_then(Weak::upgrade) {
            return Some(Bytes::from_owner(SharedMapping(shared)));
        }
        let map = Arc::new(map_whole(file, meta.len())?);
        live.retain(|_, mapping| mapping.strong_count() > 0);
        live.insert(id, Arc::downgrade(&map));
        Some(Bytes::from_owner(SharedMapping(map)))
    }

    fn live(&self) -> usize {
        let live = self.0.lock().unwrap_or_else(|e| e.into_inner());
        live.values().filter(|m| m.strong_count() > 0).count()
    }
}

impl std::fmt::Debug for MappedZips {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedZips")
            .field("live", &self.live())
            .finish()
    }
}

/// A stored zip read straight from the file on the task's own thread.
/// Stored files are in the page cache almost always (they were written or
/// served recently), so a read costs microseconds; tokio's file type would
/// instead hand every read to the blocking pool and back, which limited a
/// large zip to a fraction of what the socket takes. A read that does go to
/// the disk blocks one runtime worker meanwhile, as the small files' reads
/// already do.
struct InPlaceFile(std::fs::File);

impl tokio::io::AsyncRead for InPlaceFile {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::io::Read;
        let n = loop {
            match self.0.read(buf.initialize_unfilled()) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        std::task::Poll::Ready(n.map(|n| buf.advance(n)))
    }
}

/// Storage under a root directory on the local file system.
#[derive(Debug, Clone)]
pub struct DiskStorage {
    root: PathBuf,
    mapped: Arc<MappedZips>,
}

fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn is_missing(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

fn info_file_name(version: &str) -> String {
    format!("{version}.info")
}

/// Whether `dir` holds the three files of `version`.
fn version_dir_complete(dir: &Path, version: &str) -> bool {
    [
        GO_MOD_FILE.to_string(),
        ZIP_FILE.to_string(),
        info_file_name(version),
    ]
    .iter()
    .all(|name| std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.is_file()))
}

fn unique_suffix() -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{n}-{nanos}", std::process::id())
}

/// Removes a temporary directory when dropped unless disarmed, so every
/// early return of a failed save cleans up after itself.
struct TempDirGuard(Option<PathBuf>);

impl TempDirGuard {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn write_synced(path: &Path, data: &[u8]) -> Result<(), StorageError> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(io_err("creating", path))?;
    file.write_all(data)
        .await
        .map_err(io_err("writing", path))?;
    file.sync_all().await.map_err(io_err("syncing", path))
}

async fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| StorageError::Io {
                op: "syncing directory",
                path: dir,
                source,
            })
    })
    .await
    .unwrap_or(Ok(()))
}

impl DiskStorage {
    /// Opens storage rooted at `root`, which must be an existing directory
    /// (Athens refuses a missing root too, rather than guess).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let root = root.into();
        let meta = std::fs::metadata(&root).map_err(io_err("opening storage root", &root))?;
        if !meta.is_dir() {
            return Err(StorageError::Io {
                op: "opening storage root",
                path: root,
                source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        Ok(DiskStorage {
            root,
            mapped: Arc::default(),
        })
    }

    /// Removes the temporary directories of saves and deletions that died
    /// (a crash, a kill) once older than `age`; younger ones may belong to
    /// a save still running in this or another instance sharing the root.
    /// Walks the whole tree, so it is meant for the background at start.
    /// Returns how many were removed.
    pub fn remove_stale_temp(&self, age: std::time::Duration) -> Result<usize, StorageError> {
        let cutoff = std::time::SystemTime::now()
            .checked_sub(age)
            .unwrap_or(std::time::UNIX_EPOCH);
        let mut found = Vec::new();
        collect_stale(&self.root, cutoff, 0, &mut found)
            .map_err(io_err("looking for leftovers under", &self.root))?;
        for dir in &found {
            match std::fs::remove_dir_all(dir) {
                Ok(()) => {}
                Err(e) if is_missing(&e) => {}
                Err(e) => return Err(io_err("removing", dir)(e)),
            }
        }
        Ok(found.len())
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The module directory, or `None` for a path that must not become a
    /// file path.
    fn module_dir(&self, module: &str) -> Option<PathBuf> {
        modzip::module::check_path(module).ok()?;
        Some(self.root.join(module))
    }

    /// The version directory, or `None` for anything not storable.
    fn version_dir(&self, module: &str, version: &str) -> Option<PathBuf> {
        check_storable(module, version).ok()?;
        Some(self.root.join(module).join(version))
    }

    /// Where a side object lives: the checksum record in its version
    /// directory, reserved objects under `ROOT/.athens/`. `None` for a key
    /// that can name nothing.
    fn side_path(&self, key: &SideKey<'_>) -> Option<PathBuf> {
        ensure_side_key(key).ok()?;
        Some(match key {
            SideKey::Sums { module, version } => self
                .root
                .join(module)
                .join(version)
                .join(format!("{version}.{SUMS_SUFFIX}")),
            SideKey::Reserved(path) => self.root.join(RESERVED_PREFIX).join(path),
        })
    }

    async fn read_file(
        &self,
        module: &str,
        version: &str,
        name: &str,
    ) -> Result<Bytes, StorageError> {
        let dir = self
            .version_dir(module, version)
            .ok_or_else(|| StorageError::not_found(module, version))?;
        let path = dir.join(name);
        // Read in place rather than on the blocking pool: `.info` and
        // `go.mod` are a few hundred bytes, written once and then served
        // from the page cache, so open+read+close costs a few microseconds,
        // while a blocking-pool round trip (two thread wake-ups and context
        // switches) cost more than the whole request under load.
        match std::fs::read(&path) {
            Ok(data) => Ok(Bytes::from(data)),
            Err(e) if is_missing(&e) => Err(StorageError::not_found(module, version)),
            Err(e) => Err(io_err("reading", &path)(e)),
        }
    }
}

#[async_trait]
impl Storage for DiskStorage {
    async fn info(&self, module: &str, version: &str) -> Result<Bytes, StorageError> {
        self.read_file(module, version, &info_file_name(version))
            .await
    }

    async fn go_mod(&self, module: &str, version: &str) -> Result<Bytes, StorageError> {
        self.read_file(module, version, GO_MOD_FILE).await
    }

    async fn zip(&self, module: &str, version: &str) -> Result<StoredZip, StorageError> {
        let dir = self
            .version_dir(module, version)
            .ok_or_else(|| StorageError::not_found(module, version))?;
        let path = dir.join(ZIP_FILE);
        // Opened (and read when small, mapped when large) in place for the
        // same reason as `read_file`: the work is a few system calls on a
        // cached file, cheaper than a hop to the blocking pool.
        match open_zip(&path, &self.mapped) {
            Ok(zip) => Ok(zip),
            Err(e) if is_missing(&e) => Err(StorageError::not_found(module, version)),
            Err(e) => Err(io_err("opening", &path)(e)),
        }
    }

    async fn exists(&self, module: &str, version: &str) -> Result<bool, StorageError> {
        let Some(dir) = self.version_dir(module, version) else {
            return Ok(false);
        };
        let version = version.to_string();
        Ok(
            tokio::task::spawn_blocking(move || version_dir_complete(&dir, &version))
                .await
                .unwrap_or(false),
        )
    }

    async fn list(&self, module: &str) -> Result<Vec<String>, StorageError> {
        let Some(dir) = self.module_dir(module) else {
            return Ok(Vec::new());
        };
        tokio::task::spawn_blocking(move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if is_missing(&e) => return Ok(Vec::new()),
                Err(e) => return Err(io_err("listing", &dir)(e)),
            };
            let mut versions = Vec::new();
            for entry in entries {
                let entry = entry.map_err(io_err("listing", &dir))?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                // A nested module's directory can also sit here; only
                // complete version directories count.
                if is_canonical_version(&name)
                    && entry.file_type().is_ok_and(|t| t.is_dir())
                    && version_dir_complete(&entry.path(), &name)
                {
                    versions.push(name);
                }
            }
            Ok(versions)
        })
        .await
        .unwrap_or_else(|join| {
            Err(StorageError::Io {
                op: "listing",
                path: PathBuf::new(),
                source: std::io::Error::other(join.to_string()),
            })
        })
    }

    async fn save(
        &self,
        module: &str,
        version: &str,
        go_mod: Bytes,
        zip: &mut (dyn AsyncRead + Send + Unpin),
        info: Bytes,
    ) -> Result<(), StorageError> {
        ensure_storable(module, version)?;
        let module_dir = self.root.join(module);
        let final_dir = module_dir.join(version);
        tokio::fs::create_dir_all(&module_dir)
            .await
            .map_err(io_err("creating", &module_dir))?;

        let temp_dir = module_dir.join(format!(".tmp-{version}-{}", unique_suffix()));
        tokio::fs::create_dir(&temp_dir)
            .await
            .map_err(io_err("creating", &temp_dir))?;
        let mut guard = TempDirGuard(Some(temp_dir.clone()));

        write_synced(&temp_dir.join(GO_MOD_FILE), &go_mod).await?;
        let zip_path = temp_dir.join(ZIP_FILE);
        let mut zip_file = tokio::fs::File::create(&zip_path)
            .await
            .map_err(io_err("creating", &zip_path))?;
        tokio::io::copy(zip, &mut zip_file)
            .await
            .map_err(|source| StorageError::ZipSource {
                module: module.to_string(),
                version: version.to_string(),
                source,
            })?;
        zip_file
            .sync_all()
            .await
            .map_err(io_err("syncing", &zip_path))?;
        drop(zip_file);
        write_synced(&temp_dir.join(info_file_name(version)), &info).await?;
        sync_dir(&temp_dir).await?;

        let version_owned = version.to_string();
        let (temp, target) = (temp_dir.clone(), final_dir.clone());
        let renamed =
            tokio::task::spawn_blocking(move || publish_dir(&temp, &target, &version_owned))
                .await
                .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())));
        match renamed {
            Ok(Published::Renamed) => {
                guard.disarm();
                sync_dir(&module_dir).await
            }
            Ok(Published::AlreadyComplete) => Ok(()),
            Err(source) => Err(StorageError::Io {
                op: "publishing",
                path: final_dir,
                source,
            }),
        }
    }

    async fn delete(&self, module: &str, version: &str) -> Result<(), StorageError> {
        if !self.exists(module, version).await? {
            return Err(StorageError::not_found(module, version));
        }
        let Some(dir) = self.version_dir(module, version) else {
            return Err(StorageError::not_found(module, version));
        };
        let module_dir = self.root.join(module);
        // Renaming first makes the version vanish at once; the slow
        // recursive removal then works on a name nobody reads.
        let doomed = module_dir.join(format!(".del-{version}-{}", unique_suffix()));
        match tokio::fs::rename(&dir, &doomed).await {
            Ok(()) => {}
            Err(e) if is_missing(&e) => return Err(StorageError::not_found(module, version)),
            Err(e) => return Err(io_err("removing", &dir)(e)),
        }
        tokio::fs::remove_dir_all(&doomed)
            .await
            .map_err(io_err("removing", &doomed))
    }

    async fn get_side(&self, key: &SideKey<'_>) -> Result<Option<Bytes>, StorageError> {
        let Some(path) = self.side_path(key) else {
            return Ok(None);
        };
        match tokio::fs::read(&path).await {
            Ok(data) => Ok(Some(Bytes::from(data))),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(io_err("reading", &path)(e)),
        }
    }

    async fn put_side(
        &self,
        key: &SideKey<'_>,
        data: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<(), StorageError> {
        ensure_side_key(key)?;
        let path = self
            .side_path(key)
            .ok_or_else(|| StorageError::InvalidInput {
                module: String::new(),
                version: String::new(),
                reason: format!("invalid side key {key}"),
            })?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        match key {
            // A record only ever goes into a published version directory:
            // creating one would make an incomplete version appear to
            // Athens, which lists version directories as versions.
            SideKey::Sums { module, version } => {
                if !self.exists(module, version).await? {
                    return Err(StorageError::not_found(module, version));
                }
            }
            SideKey::Reserved(_) => tokio::fs::create_dir_all(&dir)
                .await
                .map_err(io_err("creating", &dir))?,
        }
        // Written beside the target under a temporary name and renamed
        // over it, so readers see the old or the new object whole.
        let temp = dir.join(format!(".tmp-side-{}", unique_suffix()));
        let written = async {
            let mut file = tokio::fs::File::create(&temp)
                .await
                .map_err(io_err("creating", &temp))?;
            tokio::io::copy(data, &mut file)
                .await
                .map_err(io_err("writing", &temp))?;
            file.sync_all().await.map_err(io_err("syncing", &temp))?;
            drop(file);
            tokio::fs::rename(&temp, &path)
                .await
                .map_err(io_err("renaming into place", &path))
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        written?;
        sync_dir(&dir).await
    }

    async fn delete_side(&self, key: &SideKey<'_>) -> Result<(), StorageError> {
        ensure_side_key(key)?;
        let Some(path) = self.side_path(key) else {
            return Ok(());
        };
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if is_missing(&e) => Ok(()),
            Err(e) => Err(io_err("removing", &path)(e)),
        }
    }

    async fn catalog(&self, token: &str, page_size: usize) -> Result<CatalogPage, StorageError> {
        // Validate the token before walking the tree.
        let after = super::parse_catalog_token(token)?;
        let root = self.root.clone();
        // One entry more than a page tells whether another page follows.
        let limit = if page_size == 0 {
            usize::MAX
        } else {
            page_size.saturating_add(1)
        };
        let all = tokio::task::spawn_blocking(move || {
            CatalogWalk::run(&root, after, limit).map(|walk| walk.found)
        })
        .await
        .unwrap_or_else(|join| {
            Err(StorageError::Io {
                op: "walking",
                path: PathBuf::new(),
                source: std::io::Error::other(join.to_string()),
            })
        })?;
        paginate(all, token, page_size)
    }
}

enum Published {
    Renamed,
    AlreadyComplete,
}

/// Moves a finished temporary directory to its final name. A complete copy
/// already there wins (a concurrent save of the same immutable version); an
/// incomplete leftover without subdirectories, e.g. from an interrupted
/// Athens write, is replaced.
fn publish_dir(temp: &Path, target: &Path, version: &str) -> std::io::Result<Published> {
    match std::fs::rename(temp, target) {
        Ok(()) => return Ok(Published::Renamed),
        Err(e) if target.is_dir() => {
            if version_dir_complete(target, version) {
                return Ok(Published::AlreadyComplete);
            }
            let has_subdirs = std::fs::read_dir(target)?
                .filter_map(Result::ok)
                .any(|entry| entry.file_type().is_ok_and(|t| t.is_dir()));
            if has_subdirs {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("{} exists and holds other data: {e}", target.display()),
                ));
            }
            // Moved aside before removal, and looked at again there: a
            // concurrent save may have completed the version since it was
            // checked, and a published version must stay.
            let aside = target.with_file_name(format!(".del-{version}-{}", unique_suffix()));
            match std::fs::rename(target, &aside) {
                Ok(()) => {}
                Err(e) if is_missing(&e) => {}
                Err(e) => return Err(e),
            }
            if aside.is_dir() && version_dir_complete(&aside, version) {
                return match std::fs::rename(&aside, target) {
                    Ok(()) => Ok(Published::AlreadyComplete),
                    // Yet another save published meanwhile: that one stays.
                    Err(_) if version_dir_complete(target, version) => {
                        let _ = std::fs::remove_dir_all(&aside);
                        Ok(Published::AlreadyComplete)
                    }
                    Err(e) => Err(e),
                };
            }
            let _ = std::fs::remove_dir_all(&aside);
        }
        Err(e) => return Err(e),
    }
    match std::fs::rename(temp, target) {
        Ok(()) => Ok(Published::Renamed),
        Err(_) if version_dir_complete(target, version) => Ok(Published::AlreadyComplete),
        Err(e) => Err(e),
    }
}

/// Whether a directory name is one of this backend's temporary names.
fn is_temp_name(name: &str) -> bool {
    name.starts_with(".tmp-") || name.starts_with(".del-")
}

/// Collects under `dir` the temporary directories last modified before
/// `cutoff`, walking real directories only (links are not followed).
fn collect_stale(
    dir: &Path,
    cutoff: std::time::SystemTime,
    depth: usize,
    found: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    if depth > MAX_CATALOG_DEPTH {
        return Ok(());
    }
    let items = match std::fs::read_dir(dir) {
        Ok(items) => items,
        Err(e) if is_missing(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    for item in items {
        let item = item?;
        if !item.file_type()?.is_dir() {
            continue;
        }
        let name = item.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if is_temp_name(name) {
            if item.metadata()?.modified()? < cutoff {
                found.push(item.path());
            }
        } else if !name.starts_with('.') {
            collect_stale(&item.path(), cutoff, depth + 1, found)?;
        }
    }
    Ok(())
}

/// A sorted walk of the store that reads one catalog page: subtrees that lie
/// wholly before the token are skipped unread, and the walk stops once it
/// has `limit` entries, so a page costs the same however large the store.
struct CatalogWalk {
    /// The token's components (path elements, then version).
    after: Option<Vec<String>>,
    after_entry: Option<CatalogEntry>,
    limit: usize,
    found: Vec<CatalogEntry>,
    /// Path elements of the directory being visited, below the root.
    path: Vec<String>,
    /// Directories read so far: what a page costs.
    reads: usize,
}

impl CatalogWalk {
    fn run(root: &Path, after: Option<CatalogEntry>, limit: usize) -> Result<Self, StorageError> {
        let mut walk = CatalogWalk {
            after: after
                .as_ref()
                .map(|a| a.components().map(str::to_string).collect()),
            after_entry: after,
            limit,
            found: Vec::new(),
            path: Vec::new(),
            reads: 0,
        };
        walk.visit(root)?;
        Ok(walk)
    }

    fn visit(&mut self, dir: &Path) -> Result<(), StorageError> {
        if self.path.len() > MAX_CATALOG_DEPTH {
            return Ok(());
        }
        self.reads += 1;
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if is_missing(&e) => return Ok(()),
            Err(e) => return Err(io_err("walking", dir)(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("walking", dir))?;
            // file_type does not follow symlinks, so links out of the root
            // are never walked.
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if let Ok(name) = entry.file_name().into_string() {
                if !name.starts_with('.') {
                    names.push(name);
                }
            }
        }
        names.sort();
        for name in names {
            if self.found.len() >= self.limit {
                break;
            }
            self.path.push(name);
            if !self.before_token() {
                let child = dir.join(self.path.last().map(String::as_str).unwrap_or_default());
                self.record(&child);
                self.visit(&child)?;
            }
            self.path.pop();
        }
        Ok(())
    }

    /// Whether everything under the current path sorts before the token.
    fn before_token(&self) -> bool {
        let Some(after) = &self.after else {
            return false;
        };
        let n = self.path.len().min(after.len());
        self.path[..n] < after[..n]
    }

    /// Adds the current directory as an entry when it is a complete
    /// version directory of a valid module path after the token.
    fn record(&mut self, dir: &Path) {
        let Some((version, module)) = self.path.split_last() else {
            return;
        };
        if module.is_empty()
            || !is_canonical_version(version)
            || !version_dir_complete(dir, version)
        {
            return;
        }
        let entry = CatalogEntry {
            module: module.join("/"),
            version: version.clone(),
        };
        if modzip::module::check_path(&entry.module).is_err() {
            return;
        }
        if self.after_entry.as_ref().is_none_or(|a| &entry > a) {
            self.found.push(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Leftovers of a crashed save or deletion go once old enough; fresh
    /// ones (a save running in another instance) and stored data stay.
    #[tokio::test]
    async fn stale_temporary_directories_are_removed_at_start() {
        let root = tempfile::tempdir().unwrap();
        let storage = DiskStorage::new(root.path()).unwrap();
        let mut zip: &[u8] = b"zip";
        storage
            .save(
                "example.com/m",
                "v1.0.0",
                Bytes::from_static(b"module m\n"),
                &mut zip,
                Bytes::from_static(b"{}"),
            )
            .await
            .unwrap();
        let module = root.path().join("example.com/m");
        for name in [".tmp-v1.1.0-1-2-3", ".del-v0.9.0-4-5-6"] {
            std::fs::create_dir_all(module.join(name)).unwrap();
            std::fs::write(module.join(name).join(ZIP_FILE), b"partial").unwrap();
        }
        // A directory that is no temporary of ours is left alone.
        std::fs::create_dir_all(module.join(".git")).unwrap();
        let hour = std::time::Duration::from_secs(3600);
        assert_eq!(storage.remove_stale_temp(hour).unwrap(), 0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let tiny = std::time::Duration::from_millis(1);
        assert_eq!(storage.remove_stale_temp(tiny).unwrap(), 2);
        let mut left: Vec<String> = std::fs::read_dir(&module)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [".git", "v1.0.0"]);
        assert!(storage.exists("example.com/m", "v1.0.0").await.unwrap());
    }

    /// A second save of a stored version with other bytes changes nothing.
    #[tokio::test]
    async fn a_published_version_is_never_replaced() {
        let root = tempfile::tempdir().unwrap();
        let storage = DiskStorage::new(root.path()).unwrap();
        for zip in [&b"first"[..], b"second"] {
            let mut zip = zip;
            storage
                .save(
                    "example.com/m",
                    "v1.0.0",
                    Bytes::from_static(b"module m\n"),
                    &mut zip,
                    Bytes::from_static(b"{}"),
                )
                .await
                .unwrap();
        }
        let mut got = Vec::new();
        let mut stored = storage.zip("example.com/m", "v1.0.0").await.unwrap();
        tokio::io::AsyncReadExt::read_to_end(&mut stored.reader, &mut got)
            .await
            .unwrap();
        assert_eq!(got, b"first");
        // Nothing staged is left behind by the refused save.
        let names: Vec<_> = std::fs::read_dir(root.path().join("example.com/m"))
            .unwrap()
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[tokio::test]
    async fn disk_storage_passes_conformance_suite() {
        let root = tempfile::tempdir().unwrap();
        let storage = DiskStorage::new(root.path()).unwrap();
        crate::storage::conformance::run(&storage).await;
        crate::storage::conformance::component_order(&storage).await;
        crate::storage::conformance::concurrent_saves(&storage).await;
        crate::storage::conformance::large_zip(&storage, 20 << 20).await;
    }

    #[tokio::test]
    async fn catalog_pages_cost_the_same_however_large_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStorage::new(dir.path()).unwrap();
        let mut modules: Vec<String> = Vec::new();
        for owner in 0..20 {
            for repo in 0..10 {
                modules.push(format!("example.com/o{owner:02}/r{repo:02}"));
            }
        }
        // Nested and look-alike paths sort by element: inside a/b/ the
        // nested module c sorts before the version v1.0.0, and a/b-c after.
        for module in ["example.com/a/b", "example.com/a/b-c", "example.com/a/b/c"] {
            modules.push(module.to_string());
        }
        for module in &modules {
            let mut zip: &[u8] = b"zip";
            store
                .save(
                    module,
                    "v1.0.0",
                    Bytes::from_static(b"module x\n"),
                    &mut zip,
                    Bytes::from_static(b"{}"),
                )
                .await
                .unwrap();
        }
        let first = store.catalog("", 3).await.unwrap();
        let names: Vec<&str> = first.entries.iter().map(|e| e.module.as_str()).collect();
        assert_eq!(
            names,
            ["example.com/a/b/c", "example.com/a/b", "example.com/a/b-c"]
        );

        // A page late in the store reads only the directories on the way to
        // its token and the page itself, not the 200 modules before it.
        let after = CatalogEntry {
            module: "example.com/o19/r05".into(),
            version: "v1.0.0".into(),
        };
        let walk = CatalogWalk::run(dir.path(), Some(after), 3).unwrap();
        let found: Vec<&str> = walk.found.iter().map(|e| e.module.as_str()).collect();
        assert_eq!(
            found,
            [
                "example.com/o19/r06",
                "example.com/o19/r07",
                "example.com/o19/r08"
            ]
        );
        assert!(walk.reads < 15, "a page read {} directories", walk.reads);
        let whole = CatalogWalk::run(dir.path(), None, usize::MAX).unwrap();
        assert_eq!(whole.found.len(), 203);
        assert!(whole.reads > 400, "the whole walk read {}", whole.reads);
    }

    #[tokio::test]
    async fn zips_either_side_of_the_in_memory_threshold_read_back_whole() {
        use tokio::io::AsyncReadExt;
        let root = tempfile::tempdir().unwrap();
        let storage = DiskStorage::new(root.path()).unwrap();
        let small = SMALL_ZIP_BYTES as usize;
        for (version, len) in [
            ("v1.0.0", small),
            ("v1.0.1", small + 1),
            ("v1.0.2", 3 * small + 7),
        ] {
            let data = zip_bytes(len);
            save_zip(&storage, version, &data).await;
            let mut zip = storage.zip("example.com/m", version).await.unwrap();
            assert_eq!(zip.size, len as u64, "{version}");
            // Small zips are read, large ones mapped: whole either way.
            let whole = zip.in_memory.as_ref().expect("a zip on disk comes whole");
            assert!(whole.as_ref() == data, "{version}");
            let mut back = Vec::new();
            zip.reader.read_to_end(&mut back).await.unwrap();
            assert!(back == data, "{version}: {} bytes read back", back.len());
        }
    }

    /// Saves `zip` as the zip of example.com/m at `version` and returns
    /// the stored file's path.
    async fn save_zip(storage: &DiskStorage, version: &str, zip: &[u8]) -> PathBuf {
        let mut reader = zip;
        storage
            .save(
                "example.com/m",
                version,
                Bytes::from_static(b"module example.com/m\n"),
                &mut reader,
                Bytes::from_static(b"{}"),
            )
            .await
            .unwrap();
        let dir = storage.version_dir("example.com/m", version).unwrap();
        dir.join(ZIP_FILE)
    }

    /// `len` bytes of zip contents.
    fn zip_bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[tokio::test]
    async fn a_mapped_zip_outlives_the_deletion_of_its_version() {
        let root = tempfile::tempdir().unwrap();
        let storage = DiskStorage::new(root.path()).unwrap();
        let data = zip_bytes(5 * SMALL_ZIP_BYTES as usize);
        let path = save_zip(&storage, "v1.0.0", &data).await;
        let zip = storage.zip("example.com/m", "v1.0.0").await.unwrap();
        storage.delete("example.com/m", "v1.0.0").await.unwrap();
        assert!(!path.exists());
        assert!(zip.in_memory.unwrap().as_ref() == data);
    }

    #[tokio::test]
    async fn concurrent_responses_of_one_zip_share_one_mapping() {
        let root = tempfile::tempdir().unwrap();
        let storage = DiskStorage::new(root.path()).unwrap();
        let len = 5 * SMALL_ZIP_BYTES as usize;
        let data = zip_bytes(len);
        save_zip(&storage, "v1.0.0", &data).await;
        // The whole bytes only, the reader over them dropped.
        let whole = |zip: StoredZip| zip.in_memory.unwrap();
        let first = whole(storage.zip("example.com/m", "v1.0.0").await.unwrap());
        let second = whole(storage.zip("example.com/m", "v1.0.0").await.unwrap());
        assert_eq!(first.as_ptr(), second.as_ptr(), "mapped twice");
        assert_eq!(storage.mapped.live(), 1);
        drop((first, second));
        assert_eq!(storage.mapped.live(), 0, "mapping kept after its responses");

        // A version deleted and saved again with other bytes of the same
        // size, while a response still holds the old mapping: the new file
        // is mapped afresh.
        let old = storage.zip("example.com/m", "v1.0.0").await.unwrap();
        storage.delete("example.com/m", "v1.0.0").await.unwrap();
        let other: Vec<u8> = data.iter().map(|b| b ^ 0x5a).collect();
        save_zip(&storage, "v1.0.0", &other).await;
        let new = storage.zip("example.com/m", "v1.0.0").await.unwrap();
        assert!(old.in_memory.unwrap().as_ref() == data);
        assert!(new.in_memory.unwrap().as_ref() == other);
    }

    /// The mapping's safety argument: a file cut short under a response by
    /// another program fails the kernel's copy out of the mapping (EFAULT)
    /// rather than raising a signal that would end the process.
    #[tokio::test]
    async fn a_mapped_zip_cut_short_fails_the_copy_without_a_signal() {
        use std::io::Write;
        let root = tempfile::tempdir().unwrap();
        let storage = DiskStorage::new(root.path()).unwrap();
        let path = save_zip(&storage, "v1.0.0", &zip_bytes(5 * SMALL_ZIP_BYTES as usize)).await;
        let zip = storage.zip("example.com/m", "v1.0.0").await.unwrap();
        let mapped = zip.in_memory.unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        let mut sink = tempfile::tempfile().unwrap();
        let err = sink.write_all(&mapped).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EFAULT), "{err}");
    }

    #[tokio::test]
    async fn uses_athens_layout_with_unescaped_module_path() {
        let root = tempfile::tempdir().unwrap();
        let storage = DiskStorage::new(root.path()).unwrap();
        let mut zip: &[u8] = b"zipdata";
        storage
            .save(
                "github.com/Azure/go-x",
                "v1.2.3",
                Bytes::from_static(b"module github.com/Azure/go-x\n"),
                &mut zip,
                Bytes::from_static(b"{\"Version\":\"v1.2.3\"}"),
            )
            .await
            .unwrap();
        let dir = root.path().join("github.com/Azure/go-x/v1.2.3");
        assert_eq!(std::fs::read(dir.join("source.zip")).unwrap(), b"zipdata");
        assert!(dir.join("go.mod").is_file());
        assert!(dir.join("v1.2.3.info").is_file());
        let leftovers: Vec<_> = std::fs::read_dir(root.path().join("github.com/Azure/go-x"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("v1.2.3")]);
    }

    #[tokio::test]
    async fn reads_a_tree_written_by_athens() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("example.com/m/v0.1.0");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("go.mod"), "module example.com/m\n").unwrap();
        std::fs::write(dir.join("source.zip"), "z").unwrap();
        std::fs::write(dir.join("v0.1.0.info"), "{}").unwrap();
        // An incomplete version directory (interrupted write) is not listed.
        std::fs::create_dir_all(root.path().join("example.com/m/v0.2.0")).unwrap();
        let storage = DiskStorage::new(root.path()).unwrap();
        assert_eq!(storage.list("example.com/m").await.unwrap(), vec!["v0.1.0"]);
        assert!(!storage.exists("example.com/m", "v0.2.0").await.unwrap());
        // Saving over the incomplete leftover replaces it.
        let mut zip: &[u8] = b"z2";
        storage
            .save(
                "example.com/m",
                "v0.2.0",
                Bytes::new(),
                &mut zip,
                Bytes::new(),
            )
            .await
            .unwrap();
        assert!(storage.exists("example.com/m", "v0.2.0").await.unwrap());
    }

    #[tokio::test]
    async fn save_refuses_a_version_dir_holding_a_nested_module() {
        let root = tempfile::tempdir().unwrap();
        let storage = DiskStorage::new(root.path()).unwrap();
        let mut zip: &[u8] = b"z";
        // "a.com/x/v1.0.0-pre" is a valid module path whose directory is
        // where version v1.0.0-pre of a.com/x would go.
        storage
            .save(
                "a.com/x/v1.0.0-pre",
                "v1.0.0",
                Bytes::new(),
                &mut zip,
                Bytes::new(),
            )
            .await
            .unwrap();
        let mut zip: &[u8] = b"z";
        let err = storage
            .save(
                "a.com/x",
                "v1.0.0-pre",
                Bytes::new(),
                &mut zip,
                Bytes::new(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::Io { .. }), "{err}");
        assert!(storage
            .exists("a.com/x/v1.0.0-pre", "v1.0.0")
            .await
            .unwrap());
        assert!(storage.list("a.com/x").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn escape_attempts_touch_nothing_on_disk() {
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let storage = DiskStorage::new(&root).unwrap();
        crate::storage::conformance::escape_attempts(&storage).await;
        let names = |dir: &Path| -> Vec<std::ffi::OsString> {
            std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect()
        };
        assert_eq!(names(parent.path()), vec![std::ffi::OsString::from("root")]);
        assert!(names(&root).is_empty());
    }

    #[test]
    fn missing_root_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let err = DiskStorage::new(root.path().join("absent")).unwrap_err();
        assert!(err.to_string().contains("absent"), "{err}");
    }
}
