//! `/metrics`, `/healthz` and `/readyz` of bgpd with FRR as its peer (an IPv4 and an
//! IPv6 session, routes of both families announced, the FIB on a real kernel in a
//! namespace):
//! - `/healthz` says 200 at once, `/readyz` 503 until the first convergence (End-of-RIB
//!   from both sessions), then 200;
//! - the text format passes `promtool check metrics`, the OpenMetrics answer (to a
//!   Prometheus server's `Accept`) passes Python `prometheus_client`'s OpenMetrics
//!   parser and ends in `# EOF`;
//! - every BGP and RIB series equals what `bgpctl --json` says in the same state
//!   (state, AS, kind, Established count, messages by type, prefixes received,
//!   accepted and advertised per family, the Loc-RIB's prefixes and paths);
//! - counters only grow across a reset from our side (`bgpctl neighbor ADDR reset`,
//!   a Cease 6/4 sent) and from FRR's (`clear ip bgp *`, a Cease received);
//! - a neighbor removed by a reload has no series at the next scrape.
//!
//! Needs root, FRR, promtool and the OpenMetrics parser (skips otherwise; fails with
//! WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lab::TIMEOUT;
use lab::fixture::{Pair, Wren, frr_config, pair, wren_config};
use lab::metrics::{ACCEPT_OPENMETRICS, Answer, Samples, get, parse_openmetrics, promtool_check};
use lab::{Frr, wait_until};
use serde_json::Value;

const NET: &str = "10.62.0";
const NET6: &str = "fd00:62";
const FRR_V4: &str = "10.62.0.1";
const FRR_V6: &str = "fd00:62::1";
const FRR_V4_PREFIXES: [&str; 3] = ["10.140.1.0/24", "10.140.2.0/24", "10.140.3.0/24"];
const FRR_V6_PREFIXES: [&str; 2] = ["fd00:140:1::/64", "fd00:140:2::/64"];

fn listen() -> SocketAddr {
    "127.0.0.1:9464".parse().unwrap()
}

/// bgpd: both of FRR's addresses as neighbors (unless `without_v6`), one network of
/// each family, the FIB on, the metrics listener on the namespace's loopback.
fn config(net: &Pair, without_v6: bool) -> String {
    let v6 = if without_v6 {
        String::new()
    } else {
        format!(
            "[[bgp.neighbor]]\naddress = \"{FRR_V6}\"\nremote_asn = 65001\nconnect_retry = 1\n\n"
        )
    };
    wren_config(
        &format!("{NET}.2"),
        &Wren::socket_path(&net.b),
        true,
        &format!(
            "[bgp.graceful_restart]
restart_time = 120

[metrics]
listen = \"{}\"

[[bgp.neighbor]]
address = \"{FRR_V4}\"
remote_asn = 65001
connect_retry = 1

{v6}[[bgp.network]]
prefix = \"10.141.2.0/24\"

[[bgp.network]]
prefix = \"fd00:141:2::/64\"
",
            listen()
        ),
    )
}

fn frr(net: &Pair) -> Frr {
    let mut af4 = String::from("  no neighbor fd00:62::2 activate\n");
    for prefix in FRR_V4_PREFIXES {
        af4.push_str(&format!("  network {prefix}\n"));
    }
    let mut af6 = String::from("  neighbor fd00:62::2 activate\n");
    for prefix in FRR_V6_PREFIXES {
        af6.push_str(&format!("  network {prefix}\n"));
    }
    let networks: Vec<&str> = FRR_V4_PREFIXES
        .iter()
        .chain(&FRR_V6_PREFIXES)
        .copied()
        .collect();
    Frr::start(
        &net.a,
        &frr_config(
            65001,
            FRR_V4,
            " neighbor 10.62.0.2 remote-as 64512\n neighbor fd00:62::2 remote-as 64512",
            af4.trim_end(),
            af6.trim_end(),
            &networks,
        ),
    )
    .unwrap()
}

fn http(net: &Pair, path: &str, accept: Option<&str>) -> Answer {
    get(&net.b, listen(), path, accept).unwrap()
}

