//! `athens sumdb-keygen NAME [-out FILE]`: a new Ed25519 key for the
//! private checksum database named NAME. The signer key (`PRIVATE+KEY+...`)
//! goes to FILE (default `NAME.key`), created with mode 0600 and never
//! over an existing file; the verifier key, which clients put in their
//! GOSUMDB, is printed.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

/// What to generate.
#[derive(Debug, PartialEq, Eq)]
pub struct KeygenRequest {
    /// The database name (the `name` of `GOSUMDB=name+key`).
    pub name: String,
    /// Where the signer key goes.
    pub out: PathBuf,
}

/// Why no key was written.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    /// Generating the key failed.
    #[error("generating the key: {0}")]
    Generate(String),
    /// Writing the signer key failed (an existing file included).
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Parses the arguments after `sumdb-keygen`.
pub fn parse(args: &[OsString]) -> Result<KeygenRequest, String> {
    let mut name = None;
    let mut out = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let text = arg
            .to_str()
            .ok_or_else(|| format!("unexpected argument {:?}", arg.to_string_lossy()))?;
        if let Some(flag) = text.strip_prefix('-') {
            let flag = flag.trim_start_matches('-');
            match flag.split_once('=') {
                Some(("out", value)) => out = Some(PathBuf::from(value)),
                None if flag == "out" => {
                    out = Some(PathBuf::from(iter.next().ok_or("-out needs a value")?))
                }
                _ => return Err(format!("unknown flag {text:?}")),
            }
        } else if name.is_none() {
            name = Some(text.to_string());
        } else {
            return Err(format!("unexpected argument {text:?}"));
        }
    }
    let name = name.ok_or("sumdb-keygen needs the database NAME")?;
    if !sumdb::note::is_valid_name(&name) {
        return Err(format!(
            "{name:?} is not a valid checksum database name (no spaces or +)"
        ));
    }
    let out = out.unwrap_or_else(|| PathBuf::from(format!("{name}.key")));
    Ok(KeygenRequest { name, out })
}

/// Writes the signer key and returns the verifier key.
pub fn run(request: &KeygenRequest) -> Result<String, KeygenError> {
    let (skey, vkey) = sumdb::note::generate_key(&request.name)
        .map_err(|e| KeygenError::Generate(e.to_string()))?;
    let write_err = |source| KeygenError::Write {
        path: request.out.display().to_string(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&request.out).map_err(write_err)?;
    file.write_all(format!("{skey}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(write_err)?;
    Ok(vkey)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_signer_key_once_and_prints_its_verifier() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("k");
        let args: Vec<OsString> = vec![
            "sumdb.corp.example".into(),
            "-out".into(),
            out.clone().into(),
        ];
        let request = parse(&args).unwrap();
        let vkey = run(&request).unwrap();
        let skey = std::fs::read_to_string(&out).unwrap();
        let signer = sumdb::note::Signer::parse(skey.trim()).unwrap();
        assert_eq!(signer.verifier().to_key_string(), vkey);
        assert!(vkey.starts_with("sumdb.corp.example+"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&out).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(run(&request).is_err(), "overwrote an existing key");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), skey);
        assert!(parse(&["bad+name".into()]).is_err());
        assert!(parse(&[]).is_err());
        assert_eq!(parse(&["n".into()]).unwrap().out, PathBuf::from("n.key"));
    }
}
