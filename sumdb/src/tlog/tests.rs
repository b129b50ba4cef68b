use std::cell::RefCell;
use std::collections::HashMap;

use super::*;

/// RFC 6962's Merkle tree hash, computed directly from the records.
fn mth(records: &[Vec<u8>]) -> Hash {
    match records.len() {
        0 => empty_tree_hash(),
        1 => record_hash(&records[0]),
        n => {
            let (k, _) = maxpow2(n as i64);
            let k = k as usize;
            node_hash(mth(&records[..k]), mth(&records[k..]))
        }
    }
}

/// A log kept as its stored hash sequence, built with [`stored_hashes`].
struct Log {
    records: Vec<Vec<u8>>,
    hashes: Vec<Hash>,
}

impl Log {
    fn new(n: usize) -> Log {
        let mut log = Log {
            records: Vec::new(),
            hashes: Vec::new(),
        };
        for i in 0..n {
            log.append(format!("record {i}\n").into_bytes());
        }
        log
    }

    fn append(&mut self, data: Vec<u8>) {
        let n = self.records.len() as i64;
        let hashes = stored_hashes(n, &data, &|idx: &[i64]| self.read(idx)).unwrap();
        assert_eq!(stored_hash_index(0, n), self.hashes.len() as i64);
        self.hashes.extend(hashes);
        self.records.push(data);
        assert_eq!(stored_hash_count(n + 1), self.hashes.len() as i64);
    }

    fn read(&self, indexes: &[i64]) -> Result<Vec<Hash>, TlogError> {
        indexes
            .iter()
            .map(|&i| {
                self.hashes
                    .get(i as usize)
                    .copied()
                    .ok_or(TlogError::Read(format!("no hash {i}")))
            })
            .collect()
    }

    fn reader(&self) -> impl HashReader + '_ {
        move |idx: &[i64]| self.read(idx)
    }

    fn tree(&self, n: usize) -> Tree {
        Tree {
            n: n as i64,
            hash: tree_hash(n as i64, &self.reader()).unwrap(),
        }
    }
}

