//! The connection to the API server, and the Node condition bgpd writes.

use std::path::Path;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
pub use kube::Client;
use kube::Config;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::ClusterError;

/// The Node condition bgpd sets once it has converged, as Calico does.
pub const NETWORK_UNAVAILABLE: &str = "NetworkUnavailable";
/// Its reason.
pub const WREN_IS_UP: &str = "WrenIsUp";

/// A client for the API server of `kubeconfig`, else of `KUBECONFIG` /
/// `~/.kube/config` / the pod's service account (kube's inference); with the server's
/// URL, for log lines.
pub async fn connect(kubeconfig: Option<&Path>) -> Result<(Client, String), ClusterError> {
    let config = config(kubeconfig).await?;
    let url = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|error| ClusterError::Api {
        api_server: url.clone(),
        what: "creating the client".into(),
        reason: error.to_string(),
    })?;
    Ok((client, url))
}

/// The client configuration [`connect`] uses (for what needs the server's address and
/// CA besides a client: the CNI plugins' kubeconfig).
pub async fn config(kubeconfig: Option<&Path>) -> Result<Config, ClusterError> {
    Ok(match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path).map_err(|error| ClusterError::Kubeconfig {
                path: path.display().to_string(),
                reason: error.to_string(),
            })?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|error| ClusterError::Kubeconfig {
                    path: path.display().to_string(),
                    reason: error.to_string(),
                })?
        }
        None => Config::infer()
            .await
            .map_err(|error| ClusterError::Kubeconfig {
                path: "(inferred: KUBECONFIG, ~/.kube/config, in-cluster)".into(),
                reason: error.to_string(),
            })?,
    })
}

/// Sets the Node `node`'s condition `NetworkUnavailable=False` (reason `WrenIsUp`).
pub async fn network_available(
    client: &Client,
    api_server: &str,
    node: &str,
) -> Result<(), ClusterError> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let patch = serde_json::json!({
        "status": { "conditions": [{
            "type": NETWORK_UNAVAILABLE,
            "status": "False",
            "reason": WREN_IS_UP,
            "message": "bgpd has converged",
            "lastTransitionTime": now,
            "lastHeartbeatTime": now,
        }]}
    });
    Api::<Node>::all(client.clone())
        .patch_status(node, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .map_err(|error| ClusterError::Api {
            api_server: api_server.to_owned(),
            what: format!("Node {node} status"),
            reason: error.to_string(),
        })?;
    Ok(())
}

/// The Node `node`'s `InternalIP` addresses (its `status.addresses`, as the kubelet
/// reported them), for `[ipam] address_detection = "kubernetes-internal-ip"`.
pub async fn internal_ips(
    client: &Client,
    api_server: &str,
    node: &str,
) -> Result<Vec<std::net::IpAddr>, ClusterError> {
    let object = Api::<Node>::all(client.clone())
        .get(node)
        .await
        .map_err(|error| ClusterError::Api {
            api_server: api_server.to_owned(),
            what: format!("Node {node}"),
            reason: error.to_string(),
        })?;
    let addresses = object
        .status
        .and_then(|status| status.addresses)
        .unwrap_or_default();
    Ok(addresses
        .iter()
        .filter(|address| address.type_ == "InternalIP")
        .filter_map(|address| address.address.parse().ok())
        .collect())
}
