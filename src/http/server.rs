//! Starting and stopping the server.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use axum::http::{Request, Response};
use axum::Router;
use futures::task::AtomicWaker;
use futures::FutureExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

use super::log_sink::{LogGuard, LogSink};
use crate::config::Config;

/// Installs the global tracing subscriber from `LogLevel` and `LogFormat`,
/// or Athens' JSON for Cloud Logging when `CloudRuntime` is `GCP`
/// (`RUST_LOG`, when set, overrides the level). Logs go to stderr through
/// a [`LogSink`]: `info` and `debug` lines (one per request) are written by
/// a background thread, so requests never wait for stderr; keep the
/// returned guard until the process ends, since dropping it writes what is
/// left. Fails if a subscriber is already installed.
pub fn init_logging(config: &Config) -> anyhow::Result<LogGuard> {
    let level = match config.log_level.to_ascii_lowercase().as_str() {
        "panic" | "fatal" | "error" => "error",
        "warn" | "warning" => "warn",
        "info" => "info",
        "trace" => "trace",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colour codes only help a human at a terminal; in files and log
    // collectors they are noise around every field.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (sink, guard) = LogSink::stderr().context("starting the log writer")?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink)
        .with_ansi(ansi);
    let installed = if config.cloud_runtime == super::gcp_log::GCP_RUNTIME {
        // Athens' GCP format, whatever LogFormat says.
        builder.event_format(super::gcp_log::GcpFormat).try_init()
    } else if config.log_format == "json" {
        builder.json().try_init()
    } else {
        // The default format's bytes, written faster (one line per request).
        builder
            .event_format(super::log_format::PlainFormat::default())
            .try_init()
    };
    installed.map_err(|e| anyhow::anyhow!("installing log subscriber: {e}"))?;
    Ok(guard)
}

/// Resolves when the process receives SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// Connection handling of the HTTP server: how long clients may take and
/// how many may be connected at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// After a shutdown signal: how long in-flight requests get to finish
    /// before their connections are dropped (`ShutdownTimeout`).
    pub grace: Duration,
    /// Time a client has to send a request's headers, from the
    /// connection's start or from the first byte of a later request
    /// (`ReadHeaderTimeout`).
    pub read_header_timeout: Duration,
    /// How long an idle keep-alive connection stays open (`IdleTimeout`).
    pub idle_timeout: Duration,
    /// Most connections served at once (`MaxConnections`); the accept
    /// loop waits for one to close before it accepts another.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// The limits `config` sets.
    pub fn from_config(config: &Config) -> Self {
        ConnectionLimits {
            grace: config.shutdown_timeout_duration(),
            read_header_timeout: config.read_header_timeout_duration(),
            idle_timeout: config.idle_timeout_duration(),
            max_connections: config.max_connections,
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self::from_config(&Config::default())
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops
/// accepting connections and gives in-flight requests up to `grace` to
/// finish before dropping them. Other connection limits are the defaults.
pub async fn serve_listener<L>(
    listener: L,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug + Clone + Sync,
{
    let limits = ConnectionLimits {
        grace,
        ..ConnectionLimits::default()
    };
    serve_listener_with(listener, app, shutdown, limits).await
}

/// [`serve_listener`] with explicit connection limits: HTTP/1.1 through
/// hyper, each connection watched by `Watchdog` for slow headers and
/// idleness, at most `max_connections` at once. On `shutdown` the
/// listener is closed, idle connections close at once, busy ones after
/// their response, and whatever is still open after `grace` is dropped.
pub async fn serve_listener_with<L>(
    mut listener: L,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ConnectionLimits,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug + Clone + Sync + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    // The watchdog applies our own header and idle deadlines; hyper's
    // header timer would also run while a keep-alive connection is idle.
    http.header_read_timeout(None);
    let http = Arc::new(http);
    let mut connections = JoinSet::new();
    let shutdown = shutdown.fuse();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            // Never closed.
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (io, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        // Finished connections are reaped here, so the set holds only
        // live ones.
        while connections.try_join_next().is_some() {}
        // The peer address reaches handlers as axum's `ConnectInfo`
        // (`TrustedProxies` is judged by it).
        let mut peer_info = axum::http::Extensions::new();
        peer_info.insert(axum::extract::ConnectInfo(peer));
        connections.spawn(serve_connection(
            io,
            app.clone(),
            peer_info,
            Arc::clone(&http),
            limits,
            stop_rx.clone(),
            slot,
        ));
    }
    drop(listener);
    tracing::info!(
        connections = connections.len(),
        "no longer accepting connections; finishing in-flight requests"
    );
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            seconds = limits.grace.as_secs(),
            connections = connections.len(),
            "shutdown timeout reached; dropping open connections"
        );
        connections.abort_all();
    }
    Ok(())
}

/// Serves one connection until the client closes it, a deadline of the
/// [`Watchdog`] passes, or shutdown asks it to finish.
async fn serve_connection<I>(
    io: I,
    app: Router,
    peer_info: axum::http::Extensions,
    http: Arc<hyper::server::conn::http1::Builder>,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let io = TokioIo::new(Watchdog::new(io, Arc::clone(&activity), limits));
    let conn = http.serve_connection(
        io,
        ConnService {
            app,
            activity,
            peer_info,
        },
    );
    tokio::pin!(conn);
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                // A closed channel also means the server is going away.
                let _ = changed;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Requests of one connection that have started and whose response has
/// not been sent completely. Shared by the connection's service (which
/// counts) and its [`Watchdog`] (which only applies client deadlines while
/// none is in progress).
#[derive(Default)]
struct Activity {
    busy: AtomicUsize,
    /// Requests started on the connection so far.
    started: AtomicUsize,
    /// The connection task's last pending read, woken when the last busy
    /// request ends: hyper does not read again by itself until the client
    /// sends something, and the idle deadline has to be armed.
    reader: AtomicWaker,
}

/// Marks one request of a connection as in progress until dropped, which
/// hyper does once the response body is written (or the connection dies).
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.started.fetch_add(1, Ordering::Relaxed);
        activity.busy.fetch_add(1, Ordering::Release);
        Busy(Arc::clone(activity))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.reader.wake();
        }
    }
}

