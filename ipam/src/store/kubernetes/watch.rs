//! Watches on the Kubernetes datastore: one API watch per resource kind, re-made
//! from the last version seen after a timeout, and after `410 Gone` or a failure
//! (reporting a change then). [`KubernetesStore::watch_node_blocks`] watches the
//! pools and, by label, only the blocks that name one node (`blocks.rs`), so a node's
//! reader is not woken by other nodes' pods.

use std::time::Duration;

use futures::StreamExt;
use kube::Resource;
use kube::api::{Api, DynamicObject, ListParams, WatchEvent, WatchParams};

use super::{Kind, KubernetesStore, blocks};
use crate::keys;
use crate::store::{Entry, StoreError, Watch};

impl KubernetesStore {
    /// The entry of a watched IPAM object (of any kind).
    fn watched_entry(&self, object: &DynamicObject) -> Result<Option<Entry>, StoreError> {
        Kind::of_api(object).map_or(Ok(None), |kind| self.entry(kind, object))
    }

    /// The kinds a watch of `prefix` covers.
    pub(super) fn kinds_under(prefix: &str) -> Vec<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|kind| kind.prefix().starts_with(prefix) || prefix.starts_with(kind.prefix()))
            .collect()
    }

    /// Watches one resource (the objects `selector` selects, when given) from
    /// `version`, sending the revision of every change under `prefix` (with `users`,
    /// of the blocks whose owner or borrowed addresses changed); re-lists after
    /// `410 Gone` or a failure (reporting a change then, as one may have been missed,
    /// and forgetting what `users` knew), with backoff.
    #[allow(clippy::too_many_arguments)]
    async fn watch_resource<K>(
        self,
        api: Api<K>,
        resource: String,
        selector: Option<String>,
        to_entry: fn(&KubernetesStore, &K) -> Result<Option<Entry>, StoreError>,
        prefix: String,
        mut version: String,
        sender: tokio::sync::mpsc::Sender<Result<u64, StoreError>>,
        mut users: Option<blocks::Users>,
    ) where
        K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    {
        let mut pause = Duration::from_millis(100);
        loop {
            let mut params = WatchParams::default().timeout(290);
            if let Some(selector) = &selector {
                params = params.labels(selector);
            }
            let mut gone = false;
            let failure = match api.watch(&params, &version).await {
                Ok(stream) => {
                    crate::outage::working(&self.server, &resource);
                    let mut stream = std::pin::pin!(stream);
                    let mut failure = None;
                    while let Some(event) = stream.next().await {
                        let (object, deleted) = match event {
                            Ok(WatchEvent::Added(object) | WatchEvent::Modified(object)) => {
                                (object, false)
                            }
                            Ok(WatchEvent::Deleted(object)) => (object, true),
                            Ok(WatchEvent::Bookmark(bookmark)) => {
                                version = bookmark.metadata.resource_version;
                                continue;
                            }
                            Ok(WatchEvent::Error(status)) => {
                                gone = status.code == 410;
                                failure = Some(format!(
                                    "{} {} {}",
                                    status.code, status.reason, status.message
                                ));
                                break;
                            }
                            Err(e) => {
                                failure = Some(crate::outage::describe(&e));
                                break;
                            }
                        };
                        pause = Duration::from_millis(100);
                        if let Some(v) = &object.meta().resource_version {
                            version.clone_from(v);
                        }
                        match to_entry(&self, &object) {
                            Ok(Some(entry))
                                if entry.key.starts_with(&prefix)
                                    && users
                                        .as_mut()
                                        .is_none_or(|users| users.changed(&entry, deleted)) =>
                            {
                                // A full channel already holds a notification.
                                let _ = sender.try_send(Ok(entry.revision));
                            }
                            Ok(_) => {}
                            Err(e) => tracing::warn!("{e}"),
                        }
                    }
                    failure
                }
                Err(e) => Some(crate::outage::describe(&e)),
            };
            if sender.is_closed() {
                return;
            }
            let Some(failure) = failure else {
                // The watch timed out: go on from the last version seen.
                continue;
            };
            // One line per outage for the whole process (`crate::outage`); a 410
            // Gone is a re-list, not an outage.
            if gone {
                crate::outage::gone(&self.server, &resource, &failure);
            } else {
                crate::outage::failed(&self.server, &resource, &failure);
            }
            if let Some(users) = &mut users {
                users.clear();
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(30));
            // Start over from the current revision; a change may have been missed.
            match self.current_revision().await {
                Ok(revision) => {
                    version = revision.to_string();
                    let _ = sender.try_send(Ok(revision));
                }
                Err(e) => tracing::debug!("{e}"),
            }
        }
    }

    /// [`crate::store::Datastore::watch`]: one API watch per kind under `prefix`.
    pub(super) async fn watch_prefix(&self, prefix: &str) -> Result<Watch, StoreError> {
        let kinds = KubernetesStore::kinds_under(prefix);
        let nodes = keys::NODES.starts_with(prefix) || prefix.starts_with(keys::NODES);
        if kinds.is_empty() && !nodes {
            return Err(self.failed(format!(
                "prefix {prefix} holds no record the Kubernetes datastore keeps"
            )));
        }
        // The watches start at the revision of this call, so every later change is seen.
        let version = self.current_revision().await?.to_string();
        let (sender, receiver) = tokio::sync::mpsc::channel(16);
        let store = self.clone();
        let prefix = prefix.to_string();
        let task = tokio::spawn(async move {
            let mut watches = tokio::task::JoinSet::new();
            for kind in kinds {
                watches.spawn(store.clone().watch_resource(
                    store.api(kind),
                    kind.resource().kind,
                    None,
                    KubernetesStore::watched_entry,
                    prefix.clone(),
                    version.clone(),
                    sender.clone(),
                    None,
                ));
            }
            if nodes {
                watches.spawn(store.clone().watch_resource(
                    store.nodes_api(),
                    String::from("Node"),
                    None,
                    KubernetesStore::node_change,
                    prefix.clone(),
                    version.clone(),
                    sender.clone(),
                    None,
                ));
            }
            while watches.join_next().await.is_some() {}
        });
        Ok(Watch::new(receiver, task))
    }

    /// [`crate::store::Datastore::watch_node`]: the pools, and the blocks whose labels
    /// name `node` as owner or borrower (two label-selected watches).
    pub(super) async fn watch_node_blocks(&self, node: &str) -> Result<Watch, StoreError> {
        let version = self.current_revision().await?.to_string();
        let (sender, receiver) = tokio::sync::mpsc::channel(16);
        let store = self.clone();
        let selectors = blocks::selectors(node);
        let task = tokio::spawn(async move {
            let mut watches = tokio::task::JoinSet::new();
            watches.spawn(store.clone().watch_resource(
                store.api(Kind::Pool),
                Kind::Pool.resource().kind,
                None,
                KubernetesStore::watched_entry,
                keys::POOLS.to_string(),
                version.clone(),
                sender.clone(),
                None,
            ));
            for selector in selectors {
                watches.spawn(store.clone().watch_resource(
                    store.api(Kind::Block),
                    Kind::Block.resource().kind,
                    Some(selector),
                    KubernetesStore::watched_entry,
                    keys::BLOCKS.to_string(),
                    version.clone(),
                    sender.clone(),
                    None,
                ));
            }
            while watches.join_next().await.is_some() {}
        });
        Ok(Watch::new(receiver, task))
    }

    /// [`crate::store::Datastore::watch_block_users`]: one watch of every block,
    /// reporting only a block claimed, released or given another owner, and an
    /// address borrowed or given back (`blocks::Users`); a node's pods in its own
    /// blocks are not reported. The blocks are listed once to know where they stand.
    pub(super) async fn watch_users(&self) -> Result<Watch, StoreError> {
        let kind = Kind::Block;
        let list = self
            .api(kind)
            .list(&ListParams::default())
            .await
            .map_err(|e| self.error(kind, e))?;
        let mut users = blocks::Users::default();
        for object in &list.items {
            if let Some(entry) = self.entry(kind, object)? {
                users.changed(&entry, false);
            }
        }
        let version = match list.metadata.resource_version {
            Some(version) => version,
            None => self.current_revision().await?.to_string(),
        };
        let (sender, receiver) = tokio::sync::mpsc::channel(16);
        let task = tokio::spawn(self.clone().watch_resource(
            self.api(kind),
            kind.resource().kind,
            None,
            KubernetesStore::watched_entry,
            keys::BLOCKS.to_string(),
            version,
            sender,
            Some(users),
        ));
        Ok(Watch::new(receiver, task))
    }
}
