//! Value types with behaviour of their own: environment lists for the Go
//! toolchain settings, secrets that never show up in debug output, and the
//! keyword settings `StorageType` and `SingleFlightType`.

use serde::Deserialize;

/// A list of `KEY=value` assignments (Athens' `EnvList`), such as the Go
/// environment used for fetching.
///
/// From the environment variable it is written `A=1; B=2`: semicolons
/// separate entries because commas occur inside values like `GOPROXY`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct EnvList(pub Vec<String>);

impl EnvList {
    /// Parses the environment-variable form; an empty string gives `None`
    /// (keep the configured list), anything else replaces it entirely.
    pub fn decode(value: &str) -> Result<Option<EnvList>, String> {
        if value.is_empty() {
            return Ok(None);
        }
        let list = EnvList(value.split(';').map(|s| s.trim().to_string()).collect());
        list.validate()?;
        Ok(Some(list))
    }

    /// Checks that every entry has the form `KEY=value`.
    pub fn validate(&self) -> Result<(), String> {
        for entry in &self.0 {
            if !entry.contains('=') {
                return Err(format!("entry {entry:?} is not of the form KEY=value"));
            }
        }
        Ok(())
    }

    /// Whether some entry assigns `key`.
    pub fn has_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The value assigned to `key`; the last assignment wins, as it does
    /// for a process environment.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find_map(|entry| {
            let (k, v) = entry.split_once('=')?;
            (k == key).then_some(v)
        })
    }

    /// Appends `key=value`.
    pub fn add(&mut self, key: &str, value: &str) {
        self.0.push(format!("{key}={value}"));
    }
}

/// A string that must not appear in logs: `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The clear-text value, for the code that actually needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(\"\")")
        } else {
            f.write_str("Secret(<redacted>)")
        }
    }
}

/// Defines a setting whose value is one of a fixed set of keywords: the
/// enum, its keywords (Athens' spellings, matched exactly as Athens
/// matches them), parsing with an error naming the accepted ones, and
/// deserialization through that parser. `empty => Variant` makes an empty
/// value mean `Variant`; otherwise an empty value is an error.
macro_rules! keyword_setting {
    (
        $(#[doc = $doc:literal])*
        pub enum $name:ident ($what:literal) {
            $( $(#[doc = $variant_doc:literal])* $variant:ident = $keyword:literal, )+
        }
        $(empty => $empty:ident;)?
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[doc = $variant_doc])* $variant, )+
        }

        impl $name {
            /// Every value, in the order the documentation lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The keyword, as written in `athens.toml`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $keyword,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(value: &str) -> Result<Self, String> {
                match value {
                    $($keyword => Ok($name::$variant),)+
                    "" => {
                        let empty: Option<$name> = None $(.or(Some($name::$empty)))?;
                        empty.ok_or_else(|| "must not be empty".to_string())
                    }
                    other => {
                        let known: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                        Err(format!(
                            "{} {other:?} is unknown (use one of {})",
                            $what,
                            known.join(", ")
                        ))
                    }
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Compares with a keyword, so a configuration reads as it is written.
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                value.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

keyword_setting! {
    /// `StorageType`: where modules are stored.
    pub enum StorageType ("storage type") {
        /// In process memory, lost at exit.
        Memory = "memory",
        /// A directory tree in Athens' disk layout.
        Disk = "disk",
        /// MongoDB (accepted by the configuration; refused at start).
        Mongo = "mongo",
        /// A Google Cloud Storage bucket.
        Gcp = "gcp",
        /// A Minio (or other S3-compatible) bucket.
        Minio = "minio",
        /// An Amazon S3 bucket.
        S3 = "s3",
        /// An Azure Blob Storage container.
        AzureBlob = "azureblob",
        /// Another server speaking Athens' external-storage protocol.
        External = "external",
    }
}

keyword_setting! {
    /// `SingleFlightType`: the lock service that lets several instances
    /// sharing one store fetch each module version once.
    pub enum SingleFlightType ("single flight type") {
        /// No lock service: one instance (concurrent requests inside it
        /// still share one fetch).
        Memory = "memory",
        /// etcd leases.
        Etcd = "etcd",
        /// Redis locks.
        Redis = "redis",
        /// Redis locks, the master found through Sentinel.
        RedisSentinel = "redis-sentinel",
        /// Leases in the GCS bucket of `StorageType` `gcp`.
        Gcp = "gcp",
        /// Leases in the Azure container of `StorageType` `azureblob`.
        AzureBlob = "azureblob",
    }
    empty => Memory;
}
