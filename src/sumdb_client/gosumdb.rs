//! Which checksum database to use, and for which modules, from the go
//! environment Athens hands its go command (`GoBinaryEnvVars`), with the
//! go command's rules (`cmd/go/internal/modfetch/sumdb.go`: `useSumDB`,
//! `dbDial`).

use reqwest::Url;
use sumdb::note::Verifier;
use vcs::goenv::GoEnv;

use crate::pathmatch::matches_any_path_prefix;

/// The public key of sum.golang.org, which the go command knows by name.
pub const SUM_GOLANG_ORG_KEY: &str =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

/// The toolchain module, which the go command always checks (see
/// [`SumdbPolicy::applies`]).
const TOOLCHAIN_MODULE: &str = "golang.org/toolchain";

/// A GOSUMDB the go command would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GosumdbError(pub String);

/// A usable GOSUMDB: the database's name, key and optional URL.
#[derive(Debug, Clone)]
pub struct Database {
    /// The name the key carries, `host[/path]`.
    pub name: String,
    /// The verifier key text.
    pub key: String,
    /// The parsed key.
    pub verifier: Verifier,
    /// The URL given after the key, if any; otherwise the database is
    /// reached through a GOPROXY that proxies it, or at `https://<name>`.
    pub url: Option<Url>,
}

impl Database {
    /// Parses a GOSUMDB value other than `off`: `name`, `name+key` or
    /// `name+key url`, where a bare `sum.golang.org` (or
    /// `sum.golang.google.cn`) stands for its well-known key.
    pub fn parse(gosumdb: &str) -> Result<Database, GosumdbError> {
        let gosumdb = if gosumdb == "sum.golang.google.cn" {
            "sum.golang.org https://sum.golang.google.cn"
        } else {
            gosumdb
        };
        let mut fields: Vec<&str> = gosumdb.split_whitespace().collect();
        if let Some(first) = fields.first_mut() {
            if *first == "sum.golang.org" {
                *first = SUM_GOLANG_ORG_KEY;
            }
        }
        if fields.is_empty() {
            return Err(GosumdbError("missing GOSUMDB".into()));
        }
        if fields.len() > 2 {
            return Err(GosumdbError("invalid GOSUMDB: too many fields".into()));
        }
        let verifier = Verifier::parse(fields[0])
            .map_err(|e| GosumdbError(format!("invalid GOSUMDB: {e}")))?;
        let name = verifier.name().to_string();
        if !is_host_path(&name) {
            return Err(GosumdbError(format!(
                "invalid sumdb name (must be host[/path]): {name}"
            )));
        }
        let url = match fields.get(1) {
            Some(raw) => Some(
                Url::parse(raw).map_err(|e| GosumdbError(format!("invalid GOSUMDB URL: {e}")))?,
            ),
            None => None,
        };
        Ok(Database {
            name,
            key: fields[0].to_string(),
            verifier,
            url,
        })
    }

    /// `https://<name>`, where the go command reaches the database when
    /// no URL is given and no proxy serves it.
    pub fn direct_url(&self) -> Url {
        // The name was checked to make a valid URL this way.
        Url::parse(&format!("https://{}", self.name)).expect("checked sumdb name")
    }
}

/// Whether `https://` + `name` is a URL with a host, an optional path, no
/// trailing slash and nothing else (no user, port-free or not, query,
/// fragment or escapes), as the go command requires of a database name.
fn is_host_path(name: &str) -> bool {
    if name.ends_with('/') || name.contains(['?', '#', '@', '%', '\\']) {
        return false;
    }
    let (host, _path) = name.split_once('/').unwrap_or((name, ""));
    if host.is_empty() {
        return false;
    }
    Url::parse(&format!("https://{name}"))
        .is_ok_and(|u| u.host_str().is_some_and(|h| !h.is_empty()))
}

/// Which module versions get checked, and against which database.
#[derive(Debug, Clone)]
pub struct SumdbPolicy {
    /// The database, or why GOSUMDB cannot be used (`off`, or malformed):
    /// then every module that must be checked fails with this reason.
    pub database: Result<Database, GosumdbError>,
    /// Whether GOSUMDB is `off`.
    pub off: bool,
    gonosumdb: String,
    no_sum_patterns: Vec<String>,
    goproxy_is_file_only: bool,
}

impl SumdbPolicy {
    /// The policy of the go environment `env` and Athens' `NoSumPatterns`.
    ///
    /// GONOSUMDB (which defaults to GOPRIVATE) and `NoSumPatterns` name the
    /// modules that are not checked; GOINSECURE does not disable checking
    /// (it only concerns how origins are reached), nor does GONOSUMCHECK,
    /// which the go command does not read.
    pub fn new(env: &GoEnv, no_sum_patterns: &[String]) -> SumdbPolicy {
        let gosumdb = env.gosumdb();
        let off = gosumdb == "off";
        let database = if off {
            Err(GosumdbError(
                "checksum database disabled by GOSUMDB=off".into(),
            ))
        } else {
            Database::parse(gosumdb)
        };
        let goproxy = env.goproxy();
        SumdbPolicy {
            database,
            off,
            gonosumdb: env.gonosumdb().to_string(),
            no_sum_patterns: no_sum_patterns.to_vec(),
            goproxy_is_file_only: goproxy.starts_with("file://") && !goproxy.contains([',', '|']),
        }
    }

