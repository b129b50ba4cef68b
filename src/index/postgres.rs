//! `IndexType = "postgres"`: the records in Athens' `indexes` table of a
//! PostgreSQL database (`[Index.Postgres]`).
//!
//! `Params` are connection parameters as Athens' driver (lib/pq) reads
//! them, later ones overriding the settings above them: `sslmode`
//! (`disable`, `allow`, `prefer`, `require` — the default, as in lib/pq —
//! `verify-ca`, `verify-full`, checked as lib/pq checks them), `sslrootcert`,
//! `sslcert`, `sslkey`, `sslsni`, `connect_timeout` (seconds),
//! `application_name` (or `fallback_application_name`), `options`, `host`,
//! `port`, `user`, `password`, `dbname`; any other key is a run-time
//! parameter of the session (sent as `-c key=value`). Timestamps are UTC
//! in a `TIMESTAMP` column, as Athens writes them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use time::{OffsetDateTime, PrimitiveDateTime};
use tokio::sync::Mutex;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

use super::postgres_tls::{Check, RustlsConnect, TlsFiles};
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
    /// TLS as `sslmode` asks; none for `disable`.
    tls: Option<RustlsConnect>,
    client: Mutex<Option<Arc<Client>>>,
}

/// The connection `[Index.Postgres]` describes, and its TLS.
fn connection_config(config: &PostgresConfig) -> Result<(Config, Option<RustlsConnect>), String> {
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
    let mut files = TlsFiles {
        sni: true,
        ..TlsFiles::default()
    };
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
            "sslrootcert" => files.root_cert = value.clone(),
            "sslcert" => files.cert = value.clone(),
            "sslkey" => files.key = value.clone(),
            "sslsni" => files.sni = value != "0",
            "sslpassword" | "sslinline" => {
                return Err(format!(
                    "Index.Postgres.Params.{key} is not supported (use unencrypted PEM files)"
                ))
            }
            name => {
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
                {
                    return Err(format!(
                        "Index.Postgres.Params: {name:?} is not a parameter name"
                    ));
                }
                runtime.push(format!("-c {name}={}", escape_option(value)));
            }
        }
    }
    // lib/pq checks the chain under `require` too when it has roots.
    let (mode, check) = match sslmode.as_str() {
        "disable" => (SslMode::Disable, None),
        "allow" | "prefer" => (SslMode::Prefer, Some(Check::Nothing)),
        "require" if files.root_cert.is_empty() => (SslMode::Require, Some(Check::Nothing)),
        "require" | "verify-ca" => (SslMode::Require, Some(Check::Chain)),
        "verify-full" => (SslMode::Require, Some(Check::Full)),
        other => {
            return Err(format!(
                "Index.Postgres.Params.sslmode {other:?} is not a mode (disable, allow, prefer, require, verify-ca, verify-full)"
            ))
        }
    };
    pg.ssl_mode(mode);
    let tls = check
        .map(|check| RustlsConnect::new(check, &files))
        .transpose()
        .map_err(|e| format!("Index.Postgres.Params: {e}"))?;
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
    Ok((pg, tls))
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

/// The error with its causes (tokio-postgres keeps the server's message,
/// or the TLS failure, in the source).
fn describe(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl PostgresIndex {
    /// Connects with `[Index.Postgres]` and creates the table when
    /// missing.
    pub async fn open(config: &PostgresConfig) -> anyhow::Result<PostgresIndex> {
        let (pg, tls) = connection_config(config).map_err(anyhow::Error::msg)?;
        let index = PostgresIndex {
            config: pg,
            tls,
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
        let client = match &self.tls {
            Some(tls) => {
                let (client, connection) = self
                    .config
                    .connect(tls.clone())
                    .await
                    .map_err(|e| backend(describe(&e)))?;
                tokio::spawn(drive(connection));
                client
            }
            None => {
                let (client, connection) = self
                    .config
                    .connect(NoTls)
                    .await
                    .map_err(|e| backend(describe(&e)))?;
                tokio::spawn(drive(connection));
                client
            }
        };
        let client = Arc::new(client);
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }
}

#[cfg(test)]
impl PostgresIndex {
    /// Whether the connection the index uses is encrypted.
    pub(super) async fn uses_tls(&self) -> bool {
        let client = self.client().await.unwrap();
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        row.get(0)
    }
}

/// Runs a connection until it ends.
async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(error) = connection.await {
        tracing::warn!(error = %describe(&error), "postgres index connection closed");
    }
}

fn utc_naive(t: OffsetDateTime) -> PrimitiveDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    PrimitiveDateTime::new(t.date(), t.time())
}

/// Whether `error` means the connection is gone (closed, or ended by the
/// server), so the statement is worth one more try on a new connection.
fn broken(error: &tokio_postgres::Error, client: &Client) -> bool {
    error.is_closed() || client.is_closed() || error.code() == Some(&SqlState::ADMIN_SHUTDOWN)
}

impl PostgresIndex {
    /// Runs `op` on the connection; when the connection turns out to be
    /// gone (the server restarted, an administrator ended it), once more
    /// on a new one. A repeated insert that had gone through finds the
    /// record and reports it as recorded already.
    async fn run<T, F, Fut>(&self, op: F) -> Result<Result<T, tokio_postgres::Error>, IndexError>
    where
        F: Fn(Arc<Client>) -> Fut,
        Fut: std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let client = self.client().await?;
        match op(Arc::clone(&client)).await {
            Err(e) if broken(&e, &client) => {
                {
                    let mut slot = self.client.lock().await;
                    if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, &client)) {
                        *slot = None;
                    }
                }
                let client = self.client().await?;
                Ok(op(client).await)
            }
            other => Ok(other),
        }
    }
}

#[async_trait]
impl Indexer for PostgresIndex {
    async fn index(&self, module: &str, version: &str) -> Result<(), IndexError> {
        let now = utc_naive(OffsetDateTime::now_utc());
        let inserted = self
            .run(|client| async move {
                client
                    .execute(
                        "INSERT INTO indexes (path, version, timestamp) VALUES ($1, $2, $3)",
                        &[&module, &version, &now],
                    )
                    .await
            })
            .await?;
        match inserted {
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
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let since = utc_naive(since);
        let rows = self
            .run(|client| async move {
                client
                    .query(
                        "SELECT path, version, timestamp FROM indexes WHERE timestamp >= $1 \
                         ORDER BY timestamp, id LIMIT $2",
                        &[&since, &limit],
                    )
                    .await
            })
            .await?
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
        let (pg, tls) = connection_config(&config(&[
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
        assert!(tls.is_none());
        let (pg, tls) = connection_config(&config(&[
            ("connect_timeout", "30s"),
            ("sslmode", "prefer"),
        ]))
        .unwrap();
        assert_eq!(pg.get_connect_timeout(), Some(&Duration::from_secs(30)));
        assert_eq!(pg.get_ssl_mode(), SslMode::Prefer);
        assert!(tls.is_some());
        // lib/pq's default is require.
        let (pg, tls) = connection_config(&config(&[])).unwrap();
        assert_eq!(pg.get_ssl_mode(), SslMode::Require);
        assert!(tls.is_some());
    }

    #[test]
    fn unusable_params_are_refused_without_the_password() {
        for params in [
            &[("sslmode", "sometimes")][..],
            &[
                ("sslmode", "verify-full"),
                ("sslrootcert", "/nonexistent/ca.pem"),
            ],
            &[("sslcert", "/nonexistent/c.pem")],
            &[("sslpassword", "x")],
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