#[test]
fn hashes_are_rfc6962() {
    // SHA-256 of the empty string, and of 0x00 for an empty record.
    assert_eq!(
        empty_tree_hash().to_string(),
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
    assert_eq!(
        record_hash(b"").to_string(),
        "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0="
    );
    let log = Log::new(70);
    for n in 0..=70 {
        assert_eq!(log.tree(n).hash, mth(&log.records[..n]), "n={n}");
    }
}

#[test]
fn stored_hash_indexes() {
    // Record hashes and subtree hashes interleave: 0 1 (0-1) 2 3 (2-3) (0-3) 4 ...
    assert_eq!(stored_hash_index(0, 0), 0);
    assert_eq!(stored_hash_index(0, 1), 1);
    assert_eq!(stored_hash_index(1, 0), 2);
    assert_eq!(stored_hash_index(0, 2), 3);
    assert_eq!(stored_hash_index(0, 3), 4);
    assert_eq!(stored_hash_index(1, 1), 5);
    assert_eq!(stored_hash_index(2, 0), 6);
    assert_eq!(stored_hash_index(0, 4), 7);
    let mut index = 0i64;
    for n in 0..2000i64 {
        assert_eq!(stored_hash_index(0, n), index);
        assert_eq!(split_stored_hash_index(index), (0, n));
        index += 1;
        let mut level = 0;
        while (n + 1) & ((1i64 << (level + 1)) - 1) == 0 {
            level += 1;
            let sub = n >> level;
            assert_eq!(
                stored_hash_index(level, sub),
                index,
                "level {level} n {sub}"
            );
            assert_eq!(split_stored_hash_index(index), (level, sub));
            index += 1;
        }
        assert_eq!(stored_hash_count(n + 1), index);
    }
    // Near the largest supported tree nothing overflows.
    let big = stored_hash_index(0, MAX_TREE_SIZE - 1);
    assert_eq!(split_stored_hash_index(big), (0, MAX_TREE_SIZE - 1));
}

#[test]
fn record_proofs() {
    let log = Log::new(40);
    let r = log.reader();
    for t in 1..=40usize {
        let tree = log.tree(t);
        for n in 0..t {
            let p = prove_record(t as i64, n as i64, &r).unwrap();
            let h = record_hash(&log.records[n]);
            check_record(&p, t as i64, tree.hash, n as i64, h).unwrap();
            // Another record's hash, a wrong tree, a shortened or a longer
            // proof: all refused.
            let other = record_hash(b"other\n");
            assert_eq!(
                check_record(&p, t as i64, tree.hash, n as i64, other),
                Err(TlogError::ProofFailed)
            );
            if t > 1 {
                let wrong = log.tree(t - 1).hash;
                assert!(check_record(&p, t as i64, wrong, n as i64, h).is_err());
                assert!(check_record(&p[..p.len() - 1], t as i64, tree.hash, n as i64, h).is_err());
            }
            let mut longer = p.clone();
            longer.push(h);
            assert!(check_record(&longer, t as i64, tree.hash, n as i64, h).is_err());
        }
    }
    assert!(prove_record(3, 3, &r).is_err());
    assert!(prove_record(3, -1, &r).is_err());
    assert!(check_record(&[], 0, Hash::default(), 0, Hash::default()).is_err());
}

#[test]
fn tree_proofs() {
    let log = Log::new(40);
    let r = log.reader();
    for t in 1..=40usize {
        let newer = log.tree(t);
        for n in 1..=t {
            let older = log.tree(n);
            let p = prove_tree(t as i64, n as i64, &r).unwrap();
            check_tree(&p, t as i64, newer.hash, n as i64, older.hash).unwrap();
            // A different old tree of the same size (a fork) fails.
            let forged = node_hash(older.hash, older.hash);
            assert_eq!(
                check_tree(&p, t as i64, newer.hash, n as i64, forged),
                Err(TlogError::ProofFailed)
            );
            if n < t {
                let bad = node_hash(newer.hash, newer.hash);
                assert!(check_tree(&p, t as i64, bad, n as i64, older.hash).is_err());
            }
        }
    }
    assert!(prove_tree(3, 4, &r).is_err());
    assert!(prove_tree(3, 0, &r).is_err());
}

#[test]
fn tree_notes() {
    let tree = Tree {
        n: 1234,
        hash: record_hash(b"x"),
    };
    let text = format_tree(tree);
    assert_eq!(text, format!("go.sum database tree\n1234\n{}\n", tree.hash));
    assert_eq!(parse_tree(text.as_bytes()).unwrap(), tree);
    // Extra lines are allowed.
    assert_eq!(
        parse_tree(format!("{text}extra\n").as_bytes()).unwrap(),
        tree
    );
    let h = tree.hash.to_string();
    for bad in [
        String::new(),
        format!("go.sum database tree\n1234\n{h}"),
        format!("go.sum database tree\n01234\n{h}\n"),
        format!("go.sum database tree\n+1234\n{h}\n"),
        format!("go.sum database tree\n-1\n{h}\n"),
        format!("go.sum database tree\n1234\n{}\n", &h[..40]),
        format!("go.sum database tre\n1234\n{h}\n"),
        format!("go.sum database tree\n{}\n{h}\n", MAX_TREE_SIZE + 1),
    ] {
        assert_eq!(
            parse_tree(bad.as_bytes()),
            Err(TlogError::MalformedTree),
            "{bad:?}"
        );
    }
    assert!(Hash::parse("AAAA").is_err());
}

#[test]
fn tile_paths() {
    let cases = [
        (
            Tile {
                height: 8,
                level: 0,
                n: 0,
                width: 256,
            },
            "tile/8/0/000",
        ),
        (
            Tile {
                height: 8,
                level: 0,
                n: 1,
                width: 7,
            },
            "tile/8/0/001.p/7",
        ),
        (
            Tile {
                height: 8,
                level: 1,
                n: 1234567,
                width: 256,
            },
            "tile/8/1/x001/x234/567",
        ),
        (
            Tile {
                height: 8,
                level: 2,
                n: 1000,
                width: 3,
            },
            "tile/8/2/x001/000.p/3",
        ),
        (
            Tile {
                height: 8,
                level: -1,
                n: 5,
                width: 256,
            },
            "tile/8/data/005",
        ),
        (
            Tile {
                height: 8,
                level: -1,
                n: 5,
                width: 9,
            },
            "tile/8/data/005.p/9",
        ),
        (
            Tile {
                height: 3,
                level: 5,
                n: 123456078,
                width: 8,
            },
            "tile/3/5/x123/x456/078",
        ),
    ];
    for (tile, path) in cases {
        assert_eq!(tile.path(), path);
        assert_eq!(Tile::parse_path(path).unwrap(), tile, "{path}");
    }
    for bad in [
        "tile/8/0",
        "tiles/8/0/000",
        "tile/0/0/000",
        "tile/31/0/000",
        "tile/8/0/0",
        "tile/8/0/0000",
        "tile/8/0/x000/001",
        "tile/8/0/001.p/256",
        "tile/8/0/001.p/0",
        "tile/8/0/001.p/07",
        "tile/8/0/001.p",
        "tile/8/00/001",
        "tile/8/-1/001",
        "tile/8/64/001",
        "tile/8/0/x1000/001",
        "tile/08/0/001",
        "tile/8/0/+01",
        "tile/8/0/x999/x999/x999/x999/x999/x999/x999/999",
    ] {
        assert!(Tile::parse_path(bad).is_err(), "{bad}");
    }
}

#[test]
fn tiles_for_indexes() {
    // Height 2: record hashes 0..4 are tile 0 of level 0.
    let t = tile_for_index(2, stored_hash_index(0, 3));
    assert_eq!(
        t,
        Tile {
            height: 2,
            level: 0,
            n: 0,
            width: 4
        }
    );
    // The level-1 hash of records 0-1 is inside that tile (width 2).
    let t = tile_for_index(2, stored_hash_index(1, 0));
    assert_eq!(
        t,
        Tile {
            height: 2,
            level: 0,
            n: 0,
            width: 2
        }
    );
    // The level-2 hash of records 0-3 is the first hash of level-1 tile 0.
    let t = tile_for_index(2, stored_hash_index(2, 0));
    assert_eq!(
        t,
        Tile {
            height: 2,
            level: 1,
            n: 0,
            width: 1
        }
    );
    let t = tile_for_index(8, stored_hash_index(0, 1000));
    assert_eq!(
        t,
        Tile {
            height: 8,
            level: 0,
            n: 3,
            width: 1000 - 768 + 1
        }
    );
}

/// Tiles served from a log, with the tiles read and saved recorded.
struct LogTiles<'a> {
    log: &'a Log,
    height: u32,
    tamper: Option<Tile>,
    saved: RefCell<Vec<Tile>>,
}

