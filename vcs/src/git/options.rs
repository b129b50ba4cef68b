//! How a [`GitRepo`](super::GitRepo) reaches its remote: which git config
//! files supply `url.<base>.insteadOf` rewrites, and which credentials to
//! present to https servers.

use std::fmt;
use std::path::PathBuf;

use gix::bstr::ByteSlice;

use crate::git::replay::KnownCapabilities;
use crate::git::transport::HttpBackends;
use crate::interrupt::Interrupt;

/// A user name and password for one host, as found in a netrc file.
///
/// `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct HostCredentials {
    /// The netrc `machine` the credentials belong to: a host name, with
    /// `:port` when the port is not 443, optionally followed by a path
    /// prefix. They are offered over https only, by the rule of
    /// [`Netrc::credentials_for`](crate::discovery::Netrc::credentials_for).
    pub host: String,
    /// The login name.
    pub username: String,
    /// The password or token.
    pub password: String,
}

impl fmt::Debug for HostCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostCredentials")
            .field("host", &self.host)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Bounds on the trees read to list a module's files, so that a hostile
/// repository (trees nested thousands of levels deep, or a few kilobytes
/// of objects fanning out over shared subtrees into billions of paths) is
/// refused after a bounded amount of work and memory.
///
/// The depth bound is git's own (`core.maxTreeDepth`): the go command runs
/// `git archive`, which refuses such trees. The entry bound is this
/// library's: roughly 200 bytes are kept per file listed, so the default
/// of 500,000 entries holds memory near 100 MB, while a module within the go
/// command's 500 MiB zip limit rarely comes near that many files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeLimits {
    /// Deepest tree read, the root tree being at depth 0 (git's
    /// `core.maxTreeDepth`, default [`TreeLimits::DEFAULT_MAX_DEPTH`]).
    pub max_depth: usize,
    /// Most tree entries (files, directories and submodules) read from the
    /// whole tree of a commit when listing a module's files (default
    /// [`TreeLimits::DEFAULT_MAX_ENTRIES`]). Their names may take at most
    /// [`TreeLimits::NAME_BYTES_PER_ENTRY`] bytes per entry on average.
    pub max_entries: usize,
}

impl TreeLimits {
    /// git's default `core.maxTreeDepth`.
    pub const DEFAULT_MAX_DEPTH: usize = 2048;
    /// Default bound on the tree entries read for one listing.
    pub const DEFAULT_MAX_ENTRIES: usize = 500_000;
    /// Average name length allowed to the entries read, bounding the bytes
    /// of names held while walking (a deep chain of trees with megabyte
    /// names is a few kilobytes once compressed).
    pub const NAME_BYTES_PER_ENTRY: usize = 256;
}

impl Default for TreeLimits {
    fn default() -> Self {
        TreeLimits {
            max_depth: Self::DEFAULT_MAX_DEPTH,
            max_entries: Self::DEFAULT_MAX_ENTRIES,
        }
    }
}

/// Settings for opening a git remote.
#[derive(Debug, Clone, Default)]
pub struct GitOptions {
    /// Git configuration files read for `url.<base>.insteadOf`, in the
    /// order git reads them (system, then global). Missing files are skipped.
    pub config_files: Vec<PathBuf>,
    /// Credentials offered to https servers that ask for authentication,
    /// chosen for the (rewritten) remote URL as netrc entries are, and
    /// offered only to that URL's scheme, host and port.
    pub credentials: Vec<HostCredentials>,
    /// Bounds on the trees read when listing files.
    pub tree_limits: TreeLimits,
    /// What a remote may send before a transfer is refused.
    pub limits: GitLimits,
    /// Stops transfers (and the work around them) when set or past its
    /// deadline.
    pub interrupt: Interrupt,
    /// Size budget of the git cache in bytes, enforced after each fill by
    /// evicting least recently used entries (see [`crate::git::budget`]);
    /// 0 means none.
    pub cache_max_bytes: u64,
    /// The whole environment of the programs run for a remote: the ssh
    /// program (which finds `SSH_AUTH_SOCK`, `HOME` and so its keys and
    /// known_hosts here) and credential helpers. `GIT_SSH`,
    /// `GIT_SSH_COMMAND` and `GIT_SSH_VARIANT` are read from it too.
    /// Nothing of the server's own environment is passed on.
    pub spawn_env: Vec<(String, String)>,
    /// Capability advertisements of servers listed recently, shared by
    /// every clone of these options.
    pub capabilities: KnownCapabilities,
    /// HTTP backends built ahead of the transfers that use them, shared by
    /// every clone of these options.
    pub http_backends: HttpBackends,
}

