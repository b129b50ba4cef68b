//! Settings Athens has that this server does not act on. Where ignoring
//! one would be unsafe (a lock that does not exclude, a storage that is
//! not there, plain HTTP where TLS was asked for) it is refused like any
//! invalid setting; otherwise it only draws a warning. Both are part of
//! [`Config::validate`].

use super::{Config, SingleFlightType, StorageType};

impl Config {
    /// Whether HTTPS is configured: like Athens, only when both the
    /// certificate and the key file are set.
    pub fn tls_enabled(&self) -> bool {
        !self.tls_cert_file.is_empty() && !self.tls_key_file.is_empty()
    }

    /// Reports the settings that ask for behaviour this server lacks.
    pub(super) fn refuse_unsupported(&self, fail: &mut impl FnMut(&str, String)) {
        if self.single_flight_type == SingleFlightType::Redis && self.single_flight.redis.cluster {
            fail(
                "SingleFlight.Redis.Cluster",
                "Redis Cluster is not supported; use one Redis or Sentinel".into(),
            );
        }
        if self.storage_type == StorageType::Mongo {
            fail(
                "StorageType",
                "\"mongo\" is not supported by this server".into(),
            );
        }
        if self.tls_enabled() && !self.unix_socket.is_empty() {
            fail(
                "UnixSocket",
                "cannot be used with TLSCertFile/TLSKeyFile (TLS is served on TCP only)".into(),
            );
        }
    }

    /// Warnings for the settings that are ignored.
    pub(super) fn ignored_settings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.enable_pprof {
            warnings.push("EnablePprof is ignored".into());
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
        let mut cluster = Config {
            single_flight_type: SingleFlightType::Redis,
            ..Config::default()
        };
        cluster.single_flight.redis.cluster = true;
        let mut mongo = Config {
            storage_type: StorageType::Mongo,
            ..Config::default()
        };
        mongo.storage.mongo.url = crate::config::Secret::new("mongodb://localhost");
        let tls_on_unix_socket = Config {
            tls_cert_file: "/etc/athens/cert.pem".into(),
            tls_key_file: "/etc/athens/key.pem".into(),
            unix_socket: "/run/athens.sock".into(),
            ..Config::default()
        };
        for (config, key) in [
            (cluster, "SingleFlight.Redis.Cluster"),
            (mongo, "StorageType"),
            (tls_on_unix_socket, "UnixSocket"),
        ] {
            let keys: Vec<String> = refused(&config).into_iter().map(|s| s.key).collect();
            assert_eq!(keys, vec![key.to_string()]);
        }
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
        let warnings = Config {
            enable_pprof: true,
            ..Config::default()
        }
        .validate()
        .unwrap();
        assert_eq!(warnings, vec!["EnablePprof is ignored".to_string()]);
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
