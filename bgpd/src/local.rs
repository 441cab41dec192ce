//! Local route sources: the routes this node originates, as
//! [`LocalChange`](crate::tasks::LocalChange)s for the rib task.
//!
//! - Configured networks (`[[bgp.network]]`): [`config_routes`] gives the whole set
//!   as one `Replace`; the rib task applies it at start and after each reload itself.
//! - IPAM (the task in [`crate::ipam_task::source`]): [`ipam_block`] for a block this
//!   node owns (announced, and blackholed in the kernel so unassigned addresses are
//!   dropped here rather than routed away), [`ipam_borrowed`] for a single address
//!   borrowed from another node's block (announced as a host route, not blackholed;
//!   the owner installs it over its blackhole as the more specific route).
//!
//! Locally originated routes get ORIGIN IGP, an empty AS path (our AS is prepended
//! when they are exported to eBGP) and our session address as next hop.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::Config;
use crate::tasks::{LocalChange, LocalRoute, LocalSource};

/// Every configured network, as one replacement of the `Config` source.
pub fn config_routes(config: &Config) -> LocalChange {
    LocalChange::Replace {
        source: LocalSource::Config,
        routes: config
            .bgp
            .networks
            .iter()
            .map(|network| LocalRoute {
                prefix: network.prefix.trunc(),
                source: LocalSource::Config,
                communities: network.communities.iter().map(|c| c.0).collect(),
                blackhole: false,
            })
            .collect(),
    }
}

/// A block this node owns in IPAM: announced and blackholed.
pub fn ipam_block(prefix: IpNet, communities: Vec<u32>) -> LocalRoute {
    LocalRoute {
        prefix: prefix.trunc(),
        source: LocalSource::IpamBlock,
        communities,
        blackhole: true,
    }
}

/// An address borrowed from another node's block: announced as a host route.
pub fn ipam_borrowed(address: IpAddr, communities: Vec<u32>) -> LocalRoute {
    LocalRoute {
        prefix: IpNet::from(address),
        source: LocalSource::IpamBorrowed,
        communities,
        blackhole: false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn configured_networks_become_one_replacement() {
        let config: Config = toml::from_str(
            r#"
            [bgp]
            asn = 64512
            router_id = "10.0.0.1"
            [[bgp.network]]
            prefix = "10.1.0.7/24"
            communities = ["65000:1", "no-export"]
            [[bgp.network]]
            prefix = "fd00:1::/64"
            "#,
        )
        .unwrap();
        let LocalChange::Replace { source, routes } = config_routes(&config) else {
            panic!("not a replacement");
        };
        assert_eq!(source, LocalSource::Config);
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].prefix, "10.1.0.0/24".parse::<IpNet>().unwrap());
        assert_eq!(routes[0].communities, vec![0xfde8_0001, 0xffff_ff01]);
        assert!(!routes[0].blackhole);
        assert_eq!(routes[1].prefix, "fd00:1::/64".parse::<IpNet>().unwrap());

        let block = ipam_block("10.244.1.70/26".parse().unwrap(), vec![]);
        assert_eq!(block.prefix, "10.244.1.64/26".parse::<IpNet>().unwrap());
        assert!(block.blackhole);
        let borrowed = ipam_borrowed("10.244.2.5".parse().unwrap(), vec![]);
        assert_eq!(borrowed.prefix, "10.244.2.5/32".parse::<IpNet>().unwrap());
        assert_eq!(borrowed.source, LocalSource::IpamBorrowed);
    }
}
