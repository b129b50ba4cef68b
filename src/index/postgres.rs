//! `IndexType = "postgres"`: the records in Athens' `indexes` table of a
//! PostgreSQL database (`[Index.Postgres]`).
//!
//! `Params` are connection parameters as Athens' driver (lib/pq) reads
//! them, later ones overriding the settings above them: `sslmode`
//! (`disable`, `allow`, `prefer`; no TLS client is built in, see
//! [`PostgresIndex::open`]), `connect_timeout` (seconds), `application_name`
//! (or `fallback_application_name`), `options`, `host`, `port`, `user`,
//! `password`, `dbname`; any other key is a run-time parameter of the
//! session (sent as `-c key=value`). Timestamps are UTC in a `TIMESTAMP`
//! column, as Athens writes them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use time::{OffsetDateTime, PrimitiveDateTime};
use tokio::sync::Mutex;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

use super::{parse_go_duration, IndexError, IndexLine, Indexer};
use crate::config::PostgresConfig;

/// Athens' table and indexes, created when missing.
const SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS indexes(
        id SERIAL PRIMARY KEY,
        path VARCHAR(255) NOT NULL,
        version VARCHAR(255) NOT NULL,
        timestamp TIMESTAMP NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS idx_timestamp ON indexes (timestamp)",
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_module_version ON indexes (path, version)",
];

/// The PostgreSQL index: one connection, made again when it breaks.
pub struct PostgresIndex {
    config: Config,
    client: Mutex<Option<Arc<Client>>>,
}

/// The connection `[Index.Postgres]` describes.
fn connection_config(config: &PostgresConfig) -> Result<Config, String> {
    let mut pg = Config::new();
    let mut host = config.host.clone();
    let mut port = config.port.to_string();
    let mut user = config.user.clone();
    let mut password = config.password.expose().to_string();
    let mut dbname = config.database.clone();
    // lib/pq's default when sslmode is not given.
    let mut sslmode = "require".to_string();
    let mut application_name = None;
    let mut fallback_application_name = None;
    let mut options: Vec<String> = Vec::new();
    let mut runtime: Vec<String> = Vec::new();
    for (key, value) in &config.params {
        match key.as_str() {
            "host" => host = value.clone(),
            "port" => port = value.clone(),
            "user" => user = value.clone(),
            "password" => password = value.clone(),
            "dbname" => dbname = value.clone(),
            "sslmode" => sslmode = value.clone(),
            "connect_timeout" => {
                // lib/pq reads seconds; Athens' sample configuration
                // writes a Go duration ("30s"). Both mean the same.
                let timeout = value
                    .parse::<u64>()
                    .ok()
                    .map(Duration::from_secs)
                    .or_else(|| parse_go_duration(value))
                    .ok_or_else(|| {
                        format!("Index.Postgres.Params.connect_timeout {value:?} is not a number of seconds")
                    })?;
                if !timeout.is_zero() {
                    pg.connect_timeout(timeout);
                }
            }
            "application_name" => application_name = Some(value.clone()),
            "fallback_application_name" => fallback_application_name = Some(value.clone()),
            "options" => options.push(value.clone()),
            "sslcert" | "sslkey" | "sslrootcert" | "sslpassword" | "sslinline" | "sslsni" => {
                return Err(format!(
                    "Index.Postgres.Params.{key}: TLS connections to PostgreSQL are not supported; use sslmode=disable"
                ))
            }
            name => {
                if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.') {
                    return Err(format!("Index.Postgres.Params: {name:?} is not a parameter name"));
                }
                runtime.push(format!("-c {name}={}", escape_option(value)));
            }
        }
    }
    match sslmode.as_str() {
        "disable" => {
            pg.ssl_mode(SslMode::Disable);
        }
        // Without a TLS client these connect in the clear, as lib/pq does
        // when the server offers no TLS.
        "allow" | "prefer" => {
            pg.ssl_mode(SslMode::Prefer);
        }
        "require" | "verify-ca" | "verify-full" => {
            return Err(format!(
                "Index.Postgres.Params.sslmode {sslmode:?}: TLS connections to PostgreSQL are not supported; use sslmode=disable"
            ))
        }
        other => {
            return Err(format!(
                "Index.Postgres.Params.sslmode {other:?} is not a mode (disable, allow, prefer, require, verify-ca, verify-full)"
            ))
        }
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("Index.Postgres.Port {port:?} is not a port"))?;
    pg.host(&host).port(port).user(&user).dbname(&dbname);
    if !password.is_empty() {
        pg.password(password);
    }
    if let Some(name) = application_name.or(fallback_application_name) {
        pg.application_name(&name);
    }
    options.extend(runtime);
    if !options.is_empty() {
        pg.options(options.join(" "));
    }
    Ok(pg)
}

