//! BFD against FRR's bfdd, single hop (RFC 5881) and multihop across a router (RFC
//! 5883): bgpd with `bfd = true` and FRR with `neighbor X bfd` bring the BFD session
//! Up (FRR's `show bfd peers json` says so); with all traffic to the peer dropped both
//! ways by nftables, bgpd closes the BGP session with Cease / BFD Down and the peer's
//! route leaves its kernel table within 1 s, although the hold time is 90 s; with
//! traffic back, everything returns by itself. `bgpctl show bfd` agrees with FRR, and
//! the BFD metrics with `bgpctl show bfd` (promtool checks the scrape). Needs root,
//! FRR, nft and promtool.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bfd_support;

use std::time::Duration;

use bfd_support::{PREFIX, block, drop_and_measure, unblock, wait_wren_bfd_up, wren_bfd_session};
use lab::fixture::{Wren, frr_config, kernel_route, pair, wren_config};
use lab::metrics::Samples;
use lab::{Frr, Netns, TIMEOUT, Veth};
use serde_json::Value;

/// bgpd's metrics listener in its namespace (single hop test).
const METRICS: &str = "127.0.0.1:9464";

/// A text-format scrape of bgpd's metrics in `netns`, checked by promtool.
fn scrape(netns: &Netns) -> Samples {
    let answer = lab::metrics::get(netns, METRICS.parse().unwrap(), "/metrics", None).unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    if let Err(error) = lab::metrics::promtool_check(&answer.body) {
        panic!("{error}\n{}", answer.body);
    }
    Samples::parse(&answer.body).unwrap()
}

/// FRR's BFD peer `address` from `show bfd peers json`.
fn frr_bfd_peer(frr: &Frr, address: &str) -> Option<Value> {
    let peers = frr.vtysh_json("show bfd peers json").ok()?;
    peers
        .as_array()?
        .iter()
        .find(|peer| peer["peer"] == address)
        .cloned()
}

