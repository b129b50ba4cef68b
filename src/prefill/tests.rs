//! The module graph rules and the store behaviour of [`Prefiller`] over a
//! fake upstream, the real stash and memory storage.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::gosum::GoSumCheckingFetcher;
use super::*;
use crate::fetch::{FetchedModule, FetchedZip, RevInfo};
use crate::stash::BaseStasher;
use crate::storage::MemoryStorage;
use crate::sums::VersionSums;

/// Modules upstream: `path@version` → go.mod text; counts fetches.
#[derive(Default)]
struct Upstream {
    modules: BTreeMap<(String, String), String>,
    fetched: Mutex<Vec<String>>,
}

impl Upstream {
    fn with(mut self, path: &str, version: &str, go_mod: &str) -> Self {
        self.modules
            .insert((path.into(), version.into()), go_mod.into());
        self
    }

    fn zip(path: &str, version: &str, go_mod: &str) -> Vec<u8> {
        let files = [
            modzip::zip::MemFile::new("go.mod", go_mod.as_bytes()),
            modzip::zip::MemFile::new("x.go", format!("package x // {path}@{version}\n")),
        ];
        modzip::zip::create(
            std::io::Cursor::new(Vec::new()),
            &Version::new(path, version),
            &files,
        )
        .unwrap()
        .into_inner()
    }

    /// The go.sum lines of a version as upstream serves it.
    fn sums(&self, path: &str, version: &str) -> VersionSums {
        let go_mod = &self.modules[&(path.to_string(), version.to_string())];
        VersionSums {
            zip: modzip::dirhash::hash_zip(std::io::Cursor::new(Upstream::zip(
                path, version, go_mod,
            )))
            .unwrap(),
            go_mod: modzip::dirhash::hash_go_mod(go_mod.as_bytes()),
        }
    }

    fn fetched(&self) -> Vec<String> {
        let mut list = self.fetched.lock().unwrap().clone();
        list.sort();
        list
    }
}

#[async_trait]
impl Fetcher for Upstream {
    async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError> {
        let Some(go_mod) = self.modules.get(&(module.to_string(), version.to_string())) else {
            return Err(FetchError::not_found(module, version, "unknown"));
        };
        self.fetched
            .lock()
            .unwrap()
            .push(format!("{module}@{version}"));
        Ok(FetchedModule {
            version: version.to_string(),
            info: Bytes::from(format!(
                "{{\"Version\":\"{version}\",\"Time\":\"2020-01-01T00:00:00Z\"}}"
            )),
            go_mod: Bytes::from(go_mod.clone()),
            zip: FetchedZip::from_bytes(&Upstream::zip(module, version, go_mod), None).unwrap(),
        })
    }

    async fn list(&self, module: &str) -> Result<Vec<String>, FetchError> {
        let versions: Vec<String> = self
            .modules
            .keys()
            .filter(|(p, _)| p == module)
            .map(|(_, v)| v.clone())
            .collect();
        if versions.is_empty() {
            return Err(FetchError::not_found(module, "", "unknown"));
        }
        Ok(versions)
    }

    async fn latest(&self, module: &str) -> Result<RevInfo, FetchError> {
        Err(FetchError::not_found(module, "latest", "unused"))
    }

    async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
        // "v1" stands for the highest v1.
        let best = self
            .modules
            .keys()
            .filter(|(p, v)| p == module && v.starts_with(&format!("{rev}.")))
            .map(|(_, v)| v.clone())
            .max_by(|a, b| modzip::semver::compare(a, b))
            .ok_or_else(|| FetchError::not_found(module, rev, "no such version"))?;
        Ok(RevInfo {
            version: best,
            time: "2020-01-01T00:00:00Z".into(),
            origin: None,
        })
    }
}

struct Setup {
    upstream: Arc<Upstream>,
    storage: Arc<MemoryStorage>,
}

impl Setup {
    fn new(upstream: Upstream) -> Self {
        Setup {
            upstream: Arc::new(upstream),
            storage: Arc::new(MemoryStorage::new()),
        }
    }

