//! The native fetcher against the go command, on the same repositories.
//!
//! Each fixture in `testdata/repos/` is built into a git repository with
//! fixed dates; the go command (offline, `GOPROXY=direct`, a gitconfig whose
//! `insteadOf` rules point `https://github.com/acme/NAME` at it) and our
//! [`DirectFetcher`] (given the same gitconfig) answer the same questions.
//! For every (module, query): Version, the `.info` bytes (Time and Origin
//! included), the go.mod bytes, the zip's `h1:` and the go.mod's `h1:` must
//! be identical, and a query the go command refuses must fail here too.
//! `list` and `latest` are compared as `go list -m -versions` and
//! `go mod download MOD@latest` report them.
//!
//! Every case also runs `over_http`: our fetcher then reaches the same
//! repository through `git http-backend` on loopback, so its http cache
//! (shallow fetches of named refs, full history only when needed) is held
//! to the same answers as the go command.

use fixtures::{FixtureRepo, GitHttpServer, GoOracle, MetaServer, Tree};
use vcs::discovery::DiscoveryClient;
use vcs::fetcher::DirectFetcher;
use vcs::goenv::GoEnv;

/// What to ask of a module: `list`, or a query as given after `@`.
/// `#full:REV`, `#short:REV` and `#7:REV` stand for the commit hash of REV
/// in the fixture repository (40, 12 or 7 hex digits), which the fixture
/// text cannot know in advance.
struct Case {
    repo: &'static str,
    module: &'static str,
    queries: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        repo: "tags",
        module: "github.com/acme/tags",
        queries: &[
            "list",
            "latest",
            "v1.0.0",
            "v1.1.0",
            "v1.2.0-beta.1",
            "v1.2.0-rc.1",
            "v1.2.0+meta",
            "v1.1",
            "v1",
            "release-1",
            "1.0.1",
            "v01.2.0",
            "main",
            "<v1.1.0",
            ">=v1.1.0",
            "#full:HEAD",
            "#short:main~1",
            "#7:v1.0.0",
            "#full:v1.1.0",
            "v9.9.9",
            "nosuchbranch",
        ],
    },
    Case {
        repo: "prerelease-only",
        module: "github.com/acme/prerelease-only",
        queries: &["list", "latest", "v0.1.0-alpha", "main", "#short:HEAD~2"],
    },
    Case {
        repo: "untagged",
        module: "github.com/acme/untagged",
        queries: &[
            "list",
            "latest",
            "main",
            "feature",
            "#full:HEAD~2",
            "v0.0.0",
        ],
    },
    Case {
        repo: "pseudo-bases",
        module: "github.com/acme/pseudo-bases",
        queries: &[
            "list",
            "latest",
            "main",
            "afterrelease",
            "afterpre",
            "side",
            "v1.2.3",
            "v1.3.0-pre",
            "v1.9.0",
            "#short:afterrelease",
        ],
    },
    Case {
        repo: "incompatible",
        module: "github.com/acme/incompatible",
        queries: &[
            "list",
            "latest",
            "v1.0.0",
            "v2.0.0+incompatible",
            "v3.1.0+incompatible",
            "v2.0.0",
            "main",
            "#short:HEAD~1",
        ],
    },
    Case {
        repo: "incompatible-gomod",
        module: "github.com/acme/incompatible-gomod",
        queries: &["list", "latest", "v2.0.0+incompatible", "v1.5.0"],
    },
    Case {
        repo: "major-branch",
        module: "github.com/acme/major-branch/v2",
        queries: &["list", "latest", "v2.0.0", "v2.1.0", "main", "v1.0.0"],
    },
    Case {
        repo: "major-branch",
        module: "github.com/acme/major-branch",
        queries: &["list", "latest", "v1.0.0", "v2.0.0"],
    },
    Case {
        repo: "major-subdir",
        module: "github.com/acme/major-subdir/v2",
        queries: &["list", "latest", "v2.0.0", "v2.1.0", "main"],
    },
    Case {
        repo: "major-subdir",
        module: "github.com/acme/major-subdir",
        queries: &["list", "v1.0.0"],
    },
    Case {
        repo: "nested",
        module: "github.com/acme/nested/sub",
        queries: &["list", "latest", "v1.0.0", "v1.1.0", "main"],
    },
    Case {
        repo: "nested",
        module: "github.com/acme/nested",
        queries: &["list", "latest", "v1.0.0", "main"],
    },
    Case {
        repo: "nested",
        module: "github.com/acme/nested/deep/er",
        queries: &["list", "latest", "v0.1.0"],
    },
    Case {
        repo: "no-gomod",
        module: "github.com/acme/no-gomod",
        queries: &["list", "latest", "v1.0.0", "v1.1.0"],
    },
    Case {
        repo: "no-gomod",
        module: "github.com/acme/no-gomod/sub",
        queries: &["latest", "v1.1.0"],
    },
    Case {
        repo: "Upper-Case",
        module: "github.com/acme/Upper-Case",
        queries: &["list", "latest", "v1.0.0", "main"],
    },
];

