//! Prometheus metrics, served as `/metrics` in the Prometheus text format
//! when `StatsExporter = "prometheus"` (the default, as in Athens).
//!
//! Everything is measured by wrappers the composition root
//! ([`crate::app`]) puts around the parts it assembles, so no handler or
//! backend carries metric calls of its own:
//!
//! - [`MetricsLayer`] around the router: requests by route class and
//!   status, their latency, response bytes;
//! - [`MeteredStorage`] around the storage: reads that hit or miss per
//!   file kind;
//! - [`MeteredFetcher`] around the fetcher: fetches in flight, their
//!   duration and outcome, upstream errors;
//! - values sampled at scrape time: single-flight waits and pending
//!   stashes (read from [`CoalescingStasher`]) and the git cache's size.
//!
//! Labels take values from small fixed sets (no module paths or
//! versions), so the number of series stays bounded whatever clients ask.
//! On the request path a measurement is an atomic add (a lock-free map
//! lookup for the request counter, an uncontended lock for a histogram);
//! label values are static strings, never allocated.

mod fetch;
mod http;
mod storage;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::stash::CoalescingStasher;

pub use fetch::MeteredFetcher;
pub use http::{classify, routes, with_current_route, MetricsFuture, MetricsLayer, MetricsService};
pub use storage::MeteredStorage;

/// The `Content-Type` of the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// How long a measured git cache size is reused before it is measured
/// again: walking a large cache on every scrape would be wasteful.
const GIT_CACHE_REFRESH: Duration = Duration::from_secs(10);

/// Latency buckets of requests, in seconds: from a warm hit in memory to
/// a slow fetch.
const REQUEST_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    120.0,
];
/// Duration buckets of fetches from upstream, in seconds.
const FETCH_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0, 600.0,
];

/// Writes a label value from a fixed set.
macro_rules! label_enum {
    ($(#[doc = $doc:literal])* $name:ident { $($(#[doc = $vdoc:literal])* $variant:ident = $text:literal,)* }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[doc = $vdoc])* $variant,)*
        }

        impl $name {
            /// Every value, in index order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            fn index(self) -> usize {
                self as usize
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                std::fmt::Write::write_str(encoder, self.as_str())
            }
        }
    };
}

label_enum! {
    /// The class of a request's route: label `route`.
    Route {
        /// `/@v/VERSION.info`.
        Info = "info",
        /// `/@v/VERSION.mod`.
        Mod = "mod",
        /// `/@v/VERSION.zip`.
        Zip = "zip",
        /// `/@v/list`.
        List = "list",
        /// `/@latest`.
        Latest = "latest",
        /// The checksum database proxy, `/sumdb/...`.
        Sumdb = "sumdb",
        /// `/healthz` and `/readyz`.
        Health = "health",
        /// `/metrics`.
        Metrics = "metrics",
        /// Everything else: home page, `/version`, `/catalog`, robots,
        /// malformed paths.
        Other = "other",
    }
}

label_enum! {
    /// What a storage read was for: label `kind`.
    FileKind {
        /// A version's `.info`.
        Info = "info",
        /// A version's `go.mod`.
        Mod = "mod",
        /// A version's zip.
        Zip = "zip",
        /// The stored versions of a module, for `/@v/list`.
        List = "list",
        /// Reads made to answer `/@latest` from storage.
        Latest = "latest",
    }
}

label_enum! {
    /// The result of a storage read: label `result`.
    ReadResult {
        /// Found.
        Hit = "hit",
        /// Not stored (an empty version list counts as a miss).
        Miss = "miss",
        /// The storage failed.
        Error = "error",
    }
}

label_enum! {
    /// How a fetch from upstream ended: label `outcome`.
    FetchOutcome {
        /// Fetched.
        Ok = "ok",
        /// The module or version does not exist upstream (or lookups are
        /// off): the go command moves on to its next proxy.
        NotFound = "not_found",
        /// Any failure.
        Error = "error",
    }
}

label_enum! {
    /// The fetcher operation that failed: label `op`.
    FetchOp {
        /// Downloading a version.
        Fetch = "fetch",
        /// Listing versions.
        List = "list",
        /// Resolving `@latest`.
        Latest = "latest",
        /// Resolving a query (branch, hash, partial version).
        Query = "query",
    }
}

