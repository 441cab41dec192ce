//! [`KubernetesStore`]: the IPAM keys as custom resources on the Kubernetes API.
//!
//! Each key prefix is one resource kind and each value that resource's spec (see
//! `mod.rs`); an object's `resourceVersion` is the key's revision. A transaction is
//! one object's compare-and-swap: a create for `Expect::Absent`, a replace carrying
//! the expected `resourceVersion`, a delete with a `resourceVersion` precondition; a
//! 409 from the API server is a [`Outcome::Conflict`]. A transaction of several keys
//! is refused (the IPAM operations never send one; see `store/mod.rs`). Reads are one
//! request each, and the reads of one `Datastore::read` are sent two at a time (each
//! request in flight holds a connection): a GET by name for a key, a LIST for a
//! prefix, narrowed by label where
//! the store sets them (a node's affinities by `wren.io/node`; a node's blocks,
//! `Read::NodeBlocks`, by owner and borrower labels: `blocks.rs`). A LIST is served
//! from etcd, which reads every object of the kind whatever the label selector (so a
//! LIST of one node's affinities costs the API server O(every affinity)), except for
//! `Read::PrefixFromCache`: a LIST from the API server's watch cache, not older than
//! the latest object of that kind this store wrote (`resourceVersion` of that write,
//! `resourceVersionMatch=NotOlderThan`; `0`, any, before the first), so the store
//! never misses its own writes; when the cache cannot answer (504: it did not reach
//! that version in time) the LIST goes to etcd. A watch is one API
//! watch per kind, re-listed after `410 Gone` (`watch.rs`); the watch of who uses
//! the blocks filters what it reports (`blocks::Users`). The node registry is the
//! cluster's Node objects (`nodes.rs`).

mod blocks;
mod names;
mod nodes;
mod watch;

pub use names::{object_name, safe_name};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, ObjectList, ObjectMeta, PostParams,
    Preconditions, VersionMatch,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Resource};
use serde_json::{Value, json};

use crate::keys;
use crate::store::{Action, Entry, Expect, Op, Outcome, Read, StoreError, Txn, Watch};
use names::label_value;

/// The API group of every Wren custom resource.
pub const GROUP: &str = "wren.io";
/// The version of the IPAM resources.
const VERSION: &str = "v1alpha1";

/// The label on a `BlockAffinity` and an `IPAMBlock` naming its node (a node's
/// affinities and blocks are listed by it).
const NODE_LABEL: &str = "wren.io/node";
/// Requests of one `Datastore::read` in flight at once.
const READS_IN_FLIGHT: usize = 2;
/// How many times a blind write (`Expect::Any`) re-reads after losing a race.
const BLIND_RETRIES: u32 = 10;

/// The resource kinds keys map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pool,
    Block,
    Affinity,
    Handle,
    Config,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Pool,
        Kind::Block,
        Kind::Affinity,
        Kind::Handle,
        Kind::Config,
    ];

    /// The key, or key prefix, of this kind's records.
    fn prefix(self) -> &'static str {
        match self {
            Kind::Pool => keys::POOLS,
            Kind::Block => keys::BLOCKS,
            Kind::Affinity => keys::AFFINITIES,
            Kind::Handle => keys::HANDLES,
            Kind::Config => keys::CONFIG,
        }
    }

    /// The kind's place in [`Kind::ALL`].
    fn index(self) -> usize {
        self as usize
    }

    fn of_key(key: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| match kind {
            Kind::Config => key == keys::CONFIG,
            _ => key.starts_with(kind.prefix()),
        })
    }

    /// The kind of a watched object, from its `kind` field.
    fn of_api(object: &DynamicObject) -> Option<Kind> {
        let name = object.types.as_ref()?.kind.as_str();
        Kind::ALL
            .into_iter()
            .find(|kind| kind.resource().kind == name)
    }

    /// The resource: the kinds the records' `CustomResource` derives define
    /// (`crate::kubernetes` checks that they agree).
    fn resource(self) -> ApiResource {
        let (kind, plural) = match self {
            Kind::Pool => ("IPPool", "ippools"),
            Kind::Block => ("IPAMBlock", "ipamblocks"),
            Kind::Affinity => ("BlockAffinity", "blockaffinities"),
            Kind::Handle => ("IPAMHandle", "ipamhandles"),
            Kind::Config => ("IPAMConfig", "ipamconfigs"),
        };
        ApiResource {
            group: GROUP.to_string(),
            version: VERSION.to_string(),
            api_version: format!("{GROUP}/{VERSION}"),
            kind: kind.to_string(),
            plural: plural.to_string(),
        }
    }

    /// The key of the record an object holds, from its spec (an object whose spec
    /// lacks the fields gets a key from its name, so that decoding it fails with a
    /// reason naming it).
    fn key_of(self, name: &str, spec: &Value) -> Option<String> {
        let text = |field: &str| spec.get(field).and_then(Value::as_str);
        let cidr = || text("cidr").and_then(|c| c.parse::<ipnet::IpNet>().ok());
        Some(match self {
            Kind::Pool => cidr().map_or(format!("{}{name}", keys::POOLS), |c| keys::pool(&c)),
            Kind::Block => cidr().map_or(format!("{}{name}", keys::BLOCKS), |c| keys::block(&c)),
            Kind::Affinity => match (text("node"), cidr()) {
                (Some(node), Some(cidr)) => keys::affinity(node, &cidr),
                _ => format!("{}{name}/", keys::AFFINITIES),
            },
            Kind::Handle => keys::handle(text("handle").unwrap_or(name)),
            // Only the object named `default` is the configuration.
            Kind::Config => return (name == "default").then(|| keys::CONFIG.to_string()),
        })
    }
}

