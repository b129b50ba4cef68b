//! The request side: [`MetricsLayer`] around the router, the `/metrics`
//! route, and the route class that storage reads are attributed to.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use prometheus_client::metrics::counter::Counter;

use super::{Metrics, Route, CONTENT_TYPE};

tokio::task_local! {
    /// The route class of the request the current task serves, so the
    /// storage wrapper can tell reads for `@latest` from others and leave
    /// health checks out.
    pub(super) static ROUTE: Route;
}

/// `work`, run with the route class of the request the current task
/// serves (if any), for work a request hands to a task of its own: the
/// storage wrapper then still knows what the reads are for.
pub fn with_current_route<F: std::future::Future>(
    work: F,
) -> impl std::future::Future<Output = F::Output> {
    let route = ROUTE.try_with(|route| *route).ok();
    async move {
        match route {
            Some(route) => ROUTE.scope(route, work).await,
            None => work.await,
        }
    }
}

/// The class of `path` (without the path prefix).
pub fn classify(path: &str) -> Route {
    match path {
        "/healthz" | "/readyz" => return Route::Health,
        "/metrics" => return Route::Metrics,
        _ => {}
    }
    if path.starts_with("/sumdb/") {
        Route::Sumdb
    } else if path.ends_with("/@v/list") {
        Route::List
    } else if path.ends_with("/@latest") {
        Route::Latest
    } else if path.contains("/@v/") {
        if path.ends_with(".info") {
            Route::Info
        } else if path.ends_with(".mod") {
            Route::Mod
        } else if path.ends_with(".zip") {
            Route::Zip
        } else {
            Route::Other
        }
    } else {
        Route::Other
    }
}

/// The `/metrics` route, to be served under the path prefix beside the
/// other routes.
pub fn routes(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics)
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> Response {
    let text = metrics.render().await;
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

/// Counts every request by route class and status, times it to its
/// response headers and counts the bytes of its response body. The
/// outermost layer, so it sees what the client sees (a refused login, a
/// redirect to HTTPS).
#[derive(Clone)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
    prefix: Arc<str>,
}

impl MetricsLayer {
    /// Records into `metrics`; paths are classified after `path_prefix`.
    pub fn new(metrics: Arc<Metrics>, path_prefix: &str) -> Self {
        MetricsLayer {
            metrics,
            prefix: Arc::from(path_prefix.trim_end_matches('/')),
        }
    }
}

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`MetricsLayer`].
#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    layer: MetricsLayer,
}

impl<S> tower::Service<Request> for MetricsService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = MetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let path = request.uri().path();
        let route = match path.strip_prefix(&*self.layer.prefix) {
            Some(rest) if !self.layer.prefix.is_empty() => classify(rest),
            _ => classify(path),
        };
        let head = request.method() == Method::HEAD;
        MetricsFuture {
            answer: ROUTE.scope(route, self.inner.call(request)),
            metrics: Arc::clone(&self.layer.metrics),
            route,
            head,
            started: Instant::now(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`MetricsService`]: the inner answer, recorded when
    /// it is ready. Written out (not boxed) because every request makes
    /// one.
    pub struct MetricsFuture<F> {
        #[pin]
        answer: tokio::task::futures::TaskLocalFuture<Route, F>,
        metrics: Arc<Metrics>,
        route: Route,
        head: bool,
        started: Instant,
    }
}

impl<F> std::future::Future for MetricsFuture<F>
where
    F: std::future::Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = std::task::ready!(this.answer.poll(cx));
        let route = *this.route;
        this.metrics
            .record_request(route, response.status().as_u16(), this.started.elapsed());
        if *this.head {
            return Poll::Ready(Ok(response));
        }
        let counter = this.metrics.response_bytes(route);
        // A body of known length is counted at once; only a streamed one
        // is wrapped to count what it yields.
        if let Some(length) = response.body().size_hint().exact() {
            counter.inc_by(length);
            return Poll::Ready(Ok(response));
        }
        let (parts, body) = response.into_parts();
        let counted = CountedBody {
            inner: body,
            counter: counter.clone(),
        };
        Poll::Ready(Ok(Response::from_parts(parts, Body::new(counted))))
    }
}

/// A response body that adds the length of each data frame to a counter.
struct CountedBody {
    inner: Body,
    counter: Counter,
}

impl HttpBody for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.counter.inc_by(data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
