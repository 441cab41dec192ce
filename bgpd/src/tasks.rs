//! The daemon's tasks and the channels between them.
//!
//! Every resource has one owner task; tasks talk only over the channels drawn here,
//! all bounded but one (a connection's urgent write queue, bounded in practice by the
//! send hold timer; see `session::connection`). A slow or failing neighbor can delay
//! nothing but its own session.
//!
//! ```text
//!   SIGHUP, SIGTERM     daemon (daemon.rs): starts the tasks of TASKS in order, watches
//!        |              every JoinHandle; one ending = bgpd exits 1 naming it
//!        v
//!   listener(s) --Accepted--> supervisor task <--supervisor::Request-- control server task <-- bgpctl
//!   (TcpStream)               owns the neighbor set;                 |   (Unix socket,     (JSON lines)
//!                             JoinSet of session tasks:              |    one task per client)
//!                             a failed one -> PeerDown + restart     |
//!                              |  SessionCommand (per session)       | RibInput::Query (RibQuery)
//!                              v                                     v
//!        session task (1 per neighbor) ---RibInput------------>  rib task  <--RibInput::Local-- IPAM task
//!        owns the TCP stream and the        (PeerUp, Update,     owns adj_rib_in, loc_rib,   (LocalChange:
//!        bgp-proto fsm; a writer task        EndOfRib, Drained,  adj_rib_out, policy          blocks, borrowed
//!        per connection                      PeerDown, ...)        |                          addresses)
//!                    ^                                             |                               |
//!                    +------------- Outbound (per peer) -----------+                      supervisor::Request::Mesh
//!                                                                  | FibChange (best routes)  (node mesh neighbors)
//!                                                                  v
//!                                                          fib task --> route-sync task --> kernel
//!
//!   IPAM task --watch: Option<dataplane::Snapshot>--> dataplane task --> pod MTU file (STATE_DIR/mtu),
//!   (pools, nodes, block owners,                      reads the       nftables table inet wren
//!    tunnel endpoints; the latest wins)               interfaces      (nft -j, one transaction),
//!                                                         |           vxlan.wren / vxlan-v6.wren with
//!                                                         |           neighbour and FDB entries (rtnetlink)
//!                                                         | watch: Option<OverlayRoutes> (remote blocks'
//!                                                         v  routes; the latest wins)
//!                                                     fib task: merged with the rib's FibChanges, the
//!                                                     overlay's route winning for its prefix
//!
//!   session task --subscribe (Established, `bfd`)--> BFD task (bfd_task/): every BFD session
//!                <--watch: BfdStatus (per session,--    and its UDP sockets (3784/4784);
//!                   shared by its subscribers)          a path failure closes the BGP
//!                                                       session (Cease / BFD Down)
//!
//!   sessions, rib, fib, --Event--> events::Events (broadcast, bounded, lossy for
//!   route-sync, IPAM               a reader that falls behind) --> subscribers: the
//!                                  cluster task, `bgpctl monitor` (control::monitor,
//!                                  one task per client, cut off when it lags)
//!
//!   metrics task (per scrape) --supervisor::Request::Neighbors--> supervisor (snapshots
//!   (HTTP, [metrics]; its own |                                  with kind and counters)
//!    thread, nice 19)         +--RibQuery::Counts--> rib task (one turn, O(neighbors))
//!                             +--reads watch: route_sync::Summary (after each batch)
//!                             +--reads watch: dataplane_task::Status (after each sync)
//!
//!   API server <--kube watch/patch-- cluster task --supervisor::Request::Cluster--> supervisor
//!   (BGPPeer, BGPConfiguration,       (cluster_task/, the       (the BGPPeers' neighbors,
//!    Nodes, Secrets, WrenNode          `cluster` crate)          applied like a reload)
//!    status, the collector's Lease)        ^  ^  ^
//!                                          |  |  +-- Event::Converged: NetworkUnavailable=False
//!                                          |  +-- Neighbors, RibQuery::PeerCounters (every 2 s,
//!                                          |      for the WrenNode status, written on change)
//!                                          +-- IPAM task's watch: IpamStatus (blocks, reachable);
//!                                              the IPAM collector on its own datastore client
//!
//!   API server <--TokenRequest-- CNI token task --> the CNI plugins' kubeconfig (a wren-cni
//!                                (cni_token_task.rs)  token, renewed a quarter into its life)
//! ```
//!
//! Where the messages live: this file holds what crosses into and out of the rib
//! task ([`RibInput`], [`Outbound`], [`LocalChange`], [`RibQuery`], [`FibChange`]);
//! the other messages live with the task that owns their channel:
//! `supervisor::Request`, `session::SessionCommand`, `listener::Accepted`,
//! `ipam::IpamHandle` (a shared handle, not a channel), `events::Event`,
//! `dataplane::Snapshot` (the IPAM task's watch, `dataplane_task::SnapshotSender`),
//! `dataplane::vxlan::OverlayRoutes` (the dataplane task's watch,
//! `dataplane_task::OverlaySender`), `dataplane_task::Status` (the dataplane task's
//! watch for the metrics), `bfd_task::BfdStatus` (the BFD task's watch per
//! session, held through `bfd_task::Subscription`).
//!
//! Channel rules:
//! - `RibInput` is one bounded mpsc into the rib task ([`RIB_INPUT_CAPACITY`]);
//!   sessions `send().await` on it, so a busy RIB slows the peers that feed it (TCP
//!   backpressure), never drops input.
//! - Questions that must not wait behind that queue (health, the metrics' counts,
//!   `show neighbors`' counters) go on the rib task's own bounded channel of
//!   [`RibQuery`] ([`QUESTION_CAPACITY`]), answered before any queued input and
//!   between two inputs of a batch; `show routes` chunks stay on `RibInput`.
//! - `Outbound` is one bounded `crate::queue` per established session (as are a
//!   session's commands: a tokio channel costs about 800 bytes), created by the session
//!   and handed over in [`PeerUp`]. The rib task never blocks on it: it uses
//!   `try_send`, keeps what did not fit as pending changes in that peer's
//!   adj_rib_out, and resumes when the session reports [`RibInput::Drained`].
//! - `FibChange` is bounded ([`FIB_CAPACITY`]); the rib task waits for room (the
//!   kernel is where a large table has to go anyway).
//! - Replies to queries travel on `oneshot` channels carried inside the request.
//! - The dataplane's `watch`es hold one value: the IPAM task never waits for the
//!   dataplane task, nor the dataplane task for the fib task; each sees the latest.
//! - Events are sent without waiting; nobody listening costs one atomic load.
//!
//! [`PeerId`] is stable for a neighbor's lifetime in the supervisor (across session
//! restarts), so graceful restart can match a returning peer to its stale routes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use bgp_proto::{Family, Notification, SessionContext, Update};
use bytes::Bytes;
use ipnet::IpNet;
use tokio::sync::oneshot;