/// The router as a hyper service for one connection, marking each request
/// busy until its response body is finished.
struct ConnService {
    app: Router,
    activity: Arc<Activity>,
    /// Added to every request: the peer's `ConnectInfo`.
    peer_info: axum::http::Extensions,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = TrackedResponse;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        let busy = Busy::new(&self.activity);
        request.extensions_mut().extend(self.peer_info.clone());
        // The router is always ready; cloning it is a reference count.
        let mut app = self.app.clone();
        TrackedResponse {
            inner: tower::Service::call(&mut app, request.map(Body::new)),
            busy: Some(busy),
        }
    }
}

/// The router's response future, whose body keeps the request busy.
struct TrackedResponse {
    inner: <Router as tower::Service<Request<Body>>>::Future,
    busy: Option<Busy>,
}

impl Future for TrackedResponse {
    type Output = Result<Response<TrackedBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = match Pin::new(&mut self.inner).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(response)) => response,
            Poll::Ready(Err(never)) => match never {},
        };
        let busy = self.busy.take();
        Poll::Ready(Ok(response.map(|body| TrackedBody { body, _busy: busy })))
    }
}

/// A response body that marks its request busy until it is dropped.
struct TrackedBody {
    body: Body,
    _busy: Option<Busy>,
}

impl hyper::body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Where a connection is in its request cycle, as far as deadlines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request's headers: `read_header_timeout` from the
    /// connection's start or from the request's first byte.
    Head,
    /// A request is being answered: no client deadline (a slow fetch is
    /// the server's business; hyper still reads to notice a hang-up).
    Busy,
    /// Between requests: `idle_timeout` from the end of the last response.
    Idle,
}

