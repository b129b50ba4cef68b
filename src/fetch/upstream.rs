//! A [`Fetcher`] that asks other module proxies, walking a GOPROXY list the
//! way the go command does:
//!
//! * entries separated by `,` are tried in turn only while the previous one
//!   answers "not found" (404/410); after `|` any error falls through;
//! * `direct` hands the request to the plugged-in direct fetcher and ends
//!   the list; `off` fails every lookup and ends the list;
//! * module paths matching GONOPROXY (or GOPRIVATE when GONOPROXY is unset)
//!   always go to the direct fetcher;
//! * when the direct fetcher answers that a go-import tag names a module
//!   proxy for the module ([`FetchError::ModuleProxy`]), that proxy is
//!   asked, as the go command asks it.
//!
//! The list is parsed by `vcs::goenv` (the go environment's
//! [`ProxyList`](vcs::goenv::ProxyList)), as are the GONOPROXY fallback and
//! GOAUTH (whose credentials https proxies get as the go command sends
//! them: see `vcs::goauth`).
//!
//! `http://`, `https://` and `file://` proxy URLs are supported.
//!
//! Nothing a proxy returns is passed on before it is checked as the go
//! command checks it (see `verify`): the `.info` JSON, the `.mod` file
//! (parsed, with a module path fitting the request) and the zip (every
//! rule of the module zip format, data included, and its `go.mod` equal to
//! the `.mod`). Redirects follow the go command's rules too: at most ten,
//! never from https to plain http, and credentials never travel to another
//! host.

mod verify;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::Url;
use tokio::io::AsyncWriteExt;

use modzip::zip::{MAX_GO_MOD, MAX_ZIP_FILE};

use super::{FetchError, FetchedModule, FetchedZip, Fetcher, RevInfo};
use vcs::goauth::{CredentialHeaders, FailedResponse, GoAuth};
use vcs::goenv::{Fallback, GoEnv, ProxyEntry, ProxyTarget};

/// Largest `.info`, `.mod` or list body accepted: the go.mod cap of the
/// module zip format (the others are never near it).
const MAX_SMALL_BODY: u64 = MAX_GO_MOD;
/// Redirects followed per request, as the go command's HTTP client.
const MAX_REDIRECTS: usize = 10;
/// More distinct module proxies named by go-import tags than this and the
/// remembered ones are dropped (they are few in practice; this only
/// bounds memory).
const MAX_MODULE_PROXIES: usize = 64;

/// Settings of an [`UpstreamProxyFetcher`] besides its proxy list.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// Timeout of each HTTP request.
    pub timeout: Duration,
    /// Directory for downloaded zips; `None` for the system default.
    pub temp_dir: Option<PathBuf>,
    /// GONOPROXY-style patterns of modules that always go direct.
    pub no_proxy: String,
    /// The go environment whose HTTP_PROXY, HTTPS_PROXY and NO_PROXY route
    /// requests, as they route the go command's; `None` for the process
    /// environment's.
    pub go_env: Option<GoEnv>,
    /// A PEM bundle of the certificate authorities trusted for https
    /// proxies instead of the bundled web roots, as `SSL_CERT_FILE` is for
    /// the go command; `None` for the bundled roots.
    pub ssl_cert_file: Option<PathBuf>,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            timeout: Duration::from_secs(300),
            temp_dir: None,
            no_proxy: String::new(),
            go_env: None,
            ssl_cert_file: None,
        }
    }
}

