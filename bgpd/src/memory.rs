//! bgpd's allocator policy: what glibc malloc keeps after a burst, and when it gives
//! it back.
//!
//! Why: the memory bgpd needs for its routes and sessions is far less than what it
//! holds after a burst. A route reflector of 2500 clients (bench `scale-reflector`)
//! holds about 35 MB of live heap once converged, after a peak of about 70 MB while
//! it encodes millions of UPDATEs, yet its resident set stayed at 141 MiB for the pair
//! of reflectors: glibc keeps freed chunks in its arenas (one per thread that ever
//! contended, up to 8 per core) and gives back only a heap's top, and only above a
//! threshold that it raises by itself (up to 32 MiB) each time a large block is freed.
//!
//! So, at start ([`configure`]), before the runtime's threads exist:
//! - `M_MMAP_THRESHOLD` = [`MMAP_THRESHOLD`]: blocks of 32 KiB and more (read and
//!   encode buffers, tables as they grow) get their own mapping and go back to the
//!   kernel when freed, and glibc no longer raises the threshold by itself;
//! - `M_TRIM_THRESHOLD` = [`TRIM_THRESHOLD`]: a heap's free top above 128 KiB goes
//!   back at `free`.
//!
//! Then a task ([`spawn`]) gives back the free pages inside the heaps
//! (`malloc_trim`), which no threshold reaches, once a burst has left them free: when
//! the resident anonymous memory has grown by [`GROWTH`] since the last trim, and
//! either the process used at most [`QUIET_CPU`] of CPU over the last [`TICK`] (the
//! burst is over) or at least [`GROWTH`] of what is resident is free (`mallinfo2`:
//! resident anonymous memory less the bytes malloc has handed out). A trim walks and
//! locks every arena, for a millisecond or two at 50 MB; it runs at most once per
//! [`GROWTH`] of growth, so a daemon whose memory does not grow never trims, and a
//! busy one asks malloc what is free at most once per [`GROWTH`] of growth too.
//!
//! Why the second condition: a route reflector of 5000 clients is busy for the whole
//! of its convergence (50 s; its keepalives alone are about 4% of a core after it), and
//! held 20 MB free of its 60 MB of anonymous memory through all of it (`malloc_stats`
//! 45 s in, bench `scale-reflector --sizes 5000`): the sessions' setup had freed it,
//! and a quiet tick never came. A trim then gave back 11 MB.
//!
//! Measured with `bench scale-reflector --sizes 2500` (release, 2 cores, the machine
//! not quiet): the pair's RSS at convergence went from 157-222 MiB (7 runs) to
//! 118-140 MiB (6 runs), the mapped-block threshold doing it (a threshold of 128 KiB
//! left 204-213 MiB); CPU to converge stayed within the runs' spread (8.3-9.7 CPU s
//! with and without). A second after convergence, a trim took 1.0-2.3 ms and gave back
//! 10 MB of each reflector's 50 MB of anonymous memory.

use std::time::Duration;

use glibc_malloc::Parameter;
use nix::sys::resource::{UsageWho, getrusage};

/// `M_MMAP_THRESHOLD`: blocks of at least this many bytes are mapped on their own.
pub const MMAP_THRESHOLD: i32 = 32 * 1024;

/// `M_TRIM_THRESHOLD`: free bytes at the top of a heap that `free` keeps.
pub const TRIM_THRESHOLD: i32 = 128 * 1024;

/// How often [`run`] looks at the process' CPU time and memory.
pub const TICK: Duration = Duration::from_secs(1);

/// CPU time over one [`TICK`] at or below which bgpd counts as quiet (5% of a core;
/// 5000 idle sessions with keepalives use about 4%).
pub const QUIET_CPU: Duration = Duration::from_millis(50);

/// Growth of the resident anonymous memory since the last trim (or start) that makes
/// a trim worth its walk over the arenas.
pub const GROWTH: u64 = 8 * 1024 * 1024;

