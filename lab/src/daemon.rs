//! A guard for a long-running process (a peer daemon, etcd, bgpd) started in its own
//! process group, with stdout and stderr captured to a log file. Dropping the guard sends
//! SIGTERM to the whole group, waits a grace period, then sends SIGKILL, so no process is
//! left behind even when a test fails. When the drop happens during a panic the log tail is
//! printed, so a failing test shows what its daemons said.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::command::display;
use crate::error::{Error, Result};
use crate::wait::poll;

/// Default time between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

/// Lines of log shown in errors and on panics.
const TAIL_LINES: usize = 40;

/// A running process and its log. See the module documentation.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    spec: Spec,
    child: Mutex<Child>,
    pid: u32,
    log: PathBuf,
    grace: Duration,
    detached: bool,
}

impl Daemon {
    /// Starts `command` as daemon `name` in a new process group, appending its stdout and
    /// stderr to `log`. The command's program, arguments, environment and working directory
    /// are remembered for [`Daemon::restart`].
    pub fn spawn(name: &str, command: Command, log: &Path) -> Result<Daemon> {
        let spec = Spec::of(&command);
        let child = start(name, &spec, log)?;
        Ok(Daemon {
            name: name.to_owned(),
            spec,
            pid: child.id(),
            child: Mutex::new(child),
            log: log.to_owned(),
            grace: GRACE,
            detached: false,
        })
    }

    /// The daemon's name (for messages).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id (also the process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log as text.
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Sets the time between SIGTERM and SIGKILL when stopping.
    pub fn set_grace(&mut self, grace: Duration) {
        self.grace = grace;
    }

    /// The exit status if the process has exited (reaps it), `None` while it runs.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.lock().try_wait().ok().flatten()
    }

    /// True while the process runs.
    pub fn is_alive(&self) -> bool {
        self.exit_status().is_none()
    }

    /// Sends `signal` to the daemon's process group.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        killpg(self.pgid(), signal).map_err(|e| {
            Error::sys(
                format!("sending {signal} to {} (pid {})", self.name, self.pid),
                e,
            )
        })
    }

    /// SIGKILL to the process group, then reaps the process: the crash a fault test wants.
    pub fn kill(&self) -> Result<ExitStatus> {
        let _ = killpg(self.pgid(), Signal::SIGKILL);
        let status = self
            .lock()
            .wait()
            .map_err(|e| Error::io(format!("waiting for {} (pid {})", self.name, self.pid), e))?;
        self.kill_group();
        Ok(status)
    }

    /// SIGTERM to the group, up to the grace period for the process to exit, then SIGKILL to
    /// whatever is left of the group. Returns the exit status.
    pub fn stop(&self) -> Result<ExitStatus> {
        let status = match self.exit_status() {
            Some(status) => status,
            None => {
                let _ = killpg(self.pgid(), Signal::SIGTERM);
                let deadline = Instant::now() + self.grace;
                loop {
                    if let Some(status) = self.exit_status() {
                        break status;
                    }
                    if Instant::now() >= deadline {
                        let _ = killpg(self.pgid(), Signal::SIGKILL);
                        break self.lock().wait().map_err(|e| {
                            Error::io(format!("waiting for {} (pid {})", self.name, self.pid), e)
                        })?;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        self.kill_group();
        Ok(status)
    }

    /// Stops the process if it still runs and starts the same command again, appending to the
    /// same log.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        let child = start(&self.name, &self.spec, &self.log)?;
        self.pid = child.id();
        *self.lock() = child;
        Ok(())
    }

    /// Polls `condition` until true; fails early if the daemon exits, and on timeout the
    /// error carries the daemon's log tail.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        mut condition: impl FnMut() -> bool,
    ) -> Result<()> {
        self.wait_for(timeout, what, || {
            if condition() {
                Ok(())
            } else {
                Err("condition still false")
            }
        })
    }

    /// Polls `probe` until it returns `Ok`; fails early if the daemon exits, and on timeout
    /// the error carries the last observation and the daemon's log tail.
    pub fn wait_for<T, E: std::fmt::Display>(
        &self,
        timeout: Duration,
        what: &str,
        probe: impl FnMut() -> std::result::Result<T, E>,
    ) -> Result<T> {
        poll(
            timeout,
            &format!("{what} ({})", self.name),
            probe,
            || {
                self.exit_status().map(|status| Error::Exited {
                    daemon: format!("{} (pid {})", self.name, self.pid),
                    status: status.to_string(),
                    what: what.to_owned(),
                    detail: self.tail_detail(),
                })
            },
            || self.tail_detail(),
        )
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, timeout: Duration, needle: &str) -> Result<()> {
        self.wait_until(
            timeout,
            &format!("{needle:?} in {}", self.log.display()),
            || self.log().contains(needle),
        )
    }

    /// Leaves the process running after this guard is gone (for `wren-lab up`); returns its
    /// pid.
    pub fn detach(mut self) -> u32 {
        self.detached = true;
        self.pid
    }

    /// SIGKILL to what is left of the group (children that ignored SIGTERM or outlived the
    /// leader), then waits up to 5 s until the group is gone, so that on return no process
    /// of the daemon is left (their new parent reaps them).
    fn kill_group(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while killpg(self.pgid(), Signal::SIGKILL).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn pgid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.pid).unwrap_or(i32::MAX))
    }

    fn lock(&self) -> MutexGuard<'_, Child> {
        self.child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn tail_detail(&self) -> String {
        format!(
            "\n--- last {TAIL_LINES} lines of {} ---\n{}",
            self.log.display(),
            self.log_tail(TAIL_LINES)
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        if std::thread::panicking() {
            eprintln!("{}{}", self.name, self.tail_detail());
        }
        if let Err(error) = self.stop() {
            eprintln!("stopping {}: {error}", self.name);
        }
    }
}

