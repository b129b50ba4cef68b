//! A [`Fetcher`] that asks other module proxies, walking a GOPROXY list the
//! way the go command does:
//!
//! * entries separated by `,` are tried in turn only while the previous one
//!   answers "not found" (404/410); after `|` any error falls through;
//! * `direct` hands the request to the plugged-in direct fetcher and ends
//!   the list; `off` fails every lookup and ends the list;
//! * module paths matching GONOPROXY (or GOPRIVATE when GONOPROXY is unset)
//!   always go to the direct fetcher.
//!
//! `http://`, `https://` and `file://` proxy URLs are supported.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::Url;
use tokio::io::AsyncWriteExt;

use super::native::go_env_vars;
use super::{is_canonical_version, FetchError, FetchedModule, FetchedZip, Fetcher, RevInfo};
use crate::config::Config;
use vcs::discovery::Netrc;
use vcs::goenv::GoEnv;

/// The go command's default when GOPROXY is not set.
pub const DEFAULT_GOPROXY: &str = "https://proxy.golang.org,direct";
/// Largest `.info`, `.mod` or list body accepted (the go command's go.mod cap).
const MAX_SMALL_BODY: u64 = 16 << 20;
/// Largest zip accepted (the go command's module zip cap).
pub const MAX_ZIP_SIZE: u64 = 500 << 20;

/// One entry of a GOPROXY list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyEntry {
    /// A proxy base URL.
    Url {
        /// The base URL (a scheme was added when the entry had none).
        url: String,
        /// Whether any error (not only "not found") falls through to the
        /// next entry: the entry was followed by `|`.
        fall_back_on_error: bool,
    },
    /// Fetch from the origin through the direct fetcher.
    Direct,
    /// Refuse all lookups.
    Off,
}

/// Parses a GOPROXY value. An empty value means [`DEFAULT_GOPROXY`].
pub fn parse_goproxy(spec: &str) -> Result<Vec<ProxyEntry>, String> {
    let spec = if spec.is_empty() {
        DEFAULT_GOPROXY
    } else {
        spec
    };
    let mut entries = Vec::new();
    let mut rest = spec;
    while !rest.is_empty() {
        let (item, fall_back_on_error) = match rest.find([',', '|']) {
            Some(i) => {
                let item = &rest[..i];
                let fall_back = rest.as_bytes()[i] == b'|';
                rest = &rest[i + 1..];
                (item, fall_back)
            }
            None => {
                let item = rest;
                rest = "";
                (item, false)
            }
        };
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        if item == "off" {
            entries.push(ProxyEntry::Off);
            break;
        }
        if item == "direct" {
            // Nothing after "direct" is ever consulted.
            entries.push(ProxyEntry::Direct);
            break;
        }
        let mut url = item.to_string();
        // Bare host names get https://, as the go command does; anything
        // already naming a scheme or an absolute path is taken as is.
        if item.contains(['.', ':', '/']) && !item.contains(":/") && !item.starts_with('/') {
            url = format!("https://{item}");
        }
        let parsed = Url::parse(&url).map_err(|e| format!("invalid proxy URL {item:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https" | "file") {
            return Err(format!(
                "invalid proxy URL {item:?}: scheme must be http, https or file"
            ));
        }
        entries.push(ProxyEntry::Url {
            url,
            fall_back_on_error,
        });
    }
    if entries.is_empty() {
        return Err("GOPROXY list is not the empty string, but contains no entries".into());
    }
    Ok(entries)
}

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
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            timeout: Duration::from_secs(300),
            temp_dir: None,
            no_proxy: String::new(),
            go_env: None,
        }
    }
}

