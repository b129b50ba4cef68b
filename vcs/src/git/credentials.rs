//! Credentials and headers for git's http(s) remotes, as git itself finds
//! them: user information in the (rewritten) URL, `http.extraHeader` and
//! `http.<url>.extraHeader`, netrc entries, and `credential.helper` /
//! `credential.<url>.helper`.
//!
//! Helpers: `store` (with `--file=PATH`) is read here, with git's
//! matching rules, so it works without a git installation. Any other
//! helper is a program the operator configured, and is run as git runs it
//! (`!cmd` and absolute paths through `sh`, a bare name as
//! `git credential-NAME`): Athens' go command runs the same programs
//! through git, and helpers that mint short-lived tokens exist only as
//! programs. They come from the server's git configuration only, never
//! from anything a module or its origin supplies; each runs without a
//! terminal, in a process group killed at the caller's deadline. Nothing
//! is ever written back (git's `approve` and `reject`): the server never
//! stores what it was given.

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::options::GitConfig;
use crate::interrupt::Interrupt;

/// Longest a credential helper may run when the caller has no deadline.
const HELPER_TIME_LIMIT: Duration = Duration::from_secs(30);
/// Most bytes read from a helper's answer.
const HELPER_OUTPUT_LIMIT: u64 = 64 * 1024;

/// A user name and password, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret {
    pub(crate) username: String,
    pub(crate) password: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How good a `http.<url>.*` or `credential.<url>.*` subsection matches a
/// URL, compared as git's `cmp_matches` does: longer host match, then
/// longer path match, then a matched user name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct UrlMatch {
    host_len: usize,
    path_len: usize,
    user_matched: bool,
}

/// Lower-case host and explicit port (the scheme's default filled in).
fn host_port(url: &url::Url) -> Option<(String, u16)> {
    let host = url.host_str()?.to_ascii_lowercase();
    Some((host, url.port_or_known_default()?))
}

/// Whether config host `pattern` (labels may be `*`) matches `host`.
fn host_matches(pattern: &str, host: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let h: Vec<&str> = host.split('.').collect();
    p.len() == h.len() && p.iter().zip(&h).all(|(p, h)| *p == "*" || p == h)
}

/// How the config URL `prefix` matches `url` (git's `match_urls`): same
/// scheme, same user if the prefix names one, same host (with `*` labels)
/// and port, and the prefix's path a prefix of the URL's at a `/`
/// boundary. `None` when it does not match.
pub(crate) fn url_match(prefix: &str, url: &url::Url) -> Option<UrlMatch> {
    let prefix = url::Url::parse(prefix).ok()?;
    if prefix.scheme() != url.scheme() {
        return None;
    }
    let user_matched = !prefix.username().is_empty();
    if user_matched && prefix.username() != url.username() {
        return None;
    }
    let (phost, pport) = host_port(&prefix)?;
    let (host, port) = host_port(url)?;
    if pport != port || !host_matches(&phost, &host) {
        return None;
    }
    let ppath = prefix.path();
    let path = url.path();
    let path_len = if ppath == "/" || ppath.is_empty() {
        1
    } else {
        let trimmed = ppath.trim_end_matches('/');
        let boundary = path == trimmed
            || (path.starts_with(trimmed) && path.as_bytes().get(trimmed.len()) == Some(&b'/'));
        if !boundary {
            return None;
        }
        trimmed.len() + 1
    };
    Some(UrlMatch {
        host_len: phost.len(),
        path_len,
        user_matched,
    })
}

