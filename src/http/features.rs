//! Optional request handling around the download protocol, as Athens has
//! it: the module filter, the validator hook, the checksum database proxy,
//! the home page, basic auth and the HTTPS redirect.
//!
//! Layering, outermost first: request log, HTTPS redirect (`ForceSSL`),
//! basic auth, then inside the (possibly prefixed) router the filter and
//! validator gate, which look only at download-protocol paths.
//!
//! The home page template (`HomeTemplatePath`) is read at every request,
//! as Athens reads it, and rendered by [`super::home_template`] (the part
//! of Go's html/template Athens' page uses); a template outside that part
//! stops the start, and one edited into it later answers 500.
//!
//! `X-Forwarded-Proto` (for `ForceSSL` and the home page's URL) is believed
//! only from peers in `TrustedProxies`. The peer is the
//! `ConnectInfo<SocketAddr>` request extension the server inserts; a
//! request without one (or from any other peer) is judged by its own
//! connection. A connection over `UnixSocket` (`ConnectInfo` of a Unix
//! socket address) comes from this machine and counts as a loopback peer.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::{bail, Context};
use axum::body::Body;
use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::home_template::HomeTemplate;
use super::{error_response, parse_protocol_path, Endpoint};
use crate::config::{parse_trusted_proxies, Config, IpRange};
use crate::download_mode::DownloadPolicy;
use crate::filter::{Filter, FilterRule};
use crate::pathmatch::matches_any_path_prefix;
use vcs::goenv::GoEnv;

/// One proxied checksum database.
#[derive(Debug, Clone)]
pub(crate) struct SumDb {
    /// The name clients use: the database URL's host.
    pub(crate) name: String,
    /// `scheme://host[:port]` requests are forwarded to.
    pub(crate) origin: String,
}

/// Everything the optional layers need, read from the configuration once
/// at start-up.
#[derive(Debug, Clone)]
pub struct Features {
    pub(crate) download_policy: DownloadPolicy,
    pub(crate) filter: Option<Arc<Filter>>,
    pub(crate) global_endpoint: String,
    pub(crate) validator_hook: Option<Hook>,
    pub(crate) sumdbs: Vec<SumDb>,
    /// The private checksum database, served under `/sumdb/<its name>/`.
    pub(crate) private_log: Option<Arc<crate::sumdb_log::PrivateLog>>,
    /// The `/index` feed (empty unless the composition root opens one).
    pub(crate) index: Arc<dyn crate::index::Indexer>,
    pub(crate) no_sum_patterns: Vec<String>,
    /// GONOSUMDB (defaulting to GOPRIVATE) of the go environment: private
    /// modules, whose lookups must not leave the server either.
    pub(crate) private_patterns: Vec<String>,
    pub(crate) home_template_path: String,
    pub(crate) basic_auth: Option<(String, String)>,
    pub(crate) force_ssl: bool,
    /// Peers whose `X-Forwarded-Proto` is believed.
    pub(crate) trusted_proxies: Vec<IpRange>,
    pub(crate) tls: bool,
    pub(crate) client: reqwest::Client,
    /// `RobotsFile`, served at `/robots.txt` ("" for none).
    pub(crate) robots_file: String,
}

/// The validator hook's URL, which may carry credentials in its user
/// information or query: only `shown` ever reaches a log or a message.
#[derive(Clone)]
pub(crate) struct Hook {
    url: reqwest::Url,
    shown: String,
}

