//! The VXLAN overlay (issue 15, part 2): the devices `vxlan.wren` (IPv4 pools, over
//! the IPv4 underlay) and `vxlan-v6.wren` (IPv6 pools, over the IPv6 underlay), a
//! permanent neighbour entry (tunnel address -> VTEP MAC) and a permanent FDB entry
//! (`self`, VTEP MAC -> underlay address) per remote node, and the routes of the
//! remote blocks (`BLOCK via TUNNEL_IP dev vxlan.wren onlink`, or with
//! `cross_subnet` for a node on this node's underlay subnet
//! `BLOCK via NODE_IP dev PARENT`), and of the addresses other nodes borrowed
//! (the same, as a /32 or /128 to the node using it).
//!
//! - [`desired`] (pure): what a [`crate::Snapshot`] asks for on this node, from the
//!   datastore alone (block owners, node addresses and tunnel endpoints): no BGP.
//! - [`kernel`]: the device, its address, its neighbour and FDB entries made equal to
//!   that over rtnetlink; nothing is sent for what already is as wanted. The routes
//!   are not programmed here: bgpd's fib task hands them to route-sync (Wren's
//!   protocol number, adopted on restart like the BGP routes).
//!
//! A remote block gets a route here when its pool's `vxlan_mode` is `always`, or
//! `cross_subnet` (through the tunnel when its owner is on another subnet); blocks
//! of `never` pools are left to BGP.

pub mod desired;
pub mod kernel;

use std::net::IpAddr;

use ipnet::IpNet;

pub use desired::desired;

/// The IPv4 device.
pub const DEVICE_IPV4: &str = "vxlan.wren";
/// The IPv6 device.
pub const DEVICE_IPV6: &str = "vxlan-v6.wren";

/// What the overlay asks of this node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overlay {
    /// One per family with a VXLAN pool (and this node's tunnel endpoint).
    pub devices: Vec<Device>,
    /// The remote blocks' routes, sorted by block.
    pub routes: Vec<OverlayRoute>,
}

/// What bgpd's fib task needs of the overlay: the remote blocks' routes, and every
/// pool (a BGP route inside a pool is kept in mind, for when the overlay lets go of
/// its prefix).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OverlayRoutes {
    pub pools: Vec<IpNet>,
    pub routes: Vec<OverlayRoute>,
}

/// One VXLAN device and what goes on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// [`DEVICE_IPV4`] or [`DEVICE_IPV6`].
    pub name: &'static str,
    pub vni: u32,
    pub port: u16,
    /// This node's underlay address (the source of the encapsulated packets).
    pub local: IpAddr,
    /// The interface holding `local`.
    pub parent: Parent,
    /// This node's VTEP MAC.
    pub mac: [u8; 6],
    /// The parent's MTU less the encapsulation's overhead.
    pub mtu: u32,
    /// This node's tunnel address (a /32 or /128 on the device).
    pub tunnel_address: IpAddr,
    /// Every remote node with a tunnel endpoint of the family, sorted by name.
    pub peers: Vec<Peer>,
}

/// The underlay interface of a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parent {
    pub index: u32,
    pub name: String,
    /// The subnet of `local` on it (the interface's real prefix).
    pub subnet: IpNet,
}

/// A remote node's tunnel endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub node: String,
    pub tunnel_address: IpAddr,
    pub mac: [u8; 6],
    /// Where its encapsulated packets go.
    pub underlay: IpAddr,
}

/// The route of one remote block, or of one address another node borrowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverlayRoute {
    /// The block, or the borrowed address as a /32 or /128.
    pub block: IpNet,
    /// The node that owns the block (the datastore's affinity), or that uses the
    /// borrowed address.
    pub owner: String,
    /// The owner's addresses in the registry (to compare with a BGP next hop).
    pub owner_addresses: Vec<IpAddr>,
    pub via: Via,
}

/// How a remote block is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// Encapsulated: `via TUNNEL_ADDRESS dev DEVICE onlink`.
    Tunnel {
        tunnel_address: IpAddr,
        device: &'static str,
    },
    /// On this node's underlay subnet (`cross_subnet`): `via ADDRESS dev PARENT`.
    Direct { address: IpAddr, device: String },
}

/// An address of an interface, as the underlay is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceAddress {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    pub address: IpAddr,
    pub prefix_len: u8,
}

/// The device name of a family.
pub fn device_name(ipv4: bool) -> &'static str {
    if ipv4 { DEVICE_IPV4 } else { DEVICE_IPV6 }
}
