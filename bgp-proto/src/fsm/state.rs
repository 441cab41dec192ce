//! The six states of RFC 4271 section 8.2.2 and the role of a state machine among the
//! (at most two) connections of one peer.

use std::fmt;

/// A session state (RFC 4271 section 8.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum State {
    /// Not connecting; possibly waiting for an automatic restart.
    Idle,
    /// A connection attempt of ours is in flight (or, with delay open, a connection
    /// waits for the peer's OPEN).
    Connect,
    /// Waiting for the peer to connect (passive, or between connection attempts).
    Active,
    /// Connected, our OPEN sent, waiting for the peer's.
    OpenSent,
    /// Both OPENs exchanged, waiting for the peer's KEEPALIVE.
    OpenConfirm,
    /// The session is up: UPDATEs flow.
    Established,
}

impl State {
    /// The RFC name (`Idle`, `Connect`, `Active`, `OpenSent`, `OpenConfirm`,
    /// `Established`), as `show neighbors` prints it.
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }

    /// True in the states where our OPEN has been sent on a connection.
    pub fn open_sent(self) -> bool {
        matches!(
            self,
            State::OpenSent | State::OpenConfirm | State::Established
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The part a state machine plays for its peer (see the collision section of the
/// module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The peer's state machine: it connects, restarts after failures and holds the
    /// administrative state.
    Primary,
    /// A state machine for a second connection of the same peer, made by
    /// [`Fsm::secondary`](crate::fsm::Fsm::secondary): it never restarts, and is
    /// finished when it reaches Idle, unless [promoted](crate::fsm::Fsm::promote).
    Secondary,
}

/// Who opened a TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Initiator {
    /// We connected to the peer (RFC 4271 event 16, Tcp_CR_Acked).
    Local,
    /// The peer connected to us (event 17, TcpConnectionConfirmed).
    Remote,
}

impl fmt::Display for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Initiator::Local => "local",
            Initiator::Remote => "remote",
        })
    }
}