impl Hook {
    /// Parses the `ValidatorHook` setting; the error never repeats it.
    pub(crate) fn parse(raw: &str) -> anyhow::Result<Hook> {
        let url = reqwest::Url::parse(raw)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .context("ValidatorHook is not an http:// or https:// URL with a host")?;
        let shown = shown_url(&url);
        Ok(Hook { url, shown })
    }
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// `url` without user information, query or fragment, for messages.
pub(crate) fn shown_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

impl Features {
    /// Reads `DownloadMode`/`DownloadURL`, the `FilterFile`, `SumDBs` and
    /// the other settings the layers use, and the private modules of the
    /// server's go environment `go_env`; fails on anything malformed,
    /// naming the setting (and file line where there is one).
    pub fn from_config(config: &Config, go_env: &GoEnv) -> anyhow::Result<Features> {
        let download_policy =
            DownloadPolicy::from_setting(&config.download_mode, &config.download_url)?;
        let filter = if config.filter_file.is_empty() {
            None
        } else {
            let filter = Filter::from_file(std::path::Path::new(&config.filter_file))?;
            if filter.uses_direct() && config.global_endpoint.is_empty() {
                bail!(
                    "FilterFile {} has D rules but GlobalEndpoint is empty",
                    config.filter_file
                );
            }
            Some(Arc::new(filter))
        };
        // Error bodies must not show where this server keeps its files.
        super::error_body::hide_local_dirs([
            config.storage.disk.root_path.as_str(),
            config.go_get_dir.as_str(),
        ]);
        let mut sumdbs = Vec::new();
        for url in &config.sum_dbs {
            let rest = url
                .strip_prefix("https://")
                .with_context(|| format!("SumDBs entry {url:?} must be an https:// URL"))?;
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            if host.is_empty() {
                bail!("SumDBs entry {url:?} has no host");
            }
            sumdbs.push(SumDb {
                name: host.to_string(),
                origin: format!("https://{host}"),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout_duration())
            .build()
            .context("building the HTTP client for the sumdb proxy and validator hook")?;
        check_home_template(&config.home_template_path)?;
        Ok(Features {
            download_policy,
            filter,
            global_endpoint: config.global_endpoint.clone(),
            validator_hook: if config.validator_hook.is_empty() {
                None
            } else {
                Some(Hook::parse(config.validator_hook.expose())?)
            },
            sumdbs,
            private_log: None,
            index: Arc::new(crate::index::NoIndex),
            no_sum_patterns: config.no_sum_patterns.clone(),
            private_patterns: private_patterns(go_env),
            home_template_path: config.home_template_path.clone(),
            basic_auth: config
                .basic_auth()
                .map(|(u, p)| (u.to_string(), p.to_string())),
            // Behind our own TLS every request is already HTTPS.
            force_ssl: config.force_ssl && !config.tls_enabled(),
            trusted_proxies: parse_trusted_proxies(&config.trusted_proxies)
                .map_err(|reason| anyhow::anyhow!("TrustedProxies: {reason}"))?,
            tls: config.tls_enabled(),
            client,
            robots_file: config.robots_file.clone(),
        })
    }
}

/// Refuses filtered modules and asks the validator hook about versioned
/// requests; other paths pass untouched.
pub(crate) async fn module_gate(
    State(features): State<Arc<Features>>,
    request: Request,
    next: Next,
) -> Response {
    let Ok((module, endpoint)) = parse_protocol_path(request.uri().path()) else {
        return next.run(request).await;
    };
    let version = match &endpoint {
        Endpoint::Info(v) | Endpoint::Mod(v) | Endpoint::Zip(v) => v.as_str(),
        Endpoint::List | Endpoint::Latest => "",
    };
    if let Some(filter) = &features.filter {
        match filter.rule(&module, version) {
            FilterRule::Exclude => {
                return error_response(
                    StatusCode::FORBIDDEN,
                    &format!("forbidden: {module} is excluded by the filter file"),
                )
            }
            FilterRule::Direct => {
                let full_path = request
                    .extensions()
                    .get::<OriginalUri>()
                    .map(|u| u.0.path().to_string())
                    .unwrap_or_else(|| request.uri().path().to_string());
                let location = format!(
                    "{}{}",
                    features.global_endpoint.trim_end_matches('/'),
                    full_path
                );
                return redirect(StatusCode::SEE_OTHER, &location);
            }
            FilterRule::Include | FilterRule::Default => {}
        }
    }
    if let (Some(hook), false) = (&features.validator_hook, version.is_empty()) {
        match validate(&features.client, hook, &module, version).await {
            Ok(true) => {}
            Ok(false) => {
                return error_response(
                    StatusCode::FORBIDDEN,
                    &format!("forbidden: {module}@{version} was refused by the validator hook"),
                )
            }
            Err(e) => {
                tracing::error!(module, version, error = %e, "validator hook failed");
                return error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error: validator hook failed",
                );
            }
        }
    }
    next.run(request).await
}

/// Asks the hook about `module@version`: 200 accepts, 403 refuses,
/// anything else is an error (as in Athens).
async fn validate(
    client: &reqwest::Client,
    hook: &Hook,
    module: &str,
    version: &str,
) -> Result<bool, String> {
    let body = serde_json::json!({ "Module": module, "Version": version });
    let shown = &hook.shown;
    // reqwest's errors name the full URL; it is shown here without secrets.
    let response = client
        .post(hook.url.clone())
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("POST {shown}: {}", e.without_url()))?;
    let status = response.status();
    let message = response.text().await.unwrap_or_default();
    if !message.trim().is_empty() {
        tracing::warn!(module, version, message = %message.trim(), "validator hook message");
    }
    match status.as_u16() {
        200 => Ok(true),
        403 => Ok(false),
        other => Err(format!("POST {shown}: unexpected status {other}")),
    }
}

fn redirect(status: StatusCode, location: &str) -> Response {
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// `/sumdb/{name}/supported` and the proxied `/sumdb/{name}/...` reads.
pub(crate) async fn sumdb_handler(
    State(features): State<Arc<Features>>,
    method: Method,
    request: Request,
) -> Response {
    let path = request.uri().path();
    let Some(rest) = path.strip_prefix("/sumdb/") else {
        return error_response(StatusCode::NOT_FOUND, "not found");
    };
    let (name, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if let Some(log) = features.private_log.as_ref().filter(|l| l.name() == name) {
        return crate::sumdb_log::http::serve(log, &method, tail).await;
    }
    let Some(db) = features.sumdbs.iter().find(|db| db.name == name) else {
        return error_response(
            StatusCode::NOT_FOUND,
            &format!("not found: no sumdb {name:?}"),
        );
    };
    if tail == "supported" {
        return StatusCode::OK.into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return error_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    if let Some(target) = tail.strip_prefix("lookup/") {
        if is_no_sum(&features.no_sum_patterns, target)
            || is_no_sum(&features.private_patterns, target)
        {
            return error_response(
                StatusCode::FORBIDDEN,
                &format!("forbidden: {target} matches the GONOSUMDB patterns"),
            );
        }
    }
    let mut url = format!("{}/{}", db.origin, tail);
    if let Some(query) = request.uri().query() {
        url.push('?');
        url.push_str(query);
    }
    let upstream = match features.client.request(method.clone(), &url).send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(url, error = %e, "sumdb request failed");
            return error_response(
                StatusCode::BAD_GATEWAY,
                "bad gateway: checksum database unreachable",
            );
        }
    };
    let status =
        StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response_headers = Vec::new();
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CACHE_CONTROL,
    ] {
        if let Some(value) = upstream.headers().get(name.as_str()) {
            if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
                response_headers.push((name, value));
            }
        }
    }
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from_stream(upstream.bytes_stream())
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    for (name, value) in response_headers {
        response.headers_mut().insert(name, value);
    }
    response
}

