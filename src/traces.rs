//! OpenTelemetry traces, exported over OTLP when `TraceExporter = "otlp"`
//! (off by default, as in Athens).
//!
//! The transport is OTLP over gRPC, as Athens' exporter speaks it: the
//! default `TraceExporterURL`, `http://localhost:4317`, is the collector's
//! gRPC port, so a configuration written for Athens reaches the same
//! collector. `https://` URLs use TLS (rustls, the system's roots). With
//! an empty URL the standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` /
//! `OTEL_EXPORTER_OTLP_ENDPOINT` variables apply, as in Athens.
//!
//! As in the metrics ([`crate::metrics`]), spans come from wrappers the
//! composition root puts around what it assembles: [`TraceLayer`] makes
//! one server span per request (continuing a W3C `traceparent` the client
//! sent), [`TracedStorage`] and [`TracedFetcher`] one child span per
//! storage call and per upstream fetch. Attributes carry the route class,
//! method, path, status, module and version: never headers, query strings
//! or anything else that may hold credentials.
//!
//! A collector that is down, refuses or hangs never holds a request back:
//! a finished span is handed to the SDK's batch processor with a
//! non-blocking send into a bounded queue ([`QUEUE_SIZE`], spans beyond it
//! are dropped), and its own thread exports batches, each attempt bounded
//! by the exporter's timeout (10 s unless `OTEL_EXPORTER_OTLP_TIMEOUT`
//! says otherwise). At shutdown what is queued gets [`SHUTDOWN_TIMEOUT`]
//! to reach the collector. The standard `OTEL_BSP_*` variables tune the
//! batching.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use opentelemetry::context::{FutureExt as _, WithContext};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{
    SpanKind, SpanRef, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, SpanData,
    SpanExporter,
};
use opentelemetry_sdk::Resource;
use tokio::io::AsyncRead;

use crate::config::Config;
use crate::fetch::{FetchError, FetchedModule, Fetcher, RevInfo};
use crate::storage::{CatalogPage, SideKey, Storage, StorageError, StoredZip};

/// The `TraceExporter` value that turns traces on.
pub const OTLP: &str = "otlp";

/// The `service.name` of the spans: Athens' own (its `Service` constant),
/// so that dashboards built for Athens find ours.
pub const SERVICE_NAME: &str = "proxy";

/// Finished spans waiting for export at most; more are dropped rather
/// than held in memory or waited for. The SDK's default, written out
/// because the guarantee above rests on it.
pub const QUEUE_SIZE: usize = 2048;

/// How long shutdown waits for the last spans to be exported (Athens
/// waits as long).
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether `trace_exporter` asks for traces (Athens compares exactly).
pub fn enabled(trace_exporter: &str) -> bool {
    trace_exporter == OTLP
}

/// Checks `TraceExporterURL` as the exporter will read it: empty (the
/// `OTEL_EXPORTER_OTLP_*` variables decide) or an `http://` / `https://`
/// URL with a host.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Ok(());
    }
    let uri: axum::http::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("{url:?} must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{url:?} names no host"));
    }
    Ok(())
}

/// The sampler Athens uses: every trace when `GoEnv` is `development`,
/// otherwise a `fraction` of root traces (0 none, 1 all), and spans whose
/// parent came with the request follow the parent's decision.
pub fn sampler(go_env: &str, fraction: f64) -> Sampler {
    if go_env == "development" {
        return Sampler::AlwaysOn;
    }
    Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(fraction)))
}

/// The running trace pipeline: the tracer the wrappers start spans with,
/// and the provider whose batch processor exports them.
pub struct Traces {
    provider: SdkTracerProvider,
    tracer: Tracer,
}

/// What the wrappers start spans with; cheap to clone.
#[derive(Clone)]
pub struct Tracer(Arc<SdkTracer>);

impl Traces {
    /// Starts exporting as `config` says, or `None` when `TraceExporter`
    /// is not `otlp`. Must run inside the tokio runtime that will carry
    /// the gRPC connection. Fails when the exporter cannot be built from
    /// the URL.
    pub fn start(config: &Config) -> anyhow::Result<Option<Traces>> {
        if !enabled(&config.trace_exporter) {
            return Ok(None);
        }
        let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
        let url = config.trace_exporter_url.as_str();
        if !url.is_empty() {
            builder = builder.with_endpoint(url);
        }
        if url.starts_with("https://") {
            let tls = opentelemetry_otlp::tonic_types::transport::ClientTlsConfig::new()
                .with_native_roots();
            builder = builder.with_tls_config(tls);
        }
        let exporter = builder
            .build()
            .map_err(|e| anyhow::anyhow!("TraceExporterURL {url:?}: {e}"))?;
        let batching = BatchConfigBuilder::default()
            .with_max_queue_size(QUEUE_SIZE)
            .build();
        let exporter = ReportingExporter {
            inner: exporter,
            failing: AtomicBool::new(false),
        };
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(batching)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(sampler(&config.go_env, config.trace_sampling_fraction))
            .with_resource(Resource::builder().with_service_name(SERVICE_NAME).build())
            .build();
        let tracer = Tracer(Arc::new(provider.tracer("github.com/gomods/athens")));
        tracing::info!(
            url = %if url.is_empty() { "(from OTEL_EXPORTER_OTLP_*)" } else { url },
            "exporting traces over OTLP/gRPC"
        );
        Ok(Some(Traces { provider, tracer }))
    }

