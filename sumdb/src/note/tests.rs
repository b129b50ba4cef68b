use super::*;

// The worked example of Go's note package documentation: a key pair and a
// note signed by it, which any implementation of the format must reproduce.
const DOC_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const DOC_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const DOC_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const DOC_SIG_LINE: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

fn doc_msg() -> String {
    format!("{DOC_TEXT}\n{DOC_SIG_LINE}")
}

fn doc_verifiers() -> Verifiers {
    Verifiers::new([Verifier::parse(DOC_VKEY).unwrap()])
}

#[test]
fn signing_reproduces_the_documented_note() {
    let signer = Signer::parse(DOC_SKEY).unwrap();
    assert_eq!(signer.name(), "PeterNeumann");
    assert_eq!(signer.key_hash(), 0xc74f20a3);
    assert_eq!(signer.verifier().to_key_string(), DOC_VKEY);
    assert_eq!(signer.to_key_string(), DOC_SKEY);
    let msg = sign(
        &Note {
            text: DOC_TEXT.into(),
            ..Note::default()
        },
        &[&signer],
    )
    .unwrap();
    // Ed25519 is deterministic: the signature is the documented one.
    assert_eq!(String::from_utf8(msg).unwrap(), doc_msg());
}

#[test]
fn opening_the_documented_note() {
    let n = open(doc_msg().as_bytes(), &doc_verifiers()).unwrap();
    assert_eq!(n.text, DOC_TEXT);
    assert_eq!(n.sigs.len(), 1);
    assert_eq!(n.sigs[0].name, "PeterNeumann");
    assert_eq!(n.sigs[0].hash, 0xc74f20a3);
    assert!(n.unverified_sigs.is_empty());
}

#[test]
fn verifier_keys_are_checked() {
    let v = Verifier::parse(DOC_VKEY).unwrap();
    assert_eq!(v.name(), "PeterNeumann");
    assert_eq!(v.key_hash(), 0xc74f20a3);
    assert_eq!(v.to_key_string(), DOC_VKEY);
    // Upper-case hex is accepted, as by Go's ParseUint.
    assert!(Verifier::parse(&DOC_VKEY.replace("c74f20a3", "C74F20A3")).is_ok());
    let bad = [
        ("", NoteError::MalformedVerifierKey),
        ("PeterNeumann", NoteError::MalformedVerifierKey),
        ("PeterNeumann+c74f20a3", NoteError::MalformedVerifierKey),
        (
            "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            NoteError::MalformedVerifierKey,
        ),
        (
            "PeterNeumann+c74f20ag+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            NoteError::MalformedVerifierKey,
        ),
        (
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            NoteError::MalformedVerifierKey,
        ),
        (
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
            NoteError::MalformedVerifierKey,
        ),
        (
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            NoteError::VerifierHashMismatch,
        ),
        (
            "PeterNeuman+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            NoteError::VerifierHashMismatch,
        ),
    ];
    for (key, want) in bad {
        assert_eq!(Verifier::parse(key).unwrap_err(), want, "{key:?}");
    }
    // Algorithm 2 with a matching hash: unknown algorithm.
    let mut raw = vec![2u8];
    raw.extend_from_slice(&[7u8; 32]);
    let key = format!("x+{:08x}+{}", key_hash("x", &raw), gobase64::encode(&raw));
    assert_eq!(
        Verifier::parse(&key).unwrap_err(),
        NoteError::UnknownVerifierAlgorithm
    );
    // Ed25519 with a 31-byte key and a matching hash: malformed.
    let raw = [&[1u8][..], &[7u8; 31]].concat();
    let key = format!("x+{:08x}+{}", key_hash("x", &raw), gobase64::encode(&raw));
    assert_eq!(
        Verifier::parse(&key).unwrap_err(),
        NoteError::MalformedVerifierKey
    );
}

#[test]
fn signer_keys_are_checked() {
    for bad in [
        "PRIVATE+KEY+PeterNeumann+c74f20a3",
        "PRIVATE+KEZ+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+Peter Neumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ] {
        assert_eq!(
            Signer::parse(bad).unwrap_err(),
            NoteError::MalformedSignerKey,
            "{bad:?}"
        );
    }
    assert_eq!(
        Signer::parse(&DOC_SKEY.replace("c74f20a3", "c74f20a4")).unwrap_err(),
        NoteError::SignerHashMismatch
    );
    // Debug output never shows the secret.
    let s = Signer::parse(DOC_SKEY).unwrap();
    assert!(!format!("{s:?}").contains("AYEK"));
}

#[test]
fn generated_keys_round_trip() {
    let (skey, vkey) = generate_key("example.com/sumdb").unwrap();
    assert!(skey.starts_with("PRIVATE+KEY+example.com/sumdb+"));
    let signer = Signer::parse(&skey).unwrap();
    let verifier = Verifier::parse(&vkey).unwrap();
    assert_eq!(signer.verifier(), verifier);
    let msg = sign(
        &Note {
            text: "hello\n".into(),
            ..Note::default()
        },
        &[&signer],
    )
    .unwrap();
    let n = open(&msg, &Verifiers::new([verifier])).unwrap();
    assert_eq!(n.text, "hello\n");
    // Two generated keys differ.
    let (skey2, _) = generate_key("example.com/sumdb").unwrap();
    assert_ne!(skey, skey2);
    assert!(generate_key("bad name").is_err());
    assert!(generate_key("a+b").is_err());
}

#[test]
fn unknown_keys_leave_the_note_unverified() {
    let err = open(doc_msg().as_bytes(), &Verifiers::default()).unwrap_err();
    let NoteError::Unverified(n) = err else {
        panic!("want Unverified, got {err:?}");
    };
    assert_eq!(n.text, DOC_TEXT);
    assert_eq!(n.unverified_sigs.len(), 1);
    assert_eq!(n.unverified_sigs[0].hash, 0xc74f20a3);
}

