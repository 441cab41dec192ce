//! The RIB: Adj-RIB-In per neighbor, the Loc-RIB with the RFC 4271 decision process
//! and ECMP, Adj-RIB-Out per neighbor, route reflection, policy, and the best routes
//! toward the FIB; owned by one task.
//!
//! # Entry points (for `daemon.rs`)
//!
//! ```no_run
//! # async fn example(config: std::sync::Arc<bgpd::config::Config>) -> anyhow::Result<()> {
//! let events = bgpd::events::Events::new();
//! // With `[fib] enabled`; `None` otherwise.
//! let (fib, _fib_view, _fib_task) =
//!     bgpd::fib::spawn(config.fib.sync.clone(), false, events.clone()).await?;
//! let (rib, rib_task) = bgpd::rib::spawn(config.clone(), Some(fib), events);
//! // Sessions send RibInput::PeerUp / Update / EndOfRib / ... / PeerDown on `rib`;
//! // the control server sends RibInput::Query; a reload sends RibInput::Reconfigure.
//! rib.send(bgpd::tasks::RibInput::Reconfigure(config)).await?;
//! drop(rib);
//! rib_task.await?;
//! # Ok(())
//! # }
//! ```
//!
//! - [`spawn`]`(config, fib, events)` starts the rib task and returns the sender of the
//!   [`RibInput`](crate::tasks::RibInput) channel (capacity
//!   [`RIB_INPUT_CAPACITY`](crate::tasks::RIB_INPUT_CAPACITY)) and the task's handle.
//!   The task ends when every sender is dropped. It originates the configured
//!   networks (`[[bgp.network]]`) itself, at start and on each `Reconfigure`, as
//!   `LocalSource::Config`; other sources send `RibInput::Local`.
//! - FIB changes go to `fib` (see [`crate::fib`]); `FibChange::Converged` is sent
//!   once every configured neighbor that is not shut down has sent End-of-RIB for
//!   each family it negotiated (neighbors the node mesh adds before then too) and,
//!   with `[ipam]`, the IPAM task's first `Replace` of `LocalSource::IpamBlock` is
//!   in; or after `[bgp.graceful_restart] restart_time`. Each FIB change is also
//!   told on `events` (`Event::BestRoute`, `Event::Converged`).
//! - Outbound UPDATEs go to each session's `Outbound` channel with `try_reserve`
//!   only; a full channel makes the peer wait for `RibInput::Drained`, so a session
//!   must send `Drained` when it takes something off a channel that was full
//!   (sending it more often is harmless).
//! - [`Rib`] is the same state machine without the task, for tests and benchmarks:
//!   [`Rib::handle`] an input, [`Rib::flush`] peers, [`Rib::take_fib`].
//!
//! # Files
//!
//! - `attrs`: interned attribute sets (next hop included) with reference counts;
//! - `table`: the compact per-family prefix tables (24-octet IPv4 entries);
//! - `bitset`: per-peer slot sets for adj_rib_out;
//! - `decision`: the decision process and the ECMP set, as a pure function;
//! - `peer`: per-neighbor state and settings;
//! - `loc_rib`: the `Rib` and the one place a path changes;
//! - `adj_rib_in`: UPDATEs and local routes in (checks, import policy, max_prefixes);
//! - `export`: export rules (default eBGP export, split horizon, route reflection,
//!   next hop, AS path, LOCAL_PREF, MED);
//! - `adj_rib_out`: packing pending changes into UPDATEs, backpressure, End-of-RIB;
//! - `lifecycle`: sessions up and down, graceful restart, refresh, reload, timers,
//!   first convergence;
//! - `query`: `show routes` and counters;
//! - `task`: the async loop.

mod adj_rib_in;
mod adj_rib_out;
pub mod attrs;
mod bitset;
pub mod decision;
mod export;
mod lifecycle;
mod loc_rib;
mod peer;
mod query;
mod table;
mod task;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use export::self_next_hop;
pub use loc_rib::Rib;
pub use peer::max_prefixes_notification;
pub use task::{MAX_BATCH, run};

use crate::config::Config;
use crate::events::Events;
use crate::tasks::{FibChange, RIB_INPUT_CAPACITY, RibInput};

/// Starts the rib task in the current tokio runtime.
pub fn spawn(
    config: Arc<Config>,
    fib: Option<mpsc::Sender<FibChange>>,
    events: Events,
) -> (mpsc::Sender<RibInput>, JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel(RIB_INPUT_CAPACITY);
    let rib = Rib::new(config, fib.is_some(), Instant::now());
    let handle = tokio::spawn(run(rib, receiver, fib, events));
    (sender, handle)
}
