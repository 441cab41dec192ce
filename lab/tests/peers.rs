//! The peer helpers against real daemons: FRR with BIRD, GoBGP and ExaBGP over veth pairs,
//! routes exchanged and checked from both sides (BGP tables and kernel FIBs).
//! Needs root and the daemons (skips otherwise, fails with WREN_REQUIRE_LAB=1).
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::time::Duration;

use lab::fixture::{Pair, frr_config, gobgp_config, pair};
use lab::{Bird, ExaBgp, Family, Frr, Gobgp, Netns, Veth, wait_until};

const TIMEOUT: Duration = Duration::from_secs(90);

/// FRR in AS 65001 at `local`, peering with `neighbor` in `remote_as`, originating
/// `network` (a static blackhole route).
fn frr(netns: &Netns, local: &str, neighbor: &str, remote_as: u32, network: &str) -> Frr {
    let config = frr_config(
        65001,
        local,
        &format!(" neighbor {neighbor} remote-as {remote_as}"),
        &format!("  network {network}"),
        "",
        &[network],
    );
    Frr::start(netns, &config).unwrap()
}

#[test]
fn frr_and_bird_exchange_routes() {
    let Some(_ready) = lab::require!(Root, Frr, Bird) else {
        return;
    };
    let Pair { a, b, link: _link } = pair("wl-fb", "10.0.1", "fd00:10:1");
    let frr = frr(&a, "10.0.1.1", "10.0.1.2", 65002, "10.201.0.0/24");
    let bird = Bird::start(
        &b,
        "router id 10.0.1.2;
protocol device {}
protocol static s4 { ipv4; route 10.202.0.0/24 blackhole; }
protocol kernel { ipv4 { import none; export filter { if proto = \"frr\" then accept; reject; }; }; }
protocol bgp frr {
  local 10.0.1.2 as 65002;
  neighbor 10.0.1.1 as 65001;
  connect retry time 2;
  ipv4 { import all; export where proto = \"s4\"; };
}
",
    )
    .unwrap();

    frr.wait_established(TIMEOUT, &["10.0.1.2"]).unwrap();
    bird.wait_established(TIMEOUT, &["frr"]).unwrap();

    // FRR learned BIRD's route, with BIRD's AS in the path, and installed it.
    let paths = frr.wait_route(TIMEOUT, "10.202.0.0/24").unwrap();
    assert_eq!(paths[0]["path"], "65002", "{paths:?}");
    wait_until(TIMEOUT, "10.202.0.0/24 in FRR's kernel table", || {
        a.route("10.202.0.0/24")
            .unwrap()
            .is_some_and(|r| r["gateway"] == "10.0.1.2")
    })
    .unwrap();

    // BIRD learned FRR's route and exported it to its kernel.
    bird.wait_route(TIMEOUT, "10.201.0.0/24").unwrap();
    wait_until(TIMEOUT, "10.201.0.0/24 in BIRD's kernel table", || {
        b.route_destinations(Family::Ipv4, &["proto", "bird"])
            .unwrap()
            == ["10.201.0.0/24"]
    })
    .unwrap();

    // Withdraw from BIRD's side: FRR drops the route.
    bird.birdc("disable frr").unwrap();
    frr.wait_no_route(TIMEOUT, "10.202.0.0/24").unwrap();
    assert_ne!(
        frr.neighbor_state("10.0.1.2").unwrap().as_deref(),
        Some("Established")
    );
}

#[test]
fn frr_and_bird_exchange_ipv6_routes() {
    let Some(_ready) = lab::require!(Root, Frr, Bird) else {
        return;
    };
    let a = Netns::new("wl-f6a").unwrap();
    let b = Netns::new("wl-f6b").unwrap();
    let _link = Veth::new(&a, "eth1", &b, "eth1").unwrap();
    a.iface("eth1").addr("fd00:5::1/64").unwrap();
    b.iface("eth1").addr("fd00:5::2/64").unwrap();
    let frr = Frr::start(
        &a,
        "frr defaults datacenter
hostname r1
ipv6 route fd00:201::/64 blackhole
router bgp 65001
 bgp router-id 10.0.5.1
 no bgp ebgp-requires-policy
 neighbor fd00:5::2 remote-as 65002
 address-family ipv6 unicast
  network fd00:201::/64
  neighbor fd00:5::2 activate
 exit-address-family
",
    )
    .unwrap();
    let bird = Bird::start(
        &b,
        "router id 10.0.5.2;
protocol device {}
protocol static s6 { ipv6; route fd00:202::/64 blackhole; }
protocol bgp frr {
  local fd00:5::2 as 65002;
  neighbor fd00:5::1 as 65001;
  connect retry time 2;
  ipv6 { import all; export where proto = \"s6\"; };
}
",
    )
    .unwrap();
    frr.wait_established(TIMEOUT, &["fd00:5::2"]).unwrap();
    bird.wait_established(TIMEOUT, &["frr"]).unwrap();
    let paths = frr.wait_route(TIMEOUT, "fd00:202::/64").unwrap();
    assert_eq!(paths[0]["path"], "65002", "{paths:?}");
    bird.wait_route(TIMEOUT, "fd00:201::/64").unwrap();
    wait_until(TIMEOUT, "fd00:202::/64 in FRR's kernel table", || {
        a.route("fd00:202::/64").unwrap().is_some()
    })
    .unwrap();
    assert!(
        frr.bgp_routes_json(Family::Ipv4).unwrap()["routes"]
            .as_object()
            .is_none_or(|r| r.is_empty())
    );
}

#[test]
fn frr_and_gobgp_exchange_routes() {
    let Some(_ready) = lab::require!(Root, Frr, Gobgp) else {
        return;
    };
    let Pair { a, b, link: _link } = pair("wl-fg", "10.0.2", "fd00:10:2");
    let frr = frr(&a, "10.0.2.1", "10.0.2.2", 65003, "10.201.0.0/24");
    let gobgp = Gobgp::start(&b, &gobgp_config(65003, "10.0.2.2", "10.0.2.1", 65001)).unwrap();
    gobgp.announce("10.203.0.0/24", "10.0.2.2").unwrap();

    frr.wait_established(TIMEOUT, &["10.0.2.2"]).unwrap();
    gobgp.wait_established(TIMEOUT, &["10.0.2.1"]).unwrap();

    let paths = frr.wait_route(TIMEOUT, "10.203.0.0/24").unwrap();
    assert_eq!(paths[0]["path"], "65003", "{paths:?}");
    let paths = gobgp.wait_route(TIMEOUT, "10.201.0.0/24").unwrap();
    let text = serde_json::to_string(&paths).unwrap();
    assert!(text.contains("65001"), "{text}");
    wait_until(TIMEOUT, "10.203.0.0/24 in FRR's kernel table", || {
        a.route("10.203.0.0/24").unwrap().is_some()
    })
    .unwrap();

    gobgp.withdraw("10.203.0.0/24").unwrap();
    frr.wait_no_route(TIMEOUT, "10.203.0.0/24").unwrap();
}

#[test]
fn exabgp_announces_and_withdraws_to_frr() {
    let Some(_ready) = lab::require!(Root, Frr, Exabgp) else {
        return;
    };
    let Pair { a, b, link: _link } = pair("wl-fe", "10.0.3", "fd00:10:3");
    let frr = frr(&a, "10.0.3.1", "10.0.3.2", 65004, "10.201.0.0/24");
    let exabgp = ExaBgp::start(
        &b,
        "neighbor 10.0.3.1 {
    router-id 10.0.3.2;
    local-address 10.0.3.2;
    local-as 65004;
    peer-as 65001;
    api { processes [ lab ]; }
}
",
    )
    .unwrap();
    frr.wait_established(TIMEOUT, &["10.0.3.2"]).unwrap();
    exabgp
        .send("announce route 10.204.0.0/24 next-hop 10.0.3.2 community [65004:7]")
        .unwrap();
    let paths = frr.wait_route(TIMEOUT, "10.204.0.0/24").unwrap();
    assert_eq!(paths[0]["path"], "65004", "{paths:?}");
    exabgp
        .send("withdraw route 10.204.0.0/24 next-hop 10.0.3.2")
        .unwrap();
    frr.wait_no_route(TIMEOUT, "10.204.0.0/24").unwrap();
}

#[test]
fn two_frr_instances_run_side_by_side() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let Pair { a, b, link: _link } = pair("wl-ff", "10.0.4", "fd00:10:4");
    let r1 = frr(&a, "10.0.4.1", "10.0.4.2", 65002, "10.201.0.0/24");
    let r2 = Frr::start(
        &b,
        "frr defaults datacenter
hostname r2
ip route 10.205.0.0/24 blackhole
router bgp 65002
 bgp router-id 10.0.4.2
 no bgp ebgp-requires-policy
 neighbor 10.0.4.1 remote-as 65001
 address-family ipv4 unicast
  network 10.205.0.0/24
 exit-address-family
",
    )
    .unwrap();
    r1.wait_established(TIMEOUT, &["10.0.4.2"]).unwrap();
    r2.wait_established(TIMEOUT, &["10.0.4.1"]).unwrap();
    r1.wait_route(TIMEOUT, "10.205.0.0/24").unwrap();
    r2.wait_route(TIMEOUT, "10.201.0.0/24").unwrap();
    // Each vtysh reaches its own instance.
    let running = r1.vtysh("show running-config").unwrap();
    assert!(running.contains("bgp router-id 10.0.4.1"), "{running}");
    let running = r2.vtysh("show running-config").unwrap();
    assert!(running.contains("bgp router-id 10.0.4.2"), "{running}");
    // A bad command is an error, not silent output.
    assert!(r1.vtysh("show no-such-thing").is_err());
}
