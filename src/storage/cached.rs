//! A storage layer that keeps recently read small version files in memory.
//!
//! `.info`, `go.mod` and small zips of a canonical version never change
//! once stored, and a busy proxy serves the same few thousand of them over
//! and over: answering those from memory saves a file open, stat, read and
//! close (or an object-store round trip) per request. Entries expire after
//! a short time anyway, so a version deleted by another instance sharing
//! the store stops being served here soon after; one deleted or saved
//! through this layer is dropped at once.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use quick_cache::sync::Cache;
use quick_cache::{Equivalent, Weighter};
use tokio::io::AsyncRead;

use super::{CatalogPage, SideKey, Storage, StorageError, StoredZip};

/// Which file of a version an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Part {
    Info,
    GoMod,
    Zip,
}

const PARTS: [Part; 3] = [Part::Info, Part::GoMod, Part::Zip];

/// An owned cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    module: Box<str>,
    version: Box<str>,
    part: Part,
}

/// A borrowed key, so that a lookup allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyRef<'a> {
    module: &'a str,
    version: &'a str,
    part: Part,
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.module.hash(state);
        self.version.hash(state);
        self.part.hash(state);
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.borrowed().hash(state);
    }
}

impl Key {
    fn borrowed(&self) -> KeyRef<'_> {
        KeyRef {
            module: self.module.borrow(),
            version: self.version.borrow(),
            part: self.part,
        }
    }
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        *self == key.borrowed()
    }
}

#[derive(Clone)]
struct Entry {
    data: Bytes,
    stored_at: Instant,
}

/// Weighs an entry by the memory it holds.
#[derive(Clone)]
struct EntryBytes;

/// Bookkeeping per entry besides the data and the key's strings.
const ENTRY_OVERHEAD: u64 = 96;

impl Weighter<Key, Entry> for EntryBytes {
    fn weight(&self, key: &Key, entry: &Entry) -> u64 {
        (key.module.len() + key.version.len() + entry.data.len()) as u64 + ENTRY_OVERHEAD
    }
}

/// [`Storage`] with a bounded in-memory cache of small version files in
/// front of another backend.
pub struct CachedStorage {
    inner: Arc<dyn Storage>,
    cache: Cache<Key, Entry, EntryBytes>,
    max_age: Duration,
    max_zip: u64,
}

/// Memory the default cache may use for its entries.
pub const DEFAULT_CACHE_BYTES: u64 = 4 << 20;
/// How long the default cache keeps an entry.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);
/// Largest zip the default cache keeps (larger ones are streamed from the
/// backend every time).
pub const DEFAULT_MAX_ZIP: u64 = 64 * 1024;

impl CachedStorage {
    /// Caches reads of `inner` with the default limits.
    pub fn new(inner: Arc<dyn Storage>) -> Self {
        Self::with_limits(inner, DEFAULT_CACHE_BYTES, DEFAULT_MAX_AGE, DEFAULT_MAX_ZIP)
    }

    /// Caches reads of `inner` in at most `bytes` of entries, each kept for
    /// at most `max_age`; zips are kept only up to `max_zip` bytes.
    pub fn with_limits(
        inner: Arc<dyn Storage>,
        bytes: u64,
        max_age: Duration,
        max_zip: u64,
    ) -> Self {
        // The item estimate only sizes the initial tables.
        let estimated_items = (bytes / 1024).max(16) as usize;
        CachedStorage {
            inner,
            cache: Cache::with_weighter(estimated_items, bytes, EntryBytes),
            max_age,
            max_zip,
        }
    }

    fn get(&self, module: &str, version: &str, part: Part) -> Option<Bytes> {
        let key = KeyRef {
            module,
            version,
            part,
        };
        let entry = self.cache.get(&key)?;
        if entry.stored_at.elapsed() <= self.max_age {
            return Some(entry.data);
        }
        self.cache.remove(&key);
        None
    }

    fn put(&self, module: &str, version: &str, part: Part, data: Bytes) {
        let key = Key {
            module: module.into(),
            version: version.into(),
            part,
        };
        let entry = Entry {
            data,
            stored_at: Instant::now(),
        };
        self.cache.insert(key, entry);
    }

    fn forget(&self, module: &str, version: &str) {
        for part in PARTS {
            self.cache.remove(&KeyRef {
                module,
                version,
                part,
            });
        }
    }
}

