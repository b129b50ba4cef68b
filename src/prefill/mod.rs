//! Pre-filling a store (`athens prefill`): every module version a build
//! needs offline is fetched through the server's own fetch, checksum
//! database and stash stack and stored, so that the proxy can then serve
//! it with the origins gone.
//!
//! What a build needs follows the go command's module graph rules
//! (`cmd/go/internal/modload`):
//!
//! - **A main module** (a go.mod): its requirements are the roots. At
//!   `go 1.17` or later the graph is *pruned*: the go.mod of each root is
//!   read, and the requirements of a dependency are followed further only
//!   when that dependency's own go.mod is below `go 1.17` (then its whole
//!   requirement graph is read). Below `go 1.17` (or without a `go` line)
//!   every go.mod of the transitive graph is read. The main module's
//!   `replace` directives decide where each version comes from (a module
//!   version, or a directory read in place), its `exclude` directives drop
//!   requirements on the excluded versions. A root whose selected version
//!   is higher than the one listed is raised to it, as `-mod=mod` does.
//! - **A workspace** (a go.work): every `use`d module is a main module; the
//!   requirements of each are read, then, as the go command does in
//!   workspace mode, the go.mod of every dependency selected above what a
//!   module of the graph requires, until nothing changes. `replace` in
//!   go.work wins over the modules' own.
//! - **Listed versions** (`module@version`, `module@all`): each version,
//!   and the go.mod files of its whole transitive requirement graph, which
//!   is what any module requiring it can need.
//!
//! Which versions need their zip, as `go mod download` without arguments
//! decides: at `go 1.17` or later the selected versions of the main
//! module's requirements; below, and in a workspace, every selected
//! version of the graph; the listed versions themselves. Every other
//! version of the graph is needed for its go.mod only. go.sum lines add
//! the versions they name (a zip line needs the zip, a `/go.mod` line the
//! go.mod): the go command has read them for this module.
//!
//! The store keeps a version whole (`.info`, `.mod` and zip together), as
//! Athens does, and serves `.mod` only for a stored version, so a version
//! needed for its go.mod is stored whole too; the distinction is reported
//! in the summary and decides which go.sum lines are checked.
//!
//! Every version is first looked up in storage: one already stored is not
//! fetched again (so an interrupted run resumes where it stopped; stores
//! are atomic per version), only checked against go.sum. A version that
//! does not match its go.sum lines is refused before it is stored.

pub mod gosum;
pub mod input;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use modzip::modfile::{self, ModFile};
use modzip::module::Version;

use crate::fetch::{FetchError, Fetcher};
use crate::stash::{StashError, Stasher};
use crate::storage::Storage;
use gosum::{GoSums, SumKind};

/// Where a module version's source comes from after `replace`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A module version, fetched and stored.
    Module(Version),
    /// A directory (absolute), read in place.
    Dir(PathBuf),
}

/// The `replace` directives of the main modules, directories made
/// absolute.
#[derive(Debug, Clone, Default)]
pub struct Replacements {
    /// From go.work; they win.
    pub work: HashMap<Version, Source>,
    /// From the main modules' go.mod files.
    pub modules: HashMap<Version, Source>,
}

impl Replacements {
    /// What replaces `m`, if anything: an exact `path version` directive
    /// before a `path` one, go.work's before the modules'.
    pub fn resolve(&self, m: &Version) -> Option<&Source> {
        let any = Version::new(m.path.clone(), "");
        self.work
            .get(m)
            .or_else(|| self.work.get(&any))
            .or_else(|| self.modules.get(m))
            .or_else(|| self.modules.get(&any))
    }
}

/// One main module of a plan.
#[derive(Debug, Clone)]
pub struct MainModule {
    /// Its module path.
    pub path: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Its go.mod.
    pub file: ModFile,
}

/// A version asked for by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    /// `module@query`: a canonical version or any query the fetcher
    /// resolves (`latest`, a branch, `v1.2`).
    Version(Version),
    /// `module@all`: every version the upstream lists.
    All(String),
}

/// What to pre-fill.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The main modules (one for a go.mod, the `use`d ones for a go.work).
    pub mains: Vec<MainModule>,
    /// Whether the main modules form a workspace (go.work).
    pub workspace: bool,
    /// Their `replace` directives.
    pub replace: Replacements,
    /// Their `exclude` directives.
    pub exclude: HashSet<Version>,
    /// Versions asked for by name.
    pub listed: Vec<Listed>,
    /// Whether the requirement graphs of listed versions are stored too.
    pub listed_deps: bool,
    /// The go.sum lines to check against and to store.
    pub sums: GoSums,
}

