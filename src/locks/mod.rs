//! Lock services shared by several proxy instances (Athens'
//! `SingleFlightType`): a [`LockService`] hands out expiring [`Lease`]s on
//! a key, and the stash layer [`crate::stash::DistributedStasher`] holds
//! one per module version while it fetches, so that instances sharing one
//! store fetch each version once.
//!
//! A lease is kept alive by refreshing it while the fetch runs; a holder
//! that dies stops refreshing, and its lease expires after its TTL, after
//! which a waiting instance finds the version in storage or takes the
//! lease itself.

pub mod etcd;
pub mod object_lease;
pub mod redis;

use std::sync::Arc;
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

/// How long and how often a stash waits for a lease held elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    /// Lease time-to-live: how long a dead holder keeps others waiting.
    pub ttl: Duration,
    /// How long to wait for the lease before giving up.
    pub timeout: Duration,
    /// Pause between attempts (storage is checked at every attempt).
    pub retry_interval: Duration,
}

impl WaitPolicy {
    /// Athens' Redis lock settings (seconds): `Timeout` spread over
    /// `MaxRetries` attempts, with the pause kept between 50 ms and 1 s so a
    /// finished fetch is noticed quickly and a busy service is not hammered.
    pub fn from_lock_config(ttl_secs: u64, timeout_secs: u64, max_retries: u64) -> Self {
        let timeout = Duration::from_secs(timeout_secs.max(1));
        let interval = timeout / u32::try_from(max_retries.max(1)).unwrap_or(u32::MAX);
        WaitPolicy {
            ttl: Duration::from_secs(ttl_secs.max(1)),
            timeout,
            retry_interval: interval.clamp(Duration::from_millis(50), Duration::from_secs(1)),
        }
    }
}

/// The configured lock service with the waiting policy configured for it.
pub struct DistributedLock {
    /// The service.
    pub service: Arc<dyn LockService>,
    /// Lease TTL and how long to wait.
    pub policy: WaitPolicy,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn athens_lock_settings_become_a_wait_policy() {
        let p = WaitPolicy::from_lock_config(900, 15, 10);
        assert_eq!(p.ttl, Duration::from_secs(900));
        assert_eq!(p.timeout, Duration::from_secs(15));
        assert_eq!(
            p.retry_interval,
            Duration::from_millis(1500).min(Duration::from_secs(1))
        );
        let p = WaitPolicy::from_lock_config(3, 60, 6000);
        assert_eq!(p.retry_interval, Duration::from_millis(50));
    }
}
