//! bgpd as the DaemonSet runs it, against a real API server with the shipped manifests
//! (deploy/crds.yaml, deploy/wren.yaml): with exactly the `wren-node` service
//! account's token, on the Kubernetes IPAM datastore, it creates the file's pool,
//! registers its node, becomes ready, its cluster task sets the Node's
//! NetworkUnavailable=False, and
//! with `[kubernetes] cni_kubeconfig` its CNI token task writes the plugins' kubeconfig
//! at start with a working `wren-cni` token, all without a refused request in its log.
//!
//! One namespace: the control plane (etcd, kube-apiserver on its 127.0.0.1) and bgpd
//! as node `node-t` (NODENAME).

use std::time::Duration;

use lab::fixture::{Wren, wren_config};
use lab::kube::ControlPlane;
use lab::netns::Netns;

const WAIT: Duration = Duration::from_secs(30);
const NAMESPACE: &str = "wren-system";

#[test]
fn bgpd_with_the_node_token_keeps_the_cni_token_fresh() {
    let Some(_ready) = lab::require!(Root, KubeApiserver) else {
        return;
    };
    let netns = Netns::new("cnitok").expect("namespace");
    let control = ControlPlane::in_netns(&netns, "127.0.0.1".parse().expect("ip"))
        .expect("control plane in the namespace");
    control
        .apply_deploy()
        .expect("deploy/crds.yaml and deploy/wren.yaml");
    control
        .kubectl_input(
            &["apply", "-f", "-"],
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-t\n",
        )
        .expect("Node node-t");
    let node = control
        .service_account_kubeconfig(NAMESPACE, "wren-node")
        .expect("wren-node's kubeconfig");
    let cni = netns.dir().join("wren-kubeconfig");
    let config = wren_config(
        "10.72.0.1",
        &Wren::socket_path(&netns),
        false,
        &format!(
            "[ipam]\ndatastore = \"kubernetes://{node}\"\nnode_addresses = [\"10.72.0.1\"]\n\n\
             [[ipam.pool]]\ncidr = \"10.245.0.0/16\"\n\n\
             [kubernetes]\nkubeconfig = \"{node}\"\ncni_kubeconfig = \"{cni}\"\n",
            node = node.display(),
            cni = cni.display()
        ),
    );
    let wren = Wren::start_with_env(&netns, &config, &[("NODENAME", "node-t")]);

    wren.wait_for(WAIT, "the CNI kubeconfig written", || {
        cni.exists().then_some(())
    });
    assert_eq!(
        control
            .user_of(&cni)
            .expect("whoami with the CNI kubeconfig"),
        "system:serviceaccount:wren-system:wren-cni"
    );
    control
        .kubectl_as(&cni, &["get", "ipamblocks.wren.io"])
        .expect("the CNI token reads IPAM blocks");
    let condition = wren.wait_for(WAIT, "NetworkUnavailable=False on node-t", || {
        let text = control
            .kubectl(&[
                "get",
                "node",
                "node-t",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"NetworkUnavailable\")].status} {.status.conditions[?(@.type==\"NetworkUnavailable\")].reason}",
            ])
            .ok()?;
        (text.trim() == "False WrenIsUp").then_some(text)
    });
    assert_eq!(condition.trim(), "False WrenIsUp");
    // On the Kubernetes datastore with the same token: the file's pool is created, the
    // node registers (its Node's wren.io/asn), and bgpd is ready.
    wren.wait_for(WAIT, "bgpctl health: ready", || {
        wren.bgpctl(&["health"]).status.success().then_some(())
    });
    let pools = control
        .kubectl(&[
            "get",
            "ippools.wren.io",
            "-o",
            "jsonpath={.items[*].spec.cidr}",
        ])
        .expect("IPPools");
    assert_eq!(pools.trim(), "10.245.0.0/16");
    let asn = control
        .kubectl(&[
            "get",
            "node",
            "node-t",
            "-o",
            "jsonpath={.metadata.annotations.wren\\.io/asn}",
        ])
        .expect("node-t");
    assert_eq!(asn.trim(), "64512");
    let log = wren.daemon.log();
    // "code: 403", not a bare 403: a log time stamp such as 03:44:26.403004Z holds one.
    for refused in ["code: 403", "Forbidden", "forbidden"] {
        assert!(
            !log.contains(refused),
            "bgpd was refused something with wren-node's token:\n{}",
            wren.daemon.log_tail(60)
        );
    }
}
