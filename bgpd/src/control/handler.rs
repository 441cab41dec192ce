//! Answers control requests: neighbor status from the supervisor (with prefix
//! counters from the rib task), routes from the rib task (streamed, see
//! [`super::routes`]), the FIB from the fib task, operator commands and reloads
//! through the supervisor, IPAM commands against the datastore, health from the rib
//! task and the IPAM task, BFD sessions from the BFD task.

use std::time::Instant;

use control_proto::health::{Datastore, Health};
use control_proto::{
    Answer, IpamRequest, NeighborDetail, NeighborEntry, NeighborView, Request, Response,
    RouteQuery, Timers,
};
use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot};

use super::routes::RouteStream;
use crate::bfd_task::BfdHandle;
use crate::events::Events;
use crate::fib::FibView;
use crate::ipam_task::IpamHandle;
use crate::session::addresses::canonical;
use crate::session::status::{ConnectionEnds, negotiated_info};
use crate::supervisor::{NeighborSnapshot, Supervisor};
use crate::tasks::{PeerCounters, RibInput, RibQuery};

/// What the control server talks to.
#[derive(Debug)]
pub struct Handler {
    pub supervisor: Supervisor,
    pub rib: mpsc::Sender<RibInput>,
    /// The rib task's questions that jump its input queue (health, counters).
    pub questions: mpsc::Sender<RibQuery>,
    /// `None` when `[fib] enabled = false`.
    pub fib: Option<FibView>,
    /// `None` without `[ipam]`.
    pub ipam: Option<IpamHandle>,
    pub bfd: BfdHandle,
    /// What `monitor` clients subscribe to.
    pub events: Events,
}

impl Handler {
    /// The one-line answer to every request but `show-routes` (see [`Handler::routes`]).
    pub async fn handle(&self, request: Request) -> Response {
        match self.answer(request).await {
            Ok(answer) => Response::Ok(answer),
            Err(message) => Response::Error(message),
        }
    }

    async fn answer(&self, request: Request) -> Result<Answer, String> {
        match request {
            Request::ShowNeighbors => {
                let mut entries = Vec::new();
                for snapshot in self.supervisor.neighbors().await {
                    entries.push(self.entry(&snapshot, false).await);
                }
                Ok(Answer::Neighbors(entries))
            }
            Request::ShowNeighbor { address } => {
                let snapshot = self.neighbor_snapshot(address).await?;
                Ok(Answer::Neighbor(Box::new(
                    self.entry(&snapshot, true).await,
                )))
            }
            Request::ShowRoutes { .. } => {
                Err("show-routes is answered as a stream by the server".to_owned())
            }
            Request::Monitor { .. } => {
                Err("monitor is answered as a stream by the server".to_owned())
            }
            Request::ShowFib => {
                let fib = self
                    .fib
                    .as_ref()
                    .ok_or("the FIB is disabled ([fib] enabled = false)")?;
                let snapshot = fib.snapshot().await.map_err(|e| format!("fib: {e}"))?;
                Ok(Answer::Fib(snapshot))
            }
            Request::Neighbor {
                address,
                action,
                message,
            } => self
                .supervisor
                .neighbor(address, action, message)
                .await
                .map(Answer::Done),
            Request::Reload => Ok(Answer::Reloaded(self.supervisor.reload().await?)),
            Request::Ipam { request } => self.ipam(&request).await.map(Answer::Ipam),
            Request::IpamChanged => {
                if let Some(ipam) = &self.ipam {
                    ipam.notify();
                }
                Ok(Answer::Notified)
            }
            Request::ShowHealth => self.health().await.map(Answer::Health),
            Request::ShowBfd => self.bfd.sessions().await.map(Answer::Bfd),
        }
    }

    /// `show-health`: the rib's convergence (asked, so a stuck rib task gives no
    /// answer) and the IPAM task's last view of its datastore.
    pub async fn health(&self) -> Result<Health, String> {
        let (reply, answer) = oneshot::channel();
        self.questions
            .send(RibQuery::Converged { reply })
            .await
            .map_err(|_| String::from("the rib task is gone"))?;
        let converged = answer
            .await
            .map_err(|_| String::from("the rib task did not answer"))?;
        let datastore = match &self.ipam {
            None => Datastore::None,
            Some(ipam) => match &ipam.status().borrow().reachable {
                None => Datastore::Connecting,
                Some(Ok(())) => Datastore::Reachable,
                Some(Err(error)) => Datastore::Unreachable(error.clone()),
            },
        };
        Ok(Health {
            converged,
            datastore,
        })
    }

