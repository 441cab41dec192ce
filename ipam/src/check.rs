//! `ipam check`: an audit of the whole store, like `calicoctl ipam check`.
//!
//! [`Ipam::check`] reads the store once, at one revision (a [`Snapshot`]), and
//! [`audit`] reports on that snapshot alone, each with a count: addresses whose
//! handle record does not account for them, handle records that claim addresses that
//! are not allocated, blocks with two owners, affinities without blocks, blocks whose
//! owner has no affinity, and blocks outside every pool. A check only reads; the
//! repairs are made by the allocator's normal operations.
//!
//! Every allocator write is one transaction, so a snapshot never holds half of one.
//! The one state that is consistent and still looks like a problem is a block claim
//! between its two phases (a pending affinity without its block, see `claim.rs`):
//! when a snapshot has one, the check waits [`CLAIM_GRACE`] and audits a second
//! snapshot, in which a pending affinity without a block counts only when it was
//! already there, unchanged, in the first (a claim whose process died).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::Ipam;
use crate::error::IpamError;
use crate::records::{Affinity, AffinityState};
use crate::snapshot::{Snapshot, Stored};
use crate::store::Datastore;

/// How long a block claim may stay between its two phases before `check` reports
/// it (the phases are consecutive transactions of one operation).
pub const CLAIM_GRACE: Duration = Duration::from_secs(2);

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
    /// Audits the store at one revision (two snapshots [`CLAIM_GRACE`] apart when a
    /// block claim was under way in the first).
    pub async fn check(&self) -> Result<CheckReport, IpamError> {
        let first = self.snapshot().await?;
        if first.pending_without_block().next().is_none() {
            return Ok(audit(&first, None));
        }
        tokio::time::sleep(CLAIM_GRACE).await;
        let second = self.snapshot().await?;
        Ok(audit(&second, Some(&first)))
    }
}

/// The problems in `snapshot`. A pending affinity without its block is a problem
/// unless `earlier` is given and did not hold it at the same revision (a claim that
/// started since, still under way). Reads nothing but its arguments.
pub fn audit(snapshot: &Snapshot, earlier: Option<&Snapshot>) -> CheckReport {
    let mut items = Vec::new();
    let allocated = allocations_per_handle(snapshot);
    addresses_without_handle(snapshot, &allocated, &mut items);
    handles_without_addresses(snapshot, &allocated, &mut items);
    let owners = block_owners(snapshot);
    let confirmed = confirmed_owners(snapshot, &owners);
    affinities_without_blocks(snapshot, earlier, &owners, &mut items);
    blocks_with_two_owners(snapshot, &owners, &confirmed, &mut items);
    blocks_without_affinity(snapshot, &confirmed, &mut items);
    blocks_outside_pools(snapshot, &mut items);
    let mut counts = BTreeMap::new();
    for item in &items {
        *counts.entry(item.kind).or_insert(0) += 1;
    }
    CheckReport {
        problems: items.len(),
        counts,
        items,
        pools: snapshot.pools.len(),
        blocks: snapshot.blocks.len(),
        affinities: snapshot.affinities.len(),
        handles: snapshot.handles.len(),
        addresses: snapshot
            .blocks
            .iter()
            .map(|b| b.value.allocations.len())
            .sum(),
    }
}

fn problem(items: &mut Vec<Problem>, kind: ProblemKind, subject: String, detail: String) {
    items.push(Problem {
        kind,
        subject,
        detail,
    });
}

/// Addresses per (handle, block) as the blocks record them.
fn allocations_per_handle(snapshot: &Snapshot) -> HashMap<(&str, IpNet), u32> {
    let mut allocated = HashMap::new();
    for block in &snapshot.blocks {
        for allocation in block.value.allocations.values() {
            *allocated
                .entry((allocation.handle.as_str(), block.value.cidr))
                .or_insert(0) += 1;
        }
    }
    allocated
}

