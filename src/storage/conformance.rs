//! Behaviour every [`Storage`] backend must show, run against each backend
//! by its own tests.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use super::{CatalogEntry, Storage, StorageError};

/// A zip source that yields some bytes and then fails, like a connection
/// dropped mid-download.
struct FailingReader {
    sent: bool,
}

impl AsyncRead for FailingReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.sent {
            return std::task::Poll::Ready(Err(std::io::Error::other("connection reset")));
        }
        self.sent = true;
        buf.put_slice(b"PK\x03\x04partial");
        std::task::Poll::Ready(Ok(()))
    }
}

/// The catalog of a backend that pages in path-element order (memory,
/// disk): the order a sorted walk of Athens' disk layout meets versions.
pub(crate) async fn component_order<S: Storage + ?Sized>(s: &S) {
    let all = s.catalog("", 0).await.unwrap().entries;
    assert!(all.len() > 1, "nothing to compare: {all:?}");
    assert!(all.is_sorted(), "not in path-element order: {all:?}");
}

/// The catalog of a backend that pages in object key order (object
/// stores): `module/@v/version.info` compared as strings.
pub(crate) async fn key_order<S: Storage + ?Sized>(s: &S) {
    let all = s.catalog("", 0).await.unwrap().entries;
    assert!(all.len() > 1, "nothing to compare: {all:?}");
    let keys: Vec<String> = all
        .iter()
        .map(|e| format!("{}/@v/{}.info", e.module, e.version))
        .collect();
    assert!(keys.is_sorted(), "not in key order: {keys:?}");
}

async fn save<S: Storage + ?Sized>(
    s: &S,
    module: &str,
    version: &str,
    zip: &[u8],
) -> Result<(), StorageError> {
    let mut reader = zip;
    s.save(
        module,
        version,
        Bytes::from(format!("module {module}\n")),
        &mut reader,
        Bytes::from(format!("{{\"Version\":\"{version}\"}}")),
    )
    .await
}

async fn read_zip<S: Storage + ?Sized>(s: &S, module: &str, version: &str) -> (u64, Vec<u8>) {
    let mut zip = s.zip(module, version).await.unwrap();
    let mut data = Vec::new();
    zip.reader.read_to_end(&mut data).await.unwrap();
    // A backend that also hands the zip over whole must hand over the same bytes.
    if let Some(whole) = &zip.in_memory {
        assert_eq!(whole.as_ref(), data.as_slice(), "{module}@{version}");
    }
    (zip.size, data)
}

/// Module paths and versions that must never reach the file system.
pub(crate) const ESCAPES: &[(&str, &str)] = &[
    ("../evil.com/x", "v1.0.0"),
    ("/etc/passwd", "v1.0.0"),
    ("example.com/../../../x", "v1.0.0"),
    ("example.com/./x", "v1.0.0"),
    ("example.com\\..\\x", "v1.0.0"),
    ("example.com/.hidden", "v1.0.0"),
    ("", "v1.0.0"),
    ("example.com/x", "../../v1.0.0"),
    ("example.com/x", "v1.0.0/../../../y"),
    ("example.com/x", "/v1.0.0"),
    ("example.com/x", ".."),
    ("example.com/x", "master"),
    ("example.com/x", "v1.2"),
    ("example.com/x", ""),
];

/// Tries every escape: saves are refused as invalid input, reads find
/// nothing, and no error comes from the file system.
pub(crate) async fn escape_attempts<S: Storage + ?Sized>(s: &S) {
    for (module, version) in ESCAPES {
        let err = save(s, module, version, b"zip").await.unwrap_err();
        assert!(
            matches!(err, StorageError::InvalidInput { .. }),
            "save {module:?}@{version:?}: {err}"
        );
        assert!(s.info(module, version).await.unwrap_err().is_not_found());
        assert!(s.go_mod(module, version).await.unwrap_err().is_not_found());
        assert!(s.zip(module, version).await.unwrap_err().is_not_found());
        assert!(!s.exists(module, version).await.unwrap());
        assert!(s.delete(module, version).await.unwrap_err().is_not_found());
        assert!(s.list(module).await.unwrap().is_empty());
    }
}