/// What happened to one module version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Fetched and stored now.
    Stored,
    /// Already stored: not fetched again.
    Present,
    /// Could not be fetched, stored, or used.
    Failed {
        /// A checksum mismatch (go.sum or the checksum database).
        mismatch: bool,
        /// Why.
        message: String,
    },
}

/// The outcome for one module version (or one name that could not be
/// resolved to versions, with the query as its version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Module path.
    pub module: String,
    /// Version (or the query that failed).
    pub version: String,
    /// What happened.
    pub outcome: Outcome,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = format!("{}@{}", self.module, self.version);
        match &self.outcome {
            Outcome::Stored => write!(f, "stored {at}"),
            Outcome::Present => write!(f, "present {at}"),
            Outcome::Failed {
                mismatch: true,
                message,
            } => write!(f, "mismatch {at}: {message}"),
            Outcome::Failed { message, .. } => write!(f, "failed {at}: {message}"),
        }
    }
}

/// Progress of a run, as it happens.
#[derive(Debug, Clone)]
pub enum Progress {
    /// One more module version to handle.
    Found,
    /// One handled.
    Done(Report),
}

/// Totals of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Versions needed with their zip.
    pub zips: usize,
    /// Versions needed for their go.mod only.
    pub go_mods: usize,
    /// Versions stored now.
    pub stored: usize,
    /// Versions that were already stored.
    pub present: usize,
    /// Failures (versions, or names that could not be resolved).
    pub failed: usize,
    /// Of those, checksum mismatches.
    pub mismatched: usize,
}

impl Summary {
    fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Stored => self.stored += 1,
            Outcome::Present => self.present += 1,
            Outcome::Failed { mismatch, .. } => {
                self.failed += 1;
                if *mismatch {
                    self.mismatched += 1;
                }
            }
        }
    }
}

/// Fills a store through a stash stack.
pub struct Prefiller {
    storage: Arc<dyn Storage>,
    stasher: Arc<dyn Stasher>,
    fetcher: Arc<dyn Fetcher>,
    sums: Arc<GoSums>,
    jobs: usize,
}

impl Prefiller {
    /// Stores into `storage` through `stasher`; resolves listed names with
    /// `fetcher`; checks versions already stored against `sums` (the
    /// stash stack must check what it fetches itself, see
    /// [`gosum::GoSumCheckingFetcher`]); handles up to `jobs` versions at
    /// once.
    pub fn new(
        storage: Arc<dyn Storage>,
        stasher: Arc<dyn Stasher>,
        fetcher: Arc<dyn Fetcher>,
        sums: Arc<GoSums>,
        jobs: usize,
    ) -> Self {
        Prefiller {
            storage,
            stasher,
            fetcher,
            sums,
            jobs: jobs.max(1),
        }
    }

