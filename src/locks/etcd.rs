//! etcd leases (`SingleFlightType` `etcd`), spoken through etcd's v3 JSON
//! gateway (`/v3/...`, served on the client port since etcd 3.4).
//!
//! Taking a lock grants an etcd lease with the TTL, then writes the key
//! attached to that lease in a transaction that succeeds only if the key
//! does not exist. Refreshing is a lease keep-alive; releasing revokes the
//! lease, which deletes the key with it. A lease that expired took its key
//! along, and revoking it again touches nothing else, so a late release
//! never removes a newer holder's key.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};

use super::{Lease, LockError, LockService};

const SERVICE: &str = "etcd";
/// Longest wait for a TCP connection to one endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for one request, answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// gRPC status codes the gateway reports in its error bodies.
const GRPC_NOT_FOUND: i64 = 5;
const GRPC_PERMISSION_DENIED: i64 = 7;
const GRPC_UNAUTHENTICATED: i64 = 16;

/// Leases on an etcd cluster.
///
/// The constructor only checks the endpoints; nothing is contacted until
/// [`LockService::check`] or the first lock.
#[derive(Debug)]
pub struct EtcdLocks {
    gateway: Arc<Gateway>,
}

#[derive(Debug)]
struct Gateway {
    http: reqwest::Client,
    /// Base URLs, `http://host:port` without a trailing slash.
    endpoints: Vec<String>,
    /// The endpoint that answered last, tried first next time.
    preferred: AtomicUsize,
}

/// An error answer from the gateway.
#[derive(Debug)]
struct GatewayError {
    status: u16,
    grpc_code: Option<i64>,
    message: String,
}

impl GatewayError {
    fn is_not_found(&self) -> bool {
        self.grpc_code == Some(GRPC_NOT_FOUND) || self.message.contains("lease not found")
    }
}

/// Why a gateway call failed.
enum CallError {
    /// The lock service error to report.
    Lock(LockError),
    /// The gateway answered with an error.
    Answer(GatewayError),
}

impl From<LockError> for CallError {
    fn from(e: LockError) -> Self {
        CallError::Lock(e)
    }
}

impl CallError {
    fn into_lock_error(self) -> LockError {
        match self {
            CallError::Lock(e) => e,
            CallError::Answer(answer) => {
                let unauthorized = matches!(answer.status, 401 | 403)
                    || matches!(
                        answer.grpc_code,
                        Some(GRPC_UNAUTHENTICATED | GRPC_PERMISSION_DENIED)
                    );
                if unauthorized {
                    LockError::Unauthorized {
                        service: SERVICE,
                        message: answer.message,
                    }
                } else {
                    LockError::Service {
                        service: SERVICE,
                        message: format!("HTTP {}: {}", answer.status, answer.message),
                    }
                }
            }
        }
    }
}

fn service_error(message: String) -> LockError {
    LockError::Service {
        service: SERVICE,
        message,
    }
}

impl EtcdLocks {
    /// Leases on the etcd cluster at `endpoints`: comma-separated
    /// `host:port` or `http(s)://host:port` URLs, tried in turn while they
    /// refuse connections.
    pub fn connect(endpoints: &str) -> Result<Self, LockError> {
        let endpoints = endpoints
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(parse_endpoint)
            .collect::<Result<Vec<_>, _>>()?;
        if endpoints.is_empty() {
            return Err(service_error(
                "invalid configuration: no endpoints configured".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| service_error(format!("building the HTTP client: {e}")))?;
        Ok(EtcdLocks {
            gateway: Arc::new(Gateway {
                http,
                endpoints,
                preferred: AtomicUsize::new(0),
            }),
        })
    }
}

/// One endpoint as a base URL.
fn parse_endpoint(endpoint: &str) -> Result<String, LockError> {
    let invalid = |why: &str| {
        service_error(format!(
            "invalid configuration: endpoint {endpoint:?} {why}"
        ))
    };
    let with_scheme = if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    };
    let url = reqwest::Url::parse(&with_scheme).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("is not http(s)://host:port"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "carries credentials, which etcd endpoints do not take",
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("has a path; give only scheme, host and port"));
    }
    Ok(with_scheme.trim_end_matches('/').to_string())
}

