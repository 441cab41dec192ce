//! Dynamic neighbors: bgpd as a route reflector accepting sessions from any address
//! of a `[[bgp.listen_range]]`, with two FRR clients; routes are reflected between
//! them, and a client that leaves is forgotten. Needs root and FRR.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lab::TIMEOUT;
use lab::fixture::{Wren, frr_config, wren_config};
use lab::{Frr, Netns, Veth, wait_until};

fn client(netns: &Netns, address: &str, network: &str) -> Frr {
    Frr::start(
        netns,
        &frr_config(
            64512,
            address,
            " neighbor 10.71.0.2 remote-as 64512\n neighbor 10.71.0.2 timers connect 1",
            &format!("  network {network}"),
            "",
            &[network],
        ),
    )
    .unwrap()
}

#[test]
fn route_reflector_with_two_dynamic_clients() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    // bgpd in `hub` with 10.71.0.2 on its loopback, one link per client.
    let hub = Netns::new("wb-dh").unwrap();
    let left = Netns::new("wb-dl").unwrap();
    let right = Netns::new("wb-dr").unwrap();
    let _l = Veth::new(&hub, "eth1", &left, "eth1").unwrap();
    let _r = Veth::new(&hub, "eth2", &right, "eth1").unwrap();
    hub.iface("lo").addr("10.71.0.2/32").unwrap();
    hub.iface("eth1").addr("10.71.1.2/24").unwrap();
    hub.iface("eth2").addr("10.71.2.2/24").unwrap();
    left.iface("eth1").addr("10.71.1.1/24").unwrap();
    right.iface("eth1").addr("10.71.2.1/24").unwrap();
    left.ip(&["route", "add", "10.71.0.2/32", "via", "10.71.1.2"])
        .unwrap();
    right
        .ip(&["route", "add", "10.71.0.2/32", "via", "10.71.2.2"])
        .unwrap();

    let socket = Wren::socket_path(&hub);
    let wren = Wren::start(
        &hub,
        &wren_config(
            "10.71.0.2",
            &socket,
            false,
            "[[bgp.listen_range]]
prefix = \"10.71.0.0/16\"
remote_asn = 64512
route_reflector_client = true
hold_time = 9
max_neighbors = 8
description = \"clients\"
",
        ),
    );
    let frr_left = client(&left, "10.71.1.1", "10.150.1.0/24");
    let frr_right = client(&right, "10.71.2.1", "10.150.2.0/24");
    frr_left.wait_established(TIMEOUT, &["10.71.0.2"]).unwrap();
    frr_right.wait_established(TIMEOUT, &["10.71.0.2"]).unwrap();
    wren.wait_established(&["10.71.1.1", "10.71.2.1"]);
    let detail = wren.bgpctl_json(&["show", "neighbor", "10.71.1.1"]);
    assert_eq!(
        detail["detail"]["dynamic_range"], "10.71.0.0/16",
        "{detail}"
    );
    assert_eq!(detail["description"], "clients");

    // Each client learns the other's route through the reflector.
    let paths = frr_right.wait_route(TIMEOUT, "10.150.1.0/24").unwrap();
    assert_eq!(paths[0]["path"], "", "{paths:?}");
    let detail = frr_right
        .vtysh_json("show bgp ipv4 unicast 10.150.1.0/24 json")
        .unwrap();
    // RFC 4456: ORIGINATOR_ID is the left client, CLUSTER_LIST our cluster id.
    let path = &detail["paths"][0];
    assert_eq!(path["originatorId"], "10.71.1.1", "{detail}");
    assert_eq!(
        path["clusterList"]["list"],
        serde_json::json!(["10.71.0.2"]),
        "{detail}"
    );
    frr_left.wait_route(TIMEOUT, "10.150.2.0/24").unwrap();

    // The left client leaves: its session, its dynamic neighbor and its route go.
    frr_left
        .vtysh_lines(&[
            "configure terminal",
            "router bgp 64512",
            "neighbor 10.71.0.2 shutdown",
        ])
        .unwrap();
    frr_right.wait_no_route(TIMEOUT, "10.150.1.0/24").unwrap();
    wait_until(TIMEOUT, "the dynamic neighbor to be forgotten", || {
        wren.neighbor("10.71.1.1").is_none()
    })
    .unwrap();
    // It comes back as a new dynamic neighbor.
    frr_left
        .vtysh_lines(&[
            "configure terminal",
            "router bgp 64512",
            "no neighbor 10.71.0.2 shutdown",
        ])
        .unwrap();
    wren.wait_established(&["10.71.1.1"]);
    frr_right.wait_route(TIMEOUT, "10.150.1.0/24").unwrap();
}
