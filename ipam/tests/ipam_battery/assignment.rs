//! Assignment: from the node's block, more blocks, borrowing, exhaustion, limits,
//! given addresses, IPv6, concurrency.

use std::collections::HashSet;

use ipam::store::Datastore;
use ipam::{Family, Ipam, IpamConfig, IpamError, PodReference, Pool};
use ipnet::IpNet;

use super::{assert_clean, assert_no_blocks, ip, net, pool};

pub(crate) async fn assign_from_the_nodes_block<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(Pool::new(net("10.244.0.0/16")))
        .await
        .unwrap();
    let got = ipam
        .assign("node-a", "pod-1.eth0", Family::Ipv4, 1)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let a = &got[0];
    assert!(!a.borrowed);
    assert_eq!(a.pool, net("10.244.0.0/16"));
    assert_eq!(a.block.prefix_len(), 26);
    assert!(a.block.contains(&a.address));
    let mine = ipam.node_allocations("node-a").await.unwrap();
    assert_eq!(
        mine.blocks.iter().copied().collect::<Vec<_>>(),
        vec![a.block]
    );
    assert!(mine.borrowed.is_empty());
    // Same node, next pod: same block, another address.
    let b = ipam
        .assign("node-a", "pod-2.eth0", Family::Ipv4, 1)
        .await
        .unwrap();
    assert_eq!(b[0].block, a.block);
    assert_ne!(b[0].address, a.address);
    // Another node gets another block.
    let c = ipam
        .assign("node-b", "pod-3.eth0", Family::Ipv4, 1)
        .await
        .unwrap();
    assert_ne!(c[0].block, a.block);
    assert_eq!(ipam.addresses_of("pod-1.eth0").await.unwrap(), got);
    let info = ipam.address_info(a.address).await.unwrap().unwrap();
    assert_eq!(
        (info.handle.as_str(), info.node.as_deref()),
        ("pod-1.eth0", Some("node-a"))
    );
    assert_clean(&ipam).await;
}

pub(crate) async fn assign_many_claims_more_blocks<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(pool("10.1.0.0/24", 28)).await.unwrap();
    let got = ipam
        .assign("node-a", "big", Family::Ipv4, 20)
        .await
        .unwrap();
    let distinct: HashSet<_> = got.iter().map(|a| a.address).collect();
    assert_eq!(distinct.len(), 20);
    assert_eq!(
        ipam.node_allocations("node-a").await.unwrap().blocks.len(),
        2
    );
    let released = ipam.release_handle("big").await.unwrap();
    assert_eq!(released.len(), 20);
    assert!(ipam.addresses_of("big").await.unwrap().is_empty());
    assert!(ipam.release_handle("big").await.unwrap().is_empty());
    assert_clean(&ipam).await;
    let empty = ipam.release_empty_blocks("node-a").await.unwrap();
    assert_eq!(empty.len(), 2);
    assert_no_blocks(&ipam, "node-a").await;
    assert_clean(&ipam).await;
}

pub(crate) async fn stale_release_cannot_free_a_reused_address<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(pool("10.2.0.0/32", 32)).await.unwrap();
    let first = ipam.assign("node-a", "h1", Family::Ipv4, 1).await.unwrap()[0].clone();
    ipam.release_address(first.address, Some(first.sequence))
        .await
        .unwrap();
    let second = ipam.assign("node-a", "h2", Family::Ipv4, 1).await.unwrap()[0].clone();
    assert_eq!(second.address, first.address);
    assert!(second.sequence > first.sequence);
    let err = ipam
        .release_address(first.address, Some(first.sequence))
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::StaleSequence { .. }), "{err}");
    assert_eq!(ipam.addresses_of("h2").await.unwrap().len(), 1);
    let released = ipam
        .release_address(second.address, Some(second.sequence))
        .await
        .unwrap();
    assert_eq!(released.handle, "h2");
    let err = ipam
        .release_address(second.address, None)
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::NotAllocated(_)), "{err}");
    assert!(matches!(
        ipam.release_address(ip("192.0.2.1"), None)
            .await
            .unwrap_err(),
        IpamError::NotInPool(_)
    ));
    assert_clean(&ipam).await;
}

