//! Topologies from containerlab files: the shipped FRR pair deployed with the library, and
//! the `wren-lab` runner (up, status, exec, down) on a test topology with pods.
//! Needs root, FRR and the CNI plugins (skips otherwise, fails with WREN_REQUIRE_LAB=1).
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use lab::{Family, Topology, wait_until};

const TIMEOUT: Duration = Duration::from_secs(90);

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn namespaces_with(prefix: &str) -> Vec<String> {
    lab::netns::list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect()
}

fn alive(pid: u32) -> bool {
    lab::topology::DaemonState {
        name: String::new(),
        pid,
        log: PathBuf::new(),
    }
    .is_alive()
}

#[test]
fn frr_pair_peers_and_leaves_nothing_behind() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let topology = Topology::load(&repo_file("containerlab/frr-pair.clab.yml")).unwrap();
    let lab = topology.deploy().unwrap();
    assert_eq!(lab.netns("r1").unwrap().name(), "clab-frr-pair-r1");
    let (r1, r2) = (lab.frr("r1").unwrap(), lab.frr("r2").unwrap());

    // Both sessions Established, from FRR's own summary.
    r1.wait_established(TIMEOUT, &["192.0.2.2"]).unwrap();
    r2.wait_established(TIMEOUT, &["192.0.2.1"]).unwrap();
    let summary = r1.bgp_summary_json().unwrap();
    assert_eq!(
        summary["ipv4Unicast"]["peers"]["192.0.2.2"]["state"],
        "Established"
    );
    assert_eq!(summary["ipv4Unicast"]["as"], 65001);

    // Each learned the other's route, and zebra installed it.
    let paths = r1.wait_route(TIMEOUT, "203.0.113.0/24").unwrap();
    assert_eq!(paths[0]["path"], "65002");
    r2.wait_route(TIMEOUT, "198.51.100.0/24").unwrap();
    let r1_netns = lab.netns("r1").unwrap();
    wait_until(TIMEOUT, "203.0.113.0/24 in r1's kernel", || {
        r1_netns
            .route_destinations(Family::Ipv4, &["proto", "bgp"])
            .unwrap()
            .contains(&"203.0.113.0/24".to_owned())
    })
    .unwrap();

    // In the node context vtysh needs no flags.
    let out = lab
        .exec("r2", &["vtysh", "-c", "show running-config"])
        .unwrap();
    assert!(out.contains("hostname r2"), "{out}");

    let pids: Vec<u32> = lab
        .nodes()
        .iter()
        .flat_map(|n| n.frr().unwrap().daemons())
        .map(|d| d.pid())
        .collect();
    assert_eq!(pids.len(), 6);
    drop(lab);
    assert_eq!(namespaces_with("clab-frr-pair-"), Vec::<String>::new());
    for pid in pids {
        assert!(!alive(pid), "FRR daemon {pid} survived the lab");
    }
}

#[test]
fn failed_deploy_removes_what_it_made() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.clab.yml");
    std::fs::write(
        &path,
        r#"
name: wl-broken
topology:
  nodes:
    a: { kind: linux, image: alpine, exec: ["ip link set eth1 up"] }
    b: { kind: linux, image: alpine, exec: ["ip addr add 192.0.2.1/30 dev no-such-if"] }
  links:
    - endpoints: ["a:eth1", "b:eth1"]
"#,
    )
    .unwrap();
    let topology = Topology::load(&path).unwrap();
    let error = topology.deploy().unwrap_err().to_string();
    assert!(
        error.contains("node b") && error.contains("no-such-if"),
        "{error}"
    );
    assert_eq!(namespaces_with("clab-wl-broken-"), Vec::<String>::new());
}

fn wren_lab(run_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wren-lab"))
        .args(args)
        .env("WREN_LAB_RUN_DIR", run_dir)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Removes the runner's lab if the test fails midway.
struct Down<'a>(&'a Path, &'a str);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        wren_lab(self.0, &["down", self.1]);
    }
}

