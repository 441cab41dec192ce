//! bgpd's kernel routes through IPv6 link-local next hops and IPv4 routes through
//! IPv6 next hops (RFC 8950), against FRR 8.4 in network namespaces:
//!
//! - FRR announces over an IPv6 session with its global and link-local next hop; for
//!   one prefix a route-map sets a global next hop bgpd cannot reach, so bgpd installs
//!   `via fe80::… dev eth1` (FRR's link-local address), for the other the connected
//!   global one. Pings to addresses behind FRR go through both.
//! - An IPv6-only link (no IPv4 address on it) carries IPv4 routes both ways with the
//!   extended next hop capability: FRR's are in bgpd's kernel as `via inet6 …`, and
//!   pings from bgpd's node address to FRR's answer.
//! - A session between the link-local addresses of a link that has no other address
//!   (`address = "fe80::…"`, `interface = "eth1"`; FRR's `neighbor fe80::… interface
//!   eth1`): both families' routes go `via fe80::… dev eth1` / `via inet6 fe80::… dev
//!   eth1`, and the loopbacks ping each other.
//!
//! Needs root and FRR (skips otherwise; fails with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use lab::TIMEOUT;
use lab::fixture::{Wren, frr_config, kernel_route, pair};
use lab::{Frr, Netns, wait_until};
use serde_json::Value;

fn neighbor(address: &str, asn: u32, extra: &str) -> String {
    format!(
        "[[bgp.neighbor]]\naddress = \"{address}\"\nremote_asn = {asn}\nhold_time = 9\nconnect_retry = 1\n{extra}\n"
    )
}

/// `addresses` on the loopback of `netns` (what pings aim at; the kernel of this
/// machine may lack the dummy link type).
fn on_loopback(netns: &Netns, addresses: &[&str]) {
    netns.iface("lo").up().unwrap();
    for address in addresses {
        netns.iface("lo").addr(address).unwrap();
    }
}

/// The link-local address of `device` in `netns`, once it is usable (DAD done).
fn link_local(netns: &Netns, device: &str) -> String {
    lab::wait_for(
        TIMEOUT,
        &format!("a link-local address on {device}"),
        || {
            let addresses = netns
                .ip_json(&["-6", "addr", "show", "dev", device, "scope", "link"])
                .map_err(|e| e.to_string())?;
            addresses
                .as_array()
                .and_then(|links| links.first())
                .and_then(|link| link["addr_info"].as_array())
                .and_then(|info| {
                    // iproute2 prints filtered-out addresses as `{}`.
                    info.iter().find(|a| {
                        a["local"].is_string()
                            && a["tentative"].is_null()
                            && a["dadfailed"].is_null()
                    })
                })
                .and_then(|a| a["local"].as_str().map(String::from))
                .ok_or_else(|| format!("none usable yet: {addresses}"))
        },
    )
    .unwrap()
}

/// Waits until our route for `prefix` goes through `gateway` (`inet6 ADDRESS` for
/// RTA_VIA) out of `device`; returns it.
fn wait_kernel_route(netns: &Netns, prefix: &str, gateway: &str, device: &str) -> Value {
    lab::wait_for(
        TIMEOUT,
        &format!("{prefix} via {gateway} dev {device} in bgpd's kernel"),
        || {
            let Some(route) = kernel_route(netns, prefix) else {
                return Err("no route".to_string());
            };
            let via = match (route["gateway"].as_str(), route["via"]["host"].as_str()) {
                (Some(gateway), _) => gateway.to_string(),
                (None, Some(host)) => {
                    format!("{} {host}", route["via"]["family"].as_str().unwrap_or(""))
                }
                (None, None) => String::new(),
            };
            if via == gateway && route["dev"] == device {
                Ok(route)
            } else {
                Err(format!("{route}"))
            }
        },
    )
    .unwrap()
}

/// One ICMP echo from `netns` to `to`, from `source` when given.
fn ping_from(netns: &Netns, source: Option<&str>, to: &str) -> bool {
    let mut command: Command = netns.command("ping");
    command.args(["-n", "-c", "1", "-W", "2"]);
    if let Some(source) = source {
        command.args(["-I", source]);
    }
    command
        .arg(to)
        .output()
        .is_ok_and(|output| output.status.success())
}

