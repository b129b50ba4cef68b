//! GOAUTH: the credentials the go command adds to its own HTTPS requests
//! (go-import discovery, module proxies, the checksum database), as
//! `cmd/go/internal/auth` computes them.
//!
//! GOAUTH is a `;`-separated list of methods:
//! - `off`: no credentials (it cannot be combined with anything);
//! - `netrc`: the .netrc entries (NETRC, else `$HOME/.netrc`), read once;
//! - `git DIR`: `git credential fill` run in the absolute directory DIR
//!   with the URL that failed, its answer used if it is for a prefix of
//!   that URL;
//! - anything else: an authenticator command (split as the go command
//!   splits it: spaces, with `'…'` and `"…"` quoting). It is run once with
//!   no argument before the first request, and again with the URL as last
//!   argument and the failed response's status line and headers on its
//!   standard input. It prints blocks of URL prefix lines, a blank line,
//!   header lines, a blank line.
//!
//! Every method runs, last to first, each storing headers per URL prefix
//! (without `https://` and a trailing `/`), so the first method listed
//! wins for a prefix; an empty header set for a prefix removes it. A
//! request's headers are those of the longest stored prefix of its full
//! URL (query included) cut back at `/` boundaries, as the go command
//! looks them up. Only https requests get them. The methods run before the
//! first request (which is when `git DIR` does nothing: git cannot list
//! credentials) and again, with the URL, after any 4xx answer, after which
//! the request is repeated when its credentials changed.
//!
//! Differences from the go command, on purpose:
//! - a method that can never work (empty command, `off` in a list, `git`
//!   without an absolute existing directory, unterminated quotes) is
//!   refused when the server starts, not at the first request;
//! - `git credential approve`/`reject` are not run after checking the
//!   credentials: the server does not rewrite the operator's credential
//!   store (a passing 401 would erase a stored password);
//! - the commands run without a terminal (in a session of their own), with
//!   the go environment's variables, and are killed with everything they
//!   started when the request's time is up; their output, standard error
//!   and arguments are never logged, only the program name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

use crate::discovery::Netrc;

/// Most bytes read from an authenticator's or git's standard output.
const MAX_OUTPUT: u64 = 1 << 20;

/// HTTP headers carrying credentials, in the order they are sent.
pub type CredentialHeaders = Vec<(HeaderName, HeaderValue)>;

/// A GOAUTH value the go command would refuse (it exits with a fatal
/// error); messages name methods by their first word only, since a
/// command's arguments may hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoAuthError {
    /// An element of the list is empty (`a;;b`, a trailing `;`).
    #[error("GOAUTH encountered an empty command")]
    EmptyCommand,
    /// `off` appears in a list with other methods.
    #[error("GOAUTH=off cannot be combined with other authentication commands")]
    OffCombined,
    /// `git` without exactly one absolute directory argument.
    #[error("GOAUTH=git dir method requires an absolute path to the git working directory{0}")]
    GitDir(&'static str),
    /// The `git DIR` directory cannot be used.
    #[error("GOAUTH=git encountered an error; cannot stat {dir}: {reason}")]
    GitDirStat {
        /// The directory named.
        dir: String,
        /// What the system said.
        reason: String,
    },
    /// An authenticator command line has an unterminated quote.
    #[error("cannot parse GOAUTH command {program}: unterminated {quote} string")]
    Quoting {
        /// The command's first word.
        program: String,
        /// The quote character left open.
        quote: char,
    },
}

/// One element of the GOAUTH list.
#[derive(Clone, PartialEq, Eq)]
enum Method {
    Netrc,
    Git(PathBuf),
    Command(Vec<String>),
}

impl std::fmt::Debug for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Method::Netrc => f.write_str("netrc"),
            Method::Git(dir) => write!(f, "git {}", dir.display()),
            // Arguments may hold secrets.
            Method::Command(words) => write!(f, "command {}", words[0]),
        }
    }
}

