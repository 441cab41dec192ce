//! ipam: block-based pod address management (Calico's model) on a datastore with
//! compare-and-swap transactions (SQLite or etcd v3), and the `wren-ipam` CNI plugin.
//!
//! - [`pool`]: pools and block arithmetic; [`block`]: blocks and allocations;
//!   [`records`]: affinities, handles, configuration, nodes.
//! - [`store`]: the [`Datastore`] trait, its SQLite and etcd implementations, and
//!   [`store::open`] to pick one from a URL.
//! - [`Ipam`]: the operations — assign and release (`allocator.rs`, `claim.rs`,
//!   `handles.rs`, `release.rs`; their shared retry policy in `backoff.rs`), pools, configuration, node registry and what bgpd watches
//!   (`registry.rs`), the audit (`check.rs`, its findings in `problem.rs`: a pure [`audit`] of one [`Snapshot`], the
//!   whole state read at one revision by `snapshot.rs`), usage reports (`report.rs`)
//!   and the nodes' VXLAN tunnel endpoints (`tunnel.rs`: MAC and tunnel address).
//! - [`cni`]: the CNI 1.0 IPAM plugin logic behind the `wren-ipam` binary;
//!   [`node_name`]: the node's name (`NODENAME`, else the host name), shared with bgpd.
//! - [`outage`]: one log line per API server outage for every watch of the process
//!   (the Kubernetes store's and bgpd's cluster watches).
//!
//! Calling contract: every operation is safe to run concurrently from any number of
//! processes and hosts on one store; each is retried internally on conflicts. Each
//! writes one key at a time (see `store/mod.rs`), so a process stopped between two
//! writes leaves a state that is safe and that the next operation repairs: the node's
//! next operation for its claims and block releases, the handle's next assignment or
//! release for its addresses, the same release run again for a release of one address
//! or of a node.

mod allocator;
mod backoff;
pub mod block;
mod check;
mod claim;
pub mod cni;
mod error;
mod family;
mod handles;
pub mod keys;
pub mod kubernetes;
pub mod node_name;
pub mod ops;
pub mod outage;
pub mod pool;
mod problem;
pub mod records;
mod registry;
mod release;
mod report;
mod schema;
mod snapshot;
pub mod store;
mod tunnel;

pub use allocator::{Assigned, MAX_ASSIGN};
pub use backoff::{MAX_ATTEMPTS, retries};
pub use check::{CLAIM_GRACE, CheckReport, Problem, ProblemKind, audit};
pub use error::IpamError;
pub use family::Family;
pub use pool::{Pool, VxlanMode, format_node_selector, parse_node_selector};
pub use records::{
    Affinity, AffinityState, BlockUsers, HandleRecord, IpamConfig, MacAddress, Node,
    NodeAllocations, PodReference, Vtep,
};
pub use release::{NodeRelease, Released};
pub use report::{AddressInfo, Usage, UsageReport};
pub use snapshot::{PoolRefusal, Snapshot, Stored, sort_pools};
pub use store::{AnyStore, Datastore, StoreError};
pub use tunnel::{tunnel_handle, vtep_mac};

/// The IPAM operations over one datastore. Cheap to clone when the store is.
///
/// Defined here, at the crate root, so that the files implementing its operations
/// (`allocator`, `claim`, `release`, `registry`, `check`, `report`) reach its store
/// through their parent and never import each other for it.
#[derive(Debug, Clone)]
pub struct Ipam<S> {
    store: S,
}

impl<S: Datastore> Ipam<S> {
    pub fn new(store: S) -> Ipam<S> {
        Ipam { store }
    }

    pub fn store(&self) -> &S {
        &self.store
    }
}

/// Opens the datastore a URL names and returns the IPAM operations on it.
pub async fn connect(url: &str) -> Result<Ipam<AnyStore>, IpamError> {
    Ok(Ipam::new(store::open(url).await?))
}

/// The environment variable naming a failpoint (tests only): when the named point is
/// reached the process stops there, printing `failpoint NAME reached` to stderr, until
/// it is killed. Points: `claim-pending` (between the two phases of a block claim).
pub const FAILPOINT_ENV: &str = "WREN_IPAM_FAILPOINT";

fn failpoint(name: &str) {
    if std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == name) {
        eprintln!("failpoint {name} reached");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}