    /// Pre-fills everything `plan` needs, calling `on_progress` as it
    /// goes, and returns the totals.
    pub async fn run(&self, plan: &Plan, mut on_progress: impl FnMut(Progress)) -> Summary {
        let mut summary = Summary::default();
        let report = |r: Report, summary: &mut Summary, on: &mut dyn FnMut(Progress)| {
            summary.add(&r.outcome);
            on(Progress::Done(r));
        };
        let mut stock = Stock::new(self);
        let mut needs: HashMap<Version, SumKind> = HashMap::new();
        let mut problems: Vec<Report> = Vec::new();

        if !plan.mains.is_empty() {
            let mut graph = Graph::for_mains(plan);
            graph.start(&mut stock, &mut on_progress);
            graph.settle(&mut stock, &mut on_progress).await;
            if plan.workspace {
                graph.workspace_closure(&mut stock, &mut on_progress).await;
            } else {
                graph.raise_roots(&mut stock, &mut on_progress).await;
            }
            for v in graph.go_mods_read() {
                needs.entry(v).or_insert(SumKind::GoMod);
            }
            for v in graph.zips_needed(plan) {
                needs.insert(v, SumKind::Zip);
            }
            problems.append(&mut graph.problems);
        }

        if !plan.listed.is_empty() {
            let mut roots = Vec::new();
            for listed in &plan.listed {
                match self.resolve_listed(listed).await {
                    Ok(versions) => roots.extend(versions),
                    Err(r) => {
                        on_progress(Progress::Found);
                        report(r, &mut summary, &mut on_progress);
                    }
                }
            }
            let mut graph = Graph::for_listed(roots.clone(), plan.listed_deps);
            graph.start(&mut stock, &mut on_progress);
            graph.settle(&mut stock, &mut on_progress).await;
            for v in graph.go_mods_read() {
                needs.entry(v).or_insert(SumKind::GoMod);
            }
            for v in roots {
                needs.insert(v, SumKind::Zip);
            }
            problems.append(&mut graph.problems);
        }

        for (v, kind) in plan.sums.versions() {
            let need = needs.entry(v).or_insert(kind);
            *need = (*need).max(kind);
        }
        let mut pending: Vec<&Version> = needs.keys().collect();
        pending.sort_by(|a, b| a.path.cmp(&b.path).then(a.version.cmp(&b.version)));
        for v in pending {
            stock.request(v.clone(), &mut on_progress);
        }
        while stock.next(&mut on_progress).await.is_some() {}

        for outcome in stock.outcomes.values() {
            summary.add(outcome);
        }
        for p in problems {
            on_progress(Progress::Found);
            report(p, &mut summary, &mut on_progress);
        }
        summary.zips = needs.values().filter(|k| **k == SumKind::Zip).count();
        summary.go_mods = needs.len() - summary.zips;
        summary
    }

    /// The canonical versions a listed name stands for.
    async fn resolve_listed(&self, listed: &Listed) -> Result<Vec<Version>, Report> {
        let failed = |module: &str, query: &str, e: FetchError| Report {
            module: module.to_string(),
            version: query.to_string(),
            outcome: Outcome::Failed {
                mismatch: false,
                message: e.to_string(),
            },
        };
        match listed {
            Listed::All(module) => {
                let mut versions = self
                    .fetcher
                    .list(module)
                    .await
                    .map_err(|e| failed(module, "all", e))?;
                versions.retain(|v| crate::fetch::is_canonical_version(v));
                modzip::semver::sort(&mut versions);
                versions.dedup();
                Ok(versions
                    .into_iter()
                    .map(|v| Version::new(module.clone(), v))
                    .collect())
            }
            Listed::Version(v) if crate::fetch::is_canonical_version(&v.version) => {
                Ok(vec![v.clone()])
            }
            Listed::Version(v) => {
                let info = self
                    .fetcher
                    .query(&v.path, &v.version)
                    .await
                    .map_err(|e| failed(&v.path, &v.version, e))?;
                Ok(vec![Version::new(v.path.clone(), info.version)])
            }
        }
    }

    /// Makes sure `v` is stored: looked up first, fetched and stored when
    /// missing. Returns the outcome and, when stored, its go.mod.
    async fn ensure(&self, v: &Version) -> (Outcome, Option<Bytes>) {
        let failed = |mismatch: bool, message: String| {
            (Outcome::Failed { mismatch, message }, None::<Bytes>)
        };
        let outcome = match self.storage.exists(&v.path, &v.version).await {
            Err(e) => return failed(false, e.to_string()),
            Ok(true) => {
                if self.sums.covers(&v.path, &v.version) {
                    match crate::sums::hash_stored(self.storage.as_ref(), &v.path, &v.version, None)
                        .await
                    {
                        Ok(sums) => {
                            if let Err(message) = self.sums.check(&v.path, &v.version, &sums) {
                                return failed(true, format!("the stored copy: {message}"));
                            }
                        }
                        Err(e) => return failed(false, format!("checking the stored copy: {e}")),
                    }
                }
                Outcome::Present
            }
            Ok(false) => match self.stasher.stash(&v.path, &v.version).await {
                Ok(resolved) if resolved == v.version => Outcome::Stored,
                Ok(resolved) => {
                    return failed(false, format!("resolved to another version, {resolved}"))
                }
                Err(e) => return failed(is_mismatch(&e), e.to_string()),
            },
        };
        match self.storage.go_mod(&v.path, &v.version).await {
            Ok(go_mod) => (outcome, Some(go_mod)),
            Err(e) => failed(false, format!("reading the stored go.mod: {e}")),
        }
    }
}

