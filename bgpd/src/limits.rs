//! The process' limit of open files (`RLIMIT_NOFILE`): every BGP session holds a
//! socket, and a systemd service or a container starts with a soft limit of 1024, too
//! few for a route reflector of thousands of clients.
//!
//! At start bgpd raises its soft limit to the hard limit (as Go's runtime does for
//! every Go program since 1.19: bgpd uses epoll, never `select`, so a high limit costs
//! nothing), then compares it with the sessions the configuration allows: the
//! configured neighbors plus each listen range's `max_neighbors`, and
//! [`RESERVED_FILES`] for everything else. When they could exceed it, one line says so,
//! naming the limit.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use crate::config::Config;

/// Files bgpd keeps open besides its sessions: listeners, netlink and control
/// sockets, control clients, the datastore's and the API server's connections, the
/// metrics listener and its clients, logs.
pub const RESERVED_FILES: u64 = 128;

/// The limit before and after [`raise_open_files`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFiles {
    pub before: u64,
    pub now: u64,
}

/// Raises the soft limit of open files to the hard limit.
pub fn raise_open_files() -> Result<OpenFiles, String> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|error| format!("open files: cannot read RLIMIT_NOFILE: {error}"))?;
    if soft >= hard {
        return Ok(OpenFiles {
            before: soft,
            now: soft,
        });
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(|error| {
        format!("open files: cannot raise the soft RLIMIT_NOFILE from {soft} to the hard limit {hard}: {error}")
    })?;
    Ok(OpenFiles {
        before: soft,
        now: hard,
    })
}

/// The BGP sessions `config` allows at once: its neighbors, plus each listen range's
/// `max_neighbors` (a range without it is not bounded, and not counted).
pub fn sessions_allowed(config: &Config) -> u64 {
    let neighbors = config.bgp.neighbors.len() as u64;
    let ranges: u64 = config
        .bgp
        .listen_ranges
        .iter()
        .filter_map(|range| range.max_neighbors)
        .map(u64::from)
        .sum();
    neighbors + ranges
}

/// The line to log when `sessions` sessions and [`RESERVED_FILES`] could exceed the
/// open files `limit`; `None` when they fit.
pub fn shortfall(limit: u64, sessions: u64) -> Option<String> {
    let needed = sessions.saturating_add(RESERVED_FILES);
    (needed > limit).then(|| {
        format!(
            "open files: the limit (RLIMIT_NOFILE) is {limit}, but the configuration allows {sessions} BGP sessions (neighbors and listen ranges' max_neighbors), which with about {RESERVED_FILES} other files need {needed}; sessions past the limit will be refused: raise the hard limit (systemd LimitNOFILE=, ulimit -Hn, the container runtime's nofile)"
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sessions_and_the_limit() {
        let config = Config::parse(
            r#"
[bgp]
asn = 64512
router_id = "10.0.0.1"
[[bgp.neighbor]]
address = "10.0.0.2"
remote_asn = 64512
[[bgp.listen_range]]
prefix = "10.1.0.0/16"
remote_asn = 64512
max_neighbors = 5000
[[bgp.listen_range]]
prefix = "10.2.0.0/16"
remote_asn = 64512
"#,
            "test.toml",
        )
        .unwrap();
        assert_eq!(sessions_allowed(&config), 5001);
        let line = shortfall(1024, 5001).unwrap();
        assert!(line.contains("is 1024"), "{line}");
        assert!(line.contains("5001 BGP sessions"), "{line}");
        assert!(line.contains("need 5129"), "{line}");
        assert_eq!(shortfall(1_048_576, 5001), None);
        assert_eq!(shortfall(5129, 5001), None);
    }
}
