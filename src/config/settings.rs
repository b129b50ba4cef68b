//! The table of every setting: its TOML key, its environment variable and
//! its description. One table drives environment overrides, the
//! case-insensitive key matching of the file, unknown-key warnings and the
//! `--help` text, so they cannot drift apart.

use std::collections::BTreeMap;

use super::{Config, ConfigError, EnvList, Secret};

/// Description of one configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Dotted TOML key, like `Storage.Disk.RootPath`.
    pub key: &'static str,
    /// The environment variable that overrides it.
    pub env: &'static str,
    /// What the setting does.
    pub doc: &'static str,
}

impl Setting {
    /// Environment variables consulted, first match wins. Like Athens'
    /// envconfig, a top-level setting whose variable lacks the `ATHENS_`
    /// prefix is also looked up with that prefix, and that form wins.
    pub fn env_names(&self) -> Vec<String> {
        if !self.key.contains('.') && !self.env.starts_with("ATHENS_") {
            vec![format!("ATHENS_{}", self.env), self.env.to_string()]
        } else {
            vec![self.env.to_string()]
        }
    }
}

/// A type a setting can have: parsed from an environment variable and
/// shown in the help text.
trait SettingValue: Sized {
    /// Parses an environment value; `Ok(None)` keeps the current value.
    fn parse_env(raw: &str) -> Result<Option<Self>, String>;
    /// The value as it would be written in TOML.
    fn show(&self) -> String;
}

impl SettingValue for String {
    fn parse_env(raw: &str) -> Result<Option<Self>, String> {
        Ok(Some(raw.to_string()))
    }
    fn show(&self) -> String {
        format!("{self:?}")
    }
}

impl SettingValue for Secret {
    fn parse_env(raw: &str) -> Result<Option<Self>, String> {
        Ok(Some(Secret::new(raw)))
    }
    fn show(&self) -> String {
        if self.is_empty() {
            "\"\"".to_string()
        } else {
            "(secret)".to_string()
        }
    }
}

