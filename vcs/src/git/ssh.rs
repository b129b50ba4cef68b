//! git over SSH: remotes named `ssh://`, `git+ssh://`, `ssh+git://` or
//! scp-style `[user@]host:path` are reached by running the ssh program, as
//! git does (and so as the go command does through git).
//!
//! Which program, and how it is called, follow git's `connect.c`:
//! `GIT_SSH_COMMAND`, else `core.sshCommand` (both run through `sh`), else
//! `GIT_SSH` (run directly), else `ssh`; its variant (`ssh`, `plink`,
//! `putty`, `tortoiseplink`, `simple`) from `GIT_SSH_VARIANT`,
//! `ssh.variant` or the program's name, probing with `-G` when unknown.
//! Everything else (keys, `SSH_AUTH_SOCK`, known_hosts and
//! StrictHostKeyChecking) is the ssh program's own configuration.
//!
//! Remote URLs may come from go-import meta tags, i.e. from anyone: a host,
//! user or path that could be read as an option (a leading `-`, as in
//! `ssh://-oProxyCommand=...`) is refused, as git refuses it, and so is any
//! character a shell or an ssh config token could give meaning to.
//!
//! The ssh process runs in its own session (no controlling terminal, so it
//! can never prompt) and its output is read through the transfer's
//! [`Watch`]: the deadline and the pack limits apply as over https, and the
//! whole process group is killed when the transfer ends or is stopped.

use std::borrow::Cow;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gix::bstr::{BStr, BString};
use gix::protocol::transport::client::blocking_io::{RequestWriter, SetServiceResponse, Transport};
use gix::protocol::transport::client::git::blocking_io::Connection;
use gix::protocol::transport::client::git::ConnectMode;
use gix::protocol::transport::client::{self, TransportWithoutIO};
use gix::protocol::transport::{Protocol, Service};

use super::options::GitConfig;
use super::quiet::QuietFetch;
use super::transport::{Pumped, Watch};
use crate::codehost::CodeError;

/// How often the watchdog looks at the deadline.
const WATCHDOG_POLL: Duration = Duration::from_millis(100);
/// Longest the `-G` probe of an unknown ssh program may take.
const PROBE_LIMIT: Duration = Duration::from_secs(10);
/// Bytes of the ssh program's stderr kept for error messages.
const STDERR_KEPT: usize = 4096;

/// Where an ssh remote leads, parsed as git parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SshRemote {
    /// Login name from the URL, if any.
    pub(crate) user: Option<String>,
    /// Host name or address (IPv6 without brackets).
    pub(crate) host: String,
    /// Port from an `ssh://` URL.
    pub(crate) port: Option<u16>,
    /// Repository path as sent to the remote `git-upload-pack`.
    pub(crate) path: String,
}

impl SshRemote {
    /// `user@host` or `host`, the argument naming the remote to ssh.
    fn destination(&self) -> String {
        match &self.user {
            Some(user) => format!("{user}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

/// Whether git would reach `url` over ssh: an `ssh://`, `git+ssh://` or
/// `ssh+git://` URL, or scp-style `host:path` (a colon before any slash).
pub(crate) fn is_ssh(url: &str) -> bool {
    if let Some((scheme, _)) = url.split_once("://") {
        return matches!(
            scheme.to_ascii_lowercase().as_str(),
            "ssh" | "git+ssh" | "ssh+git"
        );
    }
    scp_colon(url).is_some()
}

/// The colon of an scp-style `[user@]host:path` (`[host]:path` allowed),
/// as git finds it off Windows: the first colon, with no slash before it.
fn scp_colon(url: &str) -> Option<usize> {
    // A bracketed host may hold colons of its own.
    let search_from = match (url.find('['), url.find(']')) {
        (Some(open), Some(close)) if open < close && !url[..open].contains('/') => close,
        _ => 0,
    };
    let colon = search_from + url[search_from..].find(':')?;
    if url[..colon].contains('/') {
        return None;
    }
    Some(colon)
}

fn refuse(url: &str, why: &str) -> CodeError {
    CodeError::Other(format!("git remote {}: {why}", super::cache::redact(url)))
}

/// Characters allowed in a host name: letters, digits, `.`, `-`, `_`,
/// and for bracketed IPv6 addresses `:` and `%` (zone).
fn host_ok(host: &str, bracketed: bool) -> bool {
    !host.is_empty()
        && !host.starts_with('-')
        && host.bytes().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, b'.' | b'-' | b'_')
                || (bracketed && matches!(c, b':' | b'%'))
        })
}

/// Characters allowed in a login name.
fn user_ok(user: &str) -> bool {
    !user.is_empty()
        && !user.starts_with('-')
        && user
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'+' | b'~'))
}

