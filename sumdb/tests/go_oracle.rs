//! The go command's own `note` and `tlog` packages as the oracle: a small Go
//! program (testdata/oracle) builds a log with them and signs its head, and
//! our functions must produce and accept exactly the same bytes.
//!
//! The packages are taken from the Go toolchain's source tree
//! (`$GOROOT/src/cmd/vendor/golang.org/x/mod`), copied into a temporary
//! module for the run only.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use sumdb::note::{self, Note, Signer, Verifier, Verifiers};
use sumdb::tlog::{self, Hash, Tile, Tree};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn go_env(go: &Path, tmp: &Path, var: &str) -> String {
    let out = Command::new(go)
        .args(["env", var])
        .env("HOME", tmp)
        .env("GOTOOLCHAIN", "local")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

const RECORDS: i64 = 300;

#[test]
fn go_note_and_tlog_agree() {
    // $GO (the binary, as scripts/test.sh exports it), else the workspace's.
    let go = std::env::var_os("GO")
        .filter(|g| !g.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/go"));
    assert!(go.is_file(), "no go binary at {} (set $GO)", go.display());
    let tmp = tempfile::tempdir().unwrap();
    let goroot = go_env(&go, tmp.path(), "GOROOT");
    let xmod = Path::new(&goroot).join("src/cmd/vendor/golang.org/x/mod/sumdb");
    let module = tmp.path().join("oracle");
    for pkg in ["note", "tlog"] {
        copy_dir(&xmod.join(pkg), &module.join("xmod/sumdb").join(pkg));
    }
    std::fs::write(
        module.join("xmod/go.mod"),
        "module golang.org/x/mod\n\ngo 1.23\n",
    )
    .unwrap();
    std::fs::write(
        module.join("go.mod"),
        "module oracle\n\ngo 1.23\n\nrequire golang.org/x/mod v0.0.0\n\nreplace golang.org/x/mod => ./xmod\n",
    )
    .unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/oracle/main.go");
    std::fs::copy(src, module.join("main.go")).unwrap();

    // Go signs with a key we generate; we sign a note Go must open.
    let (skey, vkey) = note::generate_key("oracle.example/log").unwrap();
    let signer = Signer::parse(&skey).unwrap();
    let ours = note::sign(
        &Note {
            text: "our text\nsecond line\n".into(),
            ..Note::default()
        },
        &[&signer],
    )
    .unwrap();
    let note_file = tmp.path().join("note");
    std::fs::write(&note_file, &ours).unwrap();

    let out = Command::new(&go)
        .current_dir(&module)
        .args(["run", ".", &skey, &RECORDS.to_string(), &vkey])
        .arg(&note_file)
        .env("HOME", tmp.path())
        .env("GOPATH", tmp.path().join("gopath"))
        // Shared with the other go oracles (fixtures' `shared_build_cache`):
        // only the first build compiles the standard library.
        .env(
            "GOCACHE",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-build-cache"),
        )
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOSUMDB", "off")
        .env("GOTOOLCHAIN", "local")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "go run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    // Go opened our note.
    assert_eq!(v["open_error"], "", "{}", v["open_error"]);
    assert_eq!(v["opened_text"], "our text\nsecond line\n");

    // Our log, built the same way.
    let mut hashes: Vec<Hash> = Vec::new();
    let read = |hashes: &Vec<Hash>, idx: &[i64]| -> Result<Vec<Hash>, tlog::TlogError> {
        Ok(idx.iter().map(|&i| hashes[i as usize]).collect())
    };
    for i in 0..RECORDS {
        let new = tlog::stored_hashes(i, format!("record {i}\n").as_bytes(), &|idx: &[i64]| {
            read(&hashes, idx)
        })
        .unwrap();
        hashes.extend(new);
        let th = tlog::tree_hash(i + 1, &|idx: &[i64]| read(&hashes, idx)).unwrap();
        assert_eq!(
            th.to_string(),
            v["tree_hashes"][i as usize],
            "tree {}",
            i + 1
        );
    }
    let reader = |idx: &[i64]| read(&hashes, idx);
    let as_strings = |p: Vec<Hash>| p.iter().map(Hash::to_string).collect::<Vec<_>>();

    let record_proofs = v["record_proofs"].as_object().unwrap();
    assert!(record_proofs.len() > 100);
    for (key, want) in record_proofs {
        let (t, i) = key.split_once('/').unwrap();
        let (t, i): (i64, i64) = (t.parse().unwrap(), i.parse().unwrap());
        let p = tlog::prove_record(t, i, &reader).unwrap();
        assert_eq!(
            serde_json::json!(as_strings(p)),
            *want,
            "record proof {key}"
        );
    }
    let tree_proofs = v["tree_proofs"].as_object().unwrap();
    assert!(tree_proofs.len() > 100);
    for (key, want) in tree_proofs {
        let (t, n) = key.split_once('/').unwrap();
        let (t, n): (i64, i64) = (t.parse().unwrap(), n.parse().unwrap());
        let p = tlog::prove_tree(t, n, &reader).unwrap();
        assert_eq!(serde_json::json!(as_strings(p)), *want, "tree proof {key}");
    }

    // The same tiles, with the same paths and contents.
    let tiles = v["tiles"].as_object().unwrap();
    let ours = tlog::new_tiles(2, 0, RECORDS);
    assert_eq!(ours.len(), tiles.len());
    for tile in ours {
        let want = tiles
            .get(&tile.path())
            .unwrap_or_else(|| panic!("go has no tile {}", tile.path()));
        let want = base64::engine::general_purpose::STANDARD
            .decode(want.as_str().unwrap())
            .unwrap();
        assert_eq!(
            tlog::read_tile_data(&tile, &reader).unwrap(),
            want,
            "{}",
            tile.path()
        );
        assert_eq!(Tile::parse_path(&tile.path()).unwrap(), tile);
    }

    // Go's signed head: byte for byte what we sign, and it opens here.
    let head = v["signed_head"].as_str().unwrap();
    let th = tlog::tree_hash(RECORDS, &reader).unwrap();
    let text = tlog::format_tree(Tree {
        n: RECORDS,
        hash: th,
    });
    let ours = note::sign(
        &Note {
            text: text.clone(),
            ..Note::default()
        },
        &[&signer],
    )
    .unwrap();
    assert_eq!(String::from_utf8(ours).unwrap(), head);
    let opened = note::open(
        head.as_bytes(),
        &Verifiers::new([Verifier::parse(&vkey).unwrap()]),
    )
    .unwrap();
    assert_eq!(
        tlog::parse_tree(opened.text.as_bytes()).unwrap(),
        Tree {
            n: RECORDS,
            hash: th
        }
    );
}
