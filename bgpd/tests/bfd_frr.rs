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
use lab::fixture::{Wren, frr_bfd_peer, frr_with_bfdd, kernel_route, pair, wren_config};
use lab::metrics::Samples;
use lab::{Frr, Netns, TIMEOUT, Veth};
use serde_json::Value;

/// bgpd's metrics listener in its namespace (single hop test).
const METRICS: &str = "127.0.0.1:9464";

/// A text-format scrape of bgpd's metrics in `netns`, checked by promtool.
fn scrape(netns: &Netns) -> Samples {
    lab::metrics::checked_scrape(netns, METRICS.parse().unwrap()).unwrap()
}

#[test]
fn bfd_with_frr_detects_a_dead_link_within_a_second() {
    let Some(_ready) = lab::require!(Root, Frr, Nft, Promtool) else {
        return;
    };
    let pair = pair("wbfd", "10.94.1", "fd00:94");
    let frr = frr_with_bfdd(
        &pair.b,
        "10.94.1.2",
        " neighbor 10.94.1.1 remote-as 64512\n neighbor 10.94.1.1 timers 30 90\n neighbor 10.94.1.1 bfd",
        &[PREFIX],
    );
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
    // The BFD session stays while bfd is configured, BGP down or not (RFC 5882), and
    // its counters with it: still there well after the session went (it used to
    // leave about a second after BGP let it go).
    std::thread::sleep(Duration::from_secs(3));
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
    // Back Up: the old failure is counted, not replayed on the new BGP session.
    let samples = scrape(&pair.a);
    assert_eq!(
        samples.value(
            "wren_bfd_session_down_total",
            &[
                ("peer", "10.94.1.2"),
                ("diag", "control_detection_time_expired")
            ]
        ),
        Some(1.0)
    );
    std::thread::sleep(Duration::from_secs(2));
    let neighbor = wren.neighbor("10.94.1.2").unwrap();
    assert_eq!(neighbor["state"], "Established", "{neighbor}");

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
    let Some(_ready) = lab::require!(Root, Frr, Nft, Promtool) else {
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
    let frr = frr_with_bfdd(
        &left,
        "10.95.1.1",
        " neighbor 10.95.2.1 remote-as 64512\n neighbor 10.95.2.1 ebgp-multihop 2\n neighbor 10.95.2.1 update-source 10.95.1.1\n neighbor 10.95.2.1 timers 30 90\n neighbor 10.95.2.1 bfd",
        &[PREFIX],
    );
    let wren = Wren::start_with_config(
        &right,
        "10.95.2.1",
        true,
        &format!(
            "[metrics]\nlisten = \"{METRICS}\"\n\n[[bgp.neighbor]]\naddress = \"10.95.1.1\"\nremote_asn = 65001\nhold_time = 90\nconnect_retry = 1\nmultihop = 2\nbfd = true\n"
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
    // A multihop session's series carry its key: local address and peer, no
    // interface.
    let samples = scrape(&right);
    let up: Vec<_> = samples
        .matching("wren_bfd_session_up", &[("peer", "10.95.1.1")])
        .collect();
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(
        samples.value(
            "wren_bfd_session_up",
            &[("peer", "10.95.1.1"), ("local", "10.95.2.1")]
        ),
        Some(1.0)
    );
    assert!(
        !format!("{up:?}").contains("interface"),
        "no interface label on multihop: {up:?}"
    );
    drop_and_measure(&right, &wren, "10.95.1.1");
    restore_and_wait(&right, &wren, &frr, "10.95.1.1", "10.95.2.1");
}

/// A second prefix FRR announces, and withdraws while the session is down.
const WITHDRAWN: &str = "10.172.2.0/24";

#[test]
fn graceful_bfd_keeps_frr_routes_stale_until_it_returns() {
    let Some(_ready) = lab::require!(Root, Frr, Nft, Tcpdump) else {
        return;
    };
    let pair = pair("wbfg", "10.96.1", "fd00:96");
    let frr = frr_with_bfdd(
        &pair.b,
        "10.96.1.2",
        " bgp graceful-restart\n bgp graceful-restart preserve-fw-state\n neighbor 10.96.1.1 remote-as 64512\n neighbor 10.96.1.1 timers 30 90\n neighbor 10.96.1.1 timers connect 1\n neighbor 10.96.1.1 bfd",
        &[PREFIX, WITHDRAWN],
    );
    let socket = Wren::socket_path(&pair.a);
    let config = |neighbor: &str| wren_config("10.96.1.1", &socket, true, neighbor);
    let wren = Wren::start(
        &pair.a,
        &config(
            "[[bgp.neighbor]]\naddress = \"10.96.1.2\"\nremote_asn = 65001\nhold_time = 90\nconnect_retry = 1\nbfd = { on_down = \"graceful\" }\n",
        ),
    );
    wren.wait_established(&["10.96.1.2"]);
    lab::wait_until(TIMEOUT, "FRR's routes in bgpd's kernel table", || {
        kernel_route(&pair.a, PREFIX).is_some() && kernel_route(&pair.a, WITHDRAWN).is_some()
    })
    .unwrap();
    let neighbor = wren.neighbor("10.96.1.2").unwrap();
    let count = neighbor["established_count"].as_u64().unwrap();
    let detail = wren.bgpctl_json(&["show", "neighbor", "10.96.1.2"]);
    assert_eq!(
        detail["detail"]["negotiated"]["graceful_restart"], true,
        "{detail}"
    );
    wait_frr_bfd_up(&frr, "10.96.1.1");
    wait_wren_bfd_up(&wren, "10.96.1.2");

    // The path fails: BGP closes with Cease / BFD Down within the detection time,
    // but FRR's routes stay in the RIB and the kernel (stale).
    let dropped = block(&pair.a, "10.96.1.2");
    lab::wait_until(Duration::from_secs(5), "the session down by BFD", || {
        wren.neighbor("10.96.1.2")
            .is_some_and(|n| n["state"] != "Established")
    })
    .unwrap();
    let down_after = dropped.elapsed();
    let neighbor = wren.bgpctl_json(&["show", "neighbor", "10.96.1.2"]);
    assert!(
        neighbor["detail"]["last_error"]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("6/10")),
        "closed with Cease / BFD Down: {neighbor}"
    );
    assert!(
        down_after < Duration::from_millis(1500),
        "down {down_after:?} after the drop"
    );
    // FRR withdraws one of them while it cannot tell bgpd.
    frr.vtysh_lines(&[
        "configure terminal",
        "router bgp 65001",
        "address-family ipv4 unicast",
        &format!("no network {WITHDRAWN}"),
    ])
    .unwrap();
    let kept_until = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < kept_until {
        for prefix in [PREFIX, WITHDRAWN] {
            assert!(
                kernel_route(&pair.a, prefix).is_some(),
                "{prefix} left the kernel {:?} after the drop",
                dropped.elapsed()
            );
            assert!(!wren.paths(prefix).is_empty(), "{prefix} left the RIB");
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // The path returns: the session comes back (FRR's capability says its
    // forwarding state was kept, RFC 4724 4.2), FRR's End-of-RIB clears the stale
    // marks, and the route it withdrew meanwhile goes; the other never left.
    unblock(&pair.a);
    lab::wait_until(TIMEOUT, "the withdrawn route out of the kernel", || {
        assert!(
            kernel_route(&pair.a, PREFIX).is_some(),
            "{PREFIX} left the kernel during the refresh"
        );
        kernel_route(&pair.a, WITHDRAWN).is_none()
    })
    .unwrap();
    let neighbor = wren.neighbor("10.96.1.2").unwrap();
    assert_eq!(neighbor["state"], "Established", "{neighbor}");
    assert!(
        neighbor["established_count"].as_u64().unwrap() > count,
        "{neighbor}"
    );
    assert!(wren.paths(WITHDRAWN).is_empty());
    assert!(kernel_route(&pair.a, PREFIX).is_some());
    wait_wren_bfd_up(&wren, "10.96.1.2");

    // The neighbor deleted by a reload: its BFD session leaves with one AdminDown.
    let capture = pair
        .a
        .spawn(
            "tcpdump",
            &[
                "tcpdump",
                "-l",
                "-nn",
                "-i",
                "eth1",
                "src host 10.96.1.1 and udp dst port 3784",
            ],
        )
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    std::fs::write(&wren.config_path, config("")).unwrap();
    wren.bgpctl_json(&["reload"]);
    lab::wait_until(TIMEOUT, "the BFD session removed", || {
        wren_bfd_session(&wren, "10.96.1.2").is_none()
    })
    .unwrap();
    // Anything more would go out within the next second or two.
    std::thread::sleep(Duration::from_secs(3));
    drop(capture);
    let seen = std::fs::read_to_string(pair.a.dir().join("tcpdump.log")).unwrap();
    let admin_downs = seen
        .lines()
        .filter(|line| line.contains("State AdminDown"))
        .count();
    assert_eq!(admin_downs, 1, "{seen}");
    let last = seen
        .lines()
        .rfind(|line| line.contains("BFD"))
        .unwrap_or_default();
    assert!(
        last.contains("State AdminDown"),
        "AdminDown was the last: {seen}"
    );
}
