//! The watch of who uses which block (`Ipam::watch_block_users`, what bgpd's IPAM
//! task follows for the VXLAN overlay) on the Kubernetes store, against a real API
//! server: a reader following it, re-reading `Ipam::block_users` at each wake, is
//! woken by a remote node's new block and by an address borrowed and given back,
//! and never by a node's pods coming and going in its own block.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipam::{BlockUsers, Family, Ipam, IpamConfig, Pool};

const PODS: u32 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_block_users_watch_wakes_for_new_blocks_and_borrowed_addresses_only() {
    let Some((store, guard)) = support::kubernetes().await else {
        return;
    };
    support::create_nodes(&guard.url, &["node-a", "node-b", "node-c", "node-d"]);
    let ipam = Ipam::new(store);
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
    let reader = ipam::connect(&guard.url).await.unwrap();
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
    assert_eq!(woken(), 0, "woken by node-b's own pods");

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
        "the reader woke {} times: {PODS} pods of node-b added and deleted, node-c's block claimed, node-d's address borrowed and given back",
        woken()
    );
    // At most a few per step (a claim is three writes, one of them the block).
    assert!(woken() <= 6, "woken {} times", woken());
    task.abort();
}
