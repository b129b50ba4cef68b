//! Tiles: the slices of the stored hash sequence a checksum database serves.
//!
//! A tile of height `H` at level `L` holds up to `2^H` consecutive hashes
//! of tree level `L·H`; tile `N` starts at subtree `N·2^H` of that level. A
//! partial tile (width `W < 2^H`) is served while the log has not filled
//! it. Level `-1` names data tiles, which hold the records themselves.
//!
//! Paths are `tile/H/L/NNN` with `N` written in base 1000 as
//! `x001/x234/567`, and `.p/W` appended for partial tiles.

use std::collections::HashMap;
use std::fmt;

use super::{
    node_hash, split_stored_hash_index, stored_hash_index, sub_tree_index, Hash, HashReader,
    TlogError, Tree, HASH_SIZE, MAX_TREE_SIZE,
};

/// Largest tile height the format allows.
const MAX_HEIGHT: u32 = 30;

/// One tile of the log.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    /// Height: the tile holds up to `2^height` hashes (1 ≤ height ≤ 30).
    pub height: u32,
    /// Level in the tiling (tree level `level·height`), or -1 for a data
    /// tile.
    pub level: i32,
    /// Number of the tile within its level.
    pub n: i64,
    /// How many hashes (or records) it holds, `2^height` when complete.
    pub width: u32,
}

impl fmt::Debug for Tile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

impl Tile {
    /// Whether the tile holds all `2^height` entries.
    pub fn is_complete(&self) -> bool {
        self.width == 1 << self.height
    }

    /// The same tile at full width.
    pub fn complete(&self) -> Tile {
        Tile {
            width: 1 << self.height,
            ..*self
        }
    }

    /// The tile's path, `tile/H/L/NNN[.p/W]`.
    pub fn path(&self) -> String {
        let mut n = self.n;
        let mut digits = format!("{:03}", n % 1000);
        while n >= 1000 {
            n /= 1000;
            digits = format!("x{:03}/{digits}", n % 1000);
        }
        let partial = if self.is_complete() {
            String::new()
        } else {
            format!(".p/{}", self.width)
        };
        let level = if self.level == -1 {
            "data".to_string()
        } else {
            self.level.to_string()
        };
        format!("tile/{}/{level}/{digits}{partial}", self.height)
    }

    /// Parses a tile path as [`Tile::path`] writes it; any other spelling of
    /// the same tile is refused.
    pub fn parse_path(path: &str) -> Result<Tile, TlogError> {
        let bad = || TlogError::BadTilePath(path.to_string());
        let mut fields: Vec<&str> = path.split('/').collect();
        if fields.len() < 4 || fields[0] != "tile" {
            return Err(bad());
        }
        let height = parse_small(fields[1]).ok_or_else(bad)?;
        let is_data = fields[2] == "data";
        let level = if is_data {
            0
        } else {
            parse_small(fields[2]).ok_or_else(bad)?
        };
        if !(1..=MAX_HEIGHT as i64).contains(&height) || level > 63 {
            return Err(bad());
        }
        let height = height as u32;
        let mut width: u32 = 1 << height;
        let second_last = fields[fields.len() - 2];
        if let Some(stripped) = second_last.strip_suffix(".p") {
            let w = parse_small(fields[fields.len() - 1]).ok_or_else(bad)?;
            if w <= 0 || w >= width as i64 {
                return Err(bad());
            }
            width = w as u32;
            let at = fields.len() - 2;
            fields[at] = stripped;
            fields.pop();
        }
        let mut n: i64 = 0;
        for part in &fields[3..] {
            let part = part.strip_prefix('x').unwrap_or(part);
            let digit = parse_small(part).filter(|d| *d < 1000).ok_or_else(bad)?;
            n = n
                .checked_mul(1000)
                .and_then(|n| n.checked_add(digit))
                .ok_or_else(bad)?;
        }
        let tile = Tile {
            height,
            level: if is_data { -1 } else { level as i32 },
            n,
            width,
        };
        if tile.path() != path {
            return Err(bad());
        }
        Ok(tile)
    }

    /// The first stored hash level and the subtree range this (hash) tile
    /// covers, checked against overflow.
    fn start(&self) -> Result<i64, TlogError> {
        self.n
            .checked_mul(1 << self.height)
            .filter(|s| *s < MAX_TREE_SIZE)
            .ok_or_else(|| TlogError::BadTile(format!("invalid tile {}", self.path())))
    }
}

