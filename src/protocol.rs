//! The download protocol's logic, independent of HTTP: serve from storage,
//! stash on a miss, and merge listings per [`NetworkMode`] as Athens does.
//!
//! Admission: reading what storage holds never waits for a permit. Work
//! that goes upstream is bounded: stashes by the stash stack
//! (`GoGetWorkers` running, `MaxPendingFetches` pending, see
//! [`crate::stash`]) and list/`@latest` lookups here (`ProtocolWorkers`
//! running, `MaxPendingFetches` queued). A lookup runs as its own task
//! holding its permit until the fetcher returns, even when the client
//! has gone or the request's deadline has passed, so the work the
//! fetcher hands to tokio's blocking pool (one blocking task per fetcher
//! call; `list` also reads storage, one more on disk) stays bounded:
//! blocking tasks at once <= `GoGetWorkers` (one per running stash: its
//! storage check, fetch and save run one after another) + 2 x
//! `ProtocolWorkers` (lookups) + blocking calls a stash left running
//! when `StashTimeout` stopped waiting for it (these end at the
//! fetcher's own deadlines). With the defaults that is 10 + 60 plus
//! stragglers, far below tokio's 512 blocking threads.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use thiserror::Error;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::NetworkMode;
use crate::download_mode::{DownloadMode, DownloadPolicy};
use crate::fetch::{FetchError, Fetcher, RevInfo};
use crate::stash::{StashError, Stasher};
use crate::storage::{Storage, StorageError, StoredZip};

/// Why a protocol request failed; [`ProtocolError::status`] gives the
/// HTTP status to answer with.
#[derive(Debug, Error)]
pub enum ProtocolError {
    /// Nothing to serve, and clients should try elsewhere.
    #[error("{0}")]
    NotFound(String),
    /// Listing or resolving upstream failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Fetching and storing failed.
    #[error(transparent)]
    Stash(#[from] StashError),
    /// Reading storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The request did not finish within its deadline (`Timeout` for
    /// lookups and queries, `StashTimeout` for a version's stash).
    #[error("{what}: no answer within {seconds}s ({setting})")]
    Deadline {
        /// What was asked (`module/@v/list`, `module@version`, ...).
        what: String,
        /// The deadline.
        seconds: u64,
        /// The setting that gives it.
        setting: &'static str,
    },
    /// Too much upstream work is already waiting; the client should retry.
    #[error("{0}")]
    Overloaded(String),
    /// A lookup task failed unexpectedly.
    #[error("{0}")]
    Internal(String),
    /// The version is not stored and the download mode sends clients to
    /// `base_url` (the request path is appended to it).
    #[error("{module}@{version}: not stored; redirecting to {base_url}")]
    Redirect {
        /// Module path.
        module: String,
        /// Requested version.
        version: String,
        /// Where to send the client.
        base_url: String,
    },
}

fn fetch_status(e: &FetchError) -> u16 {
    match e {
        FetchError::NotFound { .. }
        | FetchError::Disabled { .. }
        | FetchError::ModuleProxy { .. } => 404,
        // The native fetcher's deadline (`Timeout`, `StashTimeout`).
        FetchError::Upstream {
            status: Some(crate::fetch::native::DEADLINE_STATUS),
            ..
        } => 504,
        FetchError::Upstream { .. } | FetchError::InvalidResponse { .. } => 502,
        FetchError::Other { .. } => 500,
        FetchError::Verification { status, .. } => *status,
    }
}

impl ProtocolError {
    /// The HTTP status for this error: 404 for anything the go command
    /// should treat as "not here", 502/504 for upstream trouble, 503 when
    /// the distributed lock could not be had, 500 for local failures.
    pub fn status(&self) -> u16 {
        match self {
            ProtocolError::NotFound(_) => 404,
            ProtocolError::Fetch(e) => fetch_status(e),
            ProtocolError::Stash(StashError::Fetch(e)) => fetch_status(e),
            ProtocolError::Stash(StashError::Timeout { .. }) => 504,
            ProtocolError::Stash(StashError::InvalidVersion { .. }) => 502,
            // Another instance is (or was) fetching it, or the lock service
            // is down: worth retrying, not a fault of this request.
            ProtocolError::Stash(StashError::Lock { .. }) => 503,
            ProtocolError::Stash(StashError::Overloaded { .. }) => 503,
            ProtocolError::Overloaded(_) => 503,
            ProtocolError::Deadline { .. } => 504,
            ProtocolError::Internal(_) => 500,
            ProtocolError::Stash(StashError::Storage(e)) if e.is_not_found() => 404,
            ProtocolError::Stash(_) => 500,
            ProtocolError::Storage(e) if e.is_not_found() => 404,
            ProtocolError::Storage(_) => 500,
            ProtocolError::Redirect { .. } => 301,
        }
    }
}

/// Deadlines and queue bounds of the work a request sends upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Overall deadline of a list, `@latest` or version query (`Timeout`).
    pub lookup_deadline: Duration,
    /// How long a request waits for a canonical version's stash
    /// (`StashTimeout`).
    pub stash_deadline: Duration,
    /// Lookups running at once (`ProtocolWorkers`).
    pub lookup_workers: usize,
    /// Lookups waiting for a worker (`MaxPendingFetches`).
    pub max_queued_lookups: usize,
}