    /// Whether the go command would check `module` against the database.
    ///
    /// The toolchain module is always checked (even with GOSUMDB=off or a
    /// matching GONOSUMDB) unless GOPROXY is a single `file://` URL;
    /// otherwise a module is checked unless GOSUMDB is `off` or the module
    /// matches GONOSUMDB or `NoSumPatterns`.
    pub fn applies(&self, module: &str) -> bool {
        if module == TOOLCHAIN_MODULE && !self.goproxy_is_file_only {
            return true;
        }
        !self.off
            && !modzip::module::match_prefix_patterns(&self.gonosumdb, module)
            && !matches_any_path_prefix(&self.no_sum_patterns, module)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> GoEnv {
        GoEnv::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
    }

    #[test]
    fn gosumdb_forms() {
        let db = Database::parse("sum.golang.org").unwrap();
        assert_eq!(db.name, "sum.golang.org");
        assert_eq!(db.key, SUM_GOLANG_ORG_KEY);
        assert!(db.url.is_none());
        assert_eq!(db.direct_url().as_str(), "https://sum.golang.org/");

        let db = Database::parse("sum.golang.google.cn").unwrap();
        assert_eq!(db.name, "sum.golang.org");
        assert_eq!(db.url.unwrap().as_str(), "https://sum.golang.google.cn/");

        let db = Database::parse(&format!("{SUM_GOLANG_ORG_KEY} http://127.0.0.1:1/x")).unwrap();
        assert_eq!(db.url.unwrap().as_str(), "http://127.0.0.1:1/x");
        // The name with a URL stands for the known key too.
        let db = Database::parse("sum.golang.org https://mirror.example").unwrap();
        assert_eq!(db.key, SUM_GOLANG_ORG_KEY);

        let (_, vkey) = sumdb::note::generate_key("sumdb.example.com/log").unwrap();
        let db = Database::parse(&format!("  {vkey}  ")).unwrap();
        assert_eq!(db.name, "sumdb.example.com/log");
        assert_eq!(db.direct_url().as_str(), "https://sumdb.example.com/log");
    }

    #[test]
    fn bad_gosumdb() {
        let (_, vkey) = sumdb::note::generate_key("sumdb.example.com").unwrap();
        for (value, want) in [
            ("", "missing GOSUMDB"),
            ("a b c", "invalid GOSUMDB: too many fields"),
            (
                "sumdb.example.com",
                "invalid GOSUMDB: malformed verifier id",
            ),
            (
                "sum.golang.org+033de0ae+AAAA",
                "invalid GOSUMDB: invalid verifier hash",
            ),
        ] {
            assert_eq!(Database::parse(value).unwrap_err().0, want, "{value:?}");
        }
        assert!(Database::parse(&format!("{vkey} ::nope"))
            .unwrap_err()
            .0
            .starts_with("invalid GOSUMDB URL"));
        for name in ["x.example/", "user@x.example", "x.example?q", "/x"] {
            let (_, vkey) = sumdb::note::generate_key(name).unwrap();
            let err = Database::parse(&vkey).unwrap_err().0;
            assert!(err.starts_with("invalid sumdb name"), "{name}: {err}");
        }
    }

    #[test]
    fn which_modules_are_checked() {
        let p = SumdbPolicy::new(&env(&[]), &[]);
        assert!(p.applies("github.com/a/b"));
        assert_eq!(p.database.as_ref().unwrap().name, "sum.golang.org");

        let p = SumdbPolicy::new(
            &env(&[("GOPRIVATE", "corp.example,github.com/secret/*")]),
            &[],
        );
        assert!(!p.applies("corp.example/x"));
        assert!(!p.applies("github.com/secret/x/y"));
        assert!(p.applies("github.com/public/x"));

        // GONOSUMDB, when set, replaces GOPRIVATE for this purpose.
        let p = SumdbPolicy::new(
            &env(&[
                ("GOPRIVATE", "corp.example"),
                ("GONOSUMDB", "other.example"),
            ]),
            &[],
        );
        assert!(p.applies("corp.example/x"));
        assert!(!p.applies("other.example/x"));

        // Athens' NoSumPatterns.
        let p = SumdbPolicy::new(&env(&[]), &["github.com/private/*".to_string()]);
        assert!(!p.applies("github.com/private/x"));
        assert!(p.applies("github.com/public/x"));

        // GOINSECURE and GONOSUMCHECK change nothing.
        let p = SumdbPolicy::new(&env(&[("GOINSECURE", "*"), ("GONOSUMCHECK", "1")]), &[]);
        assert!(p.applies("github.com/a/b"));

        let p = SumdbPolicy::new(&env(&[("GOSUMDB", "off")]), &[]);
        assert!(!p.applies("github.com/a/b"));
        assert!(p.off);
        // ...except the toolchain, which then cannot be verified.
        assert!(p.applies("golang.org/toolchain"));
        assert_eq!(
            p.database.unwrap_err().0,
            "checksum database disabled by GOSUMDB=off"
        );
        let p = SumdbPolicy::new(&env(&[("GONOSUMDB", "golang.org")]), &[]);
        assert!(p.applies("golang.org/toolchain"));
        assert!(!p.applies("golang.org/x/mod"));
        let p = SumdbPolicy::new(
            &env(&[("GOSUMDB", "off"), ("GOPROXY", "file:///srv/proxy")]),
            &[],
        );
        assert!(!p.applies("golang.org/toolchain"));
        let p = SumdbPolicy::new(
            &env(&[("GOSUMDB", "off"), ("GOPROXY", "file:///srv/proxy,direct")]),
            &[],
        );
        assert!(p.applies("golang.org/toolchain"));
    }
}
