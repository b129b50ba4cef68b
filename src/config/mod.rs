//! Server configuration: the same `athens.toml` keys, defaults and
//! environment variables as Athens, read with serde and checked at start.
//!
//! Order of precedence (lowest first): built-in defaults, the TOML file,
//! environment variables. Key names in the file match case-insensitively,
//! like Athens' TOML decoder; keys that match nothing are reported as
//! warnings (see [`LoadedConfig::warnings`]) and otherwise ignored.

mod proxies;
mod settings;
mod types;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

pub use proxies::{parse_trusted_proxies, IpRange, DEFAULT_TRUSTED_PROXIES};
pub use settings::{help_text, settings, Setting};
pub use types::{EnvList, Secret};

/// Upper bound of `MaxPendingFetches` and `MaxConnections`: far above any
/// sane setting, and below what a semaphore can count.
pub const MAX_ADMISSION_COUNT: usize = 1 << 24;

/// The file read from the working directory when no file is named.
pub const DEFAULT_CONFIG_FILE: &str = "athens.toml";

/// Every setting of the proxy. Field names follow Athens' `Config`; the
/// TOML key of each field is given by its serde rename.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Timeout in seconds for outbound network calls.
    #[serde(rename = "Timeout")]
    pub timeout: u64,
    /// `development` or `production`.
    #[serde(rename = "GoEnv")]
    pub go_env: String,
    /// The go binary Athens would run; kept for compatibility.
    #[serde(rename = "GoBinary")]
    pub go_binary: String,
    /// Go environment (`GOPROXY`, `GOPRIVATE`, ...) used when fetching.
    #[serde(rename = "GoBinaryEnvVars")]
    pub go_binary_env_vars: EnvList,
    /// How many module fetches may run at once.
    #[serde(rename = "GoGetWorkers")]
    pub go_get_workers: usize,
    /// Directory for temporary files of fetches; empty means the OS default.
    #[serde(rename = "GoGetDir")]
    pub go_get_dir: String,
    /// Size budget of the git cache (`GoGetDir/vcs`) in bytes; least
    /// recently used repositories are evicted past it. 0: no budget.
    #[serde(rename = "GitCacheMaxBytes")]
    pub git_cache_max_bytes: u64,
    /// How many download-protocol requests are processed at once.
    #[serde(rename = "ProtocolWorkers")]
    pub protocol_workers: usize,
    /// Log level (`trace`, `debug`, `info`, `warn`, `error`, ...).
    #[serde(rename = "LogLevel")]
    pub log_level: String,
    /// `plain`, `json` or empty.
    #[serde(rename = "LogFormat")]
    pub log_format: String,
    /// `GCP` or `none`.
    #[serde(rename = "CloudRuntime")]
    pub cloud_runtime: String,
    /// Whether pprof-style debug endpoints are exposed.
    #[serde(rename = "EnablePprof")]
    pub enable_pprof: bool,
    /// Listen address of the debug endpoints.
    #[serde(rename = "PprofPort")]
    pub pprof_port: String,
    /// Path of the include/exclude filter file.
    #[serde(rename = "FilterFile")]
    pub filter_file: String,
    /// OTLP collector endpoint.
    #[serde(rename = "TraceExporterURL")]
    pub trace_exporter_url: String,
    /// Trace exporter (`otlp` or empty).
    #[serde(rename = "TraceExporter")]
    pub trace_exporter: String,
    /// Fraction of root traces sampled.
    #[serde(rename = "TraceSamplingFraction")]
    pub trace_sampling_fraction: f64,
    /// Stats exporter (`prometheus` or empty).
    #[serde(rename = "StatsExporter")]
    pub stats_exporter: String,
    /// Storage backend: `memory`, `disk`, `mongo`, `gcp`, `minio`, `s3`,
    /// `azureblob` or `external`.
    #[serde(rename = "StorageType")]
    pub storage_type: String,
    /// Upstream endpoint used by the filter's `D` rule.
    #[serde(rename = "GlobalEndpoint")]
    pub global_endpoint: String,
    /// Listen address: `:3000`, `3000` or `host:port`.
    #[serde(rename = "Port")]
    pub port: String,
    /// Unix socket to listen on instead of TCP when set.
    #[serde(rename = "UnixSocket")]
    pub unix_socket: String,
    /// Basic-auth user name (auth is on when user and password are set).
    #[serde(rename = "BasicAuthUser")]
    pub basic_auth_user: String,
    /// Basic-auth password.
    #[serde(rename = "BasicAuthPass")]
    pub basic_auth_pass: Secret,
    /// Go HTML template for the home page.
    #[serde(rename = "HomeTemplatePath")]
    pub home_template_path: String,
    /// Redirect plain HTTP to HTTPS.
    #[serde(rename = "ForceSSL")]
    pub force_ssl: bool,
    /// Peers (IP addresses or CIDR ranges) whose `X-Forwarded-Proto` is
    /// believed; loopback only by default.
    #[serde(rename = "TrustedProxies")]
    pub trusted_proxies: Vec<String>,
    /// URL of a validation hook called before serving a module. It may hold
    /// credentials, so it is never shown in logs.
    #[serde(rename = "ValidatorHook")]
    pub validator_hook: Secret,
    /// Path prefix under which the proxy is served.
    #[serde(rename = "PathPrefix")]
    pub path_prefix: String,
    /// `.netrc` file to install for private repositories.
    #[serde(rename = "NETRCPath")]
    pub netrc_path: String,
    /// GitHub token used to build a `.netrc`.
    #[serde(rename = "GithubToken")]
    pub github_token: Secret,
    /// `.hgrc` file to install.
    #[serde(rename = "HGRCPath")]
    pub hgrc_path: String,
    /// TLS certificate file.
    #[serde(rename = "TLSCertFile")]
    pub tls_cert_file: String,
    /// TLS key file.
    #[serde(rename = "TLSKeyFile")]
    pub tls_key_file: String,
    /// Checksum databases proxied under `/sumdb/`.
    #[serde(rename = "SumDBs")]
    pub sum_dbs: Vec<String>,
    /// Module patterns for which the sumdb proxy answers 403.
    #[serde(rename = "NoSumPatterns")]
    pub no_sum_patterns: Vec<String>,
    /// Signer key file (`athens sumdb-keygen`) of the private checksum
    /// database served under `/sumdb/<name>/`; empty for none.
    #[serde(rename = "PrivateSumDBKeyFile")]
    pub private_sumdb_key_file: String,
    /// What to do on a storage miss: `sync`, `async`, `redirect`,
    /// `async_redirect`, `none`, `file:<path>` or `custom:<base64>`.
    #[serde(rename = "DownloadMode")]
    pub download_mode: String,
    /// Redirect target for the redirect download modes.
    #[serde(rename = "DownloadURL")]
    pub download_url: String,
    /// `strict`, `offline` or `fallback`; see [`NetworkMode`].
    #[serde(rename = "NetworkMode")]
    pub network_mode: String,
    /// Single-flight mechanism: `memory`, `etcd`, `redis`,
    /// `redis-sentinel`, `gcp` or `azureblob`.
    #[serde(rename = "SingleFlightType")]
    pub single_flight_type: String,
    /// robots.txt file served at `/robots.txt`.
    #[serde(rename = "RobotsFile")]
    pub robots_file: String,
    /// Index backend: `none`, `memory`, `mysql` or `postgres`.
    #[serde(rename = "IndexType")]
    pub index_type: String,
    /// Seconds in-flight requests get to finish after a shutdown signal.
    #[serde(rename = "ShutdownTimeout")]
    pub shutdown_timeout: u64,
    /// Seconds one fetch-and-save of a module may take.
    #[serde(rename = "StashTimeout")]
    pub stash_timeout: u64,
    /// Deepest git tree the native fetcher reads (git's
    /// `core.maxTreeDepth`); deeper repositories are refused as git
    /// refuses them.
    #[serde(rename = "MaxTreeDepth")]
    pub max_tree_depth: usize,
    /// Most git tree entries the native fetcher reads to build one module
    /// zip; bounds the work and memory a hostile repository can cause.
    #[serde(rename = "MaxModuleFiles")]
    pub max_module_files: usize,
    /// Branches and tags a git origin may advertise (its ref advertisement
    /// may also take at most 1 KiB per allowed ref).
    #[serde(rename = "GitMaxRefs")]
    pub git_max_refs: u64,
    /// Bytes one git object transfer may receive.
    #[serde(rename = "GitMaxPackBytes")]
    pub git_max_pack_bytes: u64,
    /// Objects one received git pack may hold.
    #[serde(rename = "GitMaxPackObjects")]
    pub git_max_pack_objects: u64,
    /// How many distinct module versions may wait for or run a fetch at
    /// once (and how many list/`@latest` lookups may queue); past it
    /// requests that need a fetch get 503 with `Retry-After`.
    #[serde(rename = "MaxPendingFetches")]
    pub max_pending_fetches: usize,
    /// Seconds a client has to send a request's headers (from the
    /// connection's start, or from the first byte of a later request).
    #[serde(rename = "ReadHeaderTimeout")]
    pub read_header_timeout: u64,
    /// Seconds an idle keep-alive connection is kept open.
    #[serde(rename = "IdleTimeout")]
    pub idle_timeout: u64,
    /// Most client connections served at once; more wait to be accepted.
    #[serde(rename = "MaxConnections")]
    pub max_connections: usize,
    /// Settings of the distributed single-flight backends.
    #[serde(rename = "SingleFlight")]
    pub single_flight: SingleFlight,
    /// Settings of the storage backends.
    #[serde(rename = "Storage")]
    pub storage: Storage,
    /// Settings of the index backends.
    #[serde(rename = "Index")]
    pub index: Index,
}

