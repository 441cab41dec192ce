//! The watch of the API server: `BGPConfiguration`, `BGPPeer`, the Node objects and
//! the Secrets of bgpd's namespace, each through a kube-runtime reflector (one list,
//! then a watch; a re-list with backoff after a 410 Gone or any failure), turned into
//! this node's [`NodeSettings`] whenever one of them changes.
//!
//! - Nothing is sent until every kind has been listed once, so a start never sees a
//!   half-empty cluster.
//! - While the API server is unreachable or refuses (401, 403, 5xx, a closed watch),
//!   the stores keep what they had, so the settings (and bgpd's sessions) stay; each
//!   failure and re-list is told to [`ipam::outage`], which logs one line per outage
//!   for all of bgpd's watches (naming the API server and the resources) and one
//!   when it is reachable again.
//! - A `BGPPeer` or `BGPConfiguration` that does not check is refused: its status
//!   gets `Accepted=False` with the reason, and its last accepted version (if any)
//!   stays in force; the other resources are not touched. Such a refusal is the same
//!   on every node, so only the node that leads (holds the collector's Lease, or
//!   every node when there is no Lease) posts its Warning Event
//!   ([`crate::events`]); a problem of this node alone (its own annotation, a
//!   Secret's missing key, an address two `BGPPeer`s claim) is posted by this node,
//!   its name in the note.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Node, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::events::{self, Recorder, Refused};
use crate::refusal::{Refusal, Subject};
use crate::resources::{
    BgpConfiguration, BgpPeer, DEFAULT_CONFIGURATION, ResourceStatus, SecretKeyRef,
};
use crate::translate::{self, Configuration, NodeFacts, NodeSettings, Peer};

/// How long a burst of changes is gathered before the settings are computed again.
const SETTLE: Duration = Duration::from_millis(50);

/// What the watch works from.
#[derive(Clone, Debug)]
pub struct WatchSettings {
    /// This node's name.
    pub node: String,
    /// Its peering addresses.
    pub addresses: Vec<IpAddr>,
    /// Where the Secrets of `BGPPeer` passwords are.
    pub namespace: String,
    /// The API server's address, for log lines.
    pub api_server: String,
    /// Whether this node posts the Events of cluster-wide refusals (it holds the
    /// collector's Lease); `None`: no Lease runs, every node posts them (the Events'
    /// names keep them one each).
    pub leading: Option<watch::Receiver<bool>>,
}

