//! [`MeteredFetcher`]: fetches in flight, their duration and outcome, and
//! upstream errors.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::{FetchOp, FetchOutcome, Metrics, UpstreamErrorKind};
use crate::fetch::{FetchError, FetchedModule, Fetcher, RevInfo};

/// A fetcher that measures the calls it passes to its inner fetcher.
pub struct MeteredFetcher {
    inner: Arc<dyn Fetcher>,
    metrics: Arc<Metrics>,
}

impl MeteredFetcher {
    /// Measures `inner` into `metrics`.
    pub fn new(inner: Arc<dyn Fetcher>, metrics: Arc<Metrics>) -> Self {
        MeteredFetcher { inner, metrics }
    }

    /// Counts `result` as an upstream error when it is one (a module or
    /// version that does not exist is an answer, not an error).
    fn record_error<T>(&self, op: FetchOp, result: &Result<T, FetchError>) {
        let Err(error) = result else {
            return;
        };
        let kind = match error {
            FetchError::NotFound { .. }
            | FetchError::Disabled { .. }
            | FetchError::ModuleProxy { .. } => return,
            FetchError::Upstream { .. } => UpstreamErrorKind::Upstream,
            FetchError::InvalidResponse { .. } => UpstreamErrorKind::InvalidResponse,
            FetchError::Verification { .. } => UpstreamErrorKind::Verification,
            FetchError::Other { .. } => UpstreamErrorKind::Other,
        };
        self.metrics.record_upstream_error(op, kind);
    }
}

/// Takes a fetch off the in-flight gauge however it ends, also when the
/// request that started it is dropped mid-way.
struct InFlight<'m>(&'m Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetches_in_flight.dec();
    }
}

#[async_trait]
impl Fetcher for MeteredFetcher {
    async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError> {
        self.metrics.fetches_in_flight.inc();
        let _in_flight = InFlight(&self.metrics);
        let started = Instant::now();
        let result = self.inner.fetch(module, version).await;
        let outcome = match &result {
            Ok(_) => FetchOutcome::Ok,
            Err(e) if e.is_not_found() => FetchOutcome::NotFound,
            Err(_) => FetchOutcome::Error,
        };
        self.metrics.fetch_duration[outcome.index()].observe(started.elapsed().as_secs_f64());
        self.record_error(FetchOp::Fetch, &result);
        result
    }

    async fn list(&self, module: &str) -> Result<Vec<String>, FetchError> {
        let result = self.inner.list(module).await;
        self.record_error(FetchOp::List, &result);
        result
    }

    async fn latest(&self, module: &str) -> Result<RevInfo, FetchError> {
        let result = self.inner.latest(module).await;
        self.record_error(FetchOp::Latest, &result);
        result
    }

    async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
        let result = self.inner.query(module, rev).await;
        self.record_error(FetchOp::Query, &result);
        result
    }
}