#[test]
fn ipv6_link_local_next_hops_are_installed_and_forward() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let net = pair("wb-nl", "10.43.0", "fd00:43");
    on_loopback(&net.a, &["fd00:a1::1/64", "fd00:a2::1/64"]);
    let frr = Frr::start(
        &net.a,
        &format!(
            "{}ipv6 prefix-list LL seq 5 permit fd00:a1::/64\n\
             route-map OUT permit 10\n match ipv6 address prefix-list LL\n set ipv6 next-hop global fd00:dead::1\n\
             route-map OUT permit 20\n",
            frr_config(
                65001,
                "10.43.0.1",
                " neighbor fd00:43::2 remote-as 64512",
                "  no neighbor fd00:43::2 activate",
                "  neighbor fd00:43::2 activate\n  neighbor fd00:43::2 route-map OUT out\n  network fd00:a1::/64\n  network fd00:a2::/64",
                &[],
            )
        ),
    )
    .unwrap();
    let wren = Wren::start_with_config(
        &net.b,
        "10.43.0.2",
        true,
        &neighbor("fd00:43::1", 65001, ""),
    );
    frr.wait_established(TIMEOUT, &["fd00:43::2"]).unwrap();
    wren.wait_established(&["fd00:43::1"]);
    let frr_link_local = link_local(&net.a, "eth1");

    // fd00:a1::/64 came with a global next hop bgpd cannot reach: the link-local one,
    // out of the session's interface. fd00:a2::/64: the connected global next hop.
    wren.wait_route("fd00:a1::/64");
    wait_kernel_route(&net.b, "fd00:a1::/64", &frr_link_local, "eth1");
    wait_kernel_route(&net.b, "fd00:a2::/64", "fd00:43::1", "eth1");
    wait_until(TIMEOUT, "pings to fd00:a1::1 through fe80", || {
        net.b.ping("fd00:a1::1")
    })
    .unwrap();
    wait_until(TIMEOUT, "pings to fd00:a2::1", || net.b.ping("fd00:a2::1")).unwrap();

    // bgpctl show fib names the link-local gateway and the device.
    let fib = wren.bgpctl_ok(&["show", "fib"]);
    assert!(
        fib.contains(&format!("via {frr_link_local} dev eth1")),
        "{fib}"
    );

    // The global next hop becomes reachable (a route to it through FRR's global
    // address): route-sync moves the route to it; gone again, back to the link-local.
    let route_to_global = |command: &str| {
        let route = [
            "-6",
            "route",
            command,
            "fd00:dead::/64",
            "via",
            "fd00:43::1",
            "dev",
            "eth1",
        ];
        net.b.ip(&route).unwrap();
    };
    route_to_global("add");
    wait_kernel_route(&net.b, "fd00:a1::/64", "fd00:43::1", "eth1");
    route_to_global("del");
    wait_kernel_route(&net.b, "fd00:a1::/64", &frr_link_local, "eth1");

    // FRR withdraws: the route leaves the kernel.
    frr.vtysh_lines(&[
        "configure terminal",
        "router bgp 65001",
        "address-family ipv6 unicast",
        "no network fd00:a1::/64",
    ])
    .unwrap();
    wait_until(TIMEOUT, "fd00:a1::/64 out of bgpd's kernel", || {
        kernel_route(&net.b, "fd00:a1::/64").is_none()
    })
    .unwrap();
}

