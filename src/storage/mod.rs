//! Where fetched modules are kept: an async [`Storage`] trait with an
//! in-memory backend and a disk backend using Athens' directory layout.
//!
//! Every backend stores only canonical versions of valid module paths;
//! reads of anything else answer [`StorageError::NotFound`] (nothing of
//! the sort can have been saved), saves of anything else are refused.

pub mod cached;
pub mod disk;
pub mod external;
pub mod memory;
pub mod object;
pub mod side;
pub mod timeout;

#[cfg(test)]
pub(crate) mod conformance;

use std::path::PathBuf;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use thiserror::Error;
use tokio::io::AsyncRead;

pub use cached::CachedStorage;
pub use disk::DiskStorage;
pub use external::ExternalStorage;
pub use memory::MemoryStorage;
pub use object::ObjectStorage;
pub use side::SideKey;
pub use timeout::TimeoutStorage;

/// A readable zip stream.
pub type ZipReader = Pin<Box<dyn AsyncRead + Send>>;

/// A module zip read from storage: its length and a stream of its bytes.
pub struct StoredZip {
    /// Length of the zip in bytes.
    pub size: u64,
    /// The bytes as a stream; object stores stream every zip, the disk
    /// backend only one it cannot map.
    pub reader: ZipReader,
    /// The same bytes when the backend holds the whole zip in memory or
    /// mapped from a file, so a server can send them in one piece instead
    /// of copying them through `reader`; `None` for a zip that must be
    /// streamed.
    pub in_memory: Option<Bytes>,
}

impl StoredZip {
    /// A zip held in memory whole: `reader` and `in_memory` both give `data`.
    pub fn from_bytes(data: Bytes) -> Self {
        StoredZip {
            size: data.len() as u64,
            reader: Box::pin(std::io::Cursor::new(data.clone())),
            in_memory: Some(data),
        }
    }
}

impl std::fmt::Debug for StoredZip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredZip")
            .field("size", &self.size)
            .finish()
    }
}

/// One module version in a catalog page.
///
/// Entries are ordered by their path components (the module path's
/// elements, then the version), compared element by element. That is the
/// order in which a sorted walk of Athens' disk layout meets them, so the
/// disk backend can resume at a token and read one page without walking
/// the whole store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogEntry {
    /// Module path.
    pub module: String,
    /// Canonical version.
    pub version: String,
}

impl CatalogEntry {
    /// The entry's position in catalog order: path elements, then version.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.module
            .split('/')
            .chain(std::iter::once(self.version.as_str()))
    }
}

impl Ord for CatalogEntry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.components().cmp(other.components())
    }
}

impl PartialOrd for CatalogEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A page of the catalog of stored module versions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CatalogPage {
    /// Entries in the backend's catalog order: path-element order (see
    /// [`CatalogEntry`]) for memory and disk, key order
    /// (`module/@v/version.info`) for object stores, which can then list
    /// one page without listing the whole bucket.
    pub entries: Vec<CatalogEntry>,
    /// Token for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// Why a storage operation failed.
#[derive(Debug, Error)]
pub enum StorageError {
    /// The module version is not stored.
    #[error("{module}@{version}: not found in storage")]
    NotFound {
        /// Module path.
        module: String,
        /// Version.
        version: String,
    },
    /// A save was asked for something that can never be stored.
    #[error("cannot store {module}@{version}: {reason}")]
    InvalidInput {
        /// Module path.
        module: String,
        /// Version.
        version: String,
        /// Why it was refused.
        reason: String,
    },
    /// A catalog token that this backend did not issue.
    #[error("invalid catalog token {token:?}")]
    InvalidToken {
        /// The token.
        token: String,
    },
    /// A file-system operation failed.
    #[error("storage: {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A storage service failed or could not be reached.
    #[error(transparent)]
    Service(Box<ServiceFailure>),
    /// The backend cannot do this at all (an external storage server
    /// without a catalog, say).
    #[error("storage ({service}): {operation} is not supported: {reason}")]
    Unsupported {
        /// Which service.
        service: &'static str,
        /// What was asked.
        operation: &'static str,
        /// Why, as the service made it known.
        reason: String,
    },
    /// The store holds different bytes for this version (published, or
    /// being written by another saver): nothing was overwritten.
    #[error("storage: {module}@{version}: refusing to overwrite {key}: {reason}")]
    Conflict {
        /// Module path.
        module: String,
        /// Version.
        version: String,
        /// The object concerned.
        key: String,
        /// Why.
        reason: String,
    },
    /// Reading the zip to be saved failed.
    #[error("reading zip of {module}@{version} to store it: {source}")]
    ZipSource {
        /// Module path.
        module: String,
        /// Version.
        version: String,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
}

/// An error from a storage service (object store, external storage
/// server): unreachable, refused, or failed.
#[derive(Debug, Error)]
#[error("storage ({service}): {op} {key}: {message}")]
pub struct ServiceFailure {
    /// Which service (`s3`, `gcp`, `azureblob`, `external`, ...).
    pub service: &'static str,
    /// What was being done.
    pub op: &'static str,
    /// The object key or URL path concerned.
    pub key: String,
    /// What went wrong, without credentials.
    pub message: String,
}

impl StorageError {
    /// Whether the error means "not stored" rather than a failure.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }

    pub(crate) fn not_found(module: &str, version: &str) -> Self {
        StorageError::NotFound {
            module: module.to_string(),
            version: version.to_string(),
        }
    }
}

/// A store of module versions (`.info`, `go.mod` and zip), keyed by
/// module path and canonical version.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// The stored `.info` JSON.
    async fn info(&self, module: &str, version: &str) -> Result<Bytes, StorageError>;
    /// The stored `go.mod`.
    async fn go_mod(&self, module: &str, version: &str) -> Result<Bytes, StorageError>;
    /// A stream of the stored zip with its size.
    async fn zip(&self, module: &str, version: &str) -> Result<StoredZip, StorageError>;
    /// Whether all three files of the version are stored.
    async fn exists(&self, module: &str, version: &str) -> Result<bool, StorageError>;
    /// Stored versions of `module`, in no particular order; empty when
    /// none are stored.
    async fn list(&self, module: &str) -> Result<Vec<String>, StorageError>;
    /// Stores a version atomically: readers see all of it or nothing. An
    /// already complete copy is kept (canonical versions are immutable).
    async fn save(
        &self,
        module: &str,
        version: &str,
        go_mod: Bytes,
        zip: &mut (dyn AsyncRead + Send + Unpin),
        info: Bytes,
    ) -> Result<(), StorageError>;
    /// Removes a stored version; `NotFound` if it is not stored.
    async fn delete(&self, module: &str, version: &str) -> Result<(), StorageError>;
    /// Up to `page_size` stored versions after `token` (empty for the
    /// first page), in the backend's catalog order (see [`CatalogPage`]);
    /// a `page_size` of 0 returns everything.
    async fn catalog(&self, token: &str, page_size: usize) -> Result<CatalogPage, StorageError>;

    /// A side object (see [`side`]); `None` when there is none. Backends
    /// without side objects answer [`StorageError::Unsupported`].
    async fn get_side(&self, key: &SideKey<'_>) -> Result<Option<Bytes>, StorageError> {
        Err(side_unsupported(key, "reading side objects"))
    }
    /// Writes a side object whole, replacing any previous one; readers see
    /// the old or the new bytes, never a mix. The checksum record of a
    /// version that is not stored is refused as [`StorageError::NotFound`].
    async fn put_side(
        &self,
        key: &SideKey<'_>,
        data: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<(), StorageError> {
        let _ = data;
        Err(side_unsupported(key, "writing side objects"))
    }
    /// Removes a side object; removing one that is not there succeeds.
    async fn delete_side(&self, key: &SideKey<'_>) -> Result<(), StorageError> {
        Err(side_unsupported(key, "deleting side objects"))
    }
}

fn side_unsupported(key: &SideKey<'_>, operation: &'static str) -> StorageError {
    StorageError::Unsupported {
        service: "storage",
        operation,
        reason: format!("this storage backend keeps no side objects ({key})"),
    }
}

/// Refuses a reserved key that [`side::check_reserved`] rejects.
pub(crate) fn ensure_side_key(key: &SideKey<'_>) -> Result<(), StorageError> {
    match key {
        SideKey::Sums { module, version } => ensure_storable(module, version),
        SideKey::Reserved(path) => {
            side::check_reserved(path).map_err(|reason| StorageError::InvalidInput {
                module: String::new(),
                version: String::new(),
                reason,
            })
        }
    }
}

/// Checks that `module@version` is something a backend may store: a valid
/// module path and a canonical semantic version. Valid module paths have no
/// `..`, leading `/`, backslash or leading-dot elements, so they are safe
/// as relative file paths.
pub fn check_storable(module: &str, version: &str) -> Result<(), String> {
    modzip::module::check_path(module).map_err(|e| e.to_string())?;
    if !modzip::module::is_canonical_version(version) {
        return Err(format!(
            "version {version:?} is not a canonical semantic version"
        ));
    }
    Ok(())
}

/// [`check_storable`] as the error a backend's `save` answers with.
pub(crate) fn ensure_storable(module: &str, version: &str) -> Result<(), StorageError> {
    check_storable(module, version).map_err(|reason| StorageError::InvalidInput {
        module: module.to_string(),
        version: version.to_string(),
        reason,
    })
}

const TOKEN_SEPARATOR: char = '|';

pub(crate) fn catalog_token(entry: &CatalogEntry) -> String {
    format!("{}{TOKEN_SEPARATOR}{}", entry.module, entry.version)
}

/// Splits a catalog token into the (module, version) it points after.
pub(crate) fn parse_catalog_token(token: &str) -> Result<Option<CatalogEntry>, StorageError> {
    if token.is_empty() {
        return Ok(None);
    }
    let (module, version) =
        token
            .split_once(TOKEN_SEPARATOR)
            .ok_or_else(|| StorageError::InvalidToken {
                token: token.to_string(),
            })?;
    Ok(Some(CatalogEntry {
        module: module.to_string(),
        version: version.to_string(),
    }))
}

/// Cuts one page out of a sorted list of all entries.
pub(crate) fn paginate(
    sorted: Vec<CatalogEntry>,
    token: &str,
    page_size: usize,
) -> Result<CatalogPage, StorageError> {
    let after = parse_catalog_token(token)?;
    let mut sorted = sorted;
    sorted.sort();
    let mut rest = sorted
        .into_iter()
        .filter(|e| after.as_ref().is_none_or(|a| e > a));
    let entries: Vec<CatalogEntry> = rest.by_ref().take(page_limit(page_size)).collect();
    Ok(page(entries, rest.next().is_some()))
}

/// How many entries a page of `page_size` holds (0 means all).
pub(crate) fn page_limit(page_size: usize) -> usize {
    if page_size == 0 {
        usize::MAX
    } else {
        page_size
    }
}

/// A page of `entries`; when `more` follow, its token continues after the
/// last one.
pub(crate) fn page(entries: Vec<CatalogEntry>, more: bool) -> CatalogPage {
    let next = if more {
        entries.last().map(catalog_token)
    } else {
        None
    };
    CatalogPage { entries, next }
}