/// The `http.extraHeader` values git sends to `url`: entries read in
/// order, each applied unless a better-matching entry for the same key came
/// before it; an empty value clears the list.
pub(crate) fn extra_headers(config: &GitConfig, url: &url::Url) -> Vec<String> {
    let mut headers = Vec::new();
    let mut best: Option<UrlMatch> = None;
    for (sub, value) in config.entries("http", "extraHeader") {
        let quality = match sub {
            None => UrlMatch::default(),
            Some(prefix) => match url_match(&prefix, url) {
                Some(q) => q,
                None => continue,
            },
        };
        if best.is_some_and(|b| quality < b) {
            continue;
        }
        best = Some(quality);
        if value.is_empty() {
            headers.clear();
        } else if !value.contains(['\r', '\n']) {
            headers.push(value);
        }
    }
    headers
}

/// The credential helpers git asks for `url`: every matching
/// `credential.helper` in order (git applies all matching credential
/// entries), an empty value clearing those before it.
pub(crate) fn helpers(config: &GitConfig, url: &url::Url) -> Vec<String> {
    let mut helpers = Vec::new();
    for (sub, value) in config.entries("credential", "helper") {
        if let Some(prefix) = sub {
            if url_match(&prefix, url).is_none() {
                continue;
            }
        }
        if value.is_empty() {
            helpers.clear();
        } else {
            helpers.push(value);
        }
    }
    helpers
}

/// Whether `credential.useHttpPath` applies to `url` (then the path is part
/// of what helpers are asked and what `store` entries must match).
fn use_http_path(config: &GitConfig, url: &url::Url) -> bool {
    let mut on = false;
    for (sub, value) in config.entries("credential", "useHttpPath") {
        if let Some(prefix) = sub {
            if url_match(&prefix, url).is_none() {
                continue;
            }
        }
        on = matches!(
            value.to_ascii_lowercase().as_str(),
            "true" | "yes" | "on" | "1"
        );
    }
    on
}

/// What git would ask its helpers about one remote, and the helpers.
#[derive(Debug, Clone, Default)]
pub(crate) struct HelperQuery {
    protocol: String,
    host: String,
    path: Option<String>,
    username: Option<String>,
    helpers: Vec<String>,
    home: Option<PathBuf>,
    xdg_config_home: Option<PathBuf>,
    env: Vec<(String, String)>,
}

