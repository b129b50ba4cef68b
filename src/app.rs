//! The composition root: [`build`] turns a validated [`Config`] into the
//! parts of the running proxy, each made once, in the order they depend on
//! each other:
//!
//! 1. `GoGetDir` ([`gogetdir`]) and the one go environment
//!    ([`fetch::go_env`]), which every fetcher and the checksum-database
//!    proxy share;
//! 2. the fetchers: the native VCS fetcher as the `direct` entry of the
//!    upstream GOPROXY chain;
//! 3. storage and the lock service ([`backends`]), and the checksum
//!    database check over the chain ([`crate::sumdb_client`]);
//! 4. the stash stack: in-process coalescing over the distributed lease over the
//!    worker pool over fetch-and-save;
//! 5. the download protocol with its network mode, download policy and
//!    limits;
//! 6. the router with the optional layers ([`Features`]);
//! 7. the metrics ([`crate::metrics`], unless `StatsExporter` is empty):
//!    wrappers around the storage and the fetcher given to steps 4 and 5,
//!    `/metrics` beside the other routes and a layer around the router;
//! 8. the traces ([`crate::traces`], when `TraceExporter = "otlp"`): the
//!    same kind of wrappers, making spans, and the outermost layer.
//!
//! [`router`] is steps 4 to 6 alone, over a storage and a fetcher the caller
//! opened; [`stashing`] is steps 1 to 4 alone, for `athens prefill`. The
//! HTTP server itself ([`http::serve`]) only listens.

use std::sync::Arc;

use axum::Router;
use vcs::goenv::GoEnv;

use crate::backends::{self, Backends};
use crate::config::Config;
use crate::fetch::{self, gogetdir, Fetcher, NativeFetcher, UpstreamProxyFetcher};
use crate::http::{self, AppState, Features};
use crate::index::Indexer;
use crate::locks::DistributedLock;
use crate::metrics::{MeteredFetcher, MeteredStorage, Metrics, MetricsLayer};
use crate::protocol::{Limits, Protocol};
use crate::stash::{BaseStasher, CoalescingStasher, DistributedStasher, PooledStasher, Stasher};
use crate::storage::Storage;
use crate::traces::{TraceLayer, TracedFetcher, TracedStorage, Tracer, Traces};

/// The proxy assembled from its configuration.
pub struct App {
    /// The go environment every fetcher honours, built once.
    pub go_env: GoEnv,
    /// The native VCS fetcher: `direct` in the GOPROXY list.
    pub native: Arc<NativeFetcher>,
    /// The upstream GOPROXY chain over `native`; the stash stack and the
    /// protocol fetch through it with the checksum database check.
    pub fetcher: Arc<UpstreamProxyFetcher>,
    /// Where modules are stored.
    pub storage: Arc<dyn Storage>,
    /// The HTTP application: protocol, health endpoints, optional layers.
    pub router: Router,
    /// The trace exporter, when traces are on: shut it down after the
    /// server has stopped, so the last spans are sent.
    pub traces: Option<Traces>,
}

/// Builds the whole proxy `config` describes (see the module docs). Fails
/// with the reason when a directory, a service or a file the configuration
/// names cannot be used.
pub async fn build(config: &Config) -> anyhow::Result<App> {
    let Upstream {
        go_env,
        native,
        fetcher,
        storage,
        lock,
        verified,
        git_cache,
        index,
    } = upstream(config).await?;
    let metrics =
        crate::metrics::enabled(&config.stats_exporter).then(|| Metrics::new(Some(git_cache)));
    let traces = Traces::start(config)?;
    let router = router_with_metrics(
        config,
        &go_env,
        Arc::clone(&storage),
        verified,
        lock,
        index,
        Observers {
            metrics,
            tracer: traces.as_ref().map(Traces::tracer),
        },
    )?;
    Ok(App {
        go_env,
        native,
        fetcher,
        storage,
        router,
        traces,
    })
}

