//! Storage in an object store (S3, MinIO and other S3-compatible services,
//! Google Cloud Storage, Azure Blob Storage) with Athens' key layout:
//! `{module}/@v/{version}.info`, `.mod` and `.zip`, the module path not
//! case-escaped. A bucket an Athens instance filled is served as is.
//!
//! An object appears whole or not at all, so the only partial state is a
//! version with some of its three objects missing. The `.info` object is
//! the commit marker: it is written last, with a create-only conditional
//! write where the service has one, and a version counts as stored only
//! when all three objects are there (Athens uploads the three in parallel,
//! so a bucket it wrote can hold a version without its `.info`, or with
//! only its `.info`).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::StreamReader;

use super::{
    check_storable, ensure_storable, page, page_limit, parse_catalog_token, CatalogEntry,
    CatalogPage, ServiceFailure, Storage, StorageError, StoredZip,
};

/// Zips up to this size are uploaded in one request and, when read,
/// handed over whole; larger ones are streamed in parts of this size, so
/// memory stays bounded whatever the module size.
const PART_SIZE: usize = 8 << 20;
/// Parts in flight at once during a streamed upload.
const UPLOAD_CONCURRENCY: usize = 2;
/// Zips this small are read whole, so the server can send them in one piece.
const SMALL_ZIP: u64 = 64 << 10;

/// A [`Storage`] over any [`ObjectStore`].
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    service: &'static str,
}

impl std::fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStorage")
            .field("service", &self.service)
            .field("store", &self.store.to_string())
            .finish()
    }
}

#[derive(Clone, Copy)]
enum Artifact {
    Info,
    Mod,
    Zip,
}

impl Artifact {
    fn ext(self) -> &'static str {
        match self {
            Artifact::Info => "info",
            Artifact::Mod => "mod",
            Artifact::Zip => "zip",
        }
    }
}

fn key(module: &str, version: &str, artifact: Artifact) -> Result<Path, StorageError> {
    let raw = format!("{module}/@v/{version}.{}", artifact.ext());
    // Valid module paths and versions never hold the elements `Path`
    // refuses (empty, `.`, `..`, control characters).
    Path::parse(&raw).map_err(|e| StorageError::InvalidInput {
        module: module.to_string(),
        version: version.to_string(),
        reason: e.to_string(),
    })
}

/// Splits a `.info` key back into module and version, for keys this
/// layout produces.
fn parse_info_key(key: &str) -> Option<CatalogEntry> {
    let (module, file) = key.rsplit_once("/@v/")?;
    let version = file.strip_suffix(".info")?;
    check_storable(module, version).ok()?;
    Some(CatalogEntry {
        module: module.to_string(),
        version: version.to_string(),
    })
}

impl ObjectStorage {
    /// Storage in `store`; `service` names it in errors (`s3`, `gcp`, ...).
    pub fn new(store: Arc<dyn ObjectStore>, service: &'static str) -> Self {
        ObjectStorage { store, service }
    }

    fn failure(&self, op: &'static str, key: &Path, e: object_store::Error) -> StorageError {
        StorageError::Service(Box::new(ServiceFailure {
            service: self.service,
            op,
            key: key.to_string(),
            message: describe(&e),
        }))
    }

    /// Checks at start that the bucket or container can be listed with the
    /// configured credentials.
    pub async fn check(&self) -> Result<(), StorageError> {
        let probe = Path::from("athens-startup-check");
        self.store
            .list_with_delimiter(Some(&probe))
            .await
            .map(|_| ())
            .map_err(|e| self.failure("listing the bucket", &probe, e))
    }