/// The gateway writes 64-bit integers as JSON strings; accept both forms.
fn int_field(value: &Value, name: &str) -> Option<i64> {
    match value.get(name)? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn gateway_error(status: u16, body: &Value) -> GatewayError {
    // Unary calls answer `{"error": "...", "message": "...", "code": N}`;
    // streamed ones `{"error": {"grpc_code": N, "message": "...", ...}}`.
    let (grpc_code, message) = match body.get("error") {
        Some(inner @ Value::Object(_)) => (
            int_field(inner, "grpc_code").or_else(|| int_field(inner, "code")),
            inner.get("message").and_then(Value::as_str),
        ),
        _ => (
            int_field(body, "code"),
            body.get("message")
                .or_else(|| body.get("error"))
                .and_then(Value::as_str),
        ),
    };
    GatewayError {
        status,
        grpc_code,
        message: message.unwrap_or("no error message").to_string(),
    }
}

impl Gateway {
    fn all_endpoints(&self) -> String {
        self.endpoints.join(",")
    }

    /// POSTs `body` to `path`, on the preferred endpoint first and on the
    /// others while connections are refused. Only connection failures move
    /// on: a request that may have reached etcd is not sent twice.
    async fn call(&self, path: &str, body: &Value) -> Result<Value, CallError> {
        let count = self.endpoints.len();
        let first = self.preferred.load(Ordering::Relaxed) % count;
        let mut last_failure = String::new();
        for offset in 0..count {
            let index = (first + offset) % count;
            let base = &self.endpoints[index];
            let response = match self
                .http
                .post(format!("{base}{path}"))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string())
                .send()
                .await
            {
                Ok(response) => response,
                Err(e) if e.is_connect() => {
                    last_failure = format!("{base}: {}", error_chain(&e));
                    continue;
                }
                Err(e) => {
                    return Err(self
                        .unreachable(format!("{base}: {}", error_chain(&e)))
                        .into())
                }
            };
            self.preferred.store(index, Ordering::Relaxed);
            let status = response.status().as_u16();
            let bytes = response.bytes().await.map_err(|e| {
                self.unreachable(format!("{base}: reading the answer: {}", error_chain(&e)))
            })?;
            // A keep-alive answers as a stream of JSON objects; the first
            // one is ours.
            let value = serde_json::Deserializer::from_slice(&bytes)
                .into_iter::<Value>()
                .next()
                .and_then(Result::ok)
                .unwrap_or(Value::Null);
            if !(200..300).contains(&status) || value.get("error").is_some() {
                return Err(CallError::Answer(gateway_error(status, &value)));
            }
            return Ok(value);
        }
        Err(self.unreachable(last_failure).into())
    }

    fn unreachable(&self, message: String) -> LockError {
        LockError::Unreachable {
            service: SERVICE,
            endpoint: self.all_endpoints(),
            message,
        }
    }

    async fn revoke(&self, lease_id: i64) -> Result<(), LockError> {
        match self
            .call("/v3/lease/revoke", &json!({ "ID": lease_id.to_string() }))
            .await
        {
            Ok(_) => Ok(()),
            // Expired already: its key went with it.
            Err(CallError::Answer(answer)) if answer.is_not_found() => Ok(()),
            Err(e) => Err(e.into_lock_error()),
        }
    }
}

/// The error with its causes, which is where reqwest says what happened.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whole seconds, rounded up, at least 1 (etcd may raise it further to
/// its minimum lease TTL).
fn ttl_seconds(ttl: Duration) -> i64 {
    let whole = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(whole).unwrap_or(i64::MAX).max(1)
}

