//! The IPAM collector against a real kube-apiserver (the Node objects and the Lease) and
//! a real IPAM datastore (SQLite): deleted Nodes are released whole, empty blocks go on
//! their second sight with one block kept per node, only the Lease holder collects and
//! another node takes over when it stops, 100 Nodes deleted at once are cleaned up, and
//! the addresses of a pod that is gone go after the grace and a re-check, while a live
//! pod's, a handle's without pod and any after a refused Pod GET stay. Needs root and the built API server (fails with WREN_REQUIRE_LAB=1).
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::collector::{self, Collector, Settings};
use ipam::{AnyStore, Family, Ipam, PodReference, Pool};
use lab::kube::ControlPlane;

const TIMEOUT: Duration = Duration::from_secs(60);

async fn client(control_plane: &ControlPlane) -> kube::Client {
    client_of(control_plane.kubeconfig()).await
}

async fn client_of(kubeconfig: &std::path::Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// Node objects, as the kubelets would register them.
fn create_nodes(control_plane: &ControlPlane, names: &[String], label: &str) {
    let mut yaml = String::new();
    for name in names {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    group: {label}\n"
        ));
    }
    control_plane
        .kubectl_input(&["apply", "-f", "-"], &yaml)
        .unwrap();
}

async fn ipam(dir: &std::path::Path, block_size: u8) -> Arc<Ipam<AnyStore>> {
    let url = format!("sqlite://{}", dir.join("ipam.db").display());
    let ipam = ipam::connect(&url).await.unwrap();
    let mut pool = Pool::new("10.244.0.0/16".parse().unwrap());
    pool.block_size = block_size;
    ipam.add_pool(pool).await.unwrap();
    Arc::new(ipam)
}

/// Registers `node` with a block and one pod address.
async fn node_with_pod(ipam: &Ipam<AnyStore>, node: &str) {
    ipam.register_node(&ipam::Node {
        name: node.to_owned(),
        addresses: vec![],
        asn: 64512,
        labels: Default::default(),
        vteps: Default::default(),
    })
    .await
    .unwrap();
    ipam.assign(node, &format!("pod-{node}"), Family::Ipv4, 1)
        .await
        .unwrap();
}

async fn blocks_of(ipam: &Ipam<AnyStore>, node: &str) -> usize {
    ipam.node_allocations(node).await.unwrap().blocks.len()
}