impl HelperQuery {
    /// The question for `url` (without user information) with the user
    /// name `username` (from the URL) and the configured helpers.
    pub(crate) fn new(
        config: &GitConfig,
        url: &url::Url,
        username: Option<String>,
        env: &[(String, String)],
    ) -> HelperQuery {
        let var = |name: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| PathBuf::from(v))
                .filter(|v| !v.as_os_str().is_empty())
        };
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let path = use_http_path(config, url)
            .then(|| url.path().trim_start_matches('/').to_string())
            .filter(|p| !p.is_empty());
        HelperQuery {
            protocol: url.scheme().to_string(),
            host,
            path,
            username,
            helpers: helpers(config, url),
            home: var("HOME"),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            env: env.to_vec(),
        }
    }

    /// Whether any helper is configured.
    pub(crate) fn has_helpers(&self) -> bool {
        !self.helpers.is_empty()
    }

    /// Asks the helpers in order until one supplies a password (a helper may
    /// supply only the user name, which later ones are then asked with);
    /// `quit=1` stops the search. Failures of a helper are logged without
    /// its output and the next one is asked.
    pub(crate) fn fill(&self, interrupt: &Interrupt) -> Option<Secret> {
        let mut username = self.username.clone();
        for helper in &self.helpers {
            let answer = if let Some(files) = store_files(helper, self) {
                Ok(self.read_store(&files, username.as_deref()))
            } else {
                self.run_helper(helper, username.as_deref(), interrupt)
            };
            let answer = match answer {
                Ok(answer) => answer,
                Err(e) => {
                    tracing::warn!(helper = %helper_name(helper), error = %e, "git credential helper failed");
                    continue;
                }
            };
            if username.is_none() {
                username = answer.username;
            }
            if let (Some(user), Some(password)) = (&username, answer.password) {
                return Some(Secret {
                    username: user.clone(),
                    password,
                });
            }
            if answer.quit {
                break;
            }
        }
        None
    }

    /// The request git writes to a helper's stdin.
    fn request(&self, username: Option<&str>) -> String {
        let mut text = format!("protocol={}\nhost={}\n", self.protocol, self.host);
        if let Some(path) = &self.path {
            text.push_str(&format!("path={path}\n"));
        }
        if let Some(user) = username {
            text.push_str(&format!("username={user}\n"));
        }
        text.push('\n');
        text
    }

    fn read_store(&self, files: &[PathBuf], username: Option<&str>) -> HelperAnswer {
        for file in files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            for line in text.lines() {
                if let Some(secret) = self.store_line_matches(line.trim(), username) {
                    return HelperAnswer {
                        username: Some(secret.username),
                        password: Some(secret.password),
                        quit: false,
                    };
                }
            }
        }
        HelperAnswer::default()
    }

    /// A `git-credentials` line (`scheme://user:password@host[/path]`,
    /// percent-encoded) matching this query as git's `credential_match`
    /// decides: same protocol and host, same path when asked with one,
    /// same user when the URL names one.
    fn store_line_matches(&self, line: &str, username: Option<&str>) -> Option<Secret> {
        let stored = url::Url::parse(line).ok()?;
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        let user = decode(stored.username())?;
        let password = decode(stored.password()?)?;
        let host = match stored.port() {
            Some(port) => format!("{}:{port}", stored.host_str()?),
            None => stored.host_str()?.to_string(),
        };
        if stored.scheme() != self.protocol || !host.eq_ignore_ascii_case(&self.host) {
            return None;
        }
        if let Some(path) = &self.path {
            if stored.path().trim_start_matches('/') != path {
                return None;
            }
        }
        if username.is_some_and(|u| u != user) {
            return None;
        }
        Some(Secret {
            username: user,
            password,
        })
    }

    fn run_helper(
        &self,
        helper: &str,
        username: Option<&str>,
        interrupt: &Interrupt,
    ) -> io::Result<HelperAnswer> {
        // git: `!cmd` and absolute paths run as shell commands, a name as
        // `git credential-NAME`; the action is appended as an argument.
        let line = if let Some(shell) = helper.strip_prefix('!') {
            format!("{shell} get")
        } else if helper.starts_with('/') {
            format!("{helper} get")
        } else {
            format!("git credential-{helper} get")
        };
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(line)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let pid = child.id();
        let kill = || {
            if let Ok(pid) = libc::pid_t::try_from(pid) {
                // SAFETY: plain syscall on the helper's own process group.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
        };
        let request = self.request(username);
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading closes the pipe: not an
            // error of ours.
            let _ = stdin.write_all(request.as_bytes());
        }
        let Some(stdout) = child.stdout.take() else {
            kill();
            let _ = child.wait();
            return Err(io::Error::other("helper stdout missing"));
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let read = stdout.take(HELPER_OUTPUT_LIMIT).read_to_end(&mut out);
            let _ = tx.send(read.map(|_| out));
        });
        let limit = interrupt
            .remaining()
            .unwrap_or(HELPER_TIME_LIMIT)
            .min(HELPER_TIME_LIMIT);
        let started = Instant::now();
        let output = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(read) => break read,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if interrupt.check().is_err() || started.elapsed() >= limit {
                        kill();
                        let _ = child.wait();
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "helper did not answer in time",
                        ));
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    break Err(io::Error::other("helper output lost"))
                }
            }
        };
        kill();
        let status = child.wait()?;
        let output = output?;
        if !status.success() {
            return Err(io::Error::other(format!("exited with {status}")));
        }
        Ok(HelperAnswer::parse(&String::from_utf8_lossy(&output)))
    }
}

