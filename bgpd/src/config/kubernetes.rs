//! `[kubernetes]`: bgpd reads its BGP peers from the cluster's custom resources and
//! sets its Node's `NetworkUnavailable` condition (issue 14; the `cluster` crate).
//!
//! ```toml
//! [kubernetes]
//! kubeconfig = "/etc/wren/kubeconfig"   # default: KUBECONFIG, ~/.kube/config, the pod's service account
//! namespace = "wren-system"             # where BGPPeer password Secrets are
//! cni_kubeconfig = "/etc/cni/net.d/wren-kubeconfig"  # keep the CNI plugins' token fresh here
//! cni_service_account = "wren-cni"      # whose token (in `namespace`)
//! collector_pod_grace = 300             # seconds a pod stays gone before the IPAM collector releases its addresses
//! ```
//!
//! The file wins where both say something: a `[[bgp.neighbor]]` of the file keeps its
//! settings over a `BGPPeer` to the same address, and `[bgp] cluster_id` over the
//! Node's `wren.io/route-reflector-cluster-id`; the `BGPConfiguration`'s
//! `nodeToNodeMeshEnabled` turns the node mesh off (or on) live where the file sets no
//! `[bgp] node_mesh`.

use std::path::PathBuf;

use serde::Deserialize;

/// Where `BGPPeer` password Secrets are when not told (deploy/wren.yaml's namespace).
pub const DEFAULT_NAMESPACE: &str = "wren-system";

/// The `[kubernetes]` section.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// The kubeconfig file; default: kube's inference (KUBECONFIG, ~/.kube/config,
    /// the pod's service account).
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// The namespace of the Secrets that `BGPPeer` passwords refer to.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The CNI plugins' kubeconfig (written by `wren-install`), which bgpd rewrites
    /// with a new token of `cni_service_account` before the old one expires; none:
    /// bgpd leaves the plugins' credentials alone.
    #[serde(default)]
    pub cni_kubeconfig: Option<PathBuf>,
    /// The service account (in `namespace`) whose tokens the CNI plugins use.
    #[serde(default = "default_cni_service_account")]
    pub cni_service_account: String,
    /// Seconds a handle's pod must stay gone (its GET answering 404, twice) before
    /// the IPAM collector releases the handle's addresses (with `[ipam]`).
    #[serde(default = "default_collector_pod_grace")]
    pub collector_pod_grace: u64,
}

fn default_collector_pod_grace() -> u64 {
    cluster::collector::DEFAULT_POD_GRACE.as_secs()
}

/// The CNI plugins' service account when not told (deploy/wren.yaml's).
pub const DEFAULT_CNI_SERVICE_ACCOUNT: &str = "wren-cni";

fn default_cni_service_account() -> String {
    DEFAULT_CNI_SERVICE_ACCOUNT.to_owned()
}

fn default_namespace() -> String {
    DEFAULT_NAMESPACE.to_owned()
}
