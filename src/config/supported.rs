//! Settings Athens has that this server does not act on. Where ignoring
//! one would be unsafe (a storage that is not there) it is refused like any
//! invalid setting; otherwise it only draws a warning. Both are part of
//! [`Config::validate`].

use super::{Config, StorageType};

/// Why `StorageType = "mongo"` stops the start. A MongoDB client that no
/// test can run against a real server would be guesswork, so there is none.
pub(crate) const MONGO_REFUSED: &str = "\"mongo\" is not supported by this server: it has no \
    MongoDB client, because no MongoDB server can be installed where it is built and tested, \
    and an untested client is not shipped; use disk, s3, minio, gcp, azureblob or external \
    storage instead";

impl Config {
    /// Whether HTTPS is configured: like Athens, only when both the
    /// certificate and the key file are set.
    pub fn tls_enabled(&self) -> bool {
        !self.tls_cert_file.is_empty() && !self.tls_key_file.is_empty()
    }

    /// Reports the settings that ask for behaviour this server lacks.
    pub(super) fn refuse_unsupported(&self, fail: &mut impl FnMut(&str, String)) {
        if self.storage_type == StorageType::Mongo {
            fail("StorageType", MONGO_REFUSED.into());
        }
        if crate::traces::enabled(&self.trace_exporter) {
            if let Err(reason) = crate::traces::check_url(&self.trace_exporter_url) {
                fail("TraceExporterURL", reason);
            }
        }
    }

    /// Warnings for the settings that are ignored.
    pub(super) fn ignored_settings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.trace_exporter.is_empty() && !crate::traces::enabled(&self.trace_exporter) {
            // Athens also only logs this and runs without traces.
            warnings.push(format!(
                "TraceExporter {:?} is not supported: traces are exported over OTLP only \
                 (TraceExporter = \"otlp\"); no traces are exported",
                self.trace_exporter
            ));
        }
        warnings.extend(self.keys_without_effect());
        warnings
    }

    /// Warnings for keys Athens acts on that are accepted here but change
    /// nothing, named only when set to something other than the default.
    fn keys_without_effect(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.go_binary != "go" {
            warnings.push(format!(
                "GoBinary {:?} is ignored (modules are fetched natively, no go binary is run)",
                self.go_binary
            ));
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ConfigError, InvalidSetting};
    use super::*;

    fn refused(config: &Config) -> Vec<InvalidSetting> {
        match config.validate() {
            Err(ConfigError::Invalid(list)) => list,
            other => panic!("{config:?} must be refused, got {other:?}"),
        }
    }

    #[test]
    fn unsafe_unimplemented_settings_are_refused() {
        assert!(Config::default().validate().unwrap().is_empty());
        let mut mongo = Config {
            storage_type: StorageType::Mongo,
            ..Config::default()
        };
        mongo.storage.mongo.url = crate::config::Secret::new("mongodb://localhost");
        let keys: Vec<String> = refused(&mongo).into_iter().map(|s| s.key).collect();
        assert_eq!(keys, vec!["StorageType".to_string()]);
        // TLS is served on a Unix socket as on TCP.
        let tls_on_unix_socket = Config {
            tls_cert_file: "/etc/athens/cert.pem".into(),
            tls_key_file: "/etc/athens/key.pem".into(),
            unix_socket: "/run/athens.sock".into(),
            ..Config::default()
        };
        assert!(tls_on_unix_socket.validate().unwrap().is_empty());
        let reason = &refused(&mongo)[0].reason;
        assert!(
            reason.contains("no MongoDB server can be installed where it is built and tested"),
            "{reason}"
        );
    }

    #[test]
    fn trace_settings_are_checked_only_when_traces_are_on() {
        let traced = |url: &str, fraction: f64| Config {
            trace_exporter: "otlp".into(),
            trace_exporter_url: url.into(),
            trace_sampling_fraction: fraction,
            ..Config::default()
        };
        for url in ["http://localhost:4317", "https://otel.example:443", ""] {
            assert!(traced(url, 1.0).validate().is_ok(), "{url}");
        }
        for (url, key) in [
            ("localhost:4317", "TraceExporterURL"),
            ("grpc://collector:4317", "TraceExporterURL"),
            ("http://", "TraceExporterURL"),
        ] {
            let keys: Vec<String> = refused(&traced(url, 1.0))
                .into_iter()
                .map(|s| s.key)
                .collect();
            assert_eq!(keys, vec![key.to_string()], "{url}");
        }
        // Off: the URL is not used, so not judged.
        let off = Config {
            trace_exporter_url: "localhost:4317".into(),
            ..Config::default()
        };
        assert!(off.validate().is_ok());
    }

    #[test]
    fn ignored_settings_are_warnings() {
        let warnings = Config {
            index_type: "memory".into(),
            ..Config::default()
        }
        .validate()
        .unwrap();
        // The index is kept (src/index), so IndexType is not ignored.
        assert!(warnings.is_empty(), "{warnings:?}");
        // Profiles are served (src/pprof.rs).
        let warnings = Config {
            enable_pprof: true,
            ..Config::default()
        }
        .validate()
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        // OTLP is exported (src/traces.rs); Athens' former exporters are not.
        let warnings = Config {
            trace_exporter: "otlp".into(),
            ..Config::default()
        }
        .validate()
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let warnings = Config {
            trace_exporter: "jaeger".into(),
            ..Config::default()
        }
        .validate()
        .unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("TraceExporter \"jaeger\" is not supported"),
            "{warnings:?}"
        );
    }

    #[test]
    fn keys_without_effect_are_reported_when_set() {
        let mut config = Config {
            go_binary: "/usr/local/go/bin/go".into(),
            ..Config::default()
        };
        // Honoured as in Athens (src/storage/object): no warning.
        config.storage.gcp.project_id = "my-project".into();
        config.storage.azure_blob.credential_scope = "https://storage.azure.com/.default".into();
        config.storage.s3.credentials_endpoint = "http://169.254.170.2".into();
        let warnings = config.validate().unwrap();
        assert!(
            !warnings.iter().any(|w| w.contains("Storage.")),
            "{warnings:?}"
        );
        assert_eq!(
            warnings
                .iter()
                .filter(|w| w.starts_with("GoBinary"))
                .count(),
            1,
            "{warnings:?}"
        );
        // At their defaults they say nothing; CloudRuntime GCP selects the
        // log format, so it is not among them.
        assert!(Config::default().validate().unwrap().is_empty());
        let gcp = Config {
            cloud_runtime: "GCP".into(),
            ..Config::default()
        };
        assert!(gcp.validate().unwrap().is_empty());
    }

    #[test]
    fn tls_needs_both_files() {
        let mut config = Config {
            tls_cert_file: "cert.pem".into(),
            ..Config::default()
        };
        assert!(!config.tls_enabled());
        config.tls_key_file = "key.pem".into();
        assert!(config.tls_enabled());
    }
}
