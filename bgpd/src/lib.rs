//! bgpd: Wren's BGP speaker. Its control tool is the `bgpctl` crate; the two share
//! only the control protocol (`control-proto`).
//!
//! The tasks and channels of the daemon are drawn in [`tasks`]. Modules:
//! - [`config`]: the TOML configuration in typed structs.
//! - [`tasks`]: the messages that travel between the daemon's tasks.
//! - [`rib`]: the RIB task (adj_rib_in, decision, loc_rib, adj_rib_out, route
//!   reflection, UPDATE packing); [`policy`]: import/export filters;
//!   [`local`]: locally originated routes; [`fib`]: best routes into the kernel.
//! - [`session`]: one task per neighbor driving bgp-proto's state machine;
//!   [`socket`]: TCP-MD5, GTSM and TTL options; [`listener`]: accepting connections;
//!   [`supervisor`]: the neighbor set, reloads, operator commands.
//! - [`ipam_task`]: the node's IPAM blocks and borrowed addresses as local routes,
//!   the node registry and mesh.
//! - [`cluster_task`]: BGP peers from the Kubernetes cluster's custom resources,
//!   the Node's NetworkUnavailable condition (the `cluster` crate does the API).
//! - [`dataplane_task`]: what bgpd programs on the host beside routes (the pod
//!   MTU; the `dataplane` crate), fed by the IPAM task.
//! - [`control`]: the control socket's server (answers typed by `control-proto`,
//!   `show routes` streamed in chunks); [`metrics`]: the Prometheus endpoint and
//!   health checks over HTTP; [`daemon`]: wiring the tasks together, signals.
//! - [`memory`]: the allocator policy (glibc malloc's thresholds at start, free heap
//!   pages given back after a burst); [`limits`]: the limit of open files.

pub mod bfd_task;
pub mod cluster_task;
pub mod cni_token_task;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane_task;
pub mod events;
pub mod fault;
pub mod fib;
pub mod ipam_task;
pub mod limits;
pub mod listener;
pub mod local;
pub mod memory;
pub mod metrics;
pub mod policy;
pub mod queue;
pub mod rib;
pub mod session;
pub mod socket;
pub mod supervision;
pub mod supervisor;
pub mod tasks;
