//! `[metrics]`: the HTTP listener of `/metrics`, `/healthz` and `/readyz`.
//!
//! ```toml
//! [metrics]
//! listen = "10.0.0.1:9180"
//! ```
//!
//! Without the section nothing listens: by default bgpd listens on TCP for BGP
//! only, unless [`LISTEN_ENV`] names the listener (the DaemonSet sets it to the
//! node's address, which one ConfigMap for every node cannot say; the file's
//! section wins). Changes take effect at the next start.

use std::net::SocketAddr;

use serde::Deserialize;

/// The environment variable that gives `listen` when the file has no `[metrics]`.
pub const LISTEN_ENV: &str = "WREN_METRICS_LISTEN";

/// The `[metrics]` section.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address and port the HTTP listener binds.
    pub listen: SocketAddr,
}
