//! Administration: pools refused or selected, disabled and deleted, the usage table,
//! the node registry and its watches, bad names.

use std::time::Duration;

use ipam::store::{Datastore, Expect, Txn};
use ipam::{Family, Ipam, IpamError, Node, Pool, ProblemKind, keys};
use ipnet::IpNet;

use super::{assert_clean, assert_no_blocks, ip, net, pool};

pub(crate) async fn bad_pools_are_refused<S: Datastore>(ipam: Ipam<S>) {
    let err = ipam.add_pool(pool("10.0.0.0/16", 19)).await.unwrap_err();
    assert!(
        err.to_string().contains("block size 19 is outside 20-32"),
        "{err}"
    );
    let err = ipam.add_pool(pool("10.0.0.0/16", 33)).await.unwrap_err();
    assert!(matches!(err, IpamError::BadPool { .. }), "{err}");
    let err = ipam.add_pool(pool("fd00::/64", 115)).await.unwrap_err();
    assert!(err.to_string().contains("outside 116-128"), "{err}");
    let err = ipam.add_pool(pool("10.0.0.1/16", 26)).await.unwrap_err();
    assert!(
        err.to_string().contains("did you mean 10.0.0.0/16"),
        "{err}"
    );
    let err = ipam.add_pool(pool("10.0.0.0/28", 26)).await.unwrap_err();
    assert!(err.to_string().contains("larger than the pool"), "{err}");
    assert!(Pool::parse_cidr("10.0.0/8").is_err());

    ipam.add_pool(Pool::new(net("10.244.0.0/16")))
        .await
        .unwrap();
    let err = ipam
        .add_pool(Pool::new(net("10.244.128.0/17")))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "pool 10.244.128.0/17 overlaps existing pool 10.244.0.0/16"
    );
    let err = ipam
        .add_pool(Pool::new(net("10.0.0.0/8")))
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::PoolOverlap { .. }), "{err}");
    let err = ipam
        .add_pool(Pool::new(net("10.244.0.0/16")))
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::PoolExists(_)), "{err}");
    ipam.add_pool(Pool::new(net("fd00:10:244::/56")))
        .await
        .unwrap();
    let pools = ipam.pools().await.unwrap();
    assert_eq!(pools.len(), 2);
    assert_eq!(pools[0].block_size, 26);
    assert_eq!(pools[1].block_size, 122);

    // Pools written around add_pool (a custom resource applied by hand): an
    // overlapping one and a malformed one are refused with a reason, and the pools
    // they do not touch keep working.
    let mut overlapping = Pool::new(net("10.244.64.0/18"));
    overlapping.block_size = 28;
    let mut bad = Pool::new(net("10.99.0.0/16"));
    bad.block_size = 8;
    for written in [&overlapping, &bad] {
        let mut txn = Txn::new();
        txn.put(
            keys::pool(&written.cidr),
            serde_json::to_vec(written).unwrap(),
            Expect::Absent,
        );
        ipam.store().commit(txn).await.unwrap();
    }
    let cidrs: Vec<IpNet> = ipam.pools().await.unwrap().iter().map(|p| p.cidr).collect();
    assert_eq!(cidrs, [net("fd00:10:244::/56")]);
    let v6 = ipam.assign("node-a", "v6", Family::Ipv6, 1).await.unwrap();
    assert!(v6[0].address.is_ipv6());
    let err = ipam
        .assign("node-a", "v4", Family::Ipv4, 1)
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::NoPool { .. }), "{err}");
    let report = ipam.check().await.unwrap();
    assert_eq!(
        report.counts.get(&ProblemKind::PoolRefused),
        Some(&3),
        "{}",
        report.render()
    );
    let text = report.render();
    assert!(
        text.contains("pool 10.244.64.0/18 overlaps pool 10.244.0.0/16"),
        "{text}"
    );
    assert!(text.contains("block size 8 is outside 20-32"), "{text}");
}

