//! `.netrc` credentials, read the way the go command reads them (GOAUTH=netrc).
//!
//! Only `machine`/`login`/`password` triples are used; `macdef` bodies are
//! skipped, and a bare `default` token stops the scan.
//!
//! Which requests an entry is for, as the go command decides it: only
//! `https` URLs (never plain `http`, not even for GOINSECURE paths; an https
//! request to a GOINSECURE host still gets them, as the go command sends
//! them there too), matched by the URL without its scheme cut back at `/`
//! boundaries. A `machine` names a host and optionally a port and a path
//! prefix; a machine without a port is for port 443 only. Callers send the
//! credentials chosen for a URL only to that URL's origin (scheme, host,
//! port: [`same_origin`]), never on after a redirect elsewhere.

use std::fmt;
use std::io;
use std::path::Path;

use url::Url;

/// One complete `machine` entry.
#[derive(Clone, PartialEq, Eq)]
pub struct NetrcEntry {
    /// Host name (possibly with `:port` or a path), as written.
    pub machine: String,
    /// User name.
    pub login: String,
    password: String,
}

impl NetrcEntry {
    /// The password; deliberately not part of `Debug` output.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for NetrcEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetrcEntry")
            .field("machine", &self.machine)
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Parsed `.netrc` contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Netrc {
    entries: Vec<NetrcEntry>,
}

impl Netrc {
    /// Parses netrc text. Malformed parts are skipped, never fatal.
    pub fn parse(data: &str) -> Netrc {
        let mut entries = Vec::new();
        let (mut machine, mut login, mut password) = (String::new(), String::new(), String::new());
        let mut in_macro = false;
        for line in data.split('\n') {
            if in_macro {
                // A macro body runs to the next empty line.
                if line.is_empty() {
                    in_macro = false;
                }
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let mut i = 0;
            while i + 1 < words.len() {
                match words[i] {
                    "machine" => {
                        machine = words[i + 1].to_string();
                        login.clear();
                        password.clear();
                    }
                    "login" => login = words[i + 1].to_string(),
                    "password" => password = words[i + 1].to_string(),
                    "macdef" => in_macro = true,
                    _ => {}
                }
                if !machine.is_empty() && !login.is_empty() && !password.is_empty() {
                    entries.push(NetrcEntry {
                        machine: std::mem::take(&mut machine),
                        login: std::mem::take(&mut login),
                        password: std::mem::take(&mut password),
                    });
                }
                i += 2;
            }
            // An unpaired trailing `default` starts the catch-all entry, which
            // the go command does not use; nothing after it is read either.
            if i < words.len() && words[i] == "default" {
                break;
            }
        }
        Netrc { entries }
    }

    /// Reads and parses `path`; a missing file is an empty netrc.
    pub fn load(path: &Path) -> io::Result<Netrc> {
        match std::fs::read(path) {
            Ok(data) => Ok(Netrc::parse(&String::from_utf8_lossy(&data))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Netrc::default()),
            Err(e) => Err(e),
        }
    }

    /// All complete entries in file order.
    pub fn entries(&self) -> &[NetrcEntry] {
        &self.entries
    }

    /// The login and password to send with a request to `url`: only for
    /// `https`, matching the longest `machine` that equals the URL without
    /// its scheme cut back at a `/`. The first entry for a machine wins.
    pub fn credentials_for(&self, url: &Url) -> Option<(&str, &str)> {
        machine_for(url, &self.entries, |e| &e.machine).map(|e| (e.login.as_str(), e.password()))
    }
}

/// The first of `items` whose machine (as `machine` reads it) is the longest
/// match for `url` under the netrc rule of this module; `None` for anything
/// but https. Shared by discovery and git so both scope credentials alike.
pub(crate) fn machine_for<'a, T>(
    url: &Url,
    items: &'a [T],
    machine: impl Fn(&T) -> &str,
) -> Option<&'a T> {
    if url.scheme() != "https" || url.host_str().is_none() {
        return None;
    }
    // The URL crate drops a default port, so `https://h:443/x` reads as
    // `h/x` and matches a machine `h`, while `https://h:8443/x` does not.
    let full = url.as_str();
    let mut prefix = full.strip_prefix("https://").unwrap_or(full);
    // User information never takes part in the match.
    if let Some(at) = prefix.find('@').filter(|&at| !prefix[..at].contains('/')) {
        prefix = &prefix[at + 1..];
    }
    prefix = prefix.split(['?', '#']).next().unwrap_or(prefix);
    prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    loop {
        if let Some(item) = items.iter().find(|i| machine(i) == prefix) {
            return Some(item);
        }
        let slash = prefix.rfind('/')?;
        prefix = &prefix[..slash];
    }
}

