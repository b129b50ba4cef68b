//! Signed notes, as the Go checksum database writes them.
//!
//! A signed note is a text ending in a newline, a blank line, and one or
//! more signature lines `— <name> <base64(keyhash ‖ signature)>`, where the
//! dash is an em dash (U+2014). The key hash is the first four bytes
//! (big-endian) of SHA-256(`name` + `"\n"` + `alg ‖ public key`); the only
//! algorithm is Ed25519 (1).
//!
//! Keys are written as text:
//! - a verifier key: `<name>+<hash as 8 hex digits>+<base64(1 ‖ public key)>`;
//! - a signer key: `PRIVATE+KEY+<name>+<hash>+<base64(1 ‖ 32-byte seed)>`.
//!
//! The rules (what is malformed, how repeated and unknown signatures are
//! treated, the 100-signature limit) follow the go command's
//! `golang.org/x/mod/sumdb/note` so that notes cross between the two.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::gobase64;

/// The algorithm byte of Ed25519 keys.
pub const ALG_ED25519: u8 = 1;

/// Signature lines start with an em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Notes with more signatures than this are rejected outright, so that a
/// hostile note cannot make us check signatures forever.
const MAX_SIGNATURES: usize = 100;

/// What went wrong with a key or a note.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// A verifier key is not `name+hash+base64` with a valid name, an
    /// 8-digit hex hash and a non-empty key of the right size.
    #[error("malformed verifier id")]
    MalformedVerifierKey,
    /// A verifier key names an algorithm other than Ed25519.
    #[error("unknown verifier algorithm")]
    UnknownVerifierAlgorithm,
    /// A verifier key's hash is not the hash of its name and key.
    #[error("invalid verifier hash")]
    VerifierHashMismatch,
    /// A signer key is not `PRIVATE+KEY+name+hash+base64`.
    #[error("malformed signer key")]
    MalformedSignerKey,
    /// A signer key names an algorithm other than Ed25519.
    #[error("unknown signer algorithm")]
    UnknownSignerAlgorithm,
    /// A signer key's hash is not the hash of its name and public key.
    #[error("invalid signer hash")]
    SignerHashMismatch,
    /// A server name is empty, or contains a space or a plus sign.
    #[error("invalid signer")]
    InvalidSigner,
    /// The note does not follow the signed note format.
    #[error("malformed note")]
    MalformedNote,
    /// Two known verifiers share a name and key hash.
    #[error("ambiguous key {name}+{hash:08x}")]
    AmbiguousKey {
        /// Server name.
        name: String,
        /// Key hash.
        hash: u32,
    },
    /// A known key did not accept its signature.
    #[error("invalid signature for key {name}+{hash:08x}")]
    InvalidSignature {
        /// Server name.
        name: String,
        /// Key hash.
        hash: u32,
    },
    /// The note is well formed but no known key signed it; the note (with
    /// its signatures all unverified) is kept for diagnostics.
    #[error("note has no verifiable signatures")]
    Unverified(Box<Note>),
    /// The system's random source failed while generating a key.
    #[error("generating key: no randomness: {0}")]
    Random(String),
}

/// The key hash of `name` and an encoded public key (`alg ‖ key`).
pub fn key_hash(name: &str, encoded_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(encoded_key);
    let sum = h.finalize();
    u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]])
}

/// Whether `name` may name a key: non-empty, without Unicode white space
/// and without `+` (which separates the fields of a key).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(char::is_whitespace) && !name.contains('+')
}

/// A server public key that checks signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    hash: u32,
    key: VerifyingKey,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_key_string())
    }
}

impl Verifier {
    /// Parses a verifier key `name+hash+base64(1 ‖ public key)`.
    pub fn parse(vkey: &str) -> Result<Verifier, NoteError> {
        let (name, rest) = vkey.split_once('+').unwrap_or((vkey, ""));
        let (hash16, key64) = rest.split_once('+').unwrap_or((rest, ""));
        let hash = parse_key_hash(hash16);
        let key = gobase64::decode(key64);
        let (Some(hash), Some(key)) = (hash, key) else {
            return Err(NoteError::MalformedVerifierKey);
        };
        if !is_valid_name(name) || key.is_empty() {
            return Err(NoteError::MalformedVerifierKey);
        }
        if hash != key_hash(name, &key) {
            return Err(NoteError::VerifierHashMismatch);
        }
        if key[0] != ALG_ED25519 {
            return Err(NoteError::UnknownVerifierAlgorithm);
        }
        let raw: [u8; 32] = key[1..]
            .try_into()
            .map_err(|_| NoteError::MalformedVerifierKey)?;
        // A key that is not a curve point can verify nothing; Go keeps it and
        // fails every signature, which comes to the same as refusing it here.
        let key = VerifyingKey::from_bytes(&raw).map_err(|_| NoteError::MalformedVerifierKey)?;
        Ok(Verifier {
            name: name.to_string(),
            hash,
            key,
        })
    }

