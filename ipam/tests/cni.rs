//! The `wren-ipam` binary as a runtime runs it: ADD, CHECK, DEL, VERSION, its errors,
//! the pod (`CNI_ARGS`) named in the handle's record and the node taken from
//! `NODENAME`, 200 concurrent ADDs from separate processes (one node on SQLite, three nodes on
//! etcd), and processes killed with SIGKILL in the middle of a block claim.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::Child;
use std::time::Duration;

use ipam::store::Datastore;
use ipam::{Family, Ipam, Pool};
use lab::cni::{CniInvocation, CniOutput, NO_NETNS, plugin_command, wren_ipam_config};
use serde_json::Value;

const PLUGIN: &str = env!("CARGO_BIN_EXE_wren-ipam");

fn netconf(datastore: &str, node: &str) -> String {
    wren_ipam_config(datastore, node, None)
}

fn spawn(command: &str, container: &str, stdin: &str, extra: &[(&str, &str)]) -> Child {
    let mut plugin = plugin_command(PLUGIN);
    plugin.envs(extra.iter().copied());
    CniInvocation::new(command, container, NO_NETNS)
        .spawn(plugin, stdin.as_bytes())
        .unwrap()
}

/// Runs the plugin; returns (success, stdout as JSON or Null when empty).
fn plugin(command: &str, container: &str, stdin: &str) -> (bool, Value) {
    finish(spawn(command, container, stdin, &[]))
}

fn finish(child: Child) -> (bool, Value) {
    let output = CniOutput::wait(child).unwrap();
    (output.success, output.json().unwrap())
}

