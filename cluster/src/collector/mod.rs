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
//!   a live node keeps one block per family;
//! - a handle whose pod is gone (one list of Pods' metadata, read after the snapshot,
//!   picks the candidates; a GET of each Pod confirms it gone) is released whole once
//!   it has been suspected for `pod_grace` and a second GET still finds no such Pod
//!   ([`rules::decide_pods`]; the suspects live in the collector's memory, so a new
//!   Lease holder starts their grace again).
//!
//! Nothing is released on a failed read: a pass that cannot list the Nodes, or does
//! not find its own node among them (the wrong cluster, a half-started API server), is
//! skipped with one line; a failed list or GET of Pods ends the pass before the pod
//! rule releases anything.
//!
//! Calling contract: [`run`] returns only on an error the collector cannot outlive
//! (the Lease manager ending); bgpd's supervision then stops the daemon.

pub mod rules;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use ipam::PodReference;
use ipam::{Datastore, Ipam};
use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::api::{Api, ListParams, PartialObjectMeta};
use kube::runtime::watcher::{self, watcher};
use kube_lease_manager::LeaseManagerBuilder;

pub use rules::{Decision, ListedPods, PodDecision, PodHandle, Release};

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
    /// How long a handle's pod must stay gone before its addresses are released.
    pub pod_grace: Duration,
    /// The API server's URL, for [`ipam::outage`] (empty: failures are logged here).
    pub api_server: String,
}

/// The pod-gone rule's grace when not told (Calico's).
pub const DEFAULT_POD_GRACE: Duration = Duration::from_secs(300);

/// Pods' metadata read per page of the list.
const POD_PAGE: u32 = 500;

impl Settings {
    /// The defaults for `identity`: the Lease `wren-ipam-collector` in `wren-system`, a
    /// pass every 30 s, a 15 s Lease with 5 s of grace, 5 min before a gone pod's
    /// addresses are released.
    pub fn new(identity: impl Into<String>) -> Settings {
        Settings {
            identity: identity.into(),
            namespace: String::from("wren-system"),
            lease: String::from("wren-ipam-collector"),
            interval: Duration::from_secs(30),
            lease_duration: 15,
            lease_grace: 5,
            pod_grace: DEFAULT_POD_GRACE,
            api_server: String::new(),
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
    /// Handles released because their pod is gone.
    pub handles_released: Vec<String>,
    pub addresses_released: usize,
}

/// The collector's memory between passes: the empty blocks last seen, the handles
/// whose pod is gone since when.
pub struct Collector<S> {
    client: Client,
    ipam: Arc<Ipam<S>>,
    settings: Settings,
    seen_empty: BTreeSet<IpNet>,
    suspects: BTreeMap<PodHandle, Instant>,
}

impl<S> std::fmt::Debug for Collector<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("settings", &self.settings)
            .field("seen_empty", &self.seen_empty)
            .field("suspects", &self.suspects)
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
            suspects: BTreeMap::new(),
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
        self.release_gone_pods(&snapshot, &mut report).await?;
        Ok(report)
    }

    /// The pod-gone rule (see the module text) over `snapshot`, read before the Pods
    /// are listed.
    async fn release_gone_pods(
        &mut self,
        snapshot: &ipam::Snapshot,
        report: &mut PassReport,
    ) -> Result<(), CollectorError> {
        if !snapshot.handles.iter().any(|h| h.value.pod.is_some()) {
            self.suspects.clear();
            return Ok(());
        }
        let listed = self.listed_pods().await?;
        let decision = rules::decide_pods(
            &snapshot.handles,
            &listed,
            &self.suspects,
            Instant::now(),
            self.settings.pod_grace,
        );
        self.suspects = decision.suspects;
        for suspect in decision.confirm {
            if self.pod_gone(&suspect.pod).await? {
                tracing::info!(
                    handle = suspect.handle,
                    pod = %suspect.pod,
                    "IPAM collector: the pod of a handle is gone; released after {:?} if it stays gone",
                    self.settings.pod_grace
                );
                self.suspects.insert(suspect, Instant::now());
            }
        }
        for suspect in decision.recheck {
            if !self.pod_gone(&suspect.pod).await? {
                self.suspects.remove(&suspect);
                continue;
            }
            let released = self.ipam.release_handle(&suspect.handle).await?;
            tracing::info!(
                handle = suspect.handle,
                pod = %suspect.pod,
                addresses = released.len(),
                "IPAM collector: released the addresses of a pod that is gone"
            );
            self.suspects.remove(&suspect);
            report.addresses_released += released.len();
            report.handles_released.push(suspect.handle);
        }
        Ok(())
    }

