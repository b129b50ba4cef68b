//! The persistent bare repository kept per http(s) or ssh remote, and
//! filling it from the remote through gix only as far as questions need.
//!
//! Opening lists the remote's refs and fetches nothing. A question about a
//! named ref (tag, branch, `HEAD`) whose commit is missing fetches just that
//! commit at depth 1 while the entry holds no full history; a question about
//! ancestry or an unadvertised hash fetches every branch and tag with full
//! history (unshallowing the entry), after which missing commits are fetched
//! incrementally with full history, keeping the entry complete.
//!
//! Layout under the cache root: `<sha1 of url>/` is the bare repository and
//! `<sha1 of url>.lock` the file locked exclusively (flock) while the entry is
//! created or fetched into. Readers take no lock: gix writes objects before
//! the refs that name them and replaces each ref file atomically, so a reader
//! sees either the old or the new value of a ref, never a partial one.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use gix::remote::Direction;
use gix::ObjectId;

use super::budget::{self, InUse};
use super::credentials::{self, HelperQuery, Secret};
use super::lock::FileLock as EntryLock;
use super::options::GitConfig;
use super::replay::{CapabilitySource, ListingRecord, REPLAY_REFUSED};
use super::ssh::{self, SshProgram, SshRemote, SshStderr, SshTransport};
use super::transport::{
    ListingUse, SharedClient, Watch, WatchProgress, WatchedHttp, REDIRECT_REFUSED,
};
use super::{gix_open_options, RefSnapshot, OBJECT_TOO_LARGE, PACK_INDEX_TOO_LARGE};
use crate::codehost::CodeError;
use crate::git::options::GitOptions;
use crate::phases::phase;

/// The refspecs mirrored from the remote. Tags are forced too: an upstream
/// tag that moved must be seen after the next fetch.
const MIRROR_REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// Directory name of the cache entry for `url`: only hex digits, so any URL
/// maps to a safe, fixed-length name.
pub(crate) fn entry_name(url: &str) -> Result<String, CodeError> {
    let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
    hasher.update(url.as_bytes());
    let id = hasher
        .try_finalize()
        .map_err(|e| CodeError::Other(format!("hashing remote URL: {e}")))?;
    Ok(id.to_hex().to_string())
}

/// An error with all its causes, for messages: gix puts the telling detail
/// (an HTTP status, a refused credential) in the innermost cause.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Strips user information from a URL for messages.
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

/// How a remote is reached, settled once when it is opened from the git
/// configuration: for http(s), the credentials and headers git would send;
/// for ssh, the program and the parsed destination.
pub(crate) enum RemoteAccess {
    /// An http(s) remote.
    Http {
        /// The URL without user information (the cache key too).
        url: String,
        /// User name and password the URL carried (from an insteadOf
        /// rewrite), offered first.
        url_identity: Option<Secret>,
        /// `http.extraHeader` values for this URL.
        extra_headers: Vec<String>,
        /// The credential helpers' question, asked when the server wants
        /// credentials that neither the URL nor netrc supply.
        helpers: HelperQuery,
    },
    /// An ssh remote.
    Ssh {
        /// The URL as given (holding no secret: ssh never takes a password
        /// from it).
        url: String,
        remote: SshRemote,
        program: SshProgram,
    },
}

impl RemoteAccess {
    /// The access for the rewritten remote `url`, refusing ssh remotes that
    /// could smuggle options to the ssh program.
    pub(crate) fn new(
        url: &str,
        config: &GitConfig,
        opts: &GitOptions,
    ) -> Result<RemoteAccess, CodeError> {
        if ssh::is_ssh(url) {
            let remote = ssh::parse(url)?;
            return Ok(RemoteAccess::Ssh {
                url: redact(url),
                remote,
                program: SshProgram::choose(&opts.spawn_env, config),
            });
        }
        let (bare, user, password) = credentials::split_userinfo(url);
        let parsed = url::Url::parse(&bare)
            .map_err(|e| CodeError::Other(format!("invalid remote URL {}: {e}", redact(url))))?;
        let url_identity = match (&user, password) {
            (Some(user), Some(password)) => Some(Secret {
                username: user.clone(),
                password,
            }),
            _ => None,
        };
        Ok(RemoteAccess::Http {
            extra_headers: credentials::extra_headers(config, &parsed),
            helpers: HelperQuery::new(config, &parsed, user, &opts.spawn_env),
            url: bare,
            url_identity,
        })
    }