    async fn run(&self, plan: &Plan) -> (Summary, Vec<Report>) {
        let sums = Arc::new(plan.sums.clone());
        let fetcher: Arc<dyn Fetcher> = self.upstream.clone();
        let checked: Arc<dyn Fetcher> = Arc::new(GoSumCheckingFetcher::new(
            Arc::clone(&fetcher),
            Arc::clone(&sums),
        ));
        let storage: Arc<dyn Storage> = self.storage.clone();
        let stasher = Arc::new(BaseStasher::new(
            checked,
            Arc::clone(&storage),
            Duration::from_secs(60),
        ));
        let prefiller = Prefiller::new(storage, stasher, fetcher, sums, 3);
        let mut reports = Vec::new();
        let mut found = 0usize;
        let summary = prefiller
            .run(plan, |p| match p {
                Progress::Found => found += 1,
                Progress::Done(r) => reports.push(r),
            })
            .await;
        assert_eq!(found, reports.len(), "every version found is reported once");
        reports.sort_by(|a, b| (&a.module, &a.version).cmp(&(&b.module, &b.version)));
        (summary, reports)
    }

    async fn stored(&self) -> BTreeSet<String> {
        let page = self.storage.catalog("", 0).await.unwrap();
        page.entries
            .into_iter()
            .map(|e| format!("{}@{}", e.module, e.version))
            .collect()
    }
}

