//! The HTTP side of discovery: `?go-get=1` page fetches with the go
//! command's transport rules, and probes for which URL scheme a
//! `host/repo.git` style repository answers on.
//!
//! Transport rules kept from the go command:
//! - HTTPS first; plain HTTP only as a fallback for GOINSECURE paths, where
//!   HTTPS is also tried without certificate checks and with a short timeout.
//! - At most 10 redirects; a redirect from HTTPS to anything else is refused
//!   unless the path is GOINSECURE.
//! - GOAUTH credentials (see [`crate::goauth`]) are chosen for the URL
//!   first asked for, and only when it is HTTPS; after a 4xx answer to an
//!   HTTPS page fetch, GOAUTH runs again with the URL and the fetch is
//!   repeated when that changed its credentials. Redirects are followed
//!   here rather than inside reqwest so that every hop is judged: the
//!   credentials go along only while each hop has the scheme, host and
//!   port of the first URL, and never again once a hop has left it.
//! - Any status is accepted, since go-import tags may be served on a 404 page.
//! - HTTP(S)_PROXY / NO_PROXY come from the [`GoEnv`], not from the process
//!   environment, so Athens-style overrides apply.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::redirect;
use url::Url;

use super::netrc::{same_origin, Netrc};
use crate::goauth::{CredentialHeaders, FailedResponse, GoAuth};
use crate::goenv::GoEnv;

/// The go command's user agent; some hosts only serve go-import tags to it.
pub const GO_USER_AGENT: &str = "GoCommand/1 (+https://go.dev/cmd/go)";

/// Requests in one redirect chain before giving up, as Go's HTTP client
/// counts them.
const MAX_REDIRECTS: usize = 10;

/// Failure to construct a [`DiscoveryClient`].
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    /// A root certificate given to the builder is not valid PEM.
    #[error("invalid root certificate: {0}")]
    Certificate(String),
    /// The HTTP client could not be created.
    #[error("cannot create HTTP client: {0}")]
    Http(String),
}

/// Configures a [`DiscoveryClient`].
#[derive(Debug, Clone)]
pub struct DiscoveryClientBuilder {
    env: GoEnv,
    timeout: Duration,
    insecure_timeout: Duration,
    connect_timeout: Duration,
    pinned: Vec<(String, SocketAddr)>,
    root_certs_pem: Vec<Vec<u8>>,
    netrc: Option<Netrc>,
    user_agent: String,
    max_page_bytes: usize,
}

impl DiscoveryClientBuilder {
    /// Whole-request timeout for verified HTTPS and for plain HTTP
    /// (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Timeout for unverified HTTPS attempts on GOINSECURE paths (default
    /// 5 s, the go command's value: such hosts often have no HTTPS at all).
    pub fn insecure_timeout(mut self, timeout: Duration) -> Self {
        self.insecure_timeout = timeout;
        self
    }

    /// TCP connect timeout (default 15 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sends connections for `host` to `addr` instead of resolving it
    /// (the port of `addr` is used unless the URL names one).
    pub fn pin_host(mut self, host: &str, addr: SocketAddr) -> Self {
        self.pinned.push((host.to_string(), addr));
        self
    }

    /// Trusts an extra root certificate (PEM), in addition to the bundled
    /// web roots, e.g. for a corporate CA.
    pub fn add_root_certificate_pem(mut self, pem: &[u8]) -> Self {
        self.root_certs_pem.push(pem.to_vec());
        self
    }

    /// Uses these credentials (as GOAUTH=netrc) instead of the GOAUTH
    /// methods of the environment.
    pub fn netrc(mut self, netrc: Netrc) -> Self {
        self.netrc = Some(netrc);
        self
    }

    /// Overrides the User-Agent header (default [`GO_USER_AGENT`]).
    pub fn user_agent(mut self, agent: &str) -> Self {
        self.user_agent = agent.to_string();
        self
    }

    /// Largest page prefix read from a `?go-get=1` response (default 4 MiB);
    /// tags are only looked for in the head, so more is never needed.
    pub fn max_page_bytes(mut self, limit: usize) -> Self {
        self.max_page_bytes = limit;
        self
    }

