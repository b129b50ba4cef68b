//! The stash layer that holds a distributed lease per module version.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{StashError, Stasher};
use crate::locks::{Lease, LockService, WaitPolicy};
use crate::storage::{check_storable, Storage};

/// Runs the inner stash only while holding the lease on
/// `module@version`. While another instance holds it, waits, checking
/// storage at each attempt: the holder's result is then served without a
/// fetch. A holder that dies lets its lease expire, and a waiter then takes
/// it (the inner stash checks storage first, so a version completed just
/// before the holder died is not fetched again).
pub struct DistributedStasher {
    inner: Arc<dyn Stasher>,
    locks: Arc<dyn LockService>,
    storage: Arc<dyn Storage>,
    policy: WaitPolicy,
}

impl DistributedStasher {
    /// Wraps `inner` with leases from `locks`, checking `storage` while
    /// waiting.
    pub fn new(
        inner: Arc<dyn Stasher>,
        locks: Arc<dyn LockService>,
        storage: Arc<dyn Storage>,
        policy: WaitPolicy,
    ) -> Self {
        DistributedStasher {
            inner,
            locks,
            storage,
            policy,
        }
    }

    fn lock_error(&self, module: &str, version: &str, message: String) -> StashError {
        StashError::Lock {
            module: module.to_string(),
            version: version.to_string(),
            message,
        }
    }

    async fn stash_holding(
        &self,
        module: &str,
        version: &str,
        mut lease: Box<dyn Lease>,
    ) -> Result<String, StashError> {
        let ttl = self.policy.ttl;
        // Refresh at a third of the TTL so two refreshes can fail (a slow
        // round trip) before the lease runs out.
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let key = format!("{module}@{version}");
        let locks_name = self.locks.name();
        let refresher = tokio::spawn(async move {
            let period = (ttl / 3).max(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = &mut stop_rx => return lease,
                    _ = tokio::time::sleep(period) => {}
                }
                match lease.refresh().await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(key, service = locks_name, "lease lost while fetching");
                    }
                    Err(e) => tracing::warn!(key, error = %e, "refreshing lease failed"),
                }
            }
        });
        let result = self.inner.stash(module, version).await;
        let _ = stop_tx.send(());
        match refresher.await {
            Ok(lease) => {
                if let Err(e) = lease.release().await {
                    // The lease then expires by its TTL; nothing else to do.
                    tracing::warn!(module, version, error = %e, "releasing lease failed");
                }
            }
            Err(e) => tracing::warn!(module, version, error = %e, "lease refresher failed"),
        }
        result
    }
}

