//! The supervisor task: owns the neighbor set, the listeners and their TCP-MD5 keys.
//!
//! - Starts one session per configured neighbor, and one per address that connects
//!   from a `[[bgp.listen_range]]` (dynamic neighbors; they go when their session
//!   does). Connections from anywhere else are closed.
//! - [`PeerId`]s are stable per address for the life of the process, so a neighbor
//!   that restarts (graceful restart) meets its stale routes again.
//! - A neighbor's counters (messages, NOTIFICATIONs, malformed UPDATEs, times
//!   Established) live as long as it is in the set, across its sessions, also when
//!   its session task is started again; each snapshot says where the neighbor came
//!   from ([`NeighborKind`]).
//! - Reload (`bgpctl reload`, SIGHUP): re-reads the file; adds, removes (Cease 6/3)
//!   and changes neighbors. A change to what the OPEN or the connection depends on
//!   restarts that session only; other changes apply in place, and policy changes
//!   reach the rib task as `RibInput::Reconfigure`. A file with errors changes
//!   nothing.
//! - Node mesh (`[bgp] node_mesh`): the IPAM task hands over the neighbors the node
//!   registry asks for ([`Supervisor::set_mesh`]); they join the configured ones
//!   (a neighbor configured in the file wins) and go through the same add, change
//!   and remove (Cease 6/3) as a reload, with stable PeerIds.
//! - Cluster (`[kubernetes]`): the cluster task hands over the neighbors the
//!   `BGPPeer` resources give this node, and the cluster id of its Node
//!   ([`Supervisor::set_cluster`]); they apply like a reload (only the sessions whose
//!   settings changed reset). The file wins over them, and they over the mesh.
//! - Shutdown: Cease / Administrative Shutdown to every peer, waiting (bounded) for
//!   the NOTIFICATIONs to be written.
//! - Session tasks run in one `JoinSet`, so every end is seen. A session task of a
//!   neighbor still in the set that ends (a panic in builds that unwind, or a return
//!   it should not make) is reported to the rib task as `PeerDown` without
//!   `stale_for`, so its routes leave the RIB and the kernel, and the session is
//!   started again (a dynamic neighbor is forgotten instead: its peer reconnects).
//!
//! Calling contract: [`spawn`] opens the listeners (failing if one cannot be opened)
//! and returns a [`Supervisor`] handle; requests travel on a bounded channel with
//! oneshot replies.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bgp_proto::Notification;
use bgp_proto::notification::{cease_subcode, code};
use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinError, JoinSet};

use crate::config::{Config, NeighborConfig};
use crate::events::Events;
use crate::listener::{Accepted, Listeners};
use crate::session::addresses::canonical;
use crate::session::status::MessageCount;
use crate::session::{
    self, History, MessageCounters, NeighborSettings, NeighborStatus, SessionCommand,
    SessionHandle, SpeakerSettings,
};
use crate::tasks::{PeerId, RibInput};
pub use control_proto::{NeighborAction, ReloadSummary};

/// Requests queued to the supervisor.
pub const REQUEST_CAPACITY: usize = 64;
/// Longest a shutdown waits for the sessions' NOTIFICATIONs.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the control server and the daemon ask the supervisor.
#[derive(Debug)]
pub enum Request {
    /// Every neighbor's status.
    Neighbors {
        reply: oneshot::Sender<Vec<NeighborSnapshot>>,
    },
    /// An operator command for one neighbor.
    Neighbor {
        address: IpAddr,
        action: NeighborAction,
        /// The shutdown communication of `shutdown` and `reset`.
        message: Option<String>,
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// Re-read the configuration file.
    Reload {
        reply: oneshot::Sender<Result<ReloadSummary, String>>,
    },
    /// The node mesh's neighbors changed (the whole set).
    Mesh {
        neighbors: Vec<NeighborConfig>,
        reply: oneshot::Sender<ReloadSummary>,
    },
    /// The cluster's part changed (the whole of it).
    Cluster {
        part: ClusterPart,
        reply: oneshot::Sender<ReloadSummary>,
    },
    /// Stop every session (Cease 6/2 with `message`) and end.
    Shutdown {
        message: String,
        reply: oneshot::Sender<()>,
    },
}

/// What the Kubernetes cluster says about this node's BGP (the cluster task's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterPart {
    /// From `BGPPeer`s.
    pub neighbors: Vec<NeighborConfig>,
    /// The Node's route reflector cluster id.
    pub cluster_id: Option<std::net::Ipv4Addr>,
    /// `BGPConfiguration` `nodeToNodeMeshEnabled`, in force where the file does not
    /// set `[bgp] node_mesh`.
    pub node_mesh: Option<bool>,
}