    /// The URL fetched from, without secrets.
    pub(crate) fn url(&self) -> &str {
        match self {
            RemoteAccess::Http { url, .. } | RemoteAccess::Ssh { url, .. } => url,
        }
    }

    /// Whether nothing configured would authenticate requests to this
    /// remote: no user information, netrc entry, credential helper or
    /// extra header. Only such a remote is listed with the capabilities its
    /// host advertised for another repository.
    fn without_credentials(&self, opts: &GitOptions) -> bool {
        match self {
            RemoteAccess::Http {
                url,
                url_identity,
                extra_headers,
                helpers,
            } => {
                url_identity.is_none()
                    && extra_headers.is_empty()
                    && !helpers.has_helpers()
                    && opts.account_for(url, Some(url)).is_none()
            }
            RemoteAccess::Ssh { .. } => false,
        }
    }

    /// The credentials to answer gix's request for `asked` with: those
    /// the URL carried, else netrc's, else what the helpers supply. Only
    /// for the remote's own scheme, host and port, never after a redirect
    /// elsewhere.
    fn account_for(
        &self,
        opts: &GitOptions,
        asked: Option<&str>,
    ) -> Option<gix::sec::identity::Account> {
        let RemoteAccess::Http {
            url,
            url_identity,
            helpers,
            ..
        } = self
        else {
            return None;
        };
        let remote = url::Url::parse(url).ok()?;
        let asked_url = url::Url::parse(asked?).ok()?;
        if !crate::discovery::same_origin(&remote, &asked_url) {
            return None;
        }
        let account = |s: Secret| gix::sec::identity::Account {
            username: s.username,
            password: s.password,
            oauth_refresh_token: None,
        };
        if let Some(identity) = url_identity {
            return Some(account(identity.clone()));
        }
        if let Some(found) = opts.account_for(url, asked) {
            return Some(found);
        }
        if helpers.has_helpers() {
            return helpers.fill(&opts.interrupt).map(account);
        }
        None
    }
}

/// What one connection to the remote should do after listing refs.
enum Transfer {
    /// Nothing: the listing is all that is wanted.
    ListOnly,
    /// Fetch the objects the refspecs select, with this shallow setting.
    Fetch(gix::remote::fetch::Shallow),
}

/// What the transfers of one handle share: one HTTP client, and the
/// handle's ref listing, which its fetches replay instead of listing again
/// (see [`super::replay`]).
struct Session {
    client: SharedClient,
    listing: Arc<ListingRecord>,
}

impl Session {
    fn new(opts: &GitOptions) -> Session {
        Session {
            client: SharedClient::new(opts.http_backends.clone()),
            listing: Arc::default(),
        }
    }
}

/// An http(s) remote and the cache entry mirroring it. The entry starts out
/// empty and is filled on demand: single commits shallowly while only named
/// refs are asked about, then everything once history is needed.
pub(crate) struct HttpCache {
    /// How the remote is reached (http(s) or ssh, despite the name).
    access: Arc<RemoteAccess>,
    /// The entry's lock file.
    lock_path: PathBuf,
    /// Credentials and config for connecting.
    opts: GitOptions,
    session: Session,
    /// Set once this handle has seen the entry hold the full history of
    /// every advertised ref, so later history questions skip the check.
    complete: AtomicBool,
    /// The cache root and its size budget, enforced after each fill.
    root: PathBuf,
    max_bytes: u64,
    /// Keeps the entry from eviction while this handle lives.
    _in_use: InUse,
}