label_enum! {
    /// Why an upstream call failed: label `kind`.
    UpstreamErrorKind {
        /// An upstream proxy or origin could not be reached or answered
        /// with an unexpected status.
        Upstream = "upstream",
        /// An answer that is not a valid one.
        InvalidResponse = "invalid_response",
        /// The checksum database refused the download or could not vouch
        /// for it.
        Verification = "verification",
        /// Anything else (local I/O, no direct fetcher).
        Other = "other",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: Route,
    code: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabel {
    route: Route,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReadLabels {
    kind: FileKind,
    result: ReadResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: FetchOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct UpstreamErrorLabels {
    op: FetchOp,
    kind: UpstreamErrorKind,
}

/// The proxy's metrics: the registry `/metrics` encodes and handles on
/// each series, resolved once so that recording needs no lookup.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Vec<Histogram>,
    response_bytes: Vec<Counter>,
    /// Indexed by `FileKind`, then `ReadResult`.
    storage_reads: Vec<[Counter; 3]>,
    fetches_in_flight: Gauge,
    /// Indexed by `FetchOutcome`.
    fetch_duration: Vec<Histogram>,
    /// Indexed by `FetchOp`, then `UpstreamErrorKind`.
    upstream_errors: Vec<[Counter; 4]>,
    sampled: Arc<Sampled>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Values read when `/metrics` is scraped rather than counted as they
/// change.
#[derive(Default)]
struct Sampled {
    stasher: OnceLock<Arc<CoalescingStasher>>,
    git_cache_dir: Option<PathBuf>,
    git_cache_bytes: AtomicU64,
    /// When the git cache was last measured; held while measuring, so
    /// concurrent scrapes walk it once.
    git_cache_measured: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Sampled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampled")
            .field("git_cache_dir", &self.git_cache_dir)
            .finish_non_exhaustive()
    }
}

impl Collector for Sampled {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (joined, pending) = self
            .stasher
            .get()
            .map_or((0, 0), |s| (s.joined(), s.pending() as i64));
        let waits = ConstCounter::new(joined);
        waits.encode(encoder.encode_descriptor(
            "singleflight_waits",
            "Requests that waited for a fetch of the same module version already under way instead of starting one",
            None,
            waits.metric_type(),
        )?)?;
        let pending = ConstGauge::new(pending);
        pending.encode(encoder.encode_descriptor(
            "stashes_pending",
            "Distinct module versions queued for or running a fetch-and-store",
            None,
            pending.metric_type(),
        )?)?;
        if self.git_cache_dir.is_some() {
            let bytes = ConstGauge::new(self.git_cache_bytes.load(Ordering::Relaxed) as i64);
            bytes.encode(encoder.encode_descriptor(
                "git_cache_bytes",
                "Bytes of the git cache (GoGetDir/vcs), measured at most every 10 seconds",
                None,
                bytes.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

fn per_label<L, M: Clone, C>(family: &Family<L, M, C>, labels: impl Iterator<Item = L>) -> Vec<M>
where
    L: Clone + std::hash::Hash + Eq,
    C: prometheus_client::metrics::family::MetricConstructor<M>,
{
    labels.map(|l| family.get_or_create(&l).clone()).collect()
}

impl Metrics {
    /// Metrics of a proxy whose git cache lies in `git_cache_dir` (none
    /// for a proxy without the native fetcher).
    pub fn new(git_cache_dir: Option<PathBuf>) -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("athens");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route class and status code",
            requests.clone(),
        );
        let latency_family = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(REQUEST_BUCKETS)
        });
        registry.register(
            "http_request_duration_seconds",
            "Time from receiving a request to sending its response headers, by route class",
            latency_family.clone(),
        );
        let bytes_family = Family::<RouteLabel, Counter>::default();
        registry.register(
            "http_response_bytes",
            "Bytes of response bodies sent, by route class",
            bytes_family.clone(),
        );
        let reads_family = Family::<ReadLabels, Counter>::default();
        registry.register(
            "storage_reads",
            "Storage reads by file kind and result (hit, miss, error)",
            reads_family.clone(),
        );
        let fetches_in_flight = Gauge::default();
        registry.register(
            "fetches_in_flight",
            "Module version fetches from upstream running now",
            fetches_in_flight.clone(),
        );
        let fetch_family = Family::<OutcomeLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(FETCH_BUCKETS)
        });
        registry.register(
            "fetch_duration_seconds",
            "Duration of module version fetches from upstream, by outcome",
            fetch_family.clone(),
        );
        let errors_family = Family::<UpstreamErrorLabels, Counter>::default();
        registry.register(
            "upstream_errors",
            "Failed upstream calls (not counting not-found answers), by operation and kind",
            errors_family.clone(),
        );
        let sampled = Arc::new(Sampled {
            git_cache_dir,
            ..Sampled::default()
        });
        registry.register_collector(Box::new(Arc::clone(&sampled)));

        let routes = || Route::ALL.iter().map(|&route| RouteLabel { route });
        let storage_reads = FileKind::ALL
            .iter()
            .map(|&kind| {
                ReadResult::ALL
                    .iter()
                    .map(|&result| {
                        reads_family
                            .get_or_create(&ReadLabels { kind, result })
                            .clone()
                    })
                    .collect::<Vec<_>>()
                    .try_into()
                    .expect("three results")
            })
            .collect();
        let upstream_errors = FetchOp::ALL
            .iter()
            .map(|&op| {
                UpstreamErrorKind::ALL
                    .iter()
                    .map(|&kind| {
                        errors_family
                            .get_or_create(&UpstreamErrorLabels { op, kind })
                            .clone()
                    })
                    .collect::<Vec<_>>()
                    .try_into()
                    .expect("four kinds")
            })
            .collect();
        Arc::new(Metrics {
            latency: per_label(&latency_family, routes()),
            response_bytes: per_label(&bytes_family, routes()),
            storage_reads,
            fetches_in_flight,
            fetch_duration: per_label(
                &fetch_family,
                FetchOutcome::ALL
                    .iter()
                    .map(|&outcome| OutcomeLabel { outcome }),
            ),
            upstream_errors,
            requests,
            registry,
            sampled,
        })
    }

    /// Samples single-flight waits and pending stashes from `stasher`.
    pub fn observe_stasher(&self, stasher: Arc<CoalescingStasher>) {
        let _ = self.sampled.stasher.set(stasher);
    }

    fn record_request(&self, route: Route, code: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels { route, code })
            .inc();
        self.latency[route.index()].observe(elapsed.as_secs_f64());
    }

    fn response_bytes(&self, route: Route) -> &Counter {
        &self.response_bytes[route.index()]
    }

    fn record_read(&self, kind: FileKind, result: ReadResult) {
        self.storage_reads[kind.index()][result.index()].inc();
    }

    fn record_upstream_error(&self, op: FetchOp, kind: UpstreamErrorKind) {
        self.upstream_errors[op.index()][kind.index()].inc();
    }

    /// The whole exposition in the Prometheus text format, the git cache
    /// measured first when the last measurement is old.
    pub async fn render(&self) -> String {
        self.refresh_git_cache_size().await;
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    async fn refresh_git_cache_size(&self) {
        let Some(dir) = self.sampled.git_cache_dir.clone() else {
            return;
        };
        let mut measured = self.sampled.git_cache_measured.lock().await;
        if measured.is_some_and(|at| at.elapsed() < GIT_CACHE_REFRESH) {
            return;
        }
        if let Ok(bytes) = tokio::task::spawn_blocking(move || tree_bytes(&dir)).await {
            self.sampled.git_cache_bytes.store(bytes, Ordering::Relaxed);
        }
        *measured = Some(Instant::now());
    }
}

/// Bytes of the regular files under `dir`; symbolic links are not
/// followed and unreadable parts count as empty (the cache changes while
/// it is walked).
fn tree_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(items) = std::fs::read_dir(&dir) else {
            continue;
        };
        for item in items.flatten() {
            match item.file_type() {
                Ok(t) if t.is_dir() => stack.push(item.path()),
                Ok(t) if t.is_file() => total += item.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    total
}

/// Whether `StatsExporter` asks for Prometheus metrics. Athens knows no
/// other exporter any more; another value is reported and exports
/// nothing, as Athens does.
pub fn enabled(stats_exporter: &str) -> bool {
    match stats_exporter {
        "prometheus" => true,
        "" => false,
        other => {
            tracing::warn!(
                exporter = other,
                "StatsExporter {other:?} is not supported (only \"prometheus\"): no metrics are collected"
            );
            false
        }
    }
}

#[cfg(test)]
mod tests;
