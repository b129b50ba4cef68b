use std::collections::HashMap;

use super::settings::show_value;
use super::*;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name: &str| map.get(name).cloned()
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<LoadedConfig, ConfigError> {
    Config::from_toml_str(text, &no_env)
}

fn invalid_keys(err: ConfigError) -> Vec<String> {
    match err {
        ConfigError::Invalid(list) => list.into_iter().map(|s| s.key).collect(),
        other => panic!("expected validation failure, got {other}"),
    }
}

#[test]
fn defaults_match_athens() {
    let c = Config::default();
    assert_eq!(c.timeout, 300);
    assert_eq!(c.go_env, "development");
    assert_eq!(c.go_binary, "go");
    assert_eq!(c.go_binary_env_vars, EnvList(vec!["GOPROXY=direct".into()]));
    assert_eq!(c.go_get_workers, 10);
    assert_eq!(c.protocol_workers, 30);
    assert_eq!(c.log_level, "debug");
    assert_eq!(c.log_format, "plain");
    assert_eq!(c.storage_type, "memory");
    assert_eq!(c.port, ":3000");
    assert_eq!(c.network_mode, "strict");
    assert_eq!(c.download_mode, "sync");
    assert_eq!(c.single_flight_type, "memory");
    assert_eq!(c.index_type, "none");
    assert_eq!(c.shutdown_timeout, 60);
    assert_eq!(c.stash_timeout, 600);
    assert_eq!(c.sum_dbs, vec!["https://sum.golang.org"]);
    assert_eq!(c.trace_sampling_fraction, 1.0);
    assert_eq!(c.single_flight.redis.lock_config.ttl, 900);
    assert_eq!(c.single_flight.redis_sentinel.master_name, "redis-1");
    assert_eq!(c.single_flight.gcp.stale_threshold, 120);
    assert_eq!(c.index.postgres.port, 5432);
    assert_eq!(
        c.index.mysql.params.get("parseTime").map(String::as_str),
        Some("true")
    );
    assert_eq!(c.storage.mongo.default_db_name, "athens");
    assert_eq!(c.listen_addr(), "0.0.0.0:3000");
    assert_eq!(c.validate().unwrap(), Vec::<String>::new());
}

#[test]
fn empty_file_and_no_file_give_defaults() {
    let loaded = parse("").unwrap();
    assert_eq!(loaded.config, Config::default());
    assert!(loaded.warnings.is_empty());
    let loaded = Config::load_with_env(None, &no_env).unwrap();
    assert_eq!(loaded.config, Config::default());
    assert_eq!(loaded.file, None);
}

#[test]
fn file_values_override_defaults() {
    let loaded = parse(
        r#"
GoGetWorkers = 3
NetworkMode = "fallback"
StorageType = "disk"
PathPrefix = "/proxy"
GoBinaryEnvVars = ["GOPROXY=https://proxy.example.com", "GOPRIVATE=corp.example.com"]
TraceSamplingFraction = 0

[Storage.Disk]
RootPath = "/var/lib/athens"

[SingleFlight.Redis.LockConfig]
TTL = 30

[Index.MySQL.Params]
tls = "true"
"#,
    )
    .unwrap();
    let c = &loaded.config;
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(c.go_get_workers, 3);
    assert_eq!(c.network_mode(), NetworkMode::Fallback);
    assert_eq!(c.storage.disk.root_path, "/var/lib/athens");
    assert_eq!(c.single_flight.redis.lock_config.ttl, 30);
    // Untouched keys of a partly given table keep their defaults.
    assert_eq!(c.single_flight.redis.lock_config.timeout, 15);
    assert_eq!(
        c.go_binary_env_vars.get("GOPRIVATE"),
        Some("corp.example.com")
    );
    assert_eq!(c.trace_sampling_fraction, 0.0);
    // A map given in the file replaces the default map.
    assert_eq!(c.index.mysql.params.len(), 1);
}

