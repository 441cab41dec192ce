//! `nat_outgoing` (issue 15, part 3): Wren's own nftables table, `inet wren`.
//!
//! ```text
//! table inet wren {
//!   set pools_ipv4        { type ipv4_addr; flags interval; }   every pool
//!   set nat_outgoing_ipv4 { type ipv4_addr; flags interval; }   pools with nat_outgoing
//!   set nodes_ipv4        { type ipv4_addr; }                   every node's addresses
//!   (and the same three for IPv6)
//!   chain postrouting {
//!     type nat hook postrouting priority srcnat; policy accept;
//!     ip saddr @nat_outgoing_ipv4 ip daddr != @pools_ipv4 ip daddr != @nodes_ipv4
//!        meta l4proto udp masquerade to :4790-65535 fully-random
//!     ip saddr @nat_outgoing_ipv4 ip daddr != @pools_ipv4 ip daddr != @nodes_ipv4
//!        masquerade fully-random
//!     (and the same two for IPv6)
//!   }
//! }
//! ```
//!
//! Pod-to-pod and pod-to-node traffic is never masqueraded; return traffic is
//! conntrack's. UDP is masqueraded to ports that leave out the VXLAN port (calico
//! #12244: a reply to a flow that was given source port 4789 would be taken for
//! VXLAN): per family, the `vxlan_port` of the family's VXLAN device (its first
//! encapsulating pool by CIDR), else [`NatSettings::avoided_port`] (4789). The rules never change with the pools: the sets do. Each rule carries a
//! comment naming its shape ([`desired`]), so a table left by an older bgpd is
//! recognised and rebuilt.
//!
//! - [`desired`] (pure): the table a [`crate::Snapshot`] asks for, `None` when no pool
//!   has `nat_outgoing` (then the table is removed).
//! - [`plan`] (pure): the commands that turn the table as listed into the desired
//!   one: nothing when they agree, element additions and deletions when only the
//!   sets differ, else the table deleted and made again, in one transaction.
//! - [`nft`]: listing the table and applying a plan with `nft -j` (one atomic
//!   transaction per sync).
//!
//! Only `inet wren` is ever listed or changed: iptables-nft's tables (kube-proxy)
//! and any other table stay as they are.

pub mod nft;
mod plan;

pub use plan::{Change, Desired, Listed, Plan, desired, plan};

/// The table's family and name.
pub const TABLE: &str = "wren";
/// The base chain.
pub const CHAIN: &str = "postrouting";
/// The IANA VXLAN port (RFC 7348), the one masquerade leaves out by default.
pub const VXLAN_PORT: u16 = 4789;
/// The lowest source port masquerade hands out (below: privileged ports).
pub const FIRST_PORT: u16 = 1024;

/// What the table depends on beside the snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatSettings {
    /// The UDP port masquerade must never pick as a source port when the family
    /// has no VXLAN pool (whose `vxlan_port` is avoided instead).
    pub avoided_port: u16,
}

impl Default for NatSettings {
    fn default() -> Self {
        NatSettings {
            avoided_port: VXLAN_PORT,
        }
    }
}

impl NatSettings {
    /// The UDP source ports masquerade may pick: the larger side of the avoided
    /// port within [`FIRST_PORT`]..=65535.
    pub fn udp_ports(&self) -> (u16, u16) {
        let port = self.avoided_port;
        if port < FIRST_PORT {
            return (FIRST_PORT, u16::MAX);
        }
        let below = port - FIRST_PORT;
        let above = u16::MAX - port;
        if above >= below {
            (port + 1, u16::MAX)
        } else {
            (FIRST_PORT, port - 1)
        }
    }
}