/// Parses a GOAUTH value (already defaulted: unset is `netrc`) into its
/// methods, refusing what the go command treats as fatal. `off` gives an
/// empty list.
fn parse_methods(goauth: &str) -> Result<Vec<Method>, GoAuthError> {
    let parts: Vec<&str> = goauth.split(';').collect();
    let mut methods = Vec::new();
    for part in &parts {
        let command = part.trim();
        let words: Vec<&str> = command.split_whitespace().collect();
        let Some(first) = words.first() else {
            return Err(GoAuthError::EmptyCommand);
        };
        match *first {
            "off" => {
                if parts.len() != 1 {
                    return Err(GoAuthError::OffCombined);
                }
            }
            "netrc" => methods.push(Method::Netrc),
            "git" => {
                if words.len() != 2 {
                    return Err(GoAuthError::GitDir(""));
                }
                let dir = Path::new(words[1]);
                if !dir.is_absolute() {
                    return Err(GoAuthError::GitDir(", dir is not absolute"));
                }
                match std::fs::metadata(dir) {
                    Err(e) => {
                        return Err(GoAuthError::GitDirStat {
                            dir: words[1].to_string(),
                            reason: e.to_string(),
                        })
                    }
                    Ok(m) if !m.is_dir() => {
                        return Err(GoAuthError::GitDir(", dir is not a directory"))
                    }
                    Ok(_) => {}
                }
                methods.push(Method::Git(dir.to_path_buf()));
            }
            _ => methods.push(Method::Command(split_command(command)?)),
        }
    }
    Ok(methods)
}

/// The go command's `quoted.Split`: fields separated by spaces, tabs and
/// newlines, a field starting with a quote running to the same quote (no
/// escapes inside).
fn split_command(command: &str) -> Result<Vec<String>, GoAuthError> {
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let bytes = command.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        if bytes[i] == b'"' || bytes[i] == b'\'' {
            let quote = bytes[i];
            let start = i + 1;
            let Some(len) = bytes[start..].iter().position(|&b| b == quote) else {
                return Err(GoAuthError::Quoting {
                    program: command.split_whitespace().next().unwrap_or("").to_string(),
                    quote: quote as char,
                });
            };
            words.push(command[start..start + len].to_string());
            i = start + len + 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_space(bytes[i]) {
            i += 1;
        }
        words.push(command[start..i].to_string());
    }
    if words.is_empty() {
        return Err(GoAuthError::EmptyCommand);
    }
    Ok(words)
}

/// The status line and headers of a failed answer, which an authenticator
/// command reads on its standard input.
#[derive(Debug, Clone, Default)]
pub struct FailedResponse {
    text: String,
}

impl FailedResponse {
    /// The summary of `response`: `HTTP/1.1 401 Unauthorized`, then one
    /// `Name: v1, v2` line per header (names in the go command's canonical
    /// form), then a blank line.
    pub fn of(response: &reqwest::Response) -> FailedResponse {
        let proto = match response.version() {
            reqwest::Version::HTTP_09 => "HTTP/0.9",
            reqwest::Version::HTTP_10 => "HTTP/1.0",
            reqwest::Version::HTTP_2 => "HTTP/2.0",
            reqwest::Version::HTTP_3 => "HTTP/3.0",
            _ => "HTTP/1.1",
        };
        let status = response.status();
        let mut text = format!(
            "{proto} {} {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        let headers = response.headers();
        for name in headers.keys() {
            let values: Vec<String> = headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            text.push_str(&canonical_header_key(name.as_str()));
            text.push_str(": ");
            text.push_str(&values.join(", "));
            text.push('\n');
        }
        text.push('\n');
        FailedResponse { text }
    }
}

/// Go's `CanonicalMIMEHeaderKey` for a valid header name: the first letter
/// and every letter after `-` upper case, the rest lower case.
fn canonical_header_key(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// The GOAUTH methods of one go environment and the credentials they have
/// produced so far; shared by everything that environment's requests go
/// through (see the module documentation).
pub struct GoAuth {
    methods: Vec<Method>,
    netrc_path: Option<PathBuf>,
    /// The netrc given directly instead of read from `netrc_path`.
    netrc_given: Option<Netrc>,
    /// Variables the commands run with (nothing else of the server's).
    env: Vec<(String, String)>,
    /// One run of the methods at a time, so that concurrent failures do
    /// not start the same command many times over.
    runs: tokio::sync::Mutex<RunState>,
    /// URL prefix (no `https://`, no trailing `/`) → headers.
    cache: Mutex<HashMap<String, CredentialHeaders>>,
}

#[derive(Default)]
struct RunState {
    primed: bool,
    netrc: Option<Netrc>,
}

impl std::fmt::Debug for GoAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoAuth")
            .field("methods", &self.methods)
            .finish_non_exhaustive()
    }
}

