//! `IndexType = "mysql"`: the records in Athens' `indexes` table of a
//! MySQL or MariaDB database (`[Index.MySQL]`).
//!
//! `Params` are read as Athens' driver (go-sql-driver/mysql) reads them:
//! `timeout` bounds connecting, `readTimeout`/`writeTimeout` each
//! statement, `tls` is `true`, `skip-verify` or `false`, `charset` sets the
//! connection's character set, and a key the driver does not know is a
//! session variable set on every connection (`SET key=value`). The
//! driver's other options change nothing here and are reported at start.
//! Times are kept in UTC: every connection sets `time_zone = '+00:00'`.

use std::time::Duration;

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Pool, SslOpts, Value};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use super::{parse_go_duration, IndexError, IndexLine, Indexer};
use crate::config::MySqlConfig;

/// Athens' table, created when missing.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS indexes(
    id INT AUTO_INCREMENT PRIMARY KEY COMMENT 'Unique identifier for a module line',
    path VARCHAR(255) NOT NULL COMMENT 'Import path of the module',
    version VARCHAR(255) NOT NULL COMMENT 'Module version',
    timestamp TIMESTAMP(6) COMMENT 'Date and time when the module was first created',
    INDEX (timestamp),
    UNIQUE INDEX idx_module_version (path, version)
) CHARACTER SET utf8";

/// MySQL's error number for a duplicate key.
const ER_DUP_ENTRY: u16 = 1062;

/// Options of Athens' driver that have no bearing on the index.
const WITHOUT_EFFECT: &[&str] = &[
    "allowAllFiles",
    "allowCleartextPasswords",
    "allowFallbackToPlaintext",
    "allowNativePasswords",
    "allowOldPasswords",
    "checkConnLiveness",
    "clientFoundRows",
    "collation",
    "columnsWithAlias",
    "compress",
    "connectionAttributes",
    "interpolateParams",
    "loc",
    "maxAllowedPacket",
    "multiStatements",
    "parseTime",
    "rejectReadOnly",
    "serverPubKey",
    "timeTruncate",
];

/// The MySQL index.
pub struct MySqlIndex {
    pool: Pool,
    connect_timeout: Option<Duration>,
    statement_timeout: Option<Duration>,
}

/// The connection options `[Index.MySQL]` describes, with the timeouts.
struct Settings {
    opts: OptsBuilder,
    connect_timeout: Option<Duration>,
    statement_timeout: Option<Duration>,
    ignored: Vec<String>,
}

fn settings(config: &MySqlConfig) -> Result<Settings, String> {
    let mut opts = OptsBuilder::default()
        .user(Some(config.user.clone()))
        .pass((!config.password.is_empty()).then(|| config.password.expose().to_string()))
        .db_name(Some(config.database.clone()))
        // Only the address configured is used: the driver would otherwise
        // switch a loopback TCP connection to the server's socket.
        .prefer_socket(false);
    match config.protocol.as_str() {
        "tcp" => {
            let port = u16::try_from(config.port)
                .map_err(|_| format!("Index.MySQL.Port {} is not a port", config.port))?;
            opts = opts.ip_or_hostname(config.host.clone()).tcp_port(port);
        }
        // Host names the socket, as the address does in Athens' driver.
        "unix" => opts = opts.socket(Some(config.host.clone())),
        other => {
            return Err(format!(
                "Index.MySQL.Protocol {other:?} is not supported (tcp or unix)"
            ))
        }
    }
    let mut init = vec!["SET time_zone = '+00:00'".to_string()];
    let mut connect_timeout = None;
    let mut statement_timeout: Option<Duration> = None;
    let mut ignored = Vec::new();
    let duration = |key: &str, value: &str| {
        parse_go_duration(value)
            .ok_or_else(|| format!("Index.MySQL.Params.{key} {value:?} is not a Go duration"))
    };
    for (key, value) in &config.params {
        match key.as_str() {
            "timeout" => connect_timeout = Some(duration(key, value)?),
            "readTimeout" | "writeTimeout" => {
                let d = duration(key, value)?;
                statement_timeout = Some(statement_timeout.map_or(d, |t| t.max(d)));
            }
            "tls" => match value.as_str() {
                "true" => opts = opts.ssl_opts(Some(SslOpts::default())),
                "skip-verify" => {
                    opts = opts.ssl_opts(Some(
                        SslOpts::default().with_danger_accept_invalid_certs(true),
                    ))
                }
                "false" | "" => opts = opts.ssl_opts(None::<SslOpts>),
                other => {
                    return Err(format!(
                        "Index.MySQL.Params.tls {other:?} is not supported (true, skip-verify or false)"
                    ))
                }
            },
            "charset" => {
                // Athens' driver tries each charset of the list in turn;
                // the first is what a server of this century accepts.
                let first = value.split(',').next().unwrap_or_default();
                check_identifier(key, first)?;
                init.push(format!("SET NAMES {first}"));
            }
            k if WITHOUT_EFFECT.contains(&k) => ignored.push(k.to_string()),
            variable => {
                check_identifier(key, variable)?;
                init.push(format!("SET {variable}={value}"));
            }
        }
    }
    // Zero means no limit, as in Athens' driver.
    let nonzero = |d: Option<Duration>| d.filter(|d| !d.is_zero());
    Ok(Settings {
        opts: opts.init(init),
        connect_timeout: nonzero(connect_timeout),
        statement_timeout: nonzero(statement_timeout),
        ignored,
    })
}

