//! Redis leases (`SingleFlightType` `redis`), on Redis Cluster
//! (`SingleFlight.Redis.Cluster`) and Redis behind Sentinel
//! (`redis-sentinel`).
//!
//! A lease is a key set with `SET key token NX PX ttl`, where the token is
//! unique to the lease. Refreshing and releasing run small Lua scripts that
//! act only while the key still holds our token, so a holder whose lease
//! expired can never extend or delete the lease someone else took since.
//!
//! One multiplexed connection is shared by every lease of a service. A
//! command that fails in a way that leaves the connection unusable (I/O
//! error, timeout, a demoted master answering `READONLY`) drops it, and the
//! next command connects again; through Sentinel that also asks the
//! sentinels anew which server is master, so a failover is followed.
//!
//! On a Redis Cluster the same commands and scripts run: each touches one
//! key, so it goes to the master owning that key's slot, and the crate's
//! cluster connection follows `MOVED`/`ASK` redirections and reloads the
//! slot map when masters change. A lease is as strong as one master: it
//! lives on the master of its slot (as with Athens' client, no quorum of
//! masters is asked).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo,
    RedisConnectionInfo, RedisError, RedisFuture, Script, ServerErrorKind, TlsMode,
};

use super::{Lease, LockError, LockService};

/// Longest wait for a TCP connection (and, through Sentinel, for each
/// sentinel or master contacted).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the answer to one command.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a usable connection as a whole: a Sentinel lookup may
/// contact several sentinels and then the master.
const CONNECT_BUDGET: Duration = Duration::from_secs(15);

/// Extends the key's expiry only while it still holds our token.
static REFRESH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then \
           return redis.call('PEXPIRE', KEYS[1], ARGV[2]) \
         end \
         return 0",
    )
});

/// Deletes the key only while it still holds our token.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then \
           return redis.call('DEL', KEYS[1]) \
         end \
         return 0",
    )
});

/// Leases on one Redis server, or on the master a set of sentinels names.
///
/// The constructors only check the configuration; nothing is contacted
/// until [`LockService::check`] or the first lock.
pub struct RedisLocks {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RedisLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLocks")
            .field("service", &self.shared.service)
            .field("endpoint", &self.shared.endpoint)
            .finish_non_exhaustive()
    }
}

/// Where connections come from.
enum Target {
    /// One server.
    Direct(Client),
    /// The master the sentinels name at the time of connecting.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
    /// The masters of a Redis Cluster, found from seed nodes.
    Cluster(ClusterClient),
}

/// A connection to one server, or to every master of a cluster.
#[derive(Clone)]
enum Connection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// The current connection, numbered so that a failed command drops only
/// the connection it ran on and not a newer one.
struct Slot {
    connection: Option<Connection>,
    generation: u64,
}

struct Shared {
    service: &'static str,
    /// The endpoint for messages, never with credentials.
    endpoint: String,
    target: Target,
    slot: tokio::sync::Mutex<Slot>,
}