    async fn read_small(
        &self,
        module: &str,
        version: &str,
        artifact: Artifact,
    ) -> Result<Bytes, StorageError> {
        if check_storable(module, version).is_err() {
            return Err(StorageError::not_found(module, version));
        }
        let path = key(module, version, artifact)?;
        let result = match self.store.get(&path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StorageError::not_found(module, version))
            }
            Err(e) => return Err(self.failure("reading", &path, e)),
        };
        result
            .bytes()
            .await
            .map_err(|e| self.failure("reading", &path, e))
    }

    async fn present(&self, path: &Path) -> Result<bool, StorageError> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.failure("checking", path, e)),
        }
    }

    async fn put_small(&self, path: &Path, data: Bytes) -> Result<(), StorageError> {
        self.store
            .put(path, PutPayload::from(data))
            .await
            .map(|_| ())
            .map_err(|e| self.failure("writing", path, e))
    }

    /// Writes the commit marker; a marker another saver wrote first is
    /// kept (both describe the same immutable version).
    async fn put_marker(&self, path: &Path, data: Bytes) -> Result<(), StorageError> {
        let create = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(path, PutPayload::from(data.clone()), create)
            .await
        {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            // Services without conditional writes: a plain write of the
            // same bytes; the marker still comes last.
            Err(object_store::Error::NotImplemented { .. }) => self.put_small(path, data).await,
            Err(e) => Err(self.failure("writing", path, e)),
        }
    }

    /// Uploads the zip: one request when it fits in a part, otherwise a
    /// multipart upload that is aborted (leaving nothing) when the source
    /// fails.
    async fn put_zip(
        &self,
        module: &str,
        version: &str,
        path: &Path,
        zip: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<(), StorageError> {
        let source_error = |source: std::io::Error| StorageError::ZipSource {
            module: module.to_string(),
            version: version.to_string(),
            source,
        };
        let mut first = Vec::with_capacity(64 << 10);
        (&mut *zip)
            .take(PART_SIZE as u64 + 1)
            .read_to_end(&mut first)
            .await
            .map_err(source_error)?;
        if first.len() <= PART_SIZE {
            return self.put_small(path, Bytes::from(first)).await;
        }
        let upload = self
            .store
            .put_multipart(path)
            .await
            .map_err(|e| self.failure("starting upload", path, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        writer.put(Bytes::from(first));
        let mut buf = vec![0u8; 256 << 10];
        loop {
            if let Err(e) = writer.wait_for_capacity(UPLOAD_CONCURRENCY).await {
                let _ = writer.abort().await;
                return Err(self.failure("uploading", path, e));
            }
            let n = match zip.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(source_error(e));
                }
            };
            if n == 0 {
                break;
            }
            writer.write(&buf[..n]);
        }
        writer
            .finish()
            .await
            .map(|_| ())
            .map_err(|e| self.failure("finishing upload", path, e))
    }
}

/// The error's message without the request details object_store adds
/// (which can hold signed URLs).
fn describe(e: &object_store::Error) -> String {
    match e {
        object_store::Error::NotFound { .. } => "not found (does the bucket exist?)".into(),
        object_store::Error::Unauthenticated { .. } => "credentials refused".into(),
        object_store::Error::PermissionDenied { .. } => "permission denied".into(),
        other => {
            let text = other.to_string();
            // Keep the first line; response bodies follow on later lines.
            text.lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(400)
                .collect()
        }
    }
}

#[async_trait]
impl Storage for ObjectStorage {
    async fn info(&self, module: &str, version: &str) -> Result<Bytes, StorageError> {
        self.read_small(module, version, Artifact::Info).await
    }

    async fn go_mod(&self, module: &str, version: &str) -> Result<Bytes, StorageError> {
        self.read_small(module, version, Artifact::Mod).await
    }

