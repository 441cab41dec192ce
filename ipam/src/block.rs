//! Blocks: an aligned CIDR of a pool (at most 4096 addresses) with an affinity to one
//! node and one allocation record per address in use.
//!
//! Each allocation carries the handle it belongs to and a sequence number taken from the
//! block's counter, which grows with every allocation; a release that names an older
//! sequence number than the allocation's cannot free an address that was reused since.
//! New allocations start after the last one handed out (a cursor), so a released
//! address is not reused before the rest of the block has been.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::family::{Family, addr_from, to_u128};

/// Largest block (a /20 or /116).
pub const MAX_BLOCK_ADDRESSES: u32 = 4096;

/// A block as stored; the spec of the `IPAMBlock` custom resource (named after its
/// CIDR) on the Kubernetes datastore, whose store writes the count of its allocations
/// into the annotation `wren.io/in-use` for `kubectl get ipamblocks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, CustomResource, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[kube(
    group = "wren.io",
    version = "v1alpha1",
    kind = "IPAMBlock",
    plural = "ipamblocks",
    printcolumn = r#"{"name":"CIDR","type":"string","jsonPath":".spec.cidr"}"#,
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".spec.affinity"}"#,
    printcolumn = r#"{"name":"In Use","type":"string","jsonPath":".metadata.annotations.wren\\.io/in-use"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct Block {
    #[schemars(with = "String")]
    pub cidr: IpNet,
    /// The node that owns the block (`None` after its node was deleted while other
    /// nodes still had addresses borrowed from it).
    pub affinity: Option<String>,
    /// The counter that allocation sequence numbers come from.
    pub sequence: u64,
    /// The ordinal after the last allocation.
    pub cursor: u32,
    /// Allocations by ordinal (offset from the block's first address).
    #[schemars(schema_with = "crate::schema::allocations")]
    pub allocations: BTreeMap<u32, Allocation>,
}

/// One address in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Allocation {
    pub handle: String,
    pub sequence: u64,
    /// The node that borrowed this address when it is not the block's owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub borrower: Option<String>,
}

impl Block {
    pub fn new(cidr: IpNet, affinity: Option<String>) -> Block {
        Block {
            cidr,
            affinity,
            sequence: 0,
            cursor: 0,
            allocations: BTreeMap::new(),
        }
    }

    /// Whether the CIDR is a valid block (the record may come from a damaged store).
    pub fn is_valid(&self) -> bool {
        let host_bits = Family::of(&self.cidr).bits() - self.cidr.prefix_len();
        self.cidr.trunc() == self.cidr
            && host_bits <= 12
            && self.allocations.keys().all(|o| *o < 1 << host_bits)
    }

    pub fn size(&self) -> u32 {
        1 << (Family::of(&self.cidr).bits() - self.cidr.prefix_len()).min(12)
    }

    pub fn in_use(&self) -> u32 {
        self.allocations.len() as u32
    }

    pub fn free(&self) -> u32 {
        self.size().saturating_sub(self.in_use())
    }

    pub fn is_empty(&self) -> bool {
        self.allocations.is_empty()
    }

    /// The node that uses an allocation: its borrower, else the block's owner.
    pub fn user_of<'a>(&'a self, allocation: &'a Allocation) -> Option<&'a str> {
        allocation.borrower.as_deref().or(self.affinity.as_deref())
    }

    pub fn address(&self, ordinal: u32) -> IpAddr {
        addr_from(
            Family::of(&self.cidr),
            to_u128(&self.cidr.network()) + u128::from(ordinal),
        )
    }

    pub fn ordinal(&self, addr: &IpAddr) -> Option<u32> {
        if !self.cidr.contains(addr) {
            return None;
        }
        u32::try_from(to_u128(addr) - to_u128(&self.cidr.network())).ok()
    }

    /// Allocates up to `count` free addresses for `handle`, returning each address with
    /// its sequence number.
    pub fn allocate(
        &mut self,
        handle: &str,
        borrower: Option<&str>,
        count: u32,
    ) -> Vec<(IpAddr, u64)> {
        let size = self.size();
        let mut out = Vec::new();
        let mut ordinal = self.cursor % size;
        for _ in 0..size {
            if out.len() as u32 >= count {
                break;
            }
            if !self.allocations.contains_key(&ordinal) {
                let sequence = self.take(ordinal, handle, borrower);
                out.push((self.address(ordinal), sequence));
            }
            ordinal = (ordinal + 1) % size;
        }
        out
    }

    /// Allocates one given ordinal; the existing allocation if it is taken.
    pub fn allocate_ordinal(
        &mut self,
        ordinal: u32,
        handle: &str,
        borrower: Option<&str>,
    ) -> Result<u64, Allocation> {
        if let Some(existing) = self.allocations.get(&ordinal) {
            return Err(existing.clone());
        }
        Ok(self.take(ordinal, handle, borrower))
    }

    /// Frees every address of `handle`; returns how many.
    pub fn release_handle(&mut self, handle: &str) -> u32 {
        let before = self.allocations.len();
        self.allocations.retain(|_, a| a.handle != handle);
        (before - self.allocations.len()) as u32
    }

    /// The allocations of `handle` as (address, sequence).
    pub fn addresses_of(&self, handle: &str) -> Vec<(IpAddr, &Allocation)> {
        self.allocations
            .iter()
            .filter(|(_, a)| a.handle == handle)
            .map(|(o, a)| (self.address(*o), a))
            .collect()
    }

    fn take(&mut self, ordinal: u32, handle: &str, borrower: Option<&str>) -> u64 {
        self.sequence += 1;
        let borrower = borrower.filter(|b| Some(*b) != self.affinity.as_deref());
        self.allocations.insert(
            ordinal,
            Allocation {
                handle: handle.to_string(),
                sequence: self.sequence,
                borrower: borrower.map(str::to_string),
            },
        );
        self.cursor = (ordinal + 1) % self.size();
        self.sequence
    }
}
