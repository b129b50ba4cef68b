//! Google Cloud Storage through its JSON API, as an [`ObjectStore`].
//!
//! object_store's own GCS client speaks the XML API, which
//! gcp-storage-emulator (the emulator the tests run against) does not
//! implement well enough; the JSON API is implemented by both. Writes use
//! media uploads, or resumable upload sessions for multipart writes, so a
//! large zip is streamed in chunks with bounded memory. Generations are the
//! object versions: conditional writes send `ifGenerationMatch`.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::num::NonZeroU32;
use std::ops::Range;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::{Buf, Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::gcp::{GcpCredentialProvider, GoogleCloudStorageBuilder};
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, CopyMode, CopyOptions, Extensions, GetOptions,
    GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;
use thiserror::Error;

/// The public Google Cloud Storage endpoint.
pub const DEFAULT_BASE_URL: &str = "https://storage.googleapis.com";

/// The environment variable that points Google's clients at an emulator.
pub const EMULATOR_HOST_VAR: &str = "STORAGE_EMULATOR_HOST";

/// Every chunk of a resumable upload but the last must be a multiple of
/// this many bytes.
pub const CHUNK_GRANULARITY: usize = 256 * 1024;

/// Bytes sent per request of a resumable upload unless
/// [`GcsJsonStore::with_chunk_size`] says otherwise (8 MiB, Google's
/// recommended minimum for throughput).
pub const DEFAULT_CHUNK_SIZE: usize = 32 * CHUNK_GRANULARITY;

/// Name used for this store in object_store errors.
const STORE: &str = "GCS";

/// Tries per request when the service answers with a transient failure.
const MAX_ATTEMPTS: u32 = 4;

/// Tries of a whole read when the object is replaced between reading its
/// metadata and its bytes.
const READ_ATTEMPTS: u32 = 3;

/// Why a [`GcsJsonStore`] could not be set up.
#[derive(Debug, Error)]
pub enum GcsConfigError {
    /// The API root is not an absolute http(s) URL without query.
    #[error("invalid GCS base URL {url:?}: {reason}")]
    InvalidBaseUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `STORAGE_EMULATOR_HOST` holds neither a host nor a URL.
    #[error("invalid {EMULATOR_HOST_VAR} value {value:?}: {reason}")]
    InvalidEmulatorHost {
        /// The variable's value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The bucket name is empty or contains a slash.
    #[error("invalid GCS bucket name {bucket:?}")]
    InvalidBucket {
        /// The name given.
        bucket: String,
    },
    /// The resumable upload chunk size is zero or not a multiple of
    /// [`CHUNK_GRANULARITY`].
    #[error(
        "invalid GCS upload chunk size {size}: must be a positive multiple of {CHUNK_GRANULARITY}"
    )]
    InvalidChunkSize {
        /// The size given.
        size: usize,
    },
    /// The service account key or application default credentials could
    /// not be loaded (the message never quotes the key).
    #[error("loading Google credentials for bucket {bucket:?}: {source}")]
    Credentials {
        /// The bucket the credentials were for.
        bucket: String,
        /// object_store's reason.
        #[source]
        source: object_store::Error,
    },
    /// The HTTP client could not be built.
    #[error("building the HTTP client for GCS: {0}")]
    Client(#[source] reqwest::Error),
}

/// Why a request to GCS failed, carried as the source of an
/// [`object_store::Error`].
#[derive(Debug, Error)]
pub enum GcsRequestError {
    /// The service answered with an unexpected HTTP status.
    #[error("{operation} {object:?}: HTTP {status}: {message}")]
    Status {
        /// What was being done (`get`, `put`, `list`, ...).
        operation: &'static str,
        /// The object or prefix concerned.
        object: String,
        /// The HTTP status.
        status: u16,
        /// The service's error message, or the start of its answer.
        message: String,
    },
    /// The request could not be sent or its answer not read.
    #[error("{operation} {object:?}: {source}")]
    Transport {
        /// What was being done.
        operation: &'static str,
        /// The object or prefix concerned.
        object: String,
        /// The transport failure.
        #[source]
        source: reqwest::Error,
    },
    /// The answer does not follow the JSON API.
    #[error("{operation} {object:?}: unexpected answer from GCS: {reason}")]
    BadResponse {
        /// What was being done.
        operation: &'static str,
        /// The object or prefix concerned.
        object: String,
        /// What is wrong with the answer.
        reason: String,
    },
    /// A conditional update named no generation to match.
    #[error("put {object:?}: conditional update without a generation (PutResult::version)")]
    MissingGeneration {
        /// The object concerned.
        object: String,
    },
    /// An upload session was used after it was completed or aborted.
    #[error("upload of {object:?} already {state}")]
    UploadClosed {
        /// The object concerned.
        object: String,
        /// `completed`, `aborted` or `failed`.
        state: &'static str,
    },
}

/// An [`ObjectStore`] over one bucket of the Google Cloud Storage JSON API.
///
/// Cloning is cheap and clones share one connection pool.
#[derive(Clone)]
pub struct GcsJsonStore {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    client: reqwest::Client,
    /// Scheme and authority, no trailing slash.
    base_url: String,
    bucket: String,
    credentials: Option<GcpCredentialProvider>,
    page_size: Option<NonZeroU32>,
    chunk_size: usize,
}

impl fmt::Debug for GcsJsonStore {
    // Written by hand: credential providers print their tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsJsonStore")
            .field("base_url", &self.inner.base_url)
            .field("bucket", &self.inner.bucket)
            .field("authenticated", &self.inner.credentials.is_some())
            .field("page_size", &self.inner.page_size)
            .field("chunk_size", &self.inner.chunk_size)
            .finish()
    }
}

impl fmt::Display for GcsJsonStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GcsJsonStore(gs://{} at {})",
            self.inner.bucket, self.inner.base_url
        )
    }
}

/// The API root that Google's Go client derives from a
/// `STORAGE_EMULATOR_HOST` value: a value containing `://` is a URL whose
/// scheme and authority are kept (its path is replaced by the API's own);
/// anything else is a `host[:port]` reached over plain http.
pub fn emulator_base_url(value: &str) -> Result<String, GcsConfigError> {
    let invalid = |reason: String| GcsConfigError::InvalidEmulatorHost {
        value: value.to_string(),
        reason,
    };
    let url = if value.contains("://") {
        Url::parse(value).map_err(|e| invalid(e.to_string()))?
    } else {
        let url = Url::parse(&format!("http://{value}")).map_err(|e| invalid(e.to_string()))?;
        // A bare host must not smuggle a path, query or credentials in.
        if url.path() != "/"
            || url.query().is_some()
            || url.fragment().is_some()
            || url.username() != ""
        {
            return Err(invalid("expected host[:port]".into()));
        }
        url
    };
    authority_root(&url).ok_or_else(|| invalid("no http(s) host".into()))
}

