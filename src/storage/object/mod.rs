//! Storage in an object store (S3, MinIO and other S3-compatible services,
//! Google Cloud Storage, Azure Blob Storage) with Athens' key layout:
//! `{module}/@v/{version}.info`, `.mod` and `.zip`, the module path not
//! case-escaped. A bucket an Athens instance filled is served as is.
//!
//! An object appears whole or not at all, so the only partial state is a
//! version with some of its three objects missing. The `.info` object is
//! the commit marker: it is written last, and a version counts as stored
//! only when all three objects are there (Athens uploads the three in
//! parallel, so a bucket it wrote can hold a version without its `.info`,
//! or with only its `.info`).
//!
//! Nothing stored is ever overwritten. All three objects are written
//! create-only (`If-None-Match: *` on S3, MinIO and Azure, a generation
//! precondition on GCS). A zip larger than one part goes up as a
//! multipart upload, which has no create-only form, so it is uploaded
//! under `.athens-uploads/` (a prefix no module path can have, since
//! module paths never start with a dot) and copied to its key with a
//! create-only copy, then the upload is deleted. When the `.zip` or `.mod`
//! is there already (another saver, or a save that died before its
//! `.info`), its bytes are compared with ours: equal bytes are adopted, so
//! a retry completes an interrupted save; different bytes refuse the save
//! with [`StorageError::Conflict`], unless the object has no `.info` and
//! is older than the stale age (see [`ObjectStorage::with_stale_after`]):
//! then no live saver can still be writing it, and it is replaced with a
//! conditional write on the version read. Right before the `.info`, the
//! save checks that the `.zip` and `.mod` still carry the entity tags it
//! wrote or adopted, which also covers services whose create-only check is
//! not atomic (moto's threaded server lets two concurrent creates both
//! succeed). Two savers of different bytes therefore never end with the
//! `.info` of one and the zip of the other.
//!
//! Service support, as checked: S3 (AWS since 2024, moto) and MinIO
//! honour `If-None-Match: *` on PUT and on completing a multipart upload;
//! S3 has no create-only copy header, so the copy is a one-part multipart
//! upload completed with `If-None-Match: *` (object_store's `multipart`
//! copy mode, set here unless `AWS_COPY_IF_NOT_EXISTS` chooses another);
//! Azure and GCS have native create-only puts and copies. A service that
//! ignores these headers silently degrades to last-writer-wins.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
    WriteMultipart,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::StreamReader;

use super::side::{RESERVED_PREFIX, SUMS_SUFFIX};
use super::{
    check_storable, ensure_side_key, ensure_storable, page, page_limit, parse_catalog_token,
    CatalogEntry, CatalogPage, ServiceFailure, SideKey, Storage, StorageError, StoredZip,
};

/// Zips up to this size are uploaded in one request and, when read,
/// handed over whole; larger ones are streamed in parts of this size, so
/// memory stays bounded whatever the module size.
const PART_SIZE: usize = 8 << 20;
/// Parts in flight at once during a streamed upload.
const UPLOAD_CONCURRENCY: usize = 2;
/// Zips this small are read whole, so the server can send them in one piece.
const SMALL_ZIP: u64 = 64 << 10;

/// Where multipart zip uploads are staged before their create-only copy.
/// Module paths never start with a dot, so no version key is under it.
pub const UPLOADS_PREFIX: &str = ".athens-uploads";
/// Default for [`ObjectStorage::with_stale_after`].
const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(20 * 60);

/// A [`Storage`] over any [`ObjectStore`].
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    service: &'static str,
    stale_after: Duration,
}

/// What one saver writes to one key: its length and SHA-256, so objects
/// already there can be compared with it without holding two copies.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Content {
    len: u64,
    sha256: [u8; 32],
}

impl Content {
    fn of(data: &[u8]) -> Self {
        Content {
            len: data.len() as u64,
            sha256: Sha256::digest(data).into(),
        }
    }
}

/// Whether the object was last written more than `age` ago (by the
/// service's clock against ours; the ages used are minutes, far above
/// any sane skew).
fn older_than(meta: &ObjectMeta, age: Duration) -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    now.saturating_sub(meta.last_modified.timestamp()) > age.as_secs() as i64
}

