//! The `/index` feed, as Athens keeps it: every module version the stash
//! stores is recorded once with the time it was stored, and
//! `GET /index?since=RFC3339&limit=N` answers the records from `since` on
//! (inclusive), oldest first, at most `limit` of them (2000 when absent),
//! one JSON object per line: `{"Path":…,"Version":…,"Timestamp":…}`.
//!
//! `IndexType` picks where the records live: `none` (nothing is recorded
//! and the feed is empty), `memory` (this process only), `mysql`
//! ([`mysql`], MySQL or MariaDB) or `postgres` ([`postgres`]). Both
//! databases get Athens' table `indexes` (created when missing), so a
//! database Athens filled keeps serving.

pub mod memory;
pub mod mysql;
pub mod postgres;
mod postgres_tls;
mod query;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use crate::config::Config;

pub use query::{parse_go_duration, parse_go_rfc3339, IndexQuery, DEFAULT_LIMIT};

/// One recorded module version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexLine {
    /// The module path.
    pub path: String,
    /// The canonical version stored.
    pub version: String,
    /// When it was recorded (UTC).
    pub timestamp: OffsetDateTime,
}

impl IndexLine {
    /// The line as the feed sends it: Go's JSON encoding of Athens'
    /// `index.Line` (field names as in Go, the time in RFC 3339 with
    /// nanoseconds, trailing zeros dropped), then a newline.
    pub fn to_json_line(&self) -> String {
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
        format!(
            "{{\"Path\":{},\"Version\":{},\"Timestamp\":\"{}\"}}\n",
            quote(&self.path),
            quote(&self.version),
            vcs::resolve::format_rfc3339(self.timestamp)
        )
    }
}

/// Why the index could not record or list.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The version is recorded already (the stash ignores this, as Athens'
    /// does: a version stored twice keeps its first time).
    #[error("{module}@{version} already indexed")]
    AlreadyIndexed {
        /// The module path.
        module: String,
        /// The version.
        version: String,
    },
    /// The database failed or could not be reached.
    #[error("{backend} index: {message}")]
    Backend {
        /// `mysql` or `postgres`.
        backend: &'static str,
        /// What went wrong (never the password).
        message: String,
    },
}

/// Where the feed's records live.
#[async_trait]
pub trait Indexer: Send + Sync + 'static {
    /// Records `module@version` as stored now; [`IndexError::AlreadyIndexed`]
    /// when it is recorded already.
    async fn index(&self, module: &str, version: &str) -> Result<(), IndexError>;

    /// The records at or after `since`, oldest first, at most `limit`.
    async fn lines(&self, since: OffsetDateTime, limit: u64) -> Result<Vec<IndexLine>, IndexError>;
}

impl std::fmt::Debug for dyn Indexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Indexer")
    }
}

/// `IndexType = "none"`: records nothing; the feed is always empty.
pub struct NoIndex;

#[async_trait]
impl Indexer for NoIndex {
    async fn index(&self, _module: &str, _version: &str) -> Result<(), IndexError> {
        Ok(())
    }

    async fn lines(
        &self,
        _since: OffsetDateTime,
        _limit: u64,
    ) -> Result<Vec<IndexLine>, IndexError> {
        Ok(Vec::new())
    }
}

/// Opens the index `IndexType` names: connects to the database and creates
/// the table when missing. Fails with the reason (never the password) when
/// the database cannot be reached or a parameter is not understood.
pub async fn open(config: &Config) -> anyhow::Result<Arc<dyn Indexer>> {
    Ok(match config.index_type.as_str() {
        "" | "none" => Arc::new(NoIndex),
        "memory" => Arc::new(memory::MemoryIndex::new()),
        "mysql" => Arc::new(mysql::MySqlIndex::open(&config.index.mysql).await?),
        "postgres" => Arc::new(postgres::PostgresIndex::open(&config.index.postgres).await?),
        other => anyhow::bail!("IndexType: index type {other:?} is unknown"),
    })
}

/// `GET /index`: parses `since` and `limit` as Athens does (400 when
/// either is malformed, or `limit` is not positive) and writes the lines.
pub async fn handler(State(index): State<Arc<dyn Indexer>>, RawQuery(raw): RawQuery) -> Response {
    let query = match IndexQuery::parse(raw.as_deref().unwrap_or("")) {
        Ok(query) => query,
        Err(message) => {
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{message}\n"),
            )
                .into_response()
        }
    };
    match index.lines(query.since, query.limit).await {
        Ok(lines) => {
            let body: String = lines.iter().map(IndexLine::to_json_line).collect();
            (
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                body,
            )
                .into_response()
        }
        Err(error) => {
            tracing::error!(%error, "cannot list the index");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "the index cannot be read\n",
            )
                .into_response()
        }
    }
}

/// The `/index` route over `index`, to merge into the router inside the
/// path prefix.
pub fn routes(index: Arc<dyn Indexer>) -> axum::Router {
    axum::Router::new()
        .route("/index", axum::routing::get(handler))
        .with_state(index)
}
