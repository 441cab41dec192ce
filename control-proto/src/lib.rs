//! The control socket's protocol between bgpd and bgpctl: one JSON object per line
//! each way, typed end to end. Both ends (and route-sync, which builds the FIB
//! snapshot, and the ipam crate, which runs the IPAM requests) use these types and
//! nothing else, so neither side reads the other's internals.
//!
//! A request names its `command` ([`Request`]). The answer is one line
//! `{"ok": ANSWER}` ([`Answer`], tagged by kind) or `{"error": "one line"}`, except
//! `show-routes`, which streams: one `{"route": ROUTE}` line per path as the rib hands
//! them over, then `{"end": {...}}` ([`RoutesEnd`]), or `{"error": ...}` if it fails
//! half-way; and `monitor`, which streams `{"event": {...}}` lines until the client
//! leaves or is cut off for reading too slowly (see [`monitor`]).
//!
//! ```text
//! → {"command":"show-neighbors"}
//! ← {"ok":{"neighbors":[{"address":"10.0.0.2","remote_asn":65001,...}]}}
//! → {"command":"show-routes","query":{"prefix":null,"family":"ipv4","neighbor":null,"view":"loc-rib"},"after":"10.1.0.0/24","limit":100}
//! ← {"route":{"prefix":"10.1.1.0/24",...}}
//! ← {"end":{"prefixes":1,"paths":1,"next":null}}
//! ```
//!
//! Modules: [`request`] (what bgpctl asks), [`answer`] (what bgpd says), [`neighbor`]
//! (`show neighbors` / `show neighbor ADDR`, reload summaries), [`route`] (`show
//! routes`), [`fib`] (`show fib`), [`bfd`] (`show bfd`), [`ipam`] (the IPAM commands),
//! [`health`] (`show health`, the probes'), [`monitor`] (`bgpctl monitor`).

pub mod answer;
pub mod bfd;
pub mod fib;
pub mod health;
pub mod ipam;
pub mod monitor;
pub mod neighbor;
pub mod request;
pub mod route;

pub use answer::{Answer, Response, RoutesEnd};
pub use bfd::BfdSession;
pub use ipam::{IpamRequest, PoolSettings, VxlanMode};
pub use monitor::{
    Disconnected, MonitorChange, MonitorEvent, MonitorTopic, NeighborChange, RouteAction,
    RouteChange,
};
pub use neighbor::{
    ConnectionInfo, LastError, MessageCount, NegotiatedInfo, NeighborAction, NeighborDetail,
    NeighborEntry, NeighborView, PeerCounters, ReloadSummary, Timers,
};
pub use request::Request;
pub use route::{FamilyName, RouteLine, RouteQuery, RouteTable, RouteView};

/// Longest request line the server reads.
pub const MAX_REQUEST_LEN: usize = 64 * 1024;
/// Where bgpctl finds the socket when not told: `WREN_CONTROL_SOCKET`, else this.
pub const DEFAULT_SOCKET: &str = "/run/wren/bgpd.sock";
/// The environment variable naming the socket.
pub const SOCKET_ENV: &str = "WREN_CONTROL_SOCKET";