/// Whether `b` has the scheme, host and port of `a`: the only place
/// credentials chosen for `a` may be sent.
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && matches!((a.host_str(), b.host_str()), (Some(x), Some(y)) if x.eq_ignore_ascii_case(y))
        && a.port_or_known_default() == b.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds<'a>(n: &'a Netrc, url: &str) -> Option<(&'a str, &'a str)> {
        n.credentials_for(&Url::parse(url).expect("url"))
    }

    #[test]
    fn parse_entries() {
        let n = Netrc::parse(
            "machine incomplete\n\
             password none\n\
             \n\
             machine api.github.com\n  login user\n  password pwd\n\
             \n\
             machine incomlete.host\n  login justlogin\n\
             \n\
             machine test.host\nlogin user2\npassword pwd2\n\
             \n\
             machine oneline login user3 password pwd3\n\
             \n\
             machine ignore.host macdef ignore\n  login nobody\n  password nothing\n\
             \n\
             machine hasmacro.too macdef ignore-next-lines login user4 password pwd4\n  login nobody\n  password nothing\n\
             \n\
             default\n\
             \n\
             machine after.default login oops password too-late-in-file\n",
        );
        let got: Vec<(&str, &str, &str)> = n
            .entries()
            .iter()
            .map(|e| (e.machine.as_str(), e.login.as_str(), e.password()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("api.github.com", "user", "pwd"),
                ("test.host", "user2", "pwd2"),
                ("oneline", "user3", "pwd3"),
                ("hasmacro.too", "user4", "pwd4"),
            ]
        );
    }

    #[test]
    fn debug_hides_password() {
        let n = Netrc::parse("machine h login u password s3cret\n");
        let shown = format!("{n:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn lookup_by_prefix_https_only() {
        let n = Netrc::parse(
            "machine example.com login a password 1\n\
             machine example.com login b password 2\n\
             machine example.com:8443 login c password 3\n\
             machine corp.test/team login d password 4\n",
        );
        assert_eq!(
            creds(&n, "https://example.com/x/y?go-get=1"),
            Some(("a", "1"))
        );
        assert_eq!(creds(&n, "https://example.com"), Some(("a", "1")));
        assert_eq!(creds(&n, "http://example.com/x"), None);
        assert_eq!(creds(&n, "https://example.com:8443/x"), Some(("c", "3")));
        assert_eq!(creds(&n, "https://sub.example.com/x"), None);
        assert_eq!(creds(&n, "https://example.community/x"), None);
        assert_eq!(
            creds(&n, "https://corp.test/team/repo?go-get=1"),
            Some(("d", "4"))
        );
        assert_eq!(creds(&n, "https://corp.test/other"), None);
    }

    #[test]
    fn machine_without_port_is_https_443_only() {
        let n = Netrc::parse("machine github.com login tok password x-oauth-basic\n");
        assert_eq!(
            creds(&n, "https://github.com:443/o/r"),
            Some(("tok", "x-oauth-basic"))
        );
        assert_eq!(
            creds(&n, "https://github.com/o/r.git"),
            Some(("tok", "x-oauth-basic"))
        );
        assert_eq!(creds(&n, "https://github.com:8443/o/r"), None);
        assert_eq!(creds(&n, "http://github.com/o/r"), None);
        assert_eq!(creds(&n, "ssh://github.com/o/r"), None);
        assert_eq!(creds(&n, "https://github.com.evil.test/o/r"), None);
        assert_eq!(creds(&n, "https://evil.test/github.com/o"), None);
        // User information in the URL neither hides nor forges a match.
        assert_eq!(creds(&n, "https://github.com@evil.test/x"), None);
        assert_eq!(
            creds(&n, "https://someone@github.com/x"),
            Some(("tok", "x-oauth-basic"))
        );
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let u = |s: &str| Url::parse(s).expect("url");
        let a = u("https://a.test/x?go-get=1");
        assert!(same_origin(&a, &u("https://A.test:443/other")));
        assert!(!same_origin(&a, &u("https://a.test:8443/x")));
        assert!(!same_origin(&a, &u("http://a.test/x")));
        assert!(!same_origin(&a, &u("http://a.test:443/x")));
        assert!(!same_origin(&a, &u("https://b.test/x")));
        assert!(!same_origin(&a, &u("https://sub.a.test/x")));
        assert!(same_origin(
            &u("https://127.0.0.1:9000/p"),
            &u("https://127.0.0.1:9000/q")
        ));
        assert!(!same_origin(
            &u("https://127.0.0.1:9000/p"),
            &u("https://127.0.0.2:9000/p")
        ));
    }

    #[test]
    fn load_missing_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            Netrc::load(&dir.path().join("nope")).expect("missing ok"),
            Netrc::default()
        );
        let p = dir.path().join("netrc");
        std::fs::write(&p, "machine h login u password p\n").expect("write");
        assert_eq!(Netrc::load(&p).expect("read").entries().len(), 1);
    }
}
