//! Stashing: fetch a module version from upstream and save it to storage,
//! returning the canonical version the request resolved to.
//!
//! The plain [`BaseStasher`] is wrapped in layers, outermost first as the
//! server composes them: [`CoalescingStasher`] (concurrent requests for
//! one module@version share a single stash, and at most
//! `MaxPendingFetches` distinct ones are pending) around
//! [`DistributedStasher`] (a lease from the configured lock service per
//! module@version, when instances share a store) around [`PooledStasher`]
//! (at most `GoGetWorkers` stashes run at once) around [`BaseStasher`].
//!
//! # What happens when clients go away
//!
//! A stash is *started* once it holds a `GoGetWorkers` slot. The rule:
//!
//! - A started stash always runs to its end (stored, failed, or stopped
//!   by `StashTimeout`), even when every client that asked for it has
//!   disconnected, as Athens does: the next request then finds the version
//!   stored, and a half-done fetch is never stored.
//! - A stash still queued for a slot is dropped as soon as no request
//!   waits for it any more (a disconnected client, or a request that hit
//!   its deadline), so clients that send requests and hang up leave no
//!   queued work behind. Stashes started by the `async` download modes
//!   have the server itself as their waiter and are never dropped this
//!   way.
//! - Pending (queued or started) distinct stashes are bounded by
//!   `MaxPendingFetches`; a request for another version gets
//!   [`StashError::Overloaded`] (503 with `Retry-After`), while requests
//!   for a version already pending join it.

mod distributed;

pub use distributed::DistributedStasher;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::{BoxFuture, FutureExt, Shared};
use thiserror::Error;
use tokio::sync::{Notify, Semaphore};

use crate::fetch::{FetchError, FetchedModule, Fetcher};
use crate::storage::{check_storable, Storage, StorageError};
use crate::sums::{StoredObserver, VersionSums};

/// Why a stash failed. Clone, so every request sharing a stash gets it.
#[derive(Debug, Clone, Error)]
pub enum StashError {
    /// Fetching failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Saving or checking storage failed.
    #[error(transparent)]
    Storage(Arc<StorageError>),
    /// Fetch and save together exceeded `StashTimeout`.
    #[error("{module}@{version}: fetching and storing took longer than {seconds}s")]
    Timeout {
        /// Module path.
        module: String,
        /// Requested version.
        version: String,
        /// The limit.
        seconds: u64,
    },
    /// The fetcher resolved the request to something that cannot be stored.
    #[error("{module}@{version}: fetcher returned unusable version {returned:?}: {reason}")]
    InvalidVersion {
        /// Module path.
        module: String,
        /// Requested version.
        version: String,
        /// What the fetcher returned.
        returned: String,
        /// Why it is unusable.
        reason: String,
    },
    /// The fetched zip could not be read back.
    #[error("{module}@{version}: reading fetched zip: {message}")]
    LocalIo {
        /// Module path.
        module: String,
        /// Version.
        version: String,
        /// The I/O error.
        message: String,
    },
    /// The distributed lock could not be taken or the service failed.
    #[error("{module}@{version}: single-flight lock: {message}")]
    Lock {
        /// Module path.
        module: String,
        /// Requested version.
        version: String,
        /// What happened.
        message: String,
    },
    /// The version was stored but could not be recorded in the `/index`
    /// feed.
    #[error("{module}@{version}: stored, but not recorded in the index: {message}")]
    Index {
        /// Module path.
        module: String,
        /// The stored version.
        version: String,
        /// What the index backend said.
        message: String,
    },
    /// `MaxPendingFetches` distinct stashes are already pending.
    #[error("{module}@{version}: {pending} fetches are already pending (MaxPendingFetches); try again later")]
    Overloaded {
        /// Module path.
        module: String,
        /// Requested version.
        version: String,
        /// The limit that was reached.
        pending: usize,
    },
    /// Every request waiting for the stash went away while it was still
    /// queued, so it was dropped before it started.
    #[error("{module}@{version}: dropped before it started: no request waits for it")]
    Abandoned {
        /// Module path.
        module: String,
        /// Requested version.
        version: String,
    },
    /// The background stash task died.
    #[error("{module}@{version}: stash task failed: {message}")]
    Task {
        /// Module path.
        module: String,
        /// Version.
        version: String,
        /// What happened.
        message: String,
    },
}