/// Bounds on what one remote may send, so a hostile or broken server cannot
/// exhaust memory, disk or time. A transfer crossing one is stopped at once
/// and leaves the cache entry as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GitLimits {
    /// Branches and tags (plus `HEAD`) a remote may advertise. The bytes
    /// of the ref advertisement are bounded too, at
    /// [`GitLimits::max_ref_bytes`].
    pub max_refs: usize,
    /// Bytes a remote may send while transferring objects (one fetch).
    pub max_pack_bytes: u64,
    /// Objects one received pack may hold.
    pub max_pack_objects: u64,
    /// Size one object may have once inflated, as a pack entry or a
    /// delta declares it. Indexing a pack holds whole objects in memory,
    /// so this bounds the memory of a transfer whatever the entries claim:
    /// a pack of a few bytes can declare a delta gigabytes long. gix
    /// applies the same bound to the index it builds of a received pack,
    /// about 64 bytes per object the pack announces, so a pack of more
    /// than about 4 million objects (at the default) is refused too.
    pub max_object_bytes: u64,
}

/// Default [`GitLimits::max_refs`]: far above what module repositories
/// carry (kubernetes/kubernetes has a few thousand branches and tags).
pub const DEFAULT_MAX_REFS: usize = 100_000;
/// Default [`GitLimits::max_pack_bytes`]: 4 GiB, about three times a full
/// clone of kubernetes/kubernetes.
pub const DEFAULT_MAX_PACK_BYTES: u64 = 4 << 30;
/// Default [`GitLimits::max_pack_objects`]: about ten times the objects
/// of kubernetes/kubernetes.
pub const DEFAULT_MAX_PACK_OBJECTS: u64 = 20_000_000;
/// Default [`GitLimits::max_object_bytes`]: 256 MiB, well above GitHub's
/// 100 MiB limit on one file, and an index for about 4 million objects,
/// twice what kubernetes/kubernetes' whole history holds.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 256 << 20;
/// Advertisement bytes allowed per allowed ref: generous for long ref
/// names, peeled tags and refs a protocol v0 server sends unasked
/// (`refs/pull/...`).
const REF_BYTES_PER_REF: u64 = 1024;
/// Advertisement bytes always allowed, whatever [`GitLimits::max_refs`]
/// says (capabilities and framing).
const MIN_REF_BYTES: u64 = 1 << 20;

impl Default for GitLimits {
    fn default() -> Self {
        GitLimits {
            max_refs: DEFAULT_MAX_REFS,
            max_pack_bytes: DEFAULT_MAX_PACK_BYTES,
            max_pack_objects: DEFAULT_MAX_PACK_OBJECTS,
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
        }
    }
}

impl GitLimits {
    /// Bytes the ref advertisement (all responses before the first object
    /// transfer) may take: 1 KiB per allowed ref, at least 1 MiB.
    pub fn max_ref_bytes(&self) -> u64 {
        (self.max_refs as u64)
            .saturating_mul(REF_BYTES_PER_REF)
            .max(MIN_REF_BYTES)
    }
}