impl Limits {
    /// The limits `config` sets.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Limits {
            lookup_deadline: config.timeout_duration(),
            stash_deadline: config.stash_timeout_duration(),
            lookup_workers: config.protocol_workers,
            max_queued_lookups: config.max_pending_fetches,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::from_config(&crate::config::Config::default())
    }
}

/// Bounds lookups: a fixed number run, a bounded number wait.
struct LookupGate {
    permits: Arc<Semaphore>,
    queued: AtomicUsize,
    max_queued: usize,
}

/// Counts one waiting lookup while it lives.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl LookupGate {
    fn new(workers: usize, max_queued: usize) -> Self {
        LookupGate {
            permits: Arc::new(Semaphore::new(workers.max(1))),
            queued: AtomicUsize::new(0),
            max_queued,
        }
    }

    /// A permit, or `None` when the queue is full. Dropping the future
    /// while it waits leaves nothing behind.
    async fn enter(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return Some(permit);
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let _queued = Queued(&self.queued);
        // Never closed.
        Arc::clone(&self.permits).acquire_owned().await.ok()
    }
}

/// Serves module data from storage, stashing from upstream on a miss.
pub struct Protocol {
    storage: Arc<dyn Storage>,
    stasher: Arc<dyn Stasher>,
    fetcher: Arc<dyn Fetcher>,
    network_mode: NetworkMode,
    download_policy: Arc<DownloadPolicy>,
    limits: Limits,
    lookups: LookupGate,
}

/// Drops pseudo-versions, which must not make `/list` non-empty (the go
/// command would then stop asking `@latest` for newer commits).
fn without_pseudo_versions(versions: &[String]) -> Vec<String> {
    versions
        .iter()
        .filter(|v| !modzip::pseudo::is_pseudo_version(v))
        .cloned()
        .collect()
}

fn union_sorted(a: Vec<String>, b: Vec<String>) -> Vec<String> {
    let mut all: Vec<String> = a.into_iter().chain(b).collect();
    all.sort_by(|x, y| modzip::semver::compare_for_sort(x, y));
    all.dedup();
    all
}

impl Protocol {
    /// A protocol over `storage`, stashing through `stasher` and listing
    /// through `fetcher`.
    pub fn new(
        storage: Arc<dyn Storage>,
        stasher: Arc<dyn Stasher>,
        fetcher: Arc<dyn Fetcher>,
        network_mode: NetworkMode,
    ) -> Self {
        let limits = Limits::default();
        Protocol {
            storage,
            stasher,
            fetcher,
            network_mode,
            download_policy: Arc::new(DownloadPolicy::default()),
            lookups: LookupGate::new(limits.lookup_workers, limits.max_queued_lookups),
            limits,
        }
    }