/// The connection's stream with the client's deadlines: closes the
/// connection (by failing a read) when the headers of a request take
/// longer than `read_header_timeout`, or when it sits idle longer than
/// `idle_timeout`. The timer is only touched when the phase changes
/// (twice per request), not on every read.
struct Watchdog<I> {
    io: I,
    activity: Arc<Activity>,
    phase: Phase,
    /// `Activity::started` when the phase was last set.
    seen: usize,
    deadline: Instant,
    timer: Pin<Box<Sleep>>,
    read_header_timeout: Duration,
    idle_timeout: Duration,
}

impl<I> Watchdog<I> {
    fn new(io: I, activity: Arc<Activity>, limits: ConnectionLimits) -> Self {
        let deadline = Instant::now() + limits.read_header_timeout;
        Watchdog {
            io,
            activity,
            phase: Phase::Head,
            seen: 0,
            deadline,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            read_header_timeout: limits.read_header_timeout,
            idle_timeout: limits.idle_timeout,
        }
    }

    fn busy(&self) -> bool {
        self.activity.busy.load(Ordering::Acquire) > 0
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watchdog<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                // The first bytes after a finished request start the next
                // request's header clock.
                if buf.filled().len() > before && !this.busy() {
                    let started = this.activity.started.load(Ordering::Acquire);
                    if this.phase != Phase::Head || started != this.seen {
                        this.phase = Phase::Head;
                        this.seen = started;
                        this.deadline = Instant::now() + this.read_header_timeout;
                    }
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        this.activity.reader.register(cx.waker());
        if this.busy() {
            this.phase = Phase::Busy;
            return Poll::Pending;
        }
        // A request has been answered since the clock was last set (hyper
        // may answer a fast one without reading in between): idle now.
        let started = this.activity.started.load(Ordering::Acquire);
        if this.phase == Phase::Busy || started != this.seen {
            this.phase = Phase::Idle;
            this.seen = started;
            this.deadline = Instant::now() + this.idle_timeout;
        }
        if this.timer.deadline() != this.deadline {
            this.timer.as_mut().reset(this.deadline);
        }
        if this.timer.as_mut().poll(cx).is_ready() {
            let what = match this.phase {
                Phase::Idle => "idle keep-alive connection closed (IdleTimeout)",
                _ => "request headers not received in time (ReadHeaderTimeout)",
            };
            tracing::debug!("{what}");
            return Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, what)));
        }
        Poll::Pending
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watchdog<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The port of a `Port` setting that names no host (`3000` or `:3000`):
/// Go listens on every address of both IP versions then.
fn all_interfaces_port(port: &str) -> Option<u16> {
    port.strip_prefix(':').unwrap_or(port).parse().ok()
}

/// Listens as Go's `net.Listen("tcp", Port)` does: a `Port` without a host
/// gets one dual-stack IPv6 socket (`[::]`, IPv4 clients arrive as mapped
/// addresses), or IPv4 only on a machine without IPv6; anything else binds
/// `addr` as given.
async fn bind_tcp(port: &str, addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    if let Some(number) = all_interfaces_port(port) {
        match bind_dual_stack(number) {
            Ok(listener) => return Ok(listener),
            // No IPv6 here: IPv4 alone, as Go falls back.
            Err(e) if is_missing_ipv6(&e) => {
                tracing::debug!(error = %e, "no IPv6; listening on IPv4 only");
            }
            Err(e) => return Err(e),
        }
    }
    tokio::net::TcpListener::bind(addr).await
}

/// Listens on an address in Athens' port notation (`:3001`, `3001` or
/// `HOST:PORT`) the way `Port` is listened on.
pub async fn bind_port(port: &str) -> std::io::Result<tokio::net::TcpListener> {
    let addr = match all_interfaces_port(port) {
        Some(number) => format!("0.0.0.0:{number}"),
        None => port.to_string(),
    };
    bind_tcp(port, &addr).await
}

/// Whether creating or binding an IPv6 socket failed because the machine
/// has no IPv6.
fn is_missing_ipv6(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(
            e.raw_os_error(),
            Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL)
        )
    }
    #[cfg(not(unix))]
    {
        e.kind() == std::io::ErrorKind::AddrNotAvailable
    }
}

