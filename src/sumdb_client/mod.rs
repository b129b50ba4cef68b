//! Verifying public module versions against the checksum database before
//! they are stored, as Athens' `go mod download` did.
//!
//! [`VerifyingFetcher`] wraps the server's fetcher: every module version it
//! downloads is hashed (`h1:` of the zip and of the go.mod) and, when the
//! go command would check that module ([`SumdbPolicy`]: GOSUMDB, GONOSUMDB
//! or GOPRIVATE from `GoBinaryEnvVars`, and `NoSumPatterns`), compared with
//! the database's record ([`SumdbClient`]). A version that does not match,
//! or that the database cannot vouch for, is never handed to the stash, so
//! nothing of it is stored; the request fails with the go command's
//! wording:
//!
//! | failure | status |
//! |---|---|
//! | checksum mismatch, checksum missing from the database's answer, forked log ("SECURITY ERROR") | 403 |
//! | the database does not know the version (404/410 from `/lookup`) | 404 |
//! | the database cannot be reached or answers something unusable | 502 |
//! | GOSUMDB=off for the toolchain module, which must be checked | 500 |
//!
//! The client keeps its latest verified tree head and the tiles it read in
//! a [`SumdbStore`]: side objects of the configured storage under
//! `.athens/sumdb-cache/<database name>/` (files under the disk root, keys
//! of object stores), shared by every instance on that storage; in memory
//! with external storage.

pub mod client;
pub mod gosumdb;
pub mod store;

use std::sync::Arc;

use async_trait::async_trait;
use vcs::goenv::GoEnv;

pub use client::{SumdbClient, SumdbError, SumdbErrorKind};
pub use gosumdb::{Database, SumdbPolicy};
pub use store::{DirStore, MemoryStore, StorageStore, SumdbStore};

use crate::config::{Config, StorageType};
use crate::fetch::{FetchError, FetchedModule, Fetcher, RevInfo};
use crate::storage::Storage;
use crate::sums::VersionSums;

/// The go command's explanation after a checksum mismatch.
const SUMDB_MISMATCH: &str = "

SECURITY ERROR
This download does NOT match the one reported by the checksum server.
The bits may have been replaced on the origin server, or an attacker may
have intercepted the download attempt.

For more information, see 'go help module-auth'.
";

/// The go command's explanation when the database's record lacks the line.
const SUMDB_ABSENT: &str = "

SECURITY ERROR
This download does NOT match one reported by the checksum server.
The checksum server has provided checksums, but the checksums do
not contain an entry for the download.
The checksum server may be malfunctioning, or an attacker may have
intercepted the checksum request.
The download cannot be verified.

For more information, see 'go help module-auth'.
";

/// What checking a version found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// The go command would not check this module (GOSUMDB=off,
    /// GONOSUMDB/GOPRIVATE or NoSumPatterns).
    Skipped,
    /// The database's record matches; the database's name.
    Verified(String),
}

/// Decides which versions to check and checks them.
pub struct SumdbChecker {
    policy: SumdbPolicy,
    client: Option<SumdbClient>,
}

impl SumdbChecker {
    /// A checker for the go environment `env` and `NoSumPatterns`,
    /// keeping its state in `store`. A malformed GOSUMDB is an error here,
    /// so a misconfigured server stops at start.
    pub fn new(
        env: &GoEnv,
        no_sum_patterns: &[String],
        store: Arc<dyn SumdbStore>,
        timeout: std::time::Duration,
    ) -> Result<SumdbChecker, String> {
        let policy = SumdbPolicy::new(env, no_sum_patterns);
        let client = match &policy.database {
            Ok(db) => Some(SumdbClient::new(db.clone(), env, store, timeout)?),
            Err(_) if policy.off => None,
            Err(e) => return Err(format!("GoBinaryEnvVars: {e}")),
        };
        Ok(SumdbChecker { policy, client })
    }

