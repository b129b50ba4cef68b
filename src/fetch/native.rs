//! The native VCS fetcher (`vcs::fetcher::DirectFetcher`) behind the
//! server's [`Fetcher`] trait: what `direct` means in our GOPROXY list, and
//! what Athens did by running `go mod download`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use vcs::fetcher::{DirectFetcher, FailureKind, FetchError as VcsError};
use vcs::goenv::GoEnv;
use vcs::resolve::Info;

use super::{FetchError, FetchedModule, FetchedZip, Fetcher, RevInfo};
use crate::config::Config;

/// Fetches modules from their origin repositories, natively. A module
/// whose go-import tag names a module proxy is not fetched here: that
/// answer ([`FetchError::ModuleProxy`]) is for the GOPROXY chain
/// ([`super::UpstreamProxyFetcher`]) to follow.
#[derive(Debug, Clone)]
pub struct NativeFetcher {
    /// Answers `list`, `latest` and queries (deadline: `Timeout`).
    direct: DirectFetcher,
    /// The same fetcher for downloads (deadline: `StashTimeout`).
    download: DirectFetcher,
    temp_dir: Option<PathBuf>,
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

    /// Builds the fetcher the configuration describes over the server's go
    /// environment `go_env` (see [`super::go_env`]): repositories cached
    /// under `GoGetDir/vcs` (`go_get_dir` is the prepared `GoGetDir`, see
    /// [`super::gogetdir`]), within `GitCacheMaxBytes`, trees bounded by
    /// `MaxTreeDepth` and `MaxModuleFiles`, calls by `Timeout` and
    /// `StashTimeout`.
    pub fn from_config(
        config: &Config,
        go_env: &GoEnv,
        go_get_dir: &Path,
    ) -> Result<NativeFetcher, String> {
        let direct = DirectFetcher::new(go_env.clone(), go_get_dir.join("vcs"))
            .map_err(|e| e.to_string())?
            .with_tree_limits(config.tree_limits())
            .with_git_limits(config.git_limits())
            .with_cache_budget(config.git_cache_max_bytes)
            .with_hgrc_path((!config.hgrc_path.is_empty()).then(|| config.hgrc_path.clone().into()))
            .with_command_env(&config.go_binary_env_vars.0);
        let age = super::gogetdir::stale_age(config);
        super::gogetdir::tidy_in_background(
            go_get_dir.to_path_buf(),
            age,
            config.git_cache_max_bytes,
        );
        Ok(NativeFetcher::new(direct, Some(go_get_dir.to_path_buf()))
            .with_deadlines(config.timeout_duration(), config.stash_timeout_duration()))
    }

    /// The go environment the fetcher honours.
    pub fn go_env(&self) -> &GoEnv {
        self.direct.env()
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

/// The status recorded for an origin fetch stopped at its deadline.
pub const DEADLINE_STATUS: u16 = 504;

fn convert(module: &str, version: &str, err: VcsError) -> FetchError {
    if let VcsError::ModuleProxy { url, .. } = err {
        return FetchError::ModuleProxy {
            module: module.to_string(),
            version: version.to_string(),
            url,
        };
    }
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
        let downloaded = self
            .download
            .download(module, version, file)
            .await
            .map_err(|e| convert(module, version, e))?;
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
        self.direct
            .list(module)
            .await
            .map_err(|e| convert(module, "", e))
    }

    async fn latest(&self, module: &str) -> Result<RevInfo, FetchError> {
        match self.direct.latest(module).await {
            Ok(info) => rev_info(module, "latest", &info),
            Err(e) => Err(convert(module, "latest", e)),
        }
    }

    async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
        match self.direct.query(module, rev).await {
            Ok(info) => rev_info(module, rev, &info),
            Err(e) => Err(convert(module, rev, e)),
        }
    }
}
