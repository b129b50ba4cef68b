//! The direct fetcher: a module path in, the proxy's answers out.
//!
//! This is where the layers meet: [`discovery`] maps the path to a
//! repository, [`git`](crate::git) opens it through the persistent cache,
//! and [`resolve`](crate::resolve) applies the go command's version rules.
//! Everything below is blocking, so each call runs on tokio's blocking
//! pool; the repository is opened (and refreshed from its remote) once per
//! call, which is once per version the proxy stashes.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{CliOptions, CliRepo};
use crate::codehost::{CodeError, CodeRepo};
use crate::discovery::{self, DiscoveryClient, DiscoveryError, Netrc, RepoRoot, Vcs};
use crate::git::{GitLimits, GitOptions, GitRepo, HostCredentials, TreeLimits};
use crate::goenv::GoEnv;
use crate::interrupt::{Interrupt, Stopped};
use crate::phases::phase;
use crate::resolve::{Info, ModuleRepo, ResolveError, VersionProblem};
use modzip::zip::DeflateCache;

/// How a proxy should classify a failed fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The module or version does not exist (the go client may fall through).
    NotFound,
    /// Policy (GOVCS) forbids fetching it.
    Forbidden,
    /// The origin could not be reached or answered badly.
    Upstream,
    /// The origin did not answer within the deadline (a gateway timeout).
    Timeout,
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
    /// The repository uses a version-control system this fetcher cannot
    /// drive.
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
    /// The fetch did not finish within its deadline; the work was stopped.
    #[error("{path}: fetching from the origin took longer than {}s", timeout.as_secs_f64())]
    Deadline {
        /// The module path.
        path: String,
        /// The deadline the fetch ran under.
        timeout: Duration,
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
            FetchError::Deadline { .. } => FailureKind::Timeout,
            FetchError::Io { .. } | FetchError::Worker { .. } => FailureKind::Internal,
        }
    }
}

impl FetchError {
    /// Whether the version was refused because the repository crosses a
    /// limit (tree depth or size, a file or the module over the go
    /// command's size limits): worth a log line, since it may be an attack
    /// or a limit set too low.
    pub fn is_limit(&self) -> bool {
        match self {
            FetchError::Resolve(ResolveError::Refused { .. }) => true,
            FetchError::Resolve(ResolveError::Zip { source, .. }) => {
                matches!(**source, modzip::zip::ZipError::SourceTreeTooLarge { .. })
            }
            _ => false,
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
///
/// Every call runs under an [`Interrupt`]: the deadline set with
/// [`DirectFetcher::with_timeout`] (none by default) covers discovery, ref
/// listing, object transfer and zip writing, and dropping the call's future
/// stops its blocking work too. Stopped work releases the cache entry's lock
/// and leaves nothing partial behind.
#[derive(Debug, Clone)]
pub struct DirectFetcher {
    inner: Arc<Inner>,
    /// Bounds on the trees read to build zips.
    tree_limits: TreeLimits,
    timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
struct Inner {
    env: GoEnv,
    client: DiscoveryClient,
    git: GitOptions,
    cache_root: PathBuf,
    /// Mercurial's configuration file (Athens' `HGRCPath`), if any.
    hgrc_path: Option<PathBuf>,
    /// Variables set for version-control commands on top of the go
    /// environment's `HOME` and proxies.
    command_env: Vec<(String, String)>,
    /// Deflated files of earlier zips, for the next version's zip.
    deflate_cache: Arc<DeflateCache>,
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
        git.http_backends.prepare();
        Ok(DirectFetcher {
            inner: Arc::new(Inner {
                env,
                client,
                git,
                cache_root,
                hgrc_path: None,
                command_env: Vec::new(),
                deflate_cache: Arc::new(DeflateCache::new(DEFLATE_CACHE_BYTES)),
            }),
            tree_limits: TreeLimits::default(),
            timeout: None,
        })
    }

    /// The same fetcher with other bounds on the repository trees it reads
    /// (by default git's tree depth and [`TreeLimits::DEFAULT_MAX_ENTRIES`]);
    /// a version whose tree crosses one is refused as not found.
    pub fn with_tree_limits(mut self, limits: TreeLimits) -> DirectFetcher {
        self.tree_limits = limits;
        self
    }

    /// The bounds on repository trees in force.
    pub fn tree_limits(&self) -> TreeLimits {
        self.tree_limits
    }

    /// The same fetcher with every call bounded by `timeout` (`None`: no
    /// deadline). Clones share the cache and HTTP client.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> DirectFetcher {
        self.timeout = timeout;
        self
    }

    /// The same fetcher refusing git transfers beyond `limits`.
    pub fn with_git_limits(self, limits: GitLimits) -> DirectFetcher {
        let inner = match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.git.limits = limits;
                inner
            }
            Err(shared) => {
                let mut git = shared.git.clone();
                git.limits = limits;
                Inner {
                    env: shared.env.clone(),
                    client: shared.client.clone(),
                    git,
                    cache_root: shared.cache_root.clone(),
                    hgrc_path: shared.hgrc_path.clone(),
                    command_env: shared.command_env.clone(),
                    deflate_cache: Arc::clone(&shared.deflate_cache),
                }
            }
        };
        DirectFetcher {
            inner: Arc::new(inner),
            tree_limits: self.tree_limits,
            timeout: self.timeout,
        }
    }

