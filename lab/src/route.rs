//! Address families as each peer daemon spells them, and queries of a namespace's kernel
//! routing table (`ip -j route show`), for tests that check what reached the FIB.

use serde_json::Value;

use crate::error::Result;
use crate::netns::Netns;

/// An address family (unicast).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    /// The family of an address or prefix written as text (IPv6 has a ':').
    pub fn of(address: &str) -> Family {
        if address.contains(':') {
            Family::Ipv6
        } else {
            Family::Ipv4
        }
    }

    /// FRR's words: `ipv4 unicast`.
    pub fn frr(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4 unicast",
            Family::Ipv6 => "ipv6 unicast",
        }
    }

    /// The key FRR's `show bgp summary json` uses: `ipv4Unicast`.
    pub fn frr_summary_key(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4Unicast",
            Family::Ipv6 => "ipv6Unicast",
        }
    }

    /// GoBGP's `-a` value: `ipv4`.
    pub fn gobgp(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }

    /// The `ip` flag: `-4`.
    pub fn ip_flag(self) -> &'static str {
        match self {
            Family::Ipv4 => "-4",
            Family::Ipv6 => "-6",
        }
    }
}

impl Netns {
    /// `ip -j -4|-6 route show ARGS...` in this namespace, parsed (an array of routes, each
    /// with `dst`, `gateway`, `dev`, `protocol`, `nexthops`, ...).
    pub fn routes(&self, family: Family, args: &[&str]) -> Result<Value> {
        let mut all = vec![family.ip_flag(), "route", "show"];
        all.extend_from_slice(args);
        self.ip_json(&all)
    }

    /// The kernel's route for exactly `prefix` in the main table, if any. `ip` prints host
    /// routes without their length, so `10.0.0.1/32` matches `dst: "10.0.0.1"`.
    pub fn route(&self, prefix: &str) -> Result<Option<Value>> {
        let routes = self.routes(Family::of(prefix), &["exact", prefix])?;
        Ok(routes.as_array().and_then(|routes| routes.first().cloned()))
    }

    /// The destinations (`dst`) of the kernel routes matching `args`, in the order `ip` gives.
    pub fn route_destinations(&self, family: Family, args: &[&str]) -> Result<Vec<String>> {
        let routes = self.routes(family, args)?;
        Ok(routes
            .as_array()
            .map(|routes| {
                routes
                    .iter()
                    .filter_map(|route| route["dst"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// The gateways of a route as `ip -j route` prints it: its `gateway`, or each
/// `nexthops[].gateway` (ECMP), sorted.
pub fn gateways(route: &Value) -> Vec<String> {
    let mut gateways: Vec<String> = match route["nexthops"].as_array() {
        Some(hops) => hops
            .iter()
            .filter_map(|hop| hop["gateway"].as_str().map(str::to_owned))
            .collect(),
        None => route["gateway"]
            .as_str()
            .map(str::to_owned)
            .into_iter()
            .collect(),
    };
    gateways.sort();
    gateways
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_of_text() {
        assert_eq!(Family::of("10.0.0.0/24"), Family::Ipv4);
        assert_eq!(Family::of("fd00::/64"), Family::Ipv6);
        assert_eq!(Family::Ipv6.frr(), "ipv6 unicast");
        assert_eq!(Family::Ipv4.frr_summary_key(), "ipv4Unicast");
    }

    #[test]
    fn gateways_of_single_and_multipath_routes() {
        let single = serde_json::json!({"dst": "10.1.0.0/24", "gateway": "10.0.0.2"});
        assert_eq!(gateways(&single), ["10.0.0.2"]);
        let ecmp = serde_json::json!({"dst": "10.1.0.0/24", "nexthops": [
            {"gateway": "10.0.0.3"}, {"gateway": "10.0.0.2"}]});
        assert_eq!(gateways(&ecmp), ["10.0.0.2", "10.0.0.3"]);
        let blackhole = serde_json::json!({"dst": "10.1.0.0/24", "type": "blackhole"});
        assert!(gateways(&blackhole).is_empty());
    }
}
