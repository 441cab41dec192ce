//! eBGP multihop: FRR two hops away (a router namespace between). With `multihop = 2`
//! bgpd's packets reach FRR and the session comes up; with eBGP's default TTL of 1
//! they die at the router and it never does. Needs root and FRR.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use lab::TIMEOUT;
use lab::fixture::{Wren, frr_config, wren_config};
use lab::{Frr, Netns, Veth};

#[test]
fn ebgp_multihop_across_a_router() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let left = Netns::new("wb-ml").unwrap();
    let middle = Netns::new("wb-mm").unwrap();
    let right = Netns::new("wb-mr").unwrap();
    let _a = Veth::new(&left, "eth1", &middle, "eth1").unwrap();
    let _b = Veth::new(&middle, "eth2", &right, "eth1").unwrap();
    left.iface("eth1").addr("10.91.1.1/24").unwrap();
    middle.iface("eth1").addr("10.91.1.2/24").unwrap();
    middle.iface("eth2").addr("10.91.2.2/24").unwrap();
    right.iface("eth1").addr("10.91.2.1/24").unwrap();
    left.ip(&["route", "add", "10.91.2.0/24", "via", "10.91.1.2"])
        .unwrap();
    right
        .ip(&["route", "add", "10.91.1.0/24", "via", "10.91.2.2"])
        .unwrap();
    middle
        .exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        .unwrap();

    let frr = Frr::start(
        &left,
        &frr_config(
            65001,
            "10.91.1.1",
            " neighbor 10.91.2.1 remote-as 64512\n neighbor 10.91.2.1 ebgp-multihop 2",
            "  network 10.170.1.0/24",
            "",
            &["10.170.1.0/24"],
        ),
    )
    .unwrap();
    let socket = Wren::socket_path(&right);
    let config = |multihop: &str| {
        wren_config(
            "10.91.2.1",
            &socket,
            false,
            &format!(
                "[[bgp.neighbor]]\naddress = \"10.91.1.1\"\nremote_asn = 65001\nhold_time = 9\nconnect_retry = 1\n{multihop}\n"
            ),
        )
    };
    let wren = Wren::start(&right, &config("multihop = 2"));
    frr.wait_established(TIMEOUT, &["10.91.2.1"]).unwrap();
    wren.wait_route("10.170.1.0/24");

    // Without multihop bgpd sends with TTL 1: nothing it sends gets past the router.
    std::fs::write(&wren.config_path, config("")).unwrap();
    let summary = wren.bgpctl_json(&["reload"]);
    assert_eq!(
        summary["reset"],
        serde_json::json!(["10.91.1.1"]),
        "{summary}"
    );
    lab::wait_until(TIMEOUT, "the old session to go", || {
        wren.neighbor("10.91.1.1").unwrap()["state"] != "Established"
    })
    .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        let state = wren.neighbor("10.91.1.1").unwrap()["state"].clone();
        assert_ne!(
            state, "Established",
            "established with TTL 1 across a router"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
