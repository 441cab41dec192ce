//! `wren`, the CNI main plugin (CNI specification 1.1: ADD, DEL, CHECK, STATUS, GC and
//! VERSION; configurations 0.3.1 to 1.1.0), with delegated IPAM (`"ipam": {"type":
//! "wren-ipam"}`).
//!
//! Per pod and family it makes what Calico's users expect on a node:
//! - host side: a veth `wren` + 11 hex characters of sha1(`NAMESPACE.POD`) (else of the
//!   container id), MAC ee:ee:ee:ee:ee:ee, proxy ARP/NDP, forwarding, `IP/32 dev wrenX
//!   scope link` (IPv6 `/128`), `ip_forward` on;
//! - pod side: `eth0` with `IP/32`, `169.254.1.1 dev eth0 scope link`, a permanent
//!   neighbour entry `169.254.1.1 lladdr ee:ee:ee:ee:ee:ee` (the pod never depends on
//!   proxy ARP, which stays on as the fallback: calico#3270), `default via 169.254.1.1`;
//!   IPv6 `IP/128` and `default via fe80::ecee:eeff:feee:eeee`;
//! - the MTU bgpd writes ([`mtu`]) on both ends.
//!
//! Kernel work goes over rtnetlink ([`kernel`]); the pod's side runs on a thread inside
//! its namespace with its own netlink socket ([`netns`]). [`run`] is the whole plugin
//! minus the process plumbing.

pub mod add;
pub mod check;
pub mod config;
pub mod del;
pub mod delegate;
pub mod error;
pub mod kernel;
pub mod mtu;
pub mod netns;
pub mod pod;
pub mod sysctl;

use rscni_types::types::{Cmd, ErrorResult};
use rscni_types::version::SpecVersion;

pub use config::{Config, Env};
pub use error::{Error, Result};

/// Runs one invocation: `Ok` is what to print on stdout (exit 0), `Err` the error and
/// the version to report it in (exit 1).
pub fn run(env: &Env, stdin: &[u8]) -> std::result::Result<String, (SpecVersion, Error)> {
    if env.command == Cmd::Version {
        let info = config::plugin_info();
        return Ok(serde_json::to_string(&info).unwrap_or_default());
    }
    let config = Config::parse(stdin, env.command).map_err(|e| (declared_version(stdin), e))?;
    let version = config.version;
    netns::block_on(async {
        match env.command {
            Cmd::Add => add::add(env, &config).await,
            Cmd::Del => del::del(env, &config).await.map(|()| String::new()),
            Cmd::Check => check::check(env, &config).await.map(|()| String::new()),
            Cmd::Status => status(env, &config).await.map(|()| String::new()),
            Cmd::Gc => del::gc(env, &config).await.map(|()| String::new()),
            Cmd::Version => Ok(String::new()),
        }
    })
    .map_err(|e| (version, e))
}

/// STATUS: the pod MTU must be known and the IPAM plugin able to hand out addresses;
/// otherwise error 50 ("plugin not available"), or IPAM's own error.
async fn status(env: &Env, config: &Config) -> Result<()> {
    mtu::resolve(&config.plugin).map_err(|e| Error::Protocol {
        code: error::code::NOT_AVAILABLE,
        message: e.to_string(),
    })?;
    delegate::run(env, config, "STATUS").await?;
    Ok(())
}

/// The version stdin declares when it is one this plugin speaks, else 1.1.0 (for
/// reporting errors about the configuration itself).
fn declared_version(stdin: &[u8]) -> SpecVersion {
    serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion")?.as_str()?.parse::<SpecVersion>().ok())
        .filter(|v| config::plugin_info().supported_versions().contains(v))
        .unwrap_or(SpecVersion::new(1, 1, 0))
}

/// The error object to print.
pub fn error_json(version: SpecVersion, error: &Error) -> String {
    let wire = rscni_types::error::Error::Custom(error.code(), error.to_string(), String::new());
    serde_json::to_string(&ErrorResult::new(version, &wire)).unwrap_or_default()
}