#[test]
fn runner_up_status_exec_down() {
    let Some(_ready) = lab::require!(Root, Frr, Cni) else {
        return;
    };
    let run_dir = tempfile::tempdir().unwrap();
    let run = run_dir.path();
    let topology = repo_file("lab/tests/topologies/runner.clab.yml");
    let topo = topology.to_str().unwrap();
    let _down = Down(run, topo);

    let up = wren_lab(run, &["up", topo]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(
        String::from_utf8_lossy(&up.stdout).contains("clab-wl-runner-r1"),
        "{}",
        text(&up)
    );

    // A second up refuses.
    let again = wren_lab(run, &["up", topo]);
    assert!(
        !again.status.success() && text(&again).contains("up already"),
        "{}",
        text(&again)
    );

    // Status from another process: everything present and alive.
    let status = wren_lab(run, &["status", topo]);
    assert!(status.status.success(), "{}", text(&status));
    let status_text = text(&status);
    assert!(
        status_text.contains("frr-bgpd@clab-wl-runner-r1") && status_text.contains("alive"),
        "{status_text}"
    );
    let json = wren_lab(run, &["status", "--json", topo]);
    let state: lab::topology::State = serde_json::from_slice(&json.stdout).unwrap();
    let h1 = state.nodes.iter().find(|n| n.name == "h1").unwrap();
    assert_eq!(h1.pods.len(), 2);
    let pod2 = h1.pods[1].addresses[0].clone();
    assert!(pod2.starts_with("10.245.1."), "{pod2}");

    // exec: vtysh reaches r1's own FRR without flags; env and links from the file apply.
    let vtysh = wren_lab(
        run,
        &[
            "exec",
            topo,
            "r1",
            "--",
            "vtysh",
            "-c",
            "show running-config",
        ],
    );
    assert!(
        text(&vtysh).contains("hostname wl-runner-r1"),
        "{}",
        text(&vtysh)
    );
    let env = wren_lab(
        run,
        &["exec", topo, "h1", "--", "sh", "-c", "echo $WL_GREETING"],
    );
    assert_eq!(
        String::from_utf8_lossy(&env.stdout).trim(),
        "hello",
        "{}",
        text(&env)
    );
    let mtu = wren_lab(
        run,
        &["exec", topo, "h1", "--", "cat", "/sys/class/net/eth1/mtu"],
    );
    assert_eq!(
        String::from_utf8_lossy(&mtu.stdout).trim(),
        "1400",
        "{}",
        text(&mtu)
    );
    let ping = wren_lab(
        run,
        &[
            "exec",
            topo,
            "h1",
            "--",
            "ping",
            "-c",
            "1",
            "-W",
            "5",
            "192.0.2.9",
        ],
    );
    assert!(ping.status.success(), "{}", text(&ping));
    // The exit status of the command is passed on.
    let fail = wren_lab(run, &["exec", topo, "h1", "--", "sh", "-c", "exit 7"]);
    assert_eq!(fail.status.code(), Some(7));

    // Pods reach each other through their node.
    let pod1 = format!("{}-pod1", h1.netns);
    let ping = Command::new("ip")
        .args(["netns", "exec", &pod1, "ping", "-c", "1", "-W", "5", &pod2])
        .output()
        .unwrap();
    assert!(ping.status.success(), "{}", text(&ping));

    // A crash of the process that went up loses nothing: down works from the file alone.
    let pids: Vec<u32> = state
        .nodes
        .iter()
        .flat_map(|n| &n.daemons)
        .map(|d| d.pid)
        .collect();
    std::fs::remove_file(lab::topology::State::path(&run.join("wl-runner"))).unwrap();
    let down = wren_lab(run, &["down", topo]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(
        text(&down).contains("removed namespace clab-wl-runner-h1-pod2"),
        "{}",
        text(&down)
    );
    assert_eq!(namespaces_with("clab-wl-runner-"), Vec::<String>::new());
    for pid in pids {
        wait_until(TIMEOUT, &format!("daemon {pid} gone"), || !alive(pid)).unwrap();
    }
    assert!(!run.join("wl-runner").exists());
    // host-local released both addresses on DEL.
    let leases = Path::new("/var/lib/cni/networks/wl-runner-pods");
    let left: Vec<_> = std::fs::read_dir(leases)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name())
                .filter(|n| n.to_string_lossy().starts_with("10."))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "leases left: {left:?}");

    let status = wren_lab(run, &["status", topo]);
    assert!(
        !status.status.success() && text(&status).contains("not up"),
        "{}",
        text(&status)
    );
}

