//! Wren's Kubernetes side of bgpd (issue 14): who the node is and which addresses it
//! peers from, the BGP settings of the cluster's custom resources, and the Node
//! condition bgpd writes. bgpd wires it in as tasks; the rib and the sessions never
//! see a Kubernetes client.
//!
//! - [`node`]: the node's name (`NODENAME`, else the host name).
//! - [`address`]: the node's peering addresses by `[ipam] address_detection`
//!   (Calico's methods).
//! - [`collector`]: the cluster's IPAM garbage collector, one per cluster through a
//!   Lease.
//! - [`resources`]: the `BGPConfiguration` and `BGPPeer` custom resources (group
//!   `wren.io`), the one source of their CRDs; [`selector`]: label selectors.
//! - [`translate`]: from those resources and the Node objects to one node's BGP
//!   settings (pure): its AS, cluster id, mesh, port, block communities, and its
//!   neighbors as `[[bgp.neighbor]]` tables that bgpd parses like its file.
//! - [`watch`]: those resources followed on the API server (reflectors, re-list
//!   with backoff), this node's settings sent on each change, refused resources'
//!   status written; [`client`]: the connection and the Node condition
//!   `NetworkUnavailable=False` (`WrenIsUp`).
//! - [`refusal`]: why a resource is refused, each reason a variant;
//!   [`events`]: refusals posted as Warning Events, once each cluster-wide (by the
//!   collector's Lease holder, or the one node concerned); [`pools`]: the `IPPool`s
//!   IPAM refuses, followed by the Lease holder for their Events.
//! - [`install`]: what the DaemonSet's init container (`wren-install`) puts on the
//!   node: the CNI plugins, their kubeconfig and the conflist, each written atomically
//!   ([`files`]).
//! - [`token`]: the CNI plugins' `wren-cni` token (TokenRequest API) in their
//!   kubeconfig ([`kubeconfig`]), refreshed a quarter into its lifetime.
//! - [`status`]: the `WrenNode` resource, one per node, whose status bgpd writes on
//!   change.

pub mod address;
pub mod client;
pub mod collector;
pub mod events;
pub mod files;
pub mod install;
pub mod kubeconfig;
pub mod node;
pub mod pools;
pub mod refusal;
pub mod resources;
pub mod selector;
pub mod status;
pub mod token;
pub mod translate;
pub mod watch;

/// The CustomResourceDefinitions of the cluster crate's resources (`BGPConfiguration`,
/// `BGPPeer`, `WrenNode`), rendered into `deploy/crds.yaml` beside IPAM's.
pub fn crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    let mut crds = resources::crds();
    crds.push(status::crd());
    crds
}

/// What goes wrong on the cluster side, each one line naming what and where.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The node's name cannot be found or is not a Kubernetes name.
    #[error(transparent)]
    NodeName(#[from] ipam::node_name::NodeNameError),
    /// An address detection method found nothing usable.
    #[error("address detection {method}: {reason}")]
    Detection { method: String, reason: String },
    /// The kubeconfig cannot be read or used.
    #[error("kubeconfig {path}: {reason}")]
    Kubeconfig { path: String, reason: String },
    /// The API server refused or could not be reached.
    #[error("Kubernetes API server {api_server}: {what}: {reason}")]
    Api {
        api_server: String,
        what: String,
        reason: String,
    },
    /// A file Wren writes or reads (plugins, conflist, kubeconfig, CA).
    #[error("{}: {reason}", path.display())]
    File {
        path: std::path::PathBuf,
        reason: String,
    },
}