/// What one reflector reported.
enum Seen {
    Listed(&'static str),
    Changed,
    Failed(&'static str, String),
    /// The watch was closed with 410 Gone: it re-lists.
    Gone(&'static str, String),
}

/// Runs until `out` has no receiver: sends this node's settings after the first full
/// list and after every change that alters them.
pub async fn run(
    client: Client,
    settings: WatchSettings,
    out: watch::Sender<Option<NodeSettings>>,
) {
    let (configurations, configurations_writer) = reflector::store::<BgpConfiguration>();
    let (peers, peers_writer) = reflector::store::<BgpPeer>();
    let (nodes, nodes_writer) = reflector::store::<Node>();
    let (secrets, secrets_writer) = reflector::store::<Secret>();
    let mut streams = futures::stream::select_all([
        follow(
            "BGPConfiguration",
            Api::all(client.clone()),
            configurations_writer,
        ),
        follow("BGPPeer", Api::all(client.clone()), peers_writer),
        follow("Node", Api::all(client.clone()), nodes_writer),
        follow(
            "Secret",
            Api::namespaced(client.clone(), &settings.namespace),
            secrets_writer,
        ),
    ]);
    let mut listed = BTreeSet::new();
    let mut state = State::default();
    let peers_api: Api<BgpPeer> = Api::all(client.clone());
    let configurations_api: Api<BgpConfiguration> = Api::all(client.clone());
    let mut recorder = Recorder::new(client, settings.api_server.clone(), settings.node.clone());
    let mut leading = settings.leading.clone();
    loop {
        let first = tokio::select! {
            first = streams.next() => first,
            // Becoming the leader: post what the previous one may not have.
            Some(()) = became_leader(&mut leading) => Some(Seen::Changed),
        };
        let Some(first) = first else {
            return;
        };
        let mut batch = vec![first];
        // Gather what arrives together (a re-list, several edits at once).
        while let Ok(Some(more)) = tokio::time::timeout(SETTLE, streams.next()).await {
            batch.push(more);
        }
        for seen in batch {
            match seen {
                Seen::Listed(kind) => {
                    listed.insert(kind);
                    ipam::outage::working(&settings.api_server, kind);
                }
                Seen::Changed => {}
                // One line per outage for the whole of bgpd (`ipam::outage`); a 410
                // Gone is a re-list, not an outage.
                Seen::Gone(kind, error) => ipam::outage::gone(&settings.api_server, kind, &error),
                Seen::Failed(kind, error) => {
                    ipam::outage::failed(&settings.api_server, kind, &error)
                }
            }
        }
        if listed.len() < 4 {
            continue;
        }
        let computed = state.compute(&settings, &configurations, &peers, &nodes, &secrets);
        let refusals = state.refusals(
            &settings.node,
            &computed,
            &peers,
            &nodes,
            leading.as_ref().is_none_or(|leads| *leads.borrow()),
        );
        out.send_if_modified(|current| {
            if current.as_ref() == Some(&computed) {
                false
            } else {
                *current = Some(computed);
                true
            }
        });
        if out.is_closed() {
            return;
        }
        write_statuses(&peers_api, &configurations_api, &mut state, &settings).await;
        recorder.post(&refusals).await;
    }
}

/// Resolves when this node becomes the leader; never without a Lease, or once the
/// Lease's sender is gone.
async fn became_leader(leading: &mut Option<watch::Receiver<bool>>) -> Option<()> {
    let Some(receiver) = leading else {
        return std::future::pending().await;
    };
    loop {
        if receiver.changed().await.is_err() {
            *leading = None;
            return std::future::pending().await;
        }
        if *receiver.borrow_and_update() {
            return Some(());
        }
    }
}

/// One kind's reflector as a stream of what it saw.
fn follow<K>(
    kind: &'static str,
    api: Api<K>,
    writer: reflector::store::Writer<K>,
) -> std::pin::Pin<Box<dyn Stream<Item = Seen> + Send>>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    Box::pin(stream.map(move |event| match event {
        Ok(watcher::Event::InitDone) => Seen::Listed(kind),
        Ok(_) => Seen::Changed,
        Err(watcher::Error::WatchError(status)) if status.code == 410 => {
            Seen::Gone(kind, status.to_string())
        }
        Err(error) => Seen::Failed(kind, ipam::outage::describe(&error)),
    }))
}

/// What the watch remembers between changes.
#[derive(Default)]
struct State {
    /// The last accepted version of each `BGPPeer`, by name.
    peers: BTreeMap<String, Peer>,
    configuration: Option<Configuration>,
    /// The verdict of each resource ("BGPPeer NAME"), with the generation it is for,
    /// as last written to its status.
    written: BTreeMap<String, (Option<i64>, Result<(), Refusal>)>,
    /// The verdicts to write.
    verdicts: BTreeMap<String, (Option<i64>, Result<(), Refusal>)>,
    /// The object of each verdict, for its Event.
    references: BTreeMap<String, k8s_openapi::api::core::v1::ObjectReference>,
}

impl State {
    fn compute(
        &mut self,
        settings: &WatchSettings,
        configurations: &Store<BgpConfiguration>,
        peers: &Store<BgpPeer>,
        nodes: &Store<Node>,
        secrets: &Store<Secret>,
    ) -> NodeSettings {
        self.verdicts.clear();
        self.references.clear();
        let default = configurations
            .state()
            .into_iter()
            .find(|c| c.name_any() == DEFAULT_CONFIGURATION);
        match default {
            None => self.configuration = None,
            Some(resource) => {
                let verdict = translate::configuration(&resource.spec);
                if let Ok(configuration) = &verdict {
                    self.configuration = Some(configuration.clone());
                }
                let what = format!("BGPConfiguration {}", resource.name_any());
                self.references
                    .insert(what.clone(), events::reference(resource.as_ref()));
                self.verdicts
                    .insert(what, (resource.meta().generation, verdict.map(drop)));
            }
        }
        let mut present = BTreeSet::new();
        let mut listed: Vec<_> = peers.state();
        listed.sort_by_key(|p| p.name_any());
        for resource in listed {
            let name = resource.name_any();
            let verdict = translate::peer(&name, &resource.spec);
            if let Ok(peer) = &verdict {
                self.peers.insert(name.clone(), peer.clone());
            }
            let what = format!("BGPPeer {name}");
            self.references
                .insert(what.clone(), events::reference(resource.as_ref()));
            self.verdicts
                .insert(what, (resource.meta().generation, verdict.map(drop)));
            present.insert(name);
        }
        self.peers.retain(|name, _| present.contains(name));
        let facts: Vec<NodeFacts> = nodes
            .state()
            .iter()
            .map(|node| NodeFacts::from_node(node))
            .collect();
        let me = facts
            .iter()
            .find(|node| node.name == settings.node)
            .cloned()
            .unwrap_or_else(|| NodeFacts {
                name: settings.node.clone(),
                ..NodeFacts::default()
            });
        let secrets = secrets.state();
        let secret = |reference: &SecretKeyRef| {
            let secret = secrets.iter().find(|s| s.name_any() == reference.name)?;
            let bytes = secret.data.as_ref()?.get(&reference.key)?;
            String::from_utf8(bytes.0.clone()).ok()
        };
        let peers: Vec<Peer> = self.peers.values().cloned().collect();
        let computed = translate::node_settings(
            &me,
            &settings.addresses,
            self.configuration.as_ref(),
            &peers,
            &facts,
            secret,
        );
        for problem in &computed.problems {
            tracing::warn!(node = %settings.node, "{problem}");
        }
        computed
    }

    /// The refusals to post as Events: this node's problems, and with `cluster_wide`
    /// the refused resources (the same on every node).
    fn refusals(
        &self,
        node: &str,
        computed: &NodeSettings,
        peers: &Store<BgpPeer>,
        nodes: &Store<Node>,
        cluster_wide: bool,
    ) -> Vec<Refused> {
        let mut out = Vec::new();
        if cluster_wide {
            for (what, (generation, result)) in &self.verdicts {
                if let (Err(refusal), Some(reference)) = (result, self.references.get(what)) {
                    out.push(Refused {
                        regarding: reference.clone(),
                        generation: *generation,
                        reason: refusal.reason(),
                        note: format!("{what}: {refusal}"),
                    });
                }
            }
        }
        for problem in &computed.problems {
            let (regarding, generation) = match &problem.subject {
                Subject::Node(name) => match nodes.state().iter().find(|n| n.name_any() == *name) {
                    Some(object) => (events::reference(object.as_ref()), None),
                    None => continue,
                },
                Subject::BgpPeer(name) => {
                    match peers.state().iter().find(|p| p.name_any() == *name) {
                        Some(object) => {
                            (events::reference(object.as_ref()), object.meta().generation)
                        }
                        None => continue,
                    }
                }
            };
            out.push(Refused {
                regarding,
                generation,
                reason: problem.refusal.reason(),
                note: format!("node {node}: {problem}"),
            });
        }
        out
    }
}

/// Writes the `Accepted` condition of each resource whose verdict changed.
async fn write_statuses(
    peers: &Api<BgpPeer>,
    configurations: &Api<BgpConfiguration>,
    state: &mut State,
    settings: &WatchSettings,
) {
    let verdicts = std::mem::take(&mut state.verdicts);
    for (what, verdict) in verdicts {
        if state.written.get(&what) == Some(&verdict) {
            continue;
        }
        let (generation, result) = &verdict;
        let condition = Condition {
            type_: "Accepted".into(),
            status: if result.is_ok() { "True" } else { "False" }.into(),
            reason: if result.is_ok() { "Valid" } else { "Invalid" }.into(),
            message: result
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default(),
            observed_generation: *generation,
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
        };
        if let Err(reason) = result {
            tracing::warn!("{what} refused: {reason}");
        }
        let status =
            serde_json::json!({ "status": ResourceStatus { conditions: vec![condition] } });
        let patch = Patch::Merge(&status);
        let params = PatchParams::default();
        let written = match what.split_once(' ') {
            Some(("BGPPeer", name)) => peers.patch_status(name, &params, &patch).await.map(drop),
            Some((_, name)) => configurations
                .patch_status(name, &params, &patch)
                .await
                .map(drop),
            None => Ok(()),
        };
        match written {
            Ok(()) => {
                state.written.insert(what, verdict);
            }
            Err(error) => tracing::warn!(
                "Kubernetes API server {}: writing the status of {what}: {error}",
                settings.api_server
            ),
        }
    }
}
