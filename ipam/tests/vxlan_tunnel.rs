//! The nodes' VXLAN tunnel endpoints against every datastore (SQLite always; etcd
//! when installed): the tunnel address is an IPAM allocation in the node's block of
//! a VXLAN pool, kept across calls, one per node and family even when asked for
//! concurrently, and given back when no VXLAN pool is left; the registry keeps the
//! endpoints.

#![allow(clippy::unwrap_used)]

mod support;

use support::battery;

use std::collections::BTreeMap;

use ipam::store::Datastore;
use ipam::{Family, Ipam, Node, Pool, Vtep, VxlanMode, tunnel_handle};
use ipnet::IpNet;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn vxlan_pool(cidr: &str) -> Pool {
    Pool {
        vxlan_mode: VxlanMode::CrossSubnet,
        ..Pool::new(net(cidr))
    }
}

async fn tunnel_address_comes_from_a_vxlan_pool_block<S: Datastore>(ipam: Ipam<S>) {
    // A plain pool first: the node's first block comes from it.
    ipam.add_pool(Pool::new(net("10.96.0.0/16"))).await.unwrap();
    ipam.ensure_blocks("node-a").await.unwrap();
    assert_eq!(
        ipam.ensure_vtep("node-a", Family::Ipv4).await.unwrap(),
        None
    );

    ipam.add_pool(vxlan_pool("10.244.0.0/16")).await.unwrap();
    let vtep = ipam
        .ensure_vtep("node-a", Family::Ipv4)
        .await
        .unwrap()
        .unwrap();
    assert!(
        net("10.244.0.0/16").contains(&vtep.tunnel_address),
        "{vtep:?}"
    );
    assert_eq!(vtep.mac, ipam::vtep_mac("node-a", Family::Ipv4));
    // In a block of the node's own (claimed for it), named by its handle.
    let info = ipam
        .address_info(vtep.tunnel_address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.handle, "wren-vxlan-tunnel.node-a.ipv4");
    assert_eq!(info.handle, tunnel_handle("node-a", Family::Ipv4));
    assert_eq!(info.block_owner.as_deref(), Some("node-a"));
    assert!(!info.borrowed);
    // Kept: a second call writes nothing.
    let revision = ipam.store().revision().await.unwrap();
    assert_eq!(
        ipam.ensure_vtep("node-a", Family::Ipv4).await.unwrap(),
        Some(vtep)
    );
    assert_eq!(ipam.store().revision().await.unwrap(), revision);
    // No IPv6 pool: no IPv6 endpoint.
    assert_eq!(
        ipam.ensure_vtep("node-a", Family::Ipv6).await.unwrap(),
        None
    );

    // The registry records it as given.
    let node = Node {
        name: "node-a".into(),
        addresses: vec!["192.0.2.10".parse().unwrap()],
        asn: 64512,
        labels: BTreeMap::new(),
        vteps: vec![vtep],
    };
    ipam.register_node(&node).await.unwrap();
    assert_eq!(ipam.node("node-a").await.unwrap(), Some(node));

    // VXLAN switched off (the pool disabled): the address is given back.
    ipam.set_pool_disabled(net("10.244.0.0/16"), true)
        .await
        .unwrap();
    assert_eq!(
        ipam.ensure_vtep("node-a", Family::Ipv4).await.unwrap(),
        None
    );
    assert_eq!(ipam.address_info(vtep.tunnel_address).await.unwrap(), None);
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{}", report.render());
}

async fn one_tunnel_address_per_node_and_family_under_concurrency<S: Datastore + Clone>(
    ipam: Ipam<S>,
) {
    ipam.add_pool(vxlan_pool("10.244.0.0/16")).await.unwrap();
    ipam.add_pool(Pool {
        vxlan_mode: VxlanMode::Always,
        ..Pool::new(net("fd00:10:244::/56"))
    })
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        for family in [Family::Ipv4, Family::Ipv6] {
            let ipam = ipam.clone();
            tasks.push(tokio::spawn(async move {
                ipam.ensure_vtep("node-b", family).await.unwrap().unwrap()
            }));
        }
    }
    let mut seen: Vec<Vtep> = Vec::new();
    for task in tasks {
        let vtep = task.await.unwrap();
        if !seen.contains(&vtep) {
            seen.push(vtep);
        }
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    for family in [Family::Ipv4, Family::Ipv6] {
        let held = ipam
            .addresses_of(&tunnel_handle("node-b", family))
            .await
            .unwrap();
        assert_eq!(held.len(), 1, "{family}: {held:?}");
    }
    assert_ne!(seen[0].mac, seen[1].mac);
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{}", report.render());
}

/// A second VXLAN pool of a family must take the first one's VNI and port (one
/// device per family): another VNI or port is refused with one line naming both
/// pools, and nothing is stored; the other family and a `never` pool are free.
async fn a_second_vxlan_pool_of_a_family_takes_the_first_ones_vni_and_port<S: Datastore>(
    ipam: Ipam<S>,
) {
    ipam.add_pool(vxlan_pool("10.244.0.0/16")).await.unwrap();
    for (vni, port) in [(4097, 4789), (4096, 8472)] {
        let error = ipam
            .add_pool(Pool {
                vxlan_vni: vni,
                vxlan_port: port,
                ..vxlan_pool("10.245.0.0/16")
            })
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!(
                "pool 10.245.0.0/16: vxlan_vni {vni} and vxlan_port {port} differ from VXLAN pool 10.244.0.0/16's 4096 and 4789: one VXLAN device serves every IPv4 pool"
            )
        );
        assert!(!error.contains('\n'));
    }
    let pools: Vec<IpNet> = ipam.pools().await.unwrap().iter().map(|p| p.cidr).collect();
    assert_eq!(pools, [net("10.244.0.0/16")]);
    // The same VNI and port; a pool that does not encapsulate; IPv6 on its own.
    ipam.add_pool(vxlan_pool("10.245.0.0/16")).await.unwrap();
    ipam.add_pool(Pool {
        vxlan_vni: 7,
        ..Pool::new(net("10.246.0.0/16"))
    })
    .await
    .unwrap();
    ipam.add_pool(Pool {
        vxlan_vni: 7,
        ..vxlan_pool("fd00:10:244::/56")
    })
    .await
    .unwrap();
    assert_eq!(ipam.pools().await.unwrap().len(), 4);
}

battery!(
    [sqlite, etcd],
    |store| ipam::Ipam::new(store),
    [
        tunnel_address_comes_from_a_vxlan_pool_block,
        one_tunnel_address_per_node_and_family_under_concurrency,
        a_second_vxlan_pool_of_a_family_takes_the_first_ones_vni_and_port,
    ]
);
