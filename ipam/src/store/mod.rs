//! The datastore abstraction: a key-value store with a revision per key and
//! compare-and-swap writes.
//!
//! # The contract
//!
//! - **Writes.** Every write goes through [`Datastore::commit`] with an expectation on
//!   its key (absent, or at a given revision); a transaction whose expectations do not
//!   hold changes nothing and returns [`Outcome::Conflict`], and the caller re-reads
//!   and retries. SQLite and etcd apply a transaction of several keys atomically;
//!   **the IPAM operations never send one**: every transaction they commit touches
//!   exactly one key, because the Kubernetes API has no multi-object transaction (one
//!   object's `resourceVersion` is its compare-and-swap). The operations are sequences
//!   of single-key writes whose every intermediate state is safe (never one address
//!   handed out twice, never a block owned by two nodes, never an allocated address
//!   missing from its handle's record) and is completed or undone by the next
//!   operation: see `claim.rs` (affinities pending, confirmed, pending deletion) and
//!   `handles.rs` (the handle record written before the block on assignment, after
//!   it on release). So the same algorithm runs on every store, and the stores need
//!   to guarantee only single-key compare-and-swap.
//! - **Revisions.** A key's revision changes with every write of it and only grows;
//!   SQLite and etcd take it from one store-wide counter that every committed
//!   transaction increments (etcd's `mod_revision`; a counter row in SQLite), so a
//!   [`Watch`] can report "something under this prefix changed at revision R". On
//!   Kubernetes it is an object's `resourceVersion`, the revision of the etcd under
//!   the API server, which every object of the cluster moves (so the store's revision
//!   may grow without an IPAM write).
//! - **Transactions of several keys** ([`Datastore::multi_key_transactions`]): atomic
//!   on SQLite and etcd, refused with an error (nothing written) on Kubernetes.
//!
//! `ipam/tests/store_battery.rs` checks this contract on all three stores, each on
//! its side where they differ.
//! - **Reads.** [`Datastore::read`] returns several reads in one round trip, at one
//!   revision on SQLite and etcd; `ipam check` audits what operations under way may
//!   show between their writes twice, [`crate::CLAIM_GRACE`] apart (see `check.rs`),
//!   so it does not depend on that.
//!
//! Three implementations: [`SqliteStore`] (one file, many processes), [`EtcdStore`]
//! (etcd v3) and [`KubernetesStore`] (custom resources on the Kubernetes API; it
//! refuses a transaction of several keys). [`open`] picks one from a URL:
//! `sqlite:///var/lib/wren/ipam.db`, `etcd://127.0.0.1:2379,10.0.0.2:2379`,
//! `kubernetes` (in-cluster configuration, else `KUBECONFIG`) or
//! `kubernetes:///path/to/kubeconfig`. [`AnyStore`], through which every store is
//! reached, counts and times each operation ([`operations`], for bgpd's metrics).

mod etcd;
pub(crate) mod kubernetes;
pub mod operations;
mod sqlite;

use std::future::Future;

pub use etcd::EtcdStore;
pub use kubernetes::KubernetesStore;
use operations::{Operation, OperationResult};
pub use sqlite::SqliteStore;

/// One stored key with its value and the revision of its last change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
    pub revision: u64,
}

/// What a transaction requires of a key before it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The key must not exist.
    Absent,
    /// The key must exist with exactly this revision.
    Revision(u64),
    /// No requirement (a blind write).
    Any,
}

impl Expect {
    /// The expectation that matches what a read returned: its revision, or absent.
    pub fn from_entry(entry: Option<&Entry>) -> Expect {
        entry.map_or(Expect::Absent, |e| Expect::Revision(e.revision))
    }
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Put(Vec<u8>),
    Delete,
    /// Only check the expectation; write nothing.
    Check,
}

/// An operation on one key with its expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub key: String,
    pub expect: Expect,
    pub action: Action,
}

/// An atomic set of operations: all apply, or (when any expectation fails) none.
/// A key appears at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub ops: Vec<Op>,
}

impl Txn {
    pub fn new() -> Txn {
        Txn::default()
    }

    pub fn put(&mut self, key: impl Into<String>, value: Vec<u8>, expect: Expect) -> &mut Txn {
        self.push(key.into(), expect, Action::Put(value))
    }