    async fn zip(&self, module: &str, version: &str) -> Result<StoredZip, StorageError> {
        if check_storable(module, version).is_err() {
            return Err(StorageError::not_found(module, version));
        }
        let path = key(module, version, Artifact::Zip)?;
        let result = match self.store.get(&path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StorageError::not_found(module, version))
            }
            Err(e) => return Err(self.failure("reading", &path, e)),
        };
        let size = result.meta.size;
        if size <= SMALL_ZIP {
            let data = result
                .bytes()
                .await
                .map_err(|e| self.failure("reading", &path, e))?;
            return Ok(StoredZip::from_bytes(data));
        }
        let service = self.service;
        let stream = result.into_stream().map_err(move |e| {
            std::io::Error::other(format!(
                "storage ({service}): reading zip: {}",
                describe(&e)
            ))
        });
        Ok(StoredZip {
            size,
            reader: Box::pin(StreamReader::new(stream)),
            in_memory: None,
        })
    }

    async fn exists(&self, module: &str, version: &str) -> Result<bool, StorageError> {
        if check_storable(module, version).is_err() {
            return Ok(false);
        }
        let info = key(module, version, Artifact::Info)?;
        if !self.present(&info).await? {
            return Ok(false);
        }
        let (go_mod, zip) = (
            key(module, version, Artifact::Mod)?,
            key(module, version, Artifact::Zip)?,
        );
        let (has_mod, has_zip) = tokio::try_join!(self.present(&go_mod), self.present(&zip))?;
        Ok(has_mod && has_zip)
    }

    async fn list(&self, module: &str) -> Result<Vec<String>, StorageError> {
        if modzip::module::check_path(module).is_err() {
            return Ok(Vec::new());
        }
        let prefix =
            Path::parse(format!("{module}/@v")).map_err(|e| StorageError::InvalidInput {
                module: module.to_string(),
                version: String::new(),
                reason: e.to_string(),
            })?;
        let listing = self
            .store
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(|e| self.failure("listing", &prefix, e))?;
        Ok(listing
            .objects
            .iter()
            .filter_map(|o| parse_info_key(o.location.as_ref()))
            .filter(|e| e.module == module)
            .map(|e| e.version)
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
        if self.exists(module, version).await? {
            return Ok(());
        }
        let zip_key = key(module, version, Artifact::Zip)?;
        self.put_zip(module, version, &zip_key, zip).await?;
        self.put_small(&key(module, version, Artifact::Mod)?, go_mod)
            .await?;
        self.put_marker(&key(module, version, Artifact::Info)?, info)
            .await
    }

    async fn delete(&self, module: &str, version: &str) -> Result<(), StorageError> {
        if !self.exists(module, version).await? {
            return Err(StorageError::not_found(module, version));
        }
        // The marker goes first, so readers stop treating the version as
        // stored before its other objects disappear.
        for artifact in [Artifact::Info, Artifact::Zip, Artifact::Mod] {
            let path = key(module, version, artifact)?;
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.failure("deleting", &path, e)),
            }
        }
        Ok(())
    }

    async fn catalog(&self, token: &str, page_size: usize) -> Result<CatalogPage, StorageError> {
        // Pages follow the bucket's key order, so each page is listed from
        // where the last one ended instead of from a listing of the whole
        // bucket. (Key order is not the disk backend's order: `@v` sorts
        // before nested module paths.)
        let offset = match parse_catalog_token(token)? {
            Some(entry) => Some(key(&entry.module, &entry.version, Artifact::Info).map_err(
                |_| StorageError::InvalidToken {
                    token: token.to_string(),
                },
            )?),
            None => None,
        };
        let listing = match &offset {
            Some(offset) => self.store.list_with_offset(None, offset),
            None => self.store.list(None),
        };
        // Not every service honours the offset (Azurite starts over from
        // the first key), so keys up to it are skipped here as well.
        let mut infos = listing
            .map_err(|e| self.failure("listing", &Path::default(), e))
            .try_filter_map(|meta| {
                let past_offset = offset.as_ref().is_none_or(|o| meta.location > *o);
                let entry = past_offset
                    .then(|| parse_info_key(meta.location.as_ref()))
                    .flatten();
                futures::future::ready(Ok(entry))
            });
        let limit = page_limit(page_size);
        let mut entries = Vec::new();
        let mut more = false;
        while let Some(entry) = infos.try_next().await? {
            if entries.len() == limit {
                more = true;
                break;
            }
            entries.push(entry);
        }
        Ok(page(entries, more))
    }
}

pub mod services;

#[cfg(test)]
mod tests;