    /// Builds the client. An unreadable netrc file is treated as empty, as
    /// the go command does; GOAUTH credentials are the environment's
    /// shared store unless [`DiscoveryClientBuilder::netrc`] replaced them.
    pub fn build(self) -> Result<DiscoveryClient, ClientBuildError> {
        let mut certs = Vec::new();
        for pem in &self.root_certs_pem {
            certs.push(
                reqwest::Certificate::from_pem(pem)
                    .map_err(|e| ClientBuildError::Certificate(e.to_string()))?,
            );
        }
        // Redirects are followed by `DiscoveryClient::send`, which decides
        // about credentials and downgrades hop by hop.
        let secure = self
            .base(&certs)
            .timeout(self.timeout)
            .build()
            .map_err(|e| ClientBuildError::Http(e.to_string()))?;
        let insecure = self
            .base(&certs)
            .timeout(self.insecure_timeout)
            .danger_accept_invalid_certs(true)
            .build()
            .map_err(|e| ClientBuildError::Http(e.to_string()))?;
        let auth = match self.netrc {
            Some(n) => Arc::new(GoAuth::from_netrc(n)),
            None => Arc::clone(self.env.goauth_credentials()),
        };
        Ok(DiscoveryClient {
            secure,
            insecure,
            timeout: self.timeout,
            insecure_timeout: self.insecure_timeout,
            auth,
            max_page_bytes: self.max_page_bytes,
        })
    }

    fn base(&self, certs: &[reqwest::Certificate]) -> reqwest::ClientBuilder {
        let env = self.env.clone();
        let mut b = reqwest::Client::builder()
            .user_agent(self.user_agent.clone())
            .redirect(redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .no_proxy()
            .proxy(reqwest::Proxy::custom(move |url| env.http_proxy_for(url)));
        for (host, addr) in &self.pinned {
            b = b.resolve(host, *addr);
        }
        for c in certs {
            b = b.add_root_certificate(c.clone());
        }
        b
    }
}

/// HTTP client for discovery, holding the transport configuration and the
/// netrc credentials. Cheap to share behind an `Arc`; clones share pools.
#[derive(Clone)]
pub struct DiscoveryClient {
    secure: reqwest::Client,
    insecure: reqwest::Client,
    /// Budget of a whole request through all its redirects, per client.
    timeout: Duration,
    insecure_timeout: Duration,
    /// GOAUTH's methods and stored credentials.
    auth: Arc<GoAuth>,
    max_page_bytes: usize,
}

impl std::fmt::Debug for DiscoveryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveryClient")
            .field("goauth", &self.auth)
            .field("max_page_bytes", &self.max_page_bytes)
            .finish_non_exhaustive()
    }
}

/// A fetched `?go-get=1` page.
#[derive(Debug)]
pub(crate) struct Page {
    /// The URL that was requested (before redirects), for messages.
    pub url: String,
    pub status: u16,
    pub body: Vec<u8>,
    /// Set when the body could not be read to the end.
    pub read_error: Option<String>,
}

/// Why a page could not be fetched at all.
#[derive(Debug)]
pub(crate) struct FetchError {
    pub url: String,
    pub detail: String,
    /// The host name does not resolve.
    pub no_such_host: bool,
}

impl DiscoveryClient {
    /// A builder with the go command's defaults, taking proxy settings and
    /// the netrc location from `env`.
    pub fn builder(env: &GoEnv) -> DiscoveryClientBuilder {
        DiscoveryClientBuilder {
            env: env.clone(),
            timeout: Duration::from_secs(60),
            insecure_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(15),
            pinned: Vec::new(),
            root_certs_pem: Vec::new(),
            netrc: None,
            user_agent: GO_USER_AGENT.to_string(),
            max_page_bytes: 4 << 20,
        }
    }

    /// A client with default settings for `env`.
    pub fn new(env: &GoEnv) -> Result<DiscoveryClient, ClientBuildError> {
        DiscoveryClient::builder(env).build()
    }