async fn assert_clean(ipam: &Ipam<AnyStore>) {
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_nodes_and_empty_blocks_are_released() {
    let Some(ready) = lab::require!(Root, KubeApiserver) else {
        return;
    };
    let control_plane = ControlPlane::on_host().unwrap();
    let names: Vec<String> = ["node-a", "node-b", "node-c"].map(String::from).to_vec();
    create_nodes(&control_plane, &names, "three");
    // /29 blocks (8 addresses), so that one node's nine addresses take two blocks.
    let ipam = ipam(ready.dir(), 29).await;
    for node in &names {
        node_with_pod(&ipam, node).await;
    }
    ipam.assign("node-a", "filler", Family::Ipv4, 8)
        .await
        .unwrap();
    assert_eq!(blocks_of(&ipam, "node-a").await, 2);
    ipam.release_handle("filler").await.unwrap();

    let mut collector = Collector::new(
        client(&control_plane).await,
        ipam.clone(),
        Settings::new("node-a"),
    );
    // First sight of node-a's empty block: nothing goes.
    let first = collector.pass().await.unwrap();
    assert_eq!(first, collector::PassReport::default());
    assert_eq!(blocks_of(&ipam, "node-a").await, 2);

    control_plane
        .kubectl(&["delete", "node", "node-b"])
        .unwrap();
    let second = collector.pass().await.unwrap();
    assert_eq!(second.nodes_released, vec!["node-b".to_owned()]);
    assert_eq!(second.addresses_released, 1);
    assert_eq!(second.blocks_released.len(), 2, "{second:?}");
    assert_eq!(blocks_of(&ipam, "node-a").await, 1);
    assert_eq!(blocks_of(&ipam, "node-b").await, 0);
    assert_eq!(blocks_of(&ipam, "node-c").await, 1);
    assert!(ipam.node("node-b").await.unwrap().is_none());
    assert_eq!(ipam.addresses_of("pod-node-c").await.unwrap().len(), 1);
    assert_clean(&ipam).await;

    // node-a's last block is kept even empty; a further pass changes nothing.
    ipam.release_handle("pod-node-a").await.unwrap();
    collector.pass().await.unwrap();
    let last = collector.pass().await.unwrap();
    assert_eq!(last, collector::PassReport::default());
    assert_eq!(blocks_of(&ipam, "node-a").await, 1);

    // A pass that does not find its own node releases nothing.
    let mut stranger = Collector::new(
        client(&control_plane).await,
        ipam.clone(),
        Settings::new("not-a-node"),
    );
    let skipped = stranger.pass().await.unwrap_err().to_string();
    assert!(skipped.contains("not-a-node"), "{skipped}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_collects_and_another_takes_over() {
    let Some(ready) = lab::require!(Root, KubeApiserver) else {
        return;
    };
    let control_plane = ControlPlane::on_host().unwrap();
    control_plane
        .kubectl(&["create", "namespace", "wren-system"])
        .unwrap();
    let names: Vec<String> = ["node-a", "node-b", "node-c", "node-d"]
        .map(String::from)
        .to_vec();
    create_nodes(&control_plane, &names, "four");
    let ipam = ipam(ready.dir(), 26).await;
    for node in &names {
        node_with_pod(&ipam, node).await;
    }
    let settings = |identity: &str| Settings {
        interval: Duration::from_secs(2),
        lease_duration: 3,
        lease_grace: 1,
        ..Settings::new(identity)
    };
    let mut collectors = vec![];
    for identity in ["node-a", "node-c"] {
        let task = tokio::spawn(collector::run(
            client(&control_plane).await,
            ipam.clone(),
            settings(identity),
        ));
        collectors.push((identity, task));
    }
    let holder = || {
        control_plane
            .kubectl(&[
                "-n",
                "wren-system",
                "get",
                "lease",
                "wren-ipam-collector",
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ])
            .unwrap_or_default()
    };
    let first = wait_for(|| {
        let holder = holder();
        async move { (!holder.is_empty()).then_some(holder) }
    })
    .await;
    assert!(first == "node-a" || first == "node-c", "{first}");

    control_plane
        .kubectl(&["delete", "node", "node-b"])
        .unwrap();
    wait_for_released(&ipam, "node-b").await;

    // The holder stops (its bgpd is gone): the other takes the Lease and collects.
    let (index, _) = collectors
        .iter()
        .enumerate()
        .find(|(_, (identity, _))| *identity == first)
        .unwrap();
    let (_, task) = collectors.remove(index);
    task.abort();
    let second = wait_for(|| {
        let holder = holder();
        let first = first.clone();
        async move { (!holder.is_empty() && holder != first).then_some(holder) }
    })
    .await;
    let survivor = collectors[0].0;
    assert_eq!(second, survivor);
    let gone = if survivor == "node-a" {
        "node-c"
    } else {
        "node-a"
    };
    control_plane
        .kubectl(&["delete", "node", gone, "node-d"])
        .unwrap();
    wait_for_released(&ipam, gone).await;
    wait_for_released(&ipam, "node-d").await;
    assert_eq!(blocks_of(&ipam, survivor).await, 1);
    assert_clean(&ipam).await;
    for (_, task) in collectors {
        assert!(!task.is_finished(), "a collector ended");
        task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_deleted_nodes_are_cleaned_up() {
    let Some(ready) = lab::require!(Root, KubeApiserver) else {
        return;
    };
    let control_plane = ControlPlane::on_host().unwrap();
    control_plane
        .kubectl(&["create", "namespace", "wren-system"])
        .unwrap();
    let gone: Vec<String> = (0..100).map(|i| format!("gone-{i:03}")).collect();
    create_nodes(&control_plane, &["keeper".to_owned()], "keep");
    create_nodes(&control_plane, &gone, "gone");
    let ipam = ipam(ready.dir(), 26).await;
    node_with_pod(&ipam, "keeper").await;
    for node in &gone {
        node_with_pod(&ipam, node).await;
    }
    let task = tokio::spawn(collector::run(
        client(&control_plane).await,
        ipam.clone(),
        Settings {
            interval: Duration::from_secs(5),
            lease_duration: 3,
            lease_grace: 1,
            ..Settings::new("keeper")
        },
    ));
    let start = Instant::now();
    control_plane
        .kubectl(&["delete", "nodes", "-l", "group=gone"])
        .unwrap();
    let deleted = start.elapsed();
    wait_for(|| async {
        let blocks: BTreeSet<String> = ipam
            .snapshot()
            .await
            .unwrap()
            .affinities
            .into_iter()
            .map(|affinity| affinity.value.node)
            .collect();
        (blocks == BTreeSet::from(["keeper".to_owned()])).then_some(())
    })
    .await;
    // Reported, not asserted: timings belong to benchmarks.
    eprintln!(
        "100 Nodes deleted in {:.1} s; their blocks and addresses released {:.1} s after the delete began",
        deleted.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    assert!(!task.is_finished(), "the collector ended");
    task.abort();
    assert_eq!(ipam.nodes().await.unwrap().len(), 1);
    assert_clean(&ipam).await;
}

/// Pods in `default` (no node: no kubelet runs, and they go at once when deleted);
/// returns their uids.
fn create_pods(control_plane: &ControlPlane, names: &[&str]) -> Vec<String> {
    let mut yaml = String::new();
    for name in names {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  containers:\n    - name: main\n      image: registry.invalid/none\n"
        ));
    }
    control_plane
        .kubectl_input(&["apply", "-f", "-"], &yaml)
        .unwrap();
    names
        .iter()
        .map(|name| {
            control_plane
                .kubectl(&[
                    "-n",
                    "default",
                    "get",
                    "pod",
                    name,
                    "-o",
                    "jsonpath={.metadata.uid}",
                ])
                .unwrap()
        })
        .collect()
}

fn delete_pods(control_plane: &ControlPlane, names: &[&str]) {
    let mut args = vec!["-n", "default", "delete", "pod", "--wait=true"];
    args.extend_from_slice(names);
    control_plane.kubectl(&args).unwrap();
}

/// Assigns an address to `handle` on node-a for the pod `name` (with `uid` when given).
async fn pod_address(ipam: &Ipam<AnyStore>, handle: &str, name: &str, uid: Option<&str>) {
    let pod = PodReference {
        namespace: String::from("default"),
        name: name.to_owned(),
        uid: uid.map(str::to_owned),
    };
    let assigned = ipam
        .assign_once_for_pod("node-a", handle, Family::Ipv4, &pod)
        .await
        .unwrap();
    assert_eq!(assigned.len(), 1);
}

async fn held(ipam: &Ipam<AnyStore>, handle: &str) -> usize {
    ipam.addresses_of(handle).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_of_gone_pods_go_after_the_grace_and_a_recheck() {
    let Some(ready) = lab::require!(Root, KubeApiserver) else {
        return;
    };
    let control_plane = ControlPlane::on_host().unwrap();
    create_nodes(&control_plane, &["node-a".to_owned()], "pods");
    let ipam = ipam(ready.dir(), 26).await;
    // A handle without pod (as Wren's own addresses): never this rule's.
    node_with_pod(&ipam, "node-a").await;
    let uids = create_pods(&control_plane, &["web", "job", "dns", "db"]);
    pod_address(&ipam, "web.eth0", "web", Some(&uids[0])).await;
    pod_address(&ipam, "job.eth0", "job", Some(&uids[1])).await;
    pod_address(&ipam, "dns.eth0", "dns", Some(&uids[2])).await;
    // No uid recorded (a runtime that does not pass K8S_POD_UID): the name decides.
    pod_address(&ipam, "db.eth0", "db", None).await;
    let grace = Duration::from_secs(3);
    let mut collector = Collector::new(
        client(&control_plane).await,
        ipam.clone(),
        Settings {
            pod_grace: grace,
            ..Settings::new("node-a")
        },
    );
    assert_eq!(
        collector.pass().await.unwrap(),
        collector::PassReport::default()
    );

    // job is gone; dns is made again (another uid); db is gone, then made again.
    delete_pods(&control_plane, &["job", "dns", "db"]);
    create_pods(&control_plane, &["dns"]);
    assert_eq!(
        collector.pass().await.unwrap(),
        collector::PassReport::default()
    );
    // The grace runs from each Pod's confirming GET, within that pass.
    let suspected = Instant::now();
    create_pods(&control_plane, &["db"]);
    // Before the grace: nothing goes.
    assert_eq!(
        collector.pass().await.unwrap(),
        collector::PassReport::default()
    );
    for handle in ["web.eth0", "job.eth0", "dns.eth0", "db.eth0", "pod-node-a"] {
        assert_eq!(held(&ipam, handle).await, 1, "{handle}");
    }

    tokio::time::sleep(grace.saturating_sub(suspected.elapsed())).await;
    let after = collector.pass().await.unwrap();
    assert_eq!(after.handles_released, vec!["dns.eth0", "job.eth0"]);
    assert_eq!(after.addresses_released, 2);
    for (handle, count) in [
        ("web.eth0", 1),
        ("job.eth0", 0),
        ("dns.eth0", 0),
        ("db.eth0", 1),
        ("pod-node-a", 1),
    ] {
        assert_eq!(held(&ipam, handle).await, count, "{handle}");
    }
    assert_clean(&ipam).await;
    // The live pods' addresses stay, pass after pass.
    tokio::time::sleep(grace).await;
    collector.pass().await.unwrap();
    assert_eq!(
        collector.pass().await.unwrap(),
        collector::PassReport::default()
    );
    assert_eq!(held(&ipam, "web.eth0").await, 1);
    assert_eq!(held(&ipam, "db.eth0").await, 1);

    // A collector that may list Pods but whose GET is refused releases nothing.
    let rbac = "---
apiVersion: v1
kind: ServiceAccount
metadata: {name: lister, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: collector-lister}
rules:
  - {apiGroups: [\"\"], resources: [nodes], verbs: [get, list]}
  - {apiGroups: [\"\"], resources: [pods], verbs: [list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: collector-lister}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: collector-lister}
subjects: [{kind: ServiceAccount, name: lister, namespace: default}]
";
    control_plane
        .kubectl_input(&["apply", "-f", "-"], rbac)
        .unwrap();
    let lister = control_plane
        .service_account_kubeconfig("default", "lister")
        .unwrap();
    let mut refused = Collector::new(
        client_of(&lister).await,
        ipam.clone(),
        Settings {
            pod_grace: Duration::ZERO,
            ..Settings::new("node-a")
        },
    );
    delete_pods(&control_plane, &["web"]);
    for _ in 0..3 {
        let error = refused.pass().await.unwrap_err().to_string();
        assert!(error.contains("Pod default/web"), "{error}");
        assert_eq!(held(&ipam, "web.eth0").await, 1);
    }
    assert_clean(&ipam).await;
}

async fn wait_for_released(ipam: &Ipam<AnyStore>, node: &str) {
    wait_for(|| async {
        (blocks_of(ipam, node).await == 0 && ipam.node(node).await.unwrap().is_none()).then_some(())
    })
    .await;
}

/// Polls `probe` every 200 ms until it gives `Some`, at most TIMEOUT.
async fn wait_for<T, F, P>(mut probe: P) -> T
where
    P: FnMut() -> F,
    F: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(start.elapsed() < TIMEOUT, "timed out after {TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