#[test]
fn ipv4_routes_over_an_ipv6_only_link_use_ipv6_next_hops() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let net = pair("wb-nx", "10.44.0", "fd00:44");
    // IPv6 only on the link: the IPv4 addresses live on the loopbacks.
    net.a.iface("eth1").del_addr("10.44.0.1/24").unwrap();
    net.b.iface("eth1").del_addr("10.44.0.2/24").unwrap();
    on_loopback(&net.a, &["10.201.0.1/24"]);
    on_loopback(&net.b, &["10.202.0.1/32"]);
    let frr = Frr::start(
        &net.a,
        &frr_config(
            65001,
            "10.44.0.1",
            " neighbor fd00:44::2 remote-as 64512\n neighbor fd00:44::2 capability extended-nexthop",
            "  neighbor fd00:44::2 activate\n  network 10.201.0.0/24",
            "  neighbor fd00:44::2 activate",
            &[],
        ),
    )
    .unwrap();
    let wren = Wren::start_with_config(
        &net.b,
        "10.44.0.2",
        true,
        &format!(
            "{}[[bgp.network]]\nprefix = \"10.202.0.1/32\"\n",
            neighbor(
                "fd00:44::1",
                65001,
                "families = [\"ipv4\", \"ipv6\"]\nextended_next_hop = true"
            )
        ),
    );
    frr.wait_established(TIMEOUT, &["fd00:44::2"]).unwrap();
    wren.wait_established(&["fd00:44::1"]);
    let detail = wren.bgpctl_json(&["show", "neighbor", "fd00:44::1"]);
    assert!(
        detail.to_string().contains("extended-next-hop"),
        "capability not negotiated: {detail}"
    );

    // FRR's IPv4 route, with FRR's IPv6 next hops, in bgpd's kernel via inet6.
    let paths = wren.wait_route("10.201.0.0/24");
    assert_eq!(paths[0]["source"], "fd00:44::1", "{paths:?}");
    wait_kernel_route(&net.b, "10.201.0.0/24", "inet6 fd00:44::1", "eth1");
    // Ours reaches FRR (with our IPv6 next hop, there is no IPv4 one on the link)
    // and FRR installs it; then pings between the node addresses go both ways.
    frr.wait_route(TIMEOUT, "10.202.0.1/32").unwrap();
    wait_until(TIMEOUT, "pings from 10.202.0.1 to 10.201.0.1", || {
        ping_from(&net.b, Some("10.202.0.1"), "10.201.0.1")
    })
    .unwrap();
    wait_until(TIMEOUT, "pings from 10.201.0.1 to 10.202.0.1", || {
        ping_from(&net.a, Some("10.201.0.1"), "10.202.0.1")
    })
    .unwrap();
}

#[test]
fn a_session_over_link_local_addresses_installs_routes_through_the_interface() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let net = pair("wb-nu", "10.45.0", "fd00:45");
    // Nothing but link-local addresses on the link (BGP unnumbered).
    for (netns, last) in [(&net.a, "1"), (&net.b, "2")] {
        netns
            .iface("eth1")
            .del_addr(&format!("10.45.0.{last}/24"))
            .unwrap();
        netns
            .iface("eth1")
            .del_addr(&format!("fd00:45::{last}/64"))
            .unwrap();
    }
    on_loopback(&net.a, &["10.205.0.1/24", "fd00:a5::1/64"]);
    on_loopback(&net.b, &["10.206.0.1/32", "fd00:b6::1/128"]);
    let frr_link_local = link_local(&net.a, "eth1");
    let wren_link_local = link_local(&net.b, "eth1");
    let frr = Frr::start(
        &net.a,
        &frr_config(
            65001,
            "10.45.0.1",
            &format!(
                " neighbor {wren_link_local} remote-as 64512\n neighbor {wren_link_local} interface eth1\n neighbor {wren_link_local} capability extended-nexthop"
            ),
            &format!("  neighbor {wren_link_local} activate\n  network 10.205.0.0/24"),
            &format!("  neighbor {wren_link_local} activate\n  network fd00:a5::/64"),
            &[],
        ),
    )
    .unwrap();
    let wren = Wren::start_with_config(
        &net.b,
        "10.45.0.2",
        true,
        &format!(
            "{}[[bgp.network]]\nprefix = \"10.206.0.1/32\"\n[[bgp.network]]\nprefix = \"fd00:b6::1/128\"\n",
            neighbor(
                &frr_link_local,
                65001,
                "interface = \"eth1\"\nfamilies = [\"ipv4\", \"ipv6\"]\nextended_next_hop = true"
            )
        ),
    );
    frr.wait_established(TIMEOUT, &[wren_link_local.as_str()])
        .unwrap();
    wren.wait_established(&[frr_link_local.as_str()]);

    // FRR's routes of both families go through its link-local address on eth1.
    wren.wait_route("fd00:a5::/64");
    wait_kernel_route(&net.b, "fd00:a5::/64", &frr_link_local, "eth1");
    wait_kernel_route(
        &net.b,
        "10.205.0.0/24",
        &format!("inet6 {frr_link_local}"),
        "eth1",
    );
    // Ours reach FRR; pings between the loopbacks go both ways in both families.
    frr.wait_route(TIMEOUT, "fd00:b6::1/128").unwrap();
    frr.wait_route(TIMEOUT, "10.206.0.1/32").unwrap();
    for (from, source, to) in [
        (&net.b, "fd00:b6::1", "fd00:a5::1"),
        (&net.b, "10.206.0.1", "10.205.0.1"),
        (&net.a, "10.205.0.1", "10.206.0.1"),
    ] {
        wait_until(TIMEOUT, &format!("pings from {source} to {to}"), || {
            ping_from(from, Some(source), to)
        })
        .unwrap();
    }
}
