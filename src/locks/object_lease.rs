//! Leases kept in the object store itself (`SingleFlightType` `gcp` or
//! `azureblob`, next to the storage of the same name), so several
//! instances need no other service.
//!
//! A lease is a small object under `lease/` holding its owner and expiry.
//! It is taken with a create-only write; a lease past its expiry is taken
//! over, and a lease is refreshed, with a write conditional on the object
//! version last seen, so of two instances racing for it only one wins.
//! Expiry compares the holder's clock with the taker's, so instances'
//! clocks must agree to well within the TTL (as NTP keeps them).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, PutResult, UpdateVersion,
};
use serde::{Deserialize, Serialize};

use super::{Lease, LockError, LockService};

/// Lease objects in one object store.
pub struct ObjectLeases {
    store: Arc<dyn ObjectStore>,
    service: &'static str,
}

#[derive(Serialize, Deserialize)]
struct LeaseRecord {
    owner: String,
    expires_unix_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A token no other lease shares: host, process, time and a counter.
fn new_owner() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{nanos}-{}",
        hostname(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

fn record(owner: &str, ttl: Duration) -> Bytes {
    let record = LeaseRecord {
        owner: owner.to_string(),
        expires_unix_ms: now_ms().saturating_add(ttl.as_millis() as u64),
    };
    // Serializing two plain fields cannot fail.
    Bytes::from(serde_json::to_vec(&record).unwrap_or_default())
}

impl ObjectLeases {
    /// Leases in `store`; `service` names it in errors (`gcp`, `azureblob`).
    pub fn new(store: Arc<dyn ObjectStore>, service: &'static str) -> Self {
        ObjectLeases { store, service }
    }

    fn error(&self, e: object_store::Error) -> LockError {
        let message = e.to_string().lines().next().unwrap_or_default().to_string();
        match e {
            object_store::Error::Unauthenticated { .. }
            | object_store::Error::PermissionDenied { .. } => LockError::Unauthorized {
                service: self.service,
                message,
            },
            _ => LockError::Service {
                service: self.service,
                message,
            },
        }
    }

    fn path(&self, key: &str) -> Result<Path, LockError> {
        Path::parse(format!("lease/{key}")).map_err(|e| LockError::Service {
            service: self.service,
            message: format!("lease key {key:?}: {e}"),
        })
    }

    async fn put(
        &self,
        path: &Path,
        body: Bytes,
        mode: PutMode,
    ) -> Result<Option<PutResult>, LockError> {
        let options = PutOptions {
            mode,
            ..Default::default()
        };
        match self
            .store
            .put_opts(path, PutPayload::from(body), options)
            .await
        {
            Ok(result) => Ok(Some(result)),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    fn lease(&self, path: Path, owner: String, ttl: Duration, put: PutResult) -> Box<dyn Lease> {
        Box::new(ObjectLease {
            store: Arc::clone(&self.store),
            service: self.service,
            path,
            owner,
            ttl,
            version: UpdateVersion {
                e_tag: put.e_tag,
                version: put.version,
            },
        })
    }
}

#[async_trait]
impl LockService for ObjectLeases {
    fn name(&self) -> &'static str {
        self.service
    }

    async fn check(&self) -> Result<(), LockError> {
        let probe = Path::from("lease");
        self.store
            .list_with_delimiter(Some(&probe))
            .await
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    async fn try_lock(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<Box<dyn Lease>>, LockError> {
        let path = self.path(key)?;
        let owner = new_owner();
        if let Some(put) = self
            .put(&path, record(&owner, ttl), PutMode::Create)
            .await?
        {
            return Ok(Some(self.lease(path, owner, ttl, put)));
        }
        let current = match self.store.get(&path).await {
            Ok(current) => current,
            // Released between our write and this read: the next attempt
            // will find it free.
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        let seen = UpdateVersion {
            e_tag: current.meta.e_tag.clone(),
            version: current.meta.version.clone(),
        };
        let last_modified_ms = current.meta.last_modified.timestamp_millis().max(0) as u64;
        let body = current.bytes().await.map_err(|e| self.error(e))?;
        // A record that cannot be read counts from its write time.
        let expires = serde_json::from_slice::<LeaseRecord>(&body)
            .map(|r| r.expires_unix_ms)
            .unwrap_or_else(|_| last_modified_ms.saturating_add(ttl.as_millis() as u64));
        if expires > now_ms() {
            return Ok(None);
        }
        let taken = self
            .put(&path, record(&owner, ttl), PutMode::Update(seen))
            .await?;
        Ok(taken.map(|put| self.lease(path, owner, ttl, put)))
    }
}

struct ObjectLease {
    store: Arc<dyn ObjectStore>,
    service: &'static str,
    path: Path,
    owner: String,
    ttl: Duration,
    version: UpdateVersion,
}

impl ObjectLease {
    fn error(&self, e: object_store::Error) -> LockError {
        LockError::Service {
            service: self.service,
            message: e.to_string().lines().next().unwrap_or_default().to_string(),
        }
    }
}

#[async_trait]
impl Lease for ObjectLease {
    async fn refresh(&mut self) -> Result<bool, LockError> {
        let options = PutOptions {
            mode: PutMode::Update(self.version.clone()),
            ..Default::default()
        };
        let body = PutPayload::from(record(&self.owner, self.ttl));
        match self.store.put_opts(&self.path, body, options).await {
            Ok(put) => {
                self.version = UpdateVersion {
                    e_tag: put.e_tag,
                    version: put.version,
                };
                Ok(true)
            }
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }

    async fn release(self: Box<Self>) -> Result<(), LockError> {
        // Delete only what is still ours: the object stores here have no
        // conditional delete, so check the owner first.
        let current = match self.store.get(&self.path).await {
            Ok(current) => current,
            Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(self.error(e)),
        };
        let body = current.bytes().await.map_err(|e| self.error(e))?;
        let ours = serde_json::from_slice::<LeaseRecord>(&body)
            .map(|r| r.owner == self.owner)
            .unwrap_or(false);
        if !ours {
            return Ok(());
        }
        match self.store.delete(&self.path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::storage::object::services;
    use fixtures::services::azurite::{Azurite, ACCOUNT, ACCOUNT_KEY};
    use fixtures::services::s3::Moto;

    async fn exercise(leases: &ObjectLeases) {
        leases.check().await.unwrap();
        // Sleeps are lower bounds whatever the load, so each check below
        // holds unless a refresh and the next request together take longer
        // than the margin (2.5 s), which a loaded CI machine stays under.
        let ttl = Duration::from_secs(6);
        let mut first = leases.try_lock("m@v1", ttl).await.unwrap().expect("free");
        assert!(leases.try_lock("m@v1", ttl).await.unwrap().is_none());
        // Other keys are independent.
        let other = leases.try_lock("m@v2", ttl).await.unwrap().expect("free");
        other.release().await.unwrap();
        // Refreshing keeps it past the first TTL.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert!(first.refresh().await.unwrap());
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert!(leases.try_lock("m@v1", ttl).await.unwrap().is_none());
        // Released: free at once.
        first.release().await.unwrap();
        let short = Duration::from_millis(300);
        let mut second = leases.try_lock("m@v1", short).await.unwrap().expect("free");
        // Not refreshed: taken over after the TTL, and the old holder
        // learns it lost the lease and cannot release the new one.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let third = leases
            .try_lock("m@v1", ttl)
            .await
            .unwrap()
            .expect("expired");
        assert!(!second.refresh().await.unwrap());
        Box::new(ObjectLease {
            store: Arc::clone(&leases.store),
            service: leases.service,
            path: leases.path("m@v1").unwrap(),
            owner: "someone-else".into(),
            ttl,
            version: UpdateVersion {
                e_tag: None,
                version: None,
            },
        })
        .release()
        .await
        .unwrap();
        assert!(leases.try_lock("m@v1", ttl).await.unwrap().is_none());
        third.release().await.unwrap();
    }

    /// Many takers at once on a free lease: exactly one wins.
    async fn race(leases: Arc<ObjectLeases>) {
        let takers = (0..12).map(|_| {
            let leases = Arc::clone(&leases);
            async move { leases.try_lock("race", Duration::from_secs(30)).await }
        });
        let won: Vec<_> = futures::future::join_all(takers)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .filter(Option::is_some)
            .collect();
        assert_eq!(won.len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leases_on_s3_conditional_writes() {
        let moto = Moto::start().unwrap();
        moto.create_bucket("leases").unwrap();
        let config = crate::config::S3Config {
            region: "us-east-1".into(),
            key: "k".into(),
            secret: Secret::new("s"),
            bucket: "leases".into(),
            force_path_style: true,
            endpoint: moto.endpoint(),
            ..Default::default()
        };
        let leases = Arc::new(ObjectLeases::new(services::s3(&config).unwrap(), "s3"));
        exercise(&leases).await;
        race(leases).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leases_on_azurite() {
        let azurite = Azurite::start().unwrap();
        azurite.create_container("leases").unwrap();
        // The storage settings read the endpoint from the environment; here
        // the store is built directly so this test does not depend on it.
        let store = object_store::azure::MicrosoftAzureBuilder::new()
            .with_account(ACCOUNT)
            .with_access_key(ACCOUNT_KEY)
            .with_container_name("leases")
            .with_endpoint(azurite.blob_endpoint())
            .with_allow_http(true)
            .build()
            .unwrap();
        let leases = Arc::new(ObjectLeases::new(Arc::new(store), "azureblob"));
        exercise(&leases).await;
        race(leases).await;
    }
}
