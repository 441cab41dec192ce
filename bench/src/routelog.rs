//! A time-stamped log of route events seen by one observer: the kernel table of a daemon's
//! namespace (netlink multicast, `fibwatch`), GoBGP's RIB (its gRPC watch stream, `dut`),
//! or a monitor peer the daemon re-advertises to (`generator`).
//!
//! Calling contract: exactly one producer thread records events (`record_*`); any thread
//! may wait on the log and query it. Every event carries the `Instant` at which the
//! producer received it, so all logs and the generator share one clock. Waiting is on a
//! condition variable the producer signals; nothing here polls.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use ipnet::Ipv4Net;

/// An IPv4 prefix packed in a word: address in the high 32 bits, length in the low 8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(u64);

impl Key {
    /// The key of `net` (host bits are kept as given).
    pub fn of(net: Ipv4Net) -> Key {
        Key::new(net.addr(), net.prefix_len())
    }

    /// The key of `addr/len`.
    pub fn new(addr: Ipv4Addr, len: u8) -> Key {
        Key((u64::from(u32::from(addr)) << 8) | u64::from(len))
    }
}

/// One route appearing or leaving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// When the observer received it.
    pub at: Instant,
    pub key: Key,
    /// True for an addition or replacement, false for a removal.
    pub added: bool,
}

/// A position in the log: events recorded after it are "since" the mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark(usize);

/// See the module documentation.
#[derive(Debug)]
pub struct RouteLog {
    name: String,
    inner: Mutex<Inner>,
    changed: Condvar,
}

/// What the producer maintains and waiters look at.
#[derive(Debug, Default)]
pub struct Inner {
    events: Vec<Event>,
    present: HashSet<Key>,
    /// Times the observer lost events (netlink ENOBUFS): a measurement with a loss is void.
    overruns: u64,
    /// Times the observed table was cleared at once (a monitor session went down).
    resets: u64,
    /// Why the producer stopped, if it failed.
    failed: Option<String>,
}

impl Inner {
    /// True when `key` is present now.
    pub fn contains(&self, key: Key) -> bool {
        self.present.contains(&key)
    }
}

impl RouteLog {
    /// An empty log named for messages ("kernel table of bird-1").
    pub fn new(name: impl Into<String>) -> RouteLog {
        RouteLog {
            name: name.into(),
            inner: Mutex::new(Inner::default()),
            changed: Condvar::new(),
        }
    }

    /// Records a batch of events received at `at` and wakes waiters.
    pub fn record(&self, at: Instant, changes: impl IntoIterator<Item = (Key, bool)>) {
        self.record_quietly(at, changes);
        self.notify();
    }

    /// Records a batch without waking waiters: a producer receiving a burst wakes them
    /// with [`RouteLog::notify`] once in a while instead of once per datagram.
    pub fn record_quietly(&self, at: Instant, changes: impl IntoIterator<Item = (Key, bool)>) {
        let mut inner = self.lock();
        for (key, added) in changes {
            if added {
                inner.present.insert(key);
            } else {
                inner.present.remove(&key);
            }
            inner.events.push(Event { at, key, added });
        }
    }

    /// Wakes waiters to look at the log again.
    pub fn notify(&self) {
        self.changed.notify_all();
    }

    /// Records that events were lost.
    pub fn record_overrun(&self) {
        self.lock().overruns += 1;
        self.changed.notify_all();
    }

    /// Empties the present set at once (a session carrying the routes went down), without
    /// per-route events.
    pub fn record_reset(&self) {
        let mut inner = self.lock();
        inner.present.clear();
        inner.resets += 1;
        drop(inner);
        self.changed.notify_all();
    }

    /// Records that the producer stopped with an error; waiters fail with it.
    pub fn record_failure(&self, reason: String) {
        self.lock().failed = Some(reason);
        self.changed.notify_all();
    }

    /// The current end of the log.
    pub fn mark(&self) -> Mark {
        Mark(self.lock().events.len())
    }

    /// Event losses so far.
    pub fn overruns(&self) -> u64 {
        self.lock().overruns
    }

    /// Fails when events were lost since the log was made (the figures would be wrong).
    pub fn check_complete(&self) -> Result<()> {
        let overruns = self.overruns();
        if overruns > 0 {
            bail!(
                "{}: {overruns} netlink receive overruns: route events were lost",
                self.name
            );
        }
        Ok(())
    }

