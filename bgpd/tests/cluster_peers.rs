//! bgpd against a real API server (`[kubernetes]`, issue 14): BGPPeer resources
//! become sessions on the nodes they select, a changed holdTime resets only that
//! session, `bfd` brings a BFD session Up with the peer (its multiplier as given)
//! without a reset, a malformed BGPPeer is refused in its status and a Warning Event
//! without touching the others,
//! and after its first convergence bgpd sets its Node's NetworkUnavailable=False
//! (reason WrenIsUp), as kubectl shows.
//!
//! Namespace a: the control plane (etcd, kube-apiserver on its 127.0.0.1) and bgpd,
//! node `node-a` (NODENAME) labelled rack=1. Namespace b: a second bgpd, AS 65001,
//! peering with a's two addresses from its file.

use std::time::Duration;

use cluster::resources::{BgpConfiguration, BgpPeer};
use kube::CustomResourceExt;
use lab::fixture::{Wren, apply_crds, kubectl_apply, pair, peer_of_a, wren_config};
use lab::kube::ControlPlane;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn peer(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "wren.io/v1alpha1", "kind": "BGPPeer", "metadata": {"name": name}, "spec": spec})
}

/// Merges `patch` into the BGPPeer `tor`.
fn patch_tor(control: &ControlPlane, patch: &str) {
    control
        .kubectl(&["patch", "bgppeer", "tor", "--type=merge", "-p", patch])
        .expect("patch tor");
}

/// `show neighbor ADDR --json` of bgpd.
fn neighbor(wren: &Wren, address: &str) -> Value {
    wren.bgpctl_json(&["show", "neighbor", address])
}

fn established_count(wren: &Wren, address: &str) -> u64 {
    neighbor(wren, address)["detail"]["established_count"]
        .as_u64()
        .unwrap_or_else(|| panic!("no established_count: {}", neighbor(wren, address)))
}