/// The go command's private-module patterns for checksum lookups: GONOSUMDB
/// of the go environment the fetchers honour.
pub(crate) fn private_patterns(go_env: &GoEnv) -> Vec<String> {
    go_env
        .gonosumdb()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether a lookup target (`module@version`, case-escaped) is private.
/// Athens matches the raw target; the module path alone is matched too,
/// so a pattern naming a whole module (not only a prefix) also applies.
fn is_no_sum(patterns: &[String], target: &str) -> bool {
    if matches_any_path_prefix(patterns, target) {
        return true;
    }
    let escaped_module = target.split('@').next().unwrap_or(target);
    let module = modzip::module::unescape_path(escaped_module)
        .unwrap_or_else(|_| escaped_module.to_string());
    matches_any_path_prefix(patterns, &module)
}

/// The IP address of the peer that sent `request`, from the connection
/// information the server recorded; a Unix socket peer is on this machine.
fn peer_ip(request: &Request) -> Option<IpAddr> {
    let extensions = request.extensions();
    if let Some(ConnectInfo(addr)) = extensions.get::<ConnectInfo<SocketAddr>>() {
        return Some(addr.ip());
    }
    #[cfg(unix)]
    if extensions
        .get::<ConnectInfo<tokio::net::unix::SocketAddr>>()
        .is_some()
    {
        return Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    }
    None
}

/// Whether a trusted proxy says the client's request was https. Anyone can
/// send the header, so it counts only when the peer is in `TrustedProxies`.
pub(crate) fn forwarded_https(request: &Request, trusted: &[IpRange]) -> bool {
    let says_https = request
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    says_https && peer_ip(request).is_some_and(|ip| trusted.iter().any(|r| r.contains(ip)))
}

/// Scheme and host the client used, for the home page.
fn client_host(request: &Request, features: &Features) -> String {
    let host = request
        .uri()
        .authority()
        .map(|a| a.to_string())
        .or_else(|| {
            request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    if host.starts_with("http://") || host.starts_with("https://") {
        return host;
    }
    let https = features.tls
        || request.uri().scheme_str() == Some("https")
        || forwarded_https(request, &features.trusted_proxies);
    format!("{}://{host}", if https { "https" } else { "http" })
}

const DEFAULT_HOME: &str = r#"<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Go module proxy</title></head>
<body>
<h1>Go module proxy</h1>
<p>Point the go command at this proxy:</p>
<pre>go env -w GOPROXY={{ .Host }},direct</pre>
{{ if .NoSumPatterns }}<p>Modules matching these patterns are private and must not be checked against the public checksum database:</p>
<pre>go env -w GONOSUMDB={{ .NoSumPatterns }}</pre>
{{ end }}<p>The <a href="catalog">catalog</a> lists the stored modules.</p>
</body>
</html>
"#;

/// The built-in page, parsed once.
static DEFAULT_TEMPLATE: std::sync::LazyLock<HomeTemplate> = std::sync::LazyLock::new(|| {
    HomeTemplate::parse(DEFAULT_HOME).expect("the built-in home page is in the supported subset")
});

/// Refuses a `HomeTemplatePath` file that exists but cannot be read or
/// uses constructs outside the supported subset; a missing file means the
/// built-in page, as in Athens.
fn check_home_template(path: &str) -> anyhow::Result<()> {
    if path.is_empty() {
        return Ok(());
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => bail!("HomeTemplatePath {path}: {e}"),
    };
    HomeTemplate::parse(&text).map_err(|e| anyhow::anyhow!("HomeTemplatePath {path}: {e}"))?;
    Ok(())
}

/// The home page: the template file when it exists, else the built-in
/// page, with the client's host and the GONOSUMDB patterns filled in.
pub(crate) async fn home(State(features): State<Arc<Features>>, request: Request) -> Response {
    let path = &features.home_template_path;
    let parsed;
    let template = match tokio::fs::read_to_string(path).await {
        Ok(text) => match HomeTemplate::parse(&text) {
            Ok(t) => {
                parsed = t;
                &parsed
            }
            Err(e) => {
                // Checked at start; the file was changed since.
                tracing::error!(path = %path, error = %e, "home template");
                return error_response(StatusCode::INTERNAL_SERVER_ERROR, "home template");
            }
        },
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound && !path.is_empty() {
                tracing::error!(path = %path, error = %e, "reading home template");
            }
            &*DEFAULT_TEMPLATE
        }
    };
    let host = client_host(&request, &features);
    let patterns = features.no_sum_patterns.join(",");
    let page = template.render(&[("Host", &host), ("NoSumPatterns", &patterns)]);
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

/// Compares without an early exit, so timing does not reveal how much of
/// a secret was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= (x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

fn credentials_match(request: &Request, user: &str, pass: &str) -> bool {
    let Some(value) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return false;
    };
    let user_ok = constant_time_eq(&decoded[..colon], user.as_bytes());
    let pass_ok = constant_time_eq(&decoded[colon + 1..], pass.as_bytes());
    user_ok & pass_ok
}

/// Basic auth on everything except `/healthz` and `/readyz`.
pub(crate) async fn basic_auth(
    State(features): State<Arc<Features>>,
    request: Request,
    next: Next,
) -> Response {
    let Some((user, pass)) = &features.basic_auth else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    if path == "/healthz" || path == "/readyz" || credentials_match(&request, user, pass) {
        return next.run(request).await;
    }
    let mut response = error_response(StatusCode::UNAUTHORIZED, "unauthorized");
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"basic auth required\""),
    );
    response
}