/// Opens (creating on first use) the cache entry for `url` and lists the
/// remote's refs, fetching nothing. Returns the repository, the refs the
/// remote advertised and the handle that fills the entry on demand.
pub(crate) fn open_listed(
    access: RemoteAccess,
    cache_root: &Path,
    opts: &GitOptions,
) -> Result<(gix::ThreadSafeRepository, RefSnapshot, HttpCache), CodeError> {
    let access = Arc::new(access);
    let url = access.url();
    fs::create_dir_all(cache_root).map_err(|e| {
        CodeError::Other(format!("creating cache root {}: {e}", cache_root.display()))
    })?;
    let name = entry_name(url)?;
    let dir = cache_root.join(&name);
    let lock_path = cache_root.join(format!("{name}.lock"));
    // Claimed before the entry is created or opened, so eviction cannot
    // remove it from under this handle.
    let in_use = InUse::claim(cache_root, &name)?;
    {
        let _lock = EntryLock::acquire(&lock_path)?;
        if !dir.join("objects").is_dir() {
            create_entry(&dir, cache_root, &name)?;
        }
    }
    let repo = gix_open_options(&opts.limits)
        .open(&dir)
        .map_err(|e| CodeError::Other(format!("opening cache {}: {e}", dir.display())))?;
    let refspecs: Vec<String> = MIRROR_REFSPECS.iter().map(|s| s.to_string()).collect();
    let session = Session::new(opts);
    let listed = transfer(
        &repo.to_thread_local(),
        &access,
        opts,
        &session,
        &refspecs,
        true,
        Transfer::ListOnly,
    )
    .map_err(CodeError::from);
    let snapshot = match listed {
        Ok(snapshot) => snapshot,
        Err(e) => {
            // A remote that is gone leaves nothing worth keeping, and one
            // that failed before anything arrived leaves an empty entry.
            if matches!(e, CodeError::NotFound(_)) || !has_refs(&repo.to_thread_local()) {
                drop((repo, in_use));
                if let Err(io) = budget::remove_if_unused(cache_root, &name) {
                    tracing::warn!(entry = %name, error = %io, "git cache: removing a failed remote's entry");
                }
            }
            return Err(e);
        }
    };
    let cache = HttpCache {
        access: Arc::clone(&access),
        lock_path,
        opts: opts.clone(),
        session,
        complete: AtomicBool::new(false),
        root: cache_root.to_path_buf(),
        max_bytes: opts.cache_max_bytes,
        _in_use: in_use,
    };
    Ok((repo, snapshot, cache))
}

impl HttpCache {
    /// Makes sure object `id`, which the remote advertised as the value of
    /// `ref_name` (a full ref name or `HEAD`), is in the cache with
    /// everything it references. An entry holding no history yet gets that
    /// one commit (depth 1); an entry already holding full history gets
    /// every branch and tag incrementally, so it stays complete.
    pub(crate) fn ensure_object(
        &self,
        repo: &gix::Repository,
        id: ObjectId,
        ref_name: &str,
        snapshot: &RefSnapshot,
    ) -> Result<(), CodeError> {
        if repo.has_object(id) {
            return Ok(());
        }
        let filled = self.ensure_object_locked(repo, id, ref_name, snapshot);
        budget::after_fill(&self.root, self.max_bytes);
        filled
    }

    fn ensure_object_locked(
        &self,
        repo: &gix::Repository,
        id: ObjectId,
        ref_name: &str,
        snapshot: &RefSnapshot,
    ) -> Result<(), CodeError> {
        let _lock = EntryLock::acquire(&self.lock_path)?;
        // Another handle or process may have fetched it while we waited.
        if repo.has_object(id) {
            return Ok(());
        }
        if is_shallow(repo)? || !has_refs(repo) {
            let spec = if ref_name == "HEAD" {
                "HEAD".to_string()
            } else {
                format!("+{ref_name}:{ref_name}")
            };
            let depth_one = gix::remote::fetch::Shallow::DepthAtRemote(std::num::NonZeroU32::MIN);
            let shallow = transfer(
                repo,
                &self.access,
                &self.opts,
                &self.session,
                &[spec],
                false,
                Transfer::Fetch(depth_one),
            );
            match shallow {
                Ok(_) if repo.has_object(id) => return Ok(()),
                // The ref moved upstream since it was listed, or the server
                // refused a shallow fetch: fall back to fetching everything,
                // as the go command does.
                Ok(_) => {}
                // A limit or the deadline would stop the larger fetch too.
                Err(e) if e.stopped => return Err(e.error),
                Err(e) => {
                    tracing::debug!(remote = %self.access.url(), error = %e.error, "shallow fetch failed, fetching all")
                }
            }
        }
        self.fetch_all_locked(repo, snapshot)
    }

    /// Makes sure the cache holds every advertised branch and tag with its
    /// full history (unshallowing an entry filled with single commits).
    pub(crate) fn ensure_complete(
        &self,
        repo: &gix::Repository,
        snapshot: &RefSnapshot,
    ) -> Result<(), CodeError> {
        if self.complete.load(Ordering::Acquire) {
            return Ok(());
        }
        let filled = {
            let _lock = EntryLock::acquire(&self.lock_path)?;
            self.fetch_all_locked(repo, snapshot)
        };
        budget::after_fill(&self.root, self.max_bytes);
        filled
    }

