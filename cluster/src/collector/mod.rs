//! The cluster's IPAM garbage collector (issue 14, part 5): one per cluster, inside
//! bgpd, elected through a `coordination.k8s.io` Lease (kube-lease-manager: server-side
//! apply, tolerant of clock skew between nodes). Whoever holds the Lease makes a pass
//! every `interval`, and at once when a Node is deleted (a watch on Nodes' metadata).
//!
//! A pass reads the Node names (one list of metadata), IPAM's registry and one IPAM
//! snapshot, decides with [`rules::decide`] and releases one thing after the other
//! (one request in flight, so a mass deletion never floods the API server):
//! - a node IPAM knows and the cluster does not is released whole, after a GET of its
//!   Node confirms that it is gone;
//! - an empty block of a live node goes when two consecutive passes saw it empty, and
//!   a live node keeps one block per family.
//!
//! Nothing is released on a failed read: a pass that cannot list the Nodes, or does
//! not find its own node among them (the wrong cluster, a half-started API server), is
//! skipped with one line.
//!
//! Calling contract: [`run`] returns only on an error the collector cannot outlive
//! (the Lease manager ending); bgpd's supervision then stops the daemon.

pub mod rules;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ipam::{Datastore, Ipam};
use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, ListParams, PartialObjectMeta};
use kube::runtime::watcher::{self, watcher};
use kube_lease_manager::LeaseManagerBuilder;

pub use rules::{Decision, Release};

/// Where the collector's Lease lives and how often it looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The node bgpd runs on: the Lease holder's identity, and a node that must exist
    /// for a pass to run.
    pub identity: String,
    pub namespace: String,
    pub lease: String,
    /// Seconds between passes (a Node deletion triggers one at once).
    pub interval: Duration,
    /// The Lease's duration and the grace before a silent holder loses it.
    pub lease_duration: u64,
    pub lease_grace: u64,
}

impl Settings {
    /// The defaults for `identity`: the Lease `wren-ipam-collector` in `wren-system`, a
    /// pass every 30 s, a 15 s Lease with 5 s of grace.
    pub fn new(identity: impl Into<String>) -> Settings {
        Settings {
            identity: identity.into(),
            namespace: String::from("wren-system"),
            lease: String::from("wren-ipam-collector"),
            interval: Duration::from_secs(30),
            lease_duration: 15,
            lease_grace: 5,
        }
    }
}

/// What stops the collector or a pass; each names the API server or datastore part.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error("IPAM collector: Lease {namespace}/{lease}: {reason}")]
    Lease {
        namespace: String,
        lease: String,
        reason: String,
    },
    #[error("IPAM collector: the API server refused {what}: {reason}")]
    Api { what: String, reason: String },
    #[error("IPAM collector: {0}")]
    Ipam(#[from] ipam::IpamError),
    #[error("IPAM collector: pass skipped: {0}")]
    Skipped(String),
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    pub nodes_released: Vec<String>,
    pub blocks_released: Vec<IpNet>,
    pub addresses_released: usize,
}

/// The collector's memory between passes: the empty blocks last seen.
pub struct Collector<S> {
    client: Client,
    ipam: Arc<Ipam<S>>,
    settings: Settings,
    seen_empty: BTreeSet<IpNet>,
}

impl<S> std::fmt::Debug for Collector<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("settings", &self.settings)
            .field("seen_empty", &self.seen_empty)
            .finish_non_exhaustive()
    }
}

impl<S: Datastore> Collector<S> {
    pub fn new(client: Client, ipam: Arc<Ipam<S>>, settings: Settings) -> Collector<S> {
        Collector {
            client,
            ipam,
            settings,
            seen_empty: BTreeSet::new(),
        }
    }