/// A text-format scrape, checked by promtool, and its samples.
fn scrape(net: &Pair) -> (String, Samples) {
    let answer = http(net, "/metrics", None);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.content_type(),
        Some("text/plain; version=0.0.4; charset=utf-8"),
        "{answer:?}"
    );
    if let Err(error) = promtool_check(&answer.body) {
        panic!("{error}\n{}", answer.body);
    }
    let samples = Samples::parse(&answer.body).unwrap();
    (answer.body, samples)
}

/// The neighbors as `show neighbors` and `show neighbor ADDR` give them, with the
/// Loc-RIB (`show routes`).
fn bgpctl_state(wren: &Wren) -> (Vec<Value>, Vec<Value>) {
    let mut neighbors = Vec::new();
    for entry in wren.bgpctl_json(&["show", "neighbors"]).as_array().unwrap() {
        let address = entry["address"].as_str().unwrap();
        let mut detail = wren.bgpctl_json(&["show", "neighbor", address]);
        // Seconds move on while we look; compared apart.
        detail["uptime_secs"] = Value::Null;
        detail["detail"]["seconds_in_state"] = Value::Null;
        neighbors.push(detail);
    }
    let routes = wren
        .bgpctl_json(&["show", "routes"])
        .as_array()
        .unwrap()
        .clone();
    (neighbors, routes)
}

