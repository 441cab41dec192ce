//! The whole IPAM state read once, at one store revision: what `ipam check` audits.
//!
//! Pools, blocks, affinities and handle records are read in one [`Datastore::read`]
//! (one etcd transaction, one SQLite transaction), so every transaction the
//! allocator commits is either wholly in the snapshot or not at all: an assignment
//! running meanwhile cannot show up as a block without its handle record.

use std::collections::HashSet;

use ipnet::IpNet;

use crate::Ipam;
use crate::block::Block;
use crate::error::IpamError;
use crate::keys;
use crate::pool::Pool;
use crate::records::{Affinity, AffinityState, HandleRecord, decode};
use crate::store::{Datastore, Entry, Read};

/// A decoded record with the key and revision it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<T> {
    pub key: String,
    pub revision: u64,
    pub value: T,
}

/// Pools, blocks, affinities and handle records (each sorted by key), all at one
/// store revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub pools: Vec<Pool>,
    /// Pools left out: each one's key and why (see `decode_pools`).
    pub pools_refused: Vec<(String, String)>,
    pub blocks: Vec<Stored<Block>>,
    pub affinities: Vec<Stored<Affinity>>,
    pub handles: Vec<Stored<HandleRecord>>,
}

impl Snapshot {
    /// Pending affinities whose block does not exist: a claim between its two phases,
    /// or one whose process died there (see `claim.rs`).
    pub fn pending_without_block(&self) -> impl Iterator<Item = &Stored<Affinity>> {
        let blocks: HashSet<IpNet> = self.blocks.iter().map(|b| b.value.cidr).collect();
        self.affinities.iter().filter(move |affinity| {
            affinity.value.state == AffinityState::Pending && !blocks.contains(&affinity.value.cidr)
        })
    }
}

impl<S: Datastore> Ipam<S> {
    /// Reads the whole IPAM state at one revision. A record that does not decode, a
    /// pool that is not valid or a block that is not valid is an error naming its key.
    pub async fn snapshot(&self) -> Result<Snapshot, IpamError> {
        let url = self.store.url();
        let mut results = self
            .store
            .read(vec![
                Read::Prefix(keys::POOLS.to_string()),
                Read::Prefix(keys::BLOCKS.to_string()),
                Read::Prefix(keys::AFFINITIES.to_string()),
                Read::Prefix(keys::HANDLES.to_string()),
            ])
            .await?
            .into_iter();
        let mut next = || results.next().unwrap_or_default();
        let (pools, blocks, affinities, handles) = (next(), next(), next(), next());
        let blocks = decode_all::<Block>(url, blocks)?;
        if let Some(block) = blocks.iter().find(|b| !b.value.is_valid()) {
            return Err(IpamError::Corrupt {
                url: url.to_string(),
                key: block.key.clone(),
                reason: String::from("not a valid block"),
            });
        }
        let (pools, pools_refused) = sort_pools(url, &pools);
        Ok(Snapshot {
            pools,
            pools_refused,
            blocks,
            affinities: decode_all(url, affinities)?,
            handles: decode_all(url, handles)?,
        })
    }
}

/// Decodes pool entries (in their order) and checks each one. A pool that does not
/// decode, is not valid or overlaps another pool is refused: logged with its reason
/// and left out (a custom resource written by hand must not stop allocation from the
/// other pools). Overlapping pools are both refused, as neither can be trusted.
pub(crate) fn decode_pools(url: &str, entries: &[Entry]) -> Result<Vec<Pool>, IpamError> {
    let (pools, refused) = sort_pools(url, entries);
    for (key, reason) in refused {
        tracing::warn!(url, pool = key, "pool refused: {reason}");
    }
    Ok(pools)
}

/// The pools that can be used, and the key and reason of each refused one.
pub(crate) fn sort_pools(url: &str, entries: &[Entry]) -> (Vec<Pool>, Vec<(String, String)>) {
    let mut valid = Vec::with_capacity(entries.len());
    let mut refused = Vec::new();
    let mut refuse = |key: &str, reason: String| refused.push((key.to_string(), reason));
    for entry in entries {
        match decode::<Pool>(url, entry) {
            Ok(pool) => match pool.validate() {
                Ok(()) => valid.push((entry.key.as_str(), pool)),
                Err(e) => refuse(&entry.key, e.to_string()),
            },
            Err(e) => refuse(&entry.key, e.to_string()),
        }
    }
    let mut pools = Vec::with_capacity(valid.len());
    for (key, pool) in &valid {
        match valid
            .iter()
            .find(|(other, p)| other != key && p.overlaps(&pool.cidr))
        {
            Some((_, other)) => refuse(
                key,
                format!("pool {} overlaps pool {}", pool.cidr, other.cidr),
            ),
            None => pools.push(pool.clone()),
        }
    }
    (pools, refused)
}

fn decode_all<T: serde::de::DeserializeOwned>(
    url: &str,
    entries: Vec<Entry>,
) -> Result<Vec<Stored<T>>, IpamError> {
    entries
        .into_iter()
        .map(|entry| {
            Ok(Stored {
                value: decode(url, &entry)?,
                key: entry.key,
                revision: entry.revision,
            })
        })
        .collect()
}
