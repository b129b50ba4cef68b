//! `athens verify` finds one flipped byte in each kind of store: disk,
//! S3 (moto), GCS (gcp-storage-emulator) and Azure (Azurite).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::*;
use crate::storage::object::services;
use crate::storage::{DiskStorage, MemoryStorage, ObjectStorage};

const MODULE: &str = "example.com/verified";
const GOOD: &str = "v1.0.0";
const FLIPPED: &str = "v1.1.0";
const UNRECORDED: &str = "v1.2.0";

fn module_zip(version: &str) -> Vec<u8> {
    let go_mod = format!("module {MODULE}\n");
    let source = format!("package verified\n\nconst Version = {version:?}\n");
    fixtures::rawzip::stored_zip(&[
        (&format!("{MODULE}@{version}/go.mod"), go_mod.as_bytes()),
        (
            &format!("{MODULE}@{version}/verified.go"),
            source.as_bytes(),
        ),
    ])
}

/// Stores `version` as the stash does: the version, then its record.
async fn store(storage: &dyn Storage, version: &str, with_record: bool) -> VersionSums {
    let zip = module_zip(version);
    let go_mod = Bytes::from(format!("module {MODULE}\n"));
    storage
        .save(
            MODULE,
            version,
            go_mod.clone(),
            &mut zip.as_slice(),
            Bytes::from(format!("{{\"Version\":\"{version}\"}}")),
        )
        .await
        .unwrap();
    let spool = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(spool.path(), &zip).unwrap();
    let sums = VersionSums::of_files(&go_mod, spool.path()).unwrap();
    if with_record {
        crate::sums::record(storage, MODULE, version, &sums)
            .await
            .unwrap();
    }
    sums
}

/// Where in a zip of [`module_zip`] a content byte of `verified.go` sits.
fn content_offset(zip: &[u8]) -> usize {
    let needle = b"package verified";
    zip.windows(needle.len())
        .position(|w| w == needle)
        .expect("source in zip")
        + 8
}

async fn run_verify(verifier: &StoreVerifier) -> (Summary, Vec<VersionReport>) {
    let versions = verifier.versions().await.unwrap();
    let mut reports = Vec::new();
    let summary = verifier.run(versions, |r| reports.push(r.clone())).await;
    reports.sort_by(|a, b| a.version.cmp(&b.version));
    (summary, reports)
}

/// Stores three versions, flips one byte of one zip with `flip`, and
/// checks what verify reports, then quarantines the flipped one.
async fn finds_one_flipped_byte<F, Fut>(storage: Arc<dyn Storage>, flip: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    store(storage.as_ref(), GOOD, true).await;
    store(storage.as_ref(), FLIPPED, true).await;
    store(storage.as_ref(), UNRECORDED, false).await;
    let verifier = StoreVerifier::new(Arc::clone(&storage));
    let (summary, reports) = run_verify(&verifier).await;
    assert_eq!(
        (summary.ok, summary.corrupt, summary.unverifiable),
        (2, 0, 1),
        "{reports:#?}"
    );

    flip(FLIPPED.to_string()).await;
    let (summary, reports) = run_verify(&verifier).await;
    assert_eq!(
        (
            summary.ok,
            summary.corrupt,
            summary.unverifiable,
            summary.quarantined
        ),
        (1, 1, 1, 0),
        "{reports:#?}"
    );
    assert_eq!(reports[0].status, Status::Ok(vec!["the record"]));
    assert!(
        matches!(&reports[1].status, Status::Corrupt(why) if why.contains("cannot be hashed") || why.contains("zip hash")),
        "{:?}",
        reports[1]
    );
    assert!(
        matches!(&reports[2].status, Status::Unverifiable(why) if why.contains("no checksum record")),
        "{:?}",
        reports[2]
    );

    let quarantining = StoreVerifier::new(Arc::clone(&storage)).with_quarantine(true);
    let (summary, reports) = run_verify(&quarantining).await;
    assert_eq!(summary.quarantined, 1, "{reports:#?}");
    let place = format!(".athens/quarantine/{MODULE}/@v/{FLIPPED}");
    assert_eq!(reports[1].quarantined.as_deref(), Some(place.as_str()));
    assert!(!storage.exists(MODULE, FLIPPED).await.unwrap());
    assert!(storage.exists(MODULE, GOOD).await.unwrap());
    let kept = format!("quarantine/{MODULE}/@v/{FLIPPED}/zip");
    let kept = storage
        .get_side(&SideKey::Reserved(&kept))
        .await
        .unwrap()
        .expect("quarantined zip");
    assert_eq!(kept.len(), module_zip(FLIPPED).len());
    assert_ne!(kept.as_ref(), module_zip(FLIPPED).as_slice());
    let reason = format!("quarantine/{MODULE}/@v/{FLIPPED}/reason");
    assert!(storage
        .get_side(&SideKey::Reserved(&reason))
        .await
        .unwrap()
        .is_some());
    // What is left holds; the quarantine is not mistaken for versions.
    let (summary, _) = run_verify(&quarantining).await;
    assert_eq!(
        (summary.ok, summary.corrupt, summary.unverifiable),
        (1, 0, 1)
    );
    let mut listed = storage.list(MODULE).await.unwrap();
    listed.sort();
    assert_eq!(listed, vec![GOOD.to_string(), UNRECORDED.to_string()]);
}

