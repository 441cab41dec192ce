//! The cluster datastore: etcd v3 through `etcd-client` (works with etcd 3.4 and later).
//!
//! A [`Txn`] becomes one etcd transaction whose compares are the expectations
//! (`version == 0` for absent, `mod_revision == R` for a revision). When a transaction's
//! response is lost (timeout, connection reset) its outcome is unknown; it is resolved
//! by re-reading the written keys: applied when every put key holds the value we wrote
//! and every deleted key is gone, otherwise reported as a conflict (the caller re-reads
//! and retries, so nothing is written twice).

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, KvClient, TxnOp, WatchOptions,
};

use super::{Action, Datastore, Entry, Expect, Op, Outcome, Read, StoreError, Txn, Watch};

/// Deadline of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Re-reads made to resolve a write whose outcome is unknown.
const RESOLVE_ATTEMPTS: u32 = 5;
const RESOLVE_PAUSE: Duration = Duration::from_millis(500);
/// Largest response accepted (a list of many blocks).
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// An etcd-backed [`Datastore`]. Cheap to clone.
#[derive(Clone)]
pub struct EtcdStore {
    url: Arc<str>,
    client: Arc<Client>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects to the endpoints of an `etcd://HOST:PORT[,HOST:PORT...]` URL and checks
    /// that the cluster answers.
    pub async fn open(url: &str) -> Result<EtcdStore, StoreError> {
        let endpoints = parse_url(url)?;
        let options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(|e| unavailable(url, &e))?;
        let store = EtcdStore {
            url: Arc::from(url),
            client: Arc::new(client),
        };
        store.revision().await?;
        Ok(store)
    }

