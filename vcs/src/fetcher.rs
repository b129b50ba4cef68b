//! The direct fetcher: a module path in, the proxy's answers out.
//!
//! This is where the layers meet: [`discovery`](crate::discovery) maps the
//! path to a repository, [`git`](crate::git) opens it through the
//! persistent cache, and [`resolve`](crate::resolve) applies the go
//! command's version rules. Everything below is blocking, so each call runs
//! on tokio's blocking pool; the repository is opened (and refreshed from
//! its remote) once per call, which is once per version the proxy stashes.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::codehost::{CodeError, CodeRepo};
use crate::discovery::{self, DiscoveryClient, DiscoveryError, Netrc, RepoRoot, Vcs};
use crate::git::{GitOptions, GitRepo, HostCredentials};
use crate::goenv::GoEnv;
use crate::resolve::{Info, ModuleRepo, ResolveError, VersionProblem};

/// How a proxy should classify a failed fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The module or version does not exist (the go client may fall through).
    NotFound,
    /// Policy (GOVCS) forbids fetching it.
    Forbidden,
    /// The origin could not be reached or answered badly.
    Upstream,
    /// A local fault: disk, cache, a crashed worker.
    Internal,
}

/// Why a direct fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Mapping the module path to a repository failed.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The repository was found but the module, version or query was not.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// A go-import `mod` tag says the module is served by the module proxy
    /// at `url` (the go command then fetches it from there with the GOPROXY
    /// protocol, as from a GOPROXY entry); this fetcher speaks only git, so
    /// it leaves that to its caller.
    #[error("{path}: served by the module proxy at {url}")]
    ModuleProxy {
        /// The module path.
        path: String,
        /// The proxy's base URL.
        url: String,
    },
    /// The repository uses something other than git.
    #[error("{path}: {vcs} repositories are not supported by the native fetcher")]
    UnsupportedVcs {
        /// The module path.
        path: String,
        /// The version control system the repository announced.
        vcs: String,
    },
    /// Writing the zip to local storage failed.
    #[error("{path}: writing zip: {source}")]
    Io {
        /// The module path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A blocking worker panicked or was cancelled.
    #[error("{path}: fetch worker failed: {reason}")]
    Worker {
        /// The module path.
        path: String,
        /// What the runtime reported.
        reason: String,
    },
}

impl FetchError {
    /// The classification a proxy maps to an HTTP status.
    pub fn kind(&self) -> FailureKind {
        match self {
            FetchError::Discovery(e) => match e {
                DiscoveryError::NotFound { .. } | DiscoveryError::Invalid { .. } => {
                    FailureKind::NotFound
                }
                DiscoveryError::Forbidden { .. } => FailureKind::Forbidden,
                DiscoveryError::Upstream { .. } => FailureKind::Upstream,
            },
            FetchError::Resolve(e) => match e.http_status() {
                404 | 410 => FailureKind::NotFound,
                502 => FailureKind::Upstream,
                _ => FailureKind::Internal,
            },
            // The go command could not fetch such a module through git
            // either; a proxy further down GOPROXY might have it.
            FetchError::UnsupportedVcs { .. } | FetchError::ModuleProxy { .. } => {
                FailureKind::NotFound
            }
            FetchError::Io { .. } | FetchError::Worker { .. } => FailureKind::Internal,
        }
    }
}

/// The files of one module version, as a proxy stores them.
#[derive(Debug)]
pub struct Downloaded {
    /// Canonical version, `.info` contents and provenance.
    pub info: Info,
    /// The `.mod` file (the go.mod at that version, or synthesized).
    pub go_mod: Vec<u8>,
}

/// Fetches modules straight from their version-control origin.
#[derive(Debug, Clone)]
pub struct DirectFetcher {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    env: GoEnv,
    client: DiscoveryClient,
    git: GitOptions,
    cache_root: PathBuf,
}

impl DirectFetcher {
    /// A fetcher that honours `env` (GOPRIVATE, GOINSECURE, GOVCS, NETRC,
    /// the git config it names, proxies) and keeps bare repositories under
    /// `cache_root`, which is created if missing.
    pub fn new(env: GoEnv, cache_root: impl Into<PathBuf>) -> Result<DirectFetcher, FetchError> {
        let client = DiscoveryClient::new(&env).map_err(|e| FetchError::Worker {
            path: String::new(),
            reason: format!("building the HTTP client: {e}"),
        })?;
        Self::with_client(env, client, cache_root)
    }

    /// Like [`DirectFetcher::new`] with a prepared discovery client (pinned
    /// hosts, extra root certificates).
    pub fn with_client(
        env: GoEnv,
        client: DiscoveryClient,
        cache_root: impl Into<PathBuf>,
    ) -> Result<DirectFetcher, FetchError> {
        let cache_root = cache_root.into();
        std::fs::create_dir_all(&cache_root).map_err(|source| FetchError::Io {
            path: cache_root.display().to_string(),
            source,
        })?;
        let mut git = GitOptions::from_env(|key| env.get(key).map(str::to_string));
        git.credentials = netrc_credentials(&env);
        Ok(DirectFetcher {
            inner: Arc::new(Inner {
                env,
                client,
                git,
                cache_root,
            }),
        })
    }

