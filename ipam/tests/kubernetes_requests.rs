//! The requests the Kubernetes store sends the API server, counted by the API server
//! itself (`apiserver_request_total` from its `/metrics`, read before and after):
//!
//! - per pod-address assignment and per release ([`OPERATIONS`] of each on a node that
//!   already owns its block); the figures are printed, and the test fails above a
//!   budget;
//! - per claim of a node's first block (`ensure_blocks`, bgpd's first IPAM step;
//!   [`CLAIMS`] new nodes): the requests, within a budget, and where the API server
//!   served the LISTs of the node's affinities from: its watch cache, never etcd
//!   (`apiserver_storage_list_total` by `storage`); a node's
//!   second call, on the same store, sees its own block and writes nothing;
//! - for a node's reader (what bgpd's IPAM task runs: `watch_node`, `watch_nodes`,
//!   and on each notification the node's allocations, the pools and the nodes): other
//!   nodes' pods never wake it, its own do, and over an idle period it sends no write
//!   (and no read).

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ipam::{Family, Ipam, Pool};
use lab::kube_metrics::{RequestCounts, RequestKind};

const OPERATIONS: u64 = 20;
/// Requests one assignment of one address may send at most (see the module text of
/// `store/kubernetes.rs` for which they are).
const ASSIGN_BUDGET: u64 = 7;
/// Requests one release of a handle of one address may send at most.
const RELEASE_BUDGET: u64 = 6;

const CLAIMS: u64 = 20;
/// Requests one claim of a node's first block may send at most: LIST ippools and
/// LIST blockaffinities (from the watch cache) together, two candidate blocks (GET),
/// the pending affinity (POST), the block (POST), the confirmed affinity (PUT).
const CLAIM_BUDGET: u64 = 7;

