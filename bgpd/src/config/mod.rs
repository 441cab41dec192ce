//! bgpd's configuration: the TOML file parsed into typed structs.
//!
//! Unknown keys are refused everywhere (`deny_unknown_fields`); values carry their
//! invariants in their types (an [`Asn`] is never 0, a [`HoldTime`] is never 1 or 2).
//! The key names are a contract with users and tests (issue 3).
//!
//! ```toml
//! [bgp]
//! asn = 64512
//! router_id = "10.0.0.1"
//! listen = ["0.0.0.0:179", "[::]:179"]   # empty list: no listening
//! [[bgp.neighbor]]
//! address = "10.0.0.2"
//! remote_asn = 65001
//! [[bgp.network]]
//! prefix = "10.1.0.0/24"
//! [control]
//! socket = "/run/wren/bgpd.sock"
//! [metrics]
//! listen = "10.0.0.1:9180"
//! ```

pub mod bfd;
pub mod check;
pub mod dataplane;
pub mod error;
pub mod fib;
pub mod ipam;
pub mod kubernetes;
pub mod metrics;
pub mod policy;
mod section;
pub mod session;
#[cfg(test)]
mod tests;
pub mod types;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

pub use dataplane::DataplaneConfig;
pub use error::{ConfigError, ConfigErrors};
pub use fib::FibConfig;
pub use ipam::{IpamConfig, PoolConfig};
pub use kubernetes::KubernetesConfig;
pub use metrics::MetricsConfig;
pub use policy::{
    FilterAction, FilterConfig, FilterRule, PolicyConfig, PrefixListConfig, PrefixListRule,
    RouteSourceMatch,
};
pub use section::{ListenRangeConfig, NeighborConfig};
pub use session::SessionOptions;
pub use types::{
    Asn, CommunityValue, FamilyName, FileMode, HoldTime, InterfaceName, MaxPaths, MaxPrefixes,
    unicast_family,
};

/// Where bgpd looks for its configuration when not told.
pub const DEFAULT_PATH: &str = "/etc/wren/bgpd.toml";

/// The whole configuration file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub bgp: BgpConfig,
    #[serde(default)]
    pub control: ControlConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub fib: FibConfig,
    /// Pod address management (see [`ipam`]); none: bgpd advertises no IPAM blocks.
    #[serde(default)]
    pub ipam: Option<IpamConfig>,
    /// The pod MTU and what bgpd programs on the host beside routes (see
    /// [`dataplane`]); the dataplane task runs with this section or with `[ipam]`.
    #[serde(default)]
    pub dataplane: Option<DataplaneConfig>,
    /// BGP peers from the cluster's custom resources, the Node condition (see
    /// [`kubernetes`]); none: no Kubernetes API.
    #[serde(default)]
    pub kubernetes: Option<KubernetesConfig>,
    /// The Prometheus endpoint and health checks over HTTP (see [`metrics`]); none:
    /// no HTTP listener.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
}

