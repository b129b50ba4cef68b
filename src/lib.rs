//! A Go module proxy compatible with Athens: configuration, storage
//! backends, upstream fetching, the stash pipeline (fetch once, store,
//! serve from storage) and the GOPROXY download protocol over HTTP.
//!
//! The binary loads a [`config::Config`], assembles the proxy from it with
//! the composition root [`app::build`] and serves the result with
//! [`http::serve`].

#![warn(missing_docs)]

pub mod app;
pub mod backends;
pub mod build_info;
pub mod config;
pub mod download_mode;
pub mod fetch;
pub mod filter;
pub mod http;
pub mod index;
pub mod locks;
pub mod metrics;
pub mod pathmatch;
pub mod pprof;
pub mod prefill;
pub mod protocol;
pub mod stash;
pub mod storage;
pub mod sumdb_client;
pub mod sumdb_log;
pub mod sums;
pub mod traces;
pub mod verify;