/// `scheme://host[:port]` of an http(s) URL.
fn authority_root(url: &Url) -> Option<String> {
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?;
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    Some(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

/// A bearer-token provider for Google Cloud Storage: from a service account
/// key (the JSON text) when one is given, otherwise from application
/// default credentials (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's file,
/// then the instance metadata server). Tokens are fetched lazily.
pub fn google_credentials(
    bucket: &str,
    json_key: Option<&str>,
) -> Result<GcpCredentialProvider, GcsConfigError> {
    let mut builder = GoogleCloudStorageBuilder::new().with_bucket_name(bucket);
    match json_key {
        Some(key) => builder = builder.with_service_account_key(key),
        None => {
            if let Ok(path) = std::env::var("GOOGLE_APPLICATION_CREDENTIALS") {
                if !path.is_empty() {
                    builder = builder.with_application_credentials(path);
                }
            }
        }
    }
    let store = builder
        .build()
        .map_err(|source| GcsConfigError::Credentials {
            bucket: bucket.to_string(),
            source,
        })?;
    Ok(Arc::clone(store.credentials()))
}

impl GcsJsonStore {
    /// A store for `bucket` at the API root `base_url` (scheme and host,
    /// e.g. [`DEFAULT_BASE_URL`] or an emulator's `http://127.0.0.1:9023`),
    /// sending `Authorization: Bearer` tokens from `credentials` when given.
    pub fn new(
        base_url: &str,
        bucket: &str,
        credentials: Option<GcpCredentialProvider>,
    ) -> Result<Self, GcsConfigError> {
        let invalid = |reason: &str| GcsConfigError::InvalidBaseUrl {
            url: base_url.to_string(),
            reason: reason.to_string(),
        };
        let url = Url::parse(base_url).map_err(|e| invalid(&e.to_string()))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("query or fragment not allowed"));
        }
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid("expected an http(s) URL with a host"));
        }
        if bucket.is_empty() || bucket.contains('/') {
            return Err(GcsConfigError::InvalidBucket {
                bucket: bucket.to_string(),
            });
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(120))
            // 308 means "resume incomplete" to resumable uploads, never a
            // redirect; the JSON API does not redirect otherwise.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(GcsConfigError::Client)?;
        Ok(GcsJsonStore {
            inner: Arc::new(Inner {
                client,
                base_url: base_url.trim_end_matches('/').to_string(),
                bucket: bucket.to_string(),
                credentials,
                page_size: None,
                chunk_size: DEFAULT_CHUNK_SIZE,
            }),
        })
    }

    /// A store for `bucket` configured the way Google's Go client
    /// configures itself: when `STORAGE_EMULATOR_HOST` is set (and not
    /// empty) requests go to that emulator without credentials; otherwise
    /// to [`DEFAULT_BASE_URL`] with tokens from `json_key` (the service
    /// account key's JSON text) or application default credentials.
    pub fn from_settings(bucket: &str, json_key: Option<&str>) -> Result<Self, GcsConfigError> {
        let emulator = std::env::var(EMULATOR_HOST_VAR).ok();
        Self::from_settings_with(emulator.as_deref(), bucket, json_key)
    }

    fn from_settings_with(
        emulator_host: Option<&str>,
        bucket: &str,
        json_key: Option<&str>,
    ) -> Result<Self, GcsConfigError> {
        match emulator_host {
            Some(host) if !host.is_empty() => Self::new(&emulator_base_url(host)?, bucket, None),
            _ => {
                let credentials = google_credentials(bucket, json_key)?;
                Self::new(DEFAULT_BASE_URL, bucket, Some(credentials))
            }
        }
    }

    /// Asks for at most `page_size` objects per listing request (the
    /// service's default is 1000).
    pub fn with_page_size(mut self, page_size: NonZeroU32) -> Self {
        Arc::make_mut(&mut self.inner).page_size = Some(page_size);
        self
    }

    /// Sets how many bytes a multipart upload buffers and sends per
    /// request: a positive multiple of [`CHUNK_GRANULARITY`].
    pub fn with_chunk_size(mut self, chunk_size: usize) -> Result<Self, GcsConfigError> {
        if chunk_size == 0 || !chunk_size.is_multiple_of(CHUNK_GRANULARITY) {
            return Err(GcsConfigError::InvalidChunkSize { size: chunk_size });
        }
        Arc::make_mut(&mut self.inner).chunk_size = chunk_size;
        Ok(self)
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.inner.bucket
    }

    /// The API root requests go to.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    fn object_url(&self, name: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.inner.base_url,
            encode(&self.inner.bucket),
            encode(name)
        )
    }

    fn objects_url(&self) -> String {
        format!(
            "{}/storage/v1/b/{}/o",
            self.inner.base_url,
            encode(&self.inner.bucket)
        )
    }

    fn upload_url(&self) -> String {
        format!(
            "{}/upload/storage/v1/b/{}/o",
            self.inner.base_url,
            encode(&self.inner.bucket)
        )
    }

    /// Adds the bearer token, if this store authenticates.
    async fn authorize(
        &self,
        request: RequestBuilder,
        target: &Target,
    ) -> object_store::Result<RequestBuilder> {
        let Some(provider) = &self.inner.credentials else {
            return Ok(request);
        };
        let credential =
            provider
                .get_credential()
                .await
                .map_err(|e| object_store::Error::Unauthenticated {
                    path: target.object.clone(),
                    source: Box::new(e),
                })?;
        if credential.bearer.is_empty() {
            return Ok(request);
        }
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", credential.bearer)).map_err(|_| {
                object_store::Error::Unauthenticated {
                    path: target.object.clone(),
                    source:
                        "the credential provider returned a token that is not a valid header value"
                            .into(),
                }
            })?;
        value.set_sensitive(true);
        Ok(request.header(AUTHORIZATION, value))
    }

    /// Sends the request `build` makes, again (rebuilt) after transport
    /// failures and transient statuses; answers with the last response,
    /// whatever its status.
    async fn send<F>(&self, target: &Target, build: F) -> object_store::Result<Response>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder + Send + Sync,
    {
        let mut attempt = 1;
        loop {
            let request = self.authorize(build(&self.inner.client), target).await?;
            match request.send().await {
                Ok(response) if attempt < MAX_ATTEMPTS && is_transient(response.status()) => {}
                Ok(response) => return Ok(response),
                Err(e) if attempt < MAX_ATTEMPTS && !e.is_builder() => {}
                Err(e) => return Err(target.transport(e)),
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// The JSON resource of an object (of one generation, when given).
    async fn object_resource(
        &self,
        location: &Path,
        generation: Option<&str>,
    ) -> object_store::Result<ObjectResource> {
        let target = Target::new("head", location.as_ref());
        let mut url = self.object_url(location.as_ref());
        let mut query = Query::default();
        if let Some(generation) = generation {
            query.push("generation", generation);
        }
        query.append_to(&mut url);
        let response = self.send(&target, |c| c.get(&url)).await?;
        if response.status() != StatusCode::OK {
            return Err(target.status_error(response, Conflict::Precondition).await);
        }
        target.json(response).await
    }

    /// Uploads `payload` in one media request.
    async fn media_upload(
        &self,
        location: &Path,
        payload: PutPayload,
        content_type: &str,
        condition: &PutCondition,
    ) -> object_store::Result<PutResult> {
        let target = Target::new("put", location.as_ref());
        let mut url = self.upload_url();
        let mut query = Query::default();
        query.push("uploadType", "media");
        query.push("name", location.as_ref());
        condition.add_to(&mut query);
        query.append_to(&mut url);
        let body = Bytes::from(payload);
        let response = self
            .send(&target, |c| {
                c.post(&url)
                    .header(CONTENT_TYPE, content_type)
                    .body(body.clone())
            })
            .await?;
        if !response.status().is_success() {
            return Err(target.status_error(response, condition.conflict()).await);
        }
        let resource: ObjectResource = target.json(response).await?;
        check_size(&target, &resource, body.len() as u64)?;
        Ok(resource.put_result())
    }

    /// Opens a resumable upload session for `location`.
    async fn start_session(
        &self,
        location: &Path,
        attributes: &Attributes,
        condition: PutCondition,
    ) -> object_store::Result<Session> {
        let target = Target::new("put", location.as_ref());
        let metadata = object_metadata(location, attributes)?;
        let mut url = self.upload_url();
        let mut query = Query::default();
        query.push("uploadType", "resumable");
        query.push("name", location.as_ref());
        condition.add_to(&mut query);
        query.append_to(&mut url);
        let body = metadata.to_string();
        let content_type = attributes
            .get(&Attribute::ContentType)
            .map(|v| v.to_string());
        let response = self
            .send(&target, |c| {
                let request = c
                    .post(&url)
                    .header(CONTENT_TYPE, "application/json; charset=UTF-8")
                    .body(body.clone());
                match &content_type {
                    Some(content_type) => {
                        request.header("X-Upload-Content-Type", content_type.as_str())
                    }
                    None => request,
                }
            })
            .await?;
        if !response.status().is_success() {
            return Err(target.status_error(response, condition.conflict()).await);
        }
        let location_header = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| target.bad_response("no Location header for the upload session"))?;
        // A relative session address is taken relative to the request's.
        let session_url = Url::parse(&url)
            .and_then(|base| base.join(location_header))
            .map_err(|_| target.bad_response("the upload session address is not a URL"))?;
        Ok(Session {
            store: self.clone(),
            target,
            url: session_url,
            conflict: condition.conflict(),
            persisted: 0,
            pending: VecDeque::new(),
            pending_len: 0,
            state: SessionState::Open,
        })
    }

    /// One page of a listing.
    async fn list_page(
        &self,
        request: &ListRequest,
        page_token: Option<&str>,
    ) -> object_store::Result<ListPage> {
        let target = Target::new("list", &request.prefix);
        let mut url = self.objects_url();
        let mut query = Query::default();
        if !request.prefix.is_empty() {
            query.push("prefix", &request.prefix);
        }
        if request.delimited {
            query.push("delimiter", "/");
        }
        if let Some(offset) = &request.start_offset {
            query.push("startOffset", offset);
        }
        if let Some(token) = page_token {
            query.push("pageToken", token);
        }
        if let Some(size) = self.inner.page_size {
            query.push("maxResults", &size.to_string());
        }
        query.append_to(&mut url);
        let response = self.send(&target, |c| c.get(&url)).await?;
        if response.status() != StatusCode::OK {
            return Err(target.status_error(response, Conflict::Precondition).await);
        }
        target.json(response).await
    }

    fn list_stream(
        &self,
        prefix: Option<&Path>,
        offset: Option<&Path>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let store = self.clone();
        let request = Arc::new(ListRequest {
            prefix: prefix_string(prefix),
            delimited: false,
            start_offset: offset.map(|o| o.as_ref().to_string()),
        });
        let offset = offset.cloned();
        // State: Some(token) while pages remain (None token = first page).
        stream::try_unfold(Some(None::<String>), move |state| {
            let store = store.clone();
            let request = Arc::clone(&request);
            let offset = offset.clone();
            async move {
                let Some(token) = state else {
                    return Ok::<_, object_store::Error>(None);
                };
                let page = store.list_page(&request, token.as_deref()).await?;
                let mut metas = Vec::with_capacity(page.items.len());
                for item in page.items {
                    let meta = item.object_meta()?;
                    // startOffset is inclusive (and emulators may ignore it).
                    if offset.as_ref().is_none_or(|o| meta.location > *o) {
                        metas.push(meta);
                    }
                }
                let next = page.next_page_token.filter(|t| !t.is_empty()).map(Some);
                Ok(Some((metas, next)))
            }
        })
        .map_ok(|metas| stream::iter(metas.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    async fn delete_object(&self, location: &Path) -> object_store::Result<()> {
        let target = Target::new("delete", location.as_ref());
        let url = self.object_url(location.as_ref());
        let response = self.send(&target, |c| c.delete(&url)).await?;
        if !response.status().is_success() {
            return Err(target.status_error(response, Conflict::Precondition).await);
        }
        Ok(())
    }

    /// Streams `range` of one generation of the object.
    async fn download(
        &self,
        location: &Path,
        generation: Option<&str>,
        range: &Range<u64>,
        size: u64,
    ) -> object_store::Result<Option<BoxStream<'static, object_store::Result<Bytes>>>> {
        let target = Target::new("get", location.as_ref());
        let mut url = self.object_url(location.as_ref());
        let mut query = Query::default();
        query.push("alt", "media");
        if let Some(generation) = generation {
            query.push("generation", generation);
        }
        query.append_to(&mut url);
        let whole = range.start == 0 && range.end == size;
        let range_header = format!("bytes={}-{}", range.start, range.end - 1);
        let response = self
            .send(&target, |c| {
                let request = c.get(&url);
                if whole {
                    request
                } else {
                    request.header(reqwest::header::RANGE, range_header.as_str())
                }
            })
            .await?;
        let skip = match response.status() {
            StatusCode::OK => range.start,
            StatusCode::PARTIAL_CONTENT => {
                let answered = response
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_content_range);
                if answered != Some((range.start, range.end)) {
                    return Err(target.bad_response(format!(
                        "asked for bytes {}..{}, got Content-Range {:?}",
                        range.start,
                        range.end,
                        response.headers().get(CONTENT_RANGE)
                    )));
                }
                0
            }
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(target.status_error(response, Conflict::Precondition).await),
        };
        Ok(Some(body_stream(
            target,
            response,
            skip,
            range.end - range.start,
        )))
    }
}

/// What a listing asks for.
struct ListRequest {
    prefix: String,
    delimited: bool,
    start_offset: Option<String>,
}

/// The listing prefix for an object_store prefix: whole path segments.
fn prefix_string(prefix: Option<&Path>) -> String {
    match prefix.map(|p| p.as_ref()) {
        None | Some("") => String::new(),
        Some(p) => format!("{p}/"),
    }
}

#[async_trait]
impl ObjectStore for GcsJsonStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let condition = PutCondition::from_mode(location, &opts.mode)?;
        let only_content_type = opts
            .attributes
            .iter()
            .all(|(key, _)| matches!(key, Attribute::ContentType));
        // gcp-storage-emulator drops the connection on an empty media
        // upload; an empty resumable upload works everywhere.
        if only_content_type && payload.content_length() > 0 {
            let content_type = opts
                .attributes
                .get(&Attribute::ContentType)
                .map(|v| v.to_string())
                .unwrap_or_else(|| "application/octet-stream".to_string());
            return self
                .media_upload(location, payload, &content_type, &condition)
                .await;
        }
        // Other attributes travel as JSON metadata, which only the session
        // opening of a resumable upload carries alongside the bytes.
        let mut session = self
            .start_session(location, &opts.attributes, condition)
            .await?;
        session.enqueue(payload);
        session.finish().await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let session = self
            .start_session(location, &opts.attributes, PutCondition::None)
            .await?;
        Ok(Box::new(ResumableUpload {
            object: location.to_string(),
            incoming: Arc::new(StdMutex::new(Vec::new())),
            session: Arc::new(tokio::sync::Mutex::new(session)),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let target = Target::new("get", location.as_ref());
        let mut attempt = 1;
        loop {
            let resource = self
                .object_resource(location, options.version.as_deref())
                .await?;
            let attributes = resource.attributes();
            let meta = resource.object_meta()?;
            options.check_preconditions(&meta)?;
            let range = match &options.range {
                Some(range) => {
                    range
                        .as_range(meta.size)
                        .map_err(|e| object_store::Error::Generic {
                            store: STORE,
                            source: Box::new(e),
                        })?
                }
                None => 0..meta.size,
            };
            if options.head || range.is_empty() {
                return Ok(GetResult {
                    payload: GetResultPayload::Stream(stream::empty().boxed()),
                    meta,
                    range,
                    attributes,
                    extensions: Extensions::default(),
                });
            }
            // Reading the generation just described keeps bytes and
            // metadata of one version even if the object is being replaced.
            let generation = meta.version.clone();
            match self
                .download(location, generation.as_deref(), &range, meta.size)
                .await?
            {
                Some(body) => {
                    return Ok(GetResult {
                        payload: GetResultPayload::Stream(body),
                        meta,
                        range,
                        attributes,
                        extensions: Extensions::default(),
                    })
                }
                // That generation was replaced or deleted meanwhile.
                None if options.version.is_none() && attempt < READ_ATTEMPTS => attempt += 1,
                None => {
                    return Err(object_store::Error::NotFound {
                        path: target.object,
                        source: "the object disappeared while being read".into(),
                    })
                }
            }
        }
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let store = self.clone();
        locations
            .map(move |location| {
                let store = store.clone();
                async move {
                    let location = location?;
                    store.delete_object(&location).await?;
                    Ok(location)
                }
            })
            .buffered(10)
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.list_stream(prefix, None)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.list_stream(prefix, Some(offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let request = ListRequest {
            prefix: prefix_string(prefix),
            delimited: true,
            start_offset: None,
        };
        let mut objects = Vec::new();
        let mut common_prefixes: Vec<Path> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.list_page(&request, token.as_deref()).await?;
            for item in page.items {
                objects.push(item.object_meta()?);
            }
            for prefix in page.prefixes {
                let path = Path::parse(&prefix)?;
                if !common_prefixes.contains(&path) {
                    common_prefixes.push(path);
                }
            }
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        Ok(ListResult {
            common_prefixes,
            objects,
            extensions: Extensions::default(),
        })
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        let target = Target::new("copy", from.as_ref());
        let base = format!(
            "{}/rewriteTo/b/{}/o/{}",
            self.object_url(from.as_ref()),
            encode(&self.inner.bucket),
            encode(to.as_ref())
        );
        let conflict = match options.mode {
            CopyMode::Overwrite => Conflict::Precondition,
            CopyMode::Create => Conflict::AlreadyExists,
        };
        let mut token: Option<String> = None;
        loop {
            let mut url = base.clone();
            let mut query = Query::default();
            if options.mode == CopyMode::Create {
                query.push("ifGenerationMatch", "0");
            }
            if let Some(token) = &token {
                query.push("rewriteToken", token);
            }
            query.append_to(&mut url);
            let response = self
                .send(&target, |c| {
                    c.post(&url).header(CONTENT_LENGTH, "0").body(Vec::new())
                })
                .await?;
            if !response.status().is_success() {
                let error = target.status_error(response, conflict).await;
                return Err(match error {
                    object_store::Error::AlreadyExists { source, .. } => {
                        object_store::Error::AlreadyExists {
                            path: to.to_string(),
                            source,
                        }
                    }
                    other => other,
                });
            }
            let answer: RewriteResponse = target.json(response).await?;
            if answer.done {
                return Ok(());
            }
            match answer.rewrite_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => return Err(target.bad_response("rewrite not done and no rewriteToken")),
            }
        }
    }
}

/// Which object_store error a 412 answer means for the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conflict {
    /// A generation to match did not match.
    Precondition,
    /// "Must not exist yet" (generation 0) did not hold.
    AlreadyExists,
}

/// The generation precondition of a write.
#[derive(Debug, Clone)]
enum PutCondition {
    None,
    DoesNotExist,
    Generation(String),
}

impl PutCondition {
    fn from_mode(location: &Path, mode: &PutMode) -> object_store::Result<Self> {
        Ok(match mode {
            PutMode::Overwrite => PutCondition::None,
            PutMode::Create => PutCondition::DoesNotExist,
            PutMode::Update(version) => {
                let missing = || object_store::Error::Generic {
                    store: STORE,
                    source: Box::new(GcsRequestError::MissingGeneration {
                        object: location.to_string(),
                    }),
                };
                let generation = version.version.clone().ok_or_else(missing)?;
                if generation.is_empty() || !generation.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(object_store::Error::Precondition {
                        path: location.to_string(),
                        source: format!("{generation:?} is not a GCS generation").into(),
                    });
                }
                PutCondition::Generation(generation)
            }
        })
    }

    fn add_to(&self, query: &mut Query) {
        match self {
            PutCondition::None => {}
            PutCondition::DoesNotExist => query.push("ifGenerationMatch", "0"),
            PutCondition::Generation(generation) => query.push("ifGenerationMatch", generation),
        }
    }

    fn conflict(&self) -> Conflict {
        match self {
            PutCondition::DoesNotExist => Conflict::AlreadyExists,
            _ => Conflict::Precondition,
        }
    }
}

/// The operation and object an HTTP exchange is about, for errors.
#[derive(Debug, Clone)]
struct Target {
    operation: &'static str,
    object: String,
}

impl Target {
    fn new(operation: &'static str, object: &str) -> Self {
        Target {
            operation,
            object: object.to_string(),
        }
    }

    fn generic(&self, error: GcsRequestError) -> object_store::Error {
        object_store::Error::Generic {
            store: STORE,
            source: Box::new(error),
        }
    }

    fn transport(&self, source: reqwest::Error) -> object_store::Error {
        self.generic(GcsRequestError::Transport {
            operation: self.operation,
            object: self.object.clone(),
            source,
        })
    }

    fn bad_response(&self, reason: impl Into<String>) -> object_store::Error {
        self.generic(GcsRequestError::BadResponse {
            operation: self.operation,
            object: self.object.clone(),
            reason: reason.into(),
        })
    }

    /// The object_store error for a failed answer, with the service's own
    /// message.
    async fn status_error(&self, response: Response, conflict: Conflict) -> object_store::Error {
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        self.error_for(status, &body, conflict)
    }

    fn error_for(
        &self,
        status: StatusCode,
        body: &[u8],
        conflict: Conflict,
    ) -> object_store::Error {
        let source = Box::new(GcsRequestError::Status {
            operation: self.operation,
            object: self.object.clone(),
            status: status.as_u16(),
            message: error_message(body),
        });
        let path = self.object.clone();
        match status {
            StatusCode::NOT_FOUND => object_store::Error::NotFound { path, source },
            StatusCode::NOT_MODIFIED => object_store::Error::NotModified { path, source },
            StatusCode::UNAUTHORIZED => object_store::Error::Unauthenticated { path, source },
            StatusCode::FORBIDDEN => object_store::Error::PermissionDenied { path, source },
            StatusCode::PRECONDITION_FAILED => match conflict {
                Conflict::AlreadyExists => object_store::Error::AlreadyExists { path, source },
                Conflict::Precondition => object_store::Error::Precondition { path, source },
            },
            _ => object_store::Error::Generic {
                store: STORE,
                source,
            },
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        response: Response,
    ) -> object_store::Result<T> {
        let body = response.bytes().await.map_err(|e| self.transport(e))?;
        serde_json::from_slice(&body).map_err(|e| self.bad_response(format!("invalid JSON: {e}")))
    }
}

/// The message of a JSON API error answer, or the start of the answer.
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Envelope {
        error: Detail,
    }
    #[derive(Deserialize)]
    struct Detail {
        message: Option<String>,
    }
    if let Ok(Envelope {
        error: Detail {
            message: Some(message),
        },
    }) = serde_json::from_slice::<Envelope>(body)
    {
        return message;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(no message)".to_string();
    }
    text.chars().take(300).collect()
}

fn is_transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64 << attempt.min(6))
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so a
/// value is one path segment or one query value.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Query parameters, encoded one by one.
#[derive(Default)]
struct Query(Vec<(&'static str, String)>);

impl Query {
    fn push(&mut self, key: &'static str, value: &str) {
        self.0.push((key, value.to_string()));
    }

    fn append_to(&self, url: &mut String) {
        for (i, (key, value)) in self.0.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(key);
            url.push('=');
            url.push_str(&encode(value));
        }
    }
}

/// `(start, end)` (end exclusive) of `Content-Range: bytes START-LAST/TOTAL`.
fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes ")?;
    let (range, _total) = spec.split_once('/')?;
    let (start, last) = range.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let last: u64 = last.trim().parse().ok()?;
    (last >= start).then(|| (start, last + 1))
}

/// Bytes persisted according to a resumable upload's `Range: bytes=0-LAST`
/// header (none: nothing yet).
fn parse_persisted(value: Option<&str>) -> Option<u64> {
    let Some(value) = value else {
        return Some(0);
    };
    let last = value.trim().strip_prefix("bytes=0-")?;
    last.trim().parse::<u64>().ok()?.checked_add(1)
}

/// The response body of a download, cut to `len` bytes after skipping
/// `skip` (servers that ignore Range send the whole object), failing when
/// it ends early.
fn body_stream(
    target: Target,
    response: Response,
    skip: u64,
    len: u64,
) -> BoxStream<'static, object_store::Result<Bytes>> {
    struct State {
        inner: BoxStream<'static, reqwest::Result<Bytes>>,
        target: Target,
        skip: u64,
        remaining: u64,
        failed: bool,
    }
    let state = State {
        inner: response.bytes_stream().boxed(),
        target,
        skip,
        remaining: len,
        failed: false,
    };
    stream::unfold(state, |mut st| async move {
        if st.failed || st.remaining == 0 {
            return None;
        }
        loop {
            match st.inner.next().await {
                Some(Ok(mut chunk)) => {
                    if st.skip > 0 {
                        let n = st.skip.min(chunk.len() as u64);
                        chunk.advance(n as usize);
                        st.skip -= n;
                    }
                    if chunk.is_empty() {
                        continue;
                    }
                    let take = st.remaining.min(chunk.len() as u64);
                    chunk.truncate(take as usize);
                    st.remaining -= take;
                    return Some((Ok(chunk), st));
                }
                Some(Err(e)) => {
                    st.failed = true;
                    let error = st.target.transport(e);
                    return Some((Err(error), st));
                }
                None => {
                    st.failed = true;
                    let error = st.target.bad_response(format!(
                        "download ended {} bytes short",
                        st.remaining + st.skip
                    ));
                    return Some((Err(error), st));
                }
            }
        }
    })
    .boxed()
}

