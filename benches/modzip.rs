//! Zip creation and `h1:` hashing over a synthetic module tree of 5,000
//! files and 50 MB, the size of a large real-world module.
//!
//! Run: `cargo bench --bench modzip`. Figures are kept in benches/RESULTS.md.

use std::fs;
use std::io::BufWriter;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use modzip::Version;

#[path = "support/tree.rs"]
mod tree;

use tree::{synthetic_tree, MODULE};

fn bench_zip(c: &mut Criterion) {
    let tree = tempfile::tempdir().unwrap();
    let bytes = synthetic_tree(tree.path()).unwrap();
    let m = Version {
        path: MODULE.into(),
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