impl Config {
    /// Reads and checks the configuration file at `path`: every problem found, each
    /// naming the file, line and key.
    /// A file without `[bgp] router_id` takes it from [`ROUTER_ID_ENV`] when set, and
    /// one without `[metrics]` its listener from [`metrics::LISTEN_ENV`] (the
    /// DaemonSet's one ConfigMap for every node, each with its own address).
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| {
            ConfigErrors(vec![
                error::Locator::new(&file, "").file_error(format!("cannot read: {error}")),
            ])
        })?;
        let router_id = std::env::var(ROUTER_ID_ENV).ok();
        let metrics_listen = std::env::var(metrics::LISTEN_ENV).ok();
        let config = Config::parse_with(&text, &file, router_id.as_deref())?;
        config.with_metrics_listen(&text, &file, metrics_listen.as_deref())
    }

    /// `config` with `[metrics] listen` from `value` (the value of
    /// [`metrics::LISTEN_ENV`]) when the text has no `[metrics]`; an empty value is
    /// none.
    pub fn with_metrics_listen(
        mut self,
        text: &str,
        file: &str,
        value: Option<&str>,
    ) -> Result<Config, ConfigErrors> {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(self);
        };
        if self.metrics.is_some() {
            return Ok(self);
        }
        let listen = value.parse().map_err(|_| {
            ConfigErrors(vec![error::Locator::new(file, text).file_error(format!(
                "{}={value:?} is not an ADDR:PORT (the metrics listener when [metrics] names none)",
                metrics::LISTEN_ENV
            ))])
        })?;
        self.metrics = Some(MetricsConfig { listen });
        Ok(self)
    }

    /// Parses and checks a configuration text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigErrors> {
        Config::parse_with(text, file, None)
    }

    /// [`Config::parse`] with the value of [`ROUTER_ID_ENV`], used when the text
    /// names no router id.
    pub fn parse_with(
        text: &str,
        file: &str,
        router_id: Option<&str>,
    ) -> Result<Config, ConfigErrors> {
        let locator = error::Locator::new(file, text);
        let mut config: Config =
            toml::from_str(text).map_err(|error| ConfigErrors(vec![locator.toml_error(&error)]))?;
        if let Some(text) = router_id.filter(|_| config.bgp.router_id.is_unspecified()) {
            config.bgp.router_id = text.trim().parse().map_err(|_| {
                ConfigErrors(vec![locator.file_error(format!(
                    "{ROUTER_ID_ENV}={text:?} is not an IPv4 address (the router id when [bgp] names none)"
                ))])
            })?;
        }
        let problems = check::check(&config, &locator);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(problems))
        }
    }

    /// The neighbor configured for `address`, if any.
    pub fn neighbor(&self, address: IpAddr) -> Option<&NeighborConfig> {
        self.bgp.neighbors.iter().find(|n| n.address == address)
    }

    /// Whether bgpd peers with every node of the registry: `[bgp] node_mesh`, by
    /// default on when `[ipam]` is configured.
    pub fn node_mesh(&self) -> bool {
        self.bgp.node_mesh.unwrap_or(self.ipam.is_some())
    }

    /// The session options for `address`: its neighbor's, else those of the listen
    /// range holding it.
    pub fn session_options(&self, address: IpAddr) -> Option<&SessionOptions> {
        match self.neighbor(address) {
            Some(neighbor) => Some(&neighbor.session),
            None => self.listen_range(address).map(|range| &range.session),
        }
    }

    /// The listen range that holds `address`, if any (ranges never overlap).
    pub fn listen_range(&self, address: IpAddr) -> Option<&ListenRangeConfig> {
        self.bgp
            .listen_ranges
            .iter()
            .find(|range| range.prefix.contains(&address))
    }
}

/// The environment variable that gives the router id when `[bgp]` names none.
pub const ROUTER_ID_ENV: &str = "WREN_ROUTER_ID";

fn no_router_id() -> Ipv4Addr {
    Ipv4Addr::UNSPECIFIED
}

