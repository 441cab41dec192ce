//! bgpd's status where operators look, and the IPAM collector inside bgpd, against a
//! real API server (`[kubernetes]` with `[ipam]`, issue 14 parts 4 and 5):
//! - bgpd creates its `WrenNode`, owned by its Node, and writes Ready, its peers and
//!   its blocks, as `kubectl get wrennodes` prints them;
//! - at steady state it writes nothing (the object's resourceVersion stays);
//! - a peer going down reaches the status within seconds;
//! - `BGPConfiguration` `communities` are attached to the node's block routes;
//! - `address_detection = "kubernetes-internal-ip"` registers the Node's InternalIPs;
//! - the collector bgpd runs (elected by its Lease) releases a node IPAM knows and
//!   the cluster does not.
//!
//! Namespace a: the control plane and bgpd `node-a` (IPAM on SQLite). Namespace b: a
//! second bgpd peering with a over IPv4 and IPv6.

use std::time::Duration;

use ipam::{AnyStore, Family, Ipam};
use lab::fixture::{Wren, apply_crds, kubectl_apply, pair, peer_of_a, wren_config};
use lab::kube::ControlPlane;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(40);

/// `node-a`'s WrenNode as JSON, when it exists.
fn wren_node(control: &ControlPlane) -> Option<Value> {
    let text = control
        .kubectl(&["get", "wrennode", "node-a", "-o", "json"])
        .ok()?;
    serde_json::from_str(&text).ok()
}

fn ready(object: &Value) -> Option<&str> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?["status"]
        .as_str()
}

