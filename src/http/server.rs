//! Starting and stopping the server.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::Router;

use super::try_build_router_with;
use crate::config::Config;
use crate::fetch::Fetcher;

/// Whether HTTPS is configured: like Athens, only when both the
/// certificate and the key file are set.
pub fn tls_enabled(config: &Config) -> bool {
    !config.tls_cert_file.is_empty() && !config.tls_key_file.is_empty()
}

/// Refuses settings that ask for behaviour this server does not have yet
/// where ignoring them would be unsafe (open access, wrong download
/// policy, plain HTTP instead of TLS); returns warnings for settings that
/// are merely ignored.
pub fn check_supported(config: &Config) -> anyhow::Result<Vec<String>> {
    let mut refused: Vec<String> = Vec::new();
    if config.single_flight_type == "redis" && config.single_flight.redis.cluster {
        refused.push("SingleFlight.Redis.Cluster (Redis Cluster is not supported; use one Redis or Sentinel)".into());
    }
    if config.storage_type == "mongo" {
        refused.push("StorageType \"mongo\" (not supported)".into());
    }
    if tls_enabled(config) && !config.unix_socket.is_empty() {
        refused.push("TLSCertFile/TLSKeyFile with UnixSocket (TLS is served on TCP only)".into());
    }
    if !refused.is_empty() {
        bail!("unsupported settings: {}", refused.join("; "));
    }
    let mut warnings = Vec::new();
    if !matches!(config.index_type.as_str(), "" | "none") {
        warnings.push(format!(
            "IndexType {:?} is ignored (no index is kept)",
            config.index_type
        ));
    }
    if config.enable_pprof {
        warnings.push("EnablePprof is ignored".into());
    }
    Ok(warnings)
}

/// Installs the global tracing subscriber from `LogLevel` and `LogFormat`
/// (`RUST_LOG`, when set, overrides the level). Logs go to stderr. Fails if
/// a subscriber is already installed.
pub fn init_logging(config: &Config) -> anyhow::Result<()> {
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let installed = if config.log_format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    installed.map_err(|e| anyhow::anyhow!("installing log subscriber: {e}"))
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

/// Serves `app` on `listener` until `shutdown` resolves, then stops
/// accepting connections and gives in-flight requests up to `grace` to
/// finish before dropping them. Each request carries its peer address as
/// `ConnectInfo<L::Addr>` (`TrustedProxies` is judged by it).
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
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    // A no-op tap gives every listener axum's connect-info support.
    let listener = axum::serve::ListenerExt::tap_io(listener, |_| {});
    let app = app.into_make_service_with_connect_info::<L::Addr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = signalled_tx.send(());
    });
    let mut task = tokio::spawn(async move { server.await });
    tokio::select! {
        finished = &mut task => {
            return finished.unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        }
        _ = signalled_rx => {}
    }
    match tokio::time::timeout(grace, &mut task).await {
        Ok(finished) => finished.unwrap_or_else(|e| Err(std::io::Error::other(e.to_string()))),
        Err(_) => {
            tracing::warn!(
                seconds = grace.as_secs(),
                "shutdown timeout reached; dropping open connections"
            );
            task.abort();
            Ok(())
        }
    }
}

/// Runs the proxy: opens storage, builds the stash stack and router from
/// `config`, listens on `UnixSocket` or `Port`, and returns after a
/// graceful shutdown on SIGTERM/Ctrl-C.
pub async fn serve(config: Config, fetcher: Arc<dyn Fetcher>) -> anyhow::Result<()> {
    for warning in check_supported(&config)? {
        tracing::warn!("{warning}");
    }
    let backends = crate::backends::open(&config).await?;
    let app = try_build_router_with(&config, backends.storage, fetcher, backends.single_flight)?;
    let grace = config.shutdown_timeout_duration();
    if !config.unix_socket.is_empty() {
        #[cfg(unix)]
        {
            let listener = tokio::net::UnixListener::bind(&config.unix_socket)
                .with_context(|| format!("listening on unix socket {}", config.unix_socket))?;
            tracing::info!(socket = %config.unix_socket, "listening");
            serve_listener(listener, app, shutdown_signal(), grace).await?;
            return Ok(());
        }
        #[cfg(not(unix))]
        bail!("UnixSocket is only supported on Unix systems");
    }
    let addr = config.listen_addr();
    let acceptor = if tls_enabled(&config) {
        Some(super::tls::load_acceptor(
            std::path::Path::new(&config.tls_cert_file),
            std::path::Path::new(&config.tls_key_file),
        )?)
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    match acceptor {
        Some(acceptor) => {
            tracing::info!(address = %addr, "listening (TLS)");
            let listener = super::tls::TlsListener::new(listener, acceptor)?;
            serve_listener(listener, app, shutdown_signal(), grace).await?;
        }
        None => {
            tracing::info!(address = %addr, "listening");
            serve_listener(listener, app, shutdown_signal(), grace).await?;
        }
    }
    Ok(())
}
