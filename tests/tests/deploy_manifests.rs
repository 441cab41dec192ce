//! The shipped manifests (deploy/) against a real kube-apiserver: every manifest passes
//! `kubectl apply --dry-run=server` and then applies, and the service accounts' roles
//! are least privilege: what bgpd and the CNI plugins need is allowed, with their own
//! tokens, and what they do not need (deleting a Pod, reading Secrets elsewhere,
//! tokens of other accounts) is refused.
//! The ConfigMap's bgpd.toml passes `bgpd --check-config` (bgpd's own parser) with
//! the router id the DaemonSet gives it, and the DaemonSet gives bgpd and the init
//! container what they need (names, capabilities, probes, mounts).
//! Needs root and the built API server (fails with WREN_REQUIRE_LAB=1); the
//! configuration test needs the built bgpd.
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
    // Every manifest: the CRDs, then the rest (ConfigMap and DaemonSet included).
    let crds = manifest("crds.yaml");
    apply(&control_plane, &crds, true);
    apply(&control_plane, &crds, false);
    apply(&control_plane, &wren, true);
    apply(&control_plane, &wren, false);
    let rollout = control_plane
        .kubectl(&[
            "-n",
            NAMESPACE,
            "get",
            "daemonset",
            "wren-node",
            "-o",
            "jsonpath={.spec.updateStrategy.rollingUpdate.maxUnavailable} {.spec.template.spec.priorityClassName}",
        ])
        .unwrap();
    assert_eq!(rollout, "1 system-node-critical");

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
    // The IPAM collector lists Pods and GETs one at a time; it never watches them.
    let can = |verb: &str| {
        try_as(
            &control_plane,
            node,
            &["auth", "can-i", verb, "pods", "--all-namespaces"],
        )
        .is_ok()
    };
    assert!(can("get") && can("list"));
    assert!(!can("watch"));
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
    // Refused resources' Warning Events: created once each, never patched or read
    // (bgpd/tests/cluster_events.rs posts them with this token); the refused
    // BGPPeer's or BGPConfiguration's status patched.
    let can = |args: &[&str]| {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        try_as(&control_plane, node, &all).is_ok()
    };
    assert!(can(&["create", "events.events.k8s.io", "-n", "default"]));
    for verb in ["patch", "list", "delete"] {
        assert!(
            !can(&[verb, "events.events.k8s.io", "-n", "default"]),
            "{verb}"
        );
    }
    assert!(!can(&["create", "events", "-n", "default"]), "core events");
    for resource in ["bgppeers", "bgpconfigurations"] {
        assert!(can(&[
            "patch",
            &format!("{resource}.wren.io"),
            "--subresource=status"
        ]));
        assert!(
            !can(&["patch", &format!("{resource}.wren.io")]),
            "{resource}"
        );
    }
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

/// The objects of deploy/wren.yaml.
fn objects() -> Vec<serde_yaml_ng::Value> {
    let text = std::fs::read_to_string(manifest("wren.yaml")).unwrap();
    text.split("\n---\n")
        .map(|document| serde_yaml_ng::from_str(document).unwrap())
        .collect()
}

fn object(kind: &str, name: &str) -> serde_yaml_ng::Value {
    objects()
        .into_iter()
        .find(|o| o["kind"].as_str() == Some(kind) && o["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name} in wren.yaml"))
}

