//! The errors of the peer library: one enum, each variant naming what failed.

use std::time::Duration;

/// Everything the peer library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A wait ran out of time; `last` is the last observation.
    #[error("timed out after {waited:?} waiting for {what}{last}")]
    Timeout {
        what: String,
        waited: Duration,
        last: String,
    },
    /// The peer's connection is gone (closed by the daemon, or by us).
    #[error("the connection is closed: {0}")]
    Closed(String),
    /// Hex text that does not parse.
    #[error("bad hex: {0}")]
    Hex(String),
    /// A command (bgpctl, ip) failed or printed something unexpected.
    #[error("`{command}`: {detail}")]
    Command { command: String, detail: String },
    /// A table file that does not parse.
    #[error("{file}:{line}: {detail}")]
    Table {
        file: String,
        line: usize,
        detail: String,
    },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// The peer library's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
