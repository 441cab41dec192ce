//! The RIB against real peers, through the bgpd binary in network namespaces: best
//! path and ECMP between two FRR neighbors as the kernel shows them, no transit
//! between eBGP neighbors by default, and max_prefixes against GoBGP (Cease/1, then the
//! session comes back after the restart time). Needs root, FRR and GoBGP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lab::TIMEOUT;
use lab::fixture::{Wren, frr_config, gobgp_config, kernel_route, pair, wren_config};
use lab::{Frr, Gobgp, Netns, Veth, gateways, wait_for, wait_until};
use serde_json::Value;

/// Gateways of bgpd's kernel route for `prefix` in `netns`, sorted.
fn kernel_gateways(netns: &Netns, prefix: &str) -> Option<Vec<String>> {
    kernel_route(netns, prefix).map(|route| gateways(&route))
}

fn wait_kernel(netns: &Netns, prefix: &str, gateways: &[&str]) {
    wait_until(
        TIMEOUT,
        &format!("{prefix} via {gateways:?} in the kernel"),
        || kernel_gateways(netns, prefix).is_some_and(|hops| hops == gateways),
    )
    .unwrap();
}

/// The best paths' sources for `prefix` as bgpctl shows them.
fn best_sources(wren: &Wren, prefix: &str) -> Vec<String> {
    wren.paths(prefix)
        .iter()
        .filter(|p| p["best"] == Value::Bool(true))
        .map(|p| p["source"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn best_path_and_ecmp_between_two_frr_neighbors_reach_the_kernel() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let node = Netns::new("wr-bn").unwrap();
    let left = Netns::new("wr-bl").unwrap();
    let right = Netns::new("wr-br").unwrap();
    let _l = Veth::new(&node, "eth1", &left, "eth1").unwrap();
    let _r = Veth::new(&node, "eth2", &right, "eth1").unwrap();
    node.iface("eth1").addr("10.81.1.2/24").unwrap();
    node.iface("eth2").addr("10.81.2.2/24").unwrap();
    left.iface("eth1").addr("10.81.1.1/24").unwrap();
    right.iface("eth1").addr("10.81.2.1/24").unwrap();

    // Both neighbors in AS 65001 announce 10.180.1.0/24 alike (ECMP) and
    // 10.180.2.0/24, which the right one prepends (so the left one wins); only the
    // left one announces 10.180.3.0/24.
    let left_frr = Frr::start(
        &left,
        &frr_config(
            65001,
            "10.81.1.1",
            " neighbor 10.81.1.2 remote-as 64512\n neighbor 10.81.1.2 timers connect 1",
            "  network 10.180.1.0/24\n  network 10.180.2.0/24\n  network 10.180.3.0/24",
            "",
            &["10.180.1.0/24", "10.180.2.0/24", "10.180.3.0/24"],
        ),
    )
    .unwrap();
    let right_frr = Frr::start(
        &right,
        &format!(
            "{}ip prefix-list LONG seq 5 permit 10.180.2.0/24\n\
             route-map PREPEND permit 10\n match ip address prefix-list LONG\n set as-path prepend 65001 65001\n\
             route-map PREPEND permit 20\n",
            frr_config(
                65001,
                "10.81.2.1",
                " neighbor 10.81.2.2 remote-as 64512\n neighbor 10.81.2.2 timers connect 1",
                // allowas-in: without it FRR would drop a transited route for its
                // own AS in the path, and the no-transit check below would prove nothing.
                "  network 10.180.1.0/24\n  network 10.180.2.0/24\n  neighbor 10.81.2.2 route-map PREPEND out\n  neighbor 10.81.2.2 allowas-in",
                "",
                &["10.180.1.0/24", "10.180.2.0/24"],
            )
        ),
    )
    .unwrap();

    let socket = Wren::socket_path(&node);
    let config = |networks: &str| {
        format!(
            "[bgp]
asn = 64512
router_id = \"10.81.0.9\"
listen = [\"0.0.0.0:179\"]
max_paths = 2

[[bgp.neighbor]]
address = \"10.81.1.1\"
remote_asn = 65001
hold_time = 9
connect_retry = 1

[[bgp.neighbor]]
address = \"10.81.2.1\"
remote_asn = 65001
hold_time = 9
connect_retry = 1
{networks}
[control]
socket = \"{}\"
",
            socket.display()
        )
    };
    let wren = Wren::start(
        &node,
        &config("[[bgp.network]]\nprefix = \"10.190.0.0/24\"\n"),
    );
    wren.wait_established(&["10.81.1.1", "10.81.2.1"]);

    // ECMP over both neighbors, in bgpctl and in the kernel.
    wait_until(TIMEOUT, "two best paths for 10.180.1.0/24", || {
        best_sources(&wren, "10.180.1.0/24").len() == 2
    })
    .unwrap();
    wait_kernel(&node, "10.180.1.0/24", &["10.81.1.1", "10.81.2.1"]);
    // The shorter AS path wins.
    wait_until(
        TIMEOUT,
        "the left neighbor's path best for 10.180.2.0/24",
        || {
            wren.paths("10.180.2.0/24").len() == 2
                && best_sources(&wren, "10.180.2.0/24") == ["10.81.1.1"]
        },
    )
    .unwrap();
    wait_kernel(&node, "10.180.2.0/24", &["10.81.1.1"]);
    wait_kernel(&node, "10.180.3.0/24", &["10.81.1.1"]);

    // No transit: the right neighbor gets our network, never the left one's routes.
    // A second network, added after bgpd learned 10.180.3.0/24, arriving at the right
    // neighbor shows that anything exportable would have been sent by then.
    right_frr.wait_route(TIMEOUT, "10.190.0.0/24").unwrap();
    std::fs::write(
        &wren.config_path,
        config("[[bgp.network]]\nprefix = \"10.190.0.0/24\"\n[[bgp.network]]\nprefix = \"10.190.1.0/24\"\n"),
    )
    .unwrap();
    wren.bgpctl_ok(&["reload"]);
    right_frr.wait_route(TIMEOUT, "10.190.1.0/24").unwrap();
    assert!(right_frr.bgp_paths("10.180.3.0/24").unwrap().is_empty());
    let path = &right_frr.bgp_paths("10.190.0.0/24").unwrap()[0];
    assert_eq!(path["path"], "64512", "{path}");

    // The left neighbor goes: everything moves to the right one.
    left_frr
        .vtysh_lines(&[
            "configure terminal",
            "router bgp 65001",
            "neighbor 10.81.1.2 shutdown",
        ])
        .unwrap();
    wait_kernel(&node, "10.180.1.0/24", &["10.81.2.1"]);
    wait_kernel(&node, "10.180.2.0/24", &["10.81.2.1"]);
    wait_until(TIMEOUT, "10.180.3.0/24 gone from the kernel", || {
        kernel_gateways(&node, "10.180.3.0/24").is_none()
    })
    .unwrap();
    let paths = wren.paths("10.180.2.0/24");
    assert_eq!(paths.len(), 1);
    assert_eq!(
        paths[0]["as_path"],
        serde_json::json!([65001, 65001, 65001])
    );
}

#[test]
fn max_prefixes_closes_a_gobgp_session_until_the_restart_time() {
    let Some(_ready) = lab::require!(Root, Gobgp) else {
        return;
    };
    let net = pair("wr-mp", "10.82.0", "fd00:82");
    let gobgp = Gobgp::start(
        &net.a,
        &gobgp_config(65001, "10.82.0.1", "10.82.0.2", 64512),
    )
    .unwrap();
    for prefix in ["10.182.1.0/24", "10.182.2.0/24", "10.182.3.0/24"] {
        gobgp.announce(prefix, "10.82.0.1").unwrap();
    }
    let socket = Wren::socket_path(&net.b);
    let wren = Wren::start(
        &net.b,
        &wren_config(
            "10.82.0.2",
            &socket,
            false,
            "[[bgp.neighbor]]
address = \"10.82.0.1\"
remote_asn = 65001
hold_time = 9
connect_retry = 1
max_prefixes = { limit = 2, restart = 2 }
",
        ),
    );
    // The third prefix closes the session with Cease / Maximum Number of Prefixes.
    let detail = wait_for(TIMEOUT, "the session closed for max_prefixes", || {
        let detail = wren.bgpctl_json(&["show", "neighbor", "10.82.0.1"]);
        let reason = detail["detail"]["last_error"]["reason"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if reason.contains("6/1") {
            Ok(detail)
        } else {
            Err(format!("last error {reason:?}"))
        }
    })
    .unwrap();
    assert!(
        detail["detail"]["established_count"].as_u64() >= Some(1),
        "{detail}"
    );

    // With one prefix fewer, the session comes back after the restart time and stays.
    gobgp.withdraw("10.182.3.0/24").unwrap();
    wait_until(TIMEOUT, "the session back with two prefixes", || {
        wren.neighbor("10.82.0.1")
            .is_some_and(|n| n["state"] == "Established" && n["prefixes_received"] == 2)
    })
    .unwrap();
    wren.wait_route("10.182.1.0/24");
    wren.wait_route("10.182.2.0/24");
    assert!(wren.paths("10.182.3.0/24").is_empty());
}
