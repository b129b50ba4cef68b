//! The checksum database's transparency log (RFC 6962 Merkle trees), as the
//! go command verifies it.
//!
//! Records are hashed as `SHA-256(0x00 ‖ record)`, interior nodes as
//! `SHA-256(0x01 ‖ left ‖ right)`. The log keeps every complete subtree's
//! hash ("stored hashes") in one sequence, indexed by
//! [`stored_hash_index`]; tiles ([`Tile`]) are the slices of that sequence
//! the database serves. A tree head is the text [`format_tree`] writes,
//! signed as a note.
//!
//! Proof and tile arithmetic follows `golang.org/x/mod/sumdb/tlog`, with
//! every "cannot happen" of the Go code turned into an error rather than a
//! panic, and tree sizes bounded by [`MAX_TREE_SIZE`] so that no index
//! computation can overflow.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::gobase64;

mod tile;
pub use tile::{
    hash_from_tile, new_tiles, read_tile_data, tile_for_index, Tile, TileHashReader, TileReader,
};

/// Size of a hash in bytes.
pub const HASH_SIZE: usize = 32;

/// The largest tree size handled. Stored hash indexes of larger trees would
/// not fit an `i64`; no real log comes near it, and a note claiming more is
/// refused as malformed.
pub const MAX_TREE_SIZE: i64 = 1 << 61;

/// A SHA-256 hash in the log.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Hash(pub [u8; HASH_SIZE]);

