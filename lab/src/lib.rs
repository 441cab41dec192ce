//! `lab`: the one way Wren builds network topologies out of Linux network namespaces, for
//! the integration tests of every crate, the benchmark harness and the `wren-lab` runner.
//!
//! Building blocks, each in its own module:
//! - [`require!`] / [`require`]: skip (or, with `WREN_REQUIRE_LAB=1`, fail) a test whose
//!   prerequisites (root, FRR, BIRD, ...) are missing;
//! - [`Netns`]: a namespace guard (commands, closures, daemons inside; cleaned up on drop);
//! - [`Veth`] and [`Iface`]: links, addresses, MTU, up/down, netem;
//! - [`Daemon`]: a process-group guard with a log file and `wait_until` helpers;
//! - [`Etcd`]: a throw-away etcd with kill and restart;
//! - [`kube::ControlPlane`]: etcd plus a real kube-apiserver (RBAC, tokens, kubectl);
//!   [`kube_metrics`]: the requests it served, by kind (for request-count measurements);
//! - [`metrics`]: bgpd's metrics listener from a test (an HTTP GET in a namespace,
//!   `promtool check metrics`, the OpenMetrics parser, text samples by name and labels);
//! - [`wait_until`] / [`wait_for`]: polling with timeouts and good errors;
//! - peers: [`Frr`], [`Bird`], [`Gobgp`] (Debian's GoBGP 3, or the GoBGP v4 `scripts/gobgp`
//!   builds, with BFD), [`ExaBgp`], each in its namespace with readiness
//!   waits and query helpers; [`Family`] and kernel route queries ([`Netns::routes`]);
//! - [`cni`]: one CNI plugin run as a runtime runs it (pods, the IPAM tests);
//! - [`netfilter`]: what is not Wren's in iptables-nft and nftables (kube-proxy's kind of
//!   rules, a snapshot of the rest) for the NAT tests;
//! - [`fixture`]: test fixtures around Wren's binaries (bgpd in a namespace, bgpctl, config
//!   texts), shared by bgpd's tests and the top-level `tests` package; they panic instead
//!   of returning errors;
//! - [`topology`]: containerlab topology files deployed into namespaces ([`Topology`],
//!   [`Lab`]), the library behind the `wren-lab` runner.
//!
//! Every guard cleans up on drop, also when a test panics, and every name is unique
//! (prefix + pid + counter) so tests run in parallel.

pub mod bird;
pub mod cni;
mod command;
mod daemon;
mod error;
mod etcd;
pub mod exabgp;
pub mod fixture;
mod frr;
mod gobgp;
mod gobgp_build;
pub mod kube;
mod kube_build;
pub mod kube_metrics;
mod link;
pub mod metrics;
mod names;
pub mod netfilter;
pub mod netns;
mod prereq;
mod route;
pub mod topology;
mod wait;

pub use bird::Bird;
pub use command::{display as command_line, run as run_command, run_json as run_command_json};
pub use daemon::{Daemon, GRACE, tail};
pub use error::{Error, Result};
pub use etcd::Etcd;
pub use exabgp::ExaBgp;
pub use frr::Frr;
pub use gobgp::{BfdState as GobgpBfdState, Gobgp};
pub use gobgp_build::{GOBGP_V4_ENV, gobgp_v4_version};
pub use link::{End, Iface, Veth};
pub use names::{IFNAME_MAX, unique_ifname, unique_name, valid_ifname};
pub use netns::Netns;
pub use prereq::{
    FRR_DIR, Prereq, REQUIRE_ENV, Ready, check, cni_dir, find_program, keep_files, require,
};
pub use route::{Family, gateways};
pub use topology::{Lab, Topology};
pub use wait::{TIMEOUT, wait_for, wait_until};