/// A value inside the `options` string: spaces and backslashes escaped.
fn escape_option(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == ' ' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn backend(message: impl std::fmt::Display) -> IndexError {
    IndexError::Backend {
        backend: "postgres",
        message: message.to_string(),
    }
}

/// The error with its causes (tokio-postgres puts the server's message in
/// the source).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{e}: {db}"),
        None => e.to_string(),
    }
}

impl PostgresIndex {
    /// Connects with `[Index.Postgres]` and creates the table when
    /// missing. Settings that need TLS (`sslmode` require, verify-ca,
    /// verify-full — lib/pq's default — or certificate files) are refused
    /// with the reason.
    pub async fn open(config: &PostgresConfig) -> anyhow::Result<PostgresIndex> {
        let pg = connection_config(config).map_err(anyhow::Error::msg)?;
        let index = PostgresIndex {
            config: pg,
            client: Mutex::new(None),
        };
        let client = index.client().await.map_err(|e| {
            anyhow::anyhow!(
                "Index.Postgres: cannot connect to {:?} as {:?}: {e}",
                config.host,
                config.user
            )
        })?;
        for statement in SCHEMA {
            client.batch_execute(statement).await.map_err(|e| {
                anyhow::anyhow!(
                    "Index.Postgres: cannot create the indexes table: {}",
                    describe(&e)
                )
            })?;
        }
        Ok(index)
    }

    /// The open connection, or a new one when there is none or it broke.
    async fn client(&self) -> Result<Arc<Client>, IndexError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(client));
        }
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| backend(describe(&e)))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(error = %describe(&error), "postgres index connection closed");
            }
        });
        let client = Arc::new(client);
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }
}

fn utc_naive(t: OffsetDateTime) -> PrimitiveDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    PrimitiveDateTime::new(t.date(), t.time())
}

#[async_trait]
impl Indexer for PostgresIndex {
    async fn index(&self, module: &str, version: &str) -> Result<(), IndexError> {
        let client = self.client().await?;
        let now = utc_naive(OffsetDateTime::now_utc());
        match client
            .execute(
                "INSERT INTO indexes (path, version, timestamp) VALUES ($1, $2, $3)",
                &[&module, &version, &now],
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                Err(IndexError::AlreadyIndexed {
                    module: module.to_string(),
                    version: version.to_string(),
                })
            }
            Err(e) => Err(backend(describe(&e))),
        }
    }

    async fn lines(&self, since: OffsetDateTime, limit: u64) -> Result<Vec<IndexLine>, IndexError> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT path, version, timestamp FROM indexes WHERE timestamp >= $1 \
                 ORDER BY timestamp, id LIMIT $2",
                &[&utc_naive(since), &limit],
            )
            .await
            .map_err(|e| backend(describe(&e)))?;
        rows.iter()
            .map(|row| {
                let timestamp: PrimitiveDateTime =
                    row.try_get(2).map_err(|e| backend(describe(&e)))?;
                Ok(IndexLine {
                    path: row.try_get(0).map_err(|e| backend(describe(&e)))?,
                    version: row.try_get(1).map_err(|e| backend(describe(&e)))?,
                    timestamp: timestamp.assume_utc(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn config(params: &[(&str, &str)]) -> PostgresConfig {
        PostgresConfig {
            password: Secret::new("hunter2"),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..PostgresConfig::default()
        }
    }

    #[test]
    fn params_as_athens_driver_reads_them() {
        let pg = connection_config(&config(&[
            ("connect_timeout", "30"),
            ("sslmode", "disable"),
            ("dbname", "other"),
            ("search_path", "idx public"),
            ("application_name", "athens"),
        ]))
        .unwrap();
        assert_eq!(pg.get_connect_timeout(), Some(&Duration::from_secs(30)));
        assert_eq!(pg.get_dbname(), Some("other"));
        assert_eq!(pg.get_user(), Some("postgres"));
        assert_eq!(pg.get_ports(), [5432]);
        assert_eq!(pg.get_application_name(), Some("athens"));
        assert_eq!(pg.get_options(), Some("-c search_path=idx\\ public"));
        assert_eq!(pg.get_ssl_mode(), SslMode::Disable);
        let pg = connection_config(&config(&[
            ("connect_timeout", "30s"),
            ("sslmode", "prefer"),
        ]))
        .unwrap();
        assert_eq!(pg.get_connect_timeout(), Some(&Duration::from_secs(30)));
        assert_eq!(pg.get_ssl_mode(), SslMode::Prefer);
    }

    #[test]
    fn unusable_params_are_refused_without_the_password() {
        for params in [
            &[][..],
            &[("sslmode", "verify-full")],
            &[("sslmode", "sometimes")],
            &[("sslmode", "disable"), ("sslrootcert", "/ca.pem")],
            &[("sslmode", "disable"), ("connect_timeout", "soon")],
            &[("sslmode", "disable"), ("bad name", "x")],
            &[("sslmode", "disable"), ("port", "99999")],
        ] {
            let err = connection_config(&config(params)).err().unwrap();
            assert!(err.contains("Index.Postgres"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }
}
