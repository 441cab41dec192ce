//! Memory and speed of route-sync, as root in fresh network namespaces.
//!
//! - `memory`: for each size, IPv4 /26 and IPv6 /64 routes, each case in a
//!   fresh process (this binary again, with ROUTE_SYNC_BENCH_MEMORY=family:N):
//!   resident set size (VmRSS) before start, after N installs and after
//!   their removal, and the peak (VmHWM), divided by N. Changes are
//!   generated as they are fed by another task, 4096 per `apply` (as
//!   bgpd's fib task hands them over), so the figures are route-sync's own
//!   plus what waits in its command channel. Also printed: routes/s and CPU
//!   time per route (user and system of the process: the kernel's work on
//!   our requests counts, other processes' load does not).
//! - `speed`: installs then deletes N IPv4 /26 routes through route-sync and
//!   through `ip -batch` (one request per message, each acked), several runs
//!   each, and prints routes/s (median, min, max) and the time ratio of
//!   route-sync to `ip -batch`.
//!
//! Run as root:
//! `CARGO_TARGET_DIR=... cargo bench -p route-sync --bench install`
//! Environment: ROUTE_SYNC_BENCH_SIZES (default "100000,1000000"),
//! ROUTE_SYNC_BENCH_RUNS (default 5), ROUTE_SYNC_BENCH_PARTS (default
//! "memory,speed").

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use route_sync::{Change, Config, Route};

/// Changes per `apply` in the memory runs (bgpd's MAX_FIB_BATCH).
const CHUNK: usize = 4096;

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("install bench: skipped, needs root for network namespaces");
        return;
    }
    if let Ok(case) = std::env::var("ROUTE_SYNC_BENCH_MEMORY") {
        memory_case(&case);
        return;
    }
    let parts = std::env::var("ROUTE_SYNC_BENCH_PARTS").unwrap_or_else(|_| "memory,speed".into());
    let sizes: Vec<usize> = std::env::var("ROUTE_SYNC_BENCH_SIZES")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let runs: usize = std::env::var("ROUTE_SYNC_BENCH_RUNS")
        .ok()
        .map(|s| s.parse().unwrap())
        .unwrap_or(5);
    if parts.contains("memory") {
        println!(
            "route-sync memory, each case in a fresh process (growth over the baseline before start):"
        );
        for &size in &sizes {
            for family in ["ipv4", "ipv6"] {
                let status = Command::new(std::env::current_exe().unwrap())
                    .env("ROUTE_SYNC_BENCH_MEMORY", format!("{family}:{size}"))
                    .status()
                    .unwrap();
                assert!(status.success(), "memory case {family}:{size} failed");
            }
        }
    }
    if !parts.contains("speed") {
        return;
    }
    for size in sizes {
        let prefixes = prefixes(size);
        let directory =
            std::env::temp_dir().join(format!("route-sync-bench-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let add_file = directory.join("add.txt");
        let delete_file = directory.join("del.txt");
        write_batch(&add_file, &prefixes, |p| {
            format!("route add {p} via 10.0.0.2 dev d0 proto 196 metric 20")
        });
        write_batch(&delete_file, &prefixes, |p| {
            format!("route del {p} proto 196 metric 20")
        });
        let mut ours = (Vec::new(), Vec::new());
        let mut theirs = (Vec::new(), Vec::new());
        for run in 0..runs {
            let prefixes = prefixes.clone();
            let (install, delete) = in_netns(move || route_sync_run(prefixes));
            ours.0.push(install);
            ours.1.push(delete);
            let (add, del) = (add_file.clone(), delete_file.clone());
            let (install, delete) = in_netns(move || ip_batch_run(&add, &del, size));
            theirs.0.push(install);
            theirs.1.push(delete);
            eprintln!(
                "{size} routes, run {}: route-sync {:.2}/{:.2} s, ip -batch {:.2}/{:.2} s (install/delete)",
                run + 1,
                ours.0[run].as_secs_f64(),
                ours.1[run].as_secs_f64(),
                theirs.0[run].as_secs_f64(),
                theirs.1[run].as_secs_f64()
            );
        }
        std::fs::remove_dir_all(&directory).unwrap();
        report(size, "install", &mut ours.0, &mut theirs.0);
        report(size, "delete", &mut ours.1, &mut theirs.1);
    }
}

/// VmRSS and VmHWM of this process, in octets.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap()
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time of this process (user and system, all threads).
fn cpu_time() -> Duration {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which ends with the last ')'):
    // state is field 3, utime 14 and stime 15, in ticks of 1/100 s.
    let fields: Vec<&str> = text[text.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// The i-th prefix of a family: IPv4 /26 from 32.0.0.0, IPv6 /64 from 2001:db8:100::.
fn nth_prefix(ipv6: bool, i: usize) -> IpNet {
    if ipv6 {
        let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0));
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(base + ((i as u128) << 64)), 64).unwrap())
    } else {
        IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x2000_0000 + i as u32 * 64), 26).unwrap())
    }
}