impl From<StorageError> for StashError {
    fn from(e: StorageError) -> Self {
        StashError::Storage(Arc::new(e))
    }
}

impl StashError {
    /// Whether the module version does not exist upstream.
    pub fn is_not_found(&self) -> bool {
        match self {
            StashError::Fetch(e) => e.is_not_found(),
            _ => false,
        }
    }
}

/// Takes a module version from upstream into storage.
#[async_trait]
pub trait Stasher: Send + Sync + 'static {
    /// Stashes `module@version` (any query the fetcher understands) and
    /// returns the canonical version now in storage.
    async fn stash(&self, module: &str, version: &str) -> Result<String, StashError>;
}

/// Fetch, then save, within a time limit.
pub struct BaseStasher {
    fetcher: Arc<dyn Fetcher>,
    storage: Arc<dyn Storage>,
    timeout: Duration,
    observers: Vec<Arc<dyn StoredObserver>>,
    indexer: Option<Arc<dyn crate::index::Indexer>>,
}

impl BaseStasher {
    /// A stasher saving what `fetcher` returns into `storage`, giving up
    /// after `timeout`.
    pub fn new(fetcher: Arc<dyn Fetcher>, storage: Arc<dyn Storage>, timeout: Duration) -> Self {
        BaseStasher {
            fetcher,
            storage,
            timeout,
            observers: Vec::new(),
            indexer: None,
        }
    }

    /// Records every version this stasher stores in the `/index` feed.
    pub fn with_indexer(mut self, indexer: Arc<dyn crate::index::Indexer>) -> Self {
        self.indexer = Some(indexer);
        self
    }

    /// Records a version just stored in the feed, as Athens' stasher does
    /// right after saving: a version recorded already is fine; any other
    /// failure fails the stash (the version stays stored).
    async fn index(&self, module: &str, version: &str) -> Result<(), StashError> {
        let Some(indexer) = &self.indexer else {
            return Ok(());
        };
        match indexer.index(module, version).await {
            Ok(()) | Err(crate::index::IndexError::AlreadyIndexed { .. }) => Ok(()),
            Err(error) => Err(StashError::Index {
                module: module.to_string(),
                version: version.to_string(),
                message: error.to_string(),
            }),
        }
    }

