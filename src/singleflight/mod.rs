//! Single-flight across several proxy instances: a [`LockService`] hands
//! out expiring [`Lease`]s on a key, and [`DistributedStasher`] holds one
//! per module version while it fetches, so that instances sharing one
//! store fetch each version once.
//!
//! A lease is kept alive by refreshing it while the fetch runs; a holder
//! that dies stops refreshing, and its lease expires after its TTL, after
//! which a waiting instance finds the version in storage or takes the
//! lease itself.

pub mod etcd;
pub mod object_lease;
pub mod redis;
mod stasher;

pub use stasher::{DistributedStasher, WaitPolicy};

use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

/// Why a lock service call failed.
#[derive(Debug, Clone, Error)]
pub enum LockError {
    /// The service could not be reached (connection refused, timeout, DNS).
    #[error("{service}: cannot reach {endpoint}: {message}")]
    Unreachable {
        /// Which backend (`redis`, `etcd`, ...).
        service: &'static str,
        /// The endpoint tried (never with credentials in it).
        endpoint: String,
        /// What went wrong.
        message: String,
    },
    /// The service refused our credentials.
    #[error("{service}: credentials refused: {message}")]
    Unauthorized {
        /// Which backend.
        service: &'static str,
        /// What the service said.
        message: String,
    },
    /// Any other failure answered by the service.
    #[error("{service}: {message}")]
    Service {
        /// Which backend.
        service: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// A distributed lock service with expiring leases.
#[async_trait]
pub trait LockService: Send + Sync + 'static {
    /// Short name of the backend for logs and errors (`redis`, `etcd`, ...).
    fn name(&self) -> &'static str;

    /// Checks at start that the service is reachable and accepts our
    /// credentials.
    async fn check(&self) -> Result<(), LockError>;

    /// Tries once to take the lock `key` for `ttl`. `Ok(None)` when
    /// someone else holds it.
    async fn try_lock(&self, key: &str, ttl: Duration)
        -> Result<Option<Box<dyn Lease>>, LockError>;
}

/// A held lock. Dropping it without [`Lease::release`] leaves it to
/// expire after its TTL.
#[async_trait]
pub trait Lease: Send + Sync {
    /// Extends the lease by its TTL from now. `Ok(false)` when it was lost
    /// (expired and possibly taken by someone else).
    async fn refresh(&mut self) -> Result<bool, LockError>;

    /// Releases the lock, if it is still ours.
    async fn release(self: Box<Self>) -> Result<(), LockError>;
}
