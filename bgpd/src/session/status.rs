//! What a session tells the rest of the daemon about itself: a [`NeighborStatus`]
//! in a [`SharedStatus`] (state, timers, negotiated capabilities, last error) and [`MessageCounters`] (atomics, updated per message
//! without waking anyone: messages by type, NOTIFICATIONs by code and subcode,
//! malformed UPDATEs by RFC 7606 action). The control server reads both for
//! `show neighbors`, the metrics task for `/metrics`.
//!
//! Both live as long as the neighbor does in the supervisor, across its sessions (a
//! session task started again after a fault takes them over, see [`History`]), so
//! every counter only grows.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use bgp_proto::fsm::{Initiator, Negotiated, State};
use bgp_proto::{Action as ErrorAction, Capability, MessageType, Notification};
pub use control_proto::{ConnectionInfo, LastError, MessageCount, NegotiatedInfo};
use ipnet::IpNet;

use crate::tasks::PeerId;

/// One neighbor as its session sees it.
#[derive(Clone, Debug)]
pub struct NeighborStatus {
    pub peer: PeerId,
    pub address: IpAddr,
    /// The configured AS (the AS the peer must have).
    pub remote_asn: u32,
    pub description: Option<String>,
    /// The listen range of a dynamic neighbor.
    pub range: Option<IpNet>,
    pub state: State,
    /// When the current state began.
    pub since: Instant,
    /// The same moment on the wall clock (for `/metrics`).
    pub changed_at: SystemTime,
    /// Shut down by `bgpctl neighbor ADDR shutdown` or the config.
    pub admin_down: bool,
    pub passive: bool,
    /// The configured timers (seconds).
    pub hold_time: u16,
    pub keepalive: Option<u16>,
    pub connect_retry: u16,
    /// The connection in use.
    pub connection: Option<ConnectionEnds>,
    /// What the OPENs settled, while OpenConfirm or Established: the session's own,
    /// shared (rendered as a [`NegotiatedInfo`] by [`negotiated_info`] when asked).
    pub negotiated: Option<Arc<Negotiated>>,
    /// Times the session reached Established.
    pub established_count: u64,
    /// Why the session last went down, and when.
    pub last_error: Option<LastError>,
}

/// The connection a session uses: its two ends and who opened it (rendered as a
/// [`ConnectionInfo`] when asked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionEnds {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub initiator: Option<Initiator>,
}

impl ConnectionEnds {
    /// The form `show neighbor` prints.
    pub fn info(&self) -> ConnectionInfo {
        ConnectionInfo {
            local: self.local,
            remote: self.remote,
            initiator: self
                .initiator
                .map_or_else(String::new, |initiator| initiator.to_string()),
        }
    }
}

/// A neighbor's [`NeighborStatus`], written by its session and read by the supervisor
/// (for `show neighbors`, the metrics and the `WrenNode` status). Nobody waits for a
/// change, so it is no tokio `watch`, whose lists of waiters cost about 300 bytes per
/// session (issue 18).
#[derive(Clone, Debug)]
pub struct SharedStatus(Arc<Mutex<NeighborStatus>>);

impl SharedStatus {
    pub fn new(status: NeighborStatus) -> SharedStatus {
        SharedStatus(Arc::new(Mutex::new(status)))
    }

    /// A copy of the status as it is now.
    pub fn get(&self) -> NeighborStatus {
        self.read(NeighborStatus::clone)
    }

