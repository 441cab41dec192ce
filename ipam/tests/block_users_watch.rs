//! The watch of who uses which block (`Ipam::watch_block_users`, what bgpd's IPAM
//! task follows for the VXLAN overlay) on the Kubernetes store, against a real API
//! server: a reader following it, re-reading `Ipam::block_users` at each wake, is
//! woken by a remote node's new block and by an address borrowed and given back,
//! and never by a node's pods coming and going in its own block. On SQLite and etcd
//! (which report every block change) the reader sees the same.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipam::store::Datastore;
use ipam::{BlockUsers, Family, Ipam, IpamConfig, Pool};

const PODS: u32 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_block_users_watch_wakes_for_new_blocks_and_borrowed_addresses_only() {
    let Some((store, guard)) = support::kubernetes().await else {
        return;
    };
    wakes_for_new_blocks_and_borrowed_addresses(Ipam::new(store), &guard.url, true).await;
}

/// SQLite and etcd report every block change (a node's own pods too), and the
/// reader still sees each new block and borrowed address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_and_etcd_the_watch_reports_every_block_change() {
    let (store, guard) = support::sqlite().await.unwrap();
    wakes_for_new_blocks_and_borrowed_addresses(Ipam::new(store), &guard.url, false).await;
    if let Some((store, guard)) = support::etcd().await {
        wakes_for_new_blocks_and_borrowed_addresses(Ipam::new(store), &guard.url, false).await;
    }
}

/// The steps of the module text; `only_users`: the store reports nothing but
/// changes of who uses a block or an address (the Kubernetes store).
async fn wakes_for_new_blocks_and_borrowed_addresses<S: Datastore>(
    ipam: Ipam<S>,
    url: &str,
    only_users: bool,
) {
    support::create_nodes(url, &["node-a", "node-b", "node-c", "node-d"]);
    ipam.set_config(&IpamConfig {
        strict_affinity: false,
        max_blocks_per_node: 0,
    })
    .await
    .unwrap();
    // Two blocks: node-a and node-b take them.
    let mut pool = Pool::new("10.92.0.0/25".parse().unwrap());
    pool.block_size = 26;
    ipam.add_pool(pool).await.unwrap();
    ipam.ensure_blocks("node-a").await.unwrap();
    ipam.ensure_blocks("node-b").await.unwrap();

    // A reader on its own connection, as bgpd's IPAM task follows it.
    let reader = ipam::connect(url).await.unwrap();
    let mut users = reader.watch_block_users().await.unwrap();
    let seen: Arc<Mutex<Vec<BlockUsers>>> = Arc::default();
    let wakes = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            users.changed().await.unwrap();
            let now = reader.block_users().await.unwrap();
            wakes.lock().unwrap().push(now);
        }
    });
    let woken = || seen.lock().unwrap().len();
    let last = || seen.lock().unwrap().last().cloned().unwrap_or_default();

    // node-b's pods in its own block: not a wake.
    for i in 0..PODS {
        let handle = format!("pod-b-{i}");
        ipam.assign("node-b", &handle, Family::Ipv4, 1)
            .await
            .unwrap();
        ipam.release_handle(&handle).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    if only_users {
        assert_eq!(woken(), 0, "woken by node-b's own pods");
    }

    // A new block of node-c (a second pool): woken, the block and its owner read.
    let mut pool = Pool::new("10.93.0.0/26".parse().unwrap());
    pool.block_size = 26;
    ipam.add_pool(pool).await.unwrap();
    ipam.ensure_blocks("node-c").await.unwrap();
    let block = "10.93.0.0/26".parse().unwrap();
    support::eventually("node-c's block to wake the reader", || async {
        last().owners.contains(&(block, "node-c".to_string()))
    })
    .await;
    let after_block = woken();

    // node-d finds no free block and borrows: woken, the address and its user read.
    let assigned = ipam
        .assign("node-d", "pod-d", Family::Ipv4, 1)
        .await
        .unwrap();
    let address = assigned[0].address;
    support::eventually("node-d's borrowed address to wake the reader", || async {
        last().borrowed == [(address, "node-d".to_string())]
    })
    .await;
    // Given back: woken again, nothing borrowed.
    ipam.release_handle("pod-d").await.unwrap();
    support::eventually("the address given back to wake the reader", || async {
        seen.lock().unwrap().len() > after_block + 1 && last().borrowed.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "{url}: the reader woke {} times: {PODS} pods of node-b added and deleted, node-c's block claimed, node-d's address borrowed and given back",
        woken()
    );
    if only_users {
        // At most a few per step (a claim is three writes, one of them the block).
        assert!(woken() <= 6, "woken {} times", woken());
    }
    task.abort();
}
