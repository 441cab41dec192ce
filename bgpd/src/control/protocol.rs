//! The control socket's protocol: one JSON object per line each way. A request names
//! its `command`; the answer is `{"ok": VALUE}` or `{"error": "one line"}`.
//!
//! ```text
//! {"command":"show-neighbors"}
//! {"command":"show-neighbor","address":"10.0.0.2"}
//! {"command":"show-routes","query":{"prefix":null,"family":"ipv4","neighbor":null,"view":"loc-rib"}}
//! {"command":"show-fib"}
//! {"command":"neighbor","address":"10.0.0.2","action":"shutdown","message":"maintenance"}
//! {"command":"reload"}
//! {"command":"ipam","request":{"op":"usage"}}
//! {"command":"ipam-changed"}
//! ```
//!
//! Values: `show-neighbors` gives a list of [`NeighborEntry`] (the fields of
//! [`NeighborView`] plus message counters and description), `show-neighbor` one
//! entry with `detail`, `show-routes` a list of [`RouteView`](crate::view::RouteView),
//! `show-fib` route-sync's `Snapshot`, `ipam` the JSON text of its answer (see
//! [`crate::ipam::ops`]), `ipam-changed` (sent by the `wren-ipam` CNI plugin after
//! each ADD and DEL) null, the others a line of text (reload: the summary object).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ipam::ops::IpamRequest;
use crate::supervisor::NeighborAction;
use crate::view::{NeighborView, RouteQuery};

/// Longest request line the server reads.
pub const MAX_REQUEST_LEN: usize = 64 * 1024;

/// A request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    ShowNeighbors,
    ShowNeighbor {
        address: IpAddr,
    },
    ShowRoutes {
        #[serde(default)]
        query: RouteQuery,
    },
    ShowFib,
    Neighbor {
        address: IpAddr,
        action: NeighborAction,
        #[serde(default)]
        message: Option<String>,
    },
    Reload,
    /// An IPAM command, run against bgpd's datastore.
    Ipam {
        request: IpamRequest,
    },
    /// IPAM changed (a CNI ADD or DEL): re-read the node's allocations now.
    IpamChanged,
}

impl Request {
    /// True for requests that change nothing (allowed to `read_only_group`).
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            Request::ShowNeighbors
                | Request::ShowNeighbor { .. }
                | Request::ShowRoutes { .. }
                | Request::ShowFib
        ) || matches!(self, Request::Ipam { request } if request.is_read_only())
    }
}

/// An answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Response {
    Ok(serde_json::Value),
    Error(String),
}

/// One neighbor in `show neighbors`: the contract fields of [`NeighborView`] at the
/// top level, plus what the summary table shows besides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighborEntry {
    #[serde(flatten)]
    pub view: NeighborView,
    pub description: Option<String>,
    pub messages_received: u64,
    pub messages_sent: u64,
    /// Shut down by an operator or the config.
    pub admin_down: bool,
    /// Times the session reached Established.
    pub established_count: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_as_documented() {
        let request: Request = serde_json::from_str(
            r#"{"command":"neighbor","address":"10.0.0.2","action":"shutdown","message":"bye"}"#,
        )
        .unwrap();
        assert_eq!(
            request,
            Request::Neighbor {
                address: "10.0.0.2".parse().unwrap(),
                action: NeighborAction::Shutdown,
                message: Some("bye".into())
            }
        );
        assert!(!request.is_read_only());
        let request: Request = serde_json::from_str(r#"{"command":"show-routes"}"#).unwrap();
        assert!(request.is_read_only());
        assert!(serde_json::from_str::<Request>(r#"{"command":"format-disk"}"#).is_err());
        let text = serde_json::to_string(&Response::Error("no".into())).unwrap();
        assert_eq!(text, r#"{"error":"no"}"#);
    }

    #[test]
    fn entries_keep_the_contract_field_names() {
        let entry = NeighborEntry {
            view: NeighborView {
                address: "10.0.0.2".parse().unwrap(),
                remote_asn: 65001,
                state: "Established".into(),
                uptime_secs: 5,
                prefixes_received: 3,
                prefixes_advertised: 1,
                detail: None,
            },
            description: None,
            messages_received: 10,
            messages_sent: 9,
            admin_down: false,
            established_count: 1,
        };
        let value = serde_json::to_value(&entry).unwrap();
        for key in [
            "address",
            "remote_asn",
            "state",
            "uptime_secs",
            "prefixes_received",
            "prefixes_advertised",
        ] {
            assert!(value.get(key).is_some(), "{key} missing in {value}");
        }
        let back: NeighborEntry = serde_json::from_value(value).unwrap();
        assert_eq!(back, entry);
    }
}