/// The resources the store keeps the IPAM records in.
#[cfg(test)]
pub(crate) fn resources() -> Vec<ApiResource> {
    Kind::ALL.into_iter().map(Kind::resource).collect()
}

/// A datastore on the Kubernetes API (`kubernetes`: in-cluster config, else
/// `KUBECONFIG`; `kubernetes:///path/to/kubeconfig`).
#[derive(Clone)]
pub struct KubernetesStore {
    url: String,
    client: Client,
    /// The API server's URL, named in every error.
    server: String,
    /// Per kind ([`Kind::index`]), the `resourceVersion` of the latest object this
    /// store (or a clone) created, replaced or deleted: a list from the watch cache
    /// asks for a state not older than it, so it never misses the store's own writes.
    written: Arc<[AtomicU64; Kind::ALL.len()]>,
}

/// Where a LIST is served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    /// From etcd, at its current revision (a consistent read).
    Latest,
    /// From the API server's watch cache, not older than the store's own latest
    /// write of the kind (`Read::PrefixFromCache`).
    Cached,
}

impl std::fmt::Debug for KubernetesStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesStore")
            .field("url", &self.url)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// The kubeconfig a `kubernetes:` URL names (`None`: in-cluster, else `KUBECONFIG`).
pub(crate) fn parse_url(url: &str) -> Result<Option<std::path::PathBuf>, StoreError> {
    let bad = |reason: &str| StoreError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    match url {
        "kubernetes" | "kubernetes:" | "kubernetes://" => Ok(None),
        _ => {
            let path = url
                .strip_prefix("kubernetes://")
                .ok_or_else(|| bad("expected kubernetes or kubernetes:///PATH/TO/KUBECONFIG"))?;
            if !path.starts_with('/') {
                return Err(bad("the kubeconfig path must be absolute"));
            }
            Ok(Some(path.into()))
        }
    }
}

