//! The `IPPool`s IPAM refuses (a bad CIDR, a setting out of range, a pool overlapping
//! another: [`ipam::sort_pools`], the checks every reader of the pools applies),
//! each posted as a Warning Event ([`crate::events`]) by the node that leads.
//!
//! Only while this node holds the collector's Lease does it follow the `IPPool`s (a
//! reflector, re-listed with backoff): one watch cluster-wide, one Event per refusal.
//! IPAM itself leaves a refused pool out on every node (a log line there); this is
//! where the cluster's users see why.

use std::time::Duration;

use futures::StreamExt;
use ipam::store::Entry;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::watch;

use crate::events::{Recorder, Refused};

/// How long a burst of changes is gathered before the pools are checked again.
const SETTLE: Duration = Duration::from_millis(50);

/// Runs until bgpd stops: follows the `IPPool`s while `leading` is true.
pub async fn run(
    client: Client,
    api_server: String,
    node: String,
    mut leading: watch::Receiver<bool>,
) {
    let mut recorder = Recorder::new(client.clone(), api_server.clone(), node);
    loop {
        while !*leading.borrow_and_update() {
            if leading.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
        tokio::select! {
            () = follow(&client, &api_server, &mut recorder) => {}
            () = lost(&mut leading) => {}
        }
    }
}

/// Resolves when `leading` turns false (or its sender is gone).
async fn lost(leading: &mut watch::Receiver<bool>) {
    loop {
        if leading.changed().await.is_err() || !*leading.borrow_and_update() {
            return;
        }
    }
}

/// Follows the `IPPool`s, posting the refused ones; never returns.
async fn follow(client: &Client, api_server: &str, recorder: &mut Recorder) {
    let resource = ApiResource::erase::<ipam::pool::IPPool>(&());
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let writer = reflector::store::Writer::new(resource);
    let store = writer.as_reader();
    let mut stream = Box::pin(reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    ));
    let mut listed = false;
    while let Some(first) = stream.next().await {
        let mut batch = vec![first];
        while let Ok(Some(more)) = tokio::time::timeout(SETTLE, stream.next()).await {
            batch.push(more);
        }
        for event in batch {
            match event {
                Ok(watcher::Event::InitDone) => {
                    listed = true;
                    ipam::outage::working(api_server, "IPPool");
                }
                Ok(_) => {}
                Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                    ipam::outage::gone(api_server, "IPPool", &status.to_string());
                }
                Err(error) => {
                    ipam::outage::failed(api_server, "IPPool", &ipam::outage::describe(&error))
                }
            }
        }
        if listed {
            recorder.post(&refused(&store)).await;
        }
    }
    std::future::pending().await
}

/// The refused pools of `store`, as Events to post.
fn refused(store: &Store<DynamicObject>) -> Vec<Refused> {
    let objects = store.state();
    let entries: Vec<Entry> = objects
        .iter()
        .map(|object| Entry {
            key: object.name_any(),
            value: serde_json::to_vec(object.data.get("spec").unwrap_or(&serde_json::Value::Null))
                .unwrap_or_default(),
            revision: 0,
        })
        .collect();
    let (_, refusals) = ipam::sort_pools(&entries);
    refusals
        .into_iter()
        .filter_map(|(name, refusal)| {
            let object = objects.iter().find(|o| o.name_any() == name)?;
            Some(Refused {
                regarding: ObjectReference {
                    api_version: Some(format!("{}/v1alpha1", crate::resources::GROUP)),
                    kind: Some("IPPool".into()),
                    name: Some(name.clone()),
                    uid: object.uid(),
                    ..ObjectReference::default()
                },
                generation: object.metadata.generation,
                reason: refusal.reason(),
                note: format!("IPPool {name}: {refusal}"),
            })
        })
        .collect()
}
