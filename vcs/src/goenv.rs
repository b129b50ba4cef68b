//! The slice of the go command's environment that our fetcher honours.
//!
//! Athens hands its `go` child process a list of `KEY=VALUE` strings
//! (`GoBinaryEnvVars`) on top of its own environment; [`GoEnv`] is built the
//! same way and applies the go command's defaulting, so that privacy, proxy,
//! insecure-transport and VCS policy decisions match what `go mod download`
//! would have decided in that environment.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use url::Url;

use crate::goauth::GoAuth;

/// The go command's built-in GOPROXY when the variable is unset or empty.
pub const DEFAULT_GOPROXY: &str = "https://proxy.golang.org,direct";
/// The go command's built-in GOSUMDB when the variable is unset or empty.
pub const DEFAULT_GOSUMDB: &str = "sum.golang.org";
/// The go command's built-in GOAUTH when the variable is unset or empty.
pub const DEFAULT_GOAUTH: &str = "netrc";

/// Variables [`GoEnv`] reads; everything else in the input is ignored.
const KNOWN_KEYS: &[&str] = &[
    "GOPROXY",
    "GONOPROXY",
    "GOPRIVATE",
    "GONOSUMDB",
    "GOSUMDB",
    "GOINSECURE",
    "GOVCS",
    "GOAUTH",
    "GOFLAGS",
    "NETRC",
    "HOME",
    "GIT_CONFIG_GLOBAL",
    "GIT_ALLOW_PROTOCOL",
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
    "REQUEST_METHOD",
    "SSL_CERT_FILE",
    // Read by git and the programs it runs for ssh remotes and credential
    // helpers (see `GitOptions::spawn_env`).
    "PATH",
    "XDG_CONFIG_HOME",
    "SSH_AUTH_SOCK",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_SSH_VARIANT",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_CONFIG_SYSTEM",
];

/// A configuration problem in the environment, naming the offending entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoEnvError {
    /// An override was not of the form `KEY=VALUE`.
    #[error("environment entry {0:?} is not of the form KEY=VALUE")]
    MalformedEntry(String),
    /// GOVCS could not be parsed.
    #[error("invalid GOVCS entry {entry:?}: {problem}")]
    Govcs {
        /// The offending comma-separated item (or the whole value).
        entry: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// GOAUTH names a method the go command would refuse.
    #[error("invalid GOAUTH: {0}")]
    Goauth(#[from] crate::goauth::GoAuthError),
    /// GOPROXY could not be parsed.
    #[error("invalid GOPROXY entry {entry:?}: {problem}")]
    Goproxy {
        /// The offending list element (or the whole value).
        entry: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// One GOVCS rule: a pattern (`public`, `private` or a path glob) and the
/// VCS command names it allows (`all` allows every one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GovcsRule {
    /// `public`, `private`, or a comma-free module path glob.
    pub pattern: String,
    /// Allowed VCS command names such as `git`, `hg`, `off`, `all`.
    pub allowed: Vec<String>,
}

/// Parses a GOVCS value into its rules, without the defaults appended.
pub fn parse_govcs(value: &str) -> Result<Vec<GovcsRule>, GoEnvError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let mut rules: Vec<GovcsRule> = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for item in value.split(',') {
        let item = item.trim();
        let bad = |problem| GoEnvError::Govcs {
            entry: item.to_string(),
            problem,
        };
        if item.is_empty() {
            return Err(GoEnvError::Govcs {
                entry: value.to_string(),
                problem: "empty entry",
            });
        }
        let Some((pattern, list)) = item.split_once(':') else {
            return Err(bad("missing colon"));
        };
        let (pattern, list) = (pattern.trim(), list.trim());
        if pattern.is_empty() {
            return Err(bad("empty pattern"));
        }
        if list.is_empty() {
            return Err(bad("empty VCS list"));
        }
        if pattern.starts_with("./")
            || pattern.starts_with("../")
            || pattern == "."
            || pattern == ".."
        {
            return Err(bad("relative pattern not allowed"));
        }
        if seen.contains_key(pattern) {
            // The earlier rule for the same pattern always wins, so this one
            // could never apply; the go command rejects it rather than ignore it.
            return Err(bad("unreachable pattern (same pattern appears earlier)"));
        }
        seen.insert(pattern.to_string(), item.to_string());
        let mut allowed = Vec::new();
        for name in list.split('|') {
            let name = name.trim();
            if name.is_empty() {
                return Err(bad("empty VCS name"));
            }
            allowed.push(name.to_string());
        }
        rules.push(GovcsRule {
            pattern: pattern.to_string(),
            allowed,
        });
    }
    Ok(rules)
}

/// The rules the go command appends after the user's GOVCS rules.
fn default_govcs_rules() -> Vec<GovcsRule> {
    vec![
        GovcsRule {
            pattern: "private".into(),
            allowed: vec!["all".into()],
        },
        GovcsRule {
            pattern: "public".into(),
            allowed: vec!["git".into(), "hg".into()],
        },
    ]
}

/// When a request moves on from one GOPROXY entry to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Entry followed by `,` (or last): move on only after a 404/410-like
    /// "not found" answer.
    OnNotFound,
    /// Entry followed by `|`: move on after any error.
    OnAnyError,
}