/// The redis crate's TLS goes through rustls' process-wide crypto
/// provider, which rustls cannot pick by itself when, as in this build,
/// more than one provider is compiled in; without one, the first `rediss://`
/// connection panics. Installing ring (what the rest of the server uses)
/// is a no-op when a provider is already installed.
fn ensure_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl RedisLocks {
    /// Leases on the Redis server at `endpoint`, for `SingleFlightType`
    /// `redis`.
    ///
    /// `endpoint` is a URL (`redis://[user[:password]@]host[:port][/db]`,
    /// `rediss://` for TLS, `unix://`) or, as Athens falls back to for
    /// anything that is not a redis URL, the `host:port` address to dial.
    /// `password` (may be empty) is used for a `host:port` endpoint and for
    /// a URL without a password; a URL carrying a different password is
    /// refused, so the two settings cannot silently disagree.
    pub fn connect(endpoint: &str, password: &str) -> Result<Self, LockError> {
        ensure_tls_provider();
        let (info, shown) = parse_endpoint(endpoint.trim(), password)?;
        let client = Client::open(info).map_err(|e| config_error("redis", &e.to_string()))?;
        Ok(Self::with_target("redis", shown, Target::Direct(client)))
    }

    /// Leases on the master that the sentinels at `sentinels` (`host:port`
    /// each) name `master_name`, for `SingleFlightType` `redis-sentinel`.
    ///
    /// `sentinel_password` authenticates to the sentinels; `username`,
    /// `password` and `db` to the master. Empty strings mean none.
    pub fn connect_sentinel(
        sentinels: &[String],
        master_name: &str,
        sentinel_password: &str,
        username: &str,
        password: &str,
        db: i64,
    ) -> Result<Self, LockError> {
        const SERVICE: &str = "redis-sentinel";
        ensure_tls_provider();
        if master_name.is_empty() {
            return Err(config_error(SERVICE, "no master name configured"));
        }
        let addrs = sentinels
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                parse_host_port(s).ok_or_else(|| {
                    config_error(
                        SERVICE,
                        &format!("sentinel endpoint {s:?} is not host:port"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if addrs.is_empty() {
            return Err(config_error(SERVICE, "no sentinel endpoints configured"));
        }
        let shown = format!(
            "{} (master {master_name})",
            addrs
                .iter()
                .map(|(h, p)| format_host_port(h, *p))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut builder = SentinelClientBuilder::new(
            addrs.into_iter().map(|(h, p)| ConnectionAddr::Tcp(h, p)),
            master_name,
            SentinelServerType::Master,
        )
        .map_err(|e| config_error(SERVICE, &e.to_string()))?
        .set_client_to_redis_db(db);
        if !sentinel_password.is_empty() {
            builder = builder.set_client_to_sentinel_password(sentinel_password);
        }
        if !username.is_empty() {
            builder = builder.set_client_to_redis_username(username);
        }
        if !password.is_empty() {
            builder = builder.set_client_to_redis_password(password);
        }
        let client = builder
            .build()
            .map_err(|e| config_error(SERVICE, &e.to_string()))?;
        Ok(Self::with_target(
            SERVICE,
            shown,
            Target::Sentinel(tokio::sync::Mutex::new(client)),
        ))
    }

    /// Leases on a Redis Cluster, for `SingleFlightType` `redis` with
    /// `Cluster = true`.
    ///
    /// `endpoints` lists seed nodes, comma-separated, each `host:port` or a
    /// redis URL; the rest of the cluster is found from them. As in Athens,
    /// the URLs give the settings of every node: the first `rediss://` one
    /// turns on TLS, the first user name and the first password found are
    /// used. `password` is used as in [`RedisLocks::connect`], and must
    /// agree with a password in the URLs. A cluster has only database 0, so
    /// a URL naming another database is refused.
    pub fn connect_cluster(endpoints: &str, password: &str) -> Result<Self, LockError> {
        const SERVICE: &str = "redis-cluster";
        ensure_tls_provider();
        let mut seeds: Vec<(String, u16)> = Vec::new();
        let mut tls: Option<TlsMode> = None;
        let mut url_username: Option<String> = None;
        let mut url_password: Option<String> = None;
        for raw in endpoints
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let EndpointForm::Url(url) = classify_endpoint(raw) else {
                seeds.push(parse_host_port(raw).ok_or_else(|| {
                    config_error(
                        SERVICE,
                        &format!("cluster node {raw:?} is neither host:port nor a redis:// URL"),
                    )
                })?);
                continue;
            };
            let info = url.as_str().into_connection_info().map_err(|e| {
                config_error(
                    SERVICE,
                    &format!("cluster node {} is not a redis URL: {e}", redact_url(raw)),
                )
            })?;
            let (host, port, node_tls) = match info.addr() {
                ConnectionAddr::Tcp(host, port) => (host.clone(), *port, None),
                ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure,
                    ..
                } => (
                    host.clone(),
                    *port,
                    Some(if *insecure {
                        TlsMode::Insecure
                    } else {
                        TlsMode::Secure
                    }),
                ),
                _ => {
                    return Err(config_error(
                        SERVICE,
                        &format!(
                            "cluster node {} is a Unix socket; cluster nodes are reached over TCP",
                            redact_url(raw)
                        ),
                    ))
                }
            };
            let settings = info.redis_settings();
            if settings.db() != 0 {
                return Err(config_error(
                    SERVICE,
                    &format!(
                        "cluster node {} names database {}; a Redis Cluster has only database 0",
                        format_host_port(&host, port),
                        settings.db()
                    ),
                ));
            }
            tls = tls.or(node_tls);
            if url_username.is_none() {
                url_username = settings.username().map(str::to_string);
            }
            if url_password.is_none() {
                url_password = settings.password().map(str::to_string);
            }
            seeds.push((host, port));
        }
        if seeds.is_empty() {
            return Err(config_error(SERVICE, "no cluster nodes configured"));
        }
        let shown = seeds
            .iter()
            .map(|(h, p)| format_host_port(h, *p))
            .collect::<Vec<_>>()
            .join(",");
        let password = match url_password {
            Some(in_url) if !password.is_empty() && in_url != password => {
                return Err(config_error(
                    SERVICE,
                    &format!(
                        "the endpoint URLs for {shown} carry a password that differs from \
                         the configured Password; set only one of them, or make them equal"
                    ),
                ))
            }
            Some(in_url) if password.is_empty() => in_url,
            _ => password.to_string(),
        };
        let nodes = seeds.into_iter().map(|(host, port)| match tls {
            Some(mode) => ConnectionAddr::TcpTls {
                host,
                port,
                insecure: mode == TlsMode::Insecure,
                tls_params: None,
            },
            None => ConnectionAddr::Tcp(host, port),
        });
        let mut builder = ClusterClientBuilder::new(nodes)
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT);
        if let Some(mode) = tls {
            builder = builder.tls(mode);
        }
        if let Some(username) = url_username {
            builder = builder.username(username);
        }
        if !password.is_empty() {
            builder = builder.password(password);
        }
        let client = builder
            .build()
            .map_err(|e| config_error(SERVICE, &e.to_string()))?;
        Ok(Self::with_target(SERVICE, shown, Target::Cluster(client)))
    }

    fn with_target(service: &'static str, endpoint: String, target: Target) -> Self {
        RedisLocks {
            shared: Arc::new(Shared {
                service,
                endpoint,
                target,
                slot: tokio::sync::Mutex::new(Slot {
                    connection: None,
                    generation: 0,
                }),
            }),
        }
    }
}

fn config_error(service: &'static str, message: &str) -> LockError {
    LockError::Service {
        service,
        message: format!("invalid configuration: {message}"),
    }
}

/// How Athens reads a configured endpoint: go-redis' `ParseURL` first,
/// and when that fails the endpoint itself as the `host:port` to dial.
#[derive(Debug, Clone, PartialEq, Eq)]
enum EndpointForm {
    /// A redis URL, in the form the redis crate parses.
    Url(String),
    /// Anything else: an address, dialled as Go dials it.
    Address,
}

/// Classifies `endpoint` as go-redis does. It is a URL when Go's URL
/// parser finds the scheme `redis`, `rediss` or `unix` (in any case) and
/// a path after it; every other string is an address (Athens' fallback,
/// which is also how `127.0.0.1:6379` with the separate Password is
/// meant). A `redis:/N` URL without `//` names no host: go-redis' default
/// `localhost:6379` applies.
///
/// One deliberate difference: `redis:6379` (no `/` after the colon) is
/// the host `redis`, the name of a Redis service in Compose and
/// Kubernetes. go-redis reads it as an opaque URL without a host and dials
/// `localhost:6379` instead, which is never what such a setting means.
fn classify_endpoint(endpoint: &str) -> EndpointForm {
    let Some((scheme, rest)) = go_url_scheme(endpoint) else {
        return EndpointForm::Address;
    };
    if !rest.starts_with('/') {
        return EndpointForm::Address;
    }
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "redis" | "rediss" if !rest.starts_with("//") => {
            EndpointForm::Url(format!("{scheme}://localhost:6379{rest}"))
        }
        "redis" | "rediss" | "unix" => EndpointForm::Url(format!("{scheme}:{rest}")),
        _ => EndpointForm::Address,
    }
}

/// The scheme of `s` and what follows its colon, as Go's `url.Parse`
/// finds it: letters first, then letters, digits, `+`, `-` or `.`, up to
/// the first `:`. `None` when there is none.
fn go_url_scheme(s: &str) -> Option<(&str, &str)> {
    for (i, c) in s.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i > 0 => return Some((&s[..i], &s[i + 1..])),
            _ => return None,
        }
    }
    None
}

