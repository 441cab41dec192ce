//! Kubernetes Events (`events.k8s.io/v1`, type `Warning`) for refused resources: an
//! Event whose `regarding` is the refused object, whose `reason` says why in CamelCase
//! (`BothNodeAndNodeSelector`, `OverlappingPool`) and whose `note` is the one-line
//! explanation, as `kubectl describe` and `kubectl get events` show it.
//!
//! Each refusal is posted once, cluster-wide: the Event's name is derived from the
//! object (uid and generation), the reason and the note, and the only write is a
//! create. A second bgpd, a new Lease holder or a restarted bgpd posting the same
//! refusal gets `409 AlreadyExists` and counts it as posted; a resync or re-list
//! posts nothing (the names already posted are remembered). An edit of the object
//! that is still refused is a new generation, so it gets its own Event. (kube's
//! `events::Recorder` names Events by time and deduplicates in memory only, so each
//! node and each new holder would post its own copy: it is not used.)
//!
//! Cluster-scoped objects' Events live in the namespace `default`, as kube and the
//! kubelet put them.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::{Client, Resource, ResourceExt};

/// The Events' `reportingController`.
pub const REPORTING_CONTROLLER: &str = "wren.io/bgpd";
/// The Events' `action`: what bgpd did with the object.
pub const ACTION: &str = "Refuse";
/// Where the Events of cluster-scoped objects go.
pub const NAMESPACE: &str = "default";
/// The most bytes of a note the API server takes.
const NOTE_LIMIT: usize = 1024;

/// One refused object and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Refused {
    /// The object (api version, kind, name, uid; no resource version, which changes
    /// with every status write).
    pub regarding: ObjectReference,
    /// Its `metadata.generation`, when it has one: an edit is a new refusal.
    pub generation: Option<i64>,
    /// CamelCase.
    pub reason: &'static str,
    /// One line.
    pub note: String,
}

/// The reference of `object` for an Event: no resource version.
pub fn reference<K: Resource<DynamicType = ()>>(object: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: Some(object.name_any()),
        namespace: object.namespace(),
        uid: object.uid(),
        ..ObjectReference::default()
    }
}

/// The name of the Event of `refused`: the object's name (cut to fit), a dot and 16
/// hex digits of a SHA-1 of the object's identity, generation, reason and note.
pub fn event_name(refused: &Refused) -> String {
    let reference = &refused.regarding;
    let identity = format!(
        "{}\n{}\n{}\n{}\n{}\n{:?}\n{}\n{}",
        reference.api_version.as_deref().unwrap_or_default(),
        reference.kind.as_deref().unwrap_or_default(),
        reference.namespace.as_deref().unwrap_or_default(),
        reference.name.as_deref().unwrap_or_default(),
        reference.uid.as_deref().unwrap_or_default(),
        refused.generation,
        refused.reason,
        refused.note,
    );
    let digest = sha1_smol::Sha1::from(identity).digest().to_string();
    let name: String = reference
        .name
        .as_deref()
        .unwrap_or("object")
        .chars()
        .take(253 - 17)
        .collect();
    let name = name.trim_end_matches(['.', '-']);
    format!("{name}.{}", &digest[..16])
}

/// The Event of `refused`, reported by `instance` (the node).
pub fn event(refused: &Refused, instance: &str) -> Event {
    let mut note = refused.note.replace('\n', " ");
    if note.len() > NOTE_LIMIT {
        let mut end = NOTE_LIMIT;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
    }
    Event {
        metadata: ObjectMeta {
            name: Some(event_name(refused)),
            namespace: Some(namespace_of(refused)),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
        type_: Some("Warning".into()),
        reason: Some(refused.reason.into()),
        action: Some(ACTION.into()),
        note: Some(note),
        regarding: Some(refused.regarding.clone()),
        reporting_controller: Some(REPORTING_CONTROLLER.into()),
        reporting_instance: Some(instance.into()),
        ..Event::default()
    }
}

fn namespace_of(refused: &Refused) -> String {
    refused
        .regarding
        .namespace
        .clone()
        .unwrap_or_else(|| NAMESPACE.into())
}

/// Posts refusals as Events, each once (see the module documentation).
pub struct Recorder {
    client: Client,
    api_server: String,
    instance: String,
    /// The Events known to exist.
    posted: BTreeSet<String>,
    /// Whether the last post failed (one line per run of failures).
    failing: bool,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("api_server", &self.api_server)
            .field("instance", &self.instance)
            .field("posted", &self.posted.len())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder reporting as `instance` (this node's name).
    pub fn new(client: Client, api_server: String, instance: String) -> Recorder {
        Recorder {
            client,
            api_server,
            instance,
            posted: BTreeSet::new(),
            failing: false,
        }
    }

    /// Posts each of `refusals` not posted yet. Stops at the first failure (the API
    /// server is down or refuses): the rest are tried at the next call.
    pub async fn post(&mut self, refusals: &[Refused]) {
        for refused in refusals {
            let name = event_name(refused);
            if self.posted.contains(&name) {
                continue;
            }
            let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace_of(refused));
            let created = api
                .create(&PostParams::default(), &event(refused, &self.instance))
                .await;
            match created {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(error) => {
                    if !self.failing {
                        tracing::warn!(
                            "Kubernetes API server {}: posting the Event {} ({}): {error}; trying again at the next change",
                            self.api_server,
                            refused.reason,
                            describe(&refused.regarding),
                        );
                    }
                    self.failing = true;
                    return;
                }
            }
            self.failing = false;
            self.posted.insert(name);
        }
    }
}

/// `KIND NAME` of a reference.
pub fn describe(reference: &ObjectReference) -> String {
    format!(
        "{} {}",
        reference.kind.as_deref().unwrap_or("object"),
        reference.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(name: &str, generation: Option<i64>, note: &str) -> Refused {
        Refused {
            regarding: ObjectReference {
                api_version: Some("wren.io/v1alpha1".into()),
                kind: Some("BGPPeer".into()),
                name: Some(name.into()),
                uid: Some("0b1f".into()),
                ..ObjectReference::default()
            },
            generation,
            reason: "BothNodeAndNodeSelector",
            note: note.into(),
        }
    }

    #[test]
    fn one_name_per_object_generation_reason_and_note() {
        let first = event_name(&refused("bad", Some(1), "a"));
        assert_eq!(first, event_name(&refused("bad", Some(1), "a")));
        assert!(first.starts_with("bad."), "{first}");
        assert_eq!(first.len(), "bad.".len() + 16);
        for other in [
            refused("bad", Some(2), "a"),
            refused("bad", Some(1), "node b: a"),
            refused("worse", Some(1), "a"),
        ] {
            assert_ne!(first, event_name(&other));
        }
    }

    #[test]
    fn long_names_fit_and_notes_are_one_bounded_line() {
        let long = format!("{}-", "a".repeat(300));
        let name = event_name(&refused(&long, None, "x"));
        assert!(name.len() <= 253, "{}", name.len());
        assert!(!name.contains("-."), "{name}");
        let event = event(&refused("bad", None, &"é\n".repeat(700)), "node-a");
        let note = event.note.unwrap_or_default();
        assert!(note.len() <= NOTE_LIMIT && !note.contains('\n'));
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(event.reporting_instance.as_deref(), Some("node-a"));
    }
}
