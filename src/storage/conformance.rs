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

    // Catalog: all entries in order, page by page.
    // Catalog order compares path elements, so the nested module v2 sorts
    // between its parent's versions "v1.1.0-rc.1" and "v2.0.1+incompatible".
    let expected = vec![
        ("example.com/Mod", "v1.0.0"),
        ("example.com/Mod", "v1.1.0-rc.1"),
        ("example.com/Mod/v2", "v2.0.0"),
        ("example.com/Mod", "v2.0.1+incompatible"),
    ];
    let expected: Vec<CatalogEntry> = expected
        .into_iter()
        .map(|(module, version)| CatalogEntry {
            module: module.into(),
            version: version.into(),
        })
        .collect();
    let all = s.catalog("", 0).await.unwrap();
    assert_eq!(all.entries, expected);
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
    assert_eq!(paged, expected);
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
