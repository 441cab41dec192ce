//! Refused custom resources get a Warning Event (events.k8s.io/v1) in Kubernetes
//! (issue 14, bad input): bgpd as the DaemonSet runs it (the shipped manifests,
//! exactly the `wren-node` token, IPAM on the Kubernetes datastore, so it holds the
//! collector's Lease) posts one Event per refusal, whose `regarding` is the refused
//! object and whose `reason` is CamelCase: IPPools with a bad CIDR or overlapping
//! each other, a BGPPeer with both node and nodeSelector, one with a bad peerIP, a
//! BGPConfiguration with a bad community, and (from this node, its name in the note)
//! a BGPPeer whose secretKeyRef does not resolve. A change elsewhere and a restart of
//! bgpd post nothing again; an edit that is still refused gets its own Event. bgpd
//! keeps running and its file's pool keeps serving.
//!
//! One namespace: the control plane (etcd, kube-apiserver on its 127.0.0.1) and bgpd
//! as node `node-e` (NODENAME).

use std::collections::BTreeMap;
use std::time::Duration;

use lab::fixture::{Wren, kubectl_apply, wren_config};
use lab::kube::ControlPlane;
use lab::netns::Netns;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(40);
const NAMESPACE: &str = "wren-system";

fn object(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "wren.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec})
}

/// bgpd's Events: (kind, name, reason) -> the Events (as JSON).
fn events(control: &ControlPlane) -> BTreeMap<(String, String, String), Vec<Value>> {
    let text = control
        .kubectl(&["get", "events.v1.events.k8s.io", "-A", "-o", "json"])
        .expect("kubectl get events");
    let list: Value = serde_json::from_str(&text).expect("events JSON");
    let mut out: BTreeMap<_, Vec<Value>> = BTreeMap::new();
    for event in list["items"].as_array().cloned().unwrap_or_default() {
        if event["reportingController"] != "wren.io/bgpd" {
            continue;
        }
        let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        let key = (
            text(&event["regarding"]["kind"]),
            text(&event["regarding"]["name"]),
            text(&event["reason"]),
        );
        out.entry(key).or_default().push(event);
    }
    out
}

fn uid(control: &ControlPlane, resource: &str, name: &str) -> String {
    control
        .kubectl(&["get", resource, name, "-o", "jsonpath={.metadata.uid}"])
        .expect("uid")
}

