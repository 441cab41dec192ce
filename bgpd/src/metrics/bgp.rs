//! The BGP and RIB series: sessions, messages, NOTIFICATIONs, malformed UPDATEs and
//! prefixes per neighbor, and the Loc-RIB's prefixes and paths per family.
//!
//! One scrape asks two questions, one turn each: the supervisor's neighbor snapshots
//! (status, kind, the counters each neighbor keeps for as long as it is in the
//! supervisor, so they only grow across session resets) and the rib task's
//! [`RibQuery::Counts`] (counts kept as paths change, O(neighbors)). A neighbor the
//! supervisor no longer has has no series; one the rib task does not know (no
//! session, no routes) has its prefixes at 0.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use bgp_proto::Family;
use bgp_proto::fsm::State;
use control_proto::MessageCount;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use tokio::sync::oneshot;

use super::series::{self, Labels};
use crate::control::handler::Handler;
use crate::session::status::{MALFORMED_ACTIONS, NotificationCounts};
use crate::supervisor::NeighborSnapshot;
use crate::tasks::{FamilyCounts, PeerFamilyCounts, PeerId, RibCounts, RibQuery};

/// Longest a scrape waits for the rib task's counts; without them the prefix and
/// RIB series are left out of that scrape (never reported as 0).
pub const RIB_TIMEOUT: Duration = Duration::from_secs(5);

/// One count of a neighbor's family.
type PeerCount = fn(&PeerFamilyCounts) -> u64;

/// Every state of the session state machine, in RFC 4271's order.
const STATES: [State; 6] = [
    State::Idle,
    State::Connect,
    State::Active,
    State::OpenSent,
    State::OpenConfirm,
    State::Established,
];

/// The families of the per-family arrays, in their order.
const FAMILIES: [Family; 2] = [Family::IPV4_UNICAST, Family::IPV6_UNICAST];

/// One neighbor at the moment of the scrape.
#[derive(Clone, Debug)]
pub struct NeighborSample {
    pub snapshot: NeighborSnapshot,
    pub notifications: NotificationCounts,
    pub malformed: [u64; MALFORMED_ACTIONS.len()],
    /// `None` when the rib task did not answer.
    pub prefixes: Option<[PeerFamilyCounts; 2]>,
}

/// The BGP and RIB series' values at one moment.
#[derive(Clone, Debug, Default)]
pub struct BgpSample {
    pub neighbors: Vec<NeighborSample>,
    /// `None` when the rib task did not answer within [`RIB_TIMEOUT`].
    pub rib: Option<[FamilyCounts; 2]>,
}

impl BgpSample {
    /// Asks the supervisor and the rib task (one turn each).
    pub async fn gather(handler: &Handler) -> BgpSample {
        let snapshots = handler.supervisor.neighbors().await;
        let counts = rib_counts(handler).await;
        if counts.is_none() {
            tracing::warn!(
                "metrics: the rib task did not answer within {RIB_TIMEOUT:?}: prefix series left out"
            );
        }
        BgpSample::new(snapshots, counts)
    }

    /// The sample of these neighbors with the rib's counts.
    pub fn new(snapshots: Vec<NeighborSnapshot>, counts: Option<RibCounts>) -> BgpSample {
        let by_peer: Option<HashMap<PeerId, [PeerFamilyCounts; 2]>> = counts
            .as_ref()
            .map(|counts| counts.peers.iter().copied().collect());
        let neighbors = snapshots
            .into_iter()
            .map(|snapshot| NeighborSample {
                notifications: snapshot.counters.notifications(),
                malformed: snapshot.counters.malformed(),
                prefixes: by_peer.as_ref().map(|by_peer| {
                    by_peer
                        .get(&snapshot.status.peer)
                        .copied()
                        .unwrap_or_default()
                }),
                snapshot,
            })
            .collect();
        BgpSample {
            neighbors,
            rib: counts.map(|counts| counts.families),
        }
    }
}

async fn rib_counts(handler: &Handler) -> Option<RibCounts> {
    let (reply, answer) = oneshot::channel();
    let ask = async {
        handler
            .questions
            .send(RibQuery::Counts { reply })
            .await
            .ok()?;
        answer.await.ok()
    };
    tokio::time::timeout(RIB_TIMEOUT, ask).await.ok().flatten()
}

impl NeighborSample {
    fn peer(&self) -> String {
        self.snapshot.status.address.to_string()
    }

    /// The peer's AS as `show neighbors` gives it: the negotiated one, else the
    /// configured one.
    fn peer_asn(&self) -> u32 {
        let status = &self.snapshot.status;
        status
            .negotiated
            .as_ref()
            .map_or(status.remote_asn, |negotiated| negotiated.peer_as)
    }

    fn last_change_seconds(&self) -> f64 {
        self.snapshot
            .status
            .changed_at
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64())
    }
}

