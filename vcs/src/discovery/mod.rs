//! From a module path to the repository that holds it, as `go mod download`
//! finds it in module mode.
//!
//! Order of lookup:
//! 1. the static table (`static_hosts`): well-known hosts and
//!    `host/path.vcs/...` paths, no network except a scheme probe for the
//!    latter;
//! 2. otherwise `https://PATH?go-get=1` and its go-import meta tags
//!    (`mod` entries preferred), checked against the page for the claimed
//!    prefix when the prefix is shorter than the path.
//!
//! GOINSECURE decides whether plain HTTP may be used, GOVCS whether the VCS
//! may be used for the root (`mod` always may).

mod client;
mod meta;
mod netrc;
mod static_hosts;

use std::fmt;

use url::Url;

pub use client::{ClientBuildError, DiscoveryClient, DiscoveryClientBuilder, GO_USER_AGENT};
pub use meta::{
    match_go_import, parse_meta_go_imports, MatchError, MetaImport, MetaSyntaxError, ModMode,
};
pub(crate) use netrc::{machine_for, same_origin};
pub use netrc::{Netrc, NetrcEntry};

use crate::goenv::GoEnv;
use client::{FetchError, Page};
use meta::has_path_prefix;
use static_hosts::{StaticReject, StaticRepo};

/// How a repository is accessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vcs {
    /// Git.
    Git,
    /// Mercurial.
    Hg,
    /// Subversion.
    Svn,
    /// Fossil.
    Fossil,
    /// Not a VCS: the URL is a module proxy serving this module
    /// (`go-import` tag with vcs `mod`).
    Mod,
}

impl Vcs {
    /// The name used in go-import tags and GOVCS (`git`, `hg`, `svn`,
    /// `fossil`, `mod`).
    pub fn as_str(self) -> &'static str {
        match self {
            Vcs::Git => "git",
            Vcs::Hg => "hg",
            Vcs::Svn => "svn",
            Vcs::Fossil => "fossil",
            Vcs::Mod => "mod",
        }
    }

    /// Parses a go-import VCS name. Bazaar (`bzr`) is not accepted: the
    /// go command dropped it, so a `bzr` tag fails there too.
    pub fn from_name(name: &str) -> Option<Vcs> {
        match name {
            "git" => Some(Vcs::Git),
            "hg" => Some(Vcs::Hg),
            "svn" => Some(Vcs::Svn),
            "fossil" => Some(Vcs::Fossil),
            "mod" => Some(Vcs::Mod),
            _ => None,
        }
    }

    /// URL schemes the VCS can use, in the order the go command tries them.
    fn schemes(self) -> &'static [&'static str] {
        match self {
            Vcs::Git => &["git", "https", "http", "git+ssh", "ssh"],
            Vcs::Hg => &["https", "http", "ssh"],
            Vcs::Svn => &["https", "http", "svn", "svn+ssh"],
            Vcs::Fossil => &["https", "http"],
            Vcs::Mod => &[],
        }
    }
}

impl fmt::Display for Vcs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the code for an import path lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRoot {
    /// The import-path prefix that corresponds to the repository root (or,
    /// with `subdir`, to that directory of it).
    pub root: String,
    /// How to fetch it.
    pub vcs: Vcs,
    /// Repository URL with scheme (for [`Vcs::Mod`], the proxy base URL).
    pub repo_url: String,
    /// Directory inside the repository that `root` maps to, if not the top.
    pub subdir: Option<String>,
    /// Whether this came from a served go-import tag rather than the static
    /// table.
    pub is_custom: bool,
}

