//! Find, fetch and resolve Go modules from their version-control origin,
//! giving byte-identical results to `go mod download`, without the go binary.
//!
//! Layers, bottom up:
//! - [`codehost`]: what resolution needs from a repository (tags, commits,
//!   files at a revision), as a trait.
//! - [`git`]: that trait implemented on gix, with a persistent bare-repository
//!   cache per remote.
//! - [`discovery`]: module path to repository (well-known hosts, go-import
//!   meta tags, GOPRIVATE/GOINSECURE/GOVCS policy).
//! - [`resolve`]: the go command's rules for versions, pseudo-versions,
//!   major-version layouts, go.mod synthesis and module zips.
//! - [`fetcher`]: the three composed behind one async entry point, each
//!   call bounded by an [`interrupt::Interrupt`] (deadline and cancellation).

#![warn(missing_docs)]

pub mod codehost;
pub mod discovery;
pub mod fetcher;
pub mod git;
pub mod goenv;
pub mod interrupt;
pub mod resolve;
