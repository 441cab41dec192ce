//! The IPAM operations, run against every datastore (SQLite always; etcd when
//! installed): pools, assignment, claims, borrowing, releases, crash repair, check,
//! usage, node registry and watches, where a claim looks for a free block.

#![allow(clippy::unwrap_used)]

#[path = "ipam_battery/administration.rs"]
mod administration;
#[path = "ipam_battery/assignment.rs"]
mod assignment;
#[path = "ipam_battery/claims.rs"]
mod claims;
#[path = "ipam_battery/repair.rs"]
mod repair;
mod support;

use support::battery;

use administration::*;
use assignment::*;
use claims::*;
use repair::*;

use std::net::IpAddr;

use ipam::store::Datastore;
use ipam::{Ipam, Pool};
use ipnet::IpNet;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pool(cidr: &str, block_size: u8) -> Pool {
    let mut pool = Pool::new(net(cidr));
    pool.block_size = block_size;
    pool
}

async fn assert_clean<S: Datastore>(ipam: &Ipam<S>) {
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{}", report.render());
}

/// `node` holds no block.
async fn assert_no_blocks<S: Datastore>(ipam: &Ipam<S>, node: &str) {
    let blocks = ipam.node_allocations(node).await.unwrap().blocks;
    assert!(blocks.is_empty(), "{node} still holds {blocks:?}");
}

battery!(
    [sqlite, etcd, kubernetes],
    |store| ipam::Ipam::new(store),
    [
        bad_pools_are_refused,
        assign_from_the_nodes_block,
        assign_many_claims_more_blocks,
        stale_release_cannot_free_a_reused_address,
        borrowing_when_no_block_is_free,
        exhausted_pool_is_a_clear_error_and_writes_nothing,
        max_blocks_per_node,
        assign_a_given_address,
        release_of_a_deleted_node,
        crash_between_claim_phases_is_repaired,
        check_finds_each_inconsistency,
        ipv6_pools,
        concurrent_assigns_are_distinct,
        check_is_consistent_under_concurrent_assignments,
        node_selector_disabled_and_delete,
        usage_table,
        node_registry_and_watches,
        bad_names_are_refused,
        pods_are_named_in_handle_records,
        a_claim_reads_a_few_blocks_not_every_block,
        a_nearly_full_pool_gives_its_last_block,
    ]
);