/// The files a `store` helper reads, or `None` when `helper` is not
/// `store`: `--file=PATH` (or `--file PATH`), else `~/.git-credentials`
/// then `$XDG_CONFIG_HOME/git/credentials`.
fn store_files(helper: &str, query: &HelperQuery) -> Option<Vec<PathBuf>> {
    let mut words = helper.split_whitespace();
    if words.next()? != "store" {
        return None;
    }
    let rest: Vec<&str> = words.collect();
    let mut i = 0;
    while i < rest.len() {
        if let Some(path) = rest[i].strip_prefix("--file=") {
            return Some(vec![expand_home(path, query)]);
        }
        if rest[i] == "--file" {
            return Some(
                rest.get(i + 1)
                    .map(|p| expand_home(p, query))
                    .into_iter()
                    .collect(),
            );
        }
        i += 1;
    }
    let mut files = Vec::new();
    if let Some(home) = &query.home {
        files.push(home.join(".git-credentials"));
    }
    let xdg = query
        .xdg_config_home
        .clone()
        .or_else(|| query.home.as_ref().map(|h| h.join(".config")));
    if let Some(xdg) = xdg {
        files.push(xdg.join("git").join("credentials"));
    }
    Some(files)
}

fn expand_home(path: &str, query: &HelperQuery) -> PathBuf {
    match (path.strip_prefix("~/"), &query.home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

/// The helper's name for logs: its first word, without arguments (which
/// might carry a token).
fn helper_name(helper: &str) -> &str {
    helper
        .trim_start_matches('!')
        .split_whitespace()
        .next()
        .unwrap_or("")
}

/// What a helper answered.
#[derive(Debug, Default, PartialEq, Eq)]
struct HelperAnswer {
    username: Option<String>,
    password: Option<String>,
    quit: bool,
}

impl HelperAnswer {
    fn parse(text: &str) -> HelperAnswer {
        let mut answer = HelperAnswer::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "username" => answer.username = Some(value.to_string()),
                "password" => answer.password = Some(value.to_string()),
                "quit" => {
                    answer.quit = matches!(
                        value.to_ascii_lowercase().as_str(),
                        "1" | "true" | "yes" | "on"
                    )
                }
                _ => {}
            }
        }
        answer
    }
}

