//! Faults between bgpd and an FRR 8.4 peer, seen in bgpd's RIB and the kernel: FRR's
//! bgpd killed with SIGKILL (its routes leave the RIB and the kernel at once, and
//! return when FRR is back), the link down and up (routes gone after the hold time,
//! back after), and 10% packet loss both ways (this kernel has no netem: an nftables
//! drop rule) under which the session stays up and updates still get through.
//! Needs root, FRR and nft (skips otherwise; fails with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use lab::fixture::wren_binary;
use lab::{Frr, Netns, Veth};
use peer::probe::poll;
use wren_tests::peer_bench::{TIMEOUT, start_bgpd};

/// FRR in `frr_ns` (10.N.0.1, AS 65001) and bgpd in `wren_ns` (10.N.0.2, AS 64512),
/// the kernel FIB on.
struct Peering {
    frr: Option<Frr>,
    frr_config: String,
    bgpd: lab::Daemon,
    observer: peer::Daemon,
    _link: Veth,
    frr_ns: Netns,
    wren_ns: Netns,
    net: String,
}

impl Peering {
    /// `keepalive` and `hold`: the timers of both sides.
    fn start(prefix: &str, net: &str, keepalive: u16, hold: u16) -> Peering {
        let frr_ns = Netns::new(&format!("{prefix}f")).unwrap();
        let wren_ns = Netns::new(&format!("{prefix}w")).unwrap();
        let link = Veth::new(&frr_ns, "eth1", &wren_ns, "eth1").unwrap();
        frr_ns.iface("eth1").addr(&format!("{net}.1/24")).unwrap();
        wren_ns.iface("eth1").addr(&format!("{net}.2/24")).unwrap();
        let frr_config = format!(
            "frr defaults datacenter
hostname frr
ip route 10.120.1.0/24 blackhole
ip route 10.120.2.0/24 blackhole
router bgp 65001
 bgp router-id {net}.1
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor {net}.2 remote-as 64512
 neighbor {net}.2 timers {keepalive} {hold}
 neighbor {net}.2 timers connect 1
 address-family ipv4 unicast
  network 10.120.1.0/24
 exit-address-family
"
        );
        let frr = Frr::start(&frr_ns, &frr_config).unwrap();
        let socket = wren_ns.dir().join("bgpd.sock");
        let config_path: PathBuf = wren_ns.dir().join("bgpd.toml");
        std::fs::write(
            &config_path,
            format!(
                "[bgp]
asn = 64512
router_id = \"{net}.2\"
listen = [\"{net}.2:179\"]

[[bgp.neighbor]]
address = \"{net}.1\"
remote_asn = 65001
hold_time = {hold}
keepalive = {keepalive}
connect_retry = 1

[control]
socket = \"{}\"
",
                socket.display()
            ),
        )
        .unwrap();
        let bgpd = start_bgpd(&wren_ns, &config_path, &[]);
        let observer = peer::Daemon::new(&wren_binary("bgpctl"), &socket, Some(wren_ns.name()));
        bgpd.wait_for(TIMEOUT, "bgpd's control socket", || observer.neighbors())
            .unwrap();
        Peering {
            frr: Some(frr),
            frr_config,
            bgpd,
            observer,
            _link: link,
            frr_ns,
            wren_ns,
            net: net.to_owned(),
        }
    }

    fn neighbor(&self) -> std::net::IpAddr {
        format!("{}.1", self.net).parse().unwrap()
    }

    fn frr(&self) -> &Frr {
        self.frr.as_ref().expect("FRR runs")
    }

    /// bgpd's session state and how many times it was established.
    fn session(&self) -> (String, u64) {
        let detail = self.observer.neighbor(self.neighbor()).unwrap();
        (
            detail["state"].as_str().unwrap_or("").to_owned(),
            detail["detail"]["established_count"].as_u64().unwrap_or(0),
        )
    }

    /// Waits until `prefix` is (or is not) in bgpd's RIB from FRR and in the kernel
    /// via FRR.
    fn wait_route(&self, prefix: &str, present: bool) {
        let net: ipnet::IpNet = prefix.parse().unwrap();
        let gateway: std::net::IpAddr = self.neighbor();
        poll(
            TIMEOUT,
            &format!("{prefix} {}", if present { "installed" } else { "gone" }),
            || {
                let source = gateway.to_string();
                let in_rib = self
                    .observer
                    .paths(net)?
                    .iter()
                    .any(|route| route.source == source);
                let in_kernel = self
                    .observer
                    .kernel_route(net)?
                    .is_some_and(|route| route.gateways() == [gateway]);
                Ok(if in_rib == present && in_kernel == present {
                    Ok(())
                } else {
                    let fib = self.observer.bgpctl_json(&["show", "fib"])?;
                    Err(format!(
                        "RIB {in_rib}, kernel {in_kernel}; bgpctl show fib: failed {} counters {}",
                        fib["failed"], fib["counters"]
                    ))
                })
            },
        )
        .unwrap();
    }

    fn vtysh(&self, lines: &[&str]) {
        let mut all = vec![
            "configure terminal",
            "router bgp 65001",
            "address-family ipv4 unicast",
        ];
        all.extend_from_slice(lines);
        self.frr().vtysh_lines(&all).unwrap();
    }
}

#[test]
fn frr_killed_with_sigkill_then_back() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let mut peering = Peering::start("wfk", "10.41.0", 3, 9);
    peering.wait_route("10.120.1.0/24", true);

