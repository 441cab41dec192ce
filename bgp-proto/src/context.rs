//! The negotiated session parameters that change how UPDATEs are read and written.
//!
//! Nothing in this crate guesses them: the session builds a [`SessionContext`] once
//! both OPENs are known (see [`SessionContext::negotiate`]) and passes it to every
//! decode and encode call, and to the framing codec.

use crate::capability::Capability;
use crate::family::{Afi, Family, FamilySet};
use crate::open::Open;

/// The largest message without the extended message capability (RFC 4271).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// The largest message with the extended message capability (RFC 8654).
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;

/// Negotiated parameters of one session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SessionContext {
    /// Both sides advertised 4-octet AS support (RFC 6793): AS_PATH and AGGREGATOR
    /// carry 4-octet AS numbers, and AS4_PATH / AS4_AGGREGATOR are discarded.
    pub four_octet_as: bool,
    /// The peer is in our AS (iBGP). From an eBGP peer LOCAL_PREF, ORIGINATOR_ID and
    /// CLUSTER_LIST are discarded.
    pub ibgp: bool,
    /// Both sides advertised the extended message capability (RFC 8654): UPDATE,
    /// NOTIFICATION and ROUTE-REFRESH may be up to 65535 octets.
    pub extended_message: bool,
    /// Families whose NLRI we receive with path identifiers (RFC 7911).
    pub add_path_receive: FamilySet,
    /// Families whose NLRI we send with path identifiers.
    pub add_path_send: FamilySet,
    /// NLRI families that may carry an IPv6 next hop (RFC 8950; in practice IPv4).
    pub extended_next_hop: FamilySet,
    /// IP families both sides advertised (informational: decoding does not drop other
    /// families, the session decides what to do with them).
    pub families: FamilySet,
    /// The AS every received AS_PATH must start with (an eBGP peer's, when the
    /// session enforces the first AS, as FRR's `enforce-first-as`): an UPDATE whose
    /// AS_PATH starts otherwise is treat-as-withdraw (3/11, RFC 4271 6.3). `None`: no
    /// check.
    pub first_as: Option<u32>,
}

impl Default for SessionContext {
    /// Modern defaults for tools and tests: 4-octet AS, eBGP, no add-path, no extended
    /// message, IPv4 unicast only. A session uses [`SessionContext::negotiate`].
    fn default() -> Self {
        SessionContext {
            four_octet_as: true,
            ibgp: false,
            extended_message: false,
            add_path_receive: FamilySet::EMPTY,
            add_path_send: FamilySet::EMPTY,
            extended_next_hop: FamilySet::EMPTY,
            families: [Family::IPV4_UNICAST].into_iter().collect(),
            first_as: None,
        }
    }
}

impl SessionContext {
    /// The context of a session where we sent `local` and received `remote`.
    pub fn negotiate(local: &Open, remote: &Open, ibgp: bool) -> SessionContext {
        let both = |code: u8| local.has_capability(code) && remote.has_capability(code);
        let remote_families = remote.families();
        let families = local
            .families()
            .into_iter()
            .filter(|f| remote_families.contains(f))
            .collect();
        let mut add_path_receive = FamilySet::EMPTY;
        let mut add_path_send = FamilySet::EMPTY;
        for ours in add_paths(local) {
            for theirs in add_paths(remote).filter(|theirs| theirs.family == ours.family) {
                if ours.can_receive() && theirs.can_send() {
                    add_path_receive.insert(ours.family);
                }
                if ours.can_send() && theirs.can_receive() {
                    add_path_send.insert(ours.family);
                }
            }
        }
        let remote_enh: Vec<_> = extended_next_hops(remote).collect();
        let extended_next_hop = extended_next_hops(local)
            .filter(|entry| entry.next_hop_afi == Afi::IPV6 && remote_enh.contains(entry))
            .map(|entry| entry.family)
            .collect();
        use crate::capability::capability_code as c;
        SessionContext {
            four_octet_as: both(c::FOUR_OCTET_AS),
            ibgp,
            extended_message: both(c::EXTENDED_MESSAGE),
            add_path_receive,
            add_path_send,
            extended_next_hop,
            families,
            first_as: None,
        }
    }

    /// The largest UPDATE (and NOTIFICATION, ROUTE-REFRESH) this session allows.
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            MAX_EXTENDED_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        }
    }
}

fn add_paths(open: &Open) -> impl Iterator<Item = crate::capability::AddPath> + '_ {
    open.capabilities
        .iter()
        .flat_map(|capability| match capability {
            Capability::AddPath { entries } => entries.as_slice(),
            _ => &[],
        })
        .copied()
}

fn extended_next_hops(
    open: &Open,
) -> impl Iterator<Item = crate::capability::ExtendedNextHop> + '_ {
    open.capabilities
        .iter()
        .flat_map(|capability| match capability {
            Capability::ExtendedNextHop { entries } => entries.as_slice(),
            _ => &[],
        })
        .copied()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::capability::{AddPath, ExtendedNextHop};

    fn open(capabilities: Vec<Capability>) -> Open {
        Open::new(65001, 90, Ipv4Addr::new(1, 1, 1, 1), capabilities)
    }

    #[test]
    fn negotiation_takes_both_sides() {
        let v4 = Capability::Multiprotocol {
            family: Family::IPV4_UNICAST,
        };
        let v6 = Capability::Multiprotocol {
            family: Family::IPV6_UNICAST,
        };
        let enh = Capability::ExtendedNextHop {
            entries: vec![ExtendedNextHop {
                family: Family::IPV4_UNICAST,
                next_hop_afi: Afi::IPV6,
            }],
        };
        let local = open(vec![
            v4.clone(),
            v6.clone(),
            Capability::FourOctetAs { asn: 65001 },
            Capability::ExtendedMessage,
            Capability::AddPath {
                entries: vec![AddPath {
                    family: Family::IPV4_UNICAST,
                    send_receive: AddPath::BOTH,
                }],
            },
            enh.clone(),
        ]);
        let remote = open(vec![
            v4,
            Capability::FourOctetAs { asn: 65002 },
            Capability::AddPath {
                entries: vec![AddPath {
                    family: Family::IPV4_UNICAST,
                    send_receive: AddPath::SEND,
                }],
            },
            enh,
        ]);
        let ctx = SessionContext::negotiate(&local, &remote, true);
        assert!(ctx.four_octet_as && ctx.ibgp && !ctx.extended_message);
        assert!(ctx.add_path_receive.contains(Family::IPV4_UNICAST));
        assert!(ctx.add_path_send.is_empty());
        assert!(ctx.extended_next_hop.contains(Family::IPV4_UNICAST));
        assert_eq!(
            ctx.families.iter().collect::<Vec<_>>(),
            vec![Family::IPV4_UNICAST]
        );
        assert_eq!(ctx.max_message_len(), MAX_MESSAGE_LEN);

        let bare = SessionContext::negotiate(&open(vec![]), &open(vec![]), false);
        assert!(!bare.four_octet_as);
        assert!(bare.families.contains(Family::IPV4_UNICAST));
    }
}