/// A neighbor's status and counters at one moment.
#[derive(Clone, Debug)]
pub struct NeighborSnapshot {
    pub status: NeighborStatus,
    pub sent: MessageCount,
    pub received: MessageCount,
    /// Where the neighbor comes from.
    pub kind: NeighborKind,
    /// Every counter of the neighbor (NOTIFICATIONs, malformed UPDATEs, ...), read
    /// when needed.
    pub counters: Arc<MessageCounters>,
}

/// Where a neighbor comes from; the file wins over the cluster, the cluster over the
/// node mesh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NeighborKind {
    /// `[[bgp.neighbor]]` in the file.
    Configured,
    /// An address of a `[[bgp.listen_range]]` that connected.
    Dynamic,
    /// A Kubernetes `BGPPeer`.
    Cluster,
    /// The node mesh (another node of the IPAM node registry).
    Mesh,
}

impl NeighborKind {
    /// `configured`, `dynamic`, `cluster` or `mesh`.
    pub fn name(self) -> &'static str {
        match self {
            NeighborKind::Configured => "configured",
            NeighborKind::Dynamic => "dynamic",
            NeighborKind::Cluster => "cluster",
            NeighborKind::Mesh => "mesh",
        }
    }
}

/// The way to the supervisor task.
#[derive(Clone, Debug)]
pub struct Supervisor {
    requests: mpsc::Sender<Request>,
}

impl Supervisor {
    pub async fn neighbors(&self) -> Vec<NeighborSnapshot> {
        let (reply, answer) = oneshot::channel();
        if self
            .requests
            .send(Request::Neighbors { reply })
            .await
            .is_err()
        {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    pub async fn neighbor(
        &self,
        address: IpAddr,
        action: NeighborAction,
        message: Option<String>,
    ) -> Result<String, String> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Neighbor {
                address,
                action,
                message,
                reply,
            })
            .await
            .map_err(|_| stopping())?;
        answer.await.map_err(|_| stopping())?
    }

    pub async fn reload(&self) -> Result<ReloadSummary, String> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Reload { reply })
            .await
            .map_err(|_| stopping())?;
        answer.await.map_err(|_| stopping())?
    }

    /// Replaces the node mesh's neighbors (ignored while `[bgp] node_mesh` is off).
    pub async fn set_mesh(&self, neighbors: Vec<NeighborConfig>) -> Result<ReloadSummary, String> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Mesh { neighbors, reply })
            .await
            .map_err(|_| stopping())?;
        answer.await.map_err(|_| stopping())
    }

    /// Replaces the cluster's part (the cluster task's).
    pub async fn set_cluster(&self, part: ClusterPart) -> Result<ReloadSummary, String> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Cluster { part, reply })
            .await
            .map_err(|_| stopping())?;
        answer.await.map_err(|_| stopping())
    }

    pub async fn shutdown(&self, message: &str) {
        let (reply, answer) = oneshot::channel();
        let request = Request::Shutdown {
            message: message.to_owned(),
            reply,
        };
        if self.requests.send(request).await.is_ok() {
            let _ = answer.await;
        }
    }
}

fn stopping() -> String {
    "bgpd is stopping".to_owned()
}

/// Opens the listeners and starts the supervisor with the sessions of `config`.
pub fn spawn(
    config_path: Option<PathBuf>,
    config: Arc<Config>,
    speaker: Arc<SpeakerSettings>,
    rib: mpsc::Sender<RibInput>,
    events: Events,
    bfd: Option<crate::bfd_task::BfdHandle>,
) -> anyhow::Result<(Supervisor, tokio::task::JoinHandle<()>)> {
    let (accepted_tx, accepted) = mpsc::channel(64);
    let mut listeners = Listeners::open(&config.bgp.listen, &accepted_tx)
        .map_err(|(address, error)| anyhow::anyhow!("cannot listen on {address}: {error}"))?;
    listeners.set_keys(md5_keys(&config));
    let (requests_tx, requests) = mpsc::channel(REQUEST_CAPACITY);
    let mut task = Task {
        config_path,
        file_config: config.clone(),
        cluster: ClusterPart::default(),
        mesh: Vec::new(),
        config,
        speaker,
        rib,
        events,
        bfd,
        neighbors: BTreeMap::new(),
        ids: HashMap::new(),
        next_id: 1,
        listeners,
        accepted_tx,
        accepted,
        requests,
        sessions: JoinSet::new(),
    };
    let configured: Vec<_> = task.config.bgp.neighbors.clone();
    for neighbor in &configured {
        task.start_session(
            Arc::new(NeighborSettings::from_neighbor(neighbor)),
            History::default(),
        );
    }
    let handle = tokio::spawn(task.run());
    Ok((
        Supervisor {
            requests: requests_tx,
        },
        handle,
    ))
}

