//! Every operation this process makes on a datastore through [`super::AnyStore`]
//! (the one way every store is reached), counted by operation and result and timed:
//! what bgpd's metrics export as `wren_ipam_datastore_operations_total{op,result}`
//! and `wren_ipam_operation_duration_seconds{op}`.
//!
//! Operations are named after the [`super::Datastore`] methods (`get`, `list`,
//! `read`, `revision`, `watch` for each watch started), `connect` for
//! [`super::open`], and a transaction after what
//! it writes: `create` (a key that must be absent), `update`, `delete` or `check`
//! for the one-key transactions that IPAM sends, `commit` for one of several keys.
//! Results: `ok`, `conflict` (a transaction whose expectation failed), `not-found`
//! (a `get` of a missing key), `error` (the store failed).
//!
//! The counts are process-wide atomics (the stores are cloned freely and used from
//! many tasks); [`snapshot`] copies them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Action, Expect, Outcome, StoreError, Txn};

/// An operation on a datastore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Get,
    List,
    Read,
    Revision,
    Create,
    Update,
    Delete,
    Check,
    Commit,
    Watch,
    Connect,
}

impl Operation {
    pub const ALL: [Operation; 11] = [
        Operation::Get,
        Operation::List,
        Operation::Read,
        Operation::Revision,
        Operation::Create,
        Operation::Update,
        Operation::Delete,
        Operation::Check,
        Operation::Commit,
        Operation::Watch,
        Operation::Connect,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::List => "list",
            Operation::Read => "read",
            Operation::Revision => "revision",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Check => "check",
            Operation::Commit => "commit",
            Operation::Watch => "watch",
            Operation::Connect => "connect",
        }
    }

    /// The results this operation can have.
    pub fn results(self) -> &'static [OperationResult] {
        use OperationResult::{Conflict, Error, NotFound, Ok};
        match self {
            Operation::Get => &[Ok, NotFound, Error],
            Operation::Create
            | Operation::Update
            | Operation::Delete
            | Operation::Check
            | Operation::Commit => &[Ok, Conflict, Error],
            Operation::List
            | Operation::Read
            | Operation::Revision
            | Operation::Watch
            | Operation::Connect => &[Ok, Error],
        }
    }

    /// What a transaction does: its one operation's kind, or `commit`.
    pub fn of(txn: &Txn) -> Operation {
        match txn.ops.as_slice() {
            [op] => match (&op.action, op.expect) {
                (Action::Put(_), Expect::Absent) => Operation::Create,
                (Action::Put(_), _) => Operation::Update,
                (Action::Delete, _) => Operation::Delete,
                (Action::Check, _) => Operation::Check,
            },
            _ => Operation::Commit,
        }
    }
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationResult {
    Ok,
    Conflict,
    NotFound,
    Error,
}

impl OperationResult {
    pub const ALL: [OperationResult; 4] = [
        OperationResult::Ok,
        OperationResult::Conflict,
        OperationResult::NotFound,
        OperationResult::Error,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OperationResult::Ok => "ok",
            OperationResult::Conflict => "conflict",
            OperationResult::NotFound => "not-found",
            OperationResult::Error => "error",
        }
    }

    pub fn of_commit(result: &Result<Outcome, StoreError>) -> OperationResult {
        match result {
            Ok(Outcome::Committed { .. }) => OperationResult::Ok,
            Ok(Outcome::Conflict) => OperationResult::Conflict,
            Err(_) => OperationResult::Error,
        }
    }

    pub fn of_get<T>(result: &Result<Option<T>, StoreError>) -> OperationResult {
        match result {
            Ok(Some(_)) => OperationResult::Ok,
            Ok(None) => OperationResult::NotFound,
            Err(_) => OperationResult::Error,
        }
    }

    pub fn of<T>(result: &Result<T, StoreError>) -> OperationResult {
        match result {
            Ok(_) => OperationResult::Ok,
            Err(_) => OperationResult::Error,
        }
    }
}

/// Upper bounds of the duration buckets, in seconds (a local SQLite read takes tens
/// of microseconds, an etcd or API server round trip milliseconds, a store that
/// hangs up to its timeouts).
pub const DURATION_BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const OPERATIONS: usize = Operation::ALL.len();
const RESULTS: usize = OperationResult::ALL.len();
const BUCKETS: usize = DURATION_BOUNDS.len() + 1;