/// The parts of a JSON API object resource this store uses.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectResource {
    name: String,
    #[serde(default)]
    size: Option<serde_json::Value>,
    #[serde(default)]
    updated: Option<String>,
    #[serde(default)]
    time_created: Option<String>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    generation: Option<serde_json::Value>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    content_encoding: Option<String>,
    #[serde(default)]
    content_disposition: Option<String>,
    #[serde(default)]
    content_language: Option<String>,
    #[serde(default)]
    cache_control: Option<String>,
    #[serde(default)]
    storage_class: Option<String>,
    #[serde(default)]
    metadata: Option<HashMap<String, Option<String>>>,
}

/// int64 fields are JSON strings in the API; accept numbers too.
fn int64_field(value: &Option<serde_json::Value>) -> Option<u64> {
    match value {
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        _ => None,
    }
}

fn int64_text(value: &Option<serde_json::Value>) -> Option<String> {
    int64_field(value).map(|n| n.to_string())
}

fn parse_timestamp(value: &str) -> Option<SystemTime> {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(SystemTime::from)
}

impl ObjectResource {
    fn object_meta(&self) -> object_store::Result<ObjectMeta> {
        let target = Target::new("list", &self.name);
        let location = Path::parse(&self.name)?;
        let size = int64_field(&self.size).ok_or_else(|| target.bad_response("no valid size"))?;
        let modified = self
            .updated
            .as_deref()
            .or(self.time_created.as_deref())
            .and_then(parse_timestamp)
            .ok_or_else(|| target.bad_response("no valid updated time"))?;
        Ok(ObjectMeta {
            location,
            last_modified: modified.into(),
            size,
            e_tag: self.etag.clone(),
            version: int64_text(&self.generation),
        })
    }

