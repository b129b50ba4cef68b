//! Verifying a store (`athens verify`): every stored version is re-hashed
//! and compared with its checksum record (see [`crate::sums`]) and, for
//! public modules when a checksum database is given, with the database.
//!
//! A version is
//! - **ok** when its hashes match every reference consulted and at least
//!   one reference was there;
//! - **corrupt** when its zip cannot be hashed (damaged, truncated), its
//!   record is malformed, or its hashes differ from a reference;
//! - **unverifiable** when no reference could be consulted: no record
//!   (a version Athens stored, or one whose record write failed), and the
//!   module is private, no database is configured, or the database could
//!   not be reached or does not know the version.
//!
//! A public module's version that matches its record but that the database
//! could not vouch for (unreachable, untrusted answer, unknown version) is
//! ok with a note, and counted in [`Summary::unchecked`]: the record was
//! written by the store itself, so only the database is an independent
//! reference.
//!
//! Quarantined versions are moved to
//! `.athens/quarantine/<module>/@v/<version>/` in the same store (`info`,
//! `mod`, `zip`, the record as `gosum` when there is one, and `reason`),
//! then deleted from the store, so they are no longer served and the next
//! request fetches them again. Those names never end in `.info`, so
//! Athens' catalog walks do not take them for versions.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{self, StreamExt};

use crate::pathmatch::matches_any_path_prefix;
use crate::storage::{CatalogEntry, SideKey, Storage, StorageError};
use crate::sums::{self, SumsError, VersionSums};

/// Where quarantined versions go, under the store's reserved prefix.
pub const QUARANTINE_DIR: &str = "quarantine";

/// Versions verified at once.
const CONCURRENCY: usize = 4;
/// Catalog page size while listing the store.
const PAGE: usize = 1000;

/// A checksum database, as far as verification needs one.
#[async_trait]
pub trait SumDbLookup: Send + Sync {
    /// The sums the database holds for `module@version`: `Ok(None)` when
    /// it does not know the version; `Err` when it cannot be reached or
    /// its answer cannot be trusted.
    async fn lookup(&self, module: &str, version: &str) -> Result<Option<VersionSums>, String>;

    /// Whether the database vouches for `module` at all (the go command
    /// would check it against the database); other modules are compared
    /// with their record only and never looked up.
    fn applies(&self, _module: &str) -> bool {
        true
    }
}

/// What verification found for one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Matches every reference consulted (listed).
    Ok(Vec<&'static str>),
    /// Damaged or different from a reference.
    Corrupt(String),
    /// Nothing to compare with.
    Unverifiable(String),
}

/// The verdict on one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionReport {
    /// Module path.
    pub module: String,
    /// Version.
    pub version: String,
    /// The verdict.
    pub status: Status,
    /// Where it was moved, when it was quarantined.
    pub quarantined: Option<String>,
    /// Why an ok public version was not checked against the checksum
    /// database (see [`Summary::unchecked`]).
    pub note: Option<String>,
}

impl std::fmt::Display for VersionReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (word, detail) = match &self.status {
            Status::Ok(against) => ("ok", format!("matches {}", against.join(" and "))),
            Status::Corrupt(why) => ("corrupt", why.clone()),
            Status::Unverifiable(why) => ("unverifiable", why.clone()),
        };
        write!(f, "{word} {}@{}: {detail}", self.module, self.version)?;
        if let Some(note) = &self.note {
            write!(f, " (not checked against the checksum database: {note})")?;
        }
        if let Some(place) = &self.quarantined {
            write!(f, " (quarantined to {place})")?;
        }
        Ok(())
    }
}

/// Totals of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Versions found ok.
    pub ok: usize,
    /// Versions found corrupt.
    pub corrupt: usize,
    /// Versions that could not be verified.
    pub unverifiable: usize,
    /// Versions moved aside.
    pub quarantined: usize,
    /// Ok versions of public modules that the checksum database could not
    /// vouch for (they match their record only).
    pub unchecked: usize,
}