#[test]
fn bfd_with_frr_detects_a_dead_link_within_a_second() {
    let Some(_ready) = lab::require!(Root, Frr, Nft, Promtool) else {
        return;
    };
    let pair = pair("wbfd", "10.94.1", "fd00:94");
    let frr = Frr::start_daemons(
        &pair.b,
        &frr_config(
            65001,
            "10.94.1.2",
            " neighbor 10.94.1.1 remote-as 64512\n neighbor 10.94.1.1 timers 30 90\n neighbor 10.94.1.1 bfd",
            &format!("  network {PREFIX}"),
            "",
            &[PREFIX],
        ),
        &["bgpd", "bfdd"],
    )
    .unwrap();
    let socket = Wren::socket_path(&pair.a);
    let config = |bfd: &str| {
        wren_config(
            "10.94.1.1",
            &socket,
            true,
            &format!(
                "[metrics]\nlisten = \"{METRICS}\"\n\n[[bgp.neighbor]]\naddress = \"10.94.1.2\"\nremote_asn = 65001\nhold_time = 90\nconnect_retry = 1\n{bfd}\n"
            ),
        )
    };
    let wren = Wren::start(&pair.a, &config("bfd = true"));
    wren.wait_established(&["10.94.1.2"]);
    lab::wait_until(TIMEOUT, "the peer's route in bgpd's kernel table", || {
        kernel_route(&pair.a, PREFIX).is_some()
    })
    .unwrap();
    let neighbor = lab::fixture::frr_neighbor(&frr, "10.94.1.1");
    assert_eq!(neighbor["bgpTimerHoldTimeMsecs"], 90_000, "{neighbor}");

    // FRR's side: Up, with our 300/300/3 (the 1 s of slow start polled away).
    let peer = wait_frr_bfd_up(&frr, "10.94.1.1");
    assert_eq!(peer["multihop"], false, "{peer}");
    assert_eq!(peer["interface"], "eth1", "{peer}");
    assert_ne!(peer["remote-id"], 0, "{peer}");
    let ours = wait_wren_bfd_up_as_frr(&wren, "10.94.1.2", &peer);
    assert_eq!(ours["interface"], "eth1", "{ours}");
    // The metrics say what bgpctl show bfd says (packet counters between two answers).
    let samples = scrape(&pair.a);
    let after = wren_bfd_session(&wren, "10.94.1.2").unwrap();
    let labels = [("peer", "10.94.1.2")];
    assert_eq!(
        samples.value(
            "wren_bfd_session_up",
            &[("peer", "10.94.1.2"), ("interface", "eth1")]
        ),
        Some(1.0)
    );
    assert_eq!(
        samples.value("wren_bfd_detection_time_seconds", &labels),
        Some(0.9)
    );
    for (name, field) in [
        ("wren_bfd_packets_received_total", "packets_received"),
        ("wren_bfd_packets_sent_total", "packets_sent"),
    ] {
        let value = samples.value(name, &labels).unwrap();
        let (low, high) = (
            ours[field].as_f64().unwrap(),
            after[field].as_f64().unwrap(),
        );
        assert!(
            low <= value && value <= high,
            "{name} {value} not in {low}..={high}"
        );
    }
    assert_eq!(
        samples.matching("wren_bfd_session_down_total", &[]).count(),
        0
    );

    drop_and_measure(&pair.a, &wren, "10.94.1.2");
    // Read at once: the BFD session leaves within about a second once BGP, its only
    // subscriber, has let it go.
    let samples = scrape(&pair.a);
    assert_eq!(
        samples.value(
            "wren_bfd_session_down_total",
            &[
                ("peer", "10.94.1.2"),
                ("diag", "control_detection_time_expired")
            ]
        ),
        Some(1.0),
        "{samples:?}"
    );
    assert_eq!(
        samples.value("wren_bfd_session_up", &[("peer", "10.94.1.2")]),
        Some(0.0)
    );
    restore_and_wait(&pair.a, &wren, &frr, "10.94.1.2", "10.94.1.1");

    // FRR 8.4 takes its BGP session down on our AdminDown, and its `no neighbor X
    // bfd` sends Down (not AdminDown), which takes ours down once (RFC 5880 6.8.6,
    // diag 3). Then the session comes back although BFD stays down (BGP never waits
    // for BFD), and without bfd (a reload, which keeps the session) the same drop
    // leaves the session to its 90 s hold timer.
    let count = wren.neighbor("10.94.1.2").unwrap()["established_count"].clone();
    frr.vtysh_lines(&[
        "configure terminal",
        "router bgp 65001",
        "no neighbor 10.94.1.1 bfd",
    ])
    .unwrap();
    lab::wait_until(TIMEOUT, "the session back without BFD", || {
        wren.neighbor("10.94.1.2")
            .is_some_and(|n| n["state"] == "Established" && n["established_count"] != count)
            && kernel_route(&pair.a, PREFIX).is_some()
    })
    .unwrap();
    std::fs::write(&wren.config_path, config("")).unwrap();
    let summary = wren.bgpctl_json(&["reload"]);
    assert_eq!(summary["reset"], serde_json::json!([]), "{summary}");
    block(&pair.a, "10.94.1.2");
    std::thread::sleep(Duration::from_secs(2));
    let neighbor = wren.neighbor("10.94.1.2").unwrap();
    assert_eq!(neighbor["state"], "Established", "{neighbor}");
    assert!(kernel_route(&pair.a, PREFIX).is_some());
    unblock(&pair.a);
}

/// Lets traffic through again; BGP, the route and FRR's BFD peer `us` return by
/// themselves.
fn restore_and_wait(netns: &Netns, wren: &Wren, frr: &Frr, peer: &str, us: &str) {
    bfd_support::restore_and_wait(netns, wren, peer, || {
        frr_bfd_peer(frr, us).is_some_and(|peer| peer["status"] == "up")
    });
}