/// `[SingleFlight]`: one table per distributed locking backend.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct SingleFlight {
    /// `[SingleFlight.Etcd]`.
    #[serde(rename = "Etcd")]
    pub etcd: Etcd,
    /// `[SingleFlight.Redis]`.
    #[serde(rename = "Redis")]
    pub redis: Redis,
    /// `[SingleFlight.RedisSentinel]`.
    #[serde(rename = "RedisSentinel")]
    pub redis_sentinel: RedisSentinel,
    /// `[SingleFlight.GCP]`.
    #[serde(rename = "GCP")]
    pub gcp: SingleFlightGcp,
}

/// etcd single-flight settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct Etcd {
    /// Comma-separated etcd endpoints.
    #[serde(rename = "Endpoints")]
    pub endpoints: String,
}

/// Redis single-flight settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct Redis {
    /// `host:port` or a redis URL.
    #[serde(rename = "Endpoint")]
    pub endpoint: String,
    /// Redis password.
    #[serde(rename = "Password")]
    pub password: Secret,
    /// Use a cluster client.
    #[serde(rename = "Cluster")]
    pub cluster: bool,
    /// Lock tuning.
    #[serde(rename = "LockConfig")]
    pub lock_config: RedisLockConfig,
}

/// Redis-sentinel single-flight settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct RedisSentinel {
    /// Sentinel endpoints.
    #[serde(rename = "Endpoints")]
    pub endpoints: Vec<String>,
    /// Name of the master to discover.
    #[serde(rename = "MasterName")]
    pub master_name: String,
    /// Sentinel password.
    #[serde(rename = "SentinelPassword")]
    pub sentinel_password: Secret,
    /// Redis user name.
    #[serde(rename = "RedisUsername")]
    pub redis_username: String,
    /// Redis password.
    #[serde(rename = "RedisPassword")]
    pub redis_password: Secret,
    /// Redis database number.
    #[serde(rename = "DB")]
    pub db: i64,
    /// Lock tuning.
    #[serde(rename = "LockConfig")]
    pub lock_config: RedisLockConfig,
}

