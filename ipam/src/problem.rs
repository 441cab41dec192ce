//! What `ipam check` reports: the kinds of inconsistency and one found (a leaf
//! module: the audit in `check.rs` and the snapshot's refused pools in
//! `snapshot.rs` both use it).

use serde::{Deserialize, Serialize};

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
    /// A pool that is not valid or overlaps another (none of its addresses are handed
    /// out).
    PoolRefused,
}

impl ProblemKind {
    pub const ALL: [ProblemKind; 7] = [
        ProblemKind::AddressWithoutHandle,
        ProblemKind::HandleWithoutAddress,
        ProblemKind::BlockWithTwoOwners,
        ProblemKind::AffinityWithoutBlock,
        ProblemKind::BlockWithoutAffinity,
        ProblemKind::BlockOutsidePools,
        ProblemKind::PoolRefused,
    ];

    pub fn description(self) -> &'static str {
        match self {
            ProblemKind::AddressWithoutHandle => "IPs allocated with no handle",
            ProblemKind::HandleWithoutAddress => "handles with no IPs",
            ProblemKind::BlockWithTwoOwners => "blocks with two owners",
            ProblemKind::AffinityWithoutBlock => "affinities without blocks",
            ProblemKind::BlockWithoutAffinity => "blocks without affinities",
            ProblemKind::BlockOutsidePools => "blocks outside every pool",
            ProblemKind::PoolRefused => "pools refused",
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