/// A fresh key under [`UPLOADS_PREFIX`] for one upload.
fn upload_key() -> Path {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    Path::from(format!(
        "{UPLOADS_PREFIX}/{nanos}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
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

/// The key of a side object: `{module}/@v/{version}.gosum` for a
/// checksum record, `.athens/{path}` for a reserved object.
fn side_key(key: &SideKey<'_>) -> Result<Path, StorageError> {
    ensure_side_key(key)?;
    let raw = match key {
        SideKey::Sums { module, version } => format!("{module}/@v/{version}.{SUMS_SUFFIX}"),
        SideKey::Reserved(path) => format!("{RESERVED_PREFIX}/{path}"),
    };
    Path::parse(&raw).map_err(|e| StorageError::InvalidInput {
        module: String::new(),
        version: String::new(),
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
        ObjectStorage {
            store,
            service,
            stale_after: DEFAULT_STALE_AFTER,
        }
    }

    /// How old a `.zip` or `.mod` without its `.info` must be before a
    /// save with different bytes may replace it (default 20 minutes).
    /// Every save runs under the stash's timeout, so an object older than
    /// that timeout is the leftover of a save that died, not one still in
    /// progress; the start-up code sets twice `StashTimeout`.
    pub fn with_stale_after(mut self, stale_after: Duration) -> Self {
        self.stale_after = stale_after;
        self
    }

    /// Deletes multipart uploads under [`UPLOADS_PREFIX`] older than the
    /// stale age: what saves that died mid-upload left behind. Younger
    /// ones may belong to a live save of this or another instance.
    /// Returns how many were deleted.
    pub async fn remove_stale_uploads(&self) -> Result<usize, StorageError> {
        let prefix = Path::from(UPLOADS_PREFIX);
        let stale_after = self.stale_after;
        let stale: Vec<Path> = self
            .store
            .list(Some(&prefix))
            .try_filter(|meta| futures::future::ready(older_than(meta, stale_after)))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|e| self.failure("listing", &prefix, e))?;
        for path in &stale {
            match self.store.delete(path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.failure("deleting", path, e)),
            }
        }
        Ok(stale.len())
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

    fn conflict(&self, module: &str, version: &str, path: &Path, reason: &str) -> StorageError {
        StorageError::Conflict {
            module: module.to_string(),
            version: version.to_string(),
            key: path.to_string(),
            reason: reason.to_string(),
        }
    }

    /// The object at `path` with the length and SHA-256 of its bytes
    /// (streamed, not held); `None` when there is none.
    async fn stored_content(
        &self,
        path: &Path,
    ) -> Result<Option<(ObjectMeta, Content)>, StorageError> {
        let result = match self.store.get(path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.failure("reading", path, e)),
        };
        let meta = result.meta.clone();
        let mut stream = result.into_stream();
        let mut hash = Sha256::new();
        let mut len = 0u64;
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| self.failure("reading", path, e))?
        {
            len += chunk.len() as u64;
            hash.update(&chunk);
        }
        let content = Content {
            len,
            sha256: hash.finalize().into(),
        };
        Ok(Some((meta, content)))
    }

    /// Decides about an object found at `path` by a create-only write of
    /// `ours`: equal bytes are adopted; different bytes may be replaced
    /// only when the version is not committed and the object is stale.
    async fn settle(
        &self,
        module: &str,
        version: &str,
        path: &Path,
        ours: Content,
    ) -> Result<Settled, StorageError> {
        let Some((meta, theirs)) = self.stored_content(path).await? else {
            return Ok(Settled::Gone);
        };
        if theirs == ours {
            return Ok(Settled::Same(meta.e_tag));
        }
        if self.present(&key(module, version, Artifact::Info)?).await? {
            return Err(self.conflict(
                module,
                version,
                path,
                "the stored version has different bytes; a published version is never replaced",
            ));
        }
        if !older_than(&meta, self.stale_after) {
            return Err(self.conflict(
                module,
                version,
                path,
                "another save of this version with different bytes is in progress",
            ));
        }
        tracing::warn!(
            service = self.service,
            key = %path,
            "replacing the leftover of an interrupted save that holds different bytes"
        );
        Ok(Settled::Replaceable(meta))
    }

    /// Uploads `first` and then the rest of `source` to `path` as one
    /// multipart upload, handing each chunk to `seen` as it goes. The
    /// object appears whole when the upload completes and is aborted,
    /// leaving nothing, when the source or the store fails.
    async fn upload_multipart(
        &self,
        path: &Path,
        first: Vec<u8>,
        source: &mut (dyn AsyncRead + Send + Unpin),
        source_error: impl Fn(std::io::Error) -> StorageError,
        mut seen: impl FnMut(&[u8]),
    ) -> Result<(), StorageError> {
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
            let n = match source.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(source_error(e));
                }
            };
            if n == 0 {
                break;
            }
            seen(&buf[..n]);
            writer.write(&buf[..n]);
        }
        writer
            .finish()
            .await
            .map(|_| ())
            .map_err(|e| self.failure("finishing upload", path, e))
    }

    /// Writes a small object create-only (see the module documentation
    /// for what happens when it is there already).
    async fn put_once(
        &self,
        module: &str,
        version: &str,
        path: &Path,
        data: Bytes,
    ) -> Result<Option<String>, StorageError> {
        let ours = Content::of(&data);
        let mut mode = PutMode::Create;
        // Each round ends in success or a refusal unless the object changes
        // under us (deleted, or replaced by another saver) between rounds.
        for _ in 0..4 {
            let options = PutOptions {
                mode: mode.clone(),
                ..Default::default()
            };
            match self
                .store
                .put_opts(path, PutPayload::from(data.clone()), options)
                .await
            {
                Ok(written) => return Ok(written.e_tag),
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. })
                | Err(object_store::Error::NotFound { .. }) => {}
                // Services without conditional writes: a plain write, the
                // marker still last (the documented degradation).
                Err(object_store::Error::NotImplemented { .. })
                    if matches!(mode, PutMode::Create) =>
                {
                    return self
                        .store
                        .put(path, PutPayload::from(data))
                        .await
                        .map(|written| written.e_tag)
                        .map_err(|e| self.failure("writing", path, e));
                }
                Err(object_store::Error::NotImplemented { .. }) => {
                    return Err(self.conflict(
                        module,
                        version,
                        path,
                        "a stale leftover of other bytes is in the way and this service has no conditional update to replace it",
                    ))
                }
                Err(e) => return Err(self.failure("writing", path, e)),
            }
            mode = match self.settle(module, version, path, ours).await? {
                Settled::Same(tag) => return Ok(tag),
                Settled::Gone => PutMode::Create,
                Settled::Replaceable(meta) => PutMode::Update(UpdateVersion {
                    e_tag: meta.e_tag,
                    version: meta.version,
                }),
            };
        }
        Err(self.conflict(
            module,
            version,
            path,
            "the object kept changing while saving",
        ))
    }

    /// The entity tag of the object at `path` now.
    async fn tag_of(&self, path: &Path) -> Result<Option<String>, StorageError> {
        self.store
            .head(path)
            .await
            .map(|meta| meta.e_tag)
            .map_err(|e| self.failure("checking", path, e))
    }

    /// The entity tag of a copy this save just placed, read together with
    /// its bytes: a copy returns no tag, and a tag read separately could
    /// be that of another saver's copy landing at the same moment on a
    /// service whose create-only check is not atomic. This reads a large
    /// zip back once per save; saves are rare next to reads.
    async fn copied_tag(
        &self,
        module: &str,
        version: &str,
        path: &Path,
        ours: Content,
    ) -> Result<Option<String>, StorageError> {
        match self.stored_content(path).await? {
            Some((meta, theirs)) if theirs == ours => Ok(meta.e_tag),
            _ => Err(self.conflict(
                module,
                version,
                path,
                "another save of this version with different bytes wrote it at the same time",
            )),
        }
    }

    /// Checks, right before the commit marker, that the object at `path`
    /// is still the one this save wrote or adopted. A service whose
    /// create-only check is not atomic (moto's threaded server is one) can
    /// let two concurrent creates both succeed; then at most the last
    /// writer passes this check, and a marker never commits the other's
    /// bytes.
    async fn still_ours(
        &self,
        module: &str,
        version: &str,
        path: &Path,
        tag: Option<String>,
    ) -> Result<(), StorageError> {
        let Some(tag) = tag else {
            return Ok(());
        };
        match self.tag_of(path).await? {
            Some(now) if now != tag => Err(self.conflict(
                module,
                version,
                path,
                "another save of this version with different bytes wrote it at the same time",
            )),
            _ => Ok(()),
        }
    }

    /// Writes the commit marker; a marker another saver wrote first is
    /// kept (its `.zip` and `.mod` were found equal to ours before).
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
            Err(object_store::Error::NotImplemented { .. }) => self
                .store
                .put(path, PutPayload::from(data))
                .await
                .map(|_| ())
                .map_err(|e| self.failure("writing", path, e)),
            Err(e) => Err(self.failure("writing", path, e)),
        }
    }

    /// Uploads the zip: one create-only request when it fits in a part,
    /// otherwise a multipart upload to a staging key (aborted, leaving
    /// nothing, when the source fails) copied create-only to its key.
    async fn put_zip(
        &self,
        module: &str,
        version: &str,
        path: &Path,
        zip: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<Option<String>, StorageError> {
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
            return self
                .put_once(module, version, path, Bytes::from(first))
                .await;
        }
        let staging = upload_key();
        let mut hash = Sha256::new();
        let mut len = first.len() as u64;
        hash.update(&first);
        self.upload_multipart(&staging, first, zip, source_error, |chunk| {
            hash.update(chunk);
            len += chunk.len() as u64;
        })
        .await?;
        let ours = Content {
            len,
            sha256: hash.finalize().into(),
        };
        let placed = self
            .place_upload(module, version, &staging, path, ours)
            .await;
        // The staging object goes whatever happened; one a crash leaves is
        // removed at the next start (`remove_stale_uploads`).
        if let Err(e) = self.store.delete(&staging).await {
            tracing::warn!(key = %staging, error = %describe(&e), "removing a staged upload");
        }
        placed
    }

    /// Copies a staged upload create-only to `path`.
    async fn place_upload(
        &self,
        module: &str,
        version: &str,
        staging: &Path,
        path: &Path,
        ours: Content,
    ) -> Result<Option<String>, StorageError> {
        for _ in 0..4 {
            match self.store.copy_if_not_exists(staging, path).await {
                Ok(()) => return self.copied_tag(module, version, path, ours).await,
                Err(object_store::Error::AlreadyExists { .. }) => {}
                // No create-only copy on this service: copy only when the
                // key is free (a narrow race the service leaves open).
                Err(
                    object_store::Error::NotImplemented { .. }
                    | object_store::Error::NotSupported { .. },
                ) => {
                    if !self.present(path).await? {
                        self.store
                            .copy(staging, path)
                            .await
                            .map_err(|e| self.failure("copying upload", path, e))?;
                        return self.copied_tag(module, version, path, ours).await;
                    }
                }
                Err(e) => return Err(self.failure("copying upload", path, e)),
            }
            match self.settle(module, version, path, ours).await? {
                Settled::Same(tag) => return Ok(tag),
                Settled::Gone => {}
                Settled::Replaceable(stale) => {
                    // Copies have no compare-and-swap form: the stale
                    // object is deleted if it is still the one compared,
                    // then the create-only copy is tried again.
                    match self.store.head(path).await {
                        Ok(now) if now.e_tag == stale.e_tag => {
                            match self.store.delete(path).await {
                                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                                Err(e) => return Err(self.failure("deleting", path, e)),
                            }
                        }
                        Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(self.failure("checking", path, e)),
                    }
                }
            }
        }
        Err(self.conflict(
            module,
            version,
            path,
            "the object kept changing while saving",
        ))
    }
}

