//! [`MeteredStorage`]: storage reads that hit or miss, per file kind.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncRead;

use super::http::ROUTE;
use super::{FileKind, Metrics, ReadResult, Route};
use crate::storage::{CatalogPage, SideKey, Storage, StorageError, StoredZip};

/// A storage that counts the reads of `.info`, `go.mod`, zips and version
/// lists, and passes everything through unchanged.
///
/// Reads made while a request for `@latest` is served count as kind
/// `latest`; reads made while a health check, the checksum proxy or
/// another non-protocol route is served (`/readyz` lists a module) are
/// not counted.
pub struct MeteredStorage {
    inner: Arc<dyn Storage>,
    metrics: Arc<Metrics>,
}

impl MeteredStorage {
    /// Counts the reads of `inner` into `metrics`.
    pub fn new(inner: Arc<dyn Storage>, metrics: Arc<Metrics>) -> Self {
        MeteredStorage { inner, metrics }
    }

    fn record<T>(
        &self,
        kind: FileKind,
        result: &Result<T, StorageError>,
        found: impl Fn(&T) -> bool,
    ) {
        let kind = match ROUTE.try_with(|route| *route) {
            Ok(Route::Latest) => FileKind::Latest,
            Ok(Route::Info | Route::Mod | Route::Zip | Route::List) | Err(_) => kind,
            Ok(Route::Sumdb | Route::Health | Route::Metrics | Route::Other) => return,
        };
        let outcome = match result {
            Ok(value) if found(value) => ReadResult::Hit,
            Ok(_) => ReadResult::Miss,
            Err(e) if e.is_not_found() => ReadResult::Miss,
            Err(_) => ReadResult::Error,
        };
        self.metrics.record_read(kind, outcome);
    }
}

#[async_trait]
impl Storage for MeteredStorage {
    async fn info(&self, module: &str, version: &str) -> Result<Bytes, StorageError> {
        let result = self.inner.info(module, version).await;
        self.record(FileKind::Info, &result, |_| true);
        result
    }

    async fn go_mod(&self, module: &str, version: &str) -> Result<Bytes, StorageError> {
        let result = self.inner.go_mod(module, version).await;
        self.record(FileKind::Mod, &result, |_| true);
        result
    }

    async fn zip(&self, module: &str, version: &str) -> Result<StoredZip, StorageError> {
        let result = self.inner.zip(module, version).await;
        self.record(FileKind::Zip, &result, |_| true);
        result
    }

    async fn exists(&self, module: &str, version: &str) -> Result<bool, StorageError> {
        self.inner.exists(module, version).await
    }

    async fn list(&self, module: &str) -> Result<Vec<String>, StorageError> {
        let result = self.inner.list(module).await;
        self.record(FileKind::List, &result, |versions| !versions.is_empty());
        result
    }

    async fn save(
        &self,
        module: &str,
        version: &str,
        go_mod: Bytes,
        zip: &mut (dyn AsyncRead + Send + Unpin),
        info: Bytes,
    ) -> Result<(), StorageError> {
        self.inner.save(module, version, go_mod, zip, info).await
    }

    async fn delete(&self, module: &str, version: &str) -> Result<(), StorageError> {
        self.inner.delete(module, version).await
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