use control_proto::{FamilyName, RouteLine, RouteQuery};

/// Capacity of the channel into the rib task.
pub const RIB_INPUT_CAPACITY: usize = 1024;
/// Capacity of the rib task's questions channel: [`RibQuery`]s that jump the
/// [`RibInput`] queue (see `rib::run`).
pub const QUESTION_CAPACITY: usize = 64;
/// Capacity of each session's outbound channel (in batches of encoded UPDATEs). One:
/// what a peer has not taken yet waits as bits of its Adj-RIB-Out, and is encoded
/// when the session takes the batch before it (see `rib::adj_rib_out`). With 64, a
/// route reflector encoded a batch for every client at every round, and its clients'
/// writes cost it twice the CPU; with 8, it held most of every slow client's table
/// encoded (issue 18, `bench scale-reflector`).
pub const OUTBOUND_CAPACITY: usize = 1;
/// Capacity of the channel from the rib task toward the FIB.
pub const FIB_CAPACITY: usize = 1024;

/// A neighbor's identity inside the daemon, stable across its session restarts.
pub type PeerId = u32;

/// Everything the rib task is told by sessions, local sources and the supervisor.
#[derive(Debug)]
pub enum RibInput {
    /// A session reached Established.
    PeerUp(PeerUp),
    /// An UPDATE from an established session, already framed and decoded. With
    /// `treat_as_withdraw` (RFC 7606) every prefix it announces is withdrawn instead.
    Update {
        peer: PeerId,
        update: Box<Update>,
        treat_as_withdraw: bool,
    },
    /// The peer sent End-of-RIB for a family.
    EndOfRib { peer: PeerId, family: Family },
    /// The peer asked for our routes again (ROUTE-REFRESH); re-send that family.
    RouteRefresh { peer: PeerId, family: Family },
    /// RFC 7606 AFI/SAFI disable: drop and ignore the peer's routes of this family.
    DisableFamily { peer: PeerId, family: Family },
    /// The session left Established. With `stale_for` (graceful restart helper,
    /// RFC 4724) the peer's routes are kept, marked stale, for that long or until the
    /// peer's End-of-RIB after it returns; otherwise they are withdrawn now.
    PeerDown {
        peer: PeerId,
        stale_for: Option<Duration>,
    },
    /// The session's outbound channel has room again.
    Drained { peer: PeerId },
    /// Locally originated routes changed.
    Local(LocalChange),
    /// The configuration was (re)loaded: policies, max_paths, cluster id, per-peer
    /// settings. Routes are re-evaluated against it (soft reconfiguration).
    Reconfigure(Arc<crate::config::Config>),
    /// A question from the control server.
    Query(RibQuery),
}