/// Why a path could not be mapped to a repository. Every variant names the
/// path and says why; none ever contains credentials.
///
/// Suggested HTTP mapping for a proxy: `NotFound` and `Invalid` → 404,
/// `Forbidden` → 403, `Upstream` → 502.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// Nothing is there: no such host, a 404/410 (or other 4xx) page without
    /// tags, no tag matching the path, a reserved test domain.
    #[error("{path}: not found: {reason}")]
    NotFound {
        /// The module path asked about.
        path: String,
        /// What was missing.
        reason: String,
    },
    /// Policy refuses it (GOVCS).
    #[error("{path}: forbidden: {reason}")]
    Forbidden {
        /// The module path asked about.
        path: String,
        /// Which rule refused it.
        reason: String,
    },
    /// The origin could not be asked: network error, timeout, TLS failure,
    /// refused redirect, 5xx or 429.
    #[error("{path}: upstream failure: {reason}")]
    Upstream {
        /// The module path asked about.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The path or the served tags are malformed: path not starting with a
    /// host name, path shape a well-known host cannot have, unparsable page,
    /// several matching tags, tags that disagree, bad repository URL or
    /// subdirectory, unknown VCS.
    #[error("{path}: invalid: {reason}")]
    Invalid {
        /// The module path asked about.
        path: String,
        /// What is malformed.
        reason: String,
    },
}

impl DiscoveryError {
    /// The module path the error is about.
    pub fn path(&self) -> &str {
        match self {
            DiscoveryError::NotFound { path, .. }
            | DiscoveryError::Forbidden { path, .. }
            | DiscoveryError::Upstream { path, .. }
            | DiscoveryError::Invalid { path, .. } => path,
        }
    }
}

