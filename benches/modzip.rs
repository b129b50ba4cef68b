//! Zip creation and `h1:` hashing over a synthetic module tree of 5,000
//! files and 50 MB, the size of a large real-world module.
//!
//! Run: `cargo bench --bench modzip`. Figures are kept in benches/RESULTS.md.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use modzip::Version;

const FILES: usize = 5_000;
const TOTAL_BYTES: usize = 50 * 1024 * 1024;

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

fn synthetic_tree(root: &Path) -> u64 {
    let mut total = 0u64;
    let mut buf = Vec::new();
    fs::write(root.join("go.mod"), "module example.com/big\n\ngo 1.22\n").unwrap();
    for i in 0..FILES {
        // Sizes vary 0.2x..1.8x around the mean so the tree totals ~50 MB.
        let mean = TOTAL_BYTES / FILES;
        let len = mean / 5 + (i * 7919 % FILES) * (mean * 8 / 5) / FILES;
        let dir = root.join(format!("pkg{:02}/sub{:02}", i % 50, (i / 50) % 20));
        fs::create_dir_all(&dir).unwrap();
        fill(&mut buf, len, i as u64);
        let mut f = BufWriter::new(fs::File::create(dir.join(format!("f{i}.go"))).unwrap());
        f.write_all(&buf).unwrap();
        total += len as u64;
    }
    total
}

fn bench_zip(c: &mut Criterion) {
    let tree = tempfile::tempdir().unwrap();
    let bytes = synthetic_tree(tree.path());
    let m = Version {
        path: "example.com/big".into(),
        version: "v1.0.0".into(),
    };
    let out = tempfile::tempdir().unwrap();
    let zip_path = out.path().join("m.zip");

    let mut group = c.benchmark_group("modzip");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));

    group.bench_function("create_from_dir 5000 files 50MB", |b| {
        b.iter(|| {
            let f = fs::File::create(&zip_path).unwrap();
            modzip::zip::create_from_dir(BufWriter::new(f), &m, tree.path()).unwrap();
        })
    });
    // The zip left by the last iteration feeds the read-side benchmarks.
    group.bench_function("hash_zip 5000 files 50MB", |b| {
        b.iter(|| modzip::dirhash::hash_zip(fs::File::open(&zip_path).unwrap()).unwrap())
    });
    group.bench_function("check_zip 5000 files 50MB", |b| {
        b.iter(|| modzip::zip::check_zip(&m, fs::File::open(&zip_path).unwrap()).unwrap())
    });
    group.bench_function("hash_dir 5000 files 50MB", |b| {
        b.iter(|| modzip::dirhash::hash_dir(tree.path(), "example.com/big@v1.0.0").unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_zip);
criterion_main!(benches);
