//! Several proxy instances on one object store (moto's S3) and one Redis
//! (or one three-master Redis Cluster): a version is fetched once whoever
//! asks, and an instance killed while it holds the lock leaves nothing
//! partial behind and does not block the others past the lock's TTL.

// Shared with the other end-to-end tests; this one uses only part of it.
#[allow(dead_code, unused_imports)]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fixtures::services::redis::{RedisCluster, RedisServer};
use fixtures::services::s3::Moto;
use fixtures::GitHttpServer;
use object_store::ObjectStoreExt;
use support::{bare_clone, build_repo, direct_client, download_ok, write_gitconfig};
use support::{Server, ServerSetup};

const LIB: &str = "github.com/acme/e2e-lib";
const VERSION: &str = "v1.1.0";

/// The lock service the instances share.
enum Locks {
    Redis(RedisServer),
    RedisCluster(RedisCluster),
}

/// The git server, S3, Redis and the repository the instances fetch from.
struct Cluster {
    git: GitHttpServer,
    moto: Moto,
    locks: Locks,
    gitconfig: std::path::PathBuf,
    bucket: String,
    _scratch: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        Self::start_with(Locks::Redis(RedisServer::start().expect("redis")))
    }

    fn start_on_redis_cluster() -> Cluster {
        Self::start_with(Locks::RedisCluster(
            RedisCluster::start().expect("redis cluster"),
        ))
    }

    fn start_with(locks: Locks) -> Cluster {
        let repo = build_repo("e2e-lib");
        let scratch = tempfile::tempdir().expect("scratch");
        let served = scratch.path().join("srv");
        std::fs::create_dir_all(&served).expect("srv");
        bare_clone(&repo, &served, "e2e-lib");
        let git = GitHttpServer::start(served);
        let gitconfig = scratch.path().join("gitconfig");
        write_gitconfig(&gitconfig, &[("e2e-lib", git.url("e2e-lib.git"))]);
        let moto = Moto::start().expect("moto");
        let bucket = "athens-cluster".to_string();
        moto.create_bucket(&bucket).expect("bucket");
        Cluster {
            git,
            moto,
            locks,
            gitconfig,
            bucket,
            _scratch: scratch,
        }
    }

    /// One instance: S3 storage in the shared bucket, the Redis lock service
    /// with the given lock TTL.
    fn instance(&self, lock_ttl_secs: u64) -> Server {
        let mut setup = ServerSetup::memory(&self.gitconfig);
        let env = [
            ("ATHENS_STORAGE_TYPE", "s3".to_string()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "cluster-key".into()),
            ("AWS_SECRET_ACCESS_KEY", "cluster-secret".into()),
            ("ATHENS_S3_BUCKET_NAME", self.bucket.clone()),
            ("AWS_ENDPOINT", self.moto.endpoint()),
            ("AWS_FORCE_PATH_STYLE", "true".into()),
            ("ATHENS_SINGLE_FLIGHT_TYPE", "redis".into()),
            (
                "ATHENS_REDIS_ENDPOINT",
                match &self.locks {
                    Locks::Redis(redis) => redis.endpoint(),
                    Locks::RedisCluster(cluster) => cluster.endpoints(),
                },
            ),
            (
                "ATHENS_REDIS_CLUSTER",
                matches!(self.locks, Locks::RedisCluster(_)).to_string(),
            ),
            ("ATHENS_REDIS_LOCK_TTL", lock_ttl_secs.to_string()),
            ("ATHENS_REDIS_LOCK_TIMEOUT", "120".into()),
            ("ATHENS_REDIS_LOCK_MAX_RETRIES", "1200".into()),
        ];
        setup.extra_env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        Server::start(&setup)
    }

    fn bucket_store(&self) -> Arc<dyn object_store::ObjectStore> {
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(self.moto.endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(&self.bucket)
            .with_access_key_id("k")
            .with_secret_access_key("s")
            .build()
            .expect("s3 client");
        Arc::new(store)
    }
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, bytes::Bytes) {
    match http.get(url).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.bytes().await.unwrap_or_default())
        }
        Err(e) => panic!("GET {url}: {e}"),
    }
}

