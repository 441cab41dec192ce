//! bgpd as an unprivileged user with only CAP_NET_ADMIN (kernel routes) and
//! CAP_NET_BIND_SERVICE (port 179), checked from /proc/PID/status; it still peers
//! with FRR and installs routes, listens on no TCP port but BGP's, and logs JSON
//! lines. Needs root (to set the test up), FRR and setpriv.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;

use lab::TIMEOUT;
use lab::fixture::{frr_config, pair, wren_config};
use lab::{Family, Frr, wait_until};

/// Bits of CAP_NET_BIND_SERVICE (10) and CAP_NET_ADMIN (12).
const CAPS: u64 = (1 << 10) | (1 << 12);

#[test]
fn bgpd_runs_unprivileged_with_two_capabilities() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    if lab::find_program("setpriv").is_none() {
        panic!("setpriv not found (apt-get install util-linux)");
    }
    let net = pair("wb-pv", "10.81.0", "fd00:81");
    let frr = Frr::start(
        &net.a,
        &frr_config(
            65001,
            "10.81.0.1",
            " neighbor 10.81.0.2 remote-as 64512",
            "  network 10.160.1.0/24",
            "",
            &["10.160.1.0/24"],
        ),
    )
    .unwrap();

    // A directory user nobody owns, with bgpd, its config and its socket.
    let dir = net.b.dir().join("wren");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(net.b.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let binary =
        lab::fixture::public_binary(std::path::Path::new(env!("CARGO_BIN_EXE_bgpd")), &dir);
    let socket = dir.join("bgpd.sock");
    let config = dir.join("bgpd.toml");
    std::fs::write(
        &config,
        wren_config(
            "10.81.0.2",
            &socket,
            true,
            "[bgp.graceful_restart]
enabled = false

[[bgp.neighbor]]
address = \"10.81.0.1\"
remote_asn = 65001
hold_time = 9
connect_retry = 1

[log]
format = \"json\"
",
        ),
    )
    .unwrap();
    let caps = "-all,+net_admin,+net_bind_service";
    let mut command = net.b.command("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(format!("--inh-caps={caps}"))
        .arg(format!("--ambient-caps={caps}"))
        .arg(format!("--bounding-set={caps}"))
        .arg("--")
        .arg(&binary)
        .arg("--config")
        .arg(&config);
    let daemon = net.b.spawn_command("bgpd-unprivileged", command).unwrap();
    daemon
        .wait_until(TIMEOUT, "the control socket", || {
            lab::fixture::bgpctl(&socket, &["show", "neighbors"])
                .status
                .success()
        })
        .unwrap();

    // Who it runs as, and with what.
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid())).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing in\n{status}"))
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned()
    };
    assert_eq!(field("Uid:"), "65534", "{status}");
    let effective = u64::from_str_radix(&field("CapEff:"), 16).unwrap();
    let permitted = u64::from_str_radix(&field("CapPrm:"), 16).unwrap();
    assert_eq!(effective, CAPS, "{status}");
    assert_eq!(permitted, CAPS, "{status}");

    // It works: the session, and FRR's route in the kernel.
    frr.wait_established(TIMEOUT, &["10.81.0.2"]).unwrap();
    wait_until(
        TIMEOUT,
        "FRR's route in the kernel with protocol 196",
        || {
            net.b
                .route_destinations(Family::Ipv4, &["proto", "196"])
                .unwrap()
                == ["10.160.1.0/24"]
        },
    )
    .unwrap();

    // Nothing listens on TCP but BGP.
    let listening = net.b.exec(&["ss", "-Hltn"]).unwrap();
    let ports: Vec<&str> = listening
        .lines()
        .filter_map(|line| line.split_whitespace().nth(3))
        .collect();
    assert!(!ports.is_empty(), "{listening}");
    for local in &ports {
        assert!(
            local.ends_with(":179"),
            "unexpected TCP listener {local}:\n{listening}"
        );
    }

    // JSON log lines (after the lab's own header line).
    let log = daemon.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| !l.starts_with("=== wren-lab"))
        .collect();
    assert!(!lines.is_empty());
    for line in lines {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("not a JSON log line ({error}): {line}"));
        assert!(value.get("level").is_some(), "{line}");
    }
}