/// `bgpd --check-config` on `config` with `env`: success and what it printed.
fn check_config(config: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bgpd.toml");
    std::fs::write(&path, config).unwrap();
    let output = std::process::Command::new(lab::fixture::wren_binary("bgpd"))
        .arg("--check-config")
        .arg(&path)
        .env_remove("WREN_ROUTER_ID")
        .env_remove("WREN_METRICS_LISTEN")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

fn env_source(container: &serde_yaml_ng::Value, name: &str) -> String {
    let env = container["env"].as_sequence().unwrap();
    let entry = env
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in {container:?}"));
    entry["valueFrom"]["fieldRef"]["fieldPath"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn mounts(container: &serde_yaml_ng::Value) -> Vec<String> {
    container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_shipped_config_parses_and_the_daemonset_gives_bgpd_what_it_needs() {
    let config = object("ConfigMap", "wren-config");
    let toml_text = config["data"]["bgpd.toml"].as_str().unwrap();
    let (ok, out) = check_config(toml_text, &[("WREN_ROUTER_ID", "192.0.2.1")]);
    assert!(
        ok,
        "bgpd --check-config refused the ConfigMap's bgpd.toml: {out}"
    );
    // The router id comes from the DaemonSet's environment, nowhere else.
    let (ok, out) = check_config(toml_text, &[]);
    assert!(!ok && out.contains("WREN_ROUTER_ID"), "{out}");
    let parsed: toml::Table = toml_text.parse().unwrap();
    let socket = parsed["control"]["socket"].as_str().unwrap();
    let state_dir = parsed["dataplane"]["state_dir"].as_str().unwrap();
    let cni_kubeconfig = parsed["kubernetes"]["cni_kubeconfig"].as_str().unwrap();
    // Where wren-install writes the plugins' kubeconfig by default.
    assert_eq!(cni_kubeconfig, "/etc/cni/net.d/wren-kubeconfig");

    let daemonset = object("DaemonSet", "wren-node");
    let spec = &daemonset["spec"];
    assert_eq!(spec["updateStrategy"]["rollingUpdate"]["maxUnavailable"], 1);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "wren-node");
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["priorityClassName"], "system-node-critical");
    assert_eq!(pod["tolerations"][0]["operator"], "Exists");
    assert!(pod["tolerations"][0]["key"].is_null());

    let init = &pod["initContainers"][0];
    assert_eq!(init["command"][0], "wren-install");
    assert_eq!(env_source(init, "NODENAME"), "spec.nodeName");
    let init_mounts = mounts(init);
    for dir in ["/opt/cni/bin", "/etc/cni/net.d"] {
        assert!(
            init_mounts.iter().any(|m| m == dir),
            "{dir}: {init_mounts:?}"
        );
    }

    let bgpd = &pod["containers"][0];
    assert_eq!(bgpd["command"][0], "bgpd");
    assert_eq!(env_source(bgpd, "NODENAME"), "spec.nodeName");
    assert_eq!(env_source(bgpd, "WREN_ROUTER_ID"), "status.hostIP");
    // The metrics listener at the node's address: WREN_ROUTER_ID expanded by the
    // kubelet (so defined before), on the port the annotations and the container name.
    let env = bgpd["env"].as_sequence().unwrap();
    let position = |name: &str| env.iter().position(|e| e["name"].as_str() == Some(name));
    assert!(position("WREN_ROUTER_ID") < position("WREN_METRICS_LISTEN"));
    let listen = env[position("WREN_METRICS_LISTEN").unwrap()]["value"]
        .as_str()
        .unwrap();
    assert_eq!(listen, "$(WREN_ROUTER_ID):9180");
    let expanded = listen.replace("$(WREN_ROUTER_ID)", "192.0.2.1");
    let (ok, out) = check_config(
        toml_text,
        &[
            ("WREN_ROUTER_ID", "192.0.2.1"),
            ("WREN_METRICS_LISTEN", &expanded),
        ],
    );
    assert!(ok, "bgpd --check-config with {expanded}: {out}");
    let (ok, out) = check_config(
        toml_text,
        &[
            ("WREN_ROUTER_ID", "192.0.2.1"),
            ("WREN_METRICS_LISTEN", "192.0.2.1"),
        ],
    );
    assert!(!ok && out.contains("WREN_METRICS_LISTEN"), "{out}");
    let annotations = &spec["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "9180");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    assert_eq!(bgpd["ports"][0]["name"], "metrics");
    assert_eq!(bgpd["ports"][0]["containerPort"], 9180);
    let security = &bgpd["securityContext"];
    assert_eq!(security["privileged"], false);
    let added: Vec<&str> = security["capabilities"]["add"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(added, ["NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE"]);
    assert_eq!(bgpd["readinessProbe"]["exec"]["command"][1], "health");
    assert_eq!(bgpd["livenessProbe"]["exec"]["command"][2], "--live");
    let bgpd_mounts = mounts(bgpd);
    let parent = |path: &str| Path::new(path).parent().unwrap().display().to_string();
    for dir in [
        "/etc/wren".to_owned(),
        parent(socket),
        state_dir.to_owned(),
        parent(cni_kubeconfig),
    ] {
        assert!(bgpd_mounts.contains(&dir), "{dir}: {bgpd_mounts:?}");
    }
}
