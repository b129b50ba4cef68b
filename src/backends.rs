//! Opening the configured storage (`StorageType`) and lock service
//! (`SingleFlightType`) backends, checking at start that the services
//! they need answer and accept the configured credentials, so a
//! misconfigured instance fails at once with the reason rather than at its
//! first request.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use object_store::ObjectStore;

use crate::config::{Config, SingleFlightType, StorageType};
use crate::fetch::gogetdir::stale_age;
use crate::locks::etcd::EtcdLocks;
use crate::locks::object_lease::ObjectLeases;
use crate::locks::redis::RedisLocks;
use crate::locks::{DistributedLock, LockService, WaitPolicy};
use crate::storage::object::services;
use crate::storage::{
    CachedStorage, DiskStorage, ExternalStorage, MemoryStorage, ObjectStorage, ServiceFailure,
    Storage, StorageError, TimeoutStorage,
};

/// The opened backends.
pub struct Backends {
    /// Where modules are stored.
    pub storage: Arc<dyn Storage>,
    /// The distributed lock, unless `SingleFlightType` is `memory` (then
    /// only the in-process [`crate::stash::CoalescingStasher`] runs).
    pub lock: Option<DistributedLock>,
}

/// Azure lease length: Athens renews its blob leases every 10 s.
const AZURE_LEASE_TTL: Duration = Duration::from_secs(15);
/// etcd lease length, refreshed while held (a dead holder's lock frees
/// itself after this).
const ETCD_LEASE_TTL: Duration = Duration::from_secs(30);
/// How often a waiter on a storage lease or etcd lock tries again.
const LEASE_RETRY: Duration = Duration::from_millis(250);

/// A start-up check of the storage service, given `Timeout` to answer
/// like every later storage call.
async fn within_timeout(
    config: &Config,
    check: impl std::future::Future<Output = Result<(), StorageError>>,
) -> Result<(), StorageError> {
    let limit = config.timeout_duration();
    tokio::time::timeout(limit, check)
        .await
        .unwrap_or_else(|_| {
            Err(StorageError::Service(Box::new(ServiceFailure {
                service: config.storage_type.as_str(),
                op: "checking",
                key: "the service".into(),
                message: format!("no answer within Timeout ({}s)", limit.as_secs()),
            })))
        })
}

/// The object store `StorageType` names, with the service name errors
/// use; `None` for the other storage types.
fn object_store_for(
    config: &Config,
) -> anyhow::Result<Option<(Arc<dyn ObjectStore>, &'static str)>> {
    let s = &config.storage;
    let store = match config.storage_type {
        StorageType::S3 => services::s3(&s.s3)?,
        StorageType::Minio => services::minio(&s.minio)?,
        StorageType::Gcp => services::gcp(&s.gcp)?,
        StorageType::AzureBlob => services::azure_blob(&s.azure_blob)?,
        _ => return Ok(None),
    };
    Ok(Some((store, config.storage_type.as_str())))
}

/// Opens the storage and lock service backends `config` selects and
/// checks that their services answer. What saves that died left behind
/// (disk temporary directories, staged object-store uploads) is removed in
/// the background once older than twice `StashTimeout`, so a save still
/// running in another instance sharing the store is never disturbed.
pub async fn open(config: &Config) -> anyhow::Result<Backends> {
    let object_store = object_store_for(config)?;
    let storage: Arc<dyn Storage> = match (&object_store, config.storage_type) {
        (Some((store, service)), kind) => {
            let storage = Arc::new(
                ObjectStorage::new(Arc::clone(store), service).with_stale_after(stale_age(config)),
            );
            within_timeout(config, storage.check())
                .await
                .with_context(|| {
                    format!("StorageType {:?}: the bucket cannot be used", kind.as_str())
                })?;
            let tidy = Arc::clone(&storage);
            tokio::spawn(async move {
                match tidy.remove_stale_uploads().await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(removed = n, "storage: removed uploads of interrupted saves")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "storage: removing uploads of interrupted saves")
                    }
                }
            });
            storage
        }
        (None, StorageType::Memory) => Arc::new(MemoryStorage::new()),
        (None, StorageType::Disk) => {
            let disk = DiskStorage::new(&config.storage.disk.root_path)
                .context("opening disk storage (Storage.Disk.RootPath)")?;
            let (tidy, age) = (disk.clone(), stale_age(config));
            tokio::task::spawn_blocking(move || match tidy.remove_stale_temp(age) {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    removed = n,
                    "storage: removed leftovers of interrupted saves"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "storage: removing leftovers of interrupted saves")
                }
            });
            Arc::new(disk)
        }
        (None, StorageType::External) => {
            let external = ExternalStorage::new(&config.storage.external.url)
                .context("external storage (Storage.External.URL)")?;
            within_timeout(config, external.check())
                .await
                .context("external storage (Storage.External.URL) does not answer")?;
            Arc::new(external)
        }
        (None, other) => bail!(
            "StorageType {:?} is not supported by this server",
            other.as_str()
        ),
    };
    // Memory storage is memory already; every other backend pays a file
    // or network read per request for the small, immutable version files,
    // each bounded by `Timeout` as Athens bounds its storage calls.
    let storage: Arc<dyn Storage> = match config.storage_type {
        StorageType::Memory => storage,
        kind => Arc::new(CachedStorage::new(Arc::new(TimeoutStorage::new(
            storage,
            config.timeout_duration(),
            kind.as_str(),
        )))),
    };
    let lock = open_lock(config, object_store).await?;
    Ok(Backends { storage, lock })
}