impl GitOptions {
    /// Options whose config files are the ones git itself would read given
    /// the environment variables answered by `var` (`GIT_CONFIG_NOSYSTEM`,
    /// `GIT_CONFIG_SYSTEM`, `GIT_CONFIG_GLOBAL`, `XDG_CONFIG_HOME`, `HOME`).
    ///
    /// Taking a lookup function rather than the process environment lets the
    /// server pass the go environment it was configured with.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> GitOptions {
        let set = |name: &str| var(name).filter(|v| !v.is_empty());
        let mut config_files = Vec::new();
        let no_system = set("GIT_CONFIG_NOSYSTEM").is_some_and(|v| git_bool_true(&v));
        if !no_system {
            config_files.push(
                set("GIT_CONFIG_SYSTEM")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("/etc/gitconfig")),
            );
        }
        if let Some(global) = set("GIT_CONFIG_GLOBAL") {
            config_files.push(PathBuf::from(global));
        } else {
            let home = set("HOME").map(PathBuf::from);
            let xdg = set("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".config")));
            if let Some(xdg) = xdg {
                config_files.push(xdg.join("git").join("config"));
            }
            if let Some(home) = home {
                config_files.push(home.join(".gitconfig"));
            }
        }
        GitOptions {
            config_files,
            cache_max_bytes: super::budget::DEFAULT_MAX_BYTES,
            spawn_env: SPAWN_ENV_KEYS
                .iter()
                .filter_map(|key| Some((key.to_string(), var(key)?)))
                .collect(),
            ..GitOptions::default()
        }
    }

    /// The credentials to present to `url`: none unless it is https.
    pub(crate) fn credentials_for(&self, url: &url::Url) -> Option<&HostCredentials> {
        crate::discovery::machine_for(url, &self.credentials, |c| &c.host)
    }

    /// The answer to gix asking for credentials for `asked` on a connection
    /// opened to `remote`. gix asks for the URL it is talking to, which after
    /// an HTTP redirect is the redirect target: the remote's credentials go
    /// only to the remote's own scheme, host and port, never to wherever it
    /// redirected to.
    pub(crate) fn account_for(
        &self,
        remote: &str,
        asked: Option<&str>,
    ) -> Option<gix::sec::identity::Account> {
        let remote = url::Url::parse(remote).ok()?;
        let asked = url::Url::parse(asked?).ok()?;
        if !crate::discovery::same_origin(&remote, &asked) {
            return None;
        }
        self.credentials_for(&remote)
            .map(|c| gix::sec::identity::Account {
                username: c.username.clone(),
                password: c.password.clone(),
                oauth_refresh_token: None,
            })
    }
}

