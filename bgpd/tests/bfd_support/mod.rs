//! The drop-and-measure steps the BFD interop tests (bfd_frr.rs, bfd_bird.rs) share:
//! dropping all traffic to a peer both ways with nftables, checking that bgpd closed
//! the session with Cease / BFD Down and the peer's route left the kernel within a
//! generous functional bound, and letting traffic through again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use lab::fixture::{Wren, kernel_route};
use lab::{Netns, TIMEOUT};

/// The prefix each peer announces to bgpd.
pub const PREFIX: &str = "10.172.1.0/24";
/// The nftables table the tests drop traffic with (in bgpd's namespace only).
pub const DROP_TABLE: &str = "wren_bfd_test";

/// Drops all traffic between `netns` and `peer`, both ways; returns when.
pub fn block(netns: &Netns, peer: &str) -> Instant {
    netns
        .exec(&["nft", "add", "table", "inet", DROP_TABLE])
        .unwrap();
    for hook in ["input", "output"] {
        netns
            .exec(&[
                "nft",
                &format!("add chain inet {DROP_TABLE} {hook} {{ type filter hook {hook} priority 0 ; policy accept ; }}"),
            ])
            .unwrap();
    }
    let dropped = Instant::now();
    netns
        .exec(&[
            "nft",
            &format!(
                "add rule inet {DROP_TABLE} input ip saddr {peer} drop ; add rule inet {DROP_TABLE} output ip daddr {peer} drop"
            ),
        ])
        .unwrap();
    dropped
}

/// Blocks `peer` ([`block`]); checks that bgpd's session closed with Cease / BFD Down
/// and the peer's route left the kernel within 1 s (detection time 900 ms); returns
/// how long the route took to leave.
pub fn drop_and_measure(netns: &Netns, wren: &Wren, peer: &str) -> Duration {
    let dropped = block(netns, peer);
    let mut route_gone = None;
    while dropped.elapsed() < Duration::from_secs(5) {
        if kernel_route(netns, PREFIX).is_none() {
            route_gone = Some(dropped.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let route_gone = route_gone.expect("the route left the kernel");
    let neighbor = wren.bgpctl_json(&["show", "neighbor", peer]);
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
    route_gone
}

/// Lets traffic through again; BGP, the route and the peer's BFD session (`peer_up`,
/// asked of the peer's own daemon) return by themselves.
pub fn restore_and_wait(netns: &Netns, wren: &Wren, peer: &str, peer_up: impl Fn() -> bool) {
    unblock(netns);
    wren.wait_established(&[peer]);
    lab::wait_until(TIMEOUT, "the route back in the kernel", || {
        kernel_route(netns, PREFIX).is_some()
    })
    .unwrap();
    lab::wait_until(TIMEOUT, "the peer's BFD session up again", peer_up).unwrap();
}

/// Deletes the drop table [`block`] made.
pub fn unblock(netns: &Netns) {
    netns
        .exec(&["nft", "delete", "table", "inet", DROP_TABLE])
        .unwrap();
}