impl Summary {
    fn add(&mut self, report: &VersionReport) {
        match report.status {
            Status::Ok(_) => self.ok += 1,
            Status::Corrupt(_) => self.corrupt += 1,
            Status::Unverifiable(_) => self.unverifiable += 1,
        }
        if report.quarantined.is_some() {
            self.quarantined += 1;
        }
        if report.note.is_some() {
            self.unchecked += 1;
        }
    }
}

/// Verifies the versions of one store.
pub struct StoreVerifier {
    storage: Arc<dyn Storage>,
    sumdb: Option<Arc<dyn SumDbLookup>>,
    private_patterns: Vec<String>,
    quarantine: bool,
    spool_dir: Option<PathBuf>,
}

impl StoreVerifier {
    /// Verifies `storage` against the records alone.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        StoreVerifier {
            storage,
            sumdb: None,
            private_patterns: Vec::new(),
            quarantine: false,
            spool_dir: None,
        }
    }

    /// Also compares public modules (those matching none of
    /// `private_patterns`, GONOSUMDB-style) with `sumdb`.
    pub fn with_sumdb(
        mut self,
        sumdb: Arc<dyn SumDbLookup>,
        private_patterns: Vec<String>,
    ) -> Self {
        self.sumdb = Some(sumdb);
        self.private_patterns = private_patterns;
        self
    }

    /// Moves corrupt versions aside (see the module documentation).
    pub fn with_quarantine(mut self, quarantine: bool) -> Self {
        self.quarantine = quarantine;
        self
    }

    /// Spools zips being hashed in `dir` instead of the system temporary
    /// directory.
    pub fn with_spool_dir(mut self, dir: PathBuf) -> Self {
        self.spool_dir = Some(dir);
        self
    }

    /// Every stored version, in catalog order.
    pub async fn versions(&self) -> Result<Vec<CatalogEntry>, StorageError> {
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = self.storage.catalog(&token, PAGE).await?;
            all.extend(page.entries);
            match page.next {
                Some(next) => token = next,
                None => return Ok(all),
            }
        }
    }

    /// Verifies `versions`, calling `on_report` with each verdict as it
    /// comes (not in order), and returns the totals.
    pub async fn run(
        &self,
        versions: Vec<CatalogEntry>,
        mut on_report: impl FnMut(&VersionReport),
    ) -> Summary {
        let mut summary = Summary::default();
        let mut reports = stream::iter(versions)
            .map(|entry| async move { self.verify_one(&entry.module, &entry.version).await })
            .buffer_unordered(CONCURRENCY);
        while let Some(report) = reports.next().await {
            summary.add(&report);
            on_report(&report);
        }
        summary
    }

    /// Verifies one version (and quarantines it when corrupt and asked to).
    pub async fn verify_one(&self, module: &str, version: &str) -> VersionReport {
        let (status, note) = self.check(module, version).await;
        let quarantined = match (&status, self.quarantine) {
            (Status::Corrupt(reason), true) => {
                match quarantine(self.storage.as_ref(), module, version, reason).await {
                    Ok(place) => Some(place),
                    Err(e) => {
                        return VersionReport {
                            module: module.into(),
                            version: version.into(),
                            status: Status::Corrupt(format!(
                                "{reason}; moving it to quarantine failed: {e}"
                            )),
                            quarantined: None,
                            note,
                        }
                    }
                }
            }
            _ => None,
        };
        VersionReport {
            module: module.into(),
            version: version.into(),
            status,
            quarantined,
            note,
        }
    }

    /// The verdict and, for an ok public version the database could not
    /// vouch for, why.
    async fn check(&self, module: &str, version: &str) -> (Status, Option<String>) {
        let mut unchecked = None;
        let status = self.check_with(module, version, &mut unchecked).await;
        let note = match status {
            Status::Ok(_) => unchecked,
            _ => None,
        };
        (status, note)
    }

    async fn check_with(
        &self,
        module: &str,
        version: &str,
        unchecked: &mut Option<String>,
    ) -> Status {
        let record = sums::recorded(self.storage.as_ref(), module, version).await;
        let actual = match sums::hash_stored(
            self.storage.as_ref(),
            module,
            version,
            self.spool_dir.as_deref(),
        )
        .await
        {
            Ok(actual) => actual,
            Err(SumsError::Hash { message, .. }) => {
                return Status::Corrupt(format!("the zip cannot be hashed: {message}"))
            }
            Err(e) => return Status::Unverifiable(format!("cannot read it: {e}")),
        };
        let mut matched = Vec::new();
        let mut missing = Vec::new();
        match record {
            Ok(Some(recorded)) => {
                if let Some(diff) = difference("the record", &recorded, &actual) {
                    return Status::Corrupt(diff);
                }
                matched.push("the record");
            }
            Ok(None) => missing.push("no checksum record".to_string()),
            Err(SumsError::MalformedRecord { reason, .. }) => {
                return Status::Corrupt(format!("the checksum record is malformed: {reason}"))
            }
            Err(e) => missing.push(format!("the checksum record cannot be read: {e}")),
        }
        match &self.sumdb {
            None => missing.push("no checksum database".into()),
            Some(db)
                if matches_any_path_prefix(&self.private_patterns, module)
                    || !db.applies(module) =>
            {
                missing.push(
                    "private module (GONOSUMDB, GOPRIVATE, NoSumPatterns or GOSUMDB=off)".into(),
                )
            }
            Some(db) => match db.lookup(module, version).await {
                Ok(Some(known)) => {
                    if let Some(diff) = difference("the checksum database", &known, &actual) {
                        return Status::Corrupt(diff);
                    }
                    matched.push("the checksum database");
                }
                Ok(None) => {
                    *unchecked = Some("the database does not know this version".into());
                    missing.push("not in the checksum database".into())
                }
                Err(e) => {
                    *unchecked = Some(e.clone());
                    missing.push(format!("checksum database: {e}"))
                }
            },
        }
        if matched.is_empty() {
            Status::Unverifiable(missing.join("; "))
        } else {
            Status::Ok(matched)
        }
    }
}