/// A path is quoted for the remote shell, so only a leading `-` (git's
/// "strange pathname") and control characters are refused.
fn path_ok(path: &str) -> bool {
    !path.is_empty() && !path.starts_with('-') && !path.chars().any(char::is_control)
}

/// Decodes `%XX` escapes, as git does for URL-form remotes.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Parses an ssh remote (see [`is_ssh`]), refusing anything ssh could read
/// as an option or that a shell or ssh token expansion could give meaning.
pub(crate) fn parse(url: &str) -> Result<SshRemote, CodeError> {
    let (authority, path, url_form) = if let Some((_, rest)) = url.split_once("://") {
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => return Err(refuse(url, "ssh URL without a repository path")),
        };
        let path = percent_decode(path).ok_or_else(|| refuse(url, "malformed %-escape"))?;
        // git strips the slash before `~user/...`.
        let path = match path.strip_prefix("/~") {
            Some(rest) => format!("~{rest}"),
            None => path,
        };
        (authority.to_string(), path, true)
    } else {
        let colon = scp_colon(url).ok_or_else(|| refuse(url, "not an ssh remote"))?;
        (
            url[..colon].to_string(),
            url[colon + 1..].to_string(),
            false,
        )
    };
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user.to_string()), host.to_string()),
        None => (None, authority),
    };
    let user = match user {
        Some(u) if url_form => {
            Some(percent_decode(&u).ok_or_else(|| refuse(url, "malformed %-escape"))?)
        }
        other => other,
    };
    // A password in an ssh URL is never used (ssh asks for its own).
    let user = user.map(|u| match u.split_once(':') {
        Some((name, _)) => name.to_string(),
        None => u,
    });
    let (host, port, bracketed) = if let Some(inner) = host_port.strip_prefix('[') {
        let close = inner
            .find(']')
            .ok_or_else(|| refuse(url, "unclosed [ in host"))?;
        let after = &inner[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) if url_form => Some(p),
            Some(_) | None if !after.is_empty() => {
                return Err(refuse(url, "malformed host"));
            }
            _ => None,
        };
        (inner[..close].to_string(), port.map(str::to_string), true)
    } else if url_form {
        match host_port.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.to_string()), false),
            None => (host_port, None, false),
        }
    } else {
        (host_port, None, false)
    };
    let port = match port.as_deref() {
        None | Some("") => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| refuse(url, "strange port"))?,
        ),
    };
    if !host_ok(&host, bracketed) {
        return Err(refuse(url, "strange hostname blocked"));
    }
    if let Some(user) = &user {
        if !user_ok(user) {
            return Err(refuse(url, "strange user name blocked"));
        }
    }
    if !path_ok(&path) {
        return Err(refuse(url, "strange pathname blocked"));
    }
    Ok(SshRemote {
        user,
        host,
        port,
        path,
    })
}