fn h1_of(zip: &[u8]) -> String {
    modzip::dirhash::hash_zip(std::io::Cursor::new(zip.to_vec())).expect("zip hash")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_requests_over_three_instances_fetch_once() {
    requests_over_three_instances_fetch_once(Cluster::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_a_redis_cluster_fetch_once() {
    requests_over_three_instances_fetch_once(Cluster::start_on_redis_cluster()).await;
}

async fn requests_over_three_instances_fetch_once(cluster: Cluster) {
    let want = {
        let repo = build_repo("e2e-lib");
        download_ok(&direct_client(&[("e2e-lib", repo.path())]), LIB, VERSION)
    };
    let instances: Vec<Server> = (0..3).map(|_| cluster.instance(30)).collect();
    // Keep the one fetch in flight long enough for every request to
    // arrive while it runs.
    cluster.git.set_pack_delay(Duration::from_millis(1500));

    let http = reqwest::Client::new();
    let requests = (0..200).map(|i| {
        let ext = ["info", "mod", "zip"][(i / 3) % 3];
        let url = format!("{}/{LIB}/@v/{VERSION}.{ext}", instances[i % 3].url());
        let http = http.clone();
        async move { (ext, get(&http, &url).await) }
    });
    let answers = futures::future::join_all(requests).await;
    let mut first: std::collections::HashMap<&str, bytes::Bytes> = Default::default();
    for (ext, (status, body)) in &answers {
        assert_eq!(*status, 200, "{ext}: {}", String::from_utf8_lossy(body));
        let seen = first.entry(ext).or_insert_with(|| body.clone());
        assert!(seen == body, "{ext} answers differ between requests");
    }
    assert_eq!(
        cluster.git.pack_fetches(),
        1,
        "VCS fetches across the cluster"
    );
    assert_eq!(h1_of(&first["zip"]), want.sum);
    let info: serde_json::Value = serde_json::from_slice(&first["info"]).expect("info json");
    assert_eq!(info["Version"], VERSION);
    assert_eq!(info["Time"], want.time.as_str());
    // The version sits in the bucket in Athens' layout.
    let store = cluster.bucket_store();
    for ext in ["info", "mod", "zip"] {
        let key = object_store::path::Path::parse(format!("{LIB}/@v/{VERSION}.{ext}")).unwrap();
        store.head(&key).await.expect("stored object");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_lock_holder_is_replaced_within_the_ttl() {
    killed_lock_holder_is_replaced(Cluster::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_lock_holder_on_a_redis_cluster_is_replaced_within_the_ttl() {
    killed_lock_holder_is_replaced(Cluster::start_on_redis_cluster()).await;
}

async fn killed_lock_holder_is_replaced(cluster: Cluster) {
    const TTL: u64 = 3;
    let want = {
        let repo = build_repo("e2e-lib");
        download_ok(&direct_client(&[("e2e-lib", repo.path())]), LIB, VERSION)
    };
    let mut holder = cluster.instance(TTL);
    let others: Vec<Server> = (0..2).map(|_| cluster.instance(TTL)).collect();
    cluster.git.set_pack_delay(Duration::from_secs(30));

    // The holder starts the fetch and takes the lock...
    let url = format!("{}/{LIB}/@v/{VERSION}.zip", holder.url());
    let doomed = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status()) });
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.git.pack_fetches() == 0 {
        assert!(Instant::now() < deadline, "holder never fetched");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...and dies mid-fetch.
    holder.stop();
    let _ = doomed.await;
    let killed_at = Instant::now();
    cluster.git.set_pack_delay(Duration::ZERO);

    // Nothing of the version is visible in the bucket.
    let store = cluster.bucket_store();
    let info_key = object_store::path::Path::parse(format!("{LIB}/@v/{VERSION}.info")).unwrap();
    assert!(
        store.head(&info_key).await.is_err(),
        "partial version committed"
    );

    // The survivors wait for the lease to expire, one fetches, both serve it.
    let http = reqwest::Client::new();
    let requests = others.iter().map(|server| {
        let url = format!("{}/{LIB}/@v/{VERSION}.zip", server.url());
        let http = http.clone();
        async move { get(&http, &url).await }
    });
    let answers = futures::future::join_all(requests).await;
    let elapsed = killed_at.elapsed();
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{}", String::from_utf8_lossy(body));
        assert_eq!(h1_of(body), want.sum);
    }
    assert_eq!(
        cluster.git.pack_fetches(),
        2,
        "one fetch by the dead holder, one after"
    );
    // The TTL, plus the time of one fetch from a local git server (slow
    // on a loaded machine, but far from the 30 s pack delay the dead
    // holder was stuck in).
    assert!(
        elapsed < Duration::from_secs(TTL + 25),
        "took {elapsed:?} after the kill"
    );
    // The dead holder refreshed its lease up to TTL/3 before the kill.
    assert!(
        elapsed >= Duration::from_secs(TTL) * 2 / 3 - Duration::from_millis(200),
        "did not wait for the lease: {elapsed:?}"
    );
    store.head(&info_key).await.expect("version committed");
}

/// `athens storage-server` serving a disk store over Athens' external
/// storage protocol, and a proxy using it as `StorageType = "external"`:
/// the go client gets the same sums as in direct mode, and the files land
/// in the storage server's disk layout.
#[test]
fn proxy_on_external_storage_served_by_athens_storage_server() {
    let repo = build_repo("e2e-lib");
    let want = download_ok(&direct_client(&[("e2e-lib", repo.path())]), LIB, VERSION);
    let scratch = tempfile::tempdir().expect("scratch");
    let root = scratch.path().join("store");
    std::fs::create_dir_all(&root).expect("store");
    let listen = fixtures::services::free_addr();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_athens"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ATHENS_STORAGE_TYPE", "disk")
        .env("ATHENS_DISK_STORAGE_ROOT", &root)
        .args(["storage-server", &format!("-listen={listen}")]);
    let _storage_server = fixtures::services::ServerProcess::spawn(
        "storage-server",
        command,
        listen,
        tempfile::tempdir().expect("log dir"),
    )
    .expect("athens storage-server");

    let gitconfig = scratch.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[("e2e-lib", support::file_url(repo.path()))]);
    let mut setup = ServerSetup::memory(&gitconfig);
    setup.extra_env = vec![
        ("ATHENS_STORAGE_TYPE".into(), "external".into()),
        (
            "ATHENS_EXTERNAL_STORAGE_URL".into(),
            format!("http://{listen}"),
        ),
    ];
    let proxy = Server::start(&setup);
    let got = download_ok(&support::proxy_client(&proxy.url()), LIB, VERSION);
    assert_eq!((got.sum, got.go_mod_sum), (want.sum, want.go_mod_sum));
    for file in ["go.mod", "source.zip", &format!("{VERSION}.info")] {
        assert!(root.join(LIB).join(VERSION).join(file).is_file(), "{file}");
    }
}