/// In a child process: one family and size, resident memory per route.
fn memory_case(case: &str) {
    let (family, size) = case.split_once(':').unwrap();
    let ipv6 = family == "ipv6";
    let size: usize = size.parse().unwrap();
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    for args in [
        &["link", "add", "d0", "type", "veth", "peer", "name", "d0p"][..],
        &["addr", "add", "10.0.0.1/24", "dev", "d0"],
        &["-6", "addr", "add", "2001:db8::1/64", "dev", "d0", "nodad"],
        &["link", "set", "d0p", "up"],
        &["link", "set", "d0", "up"],
    ] {
        assert!(Command::new("ip").args(args).status().unwrap().success());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let gateway: IpAddr = if ipv6 {
            "2001:db8::2".parse().unwrap()
        } else {
            "10.0.0.2".parse().unwrap()
        };
        let (before, _) = memory();
        let fib = route_sync::start(Config::default()).await.unwrap();
        let start = Instant::now();
        let cpu = cpu_time();
        feed(&fib, size, move |i| {
            Change::Install(Route::via(nth_prefix(ipv6, i), gateway))
        })
        .await;
        fib.sync().await.unwrap();
        let install = start.elapsed();
        let install_cpu = cpu_time() - cpu;
        let (installed, peak) = memory();
        let start = Instant::now();
        let cpu = cpu_time();
        feed(&fib, size, move |i| Change::Remove(nth_prefix(ipv6, i))).await;
        fib.sync().await.unwrap();
        let delete = start.elapsed();
        let delete_cpu = cpu_time() - cpu;
        let (removed, _) = memory();
        let snapshot = fib.snapshot().await.unwrap();
        assert!(snapshot.installed.is_empty() && snapshot.failed.is_empty());
        assert_eq!(snapshot.counters.added, size as u64);
        assert_eq!(snapshot.counters.deleted, size as u64);
        fib.shutdown(false).await.unwrap();
        let per = |octets: u64| octets.saturating_sub(before) as f64 / size as f64;
        println!(
            "memory  {family} {size:>8} routes: resident {:>6.1} B/route, peak {:>6.1} B/route, \
             after removal {:>6.1} B/route ({:.1} MiB baseline); install {:>7.0} routes/s ({:.2} us CPU/route), \
             delete {:>7.0} routes/s ({:.2} us CPU/route)",
            per(installed),
            per(peak),
            per(removed),
            before as f64 / 1048576.0,
            size as f64 / install.as_secs_f64(),
            install_cpu.as_secs_f64() * 1e6 / size as f64,
            size as f64 / delete.as_secs_f64(),
            delete_cpu.as_secs_f64() * 1e6 / size as f64,
        );
    });
}

/// Hands `size` changes to route-sync from another task, CHUNK per
/// `apply`, as fast as it takes them (as bgpd's fib task does).
async fn feed(
    fib: &route_sync::FibHandle,
    size: usize,
    change: impl Fn(usize) -> Change + Send + 'static,
) {
    let fib = fib.clone();
    tokio::spawn(async move {
        for first in (0..size).step_by(CHUNK) {
            let changes = (first..size.min(first + CHUNK)).map(&change).collect();
            fib.apply(changes).await.unwrap();
        }
    })
    .await
    .unwrap();
}