    /// Fetches `https://host/path?go-get=1` (`url` must be that https URL),
    /// falling back to `http` only when `insecure`.
    pub(crate) async fn get_page(&self, url: &Url, insecure: bool) -> Result<Page, FetchError> {
        let https_attempt = if insecure {
            self.fetch(&self.insecure, self.insecure_timeout, false, url)
                .await
        } else {
            self.fetch(&self.secure, self.timeout, true, url).await
        };
        match https_attempt {
            Ok(page) => return Ok(page),
            Err(e) if !insecure => return Err(e),
            Err(e) => {
                tracing::debug!(url = %e.url, error = %e.detail, "https fetch failed; trying http");
            }
        }
        let mut plain = url.clone();
        if plain.set_scheme("http").is_err() {
            return Err(FetchError {
                url: redact(url),
                detail: "cannot form http URL".into(),
                no_such_host: false,
            });
        }
        self.fetch(&self.secure, self.timeout, true, &plain).await
    }

    async fn fetch(
        &self,
        client: &reqwest::Client,
        budget: Duration,
        verified: bool,
        url: &Url,
    ) -> Result<Page, FetchError> {
        // GOAUTH commands get the full request timeout, also before the
        // short unverified attempts at GOINSECURE hosts.
        let credentials = self.auth.initial(url, self.timeout).await;
        let mut resp = self
            .send(
                client,
                budget,
                verified,
                reqwest::Method::GET,
                url,
                &credentials,
            )
            .await?;
        // The go command asks GOAUTH again after any 4xx to an https URL
        // (even one whose page might still carry a go-import tag) and
        // repeats the request with what it then has; repeating it with the
        // same credentials would only ask the same question twice.
        if url.scheme() == "https" && resp.status().is_client_error() {
            let failed = FailedResponse::of(&resp);
            let renewed = self.auth.after_failure(url, &failed, self.timeout).await;
            if !same_credentials(&renewed, &credentials) {
                resp = self
                    .send(
                        client,
                        budget,
                        verified,
                        reqwest::Method::GET,
                        url,
                        &renewed,
                    )
                    .await?;
            }
        }
        let status = resp.status().as_u16();
        let (body, read_error) = read_limited(resp, self.max_page_bytes).await;
        Ok(Page {
            url: redact(url),
            status,
            body,
            read_error,
        })
    }

    /// Sends `method url` and follows redirects by hand (at most
    /// [`MAX_REDIRECTS`] requests in all, within `budget`). The `credentials` of
    /// `url` go with each hop that is still on the origin of `url`, and no
    /// longer once a hop has left it: a server must not be able to forward
    /// them to another host, port or scheme by redirecting. When `verified`
    /// and `url` is https, a redirect to anything but https is refused.
    async fn send(
        &self,
        client: &reqwest::Client,
        budget: Duration,
        verified: bool,
        method: reqwest::Method,
        url: &Url,
        credentials: &Option<CredentialHeaders>,
    ) -> Result<reqwest::Response, FetchError> {
        let shown = redact(url);
        let fail = |detail: String| FetchError {
            url: shown.clone(),
            detail,
            no_such_host: false,
        };
        let deadline = Instant::now() + budget;
        let mut on_origin = true;
        let mut method = method;
        let mut current = url.clone();
        // Like Go's client: the tenth request may not be redirected again.
        for hop in 1..=MAX_REDIRECTS {
            on_origin = on_origin && same_origin(url, &current);
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(fail(format!(
                    "timeout: no answer within {} s",
                    budget.as_secs_f64()
                )));
            }
            let mut req = client
                .request(method.clone(), current.clone())
                .timeout(remaining);
            if let (true, Some(headers)) = (on_origin, credentials) {
                for (name, value) in headers {
                    req = req.header(name, value);
                }
            }
            let resp = req.send().await.map_err(|e| transport_error(&shown, &e))?;
            let Some(next) = redirect_target(&resp, &current).map_err(fail)? else {
                return Ok(resp);
            };
            if hop == MAX_REDIRECTS {
                return Err(fail(format!("stopped after {MAX_REDIRECTS} redirects")));
            }
            if !matches!(next.scheme(), "http" | "https") {
                return Err(fail(format!(
                    "redirected to unsupported URL {}",
                    redact(&next)
                )));
            }
            if verified && url.scheme() == "https" && next.scheme() != "https" {
                return Err(fail(format!(
                    "redirected from a secure URL to insecure URL {}",
                    redact(&next)
                )));
            }
            method = redirected_method(resp.status().as_u16(), method);
            current = next;
        }
        Err(fail(format!("stopped after {MAX_REDIRECTS} redirects")))
    }

    /// Whether a repository answers at `scheme://repo` for `vcs`, judged by
    /// the request its own client would make first (smart-HTTP ref
    /// advertisement for git, `capabilities` for hg, `OPTIONS` for svn).
    pub(crate) async fn probe(&self, vcs: &str, scheme: &str, repo: &str) -> bool {
        let (method, target) = match vcs {
            "git" => (
                reqwest::Method::GET,
                format!("{scheme}://{repo}/info/refs?service=git-upload-pack"),
            ),
            "hg" => (
                reqwest::Method::GET,
                format!("{scheme}://{repo}?cmd=capabilities"),
            ),
            "svn" => (reqwest::Method::OPTIONS, format!("{scheme}://{repo}")),
            _ => return false,
        };
        let Ok(url) = Url::parse(&target) else {
            return false;
        };
        let credentials = self.auth.initial(&url, self.timeout).await;
        match self
            .send(&self.secure, self.timeout, true, method, &url, &credentials)
            .await
        {
            Ok(resp) => resp.status().is_success(),
            Err(e) => {
                tracing::debug!(url = %e.url, error = %e.detail, "repository probe failed");
                false
            }
        }
    }
}

