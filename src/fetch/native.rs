//! The native VCS fetcher (`vcs::fetcher::DirectFetcher`) behind the
//! server's [`Fetcher`] trait: what `direct` means in our GOPROXY list, and
//! what Athens did by running `go mod download`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use vcs::fetcher::{DirectFetcher, FailureKind, FetchError as VcsError};
use vcs::goenv::GoEnv;
use vcs::resolve::Info;

use super::upstream::{UpstreamOptions, UpstreamProxyFetcher};
use super::{FetchError, FetchedModule, FetchedZip, Fetcher, RevInfo};
use crate::config::Config;

/// The process variables Athens passes on to its go command; everything
/// else the fetcher honours (GOPRIVATE, GOINSECURE, GOVCS, ...) must come
/// from `GoBinaryEnvVars`, so a stray variable on the host changes nothing.
const INHERITED: &[&str] = &[
    "PATH",
    "HOME",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "GOROOT",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// The go environment Athens would give its go command: a few process
/// variables, then `GoBinaryEnvVars` (later entries win).
pub(crate) fn go_env_vars(config: &Config) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = INHERITED
        .iter()
        .filter_map(|key| Some((key.to_string(), std::env::var(key).ok()?)))
        .collect();
    for entry in &config.go_binary_env_vars.0 {
        if let Some((key, value)) = entry.split_once('=') {
            vars.push((key.to_string(), value.to_string()));
        }
    }
    vars
}

/// Fetches modules from their origin repositories, natively.
#[derive(Debug, Clone)]
pub struct NativeFetcher {
    /// Answers `list`, `latest` and queries (deadline: `Timeout`).
    direct: DirectFetcher,
    /// The same fetcher for downloads (deadline: `StashTimeout`).
    download: DirectFetcher,
    temp_dir: Option<PathBuf>,
    /// Request timeout towards a module proxy named by a go-import `mod`
    /// tag.
    proxy_timeout: Duration,
    module_proxies: ModuleProxies,
}

/// The fetchers of the module proxies go-import `mod` tags have named, one
/// per URL, so that each keeps its HTTP client and connections.
#[derive(Clone, Default)]
struct ModuleProxies(Arc<Mutex<HashMap<String, Arc<UpstreamProxyFetcher>>>>);

/// More distinct module proxies than this and the remembered ones are
/// dropped (they are few in practice; this only bounds memory).
const MAX_MODULE_PROXIES: usize = 64;

impl std::fmt::Debug for ModuleProxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self
            .0
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_tuple("ModuleProxies").field(&urls).finish()
    }
}

impl NativeFetcher {
    /// Wraps a prepared direct fetcher; zips are staged in `temp_dir` (the
    /// system temp dir when `None`). Calls run under the fetcher's own
    /// deadline until [`NativeFetcher::with_deadlines`] sets others.
    pub fn new(direct: DirectFetcher, temp_dir: Option<PathBuf>) -> NativeFetcher {
        NativeFetcher {
            download: direct.clone(),
            direct,
            temp_dir,
            proxy_timeout: UpstreamOptions::default().timeout,
            module_proxies: ModuleProxies::default(),
        }
    }

    /// Bounds every origin fetch: `lookup` for lists, `@latest` and
    /// queries (Athens' `Timeout`), `download` for fetching a version with
    /// its zip (`StashTimeout`). A fetch past its deadline is stopped and
    /// reported as an upstream timeout.
    pub fn with_deadlines(mut self, lookup: Duration, download: Duration) -> NativeFetcher {
        self.download = self.direct.clone().with_timeout(Some(download));
        self.direct = self.direct.with_timeout(Some(lookup));
        self
    }

    /// Sets the request timeout towards module proxies named by go-import
    /// `mod` tags.
    pub fn with_proxy_timeout(mut self, timeout: Duration) -> NativeFetcher {
        self.proxy_timeout = timeout;
        self
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
            .0
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
            timeout: self.proxy_timeout,
            temp_dir: self.temp_dir.clone(),
            no_proxy: String::new(),
            go_env: Some(self.direct.env().clone()),
            ..UpstreamOptions::default()
        };
        let fetcher = UpstreamProxyFetcher::new(url, None, options).map_err(|reason| {
            FetchError::not_found(
                module,
                version,
                format!("go-import names module proxy {url:?}: {reason}"),
            )
        })?;
        let fetcher = Arc::new(fetcher);
        if let Ok(mut known) = self.module_proxies.0.lock() {
            if known.len() >= MAX_MODULE_PROXIES {
                known.clear();
            }
            known.insert(url.to_string(), Arc::clone(&fetcher));
        }
        Ok(fetcher)
    }

    /// Builds the fetcher the configuration describes: the go environment
    /// Athens would give its go command (a few process variables plus
    /// `GoBinaryEnvVars`, later entries winning), credentials from
    /// `NETRCPath` and `GithubToken`, repositories cached under
    /// `GoGetDir/vcs` (see [`super::gogetdir`] for the default, private
    /// `GoGetDir`), within `GitCacheMaxBytes`, trees bounded by
    /// `MaxTreeDepth` and `MaxModuleFiles`.
    pub fn from_config(config: &Config) -> Result<NativeFetcher, String> {
        let base = super::gogetdir::prepare(&config.go_get_dir)?;
        let mut vars = go_env_vars(config);
        if let Some(netrc) = netrc_file(config, &base)? {
            vars.push(("NETRC".to_string(), netrc.display().to_string()));
        }
        let env = GoEnv::from_vars(vars).map_err(|e| format!("GoBinaryEnvVars: {e}"))?;
        let direct = DirectFetcher::new(env, base.join("vcs"))
            .map_err(|e| e.to_string())?
            .with_tree_limits(config.tree_limits())
            .with_git_limits(config.git_limits())
            .with_cache_budget(config.git_cache_max_bytes);
        let age = super::gogetdir::stale_age(config);
        super::gogetdir::tidy_in_background(base.clone(), age, config.git_cache_max_bytes);
        let temp_dir = Some(base);
        Ok(NativeFetcher::new(direct, temp_dir)
            .with_proxy_timeout(config.timeout_duration())
            .with_deadlines(config.timeout_duration(), config.stash_timeout_duration()))
    }

    fn staging_file(&self) -> std::io::Result<tempfile::NamedTempFile> {
        let builder = {
            let mut b = tempfile::Builder::new();
            b.prefix(".athens-fetch-").suffix(".zip");
            b
        };
        match &self.temp_dir {
            Some(dir) => builder.tempfile_in(dir),
            None => builder.tempfile(),
        }
    }
}

