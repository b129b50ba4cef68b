//! The log's stored state against an independent in-memory tlog: tree
//! heads, tiles (hash and data, full and partial) and lookups, across a
//! tile boundary and after an append that died half-way.

use std::sync::Arc;

use sumdb::note::{open, Verifiers};
use sumdb::tlog::{self, Hash, Tile, TlogError};

use super::*;
use crate::storage::MemoryStorage;

fn sums_for(i: usize) -> VersionSums {
    VersionSums {
        zip: modzip::dirhash::hash_go_mod(format!("zip {i}").as_bytes()),
        go_mod: modzip::dirhash::hash_go_mod(format!("mod {i}").as_bytes()),
    }
}

fn version(i: usize) -> String {
    format!("v1.0.{i}")
}

const MODULE: &str = "corp.example.com/lib";

/// The same log kept in memory by the tlog primitives alone.
#[derive(Default)]
struct Reference {
    hashes: Vec<Hash>,
    records: Vec<Vec<u8>>,
}

impl Reference {
    fn append(&mut self, text: &[u8]) {
        let n = self.records.len() as i64;
        let hashes = self.hashes.clone();
        let reader = move |idx: &[i64]| -> Result<Vec<Hash>, TlogError> {
            Ok(idx.iter().map(|&i| hashes[i as usize]).collect())
        };
        let new = tlog::stored_hashes(n, text, &reader).unwrap();
        self.hashes.extend(new);
        self.records.push(text.to_vec());
    }

    fn reader(&self) -> impl Fn(&[i64]) -> Result<Vec<Hash>, TlogError> + '_ {
        |idx: &[i64]| Ok(idx.iter().map(|&i| self.hashes[i as usize]).collect())
    }

    fn tree_hash(&self) -> Hash {
        tlog::tree_hash(self.records.len() as i64, &self.reader()).unwrap()
    }
}

fn log(storage: Arc<dyn Storage>) -> PrivateLog {
    let (skey, _) = sumdb::note::generate_key("sumdb.corp.example.com").unwrap();
    PrivateLog::new(&skey, storage, None, vec!["corp.example.com".into()]).unwrap()
}

async fn check_against(log: &PrivateLog, reference: &Reference) {
    let (note, tree) = log.head().await.unwrap();
    let verifiers = Verifiers::new([log.signer.verifier()]);
    let opened = open(&note, &verifiers).unwrap();
    assert_eq!(tlog::parse_tree(opened.text.as_bytes()).unwrap(), tree);
    assert_eq!(tree.n, reference.records.len() as i64);
    assert_eq!(tree.hash, reference.tree_hash());
    for tile in tlog::new_tiles(TILE_HEIGHT, 0, tree.n) {
        let served = log.tile(&tile).await.unwrap().expect("tile in tree");
        let want = tlog::read_tile_data(&tile, &reference.reader()).unwrap();
        assert_eq!(served, want, "{tile:?}");
        let data = Tile { level: -1, ..tile };
        if tile.level == 0 {
            let served = log.tile(&data).await.unwrap().expect("data tile");
            let start = (tile.n * CHUNK) as usize;
            let want = sumdb::record::format_data_tile(
                reference.records[start..start + tile.width as usize]
                    .iter()
                    .map(Vec::as_slice),
            )
            .unwrap();
            assert_eq!(served, want, "{data:?}");
        }
    }
}