/// The process' counts.
struct Counts {
    results: [[AtomicU64; RESULTS]; OPERATIONS],
    /// Per operation: observations per bucket (not cumulative, the last above every
    /// bound), and the sum in nanoseconds.
    buckets: [[AtomicU64; BUCKETS]; OPERATIONS],
    nanoseconds: [AtomicU64; OPERATIONS],
}

static COUNTS: Counts = Counts {
    results: [const { [const { AtomicU64::new(0) }; RESULTS] }; OPERATIONS],
    buckets: [const { [const { AtomicU64::new(0) }; BUCKETS] }; OPERATIONS],
    nanoseconds: [const { AtomicU64::new(0) }; OPERATIONS],
};

/// Counts one operation that took `elapsed`.
pub fn record(operation: Operation, result: OperationResult, elapsed: Duration) {
    let op = operation as usize;
    COUNTS.results[op][result as usize].fetch_add(1, Ordering::Relaxed);
    let seconds = elapsed.as_secs_f64();
    let bucket = DURATION_BOUNDS
        .iter()
        .position(|bound| seconds <= *bound)
        .unwrap_or(DURATION_BOUNDS.len());
    COUNTS.buckets[op][bucket].fetch_add(1, Ordering::Relaxed);
    let nanoseconds = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
    COUNTS.nanoseconds[op].fetch_add(nanoseconds, Ordering::Relaxed);
}

/// One operation's counts.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationCounts {
    pub operation: Operation,
    /// Per result, in [`OperationResult::ALL`]'s order.
    pub results: [u64; RESULTS],
    /// Per bucket (not cumulative), the last above every bound.
    pub buckets: [u64; BUCKETS],
    pub sum_seconds: f64,
}

impl OperationCounts {
    /// Operations counted (every result).
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// (upper bound, observations) per bucket, the last one's bound infinite.
    pub fn bucket_bounds(&self) -> Vec<(f64, u64)> {
        DURATION_BOUNDS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.buckets)
            .collect()
    }
}

/// A copy of every operation's counts (each counter read once; operations under
/// way may land in one and not yet in another).
pub fn snapshot() -> Vec<OperationCounts> {
    Operation::ALL
        .iter()
        .map(|&operation| {
            let op = operation as usize;
            OperationCounts {
                operation,
                results: std::array::from_fn(|r| COUNTS.results[op][r].load(Ordering::Relaxed)),
                buckets: std::array::from_fn(|b| COUNTS.buckets[op][b].load(Ordering::Relaxed)),
                sum_seconds: COUNTS.nanoseconds[op].load(Ordering::Relaxed) as f64 / 1e9,
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn transactions_are_named_by_what_they_write() {
        let mut create = Txn::new();
        create.put("a", Vec::new(), Expect::Absent);
        assert_eq!(Operation::of(&create), Operation::Create);
        let mut update = Txn::new();
        update.put("a", Vec::new(), Expect::Revision(3));
        assert_eq!(Operation::of(&update), Operation::Update);
        let mut delete = Txn::new();
        delete.delete("a", Expect::Revision(3));
        assert_eq!(Operation::of(&delete), Operation::Delete);
        delete.put("b", Vec::new(), Expect::Any);
        assert_eq!(Operation::of(&delete), Operation::Commit);
    }

    #[test]
    fn a_record_lands_in_its_bucket_and_result() {
        let before = snapshot();
        record(
            Operation::Check,
            OperationResult::Conflict,
            Duration::from_millis(3),
        );
        let after = snapshot();
        let (old, new) = (&before[7], &after[7]);
        assert_eq!(new.operation, Operation::Check);
        assert_eq!(new.results[1], old.results[1] + 1);
        // 3 ms: the 0.005 bucket, the fourth.
        assert_eq!(new.buckets[3], old.buckets[3] + 1);
        assert_eq!(new.count(), old.count() + 1);
        assert!(new.sum_seconds >= old.sum_seconds + 0.003 - 1e-9);
        assert_eq!(new.bucket_bounds().last().unwrap().0, f64::INFINITY);
    }
}