/// Whether a stash failed because the download did not match a checksum
/// (go.sum or the checksum database).
fn is_mismatch(e: &StashError) -> bool {
    matches!(
        e,
        StashError::Fetch(FetchError::Verification { status, .. }) if *status == gosum::MISMATCH_STATUS
    )
}

type Ensured = (Version, Outcome, Option<Bytes>);

/// The versions being stored, at most `jobs` at once, each once per run.
struct Stock<'p> {
    prefiller: &'p Prefiller,
    queue: VecDeque<Version>,
    requested: HashSet<Version>,
    in_flight: FuturesUnordered<BoxFuture<'p, Ensured>>,
    outcomes: HashMap<Version, Outcome>,
    go_mods: HashMap<Version, Bytes>,
}

impl<'p> Stock<'p> {
    fn new(prefiller: &'p Prefiller) -> Self {
        Stock {
            prefiller,
            queue: VecDeque::new(),
            requested: HashSet::new(),
            in_flight: FuturesUnordered::new(),
            outcomes: HashMap::new(),
            go_mods: HashMap::new(),
        }
    }

    /// Asks for `v` to be stored (once).
    fn request(&mut self, v: Version, on: &mut dyn FnMut(Progress)) {
        if self.requested.insert(v.clone()) {
            on(Progress::Found);
            self.queue.push_back(v);
        }
    }

    /// The result for `v` once it is known: its go.mod, or why not.
    fn result(&self, v: &Version) -> Option<Result<&Bytes, String>> {
        if let Some(go_mod) = self.go_mods.get(v) {
            return Some(Ok(go_mod));
        }
        match self.outcomes.get(v)? {
            Outcome::Failed { message, .. } => Some(Err(message.clone())),
            _ => None,
        }
    }

    /// Waits for the next version to be handled and returns it; `None`
    /// when nothing is queued or running.
    async fn next(&mut self, on: &mut dyn FnMut(Progress)) -> Option<Version> {
        while self.in_flight.len() < self.prefiller.jobs {
            let Some(v) = self.queue.pop_front() else {
                break;
            };
            let prefiller = self.prefiller;
            self.in_flight.push(Box::pin(async move {
                let (outcome, go_mod) = prefiller.ensure(&v).await;
                (v, outcome, go_mod)
            }));
        }
        let (v, outcome, go_mod) = self.in_flight.next().await?;
        if let Some(go_mod) = go_mod {
            self.go_mods.insert(v.clone(), go_mod);
        }
        on(Progress::Done(Report {
            module: v.path.clone(),
            version: v.version.clone(),
            outcome: outcome.clone(),
        }));
        self.outcomes.insert(v.clone(), outcome);
        Some(v)
    }
}

/// modload's `modPruning`: how far a version's requirements are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pruning {
    Pruned,
    Unpruned,
    Workspace,
}

/// The pruning a go.mod's `go` line implies: pruned from `go 1.17` on.
fn pruning_for(go: Option<&str>) -> Pruning {
    match go {
        // modzip::gover compares toolchain names (`go1.17`).
        Some(v) if modzip::gover::compare(&format!("go{v}"), "go1.17").is_ge() => Pruning::Pruned,
        _ => Pruning::Unpruned,
    }
}

/// What the graph keeps of one go.mod.
#[derive(Debug, Clone)]
struct ModSummary {
    pruning: Pruning,
    require: Vec<Version>,
}

/// The go and toolchain "modules" stand for the toolchain; they are never
/// downloaded from a module proxy by a build.
fn is_toolchain(path: &str) -> bool {
    path == "go" || path == "toolchain"
}

/// modload's version order: the main module ("") above everything,
/// `none` below.
fn compare_versions(v1: &str, v2: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (v1.is_empty(), v2.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => match (v1 == "none", v2 == "none") {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => modzip::semver::compare(v1, v2),
        },
    }
}

/// One module graph being read, as modload's `readModGraph` reads it, with
/// each go.mod taken from the store after storing its version.
struct Graph<'p> {
    /// Replacements and exclusions apply (a main module's graph).
    plan: Option<&'p Plan>,
    /// The roots and the pruning they are read with.
    roots: Vec<Version>,
    root_pruning: Pruning,
    /// modload's `mvs.Graph`: requirements read, and selected versions.
    required: HashMap<Version, Vec<Version>>,
    selected: HashMap<String, String>,
    /// (version, pruning) pairs enqueued.
    loading: HashSet<(Version, Pruning)>,
    /// The summary of each version read (or why it could not be).
    summaries: HashMap<Version, Result<ModSummary, ()>>,
    /// Prunings to expand a version with once its summary is known.
    parked: HashMap<Version, Vec<Pruning>>,
    /// Graph versions waiting for a stored version's go.mod.
    waiting: HashMap<Version, Vec<Version>>,
    /// Versions whose go.mod was read from the store.
    read_from_store: HashSet<Version>,
    /// Failures that are not a version's storing.
    problems: Vec<Report>,
}

