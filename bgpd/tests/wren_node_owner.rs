//! The `WrenNode` goes away with its Node (issue 14, part 4): bgpd creates its WrenNode
//! owned by its Node (ownerReference with the Node's uid), and when the Node is deleted
//! Kubernetes' garbage collector deletes the WrenNode, as in a real cluster. The control
//! plane is a real kube-apiserver with kube-controller-manager running its garbage
//! collector alone (`ControlPlane::start_garbage_collector`); bgpd does not bring the
//! WrenNode back without its Node (it cannot own it) and keeps running.

use std::time::{Duration, Instant};

use lab::Netns;
use lab::fixture::{Wren, wren_config};
use lab::kube::ControlPlane;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const NODE: &str = "node-owned";

/// The WrenNode's metadata, when it exists.
fn wren_node(control: &ControlPlane) -> Option<Value> {
    let text = control
        .kubectl(&["get", "wrennode", NODE, "-o", "json", "--ignore-not-found"])
        .ok()?;
    serde_json::from_str(&text).ok()
}

/// Waits until `probe` returns `Some` (lab's poll), or panics naming `what` with the logs.
fn wait<T>(wren: &Wren, control: &ControlPlane, what: &str, probe: impl Fn() -> Option<T>) -> T {
    lab::wait_for(WAIT, what, || probe().ok_or("not yet")).unwrap_or_else(|error| {
        let manager = control.controller_manager().map(|d| d.log_tail(30));
        panic!(
            "{error}\nbgpd:\n{}\nkube-controller-manager:\n{}",
            wren.daemon.log_tail(30),
            manager.unwrap_or_default()
        )
    })
}

#[test]
fn wren_node_goes_with_its_node() {
    let Some(_ready) = lab::require!(Root, KubeControllerManager) else {
        return;
    };
    let netns = Netns::new("wnown").expect("namespace");
    netns
        .ip(&["addr", "add", "10.73.0.1/32", "dev", "lo"])
        .expect("an address");
    let mut control =
        ControlPlane::in_netns(&netns, "127.0.0.1".parse().expect("ip")).expect("control plane");
    // The shipped CRDs and deploy/wren.yaml (its wren-system namespace holds the
    // collector's Lease).
    control.apply_deploy().expect("deploy/ applied");
    control
        .start_garbage_collector()
        .expect("kube-controller-manager's garbage collector");
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}});
    control
        .kubectl_input(&["apply", "-f", "-"], &node.to_string())
        .expect("the Node");
    let node_uid = control
        .kubectl(&["get", "node", NODE, "-o", "jsonpath={.metadata.uid}"])
        .expect("the Node's uid");
    let config = wren_config(
        "10.73.0.1",
        &Wren::socket_path(&netns),
        false,
        &format!(
            "[kubernetes]\nkubeconfig = \"{}\"\n\
             [ipam]\ndatastore = \"sqlite://{}/ipam.db\"\nnode_addresses = [\"10.73.0.1\"]\n\
             [[ipam.pool]]\ncidr = \"10.244.0.0/16\"\n",
            control.kubeconfig().display(),
            netns.dir().display()
        ),
    );
    let wren = Wren::start_with_env(&netns, &config, &[("NODENAME", NODE)]);

    // bgpd's WrenNode, owned by the Node.
    let object = wait(&wren, &control, "bgpd's WrenNode with its status", || {
        wren_node(&control).filter(|object| !object["status"].is_null())
    });
    let owner = &object["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Node", "{object}");
    assert_eq!(owner["uid"], node_uid.trim(), "{object}");

    // The Node goes: the garbage collector deletes the WrenNode.
    let deleted = Instant::now();
    control
        .kubectl(&["delete", "node", NODE])
        .expect("deleting the Node");
    wait(
        &wren,
        &control,
        "the WrenNode deleted with its Node",
        || wren_node(&control).is_none().then_some(()),
    );
    eprintln!(
        "WrenNode {NODE} deleted by the garbage collector {:?} after its Node",
        deleted.elapsed()
    );
    // bgpd cannot make it again without its owner, and keeps running: three of its
    // status write intervals (5 s) later the WrenNode is still gone.
    std::thread::sleep(Duration::from_secs(16));
    assert!(
        wren_node(&control).is_none(),
        "the WrenNode came back without its Node"
    );
    assert!(
        wren.daemon.is_alive(),
        "bgpd exited:\n{}",
        wren.daemon.log_tail(30)
    );
}