/// Allocated addresses beyond what their handle's record counts in that block.
fn addresses_without_handle(
    snapshot: &Snapshot,
    allocated: &HashMap<(&str, IpNet), u32>,
    items: &mut Vec<Problem>,
) {
    let recorded: HashMap<(&str, IpNet), u32> = snapshot
        .handles
        .iter()
        .flat_map(|h| {
            let handle = h.value.handle.as_str();
            h.value
                .blocks
                .iter()
                .map(move |(cidr, count)| ((handle, *cidr), *count))
        })
        .collect();
    for block in &snapshot.blocks {
        let block = &block.value;
        for (ordinal, allocation) in &block.allocations {
            let key = (allocation.handle.as_str(), block.cidr);
            let have = allocated.get(&key).copied().unwrap_or(0);
            let want = recorded.get(&key).copied().unwrap_or(0);
            if want < have {
                problem(
                    items,
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
}

/// Handle records that count more addresses in a block than the block holds for
/// them, or none at all.
fn handles_without_addresses(
    snapshot: &Snapshot,
    allocated: &HashMap<(&str, IpNet), u32>,
    items: &mut Vec<Problem>,
) {
    for record in &snapshot.handles {
        let record = &record.value;
        for (cidr, count) in &record.blocks {
            let have = allocated
                .get(&(record.handle.as_str(), *cidr))
                .copied()
                .unwrap_or(0);
            if *count > have {
                problem(
                    items,
                    ProblemKind::HandleWithoutAddress,
                    record.handle.clone(),
                    format!("records {count} addresses in block {cidr}, {have} allocated"),
                );
            }
        }
        if record.blocks.is_empty() {
            problem(
                items,
                ProblemKind::HandleWithoutAddress,
                record.handle.clone(),
                String::from("records no address"),
            );
        }
    }
}

/// Each block's owner as the block names it.
fn block_owners(snapshot: &Snapshot) -> HashMap<IpNet, Option<&str>> {
    snapshot
        .blocks
        .iter()
        .map(|b| (b.value.cidr, b.value.affinity.as_deref()))
        .collect()
}

/// The nodes with a confirmed affinity for each existing block.
fn confirmed_owners<'a>(
    snapshot: &'a Snapshot,
    owners: &HashMap<IpNet, Option<&str>>,
) -> BTreeMap<IpNet, Vec<&'a str>> {
    let mut confirmed: BTreeMap<IpNet, Vec<&str>> = BTreeMap::new();
    for affinity in &snapshot.affinities {
        let affinity = &affinity.value;
        if owners.contains_key(&affinity.cidr) && affinity.state == AffinityState::Confirmed {
            confirmed
                .entry(affinity.cidr)
                .or_default()
                .push(&affinity.node);
        }
    }
    confirmed
}

/// Affinities whose block does not exist; a pending one only when it is not a claim
/// still under way (see [`audit`]).
fn affinities_without_blocks(
    snapshot: &Snapshot,
    earlier: Option<&Snapshot>,
    owners: &HashMap<IpNet, Option<&str>>,
    items: &mut Vec<Problem>,
) {
    let unchanged_since = |affinity: &Stored<Affinity>| {
        earlier.is_none_or(|earlier| {
            earlier
                .pending_without_block()
                .any(|e| e.key == affinity.key && e.revision == affinity.revision)
        })
    };
    for affinity in &snapshot.affinities {
        if owners.contains_key(&affinity.value.cidr) {
            continue;
        }
        if affinity.value.state == AffinityState::Pending && !unchanged_since(affinity) {
            continue;
        }
        problem(
            items,
            ProblemKind::AffinityWithoutBlock,
            format!("{} {}", affinity.value.node, affinity.value.cidr),
            format!("{:?} affinity, no block", affinity.value.state).to_lowercase(),
        );
    }
}

/// Blocks with a confirmed affinity of a node other than the block's owner, and
/// blocks with several confirmed affinities.
fn blocks_with_two_owners(
    snapshot: &Snapshot,
    owners: &HashMap<IpNet, Option<&str>>,
    confirmed: &BTreeMap<IpNet, Vec<&str>>,
    items: &mut Vec<Problem>,
) {
    for affinity in snapshot.affinities.iter().map(|a| &a.value) {
        if affinity.state != AffinityState::Confirmed {
            continue;
        }
        if let Some(owner) = owners.get(&affinity.cidr)
            && *owner != Some(affinity.node.as_str())
        {
            problem(
                items,
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
    for (cidr, nodes) in confirmed {
        if nodes.len() > 1 {
            problem(
                items,
                ProblemKind::BlockWithTwoOwners,
                cidr.to_string(),
                format!("confirmed affinities of {}", nodes.join(", ")),
            );
        }
    }
}

/// Blocks whose owner has no confirmed affinity for them.
fn blocks_without_affinity(
    snapshot: &Snapshot,
    confirmed: &BTreeMap<IpNet, Vec<&str>>,
    items: &mut Vec<Problem>,
) {
    for block in snapshot.blocks.iter().map(|b| &b.value) {
        let Some(owner) = &block.affinity else {
            continue;
        };
        if !confirmed
            .get(&block.cidr)
            .is_some_and(|n| n.contains(&owner.as_str()))
        {
            problem(
                items,
                ProblemKind::BlockWithoutAffinity,
                block.cidr.to_string(),
                format!("owner {owner} has no confirmed affinity"),
            );
        }
    }
}

/// Blocks that no pool with their block size contains.
fn blocks_outside_pools(snapshot: &Snapshot, items: &mut Vec<Problem>) {
    for block in snapshot.blocks.iter().map(|b| &b.value) {
        let in_a_pool = snapshot.pools.iter().any(|p| {
            p.cidr.contains(&block.cidr.network()) && block.cidr.prefix_len() == p.block_size
        });
        if !in_a_pool {
            problem(
                items,
                ProblemKind::BlockOutsidePools,
                block.cidr.to_string(),
                String::from("no pool with this block size contains it"),
            );
        }
    }
}