    /// Uses `limits` for deadlines and lookup admission.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.lookups = LookupGate::new(limits.lookup_workers, limits.max_queued_lookups);
        self.limits = limits;
        self
    }

    /// Lets `workers` lookups run at once, keeping the other limits.
    pub fn with_lookup_workers(self, workers: usize) -> Self {
        let limits = Limits {
            lookup_workers: workers,
            ..self.limits
        };
        self.with_limits(limits)
    }

    /// Runs a lookup within the lookup deadline, as its own task holding
    /// a lookup permit until `work` ends (see the module documentation).
    async fn bounded_lookup<T, F>(&self, what: String, work: F) -> Result<T, ProtocolError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, ProtocolError>> + Send + 'static,
    {
        let deadline = self.limits.lookup_deadline;
        let run = async {
            let Some(permit) = self.lookups.enter().await else {
                return Err(ProtocolError::Overloaded(format!(
                    "{what}: {} lookups are already waiting (MaxPendingFetches); try again later",
                    self.lookups.max_queued
                )));
            };
            // The request's route class goes along, for the metrics, and
            // its trace context, for the spans.
            let work = opentelemetry::context::FutureExt::with_current_context(
                crate::metrics::with_current_route(work),
            );
            let task = tokio::spawn(async move {
                let _permit = permit;
                work.await
            });
            task.await
                .unwrap_or_else(|e| Err(ProtocolError::Internal(format!("{what}: {e}"))))
        };
        // The deadline is checked first: when it and the fetcher's own
        // timeout (also `Timeout`, started a little later) expire together,
        // the answer is the request's 504, not the fetcher's error.
        tokio::select! {
            biased;
            () = tokio::time::sleep(deadline) => Err(ProtocolError::Deadline {
                what,
                seconds: deadline.as_secs(),
                setting: "Timeout",
            }),
            result = run => result,
        }
    }

    /// Waits for a stash within its deadline: `Timeout` for a query (a
    /// branch, hash or partial version, resolved anew each time),
    /// `StashTimeout` for a canonical version.
    async fn stash_within_deadline(
        &self,
        module: &str,
        version: &str,
    ) -> Result<String, ProtocolError> {
        let (deadline, setting) = if crate::fetch::is_canonical_version(version) {
            (self.limits.stash_deadline, "StashTimeout")
        } else {
            (self.limits.lookup_deadline, "Timeout")
        };
        tokio::select! {
            biased;
            () = tokio::time::sleep(deadline) => Err(ProtocolError::Deadline {
                what: format!("{module}@{version}"),
                seconds: deadline.as_secs(),
                setting,
            }),
            result = self.stasher.stash(module, version) => Ok(result?),
        }
    }

    /// Uses `policy` for versions missing from storage (the default is
    /// to fetch them synchronously).
    pub fn with_download_policy(mut self, policy: DownloadPolicy) -> Self {
        self.download_policy = Arc::new(policy);
        self
    }

    /// Handles a version missing from storage per the download policy:
    /// returns the canonical version once stored (sync), or the error
    /// that tells the client to look elsewhere.
    async fn on_miss(&self, module: &str, version: &str) -> Result<String, ProtocolError> {
        let mode = self.download_policy.mode_for(module);
        if mode == DownloadMode::Sync {
            return self.stash_within_deadline(module, version).await;
        }
        if mode.fetches_in_background() {
            let stasher = Arc::clone(&self.stasher);
            let (module, version) = (module.to_string(), version.to_string());
            // Detached on purpose: the client has its answer already.
            tokio::spawn(async move {
                match stasher.stash(&module, &version).await {
                    Ok(_) => {}
                    // Expected under a flood; not worth a line each.
                    Err(e @ StashError::Overloaded { .. }) => {
                        tracing::debug!(module, version, error = %e, "background stash refused");
                    }
                    Err(e) => {
                        tracing::warn!(module, version, error = %e, "background stash failed");
                    }
                }
            });
        }
        if mode.redirects() {
            return Err(ProtocolError::Redirect {
                module: module.to_string(),
                version: version.to_string(),
                base_url: self.download_policy.url_for(module).to_string(),
            });
        }
        Err(ProtocolError::NotFound(format!(
            "{module}@{version}: not stored and DownloadMode does not fetch it now"
        )))
    }

    /// Refuses a listing or `@latest` of a module whose download mode is
    /// `none`: Athens documents such a module as always answering 404, and
    /// asking the origin would tell it the name of every module asked for.
    fn refuse_unserved(&self, module: &str, endpoint: &str) -> Result<(), ProtocolError> {
        if self.download_policy.mode_for(module) == DownloadMode::None {
            return Err(ProtocolError::NotFound(format!(
                "{module}{endpoint}: DownloadMode is none for this module"
            )));
        }
        Ok(())
    }

    /// The storage served from.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// `/@v/list`: versions from storage and upstream, combined per
    /// network mode, sorted. Bounded as a lookup, within `Timeout`.
    pub async fn list(&self, module: &str) -> Result<Vec<String>, ProtocolError> {
        self.refuse_unserved(module, "/@v/list")?;
        let source = self.lookup_source();
        let owned = module.to_string();
        self.bounded_lookup(format!("{module}/@v/list"), async move {
            source.list(&owned).await
        })
        .await
    }

    /// `/@latest`: upstream's answer; none in offline mode; in fallback
    /// mode an upstream failure falls back to the newest stored version.
    /// Bounded as a lookup, within `Timeout`.
    pub async fn latest(&self, module: &str) -> Result<RevInfo, ProtocolError> {
        self.refuse_unserved(module, "/@latest")?;
        if self.network_mode == NetworkMode::Offline {
            // The go command asks /@latest only after /@v/list came back
            // empty, so offline there is nothing more to say.
            return Err(ProtocolError::NotFound(format!(
                "{module}@latest: not available in offline mode, use the /@v/list endpoint"
            )));
        }
        let source = self.lookup_source();
        let owned = module.to_string();
        self.bounded_lookup(format!("{module}/@latest"), async move {
            source.latest(&owned).await
        })
        .await
    }

    fn lookup_source(&self) -> LookupSource {
        LookupSource {
            storage: Arc::clone(&self.storage),
            fetcher: Arc::clone(&self.fetcher),
            network_mode: self.network_mode,
        }
    }
    /// `.info`: stored bytes; on a miss the version (possibly a branch,
    /// hash or partial version) is stashed and the canonical version's
    /// info served. Returns the bytes and the canonical version.
    pub async fn info(
        &self,
        module: &str,
        version: &str,
    ) -> Result<(Bytes, String), ProtocolError> {
        let storage = &self.storage;
        self.read_or_stash(module, version, |v| async move {
            storage.info(module, &v).await
        })
        .await
    }

    /// `.mod`, stashing on a miss.
    pub async fn go_mod(
        &self,
        module: &str,
        version: &str,
    ) -> Result<(Bytes, String), ProtocolError> {
        let storage = &self.storage;
        self.read_or_stash(module, version, |v| async move {
            storage.go_mod(module, &v).await
        })
        .await
    }

    /// `.zip` as a stream, stashing on a miss.
    pub async fn zip(
        &self,
        module: &str,
        version: &str,
    ) -> Result<(StoredZip, String), ProtocolError> {
        let storage = &self.storage;
        self.read_or_stash(
            module,
            version,
            |v| async move { storage.zip(module, &v).await },
        )
        .await
    }

    /// Reads `version` from storage with `read`; a version that may exist
    /// only as `+incompatible` is read as that when stored; on a miss the
    /// request is handled per the download policy and the version it
    /// resolved to is read. Returns what was read and its version.
    async fn read_or_stash<T, F, Fut>(
        &self,
        module: &str,
        version: &str,
        read: F,
    ) -> Result<(T, String), ProtocolError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, StorageError>>,
    {
        match read(version.to_string()).await {
            Ok(found) => return Ok((found, version.to_string())),
            Err(e) if !e.is_not_found() => return Err(e.into()),
            Err(_) => {}
        }
        // The go command's Stat answers vN.x.y of an unsuffixed path with
        // the +incompatible version of the same tag; once that is stored,
        // the tag has been seen without go.mod and the answer is known.
        if let Some(twin) = incompatible_twin(module, version) {
            match read(twin.clone()).await {
                Ok(found) => return Ok((found, twin)),
                Err(e) if !e.is_not_found() => return Err(e.into()),
                Err(_) => {}
            }
        }
        let resolved = self.on_miss(module, version).await?;
        Ok((read(resolved.clone()).await?, resolved))
    }
}