/// A session that reached Established, as the rib task needs to know it.
#[derive(Debug)]
pub struct PeerUp {
    pub peer: PeerId,
    pub info: Arc<PeerInfo>,
    /// Encoded UPDATEs for this session; see the channel rules above. A
    /// [`crate::queue`], not a tokio channel (about 800 bytes each, one per session:
    /// issue 18's memory per session); boxed, one allocation per batch of UPDATEs.
    pub outbound: crate::queue::Sender<Box<Outbound>>,
}

/// Facts about an established session that decision and export depend on.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// The neighbor's address (the TCP peer).
    pub address: IpAddr,
    /// Our end of the TCP connection: the next hop we advertise to eBGP peers and
    /// with next_hop_self.
    pub local_address: IpAddr,
    /// Our IPv4 / IPv6 addresses for next hops of the other family (dual-stack
    /// sessions), when known.
    pub local_ipv4: Option<Ipv4Addr>,
    pub local_ipv6: Option<Ipv6Addr>,
    /// Our link-local IPv6 address on the session's interface, if any.
    pub local_link_local: Option<Ipv6Addr>,
    /// Our AS and the peer's (after AS_TRANS resolution).
    pub local_asn: u32,
    pub remote_asn: u32,
    /// The peer's BGP identifier.
    pub remote_router_id: Ipv4Addr,
    /// The negotiated context every encode for this peer uses.
    pub context: SessionContext,
    /// The peer's graceful restart capability, if it sent one.
    pub graceful_restart: Option<bgp_proto::GracefulRestart>,
}

/// What the rib task sends to one session.
#[derive(Debug)]
pub enum Outbound {
    /// One or more complete, encoded UPDATE messages (including End-of-RIB).
    Updates(Bytes),
    /// Close the session with this NOTIFICATION (max_prefixes exceeded: Cease/1),
    /// then stay idle for `idle_for` before connecting again (None: the usual backoff).
    Close {
        notification: Notification,
        idle_for: Option<Duration>,
    },
}

/// A change to locally originated routes. `source` keys the route together with the
/// prefix, so two sources may originate one prefix and withdraw it independently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalChange {
    Announce(LocalRoute),
    Withdraw {
        prefix: IpNet,
        source: LocalSource,
    },
    /// Replace every route of this source with this set (used at start and after a
    /// reload or an IPAM resynchronisation).
    Replace {
        source: LocalSource,
        routes: Vec<LocalRoute>,
    },
}

/// A route this node originates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalRoute {
    pub prefix: IpNet,
    pub source: LocalSource,
    /// Communities to attach (RFC 1997 values).
    pub communities: Vec<u32>,
    /// Also install a blackhole route for it in the kernel (the node's own IPAM
    /// blocks: addresses not handed out are dropped locally, not routed away).
    pub blackhole: bool,
}

/// Where a local route comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LocalSource {
    /// `[[bgp.network]]` in the config.
    Config,
    /// A block this node owns in IPAM.
    IpamBlock,
    /// A single address this node borrowed from another node's block.
    IpamBorrowed,
}

/// Slots of the RIB's tables a [`RibQuery::Prefixes`] looks at in one turn.
pub const PREFIX_SCAN: usize = 65_536;
/// Prefixes a [`RibQuery::RouteChunk`] asks for at most (the paths of each prefix
/// come along).
pub const ROUTE_CHUNK: usize = 1024;