impl TileReader for LogTiles<'_> {
    fn height(&self) -> u32 {
        self.height
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
        tiles
            .iter()
            .map(|t| {
                let mut data = read_tile_data(t, &self.log.reader())?;
                if self.tamper == Some(*t) {
                    data[0] ^= 1;
                }
                Ok(data)
            })
            .collect()
    }

    fn save_tiles(&self, tiles: &[Tile], _data: &[Vec<u8>]) {
        self.saved.borrow_mut().extend_from_slice(tiles);
    }
}

#[test]
fn tile_hash_reader_reads_authentic_hashes() {
    let log = Log::new(300);
    for height in [1, 2, 3, 8] {
        for n in [1usize, 2, 5, 64, 255, 256, 257, 300] {
            let tree = log.tree(n);
            let tiles = LogTiles {
                log: &log,
                height,
                tamper: None,
                saved: RefCell::new(Vec::new()),
            };
            let thr = TileHashReader::new(tree, &tiles);
            // Every stored hash of the tree reads back right.
            let all: Vec<i64> = (0..stored_hash_index(0, n as i64)).collect();
            for chunk in all.chunks(7) {
                let got = thr.read_hashes(chunk).unwrap();
                assert_eq!(got, log.read(chunk).unwrap(), "h={height} n={n}");
            }
            // Tree hashes and proofs through tiles agree.
            assert_eq!(tree_hash(n as i64, &thr).unwrap(), tree.hash);
            for old in [1, n / 2, n] {
                if old >= 1 {
                    let p = prove_tree(n as i64, old as i64, &thr).unwrap();
                    check_tree(&p, n as i64, tree.hash, old as i64, log.tree(old).hash).unwrap();
                }
            }
            assert!(!tiles.saved.borrow().is_empty());
            // Beyond the tree: refused.
            assert_eq!(
                thr.read_hashes(&[stored_hash_index(0, n as i64)]),
                Err(TlogError::IndexNotInTree)
            );
        }
    }
}

#[test]
fn tile_hash_reader_refuses_tampered_tiles() {
    let log = Log::new(300);
    let tree = log.tree(300);
    let want = stored_hash_index(0, 17);
    // Every tile the read touches, tampered in turn, is caught.
    let honest = LogTiles {
        log: &log,
        height: 2,
        tamper: None,
        saved: RefCell::new(Vec::new()),
    };
    TileHashReader::new(tree, &honest)
        .read_hashes(&[want])
        .unwrap();
    let touched = honest.saved.borrow().clone();
    assert!(touched.len() > 2);
    for t in touched {
        let tiles = LogTiles {
            log: &log,
            height: 2,
            tamper: Some(t),
            saved: RefCell::new(Vec::new()),
        };
        assert_eq!(
            TileHashReader::new(tree, &tiles).read_hashes(&[want]),
            Err(TlogError::InconsistentTile),
            "{t:?}"
        );
        assert!(
            tiles.saved.borrow().is_empty(),
            "nothing unverified is saved"
        );
    }
    // Tiles of another log of the same size do not match this tree head.
    let mut other = Log::new(299);
    other.append(b"forked\n".to_vec());
    let tiles = LogTiles {
        log: &other,
        height: 8,
        tamper: None,
        saved: RefCell::new(Vec::new()),
    };
    assert_eq!(
        TileHashReader::new(tree, &tiles).read_hashes(&[want]),
        Err(TlogError::InconsistentTile)
    );
}

