//! Sessions: one task per neighbor, driving bgp-proto's state machine over TCP.
//!
//! A session task owns its neighbor's connections (at most two while a collision is
//! being resolved), the state machines for them ([`bgp_proto::fsm`]), their timers
//! (tokio sleeps fed back as events) and the neighbor's end of the channels to the
//! rib task. It follows the calling contract of `bgp_proto::fsm`: events in, the
//! returned actions executed in order.
//!
//! # Calling contract
//!
//! - [`spawn`] starts a session for one neighbor and returns a [`SessionHandle`]: a
//!   command sender ([`SessionCommand`]), the neighbor's [`NeighborStatus`] (a
//!   [`SharedStatus`]) and its message counters. The supervisor owns the handle.
//! - Connections a listener accepted from the neighbor's address arrive as
//!   [`SessionCommand::Incoming`]; the session decides whether its state machine
//!   takes them, a second state machine resolves a collision, or they are closed.
//! - Each change of the neighbor's state is also told on the daemon's `Events`
//!   (`Event::Session`).
//! - With `bfd` configured and a `BfdHandle` given, an Established session follows
//!   a BFD session to its peer (`crate::bfd_task`) and closes with Cease / BFD Down
//!   (6/10, RFC 9384) when it reports a path failure, then starts again.
//! - To the rib task the session sends `PeerUp` (with its `Outbound` channel and the
//!   [`PeerInfo`](crate::tasks::PeerInfo)), each UPDATE (RFC 7606 treat-as-withdraw
//!   and family disable applied), `EndOfRib`, `RouteRefresh`, `Drained` and
//!   `PeerDown` (with `stale_for` when the peer may keep forwarding through a
//!   restart, RFC 4724).
//! - [`SessionCommand::Stop`] sends the NOTIFICATION given, waits (bounded) until it
//!   is written, and ends the task. A dynamic neighbor's task (from a listen range)
//!   also ends by itself once its connection is gone. The task runs in the
//!   `JoinSet` given to [`spawn`] (the supervisor's), which tells its owner of every
//!   end, expected or not (a panic, in builds that unwind).
//!
//! Files: `settings` (config to state machine configuration), `templates` (the state
//! machine configurations and OPENs, one shared by the sessions configured alike),
//! `connection` (reading and writing apart), `driver` (the task; its child `actions`
//! executes the state machine's actions), `status` (a [`SharedStatus`], the message
//! counters), `addresses` (our addresses on the session's interface).

pub mod addresses;
pub mod connection;
mod driver;
pub mod settings;
pub mod status;
mod templates;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bgp_proto::Notification;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};

pub use settings::{NeighborSettings, SpeakerSettings};
pub use status::{History, MessageCounters, NeighborStatus, SharedStatus};

use crate::bfd_task::BfdHandle;
use crate::events::Events;
use crate::queue;
use crate::tasks::{PeerId, RibInput};

/// Commands queued to one session.
pub const COMMAND_CAPACITY: usize = 16;

/// What the supervisor tells a session.
#[derive(Debug)]
pub enum SessionCommand {
    /// A connection from the neighbor, accepted by a listener.
    Incoming(TcpStream),
    /// Administrative shutdown (Cease 6/2 with this shutdown communication) until
    /// [`SessionCommand::Enable`].
    Shutdown { message: Option<String> },
    /// Start again after a shutdown.
    Enable,
    /// Drop the session (Cease 6/4 with this message) and start over at once.
    Reset { message: Option<String> },
    /// Ask the peer to send its routes again (ROUTE-REFRESH for every family).
    Refresh {
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// New settings (a reload). Changes to the OPEN or the connection restart the
    /// session with Cease / Other Configuration Change (6/6); the rest apply in
    /// place.
    Reconfigure {
        settings: Arc<NeighborSettings>,
        speaker: Arc<SpeakerSettings>,
    },
    /// Send `notification` (when the session got that far), close, and end the task;
    /// `done` is answered when the NOTIFICATION is written or gave up on.
    Stop {
        notification: Notification,
        done: oneshot::Sender<()>,
    },
}

/// The way to queue [`SessionCommand`]s to one session, over a [`crate::queue`] (a
/// tokio channel cost about 800 bytes per session, issue 18). They travel boxed:
/// commands are rare, and a queued command's room is 8 bytes this way.
#[derive(Clone, Debug)]
pub struct CommandSender(queue::Sender<Box<SessionCommand>>);

/// The session task has ended (or, from `try_send`, its queue is full).
#[derive(Debug)]
pub struct NotQueued;

impl CommandSender {
    /// Queues `command`, waiting for room.
    pub async fn send(&self, command: SessionCommand) -> Result<(), NotQueued> {
        self.0.send(Box::new(command)).await.map_err(|_| NotQueued)
    }

    /// Queues `command` if there is room now.
    pub fn try_send(&self, command: SessionCommand) -> Result<(), NotQueued> {
        self.0.try_send(Box::new(command)).map_err(|_| NotQueued)
    }
}

/// The supervisor's hold on one session task.
#[derive(Debug)]
pub struct SessionHandle {
    pub peer: PeerId,
    pub commands: CommandSender,
    pub status: SharedStatus,
    pub counters: Arc<MessageCounters>,
    /// The task, in the supervisor's `JoinSet` (its id names it when it ends).
    pub task: AbortHandle,
}

impl SessionHandle {
    /// What a session task started again for this neighbor takes over.
    pub fn history(&self) -> History {
        History {
            counters: self.counters.clone(),
            established_count: self.status.read(|status| status.established_count),
        }
    }
}

/// Starts the session task of one neighbor, going on from `history` (the default for
/// a new neighbor); fails when the state machine refuses the settings (the config
/// checks make that rare: a reserved AS, for example).
#[allow(clippy::too_many_arguments)] // what the task owns, each from its own owner
pub fn spawn(
    peer: PeerId,
    settings: Arc<NeighborSettings>,
    speaker: Arc<SpeakerSettings>,
    rib: mpsc::Sender<RibInput>,
    events: Events,
    bfd: Option<BfdHandle>,
    tasks: &mut JoinSet<()>,
    history: History,
) -> Result<SessionHandle, bgp_proto::fsm::ConfigError> {
    let (commands, receiver) = queue::channel(COMMAND_CAPACITY);
    let counters = history.counters;
    let mut initial = driver::initial_status(peer, &settings);
    initial.established_count = history.established_count;
    let status = SharedStatus::new(initial);
    let driver = driver::Driver::new(
        peer,
        settings,
        speaker,
        rib,
        receiver,
        status.clone(),
        counters.clone(),
        events,
        bfd,
    )?;
    let task = tasks.spawn(driver.run());
    Ok(SessionHandle {
        peer,
        commands: CommandSender(commands),
        status,
        counters,
        task,
    })
}
