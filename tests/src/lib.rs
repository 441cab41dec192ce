//! `wren-tests`: the cross-crate end-to-end tests of Wren (in `tests/tests/`) and the
//! support they share, one module per purpose:
//! - [`table`]: a route table fed by the peer, counted in the kernel, and `ip monitor
//!   route` (restart and supervision tests);
//! - [`peer_bench`]: bgpd in one namespace and the adversarial peer (crate `peer`) in
//!   another (conformance and fault tests);
//! - [`ipam_node`]: a node's `[ipam]` config section, forwarding, blackhole routes and
//!   FRR's table (IPAM tests; their pods are `lab::topology::Pod::attach`);
//! - [`pod_traffic`]: TCP, ping with Don't Fragment and the VXLAN FDB (overlay tests).
//!
//! bgpd itself is started with `lab::fixture` (shared with bgpd's own tests). Every
//! binary comes from the target dir (`lab::fixture::wren_binary`), so run
//! `cargo build --workspace --bins` before `cargo test -p wren-tests` (`scripts/test`
//! does). Nothing shipped depends on this package.

// Test support: a failed step is a failed test, and panics say which step.
#![allow(clippy::unwrap_used)]

pub mod ipam_node;
pub mod peer_bench;
pub mod pod_traffic;
pub mod table;