/// Turns a configured endpoint into connection settings and a form safe
/// to show in messages.
fn parse_endpoint(endpoint: &str, password: &str) -> Result<(ConnectionInfo, String), LockError> {
    if let EndpointForm::Url(url) = classify_endpoint(endpoint) {
        // go-redis would fall back to dialling a URL it cannot parse as an
        // address, which cannot succeed; the start fails either way, here
        // with the reason.
        let info = url.as_str().into_connection_info().map_err(|e| {
            config_error(
                "redis",
                &format!("endpoint {} is not a redis URL: {e}", redact_url(endpoint)),
            )
        })?;
        let shown = info.addr().to_string();
        let settings = info.redis_settings().clone();
        let settings = match settings.password() {
            Some(in_url) if !password.is_empty() && in_url != password => {
                return Err(config_error(
                    "redis",
                    &format!(
                        "the endpoint URL for {shown} carries a password that differs from \
                         the configured Password; set only one of them, or make them equal"
                    ),
                ))
            }
            None if !password.is_empty() => settings.set_password(password),
            _ => settings,
        };
        return Ok((info.set_redis_settings(settings), shown));
    }
    // go-redis dials `localhost:6379` when the address is empty.
    let address = if endpoint.is_empty() {
        "localhost:6379"
    } else {
        endpoint
    };
    let (host, port) = parse_host_port(address).ok_or_else(|| {
        config_error(
            "redis",
            &format!("endpoint {endpoint:?} is neither host:port nor a redis:// URL"),
        )
    })?;
    let shown = format_host_port(&host, port);
    let mut settings = RedisConnectionInfo::default();
    if !password.is_empty() {
        settings = settings.set_password(password);
    }
    let info = ConnectionAddr::Tcp(host, port)
        .into_connection_info()
        .map_err(|e| config_error("redis", &e.to_string()))?
        .set_redis_settings(settings);
    Ok((info, shown))
}

/// `host:port` or `[v6]:port`; the host without brackets. As Go dials an
/// address, an empty host (`:6379`) is this machine.
fn parse_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = match host.strip_prefix('[') {
        Some(rest) => rest.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    if port == 0 {
        return None;
    }
    let host = if host.is_empty() { "localhost" } else { host };
    Some((host.to_string(), port))
}

fn format_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The URL with any user and password replaced, for messages.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{tail}"),
        None => url.to_string(),
    }
}

