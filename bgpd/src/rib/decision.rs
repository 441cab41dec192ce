//! The decision process: RFC 4271 section 9.1.2.2 with the RFC 4456 changes, and the
//! equal-cost set used for ECMP.
//!
//! Over the eligible paths of one prefix (those the import policy accepted), in order:
//! -. fresh paths over stale ones (kept for a restarting peer, RFC 4724): a stale path
//!    is only a stand-in until its peer is back, so any path still refreshed by a
//!    live session wins, as the restarting peer's own would once it is back;
//! 0. locally originated routes first (as FRR's weight or BIRD's preference do);
//! 1. highest LOCAL_PREF (absent: 100);
//! 2. shortest AS path (an AS_SET counts one, confederation segments zero);
//! 3. lowest ORIGIN (IGP < EGP < INCOMPLETE);
//! 4. lowest MULTI_EXIT_DISC among routes with the same neighbor AS (the first AS of
//!    the path; absent MED counts 0): a route is removed when another one from its
//!    neighbor AS has a lower MED;
//! 5. eBGP-learned over iBGP-learned;
//! 6. (IGP cost to the next hop: skipped, every next hop costs the same);
//! 7. lowest BGP identifier of the advertising router, or ORIGINATOR_ID when present;
//! 8. shortest CLUSTER_LIST;
//! 9. lowest neighbor address.
//!
//! ECMP: the paths that survive steps 0-5 are equal for forwarding; when the best is
//! eBGP-learned only those from the same neighbor AS (the session's remote AS) join
//! it, as FRR does without `bgp bestpath as-path multipath-relax`. They are ordered by
//! steps 7-9 and cut at `max_paths`; the best is always first.

use std::net::{IpAddr, Ipv4Addr};

/// What the decision process knows of one eligible path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Kept for a restarting peer (graceful restart).
    pub stale: bool,
    pub local: bool,
    pub local_pref: u32,
    pub as_path_len: u32,
    pub origin: u8,
    pub med: u32,
    pub neighbor_as: Option<u32>,
    pub ebgp: bool,
    /// The remote AS of the session the path came from.
    pub peer_asn: u32,
    /// ORIGINATOR_ID when present, else the advertising peer's BGP identifier.
    pub router_id: Ipv4Addr,
    pub cluster_len: u32,
    /// The neighbor's address (unspecified for local routes).
    pub address: IpAddr,
    /// The last tie breaker (the path's peer index), so the order is total.
    pub tie: u16,
}

impl Default for Candidate {
    fn default() -> Self {
        Candidate {
            stale: false,
            local: false,
            local_pref: 100,
            as_path_len: 0,
            origin: 0,
            med: 0,
            neighbor_as: None,
            ebgp: false,
            peer_asn: 0,
            router_id: Ipv4Addr::UNSPECIFIED,
            cluster_len: 0,
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            tie: 0,
        }
    }
}

/// Selects among `candidates`: `order` receives the indices of the selected paths,
/// best first, then the other ECMP paths (at most `max_paths` in all). Nothing is
/// selected only when there is no candidate.
pub fn select(candidates: &[Candidate], max_paths: usize, order: &mut Vec<usize>) {
    order.clear();
    order.extend(0..candidates.len());
    if order.len() <= 1 {
        return;
    }
    let c = |i: &usize| &candidates[*i];
    if order.iter().any(|i| !c(i).stale) {
        order.retain(|i| !c(i).stale);
    }
    if order.iter().any(|i| c(i).local) {
        order.retain(|i| c(i).local);
    }
    keep_best(order, candidates, |x| std::cmp::Reverse(x.local_pref));
    keep_best(order, candidates, |x| x.as_path_len);
    keep_best(order, candidates, |x| x.origin);
    // MED: only between routes from the same neighbor AS. A route stays when no
    // route of its neighbor AS has a lower MED; compacted in place.
    let mut kept = 0;
    for position in 0..order.len() {
        let i = order[position];
        let beaten = order
            .iter()
            .any(|&j| c(&j).neighbor_as == c(&i).neighbor_as && c(&j).med < c(&i).med);
        if !beaten {
            // Swaps only permute `order`, so every check sees all candidates of
            // this step; positions after `position` are not yet visited.
            order.swap(kept, position);
            kept += 1;
        }
    }
    order.truncate(kept);
    if order.iter().any(|i| c(i).ebgp) {
        order.retain(|i| c(i).ebgp);
    }
    order.sort_by_key(|&i| {
        let x = c(&i);
        (x.router_id, x.cluster_len, x.address, x.tie)
    });
    let best = candidates[order[0]];
    if best.ebgp {
        order.retain(|i| c(i).peer_asn == best.peer_asn);
    }
    order.truncate(max_paths.max(1));
}

