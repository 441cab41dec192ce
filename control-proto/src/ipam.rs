//! The operator's IPAM commands as one request type. bgpd runs them for bgpctl
//! (`{"command":"ipam","request":{...}}`), and bgpctl runs them itself with
//! `--datastore URL` when no bgpd runs; both through `ipam::ops::execute`, which
//! answers with the JSON text of the ipam crate's report for the request.
//!
//! ```text
//! {"op":"usage"}                          UsageReport (pools, blocks, borrowed)
//! {"op":"address","address":"10.244.0.5"} AddressInfo or null when free
//! {"op":"check"}                          CheckReport (problems, counts, items)
//! {"op":"release","address":"10.244.0.5"} Released
//! {"op":"release-node","node":"node-b"}   NodeRelease
//! {"op":"pools"}                          [Pool]
//! {"op":"pool-add","cidr":"10.244.0.0/16","block_size":26,...}   Pool
//! {"op":"pool-delete","cidr":"10.244.0.0/16"}   the CIDR
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One IPAM command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum IpamRequest {
    Usage,
    Address {
        address: IpAddr,
    },
    Check,
    Release {
        address: IpAddr,
    },
    ReleaseNode {
        node: String,
    },
    Pools,
    /// `ipam pool add`: the pool's settings as given (the store checks them).
    PoolAdd {
        cidr: IpNet,
        /// None: the family's default.
        #[serde(default)]
        block_size: Option<u8>,
        #[serde(default)]
        disabled: bool,
        #[serde(default)]
        node_selector: BTreeMap<String, String>,
        #[serde(default)]
        nat_outgoing: bool,
    },
    PoolDelete {
        cidr: IpNet,
    },
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
