//! The VXLAN overlay on the Kubernetes datastore (issue 15): a remote node's new
//! block reaches this node's kernel at once, not at the next resync. bgpd (node-k,
//! BGP-less, `resync_interval = 300`) runs against a real kube-apiserver in its
//! namespace; remote-k is only records (its Node, its block, its VTEP). When
//! remote-k's first block fills up and it claims a second one (no pool and no
//! registry change), the second block's route via remote-k's tunnel address
//! appears within seconds: bgpd's IPAM task follows the watch of who uses which
//! block.
//!
//! Needs root and the built kube-apiserver (skips otherwise; fails with
//! WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ipam::{AnyStore, Family, Ipam};
use lab::fixture::{Wren, kernel_route, wren_config};
use lab::kube::ControlPlane;
use lab::{Netns, TIMEOUT, Veth};
use wren_tests::ipam_node::ipam_section;

/// Runs `work` against the datastore from inside `netns` (the API server listens on
/// the namespace's loopback).
fn in_store<T: Send>(
    netns: &Netns,
    url: &str,
    work: impl AsyncFnOnce(Ipam<AnyStore>) -> T + Send,
) -> T {
    netns
        .enter(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async { work(ipam::connect(url).await.unwrap()).await })
        })
        .unwrap()
}

#[test]
fn a_remote_nodes_new_block_reaches_the_overlay_at_once_on_kubernetes() {
    let Some(_ready) = lab::require!(Root, KubeApiserver) else {
        return;
    };
    let a = Netns::new("wk-a").unwrap();
    let b = Netns::new("wk-b").unwrap();
    let _link = Veth::new(&a, "eth1", &b, "eth1").unwrap();
    a.iface("eth1").addr("10.88.1.1/24").unwrap().up().unwrap();
    b.iface("eth1").addr("10.88.1.2/24").unwrap().up().unwrap();
    a.lo_up().unwrap();
    let control = ControlPlane::in_netns(&a, "127.0.0.1".parse().unwrap()).unwrap();
    // The shipped CRDs (and the rest of deploy/), as a user applies them.
    control.apply_deploy().unwrap();
    for name in ["node-k", "remote-k"] {
        let node =
            serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}});
        control
            .kubectl_input(&["apply", "-f", "-"], &node.to_string())
            .unwrap();
    }
    let url = format!("kubernetes://{}", control.kubeconfig().display());
    let pools =
        "resync_interval = 300\n[[ipam.pool]]\ncidr = \"10.252.0.0/16\"\nvxlan_mode = \"always\"\n";
    let config = wren_config(
        "10.88.1.1",
        &Wren::socket_path(&a),
        true,
        &ipam_section("node-k", &url, &["10.88.1.1"], pools),
    )
    .replace("[bgp]\n", "[bgp]\nnode_mesh = false\n");
    let wren = Wren::start(&a, &config);
    wren.daemon
        .wait_until(TIMEOUT, "node-k's tunnel endpoint", || {
            in_store(&a, &url, async |ipam| {
                ipam.node("node-k")
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|n| !n.vteps.is_empty())
            })
        })
        .unwrap();

    // remote-k: its first block and its VTEP, registered (a registry change).
    let (first, tunnel) = in_store(&a, &url, async |ipam| {
        let blocks = ipam.ensure_blocks("remote-k").await.unwrap();
        let vtep = ipam
            .ensure_vtep("remote-k", Family::Ipv4)
            .await
            .unwrap()
            .unwrap();
        let mut node = ipam.node("remote-k").await.unwrap().unwrap_or(ipam::Node {
            name: "remote-k".into(),
            addresses: vec![],
            asn: 64512,
            labels: Default::default(),
            vteps: vec![],
        });
        node.addresses = vec!["10.88.1.2".parse().unwrap()];
        node.vteps = vec![vtep];
        ipam.register_node(&node).await.unwrap();
        (blocks.into_iter().next().unwrap(), vtep.tunnel_address)
    });
    let first = first.to_string();
    let route = wren
        .daemon
        .wait_for(TIMEOUT, &format!("{first} on node-k"), || {
            kernel_route(&a, &first).ok_or("no route of protocol 196")
        })
        .unwrap();
    assert_eq!(route["dev"], "vxlan.wren", "{route}");

    // remote-k's pods fill its block: it claims a second one (no registry change).
    let claimed = Instant::now();
    let second = in_store(&a, &url, async |ipam| {
        let assigned = ipam
            .assign("remote-k", "pods-of-remote-k", Family::Ipv4, 70)
            .await
            .unwrap();
        let mut blocks: Vec<_> = assigned.iter().map(|a| a.block).collect();
        blocks.dedup();
        blocks
    });
    let second: Vec<String> = second
        .iter()
        .map(ToString::to_string)
        .filter(|b| *b != first)
        .collect();
    assert_eq!(second.len(), 1, "{second:?}");
    let second = &second[0];
    let route = wren
        .daemon
        .wait_for(
            Duration::from_secs(20),
            &format!("{second} on node-k"),
            || kernel_route(&a, second).ok_or("no route of protocol 196"),
        )
        .unwrap();
    let took = claimed.elapsed();
    println!("remote-k's second block reached node-k's kernel {took:?} after its claim began");
    assert_eq!(route["dev"], "vxlan.wren", "{route}");
    assert_eq!(route["gateway"], tunnel.to_string().as_str(), "{route}");
    drop(wren);
}