#[test]
fn runner_starts_wren_nodes_from_the_bin_dir() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let run = work.path().join("run");
    let bin = work.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // A test double for Wren's bgpd: it checks its arguments and creates its control socket
    // at the default path, which the node context maps to the node's own directory.
    std::fs::write(
        bin.join("bgpd"),
        "#!/bin/sh\n[ \"$1\" = --config ] && [ -f \"$2\" ] || { echo \"usage: bgpd --config FILE\" >&2; exit 2; }\n\
         touch /run/wren/bgpd.sock && exec sleep 100000\n",
    )
    .unwrap();
    std::fs::set_permissions(bin.join("bgpd"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        work.path().join("n1.toml"),
        "[control]\nsocket = \"/run/wren/bgpd.sock\"\n",
    )
    .unwrap();
    let topology = work.path().join("wren.clab.yml");
    std::fs::write(
        &topology,
        "name: wl-wren\ntopology:\n  nodes:\n    n1:\n      kind: linux\n      image: wren:latest\n      binds:\n        - n1.toml:/etc/wren/bgpd.toml\n",
    )
    .unwrap();
    let topo = topology.to_str().unwrap();
    let wren_lab = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wren-lab"))
            .args(args)
            .env("WREN_LAB_RUN_DIR", &run)
            .env("WREN_BIN_DIR", &bin)
            .output()
            .unwrap()
    };
    let _down = Down(&run, topo);
    let up = wren_lab(&["up", topo]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(
        text(&up).contains("bgpd@clab-wl-wren-n1") && text(&up).contains("alive"),
        "{}",
        text(&up)
    );
    // Inside the node, the socket is at the default path and the environment names it.
    let exec = wren_lab(&[
        "exec",
        topo,
        "n1",
        "--",
        "sh",
        "-c",
        "test -e /run/wren/bgpd.sock && echo $WREN_CONTROL_SOCKET",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&exec.stdout).trim(),
        "/run/wren/bgpd.sock",
        "{}",
        text(&exec)
    );
    // On the host, it is in the node's directory and nowhere else.
    assert!(run.join("wl-wren/nodes/n1/wren/bgpd.sock").exists());
    assert!(
        !Path::new("/run/wren/bgpd.sock").exists() || Path::new("/run/wren/bgpd.sock").is_dir()
    );
    let down = wren_lab(&["down", topo]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(namespaces_with("clab-wl-wren-"), Vec::<String>::new());
}

#[test]
fn runner_prefixes_let_two_copies_run_side_by_side() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let run_dir = tempfile::tempdir().unwrap();
    let run = run_dir.path();
    let topology = repo_file("containerlab/frr-pair.clab.yml");
    let topo = topology.to_str().unwrap();
    let prefixes = [
        lab::unique_name("wla").replace('-', "_"),
        lab::unique_name("wlb").replace('-', "_"),
    ];
    let wren_lab = |prefix: &str, args: &[&str]| {
        let mut all = vec!["--prefix", prefix];
        all.extend_from_slice(args);
        wren_lab(run, &all)
    };
    struct DownPrefixed<'a>(&'a dyn Fn(&str, &[&str]) -> Output, &'a str, &'a str);
    impl Drop for DownPrefixed<'_> {
        fn drop(&mut self) {
            (self.0)(self.1, &["down", self.2]);
        }
    }
    let _down: Vec<DownPrefixed> = prefixes
        .iter()
        .map(|p| DownPrefixed(&wren_lab, p, topo))
        .collect();
    for prefix in &prefixes {
        let up = wren_lab(prefix, &["up", topo]);
        assert!(up.status.success(), "{}", text(&up));
        assert!(run.join(format!("{prefix}-frr-pair")).is_dir());
    }
    for prefix in &prefixes {
        assert_eq!(
            namespaces_with(&format!("{prefix}-frr-pair-")).len(),
            2,
            "{prefix}"
        );
        let out = wren_lab(
            prefix,
            &["exec", topo, "r1", "--", "ip", "netns", "identify"],
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("{prefix}-frr-pair-r1"),
            "{}",
            text(&out)
        );
        let status = wren_lab(prefix, &["status", topo]);
        assert!(status.status.success(), "{}", text(&status));
    }
    let bad = wren_lab("a/b", &["status", topo]);
    assert!(
        !bad.status.success() && text(&bad).contains("--prefix"),
        "{}",
        text(&bad)
    );
    for prefix in &prefixes {
        let down = wren_lab(prefix, &["down", topo]);
        assert!(down.status.success(), "{}", text(&down));
        assert_eq!(
            namespaces_with(&format!("{prefix}-frr-pair-")),
            Vec::<String>::new()
        );
    }
}
