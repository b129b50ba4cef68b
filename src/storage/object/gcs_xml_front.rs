//! Test only: the XML API requests of object_store's GCS client that
//! fake-gcs-server lacks, translated to its JSON API.
//!
//! fake-gcs-server answers object reads (`GET`, `HEAD`), deletes and the
//! bucket listing of the XML API itself; those requests pass through
//! unchanged. It has no XML object upload, copy or multipart upload, so:
//! - `PUT /BUCKET/OBJECT` becomes a JSON multipart upload, its
//!   `x-goog-if-generation-match` the upload's `ifGenerationMatch`, which
//!   the emulator enforces (atomically, under its storage lock). The
//!   answer carries the object's `ETag` (quoted, as the emulator's own
//!   XML reads give it) and `x-goog-generation`.
//! - `PUT` with `x-goog-copy-source` becomes a JSON `copyTo`. The
//!   emulator ignores preconditions on `copyTo`, so a copy with
//!   `x-goog-if-generation-match` (a create-only copy) is a read of the
//!   source and an upload with that precondition instead, which the
//!   emulator checks atomically, as GCS checks it on copies.
//! - XML multipart uploads (initiate, parts, complete, abort) are held
//!   here: the parts in memory, the object uploaded to the emulator whole
//!   when the upload completes. The emulator stores the result; part
//!   bookkeeping is this front's, not a service's.
//!
//! Nothing here decides whether a write succeeds: every precondition is
//! the emulator's to enforce or ignore. See `tests.rs` for what this setup
//! cannot check.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use sha2::{Digest, Sha256};

const GENERATION_MATCH: &str = "x-goog-if-generation-match";
const COPY_SOURCE: &str = "x-goog-copy-source";
/// Largest request body accepted (the tests' zips are far smaller).
const MAX_BODY: usize = 256 << 20;

/// The front, listening on loopback until dropped.
pub struct GcsXmlFront {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GcsXmlFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GcsXmlFront {
    /// Starts a front for the emulator at `emulator` (its XML API's public
    /// host is its own address).
    pub async fn start(emulator: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let front = Arc::new(Front {
            client: reqwest::Client::new(),
            emulator,
            uploads: Mutex::new(HashMap::new()),
            next_upload: AtomicU64::new(1),
        });
        let app = axum::Router::new().fallback(handle).with_state(front);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        GcsXmlFront { addr, task }
    }

    /// The base URL to give object_store's client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

struct Front {
    client: reqwest::Client,
    emulator: SocketAddr,
    uploads: Mutex<HashMap<String, Upload>>,
    next_upload: AtomicU64,
}

struct Upload {
    bucket: String,
    object: String,
    content_type: String,
    parts: BTreeMap<u32, (String, Bytes)>,
}

fn reply(status: StatusCode, headers: &[(&str, String)], body: impl Into<Body>) -> Response {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, value);
    }
    response.body(body.into()).unwrap()
}

fn xml_error(status: StatusCode, code: &str) -> Response {
    let body = format!("<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code></Error>");
    reply(status, &[("content-type", "application/xml".into())], body)
}

/// Percent-decodes a URL path or query element.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but unreserved characters, for a path
/// segment.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn query_pairs(query: Option<&str>) -> HashMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The text of every `<tag>…</tag>` in `xml`, in order.
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        found.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    found
}

async fn handle(State(front): State<Arc<Front>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return xml_error(StatusCode::PAYLOAD_TOO_LARGE, "EntityTooLarge");
    };
    let query = query_pairs(parts.uri.query());
    let path = parts.uri.path().trim_start_matches('/');
    let (bucket, object) = match path.split_once('/') {
        Some((bucket, object)) => (decode(bucket), decode(object)),
        None => (decode(path), String::new()),
    };
    let headers = &parts.headers;
    let method = &parts.method;
    let result = if object.is_empty() {
        front.forward(&parts, body).await
    } else if *method == Method::POST && query.contains_key("uploads") {
        Ok(front.initiate(bucket, object, headers))
    } else if let Some(id) = query.get("uploadId") {
        match (method, query.get("partNumber")) {
            (&Method::PUT, Some(n)) => Ok(front.put_part(id, n, body)),
            (&Method::POST, None) => front.complete(id, &body).await,
            (&Method::DELETE, None) => Ok(front.abort(id)),
            _ => Ok(xml_error(StatusCode::BAD_REQUEST, "InvalidRequest")),
        }
    } else if *method == Method::PUT {
        match headers.get(COPY_SOURCE).and_then(|v| v.to_str().ok()) {
            Some(source) => front.copy(&bucket, &object, source, headers).await,
            None => {
                let condition = header(headers, GENERATION_MATCH);
                front
                    .upload(&bucket, &object, content_type(headers), condition, body)
                    .await
            }
        }
    } else {
        front.forward(&parts, body).await
    };
    result.unwrap_or_else(|e| xml_error(StatusCode::BAD_GATEWAY, &format!("{e:#}")))
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn content_type(headers: &HeaderMap) -> String {
    header(headers, "content-type").unwrap_or_else(|| "application/octet-stream".into())
}