/// The whole suite, on an empty backend.
pub(crate) async fn run<S: Storage + ?Sized>(s: &S) {
    let m = "example.com/Mod";
    // Empty store.
    assert!(s.info(m, "v1.0.0").await.unwrap_err().is_not_found());
    assert!(s.go_mod(m, "v1.0.0").await.unwrap_err().is_not_found());
    assert!(s.zip(m, "v1.0.0").await.unwrap_err().is_not_found());
    assert!(!s.exists(m, "v1.0.0").await.unwrap());
    assert!(s.list(m).await.unwrap().is_empty());
    assert!(s.catalog("", 10).await.unwrap().entries.is_empty());

    // Round trip.
    save(s, m, "v1.0.0", b"zip-one").await.unwrap();
    assert!(s.exists(m, "v1.0.0").await.unwrap());
    assert_eq!(
        &s.go_mod(m, "v1.0.0").await.unwrap()[..],
        b"module example.com/Mod\n"
    );
    assert_eq!(
        &s.info(m, "v1.0.0").await.unwrap()[..],
        b"{\"Version\":\"v1.0.0\"}"
    );
    assert_eq!(read_zip(s, m, "v1.0.0").await, (7, b"zip-one".to_vec()));
    // Paths are case-sensitive keys.
    assert!(!s.exists("example.com/mod", "v1.0.0").await.unwrap());

    // A second save of a complete version keeps the first copy.
    save(s, m, "v1.0.0", b"different").await.unwrap();
    assert_eq!(read_zip(s, m, "v1.0.0").await.1, b"zip-one".to_vec());

    // Listing is per module; nested modules are separate.
    save(s, m, "v1.1.0-rc.1", b"rc").await.unwrap();
    save(s, "example.com/Mod/v2", "v2.0.0", b"two")
        .await
        .unwrap();
    save(s, "example.com/Mod", "v2.0.1+incompatible", b"inc")
        .await
        .unwrap();
    let mut versions = s.list(m).await.unwrap();
    versions.sort();
    assert_eq!(
        versions,
        vec!["v1.0.0", "v1.1.0-rc.1", "v2.0.1+incompatible"]
    );
    assert_eq!(s.list("example.com/Mod/v2").await.unwrap(), vec!["v2.0.0"]);
    assert!(s.list("example.com/other").await.unwrap().is_empty());

    // Catalog: every entry once, in the backend's own catalog order (see
    // `component_order` and `key_order`), the same order page by page.
    let mut expected: Vec<CatalogEntry> = [
        ("example.com/Mod", "v1.0.0"),
        ("example.com/Mod", "v1.1.0-rc.1"),
        ("example.com/Mod/v2", "v2.0.0"),
        ("example.com/Mod", "v2.0.1+incompatible"),
    ]
    .into_iter()
    .map(|(module, version)| CatalogEntry {
        module: module.into(),
        version: version.into(),
    })
    .collect();
    expected.sort();
    let all = s.catalog("", 0).await.unwrap();
    let mut all_sorted = all.entries.clone();
    all_sorted.sort();
    assert_eq!(all_sorted, expected);
    assert_eq!(all.next, None);
    let mut paged = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = s.catalog(&token, 3).await.unwrap();
        pages += 1;
        paged.extend(page.entries);
        match page.next {
            Some(next) => token = next,
            None => break,
        }
    }
    assert_eq!(paged, all.entries);
    assert_eq!(pages, 2);
    assert!(matches!(
        s.catalog("no-separator", 3).await.unwrap_err(),
        StorageError::InvalidToken { .. }
    ));

    // A failed upload leaves nothing behind.
    let mut failing = FailingReader { sent: false };
    let err = s
        .save(m, "v1.2.0", Bytes::new(), &mut failing, Bytes::new())
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::ZipSource { .. }), "{err}");
    assert!(!s.exists(m, "v1.2.0").await.unwrap());
    assert!(s.info(m, "v1.2.0").await.unwrap_err().is_not_found());
    assert!(!s.list(m).await.unwrap().contains(&"v1.2.0".to_string()));

    // Delete.
    s.delete(m, "v1.1.0-rc.1").await.unwrap();
    assert!(!s.exists(m, "v1.1.0-rc.1").await.unwrap());
    assert!(s.zip(m, "v1.1.0-rc.1").await.unwrap_err().is_not_found());
    assert!(s.delete(m, "v1.1.0-rc.1").await.unwrap_err().is_not_found());
    assert!(s.exists(m, "v1.0.0").await.unwrap());

    escape_attempts(s).await;
}