    // FRR's bgpd dies without a word: its kernel closes the connection, bgpd drops
    // the routes (FRR's graceful restart capability lists no family: nothing to
    // keep).
    let frr_bgpd = peering
        .frr()
        .daemons()
        .iter()
        .find(|daemon| daemon.name().starts_with("frr-bgpd"))
        .expect("FRR's bgpd");
    frr_bgpd.kill().unwrap();
    peering.wait_route("10.120.1.0/24", false);
    assert_ne!(peering.session().0, "Established");
    assert!(peering.bgpd.is_alive());

    // FRR comes back: so do the session and the route.
    drop(peering.frr.take());
    peering.frr = Some(Frr::start(&peering.frr_ns, &peering.frr_config).unwrap());
    peering.wait_route("10.120.1.0/24", true);
    assert_eq!(peering.session().0, "Established");
}

#[test]
fn link_down_then_up() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let peering = Peering::start("wfl", "10.42.0", 3, 9);
    peering.wait_route("10.120.1.0/24", true);
    let (_, before) = peering.session();

    // bgpd's side goes down: its packets go nowhere, FRR's never arrive; the hold
    // timer (9 s) ends the session and the route leaves the RIB and the kernel.
    peering.wren_ns.iface("eth1").down().unwrap();
    peering.wait_route("10.120.1.0/24", false);
    let detail = peering.observer.neighbor(peering.neighbor()).unwrap();
    let reason = detail["detail"]["last_error"]["reason"].to_string();
    assert!(reason.contains("hold timer"), "{detail}");

    peering.wren_ns.iface("eth1").up().unwrap();
    peering.wait_route("10.120.1.0/24", true);
    let (state, after) = peering.session();
    assert_eq!(state, "Established");
    assert!(after > before, "established {before} then {after} times");
}

#[test]
fn ten_percent_packet_loss_keeps_the_session() {
    let Some(_ready) = lab::require!(Root, Frr, Nft) else {
        return;
    };
    // Hold time 30 s: TCP retransmits long before it runs out.
    let peering = Peering::start("wfp", "10.43.0", 10, 30);
    peering.wait_route("10.120.1.0/24", true);
    let (state, established) = peering.session();
    assert_eq!(state, "Established");

    for netns in [&peering.frr_ns, &peering.wren_ns] {
        netns.iface("eth1").loss(10.0).unwrap();
        let rules = netns
            .exec(&["nft", "list", "table", "inet", "wren_lab"])
            .unwrap();
        assert!(rules.contains("drop"), "{rules}");
    }
    // Updates still get through, both ways of a route's life.
    for _ in 0..3 {
        peering.vtysh(&["network 10.120.2.0/24"]);
        peering.wait_route("10.120.2.0/24", true);
        peering.vtysh(&["no network 10.120.2.0/24"]);
        peering.wait_route("10.120.2.0/24", false);
    }
    // The rules did drop packets (100 pings make a drop all but certain).
    let _ = peering.wren_ns.exec(&[
        "ping",
        "-q",
        "-c",
        "100",
        "-i",
        "0.01",
        "-W",
        "1",
        "10.43.0.1",
    ]);
    let dropped: u64 = [&peering.frr_ns, &peering.wren_ns]
        .iter()
        .map(|netns| {
            let rules = netns
                .exec(&["nft", "list", "table", "inet", "wren_lab"])
                .unwrap();
            rules
                .split_whitespace()
                .skip_while(|word| *word != "packets")
                .nth(1)
                .and_then(|count| count.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum();
    assert!(dropped > 0, "no packet dropped");
    peering.frr_ns.iface("eth1").clear_loss().unwrap();
    peering.wren_ns.iface("eth1").clear_loss().unwrap();

    // The session never went down: still the same one.
    let (state, after) = peering.session();
    assert_eq!(state, "Established");
    assert_eq!(after, established, "the session was re-established");
    peering.wait_route("10.120.1.0/24", true);
}