/// A message count's series: (type label, value).
fn by_type(count: &MessageCount) -> [(&'static str, u64); 5] {
    [
        ("open", count.open),
        ("update", count.update),
        ("notification", count.notification),
        ("keepalive", count.keepalive),
        ("route-refresh", count.route_refresh),
    ]
}

fn peer_label(neighbor: &NeighborSample) -> Labels {
    vec![("peer", neighbor.peer())]
}

impl Collector for BgpSample {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let neighbors = &self.neighbors;
        series::gauges(
            &mut encoder,
            "wren_bgp_session_up",
            "1 while the BGP session with the neighbor is Established, else 0.",
            neighbors.iter().map(|n| {
                let labels = vec![
                    ("peer", n.peer()),
                    ("peer_asn", n.peer_asn().to_string()),
                    ("kind", n.snapshot.kind.name().to_owned()),
                ];
                let up = n.snapshot.status.state == State::Established;
                (labels, series::flag(up))
            }),
        )?;
        series::gauges(
            &mut encoder,
            "wren_bgp_session_state",
            "1 for the neighbor's current session state (RFC 4271), 0 for the others.",
            neighbors.iter().flat_map(|n| {
                STATES.iter().map(move |state| {
                    let labels = vec![("peer", n.peer()), ("state", state.name().to_owned())];
                    (labels, series::flag(n.snapshot.status.state == *state))
                })
            }),
        )?;
        series::counters(
            &mut encoder,
            "wren_bgp_session_established_transitions",
            "Times the session with the neighbor reached Established.",
            neighbors
                .iter()
                .map(|n| (peer_label(n), n.snapshot.status.established_count)),
        )?;
        series::gauges(
            &mut encoder,
            "wren_bgp_session_last_change_timestamp_seconds",
            "When the neighbor's session state last changed, in seconds since the Unix epoch.",
            neighbors
                .iter()
                .map(|n| (peer_label(n), n.last_change_seconds())),
        )?;
        for (name, help, received) in [
            (
                "wren_bgp_messages_received",
                "BGP messages received from the neighbor, by type.",
                true,
            ),
            (
                "wren_bgp_messages_sent",
                "BGP messages sent to the neighbor, by type.",
                false,
            ),
        ] {
            series::counters(
                &mut encoder,
                name,
                help,
                neighbors.iter().flat_map(|n| {
                    let count = if received {
                        n.snapshot.received
                    } else {
                        n.snapshot.sent
                    };
                    by_type(&count).into_iter().map(move |(kind, value)| {
                        (vec![("peer", n.peer()), ("type", kind.to_owned())], value)
                    })
                }),
            )?;
        }
        series::counters(
            &mut encoder,
            "wren_bgp_notifications",
            "NOTIFICATION messages sent to and received from the neighbor, by error code and subcode.",
            neighbors.iter().flat_map(notification_series),
        )?;
        series::counters(
            &mut encoder,
            "wren_bgp_updates_malformed",
            "Malformed UPDATE messages from the neighbor, by the RFC 7606 action taken.",
            neighbors.iter().flat_map(|n| {
                MALFORMED_ACTIONS
                    .iter()
                    .zip(n.malformed)
                    .map(move |(action, value)| {
                        (
                            vec![("peer", n.peer()), ("action", action.name().to_owned())],
                            value,
                        )
                    })
            }),
        )?;
        let prefix_families: [(&str, &str, PeerCount); 4] = [
            (
                "wren_bgp_prefixes_received",
                "Prefixes received from the neighbor (its Adj-RIB-In, before import policy).",
                |c| c.received,
            ),
            (
                "wren_bgp_prefixes_accepted",
                "Prefixes from the neighbor that the import policy accepted.",
                |c| c.accepted,
            ),
            (
                "wren_bgp_prefixes_advertised",
                "Prefixes advertised to the neighbor (its Adj-RIB-Out).",
                |c| c.advertised,
            ),
            (
                "wren_bgp_stale_prefixes",
                "Prefixes of the neighbor kept stale while it restarts (graceful restart).",
                |c| c.stale,
            ),
        ];
        for (name, help, value) in prefix_families {
            series::gauges(
                &mut encoder,
                name,
                help,
                neighbors.iter().flat_map(|n| {
                    let counts = n.prefixes.unwrap_or_default();
                    let present = n.prefixes.is_some();
                    FAMILIES.iter().zip(counts).filter(move |_| present).map(
                        move |(family, counts)| {
                            let labels = vec![("peer", n.peer()), ("family", family.to_string())];
                            (labels, value(&counts))
                        },
                    )
                }),
            )?;
        }
        if let Some(rib) = &self.rib {
            let by_family = |value: fn(&FamilyCounts) -> u64| {
                FAMILIES.iter().zip(rib).map(move |(family, counts)| {
                    (vec![("family", family.to_string())], value(counts))
                })
            };
            series::gauges(
                &mut encoder,
                "wren_rib_prefixes",
                "Prefixes with at least one path in the Loc-RIB.",
                by_family(|c| c.prefixes),
            )?;
            series::gauges(
                &mut encoder,
                "wren_rib_paths",
                "Paths in the RIB, from neighbors and local sources.",
                by_family(|c| c.paths),
            )?;
        }
        Ok(())
    }
}

/// The NOTIFICATION series of one neighbor: by direction, code and subcode, and the
/// kinds beyond what is counted apart as code and subcode `other`.
fn notification_series(n: &NeighborSample) -> Vec<(Labels, u64)> {
    let mut out: Vec<(Labels, u64)> = n
        .notifications
        .by_kind
        .iter()
        .map(|(kind, value)| {
            let labels = vec![
                ("peer", n.peer()),
                ("direction", kind.direction.name().to_owned()),
                ("code", kind.code.to_string()),
                ("subcode", kind.subcode.to_string()),
            ];
            (labels, *value)
        })
        .collect();
    for (direction, value) in ["sent", "received"].into_iter().zip(n.notifications.other) {
        if value > 0 {
            let labels = vec![
                ("peer", n.peer()),
                ("direction", direction.to_owned()),
                ("code", "other".to_owned()),
                ("subcode", "other".to_owned()),
            ];
            out.push((labels, value));
        }
    }
    out
}
