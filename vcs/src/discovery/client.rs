//! The HTTP side of discovery: `?go-get=1` page fetches with the go
//! command's transport rules, and probes for which URL scheme a
//! `host/repo.git` style repository answers on.
//!
//! Transport rules kept from the go command:
//! - HTTPS first; plain HTTP only as a fallback for GOINSECURE paths, where
//!   HTTPS is also tried without certificate checks and with a short timeout.
//! - At most 10 redirects; a redirect from HTTPS to anything else is refused
//!   unless the path is GOINSECURE.
//! - .netrc credentials go only to HTTPS URLs whose host (or host/path
//!   prefix) has an entry; redirects to another host drop them.
//! - Any status is accepted, since go-import tags may be served on a 404 page.
//! - HTTP(S)_PROXY / NO_PROXY come from the [`GoEnv`], not from the process
//!   environment, so Athens-style overrides apply.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::redirect;
use url::Url;

use super::netrc::Netrc;
use crate::goenv::GoEnv;

/// The go command's user agent; some hosts only serve go-import tags to it.
pub const GO_USER_AGENT: &str = "GoCommand/1 (+https://go.dev/cmd/go)";

/// Redirects followed before giving up, as Go's HTTP client does.
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

    /// Uses these credentials instead of reading the netrc file named by
    /// the environment.
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
    /// the go command does.
    pub fn build(self) -> Result<DiscoveryClient, ClientBuildError> {
        let mut certs = Vec::new();
        for pem in &self.root_certs_pem {
            certs.push(
                reqwest::Certificate::from_pem(pem)
                    .map_err(|e| ClientBuildError::Certificate(e.to_string()))?,
            );
        }
        let secure_policy = redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("stopped after {MAX_REDIRECTS} redirects"));
            }
            let started_https = attempt
                .previous()
                .first()
                .is_some_and(|u| u.scheme() == "https");
            if started_https && attempt.url().scheme() != "https" {
                let to = redact(attempt.url());
                return attempt.error(format!("redirected from a secure URL to insecure URL {to}"));
            }
            attempt.follow()
        });
        let plain_policy = redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("stopped after {MAX_REDIRECTS} redirects"));
            }
            attempt.follow()
        });
        let secure = self
            .base(&certs)
            .timeout(self.timeout)
            .redirect(secure_policy)
            .build()
            .map_err(|e| ClientBuildError::Http(e.to_string()))?;
        let insecure = self
            .base(&certs)
            .timeout(self.insecure_timeout)
            .redirect(plain_policy)
            .danger_accept_invalid_certs(true)
            .build()
            .map_err(|e| ClientBuildError::Http(e.to_string()))?;
        let netrc = match self.netrc {
            Some(n) => n,
            None => match self.env.netrc_path() {
                Some(path) => Netrc::load(&path).unwrap_or_else(|e| {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read netrc file; continuing without credentials");
                    Netrc::default()
                }),
                None => Netrc::default(),
            },
        };
        Ok(DiscoveryClient {
            secure,
            insecure,
            netrc,
            max_page_bytes: self.max_page_bytes,
        })
    }

    fn base(&self, certs: &[reqwest::Certificate]) -> reqwest::ClientBuilder {
        let env = self.env.clone();
        let mut b = reqwest::Client::builder()
            .user_agent(self.user_agent.clone())
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
    netrc: Netrc,
    max_page_bytes: usize,
}

impl std::fmt::Debug for DiscoveryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveryClient")
            .field("netrc_machines", &self.netrc.entries().len())
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
        let https_client = if insecure {
            &self.insecure
        } else {
            &self.secure
        };
        match self.fetch(https_client, url).await {
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
        self.fetch(&self.secure, &plain).await
    }

    async fn fetch(&self, client: &reqwest::Client, url: &Url) -> Result<Page, FetchError> {
        let shown = redact(url);
        let resp = self
            .request(client, reqwest::Method::GET, url)
            .send()
            .await
            .map_err(|e| transport_error(&shown, &e))?;
        let status = resp.status().as_u16();
        let (body, read_error) = read_limited(resp, self.max_page_bytes).await;
        Ok(Page {
            url: shown,
            status,
            body,
            read_error,
        })
    }

    fn request(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        url: &Url,
    ) -> reqwest::RequestBuilder {
        let mut req = client.request(method, url.clone());
        if let Some((login, password)) = self.netrc.credentials_for(url) {
            req = req.basic_auth(login, Some(password));
        }
        req
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
        match self.request(&self.secure, method, &url).send().await {
            Ok(resp) => resp.status().is_success(),
            Err(e) => {
                tracing::debug!(url = %redact(&url), error = %e, "repository probe failed");
                false
            }
        }
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