/// The requests of the IPAM store: its resources and the Nodes (no kubelet runs).
fn ipam_requests(kind: &RequestKind) -> bool {
    kind.group == "wren.io" || kind.resource == "nodes"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_assign_and_release() {
    let Some((store, guard)) = support::kubernetes().await else {
        return;
    };
    let control_plane = guard.control_plane().unwrap();
    support::create_nodes(&guard.url, &["node-r"]);
    let ipam = Ipam::new(store);
    let mut pool = Pool::new("10.90.0.0/16".parse().unwrap());
    pool.block_size = 26;
    ipam.add_pool(pool).await.unwrap();
    // The node's first pod claims its block; the measured ones find it.
    ipam.assign("node-r", "pod-first", Family::Ipv4, 1)
        .await
        .unwrap();

    let count = || RequestCounts::read(control_plane).unwrap();
    let before = count();
    for i in 0..OPERATIONS {
        let assigned = ipam
            .assign("node-r", &format!("pod-{i}"), Family::Ipv4, 1)
            .await
            .unwrap();
        assert_eq!(assigned.len(), 1);
    }
    let assigns = count().since(&before).only(ipam_requests);
    let before = count();
    for i in 0..OPERATIONS {
        let released = ipam.release_handle(&format!("pod-{i}")).await.unwrap();
        assert_eq!(released.len(), 1);
    }
    let releases = count().since(&before).only(ipam_requests);
    within_budget("assign", &assigns, OPERATIONS, ASSIGN_BUDGET);
    within_budget("release", &releases, OPERATIONS, RELEASE_BUDGET);
}

/// Prints the requests of `operations` operations (`what`) and fails when they sent
/// more than `budget` each.
fn within_budget(what: &str, requests: &RequestCounts, operations: u64, budget: u64) {
    println!(
        "per {what}: {:.2} requests ({:.2} writes) [{operations} of them: {}]",
        requests.total() as f64 / operations as f64,
        requests.writes() as f64 / operations as f64,
        requests.render()
    );
    assert!(
        requests.total() <= budget * operations,
        "{what}: {}",
        requests.render()
    );
}

/// The API server's LISTs of block affinities so far: (from its watch cache, from
/// etcd), its `apiserver_storage_list_total` of the resource by `storage`.
fn affinity_lists(control_plane: &lab::kube::ControlPlane) -> (u64, u64) {
    let text = control_plane
        .kubectl(&["get", "--raw", "/metrics"])
        .unwrap();
    let sum = |storage: &str| -> u64 {
        text.lines()
            .filter(|line| {
                line.starts_with("apiserver_storage_list_total{")
                    && line.contains("resource=\"blockaffinities\"")
                    && line.contains(&format!("storage=\"{storage}\""))
            })
            .map(|line| {
                let value = line.rsplit_once(' ').unwrap().1;
                value.parse::<f64>().unwrap() as u64
            })
            .sum()
    };
    (sum("watchcache"), sum("etcd"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_claim_and_lists_from_the_watch_cache() {
    let Some((store, guard)) = support::kubernetes().await else {
        return;
    };
    let control_plane = guard.control_plane().unwrap();
    let ipam = Ipam::new(store);
    let mut pool = Pool::new("10.92.0.0/16".parse().unwrap());
    pool.block_size = 26;
    ipam.add_pool(pool).await.unwrap();
    // Once the watch cache of the just created resources has started (before, it
    // answers 429 and the store lists from etcd).
    ipam.ensure_blocks("node-warm").await.unwrap();

    let count = || RequestCounts::read(control_plane).unwrap();
    let before = count();
    let (cached_before, etcd_before) = affinity_lists(control_plane);
    for i in 0..CLAIMS {
        let blocks = ipam.ensure_blocks(&format!("node-{i:02}")).await.unwrap();
        assert_eq!(blocks.len(), 1, "node-{i:02}: {blocks:?}");
    }
    let claims = count().since(&before).only(ipam_requests);
    let (cached, etcd) = affinity_lists(control_plane);
    let (cached, etcd) = (cached - cached_before, etcd - etcd_before);
    println!("LISTs of blockaffinities: {cached} from the watch cache, {etcd} from etcd");
    within_budget("claim", &claims, CLAIMS, CLAIM_BUDGET);
    assert_eq!(claims.writes(), 3 * CLAIMS, "{}", claims.render());
    assert_eq!(
        cached, CLAIMS,
        "LISTs of blockaffinities from the watch cache"
    );
    assert_eq!(etcd, 0, "LISTs of blockaffinities from etcd");

    // Again for a node that has its block: the store's own writes are in what the
    // cache serves it, so it finds the block and writes nothing.
    let first = ipam.node_allocations("node-00").await.unwrap().blocks;
    let before = count();
    assert_eq!(ipam.ensure_blocks("node-00").await.unwrap(), first);
    let again = count().since(&before).only(ipam_requests);
    assert_eq!(again.writes(), 0, "{}", again.render());
}

/// How long the reader is watched with nothing else running.
const IDLE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reader_sleeps_through_other_nodes_pods_and_writes_nothing() {
    let Some((store, guard)) = support::kubernetes().await else {
        return;
    };
    let control_plane = guard.control_plane().unwrap();
    support::create_nodes(&guard.url, &["node-a", "node-b"]);
    let ipam = Ipam::new(store);
    let mut pool = Pool::new("10.91.0.0/16".parse().unwrap());
    pool.block_size = 26;
    ipam.add_pool(pool).await.unwrap();
    ipam.ensure_blocks("node-a").await.unwrap();
    ipam.ensure_blocks("node-b").await.unwrap();

    // node-a's reader, on its own connection, as bgpd's IPAM task reads.
    let reader = ipam::connect(&guard.url).await.unwrap();
    let mut changes = reader.watch_node("node-a").await.unwrap();
    let mut nodes = reader.watch_nodes().await.unwrap();
    let wakes = Arc::new(AtomicU64::new(0));
    let seen = wakes.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = changes.changed() => { changed.unwrap(); }
                changed = nodes.changed() => { changed.unwrap(); }
            }
            reader.node_allocations("node-a").await.unwrap();
            reader.pools().await.unwrap();
            reader.nodes().await.unwrap();
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });

    // Other nodes' pods come and go: node-a's reader is not woken.
    for i in 0..OPERATIONS {
        let handle = format!("pod-b-{i}");
        ipam.assign("node-b", &handle, Family::Ipv4, 1)
            .await
            .unwrap();
        ipam.release_handle(&handle).await.unwrap();
    }
    // Its own pod wakes it (and the wake-ups above would have been seen by then).
    ipam.assign("node-a", "pod-a", Family::Ipv4, 1)
        .await
        .unwrap();
    support::eventually("node-a's reader to see its pod", || {
        let wakes = wakes.clone();
        async move { wakes.load(Ordering::SeqCst) > 0 }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let woken = wakes.load(Ordering::SeqCst);
    println!(
        "node-a's reader woke {woken} times for {OPERATIONS} pods of node-b (added and deleted) and 1 of its own"
    );
    assert!(woken <= 2, "woken {woken} times");

    // Idle: only the reader runs.
    let before = RequestCounts::read(control_plane).unwrap();
    let woken = wakes.load(Ordering::SeqCst);
    tokio::time::sleep(IDLE).await;
    let idle = RequestCounts::read(control_plane)
        .unwrap()
        .since(&before)
        .only(ipam_requests);
    println!(
        "over {IDLE:?} idle: {} requests, {} writes [{}]",
        idle.total(),
        idle.writes(),
        idle.render()
    );
    assert_eq!(idle.writes(), 0, "{}", idle.render());
    assert_eq!(idle.total(), 0, "{}", idle.render());
    assert_eq!(wakes.load(Ordering::SeqCst), woken);
    task.abort();
}
