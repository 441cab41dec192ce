//! examples/wren-bgpd.service's privileges are enough: bgpd run as an unprivileged user
//! (nobody) with exactly the unit's ambient capabilities and bounding set and no new
//! privileges (setpriv stands in for systemd, which CI has no instance of) accepts an FRR
//! router's connection on port 179, installs the route it learns in the kernel and
//! advertises its own. The Wren node is started by the `wren-lab` runner from a bin
//! directory whose `bgpd` is that wrapper.
//!
//! Needs root, FRR and setpriv (skips otherwise, fails with WREN_REQUIRE_LAB=1), and Wren's
//! bgpd and wren-lab built in the target dir (a missing one fails).
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use lab::fixture::wren_binary;
use lab::wait_for;

const TIMEOUT: Duration = Duration::from_secs(90);
/// The unprivileged user bgpd runs as here (the unit names its own user, `wren`).
const NOBODY: u32 = 65534;

/// `KEY=` values of the unit's [Service] section (space-separated values joined).
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|line| line.trim().strip_prefix(&format!("{key}=")))
        .flat_map(|value| value.split_whitespace().map(str::to_owned))
        .collect()
}

/// Capability numbers (linux/capability.h) of the names the unit may use.
fn capability_bit(name: &str) -> u32 {
    match name {
        "CAP_NET_BIND_SERVICE" => 10,
        "CAP_NET_ADMIN" => 12,
        "CAP_NET_RAW" => 13,
        other => panic!("capability {other} in the unit: add it to this test's table"),
    }
}