    /// The verifier for an Ed25519 public key under `name`.
    pub fn from_ed25519(name: &str, public_key: &[u8; 32]) -> Result<Verifier, NoteError> {
        if !is_valid_name(name) {
            return Err(NoteError::InvalidSigner);
        }
        let key =
            VerifyingKey::from_bytes(public_key).map_err(|_| NoteError::MalformedVerifierKey)?;
        Ok(Verifier {
            name: name.to_string(),
            hash: key_hash(name, &encoded_public_key(&key)),
            key,
        })
    }

    /// The server name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key hash.
    pub fn key_hash(&self) -> u32 {
        self.hash
    }

    /// Whether `sig` is this key's signature of `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
            return false;
        };
        // Cofactorless verification with a canonical S and R compared as
        // bytes, as Go's crypto/ed25519 does (not dalek's stricter variant,
        // which would refuse signatures the go command accepts).
        ed25519_dalek::Verifier::verify(&self.key, msg, &sig).is_ok()
    }

    /// The key in its text form, `name+hash+base64`.
    pub fn to_key_string(&self) -> String {
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.hash,
            gobase64::encode(&encoded_public_key(&self.key))
        )
    }
}

/// A server private key that signs notes.
#[derive(Clone)]
pub struct Signer {
    name: String,
    hash: u32,
    key: SigningKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the private key.
        write!(f, "Signer({}+{:08x})", self.name, self.hash)
    }
}

impl Signer {
    /// Parses a signer key `PRIVATE+KEY+name+hash+base64(1 ‖ seed)`.
    pub fn parse(skey: &str) -> Result<Signer, NoteError> {
        let mut rest = skey;
        let mut field = || {
            let (f, r) = rest.split_once('+').unwrap_or((rest, ""));
            rest = r;
            f
        };
        let (priv1, priv2, name, hash16) = (field(), field(), field(), field());
        let key64 = rest;
        let hash = parse_key_hash(hash16);
        let key = gobase64::decode(key64);
        let (Some(hash), Some(key)) = (hash, key) else {
            return Err(NoteError::MalformedSignerKey);
        };
        if priv1 != "PRIVATE" || priv2 != "KEY" || !is_valid_name(name) || key.is_empty() {
            return Err(NoteError::MalformedSignerKey);
        }
        if key[0] != ALG_ED25519 {
            return Err(NoteError::UnknownSignerAlgorithm);
        }
        let seed: [u8; 32] = key[1..]
            .try_into()
            .map_err(|_| NoteError::MalformedSignerKey)?;
        let key = SigningKey::from_bytes(&seed);
        // The hash is of the public key, so it can only be checked after
        // deriving that from the seed.
        if hash != key_hash(name, &encoded_public_key(&key.verifying_key())) {
            return Err(NoteError::SignerHashMismatch);
        }
        Ok(Signer {
            name: name.to_string(),
            hash,
            key,
        })
    }

    /// The server name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key hash (of the public key).
    pub fn key_hash(&self) -> u32 {
        self.hash
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.key.sign(msg).to_bytes().to_vec()
    }

    /// The matching verifier.
    pub fn verifier(&self) -> Verifier {
        Verifier {
            name: self.name.clone(),
            hash: self.hash,
            key: self.key.verifying_key(),
        }
    }

    /// The key in its secret text form, `PRIVATE+KEY+name+hash+base64`.
    pub fn to_key_string(&self) -> String {
        let mut seed = vec![ALG_ED25519];
        seed.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.hash,
            gobase64::encode(&seed)
        )
    }
}

/// Generates a new key pair for the server `name`: the secret signer key
/// and the public verifier key, both in text form.
pub fn generate_key(name: &str) -> Result<(String, String), NoteError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| NoteError::Random(e.to_string()))?;
    let signer = signer_from_seed(name, &seed)?;
    Ok((signer.to_key_string(), signer.verifier().to_key_string()))
}

/// The signer for a 32-byte Ed25519 seed under `name`.
pub fn signer_from_seed(name: &str, seed: &[u8; 32]) -> Result<Signer, NoteError> {
    if !is_valid_name(name) {
        return Err(NoteError::InvalidSigner);
    }
    let key = SigningKey::from_bytes(seed);
    Ok(Signer {
        name: name.to_string(),
        hash: key_hash(name, &encoded_public_key(&key.verifying_key())),
        key,
    })
}

fn encoded_public_key(key: &VerifyingKey) -> Vec<u8> {
    let mut v = Vec::with_capacity(33);
    v.push(ALG_ED25519);
    v.extend_from_slice(key.as_bytes());
    v
}

/// Exactly eight hex digits (either case), as Go's `ParseUint(s, 16, 32)`
/// with the length check accepts them.
fn parse_key_hash(s: &str) -> Option<u32> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// The known verifier keys.
#[derive(Debug, Clone, Default)]
pub struct Verifiers {
    list: Vec<Verifier>,
}

impl Verifiers {
    /// A collection of the given keys.
    pub fn new(list: impl IntoIterator<Item = Verifier>) -> Verifiers {
        Verifiers {
            list: list.into_iter().collect(),
        }
    }

