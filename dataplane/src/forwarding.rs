//! IP forwarding (issue 15): `net.ipv4.ip_forward = 1`, and
//! `net.ipv6.conf.all.forwarding = 1` when an IPv6 pool exists, in the caller's
//! network namespace (`/proc/sys/net` is the namespace's). A value already 1 is
//! left as it is (nothing written); one someone set back to 0 is set again at the
//! next check.

use std::path::Path;

use crate::error::Error;
use crate::snapshot::Snapshot;

/// IPv4 forwarding.
pub const IPV4: &str = "/proc/sys/net/ipv4/ip_forward";
/// IPv6 forwarding on every interface.
pub const IPV6: &str = "/proc/sys/net/ipv6/conf/all/forwarding";

/// The sysctls `snapshot` needs on: IPv4 always, IPv6 with an IPv6 pool.
pub fn wanted(snapshot: &Snapshot) -> Vec<&'static str> {
    let mut wanted = vec![IPV4];
    if snapshot.pools.iter().any(|pool| pool.cidr.addr().is_ipv6()) {
        wanted.push(IPV6);
    }
    wanted
}

/// Turns on each of `paths` that is not on; returns those it turned on.
pub fn ensure(paths: &[&'static str]) -> Result<Vec<&'static str>, Error> {
    let mut turned_on = Vec::new();
    for path in paths {
        let read = |e| Error::Sysctl {
            path,
            action: "reading",
            source: e,
        };
        if std::fs::read_to_string(Path::new(path))
            .map_err(read)?
            .trim()
            == "1"
        {
            continue;
        }
        std::fs::write(path, "1\n").map_err(|e| Error::Sysctl {
            path,
            action: "writing 1 to",
            source: e,
        })?;
        turned_on.push(*path);
    }
    Ok(turned_on)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::snapshot::Pool;

    #[test]
    fn ipv6_forwarding_only_with_an_ipv6_pool() {
        let pool = |cidr: &str| Pool {
            cidr: cidr.parse().unwrap(),
            nat_outgoing: false,
            vxlan_mode: Default::default(),
            vxlan_vni: 4096,
            vxlan_port: 4789,
        };
        let mut snapshot = Snapshot::default();
        assert_eq!(wanted(&snapshot), [IPV4]);
        snapshot.pools.push(pool("10.244.0.0/16"));
        assert_eq!(wanted(&snapshot), [IPV4]);
        snapshot.pools.push(pool("fd00:244::/48"));
        assert_eq!(wanted(&snapshot), [IPV4, IPV6]);
    }
}
