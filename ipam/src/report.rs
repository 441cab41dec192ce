//! `show ipam`: pool and block usage (what calicoctl's `ipam show --show-blocks`
//! tabulates; bgpctl prints the tables), borrowed addresses, and what one address is
//! used for.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::Ipam;
use crate::error::IpamError;
use crate::store::Datastore;

/// Usage of every pool and block (JSON: `pools`, `blocks`, `borrowed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    pub pools: Vec<Usage>,
    pub blocks: Vec<Usage>,
    pub borrowed: Vec<AddressInfo>,
}

/// One row: a pool or a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub cidr: IpNet,
    pub total: u128,
    pub in_use: u128,
    pub free: u128,
    /// The owner of a block (`None` for pools and ownerless blocks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Pools only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// What an allocated address belongs to (`show ipam --ip ADDR`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressInfo {
    pub address: IpAddr,
    pub handle: String,
    /// The node using the address (its borrower, else the block's owner).
    pub node: Option<String>,
    pub block: IpNet,
    pub block_owner: Option<String>,
    pub borrowed: bool,
    pub sequence: u64,
}

impl AddressInfo {
    /// `show ipam --ip ADDR`: one `key: value` line each.
    pub fn render(&self) -> String {
        format!(
            "IP:          {}\nHandle:      {}\nNode:        {}\nBlock:       {}\nBlock owner: {}\nBorrowed:    {}\nSequence:    {}\n",
            self.address,
            self.handle,
            self.node.as_deref().unwrap_or("(none)"),
            self.block,
            self.block_owner.as_deref().unwrap_or("(none)"),
            if self.borrowed { "yes" } else { "no" },
            self.sequence,
        )
    }
}

impl<S: Datastore> Ipam<S> {
    /// Usage of every pool and block, and the borrowed addresses.
    pub async fn usage(&self) -> Result<UsageReport, IpamError> {
        let pools = self.pools().await?;
        let blocks = self.blocks().await?;
        let mut report = UsageReport {
            pools: Vec::new(),
            blocks: Vec::new(),
            borrowed: Vec::new(),
        };
        for pool in &pools {
            let in_use: u128 = blocks
                .iter()
                .filter(|(_, b)| pool.cidr.contains(&b.cidr.network()))
                .map(|(_, b)| u128::from(b.in_use()))
                .sum();
            report.pools.push(Usage {
                cidr: pool.cidr,
                total: pool.size(),
                in_use,
                free: pool.size().saturating_sub(in_use),
                node: None,
                disabled: Some(pool.disabled),
            });
        }
        let mut sorted: Vec<_> = blocks.iter().map(|(_, b)| b).collect();
        sorted.sort_by_key(|a| a.cidr);
        for block in sorted {
            report.blocks.push(Usage {
                cidr: block.cidr,
                total: u128::from(block.size()),
                in_use: u128::from(block.in_use()),
                free: u128::from(block.free()),
                node: block.affinity.clone(),
                disabled: None,
            });
            for (ordinal, allocation) in &block.allocations {
                if allocation.borrower.is_some() {
                    report
                        .borrowed
                        .push(address_info(block, *ordinal, allocation));
                }
            }
        }
        Ok(report)
    }

    /// What an address is allocated to; `None` when it is free.
    pub async fn address_info(&self, address: IpAddr) -> Result<Option<AddressInfo>, IpamError> {
        let pools = self.pools().await?;
        let cidr = pools
            .iter()
            .find_map(|p| p.block_containing(&address))
            .ok_or(IpamError::NotInPool(address))?;
        let Some((_, block)) = self.block(&cidr).await? else {
            return Ok(None);
        };
        Ok(block.ordinal(&address).and_then(|ordinal| {
            block
                .allocations
                .get(&ordinal)
                .map(|allocation| address_info(&block, ordinal, allocation))
        }))
    }
}

fn address_info(
    block: &crate::block::Block,
    ordinal: u32,
    allocation: &crate::block::Allocation,
) -> AddressInfo {
    AddressInfo {
        address: block.address(ordinal),
        handle: allocation.handle.clone(),
        node: block.user_of(allocation).map(str::to_string),
        block: block.cidr,
        block_owner: block.affinity.clone(),
        borrowed: allocation.borrower.is_some(),
        sequence: allocation.sequence,
    }
}