/// A [`Fetcher`] over a GOPROXY list; see the module docs.
pub struct UpstreamProxyFetcher {
    /// The list, with GONOPROXY's implicit entry first when it is set.
    entries: Vec<ProxyEntry>,
    direct: Option<Arc<dyn Fetcher>>,
    options: UpstreamOptions,
    client: reqwest::Client,
    /// The client for requests carrying GOAUTH credentials: it stops at a
    /// redirect off the origin asked for, which is then followed by
    /// `client` without them (reqwest itself would forward every header
    /// but `Authorization`, and an authenticator may print any header).
    credentialed_client: reqwest::Client,
    /// Credentials for https proxies: the go environment's GOAUTH store.
    auth: Option<Arc<GoAuth>>,
    /// Largest zip accepted: the module zip limit (tests lower it).
    max_zip_size: u64,
    /// The fetchers of the module proxies go-import `mod` tags have named,
    /// one per URL, so that each keeps its HTTP client and connections.
    module_proxies: Mutex<HashMap<String, Arc<UpstreamProxyFetcher>>>,
}

/// What is asked of one source.
#[derive(Clone, Copy)]
enum Request<'a> {
    Fetch(&'a str),
    List,
    Latest,
    Query(&'a str),
}

impl Request<'_> {
    fn version(&self) -> &str {
        match self {
            Request::Fetch(v) | Request::Query(v) => v,
            Request::List | Request::Latest => "",
        }
    }
}

enum Answer {
    Fetched(FetchedModule),
    Versions(Vec<String>),
    Info(RevInfo),
}

/// How useful an error is to report, lowest first (the go command's order).
#[derive(PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum ErrorRank {
    NotExist,
    Proxy,
    Direct,
}

/// Percent-encodes what may not appear raw in a URL path; `!` (case
/// escapes) and `+` (build suffixes) stay readable.
fn path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'!' | b'+' | b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL without user information, for messages.
fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string().trim_end_matches('/').to_string()
        }
        Err(_) => "<invalid proxy URL>".to_string(),
    }
}

/// The first line of an error body, shortened.
fn first_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or("").trim();
    let mut line: String = line.chars().take(300).collect();
    if line.is_empty() {
        line = "no details".into();
    }
    line
}

impl UpstreamProxyFetcher {
    /// A fetcher for the GOPROXY list `goproxy`, read as the go command
    /// reads the variable (empty: its default), with `options.no_proxy` as
    /// GONOPROXY; `direct` serves the `direct` entry and GONOPROXY matches.
    pub fn new(
        goproxy: &str,
        direct: Option<Arc<dyn Fetcher>>,
        options: UpstreamOptions,
    ) -> Result<Self, String> {
        let list = GoEnv::from_vars([
            ("GOPROXY", goproxy),
            ("GONOPROXY", options.no_proxy.as_str()),
        ])
        .map_err(|e| e.to_string())?;
        Self::with_entries(list.proxy_list().entries().to_vec(), direct, options)
    }

    /// The GOPROXY chain of the go environment `go_env`: its GOPROXY list
    /// and GONOPROXY (defaulting to GOPRIVATE); requests go through the
    /// HTTP(S)_PROXY the go command would use, with the credentials of its
    /// GOAUTH, and https proxies are trusted by its SSL_CERT_FILE when set.
    /// Each request may take `timeout`; zips are staged in `temp_dir` (the
    /// system temporary directory when `None`).
    pub fn from_go_env(
        go_env: &GoEnv,
        direct: Option<Arc<dyn Fetcher>>,
        timeout: Duration,
        temp_dir: Option<PathBuf>,
    ) -> Result<Self, String> {
        let options = UpstreamOptions {
            timeout,
            temp_dir,
            no_proxy: go_env.gonoproxy().to_string(),
            go_env: Some(go_env.clone()),
            ssl_cert_file: go_env.ssl_cert_file().map(PathBuf::from),
        };
        Self::with_entries(go_env.proxy_list().entries().to_vec(), direct, options)
    }