/// A scrape and bgpctl's answers in one state: bgpctl asked before and after the
/// scrape said the same (a KEEPALIVE in between makes it try again).
fn consistent(net: &Pair, wren: &Wren) -> (Samples, Vec<Value>, Vec<Value>) {
    for _ in 0..20 {
        let before = bgpctl_state(wren);
        let (_, samples) = scrape(net);
        let after = bgpctl_state(wren);
        if before == after {
            return (samples, before.0, before.1);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("bgpctl's answers kept changing around the scrape");
}

fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> u64 {
    let found = samples
        .value(name, labels)
        .unwrap_or_else(|| panic!("no single sample {name} {labels:?} in {:#?}", samples.0));
    assert!(
        found >= 0.0 && found.fract() == 0.0,
        "{name} {labels:?} = {found}"
    );
    found as u64
}

/// Every series of the scrape equals what bgpctl says.
fn check_against_bgpctl(samples: &Samples, neighbors: &[Value], routes: &[Value]) {
    assert_eq!(
        samples.matching("wren_bgp_session_up", &[]).count(),
        neighbors.len(),
        "one wren_bgp_session_up per neighbor"
    );
    for neighbor in neighbors {
        let peer = neighbor["address"].as_str().unwrap();
        let detail = &neighbor["detail"];
        let state = neighbor["state"].as_str().unwrap();
        let asn = neighbor["remote_asn"].to_string();
        let established = u64::from(state == "Established");
        let up = [
            ("peer", peer),
            ("peer_asn", asn.as_str()),
            ("kind", "configured"),
        ];
        assert_eq!(
            value(samples, "wren_bgp_session_up", &up),
            established,
            "{peer}"
        );
        for candidate in [
            "Idle",
            "Connect",
            "Active",
            "OpenSent",
            "OpenConfirm",
            "Established",
        ] {
            let labels = [("peer", peer), ("state", candidate)];
            assert_eq!(
                value(samples, "wren_bgp_session_state", &labels),
                u64::from(candidate == state),
                "{peer} {candidate}"
            );
        }
        let peer_only = [("peer", peer)];
        assert_eq!(
            value(
                samples,
                "wren_bgp_session_established_transitions_total",
                &peer_only
            ),
            neighbor["established_count"].as_u64().unwrap(),
            "{peer}"
        );
        for (name, field) in [
            ("wren_bgp_messages_received_total", "messages_received"),
            ("wren_bgp_messages_sent_total", "messages_sent"),
        ] {
            for (kind, key) in [
                ("open", "open"),
                ("update", "update"),
                ("notification", "notification"),
                ("keepalive", "keepalive"),
                ("route-refresh", "route_refresh"),
            ] {
                let labels = [("peer", peer), ("type", kind)];
                assert_eq!(
                    value(samples, name, &labels),
                    detail[field][key].as_u64().unwrap(),
                    "{name} {peer} {kind}"
                );
            }
            assert_eq!(
                samples.sum(name, &peer_only) as u64,
                neighbor[field].as_u64().unwrap(),
                "{name} {peer}: the sum of the types"
            );
        }
        // NOTIFICATIONs by code add up to the NOTIFICATION messages.
        for (direction, field) in [("sent", "messages_sent"), ("received", "messages_received")] {
            let labels = [("peer", peer), ("direction", direction)];
            assert_eq!(
                samples.sum("wren_bgp_notifications_total", &labels) as u64,
                detail[field]["notification"].as_u64().unwrap(),
                "{peer} {direction}"
            );
        }
        for (name, expected) in [
            (
                "wren_bgp_prefixes_received",
                &detail["prefixes"]["received"],
            ),
            (
                "wren_bgp_prefixes_accepted",
                &detail["prefixes"]["accepted"],
            ),
            (
                "wren_bgp_prefixes_advertised",
                &detail["prefixes"]["advertised"],
            ),
        ] {
            assert_eq!(
                samples.matching(name, &peer_only).count(),
                2,
                "{name} {peer}"
            );
            assert_eq!(
                samples.sum(name, &peer_only) as u64,
                expected.as_u64().unwrap(),
                "{name} {peer}"
            );
        }
        assert_eq!(
            samples.sum("wren_bgp_stale_prefixes", &peer_only),
            0.0,
            "{peer}"
        );
        // Per family: a session carries one family here; FRR's routes of it came.
        let family = if peer.contains(':') {
            "ipv6-unicast"
        } else {
            "ipv4-unicast"
        };
        let labels = [("peer", peer), ("family", family)];
        assert_eq!(
            value(samples, "wren_bgp_prefixes_received", &labels),
            detail["prefixes"]["received"].as_u64().unwrap(),
            "{peer} {family}"
        );
        assert_eq!(
            value(samples, "wren_bgp_prefixes_advertised", &labels),
            neighbor["prefixes_advertised"].as_u64().unwrap(),
            "{peer} {family}"
        );
        // The last change: now less the uptime bgpctl gave, give or take the rounding
        // and the time between the two answers.
        let changed = samples
            .value("wren_bgp_session_last_change_timestamp_seconds", &peer_only)
            .unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(changed <= now && changed > now - 600.0, "{peer}: {changed}");
    }
    // The Loc-RIB: prefixes and paths per family.
    let mut prefixes: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
    let mut paths: BTreeMap<&str, u64> = BTreeMap::new();
    for route in routes {
        let prefix = route["prefix"].as_str().unwrap();
        let family = if prefix.contains(':') {
            "ipv6-unicast"
        } else {
            "ipv4-unicast"
        };
        prefixes.entry(family).or_default().insert(prefix);
        *paths.entry(family).or_default() += 1;
    }
    for family in ["ipv4-unicast", "ipv6-unicast"] {
        let labels = [("family", family)];
        assert_eq!(
            value(samples, "wren_rib_prefixes", &labels),
            prefixes.get(family).map_or(0, |p| p.len() as u64),
            "{family}"
        );
        assert_eq!(
            value(samples, "wren_rib_paths", &labels),
            paths.get(family).copied().unwrap_or(0),
            "{family}"
        );
    }
}

/// Every counter of `before` is in `after`, none smaller.
fn counters_grew(before: &Samples, after: &Samples, what: &str) {
    let mut checked = 0;
    for (name, labels, old) in &before.0 {
        if !name.ends_with("_total") || !name.starts_with("wren_bgp_") {
            continue;
        }
        let pairs: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let new = after
            .0
            .iter()
            .find(|(n, l, _)| n == name && l == labels)
            .map(|(_, _, v)| *v)
            .unwrap_or_else(|| panic!("{what}: {name} {pairs:?} is gone"));
        assert!(
            new >= *old,
            "{what}: {name} {pairs:?} went from {old} to {new}"
        );
        checked += 1;
    }
    assert!(checked > 20, "{what}: only {checked} counters compared");
}

fn wait_transitions(net: &Pair, peer: &str, at_least: u64) -> Samples {
    let mut last = None;
    let found = wait_until(
        TIMEOUT,
        &format!("{peer} Established for the {at_least}th time"),
        || {
            let (_, samples) = scrape(net);
            let transitions = samples
                .value(
                    "wren_bgp_session_established_transitions_total",
                    &[("peer", peer)],
                )
                .unwrap_or(0.0);
            let up = samples.value("wren_bgp_session_up", &[("peer", peer)]) == Some(1.0);
            let done = up && transitions >= at_least as f64;
            last = Some(samples);
            done
        },
    );
    found.unwrap();
    last.unwrap()
}

#[test]
fn metrics_equal_bgpctl_and_counters_only_grow() {
    let Some(_ready) = lab::require!(Root, Frr, Promtool, OpenMetricsParser) else {
        return;
    };
    let net = pair("wb-met", NET, NET6);
    let wren = Wren::start(&net.b, &config(&net, false));

    // Live at once; not ready before the sessions' End-of-RIB.
    let health = http(&net, "/healthz", None);
    assert_eq!((health.status, health.body.as_str()), (200, "live\n"));
    let ready = http(&net, "/readyz", None);
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(ready.body.contains("converged: no"), "{ready:?}");
    let (_, samples) = scrape(&net);
    assert_eq!(
        value(&samples, "wren_bgp_session_up", &[("peer", FRR_V4)]),
        0
    );

    let frr = frr(&net);
    frr.wait_established(TIMEOUT, &["10.62.0.2", "fd00:62::2"])
        .unwrap();
    wren.wait_established(&[FRR_V4, FRR_V6]);
    for prefix in FRR_V4_PREFIXES.iter().chain(&FRR_V6_PREFIXES) {
        wren.wait_route(prefix);
    }
    for prefix in FRR_V4_PREFIXES.iter().chain(&FRR_V6_PREFIXES) {
        wait_until(TIMEOUT, &format!("{prefix} in bgpd's kernel table"), || {
            lab::fixture::kernel_route(&net.b, prefix).is_some()
        })
        .unwrap();
    }
    wait_until(TIMEOUT, "/readyz to say 200", || {
        http(&net, "/readyz", None).status == 200
    })
    .unwrap();
    assert!(http(&net, "/readyz", None).body.contains("ready: yes"));
    frr.wait_route(TIMEOUT, "10.141.2.0/24").unwrap();
    frr.wait_route(TIMEOUT, "fd00:141:2::/64").unwrap();

    // The OpenMetrics answer, as a Prometheus server asks for it.
    let open = http(&net, "/metrics", Some(ACCEPT_OPENMETRICS));
    assert_eq!(open.status, 200);
    assert_eq!(
        open.content_type(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(open.body.ends_with("# EOF\n"), "{}", open.body);
    let parsed = parse_openmetrics(&open.body).unwrap();
    let families: std::collections::BTreeSet<&str> =
        parsed.iter().map(|s| s.family.as_str()).collect();
    for family in [
        "wren_bgp_session_up",
        "wren_bgp_session_state",
        "wren_bgp_session_established_transitions",
        "wren_bgp_session_last_change_timestamp_seconds",
        "wren_bgp_messages_received",
        "wren_bgp_messages_sent",
        "wren_bgp_updates_malformed",
        "wren_bgp_prefixes_received",
        "wren_bgp_prefixes_accepted",
        "wren_bgp_prefixes_advertised",
        "wren_bgp_stale_prefixes",
        "wren_rib_prefixes",
        "wren_rib_paths",
    ] {
        assert!(families.contains(family), "{family} missing: {families:?}");
    }
    let sample = parsed
        .iter()
        .find(|s| s.name == "wren_bgp_messages_received_total" && s.labels["type"] == "open")
        .unwrap();
    assert_eq!(sample.kind, "counter");
    assert!(sample.value >= 1.0);

    // Every value as bgpctl says it.
    let (samples, neighbors, routes) = consistent(&net, &wren);
    assert_eq!(neighbors.len(), 2);
    check_against_bgpctl(&samples, &neighbors, &routes);
    assert_eq!(
        value(
            &samples,
            "wren_bgp_prefixes_received",
            &[("peer", FRR_V4), ("family", "ipv4-unicast")]
        ),
        3
    );
    assert_eq!(
        value(
            &samples,
            "wren_bgp_prefixes_received",
            &[("peer", FRR_V6), ("family", "ipv6-unicast")]
        ),
        2
    );
    for action in [
        "treat-as-withdraw",
        "attribute-discard",
        "afi-safi-disable",
        "session-reset",
    ] {
        let labels = [("peer", FRR_V4), ("action", action)];
        assert_eq!(
            value(&samples, "wren_bgp_updates_malformed_total", &labels),
            0
        );
    }

    // Our reset: a Cease / Administrative Reset sent, counters go on.
    wren.bgpctl_ok(&["neighbor", FRR_V4, "reset"]);
    let after_reset = wait_transitions(&net, FRR_V4, 2);
    counters_grew(&samples, &after_reset, "bgpctl neighbor reset");
    // Cease / Administrative Reset (6/4), which goes out as an RFC 8538 Hard Reset
    // (6/9) when both sides set the N bit; besides it, both sides reconnecting at once
    // may make us close one connection with Cease / Connection Collision (6/7).
    let sent_reset = [("peer", FRR_V4), ("direction", "sent"), ("code", "6")];
    let sent: Vec<_> = after_reset
        .matching("wren_bgp_notifications_total", &sent_reset)
        .filter(|sample| sample.1["subcode"] != "7")
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        matches!(sent[0].1["subcode"].as_str(), "4" | "9"),
        "{sent:?}"
    );
    assert_eq!(sent[0].2, 1.0, "{sent:?}");

    // FRR's reset of its IPv4 sessions: its Cease received.
    frr.vtysh("clear ip bgp *").unwrap();
    let after_clear = wait_transitions(&net, FRR_V4, 3);
    counters_grew(&after_reset, &after_clear, "FRR's clear ip bgp *");
    let received = [("peer", FRR_V4), ("direction", "received"), ("code", "6")];
    assert!(
        after_clear.sum("wren_bgp_notifications_total", &received)
            > after_reset.sum("wren_bgp_notifications_total", &received)
    );
    // The NOTIFICATIONs in OpenMetrics too (a family without samples is left out by
    // the parser).
    let open = http(&net, "/metrics", Some(ACCEPT_OPENMETRICS));
    let parsed = parse_openmetrics(&open.body).unwrap();
    assert!(
        parsed
            .iter()
            .any(|s| s.name == "wren_bgp_notifications_total" && s.labels["direction"] == "sent"),
        "{}",
        open.body
    );
    for prefix in FRR_V4_PREFIXES.iter().chain(&FRR_V6_PREFIXES) {
        wren.wait_route(prefix);
    }
    // Routes FRR's reset left stale (graceful restart) are fresh again after its
    // End-of-RIB.
    wait_until(TIMEOUT, "no stale prefix left", || {
        scrape(&net).1.sum("wren_bgp_stale_prefixes", &[]) == 0.0
    })
    .unwrap();
    let (samples, neighbors, routes) = consistent(&net, &wren);
    check_against_bgpctl(&samples, &neighbors, &routes);

    // The IPv6 neighbor removed by a reload: none of its series at the next scrape.
    std::fs::write(&wren.config_path, config(&net, true)).unwrap();
    wren.bgpctl_ok(&["reload"]);
    let (text, samples) = scrape(&net);
    assert!(!samples.any_with("peer", FRR_V6), "{text}");
    assert!(!text.contains(FRR_V6), "{text}");
    assert_eq!(
        value(&samples, "wren_bgp_session_up", &[("peer", FRR_V4)]),
        1
    );
    let (samples, neighbors, routes) = consistent(&net, &wren);
    assert_eq!(neighbors.len(), 1);
    check_against_bgpctl(&samples, &neighbors, &routes);
}
