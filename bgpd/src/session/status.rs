//! What a session tells the rest of the daemon about itself: a [`NeighborStatus`]
//! published in a `tokio::sync::watch` channel (state, timers, negotiated
//! capabilities, last error) and [`MessageCounters`] (atomics, updated per message
//! without waking anyone). The control server reads both for `show neighbors`.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bgp_proto::fsm::{Negotiated, State};
use bgp_proto::{Capability, MessageType};
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
    /// Shut down by `bgpctl neighbor ADDR shutdown` or the config.
    pub admin_down: bool,
    pub passive: bool,
    /// The configured timers (seconds).
    pub hold_time: u16,
    pub keepalive: Option<u16>,
    pub connect_retry: u16,
    /// The connection in use.
    pub connection: Option<ConnectionInfo>,
    /// What the OPENs settled, while OpenConfirm or Established.
    pub negotiated: Option<NegotiatedInfo>,
    /// Times the session reached Established.
    pub established_count: u64,
    /// Why the session last went down, and when.
    pub last_error: Option<LastError>,
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
/// ROUTE-REFRESH). Shared between the session (writes) and the control server
/// (reads).
#[derive(Debug, Default)]
pub struct MessageCounters {
    sent: [AtomicU64; 5],
    received: [AtomicU64; 5],
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
}
