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
//! let (rib, questions, rib_task) = bgpd::rib::spawn(config.clone(), Some(fib), events);
//! // Sessions send RibInput::PeerUp / Update / EndOfRib / ... / PeerDown on `rib`;
//! // the control server sends RibInput::Query (route chunks) on `rib` and its other
//! // questions (RibQuery) on `questions`; a reload sends RibInput::Reconfigure.
//! drop(questions);
//! rib.send(bgpd::tasks::RibInput::Reconfigure(config)).await?;
//! drop(rib);
//! rib_task.await?;
//! # Ok(())
//! # }
//! ```
//!
//! - [`spawn`]`(config, fib, events)` starts the rib task and returns the sender of the
//!   [`RibInput`](crate::tasks::RibInput) channel (capacity
//!   [`RIB_INPUT_CAPACITY`](crate::tasks::RIB_INPUT_CAPACITY)), the sender of its
//!   questions channel (answered before any queued input: health, the metrics'
//!   counts, neighbor counters) and the task's handle.
//!   The task ends when every sender is dropped. It originates the configured
//!   networks (`[[bgp.network]]`) itself, at start and on each `Reconfigure`, as
//!   `LocalSource::Config`; other sources send `RibInput::Local`.
//! - FIB changes go to `fib` (see [`crate::fib`]); `FibChange::Converged` is sent
//!   once every configured neighbor that is not shut down has sent End-of-RIB for
//!   each family it negotiated (neighbors the node mesh adds before then too) and,
//!   with `[ipam]`, the IPAM task's first `Replace` of `LocalSource::IpamBlock` is
//!   in; or after `[bgp.graceful_restart] restart_time`, which is also told on
//!   `events` (`Event::Converged`). While anybody listens to `events`, every change
//!   of a prefix's best route (or ECMP set) is told too (`Event::BestRoute`).
//! - Outbound UPDATEs go to each session's `Outbound` channel with `try_reserve`
//!   only; a full channel makes the peer wait for `RibInput::Drained`, so a session
//!   must send `Drained` when it takes something off a channel that was full
//!   (sending it more often is harmless).
//! - [`Rib`] is the same state machine without the task, for tests and benchmarks:
//!   [`Rib::handle`] an input, [`Rib::flush`] peers, [`Rib::take_fib`]
//!   ([`Rib::watch`], [`Rib::take_best_routes`]).
//!
//! # Files
//!
//! - `attrs`: interned attribute sets (next hop included) with reference counts,
//!   and each one's wire encoding as sent (shared by every session it fits);
//! - `table`: the compact per-family prefix tables (24-octet IPv4 entries);
//! - `bitset`: per-peer slot sets for adj_rib_out;
//! - `decision`: the decision process and the ECMP set, as a pure function;
//! - `peer`: per-neighbor state and settings;
//! - `mod.rs` (this file): the [`Rib`] with its settings, and [`spawn`];
//! - `loc_rib`: the one place a path changes (decision, pending marks, FIB changes);
//! - `best_routes`: best-route changes recorded for the event stream while somebody
//!   listens;
//! - `adj_rib_in`: UPDATEs and local routes in (checks, import policy, max_prefixes);
//! - `export`: export rules (default eBGP export, split horizon, route reflection,
//!   next hop, AS path, LOCAL_PREF, MED);
//! - `adj_rib_out`: packing pending changes into UPDATEs, backpressure, End-of-RIB;
//! - `lifecycle`: sessions up and down, graceful restart, refresh, reload, timers,
//!   first convergence;
//! - `query`: `show routes` and counters (per neighbor, and the whole RIB's for
//!   `/metrics`: all kept as paths change, so a count never walks the tables);
//! - `task`: the async loop.

mod adj_rib_in;
mod adj_rib_out;
pub mod attrs;
mod best_routes;
mod bitset;
pub mod decision;
mod export;
mod lifecycle;
mod loc_rib;
mod peer;
mod query;
mod slot_set;
mod table;
mod task;

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use export::self_next_hop;
pub use peer::max_prefixes_notification;
pub use task::{MAX_BATCH, run};

use attrs::AttrTable;
use bitset::Bitset;
use decision::Candidate;
use lifecycle::Convergence;
use peer::{LOCAL_SOURCES, Peer, PeerSettings};
use table::{Path, PeerIdx, Tables};

use crate::config::Config;
use crate::events::Events;
use crate::policy::Policy;
use crate::tasks::{
    FibChange, FibNextHop, PeerId, QUESTION_CAPACITY, RIB_INPUT_CAPACITY, RibInput, RibQuery,
};

