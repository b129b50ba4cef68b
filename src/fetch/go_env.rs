//! The one go environment of the server: what Athens hands its go command
//! (a few process variables, then `GoBinaryEnvVars`, later entries
//! winning), plus the netrc that `NETRCPath` or `GithubToken` imply. The
//! composition root ([`crate::app`]) builds it once at start-up; the native
//! fetcher, the upstream GOPROXY chain and the checksum-database proxy all
//! share that one [`GoEnv`], and every rule read from it (the GOPROXY list,
//! the GONOPROXY and GONOSUMDB fallbacks to GOPRIVATE, NETRC) is
//! `vcs::goenv`'s.

use std::path::{Path, PathBuf};

use vcs::goenv::GoEnv;

use crate::config::Config;

/// The process variables Athens passes on to its go command; everything
/// else the fetchers honour (GOPRIVATE, GOINSECURE, GOVCS, ...) must come
/// from `GoBinaryEnvVars`, so a stray variable on the host changes nothing.
const INHERITED: &[&str] = &[
    "PATH",
    "HOME",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "GOROOT",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// The go environment `config` describes. `go_get_dir` is the prepared
/// `GoGetDir` (see [`super::gogetdir::prepare`]), where the netrc for
/// `GithubToken` is written.
pub fn from_config(config: &Config, go_get_dir: &Path) -> Result<GoEnv, String> {
    let mut vars: Vec<(String, String)> = INHERITED
        .iter()
        .filter_map(|key| Some((key.to_string(), std::env::var(key).ok()?)))
        .collect();
    for entry in &config.go_binary_env_vars.0 {
        if let Some((key, value)) = entry.split_once('=') {
            vars.push((key.to_string(), value.to_string()));
        }
    }
    // As Athens does: the ssh agent's socket reaches git's ssh (after
    // GoBinaryEnvVars, so it wins) when it names a socket.
    if let Some(sock) = std::env::var_os("SSH_AUTH_SOCK") {
        use std::os::unix::fs::FileTypeExt;
        let is_socket = std::fs::metadata(&sock).is_ok_and(|m| m.file_type().is_socket());
        if let (true, Some(sock)) = (is_socket, sock.to_str()) {
            vars.push(("SSH_AUTH_SOCK".to_string(), sock.to_string()));
        }
    }
    // Athens hands its go command these credentials, which it then uses for
    // repositories and module proxies alike.
    if let Some(netrc) = netrc_file(config, go_get_dir)? {
        vars.push(("NETRC".to_string(), netrc.display().to_string()));
    }
    // A GOAUTH the go command would refuse stops the server here.
    GoEnv::from_vars(vars).map_err(|e| format!("GoBinaryEnvVars: {e}"))
}

/// Athens gives its go command a netrc from `NETRCPath` and, for
/// `GithubToken`, a github.com entry; we hand the same credentials to our
/// fetchers through one private file (mode 0600, never logged).
fn netrc_file(config: &Config, dir: &Path) -> Result<Option<PathBuf>, String> {
    let token = config.github_token.expose();
    if config.netrc_path.is_empty() && token.is_empty() {
        return Ok(None);
    }
    if token.is_empty() {
        return Ok(Some(PathBuf::from(&config.netrc_path)));
    }
    let mut text = if config.netrc_path.is_empty() {
        String::new()
    } else {
        std::fs::read_to_string(&config.netrc_path)
            .map_err(|e| format!("reading NETRCPath {}: {e}", config.netrc_path))?
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "machine github.com login {token} password x-oauth-basic\n"
    ));
    super::gogetdir::write_private_file(dir, "netrc", text.as_bytes()).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EnvList, Secret};

    #[test]
    fn go_binary_env_vars_win_and_credentials_become_netrc() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            go_binary_env_vars: EnvList(vec![
                "GOPROXY=https://a.example|direct".into(),
                "GOPRIVATE=corp.example".into(),
                "HOME=/home/athens".into(),
                "not an entry".into(),
            ]),
            ..Config::default()
        };
        let env = from_config(&config, dir.path()).unwrap();
        assert_eq!(env.goproxy(), "https://a.example|direct");
        assert_eq!(env.gonoproxy(), "corp.example");
        assert_eq!(env.home(), Some("/home/athens"));
        assert_eq!(env.netrc_path(), Some(PathBuf::from("/home/athens/.netrc")));

        config.netrc_path = "/etc/athens/netrc".into();
        let env = from_config(&config, dir.path()).unwrap();
        assert_eq!(env.netrc_path(), Some(PathBuf::from("/etc/athens/netrc")));

        config.netrc_path = String::new();
        config.github_token = Secret::new("t0ken");
        let env = from_config(&config, dir.path()).unwrap();
        let written = dir.path().join("netrc");
        assert_eq!(env.netrc_path(), Some(written.clone()));
        assert_eq!(
            std::fs::read_to_string(written).unwrap(),
            "machine github.com login t0ken password x-oauth-basic\n"
        );
        // The token never shows in the environment's debug output.
        assert!(!format!("{env:?}").contains("t0ken"));

        config.go_binary_env_vars = EnvList(vec!["GOPROXY=ftp://nope".into()]);
        let err = from_config(&config, dir.path()).unwrap_err();
        assert!(err.starts_with("GoBinaryEnvVars: "), "{err}");
    }

    #[test]
    fn a_goauth_the_go_command_refuses_stops_the_server() {
        let dir = tempfile::tempdir().unwrap();
        for (goauth, problem) in [
            ("netrc;;/bin/auth", "empty command"),
            ("off; netrc", "cannot be combined"),
            ("git relative/dir", "not absolute"),
            ("/bin/auth 'the-secret", "unterminated"),
        ] {
            let config = Config {
                go_binary_env_vars: EnvList(vec![format!("GOAUTH={goauth}")]),
                ..Config::default()
            };
            let err = from_config(&config, dir.path()).unwrap_err();
            assert!(
                err.starts_with("GoBinaryEnvVars: invalid GOAUTH: "),
                "{err}"
            );
            assert!(err.contains(problem), "{err}");
            assert!(!err.contains("the-secret"), "{err}");
        }
        let config = Config {
            go_binary_env_vars: EnvList(vec![format!(
                "GOAUTH=netrc; git {}; /bin/auth --token=x",
                dir.path().display()
            )]),
            ..Config::default()
        };
        let env = from_config(&config, dir.path()).unwrap();
        assert_eq!(
            env.goauth_credentials().method_names(),
            ["netrc", "git", "/bin/auth"]
        );
    }
}
