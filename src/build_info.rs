//! What the binary knows about its own build, as Athens' `pkg/build`
//! reports it: a version and a build date, set at build time (see
//! `build.rs`: `ATHENS_BUILD_VERSION`, `ATHENS_BUILD_DATE`,
//! `SOURCE_DATE_EPOCH`, or the package version and the git commit).

use serde::Serialize;

/// The build's details, serialized as Athens' `/version` answers them:
/// `{"version":"...","date":"..."}`, an empty field left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BuildDetails {
    /// The version built, e.g. `v0.1.0+0123456789ab`.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub version: &'static str,
    /// When it was built, e.g. `2026-12-03-09:16:15-UTC`.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub date: &'static str,
}

/// This binary's build details.
pub const DETAILS: BuildDetails = BuildDetails {
    version: env!("ATHENS_BUILD_DETAILS_VERSION"),
    date: env!("ATHENS_BUILD_DETAILS_DATE"),
};

impl BuildDetails {
    /// The `/version` body: the JSON object and a newline, as Go's
    /// `json.Encoder` writes it.
    pub fn json_line(&self) -> String {
        // Serializing two strings cannot fail.
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }

    /// What `-version` prints (without the final newline), laid out as
    /// Athens' `build.String()`.
    pub fn console_text(&self) -> String {
        format!(
            "Build Details:\n\tVersion:\t{}\n\tDate:\t\t{}",
            self.version, self.date
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_athens() {
        let details = BuildDetails {
            version: "v1.2.3",
            date: "2018-11-05-14:33:14-UTC",
        };
        assert_eq!(
            details.json_line(),
            "{\"version\":\"v1.2.3\",\"date\":\"2018-11-05-14:33:14-UTC\"}\n"
        );
        assert_eq!(
            details.console_text(),
            "Build Details:\n\tVersion:\tv1.2.3\n\tDate:\t\t2018-11-05-14:33:14-UTC"
        );
        let undated = BuildDetails {
            version: "v1.2.3",
            date: "",
        };
        assert_eq!(undated.json_line(), "{\"version\":\"v1.2.3\"}\n");
        assert_eq!(
            undated.console_text(),
            "Build Details:\n\tVersion:\tv1.2.3\n\tDate:\t\t"
        );
    }

    #[test]
    fn this_build_names_its_package_version() {
        let version = DETAILS.version;
        // Unless the build set another version explicitly.
        if option_env!("ATHENS_BUILD_VERSION").is_none() {
            let package = concat!("v", env!("CARGO_PKG_VERSION"));
            assert!(
                version == package
                    || version.starts_with(concat!("v", env!("CARGO_PKG_VERSION"), "+")),
                "{version}"
            );
        }
        assert!(!DETAILS.date.contains('\n'));
    }
}