    pub fn delete(&mut self, key: impl Into<String>, expect: Expect) -> &mut Txn {
        self.push(key.into(), expect, Action::Delete)
    }

    pub fn check(&mut self, key: impl Into<String>, expect: Expect) -> &mut Txn {
        self.push(key.into(), expect, Action::Check)
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// A later operation on a key replaces an earlier one (keeping the earlier
    /// expectation, which is the one that reflects what was read).
    fn push(&mut self, key: String, expect: Expect, action: Action) -> &mut Txn {
        if let Some(op) = self.ops.iter_mut().find(|op| op.key == key) {
            if op.expect == Expect::Any {
                op.expect = expect;
            }
            if action != Action::Check {
                op.action = action;
            }
        } else {
            self.ops.push(Op {
                key,
                expect,
                action,
            });
        }
        self
    }
}

/// One read of a [`Datastore::read`] batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// One key: zero or one entry.
    Key(String),
    /// Every key under a prefix, sorted by key.
    Prefix(String),
    /// [`Read::Prefix`], which the store may serve from a cache it keeps current by
    /// watching (the Kubernetes API server's watch cache): it can lag behind the
    /// latest writes of other processes, never behind the writes made through this
    /// store (or a clone of it). For reads whose staleness the caller's next
    /// compare-and-swap catches (a claim's first look at the node's own affinities);
    /// a caller that lost a compare-and-swap re-reads with [`Read::Prefix`]. SQLite
    /// and etcd read it as [`Read::Prefix`].
    PrefixFromCache(String),
    /// The blocks (under `keys::BLOCKS`) whose record names this node as its
    /// `affinity` or as an allocation's `borrower`, sorted by key: what a node
    /// advertises. The Kubernetes store lists them by label (see `kubernetes.rs`),
    /// the others filter the blocks they read.
    NodeBlocks(String),
}

/// Whether a block's stored JSON names `node` as its affinity or as a borrower (read
/// without the block type, which the stores do not depend on; a value that is not
/// JSON names nobody, and decoding it later reports it).
pub(crate) fn block_names_node(value: &[u8], node: &str) -> bool {
    let Ok(block) = serde_json::from_slice::<serde_json::Value>(value) else {
        return false;
    };
    block.get("affinity").and_then(|a| a.as_str()) == Some(node)
        || block
            .get("allocations")
            .and_then(|a| a.as_object())
            .is_some_and(|allocations| {
                allocations
                    .values()
                    .any(|a| a.get("borrower").and_then(|b| b.as_str()) == Some(node))
            })
}

/// Of every block, those that name `node` ([`Read::NodeBlocks`] on the stores that
/// read all blocks).
pub(crate) fn node_blocks(blocks: Vec<Entry>, node: &str) -> Vec<Entry> {
    blocks
        .into_iter()
        .filter(|entry| block_names_node(&entry.value, node))
        .collect()
}

/// The result of [`Datastore::commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied; every written key now has this revision.
    Committed { revision: u64 },
    /// An expectation failed; nothing was written.
    Conflict,
}

/// A datastore failure. Every message names the datastore URL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "datastore URL {url:?} is not valid: {reason} (expected sqlite:///PATH, etcd://HOST:PORT[,HOST:PORT...], kubernetes or kubernetes:///PATH/TO/KUBECONFIG)"
    )]
    BadUrl { url: String, reason: String },
    #[error("datastore {url} is unavailable: {reason}")]
    Unavailable { url: String, reason: String },
    #[error(
        "datastore {url}: the outcome of a write is unknown after {attempts} attempts to re-read it: {reason}"
    )]
    OutcomeUnknown {
        url: String,
        attempts: u32,
        reason: String,
    },
    #[error("datastore {url}: {reason}")]
    Failed { url: String, reason: String },
}

/// The change notifications of a watched prefix. Drop it to stop watching.
#[derive(Debug)]
pub struct Watch {
    receiver: tokio::sync::mpsc::Receiver<Result<u64, StoreError>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    pub(crate) fn new(
        receiver: tokio::sync::mpsc::Receiver<Result<u64, StoreError>>,
        task: tokio::task::JoinHandle<()>,
    ) -> Watch {
        Watch { receiver, task }
    }