    /// The checker `config` describes: `GoBinaryEnvVars` as Athens hands
    /// them to its go command, `NoSumPatterns`, requests bounded by
    /// `Timeout`, state in `storage`'s side objects (in memory for
    /// external storage, which keeps none).
    pub fn from_config(
        config: &Config,
        env: &GoEnv,
        storage: Arc<dyn Storage>,
    ) -> Result<SumdbChecker, String> {
        let store: Arc<dyn SumdbStore> = if config.storage_type == StorageType::External {
            Arc::new(MemoryStore::default())
        } else {
            Arc::new(StorageStore::new(storage))
        };
        SumdbChecker::new(
            env,
            &config.no_sum_patterns,
            store,
            config.timeout_duration(),
        )
    }

    /// Whether `module` is checked.
    pub fn applies(&self, module: &str) -> bool {
        self.policy.applies(module)
    }

    /// The client, when GOSUMDB names a database.
    pub fn client(&self) -> Option<&SumdbClient> {
        self.client.as_ref()
    }

    /// Checks `module@version` whose zip hashes to `zip_h1` and go.mod to
    /// `gomod_h1` against the database, as the go command's `checkSumDB`
    /// does (go.mod first, as it is downloaded first).
    pub async fn check(
        &self,
        module: &str,
        version: &str,
        zip_h1: &str,
        gomod_h1: &str,
    ) -> Result<Checked, SumdbError> {
        if !self.policy.applies(module) {
            return Ok(Checked::Skipped);
        }
        let at = format!("{module}@{version}");
        let Some(client) = &self.client else {
            let reason = match &self.policy.database {
                Err(e) => e.to_string(),
                Ok(_) => "no checksum database".to_string(),
            };
            return Err(SumdbError {
                kind: SumdbErrorKind::Config,
                message: format!("{at}: verifying go.mod: {reason}"),
            });
        };
        let lines = client.lookup(module, version).await.map_err(|e| {
            if e.kind == SumdbErrorKind::Security {
                e
            } else {
                // The client names the version `M@V: `; the go command
                // looks up `M@V/go.mod` first and names it so.
                let inner = e
                    .message
                    .strip_prefix(&format!("{at}: "))
                    .unwrap_or(&e.message);
                SumdbError {
                    kind: e.kind,
                    message: format!("{at}: verifying go.mod: {at}/go.mod: {inner}"),
                }
            }
        })?;
        let db = client.name();
        for (noun, suffix, hash) in [("go.mod", "/go.mod", gomod_h1), ("module", "", zip_h1)] {
            let have = format!("{module} {version}{suffix} {hash}");
            let prefix = format!("{module} {version}{suffix} h1:");
            let mut found = false;
            for line in &lines {
                if *line == have {
                    found = true;
                    break;
                }
                if let Some(theirs) = line.strip_prefix(&prefix) {
                    return Err(SumdbError {
                        kind: SumdbErrorKind::Security,
                        message: format!(
                            "{at}: verifying {noun}: checksum mismatch\n\tdownloaded: {hash}\n\t{db}: h1:{theirs}{SUMDB_MISMATCH}"
                        ),
                    });
                }
            }
            if !found {
                return Err(SumdbError {
                    kind: SumdbErrorKind::Security,
                    message: format!(
                        "{at}: verifying {noun}: checksum missing from sumdb response{SUMDB_ABSENT}"
                    ),
                });
            }
        }
        Ok(Checked::Verified(db.to_string()))
    }
}