    /// Fetches all branches and tags with full history unless the entry
    /// already matches `snapshot` and is not shallow. Must run under the
    /// entry lock.
    fn fetch_all_locked(
        &self,
        repo: &gix::Repository,
        snapshot: &RefSnapshot,
    ) -> Result<(), CodeError> {
        let shallow = is_shallow(repo)?;
        if !shallow && cache_matches(repo, snapshot) {
            tracing::debug!(remote = %self.access.url(), "git cache complete, no fetch");
            self.complete.store(true, Ordering::Release);
            return Ok(());
        }
        tracing::debug!(remote = %self.access.url(), shallow, "fetching all refs into git cache");
        let refspecs: Vec<String> = MIRROR_REFSPECS.iter().map(|s| s.to_string()).collect();
        let depth = if shallow {
            gix::remote::fetch::Shallow::undo()
        } else {
            gix::remote::fetch::Shallow::NoChange
        };
        transfer(
            repo,
            &self.access,
            &self.opts,
            &self.session,
            &refspecs,
            false,
            Transfer::Fetch(depth),
        )?;
        if is_shallow(repo)? {
            return Err(CodeError::Other(format!(
                "{}: still shallow after fetching full history",
                self.access.url()
            )));
        }
        self.complete.store(true, Ordering::Release);
        Ok(())
    }
}

/// Whether the entry holds commits whose parents it lacks.
fn is_shallow(repo: &gix::Repository) -> Result<bool, CodeError> {
    repo.is_shallow()
        .map_err(|e| CodeError::Other(format!("reading shallow state: {e}")))
}

/// Whether the entry has any branch or tag, i.e. has been fetched into by
/// name before.
fn has_refs(repo: &gix::Repository) -> bool {
    let Ok(platform) = repo.references() else {
        return false;
    };
    ["refs/heads/", "refs/tags/"].iter().any(|prefix| {
        platform
            .prefixed(*prefix)
            .is_ok_and(|mut refs| refs.next().is_some())
    })
}

/// Creates the bare repository in a scratch directory and renames it into
/// place, so a crash mid-way never leaves a half-initialized entry behind.
fn create_entry(dir: &Path, cache_root: &Path, name: &str) -> Result<(), CodeError> {
    if dir.exists() {
        // Left over from an interrupted creation: the lock guarantees no one
        // else is using it.
        fs::remove_dir_all(dir).map_err(|e| {
            CodeError::Other(format!("removing broken cache {}: {e}", dir.display()))
        })?;
    }
    let scratch: PathBuf = cache_root.join(format!("{name}.tmp{}", std::process::id()));
    if scratch.exists() {
        let _ = fs::remove_dir_all(&scratch);
    }
    init_bare(&scratch)
        .map_err(|e| CodeError::Other(format!("creating cache {}: {e}", scratch.display())))?;
    fs::rename(&scratch, dir).map_err(|e| {
        let _ = fs::remove_dir_all(&scratch);
        CodeError::Other(format!("placing cache {}: {e}", dir.display()))
    })
}

