//! The init container's installer (`wren-install`) against a real kube-apiserver with
//! the shipped manifests: run with `wren-node`'s token into temporary plugin and config
//! directories, it installs `wren` and `wren-ipam`, the plugins' kubeconfig (a
//! `wren-cni` token) and the conflist, and nothing else. The installed `wren-ipam`,
//! run as a runtime runs it with the conflist's network, assigns and releases a pod's
//! address on the Kubernetes datastore with that token, while the token is refused what
//! the plugins do not need. A second run (an upgrade) replaces everything in place.
//! Needs root and the built API server (fails with WREN_REQUIRE_LAB=1); run
//! `cargo build -p cluster -p ipam --bins` first.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use lab::cni::{CniInvocation, NO_NETNS, plugin_command};
use lab::kube::ControlPlane;
use serde_json::{Value, json};

const NAMESPACE: &str = "wren-system";
const NODE: &str = "node-install";
const POOL: &str = "10.251.0.0/16";

fn install(source: &Path, bin: &Path, net: &Path, kubeconfig: &Path) {
    let output = Command::new(lab::fixture::wren_binary("wren-install"))
        .arg("--source-dir")
        .arg(source)
        .arg("--bin-dir")
        .arg(bin)
        .arg("--net-dir")
        .arg(net)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--node", NODE, "--token-lifetime-seconds", "600"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "wren-install failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The network config a runtime hands the conflist's one plugin.
fn network(conflist: &Value) -> Vec<u8> {
    let mut plugin = conflist["plugins"][0].clone();
    plugin["cniVersion"] = conflist["cniVersion"].clone();
    plugin["name"] = conflist["name"].clone();
    plugin.to_string().into_bytes()
}

fn ipam(bin: &Path, verb: &str, container: &str, config: &[u8]) -> lab::cni::CniOutput {
    CniInvocation::new(verb, container, NO_NETNS)
        .path(vec![bin.to_owned()])
        .run(plugin_command(bin.join("wren-ipam")), config)
        .unwrap()
}

fn can(control_plane: &ControlPlane, kubeconfig: &Path, args: &[&str]) -> bool {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    control_plane.kubectl_as(kubeconfig, &all).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_installer_sets_up_a_node_whose_plugins_work_with_their_token() {
    let Some(_ready) = lab::require!(Root, KubeApiserver) else {
        return;
    };
    let control_plane = ControlPlane::on_host().unwrap();
    control_plane.apply_deploy().unwrap();
    control_plane
        .kubectl_input(
            &["apply", "-f", "-"],
            &format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {NODE}\n"),
        )
        .unwrap();
    let admin_store = format!("kubernetes://{}", control_plane.kubeconfig().display());
    let admin = ipam::connect(&admin_store).await.unwrap();
    admin
        .add_pool(ipam::Pool::new(POOL.parse().unwrap()))
        .await
        .unwrap();

    // The init container runs as wren-node; the image's plugins are the target dir's.
    let node = control_plane
        .service_account_kubeconfig(NAMESPACE, "wren-node")
        .unwrap();
    let source: PathBuf = lab::fixture::wren_binary("wren-ipam")
        .parent()
        .unwrap()
        .to_owned();
    lab::fixture::wren_binary("wren");
    let host = tempfile::tempdir().unwrap();
    let bin = host.path().join("opt/cni/bin");
    let net = host.path().join("etc/cni/net.d");
    install(&source, &bin, &net, &node);

    assert_eq!(names_in(&bin), ["wren", "wren-ipam"]);
    for plugin in ["wren", "wren-ipam"] {
        assert_eq!(mode(&bin.join(plugin)), 0o755, "{plugin}");
        assert_eq!(
            std::fs::metadata(bin.join(plugin)).unwrap().len(),
            std::fs::metadata(source.join(plugin)).unwrap().len(),
            "{plugin}"
        );
    }
    assert_eq!(names_in(&net), ["10-wren.conflist", "wren-kubeconfig"]);
    let kubeconfig = net.join("wren-kubeconfig");
    assert_eq!(mode(&kubeconfig), 0o600);
    let conflist: Value =
        serde_json::from_str(&std::fs::read_to_string(net.join("10-wren.conflist")).unwrap())
            .unwrap();
    assert_eq!(conflist["plugins"][0]["type"], "wren");
    assert_eq!(
        conflist["plugins"][0]["ipam"],
        json!({
            "type": "wren-ipam",
            "datastore": format!("kubernetes://{}", kubeconfig.display()),
            "node": NODE,
        })
    );

    // The installed wren-ipam with the conflist's network: ADD then DEL of one pod.
    let config = network(&conflist);
    let added = ipam(&bin, "ADD", "pod-one", &config);
    assert!(added.success, "ADD: {}", added.text());
    let result = added.json().unwrap();
    let address = result["ips"][0]["address"].as_str().unwrap().to_owned();
    let pool: ipnet::IpNet = POOL.parse().unwrap();
    let ip: std::net::IpAddr = address.split('/').next().unwrap().parse().unwrap();
    assert!(pool.contains(&ip), "{address} is outside {POOL}");
    let blocks = control_plane
        .kubectl(&["get", "ipamblocks.wren.io", "-o", "name"])
        .unwrap();
    assert_eq!(blocks.lines().count(), 1, "{blocks}");
    let deleted = ipam(&bin, "DEL", "pod-one", &config);
    assert!(deleted.success, "DEL: {}", deleted.text());
    let handles = admin.snapshot().await.unwrap();
    assert!(
        handles.handles.is_empty(),
        "handles left after DEL: {:?}",
        handles.handles
    );
    let report = admin.check().await.unwrap();
    assert!(report.is_clean(), "{report:?}");

    // What the plugins' token is refused.
    assert_eq!(
        control_plane.user_of(&kubeconfig).unwrap(),
        "system:serviceaccount:wren-system:wren-cni"
    );
    assert!(can(
        &control_plane,
        &kubeconfig,
        &["delete", "ipamhandles.wren.io"]
    ));
    for refused in [
        ["create", "ippools.wren.io"].as_slice(),
        &["delete", "ipamconfigs.wren.io"],
        &["get", "pods", "--all-namespaces"],
        &["patch", "nodes"],
        &["delete", "nodes"],
        &["-n", NAMESPACE, "get", "secrets"],
        &[
            "-n",
            NAMESPACE,
            "create",
            "serviceaccounts",
            "--subresource=token",
        ],
        &["create", "bgppeers.wren.io"],
        &["patch", "ipamblocks.wren.io"],
        &["watch", "ippools.wren.io"],
    ] {
        assert!(
            !can(&control_plane, &kubeconfig, refused),
            "wren-cni may {}",
            refused.join(" ")
        );
    }

    // An upgrade: the same run again replaces every file in place.
    let old_token = std::fs::read_to_string(&kubeconfig).unwrap();
    install(&source, &bin, &net, &node);
    assert_eq!(names_in(&bin), ["wren", "wren-ipam"]);
    assert_eq!(names_in(&net), ["10-wren.conflist", "wren-kubeconfig"]);
    assert_ne!(std::fs::read_to_string(&kubeconfig).unwrap(), old_token);
    let again = ipam(&bin, "ADD", "pod-two", &config);
    assert!(again.success, "ADD after the upgrade: {}", again.text());
}
