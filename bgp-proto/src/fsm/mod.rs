//! The BGP session state machine (RFC 4271 section 8), sans I/O: events in, actions
//! out. There is no clock, no socket and no task here; a driver (bgpd's session task)
//! owns the connection and the timers and executes the actions.
//!
//! # Calling contract
//!
//! **One state machine per connection.** The driver keeps a *primary* [`Fsm`] per peer
//! for as long as the peer is configured, made with [`Fsm::new`] from a
//! [`SessionConfig`] (or with [`Fsm::from_template`] from a [`Template`] that
//! sessions configured alike share), and at most one *secondary* for a second,
//! colliding connection (see "Collisions" below). Everything runs in one task: feed
//! an [`Event`] with [`Fsm::handle`], execute the returned actions in order, then
//! feed the next event.
//!
//! **Events, and who produces them.**
//! - The operator or the daemon: [`Event::ManualStart`] (or
//!   [`Event::ManualStartPassive`]) when the neighbor is configured or enabled;
//!   [`Event::ManualStop`] (optionally with a shutdown communication,
//!   [`Event::shutdown`]) to shut it down until the next start. A reset is a stop with
//!   Cease / Administrative Reset followed by a start.
//! - The speaker: [`Event::AutomaticStop`] when it must drop the session itself
//!   (maximum prefixes, an error it found) and have it restart after a delay;
//!   [`Event::AutomaticStart`] to cut a pending restart delay short.
//! - The connection: [`Event::TcpConnected`] when a connection the state machine
//!   wants is up ([`Fsm::wants_connection`]), [`Event::TcpFailed`] when our attempt
//!   fails or the connection is closed or reset, [`Event::Received`] for each item
//!   of the codec (`Ok(Decoded)` or `Err(Malformed)`, decoded with
//!   [`Fsm::codec_context`]), [`Event::FramingError`] when the stream breaks, and
//!   [`Event::OutputProgressed`] after writes that reached the socket.
//! - The timers: [`Event::TimerExpired`] when an armed timer fires.
//!
//! **Actions, and what the driver does with each.**
//! - [`Action::Connect`]: start a TCP connection attempt to the peer (bounded by the
//!   connect retry timer the same batch arms).
//! - [`Action::Send`]: encode with [`Fsm::codec_context`] and queue the message.
//! - [`Action::Close`]: [`CloseMode::Flush`] writes what is queued (bounded by a few
//!   seconds) then closes; [`CloseMode::Abort`] drops the queue and closes at once
//!   (see "Send hold timer"). Also means: abandon a connection attempt in flight,
//!   and release a connection that already failed. After a close, the driver
//!   reports no further event of that connection.
//! - [`Action::ArmTimer`] / [`Action::StopTimer`]: (re)arm or cancel the timer.
//! - [`Action::StateChanged`]: log it; `show neighbors` shows [`State::name`].
//! - [`Action::Established`]: switch the codec to the negotiated context before
//!   reading the next message, then hand the [`Negotiated`] parameters to the speaker,
//!   which may send UPDATEs from now on.
//! - [`Action::SessionDown`]: the speaker stops sending and withdraws the peer's
//!   routes (or keeps them stale under graceful restart, deciding on the
//!   [`DownReason`]).
//! - [`Action::Update`], [`Action::RouteRefresh`]: pass to the speaker.
//!
//! A driver's loop, in outline (one task per peer, one connection shown):
//!
//! ```text
//! let mut fsm = Fsm::new(config)?;
//! run(fsm.handle(Event::ManualStart));
//! loop {
//!     let event = select! {
//!         item = framed.next()           => match item {
//!             Some(Ok(item))   => Event::Received(item),   // Result<Decoded, Malformed>
//!             Some(Err(error)) => Event::FramingError(error),
//!             None             => Event::TcpFailed,
//!         },
//!         result = connecting           => match result {
//!             Ok(stream) => Event::TcpConnected(Initiator::Local),
//!             Err(_)     => Event::TcpFailed,
//!         },
//!         timer = timers.next_expired() => Event::TimerExpired(timer),
//!         ()    = writer.progressed()   => Event::OutputProgressed,
//!         command = control.recv()      => command.into_event(),
//!     };
//!     run(fsm.handle(event));   // each action in order: see below
//! }
//! ```
//!
//! **Order within a batch.** Sends, then close, then connect, then timer actions,
//! then the state change, then the notices for the speaker (established, session
//! down, update, route refresh). Execute them in that order: a NOTIFICATION always
//! precedes the close that ends its connection, and no send follows a close.
//!
//! **Timers.** A timer the driver fires after it was stopped or re-armed must not be
//! reported (a `tokio::time::Sleep` reset in the same task guarantees it); a stray
//! expiry is ignored anyway. Every timer of a state machine is stopped when it
//! leaves a connection, except the restart delay ([`Timer::IdleHold`]).
//!
//! **UPDATEs we send** do not go through the state machine: the speaker writes them
//! to the connection between [`Action::Established`] and [`Action::SessionDown`],
//! encoded with [`Negotiated::context`]. The keepalive timer runs regardless.
//!
//! **Send hold timer (RFC 9687).** In Established, with a hold time other than 0, the
//! state machine arms [`Timer::SendHold`] (the greater of 8 minutes and twice the
//! hold time, or the configured value) and re-arms it on every
//! [`Event::OutputProgressed`]. The driver reports progress whenever a write of our
//! bytes (KEEPALIVE, UPDATE, anything) completes; a peer that stops reading (zero
//! window) stops the progress. On expiry the state machine sends NOTIFICATION 8/0
//! and closes with [`CloseMode::Abort`]: the RFC asks for the NOTIFICATION only when
//! it does not delay closing, so the driver drops the unsent queue, writes the
//! NOTIFICATION only if the socket takes it at once and no earlier message is half
//! written, and closes without waiting.
//!
//! **Collisions (RFC 4271 section 6.8).** Our connection attempt's connection always
//! goes to the primary (it asked for it and waits in Connect). A peer's connection
//! goes to the primary when `primary.wants_connection(Initiator::Remote)` (it waits
//! in Active); otherwise, if the primary is not Idle and there is no secondary yet,
//! the driver makes one with [`Fsm::secondary`] and feeds it the connection
//! (`Event::TcpConnected(Initiator::Remote)`); otherwise it closes the connection. Each
//! state machine has its own timers and actions (tag them by state machine). After
//! every batch while both exist, the driver asks [`collision::decide`]: for
//! [`Loser::Secondary`] it feeds the secondary [`Event::CollisionDump`] and drops it;
//! for [`Loser::Primary`] it feeds the primary `CollisionDump`, calls
//! `secondary.promote(&primary)` and keeps the secondary as the new primary. A
//! secondary that reaches Idle by itself ([`Fsm::is_finished`]) is dropped. A manual
//! stop goes to both. (The primary in Connect leaves a peer's connection to a
//! secondary instead of dropping its own attempt, so that both sides resolve the
//! same pair of connections.)
//!
//! **RFC 7606.** A `Malformed` message is answered with its NOTIFICATION. A decoded
//! UPDATE is delivered with its action: treat-as-withdraw and attribute-discard are
//! the speaker's to apply. AFI/SAFI disable resets the session under
//! [`FamilyErrorPolicy::ResetSession`] (the default), or is delivered under
//! [`FamilyErrorPolicy::DisableFamily`] for the speaker to drop and ignore the
//! families of [`ReceivedUpdate::disabled_families`].
//!
//! **Where this differs from RFC 4271 section 8.2.2** (as BIRD and FRR do):
//! - A passive session never connects (the RFC connects after the connect retry time).
//! - A failed connection attempt leads to Active and a new attempt after the connect
//!   retry time (the RFC goes to Idle); with delay open, likewise.
//! - Once our OPEN was sent, every failure leads to Idle with an automatic restart
//!   after the restart backoff ([`Backoff`], RFC 4271's optional IdleHoldTimer);
//!   the RFC goes to Active on a TCP failure in OpenSent.
//! - A NOTIFICATION received in OpenSent closes without an FSM error in reply.
//! - Any valid message restarts the hold timer in Established (ROUTE-REFRESH too).
//! - Collision dumps work in every state (the RFC defines them from OpenSent on) and
//!   never restart: the session goes on over the other connection. A received 6/7
//!   restarts after the initial backoff delay without counting a failure.
//!
//! Files: `config` (the session configuration), `event`, `action`, `state`, `timer`,
//! `reason` (why a session went down), `negotiated`, `open_check` (OPEN checks),
//! `collision` (section 6.8), `machine` (the state machine and its transitions),
//! `receive` (the transitions on received messages).

mod action;
pub mod collision;
mod config;
mod event;
mod machine;
mod negotiated;
mod open_check;
mod reason;
mod receive;
mod state;
mod template;
mod timer;

pub use action::{Action, CloseMode, ReceivedUpdate};
pub use collision::{Contender, Loser, Speaker, Survivor};
pub use config::{
    Backoff, ConfigError, DEFAULT_CONNECT_RETRY, DEFAULT_HOLD_TIME, DEFAULT_OPEN_HOLD_TIME,
    FamilyErrorPolicy, LocalCapabilities, MIN_DEFAULT_SEND_HOLD_TIME, PeerAs, SessionConfig,
};
pub use event::Event;
pub use machine::Fsm;
pub use negotiated::Negotiated;
pub use open_check::{OpenRefusal, check_open};
pub use reason::DownReason;
pub use state::{Initiator, Role, State};
pub use template::Template;
pub use timer::Timer;