impl<'p> Graph<'p> {
    fn empty(plan: Option<&'p Plan>, roots: Vec<Version>, root_pruning: Pruning) -> Self {
        Graph {
            plan,
            roots,
            root_pruning,
            required: HashMap::new(),
            selected: HashMap::new(),
            loading: HashSet::new(),
            summaries: HashMap::new(),
            parked: HashMap::new(),
            waiting: HashMap::new(),
            read_from_store: HashSet::new(),
            problems: Vec::new(),
        }
    }

    /// The graph of the plan's main modules.
    fn for_mains(plan: &'p Plan) -> Self {
        if plan.workspace {
            let roots = plan
                .mains
                .iter()
                .map(|m| Version::new(m.path.clone(), ""))
                .collect();
            let mut graph = Graph::empty(Some(plan), roots, Pruning::Workspace);
            for m in &plan.mains {
                graph.select(&Version::new(m.path.clone(), ""));
            }
            graph
        } else {
            let main = &plan.mains[0];
            let roots: Vec<Version> = main
                .file
                .require
                .iter()
                .filter(|r| !plan.exclude.contains(r))
                .cloned()
                .collect();
            let pruning = pruning_for(main.file.go.as_deref());
            let mut graph = Graph::empty(Some(plan), roots.clone(), pruning);
            let main_version = Version::new(main.path.clone(), "");
            graph.select(&main_version);
            graph.record(main_version, roots);
            graph
        }
    }

    /// The graph of listed versions: each read with its whole transitive
    /// requirement graph when `deps`, alone otherwise.
    fn for_listed(roots: Vec<Version>, deps: bool) -> Self {
        let mut graph = Graph::empty(None, roots, Pruning::Unpruned);
        if !deps {
            // Only the listed versions: nothing to read.
            graph.roots.clear();
        }
        graph
    }

    fn select(&mut self, v: &Version) {
        let current = self.selected(&v.path);
        if compare_versions(&current, &v.version).is_lt() {
            self.selected.insert(v.path.clone(), v.version.clone());
        }
    }

    fn selected(&self, path: &str) -> String {
        self.selected
            .get(path)
            .cloned()
            .unwrap_or_else(|| "none".to_string())
    }

    fn record(&mut self, m: Version, require: Vec<Version>) {
        for r in &require {
            self.select(r);
        }
        self.required.insert(m, require);
    }

    fn start(&mut self, stock: &mut Stock<'_>, on: &mut dyn FnMut(Progress)) {
        for r in self.roots.clone() {
            self.enqueue(r, self.root_pruning, stock, on);
        }
    }

    /// Reads go.mod files until nothing more is waiting.
    async fn settle(&mut self, stock: &mut Stock<'_>, on: &mut dyn FnMut(Progress)) {
        while let Some(done) = stock.next(on).await {
            let nodes = self.waiting.remove(&done).unwrap_or_default();
            for m in nodes {
                let summary = self.summarize_stored(&m, &done, stock);
                self.finish(m, summary, stock, on);
            }
        }
    }

    fn enqueue(
        &mut self,
        m: Version,
        pruning: Pruning,
        stock: &mut Stock<'_>,
        on: &mut dyn FnMut(Progress),
    ) {
        if m.version == "none" || is_toolchain(&m.path) {
            return;
        }
        if !self.loading.insert((m.clone(), pruning)) {
            return;
        }
        if let Some(summary) = self.summaries.get(&m) {
            if let Ok(summary) = summary.clone() {
                self.expand(&m, pruning, &summary, stock, on);
            }
            return;
        }
        let parked = self.parked.entry(m.clone()).or_default();
        parked.push(pruning);
        if parked.len() == 1 {
            self.load(m, stock, on);
        }
    }

