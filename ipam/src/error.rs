//! The errors of IPAM operations: one line each, naming the pool, node, address or
//! datastore involved.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::family::Family;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("pool {cidr}: {reason}")]
    BadPool { cidr: String, reason: String },
    #[error("pool {new} overlaps existing pool {existing}")]
    PoolOverlap { new: IpNet, existing: IpNet },
    #[error("pool {0} already exists")]
    PoolExists(IpNet),
    #[error("pool {0} does not exist")]
    NoSuchPool(IpNet),
    #[error("pool {cidr} still has {in_use} addresses in use; release them before deleting it")]
    PoolInUse { cidr: IpNet, in_use: u64 },
    #[error("no enabled {family} pool selects node {node}")]
    NoPool { node: String, family: Family },
    #[error("{family} pools are exhausted: no free address for node {node} (handle {handle})")]
    Exhausted {
        node: String,
        family: Family,
        handle: String,
    },
    #[error(
        "node {node} has no free {family} address in its blocks, cannot claim another block \
         ({reason}), and strict_affinity forbids borrowing from other nodes' blocks"
    )]
    StrictAffinity {
        node: String,
        family: Family,
        reason: String,
    },
    #[error("address {0} is not in any pool")]
    NotInPool(IpAddr),
    #[error("address {address} is already allocated (handle {handle})")]
    AddressInUse { address: IpAddr, handle: String },
    #[error("address {0} is not allocated")]
    NotAllocated(IpAddr),
    #[error(
        "address {address} was reallocated since (sequence {current}, release asked for \
         {requested}); not released"
    )]
    StaleSequence {
        address: IpAddr,
        current: u64,
        requested: u64,
    },
    #[error(transparent)]
    BadName(#[from] crate::keys::BadName),
    #[error("handle {handle}: {reason}")]
    BadPod { handle: String, reason: String },
    #[error("corrupt record {key} in datastore {url}: {reason}")]
    Corrupt {
        url: String,
        key: String,
        reason: String,
    },
    #[error("datastore {url}: gave up after {attempts} attempts lost to concurrent writers")]
    Contention { url: String, attempts: u32 },
    #[error("cannot assign {count} addresses at once (at most {max})")]
    TooMany { count: u32, max: u32 },
}
