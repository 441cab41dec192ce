//! The daemon as operators meet it: `bgpd --check-config`, bgpctl's tables and JSON,
//! its errors (daemon not running, unknown neighbor, permission denied, read-only
//! access), reload (bgpctl and SIGHUP) without resetting untouched sessions (checked
//! on FRR's connection counters), SIGTERM sending Cease 6/2, and the kernel routes
//! kept or removed at exit. Needs root and FRR for the namespace tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use lab::TIMEOUT;
use lab::fixture::{Wren, bgpctl, frr_config, frr_neighbor, pair, wren_config};
use lab::{Family, Frr, Netns, Veth, wait_until};
use nix::sys::signal::Signal;
use serde_json::Value;

#[test]
fn check_config_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[bgp]\nasn = 64512\nrouter_id = \"10.0.0.1\"\n[[bgp.neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 65001\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_bgpd"))
        .arg("--check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[bgp]\nasn = 64512\nrouter_id = \"0.0.0.0\"\n[[bgp.neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 65001\nimport = \"missing\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_bgpd"))
        .arg("--check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    let file = bad.display().to_string();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("{file}:3:1: bgp.router_id: ")),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!("{file}:7:1: bgp.neighbor[0].import: ")),
        "{stderr}"
    );

    // bgpd itself refuses to start with it, with the same lines.
    let output = Command::new(env!("CARGO_BIN_EXE_bgpd"))
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8(output.stderr).unwrap(), stderr);
}

#[test]
fn bgpctl_without_a_daemon_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let output = bgpctl(&dir.path().join("bgpd.sock"), &["show", "neighbors"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("bgpd is not running"), "{stderr}");
}