    fn with_entries(
        entries: Vec<ProxyEntry>,
        direct: Option<Arc<dyn Fetcher>>,
        options: UpstreamOptions,
    ) -> Result<Self, String> {
        let roots = match &options.ssl_cert_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("reading SSL_CERT_FILE {}: {e}", path.display()))?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| format!("SSL_CERT_FILE {}: {e}", path.display()))?;
                if certs.is_empty() {
                    return Err(format!(
                        "SSL_CERT_FILE {}: no certificates in it",
                        path.display()
                    ));
                }
                Some(certs)
            }
            None => None,
        };
        let make_client = |policy: reqwest::redirect::Policy| {
            let mut builder = reqwest::Client::builder()
                .timeout(options.timeout)
                .user_agent(concat!("athens-rs/", env!("CARGO_PKG_VERSION")))
                .redirect(policy);
            if let Some(certs) = &roots {
                builder = builder.tls_built_in_root_certs(false);
                for cert in certs {
                    builder = builder.add_root_certificate(cert.clone());
                }
            }
            if let Some(env) = options.go_env.clone() {
                builder = builder
                    .no_proxy()
                    .proxy(reqwest::Proxy::custom(move |url| env.http_proxy_for(url)));
            }
            builder
                .build()
                .map_err(|e| format!("creating HTTP client: {e}"))
        };
        let client = make_client(reqwest::redirect::Policy::custom(go_redirect_rule))?;
        let credentialed_client = make_client(reqwest::redirect::Policy::custom(
            credentialed_redirect_rule,
        ))?;
        let auth = options
            .go_env
            .as_ref()
            .map(|env| Arc::clone(env.goauth_credentials()));
        Ok(UpstreamProxyFetcher {
            entries,
            direct,
            options,
            client,
            credentialed_client,
            auth,
            max_zip_size: MAX_ZIP_FILE,
            module_proxies: Mutex::default(),
        })
    }

    /// A GET of `url` with `credentials`, through the client that stops at
    /// a redirect off the origin of `url` when there are any (see
    /// [`UpstreamProxyFetcher::get_following`]).
    fn get(&self, url: &str, credentials: &Option<CredentialHeaders>) -> reqwest::RequestBuilder {
        let Some(headers) = credentials.as_ref().filter(|h| !h.is_empty()) else {
            return self.client.get(url);
        };
        let mut request = self.credentialed_client.get(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request
    }

    /// Sends a GET of `url` with `credentials`; a redirect off the origin
    /// of `url` is followed without them, under the go command's rules.
    async fn get_following(
        &self,
        url: &str,
        credentials: &Option<CredentialHeaders>,
        module: &str,
        version: &str,
    ) -> Result<reqwest::Response, FetchError> {
        let failed = |e| self.transport_error(url, module, version, e);
        let response = self.get(url, credentials).send().await.map_err(failed)?;
        if credentials.as_ref().is_none_or(|h| h.is_empty())
            || !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308)
        {
            return Ok(response);
        }
        let next = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| response.url().join(l).ok());
        let Some(next) = next else {
            return Ok(response);
        };
        // The credentialed client stopped here because `next` leaves the
        // origin; it is asked for as a fresh request, https never giving
        // way to http.
        if url.starts_with("https:") && next.scheme() != "https" {
            return Err(FetchError::Upstream {
                module: module.to_string(),
                version: version.to_string(),
                upstream: redact(url),
                status: None,
                message: format!(
                    "redirected from secure URL {} to insecure URL {}",
                    redact(response.url().as_str()),
                    redact(next.as_str())
                ),
            });
        }
        self.client.get(next).send().await.map_err(failed)
    }

    /// The GOAUTH credentials the go command would send first to `url`
    /// (https only, and none when the URL carries its own).
    async fn initial_credentials(&self, url: &str) -> (Option<Url>, Option<CredentialHeaders>) {
        let Some(auth) = &self.auth else {
            return (None, None);
        };
        let Ok(parsed) = Url::parse(url) else {
            return (None, None);
        };
        if parsed.scheme() != "https" || !parsed.username().is_empty() {
            return (None, None);
        }
        let credentials = auth.initial(&parsed, self.options.timeout).await;
        (Some(parsed), credentials)
    }

    /// The parsed proxy list (GONOPROXY's implicit entry first when it is
    /// set).
    pub fn entries(&self) -> &[ProxyEntry] {
        &self.entries
    }

    /// The go environment routing the requests, when one was given.
    pub fn go_env(&self) -> Option<&GoEnv> {
        self.options.go_env.as_ref()
    }

    async fn run(&self, module: &str, request: Request<'_>) -> Result<Answer, FetchError> {
        let mut best: Option<(ErrorRank, FetchError)> = None;
        for entry in &self.entries {
            let (result, rank_if_error, falls_through) = match &entry.target {
                ProxyTarget::NoProxy => {
                    // GONOPROXY: a matching module is fetched directly, and
                    // that answer is final; others go on down the list.
                    if modzip::module::match_prefix_patterns(&self.options.no_proxy, module) {
                        return self.ask_direct(module, request).await;
                    }
                    continue;
                }
                ProxyTarget::Off => (
                    Err(FetchError::Disabled {
                        module: module.to_string(),
                        version: request.version().to_string(),
                    }),
                    ErrorRank::NotExist,
                    false,
                ),
                ProxyTarget::Direct => (
                    self.ask_direct(module, request).await,
                    ErrorRank::Direct,
                    false,
                ),
                ProxyTarget::Url(url) => (
                    self.ask_proxy(url, module, request).await,
                    ErrorRank::Proxy,
                    entry.fallback == Fallback::OnAnyError,
                ),
            };
            let err = match result {
                Ok(answer) => return Ok(answer),
                Err(err) => err,
            };
            let not_found = err.is_not_found();
            let rank = if rank_if_error == ErrorRank::Proxy && not_found {
                ErrorRank::NotExist
            } else {
                rank_if_error
            };
            let replace = match &best {
                None => true,
                Some((best_rank, _)) => rank >= *best_rank,
            };
            if replace {
                best = Some((rank, err));
            }
            let last = matches!(entry.target, ProxyTarget::Direct | ProxyTarget::Off);
            if last || (!falls_through && !not_found) {
                break;
            }
        }
        Err(best.map(|(_, e)| e).unwrap_or_else(|| {
            FetchError::other(module, request.version(), "GOPROXY list has no entries")
        }))
    }

    async fn ask_direct(&self, module: &str, request: Request<'_>) -> Result<Answer, FetchError> {
        let direct = self.direct.as_ref().ok_or_else(|| {
            FetchError::other(
                module,
                request.version(),
                "direct fetching is not available in this server",
            )
        })?;
        match ask(direct.as_ref(), module, request).await {
            Err(FetchError::ModuleProxy {
                module: named,
                version,
                url,
            }) => {
                let proxy = self.module_proxy(&named, &version, &url)?;
                ask(proxy.as_ref(), module, request).await
            }
            answer => answer,
        }
    }

    /// The module proxy at `url`, which a go-import `mod` tag named for
    /// `module`, as a fetcher: the go command fetches such a module from
    /// there exactly as from a GOPROXY entry.
    fn module_proxy(
        &self,
        module: &str,
        version: &str,
        url: &str,
    ) -> Result<Arc<UpstreamProxyFetcher>, FetchError> {
        if let Some(known) = self
            .module_proxies
            .lock()
            .ok()
            .and_then(|m| m.get(url).cloned())
        {
            return Ok(known);
        }
        // One URL, not a GOPROXY list: a separator would split it.
        if url.contains([',', '|']) {
            return Err(FetchError::not_found(
                module,
                version,
                format!("go-import names an invalid module proxy URL {url:?}"),
            ));
        }
        let options = UpstreamOptions {
            timeout: self.options.timeout,
            temp_dir: self.options.temp_dir.clone(),
            no_proxy: String::new(),
            go_env: self.options.go_env.clone(),
            // Trusted like go-import discovery, which found it: by the
            // bundled roots (SSL_CERT_FILE is for GOPROXY entries).
            ssl_cert_file: None,
        };
        let fetcher = UpstreamProxyFetcher::new(url, None, options).map_err(|reason| {
            FetchError::not_found(
                module,
                version,
                format!("go-import names module proxy {url:?}: {reason}"),
            )
        })?;
        let fetcher = Arc::new(fetcher);
        if let Ok(mut known) = self.module_proxies.lock() {
            if known.len() >= MAX_MODULE_PROXIES {
                known.clear();
            }
            known.insert(url.to_string(), Arc::clone(&fetcher));
        }
        Ok(fetcher)
    }

    async fn ask_proxy(
        &self,
        base: &str,
        module: &str,
        request: Request<'_>,
    ) -> Result<Answer, FetchError> {
        Ok(match request {
            Request::Fetch(v) => Answer::Fetched(self.proxy_fetch(base, module, v).await?),
            Request::List => Answer::Versions(self.proxy_list(base, module).await?),
            Request::Latest => Answer::Info(self.proxy_latest(base, module).await?),
            Request::Query(v) => Answer::Info(self.proxy_stat(base, module, v).await?.0),
        })
    }

    fn module_url(
        base: &str,
        module: &str,
        version: &str,
        tail: &str,
    ) -> Result<String, FetchError> {
        let escaped = modzip::module::escape_path(module)
            .map_err(|e| FetchError::other(module, version, e.to_string()))?;
        Ok(format!(
            "{}/{}/{tail}",
            base.trim_end_matches('/'),
            path_escape(&escaped)
        ))
    }

    fn version_tail(module: &str, version: &str, ext: &str) -> Result<String, FetchError> {
        let escaped = modzip::module::escape_version(version)
            .map_err(|e| FetchError::not_found(module, version, e.to_string()))?;
        Ok(format!("@v/{}.{ext}", path_escape(&escaped)))
    }

    /// Reads a small response body, mapping 404/410 to `NotFound`.
    async fn get_small(&self, url: &str, module: &str, version: &str) -> Result<Bytes, FetchError> {
        if url.starts_with("file:") {
            return read_file_url(url, module, version, MAX_SMALL_BODY).await;
        }
        let mut response = self.send(url, module, version).await?;
        if response
            .content_length()
            .is_some_and(|n| n > MAX_SMALL_BODY)
        {
            return Err(too_large(url, module, version, "response", MAX_SMALL_BODY));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(url, module, version, e))?
        {
            if (body.len() + chunk.len()) as u64 > MAX_SMALL_BODY {
                return Err(too_large(url, module, version, "response", MAX_SMALL_BODY));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }

    fn transport_error(
        &self,
        url: &str,
        module: &str,
        version: &str,
        e: reqwest::Error,
    ) -> FetchError {
        // reqwest errors can embed the URL; report the redacted one only.
        // The causes say what went wrong ("error following redirect" alone
        // does not).
        let e = e.without_url();
        let mut message = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            message.push_str(": ");
            message.push_str(&c.to_string());
            cause = c.source();
        }
        FetchError::Upstream {
            module: module.to_string(),
            version: version.to_string(),
            upstream: redact(url),
            status: None,
            message,
        }
    }

    async fn send(
        &self,
        url: &str,
        module: &str,
        version: &str,
    ) -> Result<reqwest::Response, FetchError> {
        let (authed, credentials) = self.initial_credentials(url).await;
        let mut response = self
            .get_following(url, &credentials, module, version)
            .await?;
        // As the go command: after any 4xx from an https URL, GOAUTH runs
        // again with that URL and the request is repeated (here only when
        // the credentials changed: the same request would get the same
        // answer).
        if let (Some(parsed), Some(auth)) = (&authed, &self.auth) {
            if response.status().is_client_error() {
                let failed = FailedResponse::of(&response);
                let renewed = auth
                    .after_failure(parsed, &failed, self.options.timeout)
                    .await;
                if renewed.as_ref().unwrap_or(&Vec::new())
                    != credentials.as_ref().unwrap_or(&Vec::new())
                {
                    response = self.get_following(url, &renewed, module, version).await?;
                }
            }
        }
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.bytes().await.unwrap_or_default();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Err(FetchError::not_found(module, version, first_line(&body)));
        }
        Err(FetchError::Upstream {
            module: module.to_string(),
            version: version.to_string(),
            upstream: redact(url),
            status: Some(status.as_u16()),
            message: format!("{status}: {}", first_line(&body)),
        })
    }

    async fn proxy_stat(
        &self,
        base: &str,
        module: &str,
        rev: &str,
    ) -> Result<(RevInfo, Bytes), FetchError> {
        let url = Self::module_url(base, module, rev, &Self::version_tail(module, rev, "info")?)?;
        let body = self.get_small(&url, module, rev).await?;
        let info = parse_info(&body, base, module, rev)?;
        Ok((info, body))
    }

    async fn proxy_fetch(
        &self,
        base: &str,
        module: &str,
        rev: &str,
    ) -> Result<FetchedModule, FetchError> {
        let (info, info_body) = self.proxy_stat(base, module, rev).await?;
        let version = info.version.clone();
        // Keep upstream's bytes when they describe the version itself in
        // the usual spelling; a resolved query, or JSON only Go's lenient
        // decoder reads the same way, is re-encoded.
        let usual_spelling =
            serde_json::from_slice::<RevInfo>(&info_body).is_ok_and(|strict| strict == info);
        let info_body = if version == rev && usual_spelling {
            info_body
        } else {
            info.to_json()
        };
        let invalid = |message: String| FetchError::InvalidResponse {
            module: module.to_string(),
            version: version.clone(),
            upstream: redact(base),
            message,
        };
        let mod_url = Self::module_url(
            base,
            module,
            &version,
            &Self::version_tail(module, &version, "mod")?,
        )?;
        let go_mod = self.get_small(&mod_url, module, &version).await?;
        verify::check_go_mod(module, &go_mod).map_err(invalid)?;
        let zip_url = Self::module_url(
            base,
            module,
            &version,
            &Self::version_tail(module, &version, "zip")?,
        )?;
        let zip = self.download_zip(&zip_url, module, &version).await?;
        let checked = {
            let (module, version) = (module.to_string(), version.clone());
            let (path, go_mod) = (zip.path().to_path_buf(), go_mod.clone());
            tokio::task::spawn_blocking(move || {
                verify::check_zip(&module, &version, &path, &go_mod)
            })
            .await
        };
        match checked {
            Ok(result) => result.map_err(invalid)?,
            Err(e) => {
                return Err(FetchError::other(
                    module,
                    &version,
                    format!("checking the zip: {e}"),
                ))
            }
        }
        Ok(FetchedModule {
            version,
            info: info_body,
            go_mod,
            zip,
        })
    }

    async fn download_zip(
        &self,
        url: &str,
        module: &str,
        version: &str,
    ) -> Result<FetchedZip, FetchError> {
        let local = |e: std::io::Error| {
            FetchError::other(module, version, format!("writing downloaded zip: {e}"))
        };
        if url.starts_with("file:") {
            let data = read_file_url(url, module, version, MAX_ZIP_FILE).await?;
            return FetchedZip::from_bytes(&data, self.options.temp_dir.as_deref()).map_err(local);
        }
        let mut response = self.send(url, module, version).await?;
        // A size announced over the limit is refused before any byte is
        // read; one that lies is caught while streaming.
        if response
            .content_length()
            .is_some_and(|n| n > self.max_zip_size)
        {
            return Err(too_large(url, module, version, "zip", self.max_zip_size));
        }
        let builder = {
            let mut b = tempfile::Builder::new();
            b.prefix(".athens-zip-");
            b
        };
        let named = match &self.options.temp_dir {
            Some(dir) => builder.tempfile_in(dir),
            None => builder.tempfile(),
        }
        .map_err(local)?;
        let (file, path) = named.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        let mut size: u64 = 0;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(url, module, version, e))?
        {
            size += chunk.len() as u64;
            if size > self.max_zip_size {
                return Err(too_large(url, module, version, "zip", self.max_zip_size));
            }
            file.write_all(&chunk).await.map_err(local)?;
        }
        file.flush().await.map_err(local)?;
        drop(file);
        FetchedZip::from_temp_path(path).map_err(local)
    }

    async fn proxy_list_lines(&self, base: &str, module: &str) -> Result<Vec<String>, FetchError> {
        let url = Self::module_url(base, module, "", "@v/list")?;
        let body = self.get_small(&url, module, "").await?;
        Ok(String::from_utf8_lossy(&body)
            .lines()
            .map(str::to_string)
            .collect())
    }

    async fn proxy_list(&self, base: &str, module: &str) -> Result<Vec<String>, FetchError> {
        let lines = self.proxy_list_lines(base, module).await?;
        Ok(tagged_versions(&lines))
    }

    async fn proxy_latest(&self, base: &str, module: &str) -> Result<RevInfo, FetchError> {
        let url = Self::module_url(base, module, "", "@latest")?;
        match self.get_small(&url, module, "").await {
            Ok(body) => parse_info(&body, base, module, ""),
            Err(e) if e.is_not_found() => {
                let lines = self.proxy_list_lines(base, module).await?;
                let best = latest_from_list(&lines).ok_or_else(|| {
                    FetchError::not_found(module, "latest", "no matching versions")
                })?;
                Ok(self.proxy_stat(base, module, &best).await?.0)
            }
            Err(e) => Err(e),
        }
    }
}

