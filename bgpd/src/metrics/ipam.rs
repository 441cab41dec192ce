//! The IPAM series (with `[ipam]`), from the IPAM task's status `watch` (what it
//! found at its last synchronisation: no datastore query per scrape) and the
//! process' datastore operation counts (`ipam::store::operations`):
//!
//! - `wren_ipam_blocks{pool}`: blocks of the pool this node owns;
//! - `wren_ipam_addresses_in_use{pool}`: addresses allocated in those blocks;
//! - `wren_ipam_addresses_borrowed{pool}`: addresses of the pool this node's pods
//!   borrowed from other nodes' blocks;
//! - `wren_ipam_datastore_up`: the datastore answered the IPAM task's last
//!   operations (0 while it is down, and before the first connection);
//! - `wren_ipam_datastore_operations_total{op,result}`: every datastore operation
//!   of this process (`op`: get, list, read, revision, create, update, delete,
//!   check, commit, watch, connect; `result`: ok, conflict (writes), not-found
//!   (get), error);
//! - `wren_ipam_operation_duration_seconds{op}`: their durations (a histogram).

use std::fmt;

use ipam::store::operations::OperationCounts;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::series::{self, Labels};
use crate::ipam_task::IpamStatus;

/// One scrape's view of IPAM.
#[derive(Clone, Debug)]
pub struct IpamSample {
    pub status: IpamStatus,
    pub operations: Vec<OperationCounts>,
}

impl IpamSample {
    /// The IPAM task's last status and this moment's operation counts.
    pub fn read(status: IpamStatus) -> IpamSample {
        IpamSample {
            status,
            operations: ipam::store::operations::snapshot(),
        }
    }
}

fn pool(usage: &crate::ipam_task::usage::PoolUsage) -> Labels {
    vec![("pool", usage.pool.to_string())]
}

impl Collector for IpamSample {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let usage = &self.status.usage;
        series::gauges(
            &mut encoder,
            "wren_ipam_blocks",
            "Address blocks of the pool this node owns.",
            usage.iter().map(|u| (pool(u), u.blocks as i64)),
        )?;
        series::gauges(
            &mut encoder,
            "wren_ipam_addresses_in_use",
            "Addresses allocated in this node's blocks of the pool.",
            usage.iter().map(|u| (pool(u), u.in_use as i64)),
        )?;
        series::gauges(
            &mut encoder,
            "wren_ipam_addresses_borrowed",
            "Addresses of the pool this node's pods borrowed from other nodes' blocks.",
            usage.iter().map(|u| (pool(u), u.borrowed as i64)),
        )?;
        series::gauge(
            &mut encoder,
            "wren_ipam_datastore_up",
            "The IPAM datastore answers (0 or 1).",
            series::flag(matches!(self.status.reachable, Some(Ok(())))),
        )?;
        series::counters(
            &mut encoder,
            "wren_ipam_datastore_operations",
            "Operations of this process on the IPAM datastore, by operation and result.",
            self.operations.iter().flat_map(|counts| {
                counts.operation.results().iter().map(move |result| {
                    let labels: Labels = vec![
                        ("op", counts.operation.name().to_owned()),
                        ("result", result.name().to_owned()),
                    ];
                    (labels, counts.results[*result as usize])
                })
            }),
        )?;
        series::histograms(
            &mut encoder,
            "wren_ipam_operation_duration_seconds",
            "Duration of the IPAM datastore operations, in seconds.",
            self.operations.iter().map(|counts| {
                (
                    vec![("op", counts.operation.name().to_owned())],
                    counts.sum_seconds,
                    counts.count(),
                    counts.bucket_bounds(),
                )
            }),
        )?;
        Ok(())
    }
}