/// What one GOPROXY list entry designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyTarget {
    /// A module proxy base URL (`https`, `http` or `file` scheme).
    Url(String),
    /// Fetch from the origin VCS (`direct`); always the end of the list.
    Direct,
    /// Fail every lookup (`off`); always the end of the list.
    Off,
    /// Implicit first entry when GONOPROXY (or GOPRIVATE) is set: paths that
    /// match GONOPROXY are fetched directly, others fall through to the
    /// next entry as if not found.
    NoProxy,
}

/// One entry of the parsed GOPROXY list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyEntry {
    /// Where this entry fetches from.
    pub target: ProxyTarget,
    /// When to continue with the next entry after this one fails.
    pub fallback: Fallback,
}

/// GOPROXY parsed the way the go command walks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyList {
    entries: Vec<ProxyEntry>,
}

impl ProxyList {
    /// Parses `goproxy` (already defaulted) given the effective GONOPROXY.
    pub fn parse(goproxy: &str, gonoproxy: &str) -> Result<ProxyList, GoEnvError> {
        let mut entries = Vec::new();
        if !gonoproxy.is_empty() && goproxy != "direct" {
            entries.push(ProxyEntry {
                target: ProxyTarget::NoProxy,
                fallback: Fallback::OnNotFound,
            });
        }
        let mut rest = goproxy;
        while !rest.is_empty() {
            let (item, fallback) = match rest.find([',', '|']) {
                Some(i) => {
                    let fallback = if rest.as_bytes()[i] == b'|' {
                        Fallback::OnAnyError
                    } else {
                        Fallback::OnNotFound
                    };
                    let item = &rest[..i];
                    rest = &rest[i + 1..];
                    (item, fallback)
                }
                None => {
                    let item = rest;
                    rest = "";
                    (item, Fallback::OnNotFound)
                }
            };
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            if item == "off" {
                entries.push(ProxyEntry {
                    target: ProxyTarget::Off,
                    fallback: Fallback::OnNotFound,
                });
                break;
            }
            if item == "direct" {
                // Anything after direct is ignored so that later go releases
                // can give it a meaning without breaking older lists.
                entries.push(ProxyEntry {
                    target: ProxyTarget::Direct,
                    fallback: Fallback::OnNotFound,
                });
                break;
            }
            let url = normalize_proxy_url(item)?;
            entries.push(ProxyEntry {
                target: ProxyTarget::Url(url),
                fallback,
            });
        }
        let only_noproxy = entries.len() == 1 && entries[0].target == ProxyTarget::NoProxy;
        if entries.is_empty() || only_noproxy {
            return Err(GoEnvError::Goproxy {
                entry: goproxy.to_string(),
                problem: "list is not empty but contains no entries",
            });
        }
        Ok(ProxyList { entries })
    }

    /// The entries in the order they are tried.
    pub fn entries(&self) -> &[ProxyEntry] {
        &self.entries
    }
}