/// A session variable name goes into SQL as it is: letters, digits, `_`,
/// `.` and `@` only.
fn check_identifier(key: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Index.MySQL.Params.{key}: {name:?} is not a variable or charset name"
        ))
    }
}

fn backend(message: impl std::fmt::Display) -> IndexError {
    IndexError::Backend {
        backend: "mysql",
        message: message.to_string(),
    }
}

/// Runs `work` within `limit` (when there is one); the outer error is the
/// time running out.
async fn within<T>(
    limit: Option<Duration>,
    what: &str,
    work: impl std::future::Future<Output = Result<T, mysql_async::Error>>,
) -> Result<Result<T, mysql_async::Error>, IndexError> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .map_err(|_| backend(format!("{what} took longer than {limit:?}"))),
        None => Ok(work.await),
    }
}

async fn bounded<T>(
    limit: Option<Duration>,
    what: &str,
    work: impl std::future::Future<Output = Result<T, mysql_async::Error>>,
) -> Result<T, IndexError> {
    within(limit, what, work).await?.map_err(backend)
}

impl MySqlIndex {
    /// Connects with `[Index.MySQL]` and creates the table when missing.
    pub async fn open(config: &MySqlConfig) -> anyhow::Result<MySqlIndex> {
        let settings = settings(config).map_err(anyhow::Error::msg)?;
        // The driver's TLS asks rustls for the process's provider; more
        // than one is compiled in, so it must be chosen (as main does).
        let _ = rustls::crypto::ring::default_provider().install_default();
        if !settings.ignored.is_empty() {
            tracing::warn!(
                params = settings.ignored.join(", "),
                "Index.MySQL.Params: these driver options have no effect here"
            );
        }
        let index = MySqlIndex {
            pool: Pool::new(settings.opts),
            connect_timeout: settings.connect_timeout,
            statement_timeout: settings.statement_timeout,
        };
        let mut conn = index.conn().await.map_err(|e| {
            anyhow::anyhow!(
                "Index.MySQL: cannot connect to {:?} as {:?}: {e}",
                config.host,
                config.user
            )
        })?;
        bounded(
            index.statement_timeout,
            "creating the indexes table",
            conn.query_drop(SCHEMA),
        )
        .await
        .map_err(|e| anyhow::anyhow!("Index.MySQL: cannot create the indexes table: {e}"))?;
        Ok(index)
    }

    async fn conn(&self) -> Result<Conn, IndexError> {
        bounded(self.connect_timeout, "connecting", self.pool.get_conn()).await
    }
}

#[cfg(test)]
impl MySqlIndex {
    /// Whether the connections the index uses are encrypted.
    pub(super) async fn uses_tls(&self) -> bool {
        let mut conn = self.conn().await.unwrap();
        let cipher: Option<(String, String)> = conn
            .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            .await
            .unwrap();
        cipher.is_some_and(|(_, value)| !value.is_empty())
    }
}