/// Describes how `actual` differs from `reference`, if it does.
fn difference(what: &str, reference: &VersionSums, actual: &VersionSums) -> Option<String> {
    let mut parts = Vec::new();
    if reference.zip != actual.zip {
        parts.push(format!(
            "zip hash {} but {what} says {}",
            actual.zip, reference.zip
        ));
    }
    if reference.go_mod != actual.go_mod {
        parts.push(format!(
            "go.mod hash {} but {what} says {}",
            actual.go_mod, reference.go_mod
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Moves a version to `.athens/quarantine/<module>/@v/<version>/` and
/// deletes it from the store; returns where it went.
pub async fn quarantine(
    storage: &dyn Storage,
    module: &str,
    version: &str,
    reason: &str,
) -> Result<String, StorageError> {
    let base = format!("{QUARANTINE_DIR}/{module}/@v/{version}");
    let put_bytes = |name: &'static str, data: Vec<u8>| {
        let key = format!("{base}/{name}");
        async move {
            storage
                .put_side(&SideKey::Reserved(&key), &mut std::io::Cursor::new(data))
                .await
        }
    };
    // What cannot be read is left out; the rest is kept for inspection.
    if let Ok(info) = storage.info(module, version).await {
        put_bytes("info", info.to_vec()).await?;
    }
    if let Ok(go_mod) = storage.go_mod(module, version).await {
        put_bytes("mod", go_mod.to_vec()).await?;
    }
    if let Ok(Some(record)) = storage.get_side(&SideKey::sums(module, version)).await {
        put_bytes("gosum", record.to_vec()).await?;
    }
    if let Ok(mut zip) = storage.zip(module, version).await {
        let key = format!("{base}/zip");
        storage
            .put_side(&SideKey::Reserved(&key), &mut zip.reader)
            .await?;
    }
    put_bytes("reason", format!("{reason}\n").into_bytes()).await?;
    match storage.delete(module, version).await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e),
    }
    storage.delete_side(&SideKey::sums(module, version)).await?;
    Ok(SideKey::Reserved(&base).to_string())
}

#[cfg(test)]
pub(crate) mod tests;
