//! The synthetic module tree shared by the zip benchmark and the zip
//! memory probe: 5,000 files totalling ~50 MB, deterministic content.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Number of files in the tree, not counting go.mod.
pub const FILES: usize = 5_000;
/// Target total size of the tree's files.
pub const TOTAL_BYTES: usize = 50 * 1024 * 1024;
/// Module path declared by the tree's go.mod.
pub const MODULE: &str = "example.com/big";

/// Deterministic content: half text-like (compressible), half noise, so the
/// deflate cost is neither the best nor the worst case.
fn fill(buf: &mut Vec<u8>, len: usize, seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    buf.clear();
    while buf.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (x >> 60) & 1 == 0 {
            buf.extend_from_slice(b"func handler(w http.ResponseWriter, r *http.Request) {\n");
        } else {
            buf.extend_from_slice(&x.to_le_bytes());
        }
    }
    buf.truncate(len);
}

/// Writes the tree under `root` and returns the total bytes of its files.
/// One file's worth of buffer is held at a time, so writing the tree does
/// not itself raise the memory figures measured afterwards.
pub fn synthetic_tree(root: &Path) -> std::io::Result<u64> {
    let go_mod = format!("module {MODULE}\n\ngo 1.22\n");
    fs::write(root.join("go.mod"), &go_mod)?;
    let mut total = go_mod.len() as u64;
    let mut buf = Vec::new();
    let mean = TOTAL_BYTES / FILES;
    for i in 0..FILES {
        // Sizes vary 0.2x..1.8x around the mean so the tree totals ~50 MB.
        let len = mean / 5 + (i * 7919 % FILES) * (mean * 8 / 5) / FILES;
        let dir = root.join(format!("pkg{:02}/sub{:02}", i % 50, (i / 50) % 20));
        fs::create_dir_all(&dir)?;
        fill(&mut buf, len, i as u64);
        let mut f = BufWriter::new(fs::File::create(dir.join(format!("f{i}.go")))?);
        f.write_all(&buf)?;
        f.flush()?;
        total += len as u64;
    }
    Ok(total)
}