fn main_plan(go_mod: &str) -> Plan {
    let file = modfile::parse_main_mod(go_mod.as_bytes()).unwrap();
    let mut plan = Plan::default();
    for r in &file.replace {
        let source = match &r.new {
            modfile::Replacement::Module(v) => Source::Module(v.clone()),
            modfile::Replacement::Dir(d) => Source::Dir(PathBuf::from(d)),
        };
        plan.replace.modules.insert(r.old.clone(), source);
    }
    plan.exclude.extend(file.exclude.iter().cloned());
    plan.mains.push(MainModule {
        path: file.module.clone().unwrap(),
        dir: PathBuf::from("/nonexistent"),
        file,
    });
    plan
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// a (pruned) requires c, which is never read; b (unpruned) pulls in its
/// whole graph: d, and through it e and f even though d is pruned.
fn graph_upstream() -> Upstream {
    Upstream::default()
        .with(
            "m.com/a",
            "v1.0.0",
            "module m.com/a\ngo 1.21\nrequire m.com/c v1.0.0\n",
        )
        .with(
            "m.com/b",
            "v1.0.0",
            "module m.com/b\ngo 1.16\nrequire m.com/d v1.0.0\n",
        )
        .with("m.com/c", "v1.0.0", "module m.com/c\ngo 1.21\n")
        .with(
            "m.com/d",
            "v1.0.0",
            "module m.com/d\ngo 1.21\nrequire m.com/e v1.0.0\n",
        )
        .with(
            "m.com/e",
            "v1.0.0",
            "module m.com/e\nrequire m.com/f v1.0.0\n",
        )
        .with("m.com/f", "v1.0.0", "module m.com/f\ngo 1.22\n")
}

#[tokio::test]
async fn pruned_main_module_reads_what_the_go_command_reads() {
    let setup = Setup::new(graph_upstream());
    let plan =
        main_plan("module app.com/x\ngo 1.21\nrequire (\n\tm.com/a v1.0.0\n\tm.com/b v1.0.0\n)\n");
    let (summary, reports) = setup.run(&plan).await;
    let want = set(&[
        "m.com/a@v1.0.0",
        "m.com/b@v1.0.0",
        "m.com/d@v1.0.0",
        "m.com/e@v1.0.0",
        "m.com/f@v1.0.0",
    ]);
    assert_eq!(setup.stored().await, want);
    assert_eq!(
        setup.upstream.fetched(),
        want.iter().cloned().collect::<Vec<_>>()
    );
    assert!(
        reports.iter().all(|r| r.outcome == Outcome::Stored),
        "{reports:?}"
    );
    // Zips of the main module's requirements; go.mod only for the rest.
    assert_eq!(
        summary,
        Summary {
            zips: 2,
            go_mods: 3,
            stored: 5,
            ..Summary::default()
        }
    );
}

#[tokio::test]
async fn unpruned_main_module_reads_and_needs_the_whole_graph() {
    let setup = Setup::new(graph_upstream());
    let plan =
        main_plan("module app.com/x\ngo 1.16\nrequire (\n\tm.com/a v1.0.0\n\tm.com/b v1.0.0\n)\n");
    let (summary, _) = setup.run(&plan).await;
    assert_eq!(setup.stored().await.len(), 6, "{:?}", setup.stored().await);
    assert_eq!((summary.zips, summary.go_mods, summary.stored), (6, 0, 6));
}

#[tokio::test]
async fn replacements_exclusions_and_raised_roots() {
    let local = tempfile::tempdir().unwrap();
    std::fs::write(
        local.path().join("go.mod"),
        "module m.com/b\ngo 1.21\nrequire m.com/g v1.0.0\n",
    )
    .unwrap();
    let upstream = graph_upstream()
        .with(
            "m.com/fork",
            "v1.0.0",
            "module m.com/fork\ngo 1.21\nrequire m.com/h v1.0.0\n",
        )
        .with("m.com/h", "v1.0.0", "module m.com/h\ngo 1.21\n")
        .with("m.com/h", "v1.1.0", "module m.com/h\ngo 1.21\n")
        .with(
            "m.com/g",
            "v1.0.0",
            "module m.com/g\ngo 1.21\nrequire m.com/h v1.1.0\n",
        )
        .with("m.com/g", "v0.9.0", "module m.com/g\ngo 1.21\n");
    let setup = Setup::new(upstream);
    let plan = main_plan(&format!(
        "module app.com/x\ngo 1.21\nrequire (\n\tm.com/a v1.0.0\n\tm.com/b v1.0.0\n\tm.com/g v0.9.0\n\tm.com/h v1.0.0\n\tm.com/c v0.5.0\n)\n\
         replace m.com/a v1.0.0 => m.com/fork v1.0.0\nreplace m.com/b => {}\nexclude m.com/c v0.5.0\n",
        local.path().display()
    ));
    let (summary, reports) = setup.run(&plan).await;
    // a comes from the fork; b from the directory (nothing fetched), whose
    // requirement raises g to v1.0.0, which raises h to v1.1.0; c v0.5.0
    // is excluded.
    assert_eq!(
        setup.stored().await,
        set(&[
            "m.com/fork@v1.0.0",
            "m.com/g@v0.9.0",
            "m.com/g@v1.0.0",
            "m.com/h@v1.0.0",
            "m.com/h@v1.1.0",
        ]),
        "{reports:?}"
    );
    // Zips: fork, g v1.0.0 and h v1.1.0 (selected); go.mod only: g v0.9.0,
    // h v1.0.0.
    assert_eq!((summary.zips, summary.go_mods), (3, 2), "{summary:?}");
    assert_eq!(summary.failed, 0, "{reports:?}");
}

#[tokio::test]
async fn workspace_reads_dependencies_selected_above_their_requirement() {
    let upstream = graph_upstream()
        .with(
            "m.com/a",
            "v1.1.0",
            "module m.com/a\ngo 1.21\nrequire m.com/h v1.0.0\n",
        )
        .with("m.com/h", "v1.0.0", "module m.com/h\ngo 1.21\n")
        .with(
            "m.com/k",
            "v1.0.0",
            "module m.com/k\ngo 1.21\nrequire m.com/a v1.1.0\n",
        );
    let setup = Setup::new(upstream);
    let w1 =
        modfile::parse_main_mod(b"module w.com/one\ngo 1.22\nrequire m.com/a v1.0.0\n").unwrap();
    let w2 =
        modfile::parse_main_mod(b"module w.com/two\ngo 1.22\nrequire m.com/k v1.0.0\n").unwrap();
    let plan = Plan {
        mains: vec![
            MainModule {
                path: "w.com/one".into(),
                dir: PathBuf::from("/nonexistent/one"),
                file: w1,
            },
            MainModule {
                path: "w.com/two".into(),
                dir: PathBuf::from("/nonexistent/two"),
                file: w2,
            },
        ],
        workspace: true,
        ..Plan::default()
    };
    let (summary, reports) = setup.run(&plan).await;
    // a v1.1.0 is only a requirement of pruned k, but it is selected above
    // one's a v1.0.0, so the workspace reads it, and its requirement h.
    assert_eq!(
        setup.stored().await,
        set(&[
            "m.com/a@v1.0.0",
            "m.com/a@v1.1.0",
            "m.com/c@v1.0.0",
            "m.com/h@v1.0.0",
            "m.com/k@v1.0.0"
        ]),
        "{reports:?}"
    );
    // Zips of the whole build list: a v1.1.0, c v1.0.0 (a requirement of
    // a v1.0.0 whose go.mod is never read), h, k; a v1.0.0 for its go.mod.
    assert_eq!((summary.zips, summary.go_mods), (4, 1), "{summary:?}");
}

#[tokio::test]
async fn go_sum_mismatch_stores_nothing_and_is_reported() {
    let setup = Setup::new(graph_upstream());
    let mut plan =
        main_plan("module app.com/x\ngo 1.21\nrequire (\n\tm.com/a v1.0.0\n\tm.com/b v1.0.0\n)\n");
    let a = setup.upstream.sums("m.com/a", "v1.0.0");
    let b = setup.upstream.sums("m.com/b", "v1.0.0");
    plan.sums
        .add_text(
            "go.sum",
            &format!(
                "m.com/a v1.0.0 {}\nm.com/a v1.0.0/go.mod {}\nm.com/b v1.0.0 {}\nm.com/b v1.0.0/go.mod {}\n",
                a.zip, a.go_mod, a.zip, b.go_mod
            ),
        )
        .unwrap();
    let (summary, reports) = setup.run(&plan).await;
    let b_report = reports.iter().find(|r| r.module == "m.com/b").unwrap();
    assert!(
        matches!(&b_report.outcome, Outcome::Failed { mismatch: true, message } if message.contains("checksum mismatch")),
        "{b_report:?}"
    );
    // b is not stored, and its requirements were never read.
    assert_eq!(setup.stored().await, set(&["m.com/a@v1.0.0"]));
    assert_eq!(
        (summary.failed, summary.mismatched, summary.stored),
        (1, 1, 1)
    );

    // A stored copy that differs from go.sum is reported too.
    let mut other = main_plan("module app.com/x\ngo 1.21\nrequire m.com/a v1.0.0\n");
    other
        .sums
        .add_text("go.sum", &format!("m.com/a v1.0.0 {}\n", b.zip))
        .unwrap();
    let (summary, reports) = setup.run(&other).await;
    assert_eq!(summary.mismatched, 1, "{reports:?}");
    assert!(reports[0]
        .to_string()
        .starts_with("mismatch m.com/a@v1.0.0: the stored copy"));
}

#[tokio::test]
async fn a_second_run_fetches_nothing_again() {
    let setup = Setup::new(graph_upstream());
    let plan =
        main_plan("module app.com/x\ngo 1.21\nrequire (\n\tm.com/a v1.0.0\n\tm.com/b v1.0.0\n)\n");
    // An interrupted first run stored only part of it.
    let partial = main_plan("module app.com/x\ngo 1.21\nrequire m.com/b v1.0.0\n");
    setup.run(&partial).await;
    let first = setup.upstream.fetched();
    assert_eq!(first.len(), 4, "{first:?}");
    let (summary, _) = setup.run(&plan).await;
    assert_eq!((summary.present, summary.stored), (4, 1));
    let (summary, _) = setup.run(&plan).await;
    assert_eq!((summary.present, summary.stored, summary.failed), (5, 0, 0));
    assert_eq!(setup.upstream.fetched().len(), 5);
}

#[tokio::test]
async fn listed_versions_with_and_without_their_graph() {
    let setup = Setup::new(graph_upstream().with("m.com/d", "v1.1.0", "module m.com/d\ngo 1.21\n"));
    let plan = Plan {
        listed: vec![
            Listed::All("m.com/d".into()),
            Listed::Version(Version::new("m.com/a", "v1")),
            Listed::Version(Version::new("m.com/nope", "v1.0.0")),
            Listed::All("m.com/gone".into()),
        ],
        listed_deps: true,
        ..Plan::default()
    };
    let (summary, reports) = setup.run(&plan).await;
    // d v1.0.0's whole graph (e, f) and a's (c); both d versions.
    assert_eq!(
        setup.stored().await,
        set(&[
            "m.com/a@v1.0.0",
            "m.com/c@v1.0.0",
            "m.com/d@v1.0.0",
            "m.com/d@v1.1.0",
            "m.com/e@v1.0.0",
            "m.com/f@v1.0.0",
        ])
    );
    assert_eq!((summary.zips, summary.go_mods), (4, 3), "{summary:?}");
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed { .. }))
        .map(|r| format!("{}@{}", r.module, r.version))
        .collect();
    assert_eq!(failed, ["m.com/gone@all", "m.com/nope@v1.0.0"]);
    assert_eq!(summary.failed, 2);

    let alone = Setup::new(graph_upstream());
    let plan = Plan {
        listed: vec![Listed::Version(Version::new("m.com/b", "v1.0.0"))],
        listed_deps: false,
        ..Plan::default()
    };
    alone.run(&plan).await;
    assert_eq!(alone.stored().await, set(&["m.com/b@v1.0.0"]));
}