/// The variables [`GitOptions::from_env`] passes on to the programs it
/// runs (see [`GitOptions::spawn_env`]).
const SPAWN_ENV_KEYS: &[&str] = &[
    "PATH",
    "HOME",
    "XDG_CONFIG_HOME",
    "SSH_AUTH_SOCK",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_SSH_VARIANT",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_CONFIG_SYSTEM",
    "GIT_CONFIG_GLOBAL",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// Git's boolean spelling for "true" in environment variables.
fn git_bool_true(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// One `url.<base>.insteadOf = <prefix>` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InsteadOf {
    pub(crate) base: String,
    pub(crate) prefix: String,
}

/// The git configuration files a remote is opened with, read once per
/// open: system then global, each with its includes (conditional ones
/// skipped), later values winning as in git.
///
/// Unreadable or malformed files are skipped: git would refuse to run with a
/// malformed global config, but one bad file should not stop module serving
/// when it cannot affect the URL at hand.
#[derive(Default)]
pub(crate) struct GitConfig {
    files: Vec<gix::config::File>,
}

impl GitConfig {
    /// Reads `files` in order; missing ones are skipped.
    pub(crate) fn load(files: &[PathBuf]) -> GitConfig {
        let mut loaded = Vec::new();
        for path in files {
            if !path.is_file() {
                continue;
            }
            let Ok(mut file) =
                gix::config::File::from_path_no_includes(path.clone(), gix::config::Source::User)
            else {
                continue;
            };
            let home = std::env::var_os("HOME").map(PathBuf::from);
            let include_opts = gix::config::file::init::Options {
                includes: gix::config::file::includes::Options::follow_without_conditional(
                    home.as_deref(),
                ),
                ..Default::default()
            };
            // A broken include leaves the including file's own values usable.
            let _ = file.resolve_includes(include_opts);
            loaded.push(file);
        }
        GitConfig { files: loaded }
    }

    /// Every value of `section.[subsection.]key` in the order git reads
    /// them, with the subsection each came from (`None` for none). Section
    /// and key names match without regard to case, subsections exactly.
    pub(crate) fn entries(&self, section: &str, key: &str) -> Vec<(Option<String>, String)> {
        let mut out = Vec::new();
        for file in &self.files {
            for s in file.sections() {
                let header = s.header();
                if !header.name().to_str_lossy().eq_ignore_ascii_case(section) {
                    continue;
                }
                let sub = header
                    .subsection_name()
                    .map(|n| n.to_str_lossy().into_owned());
                for value in s.values(key) {
                    out.push((sub.clone(), value.to_str_lossy().into_owned()));
                }
            }
        }
        out
    }

    /// The last value of `section.[subsection.]key`, as git's single-valued
    /// settings are read.
    pub(crate) fn last_string(
        &self,
        section: &str,
        subsection: Option<&str>,
        key: &str,
    ) -> Option<String> {
        self.entries(section, key)
            .into_iter()
            .rev()
            .find(|(sub, _)| sub.as_deref() == subsection)
            .map(|(_, value)| value)
    }

    /// Every `url.<base>.insteadOf` rule, in file order then line order.
    pub(crate) fn insteadof_rules(&self) -> Vec<InsteadOf> {
        self.entries("url", "insteadOf")
            .into_iter()
            .filter_map(|(base, prefix)| {
                Some(InsteadOf {
                    base: base?,
                    prefix,
                })
            })
            .collect()
    }
}

/// Reads every insteadOf rule from `files`, in file order then line order.
#[cfg(test)]
pub(crate) fn read_insteadof_rules(files: &[PathBuf]) -> Vec<InsteadOf> {
    GitConfig::load(files).insteadof_rules()
}

/// Applies the insteadOf rule with the longest matching prefix; among equally
/// long matches the first one read wins, as in git.
pub(crate) fn rewrite_url(url: &str, rules: &[InsteadOf]) -> String {
    let mut best: Option<&InsteadOf> = None;
    for rule in rules {
        if !url.starts_with(rule.prefix.as_str()) {
            continue;
        }
        if best.is_none_or(|b| b.prefix.len() < rule.prefix.len()) {
            best = Some(rule);
        }
    }
    match best {
        Some(rule) => format!("{}{}", rule.base, &url[rule.prefix.len()..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(base: &str, prefix: &str) -> InsteadOf {
        InsteadOf {
            base: base.into(),
            prefix: prefix.into(),
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let rules = vec![
            rule("file:///short/", "https://example.com/"),
            rule("file:///long/", "https://example.com/org/"),
        ];
        assert_eq!(
            rewrite_url("https://example.com/org/repo", &rules),
            "file:///long/repo"
        );
        assert_eq!(
            rewrite_url("https://example.com/other", &rules),
            "file:///short/other"
        );
        assert_eq!(
            rewrite_url("https://elsewhere.org/x", &rules),
            "https://elsewhere.org/x"
        );
    }

    #[test]
    fn first_of_equal_length_wins() {
        let rules = vec![rule("A/", "https://h/"), rule("B/", "https://h/")];
        assert_eq!(rewrite_url("https://h/x", &rules), "A/x");
    }

    #[test]
    fn reads_rules_from_config_files_with_includes() {
        let dir = tempfile::tempdir().unwrap();
        let inc = dir.path().join("inc.config");
        std::fs::write(
            &inc,
            "[url \"file:///included/\"]\n\tinsteadOf = https://inc.example/\n",
        )
        .unwrap();
        let main = dir.path().join("gitconfig");
        std::fs::write(
            &main,
            format!(
                "[url \"file:///srv/git/\"]\n\tInsteadOf = https://example.com/\n\
                 \tinsteadof = http://example.com/\n[include]\n\tpath = {}\n",
                inc.display()
            ),
        )
        .unwrap();
        let missing = dir.path().join("missing");
        let rules = read_insteadof_rules(&[missing, main]);
        assert!(rules.contains(&rule("file:///srv/git/", "https://example.com/")));
        assert!(rules.contains(&rule("file:///srv/git/", "http://example.com/")));
        assert!(rules.contains(&rule("file:///included/", "https://inc.example/")));
        assert_eq!(rules.len(), 3);
    }

    #[test]
    fn env_selects_git_config_files() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let o = GitOptions::from_env(env(&[("HOME", "/home/u")]));
        assert_eq!(
            o.config_files,
            vec![
                PathBuf::from("/etc/gitconfig"),
                PathBuf::from("/home/u/.config/git/config"),
                PathBuf::from("/home/u/.gitconfig")
            ]
        );
        let o = GitOptions::from_env(env(&[
            ("HOME", "/home/u"),
            ("GIT_CONFIG_GLOBAL", "/g"),
            ("GIT_CONFIG_NOSYSTEM", "1"),
        ]));
        assert_eq!(o.config_files, vec![PathBuf::from("/g")]);
        let o = GitOptions::from_env(env(&[
            ("XDG_CONFIG_HOME", "/x"),
            ("GIT_CONFIG_SYSTEM", "/s"),
        ]));
        assert_eq!(
            o.config_files,
            vec![PathBuf::from("/s"), PathBuf::from("/x/git/config")]
        );
    }

    #[test]
    fn credentials_go_only_to_the_remote_origin() {
        let o = GitOptions {
            config_files: vec![],
            credentials: vec![
                HostCredentials {
                    host: "a.test".into(),
                    username: "u".into(),
                    password: "p".into(),
                },
                HostCredentials {
                    host: "b.test".into(),
                    username: "v".into(),
                    password: "q".into(),
                },
            ],
            ..GitOptions::default()
        };
        let remote = "https://a.test/r.git";
        let got = o.account_for(remote, Some("https://a.test/r.git")).unwrap();
        assert_eq!((got.username.as_str(), got.password.as_str()), ("u", "p"));
        assert!(o
            .account_for(remote, Some("https://a.test:443/moved.git"))
            .is_some());
        // A redirect elsewhere gets nothing, not even that host's own entry.
        for elsewhere in [
            "https://b.test/r.git",
            "https://a.test:8443/r.git",
            "http://a.test/r.git",
            "https://sub.a.test/r.git",
        ] {
            assert!(
                o.account_for(remote, Some(elsewhere)).is_none(),
                "{elsewhere}"
            );
        }
        assert!(o.account_for(remote, None).is_none());
        assert!(o
            .account_for("http://a.test/r.git", Some("http://a.test/r.git"))
            .is_none());
    }

    #[test]
    fn credentials_debug_hides_password() {
        let c = HostCredentials {
            host: "h".into(),
            username: "u".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
        let o = GitOptions {
            credentials: vec![c],
            ..GitOptions::default()
        };
        let u = |s: &str| url::Url::parse(s).unwrap();
        assert!(o.credentials_for(&u("https://H/r.git")).is_some());
        assert!(o.credentials_for(&u("https://h:443/r.git")).is_some());
        assert!(o.credentials_for(&u("https://h:8443/r.git")).is_none());
        assert!(o.credentials_for(&u("http://h/r.git")).is_none());
        assert!(o.credentials_for(&u("https://other/r.git")).is_none());
    }
}