#[async_trait]
impl Stasher for DistributedStasher {
    async fn stash(&self, module: &str, version: &str) -> Result<String, StashError> {
        let key = format!("athens/stash/{module}@{version}");
        let canonical = check_storable(module, version).is_ok();
        let started = Instant::now();
        loop {
            match self.locks.try_lock(&key, self.policy.ttl).await {
                Ok(Some(lease)) => return self.stash_holding(module, version, lease).await,
                Ok(None) => {}
                Err(e) => return Err(self.lock_error(module, version, e.to_string())),
            }
            // Queries (branches, `latest`) resolve anew at every fetch, so
            // only a canonical version can be found finished by another holder.
            if canonical && self.storage.exists(module, version).await? {
                return Ok(version.to_string());
            }
            if started.elapsed() >= self.policy.timeout {
                return Err(self.lock_error(
                    module,
                    version,
                    format!(
                        "another instance held the {} lock for more than {}s",
                        self.locks.name(),
                        self.policy.timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(self.policy.retry_interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::{FetchError, FetchedModule, FetchedZip, Fetcher, RevInfo};
    use crate::locks::LockError;
    use crate::stash::BaseStasher;
    use crate::storage::MemoryStorage;
    use bytes::Bytes;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// Leases in a shared map, as one lock service seen by several
    /// "instances" (stashers) in one test.
    #[derive(Default)]
    struct MapLocks {
        held: Mutex<HashMap<String, (u64, Instant)>>,
        next: AtomicUsize,
    }

    struct MapLease {
        locks: Arc<MapLocks>,
        key: String,
        id: u64,
        ttl: Duration,
    }

    #[async_trait]
    impl LockService for Arc<MapLocks> {
        fn name(&self) -> &'static str {
            "map"
        }
        async fn check(&self) -> Result<(), LockError> {
            Ok(())
        }
        async fn try_lock(
            &self,
            key: &str,
            ttl: Duration,
        ) -> Result<Option<Box<dyn Lease>>, LockError> {
            let mut held = self.held.lock().unwrap();
            if held
                .get(key)
                .is_some_and(|(_, until)| *until > Instant::now())
            {
                return Ok(None);
            }
            let id = self.next.fetch_add(1, Ordering::SeqCst) as u64;
            held.insert(key.to_string(), (id, Instant::now() + ttl));
            Ok(Some(Box::new(MapLease {
                locks: Arc::clone(self),
                key: key.to_string(),
                id,
                ttl,
            })))
        }
    }

    #[async_trait]
    impl Lease for MapLease {
        async fn refresh(&mut self) -> Result<bool, LockError> {
            let mut held = self.locks.held.lock().unwrap();
            match held.get_mut(&self.key) {
                Some((id, until)) if *id == self.id => {
                    *until = Instant::now() + self.ttl;
                    Ok(true)
                }
                _ => Ok(false),
            }
        }
        async fn release(self: Box<Self>) -> Result<(), LockError> {
            let mut held = self.locks.held.lock().unwrap();
            if held.get(&self.key).is_some_and(|(id, _)| *id == self.id) {
                held.remove(&self.key);
            }
            Ok(())
        }
    }

    struct SlowFetcher {
        fetches: AtomicUsize,
        delay: Duration,
    }

    #[async_trait]
    impl Fetcher for SlowFetcher {
        async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            Ok(FetchedModule {
                info: Bytes::from(format!("{{\"Version\":\"{version}\"}}")),
                go_mod: Bytes::from(format!("module {module}\n")),
                zip: FetchedZip::from_bytes(b"zip", None).unwrap(),
                version: version.to_string(),
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

    fn instance(
        locks: &Arc<MapLocks>,
        storage: &Arc<MemoryStorage>,
        fetcher: &Arc<SlowFetcher>,
        policy: WaitPolicy,
    ) -> DistributedStasher {
        let base = Arc::new(BaseStasher::new(
            Arc::clone(fetcher) as Arc<dyn Fetcher>,
            Arc::clone(storage) as Arc<dyn Storage>,
            Duration::from_secs(30),
        ));
        DistributedStasher::new(
            base,
            Arc::new(Arc::clone(locks)),
            Arc::clone(storage) as Arc<dyn Storage>,
            policy,
        )
    }

    fn policy(ttl_ms: u64, timeout_ms: u64) -> WaitPolicy {
        WaitPolicy {
            ttl: Duration::from_millis(ttl_ms),
            timeout: Duration::from_millis(timeout_ms),
            retry_interval: Duration::from_millis(20),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn instances_sharing_storage_fetch_once() {
        let locks = Arc::new(MapLocks::default());
        let storage = Arc::new(MemoryStorage::new());
        let fetcher = Arc::new(SlowFetcher {
            fetches: AtomicUsize::new(0),
            delay: Duration::from_millis(300),
        });
        // A TTL shorter than the fetch: only refreshing keeps the lease.
        let instances: Vec<_> = (0..3)
            .map(|_| Arc::new(instance(&locks, &storage, &fetcher, policy(150, 5000))))
            .collect();
        let stashes = instances.iter().map(|i| i.stash("example.com/m", "v1.0.0"));
        for result in futures::future::join_all(stashes).await {
            assert_eq!(result.unwrap(), "v1.0.0");
        }
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 1);
        // Released at the end: the next version's lease is free at once.
        assert!(locks.held.lock().unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_holders_lease_expires_and_a_waiter_fetches() {
        let locks = Arc::new(MapLocks::default());
        let storage = Arc::new(MemoryStorage::new());
        let fetcher = Arc::new(SlowFetcher {
            fetches: AtomicUsize::new(0),
            delay: Duration::ZERO,
        });
        // A holder that took the lease and died: never refreshed or released.
        let orphan = Arc::clone(&locks)
            .try_lock(
                "athens/stash/example.com/m@v1.0.0",
                Duration::from_millis(300),
            )
            .await
            .unwrap()
            .unwrap();
        std::mem::forget(orphan);
        let started = Instant::now();
        let waiter = instance(&locks, &storage, &fetcher, policy(300, 5000));
        assert_eq!(
            waiter.stash("example.com/m", "v1.0.0").await.unwrap(),
            "v1.0.0"
        );
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn waiting_gives_up_after_the_timeout() {
        let locks = Arc::new(MapLocks::default());
        let storage = Arc::new(MemoryStorage::new());
        let fetcher = Arc::new(SlowFetcher {
            fetches: AtomicUsize::new(0),
            delay: Duration::ZERO,
        });
        let held = Arc::clone(&locks)
            .try_lock("athens/stash/example.com/m@v1.0.0", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(held.is_some());
        let waiter = instance(&locks, &storage, &fetcher, policy(60_000, 200));
        let err = waiter.stash("example.com/m", "v1.0.0").await.unwrap_err();
        assert!(matches!(err, StashError::Lock { .. }), "{err}");
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 0);
    }
}