/// Steps 1 to 3 of [`build`]: the go environment, the fetchers, storage
/// and the lock service, and the chain with the checksum database check.
struct Upstream {
    go_env: GoEnv,
    native: Arc<NativeFetcher>,
    fetcher: Arc<UpstreamProxyFetcher>,
    storage: Arc<dyn Storage>,
    lock: Option<DistributedLock>,
    /// `fetcher` checked against the checksum database.
    verified: Arc<dyn Fetcher>,
    /// Where the native fetcher keeps its repositories (see NativeFetcher).
    git_cache: std::path::PathBuf,
    /// The `/index` feed's store (`IndexType`).
    index: Arc<dyn Indexer>,
}

async fn upstream(config: &Config) -> anyhow::Result<Upstream> {
    let go_get_dir = gogetdir::prepare(&config.go_get_dir).map_err(anyhow::Error::msg)?;
    let go_env = fetch::go_env::from_config(config, &go_get_dir).map_err(anyhow::Error::msg)?;
    let git_cache = go_get_dir.join("vcs");
    let native = Arc::new(
        NativeFetcher::from_config(config, &go_env, &go_get_dir).map_err(anyhow::Error::msg)?,
    );
    let direct: Arc<dyn Fetcher> = native.clone();
    let fetcher = Arc::new(
        UpstreamProxyFetcher::from_go_env(
            &go_env,
            Some(direct),
            config.timeout_duration(),
            Some(go_get_dir),
        )
        .map_err(anyhow::Error::msg)?,
    );
    let Backends { storage, lock } = backends::open(config).await?;
    // What the chain fetches is checked against the checksum database
    // before the stash may store it.
    let verified = crate::sumdb_client::verifying_fetcher(
        config,
        &go_env,
        fetcher.clone(),
        Arc::clone(&storage),
    )
    .map_err(anyhow::Error::msg)?;
    let index = crate::index::open(config).await?;
    Ok(Upstream {
        go_env,
        native,
        fetcher,
        storage,
        lock,
        verified,
        git_cache,
        index,
    })
}

/// What `athens prefill` stores through: the server's storage, upstream
/// chain, checksum database check and stash stack (with the private
/// checksum database told of what is stored), without the protocol and
/// the router.
pub struct Stashing {
    /// Where modules are stored.
    pub storage: Arc<dyn Storage>,
    /// The upstream chain checked against the checksum database, for
    /// listings and queries.
    pub fetcher: Arc<dyn Fetcher>,
    /// The stash stack over `fetcher` as `check` wrapped it.
    pub stasher: Arc<dyn Stasher>,
}

/// Builds the parts [`Stashing`] names from `config`; `check` wraps the
/// verified chain before the stash stack takes it, so that a fetched
/// version can be refused before it is stored.
pub async fn stashing(
    config: &Config,
    check: impl FnOnce(Arc<dyn Fetcher>) -> Arc<dyn Fetcher>,
) -> anyhow::Result<Stashing> {
    let Upstream {
        go_env,
        storage,
        lock,
        verified,
        index,
        ..
    } = upstream(config).await?;
    let private_log = crate::sumdb_log::from_config(
        config,
        &go_env,
        &storage,
        lock.as_ref().map(|l| Arc::clone(&l.service)),
    )?;
    let stasher = stash_stack(
        config,
        check(Arc::clone(&verified)),
        Arc::clone(&storage),
        lock,
        private_log,
        index,
    );
    Ok(Stashing {
        storage,
        fetcher: verified,
        stasher,
    })
}

/// The stash stack, protocol and router over `storage` and `fetcher`, with
/// the optional layers `config` asks for (checksum lookups of the go
/// environment's private modules refused). Fails when a setting or a file
/// it names (download mode file, filter file) is malformed. What the stash
/// stores is recorded in `index`, which `/index` serves.
pub fn router(
    config: &Config,
    go_env: &GoEnv,
    storage: Arc<dyn Storage>,
    fetcher: Arc<dyn Fetcher>,
    lock: Option<DistributedLock>,
    index: Arc<dyn Indexer>,
) -> anyhow::Result<Router> {
    let metrics = crate::metrics::enabled(&config.stats_exporter).then(|| Metrics::new(None));
    let observers = Observers {
        metrics,
        tracer: None,
    };
    router_with_metrics(config, go_env, storage, fetcher, lock, index, observers)
}