#[async_trait]
impl Indexer for MySqlIndex {
    async fn index(&self, module: &str, version: &str) -> Result<(), IndexError> {
        let mut conn = self.conn().await?;
        let now = datetime_value(OffsetDateTime::now_utc());
        let insert = conn.exec_drop(
            "INSERT INTO indexes (path, version, timestamp) VALUES (?, ?, ?)",
            (module, version, now),
        );
        match within(self.statement_timeout, "recording a version", insert).await? {
            Ok(()) => Ok(()),
            Err(mysql_async::Error::Server(e)) if e.code == ER_DUP_ENTRY => {
                Err(IndexError::AlreadyIndexed {
                    module: module.to_string(),
                    version: version.to_string(),
                })
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn lines(&self, since: OffsetDateTime, limit: u64) -> Result<Vec<IndexLine>, IndexError> {
        let mut conn = self.conn().await?;
        let select = conn.exec::<(String, String, Value), _, _>(
            "SELECT path, version, timestamp FROM indexes WHERE timestamp >= ? \
             ORDER BY timestamp, id LIMIT ?",
            (datetime_value(since), limit),
        );
        let rows = bounded(self.statement_timeout, "listing", select).await?;
        rows.into_iter()
            .map(|(path, version, timestamp)| {
                Ok(IndexLine {
                    path,
                    version,
                    timestamp: from_datetime_value(&timestamp)?,
                })
            })
            .collect()
    }
}

/// A UTC time as a MySQL DATETIME value (microseconds, as `TIMESTAMP(6)`
/// keeps); times before year 0 or after 9999 are clamped.
fn datetime_value(t: OffsetDateTime) -> Value {
    let t = t.to_offset(time::UtcOffset::UTC);
    let year = t.year().clamp(0, 9999) as u16;
    Value::Date(
        year,
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond(),
    )
}

fn from_datetime_value(value: &Value) -> Result<OffsetDateTime, IndexError> {
    let bad = || backend(format!("unexpected timestamp value {value:?}"));
    match *value {
        Value::Date(year, month, day, hour, minute, second, micros) => {
            let month = Month::try_from(month).map_err(|_| bad())?;
            let date = Date::from_calendar_date(i32::from(year), month, day).map_err(|_| bad())?;
            let time = Time::from_hms_micro(hour, minute, second, micros).map_err(|_| bad())?;
            Ok(PrimitiveDateTime::new(date, time).assume_utc())
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use std::collections::BTreeMap;

    fn config(params: &[(&str, &str)]) -> MySqlConfig {
        MySqlConfig {
            password: Secret::new("hunter2"),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            ..MySqlConfig::default()
        }
    }

    #[test]
    fn params_as_athens_driver_reads_them() {
        let s = settings(&config(&[
            ("parseTime", "true"),
            ("timeout", "30s"),
            ("readTimeout", "2s"),
            ("writeTimeout", "5s"),
            ("charset", "utf8mb4,utf8"),
            ("sql_mode", "'ANSI_QUOTES'"),
        ]))
        .unwrap();
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(30)));
        assert_eq!(s.statement_timeout, Some(Duration::from_secs(5)));
        assert_eq!(s.ignored, ["parseTime"]);
        let opts = mysql_async::Opts::from(s.opts);
        assert_eq!(
            opts.init(),
            [
                "SET time_zone = '+00:00'",
                "SET NAMES utf8mb4",
                "SET sql_mode='ANSI_QUOTES'"
            ]
        );
        assert_eq!(opts.tcp_port(), 3306);
        assert!(opts.ssl_opts().is_none());
        let tls = settings(&config(&[("tls", "skip-verify")])).unwrap();
        let opts = mysql_async::Opts::from(tls.opts);
        assert!(opts.ssl_opts().unwrap().accept_invalid_certs());
    }

    #[test]
    fn malformed_params_are_refused_without_the_password() {
        for params in [
            &[("timeout", "30")][..],
            &[("tls", "custom-config")],
            &[("sql_mode; DROP TABLE x", "1")],
            &[("charset", "utf8; x")],
        ] {
            let err = settings(&config(params)).err().unwrap();
            assert!(err.contains("Index.MySQL.Params"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        let mut c = config(&[]);
        c.protocol = "udp".into();
        assert!(settings(&c).err().unwrap().contains("Protocol"));
        c.protocol = "tcp".into();
        c.port = 70000;
        assert!(settings(&c).err().unwrap().contains("Port"));
    }

    #[test]
    fn datetime_values_round_trip() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let back = from_datetime_value(&datetime_value(t)).unwrap();
        assert_eq!(back, t.replace_nanosecond(123_456_000).unwrap());
    }
}