/// What a create-only write found at its key.
enum Settled {
    /// The same bytes, with the entity tag read: adopted.
    Same(Option<String>),
    /// Nothing any more: create again.
    Gone,
    /// A stale leftover of different bytes, as read: may be replaced.
    Replaceable(ObjectMeta),
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
        let zip_tag = self.put_zip(module, version, &zip_key, zip).await?;
        let mod_key = key(module, version, Artifact::Mod)?;
        let mod_tag = self.put_once(module, version, &mod_key, go_mod).await?;
        self.still_ours(module, version, &zip_key, zip_tag).await?;
        self.still_ours(module, version, &mod_key, mod_tag).await?;
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
        // The checksum record goes with the version, as it does on disk.
        self.delete_side(&SideKey::sums(module, version)).await
    }

    async fn get_side(&self, key: &SideKey<'_>) -> Result<Option<Bytes>, StorageError> {
        let Ok(path) = side_key(key) else {
            return Ok(None);
        };
        let result = match self.store.get(&path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.failure("reading", &path, e)),
        };
        result
            .bytes()
            .await
            .map(Some)
            .map_err(|e| self.failure("reading", &path, e))
    }

    async fn put_side(
        &self,
        key: &SideKey<'_>,
        data: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<(), StorageError> {
        let path = side_key(key)?;
        if let SideKey::Sums { module, version } = key {
            if !self.exists(module, version).await? {
                return Err(StorageError::not_found(module, version));
            }
        }
        let source_error = |source: std::io::Error| StorageError::Io {
            op: "reading side object",
            path: path.to_string().into(),
            source,
        };
        let mut first = Vec::new();
        (&mut *data)
            .take(PART_SIZE as u64 + 1)
            .read_to_end(&mut first)
            .await
            .map_err(source_error)?;
        if first.len() <= PART_SIZE {
            return self
                .store
                .put(&path, PutPayload::from(first))
                .await
                .map(|_| ())
                .map_err(|e| self.failure("writing", &path, e));
        }
        self.upload_multipart(&path, first, data, source_error, |_| {})
            .await
    }

    async fn delete_side(&self, key: &SideKey<'_>) -> Result<(), StorageError> {
        let path = side_key(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failure("deleting", &path, e)),
        }
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

pub(crate) mod credentials;
pub mod services;

#[cfg(test)]
pub(crate) mod gcs_xml_front;
#[cfg(test)]
pub(crate) mod tests;
