//! The daemon's event stream: what the tasks do, told to whoever listens.
//!
//! One typed, bounded stream ([`Events`], a `tokio::sync::broadcast` of
//! [`EVENT_CAPACITY`]) that the tasks write and any number of readers subscribe to:
//! metrics, `bgpctl monitor`, the Kubernetes status writer. Readers never reach into
//! a task's state, and a task never waits for a reader:
//!
//! - sending never blocks; with nobody subscribed an event is not even built
//!   ([`Events::send_with`]), so a route change costs one atomic load;
//! - a reader that falls more than [`EVENT_CAPACITY`] events behind loses the oldest
//!   ones and is told how many (`RecvError::Lagged`); it must then re-read the state
//!   it follows (a snapshot through the control socket) instead of guessing.
//!
//! Who sends what:
//! - session tasks: [`Event::Session`] on every change of a neighbor's state;
//! - the rib task: [`Event::BestRoute`] for every best-route change it hands the FIB
//!   (also when `[fib] enabled = false`), and [`Event::Converged`] once;
//! - the fib task: [`Event::Kernel`] for every batch route-sync applied;
//! - the IPAM task: [`Event::Ipam`] whenever the node's blocks or borrowed addresses
//!   change (and at its first synchronisation).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bgp_proto::fsm::State;
use ipnet::IpNet;
use tokio::sync::broadcast;

use crate::tasks::{FibChange, PeerId};

/// Events kept for a reader that is behind.
pub const EVENT_CAPACITY: usize = 4096;

/// Something a task did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A neighbor's session entered `state`.
    Session {
        peer: PeerId,
        address: IpAddr,
        state: State,
    },
    /// The best route of a prefix changed (as handed to the FIB).
    BestRoute(FibChange),
    /// The first convergence after the start is done (the rib's view; see
    /// `FibChange::Converged`).
    Converged,
    /// route-sync applied a batch of `changes` route changes to the kernel in `took`.
    Kernel { changes: usize, took: Duration },
    /// The node's IPAM blocks and borrowed addresses are now these.
    Ipam {
        blocks: Vec<IpNet>,
        borrowed: Vec<IpAddr>,
    },
}

/// The sending side, cloned into every task; also how readers subscribe.
#[derive(Clone, Debug)]
pub struct Events {
    sender: broadcast::Sender<Arc<Event>>,
}

impl Default for Events {
    fn default() -> Events {
        Events::new()
    }
}

impl Events {
    pub fn new() -> Events {
        let (sender, _) = broadcast::channel(EVENT_CAPACITY);
        Events { sender }
    }

    /// A new reader, seeing the events sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }

    /// Whether anybody listens.
    pub fn wanted(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    /// Sends the event `make` builds, building it only when somebody listens.
    pub fn send_with(&self, make: impl FnOnce() -> Event) {
        if self.wanted() {
            // Err only when the last reader left meanwhile: nobody to tell.
            let _ = self.sender.send(Arc::new(make()));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_built_without_a_reader() {
        let events = Events::new();
        events.send_with(|| unreachable!("built without a reader"));
        let mut reader = events.subscribe();
        events.send_with(|| Event::Converged);
        assert_eq!(*reader.try_recv().unwrap(), Event::Converged);
    }

    #[test]
    fn a_reader_that_falls_behind_is_told_how_far() {
        let events = Events::new();
        let mut reader = events.subscribe();
        for _ in 0..EVENT_CAPACITY + 10 {
            events.send_with(|| Event::Converged);
        }
        assert_eq!(
            reader.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(10))
        );
    }
}