/// Pool of two /28 blocks: node-a and node-b each own one.
pub(crate) async fn two_nodes_two_blocks<S: Datastore>(ipam: &Ipam<S>) -> (IpNet, IpNet) {
    ipam.add_pool(pool("10.3.0.0/27", 28)).await.unwrap();
    let a = ipam.assign("node-a", "a-0", Family::Ipv4, 1).await.unwrap()[0].block;
    let b = ipam.assign("node-b", "b-0", Family::Ipv4, 1).await.unwrap()[0].block;
    assert_ne!(a, b);
    (a, b)
}

pub(crate) async fn borrowing_when_no_block_is_free<S: Datastore>(ipam: Ipam<S>) {
    let (block_a, block_b) = two_nodes_two_blocks(&ipam).await;
    ipam.assign("node-a", "a-fill", Family::Ipv4, 15)
        .await
        .unwrap();
    let borrowed = ipam
        .assign("node-a", "a-extra", Family::Ipv4, 1)
        .await
        .unwrap()[0]
        .clone();
    assert!(borrowed.borrowed);
    assert_eq!(borrowed.block, block_b);
    let mine = ipam.node_allocations("node-a").await.unwrap();
    assert_eq!(
        mine.blocks.iter().copied().collect::<Vec<_>>(),
        vec![block_a]
    );
    assert_eq!(
        mine.borrowed.iter().copied().collect::<Vec<_>>(),
        vec![borrowed.address]
    );
    let info = ipam.address_info(borrowed.address).await.unwrap().unwrap();
    assert_eq!(info.node.as_deref(), Some("node-a"));
    assert_eq!(info.block_owner.as_deref(), Some("node-b"));
    let usage = ipam.usage().await.unwrap();
    assert_eq!(usage.borrowed.len(), 1);

    // strict_affinity: a clear error instead.
    ipam.set_config(&IpamConfig {
        strict_affinity: true,
        max_blocks_per_node: 0,
    })
    .await
    .unwrap();
    let err = ipam
        .assign("node-a", "a-strict", Family::Ipv4, 1)
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::StrictAffinity { .. }), "{err}");
    assert!(err.to_string().contains("strict_affinity"), "{err}");
    assert!(ipam.addresses_of("a-strict").await.unwrap().is_empty());
    assert_clean(&ipam).await;
}

pub(crate) async fn exhausted_pool_is_a_clear_error_and_writes_nothing<S: Datastore>(
    ipam: Ipam<S>,
) {
    two_nodes_two_blocks(&ipam).await;
    ipam.assign("node-a", "a-fill", Family::Ipv4, 15)
        .await
        .unwrap();
    // 15 addresses are free (in node-b's block); ask for 16.
    let before = ipam.usage().await.unwrap();
    let err = ipam
        .assign("node-a", "too-many", Family::Ipv4, 16)
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::Exhausted { .. }), "{err}");
    assert!(err.to_string().contains("exhausted"), "{err}");
    assert!(ipam.addresses_of("too-many").await.unwrap().is_empty());
    assert_eq!(ipam.usage().await.unwrap().pools, before.pools);
    assert_clean(&ipam).await;
}

pub(crate) async fn max_blocks_per_node<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(pool("10.4.0.0/24", 28)).await.unwrap();
    ipam.set_config(&IpamConfig {
        strict_affinity: true,
        max_blocks_per_node: 1,
    })
    .await
    .unwrap();
    ipam.assign("node-a", "fill", Family::Ipv4, 16)
        .await
        .unwrap();
    let err = ipam
        .assign("node-a", "more", Family::Ipv4, 1)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("max_blocks_per_node"), "{err}");
    assert_eq!(
        ipam.node_allocations("node-a").await.unwrap().blocks.len(),
        1
    );
    assert_clean(&ipam).await;
}