/// Which kind of ssh client the program is, deciding its options
/// (git's `ssh.variant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    /// OpenSSH: `-p port`, `-o SendEnv=GIT_PROTOCOL`.
    Ssh,
    /// PuTTY's plink: `-P port`.
    Plink,
    /// PuTTY itself: `-P port`.
    Putty,
    /// TortoisePlink: `-batch -P port`.
    TortoisePlink,
    /// Only `host command`: no port, no protocol v2.
    Simple,
    /// Unknown: probed with `-G`, as git does.
    Auto,
}

impl Variant {
    fn from_setting(value: &str) -> Variant {
        match value {
            "auto" => Variant::Auto,
            "plink" => Variant::Plink,
            "putty" => Variant::Putty,
            "tortoiseplink" => Variant::TortoisePlink,
            "simple" => Variant::Simple,
            _ => Variant::Ssh,
        }
    }

    fn from_program(program: &str) -> Variant {
        let base = program.rsplit(['/', '\\']).next().unwrap_or(program);
        let base = base.strip_suffix(".exe").unwrap_or(base);
        match base.to_ascii_lowercase().as_str() {
            "ssh" => Variant::Ssh,
            "plink" => Variant::Plink,
            "tortoiseplink" => Variant::TortoisePlink,
            _ => Variant::Auto,
        }
    }
}

/// The ssh program to run and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SshProgram {
    /// A program path or name (`use_shell` false) or a shell command line.
    command: String,
    /// Run `command` through `sh -c` with the arguments appended.
    use_shell: bool,
    variant: Variant,
}

impl SshProgram {
    /// The program git would run, from the spawn environment `env` and the
    /// git configuration.
    pub(crate) fn choose(env: &[(String, String)], config: &GitConfig) -> SshProgram {
        let var = |name: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let (command, use_shell) = match var("GIT_SSH_COMMAND")
            .or_else(|| config.last_string("core", None, "sshCommand"))
        {
            Some(command) => (command, true),
            None => (var("GIT_SSH").unwrap_or_else(|| "ssh".to_string()), false),
        };
        let configured =
            var("GIT_SSH_VARIANT").or_else(|| config.last_string("ssh", None, "variant"));
        let variant = match configured {
            Some(v) => Variant::from_setting(&v),
            None if use_shell => match command.split_whitespace().next() {
                Some(first) => Variant::from_program(first.trim_matches(['\'', '"'])),
                None => Variant::Auto,
            },
            None => Variant::from_program(&command),
        };
        SshProgram {
            command,
            use_shell,
            variant,
        }
    }