/// The last `lines` lines of the file at `path` (reads at most the last 64 KiB).
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// What is needed to start the same command again.
#[derive(Debug, Clone)]
struct Spec {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, Option<OsString>)>,
    dir: Option<PathBuf>,
}

impl Spec {
    fn of(command: &Command) -> Spec {
        Spec {
            program: command.get_program().to_owned(),
            args: command.get_args().map(ToOwned::to_owned).collect(),
            envs: command
                .get_envs()
                .map(|(k, v)| (k.to_owned(), v.map(ToOwned::to_owned)))
                .collect(),
            dir: command.get_current_dir().map(ToOwned::to_owned),
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        for (key, value) in &self.envs {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        command
    }
}

fn start(name: &str, spec: &Spec, log: &Path) -> Result<Child> {
    let mut command = spec.command();
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| Error::io(format!("opening log {} of {name}", log.display()), e))?;
    let _ = writeln!(file, "=== wren-lab: starting {name}: {}", display(&command));
    let stderr = file
        .try_clone()
        .map_err(|e| Error::io(format!("duplicating log {}", log.display()), e))?;
    command
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(stderr)
        .process_group(0);
    command
        .spawn()
        .map_err(|e| Error::io(format!("starting {name}: `{}`", display(&command)), e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "a\nb\nc\nd\n").unwrap();
        assert_eq!(tail(&path, 2), "c\nd");
        assert_eq!(tail(&path, 10), "a\nb\nc\nd");
        assert_eq!(tail(&dir.path().join("missing"), 3), "");
    }

    #[test]
    fn captures_output_and_stops_group() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sh.log");
        let mut command = Command::new("sh");
        command.args(["-c", "echo hello; sleep 1000 & sleep 1000"]);
        let daemon = Daemon::spawn("sh", command, &log).unwrap();
        daemon.wait_log(Duration::from_secs(30), "hello").unwrap();
        assert!(daemon.is_alive());
        let pgid = daemon.pgid();
        daemon.stop().unwrap();
        // The background sleep was in the same group and is gone too (once its new parent
        // has reaped it).
        crate::wait_until(Duration::from_secs(30), "process group gone", || {
            killpg(pgid, None) == Err(nix::errno::Errno::ESRCH)
        })
        .unwrap();
    }

    #[test]
    fn exit_is_reported_with_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "echo dying words; exit 3"]);
        let daemon = Daemon::spawn("quitter", command, &dir.path().join("q.log")).unwrap();
        let error = daemon
            .wait_until(Duration::from_secs(30), "never", || false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("exited"), "{error}");
        assert!(error.contains("dying words"), "{error}");
    }
}
