//! A checksum database of our own for private modules: an append-only
//! transparency log (Go's tlog, tile height 8) of the private module
//! versions the proxy stores, signed with a configured note key and served
//! with the endpoints of sum.golang.org (`/lookup/M@V`, `/tile/...`,
//! `/latest`) under `/sumdb/<name>/` (see [`http`]).
//!
//! The log lives in the configured storage, as reserved side objects under
//! `.athens/sumdb/<name>/` (see [`crate::storage::side`]), so instances
//! sharing a store share one log:
//!
//! - `head`: the signed tree head note (`go.sum database tree\nN\nhash\n`
//!   and its signature), the commit point of every append;
//! - `hashes/<k>`: stored hashes `256k .. 256k+255` (32 bytes each);
//! - `records/<k>`: records `256k .. 256k+255`, as the data tile holding
//!   them;
//! - `index/<escaped module>@<escaped version>`: the record id.
//!
//! An append runs under an in-process lock and, when a single-flight lock
//! service is configured, its lease on `sumdb-log/<name>`; it reads the
//! head, writes the new hashes, record and index entry, and writes the
//! new head last. Anything at or past the head's size is uncommitted: an
//! append that died half-way is overwritten by the next one, and an index
//! entry pointing past the head is ignored.

pub mod http;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use sumdb::note::{Note, Signer};
use sumdb::record;
use sumdb::tlog::{self, Hash, HashReader, Tile, TlogError, Tree, HASH_SIZE};
use thiserror::Error;

use crate::pathmatch::matches_any_path_prefix;
use crate::singleflight::LockService;
use crate::storage::{SideKey, Storage, StorageError};
use crate::sums::{StoredObserver, VersionSums};

/// Tile height the go command uses.
pub const TILE_HEIGHT: u32 = 8;
/// Entries per hash chunk and per record chunk (one tile's worth).
const CHUNK: i64 = 1 << TILE_HEIGHT;
/// How long an append waits for the log's lock.
const LOCK_WAIT: Duration = Duration::from_secs(30);
/// Lease length on the lock service; an append takes a few requests.
const LOCK_TTL: Duration = Duration::from_secs(30);
/// Pause between tries of a busy lease.
const LOCK_RETRY: Duration = Duration::from_millis(50);

/// Why a log operation failed.
#[derive(Debug, Error)]
pub enum LogError {
    /// Storage failed.
    #[error("private checksum database: {0}")]
    Storage(#[from] StorageError),
    /// The stored log is inconsistent or a computation failed.
    #[error("private checksum database: {0}")]
    Tlog(#[from] TlogError),
    /// The stored head cannot be read.
    #[error("private checksum database: stored tree head: {0}")]
    Head(String),
    /// The lock could not be taken.
    #[error("private checksum database: lock: {0}")]
    Lock(String),
    /// The configured key cannot be used.
    #[error("private checksum database key: {0}")]
    Key(String),
}

/// The log of one private checksum database.
pub struct PrivateLog {
    name: String,
    signer: Signer,
    storage: Arc<dyn Storage>,
    locks: Option<Arc<dyn LockService>>,
    local: tokio::sync::Mutex<()>,
    private_patterns: Vec<String>,
}

impl std::fmt::Debug for PrivateLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateLog")
            .field("name", &self.name)
            .finish()
    }
}

/// Whether `name` can be a log name: it becomes an object key element.
fn usable_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

impl PrivateLog {
    /// A log signed with the signer key `skey` (`PRIVATE+KEY+name+...`,
    /// as `athens sumdb-keygen` writes it), kept in `storage`, holding the
    /// versions of modules matching `private_patterns` (GONOSUMDB-style).
    pub fn new(
        skey: &str,
        storage: Arc<dyn Storage>,
        locks: Option<Arc<dyn LockService>>,
        private_patterns: Vec<String>,
    ) -> Result<Self, LogError> {
        let signer = Signer::parse(skey.trim()).map_err(|e| LogError::Key(e.to_string()))?;
        let name = signer.name().to_string();
        if !usable_name(&name) {
            return Err(LogError::Key(format!(
                "name {name:?} must be letters, digits, '-', '.' and '_'"
            )));
        }
        Ok(PrivateLog {
            name,
            signer,
            storage,
            locks,
            local: tokio::sync::Mutex::new(()),
            private_patterns,
        })
    }