impl GoAuth {
    /// The methods of `goauth` (the effective value; unset is `netrc`),
    /// reading the netrc at `netrc_path` and running commands with only
    /// the variables `env`.
    pub fn new(
        goauth: &str,
        netrc_path: Option<PathBuf>,
        env: Vec<(String, String)>,
    ) -> Result<GoAuth, GoAuthError> {
        Ok(GoAuth {
            methods: parse_methods(goauth)?,
            netrc_path,
            netrc_given: None,
            env,
            runs: tokio::sync::Mutex::default(),
            cache: Mutex::default(),
        })
    }

    /// GOAUTH=netrc with these entries.
    pub fn from_netrc(netrc: Netrc) -> GoAuth {
        GoAuth {
            methods: vec![Method::Netrc],
            netrc_path: None,
            netrc_given: Some(netrc),
            env: Vec::new(),
            runs: tokio::sync::Mutex::default(),
            cache: Mutex::default(),
        }
    }

    /// Whether no method is configured (GOAUTH=off).
    pub fn is_off(&self) -> bool {
        self.methods.is_empty()
    }

    /// The program names of the configured methods (`netrc`, `git`, or a
    /// command's first word), for start-up logs.
    pub fn method_names(&self) -> Vec<String> {
        self.methods
            .iter()
            .map(|m| match m {
                Method::Netrc => "netrc".to_string(),
                Method::Git(_) => "git".to_string(),
                Method::Command(words) => words[0].clone(),
            })
            .collect()
    }

    /// The credentials for a first request to `url`: the methods run once
    /// (without a URL) before any request, then the stored headers for the
    /// longest matching prefix. `None` for anything but https. Commands get
    /// at most `limit`.
    pub async fn initial(&self, url: &Url, limit: Duration) -> Option<CredentialHeaders> {
        if url.scheme() != "https" || self.is_off() {
            return None;
        }
        {
            let mut state = self.runs.lock().await;
            if !state.primed {
                state.primed = true;
                self.run_methods(&mut state, None, None, limit).await;
            }
        }
        self.lookup(url)
    }

    /// The credentials for repeating a request to `url` that was answered
    /// `failed` (a 4xx): every method runs again with the URL, then the
    /// stored headers are looked up as for [`GoAuth::initial`].
    pub async fn after_failure(
        &self,
        url: &Url,
        failed: &FailedResponse,
        limit: Duration,
    ) -> Option<CredentialHeaders> {
        if url.scheme() != "https" || self.is_off() {
            return None;
        }
        {
            let mut state = self.runs.lock().await;
            // As the go command: the pass without a URL always comes first.
            if !state.primed {
                state.primed = true;
                self.run_methods(&mut state, None, None, limit).await;
            }
            self.run_methods(&mut state, Some(url), Some(failed), limit)
                .await;
        }
        self.lookup(url)
    }

    /// The go command's `loadCredential`: the URL without `https://` and a
    /// trailing `/`, cut back at `/` until a stored prefix matches.
    fn lookup(&self, url: &Url) -> Option<CredentialHeaders> {
        let full = url.as_str();
        let mut prefix = full.strip_prefix("https://").unwrap_or(full);
        prefix = prefix.strip_suffix('/').unwrap_or(prefix);
        let cache = self.cache.lock().ok()?;
        loop {
            if let Some(headers) = cache.get(prefix) {
                return Some(headers.clone());
            }
            prefix = &prefix[..prefix.rfind('/')?];
        }
    }

    /// The go command's `storeCredential`.
    fn store(&self, prefix: &str, headers: CredentialHeaders) {
        let prefix = prefix.strip_prefix("https://").unwrap_or(prefix);
        let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
        if let Ok(mut cache) = self.cache.lock() {
            if headers.is_empty() {
                cache.remove(prefix);
            } else {
                cache.insert(prefix.to_string(), headers);
            }
        }
    }

