//! A named Linux network namespace (`ip netns`) owned by a guard: created on construction,
//! and on drop every process still inside is killed and the namespace deleted (which also
//! removes its veth ends, routes and qdiscs). Each namespace has a scratch directory for
//! the configs, sockets and logs of the daemons that run in it.
//!
//! Three ways in: [`Netns::command`] (a `std::process::Command` through `ip netns exec`),
//! [`Netns::exec`] (run and return stdout), and [`Netns::enter`] (run a Rust closure on a
//! thread that has `setns`-ed into the namespace; sockets the closure opens, including those
//! of a tokio current-thread runtime it builds, live in the namespace).

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::command;
use crate::daemon::Daemon;
use crate::error::{Error, Result};
use crate::names::unique_name;
use crate::prereq::{keep_files, open_dir, scratch_dir};

/// Where `ip netns` keeps its namespace handles.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// A network namespace guard. See the module documentation.
#[derive(Debug)]
pub struct Netns {
    name: String,
    dir: Scratch,
    owned: bool,
}

#[derive(Debug)]
enum Scratch {
    Temp(TempDir),
    Fixed(PathBuf),
}

impl Netns {
    /// Creates a namespace with a unique name `PREFIX-PID-N` and a temporary scratch
    /// directory, and brings its `lo` up.
    pub fn new(prefix: &str) -> Result<Netns> {
        let name = unique_name(prefix);
        let dir = scratch_dir(&format!("{name}-")).map_err(|e| {
            Error::io(
                format!("creating a scratch directory for namespace {name}"),
                e,
            )
        })?;
        Netns::create(name, Scratch::Temp(dir))
    }

    /// Creates a namespace with exactly this name (topologies name their nodes) and uses
    /// `dir` (created if missing, never removed) as its scratch directory. Fails if the
    /// namespace exists.
    pub fn named(name: &str, dir: &Path) -> Result<Netns> {
        validate_name(name)?;
        open_dir(dir).map_err(|e| Error::io(format!("creating directory {}", dir.display()), e))?;
        Netns::create(name.to_owned(), Scratch::Fixed(dir.to_owned()))
    }

    /// A guard for an existing namespace that is not deleted on drop.
    pub fn open(name: &str, dir: &Path) -> Result<Netns> {
        validate_name(name)?;
        if !Path::new(NETNS_RUN_DIR).join(name).exists() {
            return Err(Error::invalid(
                format!("network namespace {name}"),
                "does not exist",
            ));
        }
        Ok(Netns {
            name: name.to_owned(),
            dir: Scratch::Fixed(dir.to_owned()),
            owned: false,
        })
    }

    fn create(name: String, dir: Scratch) -> Result<Netns> {
        command::run(Command::new("ip").args(["netns", "add", &name]))?;
        let netns = Netns {
            name,
            dir,
            owned: true,
        };
        netns.lo_up()?;
        netns.no_dad()?;
        Ok(netns)
    }

    /// Turns off IPv6 duplicate address detection for every interface made in the namespace
    /// from now on, so link-local and global addresses are usable at once (FRR will not open
    /// an IPv6 session until the link-local address has left the tentative state).
    fn no_dad(&self) -> Result<()> {
        self.enter(|| {
            for scope in ["all", "default"] {
                let path = format!("/proc/sys/net/ipv6/conf/{scope}/accept_dad");
                std::fs::write(&path, "0").map_err(|e| Error::io(format!("writing {path}"), e))?;
            }
            Ok(())
        })?
    }

    /// The namespace's name (as `ip netns list` shows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scratch directory for configs, sockets and logs of this namespace.
    pub fn dir(&self) -> &Path {
        match &self.dir {
            Scratch::Temp(dir) => dir.path(),
            Scratch::Fixed(dir) => dir,
        }
    }

