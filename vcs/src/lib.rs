//! Find, fetch and resolve Go modules from their version-control origin,
//! giving byte-identical results to `go mod download`, without the go binary.
//!
//! Layers, bottom up:
//! - [`codehost`]: what resolution needs from a repository (tags, commits,
//!   files at a revision), as a trait.
//! - [`git`]: that trait implemented on gix, with a persistent bare-repository
//!   cache per remote.
//! - [`cli`]: the same trait for Mercurial, Subversion and Fossil, through
//!   their command-line tools as the go command runs them.
//! - [`discovery`]: module path to repository (well-known hosts, go-import
//!   meta tags, GOPRIVATE/GOINSECURE/GOVCS policy).
//! - [`resolve`]: the go command's rules for versions, pseudo-versions,
//!   major-version layouts, go.mod synthesis and module zips.
//! - [`fetcher`]: the three composed behind one async entry point, each
//!   call bounded by an [`interrupt::Interrupt`] (deadline and cancellation).
//!
//! # Example
//!
//! Resolving versions of a module held in a local git repository, as
//! `go mod download` would from its origin: tags become versions, a branch
//! becomes a pseudo-version based on the highest tag below it, and the
//! `.mod` and `.zip` answers come from the tagged tree.
//!
//! ```
//! use std::io::Cursor;
//! use std::path::Path;
//! use std::process::Command;
//! use std::sync::Arc;
//!
//! use vcs::git::{GitOptions, GitRepo};
//! use vcs::resolve::ModuleRepo;
//!
//! /// Runs git in `dir` with a fixed identity and commit time, no user config.
//! fn git(dir: &Path, date: &str, args: &[&str]) -> String {
//!     let out = Command::new("git")
//!         .current_dir(dir)
//!         .args(["-c", "user.name=Gopher", "-c", "user.email=gopher@example.com"])
//!         .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"])
//!         .args(args)
//!         .env("GIT_CONFIG_NOSYSTEM", "1")
//!         .env("GIT_CONFIG_GLOBAL", "/dev/null")
//!         .env("GIT_AUTHOR_DATE", date)
//!         .env("GIT_COMMITTER_DATE", date)
//!         .output()
//!         .expect("git runs");
//!     assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
//!     String::from_utf8(out.stdout).unwrap().trim().to_string()
//! }
//!
//! let tmp = tempfile::tempdir()?;
//! let work = tmp.path().join("hello");
//! std::fs::create_dir(&work)?;
//! let t1 = "2024-03-01T12:00:00Z";
//! let t2 = "2024-03-02T08:30:00Z";
//! git(&work, t1, &["init", "-q"]);
//! std::fs::write(work.join("go.mod"), "module example.com/hello\n")?;
//! std::fs::write(work.join("hello.go"), "package hello\n")?;
//! git(&work, t1, &["add", "."]);
//! git(&work, t1, &["commit", "-q", "-m", "first"]);
//! git(&work, t1, &["tag", "v1.0.0"]);
//! git(&work, t1, &["branch", "-M", "main"]);
//! std::fs::write(work.join("hello.go"), "package hello\n\nconst Greeting = \"hi\"\n")?;
//! git(&work, t2, &["commit", "-q", "-am", "second"]);
//! let head = git(&work, t2, &["rev-parse", "HEAD"]);
//!
//! // A local path is read in place; the cache directory is only used for
//! // http(s) remotes.
//! let repo = GitRepo::open(work.to_str().unwrap(), &tmp.path().join("cache"), GitOptions::default())?;
//! let module = ModuleRepo::new("example.com/hello", Arc::new(repo), "example.com/hello", None)?;
//!
//! assert_eq!(module.versions("")?, ["v1.0.0"]);
//! let tagged = module.stat("v1.0.0")?;
//! assert_eq!(tagged.origin.reference, "refs/tags/v1.0.0");
//! // `@latest` prefers the highest release over the newer branch tip.
//! assert_eq!(module.query_latest()?.version, "v1.0.0");
//!
//! // The branch tip is one commit past v1.0.0: patch bumped, "-0." form,
//! // commit time in UTC and the 12-digit short hash.
//! let tip = module.stat("main")?;
//! assert_eq!(tip.version, format!("v1.0.1-0.20240302083000-{}", &head[..12]));
//! assert_eq!(module.stat(&head)?.version, tip.version);
//!
//! assert_eq!(module.go_mod("v1.0.0")?, b"module example.com/hello\n");
//! let zip = module.zip("v1.0.0", Cursor::new(Vec::new()))?.into_inner();
//! let checked = modzip::zip::check_zip(
//!     &modzip::Version::new("example.com/hello", "v1.0.0"),
//!     Cursor::new(&zip),
//! )?;
//! assert_eq!(
//!     checked.valid,
//!     ["example.com/hello@v1.0.0/go.mod", "example.com/hello@v1.0.0/hello.go"]
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub mod cli;
pub mod codehost;
pub mod discovery;
pub mod fetcher;
pub mod git;
pub mod goauth;
pub mod goenv;
pub mod interrupt;
pub mod phases;
pub mod resolve;