#[test]
fn a_wrong_signature_by_a_known_key_fails() {
    let tampered = doc_msg().replace("don't", "do");
    assert_eq!(
        open(tampered.as_bytes(), &doc_verifiers()).unwrap_err(),
        NoteError::InvalidSignature {
            name: "PeterNeumann".into(),
            hash: 0xc74f20a3
        }
    );
}

#[test]
fn repeated_signatures_count_once() {
    let msg = format!("{DOC_TEXT}\n{DOC_SIG_LINE}{DOC_SIG_LINE}\u{2014} other AAAAAAE=\n\u{2014} other AAAAAAE=\n");
    let n = open(msg.as_bytes(), &doc_verifiers()).unwrap();
    assert_eq!(n.sigs.len(), 1);
    assert_eq!(n.unverified_sigs.len(), 1);
    // The repeated signature by a known key is not even checked: a bad
    // second copy goes unnoticed, as in Go.
    let bad_copy = DOC_SIG_LINE.replace("x08go/ZJ", "x08go/ZK");
    let msg = format!("{DOC_TEXT}\n{DOC_SIG_LINE}{bad_copy}");
    assert!(open(msg.as_bytes(), &doc_verifiers()).is_ok());
}

#[test]
fn malformed_notes() {
    let good = doc_msg();
    let cases: Vec<String> = vec![
        String::new(),
        DOC_TEXT.to_string(),
        // No final newline after the signatures.
        good.trim_end_matches('\n').to_string(),
        // A control character.
        good.replace("problem,", "problem,\t"),
        // A plain dash instead of the em dash.
        good.replace('\u{2014}', "-"),
        // No space after the name.
        good.replace("PeterNeumann x08", "PeterNeumannx08"),
        // Bad base64.
        good.replace("x08go", "x08g!"),
        // A signature of fewer than 5 bytes.
        format!("{DOC_TEXT}\n\u{2014} PeterNeumann AAAAAA==\n"),
        // An empty signature line.
        format!("{DOC_TEXT}\n{DOC_SIG_LINE}\n"),
    ];
    for msg in cases {
        assert_eq!(
            open(msg.as_bytes(), &doc_verifiers()).unwrap_err(),
            NoteError::MalformedNote,
            "{msg:?}"
        );
    }
    // Invalid UTF-8.
    let mut bytes = good.into_bytes();
    bytes[3] = 0xff;
    assert_eq!(
        open(&bytes, &doc_verifiers()).unwrap_err(),
        NoteError::MalformedNote
    );
}

#[test]
fn at_most_100_signatures() {
    let mut msg = format!("{DOC_TEXT}\n{DOC_SIG_LINE}");
    for i in 0..99u32 {
        let raw = [i.to_be_bytes().as_slice(), &[0]].concat();
        msg.push_str(&format!("\u{2014} other {}\n", gobase64::encode(&raw)));
    }
    assert!(open(msg.as_bytes(), &doc_verifiers()).is_ok());
    msg.push_str("\u{2014} other AAAAZAA=\n");
    assert_eq!(
        open(msg.as_bytes(), &doc_verifiers()).unwrap_err(),
        NoteError::MalformedNote
    );
}

#[test]
fn ambiguous_keys_are_an_error() {
    let v = Verifier::parse(DOC_VKEY).unwrap();
    let known = Verifiers::new([v.clone(), v]);
    assert!(matches!(
        open(doc_msg().as_bytes(), &known).unwrap_err(),
        NoteError::AmbiguousKey { .. }
    ));
}

#[test]
fn resigning_keeps_other_signatures_and_replaces_own() {
    let doc = Signer::parse(DOC_SKEY).unwrap();
    let (skey, vkey) = generate_key("EnochRoot").unwrap();
    let me = Signer::parse(&skey).unwrap();
    let n = open(doc_msg().as_bytes(), &doc_verifiers()).unwrap();
    let msg = sign(&n, &[&me]).unwrap();
    let text = String::from_utf8(msg.clone()).unwrap();
    assert!(text.starts_with(&doc_msg()), "{text}");
    assert!(text
        .lines()
        .last()
        .unwrap()
        .starts_with("\u{2014} EnochRoot "));
    let both = Verifiers::new([
        Verifier::parse(DOC_VKEY).unwrap(),
        Verifier::parse(&vkey).unwrap(),
    ]);
    let n2 = open(&msg, &both).unwrap();
    assert_eq!(n2.sigs.len(), 2);
    // Signing again with the documented key replaces its old line.
    let msg = sign(&n2, &[&doc]).unwrap();
    let text = String::from_utf8(msg).unwrap();
    assert_eq!(text.matches("PeterNeumann").count(), 1);
    assert!(text
        .lines()
        .last()
        .unwrap()
        .starts_with("\u{2014} PeterNeumann "));
    // A text without a final newline cannot be signed.
    let bad = Note {
        text: "x".into(),
        ..Note::default()
    };
    assert_eq!(sign(&bad, &[&doc]).unwrap_err(), NoteError::MalformedNote);
    // An existing signature whose hash disagrees with its base64 is refused.
    let mut forged = n2.clone();
    forged.sigs[0].hash ^= 1;
    assert_eq!(sign(&forged, &[]).unwrap_err(), NoteError::MalformedNote);
}

#[test]
fn names() {
    assert!(is_valid_name("sum.golang.org"));
    assert!(is_valid_name("example.com/path"));
    assert!(!is_valid_name(""));
    assert!(!is_valid_name("a b"));
    assert!(!is_valid_name("a\u{00a0}b"));
    assert!(!is_valid_name("a+b"));
}