    /// What `read` takes from the status as it is now.
    pub fn read<R>(&self, read: impl FnOnce(&NeighborStatus) -> R) -> R {
        read(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Changes the status with `modify`, returning what it returns.
    pub fn modify<R>(&self, modify: impl FnOnce(&mut NeighborStatus) -> R) -> R {
        modify(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The negotiated parameters, in the form `show neighbor` prints them.
pub fn negotiated_info(negotiated: &Negotiated) -> NegotiatedInfo {
    let peer_gr = negotiated.peer_graceful_restart.as_ref();
    NegotiatedInfo {
        peer_as: negotiated.peer_as,
        peer_id: negotiated.peer_id,
        hold_time: negotiated.hold_time,
        keepalive: negotiated.keepalive,
        send_hold_time_secs: negotiated.send_hold_time.map(|d| d.as_secs()),
        ibgp: negotiated.context.ibgp,
        four_octet_as: negotiated.context.four_octet_as,
        families: negotiated
            .families
            .iter()
            .map(ToString::to_string)
            .collect(),
        route_refresh: negotiated.route_refresh,
        enhanced_route_refresh: negotiated.enhanced_route_refresh,
        extended_message: negotiated.context.extended_message,
        graceful_restart: negotiated.graceful_restart,
        peer_restart_time: peer_gr.map(|gr| gr.restart_time),
        peer_restarted: peer_gr.is_some_and(|gr| gr.restart_state()),
        peer_hostname: negotiated.peer_hostname.as_ref().map(|(host, domain)| {
            if domain.is_empty() {
                host.clone()
            } else {
                format!("{host}.{domain}")
            }
        }),
        local_capabilities: capability_names(&negotiated.local_open.capabilities),
        peer_capabilities: capability_names(&negotiated.peer_open.capabilities),
    }
}

impl NeighborStatus {
    /// Seconds in the current state.
    pub fn seconds_in_state(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.since).as_secs()
    }
}

/// Messages sent and received, by type (OPEN, UPDATE, NOTIFICATION, KEEPALIVE,
/// ROUTE-REFRESH), NOTIFICATIONs by direction, code and subcode, and malformed
/// UPDATEs by the RFC 7606 action taken. Shared between the session (writes) and the
/// control server and metrics task (reads).
#[derive(Debug, Default)]
pub struct MessageCounters {
    sent: [AtomicU64; 5],
    received: [AtomicU64; 5],
    /// At most [`NOTIFICATION_KINDS`] (direction, code, subcode); the rest in
    /// `notifications_other`.
    notifications: Mutex<BTreeMap<NotificationKind, u64>>,
    notifications_other: [AtomicU64; 2],
    malformed: [AtomicU64; MALFORMED_ACTIONS.len()],
}

/// Distinct (direction, code, subcode) counted apart per neighbor: a peer choosing
/// codes cannot grow a neighbor's series without bound.
pub const NOTIFICATION_KINDS: usize = 64;

/// The RFC 7606 actions a malformed UPDATE is counted under, in this order.
pub const MALFORMED_ACTIONS: [ErrorAction; 4] = [
    ErrorAction::TreatAsWithdraw,
    ErrorAction::AttributeDiscard,
    ErrorAction::AfiSafiDisable,
    ErrorAction::SessionReset,
];

/// Which way a NOTIFICATION went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    Sent,
    Received,
}

impl Direction {
    /// `sent` or `received`.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }
}

/// A NOTIFICATION's direction, code and subcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NotificationKind {
    pub direction: Direction,
    pub code: u8,
    pub subcode: u8,
}

/// NOTIFICATIONs counted by kind, and those beyond [`NOTIFICATION_KINDS`] kinds by
/// direction only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotificationCounts {
    pub by_kind: Vec<(NotificationKind, u64)>,
    /// (sent, received) of the kinds not counted apart.
    pub other: [u64; 2],
}

impl MessageCounters {
    pub fn count_sent(&self, kind: MessageType, messages: u64) {
        self.sent[index(kind)].fetch_add(messages, Ordering::Relaxed);
    }