/// With `ForceSSL`, plain-HTTP requests (no TLS and no
/// `X-Forwarded-Proto: https` from a trusted proxy) are sent to the
/// https:// URL with 301.
pub(crate) async fn force_ssl(
    State(features): State<Arc<Features>>,
    request: Request,
    next: Next,
) -> Response {
    let direct_https = request.uri().scheme_str() == Some("https");
    if !features.force_ssl || direct_https || forwarded_https(&request, &features.trusted_proxies) {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    redirect(
        StatusCode::MOVED_PERMANENTLY,
        &format!("https://{host}{path_and_query}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_home_page_is_filled_in() {
        let default = DEFAULT_TEMPLATE.render(&[("Host", "https://proxy.example")]);
        assert!(default.contains("GOPROXY=https://proxy.example,direct"));
        assert!(!default.contains("GONOSUMDB"));
        assert!(!default.contains("{{"));
        let with_patterns =
            DEFAULT_TEMPLATE.render(&[("Host", "h"), ("NoSumPatterns", "corp.example/*")]);
        assert!(with_patterns.contains("GONOSUMDB=corp.example/*"));
    }

    #[test]
    fn unsupported_home_templates_stop_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home.html");
        std::fs::write(&path, "ok\n{{ .Host | printf \"%q\" }}").unwrap();
        let shown = path.to_string_lossy().into_owned();
        let e = check_home_template(&shown).unwrap_err().to_string();
        assert!(e.contains(&shown) && e.contains("line 2"), "{e}");
        std::fs::write(&path, "{{ .Host }}").unwrap();
        check_home_template(&shown).unwrap();
        check_home_template(&dir.path().join("absent").to_string_lossy()).unwrap();
        check_home_template("").unwrap();
    }

    #[test]
    fn no_sum_patterns_match_lookup_targets() {
        let patterns = vec![
            "github.com/private".to_string(),
            "corp.example/!team".to_string(),
        ];
        assert!(is_no_sum(&patterns, "github.com/private/repo@v1.0.0"));
        assert!(!is_no_sum(&patterns, "github.com/public/repo@v1.0.0"));
        let whole = vec![
            "github.com/!acme/tool".to_string(),
            "github.com/Acme/tool".to_string(),
        ];
        assert!(is_no_sum(&whole, "github.com/!acme/tool@v1.2.3"));
    }

    #[tokio::test]
    async fn validator_hook_url_is_shown_without_secrets() {
        // A port nothing listens on: the request fails, and the error (which
        // is logged) names the hook without user information or query.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let raw =
            format!("http://hookuser:hookpass@127.0.0.1:{port}/validate?token=hooktoken#frag");
        let hook = Hook::parse(&raw).unwrap();
        assert_eq!(hook.shown, format!("http://127.0.0.1:{port}/validate"));
        assert_eq!(format!("{hook:?}"), hook.shown);
        let err = validate(&reqwest::Client::new(), &hook, "example.com/m", "v1.0.0")
            .await
            .unwrap_err();
        assert!(err.contains(&hook.shown), "{err}");
        for secret in ["hookuser", "hookpass", "hooktoken", "frag"] {
            assert!(!err.contains(secret), "{secret} in {err}");
        }
        let bad = Hook::parse("ftp://u:hookpass@h/x").unwrap_err();
        assert!(!format!("{bad:#}").contains("hookpass"), "{bad:#}");
        assert!(Hook::parse("not a url hookpass").is_err());
    }

    #[test]
    fn constant_time_comparison_is_equality() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret1"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}

#[cfg(test)]
#[path = "features_tests.rs"]
mod http_tests;
