//! The RIB against a model: seeded random announcements, withdrawals, session losses
//! and a slow iBGP monitor peer (a two-slot outbound channel, drained at random), with
//! the FIB and the monitor's view checked against a straightforward recomputation
//! of the best path of every prefix.

#![allow(clippy::unwrap_used)]

mod rib_support;

use std::collections::{BTreeMap, HashMap};

use bgpd::tasks::{FibChange, RibInput};
use ipnet::IpNet;
use rib_support::*;

/// xorshift64*: a small deterministic generator (no dependency, reproducible).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const PEERS: [(&str, u32); 3] = [
    ("10.0.0.2", 65001),
    ("10.0.0.3", 65002),
    ("10.0.0.4", 65003),
];

/// What a source peer currently announces: prefix -> AS path length.
type Announced = BTreeMap<String, u32>;

/// The expected best: shortest AS path, then the lowest router id (the addresses
/// here); returns (next hop, AS path).
fn expected(announced: &[Option<Announced>; 3]) -> BTreeMap<String, (String, Vec<u32>)> {
    let mut best: BTreeMap<String, (u32, usize)> = BTreeMap::new();
    for (index, table) in announced.iter().enumerate() {
        for (prefix, &len) in table.iter().flatten() {
            let candidate = (len, index);
            best.entry(prefix.clone())
                .and_modify(|b| *b = (*b).min(candidate))
                .or_insert(candidate);
        }
    }
    best.into_iter()
        .map(|(prefix, (len, index))| {
            let (address, asn) = PEERS[index];
            (prefix, (address.to_owned(), path(asn, len)))
        })
        .collect()
}

fn path(asn: u32, len: u32) -> Vec<u32> {
    std::iter::once(asn)
        .chain((1..len).map(|i| 64600 + i))
        .collect()
}

#[test]
fn random_churn_matches_the_model() {
    for seed in [1u64, 7, 42, 1234, 99_999] {
        run(seed);
    }
}

fn run(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut h = Harness::new(config(""));
    let monitor = h.up(Session::v4("10.0.0.9", ASN).capacity(2));
    let mut ids = [0u32; 3];
    let mut announced: [Option<Announced>; 3] = Default::default();
    for (index, (address, asn)) in PEERS.iter().enumerate() {
        ids[index] = h.up(Session::v4(address, *asn));
        announced[index] = Some(Announced::new());
    }
    let prefixes = prefixes(40, 24);
    let mut fib: HashMap<IpNet, Vec<std::net::IpAddr>> = HashMap::new();
    let mut seen: HashMap<IpNet, (String, Vec<u32>)> = HashMap::new();

    for step in 0..3000 {
        let index = rng.below(3) as usize;
        let roll = rng.below(100);
        match (&mut announced[index], roll) {
            (None, _) => {
                let (address, asn) = PEERS[index];
                h.up_as(ids[index], Session::v4(address, asn));
                announced[index] = Some(Announced::new());
            }
            (Some(_), 0..2) => {
                h.down(ids[index], None);
                announced[index] = None;
            }
            (Some(table), 2..60) => {
                let count = 1 + rng.below(5) as usize;
                let len = 1 + rng.below(3) as u32;
                let chosen: Vec<&str> = (0..count)
                    .map(|_| prefixes[rng.below(prefixes.len() as u64) as usize].as_str())
                    .collect();
                for prefix in &chosen {
                    table.insert((*prefix).to_owned(), len);
                }
                let (address, asn) = PEERS[index];
                h.update(
                    ids[index],
                    announce(&chosen, attrs(&path(asn, len), address)),
                );
            }
            (Some(table), _) => {
                let chosen: Vec<&str> = (0..1 + rng.below(4))
                    .map(|_| prefixes[rng.below(prefixes.len() as u64) as usize].as_str())
                    .collect();
                for prefix in &chosen {
                    table.remove(*prefix);
                }
                h.update(ids[index], withdraw(&chosen));
            }
        }
        // The FIB follows at once.
        for change in h.take_fib() {
            match change {
                FibChange::Install { prefix, next_hops } => {
                    fib.insert(prefix, next_hops);
                }
                FibChange::Remove { prefix } => {
                    assert!(
                        fib.remove(&prefix).is_some(),
                        "seed {seed} step {step}: remove of {prefix} not installed"
                    );
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let want = expected(&announced);
        let have: BTreeMap<String, (String, Vec<u32>)> = fib
            .iter()
            .map(|(prefix, hops)| {
                assert_eq!(hops.len(), 1);
                (prefix.to_string(), (hops[0].to_string(), Vec::new()))
            })
            .collect();
        let want_hops: BTreeMap<String, (String, Vec<u32>)> = want
            .iter()
            .map(|(p, (hop, _))| (p.clone(), (hop.clone(), Vec::new())))
            .collect();
        assert_eq!(have, want_hops, "seed {seed} step {step}: FIB");

        // The monitor drains now and then (and says so), so changes pile up pending.
        if rng.below(4) == 0 {
            apply(&mut h, monitor, &mut seen);
            h.input(RibInput::Drained { peer: monitor });
        }
    }
    // Drained to the end, the monitor has exactly the Loc-RIB's best routes.
    loop {
        let before = seen.clone();
        let got = apply(&mut h, monitor, &mut seen);
        h.input(RibInput::Drained { peer: monitor });
        if !got && before == seen {
            break;
        }
    }
    let want = expected(&announced);
    let have: BTreeMap<String, (String, Vec<u32>)> =
        seen.into_iter().map(|(p, v)| (p.to_string(), v)).collect();
    assert_eq!(have, want, "seed {seed}: the monitor's view");
    assert_eq!(h.rib.counters(monitor).advertised as usize, want.len());
}

/// Applies what the monitor received to its view, message by message in order;
/// true when something arrived.
fn apply(h: &mut Harness, monitor: u32, seen: &mut HashMap<IpNet, (String, Vec<u32>)>) -> bool {
    let received = h.received(monitor);
    for update in &received.updates {
        let one = Received {
            updates: vec![update.clone()],
            ..Received::default()
        };
        for prefix in one.withdrawn() {
            seen.remove(&prefix);
        }
        for (prefix, attrs, next_hop) in one.announced() {
            let path = attrs
                .as_path
                .map(|p| p.segments().flat_map(|s| s.asns.to_vec()).collect())
                .unwrap_or_default();
            seen.insert(prefix, (next_hop.unwrap().to_string(), path));
        }
    }
    !received.updates.is_empty()
}