#[test]
fn keys_match_case_insensitively_and_unknown_keys_warn() {
    let loaded = parse(
        r#"
goenv = "production"
STORAGETYPE = "disk"
NoSuchKey = 1
[storage.disk]
rootpath = "/data"
[Storage.CDN]
Endpoint = "cdn.example.com"
[Storage.Mongo]
Insecure = true
"#,
    )
    .unwrap();
    assert_eq!(loaded.config.go_env, "production");
    assert_eq!(loaded.config.storage_type, "disk");
    assert_eq!(loaded.config.storage.disk.root_path, "/data");
    let mut warnings = loaded.warnings.clone();
    warnings.sort();
    assert_eq!(
        warnings,
        vec![
            "unknown configuration key NoSuchKey is ignored",
            "unknown configuration key Storage.CDN is ignored",
            "unknown configuration key Storage.Mongo.Insecure is ignored",
        ]
    );
}

#[test]
fn duplicate_spellings_keep_one_and_warn() {
    for text in [
        "goenv = \"production\"\nGoEnv = \"development\"\n",
        "GoEnv = \"development\"\ngoenv = \"production\"\n",
        "GOENV = \"production\"\ngoenv = \"production\"\nGoEnv = \"development\"\n",
    ] {
        let loaded = parse(text).unwrap();
        // The exact spelling wins, as with Athens' TOML decoder.
        assert_eq!(loaded.config.go_env, "development", "{text}");
        assert!(!loaded.warnings.is_empty());
        assert!(
            loaded.warnings.iter().all(|w| w.contains("repeats GoEnv")),
            "{:?}",
            loaded.warnings
        );
    }
}

#[test]
fn wrong_types_and_bad_syntax_are_parse_errors_naming_the_key() {
    let err = parse("GoGetWorkers = \"ten\"\n").unwrap_err();
    assert!(
        matches!(&err, ConfigError::Parse { message, .. } if message.contains("GoGetWorkers")),
        "{err}"
    );
    let err = parse("[Storage.Disk]\nRootPath = 5\n").unwrap_err();
    assert!(err.to_string().contains("Storage.Disk.RootPath"), "{err}");
    let err = parse("GoGetWorkers = -1\n").unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
    let err = parse("GoEnv = \n").unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
}

#[test]
fn environment_wins_over_file() {
    let env = env_of(&[
        ("ATHENS_GOGET_WORKERS", "7"),
        ("ATHENS_STORAGE_TYPE", "disk"),
        ("ATHENS_DISK_STORAGE_ROOT", "/env/root"),
        ("ATHENS_ENABLE_PPROF", "T"),
        ("ATHENS_SUM_DBS", "https://a.example,https://b.example"),
        ("ATHENS_INDEX_MYSQL_PARAMS", "parseTime:false,timeout:5s"),
        ("ATHENS_TIMEOUT", "20"),
        ("BASIC_AUTH_PASS", "hunter2"),
        // An empty variable does not override.
        ("ATHENS_LOG_LEVEL", ""),
    ]);
    let text = "GoGetWorkers = 3\nLogLevel = \"info\"\n[Storage.Disk]\nRootPath = \"/file/root\"\n";
    let c = Config::from_toml_str(text, &env).unwrap().config;
    assert_eq!(c.go_get_workers, 7);
    assert_eq!(c.storage.disk.root_path, "/env/root");
    assert!(c.enable_pprof);
    assert_eq!(c.sum_dbs, vec!["https://a.example", "https://b.example"]);
    assert_eq!(
        c.index.mysql.params.get("timeout").map(String::as_str),
        Some("5s")
    );
    assert_eq!(c.timeout, 20);
    assert_eq!(c.basic_auth_pass.expose(), "hunter2");
    assert_eq!(c.log_level, "info");
}

#[test]
fn athens_prefixed_variant_wins_for_unprefixed_variables() {
    let env = env_of(&[("GO_ENV", "production"), ("ATHENS_GO_ENV", "development")]);
    assert_eq!(
        Config::load_with_env(None, &env).unwrap().config.go_env,
        "development"
    );
    let env = env_of(&[("GO_ENV", "production")]);
    assert_eq!(
        Config::load_with_env(None, &env).unwrap().config.go_env,
        "production"
    );
}