    /// The tracer for the wrappers of this module.
    pub fn tracer(&self) -> Tracer {
        self.tracer.clone()
    }

    /// Exports what is still queued, waiting at most [`SHUTDOWN_TIMEOUT`]
    /// (a collector that hangs cannot hold the process), then stops the
    /// exporter.
    pub async fn shutdown(self) {
        let provider = self.provider;
        // The SDK's shutdown blocks its caller until the exporting thread
        // is done; the export itself needs this runtime to make progress.
        let stopped =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT));
        match tokio::time::timeout(SHUTDOWN_TIMEOUT + Duration::from_secs(1), stopped).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "exporting the last traces failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "stopping the trace exporter failed"),
            Err(_) => tracing::warn!("the trace collector did not answer in time"),
        }
    }
}

impl Tracer {
    /// A span named `name` as a child of the current context's span, with
    /// `attributes`, and the context that carries it; `None` when there is
    /// no sampled span to be a child of (an unsampled request, work that
    /// no request started).
    fn child(&self, name: &'static str, attributes: Vec<KeyValue>) -> Option<Context> {
        let parent = Context::current();
        if !parent.span().span_context().is_sampled() {
            return None;
        }
        let span = self
            .0
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .with_attributes(attributes)
            .start_with_context(&*self.0, &parent);
        Some(parent.with_span(span))
    }

    /// Runs `work` inside a child span named `name` (see [`Self::child`]),
    /// which ends with it; `outcome` records the result on the span.
    async fn in_span<T, F>(
        &self,
        name: &'static str,
        attributes: impl FnOnce() -> Vec<KeyValue>,
        work: F,
        outcome: impl FnOnce(&T, &SpanRef<'_>),
    ) -> T
    where
        F: std::future::Future<Output = T>,
    {
        let Some(cx) = self.child(name, attributes()) else {
            return work.await;
        };
        let result = work.with_context(cx.clone()).await;
        let span = cx.span();
        outcome(&result, &span);
        span.end();
        result
    }
}

/// The OTLP exporter, logging when exports start failing and when they
/// work again (one line per change, not one per batch), so an operator
/// learns of a collector that is down without a line every few seconds.
#[derive(Debug)]
struct ReportingExporter<E> {
    inner: E,
    failing: AtomicBool,
}

impl<E: SpanExporter> SpanExporter for ReportingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!("exporting traces works again");
            }
            Err(e) if !self.failing.swap(true, Ordering::Relaxed) => {
                tracing::warn!(
                    error = %e,
                    spans,
                    "exporting traces failed; spans are dropped until the collector answers"
                );
            }
            _ => {}
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Request headers as the W3C trace-context propagator reads them.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Makes one server span per request, named by method and route class
/// (`GET zip`), with the route class, method, path (without the query)
/// and response status as attributes; it ends when the response headers
/// are ready. Inner layers and the wrapped storage and fetcher see it as
/// the current span.
#[derive(Clone)]
pub struct TraceLayer {
    tracer: Tracer,
    prefix: Arc<str>,
    propagator: Arc<TraceContextPropagator>,
}

impl TraceLayer {
    /// Spans from `tracer`; paths are classified after `path_prefix`.
    pub fn new(tracer: Tracer, path_prefix: &str) -> Self {
        TraceLayer {
            tracer,
            prefix: Arc::from(path_prefix.trim_end_matches('/')),
            propagator: Arc::new(TraceContextPropagator::new()),
        }
    }
}

impl<S> tower::Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`TraceLayer`].
#[derive(Clone)]
pub struct TraceService<S> {
    inner: S,
    layer: TraceLayer,
}

