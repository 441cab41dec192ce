//! RFC 9687 send hold timer, from outside: a peer that stops reading its socket (TCP
//! zero window) while it keeps sending KEEPALIVEs must lose its session when bgpd
//! cannot send for the send hold time, with "send hold timer expired" as the reason;
//! bgpd's hold timer, fed by the KEEPALIVEs, never fires.
//!
//! The neighbor's `send_hold_time` is set to 20 s (RFC 9687's default, the greater of
//! 8 minutes and twice the hold time, would make the test take over 8 minutes).
//! Needs root (skips otherwise; fails with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use peer::wire;
use peer::{Handshake, probe::poll};
use wren_tests::peer_bench::{Bench, config};

/// The configured send hold time.
const SEND_HOLD_SECS: u64 = 20;
/// The send hold time plus slack for a loaded machine.
const SEND_HOLD_WAIT: Duration = Duration::from_secs(SEND_HOLD_SECS + 90);

#[test]
fn a_peer_that_stops_reading_loses_its_session_to_the_send_hold_timer() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    // 20000 local /32s: far more than the socket buffers of both ends hold, so bgpd's
    // writes stop once the peer stops reading.
    let networks: String = (0..20_000u32)
        .map(|i| {
            format!(
                "[[bgp.network]]\nprefix = \"10.{}.{}.{}/32\"\n",
                100 + i / 65536,
                (i / 256) % 256,
                i % 256
            )
        })
        .collect();
    let bench = Bench::start("wsh", |socket| {
        config(
            socket,
            false,
            &format!(
                "[[bgp.neighbor]]\naddress = \"10.66.5.1\"\nremote_asn = 65001\npassive = true\nhold_time = 9\nsend_hold_time = {SEND_HOLD_SECS}\n\n{networks}"
            ),
        )
    });
    let source = bench.fresh_address(5);
    let peer = bench.connect_with(source, |options| options.receive_buffer = Some(4096));
    let open = wire::open(65001, 9, source, &[(1, 1)], false, &[]);
    let Handshake::Established(_) = peer.establish(&open, Duration::from_secs(60)).unwrap() else {
        panic!("not established");
    };
    peer.pause_reading();
    let paused_at = Instant::now();
    let neighbor = std::net::IpAddr::V4(source);
    let detail = bench.observer.neighbor(neighbor).unwrap();
    assert_eq!(
        detail["detail"]["negotiated"]["send_hold_time_secs"], SEND_HOLD_SECS,
        "{detail}"
    );

    // Our KEEPALIVEs keep bgpd's hold timer (9 s) running; its writes stop. The session
    // ends when the send hold timer runs out, not before.
    let reason = poll(SEND_HOLD_WAIT, "the session to go down", || {
        let detail = bench.observer.neighbor(neighbor)?;
        if detail["state"] == "Established" {
            return Ok(Err(format!(
                "Established; we sent {} KEEPALIVEs",
                peer.observed().keepalives_sent
            )));
        }
        Ok(Ok(detail["detail"]["last_error"]["reason"].to_string()))
    })
    .unwrap();
    let down_after = paused_at.elapsed();
    assert!(reason.contains("send hold"), "went down for {reason}");
    // Outlived its 9 s hold time while paused: the KEEPALIVEs kept it fed.
    assert!(
        down_after > Duration::from_secs(9),
        "down after {down_after:?}"
    );
    assert!(
        peer.observed().keepalives_sent >= 3,
        "{:?}",
        peer.observed()
    );
    eprintln!(
        "session down {:.0} s after the peer stopped reading: {reason}",
        down_after.as_secs_f64()
    );

    // Reading again, the peer finds the end of the connection.
    peer.resume_reading();
    peer.wait_closed(Duration::from_secs(60)).unwrap();
    bench.assert_alive();
}
