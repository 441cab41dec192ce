//! Pod-to-pod TCP throughput as a ratio to host-to-host over the same link, routed
//! natively and through the VXLAN overlay, in one run (issue 15's speed goal: native
//! pod-to-pod at >= 0.95 of host-to-host).
//!
//! Two node namespaces joined by one veth (the link, MTU 1500), a pod namespace on
//! each (a veth to its node, the node's side the pod's gateway). Native: each node
//! routes the other's pod subnet via the other node. VXLAN: `vxlan.wren` made on both
//! by `dataplane::vxlan` (what bgpd's dataplane task runs) and the pod subnet routed
//! `via TUNNEL_ADDRESS dev vxlan.wren onlink`, the pods' MTU 1450 (as bgpd writes it).
//! Each round measures host-to-host, native pod-to-pod and VXLAN pod-to-pod with
//! `iperf3 -J` (one TCP stream), so drift on a busy machine hits all three alike;
//! the medians and the ratios are printed. Each round runs twice: with the link
//! unshaped (a veth, bound by the CPU) and shaped by tbf to 1 Gbit/s (bound by the
//! link, as with a NIC).
//!
//! `sudo cargo bench -p dataplane --bench pod_throughput` (5 rounds of 5 s); without
//! `--bench` (as `cargo test --all-targets` runs it) one round of 1 s. Needs root and
//! iperf3; skips otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use dataplane::snapshot::VxlanMode;
use dataplane::vxlan::kernel;
use dataplane::{BlockOwner, Node, Pool, Snapshot, Vtep};
use lab::{Netns, Veth};

const NODE_A: &str = "192.0.2.1";
const NODE_B: &str = "192.0.2.2";
const POD_A: &str = "10.244.0.10";
const POD_B: &str = "10.244.1.10";

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    if let Err(reason) = lab::check(lab::Prereq::Root) {
        println!("pod_throughput: skipped ({reason})");
        return;
    }
    if Command::new("iperf3").arg("--version").output().is_err() {
        println!("pod_throughput: skipped (iperf3 is not installed: apt-get install iperf3)");
        return;
    }
    let (rounds, seconds) = if full { (5, 5) } else { (1, 1) };
    let a = Netns::new("wd-tp-a").unwrap();
    let b = Netns::new("wd-tp-b").unwrap();
    let _link = Veth::new(&a, "eth1", &b, "eth1").unwrap();
    a.iface("eth1")
        .addr(&format!("{NODE_A}/24"))
        .unwrap()
        .up()
        .unwrap();
    b.iface("eth1")
        .addr(&format!("{NODE_B}/24"))
        .unwrap()
        .up()
        .unwrap();
    let (pod_a, _veth_a) = pod(&a, "10.244.0.1", POD_A);
    let (pod_b, _veth_b) = pod(&b, "10.244.1.1", POD_B);
    for node in [&a, &b] {
        node.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])
            .unwrap();
    }
    overlay(&a, "a");
    overlay(&b, "b");
    let pod_links = [(&pod_a, "eth0"), (&a, "pod"), (&pod_b, "eth0"), (&b, "pod")];

    let cluster = Cluster {
        a: &a,
        b: &b,
        pod_a: &pod_a,
        pod_b: &pod_b,
        pod_links,
    };
    // Unshaped, the link is a veth: every path is bound by the CPU, so the pod path's
    // two extra veth hops show. Shaped to LINK_RATE (tbf on both ends), the link is the
    // bottleneck, as a NIC is on a real network.
    let mut free = [Vec::new(), Vec::new(), Vec::new()];
    let mut shaped = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (rate, results) in [(None, &mut free), (Some(LINK_RATE), &mut shaped)] {
            for node in [&a, &b] {
                shape(node, rate);
            }
            let [host, native, vxlan] = cluster.round(seconds);
            println!(
                "round {round}, link {}: host {:.2} Gbit/s, native pod {:.2}, vxlan pod {:.2}",
                rate.unwrap_or("unshaped"),
                host / 1e9,
                native / 1e9,
                vxlan / 1e9
            );
            for (all, value) in results.iter_mut().zip([host, native, vxlan]) {
                all.push(value);
            }
        }
    }
    for (link, results) in [("unshaped", free), (LINK_RATE, shaped)] {
        let [host, native, vxlan] = results.map(median);
        println!(
            "pod_throughput, link {link} ({rounds} rounds of {seconds} s, one TCP stream, medians): host-to-host {:.2} Gbit/s, native pod-to-pod {:.2} Gbit/s (ratio {:.3}), VXLAN pod-to-pod {:.2} Gbit/s (ratio {:.3})",
            host / 1e9,
            native / 1e9,
            native / host,
            vxlan / 1e9,
            vxlan / host
        );
    }
}

/// The rate the link is shaped to in the second half of each round: well below what
/// the veths carry on this 2-core machine even when it is busy (3-9 Gbit/s unshaped),
/// like a NIC slower than the CPU.
const LINK_RATE: &str = "1gbit";