impl<S> tower::Service<Request> for TraceService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = TraceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let path = request.uri().path();
        let route = match path.strip_prefix(&*self.layer.prefix) {
            Some(rest) if !self.layer.prefix.is_empty() => crate::metrics::classify(rest),
            _ => crate::metrics::classify(path),
        };
        let parent = self
            .layer
            .propagator
            .extract(&HeaderExtractor(request.headers()));
        let method = request.method().as_str().to_string();
        let tracer = &self.layer.tracer.0;
        let span = tracer
            .span_builder(format!("{method} {}", route.as_str()))
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("http.request.method", method),
                KeyValue::new("http.route", route.as_str()),
                KeyValue::new("url.path", path.to_string()),
            ])
            .start_with_context(&**tracer, &parent);
        let cx = parent.with_span(span);
        TraceFuture {
            answer: self.inner.call(request).with_context(cx.clone()),
            cx,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`TraceService`]: the inner answer with the request's
    /// span as the current one, which ends when the answer is ready.
    pub struct TraceFuture<F> {
        #[pin]
        answer: WithContext<F>,
        cx: Context,
    }
}

impl<F> std::future::Future for TraceFuture<F>
where
    F: std::future::Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = std::task::ready!(this.answer.poll(cx));
        let span = this.cx.span();
        let status = response.status();
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status.as_u16()),
        ));
        if status.is_server_error() {
            span.set_status(Status::error(status.to_string()));
        }
        span.end();
        Poll::Ready(Ok(response))
    }
}

fn module_attributes(module: &str, version: &str) -> Vec<KeyValue> {
    let mut attributes = vec![KeyValue::new("athens.module", module.to_string())];
    if !version.is_empty() {
        attributes.push(KeyValue::new("athens.version", version.to_string()));
    }
    attributes
}

/// Marks the span of a failed storage call (not found is an answer).
fn storage_outcome<T>(result: &Result<T, StorageError>, span: &SpanRef<'_>) {
    if let Err(e) = result {
        if !e.is_not_found() {
            span.set_status(Status::error(e.to_string()));
        }
    }
}

/// Records on the span of a storage read whether it found something.
fn read_outcome<T>(
    found: impl FnOnce(&T) -> bool,
) -> impl FnOnce(&Result<T, StorageError>, &SpanRef<'_>) {
    move |result, span| match result {
        Ok(value) => span.set_attribute(KeyValue::new("athens.found", found(value))),
        Err(e) if e.is_not_found() => span.set_attribute(KeyValue::new("athens.found", false)),
        Err(e) => span.set_status(Status::error(e.to_string())),
    }
}

/// Marks the span of a failed fetch (a module or version that does not
/// exist is an answer).
fn fetch_outcome<T>(result: &Result<T, FetchError>, span: &SpanRef<'_>) {
    if let Err(e) = result {
        if !e.is_not_found() {
            span.set_status(Status::error(e.to_string()));
        }
    }
}

/// A storage whose reads, writes and deletes of module files are child
/// spans (`storage.info`, `storage.zip`, ...) of the current span, with
/// the module and version, and `athens.found` for reads.
pub struct TracedStorage {
    inner: Arc<dyn Storage>,
    tracer: Tracer,
}

impl TracedStorage {
    /// Traces the calls to `inner` with `tracer`.
    pub fn new(inner: Arc<dyn Storage>, tracer: Tracer) -> Self {
        TracedStorage { inner, tracer }
    }
}

#[async_trait]
impl Storage for TracedStorage {
    async fn info(&self, module: &str, version: &str) -> Result<Bytes, StorageError> {
        let work = self.inner.info(module, version);
        let attributes = || module_attributes(module, version);
        let outcome = read_outcome(|_| true);
        self.tracer
            .in_span("storage.info", attributes, work, outcome)
            .await
    }

    async fn go_mod(&self, module: &str, version: &str) -> Result<Bytes, StorageError> {
        let work = self.inner.go_mod(module, version);
        let attributes = || module_attributes(module, version);
        let outcome = read_outcome(|_| true);
        self.tracer
            .in_span("storage.mod", attributes, work, outcome)
            .await
    }

    async fn zip(&self, module: &str, version: &str) -> Result<StoredZip, StorageError> {
        let work = self.inner.zip(module, version);
        let attributes = || module_attributes(module, version);
        let outcome = read_outcome(|_| true);
        self.tracer
            .in_span("storage.zip", attributes, work, outcome)
            .await
    }

    async fn exists(&self, module: &str, version: &str) -> Result<bool, StorageError> {
        let work = self.inner.exists(module, version);
        let attributes = || module_attributes(module, version);
        let outcome = read_outcome(|found: &bool| *found);
        self.tracer
            .in_span("storage.exists", attributes, work, outcome)
            .await
    }

    async fn list(&self, module: &str) -> Result<Vec<String>, StorageError> {
        let work = self.inner.list(module);
        let attributes = || module_attributes(module, "");
        let outcome = read_outcome(|versions: &Vec<String>| !versions.is_empty());
        self.tracer
            .in_span("storage.list", attributes, work, outcome)
            .await
    }

