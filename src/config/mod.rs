//! Server configuration: the same `athens.toml` keys, defaults and
//! environment variables as Athens, read with serde and checked at start.
//!
//! Order of precedence (lowest first): built-in defaults, the TOML file,
//! environment variables. Key names in the file match case-insensitively,
//! like Athens' TOML decoder; keys that match nothing are reported as
//! warnings (see [`LoadedConfig::warnings`]) and otherwise ignored.

mod proxies;
mod settings;
mod supported;
mod types;

use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

pub use proxies::{parse_trusted_proxies, IpRange, DEFAULT_TRUSTED_PROXIES};
pub use settings::{
    example_config, help_text, readme_reference, settings, AzureBlobConfig, Config, DiskConfig,
    Etcd, ExternalConfig, GcpConfig, Index, MinioConfig, MongoConfig, MySqlConfig, PostgresConfig,
    Redis, RedisLockConfig, RedisSentinel, S3Config, Setting, SingleFlight, SingleFlightGcp,
    Storage, EXAMPLE_CONFIG_FILE, README_END, README_START,
};
pub use types::{EnvList, Secret, SingleFlightType, StorageType};

/// Upper bound of `MaxPendingFetches` and `MaxConnections`: far above any
/// sane setting, and below what a semaphore can count.
pub const MAX_ADMISSION_COUNT: usize = 1 << 24;

/// The file read from the working directory when no file is named.
pub const DEFAULT_CONFIG_FILE: &str = "athens.toml";

/// How `/@v/list` and `/@latest` combine storage with upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// Merge upstream and storage; fail when upstream fails.
    Strict,
    /// Use storage only, never contact upstream for listings.
    Offline,
    /// Merge when upstream answers, fall back to storage when it fails.
    Fallback,
}

impl NetworkMode {
    /// Parses `strict`, `offline` or `fallback`.
    pub fn parse(value: &str) -> Option<NetworkMode> {
        match value {
            "strict" => Some(NetworkMode::Strict),
            "offline" => Some(NetworkMode::Offline),
            "fallback" => Some(NetworkMode::Fallback),
            _ => None,
        }
    }
}

/// A configuration that was read successfully, with what the reader noticed.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The effective configuration.
    pub config: Config,
    /// Non-fatal problems (unknown keys, half-set TLS, ...) for the caller to log.
    pub warnings: Vec<String>,
    /// The file that was read, if any.
    pub file: Option<PathBuf>,
}

/// One setting that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSetting {
    /// TOML key, like `Storage.Disk.RootPath`.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or a value has the wrong type.
    #[error("parsing config file {path}: {message}")]
    Parse {
        /// The file (or `<string>` for in-memory text).
        path: PathBuf,
        /// Parser message, naming the key or line.
        message: String,
    },
    /// An environment variable holds a value of the wrong form.
    #[error("environment variable {var}: {reason}")]
    Env {
        /// The variable name.
        var: String,
        /// What is wrong (the value itself is not repeated: it may be secret).
        reason: String,
    },
    /// One or more settings have unacceptable values.
    #[error("invalid configuration: {}", join_invalid(.0))]
    Invalid(Vec<InvalidSetting>),
    /// In production, a config or filter file is writable or executable
    /// by group or others.
    #[error("{path} must not be writable or executable by group or others (mode {mode:o}); use for example chmod 644")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