/// The two nodes and their pods.
struct Cluster<'a> {
    a: &'a Netns,
    b: &'a Netns,
    pod_a: &'a Netns,
    pod_b: &'a Netns,
    pod_links: [(&'a Netns, &'a str); 4],
}

impl Cluster<'_> {
    /// Host-to-host, native pod-to-pod and VXLAN pod-to-pod, in bits per second.
    fn round(&self, seconds: u32) -> [f64; 3] {
        let Self {
            a, b, pod_a, pod_b, ..
        } = self;
        let host = iperf(b, NODE_B, a, seconds);
        route(a, "10.244.1.0/24", &["via", NODE_B, "dev", "eth1"]);
        route(b, "10.244.0.0/24", &["via", NODE_A, "dev", "eth1"]);
        mtu(&self.pod_links, 1500);
        let native = iperf(pod_b, POD_B, pod_a, seconds);
        let tunnel = ["dev", "vxlan.wren", "onlink"];
        route(
            a,
            "10.244.1.0/24",
            &[&["via", "10.244.1.0"][..], &tunnel].concat(),
        );
        route(
            b,
            "10.244.0.0/24",
            &[&["via", "10.244.0.0"][..], &tunnel].concat(),
        );
        mtu(&self.pod_links, 1450);
        let vxlan = iperf(pod_b, POD_B, pod_a, seconds);
        [host, native, vxlan]
    }
}

/// The link's end `eth1` on `node` shaped to `rate` by tbf, or unshaped.
fn shape(node: &Netns, rate: Option<&str>) {
    let _ = node.exec(&["tc", "qdisc", "del", "dev", "eth1", "root"]);
    if let Some(rate) = rate {
        node.exec(&[
            "tc", "qdisc", "add", "dev", "eth1", "root", "tbf", "rate", rate, "burst", "1mb",
            "latency", "20ms",
        ])
        .unwrap();
    }
}

/// A pod namespace at `address`/24 whose gateway `gateway` is its node's side `pod`.
fn pod(node: &Netns, gateway: &str, address: &str) -> (Netns, Veth) {
    let pod = Netns::new("wd-tp-pod").unwrap();
    let veth = Veth::new(node, "pod", &pod, "eth0").unwrap();
    node.iface("pod")
        .addr(&format!("{gateway}/24"))
        .unwrap()
        .up()
        .unwrap();
    pod.iface("eth0")
        .addr(&format!("{address}/24"))
        .unwrap()
        .up()
        .unwrap();
    pod.ip(&["route", "add", "default", "via", gateway])
        .unwrap();
    (pod, veth)
}

/// `vxlan.wren` on `netns` for node `name` of the two-node cluster.
fn overlay(netns: &Netns, name: &str) {
    let node = |name: &str, address: &str, tunnel: &str, last: u8| Node {
        name: name.into(),
        addresses: vec![address.parse().unwrap()],
        vteps: vec![Vtep {
            tunnel_address: tunnel.parse().unwrap(),
            mac: [0x02, 0, 0, 0, 0, last],
        }],
    };
    let owner = |block: &str, node: &str| BlockOwner {
        block: block.parse().unwrap(),
        node: node.into(),
    };
    let snapshot = Snapshot {
        pools: vec![Pool {
            cidr: "10.244.0.0/16".parse().unwrap(),
            nat_outgoing: false,
            vxlan_mode: VxlanMode::Always,
            vxlan_vni: 4096,
            vxlan_port: 4789,
        }],
        nodes: vec![
            node("a", NODE_A, "10.244.0.0", 1),
            node("b", NODE_B, "10.244.1.0", 2),
        ],
        blocks: vec![owner("10.244.0.0/24", "a"), owner("10.244.1.0/24", "b")],
        borrowed: vec![],
    };
    netns
        .enter(|| kernel::sync_once(&snapshot, name))
        .unwrap()
        .unwrap();
}

fn route(netns: &Netns, prefix: &str, via: &[&str]) {
    let mut args = vec!["route", "replace", prefix];
    args.extend_from_slice(via);
    netns.ip(&args).unwrap();
}

fn mtu(links: &[(&Netns, &str)], mtu: u32) {
    for (netns, name) in links {
        netns.iface(name).mtu(mtu).unwrap();
    }
}

/// One iperf3 TCP stream from `client` to `server`'s `address` for `seconds`: bits
/// per second received.
fn iperf(server: &Netns, address: &str, client: &Netns, seconds: u32) -> f64 {
    let mut listening = server
        .command("iperf3")
        .args(["-s", "-1", "-B", address])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let output = client
        .command("iperf3")
        .args(["-c", address, "-t", &seconds.to_string(), "-J"])
        .output()
        .unwrap();
    let _ = listening.wait();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "iperf3 to {address}: {e}: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("iperf3 to {address}: {report}"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