#[tokio::test]
async fn go_sum_lines_add_the_versions_they_name() {
    let setup = Setup::new(graph_upstream());
    let mut plan = main_plan("module app.com/x\ngo 1.21\nrequire m.com/a v1.0.0\n");
    let c = setup.upstream.sums("m.com/c", "v1.0.0");
    plan.sums
        .add_text("go.sum", &format!("m.com/c v1.0.0/go.mod {}\n", c.go_mod))
        .unwrap();
    let (summary, _) = setup.run(&plan).await;
    assert_eq!(
        setup.stored().await,
        set(&["m.com/a@v1.0.0", "m.com/c@v1.0.0"])
    );
    assert_eq!((summary.zips, summary.go_mods), (1, 1));
}

#[tokio::test]
async fn a_dependency_declaring_another_path_is_reported() {
    let setup = Setup::new(
        Upstream::default()
            .with(
                "m.com/a",
                "v1.0.0",
                "module m.com/other\ngo 1.16\nrequire m.com/b v1.0.0\n",
            )
            .with("m.com/b", "v1.0.0", "module m.com/b\n"),
    );
    let plan = main_plan("module app.com/x\ngo 1.16\nrequire m.com/a v1.0.0\n");
    let (summary, reports) = setup.run(&plan).await;
    assert_eq!(summary.failed, 1, "{reports:?}");
    assert!(reports
        .iter()
        .any(|r| r.to_string().contains("declares its path as m.com/other")));
    // Its requirements are not followed.
    assert_eq!(setup.stored().await, set(&["m.com/a@v1.0.0"]));
}

#[test]
fn pruning_starts_at_go_1_17() {
    for (go, want) in [
        (None, Pruning::Unpruned),
        (Some("1.9"), Pruning::Unpruned),
        (Some("1.16"), Pruning::Unpruned),
        (Some("1.17"), Pruning::Pruned),
        (Some("1.21rc1"), Pruning::Pruned),
        (Some("1.100"), Pruning::Pruned),
        (Some("2.0"), Pruning::Pruned),
    ] {
        assert_eq!(pruning_for(go), want, "{go:?}");
    }
}
