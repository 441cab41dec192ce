//! What identifies a session to the transport before discriminators are known
//! (RFC 5881 section 3: single hop by interface and peer; RFC 5883 section 3:
//! multihop by the address pair).

use std::fmt;
use std::net::IpAddr;

/// The key of one session: one session per key, shared by every client (BGP
/// sessions, a static route) that asks for the same path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SessionKey {
    /// Single hop (RFC 5881): UDP port 3784, TTL 255.
    SingleHop {
        /// The interface the peer is reached on.
        interface: String,
        /// The peer's address.
        peer: IpAddr,
    },
    /// Multihop (RFC 5883): UDP port 4784.
    Multihop {
        /// Our address.
        local: IpAddr,
        /// The peer's address.
        peer: IpAddr,
    },
}

impl SessionKey {
    /// The peer's address.
    pub fn peer(&self) -> IpAddr {
        match self {
            SessionKey::SingleHop { peer, .. } | SessionKey::Multihop { peer, .. } => *peer,
        }
    }

    /// The UDP destination port of the session's control packets.
    pub fn port(&self) -> u16 {
        match self {
            SessionKey::SingleHop { .. } => SINGLE_HOP_PORT,
            SessionKey::Multihop { .. } => MULTIHOP_PORT,
        }
    }
}

impl fmt::Display for SessionKey {
    /// `10.0.0.2 on eth0` or `10.0.0.2 from 10.0.1.1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionKey::SingleHop { interface, peer } => write!(f, "{peer} on {interface}"),
            SessionKey::Multihop { local, peer } => write!(f, "{peer} from {local}"),
        }
    }
}

/// The UDP port of single hop control packets (RFC 5881 section 4).
pub const SINGLE_HOP_PORT: u16 = 3784;
/// The UDP port of multihop control packets (RFC 5883 section 5).
pub const MULTIHOP_PORT: u16 = 4784;
/// The source ports a control packet is sent from (RFC 5881 section 4).
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// The TTL or hop limit single hop packets are sent with, and the only one received
/// single hop packets may carry (RFC 5881 section 5).
pub const SINGLE_HOP_TTL: u8 = 255;
