//! BFD against FRR's bfdd (single hop, RFC 5881): bgpd with `bfd = true` and FRR with
//! `neighbor X bfd` bring the BFD session Up (FRR's `show bfd peers json` says so);
//! with all traffic on the link dropped both ways by nftables, bgpd closes the BGP
//! session and the peer's route leaves its kernel table within 1 s, although the hold
//! time is 90 s; with traffic back, everything returns by itself. Needs root, FRR
//! and nft.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use lab::fixture::{Wren, frr_config, kernel_route, pair, wren_config};
use lab::{Frr, TIMEOUT};
use serde_json::Value;

const PREFIX: &str = "10.172.1.0/24";
/// The nftables table the test drops traffic with (in namespace a only).
const DROP_TABLE: &str = "wren_bfd_test";

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
    let Some(_ready) = lab::require!(Root, Frr, Nft) else {
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
    let wren = Wren::start(
        &pair.a,
        &wren_config(
            "10.94.1.1",
            &socket,
            true,
            "[[bgp.neighbor]]\naddress = \"10.94.1.2\"\nremote_asn = 65001\nhold_time = 90\nconnect_retry = 1\nbfd = true\n",
        ),
    );
    wren.wait_established(&["10.94.1.2"]);
    lab::wait_until(TIMEOUT, "the peer's route in bgpd's kernel table", || {
        kernel_route(&pair.a, PREFIX).is_some()
    })
    .unwrap();
    let neighbor = lab::fixture::frr_neighbor(&frr, "10.94.1.1");
    assert_eq!(neighbor["bgpTimerHoldTimeMsecs"], 90_000, "{neighbor}");

    // FRR's side: Up, with our 300/300/3 (the 1 s of slow start polled away).
    lab::wait_until(TIMEOUT, "FRR's BFD peer 10.94.1.1 up", || {
        frr_bfd_peer(&frr, "10.94.1.1").is_some_and(|peer| peer["status"] == "up")
    })
    .unwrap();
    lab::wait_until(TIMEOUT, "our intervals at FRR", || {
        frr_bfd_peer(&frr, "10.94.1.1").is_some_and(|peer| {
            peer["remote-transmit-interval"] == 300
                && peer["remote-receive-interval"] == 300
                && peer["remote-detect-multiplier"] == 3
        })
    })
    .unwrap();
    let peer = frr_bfd_peer(&frr, "10.94.1.1").unwrap();
    assert_eq!(peer["interface"], "eth1", "{peer}");
    assert_ne!(peer["remote-id"], 0, "{peer}");

    // Drop everything between the two, both ways.
    pair.a
        .exec(&["nft", "add", "table", "inet", DROP_TABLE])
        .unwrap();
    for hook in ["input", "output"] {
        pair.a
            .exec(&[
                "nft",
                &format!("add chain inet {DROP_TABLE} {hook} {{ type filter hook {hook} priority 0 ; policy accept ; }}"),
            ])
            .unwrap();
    }
    let dropped = Instant::now();
    pair.a
        .exec(&[
            "nft",
            &format!(
                "add rule inet {DROP_TABLE} input ip saddr 10.94.1.2 drop ; add rule inet {DROP_TABLE} output ip daddr 10.94.1.2 drop"
            ),
        ])
        .unwrap();
    let mut route_gone = None;
    while dropped.elapsed() < Duration::from_secs(5) {
        if kernel_route(&pair.a, PREFIX).is_none() {
            route_gone = Some(dropped.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let route_gone = route_gone.expect("the route left the kernel");
    let neighbor = wren.bgpctl_json(&["show", "neighbor", "10.94.1.2"]);
    assert_ne!(neighbor["state"], "Established", "{neighbor}");
    assert!(
        neighbor["detail"]["last_error"]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("6/10")),
        "closed with Cease / BFD Down (inside a Hard Reset with FRR): {neighbor}"
    );
    eprintln!("route gone from the kernel {route_gone:?} after the drop (detection time 900 ms)");
    assert!(
        route_gone < Duration::from_secs(1),
        "the route left the kernel {route_gone:?} after the drop"
    );

    // Traffic back: BGP, the route and BFD return by themselves.
    pair.a
        .exec(&["nft", "delete", "table", "inet", DROP_TABLE])
        .unwrap();
    wren.wait_established(&["10.94.1.2"]);
    lab::wait_until(TIMEOUT, "the route back in the kernel", || {
        kernel_route(&pair.a, PREFIX).is_some()
    })
    .unwrap();
    lab::wait_until(TIMEOUT, "FRR's BFD peer up again", || {
        frr_bfd_peer(&frr, "10.94.1.1").is_some_and(|peer| peer["status"] == "up")
    })
    .unwrap();
}
