//! bgpd with `[ipam]` on SQLite, peering with FRR: at start it claims a block per
//! family, blackholes each in the kernel (protocol 196) and advertises it; a pod
//! added through the real `ptp` plugin with `wren-ipam` makes a new block that FRR
//! learns without a restart (the plugin notifies bgpd through its control socket);
//! the `show ipam` and `ipam` commands of bgpctl, through bgpd and with `--datastore`
//! against the same file, agree; after a SIGKILL and a restart the node keeps its
//! blocks. Needs root, FRR and the CNI plugins (skips otherwise; fails with
//! WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::Instant;

use ipnet::IpNet;
use lab::TIMEOUT;
use lab::cni::wren_ipam_config;
use lab::fixture::{
    Wren, bgpctl, frr_config, frr_neighbor, kernel_route, pair, wren_binary, wren_config,
};
use lab::topology::Pod;
use lab::{Family, Frr};
use serde_json::Value;
use wren_tests::ipam_node::{forwarding, frr_prefixes, ipam_section, is_blackhole};

/// The blocks of `node` in `show ipam --json`, IPv4 and IPv6.
fn node_blocks(wren: &Wren, node: &str) -> Vec<IpNet> {
    wren.bgpctl_json(&["show", "ipam"])["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["node"] == node)
        .map(|b| b["cidr"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn blocks_are_blackholed_and_advertised_and_new_ones_follow_pods() {
    let Some(ready) = lab::require!(Root, Frr, Cni) else {
        return;
    };
    wren_binary("wren-ipam");
    let net = pair("wi-fr", "10.73.0", "fd00:73");
    forwarding(&net.b);
    let frr = Frr::start(
        &net.a,
        &frr_config(
            65001,
            "10.73.0.1",
            " neighbor 10.73.0.2 remote-as 64512",
            "",
            "  neighbor 10.73.0.2 activate",
            &[],
        ),
    )
    .unwrap();
    let url = format!("sqlite://{}", ready.dir().join("ipam.db").display());
    let node = "node-frr";
    let socket = Wren::socket_path(&net.b);
    let mut wren = Wren::start(
        &net.b,
        &wren_config(
            "10.73.0.2",
            &socket,
            true,
            &format!(
                "[[bgp.neighbor]]\naddress = \"10.73.0.1\"\nremote_asn = 65001\nfamilies = [\"ipv4\", \"ipv6\"]\n\n{}",
                ipam_section(
                    node,
                    &url,
                    &["10.73.0.2"],
                    // /31 blocks: the node's gateway and one pod fill the first.
                    "[[ipam.pool]]\ncidr = \"10.244.0.0/16\"\nblock_size = 31\n\
                     [[ipam.pool]]\ncidr = \"fd00:244::/56\"\n",
                )
            ),
        ),
    );
    frr.wait_established(TIMEOUT, &["10.73.0.2"]).unwrap();

    // At start: one block per family, blackholed and advertised.
    let blocks = wren
        .daemon
        .wait_for(TIMEOUT, "a block per family for the node", || {
            let blocks = node_blocks(&wren, node);
            if blocks.len() == 2 {
                Ok(blocks)
            } else {
                Err(format!("{blocks:?}"))
            }
        })
        .unwrap();
    let block4 = *blocks.iter().find(|b| b.addr().is_ipv4()).unwrap();
    let block6 = *blocks.iter().find(|b| b.addr().is_ipv6()).unwrap();
    assert_eq!(block4.prefix_len(), 31);
    assert_eq!(block6.prefix_len(), 122);
    for block in [block4, block6] {
        let prefix = block.to_string();
        let route = wren
            .daemon
            .wait_for(
                TIMEOUT,
                &format!("the kernel blackhole of {prefix}"),
                || kernel_route(&net.b, &prefix).ok_or("no route of protocol 196"),
            )
            .unwrap();
        assert!(is_blackhole(&route), "{prefix}: {route}");
        frr.wait_route(TIMEOUT, &prefix).unwrap();
    }

    // A pod: its address comes from the node's block (which it fills).
    let conf = wren_ipam_config(&url, node, Some(&socket));
    let first = Pod::attach(&net.b, &conf).unwrap();
    let first4: IpAddr = first.address_in(Family::Ipv4).unwrap().parse().unwrap();
    assert!(block4.contains(&first4), "{first4} not in {block4}");
    assert!(net.b.ping(&first4.to_string()), "node cannot ping {first4}");

    // wren-ipam's notification reaches bgpd and is accepted.
    assert!(ipam::cni::notify::ipam_changed(&socket));

    // The next pod needs a new block: FRR learns it without a restart.
    let second = Pod::attach(&net.b, &conf).unwrap();
    let added = Instant::now();
    let second4: IpAddr = second.address_in(Family::Ipv4).unwrap().parse().unwrap();
    let new_block = IpNet::new(second4, 31).unwrap().trunc();
    assert_ne!(new_block, block4);
    frr.wait_for(TIMEOUT, &format!("FRR to learn {new_block}"), || {
        if frr_prefixes(&frr, true).contains(&new_block.to_string()) {
            Ok(())
        } else {
            Err(String::from("not yet"))
        }
    })
    .unwrap();
    // A figure for the report, not a requirement of this test.
    eprintln!(
        "new block {new_block} in FRR's table {:?} after the CNI ADD returned",
        added.elapsed()
    );
    let route = kernel_route(&net.b, &new_block.to_string()).unwrap();
    assert!(is_blackhole(&route), "{route}");

    // bgpctl through bgpd, and against the datastore directly: the same report.
    let through_bgpd = wren.bgpctl_json(&["show", "ipam"]);
    let direct = bgpctl(&socket, &["--json", "show", "ipam", "--datastore", &url]);
    assert!(direct.status.success(), "{direct:?}");
    let direct: Value = serde_json::from_slice(&direct.stdout).unwrap();
    assert_eq!(through_bgpd, direct);
    let pool4 = through_bgpd["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["cidr"] == "10.244.0.0/16")
        .unwrap()
        .clone();
    // The node's IPv4 gateway and two pods: 3 IPv4 addresses in use.
    assert_eq!(pool4["total"], 65536, "{pool4}");
    assert_eq!(pool4["in_use"], 3, "{pool4}");
    assert_eq!(pool4["free"], 65533, "{pool4}");
    let table = wren.bgpctl_ok(&["show", "ipam", "--blocks"]);
    for needle in [
        "GROUPING",
        "IPS IN USE",
        "IP Pool",
        "10.244.0.0/16",
        "Block",
        &block4.to_string(),
        &new_block.to_string(),
    ] {
        assert!(table.contains(needle), "{needle} missing:\n{table}");
    }

    // One address: handle, node and block.
    let info = wren.bgpctl_json(&["show", "ipam", "--ip", &first4.to_string()]);
    assert_eq!(info["node"], node, "{info}");
    assert_eq!(info["block"], block4.to_string(), "{info}");
    // The handle is the container (the pod's namespace) and its interface.
    assert_eq!(
        info["handle"],
        format!("{}.eth0", first.netns().name()),
        "{info}"
    );

    // The audit is clean (exit 0).
    let check = wren.bgpctl_json(&["ipam", "check"]);
    assert_eq!(check["problems"], 0, "{check}");

    // Release one address through bgpd: the store no longer has it.
    wren.bgpctl_ok(&["ipam", "release", "--ip", &second4.to_string()]);
    let text = wren.bgpctl_ok(&["show", "ipam", "--ip", &second4.to_string()]);
    assert!(text.contains("not allocated"), "{text}");

    // Pools through bgpd: add, list, delete; an overlapping one is refused in one line.
    wren.bgpctl_ok(&["ipam", "pool", "add", "10.250.0.0/24", "--block-size", "28"]);
    let list = wren.bgpctl_ok(&["ipam", "pool", "list"]);
    assert!(list.contains("10.250.0.0/24"), "{list}");
    let refused = wren.bgpctl(&["ipam", "pool", "add", "10.250.0.128/25"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("10.250.0.0/24"), "{stderr}");
    wren.bgpctl_ok(&["ipam", "pool", "delete", "10.250.0.0/24"]);
    let list = wren.bgpctl_ok(&["ipam", "pool", "list"]);
    assert!(!list.contains("10.250.0.0/24"), "{list}");
    drop(second);
    drop(first);
    let check = wren.bgpctl_json(&["ipam", "check"]);
    assert_eq!(check["problems"], 0, "{check}");

    // bgpd killed with SIGKILL and started again: the node keeps its blocks (no new
    // claim), they are blackholed and advertised again, the store is consistent.
    let before = node_blocks(&wren, node);
    let connections = || frr_neighbor(&frr, "10.73.0.2")["connectionsEstablished"].as_u64();
    let established = connections().unwrap();
    wren.daemon.kill().unwrap();
    wren.daemon.restart().unwrap();
    wren.daemon
        .wait_for(TIMEOUT, "bgpd's control socket after the restart", || {
            let output = wren.bgpctl(&["show", "ipam"]);
            if output.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&output.stderr).into_owned())
            }
        })
        .unwrap();
    frr.wait_for(
        TIMEOUT,
        "FRR's session with the restarted bgpd",
        || match connections() {
            Some(now) if now > established => Ok(()),
            other => Err(format!("connections established: {other:?}")),
        },
    )
    .unwrap();
    frr.wait_established(TIMEOUT, &["10.73.0.2"]).unwrap();
    assert_eq!(node_blocks(&wren, node), before);
    frr.wait_route(TIMEOUT, &block4.to_string()).unwrap();
    frr.wait_route(TIMEOUT, &new_block.to_string()).unwrap();
    assert!(is_blackhole(
        &kernel_route(&net.b, &block4.to_string()).unwrap()
    ));
    let check = wren.bgpctl_json(&["ipam", "check"]);
    assert_eq!(check["problems"], 0, "{check}");
}
