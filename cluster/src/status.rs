//! The `WrenNode` resource (issue 14, part 4): one per node, named after it and owned
//! by its Node (so it goes when the Node goes), whose status tells operators what
//! bgpd on that node sees: its conditions (`Ready`, `DatastoreReachable`,
//! `Converged`), each peer with its state, the time of its last change and the
//! prefixes it sent, and the node's IPAM blocks.
//!
//! [`status`] builds the status from what bgpd observed, as a pure function: a value
//! that did not change keeps its timestamps, so two observations of an unchanged node
//! give equal statuses and bgpd writes nothing ([`write`] is called on change only,
//! and at most once every few seconds by bgpd's cluster task; never per UPDATE).
//!
//! `kubectl get wrennodes` prints NODE, ASN, PEERS UP, BLOCKS and READY.

use std::net::IpAddr;
use std::time::SystemTime;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ClusterError;

/// The condition that sums up the others.
pub const READY: &str = "Ready";
/// bgpd reaches its IPAM datastore (true without one: nothing to reach).
pub const DATASTORE_REACHABLE: &str = "DatastoreReachable";
/// bgpd's first convergence after its start is done.
pub const CONVERGED: &str = "Converged";

/// `WrenNode.spec`: which node it describes (its name is the node's too).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "wren.io",
    version = "v1alpha1",
    kind = "WrenNode",
    plural = "wrennodes",
    status = "WrenNodeStatus",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".spec.node"}"#,
    printcolumn = r#"{"name":"ASN","type":"integer","jsonPath":".status.asn"}"#,
    printcolumn = r#"{"name":"Peers Up","type":"integer","jsonPath":".status.peersUp"}"#,
    printcolumn = r#"{"name":"Blocks","type":"integer","jsonPath":".status.blockCount"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct WrenNodeSpec {
    /// The Node this status is about.
    pub node: String,
}

/// What bgpd on the node sees.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WrenNodeStatus {
    /// The node's AS number.
    pub asn: u32,
    /// Peers whose session is Established.
    pub peers_up: u32,
    /// Every configured, dynamic and mesh peer.
    #[serde(default)]
    pub peers: Vec<PeerStatus>,
    /// The node's IPAM blocks, and how many.
    pub block_count: u32,
    #[serde(default)]
    pub blocks: Vec<String>,
    /// `Ready`, `DatastoreReachable`, `Converged`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// One peer of the node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeerStatus {
    pub address: String,
    pub asn: u32,
    /// The RFC 4271 state (`Idle` ... `Established`).
    pub state: String,
    /// When the session entered that state (RFC 3339).
    pub last_change: Time,
    /// Prefixes the peer sent that are in its Adj-RIB-In.
    pub prefixes_received: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One peer as bgpd observed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedPeer {
    pub address: IpAddr,
    pub asn: u32,
    pub state: String,
    /// Times the session reached Established: with the state, what tells a new
    /// change from the same one seen again.
    pub established_count: u64,
    /// When the state began, as well as bgpd can tell (kept while unchanged; shown
    /// in whole seconds).
    pub since: SystemTime,
    pub prefixes_received: u64,
    pub description: Option<String>,
}

/// What bgpd observed of itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub asn: u32,
    pub peers: Vec<ObservedPeer>,
    pub blocks: Vec<IpNet>,
    pub converged: bool,
    /// `None` without an IPAM datastore; else whether bgpd reaches it, and the last
    /// error when it does not.
    pub datastore: Option<Result<(), String>>,
}

