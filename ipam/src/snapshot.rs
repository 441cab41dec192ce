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
        let (pools, refused) = sort_pools(&pools);
        let pools_refused = refused
            .into_iter()
            .map(|(key, refusal)| (key, refusal.to_string()))
            .collect();
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
    let (pools, refused) = sort_pools(entries);
    for (key, reason) in refused {
        tracing::warn!(url, pool = key, "pool refused: {reason}");
    }
    Ok(pools)
}

/// Why a stored pool is left out; [`PoolRefusal::reason`] names it in CamelCase (the
/// reason of the Kubernetes Event bgpd posts for an `IPPool`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolRefusal {
    /// The CIDR is not one, or has host bits set.
    #[error("{0}")]
    InvalidCIDR(String),
    /// The record does not decode, or a setting is out of range.
    #[error("{0}")]
    InvalidPool(String),
    #[error("pool {pool} overlaps pool {other}")]
    OverlappingPool { pool: IpNet, other: IpNet },
}

impl PoolRefusal {
    pub fn reason(&self) -> &'static str {
        match self {
            PoolRefusal::InvalidCIDR(_) => "InvalidCIDR",
            PoolRefusal::InvalidPool(_) => "InvalidPool",
            PoolRefusal::OverlappingPool { .. } => "OverlappingPool",
        }
    }
}

/// The pools of `entries` that can be used, and the key of each refused one with why
/// (the checks every reader of the pools applies).
pub fn sort_pools(entries: &[Entry]) -> (Vec<Pool>, Vec<(String, PoolRefusal)>) {
    let mut valid = Vec::with_capacity(entries.len());
    let mut refused = Vec::new();
    for entry in entries {
        match check_pool(entry) {
            Ok(pool) => valid.push((entry.key.as_str(), pool)),
            Err(refusal) => refused.push((entry.key.clone(), refusal)),
        }
    }
    let mut pools = Vec::with_capacity(valid.len());
    for (key, pool) in &valid {
        match valid
            .iter()
            .find(|(other, p)| other != key && p.overlaps(&pool.cidr))
        {
            Some((_, other)) => refused.push((
                key.to_string(),
                PoolRefusal::OverlappingPool {
                    pool: pool.cidr,
                    other: other.cidr,
                },
            )),
            None => pools.push(pool.clone()),
        }
    }
    (pools, refused)
}

/// One pool record, decoded and checked alone.
fn check_pool(entry: &Entry) -> Result<Pool, PoolRefusal> {
    let pool = match serde_json::from_slice::<Pool>(&entry.value) {
        Ok(pool) => pool,
        Err(error) => {
            // A CIDR that does not parse is the usual reason: say so plainly.
            let cidr = serde_json::from_slice::<serde_json::Value>(&entry.value)
                .ok()
                .and_then(|value| value.get("cidr")?.as_str().map(str::to_owned));
            if let Some(Err(bad)) = cidr.as_deref().map(Pool::parse_cidr) {
                return Err(PoolRefusal::InvalidCIDR(bad.to_string()));
            }
            return Err(PoolRefusal::InvalidPool(format!(
                "pool {}: {error}",
                cidr.as_deref().unwrap_or("(no cidr)")
            )));
        }
    };
    if pool.cidr.trunc() != pool.cidr {
        return Err(PoolRefusal::InvalidCIDR(
            Pool::parse_cidr(&pool.cidr.to_string())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default(),
        ));
    }
    pool.validate()
        .map_err(|e| PoolRefusal::InvalidPool(e.to_string()))?;
    Ok(pool)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: serde_json::Value) -> Entry {
        Entry {
            key: key.into(),
            value: value.to_string().into_bytes(),
            revision: 1,
        }
    }

    fn pool(cidr: &str) -> serde_json::Value {
        let mut value = serde_json::to_value(Pool::new(cidr.parse().expect("cidr"))).expect("json");
        value["cidr"] = serde_json::Value::String(cidr.into());
        value
    }

    #[test]
    fn each_refused_pool_has_its_reason() {
        let mut bad_cidr = pool("10.250.0.0/16");
        bad_cidr["cidr"] = "10.250.0.0/33".into();
        let mut host_bits = pool("10.251.0.0/16");
        host_bits["cidr"] = "10.251.0.1/16".into();
        let mut block_size = pool("10.252.0.0/16");
        block_size["blockSize"] = 8.into();
        let entries = [
            entry("good", pool("10.244.0.0/16")),
            entry("bad-cidr", bad_cidr),
            entry("host-bits", host_bits),
            entry("block-size", block_size),
            entry("overlap-a", pool("10.96.0.0/16")),
            entry("overlap-b", pool("10.96.128.0/17")),
        ];
        let (pools, refused) = sort_pools(&entries);
        assert_eq!(pools.len(), 1);
        let reasons: Vec<(&str, &str)> = refused
            .iter()
            .map(|(key, refusal)| (key.as_str(), refusal.reason()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("bad-cidr", "InvalidCIDR"),
                ("host-bits", "InvalidCIDR"),
                ("block-size", "InvalidPool"),
                ("overlap-a", "OverlappingPool"),
                ("overlap-b", "OverlappingPool"),
            ]
        );
        assert!(
            refused[0].1.to_string().contains("10.250.0.0/33"),
            "{}",
            refused[0].1
        );
        assert!(
            refused[1].1.to_string().contains("10.251.0.0/16"),
            "{}",
            refused[1].1
        );
        assert_eq!(
            refused[3].1.to_string(),
            "pool 10.96.0.0/16 overlaps pool 10.96.128.0/17"
        );
    }
}