/// Sets the malloc parameters above. Call it first thing in `main`, before any
/// thread starts; a refusal is one line to log, and bgpd goes on with glibc's own
/// defaults.
pub fn configure() -> Result<(), glibc_malloc::Error> {
    glibc_malloc::set(Parameter::MmapThreshold, MMAP_THRESHOLD)?;
    glibc_malloc::set(Parameter::TrimThreshold, TRIM_THRESHOLD)
}

/// When to trim, from what one tick saw: pure, so that the rule is tested without a
/// clock or an allocator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trimmer {
    /// Resident anonymous bytes after the last trim, or the lowest seen since.
    baseline: u64,
    /// The process' CPU time at the last tick.
    cpu: Duration,
    /// Resident anonymous bytes when malloc was last asked what is free while busy:
    /// it is asked again only after [`GROWTH`] more, not at every busy tick (the
    /// question walks every arena's free chunks under its lock).
    asked: u64,
}

impl Trimmer {
    /// Starts from the process' resident anonymous memory and CPU time now.
    pub fn new(resident: u64, cpu: Duration) -> Self {
        Trimmer {
            baseline: resident,
            cpu,
            asked: 0,
        }
    }

    /// One tick: true when bgpd should trim now. `free` tells how many of the
    /// resident bytes malloc holds free (`None`: unknown); it is asked only once the
    /// memory has grown, and only when bgpd is busy.
    pub fn tick(
        &mut self,
        resident: u64,
        cpu: Duration,
        free: impl FnOnce() -> Option<u64>,
    ) -> bool {
        let used = cpu.saturating_sub(self.cpu);
        self.cpu = cpu;
        self.baseline = self.baseline.min(resident);
        if resident < self.baseline.saturating_add(GROWTH) {
            return false;
        }
        if used <= QUIET_CPU {
            return true;
        }
        if resident < self.asked.saturating_add(GROWTH) {
            return false;
        }
        self.asked = resident;
        free().is_some_and(|free| free >= GROWTH)
    }

    /// After a trim: its result is the new baseline, so a trim that gave nothing back
    /// (the memory is live) is not repeated until memory grows again.
    pub fn trimmed(&mut self, resident: u64) {
        self.baseline = resident;
        self.asked = 0;
    }
}

/// What the process holds now: resident anonymous bytes (`RssAnon`) and CPU time
/// (user + system).
fn measure() -> Result<(u64, Duration), String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|error| format!("memory: cannot read /proc/self/status: {error}"))?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .ok_or("memory: no RssAnon in /proc/self/status")?;
    let usage =
        getrusage(UsageWho::RUSAGE_SELF).map_err(|error| format!("memory: getrusage: {error}"))?;
    let time = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
    };
    Ok((
        kib.saturating_mul(1024),
        time(usage.user_time()) + time(usage.system_time()),
    ))
}

/// Starts the task that trims glibc's arenas each time [`Trimmer`] says so; `None`,
/// with one line, when the process' own memory or CPU time cannot be read (no
/// /proc): bgpd then runs with the thresholds of [`configure`] alone.
pub fn spawn() -> Option<tokio::task::JoinHandle<()>> {
    let (resident, cpu) = match measure() {
        Ok(now) => now,
        Err(line) => {
            tracing::warn!("{line}: free heap pages are not given back after bursts");
            return None;
        }
    };
    Some(tokio::spawn(run(Trimmer::new(resident, cpu))))
}