/// The `+incompatible` version the go command's `Stat` may resolve a
/// canonical request to: for `vN.x.y` (N >= 2, no build metadata) of a
/// module path without a major-version suffix, `vN.x.y+incompatible`
/// (which it is when the repository has no go.mod at that tag). `None`
/// for every other request, including versions the path allows as they
/// are and majors a suffixed path can never have.
pub fn incompatible_twin(module: &str, version: &str) -> Option<String> {
    if !crate::fetch::is_canonical_version(version)
        || !modzip::semver::build(version).is_empty()
        || modzip::module::check(module, version).is_ok()
    {
        return None;
    }
    let twin = format!("{version}+incompatible");
    modzip::module::check(module, &twin).ok()?;
    Some(twin)
}

/// What a lookup reads, owned so the lookup can run as its own task.
struct LookupSource {
    storage: Arc<dyn Storage>,
    fetcher: Arc<dyn Fetcher>,
    network_mode: NetworkMode,
}

impl LookupSource {
    async fn list(&self, module: &str) -> Result<Vec<String>, ProtocolError> {
        if self.network_mode == NetworkMode::Offline {
            let mut stored = self.storage.list(module).await?;
            stored.sort_by(|x, y| modzip::semver::compare_for_sort(x, y));
            return Ok(stored);
        }
        let (stored, upstream) = tokio::join!(self.storage.list(module), self.fetcher.list(module));
        // Without the full storage listing the answer could silently miss
        // versions, so a storage failure always fails the request.
        let stored = stored?;
        let upstream = match upstream {
            Ok(list) => list,
            Err(e) if e.is_not_found() => {
                // The repository is gone or never existed upstream.
                if stored.is_empty() {
                    return Err(ProtocolError::Fetch(e));
                }
                let tagged = without_pseudo_versions(&stored);
                // Only pseudo-versions stored: serve them, so the go
                // command can still pick the newest saved commit.
                if tagged.is_empty() {
                    return Ok(union_sorted(stored, Vec::new()));
                }
                return Ok(union_sorted(tagged, Vec::new()));
            }
            Err(e) => {
                return match self.network_mode {
                    NetworkMode::Fallback => {
                        tracing::warn!(module, error = %e, "upstream listing failed; serving stored versions");
                        Ok(union_sorted(stored, Vec::new()))
                    }
                    _ => Err(ProtocolError::Fetch(e)),
                };
            }
        };
        Ok(union_sorted(upstream, without_pseudo_versions(&stored)))
    }