    /// Reads the signer key from `path`.
    pub fn from_key_file(
        path: &std::path::Path,
        storage: Arc<dyn Storage>,
        locks: Option<Arc<dyn LockService>>,
        private_patterns: Vec<String>,
    ) -> Result<Self, LogError> {
        let skey = std::fs::read_to_string(path)
            .map_err(|e| LogError::Key(format!("reading {}: {e}", path.display())))?;
        Self::new(&skey, storage, locks, private_patterns)
    }

    /// The database name clients put in GOSUMDB.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key clients put in GOSUMDB.
    pub fn verifier_key(&self) -> String {
        self.signer.verifier().to_key_string()
    }

    /// Whether `module` belongs in this log.
    pub fn is_private(&self, module: &str) -> bool {
        matches_any_path_prefix(&self.private_patterns, module)
    }

    fn key(&self, rest: &str) -> String {
        format!("sumdb/{}/{rest}", self.name)
    }

    async fn get(&self, rest: &str) -> Result<Option<Bytes>, LogError> {
        let key = self.key(rest);
        Ok(self.storage.get_side(&SideKey::Reserved(&key)).await?)
    }

    async fn put(&self, rest: &str, data: Vec<u8>) -> Result<(), LogError> {
        let key = self.key(rest);
        self.storage
            .put_side(&SideKey::Reserved(&key), &mut std::io::Cursor::new(data))
            .await?;
        Ok(())
    }

    fn index_key(module: &str, version: &str) -> Option<String> {
        let module = modzip::module::escape_path(module).ok()?;
        let version = modzip::module::escape_version(version).ok()?;
        Some(format!("index/{module}@{version}"))
    }

    /// The signed tree head note, and the tree it signs. An empty log has
    /// a signed head of size 0 too.
    pub async fn head(&self) -> Result<(Vec<u8>, Tree), LogError> {
        match self.get("head").await? {
            Some(note) => {
                let verifiers = sumdb::note::Verifiers::new([self.signer.verifier()]);
                let opened = sumdb::note::open(&note, &verifiers)
                    .map_err(|e| LogError::Head(e.to_string()))?;
                let tree = tlog::parse_tree(opened.text.as_bytes())?;
                Ok((note.to_vec(), tree))
            }
            None => {
                let tree = Tree {
                    n: 0,
                    hash: tlog::empty_tree_hash(),
                };
                Ok((self.sign(tree)?, tree))
            }
        }
    }

    fn sign(&self, tree: Tree) -> Result<Vec<u8>, LogError> {
        let note = Note {
            text: tlog::format_tree(tree),
            ..Default::default()
        };
        sumdb::note::sign(&note, &[&self.signer]).map_err(|e| LogError::Key(e.to_string()))
    }

