//! Hostile BFD packets change nothing (issue 17): bgpd has a BFD session Up with FRR's
//! bfdd (300 ms × 3); from FRR's namespace, the adversarial peer (`peer::bfd`) sends
//! packets that would take that session down if accepted (state Down, diagnostic
//! "Neighbor Signaled Session Down", the live session's discriminators), each with one
//! defect: short, version 2, bad lengths, Detect Mult 0, My or Your Discriminator 0, the
//! M or A bit, an unknown discriminator; the well-formed one with TTL 254, 64 and 1 from
//! FRR's own address; the well-formed one from another address; and a flood of
//! session-less packets from 150 addresses. Afterwards the session is Up on both sides
//! with the same discriminators and no failure, `bgpctl show bfd` lists that one
//! session only, BGP and the route are untouched, every drop is counted under its
//! reason in `wren_bfd_packets_dropped_total`, and the log has one line for all of it.
//! Needs root, FRR and promtool.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::Duration;

use lab::fixture::{Wren, frr_bfd_peer, frr_with_bfdd, kernel_route, pair};
use lab::metrics::Samples;
use lab::{Netns, TIMEOUT};
use peer::bfd::{BfdSender, Hostile, Target, flood, session_down};
use serde_json::Value;

const PREFIX: &str = "10.173.1.0/24";
const METRICS: &str = "127.0.0.1:9464";
/// Each hostile packet is sent this many times.
const REPEAT: u64 = 20;
/// Flood sources: 10.95.1.100 to 10.95.1.249, on FRR's link.
const FLOOD_SOURCES: u8 = 150;
const FLOOD_PER_SOURCE: u32 = 10;

/// A scrape of bgpd's metrics, checked by promtool.
fn scrape(netns: &Netns) -> Samples {
    lab::metrics::checked_scrape(netns, METRICS.parse().unwrap()).unwrap()
}

fn dropped(samples: &Samples, reason: &str) -> u64 {
    samples
        .value("wren_bfd_packets_dropped_total", &[("reason", reason)])
        .unwrap_or_else(|| panic!("no wren_bfd_packets_dropped_total{{reason={reason}}}"))
        as u64
}