/// Redis lock tuning.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct RedisLockConfig {
    /// Seconds to wait for the lock.
    #[serde(rename = "Timeout")]
    pub timeout: u64,
    /// Lock time-to-live in seconds.
    #[serde(rename = "TTL")]
    pub ttl: u64,
    /// Attempts to take the lock.
    #[serde(rename = "MaxRetries")]
    pub max_retries: u64,
}

/// GCS single-flight settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct SingleFlightGcp {
    /// Seconds after which an unfinished upload counts as failed.
    #[serde(rename = "StaleThreshold")]
    pub stale_threshold: u64,
}

/// `[Storage]`: one table per backend; only the selected one is checked.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Storage {
    /// `[Storage.Disk]`.
    #[serde(rename = "Disk")]
    pub disk: DiskConfig,
    /// `[Storage.GCP]`.
    #[serde(rename = "GCP")]
    pub gcp: GcpConfig,
    /// `[Storage.Minio]`.
    #[serde(rename = "Minio")]
    pub minio: MinioConfig,
    /// `[Storage.Mongo]`.
    #[serde(rename = "Mongo")]
    pub mongo: MongoConfig,
    /// `[Storage.S3]`.
    #[serde(rename = "S3")]
    pub s3: S3Config,
    /// `[Storage.AzureBlob]`.
    #[serde(rename = "AzureBlob")]
    pub azure_blob: AzureBlobConfig,
    /// `[Storage.External]`.
    #[serde(rename = "External")]
    pub external: ExternalConfig,
}