/// Whether two credential sets would send the same headers.
fn same_credentials(a: &Option<CredentialHeaders>, b: &Option<CredentialHeaders>) -> bool {
    let empty = Vec::new();
    a.as_ref().unwrap_or(&empty) == b.as_ref().unwrap_or(&empty)
}

/// Where a redirect response points, resolved against `current`; `None`
/// when `resp` is not a redirect to follow (a 3xx without `Location` is
/// handed back as it is, as Go's client does).
fn redirect_target(resp: &reqwest::Response, current: &Url) -> Result<Option<Url>, String> {
    if !matches!(resp.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let Some(location) = resp.headers().get(reqwest::header::LOCATION) else {
        return Ok(None);
    };
    let location = location
        .to_str()
        .map_err(|_| "redirect Location is not valid text".to_string())?;
    current
        .join(location)
        .map(Some)
        .map_err(|e| format!("redirect Location is not a valid URL: {e}"))
}

/// The method of the request following a redirect with `status`: 307 and
/// 308 keep it, the others turn anything but GET and HEAD into GET.
fn redirected_method(status: u16, method: reqwest::Method) -> reqwest::Method {
    if matches!(status, 307 | 308)
        || method == reqwest::Method::GET
        || method == reqwest::Method::HEAD
    {
        method
    } else {
        reqwest::Method::GET
    }
}

async fn read_limited(mut resp: reqwest::Response, limit: usize) -> (Vec<u8>, Option<String>) {
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= limit {
                    return (body, None);
                }
            }
            Ok(None) => return (body, None),
            Err(e) => return (body, Some(e.to_string())),
        }
    }
}

fn transport_error(url: &str, e: &reqwest::Error) -> FetchError {
    let mut detail = e.to_string();
    let mut no_such_host = false;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        // hyper-util reports resolver failures as "dns error: ..."; those
        // mean the host does not exist rather than that it is failing.
        if text.starts_with("dns error") {
            no_such_host = true;
        }
        detail.push_str(": ");
        detail.push_str(&text);
        source = s.source();
    }
    if e.is_timeout() {
        detail = format!("timeout: {detail}");
    }
    FetchError {
        url: url.to_string(),
        detail,
        no_such_host,
    }
}

/// A URL with any user name and password removed, for messages.
pub(crate) fn redact(url: &Url) -> String {
    let mut u = url.clone();
    if !u.username().is_empty() || u.password().is_some() {
        let _ = u.set_username("");
        let _ = u.set_password(None);
    }
    u.to_string()
}