/// Athens gives its go command a netrc from `NETRCPath` and, for
/// `GithubToken`, a github.com entry; we hand the same credentials to our
/// fetcher through one private file (mode 0600, never logged).
fn netrc_file(config: &Config, dir: &Path) -> Result<Option<PathBuf>, String> {
    let token = config.github_token.expose();
    if config.netrc_path.is_empty() && token.is_empty() {
        return Ok(None);
    }
    if token.is_empty() {
        return Ok(Some(PathBuf::from(&config.netrc_path)));
    }
    let mut text = if config.netrc_path.is_empty() {
        String::new()
    } else {
        std::fs::read_to_string(&config.netrc_path)
            .map_err(|e| format!("reading NETRCPath {}: {e}", config.netrc_path))?
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "machine github.com login {token} password x-oauth-basic\n"
    ));
    super::gogetdir::write_private_file(dir, "netrc", text.as_bytes()).map(Some)
}

/// The status recorded for an origin fetch stopped at its deadline.
pub const DEADLINE_STATUS: u16 = 504;

fn convert(module: &str, version: &str, err: VcsError) -> FetchError {
    let message = err.to_string();
    if err.is_limit() {
        // Once per fetch: what was refused and why, for operators to tell
        // an attack or an oversized module from a limit set too low.
        tracing::warn!(module, version, reason = %message, "repository refused by a limit");
    }
    match err.kind() {
        // A forbidden VCS is as final for the client as a missing module:
        // the go command would refuse it too, so let GOPROXY fall through.
        FailureKind::NotFound | FailureKind::Forbidden => {
            FetchError::not_found(module, version, message)
        }
        FailureKind::Upstream => FetchError::Upstream {
            module: module.to_string(),
            version: version.to_string(),
            upstream: "direct".to_string(),
            status: None,
            message,
        },
        // Reported as an upstream failure carrying 504, the status a
        // gateway gives for an origin that did not answer in time.
        FailureKind::Timeout => FetchError::Upstream {
            module: module.to_string(),
            version: version.to_string(),
            upstream: "direct".to_string(),
            status: Some(DEADLINE_STATUS),
            message,
        },
        FailureKind::Internal => FetchError::other(module, version, message),
    }
}

fn rev_info(module: &str, version: &str, info: &Info) -> Result<RevInfo, FetchError> {
    serde_json::from_slice(&info.to_json())
        .map_err(|e| FetchError::other(module, version, format!("encoding .info: {e}")))
}

#[async_trait]
impl Fetcher for NativeFetcher {
    async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError> {
        let staging = self
            .staging_file()
            .map_err(|e| FetchError::other(module, version, format!("staging zip: {e}")))?;
        let file = staging
            .reopen()
            .map_err(|e| FetchError::other(module, version, format!("staging zip: {e}")))?;
        let downloaded = match self.download.download(module, version, file).await {
            Ok(downloaded) => downloaded,
            Err(VcsError::ModuleProxy { url, .. }) => {
                return self
                    .module_proxy(module, version, &url)?
                    .fetch(module, version)
                    .await;
            }
            Err(e) => return Err(convert(module, version, e)),
        };
        let zip = FetchedZip::from_temp_path(staging.into_temp_path())
            .map_err(|e| FetchError::other(module, version, format!("staged zip: {e}")))?;
        Ok(FetchedModule {
            version: downloaded.info.version.clone(),
            info: Bytes::from(downloaded.info.to_json()),
            go_mod: Bytes::from(downloaded.go_mod),
            zip,
        })
    }

    async fn list(&self, module: &str) -> Result<Vec<String>, FetchError> {
        match self.direct.list(module).await {
            Ok(versions) => Ok(versions),
            Err(VcsError::ModuleProxy { url, .. }) => {
                self.module_proxy(module, "", &url)?.list(module).await
            }
            Err(e) => Err(convert(module, "", e)),
        }
    }

    async fn latest(&self, module: &str) -> Result<RevInfo, FetchError> {
        match self.direct.latest(module).await {
            Ok(info) => rev_info(module, "latest", &info),
            Err(VcsError::ModuleProxy { url, .. }) => {
                self.module_proxy(module, "latest", &url)?
                    .latest(module)
                    .await
            }
            Err(e) => Err(convert(module, "latest", e)),
        }
    }

    async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
        match self.direct.query(module, rev).await {
            Ok(info) => rev_info(module, rev, &info),
            Err(VcsError::ModuleProxy { url, .. }) => {
                self.module_proxy(module, rev, &url)?
                    .query(module, rev)
                    .await
            }
            Err(e) => Err(convert(module, rev, e)),
        }
    }
}