    /// The go command's `runGoAuth`: the methods last to first, so the
    /// first listed wins for a prefix. Failures are logged by program name
    /// only and leave the stored credentials as they were.
    async fn run_methods(
        &self,
        state: &mut RunState,
        url: Option<&Url>,
        failed: Option<&FailedResponse>,
        limit: Duration,
    ) {
        for method in self.methods.iter().rev() {
            match method {
                Method::Netrc => {
                    let netrc = state.netrc.get_or_insert_with(|| self.read_netrc());
                    for entry in netrc.entries().iter().rev() {
                        self.store(
                            &entry.machine,
                            vec![basic_auth(&entry.login, entry.password())],
                        );
                    }
                }
                Method::Git(dir) => {
                    // git cannot list credentials: wait for a URL.
                    let Some(url) = url else { continue };
                    match self.git_credential(dir, url, limit).await {
                        Ok((prefix, header)) => self.store(&prefix, vec![header]),
                        Err(reason) => {
                            tracing::debug!(method = "git", %reason, "GOAUTH method gave no credentials")
                        }
                    }
                }
                Method::Command(words) => {
                    match self.auth_command(words, url, failed, limit).await {
                        Ok(blocks) => {
                            for (prefix, headers) in blocks {
                                self.store(&prefix, headers);
                            }
                        }
                        Err(reason) => tracing::warn!(
                            method = %words[0],
                            %reason,
                            "GOAUTH command gave no credentials"
                        ),
                    }
                }
            }
        }
    }

    fn read_netrc(&self) -> Netrc {
        if let Some(given) = &self.netrc_given {
            return given.clone();
        }
        match &self.netrc_path {
            // A missing or unreadable netrc means no credentials, as for
            // the go command.
            Some(path) => Netrc::load(path).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "cannot read netrc file; continuing without its credentials");
                Netrc::default()
            }),
            None => Netrc::default(),
        }
    }

    /// `git credential fill` in `dir` for `url`: the prefix git answered
    /// for (which must be a prefix of `url`) and a Basic authorization.
    async fn git_credential(
        &self,
        dir: &Path,
        url: &Url,
        limit: Duration,
    ) -> Result<(String, (HeaderName, HeaderValue)), String> {
        let args = ["git", "credential", "fill"].map(String::from);
        let input = format!("url={url}\n");
        let out = self
            .run(&args, Some(dir), Some(input.as_bytes()), limit)
            .await?;
        let (prefix, username, password) = parse_git_credential(&String::from_utf8_lossy(&out));
        if prefix.is_empty() {
            return Err("'git credential fill' gave no URL".into());
        }
        if !url.as_str().starts_with(&prefix) {
            return Err(
                "'git credential fill' gave a credential for another URL than requested".into(),
            );
        }
        Ok((prefix, basic_auth(&username, &password)))
    }

    /// Runs an authenticator command (with `url` as last argument when
    /// given, and `failed` on its standard input) and parses its answer.
    async fn auth_command(
        &self,
        words: &[String],
        url: Option<&Url>,
        failed: Option<&FailedResponse>,
        limit: Duration,
    ) -> Result<Vec<(String, CredentialHeaders)>, String> {
        let mut args = words.to_vec();
        if let Some(url) = url {
            args.push(url.to_string());
        }
        let out = self
            .run(&args, None, failed.map(|f| f.text.as_bytes()), limit)
            .await?;
        parse_user_auth(&String::from_utf8_lossy(&out))
    }

    /// Runs `args` in its own session (no terminal), with only this
    /// GOAUTH's variables, standard error discarded, standard output
    /// capped; killed with its process group after `limit` or when the
    /// caller stops waiting.
    async fn run(
        &self,
        args: &[String],
        dir: Option<&Path>,
        stdin: Option<&[u8]>,
        limit: Duration,
    ) -> Result<Vec<u8>, String> {
        let mut cmd = tokio::process::Command::new(&args[0]);
        cmd.args(&args[1..])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        // SAFETY: setsid is async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
        let _group = child.id().map(KillGroup);
        let mut out = Vec::new();
        let work = async {
            if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
                // A command that exits without reading closes the pipe.
                let _ = pipe.write_all(input).await;
            }
            let mut stdout = child
                .stdout
                .take()
                .ok_or("no standard output")?
                .take(MAX_OUTPUT + 1);
            stdout
                .read_to_end(&mut out)
                .await
                .map_err(|e| format!("reading its output: {e}"))?;
            if out.len() as u64 > MAX_OUTPUT {
                return Err(format!("output exceeds {MAX_OUTPUT} bytes"));
            }
            child.wait().await.map_err(|e| e.to_string())
        };
        let status = tokio::time::timeout(limit, work)
            .await
            .map_err(|_| format!("stopped after {} s", limit.as_secs_f64()))??;
        if !status.success() {
            return Err(format!("exited with {status}"));
        }
        Ok(out)
    }
}

