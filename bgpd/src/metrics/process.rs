//! The process: `wren_build_info` and the standard process collector's series
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_start_time_seconds`), read from `/proc/self` at each scrape, as
//! client_golang's process collector reads them.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::series::{self, Labels};

/// The commit bgpd was built from: `WREN_COMMIT` at build time (the Dockerfile sets
/// it), else `unknown`.
pub const COMMIT: &str = match option_env!("WREN_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// The process' resources at one moment; a field is `None` when `/proc` did not
/// give it (it is then left out of the scrape, never reported as 0).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessSample {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
}

impl ProcessSample {
    /// Reads `/proc/self`.
    pub fn read() -> ProcessSample {
        let mut sample = ProcessSample::default();
        let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .filter(|ticks| *ticks > 0);
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .filter(|page| *page > 0);
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
            && let Some(fields) = stat_fields(&stat)
        {
            let field = |n: usize| fields.get(n).and_then(|f| f.parse::<u64>().ok());
            if let Some(ticks) = ticks {
                let ticks = ticks as f64;
                // utime and stime, fields 14 and 15 of proc(5).
                if let (Some(user), Some(system)) = (field(14), field(15)) {
                    sample.cpu_seconds = Some((user + system) as f64 / ticks);
                }
                // starttime, field 22, in ticks after boot.
                if let (Some(start), Some(boot)) = (field(22), boot_time()) {
                    sample.start_time_seconds = Some(boot as f64 + start as f64 / ticks);
                }
            }
            sample.virtual_bytes = field(23);
            if let (Some(pages), Some(page)) = (field(24), page) {
                sample.resident_bytes = Some(pages.saturating_mul(page as u64));
            }
        }
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            sample.open_fds = Some(entries.count() as u64);
        }
        if let Ok((soft, _)) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        {
            sample.max_fds = Some(soft);
        }
        sample
    }
}

/// The fields of `/proc/self/stat` numbered as proc(5) numbers them (1: pid, 2: the
/// command in parentheses, which may hold spaces); index 0 is unused.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let (head, rest) = stat.rsplit_once(')')?;
    let pid = head.split_once('(')?.0.trim();
    let mut fields = vec!["", pid, ""];
    fields.extend(rest.split_whitespace());
    Some(fields)
}

/// The boot time, seconds since the epoch (`btime` of `/proc/stat`).
fn boot_time() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

impl Collector for ProcessSample {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let build: Labels = vec![
            ("version", env!("CARGO_PKG_VERSION").to_owned()),
            ("commit", COMMIT.to_owned()),
        ];
        series::gauges(
            &mut encoder,
            "wren_build_info",
            "The version and commit bgpd was built from (always 1).",
            [(build, 1i64)],
        )?;
        if let Some(value) = self.cpu_seconds {
            series::counter(
                &mut encoder,
                "process_cpu_seconds",
                "User and system CPU time spent, in seconds.",
                value,
            )?;
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size, in bytes.",
                self.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size, in bytes.",
                self.virtual_bytes,
            ),
            ("process_open_fds", "Open file descriptors.", self.open_fds),
            (
                "process_max_fds",
                "The limit of open file descriptors.",
                self.max_fds,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                series::gauge(
                    &mut encoder,
                    name,
                    help,
                    i64::try_from(value).unwrap_or(i64::MAX),
                )?;
            }
        }
        if let Some(value) = self.start_time_seconds {
            series::gauge(
                &mut encoder,
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds.",
                value,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_numbered_as_proc_numbers_them() {
        // A command with a space and a parenthesis, as /proc shows it.
        let stat = "4242 (bgpd (x) y) S 1 4242 4242 0 -1 4194560 2000 0 0 0 150 50 0 0 20 0 9 0 12345 104857600 2560 18446744073709551615";
        let fields = stat_fields(stat).unwrap();
        assert_eq!(fields[1], "4242");
        assert_eq!(fields[3], "S");
        assert_eq!(fields[14], "150");
        assert_eq!(fields[15], "50");
        assert_eq!(fields[22], "12345");
        assert_eq!(fields[23], "104857600");
        assert_eq!(fields[24], "2560");
    }

    #[test]
    fn this_process_is_read() {
        let sample = ProcessSample::read();
        assert!(sample.resident_bytes.unwrap() > 0);
        assert!(sample.open_fds.unwrap() > 0);
        assert!(sample.cpu_seconds.is_some());
        assert!(sample.start_time_seconds.unwrap() > 1.0e9);
    }
}
