//! The operator's IPAM commands as one request type, run against any datastore:
//! by bgpd for `bgpctl` (control request `{"command":"ipam","request":{...}}`), or by
//! bgpctl itself with `--datastore URL` when no bgpd runs. Both give the same
//! answer: the JSON text of the ipam crate's report for the request (text, because
//! IPv6 pool sizes exceed what a JSON value of `serde_json` holds).
//!
//! ```text
//! {"op":"usage"}                          UsageReport (pools, blocks, borrowed)
//! {"op":"address","address":"10.244.0.5"} AddressInfo or null when free
//! {"op":"check"}                          CheckReport (problems, counts, items)
//! {"op":"release","address":"10.244.0.5"} Released
//! {"op":"release-node","node":"node-b"}   NodeRelease
//! {"op":"pools"}                          [Pool]
//! {"op":"pool-add","pool":{...}}          Pool
//! {"op":"pool-delete","cidr":"10.244.0.0/16"}   the CIDR
//! ```

use std::net::IpAddr;

use ipam::{Datastore, Ipam, IpamError, Pool};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One IPAM command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum IpamRequest {
    Usage,
    Address { address: IpAddr },
    Check,
    Release { address: IpAddr },
    ReleaseNode { node: String },
    Pools,
    PoolAdd { pool: Pool },
    PoolDelete { cidr: IpNet },
}

impl IpamRequest {
    /// True for requests that change nothing.
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            IpamRequest::Usage
                | IpamRequest::Address { .. }
                | IpamRequest::Check
                | IpamRequest::Pools
        )
    }
}

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
        IpamRequest::PoolAdd { pool } => {
            ipam.add_pool(pool.clone()).await?;
            json(pool)
        }
        IpamRequest::PoolDelete { cidr } => {
            ipam.delete_pool(*cidr).await?;
            json(cidr)
        }
    };
    Ok(text)
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
    fn requests_read_as_documented() {
        let cases = [
            (r#"{"op":"usage"}"#, IpamRequest::Usage),
            (
                r#"{"op":"address","address":"10.244.0.5"}"#,
                IpamRequest::Address {
                    address: "10.244.0.5".parse().unwrap(),
                },
            ),
            (
                r#"{"op":"release-node","node":"node-b"}"#,
                IpamRequest::ReleaseNode {
                    node: "node-b".into(),
                },
            ),
            (
                r#"{"op":"pool-delete","cidr":"10.244.0.0/16"}"#,
                IpamRequest::PoolDelete {
                    cidr: "10.244.0.0/16".parse().unwrap(),
                },
            ),
        ];
        for (text, request) in cases {
            assert_eq!(
                serde_json::from_str::<IpamRequest>(text).unwrap(),
                request,
                "{text}"
            );
            assert_eq!(serde_json::to_string(&request).unwrap(), text);
        }
        assert!(IpamRequest::Check.is_read_only());
        assert!(
            !IpamRequest::Release {
                address: "10.0.0.1".parse().unwrap()
            }
            .is_read_only()
        );
        assert!(serde_json::from_str::<IpamRequest>(r#"{"op":"format"}"#).is_err());
    }

    #[test]
    fn ipv6_pool_sizes_survive_the_text() {
        let report = ipam::UsageReport {
            pools: vec![ipam::Usage {
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
        let back: ipam::UsageReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
    }
}
