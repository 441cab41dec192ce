//! Test fixtures: a fresh store of each kind (SQLite in a temporary directory, etcd
//! started by `lab::Etcd` on free ports, a real kube-apiserver started by
//! `lab::kube::ControlPlane` with the IPAM CRDs applied) with a guard that removes it
//! on drop.
#![allow(dead_code)]

use ipam::store::{EtcdStore, KubernetesStore, SqliteStore};

/// Keeps a test's store alive; dropping it removes the SQLite file or stops etcd.
pub struct Guard {
    _dir: Option<tempfile::TempDir>,
    etcd: Option<lab::Etcd>,
    control_plane: Option<lab::kube::ControlPlane>,
    pub url: String,
}

impl Guard {
    pub fn etcd(&self) -> Option<&lab::Etcd> {
        self.etcd.as_ref()
    }

    pub fn etcd_mut(&mut self) -> Option<&mut lab::Etcd> {
        self.etcd.as_mut()
    }

    pub fn control_plane(&self) -> Option<&lab::kube::ControlPlane> {
        self.control_plane.as_ref()
    }
}

pub async fn sqlite() -> Option<(SqliteStore, Guard)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ipam.db", dir.path().display());
    let store = SqliteStore::open(&url).await.unwrap();
    Some((
        store,
        Guard {
            _dir: Some(dir),
            etcd: None,
            control_plane: None,
            url,
        },
    ))
}

/// `None` (a printed skip) when etcd is not installed, unless WREN_REQUIRE_LAB=1.
pub async fn etcd() -> Option<(EtcdStore, Guard)> {
    let ready = lab::require!(Etcd)?;
    drop(ready);
    let etcd = tokio::task::spawn_blocking(lab::Etcd::on_host)
        .await
        .unwrap()
        .unwrap();
    let url = etcd.endpoint().replace("http://", "etcd://");
    let store = EtcdStore::open(&url).await.unwrap();
    Some((
        store,
        Guard {
            _dir: None,
            etcd: Some(etcd),
            control_plane: None,
            url,
        },
    ))
}

/// `None` (a printed skip) when the API server is not built, unless WREN_REQUIRE_LAB=1.
/// The CRDs are those of `ipam::kubernetes::crds()`, applied with kubectl.
pub async fn kubernetes() -> Option<(KubernetesStore, Guard)> {
    let ready = lab::require!(KubeApiserver)?;
    drop(ready);
    let control_plane = tokio::task::spawn_blocking(|| {
        let control_plane = lab::kube::ControlPlane::on_host().unwrap();
        let list = serde_json::json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": ipam::kubernetes::crds(),
        });
        control_plane
            .kubectl_input(&["apply", "-f", "-"], &list.to_string())
            .unwrap();
        control_plane
            .kubectl(&[
                "wait",
                "--for=condition=established",
                "--timeout=60s",
                "crd",
                "--all",
            ])
            .unwrap();
        control_plane
    })
    .await
    .unwrap();
    let url = format!("kubernetes://{}", control_plane.kubeconfig().display());
    let store = KubernetesStore::open(&url).await.unwrap();
    Some((
        store,
        Guard {
            _dir: None,
            etcd: None,
            control_plane: Some(control_plane),
            url,
        },
    ))
}

/// Polls `f` every 10 ms until it returns true, failing after 60 s.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !f().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Creates the Node objects a kubelet would for `names`, when `url` is a Kubernetes
/// datastore (its registry is the cluster's Nodes); nothing for the other stores.
pub fn create_nodes(url: &str, names: &[&str]) {
    let Some(kubeconfig) = url.strip_prefix("kubernetes://") else {
        return;
    };
    let items: Vec<serde_json::Value> = names
        .iter()
        .map(|name| {
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": { "name": name },
            })
        })
        .collect();
    let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": items });
    let kubectl = lab::kube::kubectl_binary().unwrap();
    let mut child = std::process::Command::new(kubectl)
        .args(["--kubeconfig", kubeconfig, "apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.to_string().as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "kubectl apply of Nodes");
}

/// Each async test fn of `tests` once per datastore of `kinds` (a module per kind, the
/// test named as the fn: `sqlite::create_then_read_back`), given `argument` made from
/// the fresh store `store` (`ipam::Ipam::new(store)`, `&store`); a kind the machine
/// lacks skips or fails as its fixture above says.
///
/// `battery!([sqlite, etcd], |store| &store, [get_missing_is_none, ...]);`
#[allow(unused_macros)] // only the battery files use it
macro_rules! battery {
    ([$($kind:ident),* $(,)?], |$store:ident| $argument:expr, $tests:tt $(,)?) => {
        $( battery!(@kind $kind, |$store| $argument, $tests); )*
    };
    (@kind $kind:ident, |$store:ident| $argument:expr, [$($test:ident),* $(,)?]) => {
        mod $kind {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(($store, _guard)) = super::support::$kind().await else { return };
                    super::$test($argument).await;
                }
            )*
        }
    };
}
#[allow(unused_imports)] // only the battery files use it
pub(crate) use battery;
