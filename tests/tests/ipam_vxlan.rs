//! bgpd with VXLAN pools registers the node's tunnel endpoints (issue 15): per
//! family, a tunnel address taken from the node's block as the IPAM handle
//! `wren-vxlan-tunnel.NODE.ipv4|ipv6` (shown by `bgpctl show ipam --ip` through
//! bgpd) and a VTEP MAC derived from the node name, both in the node registry. A
//! restart finds them as they are and writes nothing to the datastore; a VXLAN pool
//! added while bgpd runs gives the node its endpoint without a restart. Needs root
//! (skips otherwise; fails with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used)]

use ipam::{Family, Node};
use lab::TIMEOUT;
use lab::fixture::{Wren, wren_config};
use wren_tests::ipam_node::ipam_section;

const POOLS: &str = "[[ipam.pool]]\ncidr = \"10.244.0.0/16\"\nvxlan_mode = \"cross_subnet\"\n\
                     [[ipam.pool]]\ncidr = \"fd00:10:244::/56\"\nvxlan_mode = \"always\"\n";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The node's registry record and the store's revision.
fn registered(url: &str, node: &str) -> (Option<Node>, u64) {
    runtime().block_on(async {
        let ipam = ipam::connect(url).await.unwrap();
        let revision = ipam::Datastore::revision(ipam.store()).await.unwrap();
        (ipam.node(node).await.unwrap(), revision)
    })
}

#[test]
fn bgpd_registers_the_tunnel_endpoints_and_a_restart_keeps_them() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let netns = lab::Netns::new("wi-vx").unwrap();
    netns.lo_up().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ipam.db", dir.path().display());
    let socket = Wren::socket_path(&netns);
    let config = wren_config(
        "10.78.0.1",
        &socket,
        false,
        &ipam_section("node-vx", &url, &["10.78.0.1", "fd00:78::1"], POOLS),
    );
    let wren = Wren::start(&netns, &config);
    let node = wren
        .daemon
        .wait_for(
            TIMEOUT,
            "both tunnel endpoints in the registry",
            || match registered(&url, "node-vx").0 {
                Some(node) if node.vteps.len() == 2 => Ok(node),
                other => Err(format!("{other:?}")),
            },
        )
        .unwrap();
    let families: Vec<Family> = node
        .vteps
        .iter()
        .map(|v| Family::of_addr(&v.tunnel_address))
        .collect();
    assert_eq!(families, [Family::Ipv4, Family::Ipv6], "{node:?}");
    for (vtep, family) in node.vteps.iter().zip(families) {
        assert_eq!(vtep.mac, ipam::vtep_mac("node-vx", family));
        let info = wren.bgpctl_json(&["show", "ipam", "--ip", &vtep.tunnel_address.to_string()]);
        assert_eq!(
            info["handle"],
            ipam::tunnel_handle("node-vx", family).as_str(),
            "{info}"
        );
        assert_eq!(info["node"], "node-vx", "{info}");
        assert_eq!(info["borrowed"], false, "{info}");
    }
    let revision = registered(&url, "node-vx").1;
    drop(wren);

    let wren = Wren::start(&netns, &config);
    wren.daemon
        .wait_log(TIMEOUT, "ipam: advertising the node's blocks")
        .unwrap();
    let (again, after) = registered(&url, "node-vx");
    assert_eq!(again.as_ref(), Some(&node));
    assert_eq!(after, revision, "the restart wrote to the datastore");
}

#[test]
fn a_vxlan_pool_added_while_bgpd_runs_gives_the_node_its_endpoint() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let netns = lab::Netns::new("wi-vy").unwrap();
    netns.lo_up().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ipam.db", dir.path().display());
    let socket = Wren::socket_path(&netns);
    let config = wren_config(
        "10.79.0.1",
        &socket,
        false,
        &ipam_section(
            "node-vy",
            &url,
            &["10.79.0.1"],
            "[[ipam.pool]]\ncidr = \"10.96.0.0/16\"\n",
        ),
    );
    let wren = Wren::start(&netns, &config);
    wren.daemon
        .wait_log(TIMEOUT, "ipam: advertising the node's blocks")
        .unwrap();
    assert_eq!(registered(&url, "node-vy").0.unwrap().vteps, vec![]);
    wren.bgpctl_ok(&[
        "ipam",
        "pool",
        "add",
        "10.244.0.0/16",
        "--vxlan-mode",
        "always",
    ]);
    let node = wren
        .daemon
        .wait_for(
            TIMEOUT,
            "the IPv4 tunnel endpoint in the registry",
            || match registered(&url, "node-vy").0 {
                Some(node) if node.vteps.len() == 1 => Ok(node),
                other => Err(format!("{other:?}")),
            },
        )
        .unwrap();
    let vtep = node.vteps[0];
    assert!(
        "10.244.0.0/16"
            .parse::<ipnet::IpNet>()
            .unwrap()
            .contains(&vtep.tunnel_address),
        "{vtep:?}"
    );
    assert_eq!(vtep.mac, ipam::vtep_mac("node-vy", Family::Ipv4));
}