impl KubernetesStore {
    /// Connects with the kubeconfig the URL names and checks that the API server
    /// answers and serves the IPAM resources.
    pub async fn open(url: &str) -> Result<KubernetesStore, StoreError> {
        let unavailable = |reason: String| StoreError::Unavailable {
            url: url.to_string(),
            reason,
        };
        let mut config = match parse_url(url)? {
            None => Config::infer()
                .await
                .map_err(|e| unavailable(format!("no Kubernetes configuration: {e}")))?,
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(&path)
                    .map_err(|e| unavailable(format!("kubeconfig {}: {e}", path.display())))?;
                Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| unavailable(format!("kubeconfig {}: {e}", path.display())))?
            }
        };
        config.connect_timeout = Some(Duration::from_secs(5));
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config)
            .map_err(|e| unavailable(format!("API server {server}: {e}")))?;
        let store = KubernetesStore {
            url: url.to_string(),
            client,
            server,
            written: Arc::default(),
        };
        store.current_revision().await?;
        Ok(store)
    }

    fn api(&self, kind: Kind) -> Api<DynamicObject> {
        Api::all_with(self.client.clone(), &kind.resource())
    }

    /// The error for a failed request about `kind` (one line: the API server, the
    /// resource, what it answered).
    fn error(&self, kind: Kind, error: kube::Error) -> StoreError {
        let resource = kind.resource().plural;
        let reason = match &error {
            kube::Error::Api(status) => format!(
                "API server {} refused a request on {resource}.{}: {} {} {}",
                self.server, GROUP, status.code, status.reason, status.message
            ),
            other => format!(
                "API server {} did not answer a request on {resource}.{}: {other}",
                self.server, GROUP
            ),
        };
        StoreError::Unavailable {
            url: self.url.clone(),
            reason,
        }
    }

    fn failed(&self, reason: String) -> StoreError {
        StoreError::Failed {
            url: self.url.clone(),
            reason,
        }
    }

    fn revision_of(&self, meta: &ObjectMeta) -> Result<u64, StoreError> {
        let version = meta.resource_version.as_deref().unwrap_or_default();
        version.parse().map_err(|_| {
            self.failed(format!(
                "object {} has resourceVersion {version:?}, not a number",
                meta.name.as_deref().unwrap_or("?")
            ))
        })
    }

    /// The entry an object holds: its key (from its spec), spec and revision.
    fn entry(&self, kind: Kind, object: &DynamicObject) -> Result<Option<Entry>, StoreError> {
        let name = object.metadata.name.as_deref().unwrap_or_default();
        let spec = object.data.get("spec").cloned().unwrap_or(Value::Null);
        let Some(key) = kind.key_of(name, &spec) else {
            return Ok(None);
        };
        let value = serde_json::to_vec(&spec).map_err(|e| self.failed(e.to_string()))?;
        Ok(Some(Entry {
            key,
            value,
            revision: self.revision_of(&object.metadata)?,
        }))
    }

    fn locate(&self, key: &str) -> Result<(Kind, String), StoreError> {
        match (Kind::of_key(key), object_name(key)) {
            (Some(kind), Some(name)) => Ok((kind, name)),
            _ => Err(self.failed(format!(
                "key {key} is not an IPAM record the Kubernetes datastore keeps"
            ))),
        }
    }

    async fn get_entry(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        if let Some(name) = key.strip_prefix(keys::NODES) {
            return self.get_node(name).await;
        }
        let (kind, name) = self.locate(key)?;
        let Some(object) = self
            .api(kind)
            .get_opt(&name)
            .await
            .map_err(|e| self.error(kind, e))?
        else {
            return Ok(None);
        };
        match self.entry(kind, &object)? {
            Some(entry) if entry.key == key => Ok(Some(entry)),
            Some(entry) => Err(self.failed(format!(
                "object {name} holds {}, not {key} (two keys share an object name)",
                entry.key
            ))),
            None => Ok(None),
        }
    }

    /// One LIST of `kind`; from the watch cache when `freshness` allows and the cache
    /// answers (it waits up to a few seconds to reach the store's own latest write of
    /// the kind, then refuses with 504, and a LIST from etcd follows).
    async fn list_kind(
        &self,
        kind: Kind,
        params: &ListParams,
        freshness: Freshness,
    ) -> Result<ObjectList<DynamicObject>, StoreError> {
        let api = self.api(kind);
        if freshness == Freshness::Cached {
            let written = self.written[kind.index()].load(Ordering::Relaxed);
            let cached = params
                .clone()
                .at(&written.to_string())
                .matching(VersionMatch::NotOlderThan);
            match api.list(&cached).await {
                Ok(list) => return Ok(list),
                // 504: the cache did not reach the write in time; 410: the version is
                // compacted away; 429: the cache is still starting.
                Err(kube::Error::Api(status)) if matches!(status.code, 504 | 410 | 429) => {}
                Err(e) => return Err(self.error(kind, e)),
            }
        }
        api.list(params).await.map_err(|e| self.error(kind, e))
    }

    /// Records `revision` as the latest write of `kind` (see `written`).
    fn wrote(&self, kind: Kind, revision: u64) {
        self.written[kind.index()].fetch_max(revision, Ordering::Relaxed);
    }

    async fn list_entries(
        &self,
        prefix: &str,
        freshness: Freshness,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        if keys::NODES.starts_with(prefix) || prefix.starts_with(keys::NODES) {
            out.extend(self.list_nodes(prefix).await?);
        }
        for kind in Kind::ALL {
            let kind_prefix = kind.prefix();
            if !kind_prefix.starts_with(prefix) && !prefix.starts_with(kind_prefix) {
                continue;
            }
            let mut params = ListParams::default();
            if kind == Kind::Affinity
                && let Some(node) = prefix
                    .strip_prefix(keys::AFFINITIES)
                    .and_then(|rest| rest.strip_suffix('/'))
                    .filter(|node| !node.contains('/'))
            {
                params = params.labels(&format!("{NODE_LABEL}={}", label_value(node)));
            }
            let list = self.list_kind(kind, &params, freshness).await?;
            for object in &list.items {
                if let Some(entry) = self.entry(kind, object)?
                    && entry.key.starts_with(prefix)
                {
                    out.push(entry);
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// The API server's current revision: the `resourceVersion` of a list.
    async fn current_revision(&self) -> Result<u64, StoreError> {
        let kind = Kind::Config;
        let list = self
            .api(kind)
            .list(&ListParams::default().limit(1))
            .await
            .map_err(|e| self.error(kind, e))?;
        let version = list.metadata.resource_version.unwrap_or_default();
        version.parse().map_err(|_| {
            self.failed(format!(
                "a list's resourceVersion {version:?} is not a number"
            ))
        })
    }

    /// The object to write for `key` with `value` as its spec.
    fn object(
        &self,
        kind: Kind,
        name: &str,
        key: &str,
        value: &[u8],
        revision: Option<u64>,
    ) -> Result<DynamicObject, StoreError> {
        let spec: Value = serde_json::from_slice(value)
            .map_err(|e| self.failed(format!("the value for {key} is not JSON: {e}")))?;
        let resource = kind.resource();
        let mut object = DynamicObject::new(name, &resource).data(json!({ "spec": spec }));
        object.metadata.resource_version = revision.map(|r| r.to_string());
        if kind == Kind::Affinity
            && let Some(node) = spec.get("node").and_then(Value::as_str)
        {
            object
                .meta_mut()
                .labels
                .get_or_insert_with(Default::default)
                .insert(NODE_LABEL.to_string(), label_value(node));
        }
        if kind == Kind::Block {
            // A replace sets the labels whole: an owner or borrower gone loses its label.
            object.meta_mut().labels = Some(blocks::labels(&spec));
            object.meta_mut().annotations = Some(blocks::annotations(&spec));
        }
        Ok(object)
    }

    /// Applies one operation; `Conflict` when its expectation does not hold.
    async fn apply(&self, op: Op) -> Result<Outcome, StoreError> {
        if let Some(name) = op.key.strip_prefix(keys::NODES) {
            return match op.action {
                Action::Put(value) => self.write_node(name, Some(&value), op.expect).await,
                Action::Delete => self.write_node(name, None, op.expect).await,
                Action::Check => {
                    let found = self.get_node(name).await?;
                    Ok(
                        if op.expect == Expect::Any
                            || Expect::from_entry(found.as_ref()) == op.expect
                        {
                            Outcome::Committed {
                                revision: self.current_revision().await?,
                            }
                        } else {
                            Outcome::Conflict
                        },
                    )
                }
            };
        }
        let (kind, name) = self.locate(&op.key)?;
        let api = self.api(kind);
        let conflict =
            |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 409 || s.code == 404);
        let committed = |meta: &ObjectMeta| -> Result<Outcome, StoreError> {
            let revision = self.revision_of(meta)?;
            self.wrote(kind, revision);
            Ok(Outcome::Committed { revision })
        };
        match (op.action, op.expect) {
            (Action::Check, expect) => {
                let found = self.get_entry(&op.key).await?;
                if Expect::from_entry(found.as_ref()) == expect || expect == Expect::Any {
                    Ok(Outcome::Committed {
                        revision: self.current_revision().await?,
                    })
                } else {
                    Ok(Outcome::Conflict)
                }
            }
            (Action::Put(value), Expect::Absent) => {
                let object = self.object(kind, &name, &op.key, &value, None)?;
                match api.create(&PostParams::default(), &object).await {
                    Ok(created) => committed(&created.metadata),
                    Err(e) if conflict(&e) => Ok(Outcome::Conflict),
                    Err(e) => Err(self.error(kind, e)),
                }
            }
            (Action::Put(value), Expect::Revision(revision)) => {
                let object = self.object(kind, &name, &op.key, &value, Some(revision))?;
                match api.replace(&name, &PostParams::default(), &object).await {
                    Ok(replaced) => committed(&replaced.metadata),
                    Err(e) if conflict(&e) => Ok(Outcome::Conflict),
                    Err(e) => Err(self.error(kind, e)),
                }
            }
            (Action::Put(value), Expect::Any) => {
                for _ in 0..BLIND_RETRIES {
                    let found = self.get_entry(&op.key).await?;
                    let expect = Expect::from_entry(found.as_ref());
                    let put = Op {
                        key: op.key.clone(),
                        expect,
                        action: Action::Put(value.clone()),
                    };
                    if let Outcome::Committed { revision } = Box::pin(self.apply(put)).await? {
                        return Ok(Outcome::Committed { revision });
                    }
                }
                Err(self.failed(format!(
                    "{}: lost {BLIND_RETRIES} races in a row writing it",
                    op.key
                )))
            }
            (Action::Delete, Expect::Absent) => Ok(match self.get_entry(&op.key).await? {
                Some(_) => Outcome::Conflict,
                None => Outcome::Committed {
                    revision: self.current_revision().await?,
                },
            }),
            (Action::Delete, expect) => {
                let mut params = DeleteParams::default();
                if let Expect::Revision(revision) = expect {
                    params.preconditions = Some(Preconditions {
                        resource_version: Some(revision.to_string()),
                        uid: None,
                    });
                }
                match api.delete(&name, &params).await {
                    Ok(either) => match either.left() {
                        Some(deleted) => committed(&deleted.metadata),
                        None => Ok(Outcome::Committed {
                            revision: self.current_revision().await?,
                        }),
                    },
                    Err(kube::Error::Api(s)) if s.code == 404 && expect == Expect::Any => {
                        Ok(Outcome::Committed {
                            revision: self.current_revision().await?,
                        })
                    }
                    Err(e) if conflict(&e) => Ok(Outcome::Conflict),
                    Err(e) => Err(self.error(kind, e)),
                }
            }
        }
    }
}

impl KubernetesStore {
    /// The reads of a `Datastore::read`: independent requests, [`READS_IN_FLIGHT`] in
    /// flight together, in order. Each request in flight takes a connection of its own
    /// (HTTP/1.1): 200 nodes claiming at once with a claim's nine reads all in flight
    /// opened 1800 TLS connections at once, and the API server refused some (bench
    /// scale-ipam). `Read::PrefixFromCache` is served from the watch cache.
    async fn read_all(&self, reads: Vec<Read>) -> Result<Vec<Vec<Entry>>, StoreError> {
        use futures::{StreamExt as _, TryStreamExt as _};
        futures::stream::iter(reads)
            .map(|read| async move {
                Ok::<_, StoreError>(match read {
                    Read::Key(key) => self.get_entry(&key).await?.into_iter().collect(),
                    Read::Prefix(prefix) => self.list_entries(&prefix, Freshness::Latest).await?,
                    Read::PrefixFromCache(prefix) => {
                        self.list_entries(&prefix, Freshness::Cached).await?
                    }
                    Read::NodeBlocks(node) => self.node_blocks(&node).await?,
                })
            })
            .buffered(READS_IN_FLIGHT)
            .try_collect()
            .await
    }
}

impl crate::store::Datastore for KubernetesStore {
    fn url(&self) -> &str {
        &self.url
    }

    fn multi_key_transactions(&self) -> bool {
        false
    }

    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.get_entry(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        self.list_entries(prefix, Freshness::Latest).await
    }

    async fn commit(&self, mut txn: Txn) -> Result<Outcome, StoreError> {
        if txn.len() != 1 {
            return Err(self.failed(format!(
                "a transaction of {} keys: the Kubernetes datastore writes one object at a time",
                txn.len()
            )));
        }
        match txn.ops.pop() {
            Some(op) => self.apply(op).await,
            None => Err(self.failed(String::from("an empty transaction"))),
        }
    }

    async fn read(&self, reads: Vec<Read>) -> Result<Vec<Vec<Entry>>, StoreError> {
        self.read_all(reads).await
    }

    fn keys_per_round_trip(&self) -> usize {
        READS_IN_FLIGHT
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        self.current_revision().await
    }

    async fn watch(&self, prefix: &str) -> Result<Watch, StoreError> {
        self.watch_prefix(prefix).await
    }

    async fn watch_node(&self, node: &str) -> Result<Watch, StoreError> {
        self.watch_node_blocks(node).await
    }

    async fn watch_block_users(&self) -> Result<Watch, StoreError> {
        self.watch_users().await
    }
}
