//! What a session asks its caller to do: packets to send and state changes to report.

use crate::packet::ControlPacket;
use crate::state::{Diagnostic, State};

/// An output of [`Session`](crate::Session). Within one batch, execute them in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this packet to the peer now (encode it with [`ControlPacket::encode`]).
    Send(ControlPacket),
    /// The session changed state: tell its clients.
    StateChanged(Transition),
}

/// A change of the local session state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The previous state.
    pub from: State,
    /// The new state.
    pub to: State,
    /// The local diagnostic after the change (why the session left Up or Init).
    pub diagnostic: Diagnostic,
    /// The peer's state as last heard (AdminDown when the peer took the session down
    /// administratively).
    pub remote_state: State,
}

impl Transition {
    /// The session came up.
    pub fn is_up(&self) -> bool {
        self.to == State::Up
    }

    /// The session left Up because the path failed, and the clients (a BGP session)
    /// should act on it: Up to Down, and not because the peer went AdminDown (RFC 5882
    /// section 3.2) nor because we did.
    pub fn signals_failure(&self) -> bool {
        self.from == State::Up && self.to == State::Down && self.remote_state != State::AdminDown
    }
}
