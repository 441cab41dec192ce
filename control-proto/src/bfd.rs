//! `show-bfd` (`bgpctl show bfd`): every BFD session of bgpd's BFD task, as the task
//! sees it at the moment of the request.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// One BFD session (RFC 5880), keyed by interface and peer (single hop, RFC 5881)
/// or by local address and peer (multihop, RFC 5883).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BfdSession {
    pub peer: IpAddr,
    /// Single hop: the interface the peer is reached on.
    pub interface: Option<String>,
    /// Multihop: our address.
    pub local: Option<IpAddr>,
    pub multihop: bool,
    /// `AdminDown`, `Down`, `Init` or `Up`.
    pub state: String,
    pub local_discriminator: u32,
    /// 0 until the peer's first packet.
    pub remote_discriminator: u32,
    /// The negotiated transmit interval: max(our desired min TX, their required min
    /// RX); `None` before the peer's first packet.
    pub transmit_interval_ms: Option<u64>,
    /// Their multiplier × max(our required min RX, their desired min TX); `None`
    /// before the peer's first packet.
    pub detection_time_ms: Option<u64>,
    /// Seconds in the current state.
    pub uptime_secs: u64,
    /// Why the session last went down (RFC 5880 section 4.1), code and name:
    /// `0 (No Diagnostic)`, `1 (Control Detection Time Expired)`.
    pub diagnostic: String,
    /// Times the session went from Up to Down because the path failed.
    pub failures: u64,
    /// Times the session left Up, by the diagnostic it left with, in snake case
    /// (`control_detection_time_expired`, `neighbor_signaled_session_down`,
    /// `administratively_down`): `wren_bfd_session_down_total`'s `diag`.
    pub downs: BTreeMap<String, u64>,
    /// Packets accepted by the session since it was made.
    pub packets_received: u64,
    /// Packets handed to the socket since it was made.
    pub packets_sent: u64,
}

impl BfdSession {
    /// Where the session runs: the interface (single hop) or our address (multihop).
    pub fn location(&self) -> String {
        match (&self.interface, &self.local) {
            (Some(interface), _) => interface.clone(),
            (None, Some(local)) => format!("from {local}"),
            (None, None) => String::from("-"),
        }
    }
}