/// A [`Fetcher`] over a GOPROXY list; see the module docs.
pub struct UpstreamProxyFetcher {
    entries: Vec<ProxyEntry>,
    direct: Option<Arc<dyn Fetcher>>,
    options: UpstreamOptions,
    client: reqwest::Client,
    /// Credentials for https proxies, from the go environment's netrc.
    netrc: Netrc,
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
    /// A fetcher for the GOPROXY list `goproxy`; `direct` serves the
    /// `direct` entry and GONOPROXY matches.
    pub fn new(
        goproxy: &str,
        direct: Option<Arc<dyn Fetcher>>,
        options: UpstreamOptions,
    ) -> Result<Self, String> {
        let entries = parse_goproxy(goproxy)?;
        let mut builder = reqwest::Client::builder()
            .timeout(options.timeout)
            .user_agent(concat!("athens-rs/", env!("CARGO_PKG_VERSION")));
        if let Some(env) = options.go_env.clone() {
            builder = builder
                .no_proxy()
                .proxy(reqwest::Proxy::custom(move |url| env.http_proxy_for(url)));
        }
        let client = builder
            .build()
            .map_err(|e| format!("creating HTTP client: {e}"))?;
        let netrc = match options.go_env.as_ref().and_then(GoEnv::netrc_path) {
            // A missing or unreadable netrc means no credentials, as for
            // the go command.
            Some(path) => Netrc::load(&path).unwrap_or_default(),
            None => Netrc::default(),
        };
        Ok(UpstreamProxyFetcher {
            entries,
            direct,
            options,
            client,
            netrc,
        })
    }

    /// A GET of `url`, with the netrc credentials the go command would send
    /// (https only, and not when the URL carries its own).
    fn get(&self, url: &str) -> reqwest::RequestBuilder {
        let request = self.client.get(url);
        if self.netrc.entries().is_empty() {
            return request;
        }
        let Ok(parsed) = Url::parse(url) else {
            return request;
        };
        if !parsed.username().is_empty() {
            return request;
        }
        match self.netrc.credentials_for(&parsed) {
            Some((login, password)) => request.basic_auth(login, Some(password)),
            None => request,
        }
    }

    /// Builds the fetcher from the configuration: GOPROXY, GONOPROXY and
    /// GOPRIVATE from `GoBinaryEnvVars`, `Timeout` and `GoGetDir`; requests
    /// go through the HTTP(S)_PROXY the go command would use, with the
    /// credentials of its netrc (`NETRCPath`, `NETRC` or `~/.netrc`).
    pub fn from_config(config: &Config, direct: Option<Arc<dyn Fetcher>>) -> Result<Self, String> {
        let env = &config.go_binary_env_vars;
        let goproxy = env.get("GOPROXY").unwrap_or("");
        let no_proxy = env
            .get("GONOPROXY")
            .or_else(|| env.get("GOPRIVATE"))
            .unwrap_or("")
            .to_string();
        let temp_dir = (!config.go_get_dir.is_empty()).then(|| PathBuf::from(&config.go_get_dir));
        let mut vars = go_env_vars(config);
        // Athens hands NETRCPath to its go command, which then uses it for
        // proxies as well as repositories.
        if !config.netrc_path.is_empty() {
            vars.push(("NETRC".to_string(), config.netrc_path.clone()));
        }
        let go_env = GoEnv::from_vars(vars).map_err(|e| format!("GoBinaryEnvVars: {e}"))?;
        Self::new(
            goproxy,
            direct,
            UpstreamOptions {
                timeout: config.timeout_duration(),
                temp_dir,
                no_proxy,
                go_env: Some(go_env),
            },
        )
    }

    /// The parsed proxy list.
    pub fn entries(&self) -> &[ProxyEntry] {
        &self.entries
    }

