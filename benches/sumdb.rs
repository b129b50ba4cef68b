//! Checksum database verification throughput: [`SumdbChecker`] verifying
//! versions new to it against a local test database
//! (`fixtures::SumdbServer`, a tree of a few thousand records spanning
//! many tiles) whose tiles it already holds, as a long-running server
//! does: each version costs one `/lookup`, and the tiles its inclusion
//! proof needs come from the tile cache.
//!
//! Before the timed runs, the bench counts HTTP requests at the database
//! (every request, `/latest`, `/lookup` and `/tile`) for one cold pass (a
//! fresh checker and an empty cache verifying every version) and one warm
//! pass (a fresh checker over the now-filled cache), and prints the
//! requests per verified version. The timed runs then verify the same
//! versions warm, each iteration with a fresh checker (so every version
//! is new to it) over the shared cache.
//!
//! Run: `cargo bench --bench sumdb`. Figures are kept in
//! benches/RESULTS.md.

use std::sync::Arc;
use std::time::Duration;

use athens::sumdb_client::{Checked, MemoryStore, SumdbChecker, SumdbStore};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fixtures::SumdbServer;
use vcs::goenv::GoEnv;

/// Versions verified per pass.
const VERSIONS: usize = 200;
/// Unrelated records before and between them, so their proofs need many
/// tiles at several levels.
const FILLER: usize = 3000;

/// One module version the database holds, with its hashes.
struct Known {
    module: String,
    version: String,
    zip_h1: String,
    gomod_h1: String,
}

/// A database of `FILLER` records with `VERSIONS` bench versions spread
/// among them.
fn database() -> (SumdbServer, Vec<Known>) {
    let db = SumdbServer::start("bench.sumdb.test");
    let mut known = Vec::new();
    for i in 0..VERSIONS {
        db.add_filler(FILLER / VERSIONS);
        let k = Known {
            module: format!("example.com/bench/m{i:03}"),
            version: "v1.0.0".to_string(),
            zip_h1: format!("h1:{:0>43}=", i),
            gomod_h1: format!("h1:{:0>42}g=", i),
        };
        db.add(&k.module, &k.version, &k.zip_h1, &k.gomod_h1);
        known.push(k);
    }
    (db, known)
}

fn checker(db: &SumdbServer, store: Arc<dyn SumdbStore>) -> SumdbChecker {
    let env = GoEnv::from_vars(vec![
        ("GOSUMDB".to_string(), db.gosumdb()),
        ("GOPROXY".to_string(), "direct".to_string()),
        ("GONOSUMDB".to_string(), String::new()),
        ("GOPRIVATE".to_string(), String::new()),
    ])
    .unwrap();
    SumdbChecker::new(&env, &[], store, Duration::from_secs(30)).unwrap()
}

async fn verify_all(checker: &SumdbChecker, known: &[Known]) {
    for k in known {
        let got = checker
            .check(&k.module, &k.version, &k.zip_h1, &k.gomod_h1)
            .await
            .unwrap();
        assert!(matches!(got, Checked::Verified(_)), "{got:?}");
    }
}

/// Requests the database received while `pass` ran, per verified version.
fn requests_per_version(
    db: &SumdbServer,
    rt: &tokio::runtime::Runtime,
    pass: impl std::future::Future<Output = ()>,
) -> (usize, usize, usize, f64) {
    let (requests, lookups, tiles) = (db.requests(), db.lookups(), db.tile_requests());
    rt.block_on(pass);
    let requests = db.requests() - requests;
    (
        requests,
        db.lookups() - lookups,
        db.tile_requests() - tiles,
        requests as f64 / VERSIONS as f64,
    )
}

fn bench_checker(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (db, known) = database();
    let store: Arc<dyn SumdbStore> = Arc::new(MemoryStore::default());

    let cold = checker(&db, Arc::clone(&store));
    let (requests, lookups, tiles, per) = requests_per_version(&db, &rt, verify_all(&cold, &known));
    println!(
        "sumdb cold: {VERSIONS} versions in a tree of {} records: {requests} requests ({lookups} lookups, {tiles} tiles), {per:.2} per version",
        db.size()
    );
    assert_eq!(lookups, VERSIONS, "one lookup per version");
    let warm = checker(&db, Arc::clone(&store));
    let (requests, lookups, tiles, per) = requests_per_version(&db, &rt, verify_all(&warm, &known));
    println!(
        "sumdb warm: {VERSIONS} versions: {requests} requests ({lookups} lookups, {tiles} tiles), {per:.2} per version"
    );
    assert_eq!(tiles, 0, "tiles are fetched once");

    let before = (db.requests(), db.tile_requests());
    let mut passes = 0usize;
    let mut group = c.benchmark_group("sumdb");
    group.sample_size(10);
    group.throughput(Throughput::Elements(VERSIONS as u64));
    group.bench_function("verify_new_versions_tiles_cached", |b| {
        b.iter_batched(
            || checker(&db, Arc::clone(&store)),
            |checker| {
                rt.block_on(verify_all(&checker, &known));
                passes += 1;
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    let verified = passes * VERSIONS;
    let requests = db.requests() - before.0;
    println!(
        "sumdb timed runs: {verified} versions verified, {requests} requests ({} tiles), {:.3} per version",
        db.tile_requests() - before.1,
        requests as f64 / verified.max(1) as f64
    );
}

criterion_group!(benches, bench_checker);
criterion_main!(benches);