    /// Waits until `condition` holds on the log, up to `timeout`; `what` names the
    /// condition in the error, which also carries `describe` of the last state.
    pub fn wait(
        &self,
        timeout: Duration,
        what: &str,
        mut condition: impl FnMut(&Inner) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        loop {
            if let Some(reason) = &inner.failed {
                bail!(
                    "{}: observer failed while waiting for {what}: {reason}",
                    self.name
                );
            }
            if condition(&inner) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                bail!(
                    "{}: timed out after {timeout:?} waiting for {what} ({} routes present, {} events)",
                    self.name,
                    inner.present.len(),
                    inner.events.len()
                );
            }
            inner = self
                .changed
                .wait_timeout(inner, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }

    /// Waits until every key of `keys` is present.
    pub fn wait_all_present(&self, timeout: Duration, keys: &[Key]) -> Result<()> {
        // Scan forward over keys seen present; when the scan reaches the end, verify the
        // whole set once (a key may have left since) and resume from the first missing.
        let mut next = 0;
        self.wait(
            timeout,
            &format!("{} routes present", keys.len()),
            |inner| {
                while next < keys.len() && inner.contains(keys[next]) {
                    next += 1;
                }
                if next < keys.len() {
                    return false;
                }
                match keys.iter().position(|k| !inner.contains(*k)) {
                    None => true,
                    Some(missing) => {
                        next = missing;
                        false
                    }
                }
            },
        )
    }

    /// Waits until none of `keys` is present.
    pub fn wait_none_present(&self, timeout: Duration, keys: &[Key]) -> Result<()> {
        let mut next = 0;
        self.wait(timeout, &format!("{} routes gone", keys.len()), |inner| {
            while next < keys.len() && !inner.contains(keys[next]) {
                next += 1;
            }
            if next < keys.len() {
                return false;
            }
            match keys.iter().position(|k| inner.contains(*k)) {
                None => true,
                Some(present) => {
                    next = present;
                    false
                }
            }
        })
    }

    /// The time of the first event since `mark` that matches `filter`.
    pub fn first_since(&self, mark: Mark, filter: impl Fn(&Event) -> bool) -> Option<Instant> {
        let inner = self.lock();
        inner
            .events
            .get(mark.0..)?
            .iter()
            .find(|e| filter(e))
            .map(|e| e.at)
    }

    /// The time of the last event since `mark` that matches `filter`.
    pub fn last_since(&self, mark: Mark, filter: impl Fn(&Event) -> bool) -> Option<Instant> {
        let inner = self.lock();
        inner
            .events
            .get(mark.0..)?
            .iter()
            .rev()
            .find(|e| filter(e))
            .map(|e| e.at)
    }

    /// The number of events since `mark` that match `filter`.
    pub fn count_since(&self, mark: Mark, filter: impl Fn(&Event) -> bool) -> usize {
        let inner = self.lock();
        inner
            .events
            .get(mark.0..)
            .map(|events| events.iter().filter(|e| filter(e)).count())
            .unwrap_or(0)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use std::sync::Arc;

    fn key(text: &str) -> Key {
        Key::of(text.parse().unwrap())
    }

    #[test]
    fn keys_tell_prefixes_apart() {
        assert_ne!(key("10.0.0.0/24"), key("10.0.0.0/25"));
        assert_ne!(key("10.0.0.0/24"), key("10.0.1.0/24"));
        assert_eq!(key("10.0.0.0/24"), Key::new(Ipv4Addr::new(10, 0, 0, 0), 24));
    }

    #[test]
    fn events_are_queried_since_a_mark() {
        let log = RouteLog::new("test");
        let t0 = Instant::now();
        log.record(t0, [(key("10.0.0.0/24"), true)]);
        let mark = log.mark();
        let t1 = t0 + Duration::from_millis(5);
        let t2 = t0 + Duration::from_millis(9);
        log.record(
            t1,
            [(key("10.0.1.0/24"), true), (key("10.0.0.0/24"), false)],
        );
        log.record(t2, [(key("10.0.2.0/24"), true)]);
        assert_eq!(log.count_since(mark, |_| true), 3);
        assert_eq!(log.first_since(mark, |e| e.added), Some(t1));
        assert_eq!(log.last_since(mark, |e| e.added), Some(t2));
        assert_eq!(log.count_since(mark, |e| !e.added), 1);
        log.wait(Duration::from_secs(1), "two present", |inner| {
            inner.contains(key("10.0.1.0/24")) && inner.contains(key("10.0.2.0/24"))
        })
        .unwrap();
    }

    #[test]
    fn waiters_wake_on_events_and_time_out_with_a_reason() {
        let log = Arc::new(RouteLog::new("test"));
        let keys = vec![key("10.0.0.0/24"), key("10.0.1.0/24")];
        let producer = {
            let log = log.clone();
            let keys = keys.clone();
            std::thread::spawn(move || {
                for k in keys {
                    log.record(Instant::now(), [(k, true)]);
                }
            })
        };
        log.wait_all_present(Duration::from_secs(30), &keys)
            .unwrap();
        producer.join().unwrap();
        let error = log
            .wait_none_present(Duration::from_millis(20), &keys)
            .unwrap_err()
            .to_string();
        assert!(error.contains("timed out"), "{error}");
        log.record_failure("socket closed".into());
        let error = log
            .wait(Duration::from_secs(30), "never", |_| false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("socket closed"), "{error}");
    }

    #[test]
    fn overruns_void_the_log() {
        let log = RouteLog::new("kernel");
        log.check_complete().unwrap();
        log.record_overrun();
        assert!(log.check_complete().is_err());
    }

    #[test]
    fn reset_clears_present_routes() {
        let log = RouteLog::new("monitor");
        log.record(Instant::now(), [(key("10.0.0.0/24"), true)]);
        log.record_reset();
        log.wait(Duration::from_secs(1), "empty", |inner| {
            !inner.contains(key("10.0.0.0/24"))
        })
        .unwrap();
    }
}
