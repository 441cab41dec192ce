//! The daemon's long-lived tasks, by name, and what to do when one ends.
//!
//! Every task the daemon starts (`crate::daemon::TASKS`) is kept here under its name.
//! None of them ends while the daemon runs: an end is a fault (a panic in builds that
//! unwind, a task giving up), and a daemon missing one task is worse than a stopped
//! one (its sessions would stay Established while nothing moves routes). So the
//! daemon stops at once with a non-zero status and one line naming the task; the
//! service manager starts it again, and route adoption makes that restart cheap
//! (release builds abort on panic, which ends the same way).
//!
//! Session tasks are not here: the supervisor keeps them in a set of its own and
//! restarts a failed one (see `crate::supervisor`).

use std::time::Duration;

use tokio::task::{JoinError, JoinHandle};

/// How long to wait, once one task has ended, for others it takes down with it
/// (the fib task follows the rib task), so the line names the first cause.
const SETTLE: Duration = Duration::from_millis(50);

/// The daemon's running tasks, by name, in start order.
#[derive(Debug, Default)]
pub struct Running {
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Running {
    /// Adds a started task.
    pub fn push(&mut self, name: &'static str, task: JoinHandle<()>) {
        self.tasks.push((name, task));
    }

    /// Takes a task out (to stop it in order).
    pub fn take(&mut self, name: &str) -> Option<JoinHandle<()>> {
        let index = self.tasks.iter().position(|(n, _)| *n == name)?;
        Some(self.tasks.remove(index).1)
    }

    /// Takes every task out, in start order.
    pub fn drain(&mut self) -> Vec<(&'static str, JoinHandle<()>)> {
        std::mem::take(&mut self.tasks)
    }

    /// Waits until a task ends and returns one line naming it (and any other that
    /// ended with it) and why. With no task, waits forever. The ended tasks are
    /// removed from the set.
    pub async fn ended(&mut self) -> String {
        if self.tasks.is_empty() {
            return std::future::pending().await;
        }
        let (first, index, _) =
            futures::future::select_all(self.tasks.iter_mut().map(|(_, task)| task)).await;
        let (name, _) = self.tasks.remove(index);
        let mut ended = vec![(name, first)];
        tokio::time::sleep(SETTLE).await;
        let mut index = 0;
        while index < self.tasks.len() {
            if self.tasks[index].1.is_finished() {
                let (name, task) = self.tasks.remove(index);
                ended.push((name, task.await));
            } else {
                index += 1;
            }
        }
        // A panic is the cause, the others followed it: panics first.
        ended.sort_by_key(|(_, result)| !result.as_ref().is_err_and(JoinError::is_panic));
        let plural = if ended.len() == 1 { "task" } else { "tasks" };
        let list: Vec<String> = ended
            .into_iter()
            .map(|(name, result)| format!("{name} ({})", outcome(result)))
            .collect();
        format!("the {plural} {} ended unexpectedly", list.join(", "))
    }
}

fn outcome(result: Result<(), JoinError>) -> String {
    match result {
        Ok(()) => String::from("it returned"),
        Err(error) => ended_why(error),
    }
}

/// Why a task ended, in a few words: the panic's message, or that it was cancelled.
pub fn ended_why(error: JoinError) -> String {
    if error.is_cancelled() {
        return String::from("cancelled");
    }
    let payload = error.into_panic();
    let message = payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| String::from("no message"));
    format!("panicked: {message}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_named_with_its_message() {
        let mut running = Running::default();
        running.push("quiet", tokio::spawn(std::future::pending()));
        running.push("rib", tokio::spawn(async { panic!("boom") }));
        let line = running.ended().await;
        assert_eq!(line, "the task rib (panicked: boom) ended unexpectedly");
        assert!(running.take("quiet").is_some());
    }

    #[tokio::test]
    async fn tasks_ending_together_are_named_together() {
        let mut running = Running::default();
        let (sender, receiver) = tokio::sync::oneshot::channel::<()>();
        running.push(
            "fib",
            tokio::spawn(async move {
                let _ = receiver.await;
            }),
        );
        running.push(
            "rib",
            tokio::spawn(async move {
                let _sender = sender;
                panic!("boom")
            }),
        );
        let line = running.ended().await;
        assert!(
            line.starts_with("the tasks rib (panicked: boom), fib"),
            "{line}"
        );
        assert!(line.contains("rib (panicked: boom)"), "{line}");
        assert!(line.contains("fib (it returned)"), "{line}");
    }
}
