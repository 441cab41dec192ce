//! What the harness reads from and does to the machine: CPU pinning (the daemon under test
//! on one CPU, the generator and the harness on another), CPU time and resident memory of
//! processes from /proc, `ip -batch`, and whether something listens on a port.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// The CPUs the harness uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpus {
    /// Where daemons under test (and the kernel floors) run.
    pub dut: usize,
    /// Where the generator, the route watchers and the harness run.
    pub generator: usize,
}

static CPUS: OnceLock<Cpus> = OnceLock::new();

/// Pins the calling thread, and so every thread and process started from it later, to the
/// generator CPU (see [`cpus`]). Call first thing in `main`.
pub fn pin_harness() -> Result<Cpus> {
    let cpus = cpus();
    pin_current_thread(cpus.generator)?;
    Ok(cpus)
}

/// The CPUs the harness uses: the first two CPUs the process was allowed when first asked
/// (one CPU for both on a single-CPU machine).
pub fn cpus() -> Cpus {
    *CPUS.get_or_init(|| {
        let allowed: Vec<usize> = sched_getaffinity(Pid::from_raw(0))
            .map(|set| {
                (0..CpuSet::count())
                    .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
                    .collect()
            })
            .unwrap_or_default();
        match allowed.as_slice() {
            [] => Cpus {
                dut: 0,
                generator: 0,
            },
            [only] => Cpus {
                dut: *only,
                generator: *only,
            },
            [first, second, ..] => Cpus {
                dut: *first,
                generator: *second,
            },
        }
    })
}

/// Pins the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).with_context(|| format!("CPU {cpu}"))?;
    sched_setaffinity(Pid::from_raw(0), &set).with_context(|| format!("pinning to CPU {cpu}"))
}

/// Allows the calling thread both CPUs of the harness.
pub fn unpin_current_thread() -> Result<()> {
    let cpus = cpus();
    let mut set = CpuSet::new();
    for cpu in [cpus.dut, cpus.generator] {
        set.set(cpu).with_context(|| format!("CPU {cpu}"))?;
    }
    sched_setaffinity(Pid::from_raw(0), &set).context("unpinning a thread")
}

/// Runs `body` on a thread allowed both CPUs of the harness, so that the processes it
/// starts (a control plane standing for the cluster's, not under test) inherit that
/// instead of the harness's pinning; returns what `body` returns.
pub fn on_every_cpu<T: Send>(body: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                unpin_current_thread()?;
                body()
            })
            .join()
            .map_err(|_| anyhow::anyhow!("a thread starting processes panicked"))?
    })
}

/// Pins every thread of process `pid` to `cpu` (threads it starts later inherit it).
pub fn pin_process(pid: u32, cpu: usize) -> Result<()> {
    process_on(pid, &[cpu])
}

/// Lets every thread of process `pid` run on both CPUs of the harness, as an unpinned
/// daemon would on a 2-CPU machine (threads it starts later inherit it).
pub fn unpin_process(pid: u32) -> Result<()> {
    let cpus = cpus();
    process_on(pid, &[cpus.dut, cpus.generator])
}

/// Sets the affinity of every thread of process `pid` to `cpus`.
fn process_on(pid: u32, cpus: &[usize]) -> Result<()> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu).with_context(|| format!("CPU {cpu}"))?;
    }
    let tasks = format!("/proc/{pid}/task");
    let entries = std::fs::read_dir(&tasks).with_context(|| format!("listing {tasks}"))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {tasks}"))?;
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok())
        else {
            continue;
        };
        // A thread may exit between the listing and the call: ESRCH is fine.
        match sched_setaffinity(Pid::from_raw(tid), &set) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("setting the CPUs of thread {tid} of {pid}"));
            }
        }
    }
    Ok(())
}

/// CPU time and memory of one process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// User plus system CPU seconds of all its threads so far.
    pub cpu_seconds: f64,
    /// Resident set now (VmRSS), bytes.
    pub rss: u64,
    /// Peak resident set since it started (VmHWM), bytes.
    pub peak_rss: u64,
}

impl std::ops::Add for Usage {
    type Output = Usage;
    fn add(self, other: Usage) -> Usage {
        Usage {
            cpu_seconds: self.cpu_seconds + other.cpu_seconds,
            rss: self.rss + other.rss,
            peak_rss: self.peak_rss + other.peak_rss,
        }
    }
}

/// Reads [`Usage`] of `pid` from /proc/PID/stat and /proc/PID/status.
pub fn usage(pid: u32) -> Result<Usage> {
    let stat_path = format!("/proc/{pid}/stat");
    let stat =
        std::fs::read_to_string(&stat_path).with_context(|| format!("reading {stat_path}"))?;
    let cpu_seconds =
        parse_cpu_seconds(&stat, clock_ticks()).with_context(|| format!("parsing {stat_path}"))?;
    let status_path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&status_path).with_context(|| format!("reading {status_path}"))?;
    let rss = status_kib(&status, "VmRSS:").with_context(|| format!("VmRSS in {status_path}"))?;
    let peak_rss =
        status_kib(&status, "VmHWM:").with_context(|| format!("VmHWM in {status_path}"))?;
    Ok(Usage {
        cpu_seconds,
        rss: rss * 1024,
        peak_rss: peak_rss * 1024,
    })
}