/// A time in whole seconds, as Kubernetes shows it (and no sub-second noise).
pub fn time(at: SystemTime) -> Time {
    let seconds = match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    };
    Time(
        k8s_openapi::jiff::Timestamp::from_second(seconds)
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

/// The status for `observed`, keeping `previous`'s timestamps where nothing
/// changed; `now` dates what did.
pub fn status(
    observed: &Observed,
    previous: Option<&WrenNodeStatus>,
    now: SystemTime,
) -> WrenNodeStatus {
    let now = &time(now);
    let mut peers: Vec<PeerStatus> = observed
        .peers
        .iter()
        .map(|peer| PeerStatus {
            address: peer.address.to_string(),
            asn: peer.asn,
            state: peer.state.clone(),
            last_change: time(peer.since),
            prefixes_received: peer.prefixes_received,
            description: peer.description.clone(),
        })
        .collect();
    peers.sort_by(|a, b| a.address.cmp(&b.address));
    let mut blocks: Vec<IpNet> = observed.blocks.clone();
    blocks.sort();
    let (datastore_status, datastore_reason, datastore_message) = match &observed.datastore {
        None => (
            "True",
            "NoDatastore",
            String::from("bgpd runs without [ipam]"),
        ),
        Some(Ok(())) => (
            "True",
            "Reachable",
            String::from("the IPAM datastore answers"),
        ),
        Some(Err(error)) => ("False", "Unreachable", error.clone()),
    };
    let (converged_status, converged_reason, converged_message) = if observed.converged {
        (
            "True",
            "Converged",
            "the first convergence after the start is done",
        )
    } else {
        (
            "False",
            "Converging",
            "waiting for the peers' End-of-RIB and the kernel",
        )
    };
    let ready = observed.converged && datastore_status == "True";
    let (ready_status, ready_reason, ready_message) = if ready {
        (
            "True",
            "WrenIsUp",
            String::from("converged, datastore reachable"),
        )
    } else if !observed.converged {
        ("False", "Converging", String::from("not converged yet"))
    } else {
        ("False", "DatastoreUnreachable", datastore_message.clone())
    };
    let previous_conditions = previous
        .map(|p| p.conditions.as_slice())
        .unwrap_or_default();
    let conditions = vec![
        condition(
            READY,
            ready_status,
            ready_reason,
            ready_message,
            previous_conditions,
            now,
        ),
        condition(
            DATASTORE_REACHABLE,
            datastore_status,
            datastore_reason,
            datastore_message,
            previous_conditions,
            now,
        ),
        condition(
            CONVERGED,
            converged_status,
            converged_reason,
            converged_message.to_owned(),
            previous_conditions,
            now,
        ),
    ];
    WrenNodeStatus {
        asn: observed.asn,
        peers_up: u32::try_from(peers.iter().filter(|p| p.state == "Established").count())
            .unwrap_or(u32::MAX),
        peers,
        block_count: u32::try_from(blocks.len()).unwrap_or(u32::MAX),
        blocks: blocks.iter().map(ToString::to_string).collect(),
        conditions,
    }
}

/// A condition, dated `now` when its status differs from the previous one's.
fn condition(
    kind: &str,
    status: &str,
    reason: &str,
    message: String,
    previous: &[Condition],
    now: &Time,
) -> Condition {
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == kind && c.status == status)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    Condition {
        type_: kind.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time,
        observed_generation: None,
    }
}

/// The CustomResourceDefinition of `WrenNode`.
pub fn crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    WrenNode::crd()
}

/// The status last written for `node`, if its `WrenNode` exists.
pub async fn read(
    client: &Client,
    api_server: &str,
    node: &str,
) -> Result<Option<WrenNodeStatus>, ClusterError> {
    let api: Api<WrenNode> = Api::all(client.clone());
    let existing = api
        .get_opt(node)
        .await
        .map_err(|error| api_error(api_server, node, error))?;
    Ok(existing.and_then(|object| object.status))
}

/// Writes `status` into `node`'s `WrenNode`, creating it (owned by the Node) first
/// when it does not exist.
pub async fn write(
    client: &Client,
    api_server: &str,
    node: &str,
    status: &WrenNodeStatus,
) -> Result<(), ClusterError> {
    let api: Api<WrenNode> = Api::all(client.clone());
    let exists = api
        .get_metadata_opt(node)
        .await
        .map_err(|error| api_error(api_server, node, error))?
        .is_some();
    if !exists {
        let owner = Api::<Node>::all(client.clone())
            .get_metadata(node)
            .await
            .map_err(|error| ClusterError::Api {
                api_server: api_server.to_owned(),
                what: format!("Node {node} (the owner of its WrenNode)"),
                reason: error.to_string(),
            })?;
        let object = WrenNode {
            metadata: ObjectMeta {
                name: Some(node.to_owned()),
                owner_references: Some(vec![OwnerReference {
                    api_version: String::from("v1"),
                    kind: String::from("Node"),
                    name: node.to_owned(),
                    uid: owner.metadata.uid.unwrap_or_default(),
                    block_owner_deletion: None,
                    controller: None,
                }]),
                ..ObjectMeta::default()
            },
            spec: WrenNodeSpec {
                node: node.to_owned(),
            },
            status: None,
        };
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => {}
            // Created meanwhile (a restart racing its predecessor): write its status.
            Err(kube::Error::Api(response)) if response.code == 409 => {}
            Err(error) => return Err(api_error(api_server, node, error)),
        }
    }
    let patch = serde_json::json!({ "status": status });
    api.patch_status(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|error| api_error(api_server, node, error))?;
    Ok(())
}

