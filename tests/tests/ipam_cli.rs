//! bgpctl's IPAM commands without a running bgpd (`--datastore URL` on an SQLite
//! file): pools added, listed and deleted; usage, one address and the audit (exit 1
//! when it finds problems); releasing an address and a node. Bad input (a datastore
//! that is down or unknown, a bad or overlapping pool, an address that is not
//! allocated, no bgpd, an IPIP pool) gives one line on stderr and exit 1, never a
//! panic. VXLAN pools are added and listed, and a node's tunnel address is shown
//! with its handle. The last
//! test runs bgpd with its datastore down (needs root; skips otherwise, fails with
//! WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use ipam::{Datastore, Family};
use lab::fixture::{Wren, wren_config};
use serde_json::Value;

/// A control socket with no bgpd behind it.
const NO_BGPD: &str = "/nonexistent/wren-test/bgpd.sock";

/// bgpctl with `args` then `--datastore url`, and no bgpd behind the socket.
fn bgpctl(url: &str, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--datastore", url]);
    lab::fixture::bgpctl(Path::new(NO_BGPD), &all)
}

/// Stdout of a command that must succeed.
fn ok(url: &str, args: &[&str]) -> String {
    let output = bgpctl(url, args);
    assert!(
        output.status.success(),
        "bgpctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn json(url: &str, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(url, &all)).unwrap()
}

/// The one stderr line of a command that must fail with exit status 1.
fn refused(output: Output) -> String {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("bgpctl: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("ipam.db").display())
}

#[test]
fn commands_work_on_a_datastore_without_bgpd() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());

    // Pools: add, list, refuse an overlap, bad sizes and CIDRs.
    let added = ok(
        &url,
        &["ipam", "pool", "add", "10.244.0.0/24", "--block-size", "28"],
    );
    assert_eq!(added, "pool 10.244.0.0/24 added (blocks /28)\n");
    ok(
        &url,
        &[
            "ipam",
            "pool",
            "add",
            "fd00:244::/64",
            "--node-selector",
            "zone=a",
        ],
    );
    let pools = json(&url, &["ipam", "pool", "list"]);
    let pools = pools.as_array().unwrap();
    assert_eq!(pools.len(), 2, "{pools:?}");
    assert_eq!(pools[0]["cidr"], "10.244.0.0/24");
    assert_eq!(pools[0]["blockSize"], 28);
    assert_eq!(pools[1]["blockSize"], 122);
    let list = ok(&url, &["ipam", "pool", "list"]);
    assert!(
        list.contains("10.244.0.0/24") && list.contains("zone=a"),
        "{list}"
    );
    let overlap = refused(bgpctl(&url, &["ipam", "pool", "add", "10.244.0.128/25"]));
    assert!(overlap.contains("10.244.0.0/24"), "{overlap}");
    let size = refused(bgpctl(
        &url,
        &["ipam", "pool", "add", "10.245.0.0/16", "--block-size", "40"],
    ));
    assert!(size.contains("40"), "{size}");
    refused(bgpctl(&url, &["ipam", "pool", "add", "10.245.0.300/16"]));
    refused(bgpctl(
        &url,
        &[
            "ipam",
            "pool",
            "add",
            "10.245.0.0/16",
            "--node-selector",
            "zone",
        ],
    ));

    // Allocations made with the ipam crate, as wren-ipam would.
    let addresses = runtime().block_on(async {
        let ipam = ipam::connect(&url).await.unwrap();
        let one = ipam
            .assign("node-x", "pod-1", Family::Ipv4, 1)
            .await
            .unwrap();
        let two = ipam
            .assign("node-x", "pod-2", Family::Ipv4, 1)
            .await
            .unwrap();
        [one[0].address.to_string(), two[0].address.to_string()]
    });

    // Usage: pools and blocks with counts; the table with --blocks.
    let usage = json(&url, &["show", "ipam"]);
    assert_eq!(usage["pools"][0]["cidr"], "10.244.0.0/24", "{usage}");
    assert_eq!(usage["pools"][0]["total"], 256, "{usage}");
    assert_eq!(usage["pools"][0]["in_use"], 2, "{usage}");
    assert_eq!(usage["pools"][0]["free"], 254, "{usage}");
    let block = &usage["blocks"][0];
    assert_eq!(block["node"], "node-x", "{usage}");
    assert_eq!(
        (block["total"].clone(), block["in_use"].clone()),
        (16.into(), 2.into())
    );
    let table = ok(&url, &["show", "ipam", "--blocks"]);
    let header = table.lines().find(|l| l.contains("GROUPING")).unwrap();
    for column in ["GROUPING", "CIDR", "IPS TOTAL", "IPS IN USE", "IPS FREE"] {
        assert!(header.contains(column), "{table}");
    }
    assert!(
        table.contains("IP Pool") && table.contains("Block"),
        "{table}"
    );
    assert!(table.contains(block["cidr"].as_str().unwrap()), "{table}");
    let without_blocks = ok(&url, &["show", "ipam"]);
    assert!(!without_blocks.contains("Block"), "{without_blocks}");

    // One address.
    let info = json(&url, &["show", "ipam", "--ip", &addresses[0]]);
    assert_eq!(info["handle"], "pod-1", "{info}");
    assert_eq!(info["node"], "node-x", "{info}");
    assert_eq!(info["block"], block["cidr"], "{info}");
    let text = ok(&url, &["show", "ipam", "--ip", &addresses[0]]);
    assert!(text.contains("pod-1") && text.contains("node-x"), "{text}");
    let free = ok(&url, &["show", "ipam", "--ip", "10.244.0.250"]);
    assert!(free.contains("not allocated"), "{free}");

    // The audit: clean (exit 0), then a leaked address (its handle record lost).
    let clean = ok(&url, &["ipam", "check"]);
    assert!(clean.contains("found 0 problems"), "{clean}");
    runtime().block_on(async {
        let ipam = ipam::connect(&url).await.unwrap();
        let mut txn = ipam::store::Txn::new();
        txn.delete(ipam::keys::handle("pod-2"), ipam::store::Expect::Any);
        ipam.store().commit(txn).await.unwrap();
    });
    let check = bgpctl(&url, &["--json", "ipam", "check"]);
    assert_eq!(check.status.code(), Some(1), "{check:?}");
    let report: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(report["problems"], 1, "{report}");
    assert_eq!(report["items"].as_array().unwrap().len(), 1, "{report}");
    let check = bgpctl(&url, &["ipam", "check"]);
    assert_eq!(check.status.code(), Some(1), "{check:?}");
    assert!(String::from_utf8_lossy(&check.stdout).contains("found 1 problem"));

    // Repair by releasing the leaked address; a second release is refused.
    let released = json(&url, &["ipam", "release", "--ip", &addresses[1]]);
    assert_eq!(released["address"], addresses[1].as_str(), "{released}");
    ok(&url, &["ipam", "check"]);
    refused(bgpctl(&url, &["ipam", "release", "--ip", &addresses[1]]));

    // Deleting the node releases the rest; then the pool can go.
    refused(bgpctl(&url, &["ipam", "pool", "delete", "10.244.0.0/24"]));
    let node = json(&url, &["ipam", "release-node", "node-x"]);
    assert_eq!(node["node"], "node-x", "{node}");
    assert_eq!(node["addresses_released"], 1, "{node}");
    refused(bgpctl(&url, &["ipam", "release-node", "bad name/x"]));
    ok(&url, &["ipam", "pool", "delete", "10.244.0.0/24"]);
    let pools = json(&url, &["ipam", "pool", "list"]);
    assert_eq!(pools.as_array().unwrap().len(), 1, "{pools}");
    ok(&url, &["ipam", "check"]);
}