/// A token no other lease shares: per-process random hasher keys mixed
/// with the time, the process id and a counter.
fn new_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let pid = std::process::id();
    let mix = |salt: u64| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(salt);
        hasher.write_u64(count);
        hasher.write_u128(nanos);
        hasher.write_u32(pid);
        hasher.finish()
    };
    format!("{:016x}{:016x}-{pid}-{count}", mix(1), mix(2))
}

fn connection_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
}

fn is_auth_error(e: &RedisError) -> bool {
    e.kind() == ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"))
        // A password sent to a server that has none configured.
        || e.detail()
            .is_some_and(|d| d.contains("without any password configured"))
        // The cluster client reports a failure to connect to every seed as
        // an I/O error, with the last node's error only as text.
        || (e.is_io_error()
            && e.detail().is_some_and(|d| {
                ["AuthenticationFailed", "WRONGPASS", "NOAUTH", "NOPERM"]
                    .iter()
                    .any(|code| d.contains(code))
            }))
}

/// Whether the connection the error came from should be replaced.
fn must_reconnect(e: &RedisError) -> bool {
    e.is_unrecoverable_error()
        || e.is_io_error()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::ReadOnly
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ClusterDown
            )
        )
}

impl Shared {
    fn error(&self, e: &RedisError) -> LockError {
        if is_auth_error(e) {
            LockError::Unauthorized {
                service: self.service,
                message: e.to_string(),
            }
        } else if e.is_io_error() || e.is_timeout() || e.is_connection_refusal() {
            self.unreachable(e.to_string())
        } else {
            LockError::Service {
                service: self.service,
                message: format!("{}: {e}", self.endpoint),
            }
        }
    }

    fn unreachable(&self, message: String) -> LockError {
        LockError::Unreachable {
            service: self.service,
            endpoint: self.endpoint.clone(),
            message,
        }
    }

    /// The shared connection, connecting first when there is none.
    async fn connection(&self) -> Result<(u64, Connection), LockError> {
        let mut slot = self.slot.lock().await;
        if let Some(connection) = &slot.connection {
            return Ok((slot.generation, connection.clone()));
        }
        let connecting = async {
            let config = connection_config();
            match &self.target {
                Target::Direct(client) => client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(Connection::Single),
                Target::Sentinel(sentinel) => {
                    let master = sentinel.lock().await.async_get_client().await?;
                    master
                        .get_multiplexed_async_connection_with_config(&config)
                        .await
                        .map(Connection::Single)
                }
                Target::Cluster(client) => {
                    client.get_async_connection().await.map(Connection::Cluster)
                }
            }
        };
        let connection = match tokio::time::timeout(CONNECT_BUDGET, connecting).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(e)) => return Err(self.error(&e)),
            Err(_) => {
                return Err(self.unreachable(format!(
                    "no connection within {}s",
                    CONNECT_BUDGET.as_secs()
                )))
            }
        };
        slot.generation += 1;
        slot.connection = Some(connection.clone());
        Ok((slot.generation, connection))
    }

    /// Drops connection `generation` if it is still the current one.
    async fn forget(&self, generation: u64) {
        let mut slot = self.slot.lock().await;
        if slot.generation == generation {
            slot.connection = None;
        }
    }

    /// Runs one command (or script) on the shared connection.
    async fn run<T, F, Fut>(&self, command: F) -> Result<T, LockError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let (generation, connection) = self.connection().await?;
        // The connection has its own response timeout; this one also
        // bounds scripts that need two round trips (EVALSHA, then EVAL).
        match tokio::time::timeout(RESPONSE_TIMEOUT * 2, command(connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if must_reconnect(&e) {
                    self.forget(generation).await;
                }
                Err(self.error(&e))
            }
            Err(_) => {
                self.forget(generation).await;
                Err(self.unreachable(format!(
                    "no answer within {}s",
                    (RESPONSE_TIMEOUT * 2).as_secs()
                )))
            }
        }
    }
}

fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl LockService for RedisLocks {
    fn name(&self) -> &'static str {
        self.shared.service
    }

    async fn check(&self) -> Result<(), LockError> {
        let answer: String = self
            .shared
            .run(|mut c| async move { redis::cmd("PING").query_async(&mut c).await })
            .await?;
        if answer == "PONG" {
            Ok(())
        } else {
            Err(LockError::Service {
                service: self.shared.service,
                message: format!("{}: PING answered {answer:?}", self.shared.endpoint),
            })
        }
    }

    async fn try_lock(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<Box<dyn Lease>>, LockError> {
        let token = new_token();
        let ttl_ms = ttl_millis(ttl);
        let command = {
            let mut command = redis::cmd("SET");
            command.arg(key).arg(&token).arg("NX").arg("PX").arg(ttl_ms);
            command
        };
        let set: Option<String> = self
            .shared
            .run(move |mut c| async move { command.query_async(&mut c).await })
            .await?;
        Ok(set.map(|_| {
            Box::new(RedisLease {
                shared: self.shared.clone(),
                key: key.to_string(),
                token,
                ttl_ms,
            }) as Box<dyn Lease>
        }))
    }
}