struct Task {
    config_path: Option<PathBuf>,
    /// The configuration as the file has it.
    file_config: Arc<Config>,
    /// The cluster's neighbors and cluster id.
    cluster: ClusterPart,
    /// The node mesh's neighbors.
    mesh: Vec<NeighborConfig>,
    /// In force: the file's configuration plus the node mesh's neighbors.
    config: Arc<Config>,
    speaker: Arc<SpeakerSettings>,
    rib: mpsc::Sender<RibInput>,
    events: Events,
    /// The BFD task, for sessions configured with `bfd`.
    bfd: Option<crate::bfd_task::BfdHandle>,
    neighbors: BTreeMap<IpAddr, Neighbor>,
    ids: HashMap<IpAddr, PeerId>,
    next_id: PeerId,
    listeners: Listeners,
    accepted_tx: mpsc::Sender<Accepted>,
    accepted: mpsc::Receiver<Accepted>,
    requests: mpsc::Receiver<Request>,
    /// Every session task; each end is matched to its neighbor by task id.
    sessions: JoinSet<()>,
}

struct Neighbor {
    /// Shared with the neighbor's session task.
    settings: Arc<NeighborSettings>,
    handle: SessionHandle,
}

impl Task {
    async fn run(mut self) {
        loop {
            tokio::select! {
                request = self.requests.recv() => match request {
                    Some(Request::Shutdown { message, reply }) => {
                        self.shutdown(&message).await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(request) => self.request(request).await,
                    None => {
                        self.shutdown("bgpd is stopping").await;
                        return;
                    }
                },
                Some(accepted) = self.accepted.recv() => self.accepted(accepted),
                Some(ended) = self.sessions.join_next_with_id() => self.session_ended(ended).await,
            }
        }
    }

    async fn request(&mut self, request: Request) {
        match request {
            Request::Neighbors { reply } => {
                let list = self
                    .neighbors
                    .iter()
                    .map(|(address, neighbor)| NeighborSnapshot {
                        status: neighbor.handle.status.get(),
                        sent: neighbor.handle.counters.sent(),
                        received: neighbor.handle.counters.received(),
                        kind: self.kind_of(*address, &neighbor.settings),
                        counters: neighbor.handle.counters.clone(),
                    })
                    .collect();
                let _ = reply.send(list);
            }
            Request::Neighbor {
                address,
                action,
                message,
                reply,
            } => {
                let result = self
                    .neighbor_action(canonical(address), action, message)
                    .await;
                let _ = reply.send(result);
            }
            Request::Reload { reply } => {
                let _ = reply.send(self.reload().await);
            }
            Request::Mesh { neighbors, reply } => {
                let changed = neighbors != self.mesh;
                self.mesh = neighbors;
                let _ = reply.send(self.part_changed(changed, "node mesh changed").await);
            }
            Request::Cluster { part, reply } => {
                let changed = part != self.cluster;
                self.cluster = part;
                let summary = self
                    .part_changed(changed, "Kubernetes BGP settings changed")
                    .await;
                let _ = reply.send(summary);
            }
            Request::Shutdown { .. } => {}
        }
    }

    /// After the mesh's or the cluster's part was replaced (`changed`: by something
    /// else): the neighbor set made to match, and a line saying what moved.
    async fn part_changed(&mut self, changed: bool, what: &str) -> ReloadSummary {
        if !changed {
            return ReloadSummary::default();
        }
        let summary = self.apply(self.in_force(&self.file_config)).await;
        if !(summary.added.is_empty()
            && summary.removed.is_empty()
            && summary.reset.is_empty()
            && summary.updated.is_empty())
        {
            tracing::info!(
                added = ?summary.added,
                removed = ?summary.removed,
                reset = ?summary.reset,
                updated = ?summary.updated,
                "{what}"
            );
        }
        summary
    }

    async fn neighbor_action(
        &mut self,
        address: IpAddr,
        action: NeighborAction,
        message: Option<String>,
    ) -> Result<String, String> {
        let neighbor = self
            .neighbors
            .get(&address)
            .ok_or_else(|| format!("no neighbor {address}"))?;
        let commands = neighbor.handle.commands.clone();
        let send = |command| async {
            commands
                .send(command)
                .await
                .map_err(|_| format!("the session of {address} has ended"))
        };
        match action {
            NeighborAction::Reset => {
                send(SessionCommand::Reset { message }).await?;
                Ok(format!("neighbor {address}: session reset"))
            }
            NeighborAction::Shutdown => {
                send(SessionCommand::Shutdown { message }).await?;
                Ok(format!("neighbor {address}: shut down"))
            }
            NeighborAction::Enable => {
                send(SessionCommand::Enable).await?;
                Ok(format!("neighbor {address}: enabled"))
            }
            NeighborAction::Refresh => {
                let (reply, answer) = oneshot::channel();
                send(SessionCommand::Refresh { reply }).await?;
                answer
                    .await
                    .map_err(|_| format!("the session of {address} has ended"))??;
                Ok(format!("neighbor {address}: route refresh requested"))
            }
        }
    }

    /// A connection a listener accepted: to its neighbor's session, to a new dynamic
    /// neighbor, or closed.
    fn accepted(&mut self, accepted: Accepted) {
        let address = canonical(accepted.peer.ip());
        if self
            .neighbors
            .get(&address)
            .is_some_and(|n| n.settings.range.is_some() && n.handle.task.is_finished())
        {
            // A dynamic neighbor whose end is not processed yet.
            self.neighbors.remove(&address);
        }
        if let Some(neighbor) = self.neighbors.get(&address) {
            if neighbor
                .handle
                .commands
                .try_send(SessionCommand::Incoming(accepted.stream))
                .is_err()
            {
                tracing::warn!(neighbor = %address, "session busy: connection closed");
            }
            return;
        }
        let Some(range) = self.config.listen_range(address).cloned() else {
            tracing::info!(peer = %accepted.peer, "connection from an address that is no neighbor: closed");
            return;
        };
        if let Some(max) = range.max_neighbors {
            let count = self
                .neighbors
                .values()
                .filter(|n| n.settings.range == Some(range.prefix))
                .count();
            if count >= max as usize {
                tracing::warn!(peer = %accepted.peer, range = %range.prefix, "listen range full ({max} neighbors): connection closed");
                return;
            }
        }
        let settings = NeighborSettings::from_range(&range, address);
        if let Some(handle) = self.start_session(Arc::new(settings), History::default()) {
            tracing::info!(peer = %address, range = %range.prefix, "dynamic neighbor");
            let _ = handle.try_send(SessionCommand::Incoming(accepted.stream));
        }
    }

    /// A session task ended. Tasks of neighbors no longer in the set were stopped on
    /// purpose; a dynamic neighbor's task ends with its connection. Any other end is
    /// a fault of that session alone: its routes are withdrawn and it starts again.
    async fn session_ended(&mut self, ended: Result<(tokio::task::Id, ()), JoinError>) {
        let (id, failure) = match ended {
            Ok((id, ())) => (id, None),
            Err(error) => (error.id(), Some(error)),
        };
        let Some(address) = self
            .neighbors
            .iter()
            .find(|(_, neighbor)| neighbor.handle.task.id() == id)
            .map(|(address, _)| *address)
        else {
            return;
        };
        let Some(neighbor) = self.neighbors.remove(&address) else {
            return;
        };
        let dynamic = neighbor.settings.range.is_some();
        let Some(why) = failure.map(crate::supervision::ended_why).or_else(|| {
            (!dynamic).then(|| String::from("it returned while the neighbor is configured"))
        }) else {
            tracing::info!(neighbor = %address, "dynamic neighbor gone");
            return;
        };
        tracing::error!(
            neighbor = %address,
            "the session task of {address} ended unexpectedly ({why}): its routes are withdrawn{}",
            if dynamic { "" } else { " and the session starts again" }
        );
        let down = RibInput::PeerDown {
            peer: neighbor.handle.peer,
            stale_for: None,
        };
        if self.rib.send(down).await.is_err() {
            tracing::warn!("the rib task is gone");
        }
        if !dynamic {
            self.start_session(neighbor.settings, neighbor.handle.history());
        }
    }

    /// Starts a session going on from `history`; returns its command sender.
    fn start_session(
        &mut self,
        settings: Arc<NeighborSettings>,
        history: History,
    ) -> Option<crate::session::CommandSender> {
        let address = settings.address;
        let next = &mut self.next_id;
        let peer = *self.ids.entry(address).or_insert_with(|| {
            let id = *next;
            *next += 1;
            id
        });
        match session::spawn(
            peer,
            Arc::clone(&settings),
            self.speaker.clone(),
            self.rib.clone(),
            self.events.clone(),
            self.bfd.clone(),
            &mut self.sessions,
            history,
        ) {
            Ok(handle) => {
                let commands = handle.commands.clone();
                self.neighbors
                    .insert(address, Neighbor { settings, handle });
                Some(commands)
            }
            Err(error) => {
                tracing::error!(neighbor = %address, "session not started: {error}");
                None
            }
        }
    }

    async fn reload(&mut self) -> Result<ReloadSummary, String> {
        let Some(path) = self.config_path.clone() else {
            return Err("bgpd runs without a configuration file".into());
        };
        let config = Arc::new(Config::load(&path).map_err(|errors| errors.to_string())?);
        // The IPAM task works from the configuration it started with.
        if config.ipam != self.file_config.ipam
            || (config.node_mesh() && !self.file_config.node_mesh())
        {
            tracing::warn!(
                "[ipam] changed or [bgp] node_mesh turned on: that takes effect at the next start"
            );
        }
        self.file_config = config.clone();
        let summary = self.apply(self.in_force(&config)).await;
        tracing::info!(?summary, "configuration reloaded");
        Ok(summary)
    }

    /// Makes the neighbor set match `config`.
    async fn apply(&mut self, config: Arc<Config>) -> ReloadSummary {
        let mut summary = ReloadSummary::default();
        let mut speaker = SpeakerSettings::from_config(&config);
        speaker.restarting_until = self.speaker.restarting_until;
        let speaker = Arc::new(speaker);
        let speaker_changed = *speaker != *self.speaker;
        self.speaker = speaker.clone();
        self.config = config.clone();

        let addresses: Vec<IpAddr> = self.neighbors.keys().copied().collect();
        for address in addresses {
            let new = NeighborSettings::lookup(&config, address);
            let Some(neighbor) = self.neighbors.get_mut(&address) else {
                continue;
            };
            match new {
                None => {
                    let neighbor = self.neighbors.remove(&address);
                    if let Some(neighbor) = neighbor {
                        let peer = neighbor.handle.peer;
                        stop(
                            neighbor,
                            Notification::new(
                                code::CEASE,
                                cease_subcode::PEER_DECONFIGURED,
                                Vec::new(),
                            ),
                        );
                        // Routes it left stale (a graceful restart it will now never
                        // finish: a killed node whose Node was deleted) go with it.
                        let down = RibInput::PeerDown {
                            peer,
                            stale_for: None,
                        };
                        if self.rib.send(down).await.is_err() {
                            tracing::warn!("the rib task is gone");
                        }
                    }
                    summary.removed.push(address);
                }
                // A dynamic neighbor that is now configured (or the reverse) starts over.
                Some(new) if new.range.is_some() != neighbor.settings.range.is_some() => {
                    let mut history = History::default();
                    if let Some(old) = self.neighbors.remove(&address) {
                        history = old.handle.history();
                        stop(
                            old,
                            Notification::new(
                                code::CEASE,
                                cease_subcode::OTHER_CONFIGURATION_CHANGE,
                                Vec::new(),
                            ),
                        );
                    }
                    if new.range.is_none() {
                        self.start_session(Arc::new(new), history);
                    }
                    summary.reset.push(address);
                }
                Some(new) => {
                    let changed = new != *neighbor.settings;
                    if !changed && !speaker_changed {
                        summary.unchanged += 1;
                        continue;
                    }
                    if neighbor.settings.needs_new_open(&new) || speaker_changed {
                        summary.reset.push(address);
                    } else {
                        summary.updated.push(address);
                    }
                    let new = Arc::new(new);
                    neighbor.settings = Arc::clone(&new);
                    let command = SessionCommand::Reconfigure {
                        settings: new,
                        speaker: speaker.clone(),
                    };
                    if neighbor.handle.commands.send(command).await.is_err() {
                        tracing::warn!(neighbor = %address, "session ended before its reconfiguration");
                    }
                }
            }
        }
        for neighbor in &config.bgp.neighbors {
            if !self.neighbors.contains_key(&neighbor.address) {
                self.start_session(
                    Arc::new(NeighborSettings::from_neighbor(neighbor)),
                    History::default(),
                );
                summary.added.push(neighbor.address);
            }
        }
        self.listeners.update(&config.bgp.listen, &self.accepted_tx);
        self.listeners.set_keys(md5_keys(&config));
        if self.rib.send(RibInput::Reconfigure(config)).await.is_err() {
            tracing::warn!("the rib task is gone");
        }
        summary
    }

    async fn shutdown(&mut self, message: &str) {
        self.listeners.close();
        let notification = Notification::shutdown(cease_subcode::ADMINISTRATIVE_SHUTDOWN, message);
        let mut waits = Vec::new();
        for (_, neighbor) in std::mem::take(&mut self.neighbors) {
            let (done, finished) = oneshot::channel();
            let command = SessionCommand::Stop {
                notification: notification.clone(),
                done,
            };
            if neighbor.handle.commands.send(command).await.is_ok() {
                waits.push(finished);
            }
        }
        let all = futures::future::join_all(waits);
        if tokio::time::timeout(STOP_TIMEOUT, all).await.is_err() {
            tracing::warn!("some sessions did not close within {STOP_TIMEOUT:?}");
        }
    }
}

impl Task {
    /// Where the neighbor at `address` comes from: a listen range, the file, the
    /// cluster's `BGPPeer`s, else the node mesh (what `in_force` added last).
    fn kind_of(&self, address: IpAddr, settings: &NeighborSettings) -> NeighborKind {
        if settings.range.is_some() {
            NeighborKind::Dynamic
        } else if self.file_config.neighbor(address).is_some() {
            NeighborKind::Configured
        } else if self.cluster.neighbors.iter().any(|n| n.address == address) {
            NeighborKind::Cluster
        } else {
            NeighborKind::Mesh
        }
    }

