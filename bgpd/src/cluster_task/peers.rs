//! The cluster's BGP settings as the supervisor takes them: the `BGPPeer`s'
//! neighbors, parsed and checked as the file's are, and the cluster's settings the
//! file overrides, each logged once.

use cluster::translate::NodeSettings;

use crate::config::{Config, NeighborConfig};

/// The neighbors of `settings`, each parsed and checked as the file's are; those
/// that fail are left out with one line each.
pub fn neighbors(file: &Config, settings: &NodeSettings) -> Vec<NeighborConfig> {
    let mut out = Vec::new();
    for table in &settings.neighbors {
        let from = table
            .get("description")
            .and_then(|value| value.as_str())
            .unwrap_or("a BGPPeer")
            .to_owned();
        let neighbor: NeighborConfig = match toml::Value::Table(table.clone()).try_into() {
            Ok(neighbor) => neighbor,
            Err(error) => {
                tracing::warn!("{from}: refused: {error}");
                continue;
            }
        };
        // The file's checks, on the file with this neighbor added.
        let mut candidate = file.clone();
        if candidate.neighbor(neighbor.address).is_some() {
            continue;
        }
        candidate.bgp.neighbors.push(neighbor.clone());
        let problems =
            crate::config::check::check(&candidate, &crate::config::error::Locator::new(&from, ""));
        if let Some(problem) = problems.first() {
            tracing::warn!("{problem}: not peering");
            continue;
        }
        out.push(neighbor);
    }
    out
}

/// The cluster's settings the file overrides, each logged once per value.
#[derive(Debug, Default)]
pub struct Unapplied {
    told: Vec<String>,
}

impl Unapplied {
    pub fn report(&mut self, file: &Config, settings: &NodeSettings) {
        let mut lines = Vec::new();
        if let Some(asn) = settings.asn.filter(|asn| *asn != file.bgp.asn.get()) {
            lines.push(format!(
                "the cluster's AS {asn} is not applied: [bgp] asn {} of the file wins",
                file.bgp.asn.get()
            ));
        }
        if let Some(port) = settings
            .listen_port
            .filter(|port| file.bgp.listen.iter().any(|a| a.port() != *port))
        {
            lines.push(format!(
                "BGPConfiguration listenPort {port} is not applied: [bgp] listen of the file wins"
            ));
        }
        // Only a mesh the file sets wins; else the cluster's is in force (the
        // supervisor's `in_force`).
        if let Some(mesh) = settings
            .node_mesh
            .filter(|mesh| file.bgp.node_mesh.is_some_and(|own| own != *mesh))
        {
            lines.push(format!(
                "BGPConfiguration nodeToNodeMeshEnabled {mesh} is not applied: bgpd follows [bgp] node_mesh ({})",
                file.node_mesh()
            ));
        }
        for line in lines {
            if !self.told.contains(&line) {
                tracing::warn!("{line}");
                self.told.push(line);
            }
        }
    }
}