/// Keeps the candidates with the lowest `key`.
fn keep_best<T: Ord>(
    order: &mut Vec<usize>,
    candidates: &[Candidate],
    key: impl Fn(&Candidate) -> T,
) {
    if let Some(best) = order.iter().map(|&i| key(&candidates[i])).min() {
        order.retain(|&i| key(&candidates[i]) == best);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Candidate {
        Candidate {
            ebgp: true,
            peer_asn: 65001,
            neighbor_as: Some(65001),
            as_path_len: 1,
            router_id: Ipv4Addr::new(10, 0, 0, 9),
            address: "10.0.0.9"
                .parse()
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ..Candidate::default()
        }
    }

    fn best(candidates: &[Candidate]) -> usize {
        let mut order = Vec::new();
        select(candidates, 1, &mut order);
        order[0]
    }

    /// (step, winner, loser): the winner differs from the loser in that step only and
    /// must win whichever comes first.
    fn table() -> Vec<(&'static str, Candidate, Candidate)> {
        let b = base();
        let addr = |s: &str| {
            s.parse::<IpAddr>()
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
        };
        vec![
            (
                "- fresh over stale",
                Candidate {
                    local_pref: 50,
                    as_path_len: 9,
                    origin: 2,
                    med: 99,
                    ebgp: false,
                    router_id: Ipv4Addr::new(10, 0, 0, 250),
                    cluster_len: 4,
                    address: addr("10.0.0.250"),
                    ..b
                },
                Candidate {
                    stale: true,
                    router_id: Ipv4Addr::new(1, 1, 1, 1),
                    ..b
                },
            ),
            (
                "0 local first",
                Candidate {
                    local: true,
                    ebgp: false,
                    local_pref: 50,
                    as_path_len: 9,
                    ..b
                },
                b,
            ),
            (
                "1 local pref",
                Candidate {
                    local_pref: 200,
                    as_path_len: 5,
                    ..b
                },
                b,
            ),
            (
                "2 as path",
                Candidate {
                    as_path_len: 0,
                    origin: 2,
                    ..b
                },
                b,
            ),
            (
                "3 origin",
                Candidate {
                    origin: 0,
                    med: 50,
                    ..b
                },
                Candidate { origin: 1, ..b },
            ),
            (
                "4 med, same neighbor AS",
                Candidate { med: 5, ..b },
                Candidate { med: 10, ..b },
            ),
            (
                "4 med ignored across neighbor ASes (router id decides)",
                Candidate {
                    med: 10,
                    neighbor_as: Some(65002),
                    router_id: Ipv4Addr::new(1, 1, 1, 1),
                    ..b
                },
                Candidate { med: 5, ..b },
            ),
            (
                "5 eBGP over iBGP",
                Candidate {
                    router_id: Ipv4Addr::new(10, 0, 0, 200),
                    ..b
                },
                Candidate { ebgp: false, ..b },
            ),
            (
                "7 router id",
                Candidate {
                    router_id: Ipv4Addr::new(1, 1, 1, 1),
                    cluster_len: 3,
                    ..b
                },
                b,
            ),
            (
                "8 cluster list",
                Candidate {
                    cluster_len: 0,
                    ..b
                },
                Candidate {
                    cluster_len: 1,
                    ..b
                },
            ),
            (
                "9 neighbor address",
                Candidate {
                    address: addr("10.0.0.1"),
                    ..b
                },
                b,
            ),
        ]
    }

    #[test]
    fn one_step_at_a_time() {
        for (step, winner, loser) in table() {
            assert_eq!(best(&[winner, loser]), 0, "{step}");
            assert_eq!(best(&[loser, winner]), 1, "{step} (reversed)");
        }
    }

    #[test]
    fn med_is_not_transitive_and_follows_the_rfc_elimination() {
        // A (AS1, MED 10), B (AS1, MED 5), C (AS2, MED 7): B removes A; then C and B
        // tie until the router id, where C wins.
        let b0 = base();
        let a = Candidate {
            med: 10,
            router_id: Ipv4Addr::new(1, 0, 0, 1),
            ..b0
        };
        let b = Candidate {
            med: 5,
            router_id: Ipv4Addr::new(1, 0, 0, 3),
            ..b0
        };
        let c = Candidate {
            med: 7,
            neighbor_as: Some(65002),
            router_id: Ipv4Addr::new(1, 0, 0, 2),
            ..b0
        };
        for perm in [[a, b, c], [c, b, a], [b, a, c]] {
            let winner = perm[best(&perm)];
            assert_eq!(winner, c);
        }
    }

    #[test]
    fn ecmp_sets() {
        let b = base();
        let id = |n: u8| Ipv4Addr::new(10, 0, 0, n);
        let p1 = Candidate {
            router_id: id(3),
            tie: 1,
            ..b
        };
        let p2 = Candidate {
            router_id: id(1),
            tie: 2,
            ..b
        };
        let p3 = Candidate {
            router_id: id(2),
            tie: 3,
            ..b
        };
        let mut order = Vec::new();

        // Equal eBGP paths from one neighbor AS: all of them, ordered by router id.
        select(&[p1, p2, p3], 8, &mut order);
        assert_eq!(order, vec![1, 2, 0]);
        // Cut at max_paths.
        select(&[p1, p2, p3], 2, &mut order);
        assert_eq!(order, vec![1, 2]);
        select(&[p1, p2, p3], 1, &mut order);
        assert_eq!(order, vec![1]);

        // Another neighbor AS does not join an eBGP best (no multipath relax).
        let other_as = Candidate {
            peer_asn: 65009,
            neighbor_as: Some(65009),
            ..p3
        };
        select(&[p1, p2, other_as], 8, &mut order);
        assert_eq!(order, vec![1, 0]);

        // iBGP paths join whatever AS they come from.
        let i1 = Candidate {
            ebgp: false,
            peer_asn: 64512,
            ..p1
        };
        let i2 = Candidate {
            ebgp: false,
            peer_asn: 64512,
            neighbor_as: Some(65009),
            ..p2
        };
        select(&[i1, i2], 8, &mut order);
        assert_eq!(order, vec![1, 0]);

        // A worse MED (same neighbor AS) or a longer path is not equal.
        let worse_med = Candidate { med: 1, ..p2 };
        select(&[p1, worse_med, p3], 8, &mut order);
        assert_eq!(order, vec![2, 0]);
        let longer = Candidate {
            as_path_len: 2,
            ..p2
        };
        select(&[p1, longer, p3], 8, &mut order);
        assert_eq!(order, vec![2, 0]);

        // An iBGP path never joins an eBGP best.
        let ibgp = Candidate { ebgp: false, ..p2 };
        select(&[p1, ibgp], 8, &mut order);
        assert_eq!(order, vec![0]);

        // Nothing to select from.
        select(&[], 8, &mut order);
        assert!(order.is_empty());
    }
}