async fn flip_object(store: Arc<dyn ObjectStore>, version: String) {
    let key = ObjectPath::from(format!("{MODULE}/@v/{version}.zip"));
    let mut data = store
        .get(&key)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let at = content_offset(&data);
    data[at] ^= 0x01;
    store.put(&key, PutPayload::from(data)).await.unwrap();
}

#[tokio::test]
async fn finds_a_flipped_byte_on_disk() {
    let root = tempfile::tempdir().unwrap();
    let storage = Arc::new(DiskStorage::new(root.path()).unwrap());
    let dir = root.path().to_path_buf();
    finds_one_flipped_byte(storage, |version| async move {
        let zip = dir.join(MODULE).join(&version).join("source.zip");
        let mut data = std::fs::read(&zip).unwrap();
        let at = content_offset(&data);
        data[at] ^= 0x01;
        std::fs::write(&zip, data).unwrap();
    })
    .await;
    // The record sits beside the version in Athens' layout.
    assert!(root
        .path()
        .join(MODULE)
        .join(GOOD)
        .join(format!("{GOOD}.gosum"))
        .is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_a_flipped_byte_on_s3() {
    let moto = fixtures::services::s3::Moto::start().unwrap();
    moto.create_bucket("verify").unwrap();
    let config = crate::config::S3Config {
        region: "us-east-1".into(),
        key: "test-key".into(),
        secret: crate::config::Secret::new("test-secret"),
        bucket: "verify".into(),
        force_path_style: true,
        endpoint: moto.endpoint(),
        ..Default::default()
    };
    let store = services::s3(&config).unwrap();
    let storage = Arc::new(ObjectStorage::new(Arc::clone(&store), "s3"));
    finds_one_flipped_byte(storage, |v| flip_object(store, v)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_a_flipped_byte_on_gcs() {
    let (_emulator, _front, storage, store) =
        crate::storage::object::tests::gcs_storage("verify").await;
    finds_one_flipped_byte(Arc::new(storage), |v| flip_object(store, v)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_a_flipped_byte_on_azure() {
    use fixtures::services::azurite::{Azurite, ACCOUNT, ACCOUNT_KEY};
    let azurite = Azurite::start().unwrap();
    azurite.create_container("verify").unwrap();
    let config = crate::config::AzureBlobConfig {
        account_name: ACCOUNT.into(),
        account_key: crate::config::Secret::new(ACCOUNT_KEY),
        container_name: "verify".into(),
        ..Default::default()
    };
    let store = services::azure_blob_at(&config, Some(&azurite.blob_endpoint())).unwrap();
    let storage = Arc::new(ObjectStorage::new(Arc::clone(&store), "azureblob"));
    finds_one_flipped_byte(storage, |v| flip_object(store, v)).await;
}

/// A checksum database answering from a table, counting lookups.
struct TableDb {
    known: Vec<(String, VersionSums)>,
    lookups: Mutex<Vec<String>>,
}

#[async_trait]
impl SumDbLookup for TableDb {
    async fn lookup(&self, module: &str, version: &str) -> Result<Option<VersionSums>, String> {
        let target = format!("{module}@{version}");
        self.lookups.lock().unwrap().push(target.clone());
        Ok(self
            .known
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, s)| s.clone()))
    }
}

#[tokio::test]
async fn public_modules_are_compared_with_the_checksum_database() {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let good = store(storage.as_ref(), GOOD, false).await;
    let forged = store(storage.as_ref(), FLIPPED, true).await;
    store(storage.as_ref(), UNRECORDED, false).await;
    let db = Arc::new(TableDb {
        known: vec![
            (format!("{MODULE}@{GOOD}"), good.clone()),
            (
                format!("{MODULE}@{FLIPPED}"),
                VersionSums {
                    zip: good.zip.clone(),
                    go_mod: forged.go_mod.clone(),
                },
            ),
        ],
        lookups: Mutex::new(Vec::new()),
    });
    let verifier = StoreVerifier::new(Arc::clone(&storage)).with_sumdb(db.clone(), vec![]);
    let (summary, reports) = run_verify(&verifier).await;
    assert_eq!(reports[0].status, Status::Ok(vec!["the checksum database"]));
    assert!(
        matches!(&reports[1].status, Status::Corrupt(why) if why.contains("the checksum database says")),
        "{:?}",
        reports[1]
    );
    assert!(
        matches!(&reports[2].status, Status::Unverifiable(why) if why.contains("not in the checksum database")),
        "{:?}",
        reports[2]
    );
    assert_eq!(
        (summary.ok, summary.corrupt, summary.unverifiable),
        (1, 1, 1)
    );

    // A private module is never looked up.
    db.lookups.lock().unwrap().clear();
    let private =
        StoreVerifier::new(Arc::clone(&storage)).with_sumdb(db.clone(), vec!["example.com".into()]);
    let (summary, _) = run_verify(&private).await;
    assert!(db.lookups.lock().unwrap().is_empty());
    assert_eq!(
        (summary.ok, summary.corrupt, summary.unverifiable),
        (1, 0, 2)
    );
}

/// A checksum database that cannot be reached, or that vouches for no
/// module, counting lookups.
struct DownDb {
    applies: bool,
    lookups: Mutex<usize>,
}

#[async_trait]
impl SumDbLookup for DownDb {
    async fn lookup(&self, _module: &str, _version: &str) -> Result<Option<VersionSums>, String> {
        *self.lookups.lock().unwrap() += 1;
        Err("500 Internal Server Error".into())
    }

    fn applies(&self, _module: &str) -> bool {
        self.applies
    }
}

#[tokio::test]
async fn a_version_the_database_cannot_vouch_for_matches_its_record_only() {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    store(storage.as_ref(), GOOD, true).await;
    store(storage.as_ref(), UNRECORDED, false).await;
    let down = Arc::new(DownDb {
        applies: true,
        lookups: Mutex::new(0),
    });
    let verifier = StoreVerifier::new(Arc::clone(&storage)).with_sumdb(down.clone(), vec![]);
    let (summary, reports) = run_verify(&verifier).await;
    assert_eq!(reports[0].status, Status::Ok(vec!["the record"]));
    assert_eq!(
        reports[0].note.as_deref(),
        Some("500 Internal Server Error")
    );
    assert!(reports[0].to_string().ends_with(
        "matches the record (not checked against the checksum database: 500 Internal Server Error)"
    ));
    // Without a record it is unverifiable, and not counted twice.
    assert!(
        matches!(&reports[1].status, Status::Unverifiable(why) if why.contains("500 Internal Server Error")),
        "{:?}",
        reports[1]
    );
    assert_eq!(reports[1].note, None);
    assert_eq!(
        (summary.ok, summary.unverifiable, summary.unchecked),
        (1, 1, 1)
    );
    assert_eq!(*down.lookups.lock().unwrap(), 2);

    // A module the database does not vouch for is never looked up.
    let private = Arc::new(DownDb {
        applies: false,
        lookups: Mutex::new(0),
    });
    let verifier = StoreVerifier::new(Arc::clone(&storage)).with_sumdb(private.clone(), vec![]);
    let (summary, reports) = run_verify(&verifier).await;
    assert_eq!(reports[0].status, Status::Ok(vec!["the record"]));
    assert_eq!(reports[0].note, None);
    assert_eq!(summary.unchecked, 0);
    assert_eq!(*private.lookups.lock().unwrap(), 0);
}