/// Disk storage settings.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct DiskConfig {
    /// Root directory of the module tree; must exist.
    #[serde(rename = "RootPath")]
    pub root_path: String,
}

/// Google Cloud Storage settings.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct GcpConfig {
    /// Project id.
    #[serde(rename = "ProjectID")]
    pub project_id: String,
    /// Bucket name.
    #[serde(rename = "Bucket")]
    pub bucket: String,
    /// Base64 service-account key.
    #[serde(rename = "JSONKey")]
    pub json_key: Secret,
}

/// Minio settings.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct MinioConfig {
    /// Endpoint `host:port`.
    #[serde(rename = "Endpoint")]
    pub endpoint: String,
    /// Access key id.
    #[serde(rename = "Key")]
    pub key: String,
    /// Secret access key.
    #[serde(rename = "Secret")]
    pub secret: Secret,
    /// Bucket name.
    #[serde(rename = "Bucket")]
    pub bucket: String,
    /// Region.
    #[serde(rename = "Region")]
    pub region: String,
    /// Use TLS.
    #[serde(rename = "EnableSSL")]
    pub enable_ssl: bool,
}

/// MongoDB settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct MongoConfig {
    /// Connection string (may hold credentials).
    #[serde(rename = "URL")]
    pub url: Secret,
    /// Database used when the URL names none.
    #[serde(rename = "DefaultDBName")]
    pub default_db_name: String,
    /// Collection name.
    #[serde(rename = "DefaultCollectionName")]
    pub default_collection_name: String,
    /// CA certificate path.
    #[serde(rename = "CertPath")]
    pub cert_path: String,
    /// Skip TLS verification.
    #[serde(rename = "InsecureConn")]
    pub insecure_conn: bool,
}

/// S3 settings.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct S3Config {
    /// Region.
    #[serde(rename = "Region")]
    pub region: String,
    /// Access key id.
    #[serde(rename = "Key")]
    pub key: String,
    /// Secret access key.
    #[serde(rename = "Secret")]
    pub secret: Secret,
    /// Session token.
    #[serde(rename = "Token")]
    pub token: Secret,
    /// Bucket name.
    #[serde(rename = "Bucket")]
    pub bucket: String,
    /// Use only the SDK's default credential chain.
    #[serde(rename = "UseDefaultConfiguration")]
    pub use_default_configuration: bool,
    /// Path-style bucket URLs.
    #[serde(rename = "ForcePathStyle")]
    pub force_path_style: bool,
    /// Credentials endpoint.
    #[serde(rename = "CredentialsEndpoint")]
    pub credentials_endpoint: String,
    /// Container credentials relative URI.
    #[serde(rename = "AwsContainerCredentialsRelativeURI")]
    pub aws_container_credentials_relative_uri: String,
    /// Endpoint override.
    #[serde(rename = "Endpoint")]
    pub endpoint: String,
}

/// Azure Blob settings.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct AzureBlobConfig {
    /// Storage account.
    #[serde(rename = "AccountName")]
    pub account_name: String,
    /// Account key.
    #[serde(rename = "AccountKey")]
    pub account_key: Secret,
    /// Managed identity resource id.
    #[serde(rename = "ManagedIdentityResourceID")]
    pub managed_identity_resource_id: String,
    /// Credential scope.
    #[serde(rename = "CredentialScope")]
    pub credential_scope: String,
    /// Container name.
    #[serde(rename = "ContainerName")]
    pub container_name: String,
}

/// External storage settings.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct ExternalConfig {
    /// Base URL of the external storage service.
    #[serde(rename = "URL")]
    pub url: String,
}

/// `[Index]`: index backends.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Index {
    /// `[Index.MySQL]`.
    #[serde(rename = "MySQL")]
    pub mysql: MySqlConfig,
    /// `[Index.Postgres]`.
    #[serde(rename = "Postgres")]
    pub postgres: PostgresConfig,
}