/// Splits user information off an http(s) URL: the URL without it, and the
/// percent-decoded user name and password it carried.
pub(crate) fn split_userinfo(url: &str) -> (String, Option<String>, Option<String>) {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return (url.to_string(), None, None);
    };
    if parsed.username().is_empty() && parsed.password().is_none() {
        return (url.to_string(), None, None);
    }
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    let user = Some(parsed.username())
        .filter(|u| !u.is_empty())
        .and_then(decode);
    let password = parsed.password().and_then(decode);
    let _ = parsed.set_password(None);
    let _ = parsed.set_username("");
    (parsed.to_string(), user, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> (tempfile::TempDir, GitConfig) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gitconfig");
        std::fs::write(&path, text).unwrap();
        let config = GitConfig::load(&[path]);
        (dir, config)
    }

    fn u(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn url_matching_follows_git() {
        let url = u("https://git@example.com/org/repo.git");
        assert!(url_match("https://example.com", &url).is_some());
        assert!(url_match("https://example.com:443/org", &url).is_some());
        assert!(url_match("https://*.com/org/", &url).is_some());
        assert!(
            url_match("https://git@example.com/", &url)
                .unwrap()
                .user_matched
        );
        assert!(url_match("http://example.com", &url).is_none());
        assert!(url_match("https://example.com:8443", &url).is_none());
        assert!(url_match("https://example.com/or", &url).is_none());
        assert!(url_match("https://bob@example.com", &url).is_none());
        assert!(url_match("https://sub.example.com", &url).is_none());
        assert!(
            url_match("https://example.com/org", &url).unwrap()
                > url_match("https://example.com", &url).unwrap()
        );
    }

    #[test]
    fn extra_headers_by_specificity_and_reset() {
        let (_d, c) = config(
            "[http]\n\textraHeader = A: 1\n\
             [http \"https://example.com/org\"]\n\textraHeader = B: 2\n\
             [http \"https://example.com\"]\n\textraHeader = C: 3\n\
             [http \"https://other.com\"]\n\textraHeader = D: 4\n\
             [http \"https://example.com/org/\"]\n\textraHeader = E: 5\n",
        );
        // C matches worse than B and is skipped; A stays (applied before).
        assert_eq!(
            extra_headers(&c, &u("https://example.com/org/r.git")),
            ["A: 1", "B: 2", "E: 5"]
        );
        assert_eq!(
            extra_headers(&c, &u("https://example.com/x")),
            ["A: 1", "C: 3"]
        );
        let (_d, c) =
            config("[http]\n\textraHeader = A: 1\n\textraHeader =\n\textraHeader = B: 2\n");
        assert_eq!(extra_headers(&c, &u("https://h/r")), ["B: 2"]);
    }

    #[test]
    fn helpers_apply_every_match_and_reset() {
        let (_d, c) = config(
            "[credential]\n\thelper = cache\n\
             [credential \"https://example.com\"]\n\thelper =\n\thelper = store\n\
             [credential \"https://other.com\"]\n\thelper = /bin/other\n",
        );
        assert_eq!(helpers(&c, &u("https://example.com/r")), ["store"]);
        assert_eq!(helpers(&c, &u("https://x.com/r")), ["cache"]);
    }

    #[test]
    fn store_file_matching() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("creds");
        std::fs::write(
            &file,
            "https://bob:pw1@other.com\nhttp://alice:p%40ss@127.0.0.1:8080\nhttps://alice:pw3@127.0.0.1:8080\n",
        )
        .unwrap();
        let (_d, c) = config(&format!(
            "[credential]\n\thelper = store --file={}\n",
            file.display()
        ));
        let url = u("http://127.0.0.1:8080/private/r.git");
        let q = HelperQuery::new(&c, &url, None, &[]);
        let got = q.fill(&Interrupt::new()).unwrap();
        assert_eq!(
            (got.username.as_str(), got.password.as_str()),
            ("alice", "p@ss")
        );
        assert!(!format!("{got:?}").contains("p@ss"));
        let q = HelperQuery::new(&c, &url, Some("carol".into()), &[]);
        assert!(q.fill(&Interrupt::new()).is_none());
    }

    #[test]
    fn helper_programs_answer_and_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("helper.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nwhile read -r l; do [ -z \"$l\" ] && break; case $l in host=*) h=${l#host=};; esac; done\n\
             [ \"$h\" = example.com ] && { echo username=tok; echo password=s3cret; }\nexit 0\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let env = vec![("PATH".to_string(), std::env::var("PATH").unwrap())];
        let (_d, c) = config(&format!(
            "[credential]\n\thelper = !false\n\thelper = {}\n",
            script.display()
        ));
        let q = HelperQuery::new(&c, &u("https://example.com/r"), None, &env);
        let got = q.fill(&Interrupt::new()).unwrap();
        assert_eq!(
            (got.username.as_str(), got.password.as_str()),
            ("tok", "s3cret")
        );
        let q = HelperQuery::new(&c, &u("https://elsewhere.com/r"), None, &env);
        assert!(q.fill(&Interrupt::new()).is_none());

        let (_d, c) = config("[credential]\n\thelper = !sleep 30\n");
        let q = HelperQuery::new(&c, &u("https://example.com/r"), None, &env);
        let started = Instant::now();
        assert!(q
            .fill(&Interrupt::with_timeout(Duration::from_millis(300)))
            .is_none());
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn userinfo_is_split_off() {
        assert_eq!(
            split_userinfo("https://u:p%2Fw@h/r"),
            (
                "https://h/r".to_string(),
                Some("u".to_string()),
                Some("p/w".to_string())
            )
        );
        assert_eq!(
            split_userinfo("https://h/r"),
            ("https://h/r".to_string(), None, None)
        );
    }
}
