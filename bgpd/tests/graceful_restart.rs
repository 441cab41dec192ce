//! Graceful restart (RFC 4724) with FRR 8.4 in network namespaces:
//! - bgpd restarting, FRR helping: bgpd is killed (SIGKILL); FRR keeps bgpd's routes
//!   as stale, bgpd's kernel keeps FRR's routes; bgpd starts again, adopts its kernel
//!   routes, announces the restart (R bit) and FRR's stale routes are refreshed.
//! - bgpd helping: FRR's bgpd is killed; bgpd keeps FRR's routes (in its RIB and the
//!   kernel) for FRR's restart time, then removes them when FRR does not come back.
//!
//! Needs root and FRR (skips otherwise; fails with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use lab::TIMEOUT;
use lab::fixture::{Wren, frr_config, frr_neighbor, pair, wren_config};
use lab::{Family, Frr, wait_until};

/// bgpd's configuration: FIB on, graceful restart on with `restart_time`.
fn config(
    router_id: &str,
    socket: &std::path::Path,
    neighbor: &str,
    restart_time: u16,
    network: &str,
) -> String {
    wren_config(
        router_id,
        socket,
        true,
        &format!(
            "[bgp.graceful_restart]
restart_time = {restart_time}

[[bgp.neighbor]]
address = \"{neighbor}\"
remote_asn = 65001
hold_time = 9
connect_retry = 1

[[bgp.network]]
prefix = \"{network}\"
"
        ),
    )
}

fn frr_path(frr: &Frr, prefix: &str) -> Option<serde_json::Value> {
    frr.bgp_paths(prefix).unwrap().first().cloned()
}

#[test]
fn frr_helps_bgpd_through_a_restart() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let net = pair("wb-gr", "10.61.0", "fd00:61");
    let frr = Frr::start(
        &net.a,
        &frr_config(
            65001,
            "10.61.0.1",
            " bgp graceful-restart\n neighbor 10.61.0.2 remote-as 64512",
            "  network 10.140.1.0/24",
            "",
            &["10.140.1.0/24"],
        ),
    )
    .unwrap();
    let socket = Wren::socket_path(&net.b);
    let mut wren = Wren::start(
        &net.b,
        &config("10.61.0.2", &socket, "10.61.0.1", 90, "10.140.2.0/24"),
    );
    frr.wait_established(TIMEOUT, &["10.61.0.2"]).unwrap();
    frr.wait_route(TIMEOUT, "10.140.2.0/24").unwrap();
    wait_until(TIMEOUT, "FRR's route in bgpd's kernel table", || {
        net.b.route("10.140.1.0/24").unwrap().is_some()
    })
    .unwrap();
    let capabilities = wren.bgpctl_json(&["show", "neighbor", "10.61.0.1"]);
    assert_eq!(
        capabilities["detail"]["negotiated"]["graceful_restart"], true,
        "{capabilities}"
    );

    // bgpd dies without a word: FRR keeps its routes (stale), the kernel keeps FRR's.
    wren.daemon.kill().unwrap();
    wait_until(TIMEOUT, "FRR to notice", || {
        frr.neighbor_state("10.61.0.2").unwrap().as_deref() != Some("Established")
    })
    .unwrap();
    let path = frr_path(&frr, "10.140.2.0/24").expect("FRR dropped bgpd's route");
    assert_eq!(path["stale"], true, "{path}");
    assert!(net.b.route("10.140.1.0/24").unwrap().is_some());

    // bgpd comes back within the restart time: it adopts the kernel routes, says it
    // restarted, and FRR's copy of its route is fresh again after End-of-RIB.
    wren.daemon.restart().unwrap();
    frr.wait_established(TIMEOUT, &["10.61.0.2"]).unwrap();
    let seen = frr_neighbor(&frr, "10.61.0.2");
    // FRR saw the Restart State bit, RFC 8538's N bit, the Forwarding State flag
    // and our restart time.
    let info = &seen["gracefulRestartInfo"];
    assert_eq!(info["rBit"], true, "{info}");
    assert_eq!(info["nBit"], true, "{info}");
    assert_eq!(info["ipv4Unicast"]["fBit"], true, "{info}");
    assert_eq!(info["timers"]["receivedRestartTimer"], 90, "{info}");
    wait_until(TIMEOUT, "FRR's copy of bgpd's route to be fresh", || {
        frr_path(&frr, "10.140.2.0/24").is_some_and(|path| path["stale"] != true)
    })
    .unwrap();
    wren.wait_route("10.140.1.0/24");
    let fib = wren.bgpctl_json(&["show", "fib"]);
    assert!(fib["counters"]["adopted"].as_u64().unwrap() >= 1, "{fib}");
    // The kernel route stayed in place all along, and nothing is left over.
    wait_until(TIMEOUT, "the FIB to converge", || {
        wren.bgpctl_json(&["show", "fib"])["converged"] == true
    })
    .unwrap();
    assert_eq!(
        net.b
            .route_destinations(Family::Ipv4, &["proto", "196"])
            .unwrap(),
        ["10.140.1.0/24"]
    );
}

#[test]
fn bgpd_helps_frr_and_gives_up_after_its_restart_time() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let net = pair("wb-gh", "10.62.0", "fd00:62");
    let frr = Frr::start(
        &net.a,
        &frr_config(
            65001,
            "10.62.0.1",
            " bgp graceful-restart\n bgp graceful-restart restart-time 15\n neighbor 10.62.0.2 remote-as 64512",
            "  network 10.141.1.0/24",
            "",
            &["10.141.1.0/24"],
        ),
    )
    .unwrap();
    let socket = Wren::socket_path(&net.b);
    let wren = Wren::start(
        &net.b,
        &config("10.62.0.2", &socket, "10.62.0.1", 120, "10.141.2.0/24"),
    );
    frr.wait_established(TIMEOUT, &["10.62.0.2"]).unwrap();
    wren.wait_route("10.141.1.0/24");
    wait_until(TIMEOUT, "FRR's route in bgpd's kernel table", || {
        net.b.route("10.141.1.0/24").unwrap().is_some()
    })
    .unwrap();
    let detail = wren.bgpctl_json(&["show", "neighbor", "10.62.0.1"]);
    assert_eq!(
        detail["detail"]["negotiated"]["peer_restart_time"], 15,
        "{detail}"
    );

    // FRR's bgpd dies: the session drops, the routes stay (stale).
    let frr_bgpd = frr.daemons().last().unwrap();
    frr_bgpd.kill().unwrap();
    let down = Instant::now();
    wren.daemon
        .wait_for(TIMEOUT, "bgpd to see the session drop", || {
            let state = wren.neighbor("10.62.0.1").unwrap()["state"].clone();
            if state == "Established" {
                Err(state)
            } else {
                Ok(())
            }
        })
        .unwrap();
    assert!(
        !wren.paths("10.141.1.0/24").is_empty(),
        "bgpd dropped the route at once"
    );
    assert!(net.b.route("10.141.1.0/24").unwrap().is_some());

    // FRR does not come back: after its restart time the routes go.
    wren.wait_no_route("10.141.1.0/24");
    assert!(
        down.elapsed() >= Duration::from_secs(10),
        "routes went after {:?}, before the restart time",
        down.elapsed()
    );
    wait_until(TIMEOUT, "FRR's route out of the kernel", || {
        net.b.route("10.141.1.0/24").unwrap().is_none()
    })
    .unwrap();
}