/// Questions the control server asks the rib task. Each is answered in one turn of
/// the task, bounded in work: a whole-table `show routes` is many questions, asked
/// one after the other (see `control::routes`), so the rib task handles other input
/// in between and never waits for a slow reader of the control socket.
#[derive(Debug)]
pub enum RibQuery {
    /// The paths of one prefix (`query.prefix`, exact or longest match), or none.
    Routes {
        query: RouteQuery,
        reply: oneshot::Sender<Vec<RouteLine>>,
    },
    /// The prefixes with paths in up to [`PREFIX_SCAN`] slots from `from` on, in the
    /// tables' slot order (not sorted), only those after `after` in prefix order.
    Prefixes {
        family: Option<FamilyName>,
        after: Option<IpNet>,
        from: PrefixCursor,
        reply: oneshot::Sender<PrefixChunk>,
    },
    /// The paths `query` selects (view, neighbor) of these prefixes (at most
    /// [`ROUTE_CHUNK`]), in the order given, each prefix's best path first.
    RouteChunk {
        prefixes: Vec<IpNet>,
        query: RouteQuery,
        reply: oneshot::Sender<Vec<RouteLine>>,
    },
    /// Prefix counters of one peer: (received, accepted, advertised).
    PeerCounters {
        peer: PeerId,
        reply: oneshot::Sender<PeerCounters>,
    },
    /// Whether the first convergence is done (`show-health`; an answer also shows
    /// that the rib task turns).
    Converged { reply: oneshot::Sender<bool> },
    /// The prefix counts of the whole RIB and of every neighbor, per family
    /// (`/metrics`): O(neighbors), from counts the rib keeps as paths change.
    Counts { reply: oneshot::Sender<RibCounts> },
}

/// The RIB's prefix counts at one moment; arrays are per family (0 IPv4 unicast,
/// 1 IPv6 unicast).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RibCounts {
    pub families: [FamilyCounts; 2],
    /// Every neighbor the rib knows (with a session or with routes).
    pub peers: Vec<(PeerId, [PeerFamilyCounts; 2])>,
}

/// One family of the Loc-RIB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FamilyCounts {
    /// Prefixes with at least one path.
    pub prefixes: u64,
    /// Paths, from neighbors and local sources.
    pub paths: u64,
}

/// One neighbor's prefixes of one family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerFamilyCounts {
    /// In its adj_rib_in (before import policy).
    pub received: u64,
    /// Accepted by the import policy.
    pub accepted: u64,
    /// In its adj_rib_out.
    pub advertised: u64,
    /// Kept stale while it restarts (graceful restart).
    pub stale: u64,
}

/// Where a scan of the RIB's prefixes goes on: a family (0 IPv4, 1 IPv6) and a slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefixCursor {
    pub family: usize,
    pub slot: u32,
}

/// One turn's worth of prefixes.
#[derive(Debug, Default)]
pub struct PrefixChunk {
    pub prefixes: Vec<IpNet>,
    /// Where the next turn starts; `None` when the scan is done.
    pub next: Option<PrefixCursor>,
}

pub use control_proto::PeerCounters;

/// One next hop of [`FibChange::InstallOnLink`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FibNextHop {
    /// Resolved by route-sync (connected or recursive); an IPv6 address for an
    /// IPv4 route received with an RFC 8950 next hop.
    Address(IpAddr),
    /// `link_local` on the interface that holds `local`, our end of the session the
    /// route came over; `global` instead whenever it resolves (RFC 2545's pair).
    LinkLocal {
        global: Option<Ipv6Addr>,
        link_local: Ipv6Addr,
        local: IpAddr,
    },
}

/// A change of best route that the FIB should follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FibChange {
    /// Install or replace: forward `prefix` to these next hops (ECMP when several).
    Install {
        prefix: IpNet,
        next_hops: Vec<IpAddr>,
    },
    /// Install or replace when some next hop is IPv6 link-local (alone, or as the
    /// alternative of a global one) and so needs the session's interface.
    InstallOnLink {
        prefix: IpNet,
        next_hops: Vec<FibNextHop>,
    },
    /// Install a blackhole route for `prefix`.
    Blackhole { prefix: IpNet },
    /// Remove the route for `prefix`.
    Remove { prefix: IpNet },
    /// Every peer that was up at start has sent End-of-RIB (or the restart timer ran
    /// out): the FIB may now remove routes nobody re-asserted.
    Converged,
}
