//! peer: a scriptable, deliberately misbehaving BGP peer for black-box tests of bgpd.
//!
//! It opens a session like any speaker would, then sends whatever bytes a test hands
//! it (hand-built OPENs and UPDATEs, broken on purpose), and watches the daemon from
//! outside: what comes back on the session, the daemon's RIB (`bgpctl --json`) and
//! the kernel's FIB (`ip -j route`).
//!
//! - [`wire`]: messages built byte by byte (headers, OPENs, capabilities, UPDATEs,
//!   attributes with any flags and lengths, NLRI) and hex input;
//! - [`session`]: [`Peer`], one connection on its own thread (connect or accept,
//!   `establish` the OPEN exchange, send raw bytes, KEEPALIVEs on a timer, stop
//!   reading to close the TCP window, everything received recorded in [`Observed`]);
//! - [`observe`]: [`Daemon`], the daemon's RIB, neighbors and kernel routes;
//! - [`probe`]: "ignored", "withdrawn" or "session reset" told apart with victim
//!   routes and a sentinel route;
//! - [`bfd`]: hostile BFD control packets (one defect each on a well-formed
//!   session-down packet), sent with any source address and TTL, and floods;
//! - [`table`]: test tables as `key: value` rows (bgp-proto's rules.txt format).
//!
//! The `wren-peer` binary offers the same for manual use.

pub mod bfd;
pub mod error;
pub mod observe;
pub mod probe;
pub mod session;
pub mod table;
pub mod wire;

pub use error::{Error, Result};
pub use observe::{Daemon, KernelRoute, RibRoute};
pub use probe::{Observation, Probe, RouteState, Session, Victim, VictimState};
pub use session::{AdvertisedRoute, ConnectOptions, Handshake, Listener, Observed, Peer};
