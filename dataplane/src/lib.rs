//! What bgpd programs on the host beside the routes (issue 15): the nftables table
//! for `nat_outgoing`, the pod MTU, the VXLAN overlay and IP forwarding. One bgpd task owns all of it (bgpd's
//! `dataplane_task`), fed by the IPAM task's [`Snapshot`]; nothing here is driven
//! from the rib.
//!
//! - [`snapshot`]: the pools and nodes the dataplane follows.
//! - [`link`]: the host's interfaces (one netlink dump).
//! - [`forwarding`]: IPv4 (and with an IPv6 pool IPv6) forwarding turned on.
//! - [`mtu`]: the host MTU, the pod MTU and the file the CNI plugin reads.
//! - [`nat`]: the nftables table `inet wren` that masquerades `nat_outgoing` pools.
//! - [`vxlan`]: the VXLAN overlay: devices, neighbour and FDB entries, and the
//!   remote blocks' routes (which bgpd's fib task hands to route-sync).
//!
//! Calling contract: every function works in the caller's network namespace and
//! touches nothing but Wren's own objects (its MTU file, its nftables table, its
//! VXLAN devices and their entries).

pub mod error;
pub mod forwarding;
pub mod link;
pub mod mtu;
pub mod nat;
pub mod snapshot;
pub mod vxlan;

pub use error::Error;
pub use link::{Link, links};
pub use mtu::{Encapsulation, MtuSettings, PodMtu};
pub use snapshot::{BlockOwner, Borrowed, Node, Pool, Snapshot, Vtep};