    /// Starts a `show-routes` answer.
    pub async fn routes(
        &self,
        query: RouteQuery,
        after: Option<IpNet>,
        limit: Option<u64>,
    ) -> Result<RouteStream, String> {
        if let Some(neighbor) = query.neighbor {
            self.neighbor_snapshot(neighbor).await?;
        }
        RouteStream::start(self.rib.clone(), query, after, limit).await
    }

    /// An IPAM command against bgpd's datastore; a change also makes the IPAM task
    /// re-read at once.
    async fn ipam(&self, request: &IpamRequest) -> Result<String, String> {
        let ipam = self.ipam.as_ref().ok_or(
            "IPAM is not configured in bgpd (no [ipam] section); give bgpctl --datastore URL",
        )?;
        let client = ipam.client().await.map_err(|e| e.to_string())?;
        let answer = ipam::ops::execute(&client, request).await;
        if !request.is_read_only() {
            ipam.notify();
        }
        answer.map_err(|e| e.to_string())
    }

    async fn neighbor_snapshot(
        &self,
        address: std::net::IpAddr,
    ) -> Result<NeighborSnapshot, String> {
        let address = canonical(address);
        self.supervisor
            .neighbors()
            .await
            .into_iter()
            .find(|snapshot| snapshot.status.address == address)
            .ok_or_else(|| format!("no neighbor {address}"))
    }

    async fn counters(&self, snapshot: &NeighborSnapshot) -> PeerCounters {
        let (reply, answer) = oneshot::channel();
        let query = RibQuery::PeerCounters {
            peer: snapshot.status.peer,
            reply,
        };
        if self.questions.send(query).await.is_err() {
            return PeerCounters::default();
        }
        answer.await.unwrap_or_default()
    }

    async fn entry(&self, snapshot: &NeighborSnapshot, detail: bool) -> NeighborEntry {
        let status = &snapshot.status;
        let counters = self.counters(snapshot).await;
        let now = Instant::now();
        let remote_asn = status
            .negotiated
            .as_ref()
            .map_or(status.remote_asn, |n| n.peer_as);
        let mut detail = detail.then(|| detail_of(snapshot, counters, now));
        if let Some(detail) = &mut detail {
            // The BFD session toward the peer, if the BGP session follows one.
            detail.bfd = self.bfd.sessions().await.ok().and_then(|sessions| {
                sessions
                    .into_iter()
                    .find(|session| session.peer == status.address)
                    .map(|session| session.state)
            });
        }
        NeighborEntry {
            view: NeighborView {
                address: status.address,
                remote_asn,
                state: status.state.name().to_owned(),
                uptime_secs: status.seconds_in_state(now),
                prefixes_received: counters.received,
                prefixes_advertised: counters.advertised,
                detail,
            },
            description: status.description.clone(),
            messages_received: snapshot.received.total(),
            messages_sent: snapshot.sent.total(),
            admin_down: status.admin_down,
            established_count: status.established_count,
        }
    }
}

/// Everything `show neighbor ADDR` adds.
fn detail_of(snapshot: &NeighborSnapshot, counters: PeerCounters, now: Instant) -> NeighborDetail {
    let status = &snapshot.status;
    NeighborDetail {
        description: status.description.clone(),
        state: status.state.name().to_owned(),
        seconds_in_state: status.seconds_in_state(now),
        admin_down: status.admin_down,
        passive: status.passive,
        dynamic_range: status.range,
        configured_remote_asn: status.remote_asn,
        timers: Timers {
            hold_time: status.hold_time,
            keepalive: status.keepalive,
            connect_retry: status.connect_retry,
        },
        connection: status.connection.as_ref().map(ConnectionEnds::info),
        negotiated: status.negotiated.as_deref().map(negotiated_info),
        messages_sent: snapshot.sent,
        messages_received: snapshot.received,
        prefixes: counters,
        established_count: status.established_count,
        last_error: status.last_error.clone(),
        bfd: None,
    }
}