#[test]
fn vxlan_pools_and_the_tunnel_address_through_bgpctl() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let added = json(
        &url,
        &[
            "ipam",
            "pool",
            "add",
            "10.244.0.0/16",
            "--vxlan-mode",
            "cross_subnet",
            "--vxlan-vni",
            "7",
        ],
    );
    assert_eq!(added["vxlanMode"], "cross_subnet", "{added}");
    assert_eq!(
        (added["vxlanVni"].clone(), added["vxlanPort"].clone()),
        (7.into(), 4789.into()),
        "{added}"
    );
    let list = ok(&url, &["ipam", "pool", "list"]);
    assert!(list.contains("cross_subnet (vni 7, port 4789)"), "{list}");
    // IPIP is refused, not recorded; so are a bad VNI and a bad mode.
    let ipip = refused(bgpctl(
        &url,
        &[
            "ipam",
            "pool",
            "add",
            "10.245.0.0/16",
            "--ipip-mode",
            "always",
        ],
    ));
    assert!(ipip.contains("IPIP (tunl0) is not supported"), "{ipip}");
    let vni = refused(bgpctl(
        &url,
        &["ipam", "pool", "add", "10.245.0.0/16", "--vxlan-vni", "0"],
    ));
    assert!(vni.contains("vxlan_vni 0 is outside 1-16777215"), "{vni}");
    let add_with_mode = |mode: &str| {
        bgpctl(
            &url,
            &["ipam", "pool", "add", "10.245.0.0/16", "--vxlan-mode", mode],
        )
    };
    let mode = add_with_mode("sometimes");
    assert!(!mode.status.success());
    let stderr = String::from_utf8_lossy(&mode.stderr);
    assert!(
        stderr.contains("not one of always, cross_subnet, never"),
        "{stderr}"
    );
    // A second IPv4 VXLAN pool must take the first one's VNI and port.
    let other = refused(add_with_mode("always"));
    assert!(
        other.contains(
            "pool 10.245.0.0/16: vxlan_vni 4096 and vxlan_port 4789 differ from VXLAN pool 10.244.0.0/16's 7 and 4789: one VXLAN device serves every IPv4 pool"
        ),
        "{other}"
    );
    assert_eq!(
        json(&url, &["ipam", "pool", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The tunnel address bgpd takes is shown with its handle.
    let vtep = runtime().block_on(async {
        let ipam = ipam::connect(&url).await.unwrap();
        ipam.ensure_vtep("node-x", Family::Ipv4)
            .await
            .unwrap()
            .unwrap()
    });
    let address = vtep.tunnel_address.to_string();
    let info = json(&url, &["show", "ipam", "--ip", &address]);
    assert_eq!(info["handle"], "wren-vxlan-tunnel.node-x.ipv4", "{info}");
    assert_eq!(info["node"], "node-x", "{info}");
    let text = ok(&url, &["show", "ipam", "--ip", &address]);
    assert!(
        text.contains("Handle:      wren-vxlan-tunnel.node-x.ipv4"),
        "{text}"
    );
}

#[test]
fn bad_datastores_and_no_bgpd_give_one_line() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 (discard) of the loopback.
    let down = refused(bgpctl("etcd://127.0.0.1:9", &["show", "ipam"]));
    assert!(down.contains("127.0.0.1:9"), "{down}");
    let unknown = refused(bgpctl("mysql://db/ipam", &["ipam", "check"]));
    assert!(unknown.contains("mysql://db/ipam"), "{unknown}");
    // A path under a regular file cannot be created.
    std::fs::write(dir.path().join("file"), "").unwrap();
    let missing = format!("sqlite://{}/file/ipam.db", dir.path().display());
    let missing = refused(bgpctl(&missing, &["ipam", "pool", "list"]));
    assert!(missing.contains("file/ipam.db"), "{missing}");
    // Without --datastore and without bgpd: the hint.
    let hint = refused(lab::fixture::bgpctl(Path::new(NO_BGPD), &["show", "ipam"]));
    assert!(hint.contains("--datastore"), "{hint}");
}

#[test]
fn bgpd_with_its_datastore_down_stays_up_and_says_so_in_one_line() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let netns = lab::Netns::new("wi-dd").unwrap();
    netns.lo_up().unwrap();
    let socket = Wren::socket_path(&netns);
    let wren = Wren::start(
        &netns,
        &wren_config(
            "10.75.0.1",
            &socket,
            false,
            "[ipam]\nnode = \"node-down\"\ndatastore = \"etcd://127.0.0.1:9\"\n[[ipam.pool]]\ncidr = \"10.244.0.0/16\"\n",
        ),
    );
    wren.daemon
        .wait_log(lab::TIMEOUT, "no IPAM block is advertised yet")
        .unwrap();
    let output = wren.bgpctl(&["show", "ipam"]);
    let stderr = refused(output);
    assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
    let output = wren.bgpctl(&["ipam", "check"]);
    refused(output);
    assert!(wren.daemon.is_alive());
    // bgpd's other commands are unaffected.
    wren.bgpctl_ok(&["show", "neighbors"]);
}