fn not_found(path: &str, reason: impl Into<String>) -> DiscoveryError {
    DiscoveryError::NotFound {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn invalid(path: &str, reason: impl Into<String>) -> DiscoveryError {
    DiscoveryError::Invalid {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn upstream(path: &str, reason: impl Into<String>) -> DiscoveryError {
    DiscoveryError::Upstream {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// Finds the repository for module `path` as the go command does in module
/// mode (`mod` go-import entries preferred), under `env`'s GOINSECURE,
/// GOPRIVATE and GOVCS.
pub async fn resolve_repo(
    path: &str,
    env: &GoEnv,
    client: &DiscoveryClient,
) -> Result<RepoRoot, DiscoveryError> {
    let insecure = env.insecure(path);
    let root = match from_static_table(path, env, client, insecure).await? {
        Some(root) => root,
        None => from_meta_tags(path, env, client, insecure).await?,
    };
    if path.contains("...") && root.root.contains("...") {
        return Err(invalid(path, "a repository root cannot contain \"...\""));
    }
    Ok(root)
}

async fn from_static_table(
    path: &str,
    env: &GoEnv,
    client: &DiscoveryClient,
    insecure: bool,
) -> Result<Option<RepoRoot>, DiscoveryError> {
    // The go command hard-wires these two so its own tests never touch the
    // network; matching it keeps answers identical.
    if has_path_prefix(path, "example.net") {
        return Err(not_found(path, "example.net hosts no modules"));
    }
    if path == "rsc.io" {
        return Err(not_found(path, "rsc.io is not a module"));
    }
    if path.starts_with("http:") || path.starts_with("https:") {
        return Err(invalid(
            path,
            "an import path cannot start with a URL scheme",
        ));
    }
    let hit = match static_hosts::lookup(path) {
        Ok(Some(hit)) => hit,
        Ok(None) => return Ok(None),
        Err(StaticReject::BadShape { host_prefix }) => {
            return Err(invalid(
                path,
                format!("not a valid {host_prefix} import path"),
            ));
        }
        Err(StaticReject::VcsSuffix { host_prefix }) => {
            return Err(invalid(
                path,
                format!("{host_prefix} repository names cannot end in a version control suffix"),
            ));
        }
    };
    check_govcs(path, env, hit.vcs, &hit.root)?;
    let repo_url = match hit.repo {
        StaticRepo::Url(u) => u,
        StaticRepo::Schemeless(repo) => {
            pick_scheme(path, env, client, insecure, hit.vcs, &repo).await?
        }
    };
    Ok(Some(RepoRoot {
        root: hit.root,
        vcs: hit.vcs,
        repo_url,
        subdir: None,
        is_custom: false,
    }))
}

/// For `host/repo.vcs` paths: the first scheme (in the VCS's order, secure
/// ones only unless GOINSECURE) at which the repository answers. Schemes we
/// cannot probe over HTTP (git://, ssh) are skipped; fossil has no probe and
/// takes the first acceptable scheme.
async fn pick_scheme(
    path: &str,
    env: &GoEnv,
    client: &DiscoveryClient,
    insecure: bool,
    vcs: Vcs,
    repo: &str,
) -> Result<String, DiscoveryError> {
    for scheme in vcs.schemes() {
        if !insecure && !env.is_secure_scheme(vcs.as_str(), scheme) {
            continue;
        }
        if vcs == Vcs::Fossil {
            return Ok(format!("{scheme}://{repo}"));
        }
        if !matches!(*scheme, "https" | "http") {
            continue;
        }
        if client.probe(vcs.as_str(), scheme, repo).await {
            return Ok(format!("{scheme}://{repo}"));
        }
    }
    let which = if insecure { "" } else { "secure " };
    Err(not_found(
        path,
        format!("no {which}protocol found for repository {repo}"),
    ))
}

fn check_govcs(path: &str, env: &GoEnv, vcs: Vcs, root: &str) -> Result<(), DiscoveryError> {
    if env.vcs_allowed(root, vcs.as_str()) {
        return Ok(());
    }
    let what = if env.is_private(root) {
        "private"
    } else {
        "public"
    };
    Err(DiscoveryError::Forbidden {
        path: path.to_string(),
        reason: format!("GOVCS does not allow {vcs} for {what} {root}"),
    })
}

/// `https://HOST/PATH?go-get=1` for an import path (or prefix).
fn go_get_url(path: &str) -> Result<Url, DiscoveryError> {
    let (host, rest) = match path.find('/') {
        Some(i) => (&path[..i], &path[i..]),
        None => (path, "/"),
    };
    if !host.contains('.') {
        return Err(invalid(path, "import path does not begin with a host name"));
    }
    let bad_host = || invalid(path, format!("{host:?} is not a usable host name"));
    if host.contains(['@', '\\', '?', '#']) {
        return Err(bad_host());
    }
    let mut url = Url::parse(&format!("https://{host}/")).map_err(|_| bad_host())?;
    url.set_path(rest);
    url.set_query(Some("go-get=1"));
    Ok(url)
}

/// Turns an unusable response into the error the go command would report:
/// the HTTP status when the page had no tags and was not a 200.
fn status_error(path: &str, page: &Page) -> Option<DiscoveryError> {
    let status = page.status;
    if status == 200 {
        return None;
    }
    let reason = format!("reading {}: HTTP status {status}", page.url);
    Some(match status {
        429 => upstream(path, reason),
        400..=499 => not_found(path, reason),
        _ => upstream(path, reason),
    })
}

fn fetch_error(path: &str, e: FetchError) -> DiscoveryError {
    let reason = format!("fetching {}: {}", e.url, e.detail);
    if e.no_such_host {
        not_found(path, reason)
    } else {
        upstream(path, reason)
    }
}

/// Fetches and parses the go-import tags served for `prefix`.
async fn tags_for(
    path: &str,
    prefix: &str,
    client: &DiscoveryClient,
    insecure: bool,
) -> Result<(Page, Vec<MetaImport>), DiscoveryError> {
    let url = go_get_url(prefix)?;
    let page = client
        .get_page(&url, insecure)
        .await
        .map_err(|e| fetch_error(path, e))?;
    let parsed = parse_meta_go_imports(&page.body, ModMode::PreferMod);
    let no_tags = parsed.as_ref().map_or(true, |v| v.is_empty());
    if no_tags {
        if let Some(e) = status_error(path, &page) {
            return Err(e);
        }
        if let Some(read_error) = &page.read_error {
            return Err(upstream(
                path,
                format!("reading {}: {read_error}", page.url),
            ));
        }
    }
    match parsed {
        Ok(tags) => Ok((page, tags)),
        Err(e) => Err(invalid(path, format!("parsing {}: {e}", page.url))),
    }
}

async fn from_meta_tags(
    path: &str,
    env: &GoEnv,
    client: &DiscoveryClient,
    insecure: bool,
) -> Result<RepoRoot, DiscoveryError> {
    let (page, tags) = tags_for(path, path, client, insecure).await?;
    let chosen = match match_go_import(&tags, path) {
        Ok(m) => m,
        Err(e @ MatchError::NoMatch(_)) => {
            return Err(not_found(path, format!("{}: {e}", page.url)))
        }
        Err(e @ MatchError::Multiple) => return Err(invalid(path, format!("{}: {e}", page.url))),
    };
    if chosen.prefix != path {
        // A page for a/b/c must not be able to claim a/b on its own: the
        // page for the claimed prefix has to say the same thing.
        let (root_page, root_tags) = tags_for(path, &chosen.prefix, client, insecure).await?;
        if root_tags.is_empty() {
            return Err(not_found(
                path,
                format!("no go-import meta tag found in {}", root_page.url),
            ));
        }
        let confirmed = match_go_import(&root_tags, path);
        if confirmed.as_ref() != Ok(&chosen) {
            return Err(invalid(
                path,
                format!(
                    "{} and {} disagree about go-import for {}",
                    page.url, root_page.url, chosen.prefix
                ),
            ));
        }
    }
    if let Some(problem) = subdir_problem(&chosen.subdir) {
        return Err(invalid(
            path,
            format!(
                "{}: invalid subdirectory {:?}: {problem}",
                page.url, chosen.subdir
            ),
        ));
    }
    if let Some(problem) = repo_root_problem(&chosen.repo_root) {
        return Err(invalid(
            path,
            format!("{}: invalid repository URL: {problem}", page.url),
        ));
    }
    let Some(vcs) = Vcs::from_name(&chosen.vcs) else {
        return Err(invalid(
            path,
            format!("{}: unknown vcs {:?}", page.url, chosen.vcs),
        ));
    };
    check_govcs(path, env, vcs, &chosen.prefix)?;
    Ok(RepoRoot {
        root: chosen.prefix,
        vcs,
        repo_url: chosen.repo_root,
        subdir: (!chosen.subdir.is_empty()).then_some(chosen.subdir),
        is_custom: true,
    })
}

/// A subdirectory may not start with `/` (absolute) or `-` (option-like).
fn subdir_problem(subdir: &str) -> Option<&'static str> {
    if subdir.starts_with('/') {
        Some("leading slash")
    } else if subdir.starts_with('-') {
        Some("leading hyphen")
    } else {
        None
    }
}

/// The repository URL must have a scheme, other than `file`.
fn repo_root_problem(repo: &str) -> Option<String> {
    if repo.chars().any(|c| c.is_ascii_control()) {
        return Some("control character in URL".into());
    }
    if repo.starts_with(':') {
        return Some("missing scheme".into());
    }
    let Some(len) = crate::goenv::go_url_scheme_len(repo) else {
        return Some("no scheme".into());
    };
    if repo[..len].eq_ignore_ascii_case("file") {
        return Some("file scheme disallowed".into());
    }
    if let Some(authority) = repo[len + 1..].strip_prefix("//") {
        let authority = authority.split(['/', '?', '#']).next().unwrap_or("");
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if !host_port.starts_with('[') {
            if let Some((_, port)) = host_port.rsplit_once(':') {
                if !port.bytes().all(|b| b.is_ascii_digit()) {
                    return Some(format!("invalid port {port:?}"));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_get_urls() {
        assert_eq!(
            go_get_url("example.com/a/b").expect("ok").as_str(),
            "https://example.com/a/b?go-get=1"
        );
        assert_eq!(
            go_get_url("example.com").expect("ok").as_str(),
            "https://example.com/?go-get=1"
        );
        assert_eq!(
            go_get_url("example.com:8443/x").expect("ok").as_str(),
            "https://example.com:8443/x?go-get=1"
        );
        assert_eq!(
            go_get_url("example.com/a?b#c").expect("ok").as_str(),
            "https://example.com/a%3Fb%23c?go-get=1"
        );
        for bad in ["localhost/x", "example", "u@example.com/x", ""] {
            assert!(
                matches!(go_get_url(bad), Err(DiscoveryError::Invalid { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn subdir_and_repo_checks() {
        assert_eq!(subdir_problem(""), None);
        assert_eq!(subdir_problem("a/b"), None);
        assert!(subdir_problem("/a").is_some());
        assert!(subdir_problem("-a").is_some());
        assert_eq!(repo_root_problem("https://github.com/a/b"), None);
        assert_eq!(repo_root_problem("ssh://git@host:22/x"), None);
        assert_eq!(repo_root_problem("svn+ssh://h/x"), None);
        for bad in [
            "github.com/a/b",
            "file:///tmp/x",
            "FILE:///x",
            "git@github.com:a/b",
            "://x",
            "https://h:port/x",
            "1http://x",
            "https://h/\u{7}",
        ] {
            assert!(repo_root_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn vcs_names() {
        for v in [Vcs::Git, Vcs::Hg, Vcs::Svn, Vcs::Fossil, Vcs::Mod] {
            assert_eq!(Vcs::from_name(v.as_str()), Some(v));
        }
        assert_eq!(Vcs::from_name("bzr"), None);
        assert_eq!(Vcs::from_name("Git"), None);
    }

    fn offline_env(vars: &[(&str, &str)]) -> (GoEnv, DiscoveryClient) {
        let env = GoEnv::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .expect("env");
        let client = DiscoveryClient::builder(&env)
            .netrc(Netrc::default())
            .build()
            .expect("client");
        (env, client)
    }

    #[tokio::test]
    async fn static_results_without_network() {
        let (env, client) = offline_env(&[]);
        let rr = resolve_repo("github.com/rsc/quote/v3", &env, &client)
            .await
            .expect("github");
        assert_eq!(
            rr,
            RepoRoot {
                root: "github.com/rsc/quote".into(),
                vcs: Vcs::Git,
                repo_url: "https://github.com/rsc/quote".into(),
                subdir: None,
                is_custom: false,
            }
        );
        for (p, kind) in [
            ("github.com/rsc", "invalid"),
            ("github.com/rsc/quote.git", "invalid"),
            ("https://github.com/rsc/quote", "invalid"),
            ("example.net/x", "not found"),
            ("rsc.io", "not found"),
            ("chiselapp.com/user/kyle/repository/fossilgg", "forbidden"),
        ] {
            let err = resolve_repo(p, &env, &client).await.unwrap_err();
            assert!(err.to_string().contains(kind), "{p}: {err}");
            assert_eq!(err.path(), p);
        }
        // A private chiselapp path may use fossil, and fossil needs no probe.
        let (env, client) = offline_env(&[("GOPRIVATE", "chiselapp.com,fossil.example.org")]);
        let rr = resolve_repo("chiselapp.com/user/kyle/repository/fossilgg", &env, &client)
            .await
            .expect("private fossil");
        assert_eq!(rr.vcs, Vcs::Fossil);
        // Under chiselapp.com its own rule applies, not the suffix rule.
        assert!(resolve_repo("chiselapp.com/x.fossil/sub", &env, &client)
            .await
            .is_err());
        let rr = resolve_repo("fossil.example.org/x.fossil/sub", &env, &client)
            .await
            .expect("fossil suffix");
        assert_eq!(rr.repo_url, "https://fossil.example.org/x");
        assert_eq!(rr.root, "fossil.example.org/x.fossil");
        assert!(!rr.is_custom);
        // GOVCS refuses git for the public github path.
        let (env, client) = offline_env(&[("GOVCS", "github.com:off")]);
        assert!(matches!(
            resolve_repo("github.com/a/b", &env, &client).await,
            Err(DiscoveryError::Forbidden { .. })
        ));
        // No host name: cannot even be looked up.
        let (env, client) = offline_env(&[]);
        assert!(matches!(
            resolve_repo("notahost/x", &env, &client).await,
            Err(DiscoveryError::Invalid { .. })
        ));
    }
}