#[test]
fn port_variables_and_formats() {
    let port = |pairs: &[(&str, &str)]| {
        Config::load_with_env(None, &env_of(pairs))
            .unwrap()
            .config
            .port
    };
    assert_eq!(port(&[("PORT", "8080")]), ":8080");
    assert_eq!(port(&[("PORT", "8080"), ("ATHENS_PORT", ":9090")]), ":9090");
    assert_eq!(port(&[("ATHENS_PORT", "127.0.0.1:7000")]), "127.0.0.1:7000");
    let c = Config::load_with_env(None, &env_of(&[("ATHENS_PORT", "127.0.0.1:7000")])).unwrap();
    assert_eq!(c.config.listen_addr(), "127.0.0.1:7000");
    let err = Config::load_with_env(None, &env_of(&[("ATHENS_PORT", "nonsense")])).unwrap_err();
    assert_eq!(invalid_keys(err), vec!["Port"]);
}

#[test]
fn env_list_variable_is_split_on_semicolons_and_replaces_the_file() {
    let env = env_of(&[(
        "ATHENS_GO_BINARY_ENV_VARS",
        "GOPROXY=https://proxy.golang.org,direct; GOPRIVATE=*.corp.example.com,rsc.io/private ;GODEBUG=netdns=go",
    )]);
    let text = "GoBinaryEnvVars = [\"GOFLAGS=-mod=mod\"]\n";
    let c = Config::from_toml_str(text, &env).unwrap().config;
    assert_eq!(
        c.go_binary_env_vars.0,
        vec![
            "GOPROXY=https://proxy.golang.org,direct",
            "GOPRIVATE=*.corp.example.com,rsc.io/private",
            "GODEBUG=netdns=go",
        ]
    );
    assert!(!c.go_binary_env_vars.has_key("GOFLAGS"));
    assert_eq!(c.go_binary_env_vars.get("GODEBUG"), Some("netdns=go"));
}

#[test]
fn malformed_environment_values_name_the_variable() {
    let cases = [
        ("ATHENS_GO_BINARY_ENV_VARS", "GOPROXY=direct; oops"),
        ("ATHENS_GOGET_WORKERS", "many"),
        ("ATHENS_ENABLE_PPROF", "yes"),
        ("ATHENS_TRACE_SAMPLING_FRACTION", "half"),
        ("ATHENS_INDEX_POSTGRES_PARAMS", "sslmode=disable"),
    ];
    for (var, value) in cases {
        let err = Config::load_with_env(None, &env_of(&[(var, value)])).unwrap_err();
        match err {
            ConfigError::Env { var: got, .. } => assert_eq!(got, var),
            other => panic!("{var}: expected env error, got {other}"),
        }
    }
}

#[test]
fn env_list_in_file_is_validated() {
    let err = parse("GoBinaryEnvVars = [\"NOEQUALS\"]\n").unwrap_err();
    assert_eq!(invalid_keys(err), vec!["GoBinaryEnvVars"]);
}

#[test]
fn validation_reports_every_problem() {
    let err = parse(
        r#"
StorageType = "disk"
NetworkMode = "sometimes"
LogFormat = "xml"
GoGetWorkers = 0
LogLevel = "loud"
SingleFlightType = "gcp"
IndexType = "mysql"
SumDBs = ["http://sum.golang.org"]
[Index.MySQL]
Host = ""
"#,
    )
    .unwrap_err();
    let mut keys = invalid_keys(err);
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "GoGetWorkers",
            "Index.MySQL.Host",
            "LogFormat",
            "LogLevel",
            "NetworkMode",
            "SingleFlightType",
            "Storage.Disk.RootPath",
            "SumDBs",
        ]
    );
}

#[test]
fn validation_errors_read_well() {
    let err = parse("StorageType = \"floppy\"\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("StorageType"), "{text}");
    assert!(text.contains("\"floppy\""), "{text}");
    assert!(text.contains("memory, disk"), "{text}");
}

#[test]
fn required_keys_of_each_storage_type() {
    for (kind, key) in [
        ("mongo", "Storage.Mongo.URL"),
        ("gcp", "Storage.GCP.Bucket"),
        ("external", "Storage.External.URL"),
        ("azureblob", "Storage.AzureBlob.AccountName"),
    ] {
        let keys = invalid_keys(parse(&format!("StorageType = {kind:?}\n")).unwrap_err());
        assert!(keys.contains(&key.to_string()), "{kind}: {keys:?}");
    }
    assert!(parse(
        "StorageType = \"gcp\"\nSingleFlightType = \"gcp\"\n[Storage.GCP]\nBucket = \"b\"\n"
    )
    .is_ok());
}

#[test]
fn half_configured_tls_is_a_warning() {
    let loaded = parse("TLSCertFile = \"cert.pem\"\n").unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].contains("TLSKeyFile"));
}

