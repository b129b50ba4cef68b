//! Deflated entries kept from one zip for the next.
//!
//! Successive versions of a module share most of their files, and deflating
//! is most of the work of writing a zip. A file whose content is named by a
//! key (a git blob id, say) is deflated once: the deflate stream depends
//! only on the content and the level, so the archive is byte for byte the
//! one written without the cache.

use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::{Equivalent, Weighter};

use super::write::Deflated;

/// Bytes counted for an entry besides its key and deflated data.
const ENTRY_OVERHEAD: u64 = 64;

/// Entries larger than this share of the cache are not kept: one file must
/// not push out everything else.
const LARGEST_SHARE: u64 = 8;

/// Where a content key is valid (the module path, for instance) and the key.
type Key = (String, Vec<u8>);

/// A [`Key`] borrowed, for lookups without copying; it hashes as the
/// tuple does.
#[derive(Hash)]
struct KeyRef<'a>(&'a str, &'a [u8]);

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.0 == key.0 && self.1 == key.1.as_slice()
    }
}

/// Weighs an entry by the bytes it holds.
#[derive(Clone)]
struct EntryBytes;

impl Weighter<Key, Arc<Deflated>> for EntryBytes {
    fn weight(&self, key: &Key, entry: &Arc<Deflated>) -> u64 {
        (key.0.len() + key.1.len() + entry.data.len()) as u64 + ENTRY_OVERHEAD
    }
}

/// Deflated files kept between zips, bounded by the bytes they hold (least
/// recently used go first). Shared by threads; pass it to
/// [`create_cached`](super::create_cached).
pub struct DeflateCache {
    entries: Cache<Key, Arc<Deflated>, EntryBytes>,
    max_bytes: u64,
}

impl std::fmt::Debug for DeflateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeflateCache")
            .field("entries", &self.entries.len())
            .field("bytes", &self.entries.weight())
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl DeflateCache {
    /// A cache holding at most `max_bytes` of deflated data (and keys).
    pub fn new(max_bytes: u64) -> Self {
        // quick_cache sizes its tables from an item estimate: assume
        // entries of ~4 KiB, the size of a typical deflated source file.
        let estimated_items = usize::try_from(max_bytes / 4096).unwrap_or(usize::MAX);
        DeflateCache {
            entries: Cache::with_weighter(estimated_items.max(16), max_bytes, EntryBytes),
            max_bytes,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes held, as counted against the bound.
    pub fn bytes(&self) -> u64 {
        self.entries.weight()
    }

    pub(crate) fn get(&self, scope: &str, key: &[u8]) -> Option<Arc<Deflated>> {
        self.entries.get(&KeyRef(scope, key))
    }

    pub(crate) fn insert(&self, scope: &str, key: &[u8], entry: Arc<Deflated>) {
        if (entry.data.len() as u64).saturating_mul(LARGEST_SHARE) > self.max_bytes {
            return;
        }
        self.entries
            .insert((scope.to_string(), key.to_vec()), entry);
    }
}
