//! Errors: `Error` for the syncer as a whole (sockets, dumps, a stopped
//! task) and `RouteError` for one route the kernel refused or that could not
//! be resolved. A `RouteError` never stops other routes; it is kept in the
//! snapshot as a one-line reason naming the route.

use std::fmt;
use std::io;
use std::net::IpAddr;

use ipnet::IpNet;

/// A failure of the syncer itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("route-sync: invalid config: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("route-sync: {context}: permission denied; route-sync needs CAP_NET_ADMIN")]
    Permission { context: &'static str },
    #[error("route-sync: {context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("route-sync: {context}: kernel said {message}")]
    Kernel {
        context: &'static str,
        message: String,
    },
    #[error("route-sync: cannot decode a kernel message while {context}: {detail}")]
    Decode {
        context: &'static str,
        detail: String,
    },
    #[error("route-sync: the kernel did not answer within {seconds} s while {context}")]
    Timeout { context: &'static str, seconds: u64 },
    #[error("route-sync: the syncer task has stopped")]
    Stopped,
}

impl Error {
    /// Wraps an I/O error, naming missing privileges plainly.
    pub(crate) fn io(context: &'static str, source: io::Error) -> Error {
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => Error::Permission { context },
            _ => Error::Io { context, source },
        }
    }
}

/// What route-sync was doing when the kernel refused a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Add,
    Replace,
    Delete,
}

/// Why one route is not (or not exactly) in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// A gateway has no usable route in the kernel.
    Unresolvable {
        prefix: IpNet,
        gateway: IpAddr,
        why: String,
    },
    /// A named device does not exist.
    UnknownDevice { prefix: IpNet, device: String },
    /// An IPv6 route through an IPv4 gateway (the kernel has no RFC 5549
    /// form for it; the other way round is installed with RTA_VIA).
    FamilyMismatch { prefix: IpNet, gateway: IpAddr },
    /// A unicast route without next hops.
    NoNextHop { prefix: IpNet },
    /// The kernel answered a request with an error.
    Kernel {
        operation: Operation,
        route: String,
        table: u32,
        metric: u32,
        errno: i32,
        detail: Option<String>,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::Unresolvable {
                prefix,
                gateway,
                why,
            } => write!(
                f,
                "{prefix}: next hop {gateway} is unresolvable: {why}; not installed"
            ),
            RouteError::UnknownDevice { prefix, device } => {
                write!(f, "{prefix}: device {device} does not exist; not installed")
            }
            RouteError::FamilyMismatch { prefix, gateway } => write!(
                f,
                "{prefix}: IPv4 next hop {gateway} for an IPv6 route; not installed"
            ),
            RouteError::NoNextHop { prefix } => {
                write!(f, "{prefix}: unicast route without next hop; not installed")
            }
            RouteError::Kernel {
                operation,
                route,
                table,
                metric,
                errno,
                detail,
            } => {
                let verb = match operation {
                    Operation::Add => "add",
                    Operation::Replace => "replace",
                    Operation::Delete => "delete",
                };
                write!(
                    f,
                    "{verb} {route}: {}",
                    explain(*operation, *errno, *table, *metric)
                )?;
                write!(f, " ({})", errno_name(*errno))?;
                if let Some(detail) = detail {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for RouteError {}

/// A plain sentence for the errors the kernel gives for routes.
fn explain(operation: Operation, errno: i32, table: u32, metric: u32) -> String {
    match (operation, errno) {
        (Operation::Add, libc::EEXIST) => format!(
            "a route with this prefix and metric {metric} already exists in table {table} \
             (another protocol's or a manual one)"
        ),
        (_, libc::ENETUNREACH) => "the gateway is not on a connected network".into(),
        (_, libc::EHOSTUNREACH) => "the gateway is not reachable".into(),
        (Operation::Delete, libc::ESRCH) => format!("no such route in table {table}"),
        (_, libc::ESRCH) => format!("no such route in table {table}"),
        (_, libc::EPERM) | (_, libc::EACCES) => {
            "permission denied; route-sync needs CAP_NET_ADMIN".into()
        }
        (_, libc::ENODEV) => "the device does not exist".into(),
        (_, libc::EINVAL) => "the kernel rejected the route as invalid".into(),
        (_, libc::ENOBUFS) | (_, libc::ENOMEM) => "the kernel is out of memory".into(),
        (_, libc::EAFNOSUPPORT) => "the address family is not supported (IPv6 disabled?)".into(),
        _ => io::Error::from_raw_os_error(errno).to_string(),
    }
}

/// The symbolic name of an errno value.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOBUFS => "ENOBUFS",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EBUSY => "EBUSY",
        _ => return format!("errno {errno}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(operation: Operation, errno: i32) -> String {
        RouteError::Kernel {
            operation,
            route: "10.1.0.0/24 via 10.0.0.9 dev eth0".into(),
            table: 254,
            metric: 20,
            errno,
            detail: None,
        }
        .to_string()
    }

    #[test]
    fn kernel_errors_are_one_line_and_name_the_route() {
        let exists = kernel(Operation::Add, libc::EEXIST);
        assert!(exists.starts_with("add 10.1.0.0/24 via 10.0.0.9 dev eth0: a route"));
        assert!(exists.ends_with("(EEXIST)"));
        assert!(
            kernel(Operation::Add, libc::ENETUNREACH)
                .contains("not on a connected network (ENETUNREACH)")
        );
        assert!(kernel(Operation::Delete, libc::ESRCH).starts_with("delete 10.1.0.0/24"));
        assert!(kernel(Operation::Replace, libc::EPERM).contains("CAP_NET_ADMIN (EPERM)"));
        for errno in [
            libc::EEXIST,
            libc::ENETUNREACH,
            libc::ESRCH,
            libc::EPERM,
            9999,
        ] {
            assert!(!kernel(Operation::Add, errno).contains('\n'));
        }
    }

    #[test]
    fn permission_errors_name_the_capability() {
        let error = Error::io(
            "opening the netlink socket",
            io::Error::from_raw_os_error(libc::EPERM),
        );
        assert!(error.to_string().contains("CAP_NET_ADMIN"));
    }
}
