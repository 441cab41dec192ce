//! ExaBGP 4 as a scripted peer inside a namespace. The configuration given by the test
//! declares its neighbors and adds `api { processes [ lab ]; }` to each neighbor that should
//! take commands; this module prepends the `lab` process, which follows the file
//! `DIR/api` (`tail -F`), so [`ExaBgp::send`] appends an API command line
//! (`announce route 10.0.0.0/24 next-hop self`,
//! `announce route ... attribute [ 0x23 0xc0 0x00000001 ]`, `withdraw route ...`) and
//! ExaBGP executes it.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::daemon::Daemon;
use crate::error::{Error, Result};
use crate::netns::Netns;

/// The API process name to list in a neighbor's `api { processes [ ... ]; }`.
pub const API_PROCESS: &str = "lab";

/// A running ExaBGP. Dropping it stops it.
#[derive(Debug)]
pub struct ExaBgp {
    dir: PathBuf,
    daemon: Daemon,
}

impl ExaBgp {
    /// Starts ExaBGP in `netns` with `config` (neighbors referring to [`API_PROCESS`]).
    pub fn start(netns: &Netns, config: &str) -> Result<ExaBgp> {
        let dir = netns.dir().join("exabgp");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let api = dir.join("api");
        std::fs::write(&api, "")
            .map_err(|e| Error::io(format!("creating {}", api.display()), e))?;
        let full = format!(
            "process {API_PROCESS} {{\n    run /usr/bin/tail -n +1 -F {};\n    encoder text;\n}}\n\n{config}",
            api.display()
        );
        let config_path = dir.join("exabgp.conf");
        std::fs::write(&config_path, full)
            .map_err(|e| Error::io(format!("writing {}", config_path.display()), e))?;
        let mut command = netns.command("exabgp");
        command
            .arg(&config_path)
            .env("exabgp.daemon.daemonize", "false")
            .env("exabgp.daemon.user", "root")
            .env("exabgp.daemon.drop", "false")
            .env("exabgp.daemon.pid", dir.join("exabgp.pid"))
            .env("exabgp.api.cli", "false")
            .env("exabgp.log.destination", "stdout");
        let daemon = netns.spawn_command("exabgp", command)?;
        Ok(ExaBgp { dir, daemon })
    }

    /// The directory with the config, the API file and the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The process guard (log, waits).
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// Sends one API command line to ExaBGP.
    pub fn send(&self, line: &str) -> Result<()> {
        if line.contains('\n') {
            return Err(Error::invalid("ExaBGP API command", "must be one line"));
        }
        let path = self.dir.join("api");
        let mut file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        file.write_all(format!("{line}\n").as_bytes())
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }
}