#[async_trait]
impl Storage for CachedStorage {
    async fn info(&self, module: &str, version: &str) -> Result<Bytes, StorageError> {
        if let Some(data) = self.get(module, version, Part::Info) {
            return Ok(data);
        }
        let data = self.inner.info(module, version).await?;
        self.put(module, version, Part::Info, data.clone());
        Ok(data)
    }

    async fn go_mod(&self, module: &str, version: &str) -> Result<Bytes, StorageError> {
        if let Some(data) = self.get(module, version, Part::GoMod) {
            return Ok(data);
        }
        let data = self.inner.go_mod(module, version).await?;
        self.put(module, version, Part::GoMod, data.clone());
        Ok(data)
    }

    async fn zip(&self, module: &str, version: &str) -> Result<StoredZip, StorageError> {
        if let Some(data) = self.get(module, version, Part::Zip) {
            return Ok(StoredZip::from_bytes(data));
        }
        let zip = self.inner.zip(module, version).await?;
        if let Some(data) = &zip.in_memory {
            if zip.size <= self.max_zip {
                self.put(module, version, Part::Zip, data.clone());
            }
        }
        Ok(zip)
    }

    async fn exists(&self, module: &str, version: &str) -> Result<bool, StorageError> {
        self.inner.exists(module, version).await
    }

    async fn list(&self, module: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list(module).await
    }

    async fn save(
        &self,
        module: &str,
        version: &str,
        go_mod: Bytes,
        zip: &mut (dyn AsyncRead + Send + Unpin),
        info: Bytes,
    ) -> Result<(), StorageError> {
        let saved = self.inner.save(module, version, go_mod, zip, info).await;
        self.forget(module, version);
        saved
    }

    async fn delete(&self, module: &str, version: &str) -> Result<(), StorageError> {
        let deleted = self.inner.delete(module, version).await;
        self.forget(module, version);
        deleted
    }

    async fn catalog(&self, token: &str, page_size: usize) -> Result<CatalogPage, StorageError> {
        self.inner.catalog(token, page_size).await
    }

    async fn get_side(&self, key: &SideKey<'_>) -> Result<Option<Bytes>, StorageError> {
        self.inner.get_side(key).await
    }