    fn kv(&self) -> KvClient {
        self.client
            .kv_client()
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// Decides whether a transaction whose response was lost was applied, by
    /// re-reading its written keys (in one batch, retried while etcd is unreachable).
    async fn resolve(&self, txn: &Txn, first: etcd_client::Error) -> Result<Outcome, StoreError> {
        let writes: Vec<&Op> = txn
            .ops
            .iter()
            .filter(|op| op.action != Action::Check)
            .collect();
        if writes.is_empty() {
            return Ok(Outcome::Conflict);
        }
        let reads = writes
            .iter()
            .map(|op| Read::Key(op.key.clone()))
            .collect::<Vec<_>>();
        let mut last = first.to_string();
        for attempt in 0..RESOLVE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(RESOLVE_PAUSE).await;
            }
            match self.read(reads.clone()).await {
                Ok(found) => {
                    let found: Vec<Option<Entry>> = found
                        .into_iter()
                        .map(|entries| entries.into_iter().next())
                        .collect();
                    return Ok(match judge(&writes, &found) {
                        Some(0) => Outcome::Committed {
                            revision: self.revision().await?,
                        },
                        Some(revision) => Outcome::Committed { revision },
                        None => Outcome::Conflict,
                    });
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(StoreError::OutcomeUnknown {
            url: self.url.to_string(),
            attempts: RESOLVE_ATTEMPTS,
            reason: last,
        })
    }
}

/// Whether re-read keys show a transaction's writes: every put key holds the value
/// written and every deleted key is gone. `Some(revision)` (the largest revision of the
/// put keys; 0 when it only deleted) when applied, `None` when not (or overwritten
/// since, which the caller's re-read and retry handles).
fn judge(writes: &[&Op], found: &[Option<Entry>]) -> Option<u64> {
    let mut revision = 0;
    for (op, entry) in writes.iter().zip(found) {
        match (&op.action, entry) {
            (Action::Put(value), Some(entry)) if entry.value == *value => {
                revision = revision.max(entry.revision);
            }
            (Action::Delete, None) => {}
            _ => return None,
        }
    }
    (writes.len() == found.len()).then_some(revision)
}

impl Datastore for EtcdStore {
    fn url(&self) -> &str {
        &self.url
    }

    fn multi_key_transactions(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let response = self
            .kv()
            .get(key, None)
            .await
            .map_err(|e| unavailable(&self.url, &e))?;
        Ok(response.kvs().first().map(|kv| Entry {
            key: key.to_string(),
            value: kv.value().to_vec(),
            revision: kv.mod_revision() as u64,
        }))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        let response = self
            .kv()
            .get(prefix, Some(GetOptions::new().with_prefix()))
            .await
            .map_err(|e| unavailable(&self.url, &e))?;
        let mut entries = Vec::with_capacity(response.kvs().len());
        for kv in response.kvs() {
            let key = kv.key_str().map_err(|e| StoreError::Failed {
                url: self.url.to_string(),
                reason: format!("a key under {prefix} is not UTF-8: {e}"),
            })?;
            entries.push(Entry {
                key: key.to_string(),
                value: kv.value().to_vec(),
                revision: kv.mod_revision() as u64,
            });
        }
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }

    async fn commit(&self, txn: Txn) -> Result<Outcome, StoreError> {
        let mut compares = Vec::new();
        let mut operations = Vec::new();
        for op in &txn.ops {
            match op.expect {
                Expect::Absent => {
                    compares.push(Compare::version(op.key.as_str(), CompareOp::Equal, 0))
                }
                Expect::Revision(r) => compares.push(Compare::mod_revision(
                    op.key.as_str(),
                    CompareOp::Equal,
                    r as i64,
                )),
                Expect::Any => {}
            }
            match &op.action {
                Action::Put(value) => {
                    operations.push(TxnOp::put(op.key.as_str(), value.clone(), None))
                }
                Action::Delete => operations.push(TxnOp::delete(op.key.as_str(), None)),
                Action::Check => {}
            }
        }
        let request = etcd_client::Txn::new().when(compares).and_then(operations);
        match self.kv().txn(request).await {
            Ok(response) if response.succeeded() => Ok(Outcome::Committed {
                revision: response.header().map_or(0, |h| h.revision() as u64),
            }),
            Ok(_) => Ok(Outcome::Conflict),
            Err(etcd_client::Error::GRpcStatus(status))
                if DEFINITE_FAILURES.contains(&(status.code() as i32)) =>
            {
                Err(StoreError::Failed {
                    url: self.url.to_string(),
                    reason: format!("transaction refused: {}", status.message()),
                })
            }
            Err(e) => self.resolve(&txn, e).await,
        }
    }

    async fn read(&self, reads: Vec<Read>) -> Result<Vec<Vec<Entry>>, StoreError> {
        let operations: Vec<TxnOp> = reads
            .iter()
            .map(|read| match read {
                Read::Key(key) => TxnOp::get(key.as_str(), None),
                Read::Prefix(prefix) | Read::PrefixFromCache(prefix) => {
                    TxnOp::get(prefix.as_str(), Some(GetOptions::new().with_prefix()))
                }
                Read::NodeBlocks(_) => {
                    TxnOp::get(crate::keys::BLOCKS, Some(GetOptions::new().with_prefix()))
                }
            })
            .collect();
        let response = self
            .kv()
            .txn(etcd_client::Txn::new().and_then(operations))
            .await
            .map_err(|e| unavailable(&self.url, &e))?;
        let mut out = Vec::with_capacity(reads.len());
        for op in response.op_responses() {
            let etcd_client::TxnOpResponse::Get(get) = op else {
                return Err(StoreError::Failed {
                    url: self.url.to_string(),
                    reason: String::from("a read transaction answered with a write"),
                });
            };
            let mut entries = Vec::with_capacity(get.kvs().len());
            for kv in get.kvs() {
                entries.push(Entry {
                    key: kv
                        .key_str()
                        .map_err(|e| StoreError::Failed {
                            url: self.url.to_string(),
                            reason: format!("a key is not UTF-8: {e}"),
                        })?
                        .to_string(),
                    value: kv.value().to_vec(),
                    revision: kv.mod_revision() as u64,
                });
            }
            entries.sort_by(|a, b| a.key.cmp(&b.key));
            if let Some(Read::NodeBlocks(node)) = reads.get(out.len()) {
                entries = super::node_blocks(entries, node);
            }
            out.push(entries);
        }
        if out.len() != reads.len() {
            return Err(StoreError::Failed {
                url: self.url.to_string(),
                reason: format!("{} reads answered with {} results", reads.len(), out.len()),
            });
        }
        Ok(out)
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        let response = self
            .kv()
            .get("/", Some(GetOptions::new().with_count_only()))
            .await
            .map_err(|e| unavailable(&self.url, &e))?;
        Ok(response.header().map_or(0, |h| h.revision() as u64))
    }

    async fn watch_node(&self, _node: &str) -> Result<Watch, StoreError> {
        self.watch(crate::keys::IPAM).await
    }

    async fn watch(&self, prefix: &str) -> Result<Watch, StoreError> {
        let mut client = Client::clone(&self.client);
        let stream = client
            .watch(prefix, Some(WatchOptions::new().with_prefix()))
            .await
            .map_err(|e| unavailable(&self.url, &e))?;
        let url = self.url.to_string();
        let (sender, receiver) = tokio::sync::mpsc::channel(16);
        let task = tokio::spawn(async move {
            let (_requests, mut responses) = stream.split();
            loop {
                let next = match responses.message().await {
                    Ok(Some(response)) if response.canceled() => Err(StoreError::Failed {
                        url: url.clone(),
                        reason: format!("watch canceled: {}", response.cancel_reason()),
                    }),
                    Ok(Some(response)) if response.events().is_empty() => continue,
                    Ok(Some(response)) => Ok(response.header().map_or(0, |h| h.revision() as u64)),
                    Ok(None) => Err(StoreError::Unavailable {
                        url: url.clone(),
                        reason: String::from("the watch stream ended"),
                    }),
                    Err(e) => Err(unavailable(&url, &e)),
                };
                let end = next.is_err();
                if sender.send(next).await.is_err() || end {
                    return;
                }
            }
        });
        Ok(Watch::new(receiver, task))
    }
}

/// `etcd://a:2379,b:2379` -> `["http://a:2379", "http://b:2379"]`.
pub(super) fn parse_url(url: &str) -> Result<Vec<String>, StoreError> {
    let bad = |reason: &str| StoreError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let rest = url
        .strip_prefix("etcd://")
        .ok_or_else(|| bad("an etcd URL starts with etcd://"))?;
    let mut endpoints = Vec::new();
    for endpoint in rest.split(',') {
        let endpoint = endpoint.trim().trim_end_matches('/');
        let (host, port) = endpoint
            .rsplit_once(':')
            .ok_or_else(|| bad(&format!("endpoint {endpoint:?} has no :PORT")))?;
        if host.is_empty() || host.contains('/') || port.parse::<u16>().is_err() {
            return Err(bad(&format!("endpoint {endpoint:?} is not HOST:PORT")));
        }
        endpoints.push(format!("http://{endpoint}"));
    }
    Ok(endpoints)
}

/// gRPC status codes that mean the server refused a request without applying it:
/// InvalidArgument, PermissionDenied, ResourceExhausted, FailedPrecondition, OutOfRange,
/// Unimplemented, Unauthenticated.
const DEFINITE_FAILURES: [i32; 7] = [3, 7, 8, 9, 11, 12, 16];

fn unavailable(url: &str, error: &etcd_client::Error) -> StoreError {
    let reason = match error {
        etcd_client::Error::GRpcStatus(status) => {
            format!("{:?}: {}", status.code(), status.message())
        }
        other => {
            // Transport errors hide their cause in the source chain.
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    };
    StoreError::Unavailable {
        url: url.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(key: &str, action: Action) -> Op {
        Op {
            key: key.to_string(),
            expect: Expect::Any,
            action,
        }
    }

    fn entry(key: &str, value: &[u8], revision: u64) -> Option<Entry> {
        Some(Entry {
            key: key.to_string(),
            value: value.to_vec(),
            revision,
        })
    }

    #[test]
    fn a_lost_response_is_judged_by_re_reading() {
        let put_a = op("/a", Action::Put(b"new".to_vec()));
        let put_b = op("/b", Action::Put(b"mine".to_vec()));
        let del_c = op("/c", Action::Delete);
        let writes = [&put_a, &put_b, &del_c];
        // Applied: both values are ours, the deleted key is gone.
        let seen = [entry("/a", b"new", 7), entry("/b", b"mine", 7), None];
        assert_eq!(judge(&writes, &seen), Some(7));
        // Not applied: a key still holds the old value.
        let seen = [entry("/a", b"old", 3), entry("/b", b"mine", 7), None];
        assert_eq!(judge(&writes, &seen), None);
        // Not applied: the key to delete is still there.
        let seen = [
            entry("/a", b"new", 7),
            entry("/b", b"mine", 7),
            entry("/c", b"x", 2),
        ];
        assert_eq!(judge(&writes, &seen), None);
        // A put key missing: not applied.
        let seen = [None, entry("/b", b"mine", 7), None];
        assert_eq!(judge(&writes, &seen), None);
        // Delete only.
        assert_eq!(judge(&[&del_c], &[None]), Some(0));
    }
}