async fn open_lock(
    config: &Config,
    object_store: Option<(Arc<dyn ObjectStore>, &'static str)>,
) -> anyhow::Result<Option<DistributedLock>> {
    let sf = &config.single_flight;
    let stash_wait = config.stash_timeout_duration().max(Duration::from_secs(1));
    let kind = config.single_flight_type;
    let (locks, policy): (Arc<dyn LockService>, WaitPolicy) = match kind {
        SingleFlightType::Memory => return Ok(None),
        SingleFlightType::Redis => {
            let lock = &sf.redis.lock_config;
            let password = sf.redis.password.expose();
            let locks = if sf.redis.cluster {
                RedisLocks::connect_cluster(&sf.redis.endpoint, password)
            } else {
                RedisLocks::connect(&sf.redis.endpoint, password)
            }
            .context("SingleFlight.Redis")?;
            let policy = WaitPolicy::from_lock_config(lock.ttl, lock.timeout, lock.max_retries);
            (Arc::new(locks), policy)
        }
        SingleFlightType::RedisSentinel => {
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
        SingleFlightType::Etcd => {
            let locks = EtcdLocks::connect(&sf.etcd.endpoints).context("SingleFlight.Etcd")?;
            let policy = WaitPolicy {
                ttl: ETCD_LEASE_TTL,
                timeout: stash_wait,
                retry_interval: LEASE_RETRY,
            };
            (Arc::new(locks), policy)
        }
        SingleFlightType::Gcp | SingleFlightType::AzureBlob => {
            let (store, service) = object_store
                .filter(|(_, service)| *service == kind.as_str())
                .with_context(|| {
                    format!(
                        "SingleFlightType {:?} needs StorageType {:?}",
                        kind.as_str(),
                        kind.as_str()
                    )
                })?;
            let ttl = if kind == SingleFlightType::Gcp {
                Duration::from_secs(sf.gcp.stale_threshold.max(1))
            } else {
                AZURE_LEASE_TTL
            };
            let policy = WaitPolicy {
                ttl,
                timeout: stash_wait,
                retry_interval: LEASE_RETRY,
            };
            (Arc::new(ObjectLeases::new(store, service)), policy)
        }
    };
    locks.check().await.with_context(|| {
        format!(
            "SingleFlightType {:?}: the lock service cannot be used",
            kind.as_str()
        )
    })?;
    Ok(Some(DistributedLock {
        service: locks,
        policy,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use fixtures::services::etcd::Etcd;
    use fixtures::services::redis::{RedisSentinel, RedisServer};
    use fixtures::services::s3::Moto;

    fn s3_config(moto: &Moto, bucket: &str) -> Config {
        let mut config = Config {
            storage_type: StorageType::S3,
            ..Config::default()
        };
        let s3 = &mut config.storage.s3;
        s3.region = "us-east-1".into();
        s3.key = "key".into();
        s3.secret = Secret::new("secret");
        s3.bucket = bucket.into();
        s3.endpoint = moto.endpoint();
        s3.force_path_style = true;
        config
    }

    /// Every kind of lock service, chosen by configuration alone, hands
    /// out exclusive leases.
    async fn assert_locks(opened: &Backends) {
        let lock = opened.lock.as_ref().expect("a lock service");
        let ttl = Duration::from_secs(5);
        let lease = lock.service.try_lock("backends-test", ttl).await.unwrap();
        assert!(lease.is_some());
        assert!(lock
            .service
            .try_lock("backends-test", ttl)
            .await
            .unwrap()
            .is_none());
        lease.unwrap().release().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn s3_with_each_lock_service_opens_from_config() {
        let moto = Moto::start().unwrap();
        moto.create_bucket("backends").unwrap();
        let redis = RedisServer::start().unwrap();
        let sentinel = RedisSentinel::start(redis.process.addr.port()).unwrap();
        let etcd = Etcd::start().unwrap();

        let mut config = s3_config(&moto, "backends");
        let opened = open(&config).await.unwrap();
        assert!(opened.lock.is_none());

        config.single_flight_type = SingleFlightType::Redis;
        config.single_flight.redis.endpoint = redis.endpoint();
        assert_locks(&open(&config).await.unwrap()).await;

        config.single_flight_type = SingleFlightType::RedisSentinel;
        let rs = &mut config.single_flight.redis_sentinel;
        rs.endpoints = vec![sentinel.endpoint()];
        rs.master_name = fixtures::services::redis::MASTER_NAME.into();
        rs.sentinel_password = Secret::default();
        assert_locks(&open(&config).await.unwrap()).await;

        config.single_flight_type = SingleFlightType::Etcd;
        config.single_flight.etcd.endpoints = etcd.endpoint();
        assert_locks(&open(&config).await.unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unusable_services_stop_the_start_with_the_reason() {
        let moto = Moto::start().unwrap();
        moto.create_bucket("present").unwrap();
        let err = open(&s3_config(&moto, "absent")).await.err().unwrap();
        assert!(format!("{err:#}").contains("StorageType \"s3\""), "{err:#}");

        let dead = fixtures::services::free_addr().to_string();
        let mut config = s3_config(&moto, "present");
        config.single_flight_type = SingleFlightType::Redis;
        config.single_flight.redis.endpoint = dead.clone();
        let err = open(&config).await.err().unwrap();
        assert!(
            format!("{err:#}").contains("SingleFlightType \"redis\""),
            "{err:#}"
        );

        let redis = RedisServer::start_with_password("right").unwrap();
        config.single_flight.redis.endpoint = redis.endpoint();
        config.single_flight.redis.password = Secret::new("wrong-password");
        let err = format!("{:#}", open(&config).await.err().unwrap());
        assert!(err.contains("credentials"), "{err}");
        assert!(!err.contains("wrong-password"), "{err}");

        config.single_flight_type = SingleFlightType::Etcd;
        config.single_flight.etcd.endpoints = dead;
        let err = open(&config).await.err().unwrap();
        assert!(
            format!("{err:#}").contains("SingleFlightType \"etcd\""),
            "{err:#}"
        );
    }

    /// Storage and leases in one Azure container, chosen by configuration.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn azureblob_storage_with_its_own_leases_opens_from_config() {
        let azurite = fixtures::services::azurite::Azurite::start().unwrap();
        azurite.create_container("backends").unwrap();
        // The way a deployment points the client at Azurite. No other test
        // sets or depends on this variable (they pass the endpoint).
        std::env::set_var("AZURE_STORAGE_ENDPOINT", azurite.blob_endpoint());
        let mut config = Config {
            storage_type: StorageType::AzureBlob,
            single_flight_type: SingleFlightType::AzureBlob,
            ..Config::default()
        };
        let az = &mut config.storage.azure_blob;
        az.account_name = fixtures::services::azurite::ACCOUNT.into();
        az.account_key = Secret::new(fixtures::services::azurite::ACCOUNT_KEY);
        az.container_name = "backends".into();
        let opened = open(&config).await.unwrap();
        assert_locks(&opened).await;
        crate::storage::conformance::run(opened.storage.as_ref()).await;
        config.storage.azure_blob.container_name = "missing".into();
        let err = open(&config).await.err().unwrap();
        assert!(
            format!("{err:#}").contains("StorageType \"azureblob\""),
            "{err:#}"
        );
    }

    /// GCS storage and leases chosen by configuration, pointed at the
    /// emulator (through the test-only XML front, see
    /// `storage::object::tests`) the way Google's clients are.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gcp_storage_with_its_own_leases_opens_from_config() {
        let emulator = fixtures::services::gcs::FakeGcs::start().unwrap();
        emulator.create_bucket("backends").unwrap();
        let front =
            crate::storage::object::gcs_xml_front::GcsXmlFront::start(emulator.process.addr).await;
        // Only this test reads the variable.
        std::env::set_var(services::EMULATOR_HOST_VAR, front.url());
        let mut config = Config {
            storage_type: StorageType::Gcp,
            single_flight_type: SingleFlightType::Gcp,
            ..Config::default()
        };
        config.storage.gcp.bucket = "backends".into();
        let opened = open(&config).await.unwrap();
        let lock = opened.lock.as_ref().unwrap();
        assert_eq!(
            lock.policy.ttl,
            Duration::from_secs(config.single_flight.gcp.stale_threshold)
        );
        // The emulator enforces generation preconditions on uploads, so
        // lease exclusion is checked as for the other services.
        assert_locks(&opened).await;
        crate::storage::conformance::run(opened.storage.as_ref()).await;
    }
}
