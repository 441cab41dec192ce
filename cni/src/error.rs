//! The plugin's errors: each one line naming what and where, with the CNI error code it
//! is reported under (the spec's codes below 100, Wren's own from 100).

use std::path::PathBuf;

/// CNI error codes (specification, section "Error"; 100 and up: this plugin's).
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const CONTAINER_UNKNOWN: u32 = 3;
    pub const INVALID_ENVIRONMENT: u32 = 4;
    pub const IO_FAILURE: u32 = 5;
    pub const DECODE_FAILED: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    pub const NOT_AVAILABLE: u32 = 50;
    /// The pod's interface or the host's veth already exists.
    pub const LINK_EXISTS: u32 = 100;
    /// CHECK found the kernel state different from `prevResult`.
    pub const CHECK_FAILED: u32 = 101;
    /// A netlink request or sysctl write failed.
    pub const KERNEL: u32 = 102;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Anything the CNI protocol layer refused (version, command floor, decoding).
    #[error("{message}")]
    Protocol { code: u32, message: String },
    #[error("{0}")]
    Environment(String),
    #[error("network configuration: {0}")]
    Config(String),
    #[error("pod network namespace {}: {reason}", path.display())]
    Netns { path: PathBuf, reason: String },
    #[error("{0}")]
    LinkExists(String),
    #[error("pod MTU: {0}")]
    MtuUnknown(String),
    #[error("pod MTU: {0}")]
    MtuMalformed(String),
    #[error("{what}: {reason}")]
    Kernel { what: String, reason: String },
    /// The delegated IPAM plugin failed or answered with an error (its code is kept).
    #[error("IPAM {plugin}: {message}")]
    Ipam {
        plugin: String,
        code: u32,
        message: String,
    },
    #[error("CHECK: {0}")]
    Check(String),
}

impl Error {
    pub fn code(&self) -> u32 {
        match self {
            Error::Protocol { code, .. } | Error::Ipam { code, .. } => *code,
            Error::Environment(_) => code::INVALID_ENVIRONMENT,
            Error::Config(_) | Error::MtuMalformed(_) => code::INVALID_CONFIG,
            Error::Netns { .. } => code::CONTAINER_UNKNOWN,
            Error::LinkExists(_) => code::LINK_EXISTS,
            Error::MtuUnknown(_) => code::TRY_AGAIN_LATER,
            Error::Kernel { .. } => code::KERNEL,
            Error::Check(_) => code::CHECK_FAILED,
        }
    }

    pub(crate) fn kernel(what: impl Into<String>, reason: impl std::fmt::Display) -> Error {
        Error::Kernel {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

impl From<rscni_types::error::Error> for Error {
    fn from(error: rscni_types::error::Error) -> Error {
        Error::Protocol {
            code: u32::from(&error),
            message: error.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