/// An IPv6 listener on every address that also accepts IPv4 (whatever the
/// system's `bindv6only` default), with the address reuse tokio's `bind`
/// sets.
fn bind_dual_stack(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Protocol as IpProtocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(IpProtocol::TCP))?;
    socket.set_only_v6(false)?;
    socket.set_reuse_address(true)?;
    let addr = std::net::SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(socket.into())
}

/// Serves `app` (see [`crate::app`]) on `UnixSocket` or `Port` (over TLS
/// when `TLSCertFile` and `TLSKeyFile` are set) with the connection limits
/// of `config`, and returns after a graceful shutdown on SIGTERM/Ctrl-C.
pub async fn serve(config: &Config, app: Router) -> anyhow::Result<()> {
    let limits = ConnectionLimits::from_config(config);
    let acceptor = if config.tls_enabled() {
        Some(super::tls::load_acceptor(
            std::path::Path::new(&config.tls_cert_file),
            std::path::Path::new(&config.tls_key_file),
        )?)
    } else {
        None
    };
    if !config.unix_socket.is_empty() {
        #[cfg(unix)]
        {
            let listener = tokio::net::UnixListener::bind(&config.unix_socket)
                .with_context(|| format!("listening on unix socket {}", config.unix_socket))?;
            match acceptor {
                // TLS on the socket too, as Athens' ServeTLS does.
                Some(acceptor) => {
                    tracing::info!(socket = %config.unix_socket, "listening (TLS)");
                    let listener = super::tls::TlsListener::with_limit(
                        listener,
                        acceptor,
                        limits.max_connections,
                    )?;
                    serve_listener_with(listener, app, shutdown_signal(), limits).await?;
                }
                None => {
                    tracing::info!(socket = %config.unix_socket, "listening");
                    serve_listener_with(listener, app, shutdown_signal(), limits).await?;
                }
            }
            return Ok(());
        }
        #[cfg(not(unix))]
        anyhow::bail!("UnixSocket is only supported on Unix systems");
    }
    let addr = config.listen_addr();
    let listener = bind_tcp(&config.port, &addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let addr = listener.local_addr().map_or(addr, |a| a.to_string());
    match acceptor {
        Some(acceptor) => {
            tracing::info!(address = %addr, "listening (TLS)");
            let listener =
                super::tls::TlsListener::with_limit(listener, acceptor, limits.max_connections)?;
            serve_listener_with(listener, app, shutdown_signal(), limits).await?;
        }
        None => {
            tracing::info!(address = %addr, "listening");
            serve_listener_with(listener, app, shutdown_signal(), limits).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_port_without_host_means_every_interface() {
        assert_eq!(all_interfaces_port(":3000"), Some(3000));
        assert_eq!(all_interfaces_port("3000"), Some(3000));
        for port in ["127.0.0.1:3000", "[::1]:3000", "0.0.0.0:3000", ":x", ""] {
            assert_eq!(all_interfaces_port(port), None, "{port}");
        }
    }

    /// Whether the machine can bind IPv6 loopback at all.
    fn has_ipv6() -> bool {
        std::net::TcpListener::bind("[::1]:0").is_ok()
    }

    #[tokio::test]
    async fn a_bare_port_accepts_ipv4_and_ipv6_clients() {
        let listener = bind_tcp(":0", "0.0.0.0:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut targets = vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))];
        if has_ipv6() {
            assert!(listener.local_addr().unwrap().is_ipv6());
            targets.push(std::net::SocketAddr::from((
                std::net::Ipv6Addr::LOCALHOST,
                port,
            )));
        }
        for target in targets {
            let connect = tokio::net::TcpStream::connect(target);
            let (client, accepted) = tokio::join!(connect, listener.accept());
            client.unwrap_or_else(|e| panic!("connecting to {target}: {e}"));
            accepted.unwrap();
        }
    }

    #[tokio::test]
    async fn a_host_and_port_binds_only_that_address() {
        let listener = bind_tcp("127.0.0.1:0", "127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // An IPv4 socket: IPv6 clients cannot reach it.
        assert!(addr.is_ipv4(), "{addr}");
    }
}
