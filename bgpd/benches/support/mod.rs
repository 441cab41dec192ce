//! What the RIB benches share: a RIB with eBGP/iBGP sessions up, UPDATEs of 800
//! IPv4 prefixes (/26 to /32) to feed it, feeding them as the rib task does, and
//! timing one turn of the rib task (its thread's CPU time, the longest and p99).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_proto::{AsPath, Ipv4Prefix, Origin, PathAttributes, SessionContext, Update};
use bgpd::config::Config;
use bgpd::rib::{MAX_BATCH, Rib};
use bgpd::tasks::{Outbound, PeerInfo, PeerUp, RibInput};
use ipnet::Ipv4Net;

/// Prefixes per UPDATE: a 4096-octet UPDATE holds about 800 /26 prefixes.
pub const PER_UPDATE: u32 = 800;
pub const ASN: u32 = 64512;

#[derive(Clone, Copy, Debug)]
pub enum Scenario {
    OneMillionOnePeer,
    TwoPeers,
    ToIbgp,
}

impl Scenario {
    pub const ALL: [Scenario; 3] = [
        Scenario::OneMillionOnePeer,
        Scenario::TwoPeers,
        Scenario::ToIbgp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::OneMillionOnePeer => "1M_one_peer",
            Scenario::TwoPeers => "100k_two_peers",
            Scenario::ToIbgp => "100k_to_ibgp",
        }
    }

    pub fn prefixes(self) -> u32 {
        match self {
            Scenario::OneMillionOnePeer => 1_000_000,
            Scenario::TwoPeers | Scenario::ToIbgp => 100_000,
        }
    }

    /// Routes (paths) the RIB holds when loaded.
    pub fn routes(self) -> u64 {
        match self {
            Scenario::TwoPeers => 2 * u64::from(self.prefixes()),
            _ => u64::from(self.prefixes()),
        }
    }
}

/// The loaded state: the RIB and the receivers that must stay alive.
pub struct Loaded {
    pub rib: Rib,
    pub outbound: Vec<bgpd::queue::Receiver<Box<Outbound>>>,
}

/// A RIB with the scenario's sessions up, and the UPDATEs to feed it (generated as
/// they are taken).
pub fn setup(scenario: Scenario) -> (Loaded, Box<dyn Iterator<Item = RibInput>>) {
    let config: Config = toml::from_str(&format!(
        "[bgp]\nasn = {ASN}\nrouter_id = \"10.255.0.1\"\nlisten = []\n"
    ))
    .unwrap();
    let now = Instant::now();
    let mut rib = Rib::new(Arc::new(config), true, now);
    let mut receivers = Vec::new();
    let mut up = |rib: &mut Rib, id: u32, address: [u8; 4], remote_asn: u32| {
        // Big enough for the whole export of `ToIbgp` (a few hundred batches).
        receivers.push(peer_up(rib, id, address, remote_asn, 4096));
    };
    up(&mut rib, 1, [10, 0, 0, 2], 65001);
    let first = updates(1, 65001, [10, 0, 0, 2], scenario.prefixes(), 1);
    let inputs: Box<dyn Iterator<Item = RibInput>> = match scenario {
        Scenario::OneMillionOnePeer => Box::new(first),
        Scenario::TwoPeers => {
            up(&mut rib, 2, [10, 0, 0, 3], 65002);
            // Interleaved, as two sessions would deliver them.
            let second = updates(2, 65002, [10, 0, 0, 3], scenario.prefixes(), 2);
            Box::new(first.zip(second).flat_map(|(a, b)| [a, b]))
        }
        Scenario::ToIbgp => {
            up(&mut rib, 3, [10, 0, 0, 4], ASN);
            Box::new(first)
        }
    };
    rib.flush();
    rib.take_fib();
    (
        Loaded {
            rib,
            outbound: receivers,
        },
        inputs,
    )
}

/// Brings up a session of `id` from `address` (AS `remote_asn`; iBGP when it is ours)
/// with an outbound channel of `capacity` batches; returns its receiving end.
pub fn peer_up(
    rib: &mut Rib,
    id: u32,
    address: [u8; 4],
    remote_asn: u32,
    capacity: usize,
) -> bgpd::queue::Receiver<Box<Outbound>> {
    let (sender, receiver) = bgpd::queue::channel(capacity);
    let info = PeerInfo {
        address: IpAddr::from(address),
        local_address: IpAddr::from([10, 0, 0, 1]),
        local_ipv4: Some(Ipv4Addr::new(10, 0, 0, 1)),
        local_ipv6: None,
        local_link_local: None,
        local_asn: ASN,
        remote_asn,
        remote_router_id: Ipv4Addr::from(address),
        context: SessionContext {
            ibgp: remote_asn == ASN,
            ..SessionContext::default()
        },
        graceful_restart: None,
    };
    rib.handle(
        RibInput::PeerUp(PeerUp {
            peer: id,
            info: Arc::new(info),
            outbound: sender,
        }),
        Instant::now(),
    );
    receiver
}

/// This thread's CPU time so far: what a turn costs the rib task, without the time
/// other processes of a busy machine took the core.
pub fn cpu_time() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// The longest and the 99th percentile of some durations, in milliseconds.
pub fn longest_and_p99(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort_unstable();
    let max = times.last().copied().unwrap_or_default();
    let p99 = times
        .get(times.len().saturating_mul(99) / 100)
        .copied()
        .unwrap_or_default();
    (max.as_secs_f64() * 1e3, p99.as_secs_f64() * 1e3)
}

/// UPDATEs from `peer` announcing `count` prefixes (/26 to /32, distinct), AS path
/// `asn` plus `extra` more ASes, with a hundred distinct attribute sets.
pub fn updates(
    peer: u32,
    asn: u32,
    next_hop: [u8; 4],
    count: u32,
    extra: u32,
) -> impl Iterator<Item = RibInput> {
    let prefix = |i: u32| {
        let len = 26 + (i % 7) as u8;
        Ipv4Prefix::new(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 6)), len).unwrap())
    };
    (0..count.div_ceil(PER_UPDATE)).map(move |n| {
        let mut path = vec![asn];
        path.extend((0..extra).map(|_| asn));
        path.push(65100 + n % 100);
        let attributes = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence(&path)),
            next_hop: Some(Ipv4Addr::from(next_hop)),
            med: Some(0),
            ..PathAttributes::default()
        };
        let first = n * PER_UPDATE;
        let last = (first + PER_UPDATE).min(count);
        RibInput::Update {
            peer,
            update: Box::new(Update {
                attributes,
                nlri: (first..last).map(prefix).collect(),
                ..Update::default()
            }),
            treat_as_withdraw: false,
        }
    })
}

/// Feeds `inputs` as the rib task does; returns the FIB changes made.
pub fn load(loaded: &mut Loaded, inputs: impl Iterator<Item = RibInput>) -> usize {
    let now = Instant::now();
    let mut fib = 0;
    let mut inputs = inputs.peekable();
    while inputs.peek().is_some() {
        for input in inputs.by_ref().take(MAX_BATCH) {
            loaded.rib.handle(input, now);
        }
        loaded.rib.flush();
        fib += loaded.rib.take_fib().len();
        for receiver in &mut loaded.outbound {
            while receiver.try_recv().is_ok() {}
        }
        for id in [1, 2, 3] {
            loaded.rib.handle(RibInput::Drained { peer: id }, now);
        }
        loaded.rib.flush();
    }
    fib
}
