//! What a session tells the rest of the daemon about itself: a [`NeighborStatus`]
//! published in a `tokio::sync::watch` channel (state, timers, negotiated
//! capabilities, last error) and [`MessageCounters`] (atomics, updated per message
//! without waking anyone). The control server reads both for `show neighbors`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bgp_proto::fsm::{Negotiated, State};
use bgp_proto::{Capability, MessageType};
use ipnet::IpNet;
use serde::Serialize;

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

/// A connection's ends.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// "local" when we connected, "remote" when the peer did.
    pub initiator: String,
}

/// The negotiated parameters, in the form `show neighbor` prints them.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct NegotiatedInfo {
    pub peer_as: u32,
    pub peer_id: Ipv4Addr,
    pub hold_time: u16,
    pub keepalive: u16,
    pub send_hold_time_secs: Option<u64>,
    pub ibgp: bool,
    pub four_octet_as: bool,
    pub families: Vec<String>,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    pub extended_message: bool,
    pub graceful_restart: bool,
    /// The peer's graceful restart restart time, if it advertised the capability.
    pub peer_restart_time: Option<u16>,
    /// The peer said it restarted (R bit).
    pub peer_restarted: bool,
    pub peer_hostname: Option<String>,
    /// Capability names we sent and the peer sent.
    pub local_capabilities: Vec<String>,
    pub peer_capabilities: Vec<String>,
}

impl NegotiatedInfo {
    pub fn new(negotiated: &Negotiated) -> NegotiatedInfo {
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
}

/// Why the session went down.
#[derive(Clone, Debug)]
pub struct LastError {
    pub reason: String,
    pub at: SystemTime,
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

/// A copy of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MessageCount {
    pub open: u64,
    pub update: u64,
    pub notification: u64,
    pub keepalive: u64,
    pub route_refresh: u64,
}

impl MessageCount {
    pub fn total(&self) -> u64 {
        self.open + self.update + self.notification + self.keepalive + self.route_refresh
    }
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

/// Formats a duration like FRR's Up/Down column: `00:05:12`, `3d04h12m`, `never`.
pub fn up_down(seconds: u64) -> String {
    let duration = Duration::from_secs(seconds);
    let secs = duration.as_secs();
    let (days, hours, minutes, seconds) =
        (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if days > 0 {
        format!("{days}d{hours:02}h{minutes:02}m")
    } else {
        format!("{hours:02}:{minutes:02}:{seconds:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_down_reads_like_frr() {
        assert_eq!(up_down(0), "00:00:00");
        assert_eq!(up_down(3725), "01:02:05");
        assert_eq!(up_down(86_400 * 3 + 3600 * 4 + 60 * 12), "3d04h12m");
    }

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