    async fn run(&self, module: &str, request: Request<'_>) -> Result<Answer, FetchError> {
        if !self.options.no_proxy.is_empty()
            && modzip::module::match_prefix_patterns(&self.options.no_proxy, module)
        {
            return self.ask_direct(module, request).await;
        }
        let mut best: Option<(ErrorRank, FetchError)> = None;
        for entry in &self.entries {
            let (result, rank_if_error, falls_through) = match entry {
                ProxyEntry::Off => (
                    Err(FetchError::Disabled {
                        module: module.to_string(),
                        version: request.version().to_string(),
                    }),
                    ErrorRank::NotExist,
                    false,
                ),
                ProxyEntry::Direct => (
                    self.ask_direct(module, request).await,
                    ErrorRank::Direct,
                    false,
                ),
                ProxyEntry::Url {
                    url,
                    fall_back_on_error,
                } => (
                    self.ask_proxy(url, module, request).await,
                    ErrorRank::Proxy,
                    *fall_back_on_error,
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
            let last = matches!(entry, ProxyEntry::Direct | ProxyEntry::Off);
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
        Ok(match request {
            Request::Fetch(v) => Answer::Fetched(direct.fetch(module, v).await?),
            Request::List => Answer::Versions(direct.list(module).await?),
            Request::Latest => Answer::Info(direct.latest(module).await?),
            Request::Query(v) => Answer::Info(direct.query(module, v).await?),
        })
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
            return read_file_url(url, module, version).await;
        }
        let mut response = self.send(url, module, version).await?;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(url, module, version, e))?
        {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > MAX_SMALL_BODY {
                return Err(FetchError::InvalidResponse {
                    module: module.to_string(),
                    version: version.to_string(),
                    upstream: redact(url),
                    message: format!("response larger than {MAX_SMALL_BODY} bytes"),
                });
            }
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
        FetchError::Upstream {
            module: module.to_string(),
            version: version.to_string(),
            upstream: redact(url),
            status: None,
            message: e.without_url().to_string(),
        }
    }

    async fn send(
        &self,
        url: &str,
        module: &str,
        version: &str,
    ) -> Result<reqwest::Response, FetchError> {
        let response = self
            .get(url)
            .send()
            .await
            .map_err(|e| self.transport_error(url, module, version, e))?;
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
        // Asking for a version that is valid for the module must give
        // exactly that version back.
        if is_canonical_version(rev)
            && modzip::module::check(module, rev).is_ok()
            && info.version != rev
        {
            return Err(FetchError::InvalidResponse {
                module: module.to_string(),
                version: rev.to_string(),
                upstream: redact(base),
                message: format!("returned info for version {} instead", info.version),
            });
        }
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
        // Keep upstream's bytes when they describe the version itself; a
        // resolved query is re-encoded so the stored .info is canonical.
        let info_body = if version == rev {
            info_body
        } else {
            info.to_json()
        };
        let mod_url = Self::module_url(
            base,
            module,
            &version,
            &Self::version_tail(module, &version, "mod")?,
        )?;
        let go_mod = self.get_small(&mod_url, module, &version).await?;
        let zip_url = Self::module_url(
            base,
            module,
            &version,
            &Self::version_tail(module, &version, "zip")?,
        )?;
        let zip = self.download_zip(&zip_url, module, &version).await?;
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
            let data = read_file_url(url, module, version).await?;
            return FetchedZip::from_bytes(&data, self.options.temp_dir.as_deref()).map_err(local);
        }
        let mut response = self.send(url, module, version).await?;
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
            if size > MAX_ZIP_SIZE {
                return Err(FetchError::InvalidResponse {
                    module: module.to_string(),
                    version: version.to_string(),
                    upstream: redact(url),
                    message: format!("zip larger than {MAX_ZIP_SIZE} bytes"),
                });
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

fn parse_info(body: &[u8], base: &str, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
    let invalid = |message: String| FetchError::InvalidResponse {
        module: module.to_string(),
        version: rev.to_string(),
        upstream: redact(base),
        message,
    };
    let info: RevInfo = serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
    if !is_canonical_version(&info.version) {
        return Err(invalid(format!(
            "version {:?} is not canonical",
            info.version
        )));
    }
    Ok(info)
}

async fn read_file_url(url: &str, module: &str, version: &str) -> Result<Bytes, FetchError> {
    let path = Url::parse(url)
        .ok()
        .and_then(|u| u.to_file_path().ok())
        .ok_or_else(|| FetchError::other(module, version, format!("invalid file URL {url}")))?;
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