    async fn latest(&self, module: &str) -> Result<RevInfo, ProtocolError> {
        match self.fetcher.latest(module).await {
            Ok(info) => Ok(info),
            Err(e) if !e.is_not_found() && self.network_mode == NetworkMode::Fallback => {
                tracing::warn!(module, error = %e, "upstream latest failed; using storage");
                self.latest_stored(module)
                    .await?
                    .ok_or(ProtocolError::Fetch(e))
            }
            Err(e) => Err(ProtocolError::Fetch(e)),
        }
    }

    async fn latest_stored(&self, module: &str) -> Result<Option<RevInfo>, ProtocolError> {
        let stored = self.storage.list(module).await?;
        let mut best: Option<RevInfo> = None;
        for version in stored {
            let Ok(raw) = self.storage.info(module, &version).await else {
                continue;
            };
            let Ok(info) = serde_json::from_slice::<RevInfo>(&raw) else {
                continue;
            };
            let better = match &best {
                None => true,
                // Releases beat prereleases beat pseudo-versions; within a
                // kind the higher version wins.
                Some(b) => {
                    latest_rank(&info.version) > latest_rank(&b.version)
                        || (latest_rank(&info.version) == latest_rank(&b.version)
                            && modzip::semver::compare(&info.version, &b.version).is_gt())
                }
            };
            if better {
                best = Some(info);
            }
        }
        Ok(best)
    }
}