    /// The one key with this name and hash; `None` when unknown, an error
    /// when several match (the list has been tampered with).
    pub fn lookup(&self, name: &str, hash: u32) -> Result<Option<&Verifier>, NoteError> {
        let mut found = self
            .list
            .iter()
            .filter(|v| v.name == name && v.hash == hash);
        let first = found.next();
        if first.is_some() && found.next().is_some() {
            return Err(NoteError::AmbiguousKey {
                name: name.to_string(),
                hash,
            });
        }
        Ok(first)
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Server name.
    pub name: String,
    /// Key hash.
    pub hash: u32,
    /// The base64 text of `keyhash ‖ signature`, as in the note.
    pub base64: String,
}

/// A text with its signatures.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Note {
    /// The signed text, ending in a newline.
    pub text: String,
    /// Signatures checked by a known key.
    pub sigs: Vec<Signature>,
    /// Signatures by unknown keys (not checked).
    pub unverified_sigs: Vec<Signature>,
}

/// Parses the signed note `msg` and checks its signatures against `known`.
///
/// Signatures by unknown keys are kept as unverified; a known key whose
/// signature does not verify fails the whole note; a note with no verified
/// signature is [`NoteError::Unverified`].
pub fn open(msg: &[u8], known: &Verifiers) -> Result<Note, NoteError> {
    // Valid UTF-8 without control characters other than newline.
    let msg = std::str::from_utf8(msg).map_err(|_| NoteError::MalformedNote)?;
    if msg.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::MalformedNote);
    }
    // The signature block follows the last blank line.
    let split = msg.rfind("\n\n").ok_or(NoteError::MalformedNote)?;
    let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
    if !sigs.ends_with('\n') {
        return Err(NoteError::MalformedNote);
    }
    let mut note = Note {
        text: text.to_string(),
        ..Note::default()
    };
    let mut seen_verified: Vec<(String, u32)> = Vec::new();
    let mut seen_unverified: Vec<&str> = Vec::new();
    for (count, line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
        let line = line
            .strip_prefix(SIG_PREFIX)
            .ok_or(NoteError::MalformedNote)?;
        let (name, b64) = line.split_once(' ').unwrap_or((line, ""));
        let raw = gobase64::decode(b64).ok_or(NoteError::MalformedNote)?;
        if !is_valid_name(name) || b64.is_empty() || raw.len() < 5 {
            return Err(NoteError::MalformedNote);
        }
        if count + 1 > MAX_SIGNATURES {
            return Err(NoteError::MalformedNote);
        }
        let hash = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let signature = Signature {
            name: name.to_string(),
            hash,
            base64: b64.to_string(),
        };
        match known.lookup(name, hash)? {
            None => {
                // Identical unverified lines count once.
                if !seen_unverified.contains(&line) {
                    seen_unverified.push(line);
                    note.unverified_sigs.push(signature);
                }
            }
            Some(verifier) => {
                // A second signature by the same key is ignored unchecked.
                if seen_verified.iter().any(|(n, h)| n == name && *h == hash) {
                    continue;
                }
                seen_verified.push((name.to_string(), hash));
                if !verifier.verify(text.as_bytes(), &raw[4..]) {
                    return Err(NoteError::InvalidSignature {
                        name: name.to_string(),
                        hash,
                    });
                }
                note.sigs.push(signature);
            }
        }
    }
    if note.sigs.is_empty() {
        return Err(NoteError::Unverified(Box::new(note)));
    }
    Ok(note)
}

/// Signs `note.text` with each of `signers` and returns the encoded note.
///
/// Existing signatures in `note` come first, except those by a key that
/// signs again here; the new signatures follow in order.
pub fn sign(note: &Note, signers: &[&Signer]) -> Result<Vec<u8>, NoteError> {
    if !note.text.ends_with('\n') {
        return Err(NoteError::MalformedNote);
    }
    let mut new_sigs = String::new();
    for s in signers {
        if !is_valid_name(&s.name) {
            return Err(NoteError::InvalidSigner);
        }
        let mut raw = s.hash.to_be_bytes().to_vec();
        raw.extend_from_slice(&s.sign(note.text.as_bytes()));
        new_sigs.push_str(SIG_PREFIX);
        new_sigs.push_str(&s.name);
        new_sigs.push(' ');
        new_sigs.push_str(&gobase64::encode(&raw));
        new_sigs.push('\n');
    }
    let mut out = note.text.clone();
    out.push('\n');
    for sig in note.sigs.iter().chain(&note.unverified_sigs) {
        if !is_valid_name(&sig.name) {
            return Err(NoteError::MalformedNote);
        }
        if signers
            .iter()
            .any(|s| s.name == sig.name && s.hash == sig.hash)
        {
            continue;
        }
        // The hash in the base64 text must be the one claimed.
        let raw = gobase64::decode(&sig.base64).ok_or(NoteError::MalformedNote)?;
        if raw.len() < 4 || u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]) != sig.hash {
            return Err(NoteError::MalformedNote);
        }
        out.push_str(SIG_PREFIX);
        out.push_str(&sig.name);
        out.push(' ');
        out.push_str(&sig.base64);
        out.push('\n');
    }
    out.push_str(&new_sigs);
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests;