/// A built fixture with the go command and our fetcher both pointed at it.
struct Bench {
    _repo: FixtureRepo,
    oracle: GoOracle,
    fetcher: DirectFetcher,
    _cache: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    repo_dir: std::path::PathBuf,
    /// Serves the fixture to our fetcher when it is tested over http.
    _http: Option<GitHttpServer>,
}

/// How our fetcher reaches the fixture repository (the go command always
/// reads it through file://).
#[derive(Clone, Copy)]
enum Transport {
    File,
    Http,
}

impl Bench {
    fn over(tree: &Tree, transport: Transport) -> Bench {
        Self::build(tree, |_| {}, |env| env, |b| b, transport)
    }

    fn build(
        tree: &Tree,
        oracle_setup: impl FnOnce(&mut GoOracle),
        env_extra: impl FnOnce(Vec<(String, String)>) -> Vec<(String, String)>,
        client: impl FnOnce(
            vcs::discovery::DiscoveryClientBuilder,
        ) -> vcs::discovery::DiscoveryClientBuilder,
        transport: Transport,
    ) -> Bench {
        let repo = FixtureRepo::build(tree).expect("building the fixture repository");
        let mut oracle = GoOracle::for_fixture(tree, &repo).expect("go oracle");
        oracle_setup(&mut oracle);
        let cache = tempfile::tempdir().unwrap();
        let (gitconfig, http) = match transport {
            Transport::File => (oracle.gitconfig_path(), None),
            Transport::Http => {
                // The working repository's git dir is served as is, so
                // changes made to it in a test are seen over http too.
                let parent = repo.path().parent().expect("fixture has a parent dir");
                let server = GitHttpServer::start(parent.to_path_buf());
                let served = server.url(&format!("{}/.git", tree.repo_name()));
                let path = cache.path().join("gitconfig-http");
                std::fs::write(
                    &path,
                    format!("[url \"{served}\"]\n\tinsteadOf = {}\n", tree.remote_url()),
                )
                .unwrap();
                (path, Some(server))
            }
        };
        let vars = vec![
            (
                "GIT_CONFIG_GLOBAL".to_string(),
                gitconfig.display().to_string(),
            ),
            ("GIT_CONFIG_NOSYSTEM".to_string(), "1".to_string()),
            ("GOPROXY".to_string(), "direct".to_string()),
            ("HOME".to_string(), cache.path().display().to_string()),
        ];
        let env = GoEnv::from_vars(env_extra(vars)).expect("go env");
        let client = client(DiscoveryClient::builder(&env)).build().unwrap();
        let fetcher = DirectFetcher::with_client(env, client, cache.path().join("vcs")).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let repo_dir = repo.path().to_path_buf();
        Bench {
            _repo: repo,
            oracle,
            fetcher,
            _cache: cache,
            rt,
            repo_dir,
            _http: http,
        }
    }