    fn base_command(&self, env: &[(String, String)]) -> Command {
        let mut cmd = if self.use_shell {
            let mut cmd = Command::new("sh");
            // The arguments reach the command as "$@", never through the
            // shell's parser.
            cmd.arg("-c")
                .arg(format!("{} \"$@\"", self.command))
                .arg(&self.command);
            cmd
        } else {
            Command::new(&self.command)
        };
        cmd.env_clear();
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Options for `remote` with `variant`; `v2` asks to pass GIT_PROTOCOL.
    fn options(variant: Variant, remote: &SshRemote, v2: bool) -> Result<Vec<String>, String> {
        let mut args = Vec::new();
        match variant {
            Variant::Ssh | Variant::Auto => {
                if v2 {
                    args.extend(["-o".to_string(), "SendEnv=GIT_PROTOCOL".to_string()]);
                }
                if let Some(port) = remote.port {
                    args.extend(["-p".to_string(), port.to_string()]);
                }
            }
            Variant::Plink | Variant::Putty | Variant::TortoisePlink => {
                if variant == Variant::TortoisePlink {
                    args.push("-batch".to_string());
                }
                if let Some(port) = remote.port {
                    args.extend(["-P".to_string(), port.to_string()]);
                }
            }
            Variant::Simple => {
                if remote.port.is_some() {
                    return Err("ssh variant 'simple' does not support setting port".into());
                }
            }
        }
        Ok(args)
    }

    /// The variant to use for `remote`: [`Variant::Auto`] resolved by
    /// running the program with `-G` (OpenSSH prints its configuration and
    /// exits), as git does.
    fn resolve_variant(
        &self,
        env: &[(String, String)],
        remote: &SshRemote,
        time_left: Option<Duration>,
    ) -> Variant {
        if self.variant != Variant::Auto {
            return self.variant;
        }
        let mut probe = self.base_command(env);
        probe.arg("-G");
        if let Ok(options) = Self::options(Variant::Ssh, remote, false) {
            probe.args(options);
        }
        probe
            .arg(remote.destination())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        detach(&mut probe);
        let probed = probe.spawn().and_then(|child| {
            let mut guard = ProcessGroup::new(child);
            let limit = PROBE_LIMIT.min(time_left.unwrap_or(PROBE_LIMIT));
            guard.wait_bounded(limit)
        });
        match probed {
            Ok(Some(status)) if status.success() => Variant::Ssh,
            _ => Variant::Simple,
        }
    }

    /// The full command running `service` on `remote`.
    fn command(
        &self,
        env: &[(String, String)],
        remote: &SshRemote,
        service: Service,
        v2: bool,
        time_left: Option<Duration>,
    ) -> Result<Command, String> {
        let variant = self.resolve_variant(env, remote, time_left);
        let v2 = v2 && matches!(variant, Variant::Ssh);
        let mut cmd = self.base_command(env);
        cmd.args(Self::options(variant, remote, v2)?);
        cmd.arg(remote.destination());
        cmd.arg(format!(
            "{} {}",
            service.as_str(),
            shell_quote(&remote.path)
        ));
        if v2 {
            cmd.env("GIT_PROTOCOL", "version=2");
        }
        Ok(cmd)
    }
}

/// Quotes `s` for a POSIX shell as git's `sq_quote_buf` does: in single
/// quotes, with `'` and `!` escaped outside them.
fn shell_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' | '!' => {
                out.push('\'');
                out.push('\\');
                out.push(c);
                out.push('\'');
            }
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Runs the child in a session of its own: no controlling terminal (ssh
/// cannot prompt for a passphrase or a host key) and a process group that
/// can be killed whole (a `sh -c` wrapper, ProxyCommand helpers).
fn detach(cmd: &mut Command) {
    // SAFETY: setsid is async-signal-safe and touches no memory of the
    // parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A spawned child leading its own process group, killed with the group
/// when dropped.
struct ProcessGroup {
    child: Child,
    reaped: bool,
}

impl ProcessGroup {
    fn new(child: Child) -> ProcessGroup {
        ProcessGroup {
            child,
            reaped: false,
        }
    }

    fn kill_group(pid: u32) {
        if let Ok(pid) = libc::pid_t::try_from(pid) {
            // SAFETY: plain syscall; a negative pid names the group.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }

    /// Waits for the child for at most `limit`; `None` when it did not
    /// exit in time (it is then killed on drop).
    fn wait_bounded(&mut self, limit: Duration) -> io::Result<Option<std::process::ExitStatus>> {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.reaped = true;
                return Ok(Some(status));
            }
            if started.elapsed() >= limit {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if !self.reaped {
            Self::kill_group(self.child.id());
            let _ = self.child.wait();
        } else {
            // The leader exited; helpers it left in the group go too.
            Self::kill_group(self.child.id());
        }
    }
}

/// The stderr of the ssh program, kept (bounded) for error messages.
#[derive(Debug, Clone, Default)]
pub(crate) struct SshStderr(Arc<StderrState>);

#[derive(Debug, Default)]
struct StderrState {
    kept: Mutex<Vec<u8>>,
    /// A drain thread was started...
    draining: AtomicBool,
    /// ...and has seen the end of the stream.
    done: AtomicBool,
}

/// How long an error message waits for the rest of ssh's stderr (the
/// process is gone by then, so the end comes at once).
const STDERR_GRACE: Duration = Duration::from_secs(2);

impl SshStderr {
    /// What ssh said, trimmed, one line per message; empty if nothing.
    pub(crate) fn text(&self) -> String {
        if self.0.draining.load(Ordering::SeqCst) {
            let started = std::time::Instant::now();
            while !self.0.done.load(Ordering::SeqCst) && started.elapsed() < STDERR_GRACE {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let bytes = self.0.kept.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn drain(&self, mut from: impl Read + Send + 'static) {
        let state = Arc::clone(&self.0);
        state.draining.store(true, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name("git-ssh-stderr".into())
            .spawn(move || {
                let mut buf = [0u8; 1024];
                loop {
                    match from.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if let Ok(mut kept) = state.kept.lock() {
                                let room = STDERR_KEPT.saturating_sub(kept.len());
                                kept.extend_from_slice(&buf[..n.min(room)]);
                            }
                        }
                    }
                }
                state.done.store(true, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.0.done.store(true, Ordering::SeqCst);
        }
    }
}

/// gix's transport for one ssh remote: the ssh program is spawned at the
/// handshake and spoken to through a [`Connection`] whose reads go through
/// the transfer's watch.
pub(crate) struct SshTransport {
    program: SshProgram,
    env: Vec<(String, String)>,
    remote: SshRemote,
    url: BString,
    watch: Arc<Watch>,
    stderr: SshStderr,
    // Dropped before the process group, so ssh sees its stdin close first.
    connection: Option<Connection<Pumped, QuietFetch<ChildStdin>>>,
    process: Option<ProcessGroup>,
    watchdog_done: Arc<AtomicBool>,
}

impl SshTransport {
    pub(crate) fn new(
        program: SshProgram,
        env: Vec<(String, String)>,
        remote: SshRemote,
        url: &str,
        watch: Arc<Watch>,
        stderr: SshStderr,
    ) -> SshTransport {
        SshTransport {
            program,
            env,
            remote,
            url: url.into(),
            watch,
            stderr,
            connection: None,
            process: None,
            watchdog_done: Arc::new(AtomicBool::new(false)),
        }
    }

    fn spawn(&mut self, service: Service) -> Result<(), client::Error> {
        // Named by its first word only: the rest of GIT_SSH_COMMAND may
        // hold a secret, and this error reaches logs and answers.
        let program_name = self
            .program
            .command
            .split_whitespace()
            .next()
            .unwrap_or("ssh")
            .to_string();
        let invoke_error = |source: io::Error| client::Error::InvokeProgram {
            source,
            command: program_name.clone().into(),
        };
        let mut cmd = self
            .program
            .command(
                &self.env,
                &self.remote,
                service,
                true,
                self.watch.time_left(),
            )
            .map_err(|reason| invoke_error(io::Error::new(io::ErrorKind::InvalidInput, reason)))?;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        detach(&mut cmd);
        let mut child = cmd.spawn().map_err(invoke_error)?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        if let Some(stderr) = child.stderr.take() {
            self.stderr.drain(stderr);
        }
        let pid = child.id();
        self.process = Some(ProcessGroup::new(child));
        let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
            return Err(invoke_error(io::Error::other("ssh pipes missing")));
        };
        // Reads already stop at the deadline; the watchdog also covers a
        // write blocked on a full pipe.
        let watch = Arc::clone(&self.watch);
        let done = Arc::clone(&self.watchdog_done);
        let _ = std::thread::Builder::new()
            .name("git-ssh-watchdog".into())
            .spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    if watch.check().is_err() {
                        ProcessGroup::kill_group(pid);
                        return;
                    }
                    std::thread::sleep(WATCHDOG_POLL);
                }
            });
        let reader = Pumped::new(stdout, &self.watch, true).map_err(invoke_error)?;
        self.connection = Some(Connection::new(
            reader,
            QuietFetch::new(stdin),
            Protocol::V2,
            BString::from(self.remote.path.as_str()),
            None::<(&str, Option<u16>)>,
            ConnectMode::Process,
            false,
        ));
        Ok(())
    }
}

impl Drop for SshTransport {
    fn drop(&mut self) {
        self.watchdog_done.store(true, Ordering::SeqCst);
        self.connection.take();
        self.process.take();
    }
}

impl TransportWithoutIO for SshTransport {
    fn to_url(&self) -> Cow<'_, BStr> {
        Cow::Borrowed(self.url.as_ref())
    }

    fn connection_persists_across_multiple_requests(&self) -> bool {
        true
    }

    fn configure(&mut self, _config: &dyn std::any::Any) -> gix::Result {
        Ok(())
    }
}

impl Transport for SshTransport {
    fn handshake<'a>(
        &mut self,
        service: Service,
        extra_parameters: &'a [(&'a str, Option<&'a str>)],
    ) -> Result<SetServiceResponse<'_>, client::Error> {
        if self.connection.is_none() {
            self.spawn(service)?;
        }
        match self.connection.as_mut() {
            Some(connection) => connection.handshake(service, extra_parameters),
            None => Err(client::Error::MissingHandshake),
        }
    }

    fn request(
        &mut self,
        write_mode: client::WriteMode,
        on_into_read: client::MessageKind,
        trace: bool,
    ) -> Result<RequestWriter<'_>, client::Error> {
        match self.connection.as_mut() {
            Some(connection) => connection.request(write_mode, on_into_read, trace),
            None => Err(client::Error::MissingHandshake),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(user: Option<&str>, host: &str, port: Option<u16>, path: &str) -> SshRemote {
        SshRemote {
            user: user.map(str::to_string),
            host: host.into(),
            port,
            path: path.into(),
        }
    }

    #[test]
    fn recognises_ssh_remotes_as_git_does() {
        for url in [
            "ssh://h/r",
            "SSH://h/r",
            "git+ssh://h/r",
            "ssh+git://h/r",
            "git@github.com:o/r",
            "host:path",
            "[::1]:r",
            "h:-r",
        ] {
            assert!(is_ssh(url), "{url}");
        }
        for url in [
            "https://h/r",
            "/abs/path",
            "rel/dir:x",
            "./a:b",
            "file:///x",
        ] {
            assert!(!is_ssh(url), "{url}");
        }
    }

    #[test]
    fn parses_url_and_scp_forms() {
        assert_eq!(
            parse("ssh://git@example.com:2222/org/repo.git").unwrap(),
            remote(Some("git"), "example.com", Some(2222), "/org/repo.git")
        );
        assert_eq!(
            parse("ssh://example.com/~alice/repo").unwrap(),
            remote(None, "example.com", None, "~alice/repo")
        );
        assert_eq!(
            parse("git+ssh://u:ignored@[::1]:22/r%20x").unwrap(),
            remote(Some("u"), "::1", Some(22), "/r x")
        );
        assert_eq!(
            parse("git@github.com:org/repo.git").unwrap(),
            remote(Some("git"), "github.com", None, "org/repo.git")
        );
        assert_eq!(
            parse("[fe80::1%eth0]:/srv/r").unwrap(),
            remote(None, "fe80::1%eth0", None, "/srv/r")
        );
    }

    #[test]
    fn refuses_what_could_become_an_option() {
        for url in [
            "ssh://-oProxyCommand=touch%20x/r",
            "ssh://-oProxyCommand=touch x/r",
            "ssh://-oProxyCommand=x@h/r",
            "-oProxyCommand=x:r",
            "h:-r",
            "ssh://h:-1/r",
            "ssh://h:99999/r",
            "ssh://h;id/r",
            "ssh://h$(id)/r",
            "ssh://a b/r",
            "ssh://u%20x@h/r",
            "ssh://h/r%0aevil",
            "ssh://h",
            "ssh:///r",
            "ssh://[::1/r",
        ] {
            assert!(parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn variant_from_program_name() {
        assert_eq!(Variant::from_program("/usr/bin/ssh"), Variant::Ssh);
        assert_eq!(Variant::from_program("plink.exe"), Variant::Plink);
        assert_eq!(
            Variant::from_program("TortoisePlink"),
            Variant::TortoisePlink
        );
        assert_eq!(Variant::from_program("my-wrapper"), Variant::Auto);
        assert_eq!(Variant::from_setting("simple"), Variant::Simple);
        assert_eq!(Variant::from_setting("whatever"), Variant::Ssh);
    }

    #[test]
    fn program_choice_follows_git() {
        let config = GitConfig::default();
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let p = SshProgram::choose(&env(&[]), &config);
        assert_eq!(
            (p.command.as_str(), p.use_shell, p.variant),
            ("ssh", false, Variant::Ssh)
        );
        let p = SshProgram::choose(&env(&[("GIT_SSH", "/opt/plink")]), &config);
        assert_eq!((p.use_shell, p.variant), (false, Variant::Plink));
        let p = SshProgram::choose(
            &env(&[("GIT_SSH", "/opt/plink"), ("GIT_SSH_COMMAND", "ssh -i k")]),
            &config,
        );
        assert_eq!(
            (p.command.as_str(), p.use_shell, p.variant),
            ("ssh -i k", true, Variant::Ssh)
        );
        let p = SshProgram::choose(
            &env(&[
                ("GIT_SSH_COMMAND", "ssh -i k"),
                ("GIT_SSH_VARIANT", "simple"),
            ]),
            &config,
        );
        assert_eq!(p.variant, Variant::Simple);
    }

    #[test]
    fn program_from_git_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gitconfig");
        std::fs::write(
            &path,
            "[core]\n\tsshCommand = first\n\tsshCommand = /opt/tortoiseplink -v\n[ssh]\n\tvariant = putty\n",
        )
        .unwrap();
        let config = GitConfig::load(&[path]);
        // core.sshCommand (the last one) runs through the shell, and
        // ssh.variant overrides the name.
        let p = SshProgram::choose(&[("GIT_SSH".into(), "/usr/bin/ssh".into())], &config);
        assert_eq!(
            (p.command.as_str(), p.use_shell, p.variant),
            ("/opt/tortoiseplink -v", true, Variant::Putty)
        );
        // GIT_SSH_COMMAND comes first, GIT_SSH_VARIANT too.
        let env = [
            ("GIT_SSH_COMMAND".to_string(), "ssh -4".to_string()),
            ("GIT_SSH_VARIANT".to_string(), "ssh".to_string()),
        ];
        let p = SshProgram::choose(&env, &config);
        assert_eq!(
            (p.command.as_str(), p.use_shell, p.variant),
            ("ssh -4", true, Variant::Ssh)
        );
    }

    #[test]
    fn command_lines_per_variant() {
        let r = remote(Some("git"), "h", Some(2222), "/o/r'x!.git");
        let args = |v| SshProgram::options(v, &r, true).unwrap();
        assert_eq!(
            args(Variant::Ssh),
            ["-o", "SendEnv=GIT_PROTOCOL", "-p", "2222"]
        );
        assert_eq!(args(Variant::TortoisePlink), ["-batch", "-P", "2222"]);
        assert!(SshProgram::options(Variant::Simple, &r, false).is_err());
        assert_eq!(shell_quote(&r.path), "'/o/r'\\''x'\\!'.git'");
        let p = SshProgram {
            command: "ssh".into(),
            use_shell: false,
            variant: Variant::Ssh,
        };
        let cmd = p.command(&[], &r, Service::UploadPack, true, None).unwrap();
        let argv: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            argv,
            [
                "-o",
                "SendEnv=GIT_PROTOCOL",
                "-p",
                "2222",
                "git@h",
                "git-upload-pack '/o/r'\\''x'\\!'.git'"
            ]
        );
    }
}
