//! bgpd against FRR 8.4 in network namespaces: eBGP and iBGP over IPv4 and IPv6,
//! routes both ways, withdrawals when FRR withdraws, stops or the link goes down,
//! TCP-MD5 (and a wrong key that never establishes), GTSM (and a peer sending with
//! TTL 1 that never establishes). Sessions are checked from FRR's side too.
//! Needs root and FRR (skips otherwise; fails with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use lab::TIMEOUT;
use lab::fixture::{Pair, Wren, frr_config, frr_neighbor, pair, wren_config};
use lab::{Family, Frr};

/// How long a session that must not come up is watched.
const NEVER: Duration = Duration::from_secs(20);

fn neighbor(address: &str, asn: u32, extra: &str) -> String {
    format!(
        "[[bgp.neighbor]]\naddress = \"{address}\"\nremote_asn = {asn}\nhold_time = 9\nconnect_retry = 1\n{extra}\n"
    )
}

/// FRR at `NET.1` in `net.a` and bgpd at `NET.2` in `net.b`, peering over IPv4.
struct Peering<'a> {
    net: &'a str,
    frr_as: u32,
    wren_as: u32,
    /// `router bgp` lines after the neighbor's `remote-as`.
    frr_lines: &'a str,
    frr_af4: &'a str,
    frr_af6: &'a str,
    frr_networks: &'a [&'a str],
    /// Keys added to bgpd's neighbor, and TOML after it.
    wren_neighbor: &'a str,
    wren_rest: &'a str,
}

impl Default for Peering<'_> {
    fn default() -> Self {
        Peering {
            net: "",
            frr_as: 65001,
            wren_as: 64512,
            frr_lines: "",
            frr_af4: "",
            frr_af6: "",
            frr_networks: &[],
            wren_neighbor: "",
            wren_rest: "",
        }
    }
}

impl Peering<'_> {
    /// Starts both and waits until FRR sees the session Established.
    fn start(&self, pair: &Pair) -> (Frr, Wren) {
        let (frr_address, wren_address) = (format!("{}.1", self.net), format!("{}.2", self.net));
        let frr = Frr::start(
            &pair.a,
            &frr_config(
                self.frr_as,
                &frr_address,
                &format!(
                    " neighbor {wren_address} remote-as {}\n{}",
                    self.wren_as, self.frr_lines
                ),
                self.frr_af4,
                self.frr_af6,
                self.frr_networks,
            ),
        )
        .unwrap();
        let socket = Wren::socket_path(&pair.b);
        let config = wren_config(
            &wren_address,
            &socket,
            false,
            &format!(
                "{}{}",
                neighbor(&frr_address, self.frr_as, self.wren_neighbor),
                self.wren_rest
            ),
        )
        .replace("asn = 64512", &format!("asn = {}", self.wren_as));
        let wren = Wren::start(&pair.b, &config);
        frr.wait_established(TIMEOUT, &[wren_address.as_str()])
            .unwrap();
        (frr, wren)
    }
}

