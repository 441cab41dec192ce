//! `show-health`: what the DaemonSet's probes ask (`bgpctl health`). bgpd answers
//! only when its control server and its rib task both answer (the rib tells whether
//! the first convergence is done), so an answer at all means alive; ready means
//! converged, and with `[ipam]` the IPAM datastore reachable.

use serde::{Deserialize, Serialize};

/// bgpd's health.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// The first convergence is done (End-of-RIB from every neighbor and the IPAM
    /// task's first synchronisation, or the restart time passed).
    pub converged: bool,
    pub datastore: Datastore,
}

/// The IPAM datastore as the IPAM task last found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Datastore {
    /// No `[ipam]`: nothing to reach.
    None,
    /// Not connected yet.
    Connecting,
    Reachable,
    /// The datastore's one-line error.
    Unreachable(String),
}

impl Health {
    /// Converged, with the datastore (if any) reachable.
    pub fn ready(&self) -> bool {
        self.converged && matches!(self.datastore, Datastore::None | Datastore::Reachable)
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let datastore = match &self.datastore {
            Datastore::None => String::from("none"),
            Datastore::Connecting => String::from("connecting"),
            Datastore::Reachable => String::from("reachable"),
            Datastore::Unreachable(error) => format!("unreachable ({error})"),
        };
        write!(
            f,
            "ready: {}, converged: {}, datastore: {datastore}",
            yes(self.ready()),
            yes(self.converged)
        )
    }
}

fn yes(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_needs_convergence_and_the_datastore() {
        let health = |converged, datastore| Health {
            converged,
            datastore,
        };
        assert!(health(true, Datastore::None).ready());
        assert!(health(true, Datastore::Reachable).ready());
        assert!(!health(false, Datastore::Reachable).ready());
        assert!(!health(true, Datastore::Connecting).ready());
        assert!(!health(true, Datastore::Unreachable("down".into())).ready());
        assert_eq!(
            health(true, Datastore::Unreachable("down".into())).to_string(),
            "ready: no, converged: yes, datastore: unreachable (down)"
        );
    }
}
