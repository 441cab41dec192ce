//! The node's name: `NODENAME` (the downward API's `spec.nodeName` in the DaemonSet),
//! else the host name, checked as Kubernetes checks a Node's name. The rule lives in
//! `ipam::node_name`, so that the CNI plugin `wren-ipam` (which cannot depend on this
//! crate) names the node exactly as bgpd and `wren-install` do.

pub use ipam::node_name::{NODENAME_ENV, NodeNameError, resolve, validate};

use crate::ClusterError;

/// The node's name: `NODENAME` when set and not empty, else the host name.
pub fn name() -> Result<String, ClusterError> {
    Ok(ipam::node_name::name()?)
}