/// Waits until neither side is Established any more (an old session going), then
/// watches for [`NEVER`] that neither comes back.
fn never_established(frr: &Frr, frr_sees: &str, wren: &Wren, wren_sees: &str) {
    let established = || {
        frr.neighbor_state(frr_sees).unwrap().as_deref() == Some("Established")
            || wren.neighbor(wren_sees).unwrap()["state"] == "Established"
    };
    lab::wait_until(TIMEOUT, "the old session to go", || !established()).unwrap();
    let start = Instant::now();
    while start.elapsed() < NEVER {
        assert!(
            !established(),
            "established: FRR {frr_sees}, bgpd {wren_sees}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn ebgp_ipv4_routes_flow_both_ways_and_are_withdrawn() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let net = pair("wb-e4", "10.31.0", "fd00:31");
    let (frr, wren) = Peering {
        net: "10.31.0",
        frr_af4: "  network 10.100.1.0/24",
        frr_networks: &["10.100.1.0/24"],
        wren_neighbor: "description = \"tor-1\"",
        wren_rest: "[[bgp.network]]\nprefix = \"10.100.2.0/24\"\n",
        ..Peering::default()
    }
    .start(&net);

    // Established, seen from both sides.
    wren.wait_established(&["10.31.0.1"]);
    let seen = frr_neighbor(&frr, "10.31.0.2");
    assert_eq!(seen["remoteAs"], 64512, "{seen}");
    assert_eq!(seen["bgpState"], "Established", "{seen}");

    // FRR's route reaches bgpd, ours reaches FRR with our AS.
    let paths = wren.wait_route("10.100.1.0/24");
    assert_eq!(paths[0]["as_path"], serde_json::json!([65001]));
    assert_eq!(paths[0]["next_hops"], serde_json::json!(["10.31.0.1"]));
    assert_eq!(paths[0]["source"], "10.31.0.1");
    assert_eq!(paths[0]["best"], true);
    let frr_paths = frr.wait_route(TIMEOUT, "10.100.2.0/24").unwrap();
    assert_eq!(frr_paths[0]["path"], "64512", "{frr_paths:?}");

    // The summary and detail tables.
    let table = wren.bgpctl_ok(&["show", "neighbors"]);
    let line = table
        .lines()
        .find(|line| line.starts_with("10.31.0.1"))
        .unwrap_or_else(|| panic!("no neighbor line in\n{table}"));
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(columns[1..3], ["4", "65001"], "{line}");
    assert_eq!(columns[6], "1", "State/PfxRcd: {line}");
    assert_eq!(columns[8], "tor-1", "{line}");
    let detail = wren.bgpctl_ok(&["show", "neighbor", "10.31.0.1"]);
    assert!(detail.contains("BGP state = Established"), "{detail}");
    assert!(detail.contains("external link"), "{detail}");
    assert!(detail.contains("Peer router ID 10.31.0.1"), "{detail}");

    // FRR withdraws: bgpd drops the route.
    frr.vtysh_lines(&[
        "configure terminal",
        "router bgp 65001",
        "address-family ipv4 unicast",
        "no network 10.100.1.0/24",
    ])
    .unwrap();
    wren.wait_no_route("10.100.1.0/24");

    // FRR announces again, then stops: the route goes with the session.
    frr.vtysh_lines(&[
        "configure terminal",
        "router bgp 65001",
        "address-family ipv4 unicast",
        "network 10.100.1.0/24",
    ])
    .unwrap();
    wren.wait_route("10.100.1.0/24");
    drop(frr);
    wren.wait_no_route("10.100.1.0/24");
    let state = wren.neighbor("10.31.0.1").unwrap()["state"].clone();
    assert_ne!(state, "Established");
}

#[test]
fn link_down_withdraws_after_the_hold_time() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let net = pair("wb-ld", "10.32.0", "fd00:32");
    let (_frr, wren) = Peering {
        net: "10.32.0",
        frr_af4: "  network 10.101.1.0/24",
        frr_networks: &["10.101.1.0/24"],
        ..Peering::default()
    }
    .start(&net);
    wren.wait_route("10.101.1.0/24");
    net.b.iface("eth1").down().unwrap();
    wren.wait_no_route("10.101.1.0/24");
    let detail = wren.bgpctl_json(&["show", "neighbor", "10.32.0.1"]);
    let error = detail["detail"]["last_error"]["reason"]
        .as_str()
        .unwrap_or("");
    assert!(error.contains("hold timer"), "{detail}");
    // The link comes back: so does the session.
    net.b.iface("eth1").up().unwrap();
    wren.wait_established(&["10.32.0.1"]);
    wren.wait_route("10.101.1.0/24");
}

#[test]
fn ibgp_with_frr() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let net = pair("wb-ib", "10.33.0", "fd00:33");
    let (frr, wren) = Peering {
        net: "10.33.0",
        frr_as: 64512,
        frr_af4: "  network 10.102.1.0/24",
        frr_networks: &["10.102.1.0/24"],
        wren_rest: "[[bgp.network]]\nprefix = \"10.102.2.0/24\"\n",
        ..Peering::default()
    }
    .start(&net);
    wren.wait_established(&["10.33.0.1"]);
    let detail = wren.bgpctl_json(&["show", "neighbor", "10.33.0.1"]);
    assert_eq!(detail["detail"]["negotiated"]["ibgp"], true, "{detail}");
    let paths = wren.wait_route("10.102.1.0/24");
    assert_eq!(paths[0]["as_path"], serde_json::json!([]));
    assert_eq!(paths[0]["local_pref"], 100);
    let frr_paths = frr.wait_route(TIMEOUT, "10.102.2.0/24").unwrap();
    // iBGP: no AS prepended, LOCAL_PREF carried.
    assert_eq!(frr_paths[0]["path"], "", "{frr_paths:?}");
    assert_eq!(frr_paths[0]["locPrf"], 100, "{frr_paths:?}");
}

#[test]
fn ebgp_ipv6_session_with_frr() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let net = pair("wb-e6", "10.34.0", "fd00:34");
    let frr = Frr::start(
        &net.a,
        &frr_config(
            65001,
            "10.34.0.1",
            " neighbor fd00:34::2 remote-as 64512",
            "  no neighbor fd00:34::2 activate",
            "  neighbor fd00:34::2 activate\n  network fd00:101::/64",
            &["fd00:101::/64"],
        ),
    )
    .unwrap();
    let socket = Wren::socket_path(&net.b);
    let wren = Wren::start(
        &net.b,
        &wren_config(
            "10.34.0.2",
            &socket,
            false,
            &format!(
                "{}[[bgp.network]]\nprefix = \"fd00:102::/64\"\n",
                neighbor("fd00:34::1", 65001, "")
            ),
        ),
    );
    frr.wait_established(TIMEOUT, &["fd00:34::2"]).unwrap();
    wren.wait_established(&["fd00:34::1"]);
    let paths = wren.wait_route("fd00:101::/64");
    assert_eq!(paths[0]["as_path"], serde_json::json!([65001]));
    let frr_paths = frr.wait_route(TIMEOUT, "fd00:102::/64").unwrap();
    assert_eq!(frr_paths[0]["path"], "64512", "{frr_paths:?}");
    // Only IPv6 was negotiated.
    let detail = wren.bgpctl_json(&["show", "neighbor", "fd00:34::1"]);
    assert_eq!(
        detail["detail"]["negotiated"]["families"],
        serde_json::json!(["ipv6-unicast"]),
        "{detail}"
    );
    assert!(
        frr.bgp_routes_json(Family::Ipv4).unwrap()["routes"]
            .as_object()
            .is_none_or(|routes| routes.is_empty())
    );
}