    /// Waits for the next change under the watched prefix and returns the store
    /// revision it was seen at. Several changes may be reported as one: re-read the
    /// state after each notification. An error means the watch has ended.
    pub async fn changed(&mut self) -> Result<u64, StoreError> {
        match self.receiver.recv().await {
            Some(result) => result,
            None => Err(StoreError::Failed {
                url: String::from("(watch)"),
                reason: String::from("the watch task ended"),
            }),
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A key-value store with per-key revisions and compare-and-swap writes (see the
/// module text for the contract).
///
/// `commit` is linearizable with the reads, and atomic for the transactions a store
/// accepts (a store may refuse one of several keys); `list` returns the entries whose
/// key starts with `prefix`, sorted by key.
pub trait Datastore: Send + Sync + 'static {
    /// The URL this store was opened from (named in every error).
    fn url(&self) -> &str;

    /// Whether [`Datastore::commit`] takes a transaction of several keys (applied
    /// atomically: SQLite, etcd) or refuses it with an error, writing nothing (the
    /// Kubernetes store). The IPAM operations never send one either way.
    fn multi_key_transactions(&self) -> bool;

    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Entry>, StoreError>> + Send;

    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<Entry>, StoreError>> + Send;

    fn commit(&self, txn: Txn) -> impl Future<Output = Result<Outcome, StoreError>> + Send;

    /// Several reads at one revision, in one round trip: one list of entries per read.
    fn read(
        &self,
        reads: Vec<Read>,
    ) -> impl Future<Output = Result<Vec<Vec<Entry>>, StoreError>> + Send;

    /// How many [`Read::Key`] reads of one [`Datastore::read`] take one round trip: a
    /// caller looking for the first of several keys that is absent reads them in
    /// batches of this size and stops at the first batch that has one. SQLite and etcd
    /// read any number at once; the Kubernetes store sends a request per key, a few in
    /// flight at a time.
    fn keys_per_round_trip(&self) -> usize {
        usize::MAX
    }

    /// The store's current revision (its change counter).
    fn revision(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Notifications of changes to keys under `prefix` made after this call
    /// (by any process). etcd: a native watch; SQLite: polling the change counter.
    fn watch(&self, prefix: &str) -> impl Future<Output = Result<Watch, StoreError>> + Send;

    /// Notifications of changes to the pools and to the blocks that name `node`
    /// ([`Read::NodeBlocks`]): what a node that advertises its blocks must follow.
    /// It may report more (SQLite and etcd watch every IPAM key); the Kubernetes store
    /// watches the pools and the node's blocks by label, so other nodes' pods never
    /// wake it.
    fn watch_node(&self, node: &str) -> impl Future<Output = Result<Watch, StoreError>> + Send;

    /// Notifications of changes to who uses which block or address: a block claimed,
    /// released or given another owner, an address borrowed or given back (what the
    /// VXLAN overlay routes). It may report more: by default every block change; the
    /// Kubernetes store watches every block but reports only those changes, so a
    /// node's pods in its own blocks never wake the other nodes.
    fn watch_block_users(&self) -> impl Future<Output = Result<Watch, StoreError>> + Send {
        self.watch(crate::keys::BLOCKS)
    }
}

/// A store chosen at run time from a URL.
#[derive(Debug, Clone)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Etcd(EtcdStore),
    Kubernetes(KubernetesStore),
}

/// Checks a datastore URL's form without connecting (for configuration checks).
pub fn validate_url(url: &str) -> Result<(), StoreError> {
    if url.starts_with("sqlite:") {
        sqlite::parse_url(url).map(drop)
    } else if url.starts_with("etcd:") {
        etcd::parse_url(url).map(drop)
    } else if url.starts_with("kubernetes") {
        kubernetes::parse_url(url).map(drop)
    } else {
        Err(StoreError::BadUrl {
            url: url.to_string(),
            reason: String::from("unknown scheme"),
        })
    }
}

/// Opens the datastore a URL names, and checks that it answers (counted as a
/// `connect` in [`operations`]).
pub async fn open(url: &str) -> Result<AnyStore, StoreError> {
    counted(Operation::Connect, OperationResult::of, open_uncounted(url)).await
}

async fn open_uncounted(url: &str) -> Result<AnyStore, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(AnyStore::Sqlite(SqliteStore::open(url).await?))
    } else if url.starts_with("etcd:") {
        Ok(AnyStore::Etcd(EtcdStore::open(url).await?))
    } else if url.starts_with("kubernetes") {
        Ok(AnyStore::Kubernetes(KubernetesStore::open(url).await?))
    } else {
        Err(StoreError::BadUrl {
            url: url.to_string(),
            reason: String::from("unknown scheme"),
        })
    }
}

/// Runs one store operation, counted and timed in [`operations`].
async fn counted<T>(
    operation: Operation,
    classify: fn(&Result<T, StoreError>) -> OperationResult,
    run: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let started = std::time::Instant::now();
    let result = run.await;
    operations::record(operation, classify(&result), started.elapsed());
    result
}

/// Every operation goes to the chosen store, counted and timed
/// ([`operations`]): one place for every store.
impl Datastore for AnyStore {
    fn url(&self) -> &str {
        match self {
            AnyStore::Sqlite(s) => s.url(),
            AnyStore::Etcd(s) => s.url(),
            AnyStore::Kubernetes(s) => s.url(),
        }
    }

