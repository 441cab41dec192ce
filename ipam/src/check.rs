//! `ipam check`: an audit of the whole store, like `calicoctl ipam check`.
//!
//! [`Ipam::check`] reads the store once, at one revision (a [`Snapshot`]), and
//! [`audit`] reports on that snapshot alone, each with a count: addresses whose
//! handle record does not account for them, handle records that claim addresses that
//! are not allocated, blocks with two owners, affinities without blocks, blocks whose
//! owner has no affinity, and blocks outside every pool. A check only reads; the
//! repairs are made by the allocator's normal operations.
//!
//! Every allocator write is one key's compare-and-swap (see `store/mod.rs`), so an
//! operation under way shows between its writes: a claim as a pending affinity
//! without its block, or a block whose affinity is not confirmed yet; an assignment
//! as a handle listing an address its block does not hold yet; a release as the
//! reverse. When a snapshot has a problem, the check waits [`CLAIM_GRACE`] and audits
//! a second snapshot, and reports only the problems found in both (an operation whose
//! process stopped; the next operation repairs it).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::Ipam;
use crate::error::IpamError;
pub use crate::problem::{Problem, ProblemKind};
use crate::records::{AffinityState, HandleRecord};
use crate::snapshot::Snapshot;
use crate::store::Datastore;

/// How long an operation may stay between two of its writes before `check` reports
/// what it left (the writes are consecutive requests of one operation).
pub const CLAIM_GRACE: Duration = Duration::from_secs(2);

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
    /// Audits the store at one revision (two snapshots [`CLAIM_GRACE`] apart when the
    /// first shows a problem).
    pub async fn check(&self) -> Result<CheckReport, IpamError> {
        let first = self.snapshot().await?;
        if audit(&first, None).is_clean() {
            return Ok(audit(&first, None));
        }
        tokio::time::sleep(CLAIM_GRACE).await;
        let second = self.snapshot().await?;
        Ok(audit(&second, Some(&first)))
    }
}

/// The problems in `snapshot`; with `earlier`, only those that `earlier` had too (an
/// operation under way when `earlier` was read has moved on since). Reads nothing but
/// its arguments.
pub fn audit(snapshot: &Snapshot, earlier: Option<&Snapshot>) -> CheckReport {
    let mut items = problems(snapshot);
    if let Some(earlier) = earlier {
        let before = problems(earlier);
        items.retain(|item| before.contains(item));
    }
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

fn problems(snapshot: &Snapshot) -> Vec<Problem> {
    let mut items = Vec::new();
    let allocated = allocations_per_handle(snapshot);
    addresses_without_handle(snapshot, &mut items);
    handles_without_addresses(snapshot, &allocated, &mut items);
    let owners = block_owners(snapshot);
    let confirmed = confirmed_owners(snapshot, &owners);
    affinities_without_blocks(snapshot, &owners, &mut items);
    blocks_with_two_owners(snapshot, &owners, &confirmed, &mut items);
    blocks_without_affinity(snapshot, &confirmed, &mut items);
    blocks_outside_pools(snapshot, &mut items);
    for (key, reason) in &snapshot.pools_refused {
        problem(
            &mut items,
            ProblemKind::PoolRefused,
            key.clone(),
            reason.clone(),
        );
    }
    items
}

fn problem(items: &mut Vec<Problem>, kind: ProblemKind, subject: String, detail: String) {
    items.push(Problem {
        kind,
        subject,
        detail,
    });
}

/// The addresses each handle holds, as the blocks record them.
fn allocations_per_handle(snapshot: &Snapshot) -> HashSet<(&str, IpAddr)> {
    let mut allocated = HashSet::new();
    for block in &snapshot.blocks {
        for (ordinal, allocation) in &block.value.allocations {
            allocated.insert((allocation.handle.as_str(), block.value.address(*ordinal)));
        }
    }
    allocated
}

/// Allocated addresses that their handle's record does not list in their block.
fn addresses_without_handle(snapshot: &Snapshot, items: &mut Vec<Problem>) {
    let records: HashMap<&str, &HandleRecord> = snapshot
        .handles
        .iter()
        .map(|h| (h.value.handle.as_str(), &h.value))
        .collect();
    for block in &snapshot.blocks {
        let block = &block.value;
        for (ordinal, allocation) in &block.allocations {
            let address = block.address(*ordinal);
            let detail = match records.get(allocation.handle.as_str()) {
                None => format!("handle {} has no record", allocation.handle),
                Some(record) if !record.lists(&block.cidr, &[address]) => format!(
                    "handle {} does not list it in block {}",
                    allocation.handle, block.cidr
                ),
                Some(_) => continue,
            };
            problem(
                items,
                ProblemKind::AddressWithoutHandle,
                address.to_string(),
                detail,
            );
        }
    }
}

/// Handle records that list addresses their blocks do not hold for them, or none.
fn handles_without_addresses(
    snapshot: &Snapshot,
    allocated: &HashSet<(&str, IpAddr)>,
    items: &mut Vec<Problem>,
) {
    for record in &snapshot.handles {
        let record = &record.value;
        for (cidr, listed) in &record.blocks {
            let missing: Vec<String> = listed
                .iter()
                .filter(|a| !allocated.contains(&(record.handle.as_str(), **a)))
                .map(ToString::to_string)
                .collect();
            if !missing.is_empty() {
                problem(
                    items,
                    ProblemKind::HandleWithoutAddress,
                    record.handle.clone(),
                    format!(
                        "lists {} in block {cidr}, not allocated to it",
                        missing.join(", ")
                    ),
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

/// Affinities whose block does not exist.
fn affinities_without_blocks(
    snapshot: &Snapshot,
    owners: &HashMap<IpNet, Option<&str>>,
    items: &mut Vec<Problem>,
) {
    for affinity in &snapshot.affinities {
        if owners.contains_key(&affinity.value.cidr) {
            continue;
        }
        problem(
            items,
            ProblemKind::AffinityWithoutBlock,
            format!("{} {}", affinity.value.node, affinity.value.cidr),
            format!("{} affinity, no block", state_name(affinity.value.state)),
        );
    }
}

fn state_name(state: AffinityState) -> &'static str {
    match state {
        AffinityState::Pending => "pending",
        AffinityState::Confirmed => "confirmed",
        AffinityState::PendingDeletion => "pending-deletion",
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