fn latest_rank(version: &str) -> u8 {
    if modzip::pseudo::is_pseudo_version(version) {
        0
    } else if !modzip::semver::prerelease(version).is_empty() {
        1
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::{FetchedModule, FetchedZip};
    use crate::stash::BaseStasher;
    use crate::storage::MemoryStorage;
    use async_trait::async_trait;

    #[test]
    fn native_fetch_deadlines_answer_504_other_upstream_failures_502() {
        let upstream = |status| {
            ProtocolError::Fetch(FetchError::Upstream {
                module: "example.com/m".into(),
                version: "v1.0.0".into(),
                upstream: "direct".into(),
                status,
                message: "no answer".into(),
            })
        };
        assert_eq!(upstream(Some(504)).status(), 504);
        assert_eq!(upstream(Some(500)).status(), 502);
        assert_eq!(upstream(None).status(), 502);
    }

    #[test]
    fn lock_failures_ask_the_client_to_retry() {
        let err = ProtocolError::Stash(StashError::Lock {
            module: "example.com/m".into(),
            version: "v1.0.0".into(),
            message: "held elsewhere".into(),
        });
        assert_eq!(err.status(), 503);
    }

    /// Lists a fixed answer; fetches anything.
    struct ListFetcher {
        list: Result<Vec<String>, FetchError>,
        latest: Result<RevInfo, FetchError>,
    }

    #[async_trait]
    impl Fetcher for ListFetcher {
        async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError> {
            let version = if version == "main" {
                "v0.0.0-20200101000000-abcdefabcdef"
            } else {
                version
            };
            Ok(FetchedModule {
                version: version.to_string(),
                info: Bytes::from(format!(
                    "{{\"Version\":\"{version}\",\"Time\":\"2020-01-01T00:00:00Z\"}}"
                )),
                go_mod: Bytes::from(format!("module {module}\n")),
                zip: FetchedZip::from_bytes(b"zip", None).unwrap(),
            })
        }
        async fn list(&self, _module: &str) -> Result<Vec<String>, FetchError> {
            self.list.clone()
        }
        async fn latest(&self, _module: &str) -> Result<RevInfo, FetchError> {
            self.latest.clone()
        }
        async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
            Err(FetchError::not_found(module, rev, "unused"))
        }
    }

    fn upstream_down() -> FetchError {
        FetchError::Upstream {
            module: "m".into(),
            version: String::new(),
            upstream: "https://proxy.example".into(),
            status: Some(503),
            message: "unavailable".into(),
        }
    }

    async fn protocol(
        mode: NetworkMode,
        list: Result<Vec<String>, FetchError>,
        stored: &[&str],
    ) -> Protocol {
        let storage = Arc::new(MemoryStorage::new());
        for v in stored {
            let mut zip: &[u8] = b"z";
            storage
                .save(
                    "example.com/m",
                    v,
                    Bytes::new(),
                    &mut zip,
                    Bytes::from(format!(
                        "{{\"Version\":\"{v}\",\"Time\":\"2020-01-01T00:00:00Z\"}}"
                    )),
                )
                .await
                .unwrap();
        }
        let fetcher = Arc::new(ListFetcher {
            list,
            latest: Err(upstream_down()),
        });
        let stasher = Arc::new(BaseStasher::new(
            fetcher.clone(),
            storage.clone(),
            Duration::from_secs(5),
        ));
        Protocol::new(storage, stasher, fetcher, mode)
    }

    const PSEUDO: &str = "v0.0.0-20200101000000-abcdefabcdef";

    #[tokio::test]
    async fn strict_merges_and_drops_stored_pseudo_versions() {
        let p = protocol(
            NetworkMode::Strict,
            Ok(vec!["v1.1.0".into()]),
            &["v1.0.0", PSEUDO],
        )
        .await;
        assert_eq!(
            p.list("example.com/m").await.unwrap(),
            vec!["v1.0.0", "v1.1.0"]
        );
    }

    #[tokio::test]
    async fn strict_fails_when_upstream_fails() {
        let p = protocol(NetworkMode::Strict, Err(upstream_down()), &["v1.0.0"]).await;
        assert_eq!(p.list("example.com/m").await.unwrap_err().status(), 502);
    }

    #[tokio::test]
    async fn fallback_serves_storage_when_upstream_fails() {
        let p = protocol(
            NetworkMode::Fallback,
            Err(upstream_down()),
            &["v1.0.0", PSEUDO],
        )
        .await;
        assert_eq!(
            p.list("example.com/m").await.unwrap(),
            vec![PSEUDO, "v1.0.0"]
        );
        let latest = p.latest("example.com/m").await.unwrap();
        assert_eq!(latest.version, "v1.0.0");
    }

    #[tokio::test]
    async fn offline_uses_storage_only_and_has_no_latest() {
        let p = protocol(NetworkMode::Offline, Err(upstream_down()), &["v1.0.0"]).await;
        assert_eq!(p.list("example.com/m").await.unwrap(), vec!["v1.0.0"]);
        assert_eq!(p.latest("example.com/m").await.unwrap_err().status(), 404);
    }

    #[tokio::test]
    async fn missing_repository_with_empty_storage_is_not_found() {
        let p = protocol(
            NetworkMode::Strict,
            Err(FetchError::not_found(
                "example.com/m",
                "",
                "repository not found",
            )),
            &[],
        )
        .await;
        assert_eq!(p.list("example.com/m").await.unwrap_err().status(), 404);
    }

    #[tokio::test]
    async fn missing_repository_serves_stored_versions() {
        let gone = Err(FetchError::not_found(
            "example.com/m",
            "",
            "repository not found",
        ));
        let p = protocol(NetworkMode::Strict, gone.clone(), &[PSEUDO]).await;
        assert_eq!(p.list("example.com/m").await.unwrap(), vec![PSEUDO]);
        let p = protocol(NetworkMode::Strict, gone, &[PSEUDO, "v1.0.0"]).await;
        assert_eq!(p.list("example.com/m").await.unwrap(), vec!["v1.0.0"]);
    }

    #[tokio::test]
    async fn info_for_a_branch_resolves_and_stores_canonical_version() {
        let p = protocol(NetworkMode::Strict, Ok(vec![]), &[]).await;
        let (info, version) = p.info("example.com/m", "main").await.unwrap();
        assert_eq!(version, PSEUDO);
        assert!(String::from_utf8_lossy(&info).contains(PSEUDO));
        assert!(p.storage().exists("example.com/m", PSEUDO).await.unwrap());
    }

    /// Counts every call; resolves `vN.x.y` of an unsuffixed path to
    /// `vN.x.y+incompatible`, as the go command does for a tag without
    /// go.mod.
    #[derive(Default)]
    struct CountingFetcher {
        calls: AtomicUsize,
    }

    #[async_trait]
    impl Fetcher for CountingFetcher {
        async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let version = incompatible_twin(module, version).unwrap_or(version.to_string());
            Ok(FetchedModule {
                info: Bytes::from(format!(
                    "{{\"Version\":\"{version}\",\"Time\":\"2020-01-01T00:00:00Z\"}}"
                )),
                go_mod: Bytes::from(format!("module {module}\n")),
                zip: FetchedZip::from_bytes(format!("zip of {version}").as_bytes(), None).unwrap(),
                version,
            })
        }
        async fn list(&self, _module: &str) -> Result<Vec<String>, FetchError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(vec!["v1.0.0".into()])
        }
        async fn latest(&self, _module: &str) -> Result<RevInfo, FetchError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(RevInfo {
                version: "v1.0.0".into(),
                time: "2020-01-01T00:00:00Z".into(),
                origin: None,
            })
        }
        async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Err(FetchError::not_found(module, rev, "unused"))
        }
    }

    fn counting_protocol(policy: DownloadPolicy) -> (Protocol, Arc<CountingFetcher>) {
        let storage = Arc::new(MemoryStorage::new());
        let fetcher = Arc::new(CountingFetcher::default());
        let stasher = Arc::new(BaseStasher::new(
            fetcher.clone(),
            storage.clone(),
            Duration::from_secs(60),
        ));
        let p = Protocol::new(storage, stasher, fetcher.clone(), NetworkMode::Strict)
            .with_download_policy(policy);
        (p, fetcher)
    }

    #[tokio::test]
    async fn download_mode_none_lists_nothing_and_never_asks_upstream() {
        let policy = DownloadPolicy::parse_hcl(
            "mode = \"sync\"\ndownload \"corp.example.com/*\" {\n  mode = \"none\"\n}\n",
            "test",
        )
        .unwrap();
        for network_mode in [
            NetworkMode::Strict,
            NetworkMode::Fallback,
            NetworkMode::Offline,
        ] {
            let (p, fetcher) = counting_protocol(policy.clone());
            let p = Protocol { network_mode, ..p };
            let module = "corp.example.com/secret/lib";
            let err = p.list(module).await.unwrap_err();
            assert_eq!(err.status(), 404, "{err}");
            assert!(err.to_string().contains("DownloadMode is none"), "{err}");
            let err = p.latest(module).await.unwrap_err();
            assert_eq!(err.status(), 404, "{err}");
            assert!(err.to_string().contains("DownloadMode is none"), "{err}");
            assert_eq!(fetcher.calls.load(Ordering::SeqCst), 0, "{network_mode:?}");
        }
        // Modules in other modes still list and answer @latest upstream.
        let (p, fetcher) = counting_protocol(policy);
        assert_eq!(p.list("example.com/public").await.unwrap(), vec!["v1.0.0"]);
        assert_eq!(
            p.latest("example.com/public").await.unwrap().version,
            "v1.0.0"
        );
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn incompatible_twins_are_for_high_majors_of_unsuffixed_paths_only() {
        let twin = |m, v| incompatible_twin(m, v);
        assert_eq!(
            twin("example.com/m", "v2.0.0").as_deref(),
            Some("v2.0.0+incompatible")
        );
        assert_eq!(
            twin("example.com/m", "v10.3.1-rc.1").as_deref(),
            Some("v10.3.1-rc.1+incompatible")
        );
        for (module, version) in [
            ("example.com/m", "v1.0.0"),              // allowed as it is
            ("example.com/m", "v2.0.0+incompatible"), // already the twin
            ("example.com/m", "v2.0"),                // not canonical
            ("example.com/m", "main"),                // a branch
            ("example.com/m/v2", "v2.0.0"),           // allowed as it is
            ("example.com/m/v2", "v3.0.0"),           // never, whatever the repo holds
            ("example.com/m/v2", "v1.0.0"),
            ("gopkg.in/yaml.v2", "v3.0.0"),
            ("Example.com/m", "v2.0.0"), // a malformed path
        ] {
            assert_eq!(twin(module, version), None, "{module}@{version}");
        }
    }

    #[tokio::test]
    async fn a_high_major_of_an_unsuffixed_path_resolves_to_its_incompatible_version() {
        let (p, fetcher) = counting_protocol(DownloadPolicy::default());
        let (info, version) = p.info("example.com/m", "v2.0.0").await.unwrap();
        assert_eq!(version, "v2.0.0+incompatible");
        assert!(String::from_utf8_lossy(&info).contains("\"v2.0.0+incompatible\""));
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 1);
        // Stored now: every endpoint answers from storage, with the
        // +incompatible version's data, and the origin is not asked again.
        let (go_mod, version) = p.go_mod("example.com/m", "v2.0.0").await.unwrap();
        assert_eq!(version, "v2.0.0+incompatible");
        assert_eq!(&go_mod[..], b"module example.com/m\n");
        let (zip, version) = p.zip("example.com/m", "v2.0.0").await.unwrap();
        assert_eq!(version, "v2.0.0+incompatible");
        assert_eq!(zip.size, "zip of v2.0.0+incompatible".len() as u64);
        let (_, version) = p.info("example.com/m", "v2.0.0").await.unwrap();
        assert_eq!(version, "v2.0.0+incompatible");
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 1);
        // Nothing is stored under the plain version.
        assert!(!p.storage().exists("example.com/m", "v2.0.0").await.unwrap());
    }

    /// Lists after a delay, counting lookups that run at once.
    struct SlowLister {
        delay: Duration,
        running: std::sync::atomic::AtomicUsize,
        max_running: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl Fetcher for SlowLister {
        async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError> {
            tokio::time::sleep(self.delay).await;
            Err(FetchError::not_found(module, version, "unused"))
        }
        async fn list(&self, _module: &str) -> Result<Vec<String>, FetchError> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok(vec!["v1.0.0".into()])
        }
        async fn latest(&self, module: &str) -> Result<RevInfo, FetchError> {
            tokio::time::sleep(self.delay).await;
            Err(FetchError::not_found(module, "latest", "unused"))
        }
        async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
            Err(FetchError::not_found(module, rev, "unused"))
        }
    }

    fn slow_protocol(delay: Duration, limits: Limits) -> (Protocol, Arc<SlowLister>) {
        let storage = Arc::new(MemoryStorage::new());
        let fetcher = Arc::new(SlowLister {
            delay,
            running: Default::default(),
            max_running: Default::default(),
        });
        let stasher = Arc::new(BaseStasher::new(
            fetcher.clone(),
            storage.clone(),
            Duration::from_secs(60),
        ));
        let p = Protocol::new(storage, stasher, fetcher.clone(), NetworkMode::Strict)
            .with_limits(limits);
        (p, fetcher)
    }

    #[tokio::test]
    async fn lookups_and_queries_answer_504_at_the_deadline() {
        let limits = Limits {
            lookup_deadline: Duration::from_millis(100),
            ..Limits::default()
        };
        let (p, _) = slow_protocol(Duration::from_secs(30), limits);
        let started = std::time::Instant::now();
        let err = p.list("example.com/m").await.unwrap_err();
        assert_eq!(err.status(), 504, "{err}");
        assert!(err.to_string().contains("Timeout"), "{err}");
        assert_eq!(p.latest("example.com/m").await.unwrap_err().status(), 504);
        // A branch is a query: Timeout, not StashTimeout.
        assert_eq!(
            p.info("example.com/m", "main").await.unwrap_err().status(),
            504
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lookups_are_bounded_and_their_queue_overflows_with_503() {
        let limits = Limits {
            lookup_workers: 2,
            max_queued_lookups: 3,
            ..Limits::default()
        };
        let (p, fetcher) = slow_protocol(Duration::from_millis(300), limits);
        let p = Arc::new(p);
        let lookups: Vec<_> = (0..5)
            .map(|_| {
                let p = Arc::clone(&p);
                tokio::spawn(async move { p.list("example.com/m").await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Two run, three wait: the sixth is refused.
        let err = p.list("example.com/m").await.unwrap_err();
        assert_eq!(err.status(), 503, "{err}");
        for lookup in lookups {
            assert_eq!(lookup.await.unwrap().unwrap(), vec!["v1.0.0"]);
        }
        assert_eq!(fetcher.max_running.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lookup_keeps_its_permit_until_the_fetcher_returns() {
        let limits = Limits {
            lookup_workers: 1,
            lookup_deadline: Duration::from_millis(50),
            ..Limits::default()
        };
        let (p, fetcher) = slow_protocol(Duration::from_millis(400), limits);
        assert_eq!(p.list("example.com/m").await.unwrap_err().status(), 504);
        // The first lookup still runs: a second one waits for its permit
        // (and misses its own deadline) rather than running beside it.
        assert_eq!(p.list("example.com/m").await.unwrap_err().status(), 504);
        assert_eq!(fetcher.max_running.load(Ordering::SeqCst), 1);
    }
}