/// bgpd's BFD sessions (`bgpctl show bfd --json`).
fn wren_bfd_sessions(wren: &Wren) -> Vec<Value> {
    wren.bgpctl_json(&["show", "bfd"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn hostile_bfd_packets_change_nothing() {
    let Some(_ready) = lab::require!(Root, Frr, Promtool) else {
        return;
    };
    let pair = pair("wbfh", "10.95.1", "fd00:95");
    let frr = frr_with_bfdd(
        &pair.b,
        "10.95.1.2",
        " neighbor 10.95.1.1 remote-as 64512\n neighbor 10.95.1.1 timers 30 90\n neighbor 10.95.1.1 bfd",
        &[PREFIX],
    );
    let wren = Wren::start_with_config(
        &pair.a,
        "10.95.1.1",
        true,
        &format!(
            "[metrics]\nlisten = \"{METRICS}\"\n\n[[bgp.neighbor]]\naddress = \"10.95.1.2\"\nremote_asn = 65001\nhold_time = 90\nconnect_retry = 1\nbfd = true\n"
        ),
    );
    wren.wait_established(&["10.95.1.2"]);
    lab::wait_until(TIMEOUT, "FRR's route in bgpd's kernel table", || {
        kernel_route(&pair.a, PREFIX).is_some()
    })
    .unwrap();
    lab::wait_until(TIMEOUT, "both BFD sides Up at 300 ms", || {
        frr_bfd_peer(&frr, "10.95.1.1")
            .is_some_and(|peer| peer["status"] == "up" && peer["remote-transmit-interval"] == 300)
            && wren_bfd_sessions(&wren)
                .iter()
                .any(|s| s["state"] == "Up" && s["detection_time_ms"] == 900)
    })
    .unwrap();
    let before = wren_bfd_sessions(&wren);
    assert_eq!(before.len(), 1, "{before:?}");
    let before = before[0].clone();
    let frr_before = frr_bfd_peer(&frr, "10.95.1.1").unwrap();
    let established = wren.neighbor("10.95.1.2").unwrap()["established_count"].clone();
    let baseline = scrape(&pair.a);
    let log_start = wren.daemon.log().len();
    let target = Target {
        my_discriminator: u32::try_from(before["remote_discriminator"].as_u64().unwrap()).unwrap(),
        your_discriminator: u32::try_from(before["local_discriminator"].as_u64().unwrap()).unwrap(),
    };
    let bgpd: IpAddr = "10.95.1.1".parse().unwrap();
    let frr_address: IpAddr = "10.95.1.2".parse().unwrap();
    let stranger: IpAddr = "10.95.1.3".parse().unwrap();
    pair.b
        .ip(&["addr", "add", "10.95.1.3/32", "dev", "eth1"])
        .unwrap();
    let flood_sources: Vec<IpAddr> = (0..FLOOD_SOURCES)
        .map(|i| IpAddr::from([10, 95, 1, 100 + i]))
        .collect();
    for source in &flood_sources {
        pair.b
            .ip(&["addr", "add", &format!("{source}/32"), "dev", "eth1"])
            .unwrap();
    }

    let flooded = pair
        .b
        .enter(|| -> peer::Result<u64> {
            let pause = || std::thread::sleep(Duration::from_millis(2));
            // Each defect from FRR's own address and port-independent, TTL 255.
            let spoof = BfdSender::bind(frr_address, 255)?;
            for hostile in Hostile::ALL {
                let bytes = hostile.packet(target);
                for _ in 0..REPEAT {
                    spoof.send(bgpd, &bytes)?;
                    pause();
                }
            }
            // The well-formed killer with a TTL that is not 255 (single hop: it came
            // from further away).
            let killer = session_down(target).encode();
            for ttl in [254, 64, 1] {
                let sender = BfdSender::bind(frr_address, ttl)?;
                for _ in 0..REPEAT {
                    sender.send(bgpd, &killer)?;
                    pause();
                }
            }
            // The well-formed killer from an address that is not the session's peer.
            let sender = BfdSender::bind(stranger, 255)?;
            for _ in 0..REPEAT {
                sender.send(bgpd, &killer)?;
                pause();
            }
            flood(&flood_sources, bgpd, FLOOD_PER_SOURCE)
        })
        .unwrap()
        .unwrap();
    // Four detection times for anything accepted to show.
    std::thread::sleep(Duration::from_millis(3600));

    let after = wren_bfd_sessions(&wren);
    assert_eq!(after.len(), 1, "a packet created a session: {after:?}");
    let after = &after[0];
    assert_eq!(after["state"], "Up", "{after}");
    for field in [
        "local_discriminator",
        "remote_discriminator",
        "failures",
        "downs",
    ] {
        assert_eq!(after[field], before[field], "{field}: {before} -> {after}");
    }
    assert!(
        after["packets_received"].as_u64().unwrap() > before["packets_received"].as_u64().unwrap(),
        "FRR's packets still arrive: {after}"
    );
    let frr_after = frr_bfd_peer(&frr, "10.95.1.1").unwrap();
    assert_eq!(frr_after["status"], "up", "{frr_after}");
    assert_eq!(frr_after["id"], frr_before["id"], "{frr_after}");
    assert_eq!(
        frr_after["remote-id"], frr_before["remote-id"],
        "{frr_after}"
    );
    let neighbor = wren.neighbor("10.95.1.2").unwrap();
    assert_eq!(neighbor["state"], "Established", "{neighbor}");
    assert_eq!(neighbor["established_count"], established, "{neighbor}");
    assert!(kernel_route(&pair.a, PREFIX).is_some());

    let samples = scrape(&pair.a);
    let grew = |reason: &str| dropped(&samples, reason) - dropped(&baseline, reason);
    for hostile in Hostile::ALL {
        assert_eq!(grew(hostile.reason()), REPEAT, "{}", hostile.reason());
    }
    assert_eq!(grew("ttl"), 3 * REPEAT);
    assert_eq!(grew("wrong_source"), REPEAT);
    // A flood may overflow the socket's buffer or the task's queue (dropped unread,
    // uncounted); what was read is counted, and nothing else is dropped for it.
    let no_session = grew("no_session");
    assert_eq!(
        flooded,
        u64::from(FLOOD_SOURCES) * u64::from(FLOOD_PER_SOURCE)
    );
    assert!(
        no_session > 0 && no_session <= flooded,
        "no_session grew by {no_session} of {flooded}"
    );

    // One log line for all of it (drops are summed up, one line a minute at most).
    let log = wren.daemon.log();
    let lines: Vec<&str> = log[log_start..]
        .lines()
        .filter(|line| line.contains("BFD"))
        .collect();
    // The first drop since bgpd started is logged at once; one before the attack
    // (FRR's first packets can precede bgpd's session) holds this one back a minute.
    let earlier = log[..log_start].contains("BFD: dropped packets");
    assert!(
        lines.len() == 1 || (earlier && lines.is_empty()),
        "{lines:#?}"
    );
    assert!(
        lines.iter().all(|line| line.contains("dropped packets")),
        "{lines:#?}"
    );
}
