//! Pod ADD and DEL latency and pods per second: `wren` against the reference `ptp`
//! plugin, both with `wren-ipam` on SQLite, in one run (a custom harness: criterion
//! reports no percentiles). The two plugins take turns pod by pod, so drift on a busy
//! machine hits both alike. Each pod is a network namespace made before the clock
//! starts; the plugin runs as a runtime runs it (`CNI_*` environment, configuration on
//! stdin) from a thread inside the node's namespace.
//!
//! `sudo cargo bench -p cni --bench pod_add_del` prints, per plugin, ADD and DEL p50 and
//! p99, ADD+DEL pairs per second, and wren's ratios to ptp. Without `--bench` (as
//! `cargo test --all-targets` runs it) it does a short smoke run. Needs root, the CNI
//! plugins (`ptp`) and `wren-ipam` built (`cargo build --workspace --bins`); skips
//! otherwise.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ipam::store::SqliteStore;
use ipam::{Ipam, Pool};
use lab::cni::{CniInvocation, plugin_command, wren_config, wren_ipam_config};

struct Plugin {
    name: &'static str,
    binary: PathBuf,
    config: String,
    add: Vec<Duration>,
    del: Vec<Duration>,
    pair: Vec<Duration>,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    if let Err(reason) = lab::check(lab::Prereq::Root).and_then(|()| lab::check(lab::Prereq::Cni)) {
        println!("pod_add_del: skipped ({reason})");
        return;
    }
    let pods = if full { 400 } else { 5 };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ipam.db", dir.path().display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ipam = Ipam::new(SqliteStore::open(&url).await.unwrap());
        ipam.add_pool(Pool::new("10.244.0.0/16".parse().unwrap()))
            .await
            .unwrap();
    });
    let mtu_file = dir.path().join("mtu");
    std::fs::write(&mtu_file, "1500\n").unwrap();
    let ipam_binary = lab::fixture::wren_binary("wren-ipam");
    let path = vec![ipam_binary.parent().unwrap().to_owned(), lab::cni_dir()];
    let none = Some(std::path::Path::new(""));
    let mut plugins = [
        Plugin {
            name: "ptp",
            binary: lab::cni_dir().join("ptp"),
            config: wren_ipam_config(&url, "bench", none),
            add: Vec::new(),
            del: Vec::new(),
            pair: Vec::new(),
        },
        Plugin {
            name: "wren",
            binary: lab::fixture::wren_binary("wren"),
            config: wren_config(&url, "bench", none, &mtu_file),
            add: Vec::new(),
            del: Vec::new(),
            pair: Vec::new(),
        },
    ];
    let node = lab::Netns::new("bench-node").unwrap();
    node.lo_up().unwrap();
    // One namespace per pod and plugin, made before the clock starts.
    let namespaces: Vec<[lab::Netns; 2]> = (0..pods + 2)
        .map(|_| {
            [
                lab::Netns::new("bench-pod").unwrap(),
                lab::Netns::new("bench-pod").unwrap(),
            ]
        })
        .collect();
    let wall = node
        .enter(|| {
            let mut wall = [Duration::ZERO; 2];
            for (round, pair) in namespaces.iter().enumerate() {
                for (index, plugin) in plugins.iter_mut().enumerate() {
                    let pod = &pair[index];
                    let run = |verb: &str| {
                        let invocation = CniInvocation::new(verb, pod.name(), pod.path())
                            .pod("bench", pod.name())
                            .path(path.clone());
                        let start = Instant::now();
                        let output = invocation
                            .run(plugin_command(&plugin.binary), plugin.config.as_bytes())
                            .unwrap();
                        assert!(output.success, "{} {verb}: {}", plugin.name, output.text());
                        start.elapsed()
                    };
                    let start = Instant::now();
                    let add = run("ADD");
                    let del = run("DEL");
                    // The first two rounds warm up (the node's block, page cache).
                    if round >= 2 {
                        wall[index] += start.elapsed();
                        plugin.add.push(add);
                        plugin.del.push(del);
                        plugin.pair.push(add + del);
                    }
                }
            }
            wall
        })
        .unwrap();
    for (plugin, wall) in plugins.iter_mut().zip(wall) {
        println!(
            "{:<5} {} pods: ADD p50 {:>7.2} ms p99 {:>7.2} ms | DEL p50 {:>7.2} ms p99 {:>7.2} ms | {:>6.1} ADD+DEL pods/s",
            plugin.name,
            plugin.pair.len(),
            ms(percentile(&mut plugin.add, 0.50)),
            ms(percentile(&mut plugin.add, 0.99)),
            ms(percentile(&mut plugin.del, 0.50)),
            ms(percentile(&mut plugin.del, 0.99)),
            plugin.pair.len() as f64 / wall.as_secs_f64(),
        );
    }
    let [ptp, wren] = &mut plugins;
    println!(
        "wren/ptp: ADD p50 {:.2}, ADD p99 {:.2}, DEL p50 {:.2}, DEL p99 {:.2}, pods/s {:.2}",
        ratio(
            percentile(&mut wren.add, 0.50),
            percentile(&mut ptp.add, 0.50)
        ),
        ratio(
            percentile(&mut wren.add, 0.99),
            percentile(&mut ptp.add, 0.99)
        ),
        ratio(
            percentile(&mut wren.del, 0.50),
            percentile(&mut ptp.del, 0.50)
        ),
        ratio(
            percentile(&mut wren.del, 0.99),
            percentile(&mut ptp.del, 0.99)
        ),
        wall[0].as_secs_f64() / wall[1].as_secs_f64(),
    );
}

fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1));
    samples.get(index).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(f64::MIN_POSITIVE)
}
