//! The operator's IPAM commands ([`control_proto::IpamRequest`]) run against any
//! datastore: by bgpd for `bgpctl` (control request `{"command":"ipam",...}`), or by
//! bgpctl itself with `--datastore URL` when no bgpd runs. Both give the same
//! answer: the JSON text of this crate's report for the request (text, because IPv6
//! pool sizes exceed what a JSON value of `serde_json` holds).

use control_proto::ipam::IPIP_REFUSED;
use control_proto::{IpamRequest, PoolSettings};
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
        IpamRequest::PoolAdd(settings) => {
            let pool = new_pool(settings)?;
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

/// The pool `ipam pool add` or `[[ipam.pool]]` asks for (the defaults for what is not
/// given: the family's block size, VNI 4096, port 4789), checked.
pub fn new_pool(settings: &PoolSettings) -> Result<Pool, IpamError> {
    if settings.ipip_mode.is_some() {
        return Err(IpamError::BadPool {
            cidr: settings.cidr.to_string(),
            reason: format!("ipip_mode: {IPIP_REFUSED}"),
        });
    }
    let pool = Pool::from_settings(settings);
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
    fn pools_to_add_get_the_defaults_and_are_checked() {
        let settings = PoolSettings {
            nat_outgoing: true,
            ..PoolSettings::new("10.244.0.0/16".parse().unwrap())
        };
        let pool = new_pool(&settings).unwrap();
        assert_eq!(pool.block_size, 26);
        assert!(pool.nat_outgoing);
        assert_eq!(
            (pool.vxlan_mode, pool.vxlan_vni, pool.vxlan_port),
            (crate::VxlanMode::Never, 4096, 4789)
        );
        let vxlan = new_pool(&PoolSettings {
            vxlan_mode: crate::VxlanMode::CrossSubnet,
            vxlan_vni: Some(7),
            vxlan_port: Some(8472),
            ..settings.clone()
        })
        .unwrap();
        assert_eq!(
            (vxlan.vxlan_mode, vxlan.vxlan_vni, vxlan.vxlan_port),
            (crate::VxlanMode::CrossSubnet, 7, 8472)
        );
        let refused = [
            (
                PoolSettings {
                    block_size: Some(8),
                    ..settings.clone()
                },
                "block size 8",
            ),
            (
                PoolSettings {
                    vxlan_vni: Some(0),
                    ..settings.clone()
                },
                "vxlan_vni 0 is outside 1-16777215",
            ),
            (
                PoolSettings {
                    vxlan_vni: Some(1 << 24),
                    ..settings.clone()
                },
                "vxlan_vni 16777216",
            ),
            (
                PoolSettings {
                    vxlan_port: Some(0),
                    ..settings.clone()
                },
                "vxlan_port 0",
            ),
        ];
        for (bad, words) in refused {
            let error = new_pool(&bad).unwrap_err().to_string();
            assert!(error.contains(words), "{error}");
            assert!(error.starts_with("pool 10.244.0.0/16: "), "{error}");
        }
        // A stored pool from before these keys reads as `never` with the defaults.
        let old: Pool = serde_json::from_str(
            r#"{"cidr":"10.244.0.0/16","blockSize":26,"disabled":false,"nodeSelector":{},"natOutgoing":false}"#,
        )
        .unwrap();
        assert_eq!(old, Pool::new("10.244.0.0/16".parse().unwrap()));
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
