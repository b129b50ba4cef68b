//! The private checksum database end to end: the go command, with our log
//! as its GOSUMDB and the private patterns taken out of GONOSUMDB,
//! downloads private modules through the proxy and verifies them against
//! the log, version after version; a client that remembered an older
//! tree head accepts the grown log (consistency proofs); a client with
//! another key refuses it. Then `athens verify` checks the disk store the
//! downloads filled and finds one flipped byte.

#[allow(dead_code, unused_imports)]
mod support;

use std::path::Path;
use std::process::Command;

use support::{
    build_repo, download_ok, file_url, proxy_client, write_gitconfig, Server, ServerSetup,
};

const LIB: &str = "github.com/acme/e2e-lib";
const NAME: &str = "sumdb.acme.test";

/// `athens sumdb-keygen NAME -out FILE`; returns the verifier key.
fn keygen(out: &Path) -> String {
    let got = Command::new(env!("CARGO_BIN_EXE_athens"))
        .args(["sumdb-keygen", NAME, "-out"])
        .arg(out)
        .output()
        .expect("running athens sumdb-keygen");
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    String::from_utf8(got.stdout).unwrap().trim().to_string()
}

/// A go client of `server` whose GOSUMDB is our log with `vkey`.
fn client(server: &Server, vkey: &str) -> fixtures::GoOracle {
    let mut client = proxy_client(&server.url());
    client.set_env("GOSUMDB", &format!("{vkey} {}/sumdb/{NAME}", server.url()));
    client.set_env("GONOSUMDB", "");
    client.set_env("GOPRIVATE", "");
    client.set_env("GONOSUMCHECK", "");
    client
}

fn athens_verify(root: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_athens"))
        .arg("verify")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ATHENS_STORAGE_TYPE", "disk")
        .env("ATHENS_DISK_STORAGE_ROOT", root)
        // As the server: the module is private, so only its record counts.
        .env(
            "ATHENS_GO_BINARY_ENV_VARS",
            "GOSUMDB=off; GOPRIVATE=github.com/acme",
        )
        .output()
        .expect("running athens verify");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn go_verifies_private_modules_against_our_log() {
    let repo = build_repo("e2e-lib");
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("storage");
    std::fs::create_dir_all(&root).unwrap();
    let gitconfig = scratch.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[("e2e-lib", file_url(repo.path()))]);
    let key_file = scratch.path().join("sumdb.key");
    let vkey = keygen(&key_file);
    assert!(vkey.starts_with(&format!("{NAME}+")), "{vkey}");

    let mut setup = ServerSetup::disk(&root, &gitconfig);
    setup.extra_env = vec![
        (
            "ATHENS_GO_BINARY_ENV_VARS".into(),
            format!(
                "GIT_CONFIG_GLOBAL={}; GIT_CONFIG_NOSYSTEM=1; GOPROXY=direct; GOSUMDB=off; GOPRIVATE=github.com/acme",
                gitconfig.display()
            ),
        ),
        (
            "ATHENS_PRIVATE_SUMDB_KEY_FILE".into(),
            key_file.display().to_string(),
        ),
    ];
    let server = Server::start(&setup);

    // First version: the client verifies it against a log of one record.
    let remembering = client(&server, &vkey);
    download_ok(&remembering, LIB, "v1.0.0");
    // The go command keeps the latest verified head in $GOPATH/pkg/sumdb.
    let cached_head = remembering
        .mod_cache()
        .with_file_name("gopath")
        .join("pkg/sumdb")
        .join(NAME)
        .join("latest");
    let head = std::fs::read_to_string(&cached_head)
        .unwrap_or_else(|e| panic!("the client kept no tree head of our log ({e})"));
    assert!(head.starts_with("go.sum database tree\n1\n"), "{head}");

    // Second version: the same client, holding the old head, accepts the
    // grown log (it checks the new head is consistent with the old one).
    download_ok(&remembering, LIB, "v1.1.0");
    let head = std::fs::read_to_string(&cached_head).unwrap();
    assert!(head.starts_with("go.sum database tree\n2\n"), "{head}");

    // A fresh client accepts both.
    let fresh = client(&server, &vkey);
    download_ok(&fresh, LIB, "v1.0.0");
    download_ok(&fresh, LIB, "v1.1.0");

    // A client expecting another key refuses the log's signatures.
    let other = keygen(&scratch.path().join("other.key"));
    let wrong = client(&server, &other);
    let got = wrong.download(LIB, "v1.0.0").unwrap();
    assert!(!got.is_ok(), "a log signed with another key was accepted");
    assert!(got.error.contains("verifying"), "{}", got.error);

    // The log is readable at its endpoints and kept in the store.
    let (status, latest) =
        support::http_get(server.port(), &format!("/sumdb/{NAME}/latest")).unwrap();
    assert_eq!(status, 200);
    assert!(latest.starts_with(b"go.sum database tree\n2\n"));
    let (status, _) = support::http_get(
        server.port(),
        &format!("/sumdb/{NAME}/lookup/github.com/acme/e2e-lib@v9.9.9"),
    )
    .unwrap();
    assert_eq!(status, 404);
    assert!(root.join(".athens/sumdb").join(NAME).join("head").is_file());
    drop(server);

    // `athens verify`: the stored versions hold their records.
    let (code, report) = athens_verify(&root);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("2 versions: 2 ok, 0 corrupt"), "{report}");
    let zip = root.join(LIB).join("v1.1.0").join("source.zip");
    let mut data = std::fs::read(&zip).unwrap();
    let at = data.len() / 2;
    data[at] ^= 0x20;
    std::fs::write(&zip, data).unwrap();
    let (code, report) = athens_verify(&root);
    assert_eq!(code, 3, "{report}");
    assert!(
        report.contains(&format!("corrupt {LIB}@v1.1.0")),
        "{report}"
    );
    assert!(report.contains(&format!("ok {LIB}@v1.0.0")), "{report}");
}