/// Lays out an empty bare repository at `dir` with only what git and gix
/// read: `HEAD`, `config`, `objects/` and `refs/`. `git init`'s templates
/// (sample hooks, `description`, `info/exclude`) and gix's probe of the
/// file system's capabilities would be a dozen more files to write per
/// new remote, and nothing runs hooks or reads the rest in a fetch-only
/// cache.
fn init_bare(dir: &Path) -> std::io::Result<()> {
    for sub in ["objects/pack", "refs"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    fs::write(dir.join("HEAD"), "ref: refs/heads/main\n")?;
    fs::write(
        dir.join("config"),
        "[core]\n\trepositoryformatversion = 0\n\tbare = true\n\tlogallrefupdates = false\n",
    )
}

/// A failed [`transfer`], and whether a limit, the deadline or the
/// caller's interrupt stopped it: then a larger fetch would be stopped too,
/// so no fallback is tried.
struct TransferError {
    error: CodeError,
    stopped: bool,
}

impl From<TransferError> for CodeError {
    fn from(failed: TransferError) -> CodeError {
        failed.error
    }
}

/// Connects to `url`, lists the refs `refspecs` select (and `HEAD` when
/// `list_head`), then does `what`. Returns the listed refs. Fetching must
/// run under the entry lock.
///
/// Requests carry the deadline as their timeout; a remote that redirects is
/// tried again without (gix follows no redirect for such requests), then
/// bounded by the watched reads alone.
///
/// A listing is recorded in `session`, and a fetch replays it when it can
/// (see [`super::replay`]); one whose `ls-refs` the record cannot answer is
/// tried again talking to the server throughout. A listing starts from the
/// server's known capabilities when there are some; a transfer failing
/// after that is tried again with fresh ones.
#[allow(clippy::too_many_arguments)]
fn transfer(
    repo: &gix::Repository,
    access: &Arc<RemoteAccess>,
    opts: &GitOptions,
    session: &Session,
    refspecs: &[String],
    list_head: bool,
    what: Transfer,
) -> Result<RefSnapshot, TransferError> {
    let attempt = |request_timeouts: bool, replay: bool, known_capabilities: bool| {
        let watch = Watch::new(opts.interrupt.clone(), opts.limits);
        let listing = match what {
            Transfer::ListOnly => {
                session.listing.clear();
                let known = known_capabilities.then(|| CapabilitySource {
                    known: opts.capabilities.clone(),
                    whole_host: access.without_credentials(opts),
                });
                ListingUse::Record(Arc::clone(&session.listing), known)
            }
            Transfer::Fetch(_) if replay && session.listing.usable() => {
                ListingUse::Replay(Arc::clone(&session.listing))
            }
            Transfer::Fetch(_) => ListingUse::Off,
        };
        let result = transfer_once(
            repo,
            access,
            opts,
            session,
            listing,
            refspecs,
            list_head,
            &what,
            &watch,
            request_timeouts,
        );
        match &result {
            // A backend left mid-response is not used again.
            Err(_) => session.client.reset(),
            Ok(_) if matches!(what, Transfer::ListOnly) => {
                if session.client.redirected() {
                    session.listing.spoil();
                }
                if let Some((url, advertisement)) = session.listing.fetched_advertisement() {
                    opts.capabilities.remember(url, advertisement);
                }
            }
            Ok(_) => {}
        }
        result.map_err(|error| TransferError {
            error,
            stopped: watch.refusal().is_some() || watch.stopped().is_some(),
        })
    };
    let retried =
        |e: &TransferError, reason: &str| !e.stopped && e.error.to_string().contains(reason);
    let mut result = attempt(true, true, true);
    if let Err(e) = &result {
        if let Some(url) = session.listing.reused_advertisement() {
            // The server may have changed since it advertised: ask it (a
            // fetch then makes its own handshake rather than replay).
            opts.capabilities.forget(&url);
            if !e.stopped {
                tracing::debug!(remote = %access.url(), error = %e.error, "again with fresh capabilities");
                result = attempt(true, matches!(what, Transfer::ListOnly), false);
            }
        }
    }
    match result {
        Err(e) if retried(&e, REDIRECT_REFUSED) => {
            tracing::debug!(remote = %access.url(), "redirected: fetching without request timeouts");
            attempt(false, true, false)
        }
        Err(e) if retried(&e, REPLAY_REFUSED) => {
            tracing::debug!(remote = %access.url(), error = %e.error, "fetching without the recorded listing");
            attempt(true, false, false)
        }
        other => other,
    }
}

/// One attempt of [`transfer`], with or without per-request timeouts.
///
/// The transfer is watched (see [`super::transport`]): it stops at the
/// deadline or interrupt in `opts` and is refused once the remote sends more
/// than `opts.limits` allow. Nothing of a stopped transfer is kept: refs are
/// only written after a whole pack is stored, and gix removes a partly
/// written pack (a temporary file) when the transfer fails.
#[allow(clippy::too_many_arguments)]
fn transfer_once(
    repo: &gix::Repository,
    access: &Arc<RemoteAccess>,
    opts: &GitOptions,
    session: &Session,
    listing: ListingUse,
    refspecs: &[String],
    list_head: bool,
    what: &Transfer,
    watch: &Arc<Watch>,
    request_timeouts: bool,
) -> Result<RefSnapshot, CodeError> {
    let url = access.url();
    let shown = redact(url);
    let ssh_stderr = SshStderr::default();
    let fail = |what: &str, e: &dyn std::error::Error| {
        // A refusal or a deadline explains the failure better than the I/O
        // error gix reports for it, and must never read as "not found".
        if let Some(reason) = watch.refusal() {
            return CodeError::Other(format!("{shown}: {what}: {reason}"));
        }
        if let Some(stopped) = watch.stopped() {
            return CodeError::Other(format!("{shown}: {what}: stopped: {stopped}"));
        }
        let mut text = error_chain(e);
        if text.contains(OBJECT_TOO_LARGE) {
            let reason = watch.refuse_allocation(text.contains(PACK_INDEX_TOO_LARGE));
            return CodeError::Other(format!("{shown}: {what}: {reason}"));
        }
        let said = ssh_stderr.text();
        if !said.is_empty() {
            text.push_str(&format!(" (ssh: {said})"));
        }
        // A server answering 404 for the repository means there is no such
        // repository, which callers report differently from an outage; over
        // ssh, git-upload-pack says so on stderr. The text names the URL,
        // so a bare "404" could be a port or a path: only a status counts
        // ("Received HTTP status 404", or reqwest's "404 Not Found").
        if text.contains("status 404")
            || text.contains("not found")
            || text.contains("Not Found")
            || text.contains("does not appear to be a git repository")
        {
            CodeError::NotFound(format!("{shown}: {what}: {text}"))
        } else {
            CodeError::Other(format!("{shown}: {what}: {text}"))
        }
    };
    if let Err(e) = watch.check() {
        return Err(fail("connecting", &e));
    }
    let remote = repo
        .remote_at_without_url_rewrite(url)
        .map_err(|e| fail("invalid remote URL", &e))?
        .with_refspecs(refspecs.iter().map(String::as_str), Direction::Fetch)
        .map_err(|e| fail("refspecs", &e))?
        .with_fetch_tags(gix::remote::fetch::Tags::None);
    let (remote_url, version) = remote
        .sanitized_url_and_version(Direction::Fetch)
        .map_err(|e| fail("connecting", &e))?;
    let transport: Box<dyn gix::protocol::transport::client::blocking_io::Transport + Send> =
        match &**access {
            RemoteAccess::Http { extra_headers, .. } => {
                // gix's own reqwest backend, read through the watch.
                let http =
                    WatchedHttp::new(session.client.clone(), Arc::clone(watch), request_timeouts)
                        .with_extra_headers(extra_headers.clone())
                        .with_listing(listing);
                Box::new(
                    gix::protocol::transport::client::blocking_io::http::Transport::new_http(
                        http, remote_url, version, false,
                    ),
                )
            }
            RemoteAccess::Ssh {
                remote, program, ..
            } => Box::new(SshTransport::new(
                program.clone(),
                opts.spawn_env.clone(),
                remote.clone(),
                url,
                Arc::clone(watch),
                ssh_stderr.clone(),
            )),
        };
    let auth_opts = opts.clone();
    let auth_access = Arc::clone(access);
    let auth_listing = Arc::clone(&session.listing);
    let connection = remote
        .to_connection_with_transport(transport)
        // Only what the URL, netrc and the configured helpers supply (see
        // `RemoteAccess::account_for`); gix's own helper cascade, which
        // would read the cache entry's configuration, is never used.
        .with_credentials(move |action| match action {
            gix::credentials::helper::Action::Get(ctx) => {
                // A fetch replaying this listing would send no credentials.
                auth_listing.spoil();
                let asked = ctx.url.as_ref().map(|u| u.to_string());
                let account = auth_access.account_for(&auth_opts, asked.as_deref());
                Ok(account.map(|identity| gix::credentials::protocol::Outcome {
                    identity,
                    next: ctx.into(),
                }))
            }
            _ => Ok(None),
        });
    let mut extra_refspecs = Vec::new();
    if list_head {
        let head_spec = gix::refspec::parse("HEAD".into(), gix::refspec::parse::Operation::Fetch)
            .map_err(|e| fail("refspec", &e))?
            .to_owned();
        extra_refspecs.push(head_spec);
    }
    let prepare = phase!("git_list")
        .in_scope(|| {
            connection.prepare_fetch(
                WatchProgress::new(watch),
                gix::remote::ref_map::Options {
                    extra_refspecs,
                    ..Default::default()
                },
            )
        })
        .map_err(|e| fail("listing remote refs", &e))?;
    let snapshot = RefSnapshot::from_remote(&prepare.ref_map().remote_refs);
    watch
        .refs(snapshot.direct.len())
        .map_err(|reason| CodeError::Other(format!("{shown}: listing remote refs: {reason}")))?;
    if let Transfer::Fetch(shallow) = what {
        watch.start_fetch();
        phase!("git_receive")
            .in_scope(|| {
                prepare
                    .with_shallow(shallow.clone())
                    .receive(WatchProgress::new(watch), watch.stop_flag())
            })
            .map_err(|e| fail("fetching", &e))?;
    }
    Ok(snapshot)
}

/// Whether every advertised branch and tag already has the same value in the
/// cache (then the fetch would transfer nothing).
fn cache_matches(repo: &gix::Repository, snapshot: &RefSnapshot) -> bool {
    snapshot.direct.iter().all(|(name, id)| {
        matches!(
            repo.try_find_reference(name.as_str()),
            Ok(Some(r)) if r.target().try_id() == Some(id.as_ref())
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A remote listed over smart HTTP: its server, cache root and options.
    fn served_history(tmp: &Path) -> (fixtures::GitHttpServer, String) {
        let served = tmp.join("srv");
        let spec = fixtures::HistorySpec {
            module: "example.com/m".to_string(),
            files: 5,
            commits: 4,
            tag_every: 2,
            mean_file_bytes: 64,
        };
        fixtures::build_history(&served.join("m"), &spec).unwrap();
        let server = fixtures::GitHttpServer::start(served);
        let url = server.url("m");
        (server, url)
    }

    fn list(url: &str, cache: &Path, opts: &GitOptions) -> RefSnapshot {
        let access = RemoteAccess::new(url, &GitConfig::default(), opts).unwrap();
        let (_, snapshot, _) = open_listed(access, cache, opts).unwrap();
        snapshot
    }

    #[test]
    fn known_capabilities_spare_the_capability_request() {
        let tmp = tempfile::tempdir().unwrap();
        let (server, url) = served_history(tmp.path());
        let opts = GitOptions::default();
        let first = list(&url, &tmp.path().join("cache"), &opts);
        assert_eq!((server.requests(), server.ref_listings()), (2, 1));
        // Another handle, even of another cache, asks only for the refs.
        let second = list(&url, &tmp.path().join("other"), &opts);
        assert_eq!((server.requests(), server.ref_listings()), (3, 1));
        assert_eq!(first.tags, second.tags);
        assert!(!first.tags.is_empty());
        // Options not cloned from these share nothing.
        list(&url, &tmp.path().join("cache"), &GitOptions::default());
        assert_eq!((server.requests(), server.ref_listings()), (5, 2));
    }

    /// A second repository of the same host is listed with the
    /// capabilities the first one's server advertised: one request. Not so
    /// for a remote with credentials configured, nor for a repository the
    /// host does not have (its failed listing asks the server again, says
    /// "not found", and leaves the host's capabilities forgotten).
    #[test]
    fn known_capabilities_of_a_host_spare_a_new_repository_the_request() {
        let tmp = tempfile::tempdir().unwrap();
        let (server, url) = served_history(tmp.path());
        fixtures::build_history(
            &tmp.path().join("srv/n"),
            &fixtures::HistorySpec {
                module: "example.com/n".to_string(),
                files: 3,
                commits: 6,
                tag_every: 3,
                mean_file_bytes: 32,
            },
        )
        .unwrap();
        let n_url = server.url("n");
        let expected_n = list(&n_url, &tmp.path().join("probe"), &GitOptions::default());
        let opts = GitOptions::default();
        let counts = || (server.requests(), server.ref_listings());
        let (requests, listings) = counts();
        list(&url, &tmp.path().join("cache"), &opts);
        assert_eq!(counts(), (requests + 2, listings + 1));
        let n = list(&n_url, &tmp.path().join("cache"), &opts);
        assert_eq!(n.tags, expected_n.tags);
        assert_eq!(counts(), (requests + 3, listings + 1), "one request for n");

        // The same repository with a user in its URL: its own handshake.
        let with_user = n_url.replacen("http://", "http://someone:secret@", 1);
        let fresh = GitOptions::default();
        list(&url, &tmp.path().join("cache-2"), &fresh);
        let (requests, listings) = counts();
        let n = list(&with_user, &tmp.path().join("cache-2"), &fresh);
        assert_eq!(n.tags, expected_n.tags);
        assert_eq!(counts(), (requests + 2, listings + 1));

        // A repository the host lacks is "not found", as with a handshake.
        let missing = server.url("missing");
        let access = RemoteAccess::new(&missing, &GitConfig::default(), &opts).unwrap();
        let Err(err) = open_listed(access, &tmp.path().join("cache"), &opts) else {
            panic!("listed a repository the server does not have");
        };
        assert!(matches!(err, CodeError::NotFound(_)), "{err:?}");
        let info_refs = |u: &str| format!("{u}/info/refs?service=git-upload-pack");
        assert!(opts
            .capabilities
            .get_for_host(&info_refs(&missing))
            .is_none());
        // The next new repository of the host asks the server again.
        let (requests, listings) = counts();
        list(&n_url, &tmp.path().join("cache-3"), &opts);
        assert_eq!(counts(), (requests + 2, listings + 1));
    }

    /// HTTP backends are taken from a reserve shared by the options'
    /// clones, one per handle: a backend that followed a redirect (and so
    /// sends its later requests to the new place) never serves another
    /// handle.
    #[test]
    fn each_handle_gets_a_backend_of_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let (server, url) = served_history(tmp.path());
        let other = fixtures::HistorySpec {
            module: "example.com/n".to_string(),
            files: 3,
            commits: 6,
            tag_every: 3,
            mean_file_bytes: 32,
        };
        fixtures::build_history(&tmp.path().join("srv/n"), &other).unwrap();
        server.redirect("moved", "m");
        let opts = GitOptions::default();
        assert_eq!(opts.http_backends.spares(), 0);
        let expected_m = list(&url, &tmp.path().join("probe-m"), &GitOptions::default());
        let expected_n = list(
            &server.url("n"),
            &tmp.path().join("probe-n"),
            &GitOptions::default(),
        );
        assert_ne!(expected_m.tags, expected_n.tags);

        let moved = list(&server.url("moved"), &tmp.path().join("cache"), &opts);
        assert_eq!(moved.tags, expected_m.tags);
        assert!(opts.http_backends.spares() > 0);
        let n = list(&server.url("n"), &tmp.path().join("cache"), &opts);
        assert_eq!(n.tags, expected_n.tags);
    }

    #[test]
    fn a_listing_failing_on_known_capabilities_asks_the_server_again() {
        let tmp = tempfile::tempdir().unwrap();
        let (server, url) = served_history(tmp.path());
        let opts = GitOptions::default();
        let expected = list(&url, &tmp.path().join("probe"), &GitOptions::default());
        let requests = server.requests();
        // What the server advertised no longer holds (here: it no longer
        // even says it speaks the smart protocol).
        let info_refs = format!("{url}/info/refs?service=git-upload-pack");
        opts.capabilities.insert_for_test(
            &info_refs,
            b"content-type: text/plain\n".to_vec(),
            b"0000".to_vec(),
        );
        let got = list(&url, &tmp.path().join("cache"), &opts);
        assert_eq!(got.tags, expected.tags);
        assert_eq!(
            server.requests() - requests,
            2,
            "a fresh advertisement, then the refs"
        );
        // The fresh advertisement replaced the stale one.
        let known = opts.capabilities.get(&info_refs).unwrap();
        assert!(String::from_utf8_lossy(&known.headers).contains("git-upload-pack-advertisement"));
    }

    #[test]
    fn entry_names_are_hex_and_distinct() {
        let a = entry_name("https://example.com/a").unwrap();
        let b = entry_name("https://example.com/b").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 40);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn redact_removes_userinfo() {
        assert_eq!(
            redact("https://user:pw@example.com/r.git"),
            "https://example.com/r.git"
        );
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn lock_is_exclusive_between_handles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = EntryLock::acquire(&path).unwrap();
        let other = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        assert!(fs4::FileExt::try_lock(&other).is_err());
        drop(held);
        assert!(fs4::FileExt::try_lock(&other).is_ok());
    }

    #[test]
    fn a_new_entry_is_a_bare_repository_to_gix_and_git() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("entry");
        create_entry(&dir, tmp.path(), "entry").unwrap();
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["HEAD", "config", "objects", "refs"]);
        let repo = gix_open_options(&crate::git::GitLimits::default())
            .open(&dir)
            .unwrap()
            .to_thread_local();
        assert!(repo.is_bare());
        assert!(!has_refs(&repo));
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .arg("--git-dir")
                .arg(&dir)
                .args(args)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}: {out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(git(&["rev-parse", "--is-bare-repository"]).trim(), "true");
        // The layout takes objects and refs: a fetch into it is a normal one.
        let source = tmp.path().join("source");
        fixtures::build_history(
            &source,
            &fixtures::HistorySpec {
                module: "example.com/m".to_string(),
                files: 3,
                commits: 2,
                tag_every: 1,
                mean_file_bytes: 32,
            },
        )
        .unwrap();
        let source = source.display().to_string();
        git(&["fetch", "-q", &source, "+refs/tags/*:refs/tags/*"]);
        git(&["fsck", "--strict"]);
        let repo = gix_open_options(&crate::git::GitLimits::default())
            .open(&dir)
            .unwrap()
            .to_thread_local();
        assert!(has_refs(&repo));
    }
}