/// Asks `fetcher` what `request` asks.
async fn ask(
    fetcher: &dyn Fetcher,
    module: &str,
    request: Request<'_>,
) -> Result<Answer, FetchError> {
    Ok(match request {
        Request::Fetch(v) => Answer::Fetched(fetcher.fetch(module, v).await?),
        Request::List => Answer::Versions(fetcher.list(module).await?),
        Request::Latest => Answer::Info(fetcher.latest(module).await?),
        Request::Query(v) => Answer::Info(fetcher.query(module, v).await?),
    })
}

fn parse_info(body: &[u8], base: &str, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
    let invalid = |message: String| FetchError::InvalidResponse {
        module: module.to_string(),
        version: rev.to_string(),
        upstream: redact(base),
        message,
    };
    let info = verify::decode_info(body).map_err(invalid)?;
    verify::check_info_version(module, rev, &info).map_err(invalid)?;
    Ok(info)
}

fn too_large(url: &str, module: &str, version: &str, what: &str, max: u64) -> FetchError {
    FetchError::InvalidResponse {
        module: module.to_string(),
        version: version.to_string(),
        upstream: redact(url),
        message: format!("{what} larger than {max} bytes"),
    }
}

/// The go command's redirect rules: at most [`MAX_REDIRECTS`], and never
/// from a request that started over https to plain http. (reqwest itself
/// drops the credentials when a redirect changes the host or port.)
fn go_redirect_rule(attempt: reqwest::redirect::Attempt<'_>) -> reqwest::redirect::Action {
    let previous = attempt.previous();
    if previous.len() >= MAX_REDIRECTS {
        return attempt.error(format!("stopped after {MAX_REDIRECTS} redirects"));
    }
    if previous.first().is_some_and(|u| u.scheme() == "https") && attempt.url().scheme() != "https"
    {
        let from = previous
            .last()
            .map(|u| redact(u.as_str()))
            .unwrap_or_default();
        let to = redact(attempt.url().as_str());
        return attempt.error(format!(
            "redirected from secure URL {from} to insecure URL {to}"
        ));
    }
    attempt.follow()
}