/// `[bgp]`: the speaker.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpConfig {
    pub asn: Asn,
    /// Required, here or in [`ROUTER_ID_ENV`] (0.0.0.0 when neither names one, which
    /// the checks refuse).
    #[serde(default = "no_router_id")]
    pub router_id: Ipv4Addr,
    /// Addresses to accept BGP connections on; empty: accept none.
    #[serde(default = "default_listen")]
    pub listen: Vec<SocketAddr>,
    /// Equal-cost paths installed and used per prefix (1: no ECMP).
    #[serde(default)]
    pub max_paths: MaxPaths,
    /// Route reflector cluster id (RFC 4456); default: the router id.
    #[serde(default)]
    pub cluster_id: Option<Ipv4Addr>,
    #[serde(default, rename = "neighbor")]
    pub neighbors: Vec<NeighborConfig>,
    #[serde(default, rename = "listen_range")]
    pub listen_ranges: Vec<ListenRangeConfig>,
    #[serde(default, rename = "network")]
    pub networks: Vec<NetworkConfig>,
    /// Graceful restart (RFC 4724) for every session.
    #[serde(default)]
    pub graceful_restart: GracefulRestartConfig,
    /// Peer with every other node of the IPAM node registry (iBGP with nodes of our
    /// AS, eBGP with the others), following joins and leaves. Default: on when
    /// `[ipam]` is configured; needs `[ipam]`.
    #[serde(default)]
    pub node_mesh: Option<bool>,
    /// BFD on every session of the node mesh, as a neighbor's `bfd` key
    /// (`config::bfd`). Needs the node mesh on.
    #[serde(default, deserialize_with = "bfd::deserialize")]
    pub node_mesh_bfd: Option<bfd::BfdOptions>,
}

/// `[bgp.graceful_restart]`.
///
/// As helper: when a peer that advertised graceful restart goes down, its routes are
/// kept (stale) for the restart time it announced, until it sends End-of-RIB again.
/// As restarting speaker: bgpd announces the capability with `restart_time`; after a
/// restart within that time it sets the Restart State bit and the Forwarding State
/// flags, and the kernel routes it left behind stay until it has converged again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GracefulRestartConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Seconds peers should keep our routes after our session drops (at most 4095).
    #[serde(default = "default_restart_time")]
    pub restart_time: u16,
    /// Seconds we keep a restarting peer's routes at most, waiting for its End-of-RIB.
    #[serde(default = "default_stale_routes_time")]
    pub stale_routes_time: u32,
}

impl Default for GracefulRestartConfig {
    fn default() -> Self {
        GracefulRestartConfig {
            enabled: true,
            restart_time: default_restart_time(),
            stale_routes_time: default_stale_routes_time(),
        }
    }
}

/// `[[bgp.network]]`: a route this node originates.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    pub prefix: IpNet,
    #[serde(default)]
    pub communities: Vec<CommunityValue>,
}

/// `[control]`: the control socket bgpctl talks to.
///
/// The socket file's `mode`, `owner` and `group` decide who can connect at all. When
/// `group` or `read_only_group` is set, bgpd also checks each caller's credentials
/// (SO_PEERCRED and the caller's groups): root, bgpd's own user, the socket's owner
/// and members of `group` may use every command; members of `read_only_group` may
/// use the `show` commands only; anyone else is refused. For viewers in
/// `read_only_group` to reach the socket, give it a mode that lets them open it
/// (e.g. `mode = 0o666`): the credential check then does the sorting.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// Permission bits of the socket (default 0660), as `0o660` or `"0660"`.
    #[serde(default)]
    pub mode: FileMode,
    /// User owning the socket (name or number); default: bgpd's user.
    #[serde(default)]
    pub owner: Option<String>,
    /// Group owning the socket (name or number); default: bgpd's group.
    #[serde(default)]
    pub group: Option<String>,
    /// Members of this group (name or number) may use `show` commands only.
    #[serde(default)]
    pub read_only_group: Option<String>,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: default_socket(),
            mode: FileMode::default(),
            owner: None,
            group: None,
            read_only_group: None,
        }
    }
}

/// `[log]`: where and how bgpd logs (always to stderr).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter, e.g. "info" or "bgpd=debug".
    #[serde(default)]
    pub level: Option<String>,
}

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

fn default_listen() -> Vec<SocketAddr> {
    vec![
        SocketAddr::from(([0, 0, 0, 0], bgp_proto::BGP_PORT)),
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, bgp_proto::BGP_PORT)),
    ]
}

fn default_true() -> bool {
    true
}

fn default_restart_time() -> u16 {
    120
}

fn default_stale_routes_time() -> u32 {
    360
}

fn default_socket() -> PathBuf {
    PathBuf::from("/run/wren/bgpd.sock")
}