/// The task: one look per [`TICK`], a trim when [`Trimmer::tick`] says so. A failed
/// look is one line (the first of a run of failures) and the tick is skipped.
async fn run(mut trimmer: Trimmer) {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticks.tick().await;
        let (resident, cpu) = match measure() {
            Ok(now) => now,
            Err(line) => {
                if !failing {
                    tracing::warn!("{line}");
                }
                failing = true;
                continue;
            }
        };
        failing = false;
        let free = || glibc_malloc::in_use().map(|in_use| resident.saturating_sub(in_use));
        if !trimmer.tick(resident, cpu, free) {
            continue;
        }
        let started = std::time::Instant::now();
        glibc_malloc::trim();
        let took = started.elapsed();
        let after = measure().map_or(resident, |(after, _)| after);
        trimmer.trimmed(after);
        tracing::debug!(
            before_kib = resident / 1024,
            after_kib = after / 1024,
            took_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            "free heap pages given back (malloc_trim)"
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// What a tick is told of the free bytes when malloc cannot say.
    fn unknown() -> Option<u64> {
        None
    }

    #[test]
    fn trims_once_a_grown_process_is_quiet() {
        let mut trimmer = Trimmer::new(10 * MIB, ms(0));
        // A burst: memory grows while the CPU is busy.
        assert!(!trimmer.tick(40 * MIB, ms(900), unknown));
        assert!(!trimmer.tick(60 * MIB, ms(1800), unknown));
        // Quiet: trim.
        assert!(trimmer.tick(60 * MIB, ms(1820), unknown));
        trimmer.trimmed(20 * MIB);
        // Quiet and no growth since: no more trims.
        assert!(!trimmer.tick(20 * MIB, ms(1830), unknown));
        assert!(!trimmer.tick(27 * MIB, ms(1840), unknown));
        assert!(trimmer.tick(28 * MIB, ms(1850), unknown));
    }

    #[test]
    fn a_trim_that_gives_nothing_back_is_not_repeated() {
        let mut trimmer = Trimmer::new(10 * MIB, ms(0));
        assert!(trimmer.tick(50 * MIB, ms(10), unknown));
        // The memory is live (routes learned): the trim left it as it was.
        trimmer.trimmed(50 * MIB);
        for i in 0..100 {
            assert!(!trimmer.tick(50 * MIB, ms(20 + i * 10), unknown));
        }
    }

    #[test]
    fn growth_counts_from_the_lowest_point_since_the_last_trim() {
        let mut trimmer = Trimmer::new(30 * MIB, ms(0));
        // Memory went back by itself (mapped blocks freed) ...
        assert!(!trimmer.tick(12 * MIB, ms(10), unknown));
        // ... so 8 MiB above that lowest point is growth.
        assert!(trimmer.tick(20 * MIB, ms(20), unknown));
    }

    #[test]
    fn a_busy_process_is_not_trimmed() {
        let mut trimmer = Trimmer::new(10 * MIB, ms(0));
        assert!(!trimmer.tick(100 * MIB, ms(51), unknown));
        assert!(!trimmer.tick(100 * MIB, ms(200), unknown));
        assert!(trimmer.tick(100 * MIB, ms(250), unknown));
    }

    #[test]
    fn a_busy_process_with_much_free_is_trimmed() {
        let mut trimmer = Trimmer::new(10 * MIB, ms(0));
        // Busy, grown, and 20 MiB of the 60 resident are free: trim.
        assert!(trimmer.tick(60 * MIB, ms(900), || Some(20 * MIB)));
        trimmer.trimmed(45 * MIB);
        // Still busy; what is free now (a few MiB) is not asked before growth.
        assert!(!trimmer.tick(50 * MIB, ms(1800), || panic!("asked without growth")));
        // Grown again, but only 2 MiB free: the memory is live, no trim.
        assert!(!trimmer.tick(53 * MIB, ms(2700), || Some(2 * MIB)));
        // Not asked again before 8 MiB more growth.
        assert!(!trimmer.tick(60 * MIB, ms(3600), || panic!("asked again too soon")));
        // Malloc cannot say: busy means no trim, as before.
        assert!(!trimmer.tick(61 * MIB, ms(4500), unknown));
        assert!(trimmer.tick(69 * MIB, ms(5400), || Some(8 * MIB)));
        trimmer.trimmed(50 * MIB);
        // After a trim, growth counts from it again.
        assert!(trimmer.tick(58 * MIB, ms(6300), || Some(8 * MIB)));
    }

    #[test]
    fn a_quiet_grown_process_is_trimmed_without_asking_what_is_free() {
        let mut trimmer = Trimmer::new(10 * MIB, ms(0));
        assert!(trimmer.tick(30 * MIB, ms(10), || panic!("asked while quiet")));
    }

    #[test]
    fn measure_reads_this_process() {
        let (resident, _cpu) = measure().unwrap();
        assert!(resident > 0);
    }
}
