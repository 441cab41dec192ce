//! bgpd with `[ipam]` on etcd when etcd goes away (SIGKILL) and comes back: the
//! node's block stays blackholed and in the RIB, bgpd logs an error line naming the
//! datastore (again only when the error changes, not at each attempt), answers
//! `bgpctl show ipam` with one line naming it, and once etcd is back it reconnects by
//! itself (same block, commands work again). Needs root and
//! etcd (skips otherwise; fails with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used)]

use lab::TIMEOUT;
use lab::fixture::{Wren, kernel_route, wren_config};
use lab::{Etcd, Netns};
use wren_tests::ipam_node::{ipam_section, is_blackhole};

#[test]
fn blocks_stay_while_etcd_is_down_and_bgpd_reconnects() {
    let Some(_ready) = lab::require!(Root, Etcd) else {
        return;
    };
    let netns = Netns::new("wi-ed").unwrap();
    netns.lo_up().unwrap();
    let mut etcd = Etcd::in_netns(&netns, "127.0.0.1".parse().unwrap()).unwrap();
    let url = etcd.endpoint().replace("http://", "etcd://");
    let socket = Wren::socket_path(&netns);
    let wren = Wren::start(
        &netns,
        &wren_config(
            "10.76.0.1",
            &socket,
            true,
            &ipam_section(
                "node-e",
                &url,
                &["10.76.0.1"],
                "[[ipam.pool]]\ncidr = \"10.244.0.0/24\"\n",
            ),
        ),
    );
    let block = wren
        .daemon
        .wait_for(TIMEOUT, "the node's block", || {
            let usage = wren.bgpctl_json(&["show", "ipam"]);
            usage["blocks"][0]["cidr"]
                .as_str()
                .map(String::from)
                .ok_or_else(|| usage.to_string())
        })
        .unwrap();
    wren.daemon
        .wait_until(TIMEOUT, &format!("the blackhole of {block}"), || {
            kernel_route(&netns, &block).is_some_and(|r| is_blackhole(&r))
        })
        .unwrap();

    etcd.kill().unwrap();
    wren.daemon
        .wait_log(TIMEOUT, "the last known blocks stay advertised")
        .unwrap();
    let output = wren.bgpctl(&["show", "ipam"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&url), "{stderr}");
    // Several attempts to connect again (logged at debug).
    wren.daemon
        .wait_until(TIMEOUT, "three attempts to reconnect", || {
            wren.daemon
                .log()
                .matches("ipam: connecting to the datastore again")
                .count()
                >= 3
        })
        .unwrap();
    // Still blackholed and originated while the datastore is away.
    assert!(is_blackhole(&kernel_route(&netns, &block).unwrap()));
    assert!(!wren.paths(&block).is_empty());
    assert!(wren.daemon.is_alive());

    etcd.restart().unwrap();
    wren.daemon
        .wait_log(TIMEOUT, "datastore reachable again")
        .unwrap();
    let usage = wren.bgpctl_json(&["show", "ipam"]);
    let blocks = usage["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 1, "{usage}");
    assert_eq!(blocks[0]["cidr"], block.as_str(), "{usage}");
    assert_eq!(blocks[0]["node"], "node-e", "{usage}");
    let check = wren.bgpctl_json(&["ipam", "check"]);
    assert_eq!(check["problems"], 0, "{check}");
    // Error lines name the datastore and are not repeated for each attempt: a line
    // only when the error changes (the broken stream, then the refused connection).
    let log = wren.daemon.log();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("ipam:"))
        .map(|l| l.split_once("ipam: ").map_or(l, |(_, message)| message))
        .collect();
    assert!(!errors.is_empty(), "{log}");
    assert!(errors.iter().all(|e| e.contains(&url)), "{errors:#?}");
    assert!(
        errors.windows(2).all(|pair| pair[0] != pair[1]),
        "{errors:#?}"
    );
}
