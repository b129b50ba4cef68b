//! In-memory storage: everything is lost on restart. Meant for development
//! and tests, like Athens' `memory` storage type.

use std::collections::BTreeMap;
use std::sync::RwLock;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{
    ensure_side_key, ensure_storable, paginate, CatalogEntry, CatalogPage, SideKey, Storage,
    StorageError, StoredZip,
};

#[derive(Clone)]
struct StoredVersion {
    info: Bytes,
    go_mod: Bytes,
    zip: Bytes,
}

/// Storage in a map guarded by a lock; clones of stored bytes are cheap
/// reference-counted views.
#[derive(Default)]
pub struct MemoryStorage {
    // Ordered by (module, version) so the catalog needs no sorting.
    versions: RwLock<BTreeMap<(String, String), StoredVersion>>,
    /// Side objects by their display key.
    side: RwLock<BTreeMap<String, Bytes>>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, module: &str, version: &str) -> Result<StoredVersion, StorageError> {
        let map = self
            .versions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(&(module.to_string(), version.to_string()))
            .cloned()
            .ok_or_else(|| StorageError::not_found(module, version))
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn info(&self, module: &str, version: &str) -> Result<Bytes, StorageError> {
        Ok(self.get(module, version)?.info)
    }

    async fn go_mod(&self, module: &str, version: &str) -> Result<Bytes, StorageError> {
        Ok(self.get(module, version)?.go_mod)
    }

    async fn zip(&self, module: &str, version: &str) -> Result<StoredZip, StorageError> {
        Ok(StoredZip::from_bytes(self.get(module, version)?.zip))
    }

    async fn exists(&self, module: &str, version: &str) -> Result<bool, StorageError> {
        match self.get(module, version) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, module: &str) -> Result<Vec<String>, StorageError> {
        let map = self
            .versions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(map
            .keys()
            .filter(|(m, _)| m == module)
            .map(|(_, v)| v.clone())
            .collect())
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
        // Read everything before touching the map, so a failing stream
        // leaves no trace.
        let mut buf = Vec::new();
        zip.read_to_end(&mut buf)
            .await
            .map_err(|source| StorageError::ZipSource {
                module: module.to_string(),
                version: version.to_string(),
                source,
            })?;
        let mut map = self
            .versions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.entry((module.to_string(), version.to_string()))
            .or_insert(StoredVersion {
                info,
                go_mod,
                zip: Bytes::from(buf),
            });
        Ok(())
    }

    async fn delete(&self, module: &str, version: &str) -> Result<(), StorageError> {
        let mut map = self
            .versions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.remove(&(module.to_string(), version.to_string()))
            .ok_or_else(|| StorageError::not_found(module, version))?;
        // The checksum record goes with the version, as it does on disk.
        let mut side = self.side.write().unwrap_or_else(|p| p.into_inner());
        side.remove(&SideKey::sums(module, version).to_string());
        Ok(())
    }

    async fn get_side(&self, key: &SideKey<'_>) -> Result<Option<Bytes>, StorageError> {
        if ensure_side_key(key).is_err() {
            return Ok(None);
        }
        let side = self.side.read().unwrap_or_else(|p| p.into_inner());
        Ok(side.get(&key.to_string()).cloned())
    }

    async fn put_side(
        &self,
        key: &SideKey<'_>,
        data: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<(), StorageError> {
        ensure_side_key(key)?;
        if let SideKey::Sums { module, version } = key {
            self.get(module, version)?;
        }
        let mut buf = Vec::new();
        data.read_to_end(&mut buf)
            .await
            .map_err(|source| StorageError::Io {
                op: "reading side object",
                path: key.to_string().into(),
                source,
            })?;
        let mut side = self.side.write().unwrap_or_else(|p| p.into_inner());
        side.insert(key.to_string(), Bytes::from(buf));
        Ok(())
    }

    async fn delete_side(&self, key: &SideKey<'_>) -> Result<(), StorageError> {
        ensure_side_key(key)?;
        let mut side = self.side.write().unwrap_or_else(|p| p.into_inner());
        side.remove(&key.to_string());
        Ok(())
    }

    async fn catalog(&self, token: &str, page_size: usize) -> Result<CatalogPage, StorageError> {
        let all: Vec<CatalogEntry> = {
            let map = self
                .versions
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            map.keys()
                .map(|(module, version)| CatalogEntry {
                    module: module.clone(),
                    version: version.clone(),
                })
                .collect()
        };
        paginate(all, token, page_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_storage_passes_conformance_suite() {
        let storage = MemoryStorage::new();
        crate::storage::conformance::run(&storage).await;
        crate::storage::conformance::component_order(&storage).await;
        crate::storage::conformance::concurrent_saves(&storage).await;
        crate::storage::conformance::large_zip(&storage, 20 << 20).await;
    }
}