/// What watches the router: the metrics and the tracer, each optional.
struct Observers {
    metrics: Option<Arc<Metrics>>,
    tracer: Option<Tracer>,
}

/// [`router`], measured into `metrics` when given: the storage and the
/// fetcher wrapped to count reads and fetches, the stash stack's
/// single-flight sampled, `/metrics` served, and every request counted
/// by the outermost layer; and traced by `tracer` when given: the same
/// parts wrapped to make spans, and a span per request.
fn router_with_metrics(
    config: &Config,
    go_env: &GoEnv,
    storage: Arc<dyn Storage>,
    fetcher: Arc<dyn Fetcher>,
    lock: Option<DistributedLock>,
    index: Arc<dyn Indexer>,
    Observers { metrics, tracer }: Observers,
) -> anyhow::Result<Router> {
    let (storage, fetcher) = match &tracer {
        Some(t) => (
            Arc::new(TracedStorage::new(storage, t.clone())) as Arc<dyn Storage>,
            Arc::new(TracedFetcher::new(fetcher, t.clone())) as Arc<dyn Fetcher>,
        ),
        None => (storage, fetcher),
    };
    let (storage, fetcher) = match &metrics {
        Some(m) => (
            Arc::new(MeteredStorage::new(storage, Arc::clone(m))) as Arc<dyn Storage>,
            Arc::new(MeteredFetcher::new(fetcher, Arc::clone(m))) as Arc<dyn Fetcher>,
        ),
        None => (storage, fetcher),
    };
    let mut features = Features::from_config(config, go_env)?;
    features.index = Arc::clone(&index);
    let private_log = crate::sumdb_log::from_config(
        config,
        go_env,
        &storage,
        lock.as_ref().map(|l| Arc::clone(&l.service)),
    )?;
    features.private_log = private_log.clone();
    let stasher = stash_stack(
        config,
        Arc::clone(&fetcher),
        Arc::clone(&storage),
        lock,
        private_log,
        index,
    );
    let extra_routes = match &metrics {
        Some(m) => {
            m.observe_stasher(Arc::clone(&stasher));
            crate::metrics::routes(Arc::clone(m))
        }
        None => Router::new(),
    };
    let protocol = Protocol::new(storage, stasher, fetcher, config.network_mode())
        .with_download_policy(features.download_policy.clone())
        .with_limits(Limits::from_config(config));
    let router = http::router_with_routes(
        AppState::with_protocol(protocol),
        &config.path_prefix,
        features,
        extra_routes,
    );
    let router = match metrics {
        Some(m) => router.layer(MetricsLayer::new(m, &config.path_prefix)),
        None => router,
    };
    Ok(match tracer {
        Some(t) => router.layer(TraceLayer::new(t, &config.path_prefix)),
        None => router,
    })
}

/// Fetch-and-save, outermost first: in-process coalescing with at most
/// `MaxPendingFetches` pending, then the distributed lease when a lock
/// service is configured (so instances sharing `storage` fetch each version
/// once), then a pool of `GoGetWorkers`, then the fetch and the save
/// (bounded by `StashTimeout`), which records the version's sums and tells
/// the private checksum database, and records it in the `/index` feed.
fn stash_stack(
    config: &Config,
    fetcher: Arc<dyn Fetcher>,
    storage: Arc<dyn Storage>,
    lock: Option<DistributedLock>,
    private_log: Option<Arc<crate::sumdb_log::PrivateLog>>,
    index: Arc<dyn Indexer>,
) -> Arc<CoalescingStasher> {
    let mut base = BaseStasher::new(
        fetcher,
        Arc::clone(&storage),
        config.stash_timeout_duration(),
    );
    // Private versions are appended to our own checksum database once stored.
    if let Some(log) = private_log {
        base = base.with_observer(log);
    }
    let base = Arc::new(base.with_indexer(index));
    let pooled: Arc<dyn Stasher> = Arc::new(PooledStasher::new(base, config.go_get_workers));
    let locked: Arc<dyn Stasher> = match lock {
        Some(DistributedLock { service, policy }) => {
            Arc::new(DistributedStasher::new(pooled, service, storage, policy))
        }
        None => pooled,
    };
    Arc::new(CoalescingStasher::with_max_pending(
        locked,
        config.max_pending_fetches,
    ))
}

