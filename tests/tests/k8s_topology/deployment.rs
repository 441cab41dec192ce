//! The lab under test: the topology deployed once, and its nodes, FRR and kubectl.

use super::*;

/// The deployed topology and the tools the checks run.
pub(crate) struct K8s {
    pub(crate) lab: Lab,
    pub(crate) kubectl: PathBuf,
    pub(crate) kubeconfig: PathBuf,
    pub(crate) bgpctl: PathBuf,
}

impl K8s {
    /// `kubectl ARGS` as the lab's administrator, in the API server's node.
    pub(crate) fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec![
            self.kubectl.to_str().unwrap(),
            "--kubeconfig",
            self.kubeconfig.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        self.lab
            .exec("apiserver", &all)
            .map_err(|e| format!("kubectl {args:?}: {e}"))
    }

    /// `kubectl get WHAT -o json`.
    pub(crate) fn get(&self, what: &str) -> Result<Value, String> {
        let text = self.kubectl(&["get", what, "-o", "json"])?;
        serde_json::from_str(&text).map_err(|e| format!("kubectl get {what}: {e}: {text}"))
    }

    /// `bgpctl --json ARGS` in a node (reaching the node's own bgpd).
    pub(crate) fn bgpctl(&self, node: &str, args: &[&str]) -> Result<Value, String> {
        let mut all = vec![self.bgpctl.to_str().unwrap(), "--json"];
        all.extend_from_slice(args);
        let out = self.lab.exec(node, &all).map_err(|e| e.to_string())?;
        lab::fixture::parse_bgpctl_json(args, &out)
            .map_err(|e| format!("bgpctl {args:?} on {node}: {e}: {out}"))
    }

    /// Patches the BGPPeer rack1-tor's holdTime.
    pub(crate) fn set_tor_hold_time(&self, seconds: u64) {
        let patch = format!(r#"{{"spec":{{"holdTime":{seconds}}}}}"#);
        self.kubectl(&[
            "patch",
            "bgppeer",
            "rack1-tor",
            "--type=merge",
            "-p",
            &patch,
        ])
        .unwrap();
    }

    /// `kubectl apply` of a manifest given as text.
    pub(crate) fn apply(&self, manifest: &str) {
        let path = self
            .lab
            .dir()
            .join(format!("{}.yaml", lab::unique_name("manifest")));
        std::fs::write(&path, manifest).unwrap();
        self.kubectl(&["apply", "-f", path.to_str().unwrap()])
            .unwrap();
    }

    /// The neighbors bgpctl lists on a node: address to (state, times established).
    pub(crate) fn neighbors(&self, node: &str) -> Result<BTreeMap<String, (String, u64)>, String> {
        Ok(self
            .bgpctl(node, &["show", "neighbors"])?
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| {
                Some((
                    n["address"].as_str()?.to_owned(),
                    (
                        n["state"].as_str()?.to_owned(),
                        n["established_count"].as_u64()?,
                    ),
                ))
            })
            .collect())
    }

    /// Waits until every node's kernel routes every other node's block (in `blocks`)
    /// through its owner.
    pub(crate) fn wait_kernels(&self, blocks: &BTreeMap<String, String>) {
        for (node, _) in NODES {
            let netns = self.lab.netns(node).unwrap();
            for (block, owner) in blocks.iter().filter(|(_, owner)| *owner != node) {
                let address = NODES.iter().find(|(n, _)| n == owner).unwrap().1;
                wait_for(
                    TIMEOUT,
                    &format!("{block} of {owner} in {node}'s kernel"),
                    || match netns.route(block) {
                        Ok(Some(route)) if route["gateway"] == address => Ok(()),
                        Ok(other) => Err(format!("route {other:?}")),
                        Err(error) => Err(error.to_string()),
                    },
                )
                .unwrap();
            }
        }
    }

    /// The IPAMBlock objects: CIDR to the node it is affine to.
    pub(crate) fn blocks(&self) -> Result<BTreeMap<String, String>, String> {
        Ok(self
            .get("ipamblocks")?
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|b| {
                Some((
                    b["spec"]["cidr"].as_str()?.to_owned(),
                    b["spec"]["affinity"].as_str()?.to_owned(),
                ))
            })
            .collect())
    }
}
