//! `ipam check`: an audit of the whole store, like `calicoctl ipam check`.
//!
//! It reads every block, affinity and handle record and reports, each with a count:
//! addresses whose handle record does not account for them, handle records that claim
//! addresses that are not allocated, blocks with two owners, affinities without blocks,
//! blocks whose owner has no affinity, and blocks outside every pool. A check only
//! reads; the repairs are made by the allocator's normal operations.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::Ipam;
use crate::error::IpamError;
use crate::keys;
use crate::records::{Affinity, AffinityState, HandleRecord};
use crate::store::Datastore;

/// The kinds of inconsistency `check` looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// An allocated address that no handle record accounts for (leaked).
    AddressWithoutHandle,
    /// A handle record claiming addresses that are not allocated to it.
    HandleWithoutAddress,
    /// A block CIDR with more than one owner.
    BlockWithTwoOwners,
    /// An affinity whose block does not exist (a claim never completed).
    AffinityWithoutBlock,
    /// A block naming an owner that has no confirmed affinity for it.
    BlockWithoutAffinity,
    /// A block that lies in no pool.
    BlockOutsidePools,
}

impl ProblemKind {
    pub const ALL: [ProblemKind; 6] = [
        ProblemKind::AddressWithoutHandle,
        ProblemKind::HandleWithoutAddress,
        ProblemKind::BlockWithTwoOwners,
        ProblemKind::AffinityWithoutBlock,
        ProblemKind::BlockWithoutAffinity,
        ProblemKind::BlockOutsidePools,
    ];

    pub fn description(self) -> &'static str {
        match self {
            ProblemKind::AddressWithoutHandle => "IPs allocated with no handle",
            ProblemKind::HandleWithoutAddress => "handles with no IPs",
            ProblemKind::BlockWithTwoOwners => "blocks with two owners",
            ProblemKind::AffinityWithoutBlock => "affinities without blocks",
            ProblemKind::BlockWithoutAffinity => "blocks without affinities",
            ProblemKind::BlockOutsidePools => "blocks outside every pool",
        }
    }
}

/// One inconsistency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The address, handle, block or affinity concerned.
    pub subject: String,
    pub detail: String,
}

/// The result of a check (JSON: `problems` is the count, `items` the list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub problems: usize,
    pub counts: BTreeMap<ProblemKind, usize>,
    pub items: Vec<Problem>,
    pub pools: usize,
    pub blocks: usize,
    pub affinities: usize,
    pub handles: usize,
    pub addresses: usize,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.problems == 0
    }

    /// The text report, ending "Check complete; found N problems."
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Checking IPAM for inconsistencies...\n");
        let _ = writeln!(out, "Found {} IP pools.", self.pools);
        let _ = writeln!(out, "Found {} IPAM blocks.", self.blocks);
        let _ = writeln!(out, "Found {} block affinities.", self.affinities);
        let _ = writeln!(out, "Found {} handles.", self.handles);
        let _ = writeln!(out, "Found {} IPs allocated.\n", self.addresses);
        for kind in ProblemKind::ALL {
            let count = self.counts.get(&kind).copied().unwrap_or(0);
            let _ = writeln!(out, "Found {count} {}.", kind.description());
            for item in self.items.iter().filter(|p| p.kind == kind) {
                let _ = writeln!(out, "  {}: {}", item.subject, item.detail);
            }
        }
        let _ = writeln!(out, "\nCheck complete; found {} problems.", self.problems);
        out
    }
}

