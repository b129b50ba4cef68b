//! The checksum database protocol, client side, with the go command's
//! rules (`golang.org/x/mod/sumdb/client.go`, `cmd/go/internal/modfetch/
//! sumdb.go`):
//!
//! - the database is reached at the URL GOSUMDB gives, else through the
//!   first GOPROXY entry that answers `<proxy>/sumdb/<name>/supported`,
//!   else at `https://<name>`;
//! - `/lookup/M@V` answers the record with a signed tree head; the head's
//!   signature is checked with the database key, the head is checked to be
//!   consistent with the latest head seen before (through tiles), and the
//!   record is checked to be in the tree (through tiles);
//! - tiles (height 8) are read from memory, then the shared store, then the
//!   database (a partial tile, else the full tile cut down), and used only
//!   once they hash up to a signed tree head;
//! - a head inconsistent with an earlier one proves the log forked: that is
//!   reported as the go command reports it ("SECURITY ERROR ... go.sum
//!   database server misbehavior detected!") and no version is verified
//!   from then on.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use reqwest::Url;
use sumdb::note::{self, Verifiers};
use sumdb::record;
use sumdb::tlog::{self, HashReader, Tile, TileHashReader, TileReader, TlogError, Tree};
use vcs::goauth::{CredentialHeaders, FailedResponse, GoAuth};
use vcs::goenv::{Fallback, GoEnv, ProxyTarget};

use super::gosumdb::Database;
use super::store::SumdbStore;

/// The tile height the go command uses.
pub const TILE_HEIGHT: u32 = 8;

/// Verified tiles kept in memory (8 KiB each at most).
const MEMORY_TILES: usize = 2048;

/// Largest answer read from the database (a lookup or a tile is a few
/// KiB).
const MAX_ANSWER: usize = 1 << 20;

/// Rounds of "fetch the tiles a computation asks for" before giving up;
/// each computation knows all its tiles after the first round.
const TILE_ROUNDS: usize = 4;

/// What kind of failure, which decides the HTTP status of the request
/// that needed the verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SumdbErrorKind {
    /// The go command's "SECURITY ERROR": a checksum mismatch, a checksum
    /// missing from the database's answer, or a forked log.
    Security,
    /// The database does not know the module version (404/410).
    NotFound,
    /// The database could not be reached, failed, or answered something
    /// unusable.
    Unavailable,
    /// GOSUMDB cannot be used (malformed, or `off` for a module that must
    /// be checked).
    Config,
}

/// Why a version could not be verified. The message is the go command's.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SumdbError {
    /// What kind of failure.
    pub kind: SumdbErrorKind,
    /// The go command's wording.
    pub message: String,
}

impl SumdbError {
    fn new(kind: SumdbErrorKind, message: impl Into<String>) -> SumdbError {
        SumdbError {
            kind,
            message: message.into(),
        }
    }

    fn unavailable(message: impl Into<String>) -> SumdbError {
        SumdbError::new(SumdbErrorKind::Unavailable, message)
    }

    fn with_prefix(self, prefix: &str) -> SumdbError {
        SumdbError {
            kind: self.kind,
            message: format!("{prefix}{}", self.message),
        }
    }
}

/// A failed GET, as the go command's web package words it.
#[derive(Debug, Clone)]
struct RemoteError {
    /// 404 or 410: "does not exist", which moves a GOPROXY walk on.
    not_exist: bool,
    message: String,
}

/// The latest verified tree head and its signed note.
#[derive(Clone)]
struct Latest {
    tree: Tree,
    note: Bytes,
}

/// Where a signed tree head stands relative to the latest one.
#[derive(Debug, PartialEq, Eq)]
enum When {
    Past,
    Now,
    Future,
}