#[test]
fn wren_node_status_and_the_collector() {
    let Some(_ready) = lab::require!(Root, KubeApiserver) else {
        return;
    };
    let pair = pair("clstat", "10.72.0", "fd00:72");
    let control = ControlPlane::in_netns(&pair.a, "127.0.0.1".parse().expect("ip"))
        .expect("control plane in namespace a");
    apply_crds(&control, &cluster::crds());
    kubectl_apply(
        &control,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "wren-system"}}),
    );
    kubectl_apply(
        &control,
        &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}}),
    );
    // The kubelet's addresses, for address_detection = "kubernetes-internal-ip".
    control
        .kubectl(&[
            "patch",
            "node",
            "node-a",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"addresses":[{"type":"Hostname","address":"node-a"},{"type":"InternalIP","address":"fd00:72::1"},{"type":"InternalIP","address":"10.72.0.1"}]}}"#,
        ])
        .expect("node-a's addresses");

    // A node IPAM knows, with a block and a pod, and no Node object: a leak.
    let datastore = format!("sqlite://{}/ipam.db", pair.a.dir().display());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let store: Ipam<AnyStore> = runtime.block_on(async {
        let store = ipam::connect(&datastore).await.expect("datastore");
        store
            .add_pool(ipam::Pool::new("10.244.0.0/16".parse().expect("cidr")))
            .await
            .expect("pool");
        store
            .register_node(&ipam::Node {
                name: String::from("node-gone"),
                addresses: vec![],
                asn: 64512,
                labels: Default::default(),
                vteps: Default::default(),
            })
            .await
            .expect("register node-gone");
        store
            .assign("node-gone", "pod-gone", Family::Ipv4, 1)
            .await
            .expect("a pod on node-gone");
        store
    });

    let b = peer_of_a(&pair, "10.72.0", "fd00:72");
    let config = wren_config(
        "10.72.0.1",
        &Wren::socket_path(&pair.a),
        false,
        &format!(
            "[[bgp.neighbor]]\naddress = \"10.72.0.2\"\nremote_asn = 65001\n\
             [[bgp.neighbor]]\naddress = \"fd00:72::2\"\nremote_asn = 65001\n\
             [kubernetes]\nkubeconfig = \"{}\"\n\
             [ipam]\ndatastore = \"{datastore}\"\naddress_detection = \"kubernetes-internal-ip\"\n",
            control.kubeconfig().display()
        ),
    );
    let a = Wren::start_with_env(&pair.a, &config, &[("NODENAME", "node-a")]);
    a.wait_established(&["10.72.0.2", "fd00:72::2"]);

    // The WrenNode: owned by the Node, Ready, both peers up, the node's block.
    let node_uid = control
        .kubectl(&["get", "node", "node-a", "-o", "jsonpath={.metadata.uid}"])
        .expect("node uid");
    let object = a.wait_for(WAIT, "WrenNode node-a Ready with 2 peers up", || {
        let object = wren_node(&control)?;
        (ready(&object) == Some("True") && object["status"]["peersUp"] == 2).then_some(object)
    });
    let owner = &object["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Node", "{object}");
    assert_eq!(owner["name"], "node-a", "{object}");
    assert_eq!(owner["uid"], node_uid.trim(), "{object}");
    assert_eq!(object["spec"]["node"], "node-a");
    assert_eq!(object["status"]["asn"], 64512);
    assert_eq!(object["status"]["blockCount"], 1, "{object}");
    let block = object["status"]["blocks"][0].as_str().expect("a block");
    let owned = runtime
        .block_on(store.node_allocations("node-a"))
        .expect("node-a's allocations");
    assert_eq!(
        owned
            .blocks
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec![block.to_owned()]
    );
    // kubernetes-internal-ip: the registered addresses are the Node's InternalIPs.
    let registered = runtime.block_on(store.nodes()).expect("registry");
    let node_a = registered
        .iter()
        .find(|n| n.name == "node-a")
        .expect("node-a registered");
    assert_eq!(
        node_a.addresses,
        vec![
            "10.72.0.1".parse::<std::net::IpAddr>().expect("ip"),
            "fd00:72::1".parse().expect("ip")
        ]
    );
    let peers = object["status"]["peers"].as_array().expect("peers");
    assert_eq!(peers.len(), 2, "{object}");
    for peer in peers {
        assert_eq!(peer["state"], "Established", "{peer}");
        assert_eq!(peer["asn"], 65001, "{peer}");
        assert!(peer["lastChange"].is_string(), "{peer}");
    }
    let table = control
        .kubectl(&["get", "wrennodes"])
        .expect("kubectl get wrennodes");
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME", "NODE", "ASN", "PEERS", "UP", "BLOCKS", "READY", "AGE"
        ],
        "{table}"
    );
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..6],
        ["node-a", "node-a", "64512", "2", "1", "True"],
        "{table}"
    );

    // BGPConfiguration communities reach the block's route, as b receives it.
    kubectl_apply(
        &control,
        &json!({"apiVersion": "wren.io/v1alpha1", "kind": "BGPConfiguration",
                "metadata": {"name": "default"}, "spec": {"communities": ["64512:100"]}}),
    );
    a.wait_for(
        WAIT,
        "the block's route with community 64512:100 at b",
        || {
            let routes = b.bgpctl_json(&["show", "routes"]);
            let route = routes
                .as_array()?
                .iter()
                .find(|r| r["prefix"] == block)?
                .clone();
            (route["communities"] == json!(["64512:100"])).then_some(())
        },
    );

    // Steady state: nothing is written (three write intervals).
    let version = |object: &Value| {
        object["metadata"]["resourceVersion"]
            .as_str()
            .map(String::from)
    };
    let before = version(&wren_node(&control).expect("WrenNode"));
    std::thread::sleep(Duration::from_secs(16));
    let after = version(&wren_node(&control).expect("WrenNode"));
    assert_eq!(before, after, "bgpd wrote its status with nothing changed");

    // The collector (bgpd holds its Lease: the only candidate) releases node-gone.
    a.wait_for(WAIT, "node-gone released by the collector", || {
        let nodes = runtime.block_on(store.nodes()).ok()?;
        (!nodes.iter().any(|n| n.name == "node-gone")).then_some(())
    });
    let report = runtime.block_on(store.check()).expect("ipam check");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(
        runtime
            .block_on(store.node_allocations("node-a"))
            .expect("node-a")
            .blocks
            .len(),
        1,
        "the live node keeps its block"
    );

    // A peer goes down: the status follows within seconds.
    drop(b);
    a.wait_for(WAIT, "peersUp 0 in the WrenNode", || {
        let object = wren_node(&control)?;
        (object["status"]["peersUp"] == 0).then_some(())
    });
}