    async fn put_side(
        &self,
        key: &SideKey<'_>,
        data: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<(), StorageError> {
        self.inner.put_side(key, data).await
    }

    async fn delete_side(&self, key: &SideKey<'_>) -> Result<(), StorageError> {
        self.inner.delete_side(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{DiskStorage, MemoryStorage};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn conformance_over_memory_and_disk() {
        let memory = CachedStorage::new(Arc::new(MemoryStorage::new()));
        crate::storage::conformance::run(&memory).await;
        crate::storage::conformance::component_order(&memory).await;
        crate::storage::conformance::concurrent_saves(&memory).await;
        crate::storage::conformance::large_zip(&memory, 20 << 20).await;
        let dir = tempfile::tempdir().unwrap();
        let disk = CachedStorage::new(Arc::new(DiskStorage::new(dir.path()).unwrap()));
        crate::storage::conformance::run(&disk).await;
        crate::storage::conformance::component_order(&disk).await;
        crate::storage::conformance::escape_attempts(&disk).await;
    }

    /// Counts reads that reach the backend.
    struct Counting {
        inner: MemoryStorage,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl Storage for Counting {
        async fn info(&self, m: &str, v: &str) -> Result<Bytes, StorageError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.inner.info(m, v).await
        }
        async fn go_mod(&self, m: &str, v: &str) -> Result<Bytes, StorageError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.inner.go_mod(m, v).await
        }
        async fn zip(&self, m: &str, v: &str) -> Result<StoredZip, StorageError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.inner.zip(m, v).await
        }
        async fn exists(&self, m: &str, v: &str) -> Result<bool, StorageError> {
            self.inner.exists(m, v).await
        }
        async fn list(&self, m: &str) -> Result<Vec<String>, StorageError> {
            self.inner.list(m).await
        }
        async fn save(
            &self,
            m: &str,
            v: &str,
            go_mod: Bytes,
            zip: &mut (dyn AsyncRead + Send + Unpin),
            info: Bytes,
        ) -> Result<(), StorageError> {
            self.inner.save(m, v, go_mod, zip, info).await
        }
        async fn delete(&self, m: &str, v: &str) -> Result<(), StorageError> {
            self.inner.delete(m, v).await
        }
        async fn catalog(&self, t: &str, n: usize) -> Result<CatalogPage, StorageError> {
            self.inner.catalog(t, n).await
        }
    }

    const M: &str = "example.com/m";

    async fn counting_with(zips: &[(&str, usize)]) -> Arc<Counting> {
        let backend = Arc::new(Counting {
            inner: MemoryStorage::new(),
            reads: AtomicUsize::new(0),
        });
        for (version, zip_len) in zips {
            let zip = vec![b'z'; *zip_len];
            backend
                .save(
                    M,
                    version,
                    Bytes::from(format!("module {M}\n")),
                    &mut zip.as_slice(),
                    Bytes::from(format!("{{\"Version\":\"{version}\"}}")),
                )
                .await
                .unwrap();
        }
        backend
    }

    async fn read_all(s: &CachedStorage, version: &str) -> (Bytes, Bytes, u64) {
        let info = s.info(M, version).await.unwrap();
        let go_mod = s.go_mod(M, version).await.unwrap();
        let zip = s.zip(M, version).await.unwrap();
        (info, go_mod, zip.size)
    }

    #[tokio::test]
    async fn second_reads_come_from_memory_and_large_zips_do_not() {
        let backend = counting_with(&[("v1.0.0", 100), ("v1.1.0", 5000)]).await;
        let s = CachedStorage::with_limits(backend.clone(), 1 << 20, Duration::from_secs(60), 1000);
        let first = read_all(&s, "v1.0.0").await;
        assert_eq!(backend.reads.load(Ordering::SeqCst), 3);
        assert_eq!(read_all(&s, "v1.0.0").await, first);
        assert_eq!(backend.reads.load(Ordering::SeqCst), 3);
        // The 5000-byte zip is over the limit: read from the backend each time.
        read_all(&s, "v1.1.0").await;
        read_all(&s, "v1.1.0").await;
        assert_eq!(backend.reads.load(Ordering::SeqCst), 3 + 3 + 1);
        // Misses are not cached.
        assert!(s.info(M, "v9.0.0").await.unwrap_err().is_not_found());
        assert!(s.info(M, "v9.0.0").await.unwrap_err().is_not_found());
    }

    #[tokio::test]
    async fn delete_and_save_drop_entries_at_once() {
        let backend = counting_with(&[("v1.0.0", 10)]).await;
        let s = CachedStorage::new(backend.clone());
        read_all(&s, "v1.0.0").await;
        s.delete(M, "v1.0.0").await.unwrap();
        assert!(s.info(M, "v1.0.0").await.unwrap_err().is_not_found());
        assert!(s.go_mod(M, "v1.0.0").await.unwrap_err().is_not_found());
        assert!(s.zip(M, "v1.0.0").await.unwrap_err().is_not_found());
        let zip = b"new".to_vec();
        s.save(
            M,
            "v1.0.0",
            Bytes::from_static(b"module example.com/m // new\n"),
            &mut zip.as_slice(),
            Bytes::from_static(b"{}"),
        )
        .await
        .unwrap();
        assert_eq!(
            &s.go_mod(M, "v1.0.0").await.unwrap()[..],
            b"module example.com/m // new\n"
        );
    }

    #[tokio::test]
    async fn entries_expire() {
        let backend = counting_with(&[("v1.0.0", 10)]).await;
        let s =
            CachedStorage::with_limits(backend.clone(), 1 << 20, Duration::from_millis(50), 1000);
        s.info(M, "v1.0.0").await.unwrap();
        s.info(M, "v1.0.0").await.unwrap();
        assert_eq!(backend.reads.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(80)).await;
        s.info(M, "v1.0.0").await.unwrap();
        assert_eq!(backend.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn memory_stays_within_the_budget() {
        let versions: Vec<String> = (0..200).map(|i| format!("v1.0.{i}")).collect();
        let backend = Arc::new(Counting {
            inner: MemoryStorage::new(),
            reads: AtomicUsize::new(0),
        });
        let go_mod = Bytes::from(vec![b'x'; 1000]);
        for v in &versions {
            backend
                .save(
                    M,
                    v,
                    go_mod.clone(),
                    &mut &b"zip"[..],
                    Bytes::from_static(b"{}"),
                )
                .await
                .unwrap();
        }
        let budget = 20_000;
        let s = CachedStorage::with_limits(backend.clone(), budget, Duration::from_secs(60), 1000);
        for v in &versions {
            s.go_mod(M, v).await.unwrap();
        }
        assert!(
            s.cache.weight() <= budget,
            "{} > {budget}",
            s.cache.weight()
        );
        assert!(s.cache.len() < versions.len());
    }
}