pub(crate) async fn node_selector_disabled_and_delete<S: Datastore>(ipam: Ipam<S>) {
    let mut selective = pool("10.9.0.0/24", 28);
    selective.node_selector.insert("zone".into(), "a".into());
    ipam.add_pool(selective).await.unwrap();
    let err = ipam
        .assign("node-a", "p", Family::Ipv4, 1)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "no enabled IPv4 pool selects node node-a");
    crate::support::create_nodes(ipam.store().url(), &["node-a"]);
    ipam.register_node(&Node {
        name: "node-a".into(),
        addresses: vec![],
        asn: 64512,
        labels: [("zone".to_string(), "a".to_string())]
            .into_iter()
            .collect(),
        vteps: vec![],
    })
    .await
    .unwrap();
    let got = ipam.assign("node-a", "p", Family::Ipv4, 1).await.unwrap();
    ipam.set_pool_disabled(net("10.9.0.0/24"), true)
        .await
        .unwrap();
    assert!(matches!(
        ipam.assign("node-a", "q", Family::Ipv4, 1)
            .await
            .unwrap_err(),
        IpamError::NoPool { .. }
    ));
    let err = ipam.delete_pool(net("10.9.0.0/24")).await.unwrap_err();
    assert!(
        matches!(err, IpamError::PoolInUse { in_use: 1, .. }),
        "{err}"
    );
    ipam.release_address(got[0].address, None).await.unwrap();
    ipam.delete_pool(net("10.9.0.0/24")).await.unwrap();
    assert!(ipam.pools().await.unwrap().is_empty());
    assert!(ipam.usage().await.unwrap().blocks.is_empty());
    assert_clean(&ipam).await;
    assert!(matches!(
        ipam.delete_pool(net("10.9.0.0/24")).await.unwrap_err(),
        IpamError::NoSuchPool(_)
    ));
}

pub(crate) async fn usage_table<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(Pool::new(net("10.244.0.0/16")))
        .await
        .unwrap();
    ipam.assign("node-a", "p", Family::Ipv4, 6).await.unwrap();
    let usage = ipam.usage().await.unwrap();
    // The numbers bgpctl's table shows (bgpctl tests the table itself).
    let pool = &usage.pools[0];
    assert_eq!(
        (pool.cidr, pool.total, pool.in_use, pool.free),
        (net("10.244.0.0/16"), 65536, 6, 65530)
    );
    let block = &usage.blocks[0];
    assert_eq!((block.total, block.in_use, block.free), (64, 6, 58));
    let json = serde_json::to_value(&usage).unwrap();
    assert_eq!(json["pools"][0]["in_use"], 6);
    assert_eq!(json["blocks"][0]["node"], "node-a");
    assert_eq!(json["blocks"][0]["free"], 58);
}

pub(crate) async fn node_registry_and_watches<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(Pool::new(net("10.244.0.0/16")))
        .await
        .unwrap();
    crate::support::create_nodes(ipam.store().url(), &["node-a"]);
    let mut nodes = ipam.watch_nodes().await.unwrap();
    let mut changes = ipam.watch().await.unwrap();
    let node = Node {
        name: "node-a".into(),
        addresses: vec![ip("192.0.2.10"), ip("2001:db8::10")],
        asn: 64512,
        labels: [("rack".to_string(), "r1".to_string())]
            .into_iter()
            .collect(),
        vteps: vec![],
    };
    ipam.register_node(&node).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), nodes.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ipam.nodes().await.unwrap(), vec![node.clone()]);
    // bgpd at start: a block for the node before its first pod, seen by the watch.
    let blocks = ipam.ensure_blocks("node-a").await.unwrap();
    assert_eq!(blocks.len(), 1);
    assert_eq!(ipam.ensure_blocks("node-a").await.unwrap(), blocks);
    let revision = tokio::time::timeout(Duration::from_secs(30), changes.changed())
        .await
        .unwrap()
        .unwrap();
    crate::support::eventually("the watch to report the claim", || async {
        ipam.node_allocations("node-a").await.unwrap().revision >= revision
    })
    .await;
    ipam.deregister_node("node-a").await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), nodes.changed())
        .await
        .unwrap()
        .unwrap();
    assert!(ipam.nodes().await.unwrap().is_empty());
    // A leave keeps the node's blocks; release_node frees them.
    assert_eq!(
        ipam.node_allocations("node-a").await.unwrap().blocks,
        blocks
    );
    ipam.release_node("node-a").await.unwrap();
    assert_no_blocks(&ipam, "node-a").await;
    assert_clean(&ipam).await;
}

pub(crate) async fn bad_names_are_refused<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(Pool::new(net("10.244.0.0/16")))
        .await
        .unwrap();
    let err = ipam
        .assign("node/a", "h", Family::Ipv4, 1)
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("invalid node name \"node/a\""),
        "{err}"
    );
    let err = ipam
        .assign("node-a", "", Family::Ipv4, 1)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid handle"), "{err}");
    let err = ipam
        .assign("node-a", "h", Family::Ipv4, 100_000)
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::TooMany { .. }), "{err}");
}