fn join_invalid(list: &[InvalidSetting]) -> String {
    list.iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

const LOG_LEVELS: &[&str] = &[
    "panic", "fatal", "error", "warn", "warning", "info", "debug", "trace",
];

impl Config {
    /// Loads the configuration the way the binary does: `file` if given,
    /// else `athens.toml` in the working directory if present, else
    /// defaults; then the process environment; then validation.
    pub fn load(file: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
        let env = |name: &str| std::env::var(name).ok();
        let file = match file {
            Some(f) => Some(f.to_path_buf()),
            None => {
                let default = PathBuf::from(DEFAULT_CONFIG_FILE);
                default.is_file().then_some(default)
            }
        };
        Self::load_with_env(file.as_deref(), &env)
    }

    /// Like [`Config::load`] with an explicit file (or none) and an
    /// environment lookup function, so tests need not touch the process
    /// environment.
    pub fn load_with_env(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<LoadedConfig, ConfigError> {
        let Some(path) = file else {
            let mut config = Config::default();
            settings::apply_env(&mut config, env)?;
            let warnings = config.validate()?;
            return Ok(LoadedConfig {
                config,
                warnings,
                file: None,
            });
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut loaded = Self::parse_toml(&text, path, env)?;
        if loaded.config.go_env == "production" {
            check_file_permissions(path)?;
            if !loaded.config.filter_file.is_empty() {
                check_file_permissions(Path::new(&loaded.config.filter_file))?;
            }
        }
        loaded.file = Some(path.to_path_buf());
        Ok(loaded)
    }

    /// Parses TOML text over the defaults, applies `env` and validates.
    pub fn from_toml_str(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<LoadedConfig, ConfigError> {
        Self::parse_toml(text, Path::new("<string>"), env)
    }

    fn parse_toml(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<LoadedConfig, ConfigError> {
        let parse_err = |message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| parse_err(e.to_string().trim_end().replace('\n', " ")))?;
        let mut warnings = Vec::new();
        let table = settings::normalize_keys(table, &mut warnings);
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let key = e.path().to_string();
                parse_err(format!("key {key}: {}", e.inner()))
            })?;
        settings::apply_env(&mut config, env)?;
        warnings.extend(config.validate()?);
        Ok(LoadedConfig {
            config,
            warnings,
            file: None,
        })
    }

    /// Checks every setting; returns warnings for suspicious but usable
    /// values, or all problems at once.
    pub fn validate(&self) -> Result<Vec<String>, ConfigError> {
        let mut bad = Vec::new();
        let mut fail = |key: &str, reason: String| {
            bad.push(InvalidSetting {
                key: key.to_string(),
                reason,
            })
        };
        let required = [
            ("GoEnv", &self.go_env),
            ("GoBinary", &self.go_binary),
            ("LogLevel", &self.log_level),
        ];
        for (key, value) in required {
            if value.is_empty() {
                fail(key, "must not be empty".into());
            }
        }
        if self.timeout == 0 {
            fail("Timeout", "must be greater than 0".into());
        }
        if self.stash_timeout == 0 {
            fail("StashTimeout", "must be greater than 0".into());
        }
        for (key, value) in [
            ("GitMaxRefs", self.git_max_refs),
            ("GitMaxPackBytes", self.git_max_pack_bytes),
            ("GitMaxPackObjects", self.git_max_pack_objects),
            ("GitMaxObjectBytes", self.git_max_object_bytes),
        ] {
            if value == 0 {
                fail(key, "must be greater than 0".into());
            }
        }
        if self.go_get_workers == 0 {
            fail("GoGetWorkers", "must be greater than 0".into());
        }
        if self.max_tree_depth == 0 {
            fail("MaxTreeDepth", "must be greater than 0".into());
        }
        if self.max_module_files == 0 {
            fail("MaxModuleFiles", "must be greater than 0".into());
        }
        if self.protocol_workers == 0 {
            fail("ProtocolWorkers", "must be greater than 0".into());
        }
        for (key, value) in [
            ("MaxPendingFetches", self.max_pending_fetches),
            ("MaxConnections", self.max_connections),
        ] {
            if value == 0 {
                fail(key, "must be greater than 0".into());
            } else if value > MAX_ADMISSION_COUNT {
                fail(key, format!("must be at most {MAX_ADMISSION_COUNT}"));
            }
        }
        if self.read_header_timeout == 0 {
            fail("ReadHeaderTimeout", "must be greater than 0".into());
        }
        if self.idle_timeout == 0 {
            fail("IdleTimeout", "must be greater than 0".into());
        }
        if !self.log_level.is_empty()
            && !LOG_LEVELS.contains(&self.log_level.to_ascii_lowercase().as_str())
        {
            fail(
                "LogLevel",
                format!(
                    "unknown level {:?} (use one of {})",
                    self.log_level,
                    LOG_LEVELS.join(", ")
                ),
            );
        }
        if !matches!(self.log_format.as_str(), "" | "json" | "plain") {
            fail(
                "LogFormat",
                format!("{:?} is not one of \"plain\", \"json\"", self.log_format),
            );
        }
        if self.log_format.is_empty() && self.cloud_runtime.is_empty() {
            fail("CloudRuntime", "must be set when LogFormat is empty".into());
        }
        if NetworkMode::parse(&self.network_mode).is_none() {
            fail(
                "NetworkMode",
                format!(
                    "{:?} is not one of \"strict\", \"offline\", \"fallback\"",
                    self.network_mode
                ),
            );
        }
        if !(0.0..=1.0).contains(&self.trace_sampling_fraction) {
            fail(
                "TraceSamplingFraction",
                "must be between 0.0 and 1.0".into(),
            );
        }
        if let Err(reason) = self.go_binary_env_vars.validate() {
            fail("GoBinaryEnvVars", reason);
        }
        if port_to_addr(&self.port).is_none() {
            fail(
                "Port",
                format!("{:?} is neither a port number nor host:port", self.port),
            );
        }
        if !self.path_prefix.is_empty() && !self.path_prefix.starts_with('/') {
            fail(
                "PathPrefix",
                format!("{:?} must start with '/'", self.path_prefix),
            );
        }
        for sumdb in &self.sum_dbs {
            let host = sumdb.strip_prefix("https://").unwrap_or("");
            if host.is_empty() || host.starts_with('/') {
                fail(
                    "SumDBs",
                    format!("{sumdb:?} must be an https:// URL with a host"),
                );
            }
        }
        if let Err(reason) = parse_trusted_proxies(&self.trusted_proxies) {
            fail("TrustedProxies", reason);
        }
        if !self.github_token.is_empty() && !self.netrc_path.is_empty() {
            fail(
                "GithubToken",
                "cannot be used together with NETRCPath".into(),
            );
        }
        self.validate_storage(&mut fail);
        self.refuse_unsupported(&mut fail);
        match self.index_type.as_str() {
            "" | "none" | "memory" => {}
            "mysql" => {
                let m = &self.index.mysql;
                let checks = [
                    ("Protocol", m.protocol.is_empty()),
                    ("Host", m.host.is_empty()),
                    ("User", m.user.is_empty()),
                    ("Database", m.database.is_empty()),
                    ("Params", m.params.is_empty()),
                ];
                require_all("Index.MySQL", &checks, &mut fail);
            }
            "postgres" => {
                let p = &self.index.postgres;
                let checks = [
                    ("Host", p.host.is_empty()),
                    ("Port", p.port == 0),
                    ("User", p.user.is_empty()),
                    ("Database", p.database.is_empty()),
                    ("Params", p.params.is_empty()),
                ];
                require_all("Index.Postgres", &checks, &mut fail);
            }
            other => fail("IndexType", format!("index type {other:?} is unknown")),
        }
        let lease_storage = match self.single_flight_type {
            SingleFlightType::Gcp => Some(StorageType::Gcp),
            SingleFlightType::AzureBlob => Some(StorageType::AzureBlob),
            _ => None,
        };
        if let Some(needed) = lease_storage.filter(|needed| *needed != self.storage_type) {
            fail(
                "SingleFlightType",
                format!(
                    "{:?} only works with StorageType {:?}, not {:?}",
                    self.single_flight_type.as_str(),
                    needed.as_str(),
                    self.storage_type.as_str()
                ),
            );
        }
        if !bad.is_empty() {
            return Err(ConfigError::Invalid(bad));
        }
        let mut warnings = Vec::new();
        if self.tls_cert_file.is_empty() != self.tls_key_file.is_empty() {
            warnings.push(
                "only one of TLSCertFile and TLSKeyFile is set; serving plain HTTP".to_string(),
            );
        }
        warnings.extend(self.ignored_settings());
        Ok(warnings)
    }

    fn validate_storage(&self, fail: &mut impl FnMut(&str, String)) {
        let s = &self.storage;
        let required: Vec<(&str, bool)> = match self.storage_type {
            StorageType::Memory => vec![],
            StorageType::Disk => vec![("Storage.Disk.RootPath", s.disk.root_path.is_empty())],
            StorageType::Mongo => vec![("Storage.Mongo.URL", s.mongo.url.is_empty())],
            StorageType::Minio => vec![
                ("Storage.Minio.Endpoint", s.minio.endpoint.is_empty()),
                ("Storage.Minio.Key", s.minio.key.is_empty()),
                ("Storage.Minio.Secret", s.minio.secret.is_empty()),
                ("Storage.Minio.Bucket", s.minio.bucket.is_empty()),
            ],
            StorageType::Gcp => vec![("Storage.GCP.Bucket", s.gcp.bucket.is_empty())],
            StorageType::S3 => vec![
                ("Storage.S3.Region", s.s3.region.is_empty()),
                ("Storage.S3.Bucket", s.s3.bucket.is_empty()),
            ],
            StorageType::AzureBlob => vec![
                (
                    "Storage.AzureBlob.AccountName",
                    s.azure_blob.account_name.is_empty(),
                ),
                (
                    "Storage.AzureBlob.ContainerName",
                    s.azure_blob.container_name.is_empty(),
                ),
            ],
            StorageType::External => vec![("Storage.External.URL", s.external.url.is_empty())],
        };
        for (key, missing) in required {
            if missing {
                fail(
                    key,
                    format!(
                        "is required when StorageType is {:?}",
                        self.storage_type.as_str()
                    ),
                );
            }
        }
    }

    /// [`Config::timeout`] as a duration.
    pub fn timeout_duration(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }

    /// The bounds on git trees the native fetcher reads:
    /// [`Config::max_tree_depth`] and [`Config::max_module_files`].
    pub fn tree_limits(&self) -> vcs::git::TreeLimits {
        vcs::git::TreeLimits {
            max_depth: self.max_tree_depth,
            max_entries: self.max_module_files,
        }
    }

    /// [`Config::stash_timeout`] as a duration.
    pub fn stash_timeout_duration(&self) -> Duration {
        Duration::from_secs(self.stash_timeout)
    }

    /// The git transfer limits (`GitMaxRefs`, `GitMaxPackBytes`,
    /// `GitMaxPackObjects`, `GitMaxObjectBytes`).
    pub fn git_limits(&self) -> vcs::git::GitLimits {
        vcs::git::GitLimits {
            max_refs: usize::try_from(self.git_max_refs).unwrap_or(usize::MAX),
            max_pack_bytes: self.git_max_pack_bytes,
            max_pack_objects: self.git_max_pack_objects,
            max_object_bytes: self.git_max_object_bytes,
        }
    }

    /// [`Config::read_header_timeout`] as a duration.
    pub fn read_header_timeout_duration(&self) -> Duration {
        Duration::from_secs(self.read_header_timeout)
    }

    /// [`Config::idle_timeout`] as a duration.
    pub fn idle_timeout_duration(&self) -> Duration {
        Duration::from_secs(self.idle_timeout)
    }

    /// [`Config::shutdown_timeout`] as a duration.
    pub fn shutdown_timeout_duration(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout)
    }

    /// The network mode; `Strict` when the value is invalid (validation
    /// rejects that earlier).
    pub fn network_mode(&self) -> NetworkMode {
        NetworkMode::parse(&self.network_mode).unwrap_or(NetworkMode::Strict)
    }

    /// User and password when both are set (basic auth is then enabled).
    pub fn basic_auth(&self) -> Option<(&str, &str)> {
        (!self.basic_auth_user.is_empty() && !self.basic_auth_pass.is_empty())
            .then(|| (self.basic_auth_user.as_str(), self.basic_auth_pass.expose()))
    }

    /// The TCP address to listen on: `:3000` becomes `0.0.0.0:3000`.
    pub fn listen_addr(&self) -> String {
        port_to_addr(&self.port).unwrap_or_else(|| self.port.clone())
    }
}

fn require_all(prefix: &str, checks: &[(&str, bool)], fail: &mut impl FnMut(&str, String)) {
    for (key, missing) in checks {
        if *missing {
            fail(
                &format!("{prefix}.{key}"),
                "is required for this IndexType".into(),
            );
        }
    }
}

/// Turns Athens' port notation into a socket address string: a bare
/// number or `:N` listens on every interface.
fn port_to_addr(port: &str) -> Option<String> {
    let is_port = |s: &str| !s.is_empty() && s.parse::<u16>().is_ok();
    if is_port(port) {
        return Some(format!("0.0.0.0:{port}"));
    }
    if let Some(num) = port.strip_prefix(':') {
        return is_port(num).then(|| format!("0.0.0.0:{num}"));
    }
    let (host, num) = port.rsplit_once(':')?;
    (!host.is_empty() && is_port(num)).then(|| port.to_string())
}

#[cfg(unix)]
fn check_file_permissions(path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    // A missing file is reported by whoever reads it; only the bits matter here.
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o033 != 0 {
        return Err(ConfigError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_file_permissions(_path: &Path) -> Result<(), ConfigError> {
    Ok(())
}

#[cfg(test)]
mod tests;