    fn attributes(&self) -> Attributes {
        let mut attributes = Attributes::new();
        let fields = [
            (Attribute::ContentType, &self.content_type),
            (Attribute::ContentEncoding, &self.content_encoding),
            (Attribute::ContentDisposition, &self.content_disposition),
            (Attribute::ContentLanguage, &self.content_language),
            (Attribute::CacheControl, &self.cache_control),
            (Attribute::StorageClass, &self.storage_class),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                attributes.insert(key, AttributeValue::from(value.clone()));
            }
        }
        for (key, value) in self.metadata.iter().flatten() {
            if let Some(value) = value {
                attributes.insert(
                    Attribute::Metadata(key.clone().into()),
                    AttributeValue::from(value.clone()),
                );
            }
        }
        attributes
    }

    fn put_result(&self) -> PutResult {
        PutResult {
            e_tag: self.etag.clone(),
            version: int64_text(&self.generation),
            extensions: Extensions::default(),
        }
    }
}

fn check_size(
    target: &Target,
    resource: &ObjectResource,
    expected: u64,
) -> object_store::Result<()> {
    match int64_field(&resource.size) {
        Some(size) if size != expected => {
            Err(target.bad_response(format!("stored {size} bytes, sent {expected}")))
        }
        _ => Ok(()),
    }
}