    /// The configuration in force: the file's; plus the cluster's neighbors and
    /// cluster id where the file has none; plus the node mesh's neighbors when
    /// `node_mesh` is on (the file's `[bgp] node_mesh`, else the cluster's
    /// `nodeToNodeMeshEnabled`, else on with `[ipam]`), where neither has one, with
    /// the file's `[bgp] node_mesh_bfd`.
    fn in_force(&self, file: &Arc<Config>) -> Arc<Config> {
        let meshing = match (file.bgp.node_mesh, self.cluster.node_mesh) {
            (None, Some(cluster)) => cluster && file.node_mesh(),
            _ => file.node_mesh(),
        };
        let mesh = if meshing { &self.mesh[..] } else { &[] };
        if mesh.is_empty() && self.cluster == ClusterPart::default() {
            return file.clone();
        }
        let mut config = Config::clone(file);
        if config.bgp.cluster_id.is_none() {
            config.bgp.cluster_id = self.cluster.cluster_id;
        }
        let mesh = mesh.iter().map(|neighbor| {
            let mut neighbor = neighbor.clone();
            neighbor.session.bfd = file.bgp.node_mesh_bfd;
            neighbor
        });
        for neighbor in self.cluster.neighbors.iter().cloned().chain(mesh) {
            if config.neighbor(neighbor.address).is_none() {
                config.bgp.neighbors.push(neighbor);
            }
        }
        Arc::new(config)
    }
}

/// Stops a session in the background (its NOTIFICATION is written while the
/// supervisor goes on).
fn stop(neighbor: Neighbor, notification: Notification) {
    let commands = neighbor.handle.commands;
    tokio::spawn(async move {
        let (done, finished) = oneshot::channel();
        if commands
            .send(SessionCommand::Stop { notification, done })
            .await
            .is_ok()
        {
            let _ = tokio::time::timeout(STOP_TIMEOUT, finished).await;
        }
    });
}

/// The TCP-MD5 keys the listeners need: one per neighbor with a password, one per
/// listen range with one.
pub fn md5_keys(config: &Config) -> BTreeMap<IpNet, String> {
    let mut keys = BTreeMap::new();
    for range in &config.bgp.listen_ranges {
        if let Some(password) = &range.password {
            keys.insert(range.prefix.trunc(), password.clone());
        }
    }
    for neighbor in &config.bgp.neighbors {
        if let Some(password) = &neighbor.password {
            keys.insert(IpNet::from(neighbor.address), password.clone());
        }
    }
    keys
}