/// MySQL index connection settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct MySqlConfig {
    /// Network protocol.
    #[serde(rename = "Protocol")]
    pub protocol: String,
    /// Host name.
    #[serde(rename = "Host")]
    pub host: String,
    /// Port.
    #[serde(rename = "Port")]
    pub port: u32,
    /// User.
    #[serde(rename = "User")]
    pub user: String,
    /// Password.
    #[serde(rename = "Password")]
    pub password: Secret,
    /// Database name.
    #[serde(rename = "Database")]
    pub database: String,
    /// Driver parameters.
    #[serde(rename = "Params")]
    pub params: BTreeMap<String, String>,
}

/// Postgres index connection settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct PostgresConfig {
    /// Host name.
    #[serde(rename = "Host")]
    pub host: String,
    /// Port.
    #[serde(rename = "Port")]
    pub port: u32,
    /// User.
    #[serde(rename = "User")]
    pub user: String,
    /// Password.
    #[serde(rename = "Password")]
    pub password: Secret,
    /// Database name.
    #[serde(rename = "Database")]
    pub database: String,
    /// Connection parameters.
    #[serde(rename = "Params")]
    pub params: BTreeMap<String, String>,
}

fn string_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Default for MySqlConfig {
    fn default() -> Self {
        MySqlConfig {
            protocol: "tcp".into(),
            host: "localhost".into(),
            port: 3306,
            user: "root".into(),
            password: Secret::default(),
            database: "athens".into(),
            params: string_map(&[("parseTime", "true"), ("timeout", "30s")]),
        }
    }
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            host: "localhost".into(),
            port: 5432,
            user: "postgres".into(),
            password: Secret::default(),
            database: "athens".into(),
            params: string_map(&[("connect_timeout", "30"), ("sslmode", "disable")]),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timeout: 300,
            go_env: "development".into(),
            go_binary: "go".into(),
            go_binary_env_vars: EnvList(vec!["GOPROXY=direct".into()]),
            go_get_workers: 10,
            go_get_dir: String::new(),
            git_cache_max_bytes: vcs::git::budget::DEFAULT_MAX_BYTES,
            protocol_workers: 30,
            log_level: "debug".into(),
            log_format: "plain".into(),
            cloud_runtime: "none".into(),
            enable_pprof: false,
            pprof_port: ":3001".into(),
            filter_file: String::new(),
            trace_exporter_url: "http://localhost:4317".into(),
            trace_exporter: String::new(),
            trace_sampling_fraction: 1.0,
            stats_exporter: "prometheus".into(),
            storage_type: "memory".into(),
            global_endpoint: "http://localhost:3001".into(),
            port: ":3000".into(),
            unix_socket: String::new(),
            basic_auth_user: String::new(),
            basic_auth_pass: Secret::default(),
            home_template_path: "/var/lib/athens/home.html".into(),
            force_ssl: false,
            trusted_proxies: DEFAULT_TRUSTED_PROXIES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            validator_hook: Secret::default(),
            path_prefix: String::new(),
            netrc_path: String::new(),
            github_token: Secret::default(),
            hgrc_path: String::new(),
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
            sum_dbs: vec!["https://sum.golang.org".into()],
            no_sum_patterns: Vec::new(),
            private_sumdb_key_file: String::new(),
            download_mode: "sync".into(),
            download_url: String::new(),
            network_mode: "strict".into(),
            single_flight_type: "memory".into(),
            robots_file: "robots.txt".into(),
            index_type: "none".into(),
            shutdown_timeout: 60,
            stash_timeout: 600,
            max_tree_depth: vcs::git::TreeLimits::DEFAULT_MAX_DEPTH,
            max_module_files: vcs::git::TreeLimits::DEFAULT_MAX_ENTRIES,
            git_max_refs: vcs::git::DEFAULT_MAX_REFS as u64,
            git_max_pack_bytes: vcs::git::DEFAULT_MAX_PACK_BYTES,
            git_max_pack_objects: vcs::git::DEFAULT_MAX_PACK_OBJECTS,
            max_pending_fetches: 1000,
            read_header_timeout: 10,
            idle_timeout: 120,
            max_connections: 4096,
            single_flight: SingleFlight::default(),
            storage: Storage::default(),
            index: Index::default(),
        }
    }
}

