//! Value types with behaviour of their own: environment lists for the Go
//! toolchain settings, and secrets that never show up in debug output.

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