    /// Starts reading the go.mod of graph version `m`.
    fn load(&mut self, m: Version, stock: &mut Stock<'_>, on: &mut dyn FnMut(Progress)) {
        if m.version.is_empty() {
            // A workspace module: its go.mod is at hand.
            let main = self
                .plan
                .and_then(|p| p.mains.iter().find(|main| main.path == m.path));
            let summary = match main {
                Some(main) => Ok(self.summary_of(&main.file)),
                None => {
                    self.problem(&m, "no such main module".into());
                    Err(())
                }
            };
            self.finish(m, summary, stock, on);
            return;
        }
        let source = self
            .plan
            .and_then(|p| p.replace.resolve(&m))
            .cloned()
            .unwrap_or_else(|| Source::Module(m.clone()));
        match source {
            Source::Dir(dir) => {
                let summary = self.summarize_dir(&m, &dir);
                self.finish(m, summary, stock, on);
            }
            Source::Module(actual) => {
                if stock.result(&actual).is_some() {
                    let summary = self.summarize_stored(&m, &actual, stock);
                    self.finish(m, summary, stock, on);
                } else {
                    self.waiting.entry(actual.clone()).or_default().push(m);
                    stock.request(actual, on);
                }
            }
        }
    }

    fn problem(&mut self, m: &Version, message: String) {
        self.problems.push(Report {
            module: m.path.clone(),
            version: m.version.clone(),
            outcome: Outcome::Failed {
                mismatch: false,
                message,
            },
        });
    }

    /// The summary of a go.mod, with the main modules' exclusions applied.
    fn summary_of(&self, file: &ModFile) -> ModSummary {
        let require = file
            .require
            .iter()
            .filter(|r| self.plan.is_none_or(|p| !p.exclude.contains(r)))
            .cloned()
            .collect();
        ModSummary {
            pruning: pruning_for(file.go.as_deref()),
            require,
        }
    }

    /// The summary of graph version `m`, whose source `actual` was stored.
    fn summarize_stored(
        &mut self,
        m: &Version,
        actual: &Version,
        stock: &Stock<'_>,
    ) -> Result<ModSummary, ()> {
        // A version that could not be stored is reported by the stock.
        let Some(Ok(go_mod)) = stock.result(actual) else {
            return Err(());
        };
        let parsed = modfile::parse_dependency_mod(go_mod);
        self.read_from_store.insert(actual.clone());
        let file = match parsed {
            Ok(file) => file,
            Err(e) => {
                self.problem(actual, format!("parsing go.mod: {e}"));
                return Err(());
            }
        };
        match file.module.as_deref() {
            None => {
                self.problem(actual, "parsing go.mod: missing module line".into());
                Err(())
            }
            Some(path) if path != m.path && path != actual.path => {
                self.problem(
                    actual,
                    format!(
                        "parsing go.mod: module declares its path as {path} but was required as {}",
                        m.path
                    ),
                );
                Err(())
            }
            Some(_) => Ok(self.summary_of(&file)),
        }
    }