    /// The committed id of `module@version` in the tree of size `n`.
    async fn committed_id(
        &self,
        module: &str,
        version: &str,
        n: i64,
    ) -> Result<Option<i64>, LogError> {
        let Some(key) = Self::index_key(module, version) else {
            return Ok(None);
        };
        let Some(id) = self
            .get(&key)
            .await?
            .and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse::<i64>().ok())
            .filter(|id| (0..n).contains(id))
        else {
            return Ok(None);
        };
        // An entry an append wrote before dying can point at an id a
        // later append gave to another version: only the record decides.
        let text = self.record_text(id).await?;
        let first_line = format!("{module} {version} ");
        Ok(text.starts_with(first_line.as_bytes()).then_some(id))
    }

    /// Records `id`'s text, from its record chunk.
    async fn record_text(&self, id: i64) -> Result<Vec<u8>, LogError> {
        let chunk = self
            .get(&format!("records/{}", id / CHUNK))
            .await?
            .unwrap_or_default();
        let records = record::split_data_tile(&chunk)?;
        records
            .get((id % CHUNK) as usize)
            .map(|r| r.to_vec())
            .ok_or_else(|| LogError::Head(format!("record {id} is missing from its chunk")))
    }

    /// The `/lookup` answer for `module@version`: the record, then the
    /// signed head. `None` when the log does not hold it.
    pub async fn lookup(&self, module: &str, version: &str) -> Result<Option<Vec<u8>>, LogError> {
        let (note, tree) = self.head().await?;
        let Some(id) = self.committed_id(module, version, tree.n).await? else {
            return Ok(None);
        };
        let text = self.record_text(id).await?;
        let mut body = record::format_record(id, &text)?;
        body.extend_from_slice(&note);
        Ok(Some(body))
    }

    /// The contents of `tile` in the current tree; `None` for a tile the
    /// tree does not (yet) have.
    pub async fn tile(&self, tile: &Tile) -> Result<Option<Vec<u8>>, LogError> {
        if tile.height != TILE_HEIGHT {
            return Ok(None);
        }
        let (_, tree) = self.head().await?;
        let end = tile
            .n
            .checked_mul(CHUNK)
            .and_then(|s| s.checked_add(i64::from(tile.width)));
        let Some(end) = end else { return Ok(None) };
        if tile.level < 0 {
            if end > tree.n {
                return Ok(None);
            }
            let chunk = self
                .get(&format!("records/{}", tile.n))
                .await?
                .unwrap_or_default();
            let records = record::split_data_tile(&chunk)?;
            if records.len() < tile.width as usize {
                return Err(LogError::Head(format!("record chunk {} is short", tile.n)));
            }
            return Ok(Some(record::format_data_tile(
                records[..tile.width as usize].iter().copied(),
            )?));
        }
        let shift = TILE_HEIGHT * tile.level as u32;
        if shift >= 63 || end > tree.n >> shift {
            return Ok(None);
        }
        let mut hashes = Hashes::default();
        let data = hashes
            .compute(self, |r| tlog::read_tile_data(tile, r))
            .await?;
        Ok(Some(data))
    }

    /// Appends `module@version` with `sums` unless the log holds it; returns
    /// its id.
    pub async fn append(
        &self,
        module: &str,
        version: &str,
        sums: &VersionSums,
    ) -> Result<i64, LogError> {
        let index_key = Self::index_key(module, version)
            .ok_or_else(|| LogError::Head(format!("{module}@{version} cannot be escaped")))?;
        let _local = self.local.lock().await;
        let lease = self.lease().await?;
        let appended = self.append_locked(module, version, sums, &index_key).await;
        if let Some(lease) = lease {
            if let Err(e) = lease.release().await {
                tracing::warn!(error = %e, log = %self.name, "releasing the checksum log lease");
            }
        }
        appended
    }

    async fn lease(&self) -> Result<Option<Box<dyn crate::singleflight::Lease>>, LogError> {
        let Some(locks) = &self.locks else {
            return Ok(None);
        };
        let key = format!("sumdb-log/{}", self.name);
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            match locks.try_lock(&key, LOCK_TTL).await {
                Ok(Some(lease)) => return Ok(Some(lease)),
                Ok(None) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(LOCK_RETRY).await
                }
                Ok(None) => {
                    return Err(LogError::Lock(format!(
                        "{key} stayed busy for {LOCK_WAIT:?}"
                    )))
                }
                Err(e) => return Err(LogError::Lock(e.to_string())),
            }
        }
    }

    async fn append_locked(
        &self,
        module: &str,
        version: &str,
        sums: &VersionSums,
        index_key: &str,
    ) -> Result<i64, LogError> {
        let (_, tree) = self.head().await?;
        if let Some(id) = self.committed_id(module, version, tree.n).await? {
            return Ok(id);
        }
        let id = tree.n;
        let text = record::gosum_record(module, version, &sums.zip, &sums.go_mod);
        let mut hashes = Hashes::default();
        let new = hashes
            .compute(self, |r| tlog::stored_hashes(id, text.as_bytes(), r))
            .await?;
        // New hashes go after the committed ones, over whatever an append
        // that died left there.
        let first = tlog::stored_hash_count(id);
        let mut chunk_no = first / CHUNK;
        let mut chunk = hashes.chunk(self, chunk_no).await?;
        chunk.truncate(((first % CHUNK) as usize) * HASH_SIZE);
        for (i, hash) in new.iter().enumerate() {
            let index = first + i as i64;
            if index / CHUNK != chunk_no {
                self.put(&format!("hashes/{chunk_no}"), chunk.clone())
                    .await?;
                hashes.chunks.insert(chunk_no, chunk);
                chunk_no = index / CHUNK;
                chunk = Vec::new();
            }
            chunk.extend_from_slice(&hash.0);
        }
        self.put(&format!("hashes/{chunk_no}"), chunk.clone())
            .await?;
        hashes.chunks.insert(chunk_no, chunk);
        let root = hashes.compute(self, |r| tlog::tree_hash(id + 1, r)).await?;

        let records_key = format!("records/{}", id / CHUNK);
        let stored = self.get(&records_key).await?.unwrap_or_default();
        let mut records = record::split_data_tile(&stored)?;
        records.truncate((id % CHUNK) as usize);
        if records.len() != (id % CHUNK) as usize {
            return Err(LogError::Head(format!(
                "record chunk {} is short",
                id / CHUNK
            )));
        }
        records.push(text.as_bytes());
        let data = record::format_data_tile(records.iter().copied())?;
        self.put(&records_key, data).await?;
        self.put(index_key, id.to_string().into_bytes()).await?;
        let head = self.sign(Tree {
            n: id + 1,
            hash: root,
        })?;
        self.put("head", head).await?;
        tracing::info!(log = %self.name, module, version, id, "appended to the private checksum database");
        Ok(id)
    }

    /// Appends a stored private version that the log lacks (stored before
    /// the log was configured, or whose append failed), re-hashing it from
    /// storage. `None` when it is not a private version in storage.
    pub async fn append_stored(
        &self,
        module: &str,
        version: &str,
    ) -> Result<Option<i64>, LogError> {
        if !self.is_private(module) || !self.storage.exists(module, version).await? {
            return Ok(None);
        }
        let sums = match crate::sums::hash_stored(self.storage.as_ref(), module, version, None)
            .await
        {
            Ok(sums) => sums,
            Err(e) => {
                tracing::warn!(module, version, error = %e, "cannot hash a stored private version for the checksum database");
                return Ok(None);
            }
        };
        // A version whose record disagrees with its bytes is corrupt: it
        // must not be vouched for.
        if let Ok(Some(recorded)) =
            crate::sums::recorded(self.storage.as_ref(), module, version).await
        {
            if recorded != sums {
                tracing::error!(module, version, "stored version differs from its checksum record; not adding it to the checksum database");
                return Ok(None);
            }
        }
        self.append(module, version, &sums).await.map(Some)
    }
}