    fn multi_key_transactions(&self) -> bool {
        match self {
            AnyStore::Sqlite(s) => s.multi_key_transactions(),
            AnyStore::Etcd(s) => s.multi_key_transactions(),
            AnyStore::Kubernetes(s) => s.multi_key_transactions(),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        counted(Operation::Get, OperationResult::of_get, async {
            match self {
                AnyStore::Sqlite(s) => s.get(key).await,
                AnyStore::Etcd(s) => s.get(key).await,
                AnyStore::Kubernetes(s) => s.get(key).await,
            }
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        counted(Operation::List, OperationResult::of, async {
            match self {
                AnyStore::Sqlite(s) => s.list(prefix).await,
                AnyStore::Etcd(s) => s.list(prefix).await,
                AnyStore::Kubernetes(s) => s.list(prefix).await,
            }
        })
        .await
    }

    async fn commit(&self, txn: Txn) -> Result<Outcome, StoreError> {
        counted(Operation::of(&txn), OperationResult::of_commit, async {
            match self {
                AnyStore::Sqlite(s) => s.commit(txn).await,
                AnyStore::Etcd(s) => s.commit(txn).await,
                AnyStore::Kubernetes(s) => s.commit(txn).await,
            }
        })
        .await
    }

    async fn read(&self, reads: Vec<Read>) -> Result<Vec<Vec<Entry>>, StoreError> {
        counted(Operation::Read, OperationResult::of, async {
            match self {
                AnyStore::Sqlite(s) => s.read(reads).await,
                AnyStore::Etcd(s) => s.read(reads).await,
                AnyStore::Kubernetes(s) => s.read(reads).await,
            }
        })
        .await
    }

    fn keys_per_round_trip(&self) -> usize {
        match self {
            AnyStore::Sqlite(s) => s.keys_per_round_trip(),
            AnyStore::Etcd(s) => s.keys_per_round_trip(),
            AnyStore::Kubernetes(s) => s.keys_per_round_trip(),
        }
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        counted(Operation::Revision, OperationResult::of, async {
            match self {
                AnyStore::Sqlite(s) => s.revision().await,
                AnyStore::Etcd(s) => s.revision().await,
                AnyStore::Kubernetes(s) => s.revision().await,
            }
        })
        .await
    }

    async fn watch(&self, prefix: &str) -> Result<Watch, StoreError> {
        counted(Operation::Watch, OperationResult::of, async {
            match self {
                AnyStore::Sqlite(s) => s.watch(prefix).await,
                AnyStore::Etcd(s) => s.watch(prefix).await,
                AnyStore::Kubernetes(s) => s.watch(prefix).await,
            }
        })
        .await
    }

    async fn watch_node(&self, node: &str) -> Result<Watch, StoreError> {
        counted(Operation::Watch, OperationResult::of, async {
            match self {
                AnyStore::Sqlite(s) => s.watch_node(node).await,
                AnyStore::Etcd(s) => s.watch_node(node).await,
                AnyStore::Kubernetes(s) => s.watch_node(node).await,
            }
        })
        .await
    }

    async fn watch_block_users(&self) -> Result<Watch, StoreError> {
        counted(Operation::Watch, OperationResult::of, async {
            match self {
                AnyStore::Sqlite(s) => s.watch_block_users().await,
                AnyStore::Etcd(s) => s.watch_block_users().await,
                AnyStore::Kubernetes(s) => s.watch_block_users().await,
            }
        })
        .await
    }
}

/// The smallest key greater than every key starting with `prefix` (for range scans).
pub(crate) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}