#[test]
fn tcp_md5_with_frr_and_a_wrong_key_never_establishes() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let net = pair("wb-md", "10.35.0", "fd00:35");
    let (frr, wren) = Peering {
        net: "10.35.0",
        frr_lines: " neighbor 10.35.0.2 password s3cret-key",
        wren_neighbor: "password = \"s3cret-key\"",
        ..Peering::default()
    }
    .start(&net);
    wren.wait_established(&["10.35.0.1"]);

    // The wrong key: FRR keeps the right one, bgpd's reload switches to another key.
    let config = std::fs::read_to_string(&wren.config_path).unwrap();
    std::fs::write(&wren.config_path, config.replace("s3cret-key", "wrong-key")).unwrap();
    let reload = wren.bgpctl_ok(&["reload"]);
    assert!(reload.contains("restarted 10.35.0.1"), "{reload}");
    never_established(&frr, "10.35.0.2", &wren, "10.35.0.1");
    // The key is changed back: the session returns.
    let config = std::fs::read_to_string(&wren.config_path).unwrap();
    std::fs::write(&wren.config_path, config.replace("wrong-key", "s3cret-key")).unwrap();
    wren.bgpctl_ok(&["reload"]);
    frr.wait_established(TIMEOUT, &["10.35.0.2"]).unwrap();
    wren.wait_established(&["10.35.0.1"]);
}

#[test]
fn gtsm_with_frr_and_a_peer_sending_ttl_1_never_establishes() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let net = pair("wb-tt", "10.36.0", "fd00:36");
    let (frr, wren) = Peering {
        net: "10.36.0",
        frr_lines: " neighbor 10.36.0.2 ttl-security hops 1",
        wren_neighbor: "ttl_security = true",
        ..Peering::default()
    }
    .start(&net);
    wren.wait_established(&["10.36.0.1"]);

    // FRR without GTSM sends with TTL 1: bgpd drops every packet.
    frr.vtysh_lines(&[
        "configure terminal",
        "router bgp 65001",
        "no neighbor 10.36.0.2 ttl-security hops 1",
    ])
    .unwrap();
    frr.vtysh("clear bgp 10.36.0.2").unwrap();
    never_established(&frr, "10.36.0.2", &wren, "10.36.0.1");
}

#[test]
fn four_octet_as_numbers_with_frr() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let net = pair("wb-as", "10.37.0", "fd00:37");
    let (frr, wren) = Peering {
        net: "10.37.0",
        frr_as: 4_200_000_002,
        wren_as: 4_200_000_001,
        frr_af4: "  network 10.103.1.0/24",
        frr_networks: &["10.103.1.0/24"],
        wren_rest: "[[bgp.network]]\nprefix = \"10.103.2.0/24\"\n",
        ..Peering::default()
    }
    .start(&net);
    let paths = wren.wait_route("10.103.1.0/24");
    assert_eq!(paths[0]["as_path"], serde_json::json!([4_200_000_002u32]));
    let frr_paths = frr.wait_route(TIMEOUT, "10.103.2.0/24").unwrap();
    assert_eq!(frr_paths[0]["path"], "4200000001", "{frr_paths:?}");
    assert_eq!(
        frr_neighbor(&frr, "10.37.0.2")["remoteAs"],
        4_200_000_001u32
    );
}

#[test]
fn ipv6_routes_over_an_ipv4_session() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let net = pair("wb-ds", "10.38.0", "fd00:38");
    let (frr, wren) = Peering {
        net: "10.38.0",
        frr_af4: "  network 10.104.1.0/24",
        frr_af6: "  neighbor 10.38.0.2 activate\n  network fd00:104:1::/64",
        frr_networks: &["10.104.1.0/24", "fd00:104:1::/64"],
        wren_neighbor: "families = [\"ipv4\", \"ipv6\"]",
        wren_rest: "[[bgp.network]]\nprefix = \"fd00:104:2::/64\"\n",
        ..Peering::default()
    }
    .start(&net);
    wren.wait_route("10.104.1.0/24");
    let paths = wren.wait_route("fd00:104:1::/64");
    let next_hop = paths[0]["next_hops"][0].as_str().unwrap().to_owned();
    assert!(next_hop.contains(':'), "IPv6 next hop expected: {paths:?}");
    // FRR gets our IPv6 route with our IPv6 address on the link as next hop.
    let frr_paths = frr.wait_route(TIMEOUT, "fd00:104:2::/64").unwrap();
    let text = serde_json::to_string(&frr_paths).unwrap();
    assert!(text.contains("fd00:38::2"), "{text}");
}
