#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Route reflection through the RIB alone (issue 18): N iBGP route reflector clients
//! (a listen range with `route_reflector_client = true`), each announcing its node's
//! /26 with its own next hop, fed and flushed as the rib task does, until every
//! client's Adj-RIB-Out is sent: N × (N − 1) deliveries, each its own attribute set
//! (ORIGINATOR_ID and next hop differ per client), so no two clients' routes share
//! an UPDATE. This is the per-delivery CPU of `bench scale-reflector` without the
//! sessions, sockets and simulated clients.
//!
//! Scenarios: `clients_500` and `clients_2000` (criterion times a whole load:
//! sessions up, every client's UPDATE in, every UPDATE out), reported per delivery.
//!
//! `cargo bench -p bgpd --bench reflector`

mod support;

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_proto::{Ipv4Prefix, Origin, PathAttributes, Update};
use bgpd::config::Config;
use bgpd::queue;
use bgpd::rib::{MAX_BATCH, Rib};
use bgpd::tasks::{Outbound, RibInput};
use criterion::{BatchSize, Criterion, Throughput};
use ipnet::Ipv4Net;
use support::{ASN, peer_up};

/// The reflector with `clients` sessions up, their receivers, and each client's
/// UPDATE (not yet fed).
fn setup(clients: u32) -> (Rib, Vec<queue::Receiver<Box<Outbound>>>, Vec<RibInput>) {
    let config: Config = toml::from_str(&format!(
        "[bgp]\nasn = {ASN}\nrouter_id = \"10.255.0.1\"\nlisten = []\n\n\
         [[bgp.listen_range]]\nprefix = \"10.0.0.0/8\"\nremote_asn = {ASN}\n\
         route_reflector_client = true\n"
    ))
    .unwrap();
    let mut rib = Rib::new(Arc::new(config), false, Instant::now());
    let address = |i: u32| Ipv4Addr::from(0x0a10_0000 + i).octets();
    let receivers = (0..clients)
        .map(|i| peer_up(&mut rib, i + 1, address(i), ASN, 64))
        .collect();
    let updates = (0..clients)
        .map(|i| {
            let block = Ipv4Net::new(Ipv4Addr::from(0x0a80_0000 + (i << 6)), 26).unwrap();
            RibInput::Update {
                peer: i + 1,
                update: Box::new(Update {
                    attributes: PathAttributes {
                        origin: Some(Origin::Igp),
                        as_path: Some(bgp_proto::AsPath::new()),
                        next_hop: Some(Ipv4Addr::from(address(i))),
                        local_pref: Some(100),
                        ..PathAttributes::default()
                    },
                    nlri: vec![Ipv4Prefix::new(block)],
                    ..Update::default()
                }),
                treat_as_withdraw: false,
            }
        })
        .collect();
    rib.flush();
    (rib, receivers, updates)
}

/// Feeds the UPDATEs as the rib task does (`MAX_BATCH` inputs, then a flush), with
/// every client's session taking what it is sent at once; returns the UPDATE
/// messages sent (End-of-RIB included).
fn load(
    rib: &mut Rib,
    receivers: &mut [queue::Receiver<Box<Outbound>>],
    updates: Vec<RibInput>,
) -> u64 {
    let now = Instant::now();
    let mut updates = updates.into_iter().peekable();
    let mut sent = 0u64;
    loop {
        for input in updates.by_ref().take(MAX_BATCH) {
            rib.handle(input, now);
        }
        rib.flush();
        let mut drained = false;
        for (i, receiver) in receivers.iter_mut().enumerate() {
            while let Ok(outbound) = receiver.try_recv() {
                if let Outbound::Updates(bytes) = *outbound {
                    sent += messages(&bytes);
                }
                drained = true;
                rib.handle(RibInput::Drained { peer: i as u32 + 1 }, now);
            }
        }
        rib.flush();
        if updates.peek().is_none() && !drained && !rib.has_pending() {
            return sent;
        }
    }
}

/// The BGP messages in a batch (each header's length field, RFC 4271 4.1).
fn messages(batch: &[u8]) -> u64 {
    let mut count = 0;
    let mut rest = batch;
    while rest.len() >= 19 {
        let length = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
        rest = &rest[length.max(19).min(rest.len())..];
        count += 1;
    }
    count
}

fn main() {
    // What is timed delivers what it should: every client every other client's block
    // (each its own UPDATE), then End-of-RIB.
    let clients = 200u64;
    let (mut rib, mut receivers, updates) = setup(clients as u32);
    let sent = load(&mut rib, &mut receivers, updates);
    assert_eq!(sent, clients * (clients - 1) + clients, "UPDATEs sent");
    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .configure_from_args();
    let mut group = c.benchmark_group("reflector");
    for clients in [500u32, 2000] {
        group.throughput(Throughput::Elements(
            u64::from(clients) * u64::from(clients - 1),
        ));
        group.bench_function(format!("clients_{clients}"), |b| {
            b.iter_batched(
                || setup(clients),
                |(mut rib, mut receivers, updates)| {
                    black_box(load(&mut rib, &mut receivers, updates));
                    (rib, receivers)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
    c.final_summary();
}