/// Helpers for tests elsewhere in the crate that need the configured
/// application over fakes.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// The go environment `config` describes, with a throw-away `GoGetDir`.
    pub(crate) fn go_env(config: &Config) -> GoEnv {
        let dir = tempfile::tempdir().unwrap();
        fetch::go_env::from_config(config, dir.path()).unwrap()
    }

    /// [`router`](super::router) without a lock service, over the go
    /// environment `config` describes, with a memory index when `config`
    /// asks for one (none otherwise).
    pub(crate) fn router(
        config: &Config,
        storage: Arc<dyn Storage>,
        fetcher: Arc<dyn Fetcher>,
    ) -> anyhow::Result<Router> {
        let index: Arc<dyn Indexer> = match config.index_type.as_str() {
            "memory" => Arc::new(crate::index::memory::MemoryIndex::new()),
            _ => Arc::new(crate::index::NoIndex),
        };
        super::router(config, &go_env(config), storage, fetcher, None, index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EnvList;
    use tower::ServiceExt;

    fn config_in(dir: &std::path::Path) -> Config {
        Config {
            go_get_dir: dir.join("goget").display().to_string(),
            go_binary_env_vars: EnvList(vec![
                "GOPROXY=https://proxy.example|direct".into(),
                "GOPRIVATE=corp.example".into(),
            ]),
            ..Config::default()
        }
    }

    /// Every part that honours the go environment holds the one built at
    /// start-up, not an equal copy.
    #[tokio::test]
    async fn fetchers_share_the_one_go_environment() {
        let dir = tempfile::tempdir().unwrap();
        let app = build(&config_in(dir.path())).await.unwrap();
        assert!(app.native.go_env().same_as(&app.go_env));
        assert!(app.fetcher.go_env().unwrap().same_as(&app.go_env));
        // The chain walks the environment's GOPROXY, GONOPROXY first.
        assert_eq!(
            app.fetcher.entries(),
            app.go_env.proxy_list().entries(),
            "{:?}",
            app.fetcher.entries()
        );
        assert_eq!(app.go_env.gonoproxy(), "corp.example");
        // The native fetcher keeps its repositories in the prepared GoGetDir.
        assert!(dir.path().join("goget").join("vcs").is_dir());
    }

    #[tokio::test]
    async fn the_built_router_serves_from_the_built_storage() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(dir.path());
        config.path_prefix = "/proxy".into();
        let app = build(&config).await.unwrap();
        let get = |uri: &str| {
            let request = axum::http::Request::get(uri)
                .body(axum::body::Body::empty())
                .unwrap();
            app.router.clone().oneshot(request)
        };
        assert_eq!(get("/proxy/healthz").await.unwrap().status(), 200);
        // The prefix is honoured: the root answers for load balancers.
        assert_eq!(get("/").await.unwrap().status(), 200);
        assert_eq!(get("/proxy/readyz").await.unwrap().status(), 200);
        // A private module's checksum lookup is refused (GOPRIVATE of the
        // one go environment).
        let lookup = get("/proxy/sumdb/sum.golang.org/lookup/corp.example/m@v1.0.0")
            .await
            .unwrap();
        assert_eq!(lookup.status(), 403);
    }

    /// What the start-up refuses stops `build` with the reason.
    #[tokio::test]
    async fn unusable_settings_stop_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(dir.path());
        config.go_binary_env_vars = EnvList(vec!["GOPROXY=ftp://nope".into()]);
        let err = format!("{:#}", build(&config).await.err().unwrap());
        assert!(err.contains("GoBinaryEnvVars"), "{err}");

        let mut config = config_in(dir.path());
        config.filter_file = dir.path().join("missing.conf").display().to_string();
        assert!(build(&config).await.is_err());
    }
}
