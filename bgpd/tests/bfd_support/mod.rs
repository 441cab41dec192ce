//! The drop-and-measure steps the BFD interop tests (bfd_frr.rs, bfd_bird.rs) share:
//! dropping all traffic to a peer both ways with nftables, checking that bgpd closed
//! the session with Cease / BFD Down and the peer's route left the kernel within a
//! generous functional bound, and letting traffic through again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use lab::fixture::{Wren, kernel_route};
use lab::{Netns, TIMEOUT};
use serde_json::Value;

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

/// bgpd's BFD session with `peer` in `bgpctl show bfd --json`.
pub fn wren_bfd_session(wren: &Wren, peer: &str) -> Option<Value> {
    let sessions = wren.bgpctl_json(&["show", "bfd"]);
    sessions
        .as_array()?
        .iter()
        .find(|session| session["peer"] == peer)
        .cloned()
}

/// Waits until bgpd's BFD session with `peer` is Up at 300 ms × 3 with packets both
/// ways, and its line in the text table says the same; returns its JSON.
pub fn wait_wren_bfd_up(wren: &Wren, peer: &str) -> Value {
    lab::wait_until(TIMEOUT, "bgpd's BFD session up at 300 ms x 3", || {
        wren_bfd_session(wren, peer).is_some_and(|session| {
            session["state"] == "Up"
                && session["transmit_interval_ms"] == 300
                && session["detection_time_ms"] == 900
        })
    })
    .unwrap();
    let session = wren_bfd_session(wren, peer).unwrap();
    assert_ne!(session["local_discriminator"], 0, "{session}");
    assert_ne!(session["remote_discriminator"], 0, "{session}");
    assert!(
        session["packets_received"].as_u64().unwrap() > 0,
        "{session}"
    );
    assert!(session["packets_sent"].as_u64().unwrap() > 0, "{session}");
    let text = wren.bgpctl_ok(&["show", "bfd"]);
    let line = text
        .lines()
        .find(|line| line.starts_with(&format!("{peer} ")))
        .unwrap_or_else(|| panic!("no line for {peer}: {text}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(
        fields.contains(&"Up") && fields.contains(&"300") && fields.contains(&"900"),
        "{text}"
    );
    let local = session["local_discriminator"].to_string();
    assert!(fields.contains(&local.as_str()), "{text}");
    let neighbor = wren.bgpctl_json(&["show", "neighbor", peer]);
    assert_eq!(neighbor["detail"]["bfd"], "Up", "{neighbor}");
    let text = wren.bgpctl_ok(&["show", "neighbor", peer]);
    assert!(text.contains("\n  BFD: Up\n"), "{text}");
    session
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
    let session =
        wren_bfd_session(wren, peer).expect("the BFD session is kept while BGP reconnects");
    assert_ne!(session["state"], "Up", "{session}");
    assert_eq!(
        session["diagnostic"], "1 (Control Detection Time Expired)",
        "{session}"
    );
    assert!(session["failures"].as_u64().unwrap() >= 1, "{session}");
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
