//! The real `ptp` plugin (containernetworking-plugins, /usr/lib/cni) chained with
//! `wren-ipam`: a pod network namespace gets an address from its node's block, a
//! default route through the node's gateway, and is reachable from the node; DEL
//! removes it and frees the address. Needs root (skips otherwise, fails under
//! WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::process::Stdio;

use ipam::{Ipam, Pool};
use serde_json::Value;

fn ptp(node: &lab::Netns, pod: &lab::Netns, command: &str, conf: &str) -> (bool, String) {
    let plugin_dir = Path::new(env!("CARGO_BIN_EXE_wren-ipam")).parent().unwrap();
    let mut child = node
        .command("/usr/lib/cni/ptp")
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", format!("ctr-{}", std::process::id()))
        .env("CNI_NETNS", pod.path())
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", format!("{}:/usr/lib/cni", plugin_dir.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

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
    let pod = lab::Netns::new("wren-pod").unwrap();
    let conf = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "wren",
        "type": "ptp",
        "ipMasq": false,
        "ipam": { "type": "wren-ipam", "datastore": guard.url, "node": "node-a" }
    })
    .to_string();

    let (ok, out) = tokio::task::block_in_place(|| ptp(&node, &pod, "ADD", &conf));
    assert!(ok, "ptp ADD failed: {out}");
    let result: Value = serde_json::from_str(&out).unwrap();
    let ips = result["ips"].as_array().unwrap();
    assert_eq!(ips.len(), 2, "{out}");
    let address: IpAddr = ips[0]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let address6: IpAddr = ips[1]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();

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

    let (ok, out) = tokio::task::block_in_place(|| ptp(&node, &pod, "DEL", &conf));
    assert!(ok, "ptp DEL failed: {out}");
    assert!(ipam.address_info(address).await.unwrap().is_none());
    assert!(ipam.check().await.unwrap().is_clean());
}