/// A non-negative decimal of at most 18 digits (Go's `Atoi`, which the path
/// check then holds to the canonical spelling); `None` otherwise.
fn parse_small(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The tile of height `height` that holds stored hash `index`.
pub fn tile_for_index(height: u32, index: i64) -> Tile {
    tile_and_range_for_index(height, index).0
}

/// The tile holding `index`, and the byte range within that tile's data
/// whose hashes combine into it (one hash, or the run of lower hashes a
/// higher-level hash inside the tile is built from).
fn tile_and_range_for_index(height: u32, index: i64) -> (Tile, usize, usize) {
    let (level, n) = split_stored_hash_index(index);
    let tile_level = level / height;
    let level_in_tile = level - tile_level * height;
    let tile_n = (n << level_in_tile) >> height;
    let n_in_tile = n - ((tile_n << height) >> level_in_tile);
    let tile = Tile {
        height,
        level: tile_level as i32,
        n: tile_n,
        width: ((n_in_tile + 1) << level_in_tile) as u32,
    };
    let start = (n_in_tile << level_in_tile) as usize * HASH_SIZE;
    let end = ((n_in_tile + 1) << level_in_tile) as usize * HASH_SIZE;
    (tile, start, end)
}

/// The stored hash `index` from tile `tile` with contents `data`.
pub fn hash_from_tile(tile: &Tile, data: &[u8], index: i64) -> Result<Hash, TlogError> {
    if tile.height < 1
        || tile.height > MAX_HEIGHT
        || tile.level < 0
        || tile.level >= 64
        || tile.width < 1
        || tile.width > 1 << tile.height
    {
        return Err(TlogError::BadTile(format!("invalid tile {}", tile.path())));
    }
    if data.len() < tile.width as usize * HASH_SIZE {
        return Err(TlogError::BadTile(format!(
            "data len {} too short for tile {}",
            data.len(),
            tile.path()
        )));
    }
    if !(0..stored_hash_index(0, MAX_TREE_SIZE)).contains(&index) {
        return Err(TlogError::IndexNotInTree);
    }
    let (actual, start, end) = tile_and_range_for_index(tile.height, index);
    if tile.level != actual.level || tile.n != actual.n || tile.width < actual.width {
        return Err(TlogError::BadTile(format!(
            "index {index} is in {} not {}",
            actual.path(),
            tile.path()
        )));
    }
    Ok(tile_hash(&data[start..end]))
}

/// The hash of a run of `2^k` consecutive hashes of one level.
fn tile_hash(data: &[u8]) -> Hash {
    if data.len() == HASH_SIZE {
        let mut h = Hash::default();
        h.0.copy_from_slice(data);
        return h;
    }
    let half = data.len() / 2;
    node_hash(tile_hash(&data[..half]), tile_hash(&data[half..]))
}

/// The tiles (complete and partial, at every level) that change when the
/// log grows from `old_size` to `new_size` records.
pub fn new_tiles(height: u32, old_size: i64, new_size: i64) -> Vec<Tile> {
    let mut tiles = Vec::new();
    let mut level = 0u32;
    while level * height < 63 && new_size >> (height * level) > 0 {
        let old_n = old_size >> (height * level);
        let new_n = new_size >> (height * level);
        if old_n != new_n {
            for n in (old_n >> height)..(new_n >> height) {
                tiles.push(Tile {
                    height,
                    level: level as i32,
                    n,
                    width: 1 << height,
                });
            }
            let n = new_n >> height;
            let width = new_n - (n << height);
            if width > 0 {
                tiles.push(Tile {
                    height,
                    level: level as i32,
                    n,
                    width: width as u32,
                });
            }
        }
        level += 1;
    }
    tiles
}

/// The contents of hash tile `tile`, read from the stored hashes.
pub fn read_tile_data(tile: &Tile, r: &dyn HashReader) -> Result<Vec<u8>, TlogError> {
    if tile.level < 0 || tile.height < 1 || tile.height > MAX_HEIGHT {
        return Err(TlogError::BadTile(format!("invalid tile {}", tile.path())));
    }
    let start = tile.start()?;
    let level = tile.height * tile.level as u32;
    let indexes: Vec<i64> = (0..tile.width as i64)
        .map(|i| stored_hash_index(level, start + i))
        .collect();
    let hashes = super::read_exact(r, &indexes)?;
    Ok(hashes.iter().flat_map(|h| h.0).collect())
}

/// Reads tiles, for [`TileHashReader`].
pub trait TileReader {
    /// The tile height this reader serves.
    fn height(&self) -> u32;

    /// The data of each tile, in order. A reader that fetches lazily may
    /// answer [`TlogError::TilesNeeded`] listing the tiles it lacks.
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError>;

    /// Called with tiles whose contents have been checked against the
    /// signed tree hash, so they can be cached.
    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]);
}

/// A [`HashReader`] for the tree `tree` that reads tiles and checks them
/// against the tree's hash before trusting any hash in them.
pub struct TileHashReader<'a, R: TileReader + ?Sized> {
    tree: Tree,
    reader: &'a R,
}

impl<'a, R: TileReader + ?Sized> TileHashReader<'a, R> {
    /// Reads hashes of `tree` through `reader`.
    pub fn new(tree: Tree, reader: &'a R) -> Self {
        TileHashReader { tree, reader }
    }
}