#[test]
fn bgpd_works_with_only_the_units_capabilities() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let bgpd = wren_binary("bgpd");
    let Some(setpriv) = lab::find_program("setpriv") else {
        let reason = "setpriv (util-linux) missing";
        assert!(
            std::env::var(lab::REQUIRE_ENV).as_deref() != Ok("1"),
            "{reason}"
        );
        eprintln!("SKIPPED: {reason}");
        return;
    };
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/wren-bgpd.service"),
    )
    .unwrap();
    let ambient = unit_values(&unit, "AmbientCapabilities");
    let bounding = unit_values(&unit, "CapabilityBoundingSet");
    assert_eq!(
        ambient, bounding,
        "the unit's ambient and bounding sets differ"
    );
    assert_eq!(unit_values(&unit, "NoNewPrivileges"), ["yes"]);
    assert_eq!(unit_values(&unit, "RuntimeDirectory"), ["wren"]);
    let caps: Vec<String> = ambient
        .iter()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    let caps = format!("-all,{}", caps.join(","));
    let mask: u64 = ambient.iter().map(|c| 1u64 << capability_bit(c)).sum();

    // A world-readable work directory: nobody reads the binary and the config there.
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let real = bin.join("bgpd.real");
    std::fs::copy(&bgpd, &real).unwrap();
    // RuntimeDirectory=wren gives the service user /run/wren; the node context maps that
    // path to the node's directory, which the wrapper hands to nobody the same way.
    let wrapper = format!(
        "#!/bin/sh\nchown {NOBODY}:{NOBODY} /run/wren\n\
         exec {setpriv} --reuid={NOBODY} --regid={NOBODY} --clear-groups \
         --inh-caps={caps} --ambient-caps={caps} --bounding-set={caps} --no-new-privs \
         {real} \"$@\"\n",
        setpriv = setpriv.display(),
        real = real.display(),
    );
    std::fs::write(bin.join("bgpd"), wrapper).unwrap();
    for file in ["bgpd", "bgpd.real"] {
        std::fs::set_permissions(bin.join(file), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::create_dir_all(dir.join("tor")).unwrap();
    std::fs::create_dir_all(dir.join("node")).unwrap();
    std::fs::write(
        dir.join("tor/frr.conf"),
        "frr defaults datacenter\nhostname wl-caps-tor\n!\nrouter bgp 65001\n \
         no bgp ebgp-requires-policy\n no bgp network import-check\n \
         neighbor 192.0.2.0 remote-as 64601\n address-family ipv4 unicast\n  \
         network 198.51.100.0/24\n exit-address-family\n!\n",
    )
    .unwrap();
    // Passive: FRR must connect to bgpd's port 179, which needs CAP_NET_BIND_SERVICE.
    std::fs::write(
        dir.join("node/bgpd.toml"),
        "[bgp]\nasn = 64601\nrouter_id = \"192.0.2.0\"\nlisten = [\"0.0.0.0:179\"]\n\n\
         [[bgp.neighbor]]\naddress = \"192.0.2.1\"\nremote_asn = 65001\npassive = true\n\
         hold_time = 9\n\n[[bgp.network]]\nprefix = \"203.0.113.0/24\"\n",
    )
    .unwrap();
    let name = lab::unique_name("wl-caps");
    std::fs::write(
        dir.join("caps.clab.yml"),
        format!(
            "name: {name}\ntopology:\n  nodes:\n    tor:\n      kind: linux\n      \
             image: quay.io/frrouting/frr:8.4.0\n      binds: [\"tor/frr.conf:/etc/frr/frr.conf\"]\n      \
             exec: [\"ip addr add 192.0.2.1/31 dev eth1\"]\n    node:\n      kind: linux\n      \
             image: wren:latest\n      binds: [\"node/bgpd.toml:/etc/wren/bgpd.toml\"]\n      \
             exec: [\"ip addr add 192.0.2.0/31 dev eth1\"]\n  links:\n    \
             - endpoints: [\"tor:eth1\", \"node:eth1\"]\n"
        ),
    )
    .unwrap();
    let topology = dir.join("caps.clab.yml");
    let topo = topology.to_str().unwrap();
    let run = dir.join("run");
    let wren_lab = |args: &[&str]| -> Output {
        Command::new(wren_binary("wren-lab"))
            .args(args)
            .env("WREN_LAB_RUN_DIR", &run)
            .env("WREN_BIN_DIR", &bin)
            .output()
            .unwrap()
    };
    struct Down<'a>(&'a dyn Fn(&[&str]) -> Output, &'a str);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            (self.0)(&["down", self.1]);
        }
    }
    let _down = Down(&wren_lab, topo);
    let text = |o: &Output| {
        format!(
            "{}\n{}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let up = wren_lab(&["up", topo]);
    assert!(up.status.success(), "{}", text(&up));

    let vtysh = |command: &str| wren_lab(&["exec", topo, "tor", "--", "vtysh", "-c", command]);
    wait_for(TIMEOUT, "FRR's session with bgpd Established", || {
        let out = vtysh("show bgp summary json");
        let summary: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?;
        let state = &summary["ipv4Unicast"]["peers"]["192.0.2.0"]["state"];
        if state == "Established" {
            Ok(())
        } else {
            Err(format!("state {state}"))
        }
    })
    .unwrap();
    wait_for(TIMEOUT, "FRR to learn bgpd's 203.0.113.0/24", || {
        let out = vtysh("show bgp ipv4 unicast 203.0.113.0/24 json");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("\"paths\"") {
            Ok(())
        } else {
            Err(text)
        }
    })
    .unwrap();
    wait_for(TIMEOUT, "198.51.100.0/24 in the node's kernel", || {
        let out = wren_lab(&[
            "exec",
            topo,
            "node",
            "--",
            "ip",
            "route",
            "show",
            "198.51.100.0/24",
        ]);
        let routes = String::from_utf8_lossy(&out.stdout).into_owned();
        if routes.contains("via 192.0.2.1") {
            Ok(())
        } else {
            Err(text(&out))
        }
    })
    .unwrap();

    // The running bgpd: nobody, exactly the unit's capabilities, no new privileges.
    let status = wren_lab(&["status", "--json", topo]);
    let state: lab::topology::State = serde_json::from_slice(&status.stdout).unwrap();
    let node = state.nodes.iter().find(|n| n.name == "node").unwrap();
    let pid = node.daemons[0].pid;
    let proc_status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |key: &str| {
        proc_status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(field("Uid"), NOBODY.to_string(), "{proc_status}");
    for key in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
        assert_eq!(
            u64::from_str_radix(&field(key), 16).unwrap(),
            mask,
            "{key}: {proc_status}"
        );
    }
    assert_eq!(field("NoNewPrivs"), "1");

    let down = wren_lab(&["down", topo]);
    assert!(down.status.success(), "{}", text(&down));
    let left: Vec<String> = lab::netns::list()
        .unwrap()
        .into_iter()
        .filter(|n| n.contains(&name))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