/// A client of one checksum database.
pub struct SumdbClient {
    db: Database,
    verifiers: Verifiers,
    http: reqwest::Client,
    /// `http` for requests carrying credentials: it stops at a redirect
    /// off the origin asked for.
    credentialed_http: reqwest::Client,
    /// The go environment's GOAUTH store: the go command sends its
    /// credentials to checksum databases and their proxies too.
    auth: Arc<GoAuth>,
    /// How long one request (and a GOAUTH command for it) may take.
    timeout: Duration,
    proxies: Vec<(ProxyTarget, Fallback)>,
    /// Found once; a failure is not kept (the go command keeps it for its
    /// one run, a server would keep it forever).
    base: tokio::sync::OnceCell<Url>,
    init: tokio::sync::OnceCell<()>,
    store: Arc<dyn SumdbStore>,
    latest: Mutex<Latest>,
    tiles: Mutex<HashMap<Tile, Bytes>>,
    stored_tiles: Mutex<HashSet<Tile>>,
    forked: Mutex<Option<String>>,
}

impl SumdbClient {
    /// A client of `db`, reached as the go command in environment `env`
    /// would reach it, keeping its state in `store`. Requests give up
    /// after `timeout`.
    pub fn new(
        db: Database,
        env: &GoEnv,
        store: Arc<dyn SumdbStore>,
        timeout: Duration,
    ) -> Result<SumdbClient, String> {
        // SSL_CERT_FILE replaces the bundled roots, as it replaces the
        // system's for the go command.
        let roots = match env.ssl_cert_file() {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("reading SSL_CERT_FILE {path}: {e}"))?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| format!("SSL_CERT_FILE {path}: {e}"))?;
                if certs.is_empty() {
                    return Err(format!("SSL_CERT_FILE {path}: no certificates in it"));
                }
                Some(certs)
            }
            None => None,
        };
        let make_client = |policy: reqwest::redirect::Policy| {
            let proxy_env = env.clone();
            let mut builder = reqwest::Client::builder()
                .timeout(timeout)
                .user_agent(concat!("athens-rs/", env!("CARGO_PKG_VERSION")))
                .redirect(policy)
                .no_proxy()
                .proxy(reqwest::Proxy::custom(move |url| {
                    proxy_env.http_proxy_for(url)
                }));
            if let Some(certs) = &roots {
                builder = builder.tls_built_in_root_certs(false);
                for cert in certs {
                    builder = builder.add_root_certificate(cert.clone());
                }
            }
            builder
                .build()
                .map_err(|e| format!("creating HTTP client: {e}"))
        };
        let http = make_client(reqwest::redirect::Policy::default())?;
        let credentialed_http = make_client(reqwest::redirect::Policy::custom(|attempt| {
            let off_origin = attempt.previous().first().is_some_and(|first| {
                let next = attempt.url();
                first.scheme() != next.scheme()
                    || first.host_str() != next.host_str()
                    || first.port_or_known_default() != next.port_or_known_default()
            });
            if attempt.previous().len() > 10 {
                attempt.error("too many redirects")
            } else if off_origin {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }))?;
        let proxies = env
            .proxy_list()
            .entries()
            .iter()
            .map(|e| (e.target.clone(), e.fallback))
            .collect();
        Ok(SumdbClient {
            verifiers: Verifiers::new([db.verifier.clone()]),
            db,
            http,
            credentialed_http,
            auth: Arc::clone(env.goauth_credentials()),
            timeout,
            proxies,
            base: tokio::sync::OnceCell::new(),
            init: tokio::sync::OnceCell::new(),
            store,
            latest: Mutex::new(Latest {
                tree: Tree {
                    n: 0,
                    hash: tlog::empty_tree_hash(),
                },
                note: Bytes::new(),
            }),
            tiles: Mutex::new(HashMap::new()),
            stored_tiles: Mutex::new(HashSet::new()),
            forked: Mutex::new(None),
        })
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.db.name
    }

    /// The report of a forked log, once one has been seen: from then on
    /// nothing is verified.
    pub fn fork_report(&self) -> Option<String> {
        lock(&self.forked).clone()
    }

    /// The latest verified tree head.
    pub fn latest_tree(&self) -> Tree {
        lock(&self.latest).tree
    }

    /// The go.sum lines the database holds for `path@version`: the zip's
    /// (`path version h1:...`) and the go.mod's (`path version/go.mod
    /// h1:...`), after checking the record is in the signed log.
    pub async fn lookup(&self, path: &str, version: &str) -> Result<Vec<String>, SumdbError> {
        let at = format!("{path}@{version}: ");
        self.lookup_inner(path, version).await.map_err(|e| {
            if e.kind == SumdbErrorKind::Security {
                e
            } else {
                e.with_prefix(&at)
            }
        })
    }

    async fn lookup_inner(&self, path: &str, version: &str) -> Result<Vec<String>, SumdbError> {
        if let Some(report) = self.fork_report() {
            return Err(SumdbError::new(SumdbErrorKind::Security, report));
        }
        self.init.get_or_try_init(|| self.load_latest()).await?;
        let escaped_path = modzip::module::escape_path(path)
            .map_err(|e| SumdbError::unavailable(e.to_string()))?;
        let escaped_version = modzip::module::escape_version(version)
            .map_err(|e| SumdbError::unavailable(e.to_string()))?;
        let answer = self
            .read_remote(&format!("/lookup/{escaped_path}@{escaped_version}"))
            .await
            .map_err(|e| {
                let kind = if e.not_exist {
                    SumdbErrorKind::NotFound
                } else {
                    SumdbErrorKind::Unavailable
                };
                SumdbError::new(kind, e.message)
            })?;
        let parsed =
            record::parse_record(&answer).map_err(|e| SumdbError::unavailable(e.to_string()))?;
        self.merge_latest(Bytes::copy_from_slice(parsed.rest))
            .await?;
        self.check_record(parsed.id, parsed.text).await?;
        let text = String::from_utf8_lossy(parsed.text);
        Ok(record::lines_for(&text, path, version)
            .into_iter()
            .chain(record::lines_for(&text, path, &format!("{version}/go.mod")))
            .map(str::to_string)
            .collect())
    }

    fn latest_key(&self) -> String {
        format!("{}/latest", self.db.name)
    }

    /// Starts from the head the store kept (the go command's `init`).
    async fn load_latest(&self) -> Result<(), SumdbError> {
        let stored =
            self.store.get(&self.latest_key()).await.map_err(|e| {
                SumdbError::unavailable(format!("reading the stored tree head: {e}"))
            })?;
        let Some(stored) = stored.filter(|s| !s.is_empty()) else {
            return Ok(());
        };
        self.merge_latest_mem(stored)
            .await
            .map(|_| ())
            .map_err(|e| {
                if e.kind == SumdbErrorKind::Security {
                    e
                } else {
                    e.with_prefix("initializing the checksum database client: ")
                }
            })
    }

    /// Takes in a signed tree head from the database: checks it against
    /// the latest head, and when it is newer keeps it and shares it through
    /// the store.
    async fn merge_latest(&self, note: Bytes) -> Result<(), SumdbError> {
        if self.merge_latest_mem(note).await? != When::Future {
            return Ok(());
        }
        // Another instance may have stored a newer head (check ours against
        // it) or an older one (replace it).
        self.sync_store().await?;
        Ok(())
    }

    async fn sync_store(&self) -> Result<(), SumdbError> {
        let key = self.latest_key();
        let read =
            |e: String| SumdbError::unavailable(format!("reading the stored tree head: {e}"));
        let stored = self
            .store
            .get(&key)
            .await
            .map_err(read)?
            .unwrap_or_default();
        if self.merge_latest_mem(stored).await? != When::Past {
            return Ok(());
        }
        let ours = lock(&self.latest).note.clone();
        if let Err(e) = self.store.put(&key, ours.clone()).await {
            tracing::warn!(database = %self.db.name, error = %e, "checksum database: storing the latest tree head");
            return Ok(());
        }
        // Without compare-and-swap, a concurrent writer may have replaced
        // it; whatever is there now must still be consistent with ours.
        let now = self
            .store
            .get(&key)
            .await
            .map_err(read)?
            .unwrap_or_default();
        if now != ours {
            self.merge_latest_mem(now).await?;
        }
        Ok(())
    }

    /// Checks `note` against the latest head held in memory and installs
    /// it when newer. An empty note is "nothing": `Past` unless the
    /// latest head is still the empty tree.
    async fn merge_latest_mem(&self, note_bytes: Bytes) -> Result<When, SumdbError> {
        if note_bytes.is_empty() {
            return Ok(if lock(&self.latest).tree.n == 0 {
                When::Now
            } else {
                When::Past
            });
        }
        let opened = note::open(&note_bytes, &self.verifiers).map_err(|e| {
            SumdbError::unavailable(format!(
                "reading tree note: {e}\nnote:\n{}",
                String::from_utf8_lossy(&note_bytes)
            ))
        })?;
        let tree = tlog::parse_tree(opened.text.as_bytes()).map_err(|e| {
            SumdbError::unavailable(format!("reading tree: {e}\ntree:\n{}", opened.text))
        })?;
        let mut latest = lock(&self.latest).clone();
        loop {
            if tree.n <= latest.tree.n {
                self.check_trees(tree, &note_bytes, latest.tree, &latest.note)
                    .await?;
                return Ok(if tree.n < latest.tree.n {
                    When::Past
                } else {
                    When::Now
                });
            }
            self.check_trees(latest.tree, &latest.note, tree, &note_bytes)
                .await?;
            let mut current = lock(&self.latest);
            if current.tree == latest.tree {
                *current = Latest {
                    tree,
                    note: note_bytes.clone(),
                };
                return Ok(When::Future);
            }
            // Another request installed a head meanwhile: check against
            // that one instead.
            latest = current.clone();
        }
    }

    /// Checks that the tree `older` is a prefix of `newer`; when it is
    /// not, the log has forked: report it and stop verifying.
    async fn check_trees(
        &self,
        older: Tree,
        older_note: &[u8],
        newer: Tree,
        newer_note: &[u8],
    ) -> Result<(), SumdbError> {
        let hash = self
            .with_tiles(|reader| tlog::tree_hash(older.n, &TileHashReader::new(newer, reader)))
            .await
            .map_err(|e| {
                if older.n == newer.n {
                    e.with_prefix(&format!("checking tree#{}: ", older.n))
                } else {
                    e.with_prefix(&format!(
                        "checking tree#{} against tree#{}: ",
                        older.n, newer.n
                    ))
                }
            })?;
        if hash == older.hash {
            return Ok(());
        }
        let indent = |b: &[u8]| String::from_utf8_lossy(b).replace('\n', "\n\t");
        let mut report = format!(
            "SECURITY ERROR\ngo.sum database server misbehavior detected!\n\nold database:\n\t{}\nnew database:\n\t{}\nproof of misbehavior:\n\t{hash}",
            indent(older_note),
            indent(newer_note)
        );
        let proof = self
            .with_tiles(|reader| {
                let thr = TileHashReader::new(newer, reader);
                let proof = tlog::prove_tree(newer.n, older.n, &thr)?;
                tlog::check_tree(&proof, newer.n, newer.hash, older.n, hash)?;
                Ok(proof)
            })
            .await;
        match proof {
            Ok(proof) => {
                for h in proof {
                    report.push_str(&format!("\n\t{h}"));
                }
            }
            Err(e) => report.push_str(&format!("\tinternal error: {e}\n")),
        }
        tracing::error!(database = %self.db.name, report = %report, "checksum database: the log has forked; no module version is verified from now on");
        *lock(&self.forked) = Some(report.clone());
        Err(SumdbError::new(SumdbErrorKind::Security, report))
    }

    /// Checks that record `id` with contents `text` is in the latest tree.
    async fn check_record(&self, id: i64, text: &[u8]) -> Result<(), SumdbError> {
        let latest = lock(&self.latest).tree;
        if id >= latest.n {
            return Err(SumdbError::unavailable(format!(
                "cannot validate record {id} in tree of size {}",
                latest.n
            )));
        }
        let hashes = self
            .with_tiles(|reader| {
                TileHashReader::new(latest, reader).read_hashes(&[tlog::stored_hash_index(0, id)])
            })
            .await?;
        if hashes.first() == Some(&tlog::record_hash(text)) {
            Ok(())
        } else {
            Err(SumdbError::unavailable(
                "cannot authenticate record data in server response",
            ))
        }
    }

    /// Runs a log computation over tiles, fetching the tiles it asks for
    /// and running it again, then remembers the tiles it verified.
    ///
    /// Tiles kept from earlier (memory, store) that do not fit the tree at
    /// hand are fetched again from the database once: a damaged store then
    /// repairs itself, and after a fork the database's own tiles show the
    /// misbehavior (a SECURITY ERROR with its proof) instead of a plain
    /// "inconsistent tile".
    async fn with_tiles<T>(
        &self,
        op: impl Fn(&dyn TileReader) -> Result<T, TlogError>,
    ) -> Result<T, SumdbError> {
        let mut have: HashMap<Tile, Bytes> = HashMap::new();
        let mut fresh_only = false;
        let mut used_kept = false;
        for _ in 0..TILE_ROUNDS {
            let (result, verified) = {
                let snapshot = Snapshot {
                    have: &have,
                    verified: RefCell::new(Vec::new()),
                };
                let result = op(&snapshot);
                (result, snapshot.verified.into_inner())
            };
            match result {
                Ok(value) => {
                    self.remember(verified, fresh_only).await;
                    return Ok(value);
                }
                Err(TlogError::TilesNeeded(tiles)) => {
                    let fetched = futures::future::join_all(
                        tiles.iter().map(|t| self.read_tile(*t, fresh_only)),
                    )
                    .await;
                    for (tile, data) in tiles.into_iter().zip(fetched) {
                        let (data, kept) = data?;
                        used_kept |= kept;
                        have.insert(tile, data);
                    }
                }
                Err(TlogError::InconsistentTile) if used_kept && !fresh_only => {
                    tracing::warn!(database = %self.db.name, "checksum database: kept tiles do not fit the signed tree; reading them again");
                    fresh_only = true;
                    have.clear();
                }
                Err(e) => return Err(SumdbError::unavailable(e.to_string())),
            }
        }
        Err(SumdbError::unavailable(
            "tiles kept changing while reading them",
        ))
    }

    /// Keeps verified tiles in memory and in the store.
    async fn remember(&self, verified: Vec<(Tile, Bytes)>, overwrite: bool) {
        {
            let mut tiles = lock(&self.tiles);
            if tiles.len() + verified.len() > MEMORY_TILES {
                tiles.clear();
            }
            for (tile, data) in &verified {
                tiles.insert(*tile, data.clone());
            }
        }
        for (tile, data) in verified {
            let fresh = lock(&self.stored_tiles).insert(tile);
            if !fresh && !overwrite {
                continue;
            }
            let key = format!("{}/{}", self.db.name, tile.path());
            if let Err(e) = self.store.put(&key, data).await {
                lock(&self.stored_tiles).remove(&tile);
                tracing::warn!(database = %self.db.name, tile = %tile.path(), error = %e, "checksum database: caching a tile");
            }
        }
    }

    /// One tile: from memory, the store, or the database (only the
    /// database when `fresh_only`); a partial tile may be cut from the full
    /// one. Not yet verified; the flag says whether it was kept from
    /// earlier rather than downloaded now.
    async fn read_tile(&self, tile: Tile, fresh_only: bool) -> Result<(Bytes, bool), SumdbError> {
        let cut = |full: Bytes| -> Option<Bytes> {
            let want = tile.width as usize * tlog::HASH_SIZE;
            (full.len() >= want).then(|| full.slice(..want))
        };
        let full = tile.complete();
        if !fresh_only {
            if let Some(data) = self.read_kept_tile(tile, full, &cut).await {
                return Ok((data, true));
            }
        }
        let data = match self.read_remote(&format!("/{}", tile.path())).await {
            Ok(data) => data,
            Err(e) if tile != full => match self.read_remote(&format!("/{}", full.path())).await {
                Ok(data) => cut(data).ok_or_else(|| SumdbError::unavailable(e.message))?,
                Err(_) => return Err(SumdbError::unavailable(e.message)),
            },
            Err(e) => return Err(SumdbError::unavailable(e.message)),
        };
        Ok((data, false))
    }

    /// A tile from memory or the store, if kept there.
    async fn read_kept_tile(
        &self,
        tile: Tile,
        full: Tile,
        cut: &impl Fn(Bytes) -> Option<Bytes>,
    ) -> Option<Bytes> {
        {
            let tiles = lock(&self.tiles);
            if let Some(data) = tiles.get(&tile) {
                return Some(data.clone());
            }
            if let Some(data) = tiles.get(&full).cloned().and_then(cut) {
                return Some(data);
            }
        }
        let key = |t: &Tile| format!("{}/{}", self.db.name, t.path());
        if let Ok(Some(data)) = self.store.get(&key(&tile)).await {
            if !data.is_empty() {
                lock(&self.stored_tiles).insert(tile);
                return Some(data);
            }
        }
        if tile != full {
            if let Ok(Some(data)) = self.store.get(&key(&full)).await {
                if let Some(data) = cut(data) {
                    // Already stored in full; no need to store the part.
                    lock(&self.stored_tiles).insert(tile);
                    return Some(data);
                }
            }
        }
        None
    }

    /// GET of `path` under the database's base URL.
    async fn read_remote(&self, path: &str) -> Result<Bytes, RemoteError> {
        let base = self
            .base
            .get_or_try_init(|| self.find_base())
            .await
            .map_err(|message| RemoteError {
                not_exist: false,
                message,
            })?;
        self.get(&join(base, path)).await
    }

    /// Where the database is: GOSUMDB's URL, else the first GOPROXY entry
    /// that proxies it, else `https://<name>` (the go command's
    /// `initBase`, walking GOPROXY as `TryProxies` does).
    async fn find_base(&self) -> Result<Url, String> {
        if let Some(url) = &self.db.url {
            return Ok(url.clone());
        }
        // Ranks of errors, most helpful last, as TryProxies keeps them.
        const NOT_EXIST: u8 = 0;
        const PROXY: u8 = 1;
        const DIRECT: u8 = 2;
        let mut best: Option<RemoteError> = None;
        let mut best_rank = NOT_EXIST;
        for (target, fallback) in &self.proxies {
            let (err, is_direct) = match target {
                ProxyTarget::NoProxy => (
                    RemoteError {
                        not_exist: true,
                        message: "path does not match GOPRIVATE/GONOPROXY".into(),
                    },
                    false,
                ),
                ProxyTarget::Direct | ProxyTarget::Off => (
                    RemoteError {
                        not_exist: true,
                        message: "module lookup disabled by GOPROXY=off".into(),
                    },
                    *target == ProxyTarget::Direct,
                ),
                ProxyTarget::Url(proxy) => {
                    let proxy = Url::parse(proxy).map_err(|e| e.to_string())?;
                    let supported = join(&proxy, &format!("sumdb/{}/supported", self.db.name));
                    match self.get(&supported).await {
                        Ok(_) => return Ok(join(&proxy, &format!("sumdb/{}", self.db.name))),
                        Err(e) => (e, false),
                    }
                }
            };
            let not_exist = err.not_exist;
            if is_direct {
                best = Some(err);
                best_rank = DIRECT;
            } else if best_rank <= PROXY && !not_exist {
                best = Some(err);
                best_rank = PROXY;
            } else if best_rank == NOT_EXIST {
                best = Some(err);
            }
            if *fallback != Fallback::OnAnyError && !not_exist {
                break;
            }
        }
        match best {
            Some(e) if !e.not_exist => Err(e.message),
            _ => Ok(self.db.direct_url()),
        }
    }

    async fn get(&self, url: &Url) -> Result<Bytes, RemoteError> {
        let shown = redact(url);
        let failed = |message: String| RemoteError {
            not_exist: false,
            message,
        };
        // With credentials, a redirect off the URL's origin is followed
        // without them (reqwest would forward every header but
        // `Authorization`).
        let send = |credentials: Option<CredentialHeaders>| async move {
            let Some(headers) = credentials.filter(|h| !h.is_empty()) else {
                return self.http.get(url.clone()).send().await;
            };
            let mut request = self.credentialed_http.get(url.clone());
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let response = request.send().await?;
            let next = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| response.url().join(l).ok())
                .filter(|_| response.status().is_redirection());
            match next {
                Some(next) => self.http.get(next).send().await,
                None => Ok(response),
            }
        };
        let credentials = self.auth.initial(url, self.timeout).await;
        let mut response = send(credentials.clone())
            .await
            .map_err(|e| failed(format!("reading {shown}: {}", without_url(e))))?;
        // As the go command: GOAUTH again after a 4xx from https, and the
        // request repeated when that changed the credentials.
        if url.scheme() == "https" && response.status().is_client_error() {
            let renewed = self
                .auth
                .after_failure(url, &FailedResponse::of(&response), self.timeout)
                .await;
            if renewed.as_ref().unwrap_or(&Vec::new())
                != credentials.as_ref().unwrap_or(&Vec::new())
            {
                response = send(renewed)
                    .await
                    .map_err(|e| failed(format!("reading {shown}: {}", without_url(e))))?;
            }
        }
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| failed(format!("reading {shown}: {}", without_url(e))))?
        {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(failed(format!(
                    "reading {shown}: answer larger than {MAX_ANSWER} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if status == reqwest::StatusCode::OK {
            return Ok(Bytes::from(body));
        }
        let status_text = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        let detail: String = String::from_utf8_lossy(&body)
            .lines()
            .take(8)
            .collect::<Vec<_>>()
            .join("\n\t");
        let message = if detail.trim().is_empty() {
            format!("reading {shown}: {}", status_text.trim_end())
        } else {
            format!(
                "reading {shown}: {}\n\tserver response: {detail}",
                status_text.trim_end()
            )
        };
        Err(RemoteError {
            not_exist: status == reqwest::StatusCode::NOT_FOUND
                || status == reqwest::StatusCode::GONE,
            message,
        })
    }
}

/// The go command's `web.Join`: `path` appended to the base URL's path
/// with exactly one slash between.
fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    url.set_path(&format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    ));
    url
}

/// The URL without user information, for messages.
fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    if !shown.username().is_empty() || shown.password().is_some() {
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
    }
    shown.to_string()
}

/// reqwest's error text without the URL it repeats (which may carry
/// credentials; ours is already in the message).
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

/// Locks a mutex, ignoring poisoning (the guarded data stays consistent
/// because every critical section is a plain assignment).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The tiles fetched so far, for one run of a log computation; reports
/// the missing ones so they can be fetched.
struct Snapshot<'a> {
    have: &'a HashMap<Tile, Bytes>,
    verified: RefCell<Vec<(Tile, Bytes)>>,
}

impl TileReader for Snapshot<'_> {
    fn height(&self) -> u32 {
        TILE_HEIGHT
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
        let missing: Vec<Tile> = tiles
            .iter()
            .filter(|t| !self.have.contains_key(t))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(TlogError::TilesNeeded(missing));
        }
        Ok(tiles.iter().map(|t| self.have[t].to_vec()).collect())
    }

    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]) {
        let mut verified = self.verified.borrow_mut();
        for (tile, data) in tiles.iter().zip(data) {
            verified.push((*tile, Bytes::copy_from_slice(data)));
        }
    }
}