    /// One pass (see the module documentation), whether or not this node leads.
    pub async fn pass(&mut self) -> Result<PassReport, CollectorError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let live: BTreeSet<String> = nodes
            .list_metadata(&ListParams::default())
            .await
            .map_err(|e| api_error("the list of Nodes", e))?
            .items
            .into_iter()
            .filter_map(|node| node.metadata.name)
            .collect();
        if !live.contains(&self.settings.identity) {
            return Err(CollectorError::Skipped(format!(
                "the API server lists {} Nodes and not this node ({})",
                live.len(),
                self.settings.identity
            )));
        }
        let registered: BTreeSet<String> = self
            .ipam
            .nodes()
            .await?
            .into_iter()
            .map(|node| node.name)
            .collect();
        let snapshot = self.ipam.snapshot().await?;
        let decision = rules::decide(&snapshot, &registered, &live, &self.seen_empty);
        self.seen_empty = decision.empty;
        let mut report = PassReport::default();
        for release in decision.releases {
            match release {
                Release::Node(name) => {
                    // The list is a moment old: the Node's own GET says it is gone.
                    let present = nodes
                        .get_metadata_opt(&name)
                        .await
                        .map_err(|e| api_error(&format!("Node {name}"), e))?;
                    if present.is_some() {
                        continue;
                    }
                    let released = self.ipam.release_node(&name).await?;
                    tracing::info!(
                        node = name,
                        blocks = released.blocks_released.len(),
                        orphaned = released.blocks_orphaned.len(),
                        addresses = released.addresses_released,
                        "IPAM collector: released a node that the cluster no longer has"
                    );
                    report.addresses_released += released.addresses_released;
                    report.blocks_released.extend(released.blocks_released);
                    report.nodes_released.push(name);
                }
                Release::EmptyBlock { node, cidr } => {
                    if self.ipam.release_empty_block(&node, cidr).await? {
                        tracing::info!(node, block = %cidr, "IPAM collector: released an empty block");
                        self.seen_empty.remove(&cidr);
                        report.blocks_released.push(cidr);
                    }
                }
            }
        }
        Ok(report)
    }
}

/// Runs the collector: takes part in the Lease election and, while leading, makes a
/// pass every `interval` and after every Node deletion. Returns only when the Lease
/// manager ends (an error).
pub async fn run<S: Datastore>(
    client: Client,
    ipam: Arc<Ipam<S>>,
    settings: Settings,
) -> Result<(), CollectorError> {
    let lease_error = |reason: String| CollectorError::Lease {
        namespace: settings.namespace.clone(),
        lease: settings.lease.clone(),
        reason,
    };
    let manager = LeaseManagerBuilder::new(client.clone(), &settings.lease)
        .with_namespace(&settings.namespace)
        .with_identity(&settings.identity)
        .with_duration(settings.lease_duration)
        .with_grace(settings.lease_grace)
        .build()
        .await
        .map_err(|e| lease_error(e.to_string()))?;
    let (mut leading, mut lease_task) = manager.watch().await;
    let node_metadata = || -> Api<PartialObjectMeta<Node>> { Api::all(client.clone()) };
    let mut deletions = Box::pin(watcher(node_metadata(), watcher::Config::default()));
    let mut ticks = tokio::time::interval(settings.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut collector = Collector::new(client.clone(), ipam, settings.clone());
    loop {
        let due = tokio::select! {
            ended = &mut lease_task => {
                let reason = match ended {
                    Ok(Ok(_)) => String::from("the Lease manager stopped"),
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => format!("the Lease manager task ended: {e}"),
                };
                return Err(lease_error(reason));
            }
            changed = leading.changed() => {
                if changed.is_err() {
                    return Err(lease_error(String::from("the Lease manager stopped")));
                }
                let now = *leading.borrow_and_update();
                tracing::info!(
                    identity = settings.identity,
                    "IPAM collector: {} the Lease {}/{}",
                    if now { "holds" } else { "does not hold" },
                    settings.namespace,
                    settings.lease
                );
                now
            }
            _ = ticks.tick() => true,
            event = deletions.next() => match event {
                Some(Ok(watcher::Event::Delete(_))) => true,
                Some(Ok(_)) => false,
                Some(Err(e)) => {
                    tracing::warn!("IPAM collector: watch of Nodes: {e}; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    false
                }
                None => {
                    deletions = Box::pin(watcher(node_metadata(), watcher::Config::default()));
                    false
                }
            },
        };
        if due && *leading.borrow() {
            if let Err(error) = collector.pass().await {
                tracing::warn!("{error}");
            }
        }
    }
}

fn api_error(what: &str, error: kube::Error) -> CollectorError {
    CollectorError::Api {
        what: what.to_owned(),
        reason: error.to_string(),
    }
}