impl SettingValue for bool {
    fn parse_env(raw: &str) -> Result<Option<Self>, String> {
        // The spellings Go's strconv.ParseBool accepts.
        match raw {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Some(true)),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Some(false)),
            _ => Err("expected a boolean (true or false)".to_string()),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

macro_rules! integer_setting {
    ($($t:ty),*) => {$(
        impl SettingValue for $t {
            fn parse_env(raw: &str) -> Result<Option<Self>, String> {
                raw.trim()
                    .parse::<$t>()
                    .map(Some)
                    .map_err(|_| format!("expected an integer in the range of {}", stringify!($t)))
            }
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
integer_setting!(u32, u64, usize, i64);

impl SettingValue for f64 {
    fn parse_env(raw: &str) -> Result<Option<Self>, String> {
        raw.trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| "expected a number".to_string())
    }
    fn show(&self) -> String {
        format!("{self:?}")
    }
}

impl SettingValue for Vec<String> {
    fn parse_env(raw: &str) -> Result<Option<Self>, String> {
        Ok(Some(raw.split(',').map(str::to_string).collect()))
    }
    fn show(&self) -> String {
        let items: Vec<String> = self.iter().map(|s| format!("{s:?}")).collect();
        format!("[{}]", items.join(", "))
    }
}

impl SettingValue for EnvList {
    fn parse_env(raw: &str) -> Result<Option<Self>, String> {
        EnvList::decode(raw)
    }
    fn show(&self) -> String {
        self.0.show()
    }
}

impl SettingValue for BTreeMap<String, String> {
    fn parse_env(raw: &str) -> Result<Option<Self>, String> {
        let mut map = BTreeMap::new();
        for pair in raw.split(',') {
            let (k, v) = pair
                .split_once(':')
                .ok_or_else(|| format!("entry {pair:?} is not of the form key:value"))?;
            map.insert(k.to_string(), v.to_string());
        }
        Ok(Some(map))
    }
    fn show(&self) -> String {
        let items: Vec<String> = self.iter().map(|(k, v)| format!("{k} = {v:?}")).collect();
        format!("{{ {} }}", items.join(", "))
    }
}

macro_rules! settings_table {
    ($( $key:literal, $env:literal, [$($field:ident).+], $doc:literal; )*) => {
        const SETTINGS: &[Setting] = &[ $( Setting { key: $key, env: $env, doc: $doc } ),* ];

        fn set_from_env(config: &mut Config, key: &str, raw: &str) -> Result<(), String> {
            match key {
                $( $key => {
                    if let Some(value) = SettingValue::parse_env(raw)? {
                        config.$($field).+ = value;
                    }
                } )*
                _ => {}
            }
            Ok(())
        }

        pub(super) fn show_value(config: &Config, key: &str) -> String {
            match key {
                $( $key => SettingValue::show(&config.$($field).+), )*
                _ => String::new(),
            }
        }
    };
}

settings_table! {
    "GoEnv", "GO_ENV", [go_env],
        "Kind of deployment: development or production. In production the config and filter files must not be writable or executable by group or others.";
    "GoBinary", "GO_BINARY_PATH", [go_binary],
        "The go binary Athens would run. Accepted for compatibility; this server fetches without it.";
    "GoBinaryEnvVars", "ATHENS_GO_BINARY_ENV_VARS", [go_binary_env_vars],
        "Go environment used for fetching, as KEY=value entries (GOPROXY, GONOPROXY, GOPRIVATE, ...). GOPROXY lists the upstreams. In the environment variable separate entries with ';', e.g. 'GOPROXY=https://proxy.golang.org,direct; GOPRIVATE=corp.example.com'; it replaces the file's list entirely.";
    "GoGetWorkers", "ATHENS_GOGET_WORKERS", [go_get_workers],
        "How many module fetches from upstream may run at the same time.";
    "GoGetDir", "ATHENS_GOGET_DIR", [go_get_dir],
        "Directory of the git cache (vcs/) and temporary files while fetching; must be owned by this user and not world-writable. Empty uses athens-<uid> (mode 0700) in the system temporary directory.";
    "GitCacheMaxBytes", "ATHENS_GIT_CACHE_MAX_BYTES", [git_cache_max_bytes],
        "Size budget of the git cache (GoGetDir/vcs) in bytes; least recently used repositories not in use are evicted past it. 0 means no budget. Default 10737418240 (10 GiB).";
    "ProtocolWorkers", "ATHENS_PROTOCOL_WORKERS", [protocol_workers],
        "How many list and @latest lookups may run at the same time (stored files are served without waiting for one).";
    "LogLevel", "ATHENS_LOG_LEVEL", [log_level],
        "Log level: trace, debug, info, warn, error, fatal or panic.";
    "LogFormat", "ATHENS_LOG_FORMAT", [log_format],
        "Log format: plain or json.";
    "CloudRuntime", "ATHENS_CLOUD_RUNTIME", [cloud_runtime],
        "Cloud provider the proxy runs on: GCP or none. Required when LogFormat is empty.";
    "EnablePprof", "ATHENS_ENABLE_PPROF", [enable_pprof],
        "Expose profiling endpoints. Meant for short debugging sessions only.";
    "PprofPort", "ATHENS_PPROF_PORT", [pprof_port],
        "Listen address of the profiling endpoints.";
    "FilterFile", "ATHENS_FILTER_FILE", [filter_file],
        "File of include/exclude/direct rules for module paths; empty disables filtering.";
    "TraceExporterURL", "ATHENS_TRACE_EXPORTER_URL", [trace_exporter_url],
        "OTLP collector endpoint for traces.";
    "TraceExporter", "ATHENS_TRACE_EXPORTER", [trace_exporter],
        "Trace exporter: otlp, or empty for no tracing.";
    "TraceSamplingFraction", "ATHENS_TRACE_SAMPLING_FRACTION", [trace_sampling_fraction],
        "Fraction of root traces sampled, from 0.0 to 1.0.";
    "StatsExporter", "ATHENS_STATS_EXPORTER", [stats_exporter],
        "Metrics exporter: prometheus, or empty for none.";
    "StorageType", "ATHENS_STORAGE_TYPE", [storage_type],
        "Storage backend: memory, disk, mongo, gcp, minio, s3, azureblob or external.";
    "GlobalEndpoint", "ATHENS_GLOBAL_ENDPOINT", [global_endpoint],
        "Upstream proxy used for modules the filter file marks with D.";
    "Port", "ATHENS_PORT", [port],
        "Listen address: a port number, :PORT or HOST:PORT. The variable PORT is used when ATHENS_PORT is not set.";
    "UnixSocket", "ATHENS_UNIX_SOCKET", [unix_socket],
        "Unix domain socket to listen on; when set it replaces the TCP listener.";
    "BasicAuthUser", "BASIC_AUTH_USER", [basic_auth_user],
        "User name for HTTP basic authentication; auth is enabled when user and password are both set.";
    "BasicAuthPass", "BASIC_AUTH_PASS", [basic_auth_pass],
        "Password for HTTP basic authentication.";
    "HomeTemplatePath", "ATHENS_HOME_TEMPLATE_PATH", [home_template_path],
        "Template file for the home page.";
    "ForceSSL", "PROXY_FORCE_SSL", [force_ssl],
        "Redirect plain HTTP requests to HTTPS.";
    "TrustedProxies", "ATHENS_TRUSTED_PROXIES", [trusted_proxies],
        "IP addresses or CIDR ranges (comma-separated in the variable) of proxies whose X-Forwarded-Proto is believed; default loopback only (127.0.0.0/8, ::1), empty trusts nobody.";
    "ValidatorHook", "ATHENS_PROXY_VALIDATOR", [validator_hook],
        "URL called to approve a module before it is served; empty disables it. Never logged with its user information or query.";
    "PathPrefix", "ATHENS_PATH_PREFIX", [path_prefix],
        "Path prefix under which the proxy is served, e.g. /athens.";
    "NETRCPath", "ATHENS_NETRC_PATH", [netrc_path],
        ".netrc file with credentials for private repositories.";
    "GithubToken", "ATHENS_GITHUB_TOKEN", [github_token],
        "GitHub token for private repositories; cannot be combined with NETRCPath.";
    "HGRCPath", "ATHENS_HGRC_PATH", [hgrc_path],
        ".hgrc file for Mercurial repositories.";
    "TLSCertFile", "ATHENS_TLSCERT_FILE", [tls_cert_file],
        "TLS certificate; HTTPS is served when this and TLSKeyFile are set.";
    "TLSKeyFile", "ATHENS_TLSKEY_FILE", [tls_key_file],
        "TLS private key.";
    "SumDBs", "ATHENS_SUM_DBS", [sum_dbs],
        "Checksum databases proxied under /sumdb/; https URLs. Comma-separated in the variable.";
    "NoSumPatterns", "ATHENS_GONOSUM_PATTERNS", [no_sum_patterns],
        "Module path patterns for which the checksum proxy answers 403. Comma-separated in the variable.";
    "PrivateSumDBKeyFile", "ATHENS_PRIVATE_SUMDB_KEY_FILE", [private_sumdb_key_file],
        "Signer key file (athens sumdb-keygen) of the checksum database of private modules served under /sumdb/NAME/; empty for none.";
    "DownloadMode", "ATHENS_DOWNLOAD_MODE", [download_mode],
        "What to do when a module is not in storage: sync, async, redirect, async_redirect, none, file:PATH or custom:BASE64.";
    "DownloadURL", "ATHENS_DOWNLOAD_URL", [download_url],
        "Redirect target for the redirect download modes.";
    "NetworkMode", "ATHENS_NETWORK_MODE", [network_mode],
        "How listings combine storage and upstream: strict (merge, fail when upstream fails), offline (storage only) or fallback (storage only when upstream fails).";
    "SingleFlightType", "ATHENS_SINGLE_FLIGHT_TYPE", [single_flight_type],
        "How concurrent fetches of one module version are merged: memory, etcd, redis, redis-sentinel, gcp or azureblob.";
    "RobotsFile", "ATHENS_ROBOTS_FILE", [robots_file],
        "File served as /robots.txt.";
    "IndexType", "ATHENS_INDEX_TYPE", [index_type],
        "Index backend: none, memory, mysql or postgres.";
    "ShutdownTimeout", "ATHENS_SHUTDOWN_TIMEOUT", [shutdown_timeout],
        "Seconds in-flight requests get to finish after SIGTERM or Ctrl-C.";
    "StashTimeout", "ATHENS_STASH_TIMEOUT", [stash_timeout],
        "Seconds one fetch-and-store of a module version may take.";
    "MaxTreeDepth", "ATHENS_MAX_TREE_DEPTH", [max_tree_depth],
        "Deepest git tree read (git's core.maxTreeDepth); deeper repositories are refused with 404.";
    "MaxModuleFiles", "ATHENS_MAX_MODULE_FILES", [max_module_files],
        "Most git tree entries read to build one module zip; a larger tree is refused with 404.";
    "Timeout", "ATHENS_TIMEOUT", [timeout],
        "Seconds an outbound network call may take; also the overall deadline of a list, @latest or version query (.info of a branch or partial version) request, answered 504 when missed.";
    "GitMaxRefs", "ATHENS_GIT_MAX_REFS", [git_max_refs],
        "Branches and tags a git origin may advertise; its ref advertisement may take 1 KiB per allowed ref (at least 1 MiB).";
    "GitMaxPackBytes", "ATHENS_GIT_MAX_PACK_BYTES", [git_max_pack_bytes],
        "Bytes one git object transfer from an origin may receive.";
    "GitMaxPackObjects", "ATHENS_GIT_MAX_PACK_OBJECTS", [git_max_pack_objects],
        "Objects one git pack received from an origin may hold.";
    "MaxPendingFetches", "ATHENS_MAX_PENDING_FETCHES", [max_pending_fetches],
        "Most distinct module versions waiting for or running a fetch at once, and most list/@latest lookups waiting for a worker; past it such requests get 503 with Retry-After.";
    "ReadHeaderTimeout", "ATHENS_READ_HEADER_TIMEOUT", [read_header_timeout],
        "Seconds a client has to send a request's headers; slower connections are closed.";
    "IdleTimeout", "ATHENS_IDLE_TIMEOUT", [idle_timeout],
        "Seconds an idle keep-alive connection is kept open.";
    "MaxConnections", "ATHENS_MAX_CONNECTIONS", [max_connections],
        "Most client connections served at once; further connections wait in the listen queue until one closes.";
    "SingleFlight.Etcd.Endpoints", "ATHENS_ETCD_ENDPOINTS", [single_flight.etcd.endpoints],
        "Comma-separated etcd endpoints.";
    "SingleFlight.Redis.Endpoint", "ATHENS_REDIS_ENDPOINT", [single_flight.redis.endpoint],
        "Redis host:port or redis:// URL.";
    "SingleFlight.Redis.Password", "ATHENS_REDIS_PASSWORD", [single_flight.redis.password],
        "Redis password.";
    "SingleFlight.Redis.Cluster", "ATHENS_REDIS_CLUSTER", [single_flight.redis.cluster],
        "Use a Redis Cluster client.";
    "SingleFlight.Redis.LockConfig.Timeout", "ATHENS_REDIS_LOCK_TIMEOUT", [single_flight.redis.lock_config.timeout],
        "Seconds to wait for the lock.";
    "SingleFlight.Redis.LockConfig.TTL", "ATHENS_REDIS_LOCK_TTL", [single_flight.redis.lock_config.ttl],
        "Lock lifetime in seconds.";
    "SingleFlight.Redis.LockConfig.MaxRetries", "ATHENS_REDIS_LOCK_MAX_RETRIES", [single_flight.redis.lock_config.max_retries],
        "Attempts to take the lock.";
    "SingleFlight.RedisSentinel.Endpoints", "ATHENS_REDIS_SENTINEL_ENDPOINTS", [single_flight.redis_sentinel.endpoints],
        "Sentinel endpoints. Comma-separated in the variable.";
    "SingleFlight.RedisSentinel.MasterName", "ATHENS_REDIS_SENTINEL_MASTER_NAME", [single_flight.redis_sentinel.master_name],
        "Name of the master the sentinels report.";
    "SingleFlight.RedisSentinel.SentinelPassword", "ATHENS_REDIS_SENTINEL_PASSWORD", [single_flight.redis_sentinel.sentinel_password],
        "Sentinel password.";
    "SingleFlight.RedisSentinel.RedisUsername", "ATHENS_REDIS_USERNAME", [single_flight.redis_sentinel.redis_username],
        "Redis user name.";
    "SingleFlight.RedisSentinel.RedisPassword", "ATHENS_REDIS_PASSWORD", [single_flight.redis_sentinel.redis_password],
        "Redis password.";
    "SingleFlight.RedisSentinel.DB", "ATHENS_REDIS_SENTINEL_DB", [single_flight.redis_sentinel.db],
        "Redis database number.";
    "SingleFlight.RedisSentinel.LockConfig.Timeout", "ATHENS_REDIS_LOCK_TIMEOUT", [single_flight.redis_sentinel.lock_config.timeout],
        "Seconds to wait for the lock.";
    "SingleFlight.RedisSentinel.LockConfig.TTL", "ATHENS_REDIS_LOCK_TTL", [single_flight.redis_sentinel.lock_config.ttl],
        "Lock lifetime in seconds.";
    "SingleFlight.RedisSentinel.LockConfig.MaxRetries", "ATHENS_REDIS_LOCK_MAX_RETRIES", [single_flight.redis_sentinel.lock_config.max_retries],
        "Attempts to take the lock.";
    "SingleFlight.GCP.StaleThreshold", "ATHENS_GCP_STALE_THRESHOLD", [single_flight.gcp.stale_threshold],
        "Seconds after which an unfinished GCS upload counts as failed.";
    "Storage.Disk.RootPath", "ATHENS_DISK_STORAGE_ROOT", [storage.disk.root_path],
        "Root directory of disk storage; must exist. Required for StorageType disk.";
    "Storage.GCP.ProjectID", "GOOGLE_CLOUD_PROJECT", [storage.gcp.project_id],
        "Google Cloud project.";
    "Storage.GCP.Bucket", "ATHENS_STORAGE_GCP_BUCKET", [storage.gcp.bucket],
        "GCS bucket. Required for StorageType gcp.";
    "Storage.GCP.JSONKey", "ATHENS_STORAGE_GCP_JSON_KEY", [storage.gcp.json_key],
        "Base64 service-account key.";
    "Storage.Minio.Endpoint", "ATHENS_MINIO_ENDPOINT", [storage.minio.endpoint],
        "Minio endpoint. Required for StorageType minio.";
    "Storage.Minio.Key", "ATHENS_MINIO_ACCESS_KEY_ID", [storage.minio.key],
        "Minio access key id.";
    "Storage.Minio.Secret", "ATHENS_MINIO_SECRET_ACCESS_KEY", [storage.minio.secret],
        "Minio secret key.";
    "Storage.Minio.Bucket", "ATHENS_MINIO_BUCKET_NAME", [storage.minio.bucket],
        "Minio bucket.";
    "Storage.Minio.Region", "ATHENS_MINIO_REGION", [storage.minio.region],
        "Minio region.";
    "Storage.Minio.EnableSSL", "ATHENS_MINIO_USE_SSL", [storage.minio.enable_ssl],
        "Use TLS towards Minio.";
    "Storage.Mongo.URL", "ATHENS_MONGO_STORAGE_URL", [storage.mongo.url],
        "MongoDB connection string. Required for StorageType mongo.";
    "Storage.Mongo.DefaultDBName", "ATHENS_MONGO_DEFAULT_DATABASE", [storage.mongo.default_db_name],
        "Database used when the URL names none.";
    "Storage.Mongo.DefaultCollectionName", "ATHENS_MONGO_DEFAULT_COLLECTION", [storage.mongo.default_collection_name],
        "Collection holding the modules.";
    "Storage.Mongo.CertPath", "ATHENS_MONGO_CERT_PATH", [storage.mongo.cert_path],
        "CA certificate for the MongoDB connection.";
    "Storage.Mongo.InsecureConn", "ATHENS_MONGO_INSECURE", [storage.mongo.insecure_conn],
        "Skip TLS verification towards MongoDB (testing only).";
    "Storage.S3.Region", "AWS_REGION", [storage.s3.region],
        "S3 region. Required for StorageType s3.";
    "Storage.S3.Key", "AWS_ACCESS_KEY_ID", [storage.s3.key],
        "S3 access key id.";
    "Storage.S3.Secret", "AWS_SECRET_ACCESS_KEY", [storage.s3.secret],
        "S3 secret access key.";
    "Storage.S3.Token", "AWS_SESSION_TOKEN", [storage.s3.token],
        "S3 session token.";
    "Storage.S3.Bucket", "ATHENS_S3_BUCKET_NAME", [storage.s3.bucket],
        "S3 bucket. Required for StorageType s3.";
    "Storage.S3.UseDefaultConfiguration", "AWS_USE_DEFAULT_CONFIGURATION", [storage.s3.use_default_configuration],
        "Use only the AWS SDK's default credential chain.";
    "Storage.S3.ForcePathStyle", "AWS_FORCE_PATH_STYLE", [storage.s3.force_path_style],
        "Use path-style bucket URLs.";
    "Storage.S3.CredentialsEndpoint", "AWS_CREDENTIALS_ENDPOINT", [storage.s3.credentials_endpoint],
        "Endpoint that serves credentials.";
    "Storage.S3.AwsContainerCredentialsRelativeURI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", [storage.s3.aws_container_credentials_relative_uri],
        "Container credentials path appended to CredentialsEndpoint.";
    "Storage.S3.Endpoint", "AWS_ENDPOINT", [storage.s3.endpoint],
        "Override of the S3 endpoint.";
    "Storage.AzureBlob.AccountName", "ATHENS_AZURE_ACCOUNT_NAME", [storage.azure_blob.account_name],
        "Azure storage account. Required for StorageType azureblob.";
    "Storage.AzureBlob.AccountKey", "ATHENS_AZURE_ACCOUNT_KEY", [storage.azure_blob.account_key],
        "Azure storage account key.";
    "Storage.AzureBlob.ManagedIdentityResourceID", "ATHENS_AZURE_MANAGED_IDENTITY_RESOURCE_ID", [storage.azure_blob.managed_identity_resource_id],
        "Managed identity resource id.";
    "Storage.AzureBlob.CredentialScope", "ATHENS_AZURE_CREDENTIAL_SCOPE", [storage.azure_blob.credential_scope],
        "Credential scope.";
    "Storage.AzureBlob.ContainerName", "ATHENS_AZURE_CONTAINER_NAME", [storage.azure_blob.container_name],
        "Blob container. Required for StorageType azureblob.";
    "Storage.External.URL", "ATHENS_EXTERNAL_STORAGE_URL", [storage.external.url],
        "Base URL of an external storage service. Required for StorageType external.";
    "Index.MySQL.Protocol", "ATHENS_INDEX_MYSQL_PROTOCOL", [index.mysql.protocol],
        "MySQL network protocol.";
    "Index.MySQL.Host", "ATHENS_INDEX_MYSQL_HOST", [index.mysql.host],
        "MySQL host.";
    "Index.MySQL.Port", "ATHENS_INDEX_MYSQL_PORT", [index.mysql.port],
        "MySQL port.";
    "Index.MySQL.User", "ATHENS_INDEX_MYSQL_USER", [index.mysql.user],
        "MySQL user.";
    "Index.MySQL.Password", "ATHENS_INDEX_MYSQL_PASSWORD", [index.mysql.password],
        "MySQL password.";
    "Index.MySQL.Database", "ATHENS_INDEX_MYSQL_DATABASE", [index.mysql.database],
        "MySQL database.";
    "Index.MySQL.Params", "ATHENS_INDEX_MYSQL_PARAMS", [index.mysql.params],
        "MySQL driver parameters; in the variable written key:value,key:value.";
    "Index.Postgres.Host", "ATHENS_INDEX_POSTGRES_HOST", [index.postgres.host],
        "Postgres host.";
    "Index.Postgres.Port", "ATHENS_INDEX_POSTGRES_PORT", [index.postgres.port],
        "Postgres port.";
    "Index.Postgres.User", "ATHENS_INDEX_POSTGRES_USER", [index.postgres.user],
        "Postgres user.";
    "Index.Postgres.Password", "ATHENS_INDEX_POSTGRES_PASSWORD", [index.postgres.password],
        "Postgres password.";
    "Index.Postgres.Database", "ATHENS_INDEX_POSTGRES_DATABASE", [index.postgres.database],
        "Postgres database.";
    "Index.Postgres.Params", "ATHENS_INDEX_POSTGRES_PARAMS", [index.postgres.params],
        "Postgres connection parameters; in the variable written key:value,key:value.";
}

/// Every configuration key with its variable and description.
pub fn settings() -> &'static [Setting] {
    SETTINGS
}

const DEFAULT_PORT: &str = ":3000";

/// Applies environment overrides; an empty variable counts as unset.
pub(super) fn apply_env(
    config: &mut Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for setting in SETTINGS {
        let found = setting
            .env_names()
            .into_iter()
            .find_map(|name| env(&name).filter(|v| !v.is_empty()).map(|v| (name, v)));
        if let Some((var, raw)) = found {
            set_from_env(config, setting.key, &raw)
                .map_err(|reason| ConfigError::Env { var, reason })?;
        }
    }
    let athens_port_set = env("ATHENS_PORT").is_some_and(|v| !v.is_empty());
    if !athens_port_set {
        if let Some(port) = env("PORT").filter(|v| !v.is_empty()) {
            config.port = port;
        }
    }
    if config.port.is_empty() {
        config.port = DEFAULT_PORT.to_string();
    }
    if config.port.parse::<u64>().is_ok() {
        config.port = format!(":{}", config.port);
    }
    Ok(())
}

enum KeyKind {
    Leaf,
    Table,
}

/// Finds the canonical spelling of `name` under the table `prefix`:
/// an exact match first, then a case-insensitive one.
fn canonical_child(prefix: &str, name: &str) -> Option<(String, KeyKind)> {
    let mut children: Vec<(&str, bool)> = Vec::new();
    for setting in SETTINGS {
        let rest = if prefix.is_empty() {
            setting.key
        } else {
            match setting
                .key
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('.'))
            {
                Some(rest) => rest,
                None => continue,
            }
        };
        match rest.split_once('.') {
            Some((table, _)) => children.push((table, false)),
            None => children.push((rest, true)),
        }
    }
    let pick = children
        .iter()
        .find(|(child, _)| *child == name)
        .or_else(|| {
            children
                .iter()
                .find(|(child, _)| child.eq_ignore_ascii_case(name))
        })?;
    let kind = if pick.1 {
        KeyKind::Leaf
    } else {
        KeyKind::Table
    };
    Some((pick.0.to_string(), kind))
}

/// Renames keys to their canonical spelling and drops unknown ones,
/// recording a warning for each.
pub(super) fn normalize_keys(table: toml::Table, warnings: &mut Vec<String>) -> toml::Table {
    normalize_table(table, "", warnings)
}

fn normalize_table(table: toml::Table, prefix: &str, warnings: &mut Vec<String>) -> toml::Table {
    let join = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        }
    };
    let mut out = toml::Table::new();
    // Canonical key -> the spelling it came from.
    let mut spelled: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in table {
        let Some((canonical, kind)) = canonical_child(prefix, &name) else {
            warnings.push(format!(
                "unknown configuration key {} is ignored",
                join(&name)
            ));
            continue;
        };
        let value = match (kind, value) {
            (KeyKind::Table, toml::Value::Table(inner)) => {
                toml::Value::Table(normalize_table(inner, &join(&canonical), warnings))
            }
            (_, value) => value,
        };
        let Some(previous) = out.remove(&canonical) else {
            spelled.insert(canonical.clone(), name);
            out.insert(canonical, value);
            continue;
        };
        // The exactly spelled key wins over other spellings.
        let exact = name == canonical;
        let merged = match (previous, value) {
            (toml::Value::Table(mut kept), toml::Value::Table(other)) => {
                // Two spellings of one table are both read, as Athens'
                // decoder fills one struct from both.
                for (key, v) in other {
                    if kept.contains_key(&key) {
                        warnings.push(format!(
                            "configuration key {}.{key} is given twice in differently spelled tables",
                            join(&canonical)
                        ));
                        if !exact {
                            continue;
                        }
                    }
                    kept.insert(key, v);
                }
                toml::Value::Table(kept)
            }
            (previous, value) => {
                let previous_name = spelled.get(&canonical).cloned().unwrap_or_default();
                let (kept, ignored) = if exact {
                    (value, previous_name)
                } else {
                    (previous, name.clone())
                };
                warnings.push(format!(
                    "configuration key {} repeats {} in another spelling and is ignored",
                    join(&ignored),
                    join(&canonical)
                ));
                kept
            }
        };
        if exact {
            spelled.insert(canonical.clone(), name);
        }
        out.insert(canonical, merged);
    }
    out
}

/// Help text listing every configuration key with its environment
/// variable and default, for `athens --help`.
pub fn help_text() -> String {
    let defaults = Config::default();
    let mut out = String::from(
        "Configuration keys (TOML file; environment variables override the file, \
         an empty variable counts as unset):\n",
    );
    let mut section = "";
    for setting in SETTINGS {
        let (table, name) = setting.key.rsplit_once('.').unwrap_or(("", setting.key));
        if table != section {
            section = table;
            out.push_str(&format!("\n[{table}]\n"));
        }
        let envs = setting.env_names().join(" or ");
        out.push_str(&format!(
            "  {name} = {}\n      env: {envs}\n      {}\n",
            show_value(&defaults, setting.key),
            setting.doc
        ));
    }
    out
}