/// Eight saves of one version at the same time, all with the same bytes
/// (a version's files are the same whoever fetched them): every save
/// succeeds and the version is stored once, whole.
pub(crate) async fn concurrent_saves<S: Storage + ?Sized>(s: &S) {
    let m = "example.com/concurrent";
    let zip: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let saves = (0..8).map(|_| save(s, m, "v1.0.0", &zip));
    for result in futures::future::join_all(saves).await {
        result.unwrap();
    }
    assert!(s.exists(m, "v1.0.0").await.unwrap());
    assert_eq!(s.list(m).await.unwrap(), vec!["v1.0.0"]);
    assert_eq!(read_zip(s, m, "v1.0.0").await.1, zip);
    let catalog = s.catalog("", 0).await.unwrap();
    let copies = catalog.entries.iter().filter(|e| e.module == m).count();
    assert_eq!(copies, 1);
}

/// A pseudo-random stream of `size` bytes, produced as it is read, so the
/// source itself holds no copy of the zip.
struct GeneratedZip {
    left: usize,
    state: u32,
}

impl AsyncRead for GeneratedZip {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = buf.remaining().min(self.left).min(64 << 10);
        let mut chunk = Vec::with_capacity(n);
        for _ in 0..n {
            self.state = self.state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            chunk.push((self.state >> 16) as u8);
        }
        self.left -= n;
        buf.put_slice(&chunk);
        std::task::Poll::Ready(Ok(()))
    }
}

/// Saves a `size`-byte zip from a stream and reads it back as a stream;
/// the bytes must match (compared by SHA-256, not by holding two copies).
pub(crate) async fn large_zip<S: Storage + ?Sized>(s: &S, size: usize) {
    use sha2::{Digest, Sha256};
    let digest_of = |mut source: GeneratedZip| {
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let mut rb = ReadBuf::new(&mut buf);
            let waker = futures::task::noop_waker();
            let mut cx = std::task::Context::from_waker(&waker);
            let _ = std::pin::Pin::new(&mut source).poll_read(&mut cx, &mut rb);
            if rb.filled().is_empty() {
                break;
            }
            hash.update(rb.filled());
        }
        hash.finalize()
    };
    let want = digest_of(GeneratedZip {
        left: size,
        state: 1,
    });
    let m = "example.com/large";
    let mut source = GeneratedZip {
        left: size,
        state: 1,
    };
    s.save(
        m,
        "v1.0.0",
        Bytes::from_static(b"module example.com/large\n"),
        &mut source,
        Bytes::from_static(b"{\"Version\":\"v1.0.0\"}"),
    )
    .await
    .unwrap();
    let mut zip = s.zip(m, "v1.0.0").await.unwrap();
    assert_eq!(zip.size, size as u64);
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0usize;
    loop {
        let n = zip.reader.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        total += n;
        hash.update(&buf[..n]);
    }
    assert_eq!(total, size);
    assert_eq!(hash.finalize(), want);
}
