//! Polling helpers: wait for a condition with a generous timeout instead of sleeping and
//! hoping. The poll interval starts at 10 ms and backs off to 250 ms, so fast conditions are
//! seen quickly and slow ones do not burn the CPU of a loaded 2-core machine.

use std::fmt::Display;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A timeout generous enough for a loaded CI machine; use it unless a test needs otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Polls `condition` until it returns true; times out with an error naming `what`.
pub fn wait_until(
    timeout: Duration,
    what: &str,
    mut condition: impl FnMut() -> bool,
) -> Result<()> {
    wait_for(timeout, what, || {
        if condition() {
            Ok(())
        } else {
            Err("condition still false")
        }
    })
}

/// Polls `probe` until it returns `Ok(value)` and returns the value. On timeout the error
/// names `what` and carries the last `Err` the probe returned (the last observation).
pub fn wait_for<T, E: Display>(
    timeout: Duration,
    what: &str,
    probe: impl FnMut() -> std::result::Result<T, E>,
) -> Result<T> {
    poll(timeout, what, probe, || None, String::new)
}

/// The general loop behind every wait: `abort` is asked before each probe and ends the wait
/// early with its error (a daemon that died); `detail` adds context to a timeout (a log tail).
pub(crate) fn poll<T, E: Display>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> std::result::Result<T, E>,
    mut abort: impl FnMut() -> Option<Error>,
    detail: impl FnOnce() -> String,
) -> Result<T> {
    let start = Instant::now();
    let mut interval = Duration::from_millis(10);
    loop {
        if let Some(error) = abort() {
            return Err(error);
        }
        let last = match probe() {
            Ok(value) => return Ok(value),
            Err(observation) => observation.to_string(),
        };
        let waited = start.elapsed();
        if waited >= timeout {
            let mut text = String::new();
            if !last.is_empty() {
                text.push_str("; last observation: ");
                text.push_str(&last);
            }
            text.push_str(&detail());
            return Err(Error::Timeout {
                what: what.to_owned(),
                waited,
                detail: text,
            });
        }
        std::thread::sleep(interval.min(timeout - waited));
        interval = (interval * 2).min(Duration::from_millis(250));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn returns_value_once_probe_succeeds() {
        let mut calls = 0;
        let value = wait_for(Duration::from_secs(10), "third call", || {
            calls += 1;
            if calls == 3 {
                Ok(calls)
            } else {
                Err(format!("call {calls}"))
            }
        })
        .unwrap();
        assert_eq!(value, 3);
    }

    #[test]
    fn timeout_names_what_and_last_observation() {
        let error = wait_for::<(), _>(Duration::from_millis(30), "the impossible", || {
            Err("still impossible")
        })
        .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("the impossible"), "{text}");
        assert!(text.contains("still impossible"), "{text}");
    }

    #[test]
    fn abort_ends_the_wait() {
        let error = poll::<(), _>(
            TIMEOUT,
            "x",
            || Err("no"),
            || Some(Error::invalid("daemon", "gone")),
            String::new,
        )
        .unwrap_err();
        assert!(error.to_string().contains("gone"));
    }
}