    /// The same fetcher giving Mercurial `hgrc` as its configuration (after
    /// the system's, in place of the user's `~/.hgrc`), as Athens does with
    /// `HGRCPath`.
    pub fn with_hgrc_path(mut self, hgrc: Option<PathBuf>) -> DirectFetcher {
        Arc::make_mut(&mut self.inner).hgrc_path = hgrc;
        self
    }

    /// The same fetcher setting `vars` (`KEY=VALUE`; later entries win)
    /// for the Mercurial, Subversion and Fossil commands it runs, as Athens'
    /// go command hands its `GoBinaryEnvVars` to the tools it starts (for
    /// example `USER`, which `fossil clone` needs).
    pub fn with_command_env<S: AsRef<str>>(mut self, vars: &[S]) -> DirectFetcher {
        Arc::make_mut(&mut self.inner).command_env = vars
            .iter()
            .filter_map(|entry| {
                let (k, v) = entry.as_ref().split_once('=')?;
                (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
            })
            .collect();
        self
    }

    /// The deadline calls run under, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
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
        self.with_module(path, |m, _| Ok(m.versions("")?)).await
    }

    /// What `@latest` means for `path`: the highest release, else the
    /// highest prerelease, else a pseudo-version of the default branch.
    pub async fn latest(&self, path: &str) -> Result<Info, FetchError> {
        self.with_module(path, |m, _| Ok(m.query_latest()?)).await
    }

    /// Resolves any query the go command accepts after `@` (a version,
    /// version prefix, branch, tag, commit hash, `latest`, `upgrade`, ...).
    pub async fn query(&self, path: &str, query: &str) -> Result<Info, FetchError> {
        let query = query.to_string();
        self.with_module(path, move |m, _| Ok(m.query(&query)?))
            .await
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
        self.with_module(path, move |m, interrupt| {
            let info = phase!("query").in_scope(|| m.query(&query))?;
            let go_mod = phase!("go_mod").in_scope(|| m.go_mod(&info.version))?;
            let checked = Checked {
                inner: BufWriter::new(zip),
                interrupt: interrupt.clone(),
            };
            let writer = phase!("zip").in_scope(|| m.zip(&info.version, checked))?;
            let io_err = |source| FetchError::Io {
                path: module.clone(),
                source,
            };
            let file = writer
                .inner
                .into_inner()
                .map_err(|e| io_err(e.into_error()))?;
            file.sync_all().map_err(io_err)?;
            Ok(Downloaded { info, go_mod })
        })
        .await
    }