#[test]
fn bgp_peers_follow_the_resources_and_the_node_becomes_available() {
    let Some(_ready) = lab::require!(Root, KubeApiserver) else {
        return;
    };
    let pair = pair("clpeer", "10.71.0", "fd00:71");
    let control = ControlPlane::in_netns(&pair.a, "127.0.0.1".parse().expect("ip"))
        .expect("control plane in namespace a");
    apply_crds(&control, &[BgpPeer::crd(), BgpConfiguration::crd()]);
    kubectl_apply(
        &control,
        &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a", "labels": {"rack": "1"}}}),
    );
    let peers = [("tor", "10.71.0.2"), ("tor6", "fd00:71::2")];
    for (name, address) in peers {
        kubectl_apply(
            &control,
            &peer(
                name,
                json!({"nodeSelector": {"matchLabels": {"rack": "1"}}, "peerIP": address,
                                "asNumber": 65001, "holdTime": 30}),
            ),
        );
    }
    // Selects another rack only: never a session here.
    kubectl_apply(
        &control,
        &peer(
            "rack2",
            json!({"nodeSelector": {"matchLabels": {"rack": "2"}}, "peerIP": "10.71.0.9", "asNumber": 65009}),
        ),
    );

    let b = peer_of_a(&pair, "10.71.0", "fd00:71");
    let config = wren_config(
        "10.71.0.1",
        &Wren::socket_path(&pair.a),
        false,
        &format!(
            "[kubernetes]\nkubeconfig = \"{}\"\n",
            control.kubeconfig().display()
        ),
    );
    let a = Wren::start_with_env(&pair.a, &config, &[("NODENAME", "node-a")]);
    a.wait_established(&["10.71.0.2", "fd00:71::2"]);
    b.wait_established(&["10.71.0.1", "fd00:71::1"]);
    assert!(
        a.neighbor("10.71.0.9").is_none(),
        "rack2's peer is not for node-a"
    );
    for (_, address) in peers {
        assert_eq!(neighbor(&a, address)["detail"]["timers"]["hold_time"], 30);
    }

    // NetworkUnavailable=False, reason WrenIsUp, as kubectl sees it.
    let condition = a.wait_for(WAIT, "NetworkUnavailable=False on node-a", || {
        let text = control
            .kubectl(&[
                "get",
                "node",
                "node-a",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"NetworkUnavailable\")].status} {.status.conditions[?(@.type==\"NetworkUnavailable\")].reason}",
            ])
            .ok()?;
        (text.trim() == "False WrenIsUp").then_some(text)
    });
    assert_eq!(condition.trim(), "False WrenIsUp");

    // holdTime of tor changes: its session resets with the new hold time, tor6's
    // stays up untouched.
    let before = (
        established_count(&a, "10.71.0.2"),
        established_count(&a, "fd00:71::2"),
    );
    patch_tor(&control, r#"{"spec":{"holdTime":60}}"#);
    a.wait_for(WAIT, "tor's hold time 60", || {
        (neighbor(&a, "10.71.0.2")["detail"]["timers"]["hold_time"] == 60).then_some(())
    });
    a.wait_established(&["10.71.0.2"]);
    a.wait_for(WAIT, "tor's session re-established", || {
        (established_count(&a, "10.71.0.2") > before.0).then_some(())
    });
    assert_eq!(
        established_count(&a, "fd00:71::2"),
        before.1,
        "tor6 was reset"
    );

    // bfd on tor (multiplier 5, FRR's other defaults), and on b's side from its
    // file: the BFD session comes Up on both sides, without a BGP reset.
    let count = established_count(&a, "10.71.0.2");
    patch_tor(&control, r#"{"spec":{"bfd":{"multiplier":5}}}"#);
    let b_config = std::fs::read_to_string(&b.config_path)
        .expect("b's config")
        .replacen(
            "remote_asn = 64512\n",
            "remote_asn = 64512\nbfd = true\n",
            1,
        );
    std::fs::write(&b.config_path, b_config).expect("b's config");
    b.bgpctl_json(&["reload"]);
    for (wren, peer) in [(&a, "10.71.0.2"), (&b, "10.71.0.1")] {
        wren.wait_for(WAIT, &format!("BFD with {peer} Up"), || {
            wren.bgpctl_json(&["show", "bfd"])
                .as_array()?
                .iter()
                .find(|session| session["peer"] == peer && session["state"] == "Up")
                .cloned()
        });
    }
    // b detects with a's multiplier: 5 × 300 ms.
    let session = b.wait_for(WAIT, "b's detection time from a's multiplier 5", || {
        b.bgpctl_json(&["show", "bfd"])
            .as_array()?
            .iter()
            .find(|session| session["detection_time_ms"] == 1500)
            .cloned()
    });
    assert_eq!(session["peer"], "10.71.0.1", "{session}");
    assert_eq!(established_count(&a, "10.71.0.2"), count);

    // A BGPPeer with both node and nodeSelector is refused in its status; nothing
    // else moves.
    let before = (
        established_count(&a, "10.71.0.2"),
        established_count(&a, "fd00:71::2"),
    );
    kubectl_apply(
        &control,
        &peer(
            "bad",
            json!({"node": "node-a", "nodeSelector": {}, "peerIP": "10.71.0.7", "asNumber": 65007}),
        ),
    );
    let message = a.wait_for(WAIT, "bad BGPPeer refused in its status", || {
        let text = control
            .kubectl(&[
                "get",
                "bgppeer",
                "bad",
                "-o",
                "jsonpath={.status.conditions[0].status} {.status.conditions[0].message}",
            ])
            .ok()?;
        text.starts_with("False ").then_some(text)
    });
    assert!(
        message.contains("node and nodeSelector exclude each other"),
        "{message}"
    );
    assert!(a.neighbor("10.71.0.7").is_none());
    // Its Warning Event, once (no Lease without [ipam]: this node posts it).
    let reasons = a.wait_for(WAIT, "bad BGPPeer's Event", || {
        let text = control
            .kubectl(&[
                "get",
                "events.v1.events.k8s.io",
                "-n",
                "default",
                "--field-selector",
                "regarding.name=bad",
                "-o",
                "jsonpath={range .items[*]}{.type} {.reason} {.regarding.kind}{\"\\n\"}{end}",
            ])
            .ok()?;
        (!text.trim().is_empty()).then_some(text)
    });
    assert_eq!(reasons.trim(), "Warning BothNodeAndNodeSelector BGPPeer");
    assert_eq!(
        (
            established_count(&a, "10.71.0.2"),
            established_count(&a, "fd00:71::2")
        ),
        before
    );

    // Deleting tor6 removes its session.
    control
        .kubectl(&["delete", "bgppeer", "tor6"])
        .expect("delete tor6");
    a.wait_for(WAIT, "tor6 removed", || {
        a.neighbor("fd00:71::2").is_none().then_some(())
    });
    assert_eq!(established_count(&a, "10.71.0.2"), before.0);
}
