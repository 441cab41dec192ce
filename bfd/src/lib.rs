//! bfd: Bidirectional Forwarding Detection (RFC 5880) for asynchronous mode, sans I/O.
//!
//! - [`ControlPacket`]: the control packet's codec; [`ControlPacket::decode`] applies
//!   the reception checks of RFC 5880 section 6.8.6 that need no session, each failure
//!   a [`DropReason`] the caller counts.
//! - [`Session`]: one session's state machine (AdminDown, Down, Init, Up), with its
//!   diagnostics, the Poll Sequence, timer negotiation ([`timers`]) and jitter
//!   ([`Jitter`], seeded by the caller).
//! - [`SessionKey`]: how the transport finds a session before discriminators are
//!   known (single hop: interface and peer; multihop: local and peer), with the ports
//!   and TTL of RFC 5881/5883.
//!
//! Authentication, the echo function and demand mode are out of scope: a packet with
//! the A bit set is dropped, and a session never asks for demand mode or echo.
//!
//! # Calling contract
//!
//! Nothing here reads a clock, does I/O, draws random numbers or panics on input. The
//! transport (bgpd's BFD task) owns the sockets, the clock and the timer:
//!
//! - **One session per [`SessionKey`]**, shared by every client that asks for that
//!   path; the transport counts clients and drops the session with the last one. It
//!   gives each session a nonzero local discriminator unique among its sessions and a
//!   seed for the jitter, and creates it with [`Session::new`] (in Down, its first
//!   packet due at once). A received packet never creates a session.
//! - **Packets in.** Decode each datagram with [`ControlPacket::decode`] (after the
//!   transport's own checks: TTL 255 on single hop). Choose the session by Your
//!   Discriminator when it is nonzero ([`DropReason::UnknownDiscriminator`] when no
//!   session has it), otherwise by the key of the datagram's addresses
//!   ([`DropReason::NoSession`] when none); then call [`Session::on_packet`] with the
//!   current time. Every drop leaves the session as it was.
//! - **Time.** Call [`Session::on_timer`] when [`Session::poll_timeout`] has passed
//!   (an early call does nothing, so one timer per task over every session's
//!   deadline is enough), and ask `poll_timeout` again after every call into the
//!   session.
//! - **Control.** [`Session::set_admin_down`] and [`Session::set_config`] (a new
//!   interval while Up starts a Poll Sequence).
//! - **Actions out**, in order: [`Action::Send`] (encode with
//!   [`ControlPacket::encode`], send from a source port in [`key::SOURCE_PORTS`] to
//!   [`SessionKey::port`], TTL 255 on single hop) and [`Action::StateChanged`] (tell
//!   the clients; [`Transition::signals_failure`] says whether a BGP session should
//!   close: Up to Down, and not because the peer went AdminDown).
//!
//! Timers (RFC 5880 section 6.8): while not Up, the advertised desired transmit
//! interval is at least 1 s; the periodic interval is the greater of ours and the
//! peer's required receive interval, less 0 to 25 % jitter (10 to 25 % with Detect
//! Mult 1); the detection time is the peer's Detect Mult times the greater of our
//! required receive interval and the peer's desired transmit interval.
//!
//! Files: `packet` (codec), `state` (states, diagnostics), `error` (drop reasons,
//! configuration errors), `config`, `timers` (negotiation), `jitter`, `action`,
//! `session` (the state machine), `key`.

mod action;
mod config;
mod error;
pub mod jitter;
pub mod key;
mod packet;
mod session;
mod state;
pub mod timers;

pub use action::{Action, Transition};
pub use config::{DEFAULT_DETECT_MULT, DEFAULT_MIN_RX, DEFAULT_MIN_TX, SessionConfig};
pub use error::{ConfigError, DropReason};
pub use jitter::Jitter;
pub use key::SessionKey;
pub use packet::{ControlPacket, MAX_INTERVAL, PACKET_LEN, VERSION, micros};
pub use session::{Intervals, Remote, Session};
pub use state::{Diagnostic, State};