    pub fn count_received(&self, kind: MessageType) {
        self.received[index(kind)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn sent(&self) -> MessageCount {
        snapshot(&self.sent)
    }

    pub fn received(&self) -> MessageCount {
        snapshot(&self.received)
    }

    /// A NOTIFICATION sent or received.
    pub fn count_notification(&self, direction: Direction, notification: &Notification) {
        let kind = NotificationKind {
            direction,
            code: notification.code,
            subcode: notification.subcode,
        };
        let mut counts = self
            .notifications
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&kind) {
            *count += 1;
        } else if counts.len() < NOTIFICATION_KINDS {
            counts.insert(kind, 1);
        } else {
            let index = usize::from(direction == Direction::Received);
            self.notifications_other[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A malformed UPDATE handled with `action` (nothing for `Action::None`).
    pub fn count_malformed(&self, action: ErrorAction) {
        if let Some(index) = MALFORMED_ACTIONS.iter().position(|a| *a == action) {
            self.malformed[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn notifications(&self) -> NotificationCounts {
        let by_kind = self
            .notifications
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(kind, count)| (*kind, *count))
            .collect();
        NotificationCounts {
            by_kind,
            other: [
                self.notifications_other[0].load(Ordering::Relaxed),
                self.notifications_other[1].load(Ordering::Relaxed),
            ],
        }
    }

    /// Malformed UPDATEs by action, in the order of [`MALFORMED_ACTIONS`].
    pub fn malformed(&self) -> [u64; MALFORMED_ACTIONS.len()] {
        std::array::from_fn(|i| self.malformed[i].load(Ordering::Relaxed))
    }
}

/// What a neighbor's next session task takes over from the last one (the supervisor
/// starts a session task again after a fault): its counters and how many times it
/// was Established.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub counters: Arc<MessageCounters>,
    pub established_count: u64,
}

fn index(kind: MessageType) -> usize {
    match kind {
        MessageType::Open => 0,
        MessageType::Update => 1,
        MessageType::Notification => 2,
        MessageType::Keepalive => 3,
        MessageType::RouteRefresh => 4,
    }
}

fn snapshot(counters: &[AtomicU64; 5]) -> MessageCount {
    let get = |i: usize| counters[i].load(Ordering::Relaxed);
    MessageCount {
        open: get(0),
        update: get(1),
        notification: get(2),
        keepalive: get(3),
        route_refresh: get(4),
    }
}

/// Short names of capabilities: `ipv4-unicast`, `route-refresh`, `4-octet-as`,
/// `graceful-restart`, `capability-N` ...
pub fn capability_names(capabilities: &[Capability]) -> Vec<String> {
    capabilities
        .iter()
        .map(|capability| match capability {
            Capability::Multiprotocol { family } => family.to_string(),
            Capability::RouteRefresh => "route-refresh".into(),
            Capability::ExtendedNextHop { .. } => "extended-next-hop".into(),
            Capability::ExtendedMessage => "extended-message".into(),
            Capability::GracefulRestart(gr) => {
                format!("graceful-restart({}s)", gr.restart_time)
            }
            Capability::FourOctetAs { .. } => "4-octet-as".into(),
            Capability::AddPath { .. } => "add-path".into(),
            Capability::EnhancedRouteRefresh => "enhanced-route-refresh".into(),
            Capability::Hostname { .. } => "hostname".into(),
            Capability::Unknown { code, .. } => format!("capability-{code}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up() {
        let counters = MessageCounters::default();
        counters.count_sent(MessageType::Update, 3);
        counters.count_sent(MessageType::Keepalive, 1);
        counters.count_received(MessageType::Open);
        assert_eq!(counters.sent().update, 3);
        assert_eq!(counters.sent().total(), 4);
        assert_eq!(counters.received().open, 1);
    }

    #[test]
    fn notifications_and_malformed_updates_are_counted_boundedly() {
        let counters = MessageCounters::default();
        let cease = Notification::new(6, 4, Vec::new());
        counters.count_notification(Direction::Sent, &cease);
        counters.count_notification(Direction::Sent, &cease);
        counters.count_notification(Direction::Received, &cease);
        let counts = counters.notifications();
        let sent = NotificationKind {
            direction: Direction::Sent,
            code: 6,
            subcode: 4,
        };
        assert_eq!(counts.by_kind[0], (sent, 2));
        assert_eq!(counts.by_kind.len(), 2);
        for subcode in 0..=255u8 {
            counters.count_notification(
                Direction::Received,
                &Notification::new(9, subcode, Vec::new()),
            );
        }
        let counts = counters.notifications();
        assert_eq!(counts.by_kind.len(), NOTIFICATION_KINDS);
        assert_eq!(counts.other, [0, 256 - (NOTIFICATION_KINDS as u64 - 2)]);

        counters.count_malformed(ErrorAction::TreatAsWithdraw);
        counters.count_malformed(ErrorAction::SessionReset);
        counters.count_malformed(ErrorAction::None);
        assert_eq!(counters.malformed(), [1, 0, 0, 1]);
    }
}
