//! `bgpctl health`, the DaemonSet's probes: bgpd with a neighbor that never answers
//! and an IPAM datastore that is down is alive (`--live` exits 0) but not ready (exit
//! 1, "converged: no", the datastore unreachable); once the restart time has passed it
//! is converged, yet still not ready while the datastore is down; a bgpd whose
//! datastore answers and that has converged is ready (exit 0). Needs root (namespaces).

use std::process::Output;
use std::time::{Duration, Instant};

use lab::fixture::{Wren, wren_config};
use lab::netns::Netns;

const WAIT: Duration = Duration::from_secs(30);

fn health(wren: &Wren, args: &[&str]) -> (bool, String) {
    let mut all = vec!["health"];
    all.extend_from_slice(args);
    let Output { status, stdout, .. } = wren.bgpctl(&all);
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
    )
}

/// Waits until `bgpctl health` prints a line containing `text`; returns its status.
fn wait_for(wren: &Wren, text: &str) -> bool {
    let until = Instant::now() + WAIT;
    loop {
        let (ok, out) = health(wren, &[]);
        if out.contains(text) {
            return ok;
        }
        if Instant::now() > until {
            panic!(
                "bgpctl health never said {text:?} (last: {out:?})\n{}",
                wren.daemon.log_tail(30)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn health_says_alive_and_ready_only_when_it_is() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let netns = Netns::new("health").expect("namespace");
    // A neighbor that never answers, a restart time of 4 s, etcd on a closed port.
    let down = wren_config(
        "10.74.0.1",
        &Wren::socket_path(&netns),
        false,
        "[bgp.graceful_restart]\nrestart_time = 4\n\n\
         [[bgp.neighbor]]\naddress = \"10.74.0.2\"\nremote_asn = 65001\n\n\
         [ipam]\nnode = \"node-h\"\ndatastore = \"etcd://127.0.0.1:9\"\n",
    );
    let wren = Wren::start(&netns, &down);
    let (live, out) = health(&wren, &["--live"]);
    assert!(live, "--live failed: {out}");
    let (ready, out) = health(&wren, &[]);
    assert!(!ready, "ready before converging: {out}");
    assert!(out.contains("converged: no"), "{out}");
    // Converged by the restart time, still not ready: the datastore is down.
    assert!(!wait_for(&wren, "converged: yes"));
    let (ready, out) = health(&wren, &[]);
    assert!(!ready, "{out}");
    assert!(out.contains("datastore: unreachable"), "{out}");
    assert!(health(&wren, &["--live"]).0);
    let json = wren.bgpctl_json(&["health", "--live"]);
    assert_eq!(json["converged"], true, "{json}");
    assert!(json["datastore"]["unreachable"].is_string(), "{json}");
    drop(wren);

    // The same on a datastore that answers: ready.
    let up = down.replace(
        "etcd://127.0.0.1:9",
        &format!("sqlite://{}/ipam.db", netns.dir().display()),
    );
    let wren = Wren::start(&netns, &up);
    assert!(wait_for(&wren, "ready: yes"));
    let (_, out) = health(&wren, &[]);
    assert!(out.contains("datastore: reachable"), "{out}");
}
