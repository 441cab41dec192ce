//! The real `ptp` plugin (containernetworking-plugins, /usr/lib/cni) chained with
//! `wren-ipam`: a pod network namespace gets an address from its node's block, a
//! default route through the node's gateway, and is reachable from the node; DEL
//! removes it and frees the address. Needs root (skips otherwise, fails under
//! WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used)]

mod support;

use std::net::IpAddr;

use ipam::{Ipam, Pool};
use lab::cni::wren_ipam_config;
use lab::topology::Pod;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptp_pod_gets_an_address_and_a_route() {
    let Some(_ready) = lab::require!(Root, Cni) else {
        return;
    };
    let (store, guard) = support::sqlite().await.unwrap();
    let ipam = Ipam::new(store);
    ipam.add_pool(Pool::new("10.244.0.0/16".parse().unwrap()))
        .await
        .unwrap();
    ipam.add_pool(Pool::new("fd00:10:244::/56".parse().unwrap()))
        .await
        .unwrap();
    let node = lab::Netns::new("wren-node").unwrap();
    let conf = wren_ipam_config(&guard.url, "node-a", None);

    let attached = tokio::task::block_in_place(|| Pod::attach(&node, &conf)).unwrap();
    let result = attached.result().clone();
    let ips = result["ips"].as_array().unwrap();
    assert_eq!(ips.len(), 2, "{result}");
    let pod = attached.netns();
    let host = |ip: &serde_json::Value| -> IpAddr {
        let cidr: ipnet::IpNet = ip["address"].as_str().unwrap().parse().unwrap();
        cidr.addr()
    };
    let (address, address6) = (host(&ips[0]), host(&ips[1]));

    // The address is from node-a's block.
    let blocks = ipam.node_allocations("node-a").await.unwrap().blocks;
    assert!(
        blocks.iter().any(|b| b.contains(&address)),
        "{address} not in {blocks:?}"
    );
    assert!(
        blocks.iter().any(|b| b.contains(&address6)),
        "{address6} not in {blocks:?}"
    );
    // The pod has it on eth0 and a default route through the gateway.
    let addrs = pod.ip(&["-o", "addr", "show", "dev", "eth0"]).unwrap();
    assert!(addrs.contains(&format!("inet {address}/")), "{addrs}");
    let gateway = ips[0]["gateway"].as_str().unwrap();
    let routes = pod.ip(&["route", "show", "default"]).unwrap();
    assert!(
        routes.contains(&format!("default via {gateway} dev eth0")),
        "{routes}"
    );
    let routes6 = pod.ip(&["-6", "route", "show", "default"]).unwrap();
    assert!(
        routes6.contains(&format!("via {}", ips[1]["gateway"].as_str().unwrap())),
        "{routes6}"
    );
    // The node reaches the pod, and the pod its gateway.
    assert!(
        tokio::task::block_in_place(|| node.ping(&address.to_string())),
        "node cannot ping {address}"
    );
    assert!(
        tokio::task::block_in_place(|| pod.ping(gateway)),
        "pod cannot ping {gateway}"
    );

    tokio::task::block_in_place(|| attached.delete()).unwrap();
    assert!(ipam.address_info(address).await.unwrap().is_none());
    assert!(ipam.check().await.unwrap().is_clean());
}