/// Kills a command's process group (its session) when dropped, so nothing
/// it started outlives the request.
struct KillGroup(u32);

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.0) {
            // SAFETY: plain syscall on the command's own process group.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

/// The go command's `parseGitAuth`: the URL (from `url=`, else from
/// `protocol`, `host` and `path`), user name and password of a `git
/// credential fill` answer.
fn parse_git_credential(data: &str) -> (String, String, String) {
    let (mut protocol, mut host, mut path) = (String::new(), String::new(), String::new());
    let mut whole: Option<String> = None;
    let (mut username, mut password) = (String::new(), String::new());
    for line in data.split('\n') {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        match key {
            "protocol" => protocol = value.to_string(),
            "host" => host = value.to_string(),
            "path" => path = value.to_string(),
            "username" => username = value.to_string(),
            "password" => password = value.to_string(),
            "url" => {
                if let Some(u) = parse_request_uri(value) {
                    whole = Some(u);
                }
            }
            _ => {}
        }
    }
    if let Some(whole) = whole {
        return (whole, username, password);
    }
    // Go's URL.String() of the parts.
    let mut prefix = String::new();
    if !protocol.is_empty() {
        prefix.push_str(&protocol);
        prefix.push(':');
    }
    if !protocol.is_empty() || !host.is_empty() {
        prefix.push_str("//");
        prefix.push_str(&host);
    }
    if !path.is_empty() {
        if !host.is_empty() && !path.starts_with('/') {
            prefix.push('/');
        }
        prefix.push_str(&path);
    }
    (prefix, username, password)
}

/// Go's `url.ParseRequestURI` then `String()`, for the URLs GOAUTH
/// answers name: an absolute URL or an absolute path, no control bytes.
fn parse_request_uri(text: &str) -> Option<String> {
    if text.is_empty() || text.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return None;
    }
    if text.starts_with('/') {
        return Some(text.to_string());
    }
    let url = Url::parse(text).ok()?;
    let mut shown = url.to_string();
    // Go keeps an empty path empty; the url crate writes `/`.
    if url.path() == "/" && !text.trim_end_matches(['?', '#']).ends_with('/') {
        if let Some(rest) = shown.strip_suffix('/') {
            shown = rest.to_string();
        }
    }
    Some(shown)
}

/// The go command's `parseUserAuth`: blocks of URL lines, a blank line,
/// header lines, a blank line; each URL (its `https://` dropped) gets the
/// block's headers.
fn parse_user_auth(data: &str) -> Result<Vec<(String, CredentialHeaders)>, String> {
    let mut blocks = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let mut urls = Vec::new();
        loop {
            let Some((line, after)) = rest.split_once('\n') else {
                return Err("invalid format: missing empty line after URLs".into());
            };
            rest = after;
            if line.is_empty() {
                break;
            }
            // The line is the command's output: never shown.
            urls.push(parse_request_uri(line).ok_or("could not parse a URL line")?);
        }
        let mut headers: CredentialHeaders = Vec::new();
        loop {
            let Some((line, after)) = rest.split_once('\n') else {
                return Err("invalid format: missing empty line after headers".into());
            };
            rest = after;
            if line.is_empty() {
                break;
            }
            let invalid = || "invalid format: invalid header line".to_string();
            let (name, value) = line.split_once(": ").ok_or_else(invalid)?;
            let value = value.trim();
            let valid_value = value
                .bytes()
                .all(|b| !(b < 0x20 || b == 0x7f) || b == b'\t' || b == b' ');
            if !valid_value {
                return Err(invalid());
            }
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            let mut value = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| invalid())?;
            value.set_sensitive(true);
            headers.push((name, value));
        }
        for url in urls {
            let prefix = url.strip_prefix("https://").unwrap_or(&url).to_string();
            blocks.push((prefix, headers.clone()));
        }
    }
    Ok(blocks)
}

/// An `Authorization: Basic …` header.
fn basic_auth(user: &str, password: &str) -> (HeaderName, HeaderValue) {
    let mut value = HeaderValue::from_str(&format!(
        "Basic {}",
        base64(format!("{user}:{password}").as_bytes())
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    value.set_sensitive(true);
    (reqwest::header::AUTHORIZATION, value)
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