/// [`go_redirect_rule`] for requests carrying credentials, stopping (to
/// hand the redirect back) where a hop would leave the scheme, host and
/// port first asked for.
fn credentialed_redirect_rule(
    attempt: reqwest::redirect::Attempt<'_>,
) -> reqwest::redirect::Action {
    let off_origin = attempt.previous().first().is_some_and(|first| {
        let next = attempt.url();
        first.scheme() != next.scheme()
            || first.host_str() != next.host_str()
            || first.port_or_known_default() != next.port_or_known_default()
    });
    if off_origin {
        return attempt.stop();
    }
    go_redirect_rule(attempt)
}

async fn read_file_url(
    url: &str,
    module: &str,
    version: &str,
    max: u64,
) -> Result<Bytes, FetchError> {
    let path = Url::parse(url)
        .ok()
        .and_then(|u| u.to_file_path().ok())
        .ok_or_else(|| FetchError::other(module, version, format!("invalid file URL {url}")))?;
    if let Ok(meta) = tokio::fs::metadata(&path).await {
        if meta.len() > max {
            return Err(too_large(url, module, version, "file", max));
        }
    }
    match tokio::fs::read(&path).await {
        Ok(data) => Ok(Bytes::from(data)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Err(FetchError::not_found(
                module,
                version,
                "no such file in file proxy",
            ))
        }
        Err(e) => Err(FetchError::other(
            module,
            version,
            format!("reading {}: {e}", path.display()),
        )),
    }
}

