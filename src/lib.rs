//! A Go module proxy compatible with Athens: configuration, storage
//! backends, upstream fetching, the stash pipeline (fetch once, store,
//! serve from storage) and the GOPROXY download protocol over HTTP.
//!
//! The binary loads a [`config::Config`], builds a [`fetch::Fetcher`] (for
//! instance [`fetch::UpstreamProxyFetcher::from_config`]) and calls
//! [`http::serve`].

#![warn(missing_docs)]

pub mod backends;
pub mod config;
pub mod download_mode;
pub mod fetch;
pub mod filter;
pub mod http;
pub mod pathmatch;
pub mod protocol;
pub mod singleflight;
pub mod stash;
pub mod storage;
pub mod sumdb_client;
pub mod sumdb_log;
pub mod sums;
pub mod verify;
