//! The go command's rules for turning a repository into module versions.
//!
//! A [`ModuleRepo`] is one module path served from one repository (possibly
//! from a subdirectory, possibly at a major version `/vN` or `.vN`). It
//! answers the module proxy's questions — `list`, `.info`, `@latest`,
//! `.mod`, `.zip` — from tags, commits and files of a [`CodeRepo`],
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