/// `athens verify` compares public modules' stored versions with the
/// database through the same checker (and tile cache) the server uses.
#[async_trait]
impl crate::verify::SumDbLookup for SumdbChecker {
    async fn lookup(&self, module: &str, version: &str) -> Result<Option<VersionSums>, String> {
        let Some(client) = &self.client else {
            return Err(match &self.policy.database {
                Err(e) => e.to_string(),
                Ok(_) => "no checksum database".to_string(),
            });
        };
        let lines = match client.lookup(module, version).await {
            Ok(lines) => lines,
            Err(e) if e.kind == SumdbErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.message),
        };
        let hash_of = |suffix: &str| {
            let prefix = format!("{module} {version}{suffix} ");
            lines
                .iter()
                .find_map(|line| line.strip_prefix(&prefix))
                .filter(|hash| hash.starts_with("h1:"))
                .map(str::to_string)
                .ok_or_else(|| {
                    format!(
                        "{module}@{version}: the database's answer has no {}h1: line",
                        if suffix.is_empty() { "zip " } else { "go.mod " }
                    )
                })
        };
        Ok(Some(VersionSums {
            zip: hash_of("")?,
            go_mod: hash_of("/go.mod")?,
        }))
    }

    fn applies(&self, module: &str) -> bool {
        self.policy.applies(module)
    }
}

/// The HTTP status a failed check answers (see the module documentation).
pub fn status_for(kind: SumdbErrorKind) -> u16 {
    match kind {
        SumdbErrorKind::Security => 403,
        SumdbErrorKind::NotFound => 404,
        SumdbErrorKind::Unavailable => 502,
        SumdbErrorKind::Config => 500,
    }
}

/// A fetcher whose downloads are checked against the checksum database
/// before anyone can store them. Lists and queries pass through.
pub struct VerifyingFetcher {
    inner: Arc<dyn Fetcher>,
    checker: Arc<SumdbChecker>,
}

impl VerifyingFetcher {
    /// Checks what `inner` downloads with `checker`.
    pub fn new(inner: Arc<dyn Fetcher>, checker: Arc<SumdbChecker>) -> VerifyingFetcher {
        VerifyingFetcher { inner, checker }
    }
}

/// Wraps `fetcher` in the verification `config` asks for; with GOSUMDB=off
/// and no toolchain to check, the wrapper only passes calls through.
pub fn verifying_fetcher(
    config: &Config,
    env: &GoEnv,
    fetcher: Arc<dyn Fetcher>,
    storage: Arc<dyn Storage>,
) -> Result<Arc<dyn Fetcher>, String> {
    let checker = SumdbChecker::from_config(config, env, storage)?;
    Ok(Arc::new(VerifyingFetcher::new(fetcher, Arc::new(checker))))
}

#[async_trait]
impl Fetcher for VerifyingFetcher {
    async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError> {
        let fetched = self.inner.fetch(module, version).await?;
        if !self.checker.applies(module) {
            return Ok(fetched);
        }
        let resolved = fetched.version.clone();
        let gomod_h1 = modzip::dirhash::hash_go_mod(&fetched.go_mod);
        let zip_path = fetched.zip.path().to_path_buf();
        let zip_h1 = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&zip_path).map_err(|e| e.to_string())?;
            modzip::dirhash::hash_zip(std::io::BufReader::new(file)).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| FetchError::other(module, &resolved, format!("hashing zip: {e}")))?
        .map_err(|e| FetchError::other(module, &resolved, format!("hashing zip: {e}")))?;
        match self
            .checker
            .check(module, &resolved, &zip_h1, &gomod_h1)
            .await
        {
            Ok(checked) => {
                tracing::debug!(module, version = %resolved, ?checked, "checksum database");
                Ok(fetched)
            }
            Err(e) => {
                if e.kind == SumdbErrorKind::Security {
                    tracing::error!(module, version = %resolved, error = %e, "checksum database refused a download; nothing stored");
                } else {
                    tracing::warn!(module, version = %resolved, error = %e, "checksum database could not verify a download; nothing stored");
                }
                Err(FetchError::Verification {
                    module: module.to_string(),
                    version: resolved,
                    status: status_for(e.kind),
                    message: e.message,
                })
            }
        }
    }

    async fn list(&self, module: &str) -> Result<Vec<String>, FetchError> {
        self.inner.list(module).await
    }

    async fn latest(&self, module: &str) -> Result<RevInfo, FetchError> {
        self.inner.latest(module).await
    }

    async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
        self.inner.query(module, rev).await
    }
}

#[cfg(test)]
mod tests;