#[test]
fn github_token_excludes_netrc() {
    let keys = invalid_keys(parse("GithubToken = \"t\"\nNETRCPath = \"/n\"\n").unwrap_err());
    assert_eq!(keys, vec!["GithubToken"]);
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let env = env_of(&[
        ("BASIC_AUTH_PASS", "hunter2"),
        ("ATHENS_GITHUB_TOKEN", "ghp_secret"),
    ]);
    let c = Config::load_with_env(None, &env).unwrap().config;
    let debug = format!("{c:?}");
    assert!(!debug.contains("hunter2"));
    assert!(!debug.contains("ghp_secret"));
    assert!(debug.contains("<redacted>"));
}

/// A value of the same type as `default` (shown in TOML syntax) that differs
/// from it, as TOML text and as an environment value.
fn changed_value(default: &str) -> (String, String) {
    match default {
        "true" => ("false".into(), "false".into()),
        "false" => ("true".into(), "true".into()),
        d if d.starts_with('[') => ("[\"x-test\"]".into(), "x-test=1".into()),
        d if d.starts_with('{') => ("{ k = \"v\" }".into(), "k:v".into()),
        d if d.starts_with('"') || d == "(secret)" => ("\"x-test\"".into(), "x-test".into()),
        d if d.contains('.') => ("0.5".into(), "0.5".into()),
        _ => ("7".into(), "7".into()),
    }
}

#[test]
fn every_setting_is_read_from_the_file_under_its_key() {
    let defaults = Config::default();
    for setting in settings() {
        let before = show_value(&defaults, setting.key);
        let (value, _) = changed_value(&before);
        let (table, name) = setting.key.rsplit_once('.').unwrap_or(("", setting.key));
        let value = match (setting.key, before.as_str()) {
            ("GoBinaryEnvVars", _) => "[\"A=1\"]".to_string(),
            // Keyword settings take only their keywords.
            ("StorageType", _) => "\"disk\"".to_string(),
            ("SingleFlightType", _) => "\"redis\"".to_string(),
            // A set secret shows as "(secret)" whatever its value.
            (_, "(secret)") => "\"\"".to_string(),
            _ => value,
        };
        let text = if table.is_empty() {
            format!("{name} = {value}\n")
        } else {
            format!("[{table}]\n{name} = {value}\n")
        };
        let table_doc: toml::Table = text.parse().unwrap();
        let mut warnings = Vec::new();
        let table_doc = super::settings::normalize_keys(table_doc, &mut warnings);
        assert!(warnings.is_empty(), "{}: {warnings:?}", setting.key);
        let parsed: Config = serde_path_to_error::deserialize(toml::Value::Table(table_doc))
            .unwrap_or_else(|e| panic!("{}: {e}", setting.key));
        assert_ne!(
            show_value(&parsed, setting.key),
            before,
            "{} not read from file",
            setting.key
        );
    }
}

#[test]
fn every_setting_is_read_from_its_environment_variable() {
    let defaults = Config::default();
    for setting in settings() {
        let before = show_value(&defaults, setting.key);
        let (_, value) = changed_value(&before);
        let value = match setting.key {
            "Port" => "4000".to_string(),
            // Keyword settings take only their keywords.
            "StorageType" => "disk".to_string(),
            "SingleFlightType" => "redis".to_string(),
            _ => value,
        };
        let env = env_of(&[(setting.env, value.as_str())]);
        let mut config = Config::default();
        super::settings::apply_env(&mut config, &env)
            .unwrap_or_else(|e| panic!("{}: {e}", setting.key));
        if before == "(secret)" {
            // Only the redacted form is visible; an empty variable would
            // not override, so nothing more can be observed here.
            continue;
        }
        assert_ne!(
            show_value(&config, setting.key),
            before,
            "{} not read from {}",
            setting.key,
            setting.env
        );
    }
}