impl Hash {
    /// Parses the base64 form written by [`struct@Hash`]'s `Display`.
    pub fn parse(s: &str) -> Result<Hash, TlogError> {
        let data = gobase64::decode(s).ok_or(TlogError::MalformedHash)?;
        let bytes: [u8; HASH_SIZE] = data.try_into().map_err(|_| TlogError::MalformedHash)?;
        Ok(Hash(bytes))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&gobase64::encode(&self.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What went wrong in a log computation or while reading log data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlogError {
    /// Arguments out of range (for example a record index beyond the tree).
    #[error("tlog: invalid inputs in {0}")]
    InvalidInput(&'static str),
    /// A proof does not lead to the expected hash.
    #[error("invalid transparency proof")]
    ProofFailed,
    /// A [`HashReader`] returned the wrong number of hashes.
    #[error("tlog: ReadHashes({want} indexes) = {got} hashes")]
    ShortRead {
        /// Hashes asked for.
        want: usize,
        /// Hashes returned.
        got: usize,
    },
    /// Not the base64 of 32 bytes.
    #[error("malformed hash")]
    MalformedHash,
    /// Not a tree head (`go.sum database tree\nN\nhash\n`).
    #[error("malformed tree note")]
    MalformedTree,
    /// Not a lookup record (`id\ntext\n\n...`).
    #[error("malformed record data")]
    MalformedRecord,
    /// Not a tile path.
    #[error("malformed tile path {0:?}")]
    BadTilePath(String),
    /// A tile out of range, or data that does not fit the tile.
    #[error("{0}")]
    BadTile(String),
    /// A hash index outside the tree being read.
    #[error("indexes not in tree")]
    IndexNotInTree,
    /// Downloaded tiles disagree with the signed tree hash or with each
    /// other.
    #[error("downloaded inconsistent tile")]
    InconsistentTile,
    /// A [`TileReader`] that fetches lazily lacks these tiles; fetch them and
    /// ask again.
    #[error("tiles not yet available: {}", .0.iter().map(Tile::path).collect::<Vec<_>>().join(", "))]
    TilesNeeded(Vec<Tile>),
    /// A reader failed for its own reasons.
    #[error("{0}")]
    Read(String),
}

/// The hash of a log record: SHA-256(0x00 ‖ data).
pub fn record_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    Hash(h.finalize().into())
}

/// The hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: Hash, right: Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// The hash of the empty tree: SHA-256 of nothing.
pub fn empty_tree_hash() -> Hash {
    Hash(Sha256::digest([]).into())
}

/// Where the hash of the `n`th subtree at `level` (covering records
/// `n·2^level .. (n+1)·2^level`) sits in the sequence of stored hashes.
///
/// The sequence holds, after each record's hash, the hashes of the
/// subtrees that record completes, lowest level first.
pub fn stored_hash_index(level: u32, n: i64) -> i64 {
    // The last record of the subtree is where its hash gets stored.
    let mut n = n;
    for _ in 0..level {
        n = 2 * n + 1;
    }
    // Hashes stored before record n's own: every subtree of records 0..n.
    let mut i = 0i64;
    let mut m = n;
    while m > 0 {
        i += m;
        m >>= 1;
    }
    i + level as i64
}

/// The inverse of [`stored_hash_index`]: the level and the subtree number
/// at that level.
pub fn split_stored_hash_index(index: i64) -> (u32, i64) {
    // Each record stores at least one hash, so record index/2 comes at or
    // before this index; walk forward to the record that stores it.
    let mut n = index / 2;
    let mut index_n = stored_hash_index(0, n);
    loop {
        let next = index_n + 1 + (n + 1).trailing_zeros() as i64;
        if next > index {
            break;
        }
        n += 1;
        index_n = next;
    }
    let level = (index - index_n) as u32;
    (level, n >> level)
}

/// How many hashes a tree of `n` records stores.
pub fn stored_hash_count(n: i64) -> i64 {
    if n == 0 {
        return 0;
    }
    // The hashes up to record n-1's own, plus the subtrees it completes.
    let mut count = stored_hash_index(0, n - 1) + 1;
    let mut i = (n - 1) as u64;
    while i & 1 != 0 {
        count += 1;
        i >>= 1;
    }
    count
}

/// Reads stored hashes by index.
pub trait HashReader {
    /// The hashes at `indexes`, in the same order.
    fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, TlogError>;
}

impl<F> HashReader for F
where
    F: Fn(&[i64]) -> Result<Vec<Hash>, TlogError>,
{
    fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, TlogError> {
        self(indexes)
    }
}

/// Reads `indexes` and checks the count.
fn read_exact(r: &dyn HashReader, indexes: &[i64]) -> Result<Vec<Hash>, TlogError> {
    let hashes = r.read_hashes(indexes)?;
    if hashes.len() != indexes.len() {
        return Err(TlogError::ShortRead {
            want: indexes.len(),
            got: hashes.len(),
        });
    }
    Ok(hashes)
}

/// The hashes to store when appending record `n` with contents `data` to a
/// log whose earlier stored hashes `r` reads: the record's hash, then those
/// of the subtrees it completes.
pub fn stored_hashes(n: i64, data: &[u8], r: &dyn HashReader) -> Result<Vec<Hash>, TlogError> {
    stored_hashes_for_record_hash(n, record_hash(data), r)
}

/// Like [`stored_hashes`], given the record's hash.
pub fn stored_hashes_for_record_hash(
    n: i64,
    h: Hash,
    r: &dyn HashReader,
) -> Result<Vec<Hash>, TlogError> {
    if !(0..MAX_TREE_SIZE).contains(&n) {
        return Err(TlogError::InvalidInput("StoredHashes"));
    }
    // Record n completes one subtree per trailing one bit of n; each joins
    // the left sibling subtree of the same size, stored earlier.
    let completed = (n + 1).trailing_zeros();
    let indexes: Vec<i64> = (0..completed)
        .rev()
        .map(|level| stored_hash_index(level, (n >> level) - 1))
        .collect();
    let siblings = read_exact(r, &indexes)?;
    let mut hashes = vec![h];
    let mut h = h;
    for sibling in siblings.iter().rev() {
        h = node_hash(*sibling, h);
        hashes.push(h);
    }
    Ok(hashes)
}

/// The largest power of two below `n` (for `n > 1`) and its log2.
fn maxpow2(n: i64) -> (i64, u32) {
    let mut l = 0u32;
    while (1i64 << (l + 1)) < n {
        l += 1;
    }
    (1 << l, l)
}

fn check_tree_size(n: i64, what: &'static str) -> Result<(), TlogError> {
    if (0..=MAX_TREE_SIZE).contains(&n) {
        Ok(())
    } else {
        Err(TlogError::InvalidInput(what))
    }
}

/// The stored hash indexes of the complete subtrees that make up records
/// `lo..hi`, largest first, appended to `need`.
fn sub_tree_index(mut lo: i64, hi: i64, need: &mut Vec<i64>) {
    while lo < hi {
        let (k, level) = maxpow2(hi - lo + 1);
        need.push(stored_hash_index(level, lo >> level));
        lo += k;
    }
}

/// The hash of records `lo..hi` from the subtree hashes
/// [`sub_tree_index`] listed, taken from the front of `hashes`.
fn sub_tree_hash(mut lo: i64, hi: i64, hashes: &[Hash]) -> Result<(Hash, &[Hash]), TlogError> {
    let mut count = 0usize;
    while lo < hi {
        let (k, _) = maxpow2(hi - lo + 1);
        count += 1;
        lo += k;
    }
    if count == 0 || hashes.len() < count {
        return Err(TlogError::InvalidInput("subTreeHash"));
    }
    let mut h = hashes[count - 1];
    for left in hashes[..count - 1].iter().rev() {
        h = node_hash(*left, h);
    }
    Ok((h, &hashes[count..]))
}

/// The hash of the tree of the first `n` records.
pub fn tree_hash(n: i64, r: &dyn HashReader) -> Result<Hash, TlogError> {
    check_tree_size(n, "TreeHash")?;
    if n == 0 {
        return Ok(empty_tree_hash());
    }
    let mut indexes = Vec::new();
    sub_tree_index(0, n, &mut indexes);
    let hashes = read_exact(r, &indexes)?;
    let (h, rest) = sub_tree_hash(0, n, &hashes)?;
    debug_assert!(rest.is_empty());
    Ok(h)
}

/// A proof that a record is in a tree: the sibling hashes from the record
/// up to the root.
pub type RecordProof = Vec<Hash>;

/// A proof that a tree is a prefix of a larger one.
pub type TreeProof = Vec<Hash>;

/// Proves that record `n` is in the tree of size `t`.
pub fn prove_record(t: i64, n: i64, r: &dyn HashReader) -> Result<RecordProof, TlogError> {
    if t < 0 || n < 0 || n >= t || t > MAX_TREE_SIZE {
        return Err(TlogError::InvalidInput("ProveRecord"));
    }
    let mut indexes = Vec::new();
    leaf_proof_index(0, t, n, &mut indexes);
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = read_exact(r, &indexes)?;
    let (proof, rest) = leaf_proof(0, t, n, &hashes)?;
    debug_assert!(rest.is_empty());
    Ok(proof)
}

fn leaf_proof_index(lo: i64, hi: i64, n: i64, need: &mut Vec<i64>) {
    if lo + 1 == hi {
        return;
    }
    let (k, _) = maxpow2(hi - lo);
    if n < lo + k {
        leaf_proof_index(lo, lo + k, n, need);
        sub_tree_index(lo + k, hi, need);
    } else {
        sub_tree_index(lo, lo + k, need);
        leaf_proof_index(lo + k, hi, n, need);
    }
}

fn leaf_proof(
    lo: i64,
    hi: i64,
    n: i64,
    hashes: &[Hash],
) -> Result<(RecordProof, &[Hash]), TlogError> {
    if lo + 1 == hi {
        return Ok((Vec::new(), hashes));
    }
    let (k, _) = maxpow2(hi - lo);
    let (mut proof, sibling, rest) = if n < lo + k {
        let (p, rest) = leaf_proof(lo, lo + k, n, hashes)?;
        let (th, rest) = sub_tree_hash(lo + k, hi, rest)?;
        (p, th, rest)
    } else {
        let (th, rest) = sub_tree_hash(lo, lo + k, hashes)?;
        let (p, rest) = leaf_proof(lo + k, hi, n, rest)?;
        (p, th, rest)
    };
    proof.push(sibling);
    Ok((proof, rest))
}

/// Checks that `proof` shows record `n` with hash `h` in the tree of size
/// `t` and hash `th`.
pub fn check_record(proof: &[Hash], t: i64, th: Hash, n: i64, h: Hash) -> Result<(), TlogError> {
    if t < 0 || n < 0 || n >= t || t > MAX_TREE_SIZE {
        return Err(TlogError::InvalidInput("CheckRecord"));
    }
    if run_record_proof(proof, 0, t, n, h)? == th {
        Ok(())
    } else {
        Err(TlogError::ProofFailed)
    }
}

fn run_record_proof(p: &[Hash], lo: i64, hi: i64, n: i64, leaf: Hash) -> Result<Hash, TlogError> {
    if lo + 1 == hi {
        return if p.is_empty() {
            Ok(leaf)
        } else {
            Err(TlogError::ProofFailed)
        };
    }
    let Some((last, rest)) = p.split_last() else {
        return Err(TlogError::ProofFailed);
    };
    let (k, _) = maxpow2(hi - lo);
    if n < lo + k {
        let th = run_record_proof(rest, lo, lo + k, n, leaf)?;
        Ok(node_hash(th, *last))
    } else {
        let th = run_record_proof(rest, lo + k, hi, n, leaf)?;
        Ok(node_hash(*last, th))
    }
}

/// Proves that the tree of size `n` is a prefix of the tree of size `t`.
pub fn prove_tree(t: i64, n: i64, r: &dyn HashReader) -> Result<TreeProof, TlogError> {
    if t < 1 || n < 1 || n > t || t > MAX_TREE_SIZE {
        return Err(TlogError::InvalidInput("ProveTree"));
    }
    let mut indexes = Vec::new();
    tree_proof_index(0, t, n, &mut indexes);
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = read_exact(r, &indexes)?;
    let (proof, rest) = tree_proof(0, t, n, &hashes)?;
    debug_assert!(rest.is_empty());
    Ok(proof)
}

fn tree_proof_index(lo: i64, hi: i64, n: i64, need: &mut Vec<i64>) {
    if n == hi {
        if lo != 0 {
            sub_tree_index(lo, hi, need);
        }
        return;
    }
    let (k, _) = maxpow2(hi - lo);
    if n <= lo + k {
        tree_proof_index(lo, lo + k, n, need);
        sub_tree_index(lo + k, hi, need);
    } else {
        sub_tree_index(lo, lo + k, need);
        tree_proof_index(lo + k, hi, n, need);
    }
}

fn tree_proof(
    lo: i64,
    hi: i64,
    n: i64,
    hashes: &[Hash],
) -> Result<(TreeProof, &[Hash]), TlogError> {
    if n == hi {
        if lo == 0 {
            return Ok((Vec::new(), hashes));
        }
        let (th, rest) = sub_tree_hash(lo, hi, hashes)?;
        return Ok((vec![th], rest));
    }
    let (k, _) = maxpow2(hi - lo);
    let (mut proof, th, rest) = if n <= lo + k {
        let (p, rest) = tree_proof(lo, lo + k, n, hashes)?;
        let (th, rest) = sub_tree_hash(lo + k, hi, rest)?;
        (p, th, rest)
    } else {
        let (th, rest) = sub_tree_hash(lo, lo + k, hashes)?;
        let (p, rest) = tree_proof(lo + k, hi, n, rest)?;
        (p, th, rest)
    };
    proof.push(th);
    Ok((proof, rest))
}

/// Checks that `proof` shows the tree of size `n` and hash `h` to be a
/// prefix of the tree of size `t` and hash `th`.
pub fn check_tree(proof: &[Hash], t: i64, th: Hash, n: i64, h: Hash) -> Result<(), TlogError> {
    if t < 1 || n < 1 || n > t || t > MAX_TREE_SIZE {
        return Err(TlogError::InvalidInput("CheckTree"));
    }
    let (h2, th2) = run_tree_proof(proof, 0, t, n, h)?;
    if th2 == th && h2 == h {
        Ok(())
    } else {
        Err(TlogError::ProofFailed)
    }
}

/// Returns the old tree's hash as the proof rebuilds it and the new tree's
/// hash.
fn run_tree_proof(
    p: &[Hash],
    lo: i64,
    hi: i64,
    n: i64,
    old: Hash,
) -> Result<(Hash, Hash), TlogError> {
    if n == hi {
        if lo == 0 {
            return if p.is_empty() {
                Ok((old, old))
            } else {
                Err(TlogError::ProofFailed)
            };
        }
        return match p {
            [only] => Ok((*only, *only)),
            _ => Err(TlogError::ProofFailed),
        };
    }
    let Some((last, rest)) = p.split_last() else {
        return Err(TlogError::ProofFailed);
    };
    let (k, _) = maxpow2(hi - lo);
    if n <= lo + k {
        let (oh, th) = run_tree_proof(rest, lo, lo + k, n, old)?;
        Ok((oh, node_hash(th, *last)))
    } else {
        let (oh, th) = run_tree_proof(rest, lo + k, hi, n, old)?;
        Ok((node_hash(*last, oh), node_hash(*last, th)))
    }
}

/// A tree head: the number of records and the root hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tree {
    /// Number of records.
    pub n: i64,
    /// Root hash.
    pub hash: Hash,
}

const TREE_PREFIX: &str = "go.sum database tree\n";

/// The text of a tree head note: `go.sum database tree\nN\nhash\n`.
pub fn format_tree(tree: Tree) -> String {
    format!("{TREE_PREFIX}{}\n{}\n", tree.n, tree.hash)
}

/// Parses a tree head note's text. Lines after the hash are allowed and
/// ignored, as by the go command.
pub fn parse_tree(text: &[u8]) -> Result<Tree, TlogError> {
    if !text.starts_with(TREE_PREFIX.as_bytes())
        || text.iter().filter(|&&b| b == b'\n').count() < 3
        || text.len() > 1_000_000
    {
        return Err(TlogError::MalformedTree);
    }
    let mut lines = text.splitn(4, |&b| b == b'\n');
    lines.next();
    let (Some(count), Some(hash)) = (lines.next(), lines.next()) else {
        return Err(TlogError::MalformedTree);
    };
    let (Ok(count), Ok(hash)) = (std::str::from_utf8(count), std::str::from_utf8(hash)) else {
        return Err(TlogError::MalformedTree);
    };
    // Decimal without sign or leading zeros: the count must format back to
    // the same text.
    let n: i64 = count.parse().map_err(|_| TlogError::MalformedTree)?;
    if n < 0 || n.to_string() != count || n > MAX_TREE_SIZE {
        return Err(TlogError::MalformedTree);
    }
    let hash = Hash::parse(hash).map_err(|_| TlogError::MalformedTree)?;
    Ok(Tree { n, hash })
}

#[cfg(test)]
mod tests;
