//! BFD against GoBGP v4's native BFD (built by `scripts/gobgp`), single hop (RFC 5881):
//! bgpd with `bfd = true` and GoBGP with `[neighbors.bfd.config]` at 300 ms × 3 bring the
//! BFD session Up (`gobgp -j neighbor` says so in `state.bfd_state`, with packets both
//! ways); with all traffic to GoBGP dropped both ways by nftables, bgpd closes the BGP
//! session with Cease / BFD Down and GoBGP's route leaves bgpd's kernel table within 1 s,
//! although the hold time is 90 s; with traffic back, BGP and BFD return by themselves
//! and stay up (GoBGP v4.8's permanent flap loop, antrea#8360, would show here as
//! sessions that keep going down). Needs root, GoBGP v4 and nft.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bfd_support;

use std::time::{Duration, Instant};

use bfd_support::{PREFIX, drop_and_measure, restore_and_wait, wait_wren_bfd_up, wren_bfd_session};
use lab::fixture::{Wren, kernel_route, pair, wren_config};
use lab::{Gobgp, TIMEOUT};

/// GoBGP v4 as AS 65001 at `router_id`, one neighbor (bgpd, AS 64512) with hold time 90 s
/// and BFD at 300 ms × 3 (GoBGP's intervals are in microseconds); after a reset it waits
/// 1 s before taking connections again instead of its default 30 s.
fn gobgp_v4_config(router_id: &str, neighbor: &str) -> String {
    format!(
        r#"[global.config]
  as = 65001
  router-id = "{router_id}"

[[neighbors]]
  [neighbors.config]
    neighbor-address = "{neighbor}"
    peer-as = 64512
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 90
    keepalive-interval = 30
    idle-hold-time-after-reset = 1
  [neighbors.bfd.config]
    enabled = true
    desired-minimum-tx-interval = 300000
    required-minimum-receive = 300000
    detection-multiplier = 3
"#
    )
}

/// Whether GoBGP's BFD session with `address` is Up, with packets both ways.
fn gobgp_bfd_up(gobgp: &Gobgp, address: &str) -> bool {
    gobgp
        .bfd_state(address)
        .ok()
        .flatten()
        .is_some_and(|bfd| bfd.state == "up" && bfd.transmitted > 0 && bfd.received > 0)
}

#[test]
fn bfd_with_gobgp_v4_detects_a_dead_link_within_a_second() {
    let Some(_ready) = lab::require!(Root, GobgpV4, Nft) else {
        return;
    };
    let pair = pair("wbfg", "10.98.1", "fd00:98");
    let gobgp = Gobgp::start_v4(&pair.b, &gobgp_v4_config("10.98.1.2", "10.98.1.1")).unwrap();
    gobgp.announce(PREFIX, "10.98.1.2").unwrap();
    let socket = Wren::socket_path(&pair.a);
    let wren = Wren::start(
        &pair.a,
        &wren_config(
            "10.98.1.1",
            &socket,
            true,
            "[[bgp.neighbor]]\naddress = \"10.98.1.2\"\nremote_asn = 65001\nhold_time = 90\nconnect_retry = 1\nbfd = true\n",
        ),
    );
    gobgp.wait_established(TIMEOUT, &["10.98.1.1"]).unwrap();
    wren.wait_established(&["10.98.1.2"]);
    let neighbor = wren.bgpctl_json(&["show", "neighbor", "10.98.1.2"]);
    assert_eq!(
        neighbor["detail"]["negotiated"]["hold_time"], 90,
        "{neighbor}"
    );
    lab::wait_until(TIMEOUT, "GoBGP's route in bgpd's kernel table", || {
        kernel_route(&pair.a, PREFIX).is_some()
    })
    .unwrap();

    // Up from both sides: GoBGP's `state.bfd_state` and bgpd's `show bfd`.
    lab::wait_until(TIMEOUT, "GoBGP's BFD session up", || {
        gobgp_bfd_up(&gobgp, "10.98.1.1")
    })
    .unwrap();
    let ours = wait_wren_bfd_up(&wren, "10.98.1.2");
    assert_eq!(ours["interface"], "eth1", "{ours}");

    drop_and_measure(&pair.a, &wren, "10.98.1.2");
    // GoBGP's side saw the silence too (its detection time is also 900 ms).
    lab::wait_until(TIMEOUT, "GoBGP's BFD session down", || {
        gobgp
            .bfd_state("10.98.1.1")
            .ok()
            .flatten()
            .is_some_and(|bfd| bfd.state != "up")
    })
    .unwrap();
    restore_and_wait(&pair.a, &wren, "10.98.1.2", || {
        gobgp_bfd_up(&gobgp, "10.98.1.1")
    });
    gobgp.wait_established(TIMEOUT, &["10.98.1.1"]).unwrap();

    // And it stays up: no flap loop. Five detection times' worth of watching (4.5 s)
    // with both sides checked each 100 ms.
    let failures = wren_bfd_session(&wren, "10.98.1.2").unwrap()["failures"].clone();
    let watching = Instant::now();
    while watching.elapsed() < Duration::from_millis(4500) {
        assert!(
            gobgp_bfd_up(&gobgp, "10.98.1.1"),
            "GoBGP's BFD session went down again"
        );
        assert_eq!(
            gobgp.neighbor_state("10.98.1.1").unwrap().as_deref(),
            Some("established"),
            "GoBGP's BGP session went down again"
        );
        let session = wren_bfd_session(&wren, "10.98.1.2").unwrap();
        assert_eq!(session["state"], "Up", "{session}");
        assert_eq!(session["failures"], failures, "{session}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(kernel_route(&pair.a, PREFIX).is_some());
}