#[tokio::test]
async fn log_matches_the_tlog_primitives_across_a_tile_boundary() {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let log = log(Arc::clone(&storage));
    let mut reference = Reference::default();
    check_against(&log, &reference).await;
    for i in 0..260 {
        let sums = sums_for(i);
        let id = log.append(MODULE, &version(i), &sums).await.unwrap();
        assert_eq!(id, i as i64);
        reference.append(
            sumdb::record::gosum_record(MODULE, &version(i), &sums.zip, &sums.go_mod).as_bytes(),
        );
        if i % 37 == 0 || i == 255 || i == 256 {
            check_against(&log, &reference).await;
        }
    }
    check_against(&log, &reference).await;
    // Appending again changes nothing.
    assert_eq!(
        log.append(MODULE, &version(3), &sums_for(3)).await.unwrap(),
        3
    );
    assert_eq!(log.head().await.unwrap().1.n, 260);

    // Lookups: the record, then the signed head.
    let answer = log.lookup(MODULE, &version(257)).await.unwrap().unwrap();
    let parsed = sumdb::record::parse_record(&answer).unwrap();
    assert_eq!(parsed.id, 257);
    assert_eq!(parsed.text, reference.records[257].as_slice());
    assert_eq!(parsed.rest, log.head().await.unwrap().0.as_slice());
    assert_eq!(log.lookup(MODULE, "v9.9.9").await.unwrap(), None);

    // Tiles the tree does not have, or of another height, are not served.
    let beyond = Tile {
        height: 8,
        level: 0,
        n: 1,
        width: 5,
    };
    assert_eq!(log.tile(&beyond).await.unwrap(), None);
    let other_height = Tile {
        height: 2,
        level: 0,
        n: 0,
        width: 1,
    };
    assert_eq!(log.tile(&other_height).await.unwrap(), None);
    let high = Tile {
        height: 8,
        level: 1,
        n: 0,
        width: 2,
    };
    assert_eq!(log.tile(&high).await.unwrap(), None);

    // A second instance on the same store sees the same log.
    let again = PrivateLog::new(
        &log.signer.to_key_string(),
        storage,
        None,
        vec!["corp.example.com".into()],
    )
    .unwrap();
    check_against(&again, &reference).await;
}

#[tokio::test]
async fn an_append_that_died_half_way_is_overwritten() {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let log = log(Arc::clone(&storage));
    let mut reference = Reference::default();
    for i in 0..3 {
        let sums = sums_for(i);
        log.append(MODULE, &version(i), &sums).await.unwrap();
        reference.append(
            sumdb::record::gosum_record(MODULE, &version(i), &sums.zip, &sums.go_mod).as_bytes(),
        );
    }
    // Leftovers of a dead append of another version: hashes past the
    // committed ones, and an index entry past the head.
    let mut chunk = log.get("hashes/0").await.unwrap().unwrap().to_vec();
    chunk.extend_from_slice(&[7u8; 64]);
    log.put("hashes/0", chunk).await.unwrap();
    let dead = LogIndex::key(MODULE, "v2.0.0");
    log.put(&dead, b"3".to_vec()).await.unwrap();
    assert_eq!(log.lookup(MODULE, "v2.0.0").await.unwrap(), None);

    let sums = sums_for(9);
    assert_eq!(log.append(MODULE, &version(9), &sums).await.unwrap(), 3);
    reference.append(
        sumdb::record::gosum_record(MODULE, &version(9), &sums.zip, &sums.go_mod).as_bytes(),
    );
    check_against(&log, &reference).await;
    assert_eq!(log.lookup(MODULE, "v2.0.0").await.unwrap(), None);
}

/// Index keys, as the log names them.
struct LogIndex;

impl LogIndex {
    fn key(module: &str, version: &str) -> String {
        PrivateLog::index_key(module, version).unwrap()
    }
}

#[tokio::test]
async fn the_stash_observer_appends_private_modules_only() {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let log = log(storage);
    log.stored("github.com/public/m", "v1.0.0", &sums_for(0))
        .await;
    assert_eq!(log.head().await.unwrap().1.n, 0);
    log.stored(MODULE, "v1.0.0", &sums_for(0)).await;
    assert_eq!(log.head().await.unwrap().1.n, 1);
}

#[test]
fn key_names_must_be_usable_as_object_keys() {
    let (skey, _) = sumdb::note::generate_key("bad/name").unwrap();
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    assert!(PrivateLog::new(&skey, storage.clone(), None, vec![]).is_err());
    assert!(PrivateLog::new("not a key", storage, None, vec![]).is_err());
}
