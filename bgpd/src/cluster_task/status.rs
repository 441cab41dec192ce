//! The node's `WrenNode` status (`cluster::status`), written on change.
//!
//! Every [`LOOK_INTERVAL`] (and at once when convergence or the IPAM task's view
//! changes) the writer reads what the other tasks already keep: the supervisor's
//! neighbors, the rib's per-peer counters (one query per peer), the IPAM task's
//! blocks and reachability. It builds the status with `cluster::status::status`,
//! and writes it only when it differs from the last one written, at most once every
//! [`MIN_WRITE_INTERVAL`]: an idle node writes nothing, a busy one once every few
//! seconds, never per UPDATE. A refused write is logged (once per distinct error)
//! and tried again at the next look.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use cluster::status::{Observed, ObservedPeer, WrenNodeStatus};
use tokio::sync::{mpsc, oneshot, watch};

use crate::ipam_task::IpamStatus;
use crate::supervisor::Supervisor;
use crate::tasks::{PeerCounters, RibInput, RibQuery};

/// How often the writer looks at the node.
pub const LOOK_INTERVAL: Duration = Duration::from_secs(2);
/// The least time between two writes.
pub const MIN_WRITE_INTERVAL: Duration = Duration::from_secs(5);

/// What the writer reads from.
pub struct Inputs {
    pub client: cluster::client::Client,
    pub api_server: String,
    pub node: String,
    pub asn: u32,
    pub supervisor: Supervisor,
    pub rib: mpsc::Sender<RibInput>,
    pub ipam: Option<watch::Receiver<IpamStatus>>,
    pub converged: watch::Receiver<bool>,
}

/// Runs the writer until bgpd stops (the supervisor or rib gone).
pub async fn run(mut inputs: Inputs) {
    let mut peers = PeerTimes::default();
    let mut written: Option<WrenNodeStatus> = None;
    let mut last_write: Option<Instant> = None;
    // The error being reported, and whether it was logged as a warning.
    let mut failing: Option<(String, bool)> = None;
    let mut converging = true;
    let mut ipam_running = true;
    let mut look = tokio::time::interval(LOOK_INTERVAL);
    look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // A sender gone (convergence is told once; the IPAM task stopped) leaves its
        // last value, read at each look.
        tokio::select! {
            _ = look.tick() => {}
            changed = inputs.converged.changed(), if converging => converging = changed.is_ok(),
            changed = next(&mut inputs.ipam), if ipam_running => ipam_running = changed.is_ok(),
        }
        if inputs.rib.is_closed() {
            return;
        }
        if last_write.is_some_and(|at| at.elapsed() < MIN_WRITE_INTERVAL) {
            continue;
        }
        let observed = observe(&inputs, &mut peers).await;
        let status = cluster::status::status(&observed, written.as_ref(), SystemTime::now());
        if written.as_ref() == Some(&status) {
            continue;
        }
        match cluster::status::write(&inputs.client, &inputs.api_server, &inputs.node, &status)
            .await
        {
            Ok(()) => {
                match failing.take() {
                    Some((error, true)) => {
                        tracing::info!(node = %inputs.node, "WrenNode status written again (was: {error})");
                    }
                    Some((error, false)) => {
                        tracing::debug!(node = %inputs.node, "WrenNode status written again (was: {error})");
                    }
                    None => {}
                }
                written = Some(status);
                last_write = Some(Instant::now());
            }
            Err(error) => {
                let text = error.to_string();
                // An outage is told once, by `ipam::outage`; a first failure may come
                // before the watches have noticed one (they fail at the same moment),
                // so it is a warning from its second sighting in a row.
                let outage = ipam::outage::is_failing(&inputs.api_server);
                let told = matches!(&failing, Some((last, logged)) if *last == text && (*logged || outage));
                if !told {
                    let quiet = outage || failing.is_none();
                    if quiet {
                        tracing::debug!("{text}; trying again in {LOOK_INTERVAL:?}");
                    } else {
                        tracing::warn!("{text}; trying again in {LOOK_INTERVAL:?}");
                    }
                    failing = Some((text, !quiet));
                }
            }
        }
    }
}

/// The next change of the IPAM task's status (never, without IPAM).
async fn next(
    ipam: &mut Option<watch::Receiver<IpamStatus>>,
) -> Result<(), watch::error::RecvError> {
    match ipam {
        Some(receiver) => receiver.changed().await,
        None => std::future::pending().await,
    }
}

async fn observe(inputs: &Inputs, peers: &mut PeerTimes) -> Observed {
    let neighbors = inputs.supervisor.neighbors().await;
    let now = Instant::now();
    let wall = SystemTime::now();
    let mut observed = Vec::with_capacity(neighbors.len());
    for snapshot in &neighbors {
        let status = &snapshot.status;
        let counters = counters(&inputs.rib, status.peer).await;
        let state = status.state.name().to_owned();
        let since = peers.since(
            status.address,
            &state,
            status.established_count,
            wall,
            now.saturating_duration_since(status.since),
        );
        observed.push(ObservedPeer {
            address: status.address,
            asn: status
                .negotiated
                .as_ref()
                .map_or(status.remote_asn, |n| n.peer_as),
            state,
            established_count: status.established_count,
            since,
            prefixes_received: counters.received,
            description: status.description.clone(),
        });
    }
    peers.keep_only(
        &neighbors
            .iter()
            .map(|n| n.status.address)
            .collect::<Vec<_>>(),
    );
    let ipam = inputs
        .ipam
        .as_ref()
        .map(|receiver| receiver.borrow().clone());
    Observed {
        asn: inputs.asn,
        peers: observed,
        blocks: ipam.as_ref().map(|s| s.blocks.clone()).unwrap_or_default(),
        converged: *inputs.converged.borrow(),
        datastore: ipam.map(|s| {
            s.reachable
                .unwrap_or_else(|| Err(String::from("not connected to the datastore yet")))
        }),
    }
}

async fn counters(rib: &mpsc::Sender<RibInput>, peer: crate::tasks::PeerId) -> PeerCounters {
    let (reply, answer) = oneshot::channel();
    if rib
        .send(RibInput::Query(RibQuery::PeerCounters { peer, reply }))
        .await
        .is_err()
    {
        return PeerCounters::default();
    }
    answer.await.unwrap_or_default()
}

/// When each peer's state began, in wall-clock time: computed once per change and
/// kept, so that an unchanged peer gives an unchanged status.
#[derive(Default)]
struct PeerTimes {
    known: HashMap<IpAddr, (String, u64, SystemTime)>,
}

impl PeerTimes {
    fn since(
        &mut self,
        address: IpAddr,
        state: &str,
        established_count: u64,
        wall: SystemTime,
        in_state: Duration,
    ) -> SystemTime {
        if let Some((known_state, count, began)) = self.known.get(&address) {
            if known_state == state && *count == established_count {
                return *began;
            }
        }
        let began = wall.checked_sub(in_state).unwrap_or(wall);
        self.known
            .insert(address, (state.to_owned(), established_count, began));
        began
    }

    fn keep_only(&mut self, addresses: &[IpAddr]) {
        self.known.retain(|address, _| addresses.contains(address));
    }
}