    /// Sets the git cache's size budget in bytes (0: none); see
    /// [`crate::git::budget`].
    pub fn with_cache_budget(mut self, max_bytes: u64) -> DirectFetcher {
        Arc::make_mut(&mut self.inner).git.cache_max_bytes = max_bytes;
        self
    }

    /// The go environment this fetcher honours.
    pub fn env(&self) -> &GoEnv {
        &self.inner.env
    }

    /// Where the bare repositories are kept.
    pub fn cache_root(&self) -> &Path {
        &self.inner.cache_root
    }

    /// The tagged versions of `path` (the proxy's `list`).
    pub async fn list(&self, path: &str) -> Result<Vec<String>, FetchError> {
        self.with_module(path, |m| Ok(m.versions("")?)).await
    }

    /// What `@latest` means for `path`: the highest release, else the
    /// highest prerelease, else a pseudo-version of the default branch.
    pub async fn latest(&self, path: &str) -> Result<Info, FetchError> {
        self.with_module(path, |m| Ok(m.query_latest()?)).await
    }

    /// Resolves any query the go command accepts after `@` (a version,
    /// version prefix, branch, tag, commit hash, `latest`, `upgrade`, ...).
    pub async fn query(&self, path: &str, query: &str) -> Result<Info, FetchError> {
        let query = query.to_string();
        self.with_module(path, move |m| Ok(m.query(&query)?)).await
    }

    /// Resolves `query`, then writes the module zip of the version it names
    /// to `zip` and returns the `.info` and `.mod` contents. One repository
    /// open serves all three artifacts, so they describe the same commit.
    pub async fn download(
        &self,
        path: &str,
        query: &str,
        zip: File,
    ) -> Result<Downloaded, FetchError> {
        let query = query.to_string();
        let module = path.to_string();
        self.with_module(path, move |m| {
            let info = m.query(&query)?;
            let go_mod = m.go_mod(&info.version)?;
            let writer = m.zip(&info.version, BufWriter::new(zip))?;
            let io_err = |source| FetchError::Io {
                path: module.clone(),
                source,
            };
            let file = writer.into_inner().map_err(|e| io_err(e.into_error()))?;
            file.sync_all().map_err(io_err)?;
            Ok(Downloaded { info, go_mod })
        })
        .await
    }

    /// Maps `path` to its repository and opens it: the shared first step.
    async fn with_module<T, F>(&self, path: &str, work: F) -> Result<T, FetchError>
    where
        T: Send + 'static,
        F: FnOnce(&ModuleRepo) -> Result<T, FetchError> + Send + 'static,
    {
        let root = discovery::resolve_repo(path, &self.inner.env, &self.inner.client).await?;
        if root.vcs == Vcs::Mod {
            return Err(FetchError::ModuleProxy {
                path: path.to_string(),
                url: root.repo_url,
            });
        }
        if root.vcs != Vcs::Git {
            return Err(FetchError::UnsupportedVcs {
                path: path.to_string(),
                vcs: root.vcs.to_string(),
            });
        }
        let inner = self.inner.clone();
        let module = path.to_string();
        tokio::task::spawn_blocking(move || {
            let repo = open_repo(&inner, &root)?;
            let m = ModuleRepo::new(&module, repo, &root.root, root.subdir.as_deref())?;
            work(&m)
        })
        .await
        .map_err(|e| FetchError::Worker {
            path: path.to_string(),
            reason: e.to_string(),
        })?
    }
}

fn open_repo(inner: &Inner, root: &RepoRoot) -> Result<Arc<dyn CodeRepo>, FetchError> {
    match GitRepo::open(&root.repo_url, &inner.cache_root, inner.git.clone()) {
        Ok(repo) => Ok(Arc::new(repo)),
        // A repository that is gone is a module that does not exist, not a
        // failing origin: the client should fall through.
        Err(CodeError::NotFound(reason)) => Err(ResolveError::NotFound(VersionProblem {
            module: root.root.clone(),
            version: None,
            pseudo: false,
            reason,
        })
        .into()),
        Err(source) => Err(ResolveError::Upstream {
            module: root.root.clone(),
            source,
        }
        .into()),
    }
}

/// Credentials git may offer, one per netrc machine; a missing or unreadable
/// netrc simply means none.
fn netrc_credentials(env: &GoEnv) -> Vec<HostCredentials> {
    let Some(path) = env.netrc_path() else {
        return Vec::new();
    };
    let Ok(netrc) = Netrc::load(&path) else {
        return Vec::new();
    };
    netrc
        .entries()
        .iter()
        .map(|e| HostCredentials {
            host: e.machine.clone(),
            username: e.login.clone(),
            password: e.password().to_string(),
        })
        .collect()
}
