//! Go module paths, versions, pseudo-versions, canonical module zips and
//! `h1:` hashes, computed exactly as the go command computes them.
//!
//! Nothing here touches the network or needs an async runtime: the crate is
//! the pure core that the fetcher (`vcs`) and the proxy server build on.

#![warn(missing_docs)]

pub mod dirhash;
pub mod gomod;
pub mod gover;
pub mod module;
pub mod pseudo;
pub mod semver;
pub mod zip;

pub use module::Version;
