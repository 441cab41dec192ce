//! The one error type of the lab library. Every variant names what was being done, so a
//! failing test reads like a sentence: which command, which namespace, which daemon, and
//! for daemons the tail of their log.

use std::time::Duration;

/// Result with the lab's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while building or using a lab.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation failed; `what` names the file, socket or process.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A command ran and exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    /// A system call failed (setns, kill, ...).
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: nix::Error,
    },
    /// A condition did not become true in time. `detail` holds the last observation and,
    /// for daemons, the tail of their log.
    #[error("timed out after {waited:?} waiting for {what}{detail}")]
    Timeout {
        what: String,
        waited: Duration,
        detail: String,
    },
    /// A daemon exited while something was waiting on it.
    #[error("{daemon} exited ({status}) while waiting for {what}{detail}")]
    Exited {
        daemon: String,
        status: String,
        what: String,
        detail: String,
    },
    /// Output of a tool, a topology file or a name could not be used.
    #[error("{what}: {detail}")]
    Invalid { what: String, detail: String },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn sys(what: impl Into<String>, source: nix::Error) -> Error {
        Error::Sys {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, detail: impl Into<String>) -> Error {
        Error::Invalid {
            what: what.into(),
            detail: detail.into(),
        }
    }
}