    fn git_rev(&self, rev: &str) -> String {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--verify", &format!("{rev}^{{commit}}")])
            .current_dir(&self.repo_dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git rev-parse {rev}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn expand(&self, query: &str) -> String {
        let hash = |rev: &str, n: usize| self.git_rev(rev)[..n].to_string();
        if let Some(rev) = query.strip_prefix("#full:") {
            hash(rev, 40)
        } else if let Some(rev) = query.strip_prefix("#short:") {
            hash(rev, 12)
        } else if let Some(rev) = query.strip_prefix("#7:") {
            hash(rev, 7)
        } else {
            query.to_string()
        }
    }

    /// Compares one question; returns the mismatches found.
    fn compare(&self, module: &str, query: &str) -> Vec<String> {
        if query == "list" {
            return self.compare_list(module);
        }
        let query = self.expand(query);
        let at = format!("{module}@{query}");
        self.oracle.clear_mod_cache().unwrap();
        let go = self.oracle.download(module, &query).expect("running go");
        let zip_file = tempfile::NamedTempFile::new().unwrap();
        let ours = self.rt.block_on(self.fetcher.download(
            module,
            &query,
            zip_file.reopen().unwrap(),
        ));
        let mut bad = Vec::new();
        match (go.is_ok(), ours) {
            (false, Err(_)) => {}
            (false, Ok(d)) => bad.push(format!(
                "{at}: go fails ({}) but we answered {}",
                go.error, d.info.version
            )),
            (true, Err(e)) => bad.push(format!(
                "{at}: go answers {} but we failed: {e}",
                go.version
            )),
            (true, Ok(d)) => {
                if d.info.version != go.version {
                    bad.push(format!(
                        "{at}: version {} != go's {}",
                        d.info.version, go.version
                    ));
                }
                let go_info = go.info_bytes().unwrap();
                let our_info = d.info.to_json();
                if our_info != go_info {
                    bad.push(format!(
                        "{at}: .info\n  ours {}\n  go's {}",
                        String::from_utf8_lossy(&our_info),
                        String::from_utf8_lossy(&go_info)
                    ));
                }
                if d.go_mod != go.go_mod_bytes().unwrap() {
                    bad.push(format!(
                        "{at}: go.mod {:?} != go's {:?}",
                        String::from_utf8_lossy(&d.go_mod),
                        String::from_utf8_lossy(&go.go_mod_bytes().unwrap())
                    ));
                }
                let mod_sum = modzip::dirhash::hash_go_mod(&d.go_mod);
                if mod_sum != go.go_mod_sum {
                    bad.push(format!(
                        "{at}: go.mod h1 {mod_sum} != go's {}",
                        go.go_mod_sum
                    ));
                }
                let zip_sum =
                    modzip::dirhash::hash_zip(std::fs::File::open(zip_file.path()).unwrap())
                        .map_err(|e| e.to_string());
                if zip_sum.as_deref() != Ok(go.sum.as_str()) {
                    bad.push(format!("{at}: zip h1 {zip_sum:?} != go's {}", go.sum));
                }
            }
        }
        bad
    }

    fn compare_list(&self, module: &str) -> Vec<String> {
        self.oracle.clear_mod_cache().unwrap();
        let go = self.oracle.list_versions(module).expect("running go list");
        let ours = self.rt.block_on(self.fetcher.list(module));
        match (go.error.as_ref(), ours) {
            (Some(_), Err(_)) => vec![],
            (Some(e), Ok(v)) => vec![format!(
                "{module} list: go fails ({}) but we list {v:?}",
                e.err
            )],
            (None, Err(e)) => vec![format!(
                "{module} list: go lists {:?} but we failed: {e}",
                go.versions
            )],
            (None, Ok(mut v)) => {
                modzip::semver::sort(&mut v);
                if v != go.versions {
                    vec![format!("{module} list: {v:?} != go's {:?}", go.versions)]
                } else {
                    vec![]
                }
            }
        }
    }
}

fn run_cases(repo: &str, transport: Transport) -> usize {
    let tree = fixtures::load_repo_tree(repo).expect("fixture");
    let bench = Bench::over(&tree, transport);
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for case in CASES.iter().filter(|c| c.repo == repo) {
        for query in case.queries {
            mismatches.extend(bench.compare(case.module, query));
            compared += 1;
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es) with the go command:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    if let Some(server) = &bench._http {
        // Guards against the insteadOf rule silently not applying.
        assert!(
            server.ref_listings() > 0,
            "{repo}: nothing listed over http"
        );
        assert!(
            server.pack_fetches() > 0,
            "{repo}: nothing fetched over http"
        );
    }
    compared
}

macro_rules! repo_tests {
    ($($name:ident => $repo:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let n = run_cases($repo, Transport::File);
                assert!(n > 0, "no cases for {}", $repo);
            }
        )*
        mod over_http {
            $(
                #[test]
                fn $name() {
                    let n = super::run_cases($repo, super::Transport::Http);
                    assert!(n > 0, "no cases for {}", $repo);
                }
            )*
        }
        #[test]
        fn every_repo_fixture_is_exercised() {
            let tested = [$($repo),*];
            for case in CASES {
                assert!(tested.contains(&case.repo), "{} has no test", case.repo);
            }
            let total: usize = CASES.iter().map(|c| c.queries.len()).sum();
            assert!(total >= 40, "only {total} cases");
        }
    };
}

repo_tests! {
    tags => "tags",
    prerelease_only => "prerelease-only",
    untagged => "untagged",
    pseudo_bases => "pseudo-bases",
    incompatible => "incompatible",
    incompatible_gomod => "incompatible-gomod",
    major_branch => "major-branch",
    major_subdir => "major-subdir",
    nested => "nested",
    no_gomod => "no-gomod",
    upper_case => "Upper-Case",
}

/// Upstream moves a tag after we first served it: a fresh go command sees
/// the new commit, and so must a fresh question to our fetcher.
#[test]
fn moved_tag() {
    moved_tag_over(Transport::File);
}

#[test]
fn moved_tag_over_http() {
    moved_tag_over(Transport::Http);
}

fn moved_tag_over(transport: Transport) {
    let tree = fixtures::load_repo_tree("moved-tag").unwrap();
    let bench = Bench::over(&tree, transport);
    let before = bench.compare("github.com/acme/moved-tag", "v1.0.0");
    assert!(before.is_empty(), "{before:?}");
    let first = bench.git_rev("v1.0.0");
    let status = std::process::Command::new("git")
        .args(["tag", "-f", "v1.0.0", "HEAD"])
        .current_dir(&bench.repo_dir)
        .output()
        .unwrap();
    assert!(status.status.success());
    assert_ne!(bench.git_rev("v1.0.0"), first);
    let fresh = GoOracle::for_fixture(&tree, &bench._repo).unwrap();
    let moved = Bench {
        oracle: fresh,
        ..bench
    };
    let after = moved.compare("github.com/acme/moved-tag", "v1.0.0");
    assert!(after.is_empty(), "{after:?}");
}

/// A vanity path found through a go-import meta tag served on loopback,
/// including the optional subdirectory field.
#[test]
fn go_import_meta() {
    let server = MetaServer::start(&[
        (
            "/vanity",
            "example.test/vanity git https://github.com/acme/meta",
        ),
        (
            "/lib",
            "example.test/lib git https://github.com/acme/meta lib",
        ),
    ]);
    let tree = fixtures::load_repo_tree("meta").unwrap();
    let proxy = format!("http://{}", server.addr);
    let bench = Bench::build(
        &tree,
        |oracle| {
            // The go command reaches example.test through the test server as
            // an HTTP proxy; its https attempt is refused, then GOINSECURE
            // lets it fall back to http.
            oracle.set_env("GOINSECURE", "example.test");
            oracle.set_env("HTTP_PROXY", &proxy);
            oracle.set_env("HTTPS_PROXY", &proxy);
        },
        |mut vars| {
            vars.push(("GOINSECURE".into(), "example.test".into()));
            vars
        },
        |client| client.pin_host("example.test", server.addr),
        Transport::File,
    );
    let mut bad = Vec::new();
    for (module, query) in [
        ("example.test/vanity", "list"),
        ("example.test/vanity", "latest"),
        ("example.test/vanity", "v1.0.0"),
        ("example.test/vanity", "main"),
        ("example.test/lib", "list"),
        ("example.test/lib", "latest"),
        ("example.test/lib", "v0.2.0"),
        ("example.test/nothing", "latest"),
    ] {
        bad.extend(bench.compare(module, query));
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert!(server.hits() > 0);
}
