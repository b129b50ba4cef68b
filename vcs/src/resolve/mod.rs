//! The go command's rules for turning a repository into module versions.
//!
//! A [`ModuleRepo`] is one module path served from one repository (possibly
//! from a subdirectory, possibly at a major version `/vN` or `.vN`). It
//! answers the module proxy's questions — `list`, `.info`, `@latest`,
//! `.mod`, `.zip` — from tags, commits and files of a [`CodeRepo`](crate::codehost::CodeRepo),
//! following `cmd/go/internal/modfetch/coderepo.go` and the query rules of
//! `cmd/go/internal/modload/query.go`:
//!
//! - versions are the module's canonical semver tags (with the directory
//!   prefix for modules in subdirectories), plus `+incompatible` for v2+
//!   tags of unsuffixed modules without go.mod;
//! - any other revision becomes a pseudo-version based on the highest
//!   reachable tag;
//! - go.mod is read from the module directory (or `vN/` for the major
//!   subdirectory layout), or synthesized as `module PATH` when absent;
//! - zips take the module directory's files, plus the repository root's
//!   LICENSE for modules in subdirectories that lack their own.
//!
//! Everything is synchronous; async callers use `spawn_blocking`.
//!
//! The code follows the go command's own division:
//!
//! - `coderepo`: the module path mapped onto its repository (directory,
//!   major-version suffix, major subdirectory layout) and go.mod lookups
//!   ([`ModuleRepo::new`], [`ModuleRepo::go_mod`], [`legacy_go_mod`]);
//! - `convert`: tags and revisions turned into module versions
//!   ([`ModuleRepo::versions`], [`ModuleRepo::stat`], [`ModuleRepo::latest`]):
//!   canonical tags, `+incompatible`, pseudo-versions and their checks;
//! - `query`: the query language ([`ModuleRepo::query`]);
//! - `zip`: the module zip ([`ModuleRepo::zip`]);
//! - `retract`: the go.mod `retract` directives resolution skips;
//! - `info` and `error`: the `.info` answer and the typed errors.

mod coderepo;
mod convert;
mod error;
mod info;
mod query;
mod retract;
#[cfg(test)]
mod testrepo;
mod zip;

pub use coderepo::{legacy_go_mod, ModuleRepo};
pub use error::{ResolveError, VersionProblem};
pub use info::{format_rfc3339, Info, Origin};

/// Largest go.mod the go command reads from a repository, and largest
/// LICENSE it copies from a repository root: the module zip limits.
pub use modzip::zip::{MAX_GO_MOD, MAX_LICENSE};
