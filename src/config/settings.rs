//! The table of every setting. Each key is one row of a `config_table!`
//! invocation below: the field, its type, its default, its TOML key, its
//! environment variable and its description (which is also the field's
//! documentation). From the rows come the configuration structs with their
//! serde keys and `Default`, environment overrides, the case-insensitive
//! key matching of the file, unknown-key warnings, the `--help` text and
//! the key reference in README.md, so none of them can drift apart.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::{ConfigError, EnvList, Secret, SingleFlightType, StorageType, DEFAULT_TRUSTED_PROXIES};

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
    /// A row of a table whose own key is `prefix`; `doc` is the row's
    /// documentation, one string per line.
    fn new(prefix: &str, key: &str, env: &'static str, doc: &[&str]) -> Setting {
        let doc: Vec<&str> = doc.iter().map(|line| line.trim()).collect();
        // Built once for the process (see `settings`), so leaking is bounded.
        Setting {
            key: Box::leak(join_key(prefix, key).into_boxed_str()),
            env,
            doc: Box::leak(doc.join(" ").into_boxed_str()),
        }
    }

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

impl Setting {
    /// Every variable the value is read from, first match wins: for a key
    /// inside a table, first the nested name Athens' envconfig derives from
    /// the table path and the variable (`Storage.GCP.Bucket` with
    /// `ATHENS_STORAGE_GCP_BUCKET` also reads
    /// `ATHENS_STORAGE_GCP_ATHENS_STORAGE_GCP_BUCKET`, which wins, as in
    /// Athens), then [`Setting::env_names`].
    pub fn lookup_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if let Some((tables, _)) = self.key.rsplit_once('.') {
            let prefix = format!("ATHENS_{}_", tables.replace('.', "_").to_ascii_uppercase());
            names.push(format!("{prefix}{}", self.env));
        }
        names.extend(self.env_names());
        names
    }
}

fn join_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// A type a setting can have: parsed from an environment variable and
/// shown in the help text.
trait SettingValue: Sized {
    /// Parses an environment value; `Ok(None)` keeps the current value.
    fn parse_env(raw: &str) -> Result<Option<Self>, String>;
    /// The value as it would be written in TOML.
    fn show(&self) -> String;
    /// The value as TOML, secrets included: for the example configuration,
    /// whose values are the defaults.
    fn toml(&self) -> String {
        self.show()
    }
}