/// An emulator error relayed as an XML API error with the same status.
async fn relay_error(response: reqwest::Response) -> Response {
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let code = match status {
        StatusCode::PRECONDITION_FAILED => "PreconditionFailed",
        StatusCode::NOT_FOUND => "NoSuchKey",
        _ => "InternalError",
    };
    xml_error(status, code)
}

impl Front {
    fn json_api(&self, path: &str) -> String {
        format!("http://{}{path}", self.emulator)
    }

    /// Passes a request the emulator's XML API handles through unchanged.
    async fn forward(
        &self,
        parts: &axum::http::request::Parts,
        body: Bytes,
    ) -> anyhow::Result<Response> {
        let url = format!(
            "http://{}{}",
            self.emulator,
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        );
        let mut request = self.client.request(parts.method.clone(), url);
        for (name, value) in &parts.headers {
            if name != "host" {
                request = request.header(name, value);
            }
        }
        let response = request.body(body).send().await?;
        let mut out = Response::builder().status(response.status().as_u16());
        for (name, value) in response.headers() {
            if name != "transfer-encoding" && name != "connection" {
                out = out.header(name, value);
            }
        }
        let body = response.bytes().await?;
        Ok(out.body(Body::from(body)).unwrap())
    }

    /// Uploads a whole object through the JSON API (a multipart upload:
    /// the one upload kind whose `ifGenerationMatch` the emulator checks).
    async fn upload(
        &self,
        bucket: &str,
        object: &str,
        content_type: String,
        if_generation_match: Option<String>,
        data: Bytes,
    ) -> anyhow::Result<Response> {
        const BOUNDARY: &str = "gcs-xml-front-boundary";
        let metadata = serde_json::json!({ "name": object, "contentType": content_type });
        let mut body = Vec::with_capacity(data.len() + 512);
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Type: application/json\r\n\r\n{metadata}\r\n--{BOUNDARY}\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&data);
        body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let mut query = vec![
            ("uploadType", "multipart".to_string()),
            ("name", object.into()),
        ];
        if let Some(generation) = if_generation_match {
            query.push(("ifGenerationMatch", generation));
        }
        let response = self
            .client
            .post(self.json_api(&format!("/upload/storage/v1/b/{}/o", encode(bucket))))
            .query(&query)
            .header(
                "content-type",
                format!("multipart/related; boundary={BOUNDARY}"),
            )
            .body(body)
            .send()
            .await?;
        if !response.status().is_success() {
            return Ok(relay_error(response).await);
        }
        let resource: serde_json::Value = serde_json::from_slice(&response.bytes().await?)?;
        Ok(reply(StatusCode::OK, &written(&resource), Body::empty()))
    }

    /// A copy. With a generation precondition (a create-only copy), the
    /// source is read and written through [`Front::upload`], because the
    /// emulator ignores preconditions on `copyTo` but enforces them
    /// atomically on uploads, as GCS does on copies.
    async fn copy(
        &self,
        bucket: &str,
        object: &str,
        source: &str,
        headers: &HeaderMap,
    ) -> anyhow::Result<Response> {
        let source = decode(source);
        let Some((source_bucket, source_object)) = source.split_once('/') else {
            return Ok(xml_error(StatusCode::BAD_REQUEST, "InvalidArgument"));
        };
        if let Some(generation) = header(headers, GENERATION_MATCH) {
            let path = format!(
                "/storage/v1/b/{}/o/{}",
                encode(source_bucket),
                encode(source_object)
            );
            let response = self
                .client
                .get(self.json_api(&path))
                .query(&[("alt", "media")])
                .send()
                .await?;
            if !response.status().is_success() {
                return Ok(relay_error(response).await);
            }
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_string();
            let data = response.bytes().await?;
            return self
                .upload(bucket, object, content_type, Some(generation), data)
                .await;
        }
        let path = format!(
            "/storage/v1/b/{}/o/{}/copyTo/b/{}/o/{}",
            encode(source_bucket),
            encode(source_object),
            encode(bucket),
            encode(object)
        );
        let response = self.client.post(self.json_api(&path)).send().await?;
        if !response.status().is_success() {
            return Ok(relay_error(response).await);
        }
        let resource: serde_json::Value = serde_json::from_slice(&response.bytes().await?)?;
        Ok(reply(StatusCode::OK, &written(&resource), Body::empty()))
    }

    fn initiate(&self, bucket: String, object: String, headers: &HeaderMap) -> Response {
        let id = format!(
            "upload-{}",
            self.next_upload.fetch_add(1, Ordering::Relaxed)
        );
        let body = format!(
            "<?xml version='1.0' encoding='UTF-8'?><InitiateMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>",
            encode(&object)
        );
        let upload = Upload {
            bucket,
            object,
            content_type: content_type(headers),
            parts: BTreeMap::new(),
        };
        self.uploads.lock().unwrap().insert(id, upload);
        reply(
            StatusCode::OK,
            &[("content-type", "application/xml".into())],
            body,
        )
    }

    fn put_part(&self, id: &str, number: &str, data: Bytes) -> Response {
        let Ok(number) = number.parse::<u32>() else {
            return xml_error(StatusCode::BAD_REQUEST, "InvalidArgument");
        };
        let mut uploads = self.uploads.lock().unwrap();
        let Some(upload) = uploads.get_mut(id) else {
            return xml_error(StatusCode::NOT_FOUND, "NoSuchUpload");
        };
        let digest = Sha256::digest(&data);
        let tag = format!(
            "\"{}\"",
            digest[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        upload.parts.insert(number, (tag.clone(), data));
        reply(StatusCode::OK, &[("etag", tag)], Body::empty())
    }

    async fn complete(&self, id: &str, body: &[u8]) -> anyhow::Result<Response> {
        let Some(upload) = self.uploads.lock().unwrap().remove(id) else {
            return Ok(xml_error(StatusCode::NOT_FOUND, "NoSuchUpload"));
        };
        let body = String::from_utf8_lossy(body);
        let numbers = elements(&body, "PartNumber");
        let tags = elements(&body, "ETag");
        let mut data = Vec::new();
        for (number, tag) in numbers.iter().zip(&tags) {
            match number
                .parse::<u32>()
                .ok()
                .and_then(|n| upload.parts.get(&n))
            {
                Some((stored, part)) if stored == tag => data.extend_from_slice(part),
                _ => return Ok(xml_error(StatusCode::BAD_REQUEST, "InvalidPart")),
            }
        }
        if numbers.is_empty() || numbers.len() != tags.len() {
            return Ok(xml_error(StatusCode::BAD_REQUEST, "MalformedXML"));
        }
        let written = self
            .upload(
                &upload.bucket,
                &upload.object,
                upload.content_type.clone(),
                None,
                Bytes::from(data),
            )
            .await?;
        if !written.status().is_success() {
            return Ok(written);
        }
        let etag = header(written.headers(), "etag").unwrap_or_default();
        let generation = header(written.headers(), "x-goog-generation").unwrap_or_default();
        let body = format!(
            "<?xml version='1.0' encoding='UTF-8'?><CompleteMultipartUploadResult><Location>/{}/{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>{etag}</ETag></CompleteMultipartUploadResult>",
            upload.bucket,
            encode(&upload.object),
            upload.bucket,
            encode(&upload.object)
        );
        Ok(reply(
            StatusCode::OK,
            &[
                ("content-type", "application/xml".into()),
                ("x-goog-generation", generation),
            ],
            body,
        ))
    }

    fn abort(&self, id: &str) -> Response {
        match self.uploads.lock().unwrap().remove(id) {
            Some(_) => reply(StatusCode::NO_CONTENT, &[], Body::empty()),
            None => xml_error(StatusCode::NOT_FOUND, "NoSuchUpload"),
        }
    }
}

/// The headers of a successful XML write, from the JSON object resource.
fn written(resource: &serde_json::Value) -> Vec<(&'static str, String)> {
    let field = |name: &str| resource[name].as_str().unwrap_or_default().to_string();
    vec![
        ("etag", format!("\"{}\"", field("etag"))),
        ("x-goog-generation", field("generation")),
    ]
}
