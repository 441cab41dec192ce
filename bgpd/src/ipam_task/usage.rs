//! What the node uses of each pool, for its metrics: its blocks, the addresses
//! allocated in them, and the addresses it borrowed from other nodes' blocks. A
//! pure function of one read of the node's allocations ([`ipam::Ipam::node_allocations`],
//! which the IPAM task makes at each synchronisation anyway) and the pools.

use ipam::NodeAllocations;
use ipnet::IpNet;

/// The node's use of one pool.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolUsage {
    pub pool: IpNet,
    /// Blocks of the pool the node owns.
    pub blocks: u64,
    /// Addresses allocated in those blocks (its own pods' and the ones other
    /// nodes borrowed).
    pub in_use: u64,
    /// Addresses of the pool this node's pods borrowed from other nodes' blocks.
    pub borrowed: u64,
}

/// One entry per pool, in the pools' order.
pub fn usage(pools: &[ipam::Pool], allocations: &NodeAllocations) -> Vec<PoolUsage> {
    pools
        .iter()
        .map(|pool| {
            let mut usage = PoolUsage {
                pool: pool.cidr,
                ..PoolUsage::default()
            };
            for (block, in_use) in &allocations.in_use {
                if pool.cidr.contains(&block.network()) {
                    usage.blocks += 1;
                    usage.in_use += u64::from(*in_use);
                }
            }
            usage.borrowed = allocations
                .borrowed
                .iter()
                .filter(|address| pool.cidr.contains(*address))
                .count() as u64;
            usage
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pool(cidr: &str) -> ipam::Pool {
        ipam::Pool::new(cidr.parse().unwrap())
    }

    #[test]
    fn blocks_and_addresses_fall_in_their_pool() {
        let pools = [pool("10.244.0.0/16"), pool("10.245.0.0/16")];
        let allocations = NodeAllocations {
            node: "n".into(),
            blocks: [
                "10.244.0.0/26".parse().unwrap(),
                "10.244.0.64/26".parse().unwrap(),
            ]
            .into(),
            borrowed: ["10.245.1.7".parse().unwrap()].into(),
            in_use: [
                ("10.244.0.0/26".parse().unwrap(), 5),
                ("10.244.0.64/26".parse().unwrap(), 2),
            ]
            .into(),
            revision: 1,
        };
        let usage = usage(&pools, &allocations);
        assert_eq!(
            usage,
            [
                PoolUsage {
                    pool: "10.244.0.0/16".parse().unwrap(),
                    blocks: 2,
                    in_use: 7,
                    borrowed: 0
                },
                PoolUsage {
                    pool: "10.245.0.0/16".parse().unwrap(),
                    blocks: 0,
                    in_use: 0,
                    borrowed: 1
                },
            ]
        );
    }
}