    /// Maps `path` to its repository and opens it: the shared first step.
    /// Runs under a fresh [`Interrupt`] with this fetcher's deadline; the
    /// blocking part sees it through its git options and `work`'s second
    /// argument.
    async fn with_module<T, F>(&self, path: &str, work: F) -> Result<T, FetchError>
    where
        T: Send + 'static,
        F: FnOnce(&ModuleRepo, &Interrupt) -> Result<T, FetchError> + Send + 'static,
    {
        let interrupt = match self.timeout {
            Some(limit) => Interrupt::with_timeout(limit),
            None => Interrupt::new(),
        };
        // Dropping this future (the caller gave up) stops the blocking work.
        let guard = interrupt.on_drop();
        let deadline = || FetchError::Deadline {
            path: path.to_string(),
            timeout: self.timeout.unwrap_or_default(),
        };
        let discovery = discovery::resolve_repo(path, &self.inner.env, &self.inner.client);
        let root = match interrupt.remaining() {
            Some(left) => tokio::time::timeout(left, discovery)
                .await
                .map_err(|_| deadline())??,
            None => discovery.await?,
        };
        if root.vcs == Vcs::Mod {
            return Err(FetchError::ModuleProxy {
                path: path.to_string(),
                url: root.repo_url,
            });
        }
        let inner = self.inner.clone();
        let tree_limits = self.tree_limits;
        let module = path.to_string();
        let blocking = interrupt.clone();
        let timeout = self.timeout.unwrap_or_default();
        let mut handle = tokio::task::spawn_blocking(move || {
            let interrupt = blocking;
            let result = open_repo(&inner, &root, tree_limits, &interrupt).and_then(|repo| {
                let m = ModuleRepo::new(&module, repo, &root.root, root.subdir.as_deref())?
                    .with_deflate_cache(Arc::clone(&inner.deflate_cache));
                work(&m, &interrupt)
            });
            // Whatever the work made of an interrupted step (some failures
            // are read as "absent"), a stopped call has no valid answer.
            match interrupt.check() {
                Ok(()) => result,
                Err(Stopped::Deadline) => Err(FetchError::Deadline {
                    path: module,
                    timeout,
                }),
                Err(Stopped::Interrupted) => Err(FetchError::Worker {
                    path: module,
                    reason: "interrupted".to_string(),
                }),
            }
        });
        let joined = match interrupt.remaining() {
            Some(left) => match tokio::time::timeout(left, &mut handle).await {
                Ok(joined) => joined,
                Err(_) => {
                    interrupt.interrupt();
                    // The work checks the flag at least every poll
                    // interval; waiting for it briefly means the entry lock
                    // is free and its files closed when the caller retries.
                    let _ = tokio::time::timeout(STOP_GRACE, handle).await;
                    return Err(deadline());
                }
            },
            None => (&mut handle).await,
        };
        guard.disarm();
        joined.map_err(|e| FetchError::Worker {
            path: path.to_string(),
            reason: e.to_string(),
        })?
    }
}

/// Bytes of deflated files a fetcher keeps for later zips: a new version
/// of a module shares most files with the last, and deflating them is
/// most of the work of its zip.
const DEFLATE_CACHE_BYTES: u64 = 32 << 20;

/// How long a call past its deadline waits for its blocking work to stop.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The zip's writer: each write first checks the interrupt, so writing a
/// large module stops at the deadline.
struct Checked<W> {
    inner: W,
    interrupt: Interrupt,
}

impl<W: Write> Write for Checked<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stop_check()?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Seek> Seek for Checked<W> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl<W> Checked<W> {
    fn stop_check(&self) -> std::io::Result<()> {
        self.interrupt.check().map_err(|stopped| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, format!("zip: {stopped}"))
        })
    }
}

fn open_repo(
    inner: &Inner,
    root: &RepoRoot,
    tree_limits: TreeLimits,
    interrupt: &Interrupt,
) -> Result<Arc<dyn CodeRepo>, FetchError> {
    if root.vcs != Vcs::Git {
        return open_cli_repo(inner, root, interrupt);
    }
    let git = GitOptions {
        tree_limits,
        interrupt: interrupt.clone(),
        ..inner.git.clone()
    };
    let repo = GitRepo::open(&root.repo_url, &inner.cache_root, git);
    opened(root, repo)
}

/// A repository opened for `root`, or the error its opening means: one
/// that is gone is a module that does not exist, not a failing origin, so
/// the client should fall through.
fn opened<R: CodeRepo + 'static>(
    root: &RepoRoot,
    repo: Result<R, CodeError>,
) -> Result<Arc<dyn CodeRepo>, FetchError> {
    match repo {
        Ok(repo) => Ok(Arc::new(repo)),
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

/// Opens a Mercurial, Subversion or Fossil repository through its command
/// line, in a private directory under the cache root. The commands see
/// the server's environment with the go environment's `HOME` and proxy
/// settings on top: `HOME` holds `~/.hgrc` and Subversion's credential
/// cache (`~/.subversion/auth`), as for Athens' go command.
fn open_cli_repo(
    inner: &Inner,
    root: &RepoRoot,
    interrupt: &Interrupt,
) -> Result<Arc<dyn CodeRepo>, FetchError> {
    let mut env: Vec<(String, String)> = CHILD_ENV
        .iter()
        .filter_map(|key| Some((key.to_string(), inner.env.get(key)?.to_string())))
        .collect();
    env.extend(inner.command_env.iter().cloned());
    let options = CliOptions {
        env,
        hgrc_path: inner.hgrc_path.clone(),
        interrupt: interrupt.clone(),
    };
    let repo = CliRepo::open(root.vcs, &root.repo_url, &inner.cache_root, options);
    opened(root, repo)
}

/// The go environment's variables handed to version-control commands.
const CHILD_ENV: &[&str] = &[
    "HOME",
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
];

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