    async fn save(
        &self,
        module: &str,
        version: &str,
        go_mod: Bytes,
        zip: &mut (dyn AsyncRead + Send + Unpin),
        info: Bytes,
    ) -> Result<(), StorageError> {
        let work = self.inner.save(module, version, go_mod, zip, info);
        let attributes = || module_attributes(module, version);
        self.tracer
            .in_span("storage.save", attributes, work, storage_outcome)
            .await
    }

    async fn delete(&self, module: &str, version: &str) -> Result<(), StorageError> {
        let work = self.inner.delete(module, version);
        let attributes = || module_attributes(module, version);
        self.tracer
            .in_span("storage.delete", attributes, work, storage_outcome)
            .await
    }

    async fn catalog(&self, token: &str, page_size: usize) -> Result<CatalogPage, StorageError> {
        let work = self.inner.catalog(token, page_size);
        self.tracer
            .in_span("storage.catalog", Vec::new, work, storage_outcome)
            .await
    }

    async fn get_side(&self, key: &SideKey<'_>) -> Result<Option<Bytes>, StorageError> {
        self.inner.get_side(key).await
    }

    async fn put_side(
        &self,
        key: &SideKey<'_>,
        data: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<(), StorageError> {
        self.inner.put_side(key, data).await
    }

    async fn delete_side(&self, key: &SideKey<'_>) -> Result<(), StorageError> {
        self.inner.delete_side(key).await
    }
}

/// A fetcher whose calls upstream are child spans (`fetch`,
/// `fetch.list`, `fetch.latest`, `fetch.query`) of the current span, with
/// the module and the version or query; failures other than "not found"
/// mark the span as an error.
pub struct TracedFetcher {
    inner: Arc<dyn Fetcher>,
    tracer: Tracer,
}

impl TracedFetcher {
    /// Traces the calls to `inner` with `tracer`.
    pub fn new(inner: Arc<dyn Fetcher>, tracer: Tracer) -> Self {
        TracedFetcher { inner, tracer }
    }
}

#[async_trait]
impl Fetcher for TracedFetcher {
    async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError> {
        let work = self.inner.fetch(module, version);
        let attributes = || module_attributes(module, version);
        self.tracer
            .in_span("fetch", attributes, work, fetch_outcome)
            .await
    }

    async fn list(&self, module: &str) -> Result<Vec<String>, FetchError> {
        let work = self.inner.list(module);
        let attributes = || module_attributes(module, "");
        self.tracer
            .in_span("fetch.list", attributes, work, fetch_outcome)
            .await
    }

    async fn latest(&self, module: &str) -> Result<RevInfo, FetchError> {
        let work = self.inner.latest(module);
        let attributes = || module_attributes(module, "");
        self.tracer
            .in_span("fetch.latest", attributes, work, fetch_outcome)
            .await
    }

    async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
        let work = self.inner.query(module, rev);
        let attributes = || module_attributes(module, rev);
        self.tracer
            .in_span("fetch.query", attributes, work, fetch_outcome)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_urls_are_http_or_https_with_a_host() {
        for url in ["", "http://localhost:4317", "https://collector.example"] {
            assert_eq!(check_url(url), Ok(()), "{url}");
        }
        for url in [
            "localhost:4317",
            "grpc://c:4317",
            "http://",
            "/v1/traces",
            "http//x",
        ] {
            assert!(check_url(url).is_err(), "{url}");
        }
    }

    #[test]
    fn development_samples_everything_as_in_athens() {
        assert!(matches!(sampler("development", 0.0), Sampler::AlwaysOn));
        assert!(matches!(
            sampler("production", 0.25),
            Sampler::ParentBased(_)
        ));
    }

    /// Work that no request started (a background stash, prefill) makes no
    /// spans of its own, and neither does an unsampled request.
    #[tokio::test]
    async fn no_child_span_without_a_sampled_parent() {
        let provider = SdkTracerProvider::builder().build();
        let tracer = Tracer(Arc::new(provider.tracer("test")));
        assert!(tracer.child("storage.info", Vec::new()).is_none());
        let unsampled = opentelemetry::trace::SpanContext::new(
            opentelemetry::trace::TraceId::from(1),
            opentelemetry::trace::SpanId::from(1),
            opentelemetry::trace::TraceFlags::default(),
            true,
            Default::default(),
        );
        let cx = Context::new().with_remote_span_context(unsampled);
        let _attached = cx.attach();
        assert!(tracer.child("storage.info", Vec::new()).is_none());
    }
}
