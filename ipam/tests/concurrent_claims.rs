//! 20 nodes claiming blocks at the same instant (Calico's "one block affine to two
//! nodes", calico#6001, libcalico-go#778), on every datastore. Each node has its own
//! connection to the store (as 20 bgpd or wren-ipam processes would), and each round
//! starts all 20 at one barrier:
//!
//! 1. each node assigns its first pod an address, which claims the node's first block
//!    (from a pool of 32 blocks, each node from its hashed starting point);
//! 2. each node assigns one given address of the same unclaimed block, so all 20 race
//!    for that one block: one wins it, the other 19 drop their pending affinity and
//!    borrow their address from it.
//!
//! Afterwards no block is affine to two nodes, every node owns exactly one block of
//! the first pool holding its pod's address, no affinity is left pending, and
//! `ipam check` is clean.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use ipam::{AffinityState, Datastore, Family, Ipam, Pool, audit};
use ipnet::IpNet;

const NODES: usize = 20;

async fn twenty_nodes_claim_at_once<S: Datastore>(ipam: Ipam<S>, url: &str) {
    let mut pool = Pool::new("10.77.0.0/21".parse().unwrap());
    pool.block_size = 26; // 32 blocks
    ipam.add_pool(pool).await.unwrap();
    let names: Vec<String> = (0..NODES).map(|i| format!("claim-node-{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    support::create_nodes(url, &refs);

    let mut nodes = Vec::new();
    for name in &names {
        // Each node's own connection.
        nodes.push((name.clone(), ipam::connect(url).await.unwrap()));
    }

    let first_pods = at_once(&nodes, |name, node_ipam| async move {
        let assigned = node_ipam
            .assign(&name, &format!("pod-of-{name}"), Family::Ipv4, 1)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(assigned.len(), 1, "{name}: {assigned:?}");
        assigned[0].clone()
    })
    .await;

    let mut contested = Pool::new("10.78.0.0/26".parse().unwrap());
    contested.block_size = 26;
    ipam.add_pool(contested).await.unwrap();
    let given = at_once(&nodes, |name, node_ipam| async move {
        let index: u32 = name.rsplit('-').next().unwrap().parse().unwrap();
        let address = IpAddr::from([10, 78, 0, 1 + index as u8]);
        let assigned = node_ipam
            .assign_address(&name, &format!("given-to-{name}"), address)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(assigned.address, address);
        assigned
    })
    .await;

    let snapshot = ipam.snapshot().await.unwrap();
    // Each block names one node; each node owns exactly one block of the first pool,
    // and it holds the node's first pod.
    let mut blocks_of: BTreeMap<String, BTreeSet<IpNet>> = BTreeMap::new();
    for block in &snapshot.blocks {
        let owner = block.value.affinity.clone().unwrap();
        blocks_of.entry(owner).or_default().insert(block.value.cidr);
    }
    assert_eq!(blocks_of.len(), NODES, "{blocks_of:?}");
    let contested_cidr: IpNet = "10.78.0.0/26".parse().unwrap();
    for (name, assigned) in &first_pods {
        let owned: BTreeSet<&IpNet> = blocks_of[name]
            .iter()
            .filter(|cidr| **cidr != contested_cidr)
            .collect();
        assert_eq!(owned.len(), 1, "{name} owns {owned:?}");
        assert!(!assigned.borrowed, "{name} borrowed: {assigned:?}");
        assert!(owned.contains(&assigned.block) && assigned.block.contains(&assigned.address));
    }
    // One node won the contested block; the others borrowed from it.
    let winners: Vec<&String> = blocks_of
        .iter()
        .filter(|(_, owned)| owned.contains(&contested_cidr))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    for (name, assigned) in &given {
        assert_eq!(assigned.block, contested_cidr);
        assert_eq!(
            assigned.borrowed,
            name != winners[0],
            "{name}: {assigned:?}"
        );
    }
    let contested_block = snapshot
        .blocks
        .iter()
        .find(|b| b.value.cidr == contested_cidr)
        .unwrap();
    assert_eq!(contested_block.value.allocations.len(), NODES);
    // No affinity is left pending, none names a block another node holds, and no two
    // affinities share a block.
    let mut affine: BTreeMap<IpNet, Vec<&str>> = BTreeMap::new();
    for affinity in &snapshot.affinities {
        let affinity = &affinity.value;
        assert_eq!(affinity.state, AffinityState::Confirmed, "{affinity:?}");
        assert!(
            blocks_of[&affinity.node].contains(&affinity.cidr),
            "{affinity:?}"
        );
        affine
            .entry(affinity.cidr)
            .or_default()
            .push(&affinity.node);
    }
    assert_eq!(affine.len(), NODES + 1);
    assert!(affine.values().all(|nodes| nodes.len() == 1), "{affine:?}");
    let report = audit(&snapshot, None);
    assert!(report.is_clean(), "{}", report.render());
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{}", report.render());
}

/// Runs `f` for every node, all starting at one barrier; the results by node name.
async fn at_once<S, F, Fut, T>(nodes: &[(String, Ipam<S>)], f: F) -> BTreeMap<String, T>
where
    S: Datastore + Clone,
    F: Fn(String, Ipam<S>) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(nodes.len()));
    let mut tasks = Vec::new();
    for (name, node_ipam) in nodes {
        let work = f(name.clone(), node_ipam.clone());
        let (barrier, name) = (barrier.clone(), name.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            (name, work.await)
        }));
    }
    let mut out = BTreeMap::new();
    for task in tasks {
        let (name, result) = task.await.unwrap();
        out.insert(name, result);
    }
    out
}

macro_rules! on_every_store {
    ($($store:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $store() {
                let Some((store, guard)) = support::$store().await else { return };
                twenty_nodes_claim_at_once(Ipam::new(store), &guard.url).await;
            }
        )*
    };
}

on_every_store!(sqlite, etcd, kubernetes);
