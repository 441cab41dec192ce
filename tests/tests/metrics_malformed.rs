//! `/metrics` against the adversarial peer: malformed UPDATEs are counted by the
//! RFC 7606 action bgpd took (`wren_bgp_updates_malformed_total`), the NOTIFICATION
//! it sent for the one that reset the session by code and subcode, and the counts
//! survive the reset of a configured neighbor; a dynamic neighbor is `kind="dynamic"`
//! while it is there and has no series once its session is gone.
//!
//! The UPDATEs are rows of bgp-proto's RFC 7606 table (`rules.txt`), byte for byte.
//! Needs root, promtool (skips otherwise; fails with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};

use lab::metrics::{Samples, get, promtool_check};
use lab::wait_until;
use peer::{Handshake, wire};
use wren_tests::peer_bench::{Bench, TIMEOUT, config, listen_range};

/// ORIGIN value 3: treat-as-withdraw.
const TREAT_AS_WITHDRAW: &str = "ffffffffffffffffffffffffffffffff 002f 02 0000 0014 40010103 40020602010000fde9 400304c0000201 18c63364";
/// ATOMIC_AGGREGATE of 1 octet: attribute-discard.
const ATTRIBUTE_DISCARD: &str = "ffffffffffffffffffffffffffffffff 0033 02 0000 0018 40010100 40020602010000fde9 400304c0000201 40060100 18c63364";
/// NLRI prefix length 33: session-reset.
const SESSION_RESET: &str = "ffffffffffffffffffffffffffffffff 0031 02 0000 0014 40010100 40020602010000fde9 400304c0000201 210102030405";

fn listen() -> SocketAddr {
    "127.0.0.1:9465".parse().unwrap()
}

fn scrape(bench: &Bench) -> Samples {
    let answer = get(&bench.daemon_ns, listen(), "/metrics", None).unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    if let Err(error) = promtool_check(&answer.body) {
        panic!("{error}\n{}", answer.body);
    }
    Samples::parse(&answer.body).unwrap()
}

fn malformed(samples: &Samples, peer: &str, action: &str) -> f64 {
    samples
        .value(
            "wren_bgp_updates_malformed_total",
            &[("peer", peer), ("action", action)],
        )
        .unwrap_or_else(|| panic!("no wren_bgp_updates_malformed_total for {peer} {action}"))
}

#[test]
fn malformed_updates_and_notifications_are_counted() {
    let Some(_ready) = lab::require!(Root, Promtool) else {
        return;
    };
    let bench = Bench::start("wmm", |socket| {
        config(
            socket,
            false,
            &format!(
                "[metrics]\nlisten = \"{}\"\n\n\
                 [[bgp.neighbor]]\naddress = \"10.66.1.1\"\nremote_asn = 65001\npassive = true\n\n{}",
                listen(),
                listen_range(2, 65001, "")
            ),
        )
    });

    // The configured neighbor: three malformed UPDATEs, the last one resets.
    let source = bench.fresh_address(1);
    assert_eq!(source.to_string(), "10.66.1.1");
    let peer = bench.connect(source);
    let open = wire::open(65001, 90, source, &[(1, 1)], false, &[]);
    match peer.establish(&open, TIMEOUT).unwrap() {
        Handshake::Established(_) => {}
        other => panic!("not established: {other:?}"),
    }
    for hex in [TREAT_AS_WITHDRAW, ATTRIBUTE_DISCARD, SESSION_RESET] {
        peer.send(&wire::parse_hex(hex).unwrap()).unwrap();
    }
    let notification = peer
        .wait_closed(TIMEOUT)
        .unwrap()
        .expect("bgpd closed without a NOTIFICATION");
    let name = source.to_string();
    let samples = {
        let mut last = None;
        wait_until(TIMEOUT, "the session's end in the scrape", || {
            let samples = scrape(&bench);
            let down = samples.value("wren_bgp_session_up", &[("peer", &name)]) == Some(0.0);
            last = Some(samples);
            down
        })
        .unwrap();
        last.unwrap()
    };
    assert_eq!(malformed(&samples, &name, "treat-as-withdraw"), 1.0);
    assert_eq!(malformed(&samples, &name, "attribute-discard"), 1.0);
    assert_eq!(malformed(&samples, &name, "session-reset"), 1.0);
    assert_eq!(malformed(&samples, &name, "afi-safi-disable"), 0.0);
    let (code, subcode) = (
        notification.code.to_string(),
        notification.subcode.to_string(),
    );
    let sent = [
        ("peer", name.as_str()),
        ("direction", "sent"),
        ("code", code.as_str()),
        ("subcode", subcode.as_str()),
    ];
    assert_eq!(
        samples.value("wren_bgp_notifications_total", &sent),
        Some(1.0),
        "{notification}"
    );
    let up = [("peer", name.as_str()), ("kind", "configured")];
    assert_eq!(samples.value("wren_bgp_session_up", &up), Some(0.0));
    // As bgpctl counts them: three UPDATEs received, one NOTIFICATION sent.
    let detail = bench.observer.neighbor(IpAddr::V4(source)).unwrap();
    let received = samples
        .value(
            "wren_bgp_messages_received_total",
            &[("peer", &name), ("type", "update")],
        )
        .unwrap();
    assert_eq!(received, 3.0);
    assert_eq!(
        Some(received as u64),
        detail["detail"]["messages_received"]["update"].as_u64(),
        "{detail}"
    );

    // Established again: the counts of the last session stay.
    let peer = bench.connect(source);
    match peer.establish(&open, TIMEOUT).unwrap() {
        Handshake::Established(_) => {}
        other => panic!("not established again: {other:?}"),
    }
    // Our side is Established once bgpd's KEEPALIVE arrives, which bgpd sends on our
    // OPEN, before it reads ours: wait for the scrape to say Established too (the
    // state and the transitions come from one snapshot of the neighbor).
    let samples = {
        let mut last = None;
        wait_until(TIMEOUT, "the session up again in the scrape", || {
            let samples = scrape(&bench);
            let established = samples.value("wren_bgp_session_up", &up) == Some(1.0);
            last = Some(samples);
            established
        })
        .unwrap();
        last.unwrap()
    };
    assert_eq!(malformed(&samples, &name, "session-reset"), 1.0);
    assert_eq!(
        samples.value(
            "wren_bgp_session_established_transitions_total",
            &[("peer", &name)]
        ),
        Some(2.0)
    );

    // A dynamic neighbor: there while its session is, gone after.
    let dynamic = bench.fresh_address(2);
    let other = bench.connect(dynamic);
    let open = wire::open(65001, 90, dynamic, &[(1, 1)], false, &[]);
    match other.establish(&open, TIMEOUT).unwrap() {
        Handshake::Established(_) => {}
        handshake => panic!("dynamic neighbor not established: {handshake:?}"),
    }
    let dynamic = dynamic.to_string();
    let up = [("peer", dynamic.as_str()), ("kind", "dynamic")];
    wait_until(TIMEOUT, "the dynamic neighbor up in the scrape", || {
        scrape(&bench).value("wren_bgp_session_up", &up) == Some(1.0)
    })
    .unwrap();
    other.notify_and_close(6, 2, &[]);
    wait_until(TIMEOUT, "the dynamic neighbor's series gone", || {
        !scrape(&bench).any_with("peer", &dynamic)
    })
    .unwrap();
    assert_eq!(malformed(&scrape(&bench), &name, "treat-as-withdraw"), 1.0);
    bench.assert_alive();
}