/// Applies the implicit `https://` for host-like words and checks the scheme.
fn normalize_proxy_url(item: &str) -> Result<String, GoEnvError> {
    let bad = |problem| GoEnvError::Goproxy {
        entry: item.to_string(),
        problem,
    };
    let looks_like_host = item.contains(['.', ':', '/'])
        && !item.contains(":/")
        && !item.starts_with('/')
        && !is_windows_abs(item);
    let candidate = if looks_like_host {
        format!("https://{item}")
    } else {
        item.to_string()
    };
    let scheme_end = go_url_scheme_len(&candidate);
    let Some(scheme_end) = scheme_end else {
        return Err(bad("missing scheme"));
    };
    let scheme = candidate[..scheme_end].to_ascii_lowercase();
    match scheme.as_str() {
        "http" | "https" => {
            Url::parse(&candidate).map_err(|_| bad("not a valid URL"))?;
        }
        "file" => {
            let parsed = Url::parse(&candidate).map_err(|_| bad("not a valid URL"))?;
            if parsed.host_str().is_some_and(|h| !h.is_empty())
                || parsed.query().is_some()
                || parsed.fragment().is_some()
                || !parsed.username().is_empty()
            {
                return Err(bad("file:// URL may only have a path"));
            }
        }
        _ => return Err(bad("scheme must be https, http or file")),
    }
    Ok(candidate)
}

/// Drive-letter paths count as absolute for GOPROXY on every platform the go
/// command runs on that matter to us only when they look like `C:\`.
fn is_windows_abs(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/')
}

/// Length of a URL scheme as Go's URL parser finds it: a letter followed by
/// letters, digits, `+`, `-`, `.`, ended by `:`. `None` when there is none.
pub(crate) fn go_url_scheme_len(s: &str) -> Option<usize> {
    for (i, c) in s.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i > 0 => return Some(i),
            _ => return None,
        }
    }
    None
}

/// The go command's environment, with its defaults applied.
///
/// Credentials never appear in `Debug` output: netrc contents are read by
/// the discovery client, and proxy settings (which may embed a password)
/// are shown only as present.
///
/// Built once and shared: clones refer to the same settings (see
/// [`GoEnv::same_as`]), so every part of a server that holds one honours
/// one environment.
#[derive(Clone)]
pub struct GoEnv {
    shared: Arc<Settings>,
}

/// What a [`GoEnv`] holds, parsed once.
struct Settings {
    vars: BTreeMap<String, String>,
    govcs_rules: Vec<GovcsRule>,
    proxy_list: ProxyList,
    /// GOAUTH's methods and the credentials they produced, shared by every
    /// client of this environment as the go command shares them.
    goauth: Arc<GoAuth>,
}