    /// Every Pod's uid by namespace and name (metadata only, page by page).
    async fn listed_pods(&self) -> Result<ListedPods, CollectorError> {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let mut listed = ListedPods::new();
        let mut params = ListParams::default().limit(POD_PAGE);
        loop {
            let page = pods
                .list_metadata(&params)
                .await
                .map_err(|e| api_error("the list of Pods", e))?;
            for pod in page.items {
                let meta = pod.metadata;
                if let (Some(namespace), Some(name)) = (meta.namespace, meta.name) {
                    listed.insert((namespace, name), meta.uid.unwrap_or_default());
                }
            }
            match page.metadata.continue_.filter(|token| !token.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(listed),
            }
        }
    }

    /// Whether a GET of the Pod finds it missing (404) or another pod under its name
    /// (another uid than the one recorded). An error is an error, never "gone".
    async fn pod_gone(&self, pod: &PodReference) -> Result<bool, CollectorError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let found = pods
            .get_metadata_opt(&pod.name)
            .await
            .map_err(|e| api_error(&format!("Pod {}/{}", pod.namespace, pod.name), e))?;
        Ok(match found {
            None => true,
            Some(found) => pod
                .uid
                .as_ref()
                .is_some_and(|recorded| found.metadata.uid.as_ref() != Some(recorded)),
        })
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
    run_telling(
        client,
        ipam,
        settings,
        &tokio::sync::watch::Sender::new(false),
    )
    .await
}

/// [`run`], telling `holder` whether this node holds the Lease (bgpd's other
/// cluster-wide duties follow it: the Events of refused resources); `false` when it
/// returns.
pub async fn run_telling<S: Datastore>(
    client: Client,
    ipam: Arc<Ipam<S>>,
    settings: Settings,
    holder: &tokio::sync::watch::Sender<bool>,
) -> Result<(), CollectorError> {
    let outcome = lead(client, ipam, settings, holder).await;
    holder.send_replace(false);
    outcome
}

async fn lead<S: Datastore>(
    client: Client,
    ipam: Arc<Ipam<S>>,
    settings: Settings,
    holder: &tokio::sync::watch::Sender<bool>,
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
    holder.send_replace(*leading.borrow());
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
                holder.send_replace(now);
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
                Some(Ok(watcher::Event::InitDone)) => {
                    if !settings.api_server.is_empty() {
                        ipam::outage::working(&settings.api_server, "Node");
                    }
                    false
                }
                Some(Ok(_)) => false,
                Some(Err(watcher::Error::WatchError(status))) if status.code == 410 => {
                    ipam::outage::gone(&settings.api_server, "Node", &status.to_string());
                    false
                }
                Some(Err(e)) => {
                    if settings.api_server.is_empty() {
                        tracing::warn!("IPAM collector: watch of Nodes: {e}; retrying");
                    } else {
                        ipam::outage::failed(&settings.api_server, "Node", &ipam::outage::describe(&e));
                    }
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
                // An outage is told once, by `ipam::outage`.
                if ipam::outage::is_failing(&settings.api_server) {
                    tracing::debug!("{error}");
                } else {
                    tracing::warn!("{error}");
                }
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
