//! The pod MTU (issue 15, part 4) from bgpd in a namespace: detected over the
//! namespace's interfaces (the smallest up one matching the pattern), written to
//! `STATE_DIR/mtu`, rewritten when the underlay's MTU changes; an override is used
//! when it fits and stops bgpd with one line when it does not. Pools with VXLAN take
//! the header off (50 bytes over IPv4, 70 over IPv6).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use lab::fixture::{Wren, wren_binary, wren_config};
use lab::{Netns, TIMEOUT};

/// An interface `name` with `mtu`, up or down: one end of a veth pair whose other
/// end (`x` + name) matches no underlay pattern.
fn interface(netns: &Netns, name: &str, mtu: u32, up: bool) {
    let mtu = mtu.to_string();
    let peer = format!("x{name}");
    netns
        .ip(&[
            "link", "add", name, "mtu", &mtu, "type", "veth", "peer", "name", &peer, "mtu", &mtu,
        ])
        .unwrap();
    if up {
        netns.ip(&["link", "set", name, "up"]).unwrap();
    }
}

fn config(netns: &Netns, state: &Path, extra: &str) -> String {
    wren_config(
        "10.91.0.1",
        &Wren::socket_path(netns),
        false,
        &format!("[dataplane]\nstate_dir = \"{}\"\n{extra}", state.display()),
    )
}

fn file(state: &Path) -> Option<String> {
    std::fs::read_to_string(state.join("mtu")).ok()
}

#[test]
fn detected_from_the_smallest_up_underlay_interface_and_followed() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let netns = Netns::new("wb-mtu").unwrap();
    interface(&netns, "eth1", 9000, true);
    interface(&netns, "enp2s0", 1400, true);
    interface(&netns, "eth3", 1300, false); // down: not the underlay
    interface(&netns, "wren0", 1200, true); // not matching the pattern
    let state = netns.dir().join("state");
    let wren = Wren::start(&netns, &config(&netns, &state, ""));
    wren.daemon
        .wait_until(TIMEOUT, "the pod MTU file holding 1400", || {
            file(&state).as_deref() == Some("1400\n")
        })
        .unwrap();

    // The underlay's MTU goes down: the file follows.
    netns.ip(&["link", "set", "enp2s0", "mtu", "1350"]).unwrap();
    wren.daemon
        .wait_until(TIMEOUT, "the pod MTU file holding 1350", || {
            file(&state).as_deref() == Some("1350\n")
        })
        .unwrap();

    // Every underlay interface down: the last pod MTU stays, with one error line.
    netns.ip(&["link", "set", "enp2s0", "down"]).unwrap();
    netns.ip(&["link", "set", "eth1", "down"]).unwrap();
    wren.daemon
        .wait_log(TIMEOUT, "no up interface matches mtu_interface_pattern")
        .unwrap();
    assert_eq!(file(&state).as_deref(), Some("1350\n"));
    let log = wren.daemon.log();
    assert_eq!(
        log.matches("no up interface matches").count(),
        1,
        "the problem is said once:\n{log}"
    );
}

#[test]
fn override_used_when_it_fits_and_refused_when_too_large() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let netns = Netns::new("wb-mtuo").unwrap();
    interface(&netns, "eth1", 1500, true);
    let state = netns.dir().join("state");

    let wren = Wren::start(&netns, &config(&netns, &state, "mtu = 1480\n"));
    wren.daemon
        .wait_until(TIMEOUT, "the pod MTU file holding 1480", || {
            file(&state).as_deref() == Some("1480\n")
        })
        .unwrap();
    drop(wren);

    let path = netns.dir().join("too-large.toml");
    std::fs::write(&path, config(&netns, &state, "mtu = 1501\n")).unwrap();
    let output = netns
        .command(wren_binary("bgpd"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "bgpd started:\n{stderr}");
    // bgpd's last line, the error that stopped it.
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("bgpd: ")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("mtu = 1501"), "{stderr}");
    assert!(
        errors[0].contains("larger than the parent device allows")
            && errors[0].contains("eth1 has MTU 1500"),
        "{stderr}"
    );
    // The file keeps what the last good start wrote.
    assert_eq!(file(&state).as_deref(), Some("1480\n"));
}

#[test]
fn vxlan_pools_take_their_header_off_the_pod_mtu() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let netns = Netns::new("wb-mtv").unwrap();
    interface(&netns, "eth1", 1500, true);
    let state = netns.dir().join("state");
    let ipam = format!(
        "[ipam]\nnode = \"node-mtu\"\ndatastore = \"sqlite://{}/ipam.db\"\n\
         [[ipam.pool]]\ncidr = \"10.244.0.0/16\"\nvxlan_mode = \"cross_subnet\"\n",
        netns.dir().display()
    );
    let wren = Wren::start(&netns, &config(&netns, &state, &ipam));
    // VXLAN over IPv4: 50 bytes.
    wren.daemon
        .wait_until(TIMEOUT, "the pod MTU file holding 1450", || {
            file(&state).as_deref() == Some("1450\n")
        })
        .unwrap();
    // An IPv6 pool with VXLAN too, added while bgpd runs: 70 bytes.
    wren.bgpctl_ok(&[
        "ipam",
        "pool",
        "add",
        "fd00:10:244::/56",
        "--vxlan-mode",
        "always",
    ]);
    wren.daemon
        .wait_until(TIMEOUT, "the pod MTU file holding 1430", || {
            file(&state).as_deref() == Some("1430\n")
        })
        .unwrap();
}
