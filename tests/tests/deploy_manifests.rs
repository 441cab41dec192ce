//! The shipped manifests (deploy/) against a real kube-apiserver: every manifest passes
//! `kubectl apply --dry-run=server` and then applies, and the service accounts' roles
//! are least privilege: what bgpd and the CNI plugins need is allowed, with their own
//! tokens, and what they do not need (deleting a Pod, reading Secrets elsewhere,
//! tokens of other accounts) is refused.
//! Needs root and the built API server (fails with WREN_REQUIRE_LAB=1).
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::{Path, PathBuf};

use lab::kube::ControlPlane;

const NAMESPACE: &str = "wren-system";

fn manifest(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(name)
}

fn apply(control_plane: &ControlPlane, file: &Path, dry_run: bool) {
    let file = file.to_str().unwrap();
    let mut args = vec!["apply", "-f", file];
    if dry_run {
        args.push("--dry-run=server");
    }
    if let Err(error) = control_plane.kubectl(&args) {
        panic!("kubectl {}: {error}", args.join(" "));
    }
}

/// `kubectl ARGS` as `kubeconfig`'s user: `Ok` or the error text.
fn try_as(
    control_plane: &ControlPlane,
    kubeconfig: &Path,
    args: &[&str],
) -> Result<String, String> {
    control_plane
        .kubectl_as(kubeconfig, args)
        .map_err(|e| e.to_string())
}

#[track_caller]
fn allowed(control_plane: &ControlPlane, kubeconfig: &Path, args: &[&str]) {
    if let Err(error) = try_as(control_plane, kubeconfig, args) {
        panic!("kubectl {} was refused: {error}", args.join(" "));
    }
}

#[track_caller]
fn forbidden(control_plane: &ControlPlane, kubeconfig: &Path, args: &[&str]) {
    match try_as(control_plane, kubeconfig, args) {
        Ok(out) => panic!("kubectl {} was allowed: {out}", args.join(" ")),
        Err(error) => assert!(
            error.contains("Forbidden") || error.contains("forbidden"),
            "kubectl {}: {error}",
            args.join(" ")
        ),
    }
}

#[test]
fn manifests_apply_and_roles_are_least_privilege() {
    let Some(_ready) = lab::require!(Root, KubeApiserver) else {
        return;
    };
    let control_plane = ControlPlane::on_host().unwrap();
    let wren = manifest("wren.yaml");
    // Namespaced objects cannot be dry-run before their namespace exists.
    control_plane
        .kubectl(&["create", "namespace", NAMESPACE])
        .unwrap();
    apply(&control_plane, &wren, true);
    apply(&control_plane, &wren, false);

    // A Pod and a Node to act on, as the kubelet and a user would make them.
    control_plane
        .kubectl_input(
            &["apply", "-f", "-"],
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-a\n",
        )
        .unwrap();
    control_plane
        .kubectl_input(
            &["apply", "-f", "-"],
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  namespace: default\nspec:\n  containers:\n  - name: app\n    image: app\n",
        )
        .unwrap();
    control_plane
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "elsewhere",
            "--from-literal=a=b",
        ])
        .unwrap();

    let node = control_plane
        .service_account_kubeconfig(NAMESPACE, "wren-node")
        .unwrap();
    let node = node.as_path();
    allowed(&control_plane, node, &["get", "nodes"]);
    allowed(
        &control_plane,
        node,
        &[
            "annotate",
            "node",
            "node-a",
            "wren.io/ipv4-address=192.0.2.1",
        ],
    );
    allowed(&control_plane, node, &["get", "pods", "--all-namespaces"]);
    allowed(
        &control_plane,
        node,
        &["-n", NAMESPACE, "create", "token", "wren-cni"],
    );
    // The collector's Lease (kube-lease-manager: server-side apply), asked as the
    // account itself: create any, then only get, update and patch that one; never list.
    let lease = |verb: &str, resource: &str| {
        try_as(
            &control_plane,
            node,
            &["-n", NAMESPACE, "auth", "can-i", verb, resource],
        )
        .is_ok()
    };
    assert!(lease("create", "leases.coordination.k8s.io"));
    for verb in ["get", "update", "patch"] {
        assert!(
            lease(verb, "leases.coordination.k8s.io/wren-ipam-collector"),
            "{verb}"
        );
        assert!(
            !lease(verb, "leases.coordination.k8s.io/another-lease"),
            "{verb}"
        );
    }
    forbidden(&control_plane, node, &["-n", NAMESPACE, "get", "leases"]);
    forbidden(&control_plane, node, &["delete", "pod", "app"]);
    forbidden(&control_plane, node, &["delete", "node", "node-a"]);
    forbidden(&control_plane, node, &["get", "secret", "elsewhere"]);
    forbidden(
        &control_plane,
        node,
        &["-n", NAMESPACE, "create", "token", "wren-node"],
    );
    forbidden(
        &control_plane,
        node,
        &["-n", NAMESPACE, "create", "serviceaccount", "extra"],
    );

    let cni = control_plane
        .service_account_kubeconfig(NAMESPACE, "wren-cni")
        .unwrap();
    let cni = cni.as_path();
    allowed(&control_plane, cni, &["get", "node", "node-a"]);
    forbidden(
        &control_plane,
        cni,
        &["annotate", "node", "node-a", "wren.io/asn=64512"],
    );
    forbidden(&control_plane, cni, &["get", "pods"]);
    forbidden(
        &control_plane,
        cni,
        &["-n", NAMESPACE, "create", "token", "wren-cni"],
    );
}
