#![allow(clippy::unwrap_used)]
//! Decode and encode speed. Targets (issue 2): a 1-prefix UPDATE decodes in at most
//! 150 ns; a full 4096-octet UPDATE of IPv4 /26 NLRI in at most 5 ns per prefix.
//!
//! `cargo bench -p bgp-proto --bench codec` runs criterion, then prints a short table of
//! medians in ns per message and per prefix.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant;

use bgp_proto::*;
use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipnet::Ipv4Net;

/// ORIGIN, AS_PATH of two ASes, NEXT_HOP, MED, one community; `n` IPv4 /26 prefixes
/// packed into UPDATEs of at most 4096 octets. Returns the first message.
fn update(n: u32, ctx: &SessionContext) -> (Vec<u8>, usize) {
    let attributes = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence(&[65001, 65002])),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        med: Some(0),
        communities: vec![Community::new(65001, 100)],
        ..PathAttributes::default()
    };
    let prefixes = (0..n).map(|i| {
        Ipv4Prefix::new(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 6)), 26).unwrap())
    });
    let mut out = BytesMut::new();
    UpdatePacker::new(ctx)
        .announce_ipv4(&attributes, prefixes, &mut out)
        .unwrap();
    let length = frame_length(&out, ctx.max_message_len()).unwrap().unwrap();
    let message = out[..length].to_vec();
    let Message::Update(update) = decode_message(&message, ctx).unwrap().message else {
        unreachable!()
    };
    (message, update.nlri.len())
}

fn benches(c: &mut Criterion) {
    let ctx = SessionContext::default();
    let (single, _) = update(1, &ctx);
    let (full, prefixes) = update(10_000, &ctx);

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));
    group.bench_function("update_1_prefix", |b| {
        b.iter(|| decode_message(black_box(&single), &ctx))
    });
    group.throughput(Throughput::Elements(prefixes as u64));
    group.bench_function(format!("update_4096_octets_{prefixes}x26"), |b| {
        b.iter(|| decode_message(black_box(&full), &ctx))
    });
    group.finish();

    let mut group = c.benchmark_group("encode");
    let decoded = decode_message(&full, &ctx).unwrap().message;
    group.throughput(Throughput::Elements(prefixes as u64));
    group.bench_function(format!("update_4096_octets_{prefixes}x26"), |b| {
        let mut buf = BytesMut::with_capacity(4096);
        b.iter(|| {
            buf.clear();
            decoded.encode(&ctx, &mut buf).unwrap();
        })
    });
    let attributes = match &decoded {
        Message::Update(update) => update.attributes.clone(),
        _ => unreachable!(),
    };
    let many: Vec<Ipv4Prefix> = (0..100_000u32)
        .map(|i| Ipv4Prefix::new(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 6)), 26).unwrap()))
        .collect();
    group.throughput(Throughput::Elements(many.len() as u64));
    group.bench_function("pack_100k_x26", |b| {
        let mut out = BytesMut::with_capacity(600_000);
        b.iter(|| {
            out.clear();
            UpdatePacker::new(&ctx)
                .announce_ipv4(&attributes, many.iter().copied(), &mut out)
                .unwrap()
        })
    });
    group.finish();

    summary(&single, &full, prefixes, &ctx);
}

/// Median of repeated timed batches, in ns per call.
fn median_ns(mut f: impl FnMut()) -> f64 {
    let batch = 2000;
    let mut samples: Vec<f64> = (0..31)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(batch)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn summary(single: &[u8], full: &[u8], prefixes: usize, ctx: &SessionContext) {
    let one = median_ns(|| {
        black_box(decode_message(black_box(single), ctx)).ok();
    });
    let whole = median_ns(|| {
        black_box(decode_message(black_box(full), ctx)).ok();
    });
    println!();
    println!("summary (median of 31 batches of 2000):");
    println!(
        "  decode 1-prefix UPDATE ({} octets): {one:.1} ns (target <= 150 ns)",
        single.len()
    );
    println!(
        "  decode {}-octet UPDATE, {prefixes} x /26: {whole:.0} ns = {:.2} ns per prefix (target <= 5 ns)",
        full.len(),
        whole / prefixes as f64
    );
}

criterion_group!(codec, benches);
criterion_main!(codec);