pub(crate) async fn assign_a_given_address<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(Pool::new(net("10.5.0.0/16"))).await.unwrap();
    let got = ipam
        .assign_address("node-a", "tunnel", ip("10.5.7.9"))
        .await
        .unwrap();
    assert_eq!(got.block, net("10.5.7.0/26"));
    assert!(!got.borrowed);
    // Idempotent for the same handle, refused for another.
    assert_eq!(
        ipam.assign_address("node-a", "tunnel", ip("10.5.7.9"))
            .await
            .unwrap(),
        got
    );
    let err = ipam
        .assign_address("node-b", "other", ip("10.5.7.9"))
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::AddressInUse { .. }), "{err}");
    // node-b taking an address in node-a's block borrows it.
    let borrowed = ipam
        .assign_address("node-b", "other", ip("10.5.7.10"))
        .await
        .unwrap();
    assert!(borrowed.borrowed);
    let err = ipam
        .assign_address("node-a", "x", ip("192.0.2.1"))
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::NotInPool(_)), "{err}");
    assert_clean(&ipam).await;
}

pub(crate) async fn ipv6_pools<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(Pool::new(net("fd00:10:244::/56")))
        .await
        .unwrap();
    ipam.add_pool(Pool::new(net("10.244.0.0/16")))
        .await
        .unwrap();
    let v6 = ipam.assign("node-a", "pod", Family::Ipv6, 2).await.unwrap();
    let v4 = ipam.assign("node-a", "pod", Family::Ipv4, 1).await.unwrap();
    assert!(
        v6.iter()
            .all(|a| a.address.is_ipv6() && a.block.prefix_len() == 122)
    );
    assert!(net("fd00:10:244::/56").contains(&v6[0].address));
    assert!(v4[0].address.is_ipv4());
    assert_eq!(ipam.addresses_of("pod").await.unwrap().len(), 3);
    assert_eq!(
        ipam.node_allocations("node-a").await.unwrap().blocks.len(),
        2
    );
    assert_eq!(ipam.release_handle("pod").await.unwrap().len(), 3);
    let usage = ipam.usage().await.unwrap();
    assert_eq!(usage.pools[1].total, 1u128 << 72);
    assert_clean(&ipam).await;
}

pub(crate) async fn concurrent_assigns_are_distinct<S: Datastore + Clone>(ipam: Ipam<S>) {
    ipam.add_pool(pool("10.8.0.0/22", 28)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let ipam = ipam.clone();
        tasks.push(tokio::spawn(async move {
            let node = format!("node-{}", i % 3);
            ipam.assign(&node, &format!("pod-{i}"), Family::Ipv4, 1)
                .await
                .unwrap()[0]
                .address
        }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        assert!(seen.insert(task.await.unwrap()));
    }
    assert_eq!(seen.len(), 60);
    assert_clean(&ipam).await;
}

/// A pod's handle record names the pod (the collector's pod-gone rule reads it back);
/// a record without one (Wren's own addresses, records from before) reads as before.
pub(crate) async fn pods_are_named_in_handle_records<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(Pool::new(net("10.244.0.0/16")))
        .await
        .unwrap();
    let pod = PodReference {
        namespace: "shop".into(),
        name: "cart-1".into(),
        uid: Some("6c1d2e4f-0000-4000-8000-000000000001".into()),
    };
    let first = ipam
        .assign_once_for_pod("node-a", "c1.eth0", Family::Ipv4, &pod)
        .await
        .unwrap();
    let again = ipam
        .assign_once_for_pod("node-a", "c1.eth0", Family::Ipv4, &pod)
        .await
        .unwrap();
    assert_eq!(first, again);
    ipam.assign_once("node-a", "wren-gateway.node-a.ipv4", Family::Ipv4)
        .await
        .unwrap();
    let bad = PodReference {
        name: "../nodes/node-a".into(),
        ..pod.clone()
    };
    let refused = ipam
        .assign_once_for_pod("node-a", "c2.eth0", Family::Ipv4, &bad)
        .await
        .unwrap_err();
    assert!(matches!(refused, IpamError::BadPod { .. }), "{refused}");
    let handles = ipam.snapshot().await.unwrap().handles;
    let pods: Vec<(&str, Option<&PodReference>)> = handles
        .iter()
        .map(|h| (h.value.handle.as_str(), h.value.pod.as_ref()))
        .collect();
    assert_eq!(
        pods,
        vec![("c1.eth0", Some(&pod)), ("wren-gateway.node-a.ipv4", None)]
    );
    assert_eq!(ipam.release_handle("c1.eth0").await.unwrap().len(), 1);
    assert_clean(&ipam).await;
}