#[test]
fn bgpctl_tables_json_and_fib() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let net = pair("wb-ct", "10.51.0", "fd00:51");
    let frr = Frr::start(
        &net.a,
        &frr_config(
            65001,
            "10.51.0.1",
            " neighbor 10.51.0.2 remote-as 64512",
            "  network 10.130.1.0/24\n  network 10.130.3.0/24",
            "",
            &["10.130.1.0/24", "10.130.3.0/24"],
        ),
    )
    .unwrap();
    let socket = Wren::socket_path(&net.b);
    let wren = Wren::start(
        &net.b,
        &wren_config(
            "10.51.0.2",
            &socket,
            true,
            "[[bgp.neighbor]]
address = \"10.51.0.1\"
remote_asn = 65001
hold_time = 9
connect_retry = 1
description = \"tor\"

[[bgp.network]]
prefix = \"10.130.2.0/24\"
communities = [\"65000:7\"]
",
        ),
    );
    frr.wait_established(TIMEOUT, &["10.51.0.2"]).unwrap();
    wren.wait_established(&["10.51.0.1"]);
    wren.wait_route("10.130.1.0/24");
    wren.wait_route("10.130.3.0/24");

    // show neighbors --json: the contract's field names.
    let neighbors = wren.bgpctl_json(&["show", "neighbors"]);
    let neighbor = &neighbors[0];
    assert_eq!(neighbor["address"], "10.51.0.1");
    assert_eq!(neighbor["remote_asn"], 65001);
    assert_eq!(neighbor["state"], "Established");
    assert!(neighbor["uptime_secs"].is_u64(), "{neighbor}");
    wait_until(TIMEOUT, "prefix counters", || {
        let n = &wren.bgpctl_json(&["show", "neighbors"])[0];
        n["prefixes_received"] == 2 && n["prefixes_advertised"] == 1
    })
    .unwrap();

    // show routes --json: every contract field, best marked, the local route too.
    let routes = wren.bgpctl_json(&["show", "routes"]);
    let routes = routes.as_array().unwrap();
    for route in routes {
        for key in [
            "prefix",
            "next_hops",
            "as_path",
            "origin",
            "local_pref",
            "med",
            "communities",
            "best",
            "source",
        ] {
            assert!(route.get(key).is_some(), "{key} missing in {route}");
        }
    }
    let local = routes
        .iter()
        .find(|r| r["prefix"] == "10.130.2.0/24")
        .unwrap();
    assert_eq!(local["source"], "local");
    assert_eq!(local["communities"], serde_json::json!(["65000:7"]));
    assert_eq!(local["best"], true);

    // The table: prefix, best mark, local preference, MED, source, next hops, and
    // FRR's Path (the AS path, then the origin code).
    let table = wren.bgpctl_ok(&["show", "routes", "10.130.1.0/24"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("Prefix"), "{table}");
    assert!(lines[0].ends_with("Path"), "{table}");
    let columns: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(columns[..2], ["10.130.1.0/24", "*"], "{table}");
    assert_eq!(
        columns[columns.len() - 4..],
        ["10.51.0.1", "10.51.0.1", "65001", "i"],
        "{table}"
    );
    assert_eq!(lines.last(), Some(&"1 prefixes, 1 paths"), "{table}");
    // Pages in prefix order: --limit, then --after the last prefix of the page.
    let prefixes = |routes: serde_json::Value| -> Vec<String> {
        routes
            .as_array()
            .unwrap()
            .iter()
            .map(|route| route["prefix"].as_str().unwrap().to_owned())
            .collect()
    };
    let page = wren.bgpctl_json(&["show", "routes", "--limit", "2"]);
    assert_eq!(prefixes(page), ["10.130.1.0/24", "10.130.2.0/24"]);
    let rest = wren.bgpctl_json(&["show", "routes", "--after", "10.130.2.0/24", "--limit", "2"]);
    assert_eq!(prefixes(rest), ["10.130.3.0/24"]);
    let first_page = wren.bgpctl_ok(&["show", "routes", "--limit", "1"]);
    assert!(
        first_page
            .ends_with("\n1 prefixes, 1 paths; more after 10.130.1.0/24 (--after 10.130.1.0/24)\n"),
        "{first_page}"
    );
    let none = wren.bgpctl_ok(&["show", "routes", "--after", "10.130.3.0/24"]);
    assert_eq!(none, "No routes\n0 prefixes, 0 paths\n");
    // An address finds its covering prefix; --family filters.
    let by_address = wren.bgpctl_json(&["show", "routes", "10.130.1.7"]);
    assert_eq!(by_address[0]["prefix"], "10.130.1.0/24", "{by_address}");
    let v6 = wren.bgpctl_json(&["show", "routes", "--family", "ipv6"]);
    assert_eq!(v6, serde_json::json!([]));
    // A neighbor's received and advertised routes.
    let received = wren.bgpctl_json(&["show", "routes", "--neighbor", "10.51.0.1", "--received"]);
    assert_eq!(received.as_array().unwrap().len(), 2, "{received}");
    let advertised =
        wren.bgpctl_json(&["show", "routes", "--neighbor", "10.51.0.1", "--advertised"]);
    let advertised = advertised.as_array().unwrap();
    assert_eq!(advertised.len(), 1, "{advertised:?}");
    assert_eq!(advertised[0]["prefix"], "10.130.2.0/24");

    // The FIB: FRR's routes in the kernel with protocol 196, listed by show fib.
    wait_until(TIMEOUT, "FRR's routes in bgpd's kernel table", || {
        net.b
            .route_destinations(Family::Ipv4, &["proto", "196"])
            .unwrap()
            == ["10.130.1.0/24", "10.130.3.0/24"]
    })
    .unwrap();
    let fib = wren.bgpctl_json(&["show", "fib"]);
    let installed: Vec<&str> = fib["installed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["prefix"].as_str())
        .collect();
    assert!(installed.contains(&"10.130.1.0/24"), "{fib}");
    let fib_table = wren.bgpctl_ok(&["show", "fib"]);
    assert!(fib_table.contains("10.130.1.0/24"), "{fib_table}");

    // Errors: one line, non-zero exit.
    let output = wren.bgpctl(&["show", "neighbor", "10.9.9.9"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim(), "bgpctl: no neighbor 10.9.9.9");
    let output = wren.bgpctl(&["neighbor", "10.9.9.9", "reset"]);
    assert_eq!(output.status.code(), Some(1));

    // neighbor shutdown with a message, then enable: FRR sees the communication.
    let said = wren.bgpctl_ok(&["neighbor", "10.51.0.1", "shutdown", "maintenance window"]);
    assert!(said.contains("shut down"), "{said}");
    wait_until(TIMEOUT, "FRR to see the shutdown", || {
        frr.neighbor_state("10.51.0.2").unwrap().as_deref() != Some("Established")
    })
    .unwrap();
    let seen = frr_neighbor(&frr, "10.51.0.2");
    let text = seen.to_string();
    assert!(text.contains("maintenance window"), "{seen}");
    let table = wren.bgpctl_ok(&["show", "neighbors"]);
    assert!(table.contains("Idle (Admin)"), "{table}");
    wren.bgpctl_ok(&["neighbor", "10.51.0.1", "enable"]);
    wren.wait_established(&["10.51.0.1"]);
    wren.bgpctl_ok(&["neighbor", "10.51.0.1", "refresh"]);
    wren.bgpctl_ok(&["neighbor", "10.51.0.1", "reset", "testing"]);
    wren.wait_established(&["10.51.0.1"]);
    wait_until(TIMEOUT, "FRR's routes back in the kernel", || {
        net.b
            .route_destinations(Family::Ipv4, &["proto", "196"])
            .unwrap()
            == ["10.130.1.0/24", "10.130.3.0/24"]
    })
    .unwrap();

    // SIGTERM: Cease / Administrative Shutdown to FRR, and (graceful restart is on
    // by default) the kernel routes stay.
    wren.daemon.signal(Signal::SIGTERM).unwrap();
    wait_until(TIMEOUT, "bgpd to exit", || !wren.daemon.is_alive()).unwrap();
    assert!(wren.daemon.exit_status().unwrap().success());
    wait_until(TIMEOUT, "FRR to see the shutdown", || {
        frr.neighbor_state("10.51.0.2").unwrap().as_deref() != Some("Established")
    })
    .unwrap();
    let seen = frr_neighbor(&frr, "10.51.0.2").to_string();
    assert!(
        seen.contains("Administrative Shutdown") || seen.contains("Admin. shutdown"),
        "{seen}"
    );
    assert!(!socket.exists(), "the control socket file was left behind");
    assert_eq!(
        net.b
            .route_destinations(Family::Ipv4, &["proto", "196"])
            .unwrap(),
        ["10.130.1.0/24", "10.130.3.0/24"]
    );
}

#[test]
fn routes_leave_the_kernel_at_exit_without_graceful_restart() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let net = pair("wb-kx", "10.52.0", "fd00:52");
    let frr = Frr::start(
        &net.a,
        &frr_config(
            65001,
            "10.52.0.1",
            " neighbor 10.52.0.2 remote-as 64512",
            "  network 10.131.1.0/24",
            "",
            &["10.131.1.0/24"],
        ),
    )
    .unwrap();
    let socket = Wren::socket_path(&net.b);
    let wren = Wren::start(
        &net.b,
        &wren_config(
            "10.52.0.2",
            &socket,
            true,
            "[bgp.graceful_restart]
enabled = false

[[bgp.neighbor]]
address = \"10.52.0.1\"
remote_asn = 65001
hold_time = 9
connect_retry = 1
",
        ),
    );
    frr.wait_established(TIMEOUT, &["10.52.0.2"]).unwrap();
    wait_until(TIMEOUT, "FRR's route in the kernel", || {
        net.b.route("10.131.1.0/24").unwrap().is_some()
    })
    .unwrap();
    wren.daemon.stop().unwrap();
    assert!(net.b.route("10.131.1.0/24").unwrap().is_none());
}

/// Runs bgpctl as user `nobody` with `group` as its only group.
fn bgpctl_as_nobody(
    bgpctl: &Path,
    socket: &Path,
    group: u32,
    args: &[&str],
) -> std::process::Output {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            &format!("--regid={group}"),
            "--clear-groups",
            "--",
        ])
        .arg(bgpctl)
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn control_socket_refuses_outsiders_and_offers_read_only_access() {
    let Some(ready) = lab::require!(Root) else {
        return;
    };
    let netns = Netns::new("wb-perm").unwrap();
    let bgpctl = lab::fixture::public_binary(&lab::fixture::wren_binary("bgpctl"), ready.dir());
    std::fs::set_permissions(ready.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();

    // The default mode 0660, owned by root: nobody cannot even connect.
    let socket = Wren::socket_path(&netns);
    let wren = Wren::start(&netns, &wren_config("10.53.0.1", &socket, false, ""));
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let output = bgpctl_as_nobody(&bgpctl, &socket, 65534, &["show", "neighbors"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("permission denied"), "{stderr}");
    drop(wren);

    // Open mode with a read-only group: members may show, not change; others are
    // refused by the credential check.
    let config = wren_config("10.53.0.1", &socket, false, "").replace(
        "[control]\n",
        "[control]\nmode = 0o666\ngroup = \"root\"\nread_only_group = \"nogroup\"\n",
    );
    let wren = Wren::start(&netns, &config);
    let output = bgpctl_as_nobody(&bgpctl, &socket, 65534, &["show", "neighbors", "--json"]);
    assert!(output.status.success(), "{output:?}");
    let list: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(list, serde_json::json!([]));
    let output = bgpctl_as_nobody(&bgpctl, &socket, 65534, &["reload"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("read-only"), "{stderr}");
    let output = bgpctl_as_nobody(&bgpctl, &socket, 1, &["show", "neighbors"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("permission denied"), "{stderr}");
    // Root keeps every right.
    wren.bgpctl_ok(&["reload"]);
}

#[test]
fn reload_changes_only_what_changed() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    // bgpd in `hub`, FRR in `left` and `right`, one link each.
    let hub = Netns::new("wb-rh").unwrap();
    let left = Netns::new("wb-rl").unwrap();
    let right = Netns::new("wb-rr").unwrap();
    let _l = Veth::new(&hub, "eth1", &left, "eth1").unwrap();
    let _r = Veth::new(&hub, "eth2", &right, "eth1").unwrap();
    hub.iface("eth1").addr("10.54.1.2/24").unwrap();
    left.iface("eth1").addr("10.54.1.1/24").unwrap();
    hub.iface("eth2").addr("10.54.2.2/24").unwrap();
    right.iface("eth1").addr("10.54.2.1/24").unwrap();
    let frr_left = Frr::start(
        &left,
        &frr_config(
            65001,
            "10.54.1.1",
            " neighbor 10.54.1.2 remote-as 64512",
            "",
            "",
            &[],
        ),
    )
    .unwrap();
    let frr_right = Frr::start(
        &right,
        &frr_config(
            65002,
            "10.54.2.1",
            " neighbor 10.54.2.2 remote-as 64512",
            "",
            "",
            &[],
        ),
    )
    .unwrap();
    let socket = Wren::socket_path(&hub);
    let neighbors = |left_hold: u16, right_description: &str| {
        format!(
            "[[bgp.neighbor]]
address = \"10.54.1.1\"
remote_asn = 65001
hold_time = {left_hold}
connect_retry = 1

[[bgp.neighbor]]
address = \"10.54.2.1\"
remote_asn = 65002
hold_time = 9
connect_retry = 1
description = \"{right_description}\"
"
        )
    };
    let wren = Wren::start(
        &hub,
        &wren_config("10.54.0.9", &socket, false, &neighbors(9, "right")),
    );
    frr_left.wait_established(TIMEOUT, &["10.54.1.2"]).unwrap();
    frr_right.wait_established(TIMEOUT, &["10.54.2.2"]).unwrap();
    let established = |frr: &Frr, address: &str| {
        frr_neighbor(frr, address)["connectionsEstablished"]
            .as_u64()
            .unwrap_or_else(|| panic!("no connectionsEstablished for {address}"))
    };
    let left_before = established(&frr_left, "10.54.1.2");
    let right_before = established(&frr_right, "10.54.2.2");

    // The left hold time changes (a new OPEN), the right description (in place).
    std::fs::write(
        &wren.config_path,
        wren_config("10.54.0.9", &socket, false, &neighbors(12, "right side")),
    )
    .unwrap();
    let summary = wren.bgpctl_json(&["reload"]);
    assert_eq!(
        summary["reset"],
        serde_json::json!(["10.54.1.1"]),
        "{summary}"
    );
    assert_eq!(
        summary["updated"],
        serde_json::json!(["10.54.2.1"]),
        "{summary}"
    );
    wait_until(TIMEOUT, "the left session to come back", || {
        frr_left.neighbor_state("10.54.1.2").unwrap().as_deref() == Some("Established")
            && established(&frr_left, "10.54.1.2") > left_before
    })
    .unwrap();
    assert_eq!(
        frr_neighbor(&frr_left, "10.54.1.2")["bgpTimerHoldTimeMsecs"],
        9000
    );
    assert_eq!(established(&frr_right, "10.54.2.2"), right_before);
    assert_eq!(
        frr_right.neighbor_state("10.54.2.2").unwrap().as_deref(),
        Some("Established")
    );
    let right = wren.neighbor("10.54.2.1").unwrap();
    assert_eq!(right["description"], "right side");

    // SIGHUP does the same: the right neighbor goes (Cease 6/3), the left stays.
    std::fs::write(
        &wren.config_path,
        wren_config(
            "10.54.0.9",
            &socket,
            false,
            neighbors(12, "right side").split("\n\n").next().unwrap(),
        ),
    )
    .unwrap();
    let left_now = established(&frr_left, "10.54.1.2");
    wren.daemon.signal(Signal::SIGHUP).unwrap();
    wait_until(TIMEOUT, "the right neighbor to be removed", || {
        wren.neighbor("10.54.2.1").is_none()
    })
    .unwrap();
    wait_until(TIMEOUT, "FRR to see the de-configuration", || {
        frr_right.neighbor_state("10.54.2.2").unwrap().as_deref() != Some("Established")
    })
    .unwrap();
    let seen = frr_neighbor(&frr_right, "10.54.2.2").to_string();
    assert!(
        seen.contains("Peer De-configured") || seen.contains("Peer Unconfigured"),
        "{seen}"
    );
    assert_eq!(established(&frr_left, "10.54.1.2"), left_now);

    // A file with errors changes nothing and says why.
    std::fs::write(&wren.config_path, "[bgp]\nasn = 0\n").unwrap();
    let output = wren.bgpctl(&["reload"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("bgp.asn"), "{stderr}");
    assert!(wren.neighbor("10.54.1.1").is_some());
}

#[test]
fn reload_with_a_new_import_filter_keeps_the_session() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let net = pair("wb-rf", "10.55.0", "fd00:55");
    let frr = Frr::start(
        &net.a,
        &frr_config(
            65001,
            "10.55.0.1",
            " neighbor 10.55.0.2 remote-as 64512",
            "  network 10.132.1.0/24\n  network 10.132.2.0/24",
            "",
            &["10.132.1.0/24", "10.132.2.0/24"],
        ),
    )
    .unwrap();
    let socket = Wren::socket_path(&net.b);
    let neighbor = |import: &str| {
        format!(
            "[[bgp.neighbor]]
address = \"10.55.0.1\"
remote_asn = 65001
hold_time = 9
connect_retry = 1
{import}

[[policy.prefix_list]]
name = \"first\"
rules = [{{ prefix = \"10.132.1.0/24\" }}]

[[policy.filter]]
name = \"only-first\"
[[policy.filter.rule]]
prefix_list = \"first\"
action = \"accept\"
"
        )
    };
    let wren = Wren::start(
        &net.b,
        &wren_config("10.55.0.2", &socket, false, &neighbor("")),
    );
    frr.wait_established(TIMEOUT, &["10.55.0.2"]).unwrap();
    wren.wait_route("10.132.1.0/24");
    wren.wait_route("10.132.2.0/24");
    let connections = frr_neighbor(&frr, "10.55.0.2")["connectionsEstablished"].clone();

    // The filter changes: routes are re-evaluated, the session is not touched.
    std::fs::write(
        &wren.config_path,
        wren_config(
            "10.55.0.2",
            &socket,
            false,
            &neighbor("import = \"only-first\""),
        ),
    )
    .unwrap();
    let summary = wren.bgpctl_json(&["reload"]);
    assert_eq!(summary["reset"], serde_json::json!([]), "{summary}");
    wren.wait_no_route("10.132.2.0/24");
    assert!(!wren.paths("10.132.1.0/24").is_empty());
    assert_eq!(
        frr_neighbor(&frr, "10.55.0.2")["connectionsEstablished"],
        connections
    );
    assert_eq!(wren.neighbor("10.55.0.1").unwrap()["state"], "Established");
}