/// Waits until FRR's BFD peer `us` is up with our 300/300/3 (the 1 s of slow start
/// polled away); returns it.
fn wait_frr_bfd_up(frr: &Frr, us: &str) -> Value {
    lab::wait_until(TIMEOUT, "FRR's BFD peer up with 300/300/3", || {
        frr_bfd_peer(frr, us).is_some_and(|peer| {
            peer["status"] == "up"
                && peer["remote-transmit-interval"] == 300
                && peer["remote-receive-interval"] == 300
                && peer["remote-detect-multiplier"] == 3
        })
    })
    .unwrap();
    frr_bfd_peer(frr, us).unwrap()
}

/// Waits until bgpd's session with `address` is Up (`bgpctl show bfd`) and checks it
/// against FRR's `peer`: the same multihop, each side's discriminators swapped.
fn wait_wren_bfd_up_as_frr(wren: &Wren, address: &str, peer: &Value) -> Value {
    let ours = wait_wren_bfd_up(wren, address);
    assert_eq!(ours["multihop"], peer["multihop"], "{ours} {peer}");
    assert_eq!(
        ours["local_discriminator"], peer["remote-id"],
        "{ours} {peer}"
    );
    assert_eq!(ours["remote_discriminator"], peer["id"], "{ours} {peer}");
    ours
}

#[test]
fn multihop_bfd_with_frr_across_a_router() {
    let Some(_ready) = lab::require!(Root, Frr, Nft) else {
        return;
    };
    let left = Netns::new("wbfml").unwrap();
    let middle = Netns::new("wbfmm").unwrap();
    let right = Netns::new("wbfmr").unwrap();
    let _a = Veth::new(&left, "eth1", &middle, "eth1").unwrap();
    let _b = Veth::new(&middle, "eth2", &right, "eth1").unwrap();
    left.iface("eth1").addr("10.95.1.1/24").unwrap();
    middle.iface("eth1").addr("10.95.1.2/24").unwrap();
    middle.iface("eth2").addr("10.95.2.2/24").unwrap();
    right.iface("eth1").addr("10.95.2.1/24").unwrap();
    left.ip(&["route", "add", "10.95.2.0/24", "via", "10.95.1.2"])
        .unwrap();
    right
        .ip(&["route", "add", "10.95.1.0/24", "via", "10.95.2.2"])
        .unwrap();
    middle
        .exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        .unwrap();
    let frr = Frr::start_daemons(
        &left,
        &frr_config(
            65001,
            "10.95.1.1",
            " neighbor 10.95.2.1 remote-as 64512\n neighbor 10.95.2.1 ebgp-multihop 2\n neighbor 10.95.2.1 update-source 10.95.1.1\n neighbor 10.95.2.1 timers 30 90\n neighbor 10.95.2.1 bfd",
            &format!("  network {PREFIX}"),
            "",
            &[PREFIX],
        ),
        &["bgpd", "bfdd"],
    )
    .unwrap();
    let socket = Wren::socket_path(&right);
    let wren = Wren::start(
        &right,
        &wren_config(
            "10.95.2.1",
            &socket,
            true,
            "[[bgp.neighbor]]\naddress = \"10.95.1.1\"\nremote_asn = 65001\nhold_time = 90\nconnect_retry = 1\nmultihop = 2\nbfd = true\n",
        ),
    );
    wren.wait_established(&["10.95.1.1"]);
    lab::wait_until(TIMEOUT, "the peer's route in bgpd's kernel table", || {
        kernel_route(&right, PREFIX).is_some()
    })
    .unwrap();
    let peer = wait_frr_bfd_up(&frr, "10.95.2.1");
    assert_eq!(peer["multihop"], true, "{peer}");
    let ours = wait_wren_bfd_up_as_frr(&wren, "10.95.1.1", &peer);
    assert_eq!(ours["local"], "10.95.2.1", "{ours}");
    drop_and_measure(&right, &wren, "10.95.1.1");
    restore_and_wait(&right, &wren, &frr, "10.95.1.1", "10.95.2.1");
}