#[async_trait]
impl LockService for EtcdLocks {
    fn name(&self) -> &'static str {
        SERVICE
    }

    async fn check(&self) -> Result<(), LockError> {
        self.gateway
            .call("/v3/maintenance/status", &json!({}))
            .await
            .map(|_| ())
            .map_err(CallError::into_lock_error)
    }

    async fn try_lock(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<Box<dyn Lease>>, LockError> {
        let granted = self
            .gateway
            .call(
                "/v3/lease/grant",
                &json!({ "TTL": ttl_seconds(ttl).to_string() }),
            )
            .await
            .map_err(CallError::into_lock_error)?;
        let lease_id = int_field(&granted, "ID")
            .filter(|id| *id != 0)
            .ok_or_else(|| {
                service_error(format!("lease grant answered without an ID: {granted}"))
            })?;

        let key_b64 = BASE64.encode(key.as_bytes());
        let holder = format!("athens pid {}", std::process::id());
        let txn = json!({
            "compare": [{
                "key": key_b64,
                "target": "CREATE",
                "result": "EQUAL",
                "create_revision": "0",
            }],
            "success": [{
                "request_put": {
                    "key": key_b64,
                    "value": BASE64.encode(holder.as_bytes()),
                    "lease": lease_id.to_string(),
                },
            }],
        });
        let outcome = self.gateway.call("/v3/kv/txn", &txn).await;
        let succeeded = match &outcome {
            // The gateway leaves out `succeeded` when it is false.
            Ok(answer) => answer.get("succeeded").and_then(Value::as_bool) == Some(true),
            Err(_) => false,
        };
        if succeeded {
            return Ok(Some(Box::new(EtcdLease {
                gateway: self.gateway.clone(),
                lease_id,
            })));
        }
        // The lease is of no use now; a failed revoke leaves it to expire.
        if let Err(e) = self.gateway.revoke(lease_id).await {
            tracing::debug!(error = %e, "revoking an unused etcd lease failed");
        }
        match outcome {
            Ok(_) => Ok(None),
            Err(e) => Err(e.into_lock_error()),
        }
    }
}

/// A lock held in etcd: the lease its key is attached to.
struct EtcdLease {
    gateway: Arc<Gateway>,
    lease_id: i64,
}

#[async_trait]
impl Lease for EtcdLease {
    async fn refresh(&mut self) -> Result<bool, LockError> {
        match self
            .gateway
            .call(
                "/v3/lease/keepalive",
                &json!({ "ID": self.lease_id.to_string() }),
            )
            .await
        {
            // An expired lease answers with no TTL (zero).
            Ok(answer) => Ok(answer
                .get("result")
                .and_then(|r| int_field(r, "TTL"))
                .is_some_and(|ttl| ttl > 0)),
            Err(CallError::Answer(answer)) if answer.is_not_found() => Ok(false),
            Err(e) => Err(e.into_lock_error()),
        }
    }