/// The object resource fields a resumable upload is opened with.
fn object_metadata(
    location: &Path,
    attributes: &Attributes,
) -> object_store::Result<serde_json::Value> {
    let mut object = serde_json::Map::new();
    object.insert("name".into(), location.as_ref().into());
    let mut custom = serde_json::Map::new();
    for (key, value) in attributes.iter() {
        let field = match key {
            Attribute::ContentType => "contentType",
            Attribute::ContentEncoding => "contentEncoding",
            Attribute::ContentDisposition => "contentDisposition",
            Attribute::ContentLanguage => "contentLanguage",
            Attribute::CacheControl => "cacheControl",
            Attribute::StorageClass => "storageClass",
            Attribute::Metadata(name) => {
                custom.insert(name.to_string(), value.to_string().into());
                continue;
            }
            other => {
                return Err(object_store::Error::NotSupported {
                    source: format!("attribute {other:?} on {location}").into(),
                })
            }
        };
        object.insert(field.into(), value.to_string().into());
    }
    if !custom.is_empty() {
        object.insert("metadata".into(), custom.into());
    }
    Ok(object.into())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListPage {
    #[serde(default)]
    items: Vec<ObjectResource>,
    #[serde(default)]
    prefixes: Vec<String>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RewriteResponse {
    #[serde(default)]
    done: bool,
    #[serde(default)]
    rewrite_token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionState {
    Open,
    Completed,
    Aborted,
    Failed,
}

impl SessionState {
    fn name(self) -> &'static str {
        match self {
            SessionState::Open => "open",
            SessionState::Completed => "completed",
            SessionState::Aborted => "aborted",
            SessionState::Failed => "failed",
        }
    }
}

/// What one request of a resumable upload achieved.
enum Exchange {
    /// The object is complete.
    Done(Box<ObjectResource>),
    /// The service holds this many bytes of the upload.
    Incomplete(u64),
    /// A transient failure; ask where the upload stands and go on.
    Retry(object_store::Error),
}

/// A resumable upload session: bytes the service has confirmed are
/// dropped, the rest wait in `pending` (so a chunk the service kept only
/// part of can be sent again from where it stopped).
struct Session {
    store: GcsJsonStore,
    target: Target,
    /// The session address; it authorizes uploads by itself, so it stays
    /// out of errors and Debug output.
    url: Url,
    conflict: Conflict,
    persisted: u64,
    pending: VecDeque<Bytes>,
    pending_len: usize,
    state: SessionState,
}

impl Session {
    fn enqueue(&mut self, payload: PutPayload) {
        for bytes in payload {
            if !bytes.is_empty() {
                self.pending_len += bytes.len();
                self.pending.push_back(bytes);
            }
        }
    }

    fn ensure_open(&self) -> object_store::Result<()> {
        if self.state == SessionState::Open {
            return Ok(());
        }
        Err(self.target.generic(GcsRequestError::UploadClosed {
            object: self.target.object.clone(),
            state: self.state.name(),
        }))
    }

    /// The first `len` pending bytes as one buffer.
    fn peek(&self, len: usize) -> Bytes {
        if let Some(first) = self.pending.front() {
            if first.len() >= len {
                return first.slice(..len);
            }
        }
        let mut out = BytesMut::with_capacity(len);
        for bytes in &self.pending {
            let want = len - out.len();
            if want == 0 {
                break;
            }
            out.extend_from_slice(&bytes[..want.min(bytes.len())]);
        }
        out.freeze()
    }

    /// Records that the service holds `persisted` bytes.
    fn acknowledge(&mut self, persisted: u64) -> object_store::Result<()> {
        let end = self.persisted + self.pending_len as u64;
        if persisted < self.persisted || persisted > end {
            return Err(self.target.bad_response(format!(
                "service reports {persisted} bytes stored, expected {}..={end}",
                self.persisted
            )));
        }
        let mut drop = (persisted - self.persisted) as usize;
        self.persisted = persisted;
        self.pending_len -= drop;
        while drop > 0 {
            let Some(front) = self.pending.front_mut() else {
                break;
            };
            if front.len() <= drop {
                drop -= front.len();
                self.pending.pop_front();
            } else {
                front.advance(drop);
                drop = 0;
            }
        }
        Ok(())
    }

    /// Sends full chunks while there are any; with `last`, then the rest
    /// as the final chunk, answering with the finished object.
    async fn push(&mut self, last: bool) -> object_store::Result<Option<PutResult>> {
        let result = self.push_inner(last).await;
        if result.is_err() {
            self.state = SessionState::Failed;
        }
        result
    }

    async fn push_inner(&mut self, last: bool) -> object_store::Result<Option<PutResult>> {
        let chunk_size = self.store.inner.chunk_size;
        let mut failures = 0;
        loop {
            let final_chunk = self.pending_len < chunk_size;
            if final_chunk && !last {
                return Ok(None);
            }
            let len = if final_chunk {
                self.pending_len
            } else {
                chunk_size
            };
            let before = self.persisted;
            let exchange = self.send_chunk(len, final_chunk).await?;
            let exchange = match exchange {
                Exchange::Retry(error) => {
                    failures += 1;
                    if failures >= MAX_ATTEMPTS {
                        return Err(error);
                    }
                    tokio::time::sleep(backoff(failures)).await;
                    match self.query_status().await? {
                        Exchange::Retry(_) => continue,
                        other => other,
                    }
                }
                other => other,
            };
            match exchange {
                Exchange::Done(resource) => {
                    if !final_chunk {
                        return Err(self
                            .target
                            .bad_response("upload finished before its last chunk"));
                    }
                    check_size(
                        &self.target,
                        &resource,
                        self.persisted + self.pending_len as u64,
                    )?;
                    self.pending.clear();
                    self.pending_len = 0;
                    self.state = SessionState::Completed;
                    return Ok(Some(resource.put_result()));
                }
                Exchange::Incomplete(persisted) => {
                    self.acknowledge(persisted)?;
                    if self.persisted == before {
                        failures += 1;
                        if failures >= MAX_ATTEMPTS {
                            return Err(self.target.bad_response("upload makes no progress"));
                        }
                    }
                }
                Exchange::Retry(_) => {}
            }
        }
    }

    /// PUTs the first `len` pending bytes.
    async fn send_chunk(
        &mut self,
        len: usize,
        final_chunk: bool,
    ) -> object_store::Result<Exchange> {
        let start = self.persisted;
        let end = start + len as u64;
        let content_range = match (final_chunk, len) {
            (true, 0) => format!("bytes */{end}"),
            (true, _) => format!("bytes {start}-{}/{end}", end - 1),
            (false, _) => format!("bytes {start}-{}/*", end - 1),
        };
        let body = self.peek(len);
        let request = self
            .store
            .inner
            .client
            .put(self.url.clone())
            .header(CONTENT_RANGE, content_range)
            .body(body);
        self.exchange(request).await
    }

    /// Asks how many bytes the service holds.
    async fn query_status(&mut self) -> object_store::Result<Exchange> {
        let request = self
            .store
            .inner
            .client
            .put(self.url.clone())
            .header(CONTENT_RANGE, "bytes */*")
            .header(CONTENT_LENGTH, "0")
            .body(Vec::new());
        self.exchange(request).await
    }

    async fn exchange(&self, request: RequestBuilder) -> object_store::Result<Exchange> {
        let request = self.store.authorize(request, &self.target).await?;
        let response = match request.send().await {
            Ok(response) => response,
            // Without the URL: it is the session's credential.
            Err(e) => return Ok(Exchange::Retry(self.target.transport(e.without_url()))),
        };
        let status = response.status();
        match status.as_u16() {
            200 | 201 => Ok(Exchange::Done(Box::new(self.target.json(response).await?))),
            308 => {
                let range = response
                    .headers()
                    .get(reqwest::header::RANGE)
                    .and_then(|v| v.to_str().ok());
                let persisted = parse_persisted(range)
                    .ok_or_else(|| self.target.bad_response(format!("invalid Range {range:?}")))?;
                Ok(Exchange::Incomplete(persisted))
            }
            _ if is_transient(status) => {
                let body = response.bytes().await.unwrap_or_default();
                Ok(Exchange::Retry(self.target.error_for(
                    status,
                    &body,
                    self.conflict,
                )))
            }
            // A missing session has expired; that is not a missing object.
            404 | 410 => {
                let body = response.bytes().await.unwrap_or_default();
                Err(self.target.generic(GcsRequestError::Status {
                    operation: self.target.operation,
                    object: self.target.object.clone(),
                    status: status.as_u16(),
                    message: format!("upload session gone: {}", error_message(&body)),
                }))
            }
            _ => Err(self.target.status_error(response, self.conflict).await),
        }
    }

    async fn finish(&mut self) -> object_store::Result<PutResult> {
        self.ensure_open()?;
        match self.push(true).await? {
            Some(result) => Ok(result),
            None => Err(self.target.bad_response("upload did not finish")),
        }
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        if matches!(self.state, SessionState::Completed) {
            return self.ensure_open();
        }
        self.state = SessionState::Aborted;
        self.pending.clear();
        self.pending_len = 0;
        let request = self
            .store
            .inner
            .client
            .delete(self.url.clone())
            .header(CONTENT_LENGTH, "0");
        let request = self.store.authorize(request, &self.target).await?;
        let response = request
            .send()
            .await
            .map_err(|e| self.target.transport(e.without_url()))?;
        // The service answers a cancelled session with 499.
        match response.status().as_u16() {
            200..=299 | 404 | 410 | 499 => Ok(()),
            _ => Err(self.target.status_error(response, self.conflict).await),
        }
    }
}

/// [`MultipartUpload`] over a resumable upload session. Parts are queued
/// in call order; each part's future sends whatever full chunks are
/// queued, so at most a chunk (plus parts not yet polled) stays in memory.
struct ResumableUpload {
    object: String,
    incoming: Arc<StdMutex<Vec<Bytes>>>,
    session: Arc<tokio::sync::Mutex<Session>>,
}

impl fmt::Debug for ResumableUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumableUpload")
            .field("object", &self.object)
            .finish_non_exhaustive()
    }
}

impl ResumableUpload {
    fn drain_into(incoming: &StdMutex<Vec<Bytes>>, session: &mut Session) {
        let parts = std::mem::take(&mut *incoming.lock().unwrap_or_else(PoisonError::into_inner));
        session.enqueue(parts.into_iter().collect());
    }
}