#[test]
fn help_text_documents_every_key_with_variable_and_default() {
    let help = help_text();
    for setting in settings() {
        let name = setting.key.rsplit('.').next().unwrap_or(setting.key);
        assert!(
            help.contains(&format!("  {name} = ")),
            "{} missing",
            setting.key
        );
        assert!(help.contains(setting.env), "{} missing", setting.env);
    }
    assert!(help.contains("[Storage.Disk]"));
    assert!(help.contains("StorageType = \"memory\""));
    assert!(help.contains("GoGetWorkers = 10"));
    assert!(help.contains("ATHENS_GO_ENV or GO_ENV"));
    // The default sentinel password is not printed.
    assert!(!help.contains("sekret"));
}

#[test]
fn network_mode_parsing() {
    assert_eq!(NetworkMode::parse("offline"), Some(NetworkMode::Offline));
    assert_eq!(NetworkMode::parse("Offline"), None);
}

#[cfg(unix)]
#[test]
fn production_requires_private_config_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("athens.toml");
    std::fs::write(&path, "GoEnv = \"production\"\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = Config::load_with_env(Some(&path), &no_env).unwrap_err();
    assert!(matches!(err, ConfigError::Permissions { .. }), "{err}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loaded = Config::load_with_env(Some(&path), &no_env).unwrap();
    assert_eq!(loaded.file.as_deref(), Some(path.as_path()));
    // Development does not check.
    std::fs::write(&path, "GoEnv = \"development\"\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(Config::load_with_env(Some(&path), &no_env).is_ok());
}

#[test]
fn missing_file_is_a_read_error() {
    let err =
        Config::load_with_env(Some(Path::new("/nonexistent/athens.toml")), &no_env).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/athens.toml"));
}

#[test]
fn tree_limits_default_to_git_and_can_be_set() {
    let c = parse("").unwrap().config;
    assert_eq!(c.tree_limits(), vcs::git::TreeLimits::default());
    assert_eq!(c.max_tree_depth, 2048);
    assert_eq!(c.max_module_files, 500_000);
    let env = env_of(&[
        ("ATHENS_MAX_TREE_DEPTH", "100"),
        ("ATHENS_MAX_MODULE_FILES", "1000"),
    ]);
    let c = Config::from_toml_str("MaxTreeDepth = 50\n", &env)
        .unwrap()
        .config;
    assert_eq!(
        c.tree_limits(),
        vcs::git::TreeLimits {
            max_depth: 100,
            max_entries: 1000,
        }
    );
    let err = parse("MaxTreeDepth = 0\nMaxModuleFiles = 0\n").unwrap_err();
    let mut keys = invalid_keys(err);
    keys.sort();
    assert_eq!(keys, vec!["MaxModuleFiles", "MaxTreeDepth"]);
}

#[test]
fn storage_and_single_flight_types_take_athens_keywords() {
    for kind in StorageType::ALL {
        assert_eq!(kind.as_str().parse::<StorageType>(), Ok(*kind));
    }
    for kind in SingleFlightType::ALL {
        assert_eq!(kind.as_str().parse::<SingleFlightType>(), Ok(*kind));
    }
    assert_eq!(StorageType::ALL.len(), 8);
    assert_eq!(SingleFlightType::ALL.len(), 6);
    // Athens matches the keywords exactly, and reads an empty
    // SingleFlightType as memory while StorageType is required.
    assert!("Disk".parse::<StorageType>().is_err());
    assert!("REDIS".parse::<SingleFlightType>().is_err());
    assert_eq!("".parse::<SingleFlightType>(), Ok(SingleFlightType::Memory));
    assert_eq!(
        "".parse::<StorageType>(),
        Err("must not be empty".to_string())
    );
    let c = parse("StorageType = \"s3\"\nSingleFlightType = \"redis-sentinel\"\n[Storage.S3]\nRegion = \"r\"\nBucket = \"b\"\n")
        .unwrap()
        .config;
    assert_eq!(c.storage_type, StorageType::S3);
    assert_eq!(c.single_flight_type, SingleFlightType::RedisSentinel);
    let c = parse("SingleFlightType = \"\"\n").unwrap().config;
    assert_eq!(c.single_flight_type, SingleFlightType::Memory);
}

#[test]
fn unknown_keywords_name_the_key_the_value_and_the_choices() {
    let text = parse("SingleFlightType = \"zookeeper\"\n")
        .unwrap_err()
        .to_string();
    assert!(text.contains("SingleFlightType"), "{text}");
    assert!(text.contains("\"zookeeper\""), "{text}");
    assert!(
        text.contains("memory, etcd, redis, redis-sentinel, gcp, azureblob"),
        "{text}"
    );
    let text = parse("StorageType = \"\"\n").unwrap_err().to_string();
    assert!(text.contains("StorageType: must not be empty"), "{text}");
    let env = env_of(&[("ATHENS_STORAGE_TYPE", "floppy")]);
    match Config::load_with_env(None, &env).unwrap_err() {
        ConfigError::Env { var, reason } => {
            assert_eq!(var, "ATHENS_STORAGE_TYPE");
            assert!(reason.contains("\"floppy\""), "{reason}");
            assert!(reason.contains("memory, disk, mongo"), "{reason}");
        }
        other => panic!("expected an environment error, got {other}"),
    }
}

#[test]
fn every_key_is_one_row_of_the_table() {
    let keys: Vec<&str> = settings().iter().map(|s| s.key).collect();
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), keys.len(), "a key is listed twice");
    // A table used in two places (LockConfig) gives each place its keys.
    for key in [
        "SingleFlight.Redis.LockConfig.TTL",
        "SingleFlight.RedisSentinel.LockConfig.TTL",
        "Index.MySQL.Params",
        "Storage.S3.Endpoint",
    ] {
        assert!(keys.contains(&key), "{key} missing");
    }
    for setting in settings() {
        assert!(
            !setting.doc.is_empty(),
            "{} has no description",
            setting.key
        );
        assert!(
            !setting.doc.contains("  "),
            "{}: {:?}",
            setting.key,
            setting.doc
        );
    }
}