    async fn release(self: Box<Self>) -> Result<(), LockError> {
        self.gateway.revoke(self.lease_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fixtures::services::etcd::Etcd;
    use std::time::Instant;

    /// etcd raises shorter TTLs to its minimum (1.5 s rounded up, with the
    /// default election timeout).
    const TTL: Duration = Duration::from_secs(2);

    fn locks(etcd: &Etcd) -> EtcdLocks {
        EtcdLocks::connect(&etcd.endpoint()).expect("valid endpoint")
    }

    #[tokio::test]
    async fn lease_rules() {
        let etcd = Etcd::start().expect("etcd");
        let locks = locks(&etcd);
        let other = locks_with_dead_first(&etcd);
        locks.check().await.expect("check");
        other.check().await.expect("check past a dead endpoint");

        // Exclusion across two clients, then release lets another take it.
        let first = locks
            .try_lock("k/exclusive", TTL)
            .await
            .unwrap()
            .expect("free key is granted");
        assert!(other.try_lock("k/exclusive", TTL).await.unwrap().is_none());
        assert!(locks.try_lock("k/exclusive", TTL).await.unwrap().is_none());
        first.release().await.unwrap();
        let second = other
            .try_lock("k/exclusive", TTL)
            .await
            .unwrap()
            .expect("granted after release");
        second.release().await.unwrap();

        // Without refresh the lease expires after its TTL (etcd checks
        // expiry every half second).
        let mut expiring = locks.try_lock("k/expiry", TTL).await.unwrap().unwrap();
        let start = Instant::now();
        let taker = loop {
            if let Some(lease) = other.try_lock("k/expiry", TTL).await.unwrap() {
                break lease;
            }
            assert!(start.elapsed() < TTL * 3, "lease did not expire");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(start.elapsed() >= TTL - Duration::from_millis(200));
        // The old holder has lost it: refresh says so and release must not
        // delete the new holder's key.
        assert!(!expiring.refresh().await.unwrap());
        expiring.release().await.unwrap();
        assert!(locks.try_lock("k/expiry", TTL).await.unwrap().is_none());
        taker.release().await.unwrap();

        // Refreshing keeps it well past one TTL.
        let mut kept = locks.try_lock("k/refresh", TTL).await.unwrap().unwrap();
        let start = Instant::now();
        while start.elapsed() < TTL * 2 {
            tokio::time::sleep(TTL / 3).await;
            assert!(kept.refresh().await.unwrap(), "refresh of a live lease");
        }
        assert!(other.try_lock("k/refresh", TTL).await.unwrap().is_none());
        kept.release().await.unwrap();
        assert!(other.try_lock("k/refresh", TTL).await.unwrap().is_some());
    }

    fn locks_with_dead_first(etcd: &Etcd) -> EtcdLocks {
        let dead = format!("127.0.0.1:{}", fixtures::services::free_port());
        EtcdLocks::connect(&format!("{dead}, {}", etcd.endpoint())).unwrap()
    }

    #[tokio::test]
    async fn unreachable_is_reported_quickly() {
        let port = fixtures::services::free_port();
        let locks =
            EtcdLocks::connect(&format!("127.0.0.1:{port},http://127.0.0.1:{port}/")).unwrap();
        let start = Instant::now();
        let err = locks.check().await.unwrap_err();
        assert!(matches!(err, LockError::Unreachable { .. }), "{err:?}");
        let err = locks.try_lock("k", TTL).await.err();
        assert!(
            matches!(err, Some(LockError::Unreachable { .. })),
            "{err:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn a_server_that_is_not_etcd_is_an_error() {
        // Anything answering HTTP with something other than the gateway's
        // answers must not be taken for a granted lock.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found")
                    .await;
            }
        });
        let locks = EtcdLocks::connect(&addr.to_string()).unwrap();
        assert!(matches!(
            locks.check().await,
            Err(LockError::Service { .. })
        ));
        assert!(locks.try_lock("k", TTL).await.is_err());
    }

    #[test]
    fn endpoints_are_checked() {
        for good in [
            "127.0.0.1:2379",
            "http://127.0.0.1:2379",
            "https://etcd.internal:2379/",
            " a:1 , b:2 ,",
        ] {
            assert!(EtcdLocks::connect(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            " , ",
            "unix:///run/etcd.sock",
            "http://user:pw@h:1",
            "http://h:1/v3",
            "h:notaport",
        ] {
            let err = EtcdLocks::connect(bad).unwrap_err();
            assert!(matches!(err, LockError::Service { .. }), "{bad}: {err:?}");
        }
        let locks = EtcdLocks::connect("a:1, http://b:2/").unwrap();
        assert_eq!(locks.gateway.endpoints, ["http://a:1", "http://b:2"]);
    }

    #[test]
    fn gateway_answers() {
        let unary = json!({"error": "etcdserver: requested lease not found", "message": "etcdserver: requested lease not found", "code": 5});
        let e = gateway_error(404, &unary);
        assert!(e.is_not_found());
        let streamed = json!({"error": {"grpc_code": 16, "http_code": 401, "message": "auth: invalid auth token"}});
        let e = gateway_error(200, &streamed);
        assert_eq!(e.grpc_code, Some(16));
        assert!(matches!(
            CallError::Answer(e).into_lock_error(),
            LockError::Unauthorized { .. }
        ));
        assert_eq!(int_field(&json!({"ID": "7587"}), "ID"), Some(7587));
        assert_eq!(int_field(&json!({"ID": 12}), "ID"), Some(12));
        assert_eq!(int_field(&json!({"ID": "x"}), "ID"), None);
        assert_eq!(ttl_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ttl_seconds(Duration::ZERO), 1);
        assert_eq!(ttl_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(ttl_seconds(Duration::from_secs(900)), 900);
    }
}
