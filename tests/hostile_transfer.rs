//! The real binary against hostile git origins.
//! - One that trickles its answers (one byte every 200 ms): requests end
//!   with a 5xx within the configured deadlines (`Timeout` for lookups,
//!   `StashTimeout` for downloads), the fetch stops and closes its
//!   connections to the origin, and nothing stays locked: the next requests
//!   for the same module are answered.
//! - One whose pack holds a delta of a few bytes claiming to make a 3 GiB
//!   object: refused by `GitMaxObjectBytes` without the server's memory
//!   growing by the claim.

// Shared with the other end-to-end tests; this one uses only part of it.
#[allow(dead_code, unused_imports)]
mod support;

use std::time::{Duration, Instant};

use fixtures::{hostile_repo, GitHttpServer, Hostile, Trickle};
use support::{http_get, peak_rss_kb, write_gitconfig, Server, ServerSetup};

const MODULE: &str = "github.com/acme/slow";
/// `Timeout`, seconds.
const LOOKUP_DEADLINE: u64 = 2;
/// `StashTimeout`, seconds.
const DOWNLOAD_DEADLINE: u64 = 3;
/// How long after its deadline a request may take to be answered.
const SLACK: Duration = Duration::from_secs(3);
/// How long after the answer the origin may still see a connection.
const CLOSE_WITHIN: Duration = Duration::from_secs(4);

/// Waits until the origin writes no trickled response any more.
fn trickles_end_within(git: &GitHttpServer, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if git.trickles_open() == 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// GETs `path`, returning the status, the body as text and the time taken.
fn timed_get(server: &Server, path: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let (status, body) = http_get(server.port(), path).expect("request");
    (
        status,
        String::from_utf8_lossy(&body).to_string(),
        started.elapsed(),
    )
}

#[test]
fn trickling_origin_is_cut_off_at_the_deadlines() {
    let scratch = tempfile::tempdir().expect("scratch");
    let served = scratch.path().join("srv");
    std::fs::create_dir_all(&served).expect("srv");
    hostile_repo(&served, "slow", MODULE, Hostile::default());
    let git = GitHttpServer::start(served);
    git.set_trickle(Some(Duration::from_millis(200)), Trickle::Everything);
    let gitconfig = scratch.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[("slow", git.url("slow.git"))]);
    let mut setup = ServerSetup::memory(&gitconfig);
    setup.extra_env = vec![
        ("ATHENS_TIMEOUT".into(), LOOKUP_DEADLINE.to_string()),
        ("ATHENS_STASH_TIMEOUT".into(), DOWNLOAD_DEADLINE.to_string()),
    ];
    let server = Server::start(&setup);

    // A lookup runs under Timeout.
    let (status, body, took) = timed_get(&server, &format!("/{MODULE}/@v/list"));
    assert!((500..600).contains(&status), "{status}: {body}");
    assert!(
        took < Duration::from_secs(LOOKUP_DEADLINE) + SLACK,
        "answered after {took:?}"
    );
    assert!(
        trickles_end_within(&git, CLOSE_WITHIN),
        "the origin still sends {} responses",
        git.trickles_open()
    );

    // A download runs under StashTimeout; asking twice must not wait on
    // anything the first one left behind.
    for attempt in 0..2 {
        let (status, body, took) = timed_get(&server, &format!("/{MODULE}/@v/v1.0.0.zip"));
        assert!((500..600).contains(&status), "{attempt}: {status}: {body}");
        assert!(
            took < Duration::from_secs(DOWNLOAD_DEADLINE) + SLACK,
            "{attempt}: answered after {took:?}"
        );
        assert!(
            trickles_end_within(&git, CLOSE_WITHIN),
            "{attempt}: the origin still sends {} responses",
            git.trickles_open()
        );
    }
    assert!(
        git.trickles_abandoned() >= 3,
        "{}",
        git.trickles_abandoned()
    );

    // Once the origin behaves, the same module is served.
    git.set_trickle(None, Trickle::Everything);
    let (status, body, _) = timed_get(&server, &format!("/{MODULE}/@v/main.info"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("v0.0.0-"), "{body}");
}

/// Most memory the server may have used, in KiB, after refusing a pack
/// that claims a 3 GiB object.
const MAX_PEAK_RSS_KB: u64 = 400 * 1024;

#[test]
fn delta_claiming_gigabytes_is_refused_without_the_memory() {
    let scratch = tempfile::tempdir().expect("scratch");
    let served = scratch.path().join("srv");
    std::fs::create_dir_all(&served).expect("srv");
    hostile_repo(
        &served,
        "claims",
        "github.com/acme/claims",
        Hostile::default(),
    );
    let git = GitHttpServer::start(served);
    git.set_pack_rewrite(Some(std::sync::Arc::new(|pack: &[u8]| {
        fixtures::hostile_pack::with_delta_claiming(pack, 3 << 30)
    })));
    let gitconfig = scratch.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[("claims", git.url("claims.git"))]);
    let mut server = Server::start(&ServerSetup::memory(&gitconfig));

    let (status, body, _) = timed_get(&server, "/github.com/acme/claims/@v/main.info");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("GitMaxObjectBytes"), "{body}");
    assert_eq!(git.pack_fetches(), 1, "a refused pack is not fetched again");
    let peak = peak_rss_kb(server.pid());
    eprintln!("server peak RSS: {peak} kB");
    assert!(
        peak < MAX_PEAK_RSS_KB,
        "peak RSS {peak} kB over {MAX_PEAK_RSS_KB} kB"
    );
    assert!(server.log_text().contains("GitMaxObjectBytes"));

    // The same origin sending git's own pack is served.
    git.set_pack_rewrite(None);
    let (status, body, _) = timed_get(&server, "/github.com/acme/claims/@v/main.info");
    assert_eq!(status, 200, "{body}");
    assert!(server.is_running());
    server.stop();
}