#[async_trait]
impl MultipartUpload for ResumableUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.incoming
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(data);
        let incoming = Arc::clone(&self.incoming);
        let session = Arc::clone(&self.session);
        Box::pin(async move {
            let mut session = session.lock().await;
            session.ensure_open()?;
            Self::drain_into(&incoming, &mut session);
            session.push(false).await.map(|_| ())
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let mut session = self.session.lock().await;
        session.ensure_open()?;
        Self::drain_into(&self.incoming, &mut session);
        session.finish().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        let mut session = self.session.lock().await;
        self.incoming
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        session.abort().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fixtures::services::gcs::GcsEmulator;
    use object_store::gcp::GcpCredential;
    use object_store::{GetRange, ObjectStoreExt, StaticCredentialProvider, UpdateVersion};

    fn emulator_store(emulator: &GcsEmulator, bucket: &str) -> GcsJsonStore {
        emulator.create_bucket(bucket).expect("creating the bucket");
        GcsJsonStore::new(&emulator.base_url(), bucket, None).expect("store")
    }

    fn path(text: &str) -> Path {
        Path::parse(text).expect("valid path")
    }

    async fn names(stream: BoxStream<'static, object_store::Result<ObjectMeta>>) -> Vec<String> {
        let mut names: Vec<String> = stream
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .expect("listing");
        names.sort();
        names
    }

    /// Bytes that differ from position to position, so a misplaced chunk shows.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i.wrapping_mul(31) ^ (i >> 11)) as u8)
            .collect()
    }

    #[tokio::test]
    async fn emulator_put_get_head_list_delete() {
        let emulator = GcsEmulator::start().expect("starting gcp-storage-emulator");
        let store = emulator_store(&emulator, "athens-basic");
        let zip = path("github.com/x/y/@v/v1.0.0.zip");

        let put = store
            .put(&zip, PutPayload::from_static(b"zip bytes"))
            .await
            .unwrap();
        assert!(put.version.is_some() && put.e_tag.is_some(), "{put:?}");
        let got = store.get(&zip).await.unwrap();
        assert_eq!(got.meta.size, 9);
        assert_eq!(got.meta.version, put.version);
        assert_eq!(got.meta.e_tag, put.e_tag);
        assert_eq!(got.range, 0..9);
        assert_eq!(got.bytes().await.unwrap(), "zip bytes");
        let head = store.head(&zip).await.unwrap();
        assert_eq!((head.size, head.version.clone()), (9, put.version.clone()));
        assert_eq!(head.location, zip);

        // Ranges: bounded and offset go to the service; the emulator ignores
        // suffix ranges and sends everything, which must be cut here.
        assert_eq!(store.get_range(&zip, 4..9).await.unwrap(), "bytes");
        for range in [
            GetRange::Offset(4),
            GetRange::Suffix(5),
            GetRange::Bounded(4..100),
        ] {
            let got = store
                .get_opts(&zip, GetOptions::new().with_range(Some(range.clone())))
                .await
                .unwrap();
            assert_eq!(got.range, 4..9, "{range}");
            assert_eq!(got.bytes().await.unwrap(), "bytes", "{range}");
        }
        let past_end = store
            .get_opts(
                &zip,
                GetOptions::new().with_range(Some(GetRange::Offset(9))),
            )
            .await;
        assert!(past_end.is_err(), "range past the end accepted");

        // Conditional reads are checked against the metadata.
        let etag = head.e_tag.clone().unwrap();
        let stale = store
            .get_opts(&zip, GetOptions::new().with_if_match(Some("\"other\"")))
            .await
            .unwrap_err();
        assert!(
            matches!(stale, object_store::Error::Precondition { .. }),
            "{stale}"
        );
        let unchanged = store
            .get_opts(&zip, GetOptions::new().with_if_none_match(Some(etag)))
            .await
            .unwrap_err();
        assert!(
            matches!(unchanged, object_store::Error::NotModified { .. }),
            "{unchanged}"
        );

        // Names that need escaping in URLs.
        let odd = path("dir/with space+plus&q?=x#h/ü%20.info");
        store
            .put(&odd, PutPayload::from_static(b"{}"))
            .await
            .unwrap();
        assert_eq!(store.get(&odd).await.unwrap().bytes().await.unwrap(), "{}");

        let list = path("github.com/x/y/@v/list");
        let other_module = path("github.com/x/z/@v/v0.1.0.mod");
        let top = path("top-level");
        for p in [&list, &other_module, &top] {
            store.put(p, PutPayload::from_static(b"x")).await.unwrap();
        }
        let empty = path("github.com/x/empty");
        store.put(&empty, PutPayload::new()).await.unwrap();
        let got = store.get(&empty).await.unwrap();
        assert_eq!(got.meta.size, 0);
        assert!(got.bytes().await.unwrap().is_empty());

        assert_eq!(
            names(store.list(Some(&path("github.com/x")))).await,
            [
                "github.com/x/empty",
                "github.com/x/y/@v/list",
                "github.com/x/y/@v/v1.0.0.zip",
                "github.com/x/z/@v/v0.1.0.mod"
            ]
        );
        // Whole segments only: "github.com/x/y" is no prefix of "github.com/x/yz".
        store
            .put(&path("github.com/x/yz"), PutPayload::from_static(b"x"))
            .await
            .unwrap();
        assert_eq!(
            names(store.list(Some(&path("github.com/x/y")))).await,
            ["github.com/x/y/@v/list", "github.com/x/y/@v/v1.0.0.zip"]
        );
        assert_eq!(names(store.list(None)).await.len(), 7);
        assert_eq!(
            names(store.list_with_offset(Some(&path("github.com/x")), &list)).await,
            [
                "github.com/x/y/@v/v1.0.0.zip",
                "github.com/x/yz",
                "github.com/x/z/@v/v0.1.0.mod"
            ]
        );

        let listed = store
            .list_with_delimiter(Some(&path("github.com/x")))
            .await
            .unwrap();
        let prefixes: Vec<String> = listed
            .common_prefixes
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(prefixes, ["github.com/x/y", "github.com/x/z"]);
        let objects: Vec<String> = listed
            .objects
            .iter()
            .map(|m| m.location.to_string())
            .collect();
        assert_eq!(objects, ["github.com/x/empty", "github.com/x/yz"]);
        let root = store.list_with_delimiter(None).await.unwrap();
        let prefixes: Vec<String> = root.common_prefixes.iter().map(|p| p.to_string()).collect();
        assert_eq!(prefixes, ["dir", "github.com"]);
        assert_eq!(root.objects.len(), 1);
        assert_eq!(root.objects[0].location, top);
        assert_eq!(root.objects[0].size, 1);

        // Copy through the rewrite endpoint.
        let copied = path("copies/v1.0.0.zip");
        store.copy(&zip, &copied).await.unwrap();
        assert_eq!(
            store.get(&copied).await.unwrap().bytes().await.unwrap(),
            "zip bytes"
        );
        let missing = store
            .copy(&path("nope"), &path("copies/nope"))
            .await
            .unwrap_err();
        assert!(
            matches!(missing, object_store::Error::NotFound { .. }),
            "{missing}"
        );

        // Delete, then everything answers NotFound.
        store.delete(&top).await.unwrap();
        for error in [
            store.get(&top).await.unwrap_err(),
            store.head(&top).await.unwrap_err(),
            store.delete(&top).await.unwrap_err(),
        ] {
            assert!(
                matches!(error, object_store::Error::NotFound { .. }),
                "{error}"
            );
        }
        let deleted: Vec<Path> = store
            .delete_stream(stream::iter([Ok(list.clone()), Ok(other_module.clone())]).boxed())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(deleted, [list.clone(), other_module]);
        assert!(store.head(&list).await.is_err());
    }

    #[tokio::test]
    async fn emulator_conditional_puts_and_attributes() {
        let emulator = GcsEmulator::start().expect("starting gcp-storage-emulator");
        let store = emulator_store(&emulator, "athens-modes");
        let info = path("m/@v/v1.0.0.info");

        let created = store
            .put_opts(
                &info,
                PutPayload::from_static(b"first"),
                PutMode::Create.into(),
            )
            .await
            .unwrap();
        let version = created.version.clone().expect("generation");
        assert!(version.bytes().all(|b| b.is_ascii_digit()), "{version}");
        assert_eq!(store.head(&info).await.unwrap().version, Some(version));

        let updated = store
            .put_opts(
                &info,
                PutPayload::from_static(b"second"),
                PutMode::Update(UpdateVersion::from(created.clone())).into(),
            )
            .await
            .unwrap();
        assert_ne!(updated.version, created.version);
        assert_eq!(
            store.get(&info).await.unwrap().bytes().await.unwrap(),
            "second"
        );

        let no_generation = store
            .put_opts(
                &info,
                PutPayload::from_static(b"third"),
                PutMode::Update(UpdateVersion {
                    e_tag: created.e_tag.clone(),
                    version: None,
                })
                .into(),
            )
            .await
            .unwrap_err();
        assert!(
            no_generation.to_string().contains("without a generation"),
            "{no_generation}"
        );

        // Attributes other than the content type go through a resumable upload.
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, "application/zip".into());
        attributes.insert(Attribute::CacheControl, "no-cache".into());
        attributes.insert(Attribute::Metadata("origin".into()), "athens".into());
        let zip = path("m/@v/v1.0.0.zip");
        let put = store
            .put_opts(
                &zip,
                PutPayload::from_static(b"PK zip"),
                PutOptions {
                    attributes: attributes.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let got = store.get(&zip).await.unwrap();
        assert_eq!(got.meta.version, put.version);
        for (key, value) in attributes.iter() {
            assert_eq!(got.attributes.get(key), Some(value), "{key:?}");
        }
        assert_eq!(got.bytes().await.unwrap(), "PK zip");
    }

    #[tokio::test]
    async fn emulator_multipart_upload_streams_chunks() {
        let emulator = GcsEmulator::start().expect("starting gcp-storage-emulator");
        let store = emulator_store(&emulator, "athens-multipart")
            .with_chunk_size(4 * CHUNK_GRANULARITY)
            .unwrap();
        let data = pattern(20 * 1024 * 1024);
        let target = path("big/@v/v1.0.0.zip");

        let mut upload = store.put_multipart(&target).await.unwrap();
        let mut parts = data.chunks(3 * 1024 * 1024 + 17);
        // Two parts polled in reverse order must still land in call order.
        let first = upload.put_part(PutPayload::from(parts.next().unwrap().to_vec()));
        let second = upload.put_part(PutPayload::from(parts.next().unwrap().to_vec()));
        futures::future::try_join(second, first).await.unwrap();
        for part in parts {
            upload
                .put_part(PutPayload::from(part.to_vec()))
                .await
                .unwrap();
        }
        let result = upload.complete().await.unwrap();
        assert!(result.version.is_some());
        let closed = upload
            .put_part(PutPayload::from_static(b"late"))
            .await
            .unwrap_err();
        assert!(closed.to_string().contains("already completed"), "{closed}");

        let got = store.get(&target).await.unwrap();
        assert_eq!(got.meta.size, data.len() as u64);
        assert_eq!(got.meta.version, result.version);
        let bytes = got.bytes().await.unwrap();
        assert!(bytes == data, "downloaded bytes differ from the upload");
        let tail = store
            .get_range(&target, 20 * 1024 * 1024 - 10..20 * 1024 * 1024)
            .await
            .unwrap();
        assert_eq!(tail, data[data.len() - 10..]);

        // The bytes went up in many chunk requests, not one.
        let log = emulator.process.log();
        let chunk_puts = log
            .lines()
            .filter(|l| l.contains("\"PUT /upload/") && l.contains(" 308 "))
            .count();
        assert!(
            chunk_puts >= 19,
            "{chunk_puts} incomplete chunk PUTs in the log:\n{log}"
        );

        // An empty multipart upload makes an empty object.
        let empty = path("big/empty");
        let mut upload = store.put_multipart(&empty).await.unwrap();
        upload.complete().await.unwrap();
        assert_eq!(store.head(&empty).await.unwrap().size, 0);

        // Not tested here: aborting, which the emulator answers with 501
        // (the stub test covers it).
    }

    #[tokio::test]
    async fn emulator_lists_more_objects_than_a_page() {
        let emulator = GcsEmulator::start().expect("starting gcp-storage-emulator");
        let store =
            emulator_store(&emulator, "athens-pages").with_page_size(NonZeroU32::new(3).unwrap());
        let mut expected = Vec::new();
        for i in 0..10 {
            let name = format!("mod/@v/v1.0.{i}.info");
            store
                .put(&path(&name), PutPayload::from_static(b"{}"))
                .await
                .unwrap();
            expected.push(name);
        }
        expected.sort();
        assert_eq!(names(store.list(Some(&path("mod")))).await, expected);
        let listed = store
            .list_with_delimiter(Some(&path("mod/@v")))
            .await
            .unwrap();
        assert_eq!(listed.objects.len(), 10);
    }

    #[tokio::test]
    async fn from_settings_honours_the_emulator_host() {
        let emulator = GcsEmulator::start().expect("starting gcp-storage-emulator");
        emulator.create_bucket("athens-env").unwrap();
        let host = emulator.process.addr.to_string();
        for value in [
            host.clone(),
            format!("http://{host}"),
            format!("http://{host}/ignored/path"),
        ] {
            let store = GcsJsonStore::from_settings_with(Some(&value), "athens-env", None).unwrap();
            assert_eq!(store.base_url(), format!("http://{host}"));
            let p = path("probe");
            store.put(&p, PutPayload::from_static(b"ok")).await.unwrap();
            assert_eq!(store.get(&p).await.unwrap().bytes().await.unwrap(), "ok");
        }
    }

    #[test]
    fn emulator_host_values() {
        let cases = [
            ("localhost:9023", "http://localhost:9023"),
            ("127.0.0.1:4443", "http://127.0.0.1:4443"),
            ("gcs", "http://gcs"),
            ("https://gcs.example:8443", "https://gcs.example:8443"),
            ("http://[::1]:9023/storage/v1/", "http://[::1]:9023"),
            ("[::1]:9023", "http://[::1]:9023"),
        ];
        for (value, want) in cases {
            assert_eq!(emulator_base_url(value).unwrap(), want, "{value}");
        }
        for bad in [
            "ftp://host",
            "http://",
            "host/path",
            "host:notaport",
            "user@host",
        ] {
            let error = emulator_base_url(bad).unwrap_err();
            assert!(
                matches!(error, GcsConfigError::InvalidEmulatorHost { .. }),
                "{bad}: {error}"
            );
            assert!(error.to_string().contains(bad), "{error}");
        }
    }

    #[test]
    fn constructor_rejections() {
        for (url, bucket) in [
            ("storage.googleapis.com", "b"),
            ("https://x?y=1", "b"),
            ("https://x", ""),
            ("https://x", "a/b"),
        ] {
            assert!(
                GcsJsonStore::new(url, bucket, None).is_err(),
                "{url} {bucket}"
            );
        }
        let store = GcsJsonStore::new("https://storage.googleapis.com/", "b", None).unwrap();
        assert_eq!(store.base_url(), DEFAULT_BASE_URL);
        for size in [0, CHUNK_GRANULARITY + 1, 1000] {
            let error = store.clone().with_chunk_size(size).unwrap_err();
            assert!(error.to_string().contains(&size.to_string()), "{error}");
        }
        assert!(store.with_chunk_size(2 * CHUNK_GRANULARITY).is_ok());
    }

    #[test]
    fn bad_service_account_key_is_not_quoted() {
        let key = r#"{"type": "service_account", "private_key": "SECRET-KEY-MATERIAL"}"#;
        let error = GcsJsonStore::from_settings_with(None, "b", Some(key)).unwrap_err();
        assert!(
            matches!(error, GcsConfigError::Credentials { .. }),
            "{error}"
        );
        let text = format!("{error} {error:?}");
        assert!(!text.contains("SECRET-KEY-MATERIAL"), "{text}");
    }

    #[test]
    fn url_and_header_parsing() {
        assert_eq!(encode("a/b c+ü~._-"), "a%2Fb%20c%2B%C3%BC~._-");
        let mut url = String::from("u");
        let mut query = Query::default();
        query.push("name", "x&y=z");
        query.push("prefix", "p/");
        query.append_to(&mut url);
        assert_eq!(url, "u?name=x%26y%3Dz&prefix=p%2F");
        assert_eq!(parse_content_range("bytes 5-9/100"), Some((5, 10)));
        assert_eq!(parse_content_range("bytes 9-5/100"), None);
        assert_eq!(parse_content_range("bytes */100"), None);
        assert_eq!(parse_persisted(None), Some(0));
        assert_eq!(parse_persisted(Some("bytes=0-262143")), Some(262144));
        assert_eq!(parse_persisted(Some("bytes=5-9")), None);
        assert_eq!(parse_persisted(Some("junk")), None);
        assert_eq!(prefix_string(None), "");
        assert_eq!(prefix_string(Some(&path("a/b"))), "a/b/");
    }

    /// A request seen by the stub server.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        uri: String,
        headers: reqwest::header::HeaderMap,
        body: Bytes,
    }

    type Reply = (u16, Vec<(&'static str, String)>, String);
    type Responder = dyn Fn(&Seen) -> Reply + Send + Sync;

    struct Stub {
        base_url: String,
        seen: Arc<StdMutex<Vec<Seen>>>,
        server: tokio::task::JoinHandle<()>,
    }

    impl Drop for Stub {
        fn drop(&mut self) {
            self.server.abort();
        }
    }

    impl Stub {
        /// A loopback HTTP server answering every request with `respond`,
        /// standing in for the parts of GCS the emulator does not model
        /// (pagination, preconditions, partial chunk persistence, auth).
        async fn start(respond: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Stub {
            let seen = Arc::new(StdMutex::new(Vec::new()));
            let respond: Arc<Responder> = Arc::new(respond);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base_url = format!("http://{}", listener.local_addr().unwrap());
            let log = Arc::clone(&seen);
            let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
                let respond = Arc::clone(&respond);
                let log = Arc::clone(&log);
                async move {
                    let (parts, body) = request.into_parts();
                    let body = axum::body::to_bytes(body, usize::MAX)
                        .await
                        .unwrap_or_default();
                    let mut headers = reqwest::header::HeaderMap::new();
                    for (name, value) in &parts.headers {
                        headers.append(
                            name.as_str()
                                .parse::<reqwest::header::HeaderName>()
                                .unwrap(),
                            value.as_bytes().try_into().unwrap(),
                        );
                    }
                    let seen = Seen {
                        method: parts.method.to_string(),
                        uri: parts.uri.to_string(),
                        headers,
                        body,
                    };
                    let (status, headers, body) = respond(&seen);
                    log.lock().unwrap().push(seen);
                    let mut response = axum::response::Response::builder().status(status);
                    for (name, value) in headers {
                        response = response.header(name, value);
                    }
                    response.body(axum::body::Body::from(body)).unwrap()
                }
            });
            let server = tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            Stub {
                base_url,
                seen,
                server,
            }
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    fn object_json(name: &str, size: usize, generation: &str) -> String {
        serde_json::json!({
            "name": name,
            "size": size.to_string(),
            "generation": generation,
            "etag": format!("etag-{generation}"),
            "updated": "2024-05-01T10:00:00.123Z",
        })
        .to_string()
    }

    fn query_value(uri: &str, key: &str) -> Option<String> {
        let query = uri.split_once('?')?.1;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == key).then(|| v.to_string())
        })
    }

    #[tokio::test]
    async fn stub_listing_follows_page_tokens() {
        let stub = Stub::start(|seen| {
            let token = query_value(&seen.uri, "pageToken");
            let delimited = query_value(&seen.uri, "delimiter").is_some();
            let body = match (token.as_deref(), delimited) {
                (None, false) => serde_json::json!({
                    "items": [serde_json::from_str::<serde_json::Value>(&object_json("p/a", 1, "1")).unwrap(),
                              serde_json::from_str::<serde_json::Value>(&object_json("p/b", 2, "2")).unwrap()],
                    "nextPageToken": "page%2"
                }),
                (Some("page%252"), false) => serde_json::json!({
                    "items": [serde_json::from_str::<serde_json::Value>(&object_json("p/c", 3, "3")).unwrap()]
                }),
                (None, true) => serde_json::json!({ "prefixes": ["p/d/"], "nextPageToken": "t" }),
                (Some("t"), true) => serde_json::json!({
                    "prefixes": ["p/e/", "p/d/"],
                    "items": [serde_json::from_str::<serde_json::Value>(&object_json("p/a", 1, "1")).unwrap()]
                }),
                _ => return (400, vec![], format!("unexpected {}", seen.uri)),
            };
            (200, vec![("content-type", "application/json".into())], body.to_string())
        })
        .await;
        let store = GcsJsonStore::new(&stub.base_url, "bk", None)
            .unwrap()
            .with_page_size(NonZeroU32::new(2).unwrap());

        assert_eq!(
            names(store.list(Some(&path("p")))).await,
            ["p/a", "p/b", "p/c"]
        );
        let uris: Vec<String> = stub.seen().iter().map(|s| s.uri.clone()).collect();
        assert_eq!(
            uris,
            [
                "/storage/v1/b/bk/o?prefix=p%2F&maxResults=2",
                "/storage/v1/b/bk/o?prefix=p%2F&pageToken=page%252&maxResults=2"
            ]
        );

        // startOffset is inclusive at the service; the offset itself is dropped.
        assert_eq!(
            names(store.list_with_offset(Some(&path("p")), &path("p/a"))).await,
            ["p/b", "p/c"]
        );
        let last = stub.seen().last().unwrap().uri.clone();
        assert_eq!(query_value(&last, "startOffset").as_deref(), Some("p%2Fa"));

        let listed = store.list_with_delimiter(Some(&path("p"))).await.unwrap();
        let prefixes: Vec<String> = listed
            .common_prefixes
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(prefixes, ["p/d", "p/e"]);
        assert_eq!(listed.objects.len(), 1);
        assert_eq!(listed.objects[0].version.as_deref(), Some("1"));
        assert_eq!(listed.objects[0].e_tag.as_deref(), Some("etag-1"));
    }

    #[tokio::test]
    async fn stub_preconditions_map_to_object_store_errors() {
        let stub = Stub::start(|seen| {
            let message = r#"{"error": {"code": 412, "message": "At least one of the pre-conditions you specified did not hold."}}"#;
            match query_value(&seen.uri, "ifGenerationMatch") {
                Some(_) => (412, vec![], message.to_string()),
                None => (500, vec![], "no precondition sent".to_string()),
            }
        })
        .await;
        let store = GcsJsonStore::new(&stub.base_url, "bk", None).unwrap();
        let p = path("a/b");

        let exists = store
            .put_opts(&p, PutPayload::from_static(b"x"), PutMode::Create.into())
            .await
            .unwrap_err();
        assert!(
            matches!(exists, object_store::Error::AlreadyExists { .. }),
            "{exists}"
        );
        assert!(exists.to_string().contains("pre-conditions"), "{exists}");

        let version = UpdateVersion {
            e_tag: None,
            version: Some("1234".into()),
        };
        let stale = store
            .put_opts(
                &p,
                PutPayload::from_static(b"x"),
                PutMode::Update(version).into(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(stale, object_store::Error::Precondition { .. }),
            "{stale}"
        );

        let copy = store
            .copy_if_not_exists(&path("src"), &p)
            .await
            .unwrap_err();
        assert!(
            matches!(copy, object_store::Error::AlreadyExists { ref path, .. } if path == "a/b"),
            "{copy}"
        );

        let uris: Vec<String> = stub
            .seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.uri))
            .collect();
        assert_eq!(
            uris,
            [
                "POST /upload/storage/v1/b/bk/o?uploadType=media&name=a%2Fb&ifGenerationMatch=0",
                "POST /upload/storage/v1/b/bk/o?uploadType=media&name=a%2Fb&ifGenerationMatch=1234",
                "POST /storage/v1/b/bk/o/src/rewriteTo/b/bk/o/a%2Fb?ifGenerationMatch=0",
            ]
        );

        // A generation that is not a number cannot match anything.
        let version = UpdateVersion {
            e_tag: None,
            version: Some("1 OR 1".into()),
        };
        let bad = store
            .put_opts(
                &p,
                PutPayload::from_static(b"x"),
                PutMode::Update(version).into(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(bad, object_store::Error::Precondition { .. }),
            "{bad}"
        );
        assert_eq!(
            stub.seen().len(),
            3,
            "a request was sent for an invalid generation"
        );
    }

    #[tokio::test]
    async fn stub_bearer_token_is_sent_and_never_printed() {
        let stub = Stub::start(|seen| match seen.method.as_str() {
            "GET" => (200, vec![], object_json("obj", 2, "5")),
            _ => (200, vec![], r#"{"done": true}"#.to_string()),
        })
        .await;
        let provider: GcpCredentialProvider =
            Arc::new(StaticCredentialProvider::new(GcpCredential {
                bearer: "sekrit-token".to_string(),
            }));
        let store = GcsJsonStore::new(&stub.base_url, "bk", Some(provider)).unwrap();
        let meta = store.head(&path("obj")).await.unwrap();
        assert_eq!((meta.size, meta.version.as_deref()), (2, Some("5")));
        store.copy(&path("obj"), &path("obj2")).await.unwrap();
        for seen in stub.seen() {
            assert_eq!(
                seen.headers
                    .get(AUTHORIZATION)
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer sekrit-token"),
                "{} {}",
                seen.method,
                seen.uri
            );
        }
        let printed = format!("{store:?} {store}");
        assert!(!printed.contains("sekrit"), "{printed}");

        // Transient answers are retried; the emulator never gives any.
        let unauthenticated = GcsJsonStore::new(&stub.base_url, "bk", None).unwrap();
        unauthenticated.head(&path("obj")).await.unwrap();
        assert!(stub
            .seen()
            .last()
            .unwrap()
            .headers
            .get(AUTHORIZATION)
            .is_none());
    }

    #[tokio::test]
    async fn stub_transient_failures_are_retried() {
        let calls = Arc::new(StdMutex::new(0));
        let counter = Arc::clone(&calls);
        let stub = Stub::start(move |_| {
            let mut calls = counter.lock().unwrap();
            *calls += 1;
            match *calls {
                1 => (503, vec![], "busy".into()),
                2 => (429, vec![], "slow down".into()),
                _ => (
                    404,
                    vec![],
                    r#"{"error": {"message": "No such object: bk/x"}}"#.into(),
                ),
            }
        })
        .await;
        let store = GcsJsonStore::new(&stub.base_url, "bk", None).unwrap();
        let error = store.head(&path("x")).await.unwrap_err();
        assert!(
            matches!(error, object_store::Error::NotFound { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("No such object"), "{error}");
        assert_eq!(*calls.lock().unwrap(), 3);
    }

    /// A resumable upload against a service that keeps only part of each
    /// chunk and fails once: the client must resend exactly the bytes the
    /// service does not hold, in 256 KiB multiples.
    #[tokio::test]
    async fn stub_resumable_upload_resends_what_was_not_persisted() {
        #[derive(Default)]
        struct Upload {
            data: Vec<u8>,
            chunk_puts: usize,
            ranges: Vec<String>,
        }
        let state = Arc::new(StdMutex::new(Upload::default()));
        let shared = Arc::clone(&state);
        let stub = Stub::start(move |seen| {
            let mut up = shared.lock().unwrap();
            if seen.method == "POST" {
                assert!(seen.uri.contains("uploadType=resumable"), "{}", seen.uri);
                let meta: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
                assert_eq!(meta["name"], "big/file.zip");
                return (
                    200,
                    vec![("location", "/upload/session?upload_id=xyz".into())],
                    String::new(),
                );
            }
            if seen.method == "DELETE" {
                return (499, vec![], String::new());
            }
            let range = seen
                .headers
                .get(CONTENT_RANGE)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            up.ranges.push(range.clone());
            let held = |up: &Upload| -> Vec<(&'static str, String)> {
                if up.data.is_empty() {
                    vec![]
                } else {
                    vec![("range", format!("bytes=0-{}", up.data.len() - 1))]
                }
            };
            let spec = range.strip_prefix("bytes ").unwrap();
            let (span, total) = spec.split_once('/').unwrap();
            if span == "*" {
                if total != "*" && total.parse::<usize>().unwrap() == up.data.len() {
                    let len = up.data.len();
                    return (200, vec![], object_json("big/file.zip", len, "77"));
                }
                return (308, held(&up), String::new());
            }
            let start: usize = span.split_once('-').unwrap().0.parse().unwrap();
            assert_eq!(
                start,
                up.data.len(),
                "chunk does not start where the service stands"
            );
            up.chunk_puts += 1;
            if up.chunk_puts == 2 {
                return (503, vec![], "backend error".into());
            }
            if total == "*" {
                assert_eq!(
                    seen.body.len() % CHUNK_GRANULARITY,
                    0,
                    "intermediate chunk size"
                );
                // Keep only the first granule of every intermediate chunk.
                up.data.extend_from_slice(&seen.body[..CHUNK_GRANULARITY]);
                return (308, held(&up), String::new());
            }
            up.data.extend_from_slice(&seen.body);
            assert_eq!(up.data.len(), total.parse::<usize>().unwrap());
            let len = up.data.len();
            (200, vec![], object_json("big/file.zip", len, "77"))
        })
        .await;
        let store = GcsJsonStore::new(&stub.base_url, "bk", None)
            .unwrap()
            .with_chunk_size(2 * CHUNK_GRANULARITY)
            .unwrap();
        let data = pattern(5 * CHUNK_GRANULARITY + 1234);
        let mut upload = store.put_multipart(&path("big/file.zip")).await.unwrap();
        for part in data.chunks(300_000) {
            upload
                .put_part(PutPayload::from(part.to_vec()))
                .await
                .unwrap();
        }
        let result = upload.complete().await.unwrap();
        assert_eq!(result.version.as_deref(), Some("77"));
        {
            let up = state.lock().unwrap();
            assert!(up.data == data, "the service holds different bytes");
            assert!(
                up.ranges.iter().any(|r| r == "bytes */*"),
                "no status query after the failure: {:?}",
                up.ranges
            );
            assert!(
                up.ranges
                    .last()
                    .unwrap()
                    .ends_with(&format!("/{}", data.len())),
                "{:?}",
                up.ranges
            );
        }

        // Aborting cancels the session (GCS answers 499).
        let mut upload = store.put_multipart(&path("big/file.zip")).await.unwrap();
        upload.abort().await.unwrap();
        assert_eq!(stub.seen().last().unwrap().method, "DELETE");
        let printed = format!("{upload:?}");
        assert!(!printed.contains("upload_id"), "{printed}");
    }
}
