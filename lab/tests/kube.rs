//! The control plane fixture against the real kube-apiserver (scripts/kube-apiserver) and
//! etcd: it starts, kubectl works with the administrator's kubeconfig, a service account's
//! token is bound by RBAC (refused until a role allows it), and the API server comes back
//! after SIGKILL with the objects it had.
//! Needs root, etcd, kubectl and the built API server (fails with WREN_REQUIRE_LAB=1).
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::{IpAddr, Ipv4Addr};

use lab::kube::ControlPlane;
use lab::{Netns, Veth, unique_name};

#[test]
fn api_server_serves_kubectl_with_rbac_and_survives_a_restart() {
    let Some(_ready) = lab::require!(Root, KubeApiserver) else {
        return;
    };
    let mut control_plane = ControlPlane::on_host().unwrap();
    let version = control_plane.kubectl(&["version", "-o", "json"]).unwrap();
    let version: serde_json::Value = serde_json::from_str(&version).unwrap();
    assert_eq!(
        version["serverVersion"]["gitVersion"].as_str(),
        lab::kube::kubernetes_version(),
        "{version}"
    );

    let namespace = unique_name("wren-ns");
    control_plane
        .kubectl(&["create", "namespace", &namespace])
        .unwrap();
    control_plane
        .kubectl(&["-n", &namespace, "create", "serviceaccount", "reader"])
        .unwrap();
    let reader = control_plane
        .service_account_kubeconfig(&namespace, "reader")
        .unwrap();

    // RBAC is on: a service account with no binding may not list pods...
    let refused = control_plane
        .kubectl_as(&reader, &["-n", &namespace, "get", "pods"])
        .unwrap_err()
        .to_string();
    assert!(refused.contains("Forbidden"), "{refused}");
    // ...and may once a role allows it, and nothing more.
    control_plane
        .kubectl(&[
            "-n",
            &namespace,
            "create",
            "role",
            "pod-reader",
            "--verb=get,list",
            "--resource=pods",
        ])
        .unwrap();
    control_plane
        .kubectl(&[
            "-n",
            &namespace,
            "create",
            "rolebinding",
            "pod-reader",
            "--role=pod-reader",
            &format!("--serviceaccount={namespace}:reader"),
        ])
        .unwrap();
    lab::wait_until(lab::TIMEOUT, "the role binding to take effect", || {
        control_plane
            .kubectl_as(&reader, &["-n", &namespace, "get", "pods"])
            .is_ok()
    })
    .unwrap();
    let refused = control_plane
        .kubectl_as(
            &reader,
            &["-n", &namespace, "delete", "serviceaccount", "reader"],
        )
        .unwrap_err()
        .to_string();
    assert!(refused.contains("Forbidden"), "{refused}");

    // SIGKILL and restart: the objects are in etcd and come back.
    control_plane.kill_apiserver().unwrap();
    assert!(!control_plane.is_ready());
    control_plane.restart_apiserver().unwrap();
    let accounts = control_plane
        .kubectl(&[
            "-n",
            &namespace,
            "get",
            "serviceaccount",
            "reader",
            "-o",
            "name",
        ])
        .unwrap();
    assert_eq!(accounts.trim(), "serviceaccount/reader");
}

#[test]
fn api_server_in_a_namespace_is_reached_from_another() {
    let Some(_ready) = lab::require!(Root, KubeApiserver) else {
        return;
    };
    let server = Netns::new("wren-kube-cp").unwrap();
    let client = Netns::new("wren-kube-client").unwrap();
    let _veth = Veth::new(&server, "eth1", &client, "eth1").unwrap();
    server.lo_up().unwrap();
    client.lo_up().unwrap();
    server.iface("eth1").addr("10.77.0.1/30").unwrap();
    client.iface("eth1").addr("10.77.0.2/30").unwrap();
    let control_plane =
        ControlPlane::in_netns(&server, IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1))).unwrap();
    assert_eq!(control_plane.url().split(':').nth(1), Some("//10.77.0.1"));
    let mut command = client.command(control_plane.kubectl_path());
    command
        .arg("--kubeconfig")
        .arg(control_plane.kubeconfig())
        .args(["get", "namespaces", "-o", "name"]);
    let namespaces = lab::run_command(&mut command).unwrap();
    assert!(namespaces.contains("namespace/kube-system"), "{namespaces}");
}

#[test]
fn topology_kube_apiserver_node_serves_the_management_network() {
    let Some(_ready) = lab::require!(Root, KubeApiserver) else {
        return;
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/topologies");
    let topology = lab::Topology::load(&dir.join("kube.clab.yml")).unwrap();
    let lab = topology.deploy().unwrap();
    let client = lab.netns("client").unwrap();
    let kubectl = lab::kube::kubectl_binary().unwrap();
    let mut command = client.command(&kubectl);
    command
        .arg("--kubeconfig")
        .arg(dir.join("kube/admin.kubeconfig"))
        .args(["get", "namespaces", "-o", "name"]);
    let namespaces = lab::run_command(&mut command).unwrap();
    assert!(namespaces.contains("namespace/kube-system"), "{namespaces}");
    // The static token file bound into the node is the one in force: a wrong token is
    // refused.
    let mut command = client.command(&kubectl);
    command.args([
        "--server=https://172.31.7.101:6443",
        "--insecure-skip-tls-verify=true",
        "--token=not-the-token",
        "get",
        "namespaces",
    ]);
    let refused = lab::run_command(&mut command).unwrap_err().to_string();
    assert!(refused.contains("Unauthorized"), "{refused}");
}