impl Default for Etcd {
    fn default() -> Self {
        Etcd {
            endpoints: "localhost:2379,localhost:22379,localhost:32379".into(),
        }
    }
}

impl Default for Redis {
    fn default() -> Self {
        Redis {
            endpoint: "127.0.0.1:6379".into(),
            password: Secret::default(),
            cluster: false,
            lock_config: RedisLockConfig::default(),
        }
    }
}

impl Default for RedisSentinel {
    fn default() -> Self {
        RedisSentinel {
            endpoints: vec!["127.0.0.1:26379".into()],
            master_name: "redis-1".into(),
            sentinel_password: Secret::new("sekret"),
            redis_username: String::new(),
            redis_password: Secret::default(),
            db: 0,
            lock_config: RedisLockConfig::default(),
        }
    }
}

impl Default for RedisLockConfig {
    fn default() -> Self {
        RedisLockConfig {
            timeout: 15,
            ttl: 900,
            max_retries: 10,
        }
    }
}

impl Default for SingleFlightGcp {
    fn default() -> Self {
        SingleFlightGcp {
            stale_threshold: 120,
        }
    }
}

impl Default for MongoConfig {
    fn default() -> Self {
        MongoConfig {
            url: Secret::default(),
            default_db_name: "athens".into(),
            default_collection_name: "modules".into(),
            cert_path: String::new(),
            insecure_conn: false,
        }
    }
}

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

const KNOWN_STORAGE_TYPES: &[&str] = &[
    "memory",
    "disk",
    "mongo",
    "gcp",
    "minio",
    "s3",
    "azureblob",
    "external",
];
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
            ("StorageType", &self.storage_type),
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
        match self.single_flight_type.as_str() {
            "" | "memory" | "etcd" | "redis" | "redis-sentinel" => {}
            "gcp" | "azureblob" if self.single_flight_type == self.storage_type => {}
            "gcp" | "azureblob" => fail(
                "SingleFlightType",
                format!(
                    "{:?} only works with StorageType {:?}, not {:?}",
                    self.single_flight_type, self.single_flight_type, self.storage_type
                ),
            ),
            other => fail(
                "SingleFlightType",
                format!("unrecognized single flight type {other:?}"),
            ),
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
        Ok(warnings)
    }

    fn validate_storage(&self, fail: &mut impl FnMut(&str, String)) {
        let s = &self.storage;
        let required: Vec<(&str, bool)> = match self.storage_type.as_str() {
            "" | "memory" => vec![],
            "disk" => vec![("Storage.Disk.RootPath", s.disk.root_path.is_empty())],
            "mongo" => vec![("Storage.Mongo.URL", s.mongo.url.is_empty())],
            "minio" => vec![
                ("Storage.Minio.Endpoint", s.minio.endpoint.is_empty()),
                ("Storage.Minio.Key", s.minio.key.is_empty()),
                ("Storage.Minio.Secret", s.minio.secret.is_empty()),
                ("Storage.Minio.Bucket", s.minio.bucket.is_empty()),
            ],
            "gcp" => vec![("Storage.GCP.Bucket", s.gcp.bucket.is_empty())],
            "s3" => vec![
                ("Storage.S3.Region", s.s3.region.is_empty()),
                ("Storage.S3.Bucket", s.s3.bucket.is_empty()),
            ],
            "azureblob" => vec![
                (
                    "Storage.AzureBlob.AccountName",
                    s.azure_blob.account_name.is_empty(),
                ),
                (
                    "Storage.AzureBlob.ContainerName",
                    s.azure_blob.container_name.is_empty(),
                ),
            ],
            "external" => vec![("Storage.External.URL", s.external.url.is_empty())],
            other => {
                fail(
                    "StorageType",
                    format!(
                        "storage type {other:?} is unknown (use one of {})",
                        KNOWN_STORAGE_TYPES.join(", ")
                    ),
                );
                vec![]
            }
        };
        for (key, missing) in required {
            if missing {
                fail(
                    key,
                    format!("is required when StorageType is {:?}", self.storage_type),
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
    /// `GitMaxPackObjects`).
    pub fn git_limits(&self) -> vcs::git::GitLimits {
        vcs::git::GitLimits {
            max_refs: usize::try_from(self.git_max_refs).unwrap_or(usize::MAX),
            max_pack_bytes: self.git_max_pack_bytes,
            max_pack_objects: self.git_max_pack_objects,
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
