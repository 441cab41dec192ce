//! The daemon's event stream: what the tasks do, told to whoever listens.
//!
//! One typed, bounded stream ([`Events`], a `tokio::sync::broadcast` of
//! [`EVENT_CAPACITY`]) that the tasks write and any number of readers subscribe to:
//! `bgpctl monitor` (the control server's `control::monitor`) and the Kubernetes
//! status writer. Readers never reach into a task's state, and a task
//! never waits for a reader:
//!
//! - sending never blocks; with nobody subscribed an event is not even built
//!   ([`Events::send_with`]), so a route change costs one atomic load;
//! - each event is an [`Occurrence`]: the event and the wall-clock time the sending
//!   task told it (what `bgpctl monitor` prints, whenever it is written);
//! - a reader that falls more than [`EVENT_CAPACITY`] events behind loses the oldest
//!   ones and is told how many (`RecvError::Lagged`); it must then re-read the state
//!   it follows (a snapshot through the control socket) instead of guessing, or, as
//!   a monitor does, give up.
//!
//! Who sends what:
//! - session tasks: [`Event::Session`] on every change of a neighbor's state;
//! - the rib task: [`Event::BestRoute`] for every change of a prefix's best route or
//!   ECMP set (recorded only while somebody listens; also when `[fib] enabled =
//!   false`), and [`Event::Converged`] once;
//! - the fib task: [`Event::Kernel`] for every batch handed to route-sync;
//! - route-sync's task (through [`KernelObserver`]): [`Event::KernelRoute`] for every
//!   kernel route operation it settled, added, replaced, deleted or refused, and
//!   every route it cannot install;
//! - the IPAM task: [`Event::Ipam`] whenever the node's blocks or borrowed addresses
//!   change (and at its first synchronisation).

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bgp_proto::fsm::State;
use control_proto::RouteChange;
use ipnet::IpNet;
use route_sync::KernelOperation;
use tokio::sync::broadcast;

use crate::tasks::PeerId;

/// Events kept for a reader that is behind.
pub const EVENT_CAPACITY: usize = 4096;

/// Something a task did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A neighbor's session left `from` and entered `state`.
    Session {
        peer: PeerId,
        address: IpAddr,
        from: State,
        state: State,
    },
    /// The best route of a prefix, or its ECMP set, changed.
    BestRoute(RouteChange),
    /// The first convergence after the start is done (the rib's view; see
    /// `FibChange::Converged`).
    Converged,
    /// route-sync applied a batch of `changes` route changes to the kernel in `took`.
    Kernel { changes: usize, took: Duration },
    /// route-sync settled one kernel route operation (or found a route impossible to
    /// install).
    KernelRoute(KernelOperation),
    /// The node's IPAM blocks and borrowed addresses are now these.
    Ipam {
        blocks: Vec<IpNet>,
        borrowed: Vec<IpAddr>,
    },
}

/// An event with the time its task told it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occurrence {
    pub at: SystemTime,
    pub event: Event,
}

/// The sending side, cloned into every task; also how readers subscribe.
///
/// The ring of [`EVENT_CAPACITY`] events (128 KiB) is made by the first subscriber:
/// a node that nobody watches (no Kubernetes status writer, no `bgpctl monitor`) never
/// holds it, which was 1.3 KiB per session of a node with 100 neighbors.
#[derive(Clone, Debug)]
pub struct Events {
    sender: Arc<OnceLock<broadcast::Sender<Arc<Occurrence>>>>,
}

impl Default for Events {
    fn default() -> Events {
        Events::new()
    }
}

impl Events {
    pub fn new() -> Events {
        Events {
            sender: Arc::new(OnceLock::new()),
        }
    }

    /// A new reader, seeing the events sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Occurrence>> {
        self.sender
            .get_or_init(|| broadcast::channel(EVENT_CAPACITY).0)
            .subscribe()
    }

    /// Whether anybody listens.
    pub fn wanted(&self) -> bool {
        self.listening().is_some()
    }

    /// The ring, while somebody listens.
    fn listening(&self) -> Option<&broadcast::Sender<Arc<Occurrence>>> {
        self.sender
            .get()
            .filter(|sender| sender.receiver_count() > 0)
    }

    /// Sends the event `make` builds, building it only when somebody listens.
    pub fn send_with(&self, make: impl FnOnce() -> Event) {
        if let Some(sender) = self.listening() {
            // Err only when the last reader left meanwhile: nobody to tell.
            let _ = sender.send(Arc::new(Occurrence {
                at: SystemTime::now(),
                event: make(),
            }));
        }
    }
}

/// Tells route-sync's kernel operations on the event stream ([`Event::KernelRoute`]),
/// built only while somebody listens.
#[derive(Clone, Debug)]
pub struct KernelObserver(pub Events);

impl route_sync::Observer for KernelObserver {
    fn wanted(&self) -> bool {
        self.0.wanted()
    }

    fn operation(&self, operation: KernelOperation) {
        self.0.send_with(|| Event::KernelRoute(operation));
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
        let occurrence = reader.try_recv().unwrap();
        assert_eq!(occurrence.event, Event::Converged);
        assert!(occurrence.at <= SystemTime::now());
    }

    #[test]
    fn the_ring_is_made_by_the_first_reader_and_shared_by_clones() {
        let events = Events::new();
        let clone = events.clone();
        assert!(events.sender.get().is_none());
        let mut reader = clone.subscribe();
        assert!(events.wanted());
        events.send_with(|| Event::Converged);
        assert_eq!(reader.try_recv().unwrap().event, Event::Converged);
        drop(reader);
        assert!(!events.wanted());
        events.send_with(|| unreachable!("built after the last reader left"));
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