impl SettingValue for String {
    fn parse_env(raw: &str) -> Result<Option<Self>, String> {
        Ok(Some(raw.to_string()))
    }
    fn show(&self) -> String {
        format!("{self:?}")
    }
    fn toml(&self) -> String {
        toml::Value::String(self.clone()).to_string()
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
    fn toml(&self) -> String {
        toml::Value::String(self.expose().to_string()).to_string()
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
    fn toml(&self) -> String {
        let items: Vec<String> = self.iter().map(SettingValue::toml).collect();
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
    fn toml(&self) -> String {
        self.0.toml()
    }
}

impl SettingValue for StorageType {
    fn parse_env(raw: &str) -> Result<Option<Self>, String> {
        raw.parse().map(Some)
    }
    fn show(&self) -> String {
        format!("{:?}", self.as_str())
    }
}

impl SettingValue for SingleFlightType {
    fn parse_env(raw: &str) -> Result<Option<Self>, String> {
        raw.parse().map(Some)
    }
    fn show(&self) -> String {
        format!("{:?}", self.as_str())
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
    fn toml(&self) -> String {
        let items: Vec<String> = self
            .iter()
            .map(|(k, v)| format!("{} = {}", k.toml(), v.toml()))
            .collect();
        format!("{{ {} }}", items.join(", "))
    }
}

/// A TOML table of settings, implemented by `config_table!`.
trait SettingsTable {
    /// Appends the settings of this table and the tables inside it, their
    /// keys under `prefix` (this table's own dotted key).
    fn collect(prefix: &str, out: &mut Vec<Setting>);
    /// Sets the setting at `key` (relative to this table) from the value
    /// of its environment variable.
    fn set_env(&mut self, key: &str, raw: &str) -> Result<(), String>;
    /// The value at `key` (relative to this table) in TOML syntax.
    fn show(&self, key: &str) -> Option<String>;
    /// Like `show`, secrets included.
    fn toml(&self, key: &str) -> Option<String>;
}

/// Defines a configuration table from its rows. A row is
///
/// ```text
/// /// Description (the field's documentation, the help text and README's).
/// field: Type = default, "TomlKey", "ENV_VARIABLE";
/// ```
///
/// and the optional `tables { /// doc  field: Type, "TomlKey"; }` block
/// lists the tables nested in this one.
macro_rules! config_table {
    (
        $(#[doc = $struct_doc:literal])*
        pub struct $name:ident {
            $(
                $(#[doc = $doc:literal])+
                $field:ident: $ty:ty = $default:expr, $key:literal, $env:literal;
            )*
        }
        $(tables {
            $(
                $(#[doc = $table_doc:literal])+
                $table:ident: $table_ty:ident, $table_key:literal;
            )*
        })?
    ) => {
        $(#[doc = $struct_doc])*
        #[derive(Debug, Clone, PartialEq, Deserialize)]
        #[serde(default)]
        pub struct $name {
            $(
                $(#[doc = $doc])+
                #[serde(rename = $key)]
                pub $field: $ty,
            )*
            $($(
                $(#[doc = $table_doc])+
                #[serde(rename = $table_key)]
                pub $table: $table_ty,
            )*)?
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    $($field: $default,)*
                    $($($table: $table_ty::default(),)*)?
                }
            }
        }

        impl SettingsTable for $name {
            fn collect(prefix: &str, out: &mut Vec<Setting>) {
                $(out.push(Setting::new(prefix, $key, $env, &[$($doc),+]));)*
                $($($table_ty::collect(&join_key(prefix, $table_key), out);)*)?
            }

            fn set_env(&mut self, key: &str, raw: &str) -> Result<(), String> {
                match key {
                    $($key => {
                        if let Some(value) = SettingValue::parse_env(raw)? {
                            self.$field = value;
                        }
                        Ok(())
                    })*
                    _ => {
                        $($(if let Some(rest) = nested_key(key, $table_key) {
                            return self.$table.set_env(rest, raw);
                        })*)?
                        Ok(())
                    }
                }
            }

            fn show(&self, key: &str) -> Option<String> {
                match key {
                    $($key => Some(SettingValue::show(&self.$field)),)*
                    _ => {
                        $($(if let Some(rest) = nested_key(key, $table_key) {
                            return self.$table.show(rest);
                        })*)?
                        None
                    }
                }
            }

            fn toml(&self, key: &str) -> Option<String> {
                match key {
                    $($key => Some(SettingValue::toml(&self.$field)),)*
                    _ => {
                        $($(if let Some(rest) = nested_key(key, $table_key) {
                            return self.$table.toml(rest);
                        })*)?
                        None
                    }
                }
            }
        }
    };
}

/// The rest of `key` when it lies inside the table `table`.
fn nested_key<'k>(key: &'k str, table: &str) -> Option<&'k str> {
    key.strip_prefix(table)?.strip_prefix('.')
}

fn string_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

config_table! {
    /// Every setting of the proxy. Field names follow Athens' `Config`;
    /// each field's TOML key, environment variable and default are in its
    /// row of this table.
    pub struct Config {
        /// Kind of deployment: development or production. In production the config
        /// and filter files must not be writable or executable by group or others.
        go_env: String = "development".into(), "GoEnv", "GO_ENV";
        /// The go binary Athens would run. Accepted for compatibility; this server
        /// fetches without it.
        go_binary: String = "go".into(), "GoBinary", "GO_BINARY_PATH";
        /// Go environment used for fetching, as KEY=value entries (GOPROXY,
        /// GONOPROXY, GOPRIVATE, ...). GOPROXY lists the upstreams. In the
        /// environment variable separate entries with `;`, e.g.
        /// `GOPROXY=https://proxy.golang.org,direct; GOPRIVATE=corp.example.com`;
        /// it replaces the file's list entirely.
        go_binary_env_vars: EnvList = EnvList(vec!["GOPROXY=direct".into()]),
            "GoBinaryEnvVars", "ATHENS_GO_BINARY_ENV_VARS";
        /// How many module fetches from upstream may run at the same time.
        go_get_workers: usize = 10, "GoGetWorkers", "ATHENS_GOGET_WORKERS";
        /// Directory of the git cache (vcs/) and temporary files while fetching;
        /// must be owned by this user and not world-writable. Empty uses
        /// `athens-<uid>` (mode 0700) in the system temporary directory.
        go_get_dir: String = String::new(), "GoGetDir", "ATHENS_GOGET_DIR";
        /// Size budget of the git cache (GoGetDir/vcs) in bytes; least recently
        /// used repositories not in use are evicted past it. 0 means no budget.
        /// Default 10737418240 (10 GiB).
        git_cache_max_bytes: u64 = vcs::git::budget::DEFAULT_MAX_BYTES,
            "GitCacheMaxBytes", "ATHENS_GIT_CACHE_MAX_BYTES";
        /// How many list and @latest lookups may run at the same time (stored files
        /// are served without waiting for one).
        protocol_workers: usize = 30, "ProtocolWorkers", "ATHENS_PROTOCOL_WORKERS";
        /// Log level: trace, debug, info, warn, error, fatal or panic.
        log_level: String = "debug".into(), "LogLevel", "ATHENS_LOG_LEVEL";
        /// Log format: plain or json.
        log_format: String = "plain".into(), "LogFormat", "ATHENS_LOG_FORMAT";
        /// Cloud provider the proxy runs on: GCP or none. GCP logs Athens' JSON for
        /// Cloud Logging, whatever LogFormat says. Required when LogFormat is empty.
        cloud_runtime: String = "none".into(), "CloudRuntime", "ATHENS_CLOUD_RUNTIME";
        /// Serve CPU and heap profiles in pprof format on PprofPort
        /// (/debug/pprof/profile, /debug/pprof/heap); also activates the
        /// allocator's heap sampling. Meant for short debugging sessions only.
        enable_pprof: bool = false, "EnablePprof", "ATHENS_ENABLE_PPROF";
        /// Listen address of the profiling endpoints (keep it private).
        pprof_port: String = ":3001".into(), "PprofPort", "ATHENS_PPROF_PORT";
        /// File of include/exclude/direct rules for module paths; empty disables
        /// filtering.
        filter_file: String = String::new(), "FilterFile", "ATHENS_FILTER_FILE";
        /// OTLP/gRPC collector endpoint for traces (http:// or https://); empty
        /// means the OTEL_EXPORTER_OTLP_ENDPOINT variables.
        trace_exporter_url: String = "http://localhost:4317".into(),
            "TraceExporterURL", "ATHENS_TRACE_EXPORTER_URL";
        /// Trace exporter: otlp (OpenTelemetry over gRPC), or empty for no tracing.
        trace_exporter: String = String::new(), "TraceExporter", "ATHENS_TRACE_EXPORTER";
        /// Fraction of root traces sampled, from 0.0 to 1.0; every trace when GoEnv
        /// is development, as in Athens.
        trace_sampling_fraction: f64 = 1.0,
            "TraceSamplingFraction", "ATHENS_TRACE_SAMPLING_FRACTION";
        /// Metrics exporter: prometheus, or empty for none.
        stats_exporter: String = "prometheus".into(), "StatsExporter", "ATHENS_STATS_EXPORTER";
        /// Storage backend: memory, disk, mongo, gcp, minio, s3, azureblob or
        /// external.
        storage_type: StorageType = StorageType::Memory, "StorageType", "ATHENS_STORAGE_TYPE";
        /// Upstream proxy used for modules the filter file marks with D.
        global_endpoint: String = "http://localhost:3001".into(),
            "GlobalEndpoint", "ATHENS_GLOBAL_ENDPOINT";
        /// Listen address: a port number, :PORT or HOST:PORT. A port without host
        /// listens on IPv6 and IPv4 (IPv4 alone without IPv6), as Go does. The
        /// variable PORT is used when ATHENS_PORT is not set.
        port: String = ":3000".into(), "Port", "ATHENS_PORT";
        /// Unix domain socket to listen on; when set it replaces the TCP listener.
        unix_socket: String = String::new(), "UnixSocket", "ATHENS_UNIX_SOCKET";
        /// User name for HTTP basic authentication; auth is enabled when user and
        /// password are both set.
        basic_auth_user: String = String::new(), "BasicAuthUser", "BASIC_AUTH_USER";
        /// Password for HTTP basic authentication.
        basic_auth_pass: Secret = Secret::default(), "BasicAuthPass", "BASIC_AUTH_PASS";
        /// Go html/template file for the home page, read at every request (the
        /// subset Athens' page uses; anything else stops the start).
        home_template_path: String = "/var/lib/athens/home.html".into(),
            "HomeTemplatePath", "ATHENS_HOME_TEMPLATE_PATH";
        /// Redirect plain HTTP requests to HTTPS.
        force_ssl: bool = false, "ForceSSL", "PROXY_FORCE_SSL";
        /// IP addresses or CIDR ranges (comma-separated in the variable) of proxies
        /// whose X-Forwarded-Proto is believed; default loopback only (127.0.0.0/8,
        /// ::1), empty trusts nobody.
        trusted_proxies: Vec<String> =
            DEFAULT_TRUSTED_PROXIES.iter().map(|s| s.to_string()).collect(),
            "TrustedProxies", "ATHENS_TRUSTED_PROXIES";
        /// URL called to approve a module before it is served; empty disables it.
        /// Never logged with its user information or query.
        validator_hook: Secret = Secret::default(), "ValidatorHook", "ATHENS_PROXY_VALIDATOR";
        /// Path prefix under which the proxy is served, e.g. /athens.
        path_prefix: String = String::new(), "PathPrefix", "ATHENS_PATH_PREFIX";
        /// .netrc file with credentials for private repositories.
        netrc_path: String = String::new(), "NETRCPath", "ATHENS_NETRC_PATH";
        /// GitHub token for private repositories; cannot be combined with
        /// NETRCPath.
        github_token: Secret = Secret::default(), "GithubToken", "ATHENS_GITHUB_TOKEN";
        /// .hgrc file for Mercurial repositories.
        hgrc_path: String = String::new(), "HGRCPath", "ATHENS_HGRC_PATH";
        /// TLS certificate; HTTPS is served (on Port or UnixSocket) when this and
        /// TLSKeyFile are set.
        tls_cert_file: String = String::new(), "TLSCertFile", "ATHENS_TLSCERT_FILE";
        /// TLS private key.
        tls_key_file: String = String::new(), "TLSKeyFile", "ATHENS_TLSKEY_FILE";
        /// Checksum databases proxied under /sumdb/; https URLs. Comma-separated in
        /// the variable.
        sum_dbs: Vec<String> = vec!["https://sum.golang.org".into()], "SumDBs", "ATHENS_SUM_DBS";
        /// Module path patterns for which the checksum proxy answers 403.
        /// Comma-separated in the variable.
        no_sum_patterns: Vec<String> = Vec::new(), "NoSumPatterns", "ATHENS_GONOSUM_PATTERNS";
        /// Signer key file (athens sumdb-keygen) of the checksum database of
        /// private modules served under /sumdb/NAME/; empty for none.
        private_sumdb_key_file: String = String::new(), "PrivateSumDBKeyFile",
            "ATHENS_PRIVATE_SUMDB_KEY_FILE";
        /// What to do when a module is not in storage: sync, async, redirect,
        /// async_redirect, none, file:PATH or custom:BASE64.
        download_mode: String = "sync".into(), "DownloadMode", "ATHENS_DOWNLOAD_MODE";
        /// Redirect target for the redirect download modes.
        download_url: String = String::new(), "DownloadURL", "ATHENS_DOWNLOAD_URL";
        /// How listings combine storage and upstream: strict (merge, fail when
        /// upstream fails), offline (storage only) or fallback (storage only when
        /// upstream fails).
        network_mode: String = "strict".into(), "NetworkMode", "ATHENS_NETWORK_MODE";
        /// How concurrent fetches of one module version are merged: memory, etcd,
        /// redis, redis-sentinel, gcp or azureblob.
        single_flight_type: SingleFlightType = SingleFlightType::Memory,
            "SingleFlightType", "ATHENS_SINGLE_FLIGHT_TYPE";
        /// File served as /robots.txt.
        robots_file: String = "robots.txt".into(), "RobotsFile", "ATHENS_ROBOTS_FILE";
        /// Index backend: none, memory, mysql or postgres.
        index_type: String = "none".into(), "IndexType", "ATHENS_INDEX_TYPE";
        /// Seconds in-flight requests get to finish after SIGTERM or Ctrl-C.
        shutdown_timeout: u64 = 60, "ShutdownTimeout", "ATHENS_SHUTDOWN_TIMEOUT";
        /// Seconds one fetch-and-store of a module version may take.
        stash_timeout: u64 = 600, "StashTimeout", "ATHENS_STASH_TIMEOUT";
        /// Deepest git tree read (git's core.maxTreeDepth); deeper repositories are
        /// refused with 404.
        max_tree_depth: usize = vcs::git::TreeLimits::DEFAULT_MAX_DEPTH,
            "MaxTreeDepth", "ATHENS_MAX_TREE_DEPTH";
        /// Most git tree entries read to build one module zip; a larger tree is
        /// refused with 404.
        max_module_files: usize = vcs::git::TreeLimits::DEFAULT_MAX_ENTRIES,
            "MaxModuleFiles", "ATHENS_MAX_MODULE_FILES";
        /// Seconds an outbound network call may take; also the overall deadline of
        /// a list, @latest or version query (.info of a branch or partial version)
        /// request, answered 504 when missed, and of each storage call (500).
        timeout: u64 = 300, "Timeout", "ATHENS_TIMEOUT";
        /// Branches and tags a git origin may advertise; its ref advertisement may
        /// take 1 KiB per allowed ref (at least 1 MiB).
        git_max_refs: u64 = vcs::git::DEFAULT_MAX_REFS as u64, "GitMaxRefs", "ATHENS_GIT_MAX_REFS";
        /// Bytes one git object transfer from an origin may receive.
        git_max_pack_bytes: u64 = vcs::git::DEFAULT_MAX_PACK_BYTES,
            "GitMaxPackBytes", "ATHENS_GIT_MAX_PACK_BYTES";
        /// Objects one git pack received from an origin may hold.
        git_max_pack_objects: u64 = vcs::git::DEFAULT_MAX_PACK_OBJECTS,
            "GitMaxPackObjects", "ATHENS_GIT_MAX_PACK_OBJECTS";
        /// Bytes one git object from an origin may have once inflated, as its pack
        /// entry or delta declares it; indexing a pack holds objects whole in
        /// memory, so this bounds a fetch's memory whatever a pack claims. It also
        /// bounds the index of a received pack, about 64 bytes per object.
        git_max_object_bytes: u64 = vcs::git::DEFAULT_MAX_OBJECT_BYTES,
            "GitMaxObjectBytes", "ATHENS_GIT_MAX_OBJECT_BYTES";
        /// Most distinct module versions waiting for or running a fetch at once,
        /// and most list/@latest lookups waiting for a worker; past it such
        /// requests get 503 with Retry-After.
        max_pending_fetches: usize = 1000, "MaxPendingFetches", "ATHENS_MAX_PENDING_FETCHES";
        /// Seconds a client has to send a request's headers; slower connections are
        /// closed.
        read_header_timeout: u64 = 10, "ReadHeaderTimeout", "ATHENS_READ_HEADER_TIMEOUT";
        /// Seconds an idle keep-alive connection is kept open.
        idle_timeout: u64 = 120, "IdleTimeout", "ATHENS_IDLE_TIMEOUT";
        /// Most client connections served at once; further connections wait in the
        /// listen queue until one closes.
        max_connections: usize = 4096, "MaxConnections", "ATHENS_MAX_CONNECTIONS";
    }
    tables {
        /// Settings of the lock services `SingleFlightType` selects.
        single_flight: SingleFlight, "SingleFlight";
        /// Settings of the storage backends.
        storage: Storage, "Storage";
        /// Settings of the index backends.
        index: Index, "Index";
    }
}

config_table! {
    /// `[SingleFlight]`: one table per lock service.
    pub struct SingleFlight {}
    tables {
        /// `[SingleFlight.Etcd]`.
        etcd: Etcd, "Etcd";
        /// `[SingleFlight.Redis]`.
        redis: Redis, "Redis";
        /// `[SingleFlight.RedisSentinel]`.
        redis_sentinel: RedisSentinel, "RedisSentinel";
        /// `[SingleFlight.GCP]`.
        gcp: SingleFlightGcp, "GCP";
    }
}

config_table! {
    /// `[SingleFlight.Etcd]`: the etcd lock service.
    pub struct Etcd {
        /// Comma-separated etcd endpoints.
        endpoints: String = "localhost:2379,localhost:22379,localhost:32379".into(),
            "Endpoints", "ATHENS_ETCD_ENDPOINTS";
    }
}

config_table! {
    /// `[SingleFlight.Redis]`: the Redis lock service.
    pub struct Redis {
        /// Redis host:port or redis:// URL; with Cluster, seed nodes of the
        /// cluster, comma-separated.
        endpoint: String = "127.0.0.1:6379".into(), "Endpoint", "ATHENS_REDIS_ENDPOINT";
        /// Redis password.
        password: Secret = Secret::default(), "Password", "ATHENS_REDIS_PASSWORD";
        /// Endpoint is a Redis Cluster: each lease lives on the master of its
        /// key's slot.
        cluster: bool = false, "Cluster", "ATHENS_REDIS_CLUSTER";
    }
    tables {
        /// Lock tuning.
        lock_config: RedisLockConfig, "LockConfig";
    }
}

config_table! {
    /// `[SingleFlight.RedisSentinel]`: Redis behind Sentinel.
    pub struct RedisSentinel {
        /// Sentinel endpoints. Comma-separated in the variable.
        endpoints: Vec<String> = vec!["127.0.0.1:26379".into()],
            "Endpoints", "ATHENS_REDIS_SENTINEL_ENDPOINTS";
        /// Name of the master the sentinels report.
        master_name: String = "redis-1".into(), "MasterName", "ATHENS_REDIS_SENTINEL_MASTER_NAME";
        /// Sentinel password.
        sentinel_password: Secret = Secret::new("sekret"),
            "SentinelPassword", "ATHENS_REDIS_SENTINEL_PASSWORD";
        /// Redis user name.
        redis_username: String = String::new(), "RedisUsername", "ATHENS_REDIS_USERNAME";
        /// Redis password.
        redis_password: Secret = Secret::default(), "RedisPassword", "ATHENS_REDIS_PASSWORD";
        /// Redis database number.
        db: i64 = 0, "DB", "ATHENS_REDIS_SENTINEL_DB";
    }
    tables {
        /// Lock tuning.
        lock_config: RedisLockConfig, "LockConfig";
    }
}

config_table! {
    /// Redis lock tuning.
    pub struct RedisLockConfig {
        /// Seconds to wait for the lock.
        timeout: u64 = 15, "Timeout", "ATHENS_REDIS_LOCK_TIMEOUT";
        /// Lock lifetime in seconds.
        ttl: u64 = 900, "TTL", "ATHENS_REDIS_LOCK_TTL";
        /// Attempts to take the lock.
        max_retries: u64 = 10, "MaxRetries", "ATHENS_REDIS_LOCK_MAX_RETRIES";
    }
}

config_table! {
    /// `[SingleFlight.GCP]`: leases in the GCS bucket.
    pub struct SingleFlightGcp {
        /// Seconds after which an unfinished GCS upload counts as failed.
        stale_threshold: u64 = 120, "StaleThreshold", "ATHENS_GCP_STALE_THRESHOLD";
    }
}

config_table! {
    /// `[Storage]`: one table per backend; only the selected one is checked.
    pub struct Storage {}
    tables {
        /// `[Storage.Disk]`.
        disk: DiskConfig, "Disk";
        /// `[Storage.GCP]`.
        gcp: GcpConfig, "GCP";
        /// `[Storage.Minio]`.
        minio: MinioConfig, "Minio";
        /// `[Storage.Mongo]`.
        mongo: MongoConfig, "Mongo";
        /// `[Storage.S3]`.
        s3: S3Config, "S3";
        /// `[Storage.AzureBlob]`.
        azure_blob: AzureBlobConfig, "AzureBlob";
        /// `[Storage.External]`.
        external: ExternalConfig, "External";
    }
}

config_table! {
    /// Disk storage settings.
    pub struct DiskConfig {
        /// Root directory of disk storage; must exist. Required for StorageType
        /// disk.
        root_path: String = String::new(), "RootPath", "ATHENS_DISK_STORAGE_ROOT";
    }
}

config_table! {
    /// Google Cloud Storage settings.
    pub struct GcpConfig {
        /// Google Cloud project; as in Athens, not needed to reach the bucket.
        project_id: String = String::new(), "ProjectID", "GOOGLE_CLOUD_PROJECT";
        /// GCS bucket. Required for StorageType gcp.
        bucket: String = String::new(), "Bucket", "ATHENS_STORAGE_GCP_BUCKET";
        /// Base64 service-account key.
        json_key: Secret = Secret::default(), "JSONKey", "ATHENS_STORAGE_GCP_JSON_KEY";
    }
}

config_table! {
    /// Minio settings.
    pub struct MinioConfig {
        /// Minio endpoint. Required for StorageType minio.
        endpoint: String = String::new(), "Endpoint", "ATHENS_MINIO_ENDPOINT";
        /// Minio access key id.
        key: String = String::new(), "Key", "ATHENS_MINIO_ACCESS_KEY_ID";
        /// Minio secret key.
        secret: Secret = Secret::default(), "Secret", "ATHENS_MINIO_SECRET_ACCESS_KEY";
        /// Minio bucket.
        bucket: String = String::new(), "Bucket", "ATHENS_MINIO_BUCKET_NAME";
        /// Minio region.
        region: String = String::new(), "Region", "ATHENS_MINIO_REGION";
        /// Use TLS towards Minio.
        enable_ssl: bool = false, "EnableSSL", "ATHENS_MINIO_USE_SSL";
    }
}

config_table! {
    /// MongoDB settings.
    pub struct MongoConfig {
        /// MongoDB connection string. Required for StorageType mongo.
        url: Secret = Secret::default(), "URL", "ATHENS_MONGO_STORAGE_URL";
        /// Database used when the URL names none.
        default_db_name: String = "athens".into(), "DefaultDBName", "ATHENS_MONGO_DEFAULT_DATABASE";
        /// Collection holding the modules.
        default_collection_name: String = "modules".into(),
            "DefaultCollectionName", "ATHENS_MONGO_DEFAULT_COLLECTION";
        /// CA certificate for the MongoDB connection.
        cert_path: String = String::new(), "CertPath", "ATHENS_MONGO_CERT_PATH";
        /// Skip TLS verification towards MongoDB (testing only).
        insecure_conn: bool = false, "InsecureConn", "ATHENS_MONGO_INSECURE";
    }
}

config_table! {
    /// S3 settings.
    pub struct S3Config {
        /// S3 region. Required for StorageType s3.
        region: String = String::new(), "Region", "AWS_REGION";
        /// S3 access key id.
        key: String = String::new(), "Key", "AWS_ACCESS_KEY_ID";
        /// S3 secret access key.
        secret: Secret = Secret::default(), "Secret", "AWS_SECRET_ACCESS_KEY";
        /// S3 session token.
        token: Secret = Secret::default(), "Token", "AWS_SESSION_TOKEN";
        /// S3 bucket. Required for StorageType s3.
        bucket: String = String::new(), "Bucket", "ATHENS_S3_BUCKET_NAME";
        /// Use only the AWS SDK's default credential chain.
        use_default_configuration: bool = false,
            "UseDefaultConfiguration", "AWS_USE_DEFAULT_CONFIGURATION";
        /// Use path-style bucket URLs.
        force_path_style: bool = false, "ForcePathStyle", "AWS_FORCE_PATH_STYLE";
        /// Endpoint that serves S3 credentials, asked before Key/Secret/Token
        /// unless UseDefaultConfiguration.
        credentials_endpoint: String = String::new(),
            "CredentialsEndpoint", "AWS_CREDENTIALS_ENDPOINT";
        /// Credentials path appended to CredentialsEndpoint (alone: asked at
        /// ECS's 169.254.170.2).
        aws_container_credentials_relative_uri: String = String::new(),
            "AwsContainerCredentialsRelativeURI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
        /// Override of the S3 endpoint.
        endpoint: String = String::new(), "Endpoint", "AWS_ENDPOINT";
    }
}

config_table! {
    /// Azure Blob settings.
    pub struct AzureBlobConfig {
        /// Azure storage account. Required for StorageType azureblob.
        account_name: String = String::new(), "AccountName", "ATHENS_AZURE_ACCOUNT_NAME";
        /// Azure storage account key.
        account_key: Secret = Secret::default(), "AccountKey", "ATHENS_AZURE_ACCOUNT_KEY";
        /// Managed identity resource id; used before AccountKey when set.
        managed_identity_resource_id: String = String::new(),
            "ManagedIdentityResourceID", "ATHENS_AZURE_MANAGED_IDENTITY_RESOURCE_ID";
        /// Scope of the managed identity's token (empty: Azure Storage's).
        credential_scope: String = String::new(),
            "CredentialScope", "ATHENS_AZURE_CREDENTIAL_SCOPE";
        /// Blob container. Required for StorageType azureblob.
        container_name: String = String::new(), "ContainerName", "ATHENS_AZURE_CONTAINER_NAME";
    }
}

config_table! {
    /// External storage settings.
    pub struct ExternalConfig {
        /// Base URL of an external storage service. Required for StorageType
        /// external.
        url: String = String::new(), "URL", "ATHENS_EXTERNAL_STORAGE_URL";
    }
}

config_table! {
    /// `[Index]`: index backends.
    pub struct Index {}
    tables {
        /// `[Index.MySQL]`.
        mysql: MySqlConfig, "MySQL";
        /// `[Index.Postgres]`.
        postgres: PostgresConfig, "Postgres";
    }
}

config_table! {
    /// MySQL index connection settings.
    pub struct MySqlConfig {
        /// MySQL network protocol.
        protocol: String = "tcp".into(), "Protocol", "ATHENS_INDEX_MYSQL_PROTOCOL";
        /// MySQL host.
        host: String = "localhost".into(), "Host", "ATHENS_INDEX_MYSQL_HOST";
        /// MySQL port.
        port: u32 = 3306, "Port", "ATHENS_INDEX_MYSQL_PORT";
        /// MySQL user.
        user: String = "root".into(), "User", "ATHENS_INDEX_MYSQL_USER";
        /// MySQL password.
        password: Secret = Secret::default(), "Password", "ATHENS_INDEX_MYSQL_PASSWORD";
        /// MySQL database.
        database: String = "athens".into(), "Database", "ATHENS_INDEX_MYSQL_DATABASE";
        /// MySQL driver parameters; in the variable written key:value,key:value.
        params: BTreeMap<String, String> =
            string_map(&[("parseTime", "true"), ("timeout", "30s")]),
            "Params", "ATHENS_INDEX_MYSQL_PARAMS";
    }
}

config_table! {
    /// Postgres index connection settings.
    pub struct PostgresConfig {
        /// Postgres host.
        host: String = "localhost".into(), "Host", "ATHENS_INDEX_POSTGRES_HOST";
        /// Postgres port.
        port: u32 = 5432, "Port", "ATHENS_INDEX_POSTGRES_PORT";
        /// Postgres user.
        user: String = "postgres".into(), "User", "ATHENS_INDEX_POSTGRES_USER";
        /// Postgres password.
        password: Secret = Secret::default(), "Password", "ATHENS_INDEX_POSTGRES_PASSWORD";
        /// Postgres database.
        database: String = "athens".into(), "Database", "ATHENS_INDEX_POSTGRES_DATABASE";
        /// Postgres connection parameters; in the variable written
        /// key:value,key:value.
        params: BTreeMap<String, String> =
            string_map(&[("connect_timeout", "30"), ("sslmode", "disable")]),
            "Params", "ATHENS_INDEX_POSTGRES_PARAMS";
    }
}

/// Every configuration key with its variable and description.
pub fn settings() -> &'static [Setting] {
    static SETTINGS: OnceLock<Vec<Setting>> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let mut out = Vec::new();
        Config::collect("", &mut out);
        out
    })
}

/// The value of the setting `key` in `config`, in TOML syntax (secrets
/// redacted); empty for an unknown key.
pub(super) fn show_value(config: &Config, key: &str) -> String {
    config.show(key).unwrap_or_default()
}

const DEFAULT_PORT: &str = ":3000";

/// Applies environment overrides; an empty variable counts as unset.
pub(super) fn apply_env(
    config: &mut Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for setting in settings() {
        let found = setting
            .lookup_names()
            .into_iter()
            .find_map(|name| env(&name).filter(|v| !v.is_empty()).map(|v| (name, v)));
        if let Some((var, raw)) = found {
            config
                .set_env(setting.key, &raw)
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
    for setting in settings() {
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
    for setting in settings() {
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

/// Marks the start of the generated key reference in README.md.
pub const README_START: &str = "<!-- configuration keys: generated from src/config/settings.rs -->";
/// Marks its end.
pub const README_END: &str = "<!-- end of configuration keys -->";

/// The key reference of README.md (between [`README_START`] and
/// [`README_END`]): every key with its environment variables, default and
/// description, as a Markdown table.
pub fn readme_reference() -> String {
    let defaults = Config::default();
    let cell = |text: &str| text.replace('|', "\\|");
    let mut out =
        String::from("| Key | Environment | Default | Meaning |\n| --- | --- | --- | --- |\n");
    for setting in settings() {
        let envs: Vec<String> = setting
            .env_names()
            .iter()
            .map(|name| format!("`{name}`"))
            .collect();
        out.push_str(&format!(
            "| `{}` | {} | `{}` | {} |\n",
            setting.key,
            envs.join(", "),
            cell(&show_value(&defaults, setting.key)),
            cell(setting.doc),
        ));
    }
    out
}

/// The example configuration file in the repository root, generated by
/// [`example_config`].
pub const EXAMPLE_CONFIG_FILE: &str = "config.dev.toml";

/// The example configuration (`config.dev.toml`): every key set to its
/// default, each under a one-line comment with its description and
/// environment variables. Loading it gives exactly the defaults.
pub fn example_config() -> String {
    let defaults = Config::default();
    let mut out = String::from(
        "# Example configuration of athens (Rust), generated from\n\
         # src/config/settings.rs: every key with its default value. Run with\n\
         #   athens -config_file=config.dev.toml\n\
         # Environment variables override the file (an empty variable counts as\n\
         # unset); `athens --help` lists the same keys.\n",
    );
    let mut section = "";
    for setting in settings() {
        let (table, name) = setting.key.rsplit_once('.').unwrap_or(("", setting.key));
        if table != section {
            section = table;
            out.push_str(&format!("\n[{table}]\n"));
        }
        // One comment line per key, as the description and the variables.
        out.push_str(&format!(
            "\n# {} (env: {})\n",
            setting.doc,
            setting.env_names().join(" or ")
        ));
        let value = defaults.toml(setting.key).unwrap_or_default();
        out.push_str(&format!("{name} = {value}\n"));
    }
    out
}