    /// Also tells `observer` about every version this stasher stores.
    pub fn with_observer(mut self, observer: Arc<dyn StoredObserver>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Records the sums of a version this stasher just stored beside it
    /// and tells the observers. The version is stored and served whatever
    /// happens here, so failures are logged, not returned: `athens verify`
    /// reports a version without a record.
    async fn after_store(&self, module: &str, fetched: &FetchedModule) {
        let go_mod = fetched.go_mod.clone();
        let zip_path = fetched.zip.path().to_path_buf();
        let sums = tokio::task::spawn_blocking(move || VersionSums::of_files(&go_mod, &zip_path))
            .await
            .unwrap_or_else(|join| Err(join.to_string()));
        let version = fetched.version.as_str();
        let sums = match sums {
            Ok(sums) => sums,
            Err(error) => {
                tracing::warn!(module, version, %error, "cannot hash the stored version");
                return;
            }
        };
        if let Err(error) = crate::sums::record(self.storage.as_ref(), module, version, &sums).await
        {
            tracing::warn!(module, version, %error, "cannot record the stored version's sums");
        }
        for observer in &self.observers {
            observer.stored(module, version, &sums).await;
        }
    }

    async fn fetch_and_save(&self, module: &str, version: &str) -> Result<String, StashError> {
        // A request that lost the race with an earlier stash finds the
        // version already stored and must not fetch again.
        if self.storage.exists(module, version).await? {
            return Ok(version.to_string());
        }
        let fetched = self.fetcher.fetch(module, version).await?;
        if let Err(reason) = check_storable(module, &fetched.version) {
            return Err(StashError::InvalidVersion {
                module: module.to_string(),
                version: version.to_string(),
                returned: fetched.version,
                reason,
            });
        }
        if fetched.version != version && self.storage.exists(module, &fetched.version).await? {
            return Ok(fetched.version);
        }
        let mut zip = fetched.zip.open().await.map_err(|e| StashError::LocalIo {
            module: module.to_string(),
            version: fetched.version.clone(),
            message: e.to_string(),
        })?;
        let saved = self
            .storage
            .save(
                module,
                &fetched.version,
                fetched.go_mod.clone(),
                &mut zip,
                fetched.info.clone(),
            )
            .await;
        match saved {
            Ok(()) => {
                self.after_store(module, &fetched).await;
                self.index(module, &fetched.version).await?;
                Ok(fetched.version)
            }
            // Another saver (an instance sharing the store) published the
            // version first; what is stored is what every client must get.
            Err(StorageError::Conflict { .. })
                if self.storage.exists(module, &fetched.version).await? =>
            {
                Ok(fetched.version)
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl Stasher for BaseStasher {
    async fn stash(&self, module: &str, version: &str) -> Result<String, StashError> {
        tracing::debug!(module, version, "stashing");
        match tokio::time::timeout(self.timeout, self.fetch_and_save(module, version)).await {
            Ok(result) => result,
            Err(_) => Err(StashError::Timeout {
                module: module.to_string(),
                version: version.to_string(),
                seconds: self.timeout.as_secs(),
            }),
        }
    }
}

/// Lets at most N stashes run at the same time; the rest wait their turn.
pub struct PooledStasher {
    inner: Arc<dyn Stasher>,
    slots: Semaphore,
}

impl PooledStasher {
    /// Wraps `inner`, allowing `workers` concurrent stashes (at least one).
    pub fn new(inner: Arc<dyn Stasher>, workers: usize) -> Self {
        PooledStasher {
            inner,
            slots: Semaphore::new(workers.max(1)),
        }
    }
}

#[async_trait]
impl Stasher for PooledStasher {
    async fn stash(&self, module: &str, version: &str) -> Result<String, StashError> {
        // Inside a coalesced stash, the wait for a slot ends early when
        // every request waiting for that stash has gone (see the module
        // documentation); elsewhere it simply waits.
        let ticket = QUEUED.try_with(Clone::clone).ok();
        let acquired = match &ticket {
            Some(ticket) => tokio::select! {
                biased;
                slot = self.slots.acquire() => slot,
                () = ticket.abandoned() => {
                    tracing::debug!(module, version, "queued stash dropped: no waiter left");
                    return Err(StashError::Abandoned {
                        module: module.to_string(),
                        version: version.to_string(),
                    });
                }
            },
            None => self.slots.acquire().await,
        };
        // The semaphore is never closed, so acquiring only fails if it were.
        let _slot = acquired.map_err(|e| StashError::Task {
            module: module.to_string(),
            version: version.to_string(),
            message: e.to_string(),
        })?;
        self.inner.stash(module, version).await
    }
}

/// Who still waits for one coalesced stash.
struct Interest {
    waiters: AtomicUsize,
    /// Signalled when `waiters` drops to zero.
    all_gone: Notify,
}

/// One waiting request; dropping it (the request finished, was cancelled
/// or hit its deadline) may leave a queued stash without waiters.
struct Waiter(Arc<Interest>);

impl Drop for Waiter {
    fn drop(&mut self) {
        if self.0.waiters.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Stores a permit when nobody listens yet, so a stash that
            // starts queueing later still sees it.
            self.0.all_gone.notify_one();
        }
    }
}

struct PendingStash {
    result: SharedStash,
    interest: Arc<Interest>,
}

type Registry = Arc<Mutex<HashMap<String, PendingStash>>>;

fn lock_registry(registry: &Registry) -> std::sync::MutexGuard<'_, HashMap<String, PendingStash>> {
    registry
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Handed by [`CoalescingStasher`] to the layers below it (as a task
/// local of the stash task), so the pool can drop a queued stash that
/// nobody waits for.
#[derive(Clone)]
struct QueueTicket {
    interest: Arc<Interest>,
    registry: Registry,
    key: Arc<str>,
}

impl QueueTicket {
    /// Resolves once no request waits for this stash and it has been
    /// withdrawn from the registry, so no new request can join it.
    async fn abandoned(&self) {
        loop {
            self.interest.all_gone.notified().await;
            let mut map = lock_registry(&self.registry);
            // Joining happens under the same lock, so a request that
            // joined after the count reached zero is seen here.
            if self.interest.waiters.load(Ordering::Acquire) == 0 {
                if map
                    .get(&*self.key)
                    .is_some_and(|f| Arc::ptr_eq(&f.interest, &self.interest))
                {
                    map.remove(&*self.key);
                }
                return;
            }
        }
    }
}

tokio::task_local! {
    static QUEUED: QueueTicket;
}

type SharedStash = Shared<BoxFuture<'static, Result<String, StashError>>>;

/// Merges concurrent stashes of the same module@version into one. The
/// stash runs as its own task, so once started it completes (and its
/// result is stored) even when every waiting request has gone away; one
/// still queued is dropped then (see the module documentation).
pub struct CoalescingStasher {
    inner: Arc<dyn Stasher>,
    in_flight: Registry,
    max_pending: usize,
    /// Requests that joined a pending stash (for the metrics).
    joined: AtomicU64,
}

impl CoalescingStasher {
    /// Wraps `inner`, with no bound on pending stashes.
    pub fn new(inner: Arc<dyn Stasher>) -> Self {
        Self::with_max_pending(inner, usize::MAX)
    }

    /// Wraps `inner`, refusing a new distinct stash while `max_pending`
    /// (at least one) are queued or running.
    pub fn with_max_pending(inner: Arc<dyn Stasher>, max_pending: usize) -> Self {
        CoalescingStasher {
            inner,
            in_flight: Arc::new(Mutex::new(HashMap::new())),
            max_pending: max_pending.max(1),
            joined: AtomicU64::new(0),
        }
    }

    /// How many stash requests so far joined one already pending for the
    /// same module@version instead of starting their own.
    pub fn joined(&self) -> u64 {
        self.joined.load(Ordering::Relaxed)
    }

    /// How many distinct stashes are queued or running now.
    pub fn pending(&self) -> usize {
        lock_registry(&self.in_flight).len()
    }

    fn start(&self, key: &str, module: &str, version: &str) -> PendingStash {
        let interest = Arc::new(Interest {
            waiters: AtomicUsize::new(0),
            all_gone: Notify::new(),
        });
        let ticket = QueueTicket {
            interest: Arc::clone(&interest),
            registry: Arc::clone(&self.in_flight),
            key: Arc::from(key),
        };
        let inner = Arc::clone(&self.inner);
        let (m, v) = (module.to_string(), version.to_string());
        // The task's own removal takes the registry lock, which the caller
        // holds until the entry is inserted, so it cannot run first.
        // The fetch is traced as part of the request that started it.
        let trace = opentelemetry::Context::current();
        let handle = tokio::spawn(async move {
            let registry = Arc::clone(&ticket.registry);
            let own = Arc::clone(&ticket.interest);
            let key = Arc::clone(&ticket.key);
            let stash = opentelemetry::context::FutureExt::with_context(inner.stash(&m, &v), trace);
            let result = QUEUED.scope(ticket, stash).await;
            let mut map = lock_registry(&registry);
            // An abandoned stash was already withdrawn, and a newer one
            // for the same version may have taken its place.
            if map
                .get(&*key)
                .is_some_and(|f| Arc::ptr_eq(&f.interest, &own))
            {
                map.remove(&*key);
            }
            result
        });
        let (m, v) = (module.to_string(), version.to_string());
        let result = async move {
            handle.await.unwrap_or_else(|join| {
                Err(StashError::Task {
                    module: m,
                    version: v,
                    message: join.to_string(),
                })
            })
        }
        .boxed()
        .shared();
        PendingStash { result, interest }
    }
}

#[async_trait]
impl Stasher for CoalescingStasher {
    async fn stash(&self, module: &str, version: &str) -> Result<String, StashError> {
        let key = format!("{module}@{version}");
        let (result, _waiter) = {
            let mut map = lock_registry(&self.in_flight);
            if !map.contains_key(&key) {
                if map.len() >= self.max_pending {
                    return Err(StashError::Overloaded {
                        module: module.to_string(),
                        version: version.to_string(),
                        pending: self.max_pending,
                    });
                }
                let flight = self.start(&key, module, version);
                map.insert(key.clone(), flight);
            } else {
                self.joined.fetch_add(1, Ordering::Relaxed);
            }
            let flight = map.get(&key).expect("inserted above");
            flight.interest.waiters.fetch_add(1, Ordering::AcqRel);
            (flight.result.clone(), Waiter(Arc::clone(&flight.interest)))
        };
        result.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::{FetchedModule, FetchedZip, RevInfo};
    use crate::storage::MemoryStorage;
    use bytes::Bytes;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts fetches; resolves "main" to v1.0.0; fails for "missing".
    struct CountingFetcher {
        fetches: AtomicUsize,
        running: AtomicUsize,
        max_running: AtomicUsize,
        delay: Duration,
    }

    impl CountingFetcher {
        fn new(delay: Duration) -> Self {
            CountingFetcher {
                fetches: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                max_running: AtomicUsize::new(0),
                delay,
            }
        }
    }

    #[async_trait]
    impl Fetcher for CountingFetcher {
        async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            let version = match version {
                "missing" => return Err(FetchError::not_found(module, version, "no such version")),
                "main" => "v1.0.0".to_string(),
                "bad" => "master".to_string(),
                v => v.to_string(),
            };
            Ok(FetchedModule {
                info: Bytes::from(format!("{{\"Version\":\"{version}\"}}")),
                go_mod: Bytes::from(format!("module {module}\n")),
                zip: FetchedZip::from_bytes(format!("zip of {module}@{version}").as_bytes(), None)
                    .unwrap(),
                version,
            })
        }
        async fn list(&self, _module: &str) -> Result<Vec<String>, FetchError> {
            Ok(vec![])
        }
        async fn latest(&self, module: &str) -> Result<RevInfo, FetchError> {
            Err(FetchError::not_found(module, "latest", "none"))
        }
        async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
            Err(FetchError::not_found(module, rev, "none"))
        }
    }

    /// Waits until `done` holds, failing after 10 s: a lower bound on time
    /// is all a loaded machine guarantees.
    async fn eventually<F, Fut>(what: &str, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done().await {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn stack(
        fetcher: Arc<CountingFetcher>,
        storage: Arc<MemoryStorage>,
        workers: usize,
    ) -> Arc<dyn Stasher> {
        let base = Arc::new(BaseStasher::new(fetcher, storage, Duration::from_secs(30)));
        let pooled = Arc::new(PooledStasher::new(base, workers));
        Arc::new(CoalescingStasher::new(pooled))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hundred_concurrent_stashes_fetch_once() {
        let fetcher = Arc::new(CountingFetcher::new(Duration::from_millis(100)));
        let storage = Arc::new(MemoryStorage::new());
        let stasher = stack(fetcher.clone(), storage.clone(), 10);
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let stasher = stasher.clone();
                tokio::spawn(async move { stasher.stash("example.com/m", "v1.2.3").await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), "v1.2.3");
        }
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 1);
        // A later request finds it stored and does not fetch either.
        assert_eq!(
            stasher.stash("example.com/m", "v1.2.3").await.unwrap(),
            "v1.2.3"
        );
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn query_resolves_to_canonical_version_and_is_not_refetched() {
        let fetcher = Arc::new(CountingFetcher::new(Duration::ZERO));
        let storage = Arc::new(MemoryStorage::new());
        let stasher = stack(fetcher.clone(), storage.clone(), 2);
        assert_eq!(
            stasher.stash("example.com/m", "main").await.unwrap(),
            "v1.0.0"
        );
        assert!(storage.exists("example.com/m", "v1.0.0").await.unwrap());
        assert_eq!(
            stasher.stash("example.com/m", "v1.0.0").await.unwrap(),
            "v1.0.0"
        );
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn errors_reach_every_waiter_and_are_not_cached() {
        let fetcher = Arc::new(CountingFetcher::new(Duration::from_millis(20)));
        let storage = Arc::new(MemoryStorage::new());
        let stasher = stack(fetcher.clone(), storage, 2);
        let (a, b) = tokio::join!(
            stasher.stash("example.com/m", "missing"),
            stasher.stash("example.com/m", "missing")
        );
        assert!(a.unwrap_err().is_not_found());
        assert!(b.unwrap_err().is_not_found());
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 1);
        assert!(stasher.stash("example.com/m", "missing").await.is_err());
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn unusable_resolved_version_is_rejected() {
        let fetcher = Arc::new(CountingFetcher::new(Duration::ZERO));
        let storage = Arc::new(MemoryStorage::new());
        let stasher = stack(fetcher, storage, 1);
        let err = stasher.stash("example.com/m", "bad").await.unwrap_err();
        assert!(matches!(err, StashError::InvalidVersion { .. }), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn pool_bounds_concurrent_fetches() {
        let fetcher = Arc::new(CountingFetcher::new(Duration::from_millis(50)));
        let storage = Arc::new(MemoryStorage::new());
        let stasher = stack(fetcher.clone(), storage, 3);
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let stasher = stasher.clone();
                tokio::spawn(
                    async move { stasher.stash("example.com/m", &format!("v1.0.{i}")).await },
                )
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 12);
        assert!(fetcher.max_running.load(Ordering::SeqCst) <= 3);
        assert!(fetcher.max_running.load(Ordering::SeqCst) >= 2);
    }

    /// A store shared with another instance that publishes the version
    /// (with its own bytes) just before our save, which it refuses as a
    /// conflict; with `publish` false the other saver never completes.
    struct RaceLostStorage {
        inner: MemoryStorage,
        publish: bool,
    }

    #[async_trait]
    impl Storage for RaceLostStorage {
        async fn info(&self, module: &str, version: &str) -> Result<Bytes, StorageError> {
            self.inner.info(module, version).await
        }
        async fn go_mod(&self, module: &str, version: &str) -> Result<Bytes, StorageError> {
            self.inner.go_mod(module, version).await
        }
        async fn zip(
            &self,
            module: &str,
            version: &str,
        ) -> Result<crate::storage::StoredZip, StorageError> {
            self.inner.zip(module, version).await
        }
        async fn exists(&self, module: &str, version: &str) -> Result<bool, StorageError> {
            self.inner.exists(module, version).await
        }
        async fn list(&self, module: &str) -> Result<Vec<String>, StorageError> {
            self.inner.list(module).await
        }
        async fn save(
            &self,
            module: &str,
            version: &str,
            go_mod: Bytes,
            _zip: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
            info: Bytes,
        ) -> Result<(), StorageError> {
            if self.publish {
                let mut winner: &[u8] = b"the winner's zip";
                self.inner
                    .save(module, version, go_mod, &mut winner, info)
                    .await?;
            }
            Err(StorageError::Conflict {
                module: module.to_string(),
                version: version.to_string(),
                key: format!("{module}/@v/{version}.zip"),
                reason: "different bytes".to_string(),
            })
        }
        async fn delete(&self, module: &str, version: &str) -> Result<(), StorageError> {
            self.inner.delete(module, version).await
        }
        async fn catalog(
            &self,
            token: &str,
            page_size: usize,
        ) -> Result<crate::storage::CatalogPage, StorageError> {
            self.inner.catalog(token, page_size).await
        }
    }

    #[tokio::test]
    async fn losing_a_save_race_serves_the_published_version() {
        let storage = Arc::new(RaceLostStorage {
            inner: MemoryStorage::new(),
            publish: true,
        });
        let fetcher = Arc::new(CountingFetcher::new(Duration::ZERO));
        let stasher = BaseStasher::new(fetcher, storage.clone(), Duration::from_secs(30));
        assert_eq!(
            stasher.stash("example.com/m", "v1.0.0").await.unwrap(),
            "v1.0.0"
        );
        let mut zip = storage.zip("example.com/m", "v1.0.0").await.unwrap();
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut zip.reader, &mut bytes)
            .await
            .unwrap();
        assert_eq!(bytes, b"the winner's zip");
    }

    #[tokio::test]
    async fn a_conflict_without_a_published_version_is_an_error() {
        let storage = Arc::new(RaceLostStorage {
            inner: MemoryStorage::new(),
            publish: false,
        });
        let fetcher = Arc::new(CountingFetcher::new(Duration::ZERO));
        let stasher = BaseStasher::new(fetcher, storage, Duration::from_secs(30));
        let err = stasher.stash("example.com/m", "v1.0.0").await.unwrap_err();
        assert!(err.to_string().contains("refusing to overwrite"), "{err}");
    }

    #[tokio::test]
    async fn timeout_is_reported() {
        let fetcher = Arc::new(CountingFetcher::new(Duration::from_secs(5)));
        let storage = Arc::new(MemoryStorage::new());
        let stasher = BaseStasher::new(fetcher, storage, Duration::from_millis(20));
        let err = stasher.stash("example.com/m", "v1.0.0").await.unwrap_err();
        assert!(matches!(err, StashError::Timeout { .. }), "{err}");
    }

    #[tokio::test]
    async fn stash_finishes_when_the_requester_goes_away() {
        let fetcher = Arc::new(CountingFetcher::new(Duration::from_millis(50)));
        let storage = Arc::new(MemoryStorage::new());
        let stasher = stack(fetcher.clone(), storage.clone(), 1);
        let waiting = stasher.clone();
        let request =
            tokio::spawn(
                async move { waiting.stash("example.com/m", "v2.0.0+incompatible").await },
            );
        tokio::time::sleep(Duration::from_millis(10)).await;
        request.abort();
        eventually("the stash to finish", || async {
            storage
                .exists("example.com/m", "v2.0.0+incompatible")
                .await
                .unwrap()
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_stashes_without_waiters_are_dropped_started_ones_finish() {
        let fetcher = Arc::new(CountingFetcher::new(Duration::from_millis(1500)));
        let storage = Arc::new(MemoryStorage::new());
        let base = Arc::new(BaseStasher::new(
            fetcher.clone(),
            storage.clone(),
            Duration::from_secs(30),
        ));
        let pooled = Arc::new(PooledStasher::new(base, 1));
        let stasher = Arc::new(CoalescingStasher::new(pooled));
        // v1.0.0 takes the only slot; v1.0.1 .. v1.0.20 queue behind it.
        let requests: Vec<_> = (0..=20)
            .map(|i| {
                let stasher = stasher.clone();
                tokio::spawn(
                    async move { stasher.stash("example.com/m", &format!("v1.0.{i}")).await },
                )
            })
            .collect();
        eventually("21 pending", || async { stasher.pending() == 21 }).await;
        for request in &requests {
            request.abort();
        }
        // Only the started stash is left (it takes 1.5 s), and it still
        // completes.
        eventually("1 pending", || async { stasher.pending() == 1 }).await;
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 1);
        eventually("0 pending", || async { stasher.pending() == 0 }).await;
        assert!(storage.exists("example.com/m", "v1.0.0").await.unwrap());
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 1);
        // A queued stash that another request joins is not dropped when
        // the first request leaves.
        let slow = tokio::spawn({
            let stasher = stasher.clone();
            async move { stasher.stash("example.com/m", "v1.1.0").await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let first = tokio::spawn({
            let stasher = stasher.clone();
            async move { stasher.stash("example.com/m", "v1.1.1").await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = tokio::spawn({
            let stasher = stasher.clone();
            async move { stasher.stash("example.com/m", "v1.1.1").await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        first.abort();
        assert_eq!(second.await.unwrap().unwrap(), "v1.1.1");
        assert_eq!(slow.await.unwrap().unwrap(), "v1.1.0");
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pending_stashes_are_bounded_and_joining_is_always_allowed() {
        let fetcher = Arc::new(CountingFetcher::new(Duration::from_millis(200)));
        let storage = Arc::new(MemoryStorage::new());
        let base = Arc::new(BaseStasher::new(fetcher, storage, Duration::from_secs(30)));
        let pooled = Arc::new(PooledStasher::new(base, 1));
        let stasher = Arc::new(CoalescingStasher::with_max_pending(pooled, 2));
        let a = tokio::spawn({
            let stasher = stasher.clone();
            async move { stasher.stash("example.com/m", "v1.0.0").await }
        });
        let b = tokio::spawn({
            let stasher = stasher.clone();
            async move { stasher.stash("example.com/m", "v1.0.1").await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let err = stasher.stash("example.com/m", "v1.0.2").await.unwrap_err();
        assert!(
            matches!(err, StashError::Overloaded { pending: 2, .. }),
            "{err}"
        );
        assert_eq!(
            stasher.stash("example.com/m", "v1.0.1").await.unwrap(),
            "v1.0.1"
        );
        assert_eq!(a.await.unwrap().unwrap(), "v1.0.0");
        assert_eq!(b.await.unwrap().unwrap(), "v1.0.1");
        assert_eq!(
            stasher.stash("example.com/m", "v1.0.2").await.unwrap(),
            "v1.0.2"
        );
    }
}
