//! A /proc poller beside the daemons of an unpinned run, as a node's monitoring agent
//! would be: a thread allowed both CPUs reads /proc/PID/status and every thread's
//! /proc/PID/task/TID/stat of the watched processes every [`EVERY`] until finished, and
//! keeps the largest resident set it saw and how many polls it made.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};

use crate::system;

/// Time between two polls.
pub const EVERY: Duration = Duration::from_millis(10);

/// What the poller saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Polled {
    /// Polls made.
    pub polls: u64,
    /// The largest resident set (sum of VmRSS over the processes) seen, bytes.
    pub max_rss: u64,
}

/// A running poller; dropping it stops the thread.
#[derive(Debug)]
pub struct Poller {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Polled>>>,
}

impl Poller {
    /// Starts polling `pids`.
    pub fn start(pids: Vec<u32>) -> Result<Poller> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("proc-poller".into())
            .spawn(move || poll(&pids, &stopped))
            .context("starting the /proc poller thread")?;
        Ok(Poller {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops polling; what it saw, or the first read that failed.
    pub fn finish(mut self) -> Result<Polled> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow!("the /proc poller panicked"))?,
            None => Err(anyhow!("the /proc poller was already stopped")),
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn poll(pids: &[u32], stop: &AtomicBool) -> Result<Polled> {
    system::unpin_current_thread()?;
    let mut polled = Polled::default();
    // At least one poll, however soon it is finished.
    loop {
        let mut rss = 0;
        for &pid in pids {
            rss += system::usage(pid)?.rss;
            system::thread_cpu(pid)?;
        }
        polled.polls += 1;
        polled.max_rss = polled.max_rss.max(rss);
        if stop.load(Ordering::Relaxed) {
            return Ok(polled);
        }
        std::thread::sleep(EVERY);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn polls_its_own_process() {
        let poller = Poller::start(vec![std::process::id()]).unwrap();
        std::thread::sleep(EVERY * 5);
        let polled = poller.finish().unwrap();
        assert!(polled.polls >= 2, "{polled:?}");
        assert!(polled.max_rss > 0);
    }

    #[test]
    fn a_gone_process_is_an_error() {
        // Pid 0 has no /proc entry.
        let poller = Poller::start(vec![0]).unwrap();
        assert!(poller.finish().is_err());
    }
}