    /// The namespace handle, `/run/netns/NAME`.
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_RUN_DIR).join(&self.name)
    }

    /// A command that runs `program` inside the namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Runs `args[0]` with the remaining arguments inside the namespace; returns stdout, or
    /// an error with the command line and stderr.
    pub fn exec<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String> {
        let (program, rest) = args
            .split_first()
            .ok_or_else(|| Error::invalid(format!("exec in {}", self.name), "empty command"))?;
        command::run(self.command(program).args(rest))
    }

    /// Like [`Netns::exec`], parsing stdout as JSON.
    pub fn exec_json<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<serde_json::Value> {
        let (program, rest) = args
            .split_first()
            .ok_or_else(|| Error::invalid(format!("exec in {}", self.name), "empty command"))?;
        command::run_json(self.command(program).args(rest))
    }

    /// Runs `f` on a new thread that has entered this namespace, and returns its result. A
    /// panic in `f` is propagated. Threads that `f` spawns start in the namespace too.
    pub fn enter<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let path = self.path();
        let handle =
            File::open(&path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let name = &self.name;
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name(format!("netns {name}"))
                .spawn_scoped(scope, move || {
                    setns(&handle, CloneFlags::CLONE_NEWNET).map_err(|e| {
                        Error::sys(format!("setns into network namespace {name}"), e)
                    })?;
                    Ok(f())
                })
                .map_err(|e| Error::io(format!("spawning a thread for namespace {name}"), e))?;
            match thread.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Brings the loopback interface up.
    pub fn lo_up(&self) -> Result<()> {
        self.ip(&["link", "set", "lo", "up"]).map(drop)
    }

    /// Runs `ip -n NAME ARGS...` and returns stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        command::run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Runs `ip -j -n NAME ARGS...` and returns the parsed JSON (empty output is `[]`).
    pub fn ip_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut command = Command::new("ip");
        command.args(["-j", "-n", &self.name]).args(args);
        let stdout = command::run(&mut command)?;
        if stdout.trim().is_empty() {
            return Ok(serde_json::Value::Array(Vec::new()));
        }
        command::parse_json(&command::display(&command), &stdout)
    }

    /// True when one ICMP echo to `addr` (IPv4 or IPv6) is answered within 2 seconds.
    pub fn ping(&self, addr: &str) -> bool {
        command::output(
            self.command("ping")
                .args(["-n", "-c", "1", "-W", "2", addr]),
        )
        .is_ok_and(|output| output.status.success())
    }

    /// Process ids of every process inside the namespace (`ip netns pids`).
    pub fn pids(&self) -> Result<Vec<i32>> {
        pids(&self.name)
    }

    /// Starts `args[0]` as a [`Daemon`] inside the namespace, logging to `DIR/NAME.log`.
    pub fn spawn<S: AsRef<OsStr>>(&self, name: &str, args: &[S]) -> Result<Daemon> {
        let (program, rest) = args.split_first().ok_or_else(|| {
            Error::invalid(format!("spawn {name} in {}", self.name), "empty command")
        })?;
        let mut command = self.command(program);
        command.args(rest);
        self.spawn_command(name, command)
    }

    /// Starts a prepared command (normally from [`Netns::command`]) as a [`Daemon`],
    /// logging to `DIR/NAME.log`.
    pub fn spawn_command(&self, name: &str, command: Command) -> Result<Daemon> {
        let log = self.dir().join(format!("{name}.log"));
        Daemon::spawn(&format!("{name}@{}", self.name), command, &log)
    }

    /// Leaves the namespace in place after the guard is gone (for `wren-lab up`).
    pub fn persist(mut self) -> String {
        self.release();
        self.name.clone()
    }

    /// Like [`Netns::persist`] for a guard held inside another guard.
    pub(crate) fn release(&mut self) {
        self.owned = false;
        if let Scratch::Temp(dir) = &mut self.dir {
            dir.disable_cleanup(true);
        }
    }

    /// Kills every process inside and deletes the namespace, reporting errors (drop does the
    /// same and prints them).
    pub fn delete(mut self) -> Result<()> {
        self.owned = false;
        delete(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Scratch::Temp(dir) = &mut self.dir
            && keep_files()
        {
            dir.disable_cleanup(true);
        }
        if self.owned
            && let Err(error) = delete(&self.name)
        {
            eprintln!("removing network namespace {}: {error}", self.name);
        }
    }
}

/// Process ids inside the named namespace.
pub fn pids(name: &str) -> Result<Vec<i32>> {
    let stdout = command::run(Command::new("ip").args(["netns", "pids", name]))?;
    stdout
        .split_whitespace()
        .map(|pid| {
            pid.parse().map_err(|_| {
                Error::invalid(
                    format!("`ip netns pids {name}`"),
                    format!("not a pid: {pid:?}"),
                )
            })
        })
        .collect()
}

/// Kills every process in the named namespace (SIGKILL, until none is left, at most 30 s)
/// and deletes it. A namespace that is already gone is not an error.
pub fn delete(name: &str) -> Result<()> {
    if !Path::new(NETNS_RUN_DIR).join(name).exists() {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pids = pids(name)?;
        if pids.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(Error::invalid(
                format!("network namespace {name}"),
                format!("processes {pids:?} survive SIGKILL"),
            ));
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    command::run(Command::new("ip").args(["netns", "del", name])).map(drop)
}

/// Names of the namespaces that exist now (`ip netns list`).
pub fn list() -> Result<Vec<String>> {
    let stdout = command::run(Command::new("ip").args(["netns", "list"]))?;
    // Lines look like "name" or "name (id: 3)".
    Ok(stdout
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            format!("network namespace name {name:?}"),
            "use letters, digits, '-', '_' and '.'",
        ))
    }
}
