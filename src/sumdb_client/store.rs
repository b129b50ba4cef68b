//! Where the checksum database client keeps what it learned: the latest
//! verified tree head (so that every later head is checked for consistency
//! with it, across restarts and across instances) and the tiles it
//! downloaded (so that instances sharing a store download each tile once).
//!
//! Nothing read back from here is trusted blindly: a stored tree head is
//! a signed note opened with the database key again, and stored tiles are
//! checked against a signed tree hash before any hash in them is used, so
//! a damaged store can make verification fail but never pass.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;

use crate::storage::{SideKey, Storage};

/// A small key-value store of client state. Keys are relative
/// slash-separated paths: `<database name>/latest` and
/// `<database name>/tile/8/0/x001/234` (the go command's cache layout).
#[async_trait]
pub trait SumdbStore: Send + Sync + 'static {
    /// The bytes at `key`, `None` when absent.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, String>;
    /// Replaces the bytes at `key` whole (readers see the old or the new
    /// bytes, never a mix).
    async fn put(&self, key: &str, data: Bytes) -> Result<(), String>;
}

/// State kept in this process only.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Bytes>>,
}

#[async_trait]
impl SumdbStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, String> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        Ok(entries.get(key).cloned())
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), String> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.insert(key.to_string(), data);
        Ok(())
    }
}

/// State in files under a directory: for disk storage, the directory
/// `.athens/sumdb-cache` of `Storage.Disk.RootPath`, shared by every
/// instance on that root. No module path starts with a dot, and Athens
/// finds versions by their `.info` files, so Athens never takes these files
/// for modules.
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    /// Keeps state under `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> DirStore {
        DirStore { root: root.into() }
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, String> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

/// Keys are built by the client from the database name and tile paths;
/// this refuses anything that could leave the directory all the same.
fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.split('/').all(|e| {
            !e.is_empty()
                && e != "."
                && e != ".."
                && !e.starts_with(".tmp-")
                && e.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~:+".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(format!("unusable state key {key:?}"))
    }
}

#[async_trait]
impl SumdbStore for DirStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, String> {
        let path = self.path_of(key)?;
        match tokio::fs::read(&path).await {
            Ok(data) => Ok(Some(Bytes::from(data))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        }
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), String> {
        let path = self.path_of(key)?;
        tokio::task::spawn_blocking(move || {
            let dir = path.parent().ok_or("state key without a directory")?;
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            // Write aside, then rename over: readers never see half a file.
            let mut tmp = tempfile::Builder::new()
                .prefix(".tmp-")
                .tempfile_in(dir)
                .map_err(|e| format!("writing in {}: {e}", dir.display()))?;
            std::io::Write::write_all(&mut tmp, &data)
                .map_err(|e| format!("writing in {}: {e}", dir.display()))?;
            tmp.persist(&path)
                .map_err(|e| format!("writing {}: {}", path.display(), e.error))?;
            Ok(())
        })
        .await
        .map_err(|e| format!("state write task: {e}"))?
    }
}

/// State kept as side objects of the configured storage (under
/// `.athens/sumdb-cache/`: a directory of the disk root, a key prefix of
/// object stores), shared by every instance on that storage and invisible
/// to Athens.
pub struct StorageStore {
    storage: Arc<dyn Storage>,
}

impl StorageStore {
    /// Keeps state in `storage`'s side objects.
    pub fn new(storage: Arc<dyn Storage>) -> StorageStore {
        StorageStore { storage }
    }
}

/// The reserved side-object path of a state key. Database names may hold
/// characters side paths do not allow (a `:` before a port); every byte
/// outside `[A-Za-z0-9-._~/]` is written `!` and two hex digits, which
/// keeps distinct keys distinct.
fn side_path(key: &str) -> String {
    let mut path = String::from("sumdb-cache/");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            path.push(b as char);
        } else {
            path.push_str(&format!("!{b:02x}"));
        }
    }
    path
}

#[async_trait]
impl SumdbStore for StorageStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, String> {
        check_key(key)?;
        let path = side_path(key);
        self.storage
            .get_side(&SideKey::Reserved(&path))
            .await
            .map_err(|e| e.to_string())
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), String> {
        check_key(key)?;
        let path = side_path(key);
        self.storage
            .put_side(&SideKey::Reserved(&path), &mut &data[..])
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let disk = DirStore::new(dir.path().join(".athens/sumdb-cache"));
        let memory = MemoryStore::default();
        for store in [&disk as &dyn SumdbStore, &memory] {
            let key = "sum.golang.org/tile/8/0/x001/234.p/5";
            assert_eq!(store.get(key).await.unwrap(), None);
            store.put(key, Bytes::from_static(b"one")).await.unwrap();
            store.put(key, Bytes::from_static(b"two")).await.unwrap();
            assert_eq!(store.get(key).await.unwrap().unwrap(), "two");
            store
                .put("localhost:8080/x/latest", Bytes::from_static(b"3"))
                .await
                .unwrap();
        }
        // Side objects of disk storage: the same files as DirStore.
        let root = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> =
            Arc::new(crate::storage::DiskStorage::new(root.path()).unwrap());
        let side = StorageStore::new(Arc::clone(&storage));
        let key = "127.0.0.1:8080/tile/8/0/000.p/3";
        assert_eq!(side.get(key).await.unwrap(), None);
        side.put(key, Bytes::from_static(b"tile")).await.unwrap();
        assert_eq!(side.get(key).await.unwrap().unwrap(), "tile");
        assert!(root
            .path()
            .join(".athens/sumdb-cache/127.0.0.1!3a8080/tile/8/0/000.p/3")
            .is_file());
        assert!(storage.catalog("", 0).await.unwrap().entries.is_empty());
        let memory = StorageStore::new(Arc::new(crate::storage::MemoryStorage::new()));
        memory
            .put("sum.golang.org/latest", Bytes::from_static(b"head"))
            .await
            .unwrap();
        assert_eq!(
            memory.get("sum.golang.org/latest").await.unwrap().unwrap(),
            "head"
        );
        assert_ne!(side_path("a:b"), side_path("a!3ab"));
        for bad in ["", "../x", "a//b", "a/./b", "/abs", "a b", "a/.tmp-x"] {
            assert!(side.put(bad, Bytes::new()).await.is_err(), "{bad:?}");
            assert!(disk.put(bad, Bytes::new()).await.is_err(), "{bad:?}");
            assert!(disk.get(bad).await.is_err(), "{bad:?}");
        }
    }
}