/// README.md's key reference is generated from the table; with
/// `ATHENS_UPDATE_README=1` this test rewrites it instead of failing.
#[test]
fn readme_key_reference_is_generated_from_the_table() {
    use super::settings::{README_END, README_START};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find(README_START)
        .expect("README has the start marker")
        + README_START.len();
    let end = readme.find(README_END).expect("README has the end marker");
    let wanted = format!("\n{}", readme_reference());
    if readme[start..end] == wanted {
        return;
    }
    if std::env::var_os("ATHENS_UPDATE_README").is_some() {
        let updated = format!("{}{wanted}{}", &readme[..start], &readme[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    panic!(
        "README.md's configuration keys differ from src/config/settings.rs; \
         regenerate with ATHENS_UPDATE_README=1 cargo test -p athens --lib \
         config::tests::readme_key_reference"
    );
}

#[test]
fn readme_reference_lists_every_key_variable_and_default() {
    let reference = readme_reference();
    let defaults = Config::default();
    for setting in settings() {
        let row = reference
            .lines()
            .find(|line| line.starts_with(&format!("| `{}` |", setting.key)))
            .unwrap_or_else(|| panic!("{} missing", setting.key));
        for env in setting.env_names() {
            assert!(row.contains(&format!("`{env}`")), "{row}");
        }
        assert!(
            row.contains(&format!("`{}`", show_value(&defaults, setting.key))),
            "{row}"
        );
    }
    assert!(!reference.contains("sekret"));
}

/// config.dev.toml is generated from the table; with
/// `ATHENS_UPDATE_EXAMPLE=1` this test rewrites it instead of failing.
#[test]
fn example_config_file_is_generated_from_the_table() {
    use super::settings::{example_config, EXAMPLE_CONFIG_FILE};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLE_CONFIG_FILE);
    let wanted = example_config();
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current == wanted {
        return;
    }
    if std::env::var_os("ATHENS_UPDATE_EXAMPLE").is_some() {
        std::fs::write(&path, wanted).unwrap();
        return;
    }
    panic!(
        "{EXAMPLE_CONFIG_FILE} differs from src/config/settings.rs; regenerate with \
         ATHENS_UPDATE_EXAMPLE=1 cargo test -p athens --lib config::tests::example_config"
    );
}

/// Every key is in the example, set to its default: loading it changes
/// nothing and warns of nothing.
#[test]
fn example_config_sets_every_key_to_its_default() {
    let text = super::settings::example_config();
    let loaded = Config::from_toml_str(&text, &|_| None).unwrap();
    assert_eq!(loaded.config, Config::default());
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let table: toml::Table = text.parse().unwrap();
    for setting in settings() {
        let mut value = Some(&table);
        let (path, leaf) = setting.key.rsplit_once('.').unwrap_or(("", setting.key));
        for part in path.split('.').filter(|p| !p.is_empty()) {
            value = value.and_then(|t| t.get(part)).and_then(|v| v.as_table());
        }
        assert!(
            value.is_some_and(|t| t.contains_key(leaf)),
            "{} is missing from the example",
            setting.key
        );
        let comment = format!("# {} (env: ", setting.doc);
        assert!(text.contains(&comment), "{} has no comment", setting.key);
    }
    // Changing a value in the text changes the loaded configuration: the
    // keys are read, not just present.
    let edited = text.replace("\nGoGetWorkers = 10\n", "\nGoGetWorkers = 3\n");
    assert_ne!(edited, text);
    let loaded = Config::from_toml_str(&edited, &|_| None).unwrap();
    assert_eq!(loaded.config.go_get_workers, 3);
}

#[test]
fn nested_variable_names_of_athens_envconfig_are_read_and_win() {
    let load = |pairs: &[(&str, &str)]| Config::load_with_env(None, &env_of(pairs)).unwrap().config;
    // The nested name alone.
    let c = load(&[("ATHENS_STORAGE_GCP_ATHENS_STORAGE_GCP_BUCKET", "nested")]);
    assert_eq!(c.storage.gcp.bucket, "nested");
    // Both: the nested name wins, as envconfig reads it first.
    let c = load(&[
        ("ATHENS_STORAGE_GCP_BUCKET", "plain"),
        ("ATHENS_STORAGE_GCP_ATHENS_STORAGE_GCP_BUCKET", "nested"),
    ]);
    assert_eq!(c.storage.gcp.bucket, "nested");
    let c = load(&[("ATHENS_STORAGE_GCP_BUCKET", "plain")]);
    assert_eq!(c.storage.gcp.bucket, "plain");
    // Variables without the ATHENS_ prefix and deeper tables.
    let c = load(&[
        ("ATHENS_STORAGE_S3_AWS_REGION", "eu-west-3"),
        (
            "ATHENS_STORAGE_DISK_ATHENS_DISK_STORAGE_ROOT",
            "/srv/athens",
        ),
    ]);
    assert_eq!(c.storage.s3.region, "eu-west-3");
    assert_eq!(c.storage.disk.root_path, "/srv/athens");
    // Redis and Sentinel share ATHENS_REDIS_PASSWORD; the nested names
    // tell them apart.
    let c = load(&[(
        "ATHENS_SINGLEFLIGHT_REDISSENTINEL_ATHENS_REDIS_PASSWORD",
        "sentinel-only",
    )]);
    assert_eq!(
        c.single_flight.redis_sentinel.redis_password.expose(),
        "sentinel-only"
    );
    assert_eq!(c.single_flight.redis.password.expose(), "");
    // An empty nested variable counts as unset.
    let c = load(&[
        ("ATHENS_STORAGE_GCP_ATHENS_STORAGE_GCP_BUCKET", ""),
        ("ATHENS_STORAGE_GCP_BUCKET", "plain"),
    ]);
    assert_eq!(c.storage.gcp.bucket, "plain");
}

#[test]
fn every_nested_setting_has_its_envconfig_name_first() {
    for setting in crate::config::settings::settings() {
        let names = setting.lookup_names();
        assert!(names.ends_with(&setting.env_names()), "{}", setting.key);
        if let Some((tables, _)) = setting.key.rsplit_once('.') {
            let first = &names[0];
            assert!(
                first.starts_with(&format!(
                    "ATHENS_{}_",
                    tables.replace('.', "_").to_ascii_uppercase()
                )),
                "{}: {first}",
                setting.key
            );
        }
    }
}