/// The CPU seconds of each thread of process `pid` so far, named `NAME/TID`
/// (/proc/PID/task/TID/stat); a thread that exits while they are read is left out.
pub fn thread_cpu(pid: u32) -> Result<Vec<(String, f64)>> {
    let tasks = format!("/proc/{pid}/task");
    let entries = std::fs::read_dir(&tasks).with_context(|| format!("listing {tasks}"))?;
    let ticks = clock_ticks();
    let mut threads = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {tasks}"))?;
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let (Some(name), Some(cpu)) = (stat_name(&stat), parse_cpu_seconds(&stat, ticks)) {
            let tid = entry.file_name();
            threads.push((format!("{name}/{}", tid.to_string_lossy()), cpu));
        }
    }
    Ok(threads)
}

/// The command name (field 2, between the first '(' and the last ')') of a stat line.
fn stat_name(stat: &str) -> Option<&str> {
    stat.get(stat.find('(')? + 1..stat.rfind(')')?)
}

/// The sum of [`usage`] over `pids`.
pub fn usage_sum(pids: &[u32]) -> Result<Usage> {
    pids.iter()
        .try_fold(Usage::default(), |sum, pid| Ok(sum + usage(*pid)?))
}

fn clock_ticks() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)
        .map(|t| t as f64)
        .unwrap_or(100.0)
}

/// utime + stime (fields 14 and 15) of a /proc/PID/stat line, in seconds. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted after the last ')'.
fn parse_cpu_seconds(stat: &str, ticks_per_second: f64) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / ticks_per_second)
}

/// The value in kB of a `Name:   1234 kB` line of /proc/PID/status.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Runs `ip -n NETNS -batch FILE` with `lines`, pinned to `cpu` with taskset; returns the
/// wall time the command took.
pub fn ip_batch(netns: &str, lines: &[String], cpu: Option<usize>, dir: &Path) -> Result<Duration> {
    let file = dir.join(format!("batch-{}.txt", std::process::id()));
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    let mut command = match cpu {
        Some(cpu) => {
            let mut command = Command::new("taskset");
            command.args(["-c", &cpu.to_string(), "ip"]);
            command
        }
        None => Command::new("ip"),
    };
    command.args(["-n", netns, "-batch"]).arg(&file);
    let start = std::time::Instant::now();
    let output = command
        .output()
        .with_context(|| format!("running {}", lab::command_line(&command)))?;
    let took = start.elapsed();
    let _ = std::fs::remove_file(&file);
    if !output.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            lab::command_line(&command),
            output.status,
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .take(3)
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
    Ok(took)
}

/// Connection attempts the namespace's listening sockets dropped because their accept
/// queue was full (TcpExt ListenDrops of /proc/net/netstat, read inside the namespace): a
/// dropped SYN is retransmitted after a second or more.
pub fn listen_drops(netns: &str) -> Result<u64> {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", netns, "cat", "/proc/net/netstat"]);
    let output = command
        .output()
        .with_context(|| format!("running {}", lab::command_line(&command)))?;
    let text = String::from_utf8_lossy(&output.stdout);
    netstat_value(&text, "TcpExt:", "ListenDrops")
        .with_context(|| format!("no TcpExt ListenDrops in /proc/net/netstat of {netns}"))
}

/// A counter of /proc/net/netstat: a header line and a value line share a prefix.
fn netstat_value(text: &str, prefix: &str, name: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with(prefix));
    let names = lines.next()?;
    let values = lines.next()?;
    let index = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(index)?.parse().ok()
}

/// True when a TCP socket listens on `port` in namespace `netns` (`ss -Hltn`).
pub fn listening(netns: &str, port: u16) -> bool {
    let output = Command::new("ip")
        .args(["netns", "exec", netns, "ss", "-Hltn"])
        .output();
    match output {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout)
            .lines()
            .any(|line| listens_on(line, port)),
        _ => false,
    }
}

/// True when an `ss -Hltn` line's local address ends in `:port`.
fn listens_on(line: &str, port: u16) -> bool {
    line.split_whitespace()
        .nth(3)
        .is_some_and(|local| local.rsplit(':').next() == Some(&port.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_from_stat_with_odd_command_names() {
        // Linux 6.x /proc/PID/stat of a process named "a) b", utime 250, stime 50 ticks.
        let stat = "1234 (a) b) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 1000000 200 18446744073709551615";
        assert_eq!(parse_cpu_seconds(stat, 100.0), Some(3.0));
        assert_eq!(parse_cpu_seconds("1234 (x) S", 100.0), None);
        assert_eq!(stat_name(stat), Some("a) b"));
        assert_eq!(stat_name("1234 x S"), None);
    }

    #[test]
    fn status_values_in_kib() {
        let status = "Name:\tbird\nVmHWM:\t   12345 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(2048));
        assert_eq!(status_kib(status, "VmHWM:"), Some(12345));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn own_usage_is_readable() {
        let usage = usage(std::process::id()).unwrap();
        assert!(usage.rss > 0 && usage.peak_rss >= usage.rss);
    }

    #[test]
    fn netstat_counters() {
        // /proc/net/netstat of Linux 6.x, trimmed.
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 12 14\nIpExt: InNoRoutes\nIpExt: 3\n";
        assert_eq!(netstat_value(text, "TcpExt:", "ListenDrops"), Some(14));
        assert_eq!(netstat_value(text, "IpExt:", "InNoRoutes"), Some(3));
        assert_eq!(netstat_value(text, "TcpExt:", "Missing"), None);
    }

    #[test]
    fn ss_lines_by_port() {
        // ss -Hltn from iproute2 6.1.
        let line = "LISTEN 0      4096        10.1.0.1:179        0.0.0.0:*";
        assert!(listens_on(line, 179));
        assert!(!listens_on(line, 1790));
        assert!(listens_on("LISTEN 0 4096 [::]:179 [::]:*", 179));
    }
}