impl std::fmt::Debug for GoEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.shared.vars {
            // Proxy URLs and ssh command lines may carry credentials.
            let secretive =
                (k.to_ascii_uppercase().ends_with("_PROXY") && k != "NO_PROXY" && k != "no_proxy")
                    || k == "GIT_SSH_COMMAND";
            if secretive {
                m.entry(k, &"<set>");
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

impl GoEnv {
    /// The process environment with `overrides` (`KEY=VALUE` strings, later
    /// ones winning) layered on top, as Athens does for its go child.
    pub fn from_process<S: AsRef<str>>(overrides: &[S]) -> Result<GoEnv, GoEnvError> {
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in std::env::vars_os() {
            if let (Some(k), Some(v)) = (k.to_str(), v.to_str()) {
                if KNOWN_KEYS.contains(&k) {
                    vars.insert(k.to_string(), v.to_string());
                }
            }
        }
        for entry in overrides {
            let entry = entry.as_ref();
            let Some((k, v)) = entry.split_once('=') else {
                return Err(GoEnvError::MalformedEntry(entry.to_string()));
            };
            if k.is_empty() {
                return Err(GoEnvError::MalformedEntry(entry.to_string()));
            }
            vars.insert(k.to_string(), v.to_string());
        }
        GoEnv::from_map(vars)
    }

    /// Only the given variables (no process environment): for tests and for
    /// callers that assemble the environment themselves.
    pub fn from_vars<I, K, V>(vars: I) -> Result<GoEnv, GoEnvError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        GoEnv::from_map(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    fn from_map(mut vars: BTreeMap<String, String>) -> Result<GoEnv, GoEnvError> {
        // GOAUTH commands run with the whole environment the go command
        // would have had, not only the variables read here.
        let command_env: Vec<(String, String)> =
            vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        vars.retain(|k, _| KNOWN_KEYS.contains(&k.as_str()));
        // The variables alone first: the rules are parsed from their
        // effective (defaulted) values.
        let unparsed = GoEnv {
            shared: Arc::new(Settings {
                vars,
                govcs_rules: Vec::new(),
                proxy_list: ProxyList {
                    entries: Vec::new(),
                },
                goauth: Arc::new(GoAuth::from_netrc(crate::discovery::Netrc::default())),
            }),
        };
        let mut govcs_rules = parse_govcs(unparsed.govcs())?;
        govcs_rules.extend(default_govcs_rules());
        let proxy_list = ProxyList::parse(unparsed.goproxy(), unparsed.gonoproxy())?;
        let goauth = Arc::new(GoAuth::new(
            unparsed.goauth(),
            unparsed.netrc_path(),
            command_env,
        )?);
        let vars = match Arc::try_unwrap(unparsed.shared) {
            Ok(settings) => settings.vars,
            Err(shared) => shared.vars.clone(),
        };
        Ok(GoEnv {
            shared: Arc::new(Settings {
                vars,
                govcs_rules,
                proxy_list,
                goauth,
            }),
        })
    }

    /// Whether `other` is this very environment (a clone of it), not merely
    /// one with equal settings.
    pub fn same_as(&self, other: &GoEnv) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// The raw value of a variable this type knows, empty counting as unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.shared
            .vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// Effective GOPROXY (default `https://proxy.golang.org,direct`).
    pub fn goproxy(&self) -> &str {
        self.get_or("GOPROXY", DEFAULT_GOPROXY)
    }

    /// Effective GOPRIVATE (default empty).
    pub fn goprivate(&self) -> &str {
        self.get_or("GOPRIVATE", "")
    }

    /// Effective GONOPROXY (defaults to GOPRIVATE).
    pub fn gonoproxy(&self) -> &str {
        self.get("GONOPROXY").unwrap_or_else(|| self.goprivate())
    }

    /// Effective GONOSUMDB (defaults to GOPRIVATE).
    pub fn gonosumdb(&self) -> &str {
        self.get("GONOSUMDB").unwrap_or_else(|| self.goprivate())
    }

    /// Effective GOSUMDB (default `sum.golang.org`).
    pub fn gosumdb(&self) -> &str {
        self.get_or("GOSUMDB", DEFAULT_GOSUMDB)
    }

    /// Effective GOINSECURE (default empty).
    pub fn goinsecure(&self) -> &str {
        self.get_or("GOINSECURE", "")
    }

    /// Raw GOVCS (default empty; the built-in rules are applied anyway).
    pub fn govcs(&self) -> &str {
        self.get_or("GOVCS", "")
    }

    /// Effective GOAUTH (default `netrc`).
    pub fn goauth(&self) -> &str {
        self.get_or("GOAUTH", DEFAULT_GOAUTH)
    }

    /// Raw GOFLAGS. Kept for callers that want to log it; no flag changes
    /// discovery (the old `-insecure` flag no longer exists in the go command).
    pub fn goflags(&self) -> &str {
        self.get_or("GOFLAGS", "")
    }

    /// HOME, if set.
    pub fn home(&self) -> Option<&str> {
        self.get("HOME")
    }

    /// SSL_CERT_FILE, if set: a PEM bundle of the certificate authorities
    /// the go command trusts for https instead of the system's. The module
    /// proxy and checksum database clients read it; go-import discovery and
    /// git keep their roots.
    pub fn ssl_cert_file(&self) -> Option<&str> {
        self.get("SSL_CERT_FILE")
    }

    /// GIT_CONFIG_GLOBAL, if set (for the git layer).
    pub fn git_config_global(&self) -> Option<&str> {
        self.get("GIT_CONFIG_GLOBAL")
    }

    /// Whether `path` matches GOPRIVATE.
    pub fn is_private(&self, path: &str) -> bool {
        modzip::module::match_prefix_patterns(self.goprivate(), path)
    }

    /// Whether `path` matches GONOPROXY: it must be fetched directly.
    pub fn no_proxy(&self, path: &str) -> bool {
        modzip::module::match_prefix_patterns(self.gonoproxy(), path)
    }

    /// Whether `path` matches GONOSUMDB: the checksum database is skipped.
    pub fn no_sumdb(&self, path: &str) -> bool {
        modzip::module::match_prefix_patterns(self.gonosumdb(), path)
    }

    /// Whether `path` matches GOINSECURE: plain HTTP and unverified HTTPS
    /// are allowed when locating it.
    pub fn insecure(&self, path: &str) -> bool {
        modzip::module::match_prefix_patterns(self.goinsecure(), path)
    }

    /// Whether GOVCS lets the VCS command `vcs` (`git`, `hg`, ...) be used
    /// for the repository whose import-path root is `root`. `mod` is always
    /// allowed since it is the proxy protocol, not a VCS.
    pub fn vcs_allowed(&self, root: &str, vcs: &str) -> bool {
        if vcs == "mod" {
            return true;
        }
        let private = self.is_private(root);
        for rule in &self.shared.govcs_rules {
            let applies = match rule.pattern.as_str() {
                "private" => private,
                "public" => !private,
                glob => modzip::module::match_prefix_patterns(glob, root),
            };
            if applies {
                return rule.allowed.iter().any(|a| a == vcs || a == "all");
            }
        }
        false
    }

    /// The GOVCS rules in effect: the user's, then the built-in defaults.
    pub fn govcs_rules(&self) -> &[GovcsRule] {
        &self.shared.govcs_rules
    }

    /// The parsed GOPROXY list (with the implicit GONOPROXY entry first).
    pub fn proxy_list(&self) -> &ProxyList {
        &self.shared.proxy_list
    }

    /// GOAUTH's methods and the credentials they have given so far: one
    /// store for every clone of this environment.
    pub fn goauth_credentials(&self) -> &Arc<GoAuth> {
        &self.shared.goauth
    }

    /// Whether GOAUTH asks for .netrc credentials.
    pub fn netrc_enabled(&self) -> bool {
        let goauth = self.goauth();
        goauth
            .split(';')
            .any(|cmd| cmd.split_whitespace().next() == Some("netrc"))
    }

    /// The .netrc file to read: NETRC, else `$HOME/.netrc`; `None` when
    /// neither is known or GOAUTH does not include `netrc`.
    pub fn netrc_path(&self) -> Option<PathBuf> {
        if !self.netrc_enabled() {
            return None;
        }
        if let Some(p) = self.get("NETRC") {
            return Some(PathBuf::from(p));
        }
        self.home().map(|h| PathBuf::from(h).join(".netrc"))
    }

    /// Whether a VCS URL scheme counts as secure for `vcs`, honouring
    /// GIT_ALLOW_PROTOCOL for git as the go command does.
    pub fn is_secure_scheme(&self, vcs: &str, scheme: &str) -> bool {
        if vcs == "git" {
            if let Some(allow) = self.get("GIT_ALLOW_PROTOCOL") {
                return allow.split(':').any(|s| s == scheme);
            }
        }
        matches!(scheme, "https" | "git+ssh" | "svn+ssh" | "ssh")
    }

    /// The HTTP proxy to use for `url` under HTTP_PROXY / HTTPS_PROXY /
    /// NO_PROXY (upper case preferred, lower case accepted), with the same
    /// rules as Go's standard library: loopback and `localhost` are never
    /// proxied, and HTTP_PROXY is ignored when REQUEST_METHOD is set (CGI).
    pub fn http_proxy_for(&self, url: &Url) -> Option<Url> {
        let pick = |upper: &str, lower: &str| self.get(upper).or_else(|| self.get(lower));
        let raw = match url.scheme() {
            "https" => pick("HTTPS_PROXY", "https_proxy"),
            "http" if self.get("REQUEST_METHOD").is_none() => pick("HTTP_PROXY", "http_proxy"),
            _ => None,
        }?;
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        let no_proxy = pick("NO_PROXY", "no_proxy").unwrap_or("");
        if !proxy_applies(host, port, no_proxy) {
            return None;
        }
        parse_proxy_url(raw)
    }
}

/// Proxy URLs without a scheme are taken as `http://`.
fn parse_proxy_url(raw: &str) -> Option<Url> {
    match Url::parse(raw) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => Some(u),
        _ => Url::parse(&format!("http://{raw}")).ok(),
    }
}

/// Go's NO_PROXY semantics for one request target.
fn proxy_applies(host: &str, port: u16, no_proxy: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return false;
    }
    let ip: Option<IpAddr> = host.parse().ok();
    if ip.is_some_and(|ip| ip.is_loopback()) {
        return false;
    }
    let host = host.to_ascii_lowercase();
    let port = port.to_string();
    for entry in no_proxy.split(',') {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            continue;
        }
        if entry == "*" {
            return false;
        }
        if let Some((net, bits)) = entry.split_once('/') {
            if let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u8>()) {
                if ip.is_some_and(|ip| cidr_contains(net, bits, ip)) {
                    return false;
                }
                continue;
            }
        }
        let (entry_host, entry_port) = split_host_port(&entry);
        if let Ok(entry_ip) = entry_host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            if ip == Some(entry_ip) && (entry_port.is_empty() || entry_port == port) {
                return false;
            }
            continue;
        }
        let mut suffix = entry_host
            .strip_prefix('*')
            .unwrap_or(entry_host)
            .to_string();
        let mut match_bare = false;
        if !suffix.starts_with('.') {
            match_bare = true;
            suffix = format!(".{suffix}");
        }
        let hit = host.ends_with(&suffix) || (match_bare && host == suffix[1..]);
        if hit && (entry_port.is_empty() || entry_port == port) {
            return false;
        }
    }
    true
}

