//! The dataplane's errors: each one line naming what failed and where.

use std::io;
use std::path::PathBuf;

/// A failure of the dataplane.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("dataplane: {context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("dataplane: {context}: the kernel said {message}")]
    Netlink {
        context: &'static str,
        message: String,
    },
    #[error("dataplane: nftables: {action}: nft is not installed (apt-get install nftables)")]
    NftNotFound { action: &'static str },
    #[error("dataplane: nftables: {action}: {message}")]
    Nft {
        action: &'static str,
        message: String,
    },
    #[error("dataplane: {device}: {problem}")]
    Overlay {
        device: &'static str,
        problem: String,
    },
    #[error("dataplane: {device}: {action}: the kernel said {message}")]
    Kernel {
        device: &'static str,
        action: String,
        message: String,
    },
    #[error("dataplane: {action} {path}: {source}")]
    Sysctl {
        path: &'static str,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("dataplane: writing the pod MTU to {}: {source}", path.display())]
    MtuFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "dataplane: [dataplane] mtu = {wanted} is larger than the parent device allows: {interface} has MTU {host}, which leaves {allowed} for pods{overhead}"
    )]
    MtuTooLarge {
        wanted: u32,
        interface: String,
        host: u32,
        allowed: u32,
        /// " after the VXLAN header (50 bytes)" or empty.
        overhead: String,
    },
}

impl Error {
    pub(crate) fn io(context: &'static str, source: io::Error) -> Error {
        Error::Io { context, source }
    }
}