/// The RIB: adj_rib_in (the paths' received attributes), Loc-RIB (the paths and
/// their selection) and adj_rib_out (per-peer bitsets) of both families.
///
/// Defined here so that every child module reaches its (private) fields through its
/// parent, and no child depends on another for the type everyone works on.
#[derive(Debug)]
pub struct Rib {
    settings: Settings,
    attrs: AttrTable,
    tables: Tables,
    peers: Vec<Option<Peer>>,
    by_id: HashMap<PeerId, PeerIdx>,
    /// FIB changes not yet handed on (None: no FIB).
    fib: Option<Vec<FibChange>>,
    /// Best-route changes not yet told on the event stream (None: nobody listens).
    best_routes: Option<Vec<control_proto::RouteChange>>,
    convergence: Convergence,
    scratch: Scratch,
    /// Prefixes with at least one path, per family (kept by `loc_rib`'s one place a
    /// path changes; the tables also hold prefixes without paths, waiting for their
    /// withdrawals to be sent).
    routed: [u64; 2],
    /// Peers that may have something to send: every peer that has pending prefixes
    /// or an End-of-RIB due and can take them is here (marked where pending work
    /// appears or a peer is unblocked), so a flush visits these, not every peer.
    ready: Bitset,
    /// Every peer's `stale_until` (graceful restart), ordered: the next deadline
    /// and the due ones without walking the peers.
    stale_deadlines: BTreeSet<(Instant, PeerIdx)>,
    /// Established sessions (peers with a `Session`): a batch of UPDATEs is a share
    /// of what may wait toward all of them (see `adj_rib_out`).
    sessions: usize,
    /// Encoded UPDATEs that may wait toward all peers together
    /// (`adj_rib_out::OUTBOUND_BYTES` unless a test sets it).
    outbound_bytes: usize,
}

/// Settings of the whole RIB, from the configuration.
#[derive(Debug)]
struct Settings {
    asn: u32,
    router_id: Ipv4Addr,
    cluster_id: Ipv4Addr,
    max_paths: usize,
    policy: Policy,
    config: Arc<Config>,
}

impl Settings {
    fn new(config: Arc<Config>) -> Settings {
        Settings {
            asn: config.bgp.asn.get(),
            router_id: config.bgp.router_id,
            cluster_id: config.bgp.cluster_id.unwrap_or(config.bgp.router_id),
            max_paths: config.bgp.max_paths.get(),
            policy: Policy::new(&config.policy),
            config,
        }
    }

    /// The settings of a neighbor at `address` under this configuration.
    fn peer_settings(&self, address: IpAddr) -> PeerSettings {
        PeerSettings::from_config(&self.config, &self.policy, address)
    }
}

/// Buffers reused between calls so the per-prefix work does not allocate.
#[derive(Debug, Default)]
struct Scratch {
    before: Vec<Path>,
    candidates: Vec<Candidate>,
    eligible: Vec<usize>,
    order: Vec<usize>,
    reordered: Vec<Path>,
    hops_before: Vec<FibNextHop>,
    hops_after: Vec<FibNextHop>,
    slots: Vec<u32>,
    /// The ready peers of one flush.
    ready: Vec<u32>,
    /// Where a peer's batch of UPDATEs is encoded before it is copied out at its
    /// length (see `adj_rib_out::flush_peer`).
    batch: bytes::BytesMut,
    /// Encoded bytes per prefix of the last batch filled, per family (0: none yet);
    /// how many prefixes fill the next one (see `adj_rib_out::fill_up`).
    bytes_per_prefix: [usize; 2],
}

impl Rib {
    /// An empty RIB for `config`; `fib` says whether FIB changes are wanted.
    /// The configured networks are originated at once (see [`crate::local`]).
    pub fn new(config: Arc<Config>, fib: bool, now: Instant) -> Rib {
        let mut rib = Rib {
            settings: Settings::new(config.clone()),
            attrs: AttrTable::new(),
            tables: Tables::default(),
            peers: LOCAL_SOURCES
                .iter()
                .map(|&source| Some(Peer::local(source)))
                .collect(),
            by_id: HashMap::new(),
            fib: fib.then(Vec::new),
            best_routes: None,
            convergence: Convergence::new(&config, now),
            scratch: Scratch::default(),
            sessions: 0,
            outbound_bytes: adj_rib_out::OUTBOUND_BYTES,
            routed: [0; 2],
            ready: Bitset::default(),
            stale_deadlines: BTreeSet::new(),
        };
        rib.local_change(crate::local::config_routes(&config));
        rib.check_convergence(now);
        rib
    }

    /// The FIB changes made since the last call, in order.
    pub fn take_fib(&mut self) -> Vec<FibChange> {
        self.fib.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Arc<Config> {
        &self.settings.config
    }

    /// Number of prefixes with at least one path, per family.
    pub fn prefixes(&self) -> (usize, usize) {
        let [v4, v6] = self
            .routed
            .map(|count| usize::try_from(count).unwrap_or(usize::MAX));
        // The tables hold these and the prefixes waiting for their withdrawals.
        debug_assert!(v4 <= self.tables.v4.len() && v6 <= self.tables.v6.len());
        (v4, v6)
    }

    /// Distinct attribute sets in use.
    pub fn attribute_sets(&self) -> usize {
        self.attrs.len()
    }

    /// Octets held by the prefix tables (see `Table::memory`).
    pub fn table_memory(&self) -> usize {
        self.tables.v4.memory() + self.tables.v6.memory()
    }
}

/// Starts the rib task in the current tokio runtime.
pub fn spawn(
    config: Arc<Config>,
    fib: Option<mpsc::Sender<FibChange>>,
    events: Events,
) -> (
    mpsc::Sender<RibInput>,
    mpsc::Sender<RibQuery>,
    JoinHandle<()>,
) {
    let (sender, receiver) = mpsc::channel(RIB_INPUT_CAPACITY);
    let (questions, asked) = mpsc::channel(QUESTION_CAPACITY);
    // The FIB changes are gathered for the fib task, and also for the event stream
    // when a reader is there from the start (the cluster task waits for
    // `Converged`, with or without `[fib]`).
    let rib = Rib::new(config, fib.is_some() || events.wanted(), Instant::now());
    let handle = tokio::spawn(run(rib, receiver, asked, fib, events));
    (sender, questions, handle)
}