/// Splits `host:port` when the text after the last colon is a port; IPv6
/// literals without brackets are left whole.
fn split_host_port(s: &str) -> (&str, &str) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((h, tail)) = rest.split_once(']') {
            return (h, tail.strip_prefix(':').unwrap_or(""));
        }
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => (h, p),
        _ => (s, ""),
    }
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> GoEnv {
        GoEnv::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .expect("valid env")
    }

    #[test]
    fn defaults() {
        let e = env(&[]);
        assert_eq!(e.goproxy(), "https://proxy.golang.org,direct");
        assert_eq!(e.gosumdb(), "sum.golang.org");
        assert_eq!(e.gonoproxy(), "");
        assert_eq!(e.goauth(), "netrc");
        let e = env(&[("GOPROXY", ""), ("GOPRIVATE", "corp.example.com")]);
        assert_eq!(e.goproxy(), DEFAULT_GOPROXY);
        assert_eq!(e.gonoproxy(), "corp.example.com");
        assert_eq!(e.gonosumdb(), "corp.example.com");
        let e = env(&[
            ("GOPRIVATE", "a.com"),
            ("GONOPROXY", "b.com"),
            ("GONOSUMDB", "c.com"),
        ]);
        assert!(e.is_private("a.com/x") && !e.is_private("b.com/x"));
        assert!(e.no_proxy("b.com/x") && !e.no_proxy("a.com/x"));
        assert!(e.no_sumdb("c.com/x") && !e.no_sumdb("a.com/x"));
    }

    #[test]
    fn clones_share_one_environment() {
        let e = env(&[("SSL_CERT_FILE", "/etc/ca.pem")]);
        assert!(e.clone().same_as(&e));
        assert!(!env(&[("SSL_CERT_FILE", "/etc/ca.pem")]).same_as(&e));
        assert_eq!(e.ssl_cert_file(), Some("/etc/ca.pem"));
        assert_eq!(env(&[("SSL_CERT_FILE", "")]).ssl_cert_file(), None);
    }

    #[test]
    fn process_layering_and_malformed_overrides() {
        let e = GoEnv::from_process(&["GOPROXY=direct", "GOPRIVATE=x.io", "GOFLAGS=-mod=mod"])
            .expect("valid");
        assert_eq!(e.goproxy(), "direct");
        assert!(e.is_private("x.io/y"));
        assert_eq!(e.goflags(), "-mod=mod");
        assert_eq!(
            GoEnv::from_process(&["NOEQUALS"]).unwrap_err(),
            GoEnvError::MalformedEntry("NOEQUALS".into())
        );
        assert!(GoEnv::from_process(&["=x"]).is_err());
        // A value may itself contain '='.
        let e = GoEnv::from_process(&["GOINSECURE=a.com,b=c"]).expect("valid");
        assert_eq!(e.goinsecure(), "a.com,b=c");
    }

    #[test]
    fn private_and_insecure_matching() {
        let e = env(&[
            ("GOPRIVATE", "*.corp.example.com,rsc.io/private"),
            ("GOINSECURE", "insecure.test/foo"),
        ]);
        assert!(e.is_private("git.corp.example.com/x/y"));
        assert!(!e.is_private("corp.example.com/x"));
        assert!(e.is_private("rsc.io/private/quote"));
        assert!(!e.is_private("rsc.io/privatequote"));
        assert!(e.insecure("insecure.test/foo"));
        assert!(e.insecure("insecure.test/foo/bar"));
        assert!(!e.insecure("insecure.test/foobar"));
        assert!(!e.insecure("insecure.test"));
    }

    #[test]
    fn govcs_defaults() {
        let e = env(&[("GOPRIVATE", "private.test")]);
        assert!(e.vcs_allowed("github.com/a/b", "git"));
        assert!(e.vcs_allowed("example.com/a", "hg"));
        assert!(!e.vcs_allowed("example.com/a", "svn"));
        assert!(!e.vcs_allowed("example.com/a", "fossil"));
        assert!(e.vcs_allowed("private.test/a", "svn"));
        assert!(e.vcs_allowed("private.test/a", "fossil"));
        assert!(e.vcs_allowed("example.com/a", "mod"));
    }

    #[test]
    fn govcs_user_rules_take_precedence() {
        let e = env(&[
            (
                "GOVCS",
                "github.com:git,evil.com:off,*.corp:svn|hg, private : all , public:git",
            ),
            ("GOPRIVATE", "*.corp,secret.test"),
        ]);
        assert!(e.vcs_allowed("github.com/a/b", "git"));
        assert!(!e.vcs_allowed("github.com/a/b", "hg"));
        assert!(!e.vcs_allowed("evil.com/x", "git"));
        assert!(e.vcs_allowed("x.corp/y", "svn"));
        assert!(!e.vcs_allowed("x.corp/y", "git"));
        assert!(e.vcs_allowed("secret.test/y", "bzr"));
        assert!(!e.vcs_allowed("example.org/y", "hg"));
        assert_eq!(e.govcs_rules().len(), 7);
    }

    #[test]
    fn govcs_errors() {
        for bad in [
            "github.com",
            "github.com:",
            ":git",
            "a.com:git,,b.com:hg",
            "a.com:git|",
            "a.com:git| |hg",
            "./x:git",
            "..:git",
            "a.com:git,a.com:hg",
        ] {
            let err = GoEnv::from_vars([("GOVCS", bad)]).unwrap_err();
            assert!(matches!(err, GoEnvError::Govcs { .. }), "{bad}: {err}");
        }
        assert!(parse_govcs("  ").expect("blank ok").is_empty());
    }

    fn targets(list: &ProxyList) -> Vec<(ProxyTarget, Fallback)> {
        list.entries()
            .iter()
            .map(|e| (e.target.clone(), e.fallback))
            .collect()
    }

    #[test]
    fn goproxy_lists() {
        use Fallback::*;
        use ProxyTarget::*;
        let l = ProxyList::parse("https://proxy.golang.org,direct", "").expect("ok");
        assert_eq!(
            targets(&l),
            vec![
                (Url("https://proxy.golang.org".into()), OnNotFound),
                (Direct, OnNotFound)
            ]
        );
        let l = ProxyList::parse(" a.example|b.example:8080 , off,direct", "").expect("ok");
        assert_eq!(
            targets(&l),
            vec![
                (Url("https://a.example".into()), OnAnyError),
                (Url("https://b.example:8080".into()), OnNotFound),
                (Off, OnNotFound)
            ]
        );
        let l = ProxyList::parse("http://p,direct,https://ignored", "corp").expect("ok");
        assert_eq!(
            targets(&l),
            vec![
                (NoProxy, OnNotFound),
                (Url("http://p".into()), OnNotFound),
                (Direct, OnNotFound)
            ]
        );
        // GOPROXY=direct does not get the implicit noproxy entry.
        let l = ProxyList::parse("direct", "corp").expect("ok");
        assert_eq!(targets(&l), vec![(Direct, OnNotFound)]);
        let l = ProxyList::parse("file:///srv/mods", "").expect("ok");
        assert_eq!(
            targets(&l),
            vec![(Url("file:///srv/mods".into()), OnNotFound)]
        );
        let l = ProxyList::parse(",,direct", "").expect("ok");
        assert_eq!(targets(&l), vec![(Direct, OnNotFound)]);
    }

    #[test]
    fn goproxy_rejections() {
        for bad in [
            ",",
            " ",
            "proxy",
            "/abs/path",
            "ftp://x",
            "file://host/p",
            "https://h:port",
        ] {
            let err = ProxyList::parse(bad, "").unwrap_err();
            assert!(matches!(err, GoEnvError::Goproxy { .. }), "{bad}: {err}");
        }
        assert!(ProxyList::parse(",", "x").is_err());
        assert!(GoEnv::from_vars([("GOPROXY", "nope")]).is_err());
    }

    #[test]
    fn netrc_path_rules() {
        let e = env(&[("HOME", "/home/u")]);
        assert_eq!(e.netrc_path(), Some(PathBuf::from("/home/u/.netrc")));
        let e = env(&[("HOME", "/home/u"), ("NETRC", "/etc/n")]);
        assert_eq!(e.netrc_path(), Some(PathBuf::from("/etc/n")));
        let e = env(&[("HOME", "/home/u"), ("GOAUTH", "off")]);
        assert_eq!(e.netrc_path(), None);
        let e = env(&[("HOME", "/home/u"), ("GOAUTH", "git /; netrc")]);
        assert!(e.netrc_enabled());
        assert_eq!(env(&[]).netrc_path(), None);
    }

    #[test]
    fn secure_schemes() {
        let e = env(&[]);
        assert!(e.is_secure_scheme("git", "https"));
        assert!(e.is_secure_scheme("git", "ssh"));
        assert!(!e.is_secure_scheme("git", "git"));
        assert!(!e.is_secure_scheme("hg", "http"));
        let e = env(&[("GIT_ALLOW_PROTOCOL", "git:https")]);
        assert!(e.is_secure_scheme("git", "git"));
        assert!(!e.is_secure_scheme("git", "ssh"));
        assert!(e.is_secure_scheme("hg", "ssh"));
    }

    #[test]
    fn http_proxy_selection() {
        let u = |s: &str| Url::parse(s).expect("url");
        let e = env(&[
            ("HTTPS_PROXY", "proxy.corp:3128"),
            ("http_proxy", "http://plain:8080"),
            (
                "NO_PROXY",
                "internal.test,.skip.test,10.0.0.0/8,example.org:8443,*.wild.test",
            ),
        ]);
        assert_eq!(
            e.http_proxy_for(&u("https://example.com/x")),
            Some(u("http://proxy.corp:3128"))
        );
        assert_eq!(
            e.http_proxy_for(&u("http://example.com/x")),
            Some(u("http://plain:8080"))
        );
        assert_eq!(e.http_proxy_for(&u("https://internal.test/x")), None);
        assert_eq!(e.http_proxy_for(&u("https://a.internal.test/x")), None);
        assert_eq!(
            e.http_proxy_for(&u("https://skip.test/x")),
            Some(u("http://proxy.corp:3128"))
        );
        assert_eq!(e.http_proxy_for(&u("https://a.skip.test/x")), None);
        assert_eq!(e.http_proxy_for(&u("https://a.wild.test/x")), None);
        assert_eq!(e.http_proxy_for(&u("https://10.1.2.3/x")), None);
        assert!(e.http_proxy_for(&u("https://11.1.2.3/x")).is_some());
        assert!(e.http_proxy_for(&u("https://example.org/x")).is_some());
        assert_eq!(e.http_proxy_for(&u("https://example.org:8443/x")), None);
        assert_eq!(e.http_proxy_for(&u("https://localhost/x")), None);
        assert_eq!(e.http_proxy_for(&u("https://127.0.0.1:9/x")), None);
        let cgi = env(&[("HTTP_PROXY", "http://p:1"), ("REQUEST_METHOD", "GET")]);
        assert_eq!(cgi.http_proxy_for(&u("http://example.com/")), None);
        let shown = format!(
            "{:?}",
            env(&[("HTTPS_PROXY", "http://u:pw@p:1"), ("GOPRIVATE", "x")])
        );
        assert!(
            !shown.contains("pw@") && shown.contains("GOPRIVATE"),
            "{shown}"
        );
        let star = env(&[("HTTPS_PROXY", "http://p:1"), ("no_proxy", "*")]);
        assert_eq!(star.http_proxy_for(&u("https://example.com/")), None);
    }
}