/// N distinct /26 prefixes from 32.0.0.0 on.
fn prefixes(size: usize) -> Vec<IpNet> {
    (0..size as u32)
        .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x2000_0000 + i * 64), 26).unwrap()))
        .collect()
}

fn write_batch(path: &std::path::Path, prefixes: &[IpNet], line: impl Fn(&IpNet) -> String) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for prefix in prefixes {
        writeln!(file, "{}", line(prefix)).unwrap();
    }
}

/// Runs `body` on a thread in a fresh network namespace with uplink d0.
fn in_netns<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        for args in [
            &["link", "add", "d0", "type", "veth", "peer", "name", "d0p"][..],
            &["addr", "add", "10.0.0.1/24", "dev", "d0"],
            &["link", "set", "d0p", "up"],
            &["link", "set", "d0", "up"],
        ] {
            assert!(Command::new("ip").args(args).status().unwrap().success());
        }
        body()
    })
    .join()
    .unwrap()
}

fn route_sync_run(prefixes: Vec<IpNet>) -> (Duration, Duration) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let gateway: IpAddr = "10.0.0.2".parse().unwrap();
        let installs: Vec<Vec<Change>> = prefixes
            .chunks(10_000)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|p| Change::Install(Route::via(*p, gateway)))
                    .collect()
            })
            .collect();
        let removes: Vec<Vec<Change>> = prefixes
            .chunks(10_000)
            .map(|chunk| chunk.iter().map(|p| Change::Remove(*p)).collect())
            .collect();
        let fib = route_sync::start(Config::default()).await.unwrap();
        let start = Instant::now();
        for changes in installs {
            fib.apply(changes).await.unwrap();
        }
        fib.sync().await.unwrap();
        let install = start.elapsed();
        let snapshot = fib.snapshot().await.unwrap();
        assert_eq!(snapshot.installed.len(), prefixes.len());
        assert!(snapshot.failed.is_empty());
        let start = Instant::now();
        for changes in removes {
            fib.apply(changes).await.unwrap();
        }
        fib.sync().await.unwrap();
        let delete = start.elapsed();
        assert_eq!(
            fib.snapshot().await.unwrap().counters.deleted,
            prefixes.len() as u64
        );
        fib.shutdown(false).await.unwrap();
        (install, delete)
    })
}

fn ip_batch_run(
    add: &std::path::Path,
    delete: &std::path::Path,
    size: usize,
) -> (Duration, Duration) {
    let run = |file: &std::path::Path| {
        let start = Instant::now();
        let status = Command::new("ip").arg("-batch").arg(file).status().unwrap();
        assert!(status.success());
        start.elapsed()
    };
    let install = run(add);
    let count = Command::new("ip")
        .args(["-4", "route", "show", "proto", "196"])
        .output()
        .unwrap()
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert_eq!(count, size);
    (install, run(delete))
}

fn report(size: usize, what: &str, ours: &mut [Duration], theirs: &mut [Duration]) {
    ours.sort();
    theirs.sort();
    let rate = |d: Duration| size as f64 / d.as_secs_f64();
    let median = |v: &[Duration]| v[v.len() / 2];
    println!(
        "{what:7} {size:>8} routes: route-sync median {:>8.0} routes/s (min {:>8.0}, max {:>8.0}); \
         ip -batch median {:>8.0} routes/s (min {:>8.0}, max {:>8.0}); time ratio route-sync/ip-batch {:.2}",
        rate(median(ours)),
        rate(ours[ours.len() - 1]),
        rate(ours[0]),
        rate(median(theirs)),
        rate(theirs[theirs.len() - 1]),
        rate(theirs[0]),
        median(ours).as_secs_f64() / median(theirs).as_secs_f64()
    );
}