/// A lock held in Redis: the key and the token it holds.
struct RedisLease {
    shared: Arc<Shared>,
    key: String,
    token: String,
    ttl_ms: u64,
}

#[async_trait]
impl Lease for RedisLease {
    async fn refresh(&mut self) -> Result<bool, LockError> {
        let (key, token, ttl_ms) = (self.key.clone(), self.token.clone(), self.ttl_ms);
        let extended: i64 = self
            .shared
            .run(move |mut c| async move {
                REFRESH
                    .key(key)
                    .arg(token)
                    .arg(ttl_ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(extended == 1)
    }

    async fn release(self: Box<Self>) -> Result<(), LockError> {
        let RedisLease {
            shared, key, token, ..
        } = *self;
        // 0 means the lease had already expired (and maybe been taken):
        // nothing of ours is left to delete.
        let _deleted: i64 = shared
            .run(move |mut c| async move { RELEASE.key(key).arg(token).invoke_async(&mut c).await })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fixtures::services::redis::{RedisCluster, RedisSentinel, RedisServer};
    use std::time::Instant;

    const TTL: Duration = Duration::from_millis(3000);

    fn locks(server: &RedisServer) -> RedisLocks {
        RedisLocks::connect(&server.endpoint(), "").expect("valid endpoint")
    }

    /// The exclusion, release, expiry and refresh rules every backend must
    /// keep, on fresh keys of `locks`.
    async fn lease_rules(locks: &RedisLocks) {
        locks.check().await.expect("check");

        // Exclusion, then release lets another take it.
        let first = locks
            .try_lock("k/exclusive", TTL)
            .await
            .unwrap()
            .expect("free key is granted");
        assert!(locks.try_lock("k/exclusive", TTL).await.unwrap().is_none());
        first.release().await.unwrap();
        let second = locks
            .try_lock("k/exclusive", TTL)
            .await
            .unwrap()
            .expect("granted after release");
        second.release().await.unwrap();

        // Without refresh the lease expires after its TTL.
        let expiring = locks.try_lock("k/expiry", TTL).await.unwrap().unwrap();
        tokio::time::sleep(TTL + Duration::from_millis(500)).await;
        let taker = locks
            .try_lock("k/expiry", TTL)
            .await
            .unwrap()
            .expect("granted after expiry");
        // The old holder has lost it: refresh says so and release must not
        // delete the new holder's key.
        let mut expiring = expiring;
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
        assert!(locks.try_lock("k/refresh", TTL).await.unwrap().is_none());
        kept.release().await.unwrap();
        assert!(locks.try_lock("k/refresh", TTL).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn leases_on_one_server() {
        let server = RedisServer::start().expect("redis-server");
        lease_rules(&locks(&server)).await;
    }

    #[tokio::test]
    async fn two_services_exclude_each_other() {
        let server = RedisServer::start().expect("redis-server");
        let (a, b) = (locks(&server), locks(&server));
        let held = a.try_lock("shared", TTL).await.unwrap().unwrap();
        assert!(b.try_lock("shared", TTL).await.unwrap().is_none());
        held.release().await.unwrap();
        assert!(b.try_lock("shared", TTL).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn url_endpoint_and_db() {
        let server = RedisServer::start().expect("redis-server");
        let db3 = RedisLocks::connect(&format!("{}/3", server.url()), "").unwrap();
        let db0 = RedisLocks::connect(&server.url(), "").unwrap();
        let held = db3.try_lock("k", TTL).await.unwrap().unwrap();
        // Another database is another key space.
        assert!(db0.try_lock("k", TTL).await.unwrap().is_some());
        assert!(db3.try_lock("k", TTL).await.unwrap().is_none());
        held.release().await.unwrap();
    }

    #[tokio::test]
    async fn passwords() {
        let server = RedisServer::start_with_password("s3cret").expect("redis-server");
        let addr = server.endpoint();

        let right = RedisLocks::connect(&addr, "s3cret").unwrap();
        right.check().await.expect("right password");
        assert!(right.try_lock("k", TTL).await.unwrap().is_some());

        for (endpoint, password) in [
            (addr.clone(), "wrong"),
            (addr.clone(), ""),
            (format!("redis://:wrong@{addr}"), ""),
        ] {
            let locks = RedisLocks::connect(&endpoint, password).unwrap();
            match locks.check().await {
                Err(LockError::Unauthorized { message, .. }) => {
                    assert!(!message.contains("wrong"), "password leaked: {message}")
                }
                other => panic!("{endpoint} {password:?}: expected Unauthorized, got {other:?}"),
            }
        }

        // URL forms: password in the URL, or only in the setting, or both equal.
        for (endpoint, password) in [
            (format!("redis://:s3cret@{addr}"), ""),
            (format!("redis://{addr}"), "s3cret"),
            (format!("redis://:s3cret@{addr}/0"), "s3cret"),
            (format!("redis://default:s3cret@{addr}"), ""),
        ] {
            RedisLocks::connect(&endpoint, password)
                .unwrap()
                .check()
                .await
                .unwrap_or_else(|e| panic!("{endpoint}: {e}"));
        }
    }

    #[test]
    fn differing_passwords_are_refused() {
        let err = RedisLocks::connect("redis://:pw-alpha@127.0.0.1:6379", "pw-beta").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("differs"), "{text}");
        assert!(
            !text.contains("pw-alpha") && !text.contains("pw-beta"),
            "{text}"
        );
    }

    #[test]
    fn endpoint_forms() {
        assert_eq!(
            parse_host_port("127.0.0.1:6379"),
            Some(("127.0.0.1".into(), 6379))
        );
        assert_eq!(parse_host_port("[::1]:7000"), Some(("::1".into(), 7000)));
        assert_eq!(
            parse_host_port("redis.internal:1"),
            Some(("redis.internal".into(), 1))
        );
        // An empty host is this machine, as Go dials it.
        assert_eq!(parse_host_port(":6379"), Some(("localhost".into(), 6379)));
        for bad in [
            "localhost",
            "host:",
            "host:port",
            "::1:6379",
            "host:70000",
            "[::1:5",
        ] {
            assert_eq!(parse_host_port(bad), None, "{bad}");
        }
        for bad in ["localhost", "http://host:1", "redis://:pw@[bad/0"] {
            let err = RedisLocks::connect(bad, "").unwrap_err();
            assert!(matches!(err, LockError::Service { .. }), "{bad}: {err:?}");
            assert!(!err.to_string().contains(":pw@"), "{err}");
        }
        assert!(RedisLocks::connect("rediss://cache.example:6380", "pw").is_ok());
        assert_eq!(
            redact_url("redis://user:pw@host:1/2?x#y"),
            "redis://***@host:1/2?x#y"
        );
        assert_eq!(redact_url("redis://host:1"), "redis://host:1");
    }

    /// go-redis' `ParseURL` decides what is a URL; the rest is an address.
    #[test]
    fn endpoints_are_urls_as_go_redis_reads_them() {
        let url = |s: &str| EndpointForm::Url(s.to_string());
        for (endpoint, form) in [
            ("127.0.0.1:6379", EndpointForm::Address),
            ("cache.internal:6379", EndpointForm::Address),
            ("[::1]:6379", EndpointForm::Address),
            ("localhost", EndpointForm::Address),
            ("", EndpointForm::Address),
            ("http://host:1", EndpointForm::Address),
            ("1redis://host:1", EndpointForm::Address),
            ("redis://:pw@host:1/2", url("redis://:pw@host:1/2")),
            ("REDISS://host", url("rediss://host")),
            ("unix:///run/redis.sock", url("unix:///run/redis.sock")),
            // Without `//` there is no host: go-redis' defaults.
            ("redis:/4", url("redis://localhost:6379/4")),
            (
                "rediss:/?protocol=3",
                url("rediss://localhost:6379/?protocol=3"),
            ),
            // The host `redis` (go-redis: an opaque URL, localhost).
            ("redis:6379", EndpointForm::Address),
        ] {
            assert_eq!(classify_endpoint(endpoint), form, "{endpoint:?}");
        }
        let shown = |endpoint: &str| parse_endpoint(endpoint, "").unwrap().1;
        assert_eq!(shown(""), "localhost:6379");
        assert_eq!(shown(":7000"), "localhost:7000");
        assert_eq!(shown("redis:6379"), "redis:6379");
        let (info, _) = parse_endpoint("redis:/4", "pw").unwrap();
        assert_eq!(info.redis_settings().db(), 4);
        assert_eq!(info.redis_settings().password(), Some("pw"));
    }

    #[test]
    fn tokens_differ() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a.len() >= 32);
    }

    #[tokio::test]
    async fn tls_endpoint_works_and_plain_text_to_it_fails() {
        let server = RedisServer::start_tls().unwrap();
        let locks = RedisLocks::connect(&server.tls_url(), "").unwrap();
        lease_rules(&locks).await;
        // The same port without TLS is refused, so the test above did use TLS.
        let plain = RedisLocks::connect(&server.endpoint(), "").unwrap();
        assert!(plain.check().await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unreachable_is_reported_quickly() {
        let port = fixtures::services::free_port();
        let locks = RedisLocks::connect(&format!("127.0.0.1:{port}"), "").unwrap();
        let start = Instant::now();
        let err = locks.check().await.unwrap_err();
        assert!(matches!(err, LockError::Unreachable { .. }), "{err:?}");
        assert!(locks.try_lock("k", TTL).await.is_err());
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn reconnects_after_server_restart() {
        let mut server = RedisServer::start().expect("redis-server");
        let port = server.process.addr.port();
        let locks = locks(&server);
        locks.check().await.unwrap();
        server.process.kill();
        assert!(locks.check().await.is_err());
        let _again = RedisServer::start_on_port(port).expect("restart on the same port");
        // The first command after a drop may still fail; a later one must
        // get through on a new connection.
        let mut ok = false;
        for _ in 0..5 {
            if locks.check().await.is_ok() {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(ok, "no reconnection");
    }

    #[tokio::test]
    async fn sentinel_finds_the_master() {
        let master = RedisServer::start_with_password("masterpw").expect("redis-server");
        let sentinel = RedisSentinel::start_with_passwords(
            master.process.addr.port(),
            Some("sentinelpw"),
            Some("masterpw"),
        )
        .expect("sentinel");
        let endpoints = vec![sentinel.endpoint()];
        let locks =
            RedisLocks::connect_sentinel(&endpoints, "mymaster", "sentinelpw", "", "masterpw", 2)
                .unwrap();
        assert_eq!(locks.name(), "redis-sentinel");
        lease_rules(&locks).await;

        // The lease lives on the master itself, in the chosen database.
        let direct =
            RedisLocks::connect(&format!("redis://:masterpw@{}/2", master.endpoint()), "").unwrap();
        let held = locks.try_lock("via-sentinel", TTL).await.unwrap().unwrap();
        assert!(direct
            .try_lock("via-sentinel", TTL)
            .await
            .unwrap()
            .is_none());
        held.release().await.unwrap();

        let wrong_sentinel =
            RedisLocks::connect_sentinel(&endpoints, "mymaster", "nope", "", "masterpw", 0)
                .unwrap();
        let err = wrong_sentinel.check().await.unwrap_err();
        assert!(matches!(err, LockError::Unauthorized { .. }), "{err:?}");

        let wrong_master =
            RedisLocks::connect_sentinel(&endpoints, "mymaster", "sentinelpw", "", "nope", 0)
                .unwrap();
        let err = wrong_master.check().await.unwrap_err();
        assert!(matches!(err, LockError::Unauthorized { .. }), "{err:?}");

        let unknown =
            RedisLocks::connect_sentinel(&endpoints, "other", "sentinelpw", "", "masterpw", 0)
                .unwrap();
        assert!(unknown.check().await.is_err());
    }

    #[tokio::test]
    async fn sentinel_without_passwords_and_unreachable() {
        let master = RedisServer::start().expect("redis-server");
        let sentinel = RedisSentinel::start(master.process.addr.port()).expect("sentinel");
        let dead = format!("127.0.0.1:{}", fixtures::services::free_port());
        // A dead sentinel listed first is skipped.
        let locks = RedisLocks::connect_sentinel(
            &[dead.clone(), sentinel.endpoint()],
            "mymaster",
            "",
            "",
            "",
            0,
        )
        .unwrap();
        locks
            .check()
            .await
            .expect("check through the live sentinel");
        assert!(locks.try_lock("k", TTL).await.unwrap().is_some());

        let only_dead = RedisLocks::connect_sentinel(&[dead], "mymaster", "", "", "", 0).unwrap();
        let start = Instant::now();
        let err = only_dead.check().await.unwrap_err();
        assert!(matches!(err, LockError::Unreachable { .. }), "{err:?}");
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    fn cluster_locks(cluster: &RedisCluster) -> RedisLocks {
        RedisLocks::connect_cluster(&cluster.endpoints(), "").expect("valid endpoints")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leases_on_a_cluster() {
        let cluster = RedisCluster::start().expect("redis cluster");
        let locks = cluster_locks(&cluster);
        assert_eq!(locks.name(), "redis-cluster");
        lease_rules(&locks).await;

        // Leases of many versions land on every master, each on the master
        // owning its key's slot, and another instance (seeded with one node
        // only) is excluded from every one of them.
        let other = RedisLocks::connect_cluster(&cluster.node_endpoint(2), "").unwrap();
        let keys: Vec<String> = (0..24)
            .map(|i| format!("example.com/mod{i}@v1.0.{i}"))
            .collect();
        let mut held = Vec::new();
        let mut masters = std::collections::BTreeSet::new();
        for key in &keys {
            held.push(locks.try_lock(key, TTL * 20).await.unwrap().expect(key));
            assert!(other.try_lock(key, TTL).await.unwrap().is_none(), "{key}");
            let master = cluster.master_of(key).unwrap();
            masters.insert(master);
            let stored = cluster.command(master, &["EXISTS", key]).unwrap();
            assert_eq!(stored.trim(), "1", "{key} on master {master}");
        }
        assert_eq!(masters.len(), 3, "keys spread over every master");
        for lease in held {
            lease.release().await.unwrap();
        }
        for key in &keys {
            let lease = other.try_lock(key, TTL).await.unwrap();
            lease.expect("free after release").release().await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_master_restart_loses_its_leases_and_is_followed() {
        let mut cluster = RedisCluster::start().expect("redis cluster");
        let locks = cluster_locks(&cluster);
        locks.check().await.unwrap();
        let key = "example.com/restarted@v1.0.0";
        let master = cluster.master_of(key).unwrap();
        let survivor_key = (0..)
            .map(|i| format!("example.com/other{i}@v1.0.0"))
            .find(|k| cluster.master_of(k).unwrap() != master)
            .unwrap();
        let mut on_restarted = locks.try_lock(key, TTL * 20).await.unwrap().unwrap();
        let mut on_survivor = locks
            .try_lock(&survivor_key, TTL * 20)
            .await
            .unwrap()
            .unwrap();

        // The master dies: its leases cannot be refreshed or taken...
        cluster.kill(master);
        assert!(on_restarted.refresh().await.is_err());
        // ...and comes back empty (no persistence), as one Redis would.
        cluster.restart(master).expect("restart");
        let mut refreshed = None;
        for _ in 0..50 {
            match on_restarted.refresh().await {
                Ok(extended) => {
                    refreshed = Some(extended);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        assert_eq!(refreshed, Some(false), "the lease died with the master");
        let retaken = locks
            .try_lock(key, TTL)
            .await
            .unwrap()
            .expect("granted again");
        retaken.release().await.unwrap();
        // Leases on the other masters were untouched.
        assert!(on_survivor.refresh().await.unwrap());
        assert!(locks.try_lock(&survivor_key, TTL).await.unwrap().is_none());
        on_survivor.release().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_passwords_and_unreachable_nodes() {
        let cluster = RedisCluster::start_with_password("clusterpw").expect("redis cluster");
        let seeds = cluster.endpoints();
        let url_seeds = seeds
            .split(',')
            .map(|s| format!("redis://:clusterpw@{s}"))
            .collect::<Vec<_>>()
            .join(",");
        // The password as the setting, in the URLs, or both when equal; a
        // URL and a bare host:port mixed, the URL giving the password.
        for (endpoints, password) in [
            (seeds.clone(), "clusterpw"),
            (url_seeds.clone(), ""),
            (url_seeds.clone(), "clusterpw"),
            (
                format!(
                    "{} , redis://:clusterpw@{}",
                    cluster.node_endpoint(0),
                    cluster.node_endpoint(1)
                ),
                "",
            ),
        ] {
            let locks = RedisLocks::connect_cluster(&endpoints, password).unwrap();
            locks
                .check()
                .await
                .unwrap_or_else(|e| panic!("{endpoints}: {e}"));
            let lease = locks.try_lock("k", TTL).await.unwrap().expect("free");
            lease.release().await.unwrap();
        }
        for password in ["wrong", ""] {
            let locks = RedisLocks::connect_cluster(&seeds, password).unwrap();
            match locks.check().await {
                Err(LockError::Unauthorized { message, .. }) => {
                    assert!(!message.contains("wrong"), "password leaked: {message}")
                }
                other => panic!("{password:?}: expected Unauthorized, got {other:?}"),
            }
        }

        let dead = format!("127.0.0.1:{}", fixtures::services::free_port());
        let locks = RedisLocks::connect_cluster(&dead, "").unwrap();
        let start = Instant::now();
        let err = locks.check().await.unwrap_err();
        assert!(matches!(err, LockError::Unreachable { .. }), "{err:?}");
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{:?}",
            start.elapsed()
        );
        // A dead seed listed first is skipped.
        let locks = RedisLocks::connect_cluster(&format!("{dead},{seeds}"), "clusterpw").unwrap();
        locks.check().await.expect("check through a live seed");
    }

    #[test]
    fn cluster_configuration_is_checked() {
        let ok = RedisLocks::connect_cluster(" 10.0.0.1:7000, ,[::1]:7001,redis://h:7002/0", "")
            .unwrap();
        assert_eq!(ok.shared.endpoint, "10.0.0.1:7000,[::1]:7001,h:7002");
        assert!(RedisLocks::connect_cluster("rediss://h:1,h:2", "pw").is_ok());
        for (endpoints, password, says) in [
            ("", "", "no cluster nodes"),
            (" , ", "", "no cluster nodes"),
            ("nohost", "", "neither host:port"),
            ("h:1,http://h:2", "", "neither host:port"),
            ("h:1,redis://h:bad", "", "not a redis URL"),
            ("redis://h:1/3", "", "only database 0"),
            ("redis://:pw-alpha@h:1", "pw-beta", "differs"),
            ("h:1,redis://:pw-alpha@h:2", "pw-beta", "differs"),
        ] {
            let err = RedisLocks::connect_cluster(endpoints, password).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(says), "{endpoints:?}: {text}");
            assert!(
                !text.contains("pw-alpha") && !text.contains("pw-beta"),
                "{text}"
            );
        }
    }

    #[test]
    fn sentinel_configuration_is_checked() {
        let none: Vec<String> = Vec::new();
        assert!(RedisLocks::connect_sentinel(&none, "m", "", "", "", 0).is_err());
        assert!(RedisLocks::connect_sentinel(&[" ".into()], "m", "", "", "", 0).is_err());
        assert!(RedisLocks::connect_sentinel(&["nohost".into()], "m", "", "", "", 0).is_err());
        assert!(RedisLocks::connect_sentinel(&["h:1".into()], "", "", "", "", 0).is_err());
        assert!(RedisLocks::connect_sentinel(&["h:1".into()], "m", "", "", "", 0).is_ok());
    }
}