impl<S: Datastore> Ipam<S> {
    /// Audits the store.
    pub async fn check(&self) -> Result<CheckReport, IpamError> {
        let pools = self.pools().await?;
        let blocks = self.blocks().await?;
        let affinities = self.read_all::<Affinity>(keys::AFFINITIES).await?;
        let handles = self.read_all::<HandleRecord>(keys::HANDLES).await?;
        let mut items = Vec::new();
        let mut problem = |kind, subject: String, detail: String| {
            items.push(Problem {
                kind,
                subject,
                detail,
            })
        };

        // Allocations per (handle, block) as the blocks record them.
        let mut allocated: HashMap<(&str, IpNet), u32> = HashMap::new();
        let mut addresses = 0;
        for (_, block) in &blocks {
            for allocation in block.allocations.values() {
                *allocated
                    .entry((allocation.handle.as_str(), block.cidr))
                    .or_insert(0) += 1;
                addresses += 1;
            }
        }
        let recorded: HashMap<(&str, IpNet), u32> = handles
            .iter()
            .flat_map(|(_, h)| {
                h.blocks
                    .iter()
                    .map(|(cidr, count)| ((h.handle.as_str(), *cidr), *count))
            })
            .collect();
        for (_, block) in &blocks {
            for (ordinal, allocation) in &block.allocations {
                let key = (allocation.handle.as_str(), block.cidr);
                let have = allocated.get(&key).copied().unwrap_or(0);
                let want = recorded.get(&key).copied().unwrap_or(0);
                if want < have {
                    problem(
                        ProblemKind::AddressWithoutHandle,
                        block.address(*ordinal).to_string(),
                        format!(
                            "handle {} records {want} of its {have} addresses in block {}",
                            allocation.handle, block.cidr
                        ),
                    );
                }
            }
        }
        for (_, record) in &handles {
            for (cidr, count) in &record.blocks {
                let have = allocated
                    .get(&(record.handle.as_str(), *cidr))
                    .copied()
                    .unwrap_or(0);
                if *count > have {
                    problem(
                        ProblemKind::HandleWithoutAddress,
                        record.handle.clone(),
                        format!("records {count} addresses in block {cidr}, {have} allocated"),
                    );
                }
            }
            if record.blocks.is_empty() {
                problem(
                    ProblemKind::HandleWithoutAddress,
                    record.handle.clone(),
                    String::from("records no address"),
                );
            }
        }

        // Ownership.
        let block_owner: HashMap<IpNet, Option<&str>> = blocks
            .iter()
            .map(|(_, b)| (b.cidr, b.affinity.as_deref()))
            .collect();
        let mut confirmed: BTreeMap<IpNet, Vec<&str>> = BTreeMap::new();
        for (_, affinity) in &affinities {
            match block_owner.get(&affinity.cidr) {
                None => problem(
                    ProblemKind::AffinityWithoutBlock,
                    format!("{} {}", affinity.node, affinity.cidr),
                    format!("{:?} affinity, no block", affinity.state).to_lowercase(),
                ),
                Some(owner) if affinity.state == AffinityState::Confirmed => {
                    confirmed
                        .entry(affinity.cidr)
                        .or_default()
                        .push(&affinity.node);
                    if *owner != Some(affinity.node.as_str()) {
                        problem(
                            ProblemKind::BlockWithTwoOwners,
                            affinity.cidr.to_string(),
                            format!(
                                "node {} has a confirmed affinity, the block names {}",
                                affinity.node,
                                owner.unwrap_or("no owner")
                            ),
                        );
                    }
                }
                Some(_) => {}
            }
        }
        for (cidr, nodes) in &confirmed {
            if nodes.len() > 1 {
                problem(
                    ProblemKind::BlockWithTwoOwners,
                    cidr.to_string(),
                    format!("confirmed affinities of {}", nodes.join(", ")),
                );
            }
        }
        for (_, block) in &blocks {
            if let Some(owner) = &block.affinity {
                if !confirmed
                    .get(&block.cidr)
                    .is_some_and(|n| n.contains(&owner.as_str()))
                {
                    problem(
                        ProblemKind::BlockWithoutAffinity,
                        block.cidr.to_string(),
                        format!("owner {owner} has no confirmed affinity"),
                    );
                }
            }
            if !pools.iter().any(|p| {
                p.cidr.contains(&block.cidr.network()) && block.cidr.prefix_len() == p.block_size
            }) {
                problem(
                    ProblemKind::BlockOutsidePools,
                    block.cidr.to_string(),
                    String::from("no pool with this block size contains it"),
                );
            }
        }

        let mut counts = BTreeMap::new();
        for item in &items {
            *counts.entry(item.kind).or_insert(0) += 1;
        }
        Ok(CheckReport {
            problems: items.len(),
            counts,
            items,
            pools: pools.len(),
            blocks: blocks.len(),
            affinities: affinities.len(),
            handles: handles.len(),
            addresses,
        })
    }
}