fn api_error(api_server: &str, node: &str, error: kube::Error) -> ClusterError {
    ClusterError::Api {
        api_server: api_server.to_owned(),
        what: format!("WrenNode {node}"),
        reason: error.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds)
    }

    fn observed(state: &str, converged: bool, datastore: Option<Result<(), String>>) -> Observed {
        Observed {
            asn: 64512,
            peers: vec![ObservedPeer {
                address: "10.0.0.2".parse().unwrap(),
                asn: 65001,
                state: state.to_owned(),
                established_count: 1,
                since: at(100),
                prefixes_received: 3,
                description: None,
            }],
            blocks: vec![
                "10.244.0.64/26".parse().unwrap(),
                "10.244.0.0/26".parse().unwrap(),
            ],
            converged,
            datastore,
        }
    }

    fn condition_of<'a>(status: &'a WrenNodeStatus, kind: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == kind).unwrap()
    }

    #[test]
    fn ready_needs_convergence_and_the_datastore() {
        let cases = [
            (false, Some(Ok(())), "False", "False", "True"),
            (true, Some(Ok(())), "True", "True", "True"),
            (
                true,
                Some(Err(String::from("etcd down"))),
                "False",
                "True",
                "False",
            ),
            (true, None, "True", "True", "True"),
        ];
        for (converged, datastore, ready, converged_status, reachable) in cases {
            let text = format!("{converged} {datastore:?}");
            let status = status(
                &observed("Established", converged, datastore),
                None,
                at(200),
            );
            assert_eq!(condition_of(&status, READY).status, ready, "{text}");
            assert_eq!(
                condition_of(&status, CONVERGED).status,
                converged_status,
                "{text}"
            );
            assert_eq!(
                condition_of(&status, DATASTORE_REACHABLE).status,
                reachable,
                "{text}"
            );
        }
    }

    #[test]
    fn counts_and_sorted_blocks() {
        let status = status(&observed("Established", true, None), None, at(200));
        assert_eq!(status.peers_up, 1);
        assert_eq!(status.block_count, 2);
        assert_eq!(status.blocks, vec!["10.244.0.0/26", "10.244.0.64/26"]);
        let status = super::status(&observed("Active", true, None), None, at(200));
        assert_eq!(status.peers_up, 0);
    }

    #[test]
    fn an_unchanged_node_gives_an_equal_status_and_a_change_is_dated_now() {
        let first = status(&observed("Established", false, Some(Ok(()))), None, at(200));
        let again = status(
            &observed("Established", false, Some(Ok(()))),
            Some(&first),
            at(300),
        );
        assert_eq!(first, again, "nothing changed: nothing to write");
        let converged = status(
            &observed("Established", true, Some(Ok(()))),
            Some(&again),
            at(400),
        );
        assert_ne!(converged, again);
        assert_eq!(
            condition_of(&converged, READY).last_transition_time,
            time(at(400))
        );
        assert_eq!(
            condition_of(&converged, DATASTORE_REACHABLE).last_transition_time,
            time(at(200)),
            "an unchanged condition keeps its time"
        );
    }

    #[test]
    fn the_crd_prints_the_operators_columns() {
        let crd = serde_json::to_value(crd()).unwrap();
        let columns: Vec<&str> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            columns,
            ["Node", "ASN", "Peers Up", "Blocks", "Ready", "Age"]
        );
        assert_eq!(crd["spec"]["scope"], "Cluster");
        assert_eq!(
            crd["spec"]["versions"][0]["subresources"]["status"],
            serde_json::json!({})
        );
    }
}