#[async_trait::async_trait]
impl StoredObserver for PrivateLog {
    async fn stored(&self, module: &str, version: &str, sums: &VersionSums) {
        if !self.is_private(module) {
            return;
        }
        if let Err(error) = self.append(module, version, sums).await {
            // The lookup appends it later from storage.
            tracing::warn!(module, version, %error, "cannot append to the private checksum database");
        }
    }
}

/// Stored hash chunks loaded so far, read on demand by the synchronous
/// tlog computations.
#[derive(Default)]
struct Hashes {
    chunks: HashMap<i64, Vec<u8>>,
}

impl Hashes {
    async fn chunk(&mut self, log: &PrivateLog, k: i64) -> Result<Vec<u8>, LogError> {
        if let Some(c) = self.chunks.get(&k) {
            return Ok(c.clone());
        }
        let data = log
            .get(&format!("hashes/{k}"))
            .await?
            .map(|b| b.to_vec())
            .unwrap_or_default();
        self.chunks.insert(k, data.clone());
        Ok(data)
    }

    /// Runs `f` with a reader over the chunks, loading the chunks it asks
    /// for and running it again until it has all it needs.
    async fn compute<T>(
        &mut self,
        log: &PrivateLog,
        f: impl Fn(&dyn HashReader) -> Result<T, TlogError>,
    ) -> Result<T, LogError> {
        loop {
            let missing = Mutex::new(BTreeSet::new());
            let result = {
                let chunks = &self.chunks;
                let reader = |indexes: &[i64]| -> Result<Vec<Hash>, TlogError> {
                    let mut out = Vec::with_capacity(indexes.len());
                    let mut lacking = false;
                    for &index in indexes {
                        let k = index / CHUNK;
                        let Some(chunk) = chunks.get(&k) else {
                            missing.lock().unwrap_or_else(|p| p.into_inner()).insert(k);
                            lacking = true;
                            continue;
                        };
                        let at = ((index % CHUNK) as usize) * HASH_SIZE;
                        let Some(bytes) = chunk.get(at..at + HASH_SIZE) else {
                            return Err(TlogError::ShortRead {
                                want: indexes.len(),
                                got: out.len(),
                            });
                        };
                        let mut hash = [0u8; HASH_SIZE];
                        hash.copy_from_slice(bytes);
                        out.push(Hash(hash));
                    }
                    if lacking {
                        return Err(TlogError::ShortRead {
                            want: indexes.len(),
                            got: out.len(),
                        });
                    }
                    Ok(out)
                };
                f(&reader)
            };
            let missing = missing.into_inner().unwrap_or_else(|p| p.into_inner());
            if result.is_ok() || missing.is_empty() {
                return result.map_err(LogError::from);
            }
            for k in missing {
                self.chunk(log, k).await?;
            }
        }
    }
}