    /// The summary of graph version `m`, replaced by directory `dir`.
    fn summarize_dir(&mut self, m: &Version, dir: &std::path::Path) -> Result<ModSummary, ()> {
        let path = dir.join("go.mod");
        let parsed = std::fs::read(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))
            .and_then(|data| {
                modfile::parse_dependency_mod(&data)
                    .map_err(|e| format!("parsing {}: {e}", path.display()))
            });
        match parsed {
            Ok(file) => Ok(self.summary_of(&file)),
            Err(message) => {
                self.problem(m, format!("replacement directory: {message}"));
                Err(())
            }
        }
    }

    fn finish(
        &mut self,
        m: Version,
        summary: Result<ModSummary, ()>,
        stock: &mut Stock<'_>,
        on: &mut dyn FnMut(Progress),
    ) {
        self.summaries.insert(m.clone(), summary.clone());
        let prunings = self.parked.remove(&m).unwrap_or_default();
        let Ok(summary) = summary else {
            return;
        };
        self.record(m.clone(), summary.require.clone());
        for pruning in prunings {
            self.expand(&m, pruning, &summary, stock, on);
        }
    }

    /// modload's `enqueue` loop body: which requirements are read next.
    fn expand(
        &mut self,
        m: &Version,
        pruning: Pruning,
        summary: &ModSummary,
        stock: &mut Stock<'_>,
        on: &mut dyn FnMut(Progress),
    ) {
        let _ = m;
        let next = if pruning == Pruning::Unpruned {
            Pruning::Unpruned
        } else {
            summary.pruning
        };
        for r in &summary.require {
            if pruning != Pruning::Pruned || summary.pruning == Pruning::Unpruned {
                self.enqueue(r.clone(), next, stock, on);
            }
        }
    }

    /// Workspace mode: reads the go.mod of every dependency selected
    /// above what a module whose dependencies matter requires, until
    /// nothing changes (modload's `hasDepsInAll` loop).
    async fn workspace_closure(&mut self, stock: &mut Stock<'_>, on: &mut dyn FnMut(Progress)) {
        let mut has_deps: HashSet<String> = self.roots.iter().map(|r| r.path.clone()).collect();
        let mut seen: HashSet<Version> = HashSet::new();
        loop {
            let mut needs: Vec<Version> = Vec::new();
            let mut paths: Vec<&String> = has_deps.iter().collect();
            paths.sort();
            for p in paths {
                let m = Version::new(p.clone(), self.selected(p));
                if !seen.contains(&m) {
                    needs.push(m);
                    continue;
                }
                for r in self.required.get(&m).into_iter().flatten() {
                    let s = Version::new(r.path.clone(), self.selected(&r.path));
                    if compare_versions(&s.version, &r.version).is_gt() && !seen.contains(&s) {
                        needs.push(s);
                    }
                }
            }
            needs.sort_by(|a, b| a.path.cmp(&b.path).then(a.version.cmp(&b.version)));
            needs.dedup();
            if needs.is_empty() {
                return;
            }
            for m in needs {
                seen.insert(m.clone());
                has_deps.insert(m.path.clone());
                self.enqueue(m, Pruning::Workspace, stock, on);
            }
            self.settle(stock, on).await;
        }
    }

    /// A pruned main module's roots are raised to their selected
    /// versions, whose go.mod is then read too (what the go command does
    /// with `-mod=mod` to a go.mod that is not tidy), until nothing
    /// changes. An unpruned graph has read every go.mod already.
    async fn raise_roots(&mut self, stock: &mut Stock<'_>, on: &mut dyn FnMut(Progress)) {
        if self.root_pruning != Pruning::Pruned {
            return;
        }
        loop {
            let mut raised = Vec::new();
            for r in &self.roots {
                let s = Version::new(r.path.clone(), self.selected(&r.path));
                if s.version.is_empty() || s.version == "none" {
                    continue;
                }
                if !self.roots.contains(&s) && !raised.contains(&s) {
                    raised.push(s);
                }
            }
            if raised.is_empty() {
                return;
            }
            for s in raised {
                self.roots.push(s.clone());
                self.enqueue(s, Pruning::Pruned, stock, on);
            }
            self.settle(stock, on).await;
        }
    }

    /// The stored versions whose go.mod the graph read.
    fn go_mods_read(&self) -> Vec<Version> {
        let mut read: Vec<Version> = self.read_from_store.iter().cloned().collect();
        read.sort_by(|a, b| a.path.cmp(&b.path).then(a.version.cmp(&b.version)));
        read
    }

    /// The versions `go mod download` without arguments downloads the zip
    /// of (see the module documentation), replaced as the main modules
    /// say; directories are not downloaded.
    fn zips_needed(&self, plan: &Plan) -> Vec<Version> {
        let main_paths: HashSet<&str> = plan.mains.iter().map(|m| m.path.as_str()).collect();
        let paths: Vec<String> = if !plan.workspace && self.root_pruning == Pruning::Pruned {
            plan.mains[0]
                .file
                .require
                .iter()
                .map(|r| r.path.clone())
                .collect()
        } else if !plan.workspace && plan.mains[0].file.require.is_empty() {
            Vec::new()
        } else {
            self.selected.keys().cloned().collect()
        };
        let mut zips: Vec<Version> = Vec::new();
        for path in paths {
            if main_paths.contains(path.as_str()) || is_toolchain(&path) {
                continue;
            }
            let selected = Version::new(path.clone(), self.selected(&path));
            if selected.version.is_empty() || selected.version == "none" {
                continue;
            }
            match plan.replace.resolve(&selected) {
                Some(Source::Dir(_)) => {}
                Some(Source::Module(actual)) => zips.push(actual.clone()),
                None => zips.push(selected),
            }
        }
        zips.sort_by(|a, b| a.path.cmp(&b.path).then(a.version.cmp(&b.version)));
        zips.dedup();
        zips
    }
}

#[cfg(test)]
mod tests;
