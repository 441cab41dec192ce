//! Answers control requests: neighbor status from the supervisor (with prefix
//! counters from the rib task), routes from the rib task, the FIB from the fib task,
//! operator commands and reloads through the supervisor.

use std::time::{Instant, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::protocol::{NeighborEntry, Request, Response};
use crate::fib::FibView;
use crate::ipam::IpamHandle;
use crate::ipam::ops::IpamRequest;
use crate::session::addresses::canonical;
use crate::supervisor::{NeighborSnapshot, Supervisor};
use crate::tasks::{PeerCounters, RibInput, RibQuery};
use crate::view::{NeighborView, RouteQuery};

/// What the control server talks to.
#[derive(Debug)]
pub struct Handler {
    pub supervisor: Supervisor,
    pub rib: mpsc::Sender<RibInput>,
    /// `None` when `[fib] enabled = false`.
    pub fib: Option<FibView>,
    /// `None` without `[ipam]`.
    pub ipam: Option<IpamHandle>,
}

impl Handler {
    pub async fn handle(&self, request: Request) -> Response {
        match self.answer(request).await {
            Ok(value) => Response::Ok(value),
            Err(message) => Response::Error(message),
        }
    }

    async fn answer(&self, request: Request) -> Result<Value, String> {
        match request {
            Request::ShowNeighbors => {
                let mut entries = Vec::new();
                for snapshot in self.supervisor.neighbors().await {
                    entries.push(self.entry(&snapshot, false).await);
                }
                to_value(&entries)
            }
            Request::ShowNeighbor { address } => {
                let address = canonical(address);
                let snapshot = self
                    .supervisor
                    .neighbors()
                    .await
                    .into_iter()
                    .find(|snapshot| snapshot.status.address == address)
                    .ok_or_else(|| format!("no neighbor {address}"))?;
                to_value(&self.entry(&snapshot, true).await)
            }
            Request::ShowRoutes { query } => self.routes(query).await,
            Request::ShowFib => {
                let fib = self
                    .fib
                    .as_ref()
                    .ok_or("the FIB is disabled ([fib] enabled = false)")?;
                let snapshot = fib.snapshot().await.map_err(|e| format!("fib: {e}"))?;
                to_value(&snapshot)
            }
            Request::Neighbor {
                address,
                action,
                message,
            } => self
                .supervisor
                .neighbor(address, action, message)
                .await
                .map(Value::String),
            Request::Reload => to_value(&self.supervisor.reload().await?),
            Request::Ipam { request } => self.ipam(&request).await,
            Request::IpamChanged => {
                if let Some(ipam) = &self.ipam {
                    ipam.notify();
                }
                Ok(Value::Null)
            }
        }
    }

    /// An IPAM command against bgpd's datastore; a change also makes the IPAM task
    /// re-read at once.
    async fn ipam(&self, request: &IpamRequest) -> Result<Value, String> {
        let ipam = self.ipam.as_ref().ok_or(
            "IPAM is not configured in bgpd (no [ipam] section); give bgpctl --datastore URL",
        )?;
        let client = ipam.client().await.map_err(|e| e.to_string())?;
        let answer = crate::ipam::ops::execute(&client, request).await;
        if !request.is_read_only() {
            ipam.notify();
        }
        answer.map(Value::String).map_err(|e| e.to_string())
    }

    async fn routes(&self, query: RouteQuery) -> Result<Value, String> {
        if let Some(neighbor) = query.neighbor {
            let known = self
                .supervisor
                .neighbors()
                .await
                .iter()
                .any(|snapshot| snapshot.status.address == canonical(neighbor));
            if !known {
                return Err(format!("no neighbor {neighbor}"));
            }
        }
        let (reply, answer) = oneshot::channel();
        self.rib
            .send(RibInput::Query(RibQuery::Routes { query, reply }))
            .await
            .map_err(|_| "the rib task is gone".to_owned())?;
        let routes = answer
            .await
            .map_err(|_| "the rib task did not answer".to_owned())?;
        to_value(&routes)
    }

    async fn counters(&self, snapshot: &NeighborSnapshot) -> PeerCounters {
        let (reply, answer) = oneshot::channel();
        let query = RibInput::Query(RibQuery::PeerCounters {
            peer: snapshot.status.peer,
            reply,
        });
        if self.rib.send(query).await.is_err() {
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
        let detail = detail.then(|| detail_of(snapshot, &counters, now));
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
fn detail_of(snapshot: &NeighborSnapshot, counters: &PeerCounters, now: Instant) -> Value {
    let status = &snapshot.status;
    let last_error = status.last_error.as_ref().map(|error| {
        json!({
            "reason": error.reason,
            "unix_time": error.at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        })
    });
    json!({
        "description": status.description,
        "state": status.state.name(),
        "seconds_in_state": status.seconds_in_state(now),
        "admin_down": status.admin_down,
        "passive": status.passive,
        "dynamic_range": status.range.map(|r| r.to_string()),
        "configured_remote_asn": status.remote_asn,
        "timers": {
            "hold_time": status.hold_time,
            "keepalive": status.keepalive,
            "connect_retry": status.connect_retry,
        },
        "connection": status.connection,
        "negotiated": status.negotiated,
        "messages_sent": snapshot.sent,
        "messages_received": snapshot.received,
        "prefixes": counters,
        "established_count": status.established_count,
        "last_error": last_error,
    })
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|error| format!("cannot encode the answer: {error}"))
}
