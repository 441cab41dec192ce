//! The operator's IPAM commands ([`control_proto::IpamRequest`]) run against any
//! datastore: by bgpd for `bgpctl` (control request `{"command":"ipam",...}`), or by
//! bgpctl itself with `--datastore URL` when no bgpd runs. Both give the same
//! answer: the JSON text of this crate's report for the request (text, because IPv6
//! pool sizes exceed what a JSON value of `serde_json` holds).

use std::collections::BTreeMap;

use control_proto::IpamRequest;
use ipnet::IpNet;
use serde::Serialize;

use crate::{Datastore, Ipam, IpamError, Pool};

/// Runs `request` against `ipam`; the answer is JSON text (see the module doc).
pub async fn execute<S: Datastore>(
    ipam: &Ipam<S>,
    request: &IpamRequest,
) -> Result<String, IpamError> {
    let text = match request {
        IpamRequest::Usage => json(&ipam.usage().await?),
        IpamRequest::Address { address } => json(&ipam.address_info(*address).await?),
        IpamRequest::Check => json(&ipam.check().await?),
        IpamRequest::Release { address } => json(&ipam.release_address(*address, None).await?),
        IpamRequest::ReleaseNode { node } => json(&ipam.release_node(node).await?),
        IpamRequest::Pools => json(&ipam.pools().await?),
        IpamRequest::PoolAdd {
            cidr,
            block_size,
            disabled,
            node_selector,
            nat_outgoing,
        } => {
            let pool = new_pool(
                *cidr,
                *block_size,
                *disabled,
                node_selector.clone(),
                *nat_outgoing,
            )?;
            ipam.add_pool(pool.clone()).await?;
            json(&pool)
        }
        IpamRequest::PoolDelete { cidr } => {
            ipam.delete_pool(*cidr).await?;
            json(cidr)
        }
    };
    Ok(text)
}

/// The pool `ipam pool add` asks for (the family's default block size when none is
/// given), checked.
pub fn new_pool(
    cidr: IpNet,
    block_size: Option<u8>,
    disabled: bool,
    node_selector: BTreeMap<String, String>,
    nat_outgoing: bool,
) -> Result<Pool, IpamError> {
    let mut pool = Pool::new(cidr);
    if let Some(size) = block_size {
        pool.block_size = size;
    }
    pool.disabled = disabled;
    pool.node_selector = node_selector;
    pool.nat_outgoing = nat_outgoing;
    pool.validate()?;
    Ok(pool)
}

/// The reports are plain structs of numbers, strings and maps with string keys:
/// serializing them cannot fail.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| String::from("null"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pools_to_add_get_the_family_default_and_are_checked() {
        let pool = new_pool(
            "10.244.0.0/16".parse().unwrap(),
            None,
            false,
            BTreeMap::new(),
            true,
        )
        .unwrap();
        assert_eq!(pool.block_size, 26);
        assert!(pool.nat_outgoing);
        let too_small = new_pool(
            "10.244.0.0/16".parse().unwrap(),
            Some(8),
            false,
            BTreeMap::new(),
            false,
        );
        assert!(too_small.is_err(), "{too_small:?}");
    }

    #[test]
    fn ipv6_pool_sizes_survive_the_text() {
        let report = crate::UsageReport {
            pools: vec![crate::Usage {
                cidr: "fd00::/48".parse().unwrap(),
                total: 1 << 80,
                in_use: 3,
                free: (1 << 80) - 3,
                node: None,
                disabled: Some(false),
            }],
            blocks: vec![],
            borrowed: vec![],
        };
        let text = json(&report);
        assert!(
            text.contains("\"total\":1208925819614629174706176"),
            "{text}"
        );
        let back: crate::UsageReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
    }
}