/// The ancestor `k` tile levels above `tile` in a tree of `n` records,
/// trimmed to the width the tree gives it; `None` when the tree does not
/// reach it.
fn tile_parent(tile: Tile, k: u32, n: i64) -> Option<Tile> {
    let mut t = tile;
    t.level += k as i32;
    let shift = k * t.height;
    t.n = if shift >= 63 { 0 } else { t.n >> shift };
    t.width = 1 << t.height;
    let level_shift = t.level as u32 * t.height;
    let max = if level_shift >= 63 {
        0
    } else {
        n >> level_shift
    };
    let start = t.n << t.height;
    if start + t.width as i64 >= max {
        if start >= max {
            return None;
        }
        t.width = (max - start) as u32;
    }
    Some(t)
}

impl<R: TileReader + ?Sized> HashReader for TileHashReader<'_, R> {
    fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, TlogError> {
        let height = self.reader.height();
        if !(1..=MAX_HEIGHT).contains(&height) || !(0..=MAX_TREE_SIZE).contains(&self.tree.n) {
            return Err(TlogError::InvalidInput("TileHashReader"));
        }
        let tree_n = self.tree.n;
        let mut order: HashMap<Tile, usize> = HashMap::new();
        let mut tiles: Vec<Tile> = Vec::new();

        // First the tiles holding the tree's subtree roots: once their
        // contents combine to the signed root hash, they are authentic.
        let mut roots = Vec::new();
        sub_tree_index(0, tree_n, &mut roots);
        let mut root_tile = Vec::with_capacity(roots.len());
        for &x in &roots {
            let tile = tile_parent(tile_for_index(height, x), 0, tree_n)
                .ok_or(TlogError::InvalidInput("TileHashReader"))?;
            let j = *order.entry(tile).or_insert_with(|| {
                tiles.push(tile);
                tiles.len() - 1
            });
            root_tile.push(j);
        }
        let root_tiles = tiles.len();

        // Then, for each wanted hash, its tile and the chain of complete
        // tiles between it and an already listed ancestor, so that each can
        // be checked against its parent.
        let limit = stored_hash_index(0, tree_n);
        let mut index_tile = Vec::with_capacity(indexes.len());
        for &x in indexes {
            if x < 0 || x >= limit {
                return Err(TlogError::IndexNotInTree);
            }
            let tile = tile_for_index(height, x);
            let mut k = 0u32;
            let found = loop {
                if k > 64 {
                    return Err(TlogError::InvalidInput("TileHashReader"));
                }
                if let Some(p) = tile_parent(tile, k, tree_n) {
                    if let Some(&j) = order.get(&p) {
                        break j;
                    }
                }
                k += 1;
            };
            if k == 0 {
                index_tile.push(found);
                continue;
            }
            for kk in (0..k).rev() {
                let p = tile_parent(tile, kk, tree_n)
                    .filter(Tile::is_complete)
                    .ok_or(TlogError::InvalidInput("TileHashReader"))?;
                order.insert(p, tiles.len());
                tiles.push(p);
            }
            index_tile.push(tiles.len() - 1);
        }

        let data = self.reader.read_tiles(&tiles)?;
        if data.len() != tiles.len() {
            return Err(TlogError::Read(format!(
                "TileReader returned bad result slice (len={}, want {})",
                data.len(),
                tiles.len()
            )));
        }
        for (tile, d) in tiles.iter().zip(&data) {
            if d.len() != tile.width as usize * HASH_SIZE {
                return Err(TlogError::Read(format!(
                    "TileReader returned bad result slice ({} len={}, want {})",
                    tile.path(),
                    d.len(),
                    tile.width as usize * HASH_SIZE
                )));
            }
        }

        // The root tiles must reproduce the signed tree hash.
        let mut th: Option<Hash> = None;
        for (i, &x) in roots.iter().enumerate().rev() {
            let j = root_tile[i];
            let h = hash_from_tile(&tiles[j], &data[j], x)?;
            th = Some(match th {
                None => h,
                Some(right) => node_hash(h, right),
            });
        }
        if th.unwrap_or_else(super::empty_tree_hash) != self.tree.hash {
            return Err(TlogError::InconsistentTile);
        }

        // Every later tile must hash to the entry its parent holds for it;
        // parents come earlier in the list, so they are already trusted.
        for i in root_tiles..tiles.len() {
            let tile = tiles[i];
            let parent = tile_parent(tile, 1, tree_n).ok_or(TlogError::InconsistentTile)?;
            let &j = order
                .get(&parent)
                .ok_or(TlogError::InvalidInput("TileHashReader"))?;
            let h = hash_from_tile(
                &parent,
                &data[j],
                stored_hash_index(parent.level as u32 * parent.height, tile.n),
            )?;
            if h != tile_hash(&data[i]) {
                return Err(TlogError::InconsistentTile);
            }
        }

        self.reader.save_tiles(&tiles, &data);

        indexes
            .iter()
            .zip(&index_tile)
            .map(|(&x, &j)| hash_from_tile(&tiles[j], &data[j], x))
            .collect()
    }
}