/// A lazy reader that knows only what it was given, and reports the rest.
struct Lazy<'a> {
    log: &'a Log,
    have: RefCell<HashMap<Tile, Vec<u8>>>,
}

impl TileReader for Lazy<'_> {
    fn height(&self) -> u32 {
        8
    }
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
        let have = self.have.borrow();
        let missing: Vec<Tile> = tiles
            .iter()
            .filter(|t| !have.contains_key(t))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(TlogError::TilesNeeded(missing));
        }
        Ok(tiles.iter().map(|t| have[t].clone()).collect())
    }
    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

#[test]
fn lazy_readers_learn_what_to_fetch() {
    let log = Log::new(1000);
    let tree = log.tree(1000);
    let lazy = Lazy {
        log: &log,
        have: RefCell::new(HashMap::new()),
    };
    let thr = TileHashReader::new(tree, &lazy);
    let want = [stored_hash_index(0, 3), stored_hash_index(0, 999)];
    let mut rounds = 0;
    let got = loop {
        match thr.read_hashes(&want) {
            Ok(h) => break h,
            Err(TlogError::TilesNeeded(tiles)) => {
                for t in tiles {
                    let data = read_tile_data(&t, &lazy.log.reader()).unwrap();
                    lazy.have.borrow_mut().insert(t, data);
                }
            }
            Err(e) => panic!("{e}"),
        }
        rounds += 1;
        assert!(rounds < 3);
    };
    assert_eq!(rounds, 1);
    assert_eq!(got, log.read(&want).unwrap());
}

#[test]
fn new_tiles_lists_every_changed_tile() {
    let log = Log::new(600);
    for (old, new) in [
        (0i64, 1i64),
        (0, 256),
        (255, 257),
        (256, 512),
        (1, 600),
        (300, 301),
    ] {
        let h = 2u32;
        let mut want = Vec::new();
        // Brute force: tiles of the new tree whose data differs from (or is
        // absent in) the old tree.
        for level in 0..10u32 {
            let new_n = new >> (h * level);
            let old_n = old >> (h * level);
            for n in 0..=(new_n >> h) {
                let w_new = (new_n - (n << h)).clamp(0, 1 << h);
                let w_old = (old_n - (n << h)).clamp(0, 1 << h);
                if w_new > 0 && w_new != w_old {
                    want.push(Tile {
                        height: h,
                        level: level as i32,
                        n,
                        width: w_new as u32,
                    });
                }
            }
        }
        let mut got = new_tiles(h, old, new);
        got.sort();
        want.sort();
        assert_eq!(got, want, "{old}->{new}");
        // And their data reads from the stored hashes.
        for t in &got {
            let data = read_tile_data(t, &log.reader()).unwrap();
            assert_eq!(data.len(), t.width as usize * HASH_SIZE);
        }
    }
}

#[test]
fn hash_from_tile_checks_its_inputs() {
    let log = Log::new(20);
    let t = Tile {
        height: 2,
        level: 0,
        n: 1,
        width: 4,
    };
    let data = read_tile_data(&t, &log.reader()).unwrap();
    let idx = stored_hash_index(0, 5);
    assert_eq!(
        hash_from_tile(&t, &data, idx).unwrap(),
        log.read(&[idx]).unwrap()[0]
    );
    // The level-1 hash of records 4-5 is derived from the tile too.
    let idx = stored_hash_index(1, 2);
    assert_eq!(
        hash_from_tile(&t, &data, idx).unwrap(),
        log.read(&[idx]).unwrap()[0]
    );
    assert!(hash_from_tile(&t, &data[..64], stored_hash_index(0, 5)).is_err());
    assert!(hash_from_tile(&t, &data, stored_hash_index(0, 9)).is_err());
    assert!(hash_from_tile(&t, &data, -1).is_err());
    assert!(hash_from_tile(&t, &data, i64::MAX).is_err());
    let bad = Tile { height: 0, ..t };
    assert!(hash_from_tile(&bad, &data, 0).is_err());
}