fn address_of(result: &Value) -> String {
    result["ips"][0]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

async fn with_pool<S: Datastore>(store: S, cidr: &str) -> Ipam<S> {
    let ipam = Ipam::new(store);
    ipam.add_pool(Pool::new(cidr.parse().unwrap()))
        .await
        .unwrap();
    ipam
}

#[test]
fn version() {
    let (ok, json) = plugin("VERSION", "", r#"{"cniVersion":"0.4.0"}"#);
    assert!(ok);
    assert_eq!(json["cniVersion"], "0.4.0");
    let versions: Vec<&str> = json["supportedVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(versions.contains(&"1.0.0") && versions.contains(&"0.3.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_check_del() {
    let (store, guard) = support::sqlite().await.unwrap();
    let ipam = with_pool(store, "10.244.0.0/16").await;
    ipam.add_pool(Pool::new("fd00:10:244::/56".parse().unwrap()))
        .await
        .unwrap();
    let conf = netconf(&guard.url, "node-a");
    let (ok, first) = tokio::task::block_in_place(|| plugin("ADD", "c1", &conf));
    assert!(ok, "{first}");
    assert_eq!(first["cniVersion"], "1.0.0");
    let ips = first["ips"].as_array().unwrap();
    assert_eq!(ips.len(), 2, "{first}");
    assert!(
        ips[0]["address"].as_str().unwrap().ends_with("/16"),
        "{first}"
    );
    assert!(
        ips[1]["address"].as_str().unwrap().ends_with("/56"),
        "{first}"
    );
    assert_eq!(first["routes"][0]["dst"], "0.0.0.0/0");
    assert_eq!(first["routes"][0]["gw"], ips[0]["gateway"]);
    assert_eq!(first["routes"][1]["dst"], "::/0");
    // The address comes from node-a's block; the gateway is node-a's own address.
    let address: std::net::IpAddr = address_of(&first).parse().unwrap();
    let info = ipam.address_info(address).await.unwrap().unwrap();
    assert_eq!(
        (info.handle.as_str(), info.node.as_deref()),
        ("c1.eth0", Some("node-a"))
    );
    let gateway: std::net::IpAddr = ips[0]["gateway"].as_str().unwrap().parse().unwrap();
    let gw_info = ipam.address_info(gateway).await.unwrap().unwrap();
    assert_eq!(gw_info.handle, "wren-gateway.node-a.ipv4");
    assert_eq!(gw_info.block, info.block);

    // ADD again: the same addresses.
    let (ok, again) = tokio::task::block_in_place(|| plugin("ADD", "c1", &conf));
    assert!(ok);
    assert_eq!(again, first);
    // CHECK with the previous result.
    let mut check_conf: Value = serde_json::from_str(&conf).unwrap();
    check_conf["prevResult"] = first.clone();
    let (ok, out) = tokio::task::block_in_place(|| plugin("CHECK", "c1", &check_conf.to_string()));
    assert!(ok, "{out}");
    // A second container, then DEL of the first.
    let (ok, second) = tokio::task::block_in_place(|| plugin("ADD", "c2", &conf));
    assert!(ok);
    assert_ne!(address_of(&second), address_of(&first));
    let (ok, out) = tokio::task::block_in_place(|| plugin("DEL", "c1", &conf));
    assert!(ok && out.is_null(), "{out}");
    assert!(ipam.addresses_of("c1.eth0").await.unwrap().is_empty());
    let (ok, out) = tokio::task::block_in_place(|| plugin("CHECK", "c1", &check_conf.to_string()));
    assert!(!ok);
    assert_eq!(out["code"], 101, "{out}");
    // DEL is idempotent.
    let (ok, _) = tokio::task::block_in_place(|| plugin("DEL", "c1", &conf));
    assert!(ok);
    // A 0.4.0 configuration gets a 0.4.0 result.
    let old = conf.replace("\"1.0.0\"", "\"0.4.0\"");
    let (ok, legacy) = tokio::task::block_in_place(|| plugin("ADD", "c3", &old));
    assert!(ok);
    assert_eq!(legacy["cniVersion"], "0.4.0");
    assert_eq!(legacy["ips"][0]["version"], "4");
    assert!(ipam.check().await.unwrap().is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pod_is_recorded_and_the_node_comes_from_nodename() {
    let (store, guard) = support::sqlite().await.unwrap();
    let ipam = with_pool(store, "10.244.0.0/16").await;
    // No ipam.node: NODENAME names the node, as the DaemonSet's downward API does.
    let mut conf: Value = serde_json::from_str(&netconf(&guard.url, "unused")).unwrap();
    conf["ipam"].as_object_mut().unwrap().remove("node");
    let conf = conf.to_string();
    let args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=cart-7f9c;K8S_POD_UID=0d1e-42;K8S_POD_INFRA_CONTAINER_ID=p1";
    let env = [("CNI_ARGS", args), ("NODENAME", "node-n")];
    let (ok, added) = tokio::task::block_in_place(|| finish(spawn("ADD", "p1", &conf, &env)));
    assert!(ok, "{added}");
    let address: std::net::IpAddr = address_of(&added).parse().unwrap();
    let info = ipam.address_info(address).await.unwrap().unwrap();
    assert_eq!(info.node.as_deref(), Some("node-n"));
    let records = ipam.snapshot().await.unwrap().handles;
    let pod = |handle: &str| {
        records
            .iter()
            .find(|r| r.value.handle == handle)
            .map(|r| r.value.pod.clone())
    };
    assert_eq!(
        pod("p1.eth0"),
        Some(Some(ipam::PodReference {
            namespace: "shop".into(),
            name: "cart-7f9c".into(),
            uid: Some("0d1e-42".into()),
        }))
    );
    // The node's gateway is no pod's.
    assert_eq!(pod("wren-gateway.node-n.ipv4"), Some(None));

    // Without K8S_POD_UID the name alone is recorded; without the pod, nothing.
    let env = [
        ("CNI_ARGS", "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=cart-2"),
        ("NODENAME", "node-n"),
    ];
    let (ok, out) = tokio::task::block_in_place(|| finish(spawn("ADD", "p2", &conf, &env)));
    assert!(ok, "{out}");
    let (ok, out) = tokio::task::block_in_place(|| {
        finish(spawn("ADD", "p3", &conf, &[("NODENAME", "node-n")]))
    });
    assert!(ok, "{out}");
    let records = ipam.snapshot().await.unwrap().handles;
    let p2 = records
        .iter()
        .find(|r| r.value.handle == "p2.eth0")
        .unwrap();
    assert_eq!(
        p2.value
            .pod
            .as_ref()
            .map(|p| (p.name.as_str(), p.uid.clone())),
        Some(("cart-2", None))
    );
    let p3 = records
        .iter()
        .find(|r| r.value.handle == "p3.eth0")
        .unwrap();
    assert_eq!(p3.value.pod, None);

    // Bad inputs: one line each, naming what is wrong; nothing assigned.
    for (env, code, words) in [
        (
            vec![("CNI_ARGS", "K8S_POD_NAME=cart"), ("NODENAME", "node-n")],
            4,
            "K8S_POD_NAMESPACE",
        ),
        (
            vec![
                ("CNI_ARGS", "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=../x"),
                ("NODENAME", "node-n"),
            ],
            4,
            "pod name",
        ),
        (
            vec![("CNI_ARGS", "K8S_POD_NAMESPACE"), ("NODENAME", "node-n")],
            4,
            "KEY=VALUE",
        ),
        (vec![("NODENAME", "Node_N")], 7, "NODENAME"),
    ] {
        let (ok, out) = tokio::task::block_in_place(|| finish(spawn("ADD", "bad", &conf, &env)));
        assert!(!ok, "{out}");
        assert_eq!(out["code"], code, "{out}");
        let message = out["msg"].as_str().unwrap_or_default().to_owned()
            + out["details"].as_str().unwrap_or_default();
        assert!(message.contains(words) && !message.contains('\n'), "{out}");
    }
    assert!(ipam.addresses_of("bad.eth0").await.unwrap().is_empty());
    assert!(ipam.check().await.unwrap().is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_cni_error_objects() {
    let (store, guard) = support::sqlite().await.unwrap();
    let conf = netconf(&guard.url, "node-a");
    let cases: Vec<(&str, String, &str, u64, &str)> = vec![
        (
            "ADD",
            "{not json".to_string(),
            "c",
            6,
            "network configuration on stdin",
        ),
        (
            "ADD",
            conf.replace("\"node\"", "\"nodes\""),
            "c",
            7,
            "unknown field `nodes`",
        ),
        (
            "ADD",
            conf.replace("\"1.0.0\"", "\"9.9.9\""),
            "c",
            1,
            "cniVersion \"9.9.9\" is not supported",
        ),
        (
            "ADD",
            conf.replace("\"wren-ipam\"", "\"host-local\""),
            "c",
            7,
            "ipam type is \"host-local\"",
        ),
        ("ADD", conf.clone(), "", 4, "CNI_CONTAINERID is not set"),
        (
            "ADD",
            conf.clone(),
            "c",
            100,
            "no enabled IPv4 pool selects node node-a",
        ),
        (
            "ADD",
            netconf("sqlite:///proc/wren-ipam-test/ipam.db", "node-a"),
            "c",
            11,
            "datastore sqlite:///proc/wren-ipam-test/ipam.db is unavailable",
        ),
        (
            "ADD",
            netconf("etcd://127.0.0.1:1", "node-a"),
            "c",
            11,
            "datastore etcd://127.0.0.1:1 is unavailable",
        ),
        (
            "ADD",
            netconf("redis://x", "node-a"),
            "c",
            7,
            "datastore URL \"redis://x\" is not valid",
        ),
    ];
    for (command, stdin, container, code, needle) in cases {
        let (ok, out) = tokio::task::block_in_place(|| plugin(command, container, &stdin));
        assert!(!ok, "{stdin}: {out}");
        assert_eq!(out["code"], code, "{stdin}: {out}");
        assert!(
            out["msg"].as_str().unwrap().contains(needle),
            "{stdin}: {out}"
        );
        assert!(out["cniVersion"].is_string());
    }
    // Exhausted: a /32 pool holds the gateway and nothing for a pod.
    let ipam = Ipam::new(store);
    let mut tiny = Pool::new("10.9.9.9/32".parse().unwrap());
    tiny.block_size = 32;
    ipam.add_pool(tiny).await.unwrap();
    let (ok, out) = tokio::task::block_in_place(|| plugin("ADD", "c", &conf));
    assert!(!ok);
    assert_eq!(out["code"], 100, "{out}");
    assert!(out["msg"].as_str().unwrap().contains("exhausted"), "{out}");
    assert!(ipam.addresses_of("c.eth0").await.unwrap().is_empty());
    assert!(ipam.check().await.unwrap().is_clean());
}

/// Starts `count` ADDs at once, node `i % nodes`, and returns their addresses.
fn concurrent_adds(url: &str, count: usize, nodes: usize) -> Vec<String> {
    let children: Vec<Child> = (0..count)
        .map(|i| {
            spawn(
                "ADD",
                &format!("pod{i}"),
                &netconf(url, &format!("node-{}", i % nodes)),
                &[],
            )
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let (ok, json) = finish(child);
            assert!(ok, "{json}");
            address_of(&json)
        })
        .collect()
}

async fn assert_distinct_and_clean<S: Datastore>(
    ipam: &Ipam<S>,
    addresses: &[String],
    nodes: usize,
) {
    let distinct: HashSet<&String> = addresses.iter().collect();
    assert_eq!(distinct.len(), addresses.len());
    for i in 0..addresses.len() {
        assert_eq!(
            ipam.addresses_of(&format!("pod{i}.eth0"))
                .await
                .unwrap()
                .len(),
            1
        );
    }
    for n in 0..nodes {
        let gateway = ipam::cni::gateway_handle(&format!("node-{n}"), Family::Ipv4);
        assert_eq!(
            ipam.addresses_of(&gateway).await.unwrap().len(),
            1,
            "one gateway per node"
        );
    }
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{}", report.render());
    assert_eq!(report.addresses, addresses.len() + nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_adds_one_node_sqlite() {
    let (store, guard) = support::sqlite().await.unwrap();
    let ipam = with_pool(store, "10.244.0.0/16").await;
    let url = guard.url.clone();
    let addresses = tokio::task::spawn_blocking(move || concurrent_adds(&url, 200, 1))
        .await
        .unwrap();
    assert_distinct_and_clean(&ipam, &addresses, 1).await;
    // 201 addresses in /26 blocks: the node holds 4 blocks; processes that found
    // every block full at the same moment may each have claimed one more.
    let blocks = ipam.node_allocations("node-0").await.unwrap().blocks.len();
    assert!((4..=8).contains(&blocks), "{blocks} blocks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_adds_three_nodes_etcd() {
    let Some((store, guard)) = support::etcd().await else {
        return;
    };
    let ipam = with_pool(store, "10.244.0.0/16").await;
    let url = guard.url.clone();
    let addresses = tokio::task::spawn_blocking(move || concurrent_adds(&url, 200, 3))
        .await
        .unwrap();
    assert_distinct_and_clean(&ipam, &addresses, 3).await;
    // Each node's pods are in that node's blocks.
    for (i, address) in addresses.iter().enumerate() {
        let info = ipam
            .address_info(address.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            info.node.as_deref(),
            Some(format!("node-{}", i % 3).as_str())
        );
    }
}

/// Starts an ADD that stops between the two phases of its block claim, waits until it
/// is there, and kills it with SIGKILL.
fn kill_mid_claim(url: &str, container: &str) {
    let mut child = spawn(
        "ADD",
        container,
        &netconf(url, "node-k"),
        &[(ipam::FAILPOINT_ENV, "claim-pending")],
    );
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("failpoint claim-pending reached"), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
}

async fn killed_mid_claim_then_repaired<S: Datastore>(ipam: Ipam<S>, url: String) {
    let url2 = url.clone();
    tokio::task::spawn_blocking(move || kill_mid_claim(&url2, "victim"))
        .await
        .unwrap();
    let report = ipam.check().await.unwrap();
    assert_eq!(report.problems, 1, "{}", report.render());
    assert_eq!(
        report.counts.get(&ipam::ProblemKind::AffinityWithoutBlock),
        Some(&1)
    );
    // The next ADD on that node completes the claim and uses the block.
    let (ok, json) =
        tokio::task::block_in_place(|| plugin("ADD", "next", &netconf(&url, "node-k")));
    assert!(ok, "{json}");
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{}", report.render());
    assert_eq!(
        ipam.node_allocations("node-k").await.unwrap().blocks.len(),
        1
    );
    assert!(ipam.addresses_of("victim.eth0").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_claim_sqlite() {
    let (store, guard) = support::sqlite().await.unwrap();
    let ipam = with_pool(store, "10.244.0.0/16").await;
    killed_mid_claim_then_repaired(ipam, guard.url.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_claim_etcd() {
    let Some((store, guard)) = support::etcd().await else {
        return;
    };
    let ipam = with_pool(store, "10.244.0.0/16").await;
    killed_mid_claim_then_repaired(ipam, guard.url.clone()).await;
}

/// Processes killed at arbitrary points while 60 ADDs race: once the runtime has done
/// what the CNI specification asks after a failed ADD (a DEL of that container), and
/// one more ADD per node, the store checks clean. (An assignment killed between its
/// two writes leaves its address listed in the handle's record; the handle's next
/// operation, here the DEL, repairs it: see ipam's handles.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_sqlite() {
    let (store, guard) = support::sqlite().await.unwrap();
    let ipam = with_pool(store, "10.244.0.0/22").await;
    let url = guard.url.clone();
    tokio::task::spawn_blocking(move || {
        let mut children: Vec<Child> = (0..60)
            .map(|i| {
                spawn(
                    "ADD",
                    &format!("k{i}"),
                    &netconf(&url, &format!("node-{}", i % 2)),
                    &[],
                )
            })
            .collect();
        for (i, child) in children.iter_mut().enumerate() {
            std::thread::sleep(Duration::from_micros(300 * (i as u64 % 7)));
            if i % 2 == 0 {
                let _ = child.kill();
            }
        }
        for (i, child) in children.into_iter().enumerate() {
            let succeeded = child.wait_with_output().is_ok_and(|o| o.status.success());
            if !succeeded {
                let (ok, json) = plugin(
                    "DEL",
                    &format!("k{i}"),
                    &netconf(&url, &format!("node-{}", i % 2)),
                );
                assert!(ok, "{json}");
            }
        }
        for node in ["node-0", "node-1"] {
            let (ok, json) = plugin("ADD", &format!("after-{node}"), &netconf(&url, node));
            assert!(ok, "{json}");
        }
    })
    .await
    .unwrap();
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{}", report.render());
}