/// Valid, non-pseudo versions from the lines of a list response (first
/// field of each line), sorted.
fn tagged_versions(lines: &[String]) -> Vec<String> {
    let mut versions: Vec<String> = lines
        .iter()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|v| modzip::semver::is_valid(v) && !modzip::pseudo::is_pseudo_version(v))
        .map(str::to_string)
        .collect();
    versions.sort_by(|a, b| modzip::semver::compare_for_sort(a, b));
    versions.dedup();
    versions
}

/// What `@latest` means when a proxy has no `@latest` endpoint: the
/// highest release, else the highest prerelease, else the newest version
/// by time (a timestamp after the version, or a pseudo-version's time).
fn latest_from_list(lines: &[String]) -> Option<String> {
    let tagged = tagged_versions(lines);
    let releases: Vec<&String> = tagged
        .iter()
        .filter(|v| modzip::semver::prerelease(v).is_empty())
        .collect();
    if let Some(best) = releases.last() {
        return Some((*best).clone());
    }
    if let Some(best) = tagged.last() {
        return Some(best.clone());
    }
    let mut best: Option<(time::OffsetDateTime, String)> = None;
    for line in lines {
        let mut fields = line.split_whitespace();
        let Some(version) = fields.next() else {
            continue;
        };
        if !modzip::semver::is_valid(version) {
            continue;
        }
        let when = match fields.next() {
            Some(stamp) => {
                time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
                    .ok()
            }
            None => modzip::pseudo::pseudo_version_time(version).ok(),
        };
        if let Some(when) = when {
            if best.as_ref().is_none_or(|(t, _)| when > *t) {
                best = Some((when, version.to_string()));
            }
        }
    }
    best.map(|(_, v)| v)
}

#[async_trait]
impl Fetcher for UpstreamProxyFetcher {
    async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError> {
        match self.run(module, Request::Fetch(version)).await? {
            Answer::Fetched(m) => Ok(m),
            _ => Err(FetchError::other(
                module,
                version,
                "internal: mismatched answer",
            )),
        }
    }

    async fn list(&self, module: &str) -> Result<Vec<String>, FetchError> {
        match self.run(module, Request::List).await? {
            Answer::Versions(v) => Ok(v),
            _ => Err(FetchError::other(module, "", "internal: mismatched answer")),
        }
    }

    async fn latest(&self, module: &str) -> Result<RevInfo, FetchError> {
        match self.run(module, Request::Latest).await? {
            Answer::Info(i) => Ok(i),
            _ => Err(FetchError::other(module, "", "internal: mismatched answer")),
        }
    }

    async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
        match self.run(module, Request::Query(rev)).await? {
            Answer::Info(i) => Ok(i),
            _ => Err(FetchError::other(
                module,
                rev,
                "internal: mismatched answer",
            )),
        }
    }
}

#[cfg(test)]
mod tests;