#[test]
fn refused_resources_get_one_warning_event_each() {
    let Some(_ready) = lab::require!(Root, KubeApiserver) else {
        return;
    };
    let netns = Netns::new("clevent").expect("namespace");
    let control = ControlPlane::in_netns(&netns, "127.0.0.1".parse().expect("ip"))
        .expect("control plane in the namespace");
    control
        .apply_deploy()
        .expect("deploy/crds.yaml and deploy/wren.yaml");
    kubectl_apply(
        &control,
        &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-e"}}),
    );
    let token = control
        .service_account_kubeconfig(NAMESPACE, "wren-node")
        .expect("wren-node's kubeconfig");
    let config = wren_config(
        "10.73.0.1",
        &Wren::socket_path(&netns),
        false,
        &format!(
            "[ipam]\ndatastore = \"kubernetes://{token}\"\nnode_addresses = [\"10.73.0.1\"]\n\n\
             [[ipam.pool]]\ncidr = \"10.246.0.0/16\"\n\n\
             [kubernetes]\nkubeconfig = \"{token}\"\n",
            token = token.display()
        ),
    );
    let mut wren = Wren::start_with_env(&netns, &config, &[("NODENAME", "node-e")]);
    wren.wait_for(WAIT, "the collector's Lease held", || {
        wren.daemon
            .log()
            .contains("IPAM collector: holds the Lease")
            .then_some(())
    });
    // The file's pool, as the store wrote it: the shape of the bad ones.
    let good: Value = wren.wait_for(WAIT, "the file's IPPool", || {
        let text = control.kubectl(&["get", "ippools", "-o", "json"]).ok()?;
        let list: Value = serde_json::from_str(&text).ok()?;
        list["items"].as_array()?.first().cloned()
    });
    let pool = |cidr: &str| {
        let mut spec = good["spec"].clone();
        spec["cidr"] = cidr.into();
        spec
    };
    kubectl_apply(
        &control,
        &object("IPPool", "bad-cidr", pool("10.250.0.0/33")),
    );
    kubectl_apply(
        &control,
        &object("IPPool", "overlap-a", pool("10.96.0.0/16")),
    );
    kubectl_apply(
        &control,
        &object("IPPool", "overlap-b", pool("10.96.128.0/17")),
    );
    kubectl_apply(
        &control,
        &object(
            "BGPPeer",
            "both",
            json!({"node": "node-e", "nodeSelector": {}, "peerIP": "10.73.0.7", "asNumber": 65007}),
        ),
    );
    kubectl_apply(
        &control,
        &object(
            "BGPPeer",
            "bad-ip",
            json!({"peerIP": "10.73.0.300", "asNumber": 65008}),
        ),
    );
    kubectl_apply(
        &control,
        &object(
            "BGPPeer",
            "no-secret",
            json!({"peerIP": "10.73.0.9", "asNumber": 65009,
                   "password": {"secretKeyRef": {"name": "bgp", "key": "missing"}}}),
        ),
    );
    kubectl_apply(
        &control,
        &object(
            "BGPConfiguration",
            "default",
            json!({"communities": ["65536:1"]}),
        ),
    );

    let expected: Vec<(&str, &str, &str, &str)> = vec![
        (
            "BGPConfiguration",
            "default",
            "InvalidCommunity",
            "bgpconfiguration",
        ),
        ("BGPPeer", "bad-ip", "InvalidPeerIP", "bgppeer"),
        ("BGPPeer", "both", "BothNodeAndNodeSelector", "bgppeer"),
        ("BGPPeer", "no-secret", "SecretKeyNotFound", "bgppeer"),
        ("IPPool", "bad-cidr", "InvalidCIDR", "ippool"),
        ("IPPool", "overlap-a", "OverlappingPool", "ippool"),
        ("IPPool", "overlap-b", "OverlappingPool", "ippool"),
    ];
    let keys = |list: &[(&str, &str, &str, &str)]| -> Vec<(String, String, String)> {
        list.iter()
            .map(|(kind, name, reason, _)| (kind.to_string(), name.to_string(), reason.to_string()))
            .collect()
    };
    let posted = wren.wait_for(WAIT, "an Event for each refusal", || {
        let posted = events(&control);
        (posted.keys().cloned().collect::<Vec<_>>() == keys(&expected)).then_some(posted)
    });
    for (kind, name, reason, resource) in &expected {
        let key = (kind.to_string(), name.to_string(), reason.to_string());
        let list = &posted[&key];
        assert_eq!(list.len(), 1, "{key:?}: {list:?}");
        let event = &list[0];
        assert_eq!(event["type"], "Warning", "{event}");
        assert_eq!(event["reportingInstance"], "node-e", "{event}");
        assert_eq!(
            event["regarding"]["uid"].as_str(),
            Some(uid(&control, resource, name).as_str()),
            "{event}"
        );
        let note = event["note"].as_str().unwrap_or_default();
        assert!(!note.is_empty() && !note.contains('\n'), "{event}");
    }
    let note = |kind: &str, name: &str, reason: &str| {
        posted[&(kind.to_string(), name.to_string(), reason.to_string())][0]["note"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        note("BGPPeer", "both", "BothNodeAndNodeSelector"),
        "BGPPeer both: node and nodeSelector exclude each other"
    );
    assert_eq!(
        note("BGPPeer", "no-secret", "SecretKeyNotFound"),
        "node node-e: BGPPeer no-secret: Secret bgp has no key \"missing\": not peering"
    );
    assert_eq!(
        note("IPPool", "overlap-a", "OverlappingPool"),
        "IPPool overlap-a: pool 10.96.0.0/16 overlaps pool 10.96.128.0/17"
    );
    assert!(
        note("IPPool", "bad-cidr", "InvalidCIDR").contains("10.250.0.0/33"),
        "{}",
        note("IPPool", "bad-cidr", "InvalidCIDR")
    );

    // bgpd runs on, its own pool untouched: the refusals touched nothing else.
    assert!(wren.daemon.is_alive());
    wren.wait_for(WAIT, "bgpctl health: ready", || {
        wren.bgpctl(&["health"]).status.success().then_some(())
    });

    // A change elsewhere (the watches compute again), then a restart of bgpd (its
    // memory of what it posted is gone; it takes the Lease again): nothing new.
    control
        .kubectl(&["label", "node", "node-e", "wren.io/touched=yes"])
        .expect("label node-e");
    wren.daemon.restart().expect("bgpd restarted");
    wren.wait_for(WAIT, "the Lease held again", || {
        (wren
            .daemon
            .log()
            .matches("IPAM collector: holds the Lease")
            .count()
            >= 2)
            .then_some(())
    });
    // An edit still refused: a new generation, its own Event.
    control
        .kubectl(&[
            "patch",
            "bgppeer",
            "bad-ip",
            "--type=merge",
            "-p",
            r#"{"spec":{"peerIP":"10.73.0.301"}}"#,
        ])
        .expect("patch bad-ip");
    let posted = wren.wait_for(WAIT, "the edit's Event", || {
        let posted = events(&control);
        let key = ("BGPPeer".into(), "bad-ip".into(), "InvalidPeerIP".into());
        (posted.get(&key).map(Vec::len) == Some(2)).then_some(posted)
    });
    for (kind, name, reason, _) in &expected {
        let key = (kind.to_string(), name.to_string(), reason.to_string());
        let expected_count = if *name == "bad-ip" { 2 } else { 1 };
        assert_eq!(
            posted[&key].len(),
            expected_count,
            "{key:?}: {:?}",
            posted[&key]
        );
    }
    let log = wren.daemon.log();
    assert!(
        !log.contains("posting the Event") && !log.contains("writing the status of"),
        "a post failed:\n{}",
        wren.daemon.log_tail(40)
    );
    assert!(wren.daemon.is_alive());
}
