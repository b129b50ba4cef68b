//! Opening the configured storage (`StorageType`) and single-flight
//! (`SingleFlightType`) backends, checking at start that the services
//! they need answer and accept the configured credentials, so a
//! misconfigured instance fails at once with the reason rather than at its
//! first request.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use object_store::ObjectStore;

use crate::config::Config;
use crate::singleflight::etcd::EtcdLocks;
use crate::singleflight::object_lease::ObjectLeases;
use crate::singleflight::redis::RedisLocks;
use crate::singleflight::{LockService, WaitPolicy};
use crate::storage::object::services;
use crate::storage::{DiskStorage, MemoryStorage, ObjectStorage, Storage};

/// A lock service with the waiting policy configured for it.
pub struct SingleFlight {
    /// The service.
    pub locks: Arc<dyn LockService>,
    /// Lease TTL and how long to wait.
    pub policy: WaitPolicy,
}

/// The opened backends.
pub struct Backends {
    /// Where modules are stored.
    pub storage: Arc<dyn Storage>,
    /// The distributed lock, unless `SingleFlightType` is `memory` (then
    /// only the in-process single-flight runs).
    pub single_flight: Option<SingleFlight>,
}

/// Azure lease length: Athens renews its blob leases every 10 s.
const AZURE_LEASE_TTL: Duration = Duration::from_secs(15);
/// etcd lease length, refreshed while held (a dead holder's lock frees
/// itself after this).
const ETCD_LEASE_TTL: Duration = Duration::from_secs(30);
/// How often a waiter on a storage lease or etcd lock tries again.
const LEASE_RETRY: Duration = Duration::from_millis(250);

fn object_store_for(config: &Config) -> anyhow::Result<Option<Arc<dyn ObjectStore>>> {
    let s = &config.storage;
    let store = match config.storage_type.as_str() {
        "s3" => services::s3(&s.s3)?,
        "minio" => services::minio(&s.minio)?,
        "gcp" => services::gcp(&s.gcp)?,
        "azureblob" => services::azure_blob(&s.azure_blob)?,
        _ => return Ok(None),
    };
    Ok(Some(store))
}

/// Opens the storage and single-flight backends `config` selects and
/// checks that their services answer.
pub async fn open(config: &Config) -> anyhow::Result<Backends> {
    let object_store = object_store_for(config)?;
    let storage: Arc<dyn Storage> = match config.storage_type.as_str() {
        "" | "memory" => Arc::new(MemoryStorage::new()),
        "disk" => Arc::new(
            DiskStorage::new(&config.storage.disk.root_path)
                .context("opening disk storage (Storage.Disk.RootPath)")?,
        ),
        "external" => bail!("PENDING-HELPER external"),
        kind @ ("s3" | "minio" | "gcp" | "azureblob") => {
            let store = object_store.clone().context("object store was not built")?;
            let storage = ObjectStorage::new(store, service_name(kind));
            storage
                .check()
                .await
                .with_context(|| format!("StorageType {kind:?}: the bucket cannot be used"))?;
            Arc::new(storage)
        }
        other => bail!("StorageType {other:?} is not supported by this server"),
    };
    let single_flight = open_single_flight(config, object_store).await?;
    Ok(Backends {
        storage,
        single_flight,
    })
}

fn service_name(kind: &str) -> &'static str {
    match kind {
        "s3" => "s3",
        "minio" => "minio",
        "gcp" => "gcp",
        _ => "azureblob",
    }
}

async fn open_single_flight(
    config: &Config,
    object_store: Option<Arc<dyn ObjectStore>>,
) -> anyhow::Result<Option<SingleFlight>> {
    let sf = &config.single_flight;
    let stash_wait = config.stash_timeout_duration().max(Duration::from_secs(1));
    let (locks, policy): (Arc<dyn LockService>, WaitPolicy) =
        match config.single_flight_type.as_str() {
            "" | "memory" => return Ok(None),
            "redis" => {
                let lock = &sf.redis.lock_config;
                let locks = RedisLocks::connect(&sf.redis.endpoint, sf.redis.password.expose())
                    .context("SingleFlight.Redis")?;
                let policy = WaitPolicy::from_lock_config(lock.ttl, lock.timeout, lock.max_retries);
                (Arc::new(locks), policy)
            }
            "redis-sentinel" => {
                let s = &sf.redis_sentinel;
                let locks = RedisLocks::connect_sentinel(
                    &s.endpoints,
                    &s.master_name,
                    s.sentinel_password.expose(),
                    &s.redis_username,
                    s.redis_password.expose(),
                    s.db,
                )
                .context("SingleFlight.RedisSentinel")?;
                let lock = &s.lock_config;
                let policy = WaitPolicy::from_lock_config(lock.ttl, lock.timeout, lock.max_retries);
                (Arc::new(locks), policy)
            }
            "etcd" => {
                let locks = EtcdLocks::connect(&sf.etcd.endpoints).context("SingleFlight.Etcd")?;
                let policy = WaitPolicy {
                    ttl: ETCD_LEASE_TTL,
                    timeout: stash_wait,
                    retry_interval: LEASE_RETRY,
                };
                (Arc::new(locks), policy)
            }
            kind @ ("gcp" | "azureblob") => {
                let store = object_store.with_context(|| {
                    format!("SingleFlightType {kind:?} needs StorageType {kind:?}")
                })?;
                let ttl = if kind == "gcp" {
                    Duration::from_secs(sf.gcp.stale_threshold.max(1))
                } else {
                    AZURE_LEASE_TTL
                };
                let policy = WaitPolicy {
                    ttl,
                    timeout: stash_wait,
                    retry_interval: LEASE_RETRY,
                };
                (
                    Arc::new(ObjectLeases::new(store, service_name(kind))),
                    policy,
                )
            }
            other => bail!("SingleFlightType {other:?} is not supported"),
        };
    locks.check().await.with_context(|| {
        format!(
            "SingleFlightType {:?}: the lock service cannot be used",
            config.single_flight_type
        )
    })?;
    Ok(Some(SingleFlight { locks, policy }))
}