#[cfg(test)]
mod tests;

/// The private log `PrivateSumDBKeyFile` configures, holding the modules
/// matching `NoSumPatterns` and GONOSUMDB (else GOPRIVATE) of
/// `GoBinaryEnvVars`; `None` when the key is not set.
pub fn from_config(
    config: &crate::config::Config,
    storage: &Arc<dyn Storage>,
    locks: Option<Arc<dyn LockService>>,
) -> anyhow::Result<Option<Arc<PrivateLog>>> {
    if config.private_sumdb_key_file.is_empty() {
        return Ok(None);
    }
    // GONOSUMDB defaults to GOPRIVATE, as in the go command.
    let env = &config.go_binary_env_vars;
    let gonosumdb = env
        .get("GONOSUMDB")
        .filter(|v| !v.is_empty())
        .or_else(|| env.get("GOPRIVATE"))
        .unwrap_or("");
    let mut patterns = config.no_sum_patterns.clone();
    patterns.extend(
        gonosumdb
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string),
    );
    let log = PrivateLog::from_key_file(
        std::path::Path::new(&config.private_sumdb_key_file),
        Arc::clone(storage),
        locks,
        patterns,
    )
    .map_err(|e| anyhow::anyhow!("PrivateSumDBKeyFile: {e}"))?;
    tracing::info!(name = log.name(), vkey = %log.verifier_key(), "serving the private checksum database under /sumdb/{}/", log.name());
    Ok(Some(Arc::new(log)))
}
