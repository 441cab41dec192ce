//! One battery of key-value tests, run against every datastore (SQLite always; etcd
//! when /usr/bin/etcd is installed; the Kubernetes store when the API server is
//! built), as one table of tests over the stores. The keys and values are ones every
//! store keeps: the Kubernetes store keeps only the IPAM records, each value the spec
//! of its resource, so the battery writes IPAM handle records (`t.NAME`), a number
//! carried as the record's one address. Where the stores differ by contract, the
//! battery checks each one's side: a transaction of several keys is atomic on SQLite
//! and etcd and refused on Kubernetes (`Datastore::multi_key_transactions`); a
//! store's revision is moved by this battery's writes only on SQLite and etcd (on
//! Kubernetes, every object of the cluster moves it).

#![allow(clippy::unwrap_used)]

mod support;

use support::battery;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use ipam::HandleRecord;
use ipam::store::{Datastore, Entry, Expect, Outcome, Read, Txn};

/// The key of test record `name` (an IPAM handle's key).
fn key(name: &str) -> String {
    ipam::keys::handle(&format!("t.{name}"))
}

/// The value of `key` carrying `n` (a handle record listing one address, 10.0.0.0 + n).
fn value(key: &str, n: u32) -> Vec<u8> {
    let handle = key.strip_prefix(ipam::keys::HANDLES).unwrap();
    let mut record = HandleRecord::new(handle);
    let address = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
    record.add("10.0.0.0/8".parse().unwrap(), &[address]);
    serde_json::to_vec(&record).unwrap()
}

/// The number an entry carries (see [`value`]); its record names its own key.
fn number(entry: &Entry) -> u32 {
    let record: HandleRecord = serde_json::from_slice(&entry.value).unwrap();
    assert_eq!(ipam::keys::handle(&record.handle), entry.key);
    let addresses: Vec<&IpAddr> = record.blocks.values().flatten().collect();
    match addresses.as_slice() {
        [IpAddr::V4(address)] => u32::from(*address) - 0x0a00_0000,
        other => panic!("{}: not a test value: {other:?}", entry.key),
    }
}

fn put(key: &str, n: u32, expect: Expect) -> Txn {
    let mut txn = Txn::new();
    txn.put(key, value(key, n), expect);
    txn
}

fn revision_of(outcome: Outcome) -> u64 {
    match outcome {
        Outcome::Committed { revision } => revision,
        Outcome::Conflict => panic!("unexpected conflict"),
    }
}

async fn read_number<S: Datastore>(s: &S, key: &str) -> Option<u32> {
    s.get(key).await.unwrap().map(|entry| number(&entry))
}

async fn keys_under<S: Datastore>(s: &S, prefix: &str) -> Vec<String> {
    s.list(prefix)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect()
}

async fn get_missing_is_none<S: Datastore>(s: &S) {
    assert_eq!(s.get(&key("missing")).await.unwrap(), None);
    assert!(s.list(&key("")).await.unwrap().is_empty());
}

async fn create_then_read_back<S: Datastore>(s: &S) {
    let a = key("a");
    let revision = revision_of(s.commit(put(&a, 1, Expect::Absent)).await.unwrap());
    let entry = s.get(&a).await.unwrap().unwrap();
    assert_eq!(entry.key, a);
    assert_eq!(number(&entry), 1);
    assert_eq!(entry.revision, revision);
    assert!(s.revision().await.unwrap() >= revision);
}

async fn create_twice_conflicts<S: Datastore>(s: &S) {
    let a = key("a");
    revision_of(s.commit(put(&a, 1, Expect::Absent)).await.unwrap());
    assert_eq!(
        s.commit(put(&a, 2, Expect::Absent)).await.unwrap(),
        Outcome::Conflict
    );
    assert_eq!(read_number(s, &a).await, Some(1));
}

async fn compare_and_swap_on_revision<S: Datastore>(s: &S) {
    let (a, b) = (key("a"), key("b"));
    let r1 = revision_of(s.commit(put(&a, 1, Expect::Absent)).await.unwrap());
    let r2 = revision_of(s.commit(put(&a, 2, Expect::Revision(r1))).await.unwrap());
    assert!(r2 > r1);
    // A writer still holding r1 loses.
    assert_eq!(
        s.commit(put(&a, 3, Expect::Revision(r1))).await.unwrap(),
        Outcome::Conflict
    );
    // Expecting a revision of a missing key fails too.
    assert_eq!(
        s.commit(put(&b, 4, Expect::Revision(r1))).await.unwrap(),
        Outcome::Conflict
    );
    assert_eq!(read_number(s, &b).await, None);
    let entry = s.get(&a).await.unwrap().unwrap();
    assert_eq!((number(&entry), entry.revision), (2, r2));
}

async fn delete_with_revision<S: Datastore>(s: &S) {
    let a = key("a");
    let r1 = revision_of(s.commit(put(&a, 1, Expect::Absent)).await.unwrap());
    let mut stale = Txn::new();
    stale.delete(&a, Expect::Revision(r1 + 1000));
    assert_eq!(s.commit(stale).await.unwrap(), Outcome::Conflict);
    let mut absent = Txn::new();
    absent.delete(&a, Expect::Absent);
    assert_eq!(s.commit(absent).await.unwrap(), Outcome::Conflict);
    let mut txn = Txn::new();
    txn.delete(&a, Expect::Revision(r1));
    revision_of(s.commit(txn).await.unwrap());
    assert_eq!(s.get(&a).await.unwrap(), None);
    // Deleting it again expecting the old revision conflicts.
    let mut again = Txn::new();
    again.delete(&a, Expect::Revision(r1));
    assert_eq!(s.commit(again).await.unwrap(), Outcome::Conflict);
    // Recreating after a delete works.
    revision_of(s.commit(put(&a, 5, Expect::Absent)).await.unwrap());
    assert_eq!(read_number(s, &a).await, Some(5));
}

/// SQLite and etcd: all of a transaction's keys apply, or none. Kubernetes: a
/// transaction of several keys is refused with an error naming the store, and
/// nothing is written.
async fn transaction_of_several_keys<S: Datastore>(s: &S) {
    let (a, b, c) = (key("a"), key("b"), key("c"));
    let r1 = revision_of(s.commit(put(&a, 1, Expect::Absent)).await.unwrap());
    let mut failing = Txn::new();
    failing.put(&b, value(&b, 2), Expect::Absent);
    failing.delete(&a, Expect::Revision(r1));
    failing.put(&c, value(&c, 3), Expect::Revision(7)); // fails
    let mut good = Txn::new();
    good.put(&b, value(&b, 2), Expect::Absent);
    good.put(&c, value(&c, 3), Expect::Absent);
    good.delete(&a, Expect::Revision(r1));
    if !s.multi_key_transactions() {
        for txn in [failing, good] {
            let err = s.commit(txn).await.unwrap_err().to_string();
            assert!(err.contains(s.url()) && err.contains("3 keys"), "{err}");
        }
        assert_eq!(read_number(s, &a).await, Some(1));
        assert_eq!(keys_under(s, &key("")).await, [a]);
        return;
    }
    assert_eq!(s.commit(failing).await.unwrap(), Outcome::Conflict);
    assert_eq!(s.get(&b).await.unwrap(), None);
    assert!(s.get(&a).await.unwrap().is_some());

    let revision = revision_of(s.commit(good).await.unwrap());
    assert_eq!(s.get(&b).await.unwrap().unwrap().revision, revision);
    assert_eq!(s.get(&c).await.unwrap().unwrap().revision, revision);
    assert_eq!(s.get(&a).await.unwrap(), None);
}

async fn check_only_operations<S: Datastore>(s: &S) {
    let (a, b) = (key("a"), key("b"));
    let r1 = revision_of(s.commit(put(&a, 1, Expect::Absent)).await.unwrap());
    let check = |expect| {
        let mut txn = Txn::new();
        txn.check(&a, expect);
        txn
    };
    assert_eq!(
        s.commit(check(Expect::Absent)).await.unwrap(),
        Outcome::Conflict
    );
    assert_eq!(
        s.commit(check(Expect::Revision(r1 + 1000))).await.unwrap(),
        Outcome::Conflict
    );
    assert!(revision_of(s.commit(check(Expect::Revision(r1))).await.unwrap()) >= r1);
    let mut missing = Txn::new();
    missing.check(&b, Expect::Absent);
    revision_of(s.commit(missing).await.unwrap());
    if s.multi_key_transactions() {
        // A check guarding a write of another key.
        let mut txn = check(Expect::Absent);
        txn.put(&b, value(&b, 2), Expect::Absent);
        assert_eq!(s.commit(txn).await.unwrap(), Outcome::Conflict);
        assert_eq!(s.get(&b).await.unwrap(), None);
        let mut txn = check(Expect::Revision(r1));
        txn.put(&b, value(&b, 2), Expect::Absent);
        revision_of(s.commit(txn).await.unwrap());
        assert_eq!(read_number(s, &b).await, Some(2));
    }
    // The checked key is unchanged.
    assert_eq!(s.get(&a).await.unwrap().unwrap().revision, r1);
}

async fn blind_writes<S: Datastore>(s: &S) {
    let a = key("a");
    let r1 = revision_of(s.commit(put(&a, 1, Expect::Any)).await.unwrap());
    let r2 = revision_of(s.commit(put(&a, 2, Expect::Any)).await.unwrap());
    assert!(r2 > r1);
    let mut txn = Txn::new();
    txn.delete(key("missing"), Expect::Any);
    revision_of(s.commit(txn).await.unwrap());
    assert_eq!(read_number(s, &a).await, Some(2));
    let mut txn = Txn::new();
    txn.delete(&a, Expect::Any);
    revision_of(s.commit(txn).await.unwrap());
    assert_eq!(s.get(&a).await.unwrap(), None);
}

async fn list_is_by_prefix_and_sorted<S: Datastore>(s: &S) {
    for (i, name) in ["b.2", "b.1", "bc", "a", "u"].into_iter().enumerate() {
        let k = key(name);
        revision_of(s.commit(put(&k, i as u32, Expect::Absent)).await.unwrap());
    }
    let entries = s.list(&key("b.")).await.unwrap();
    let found: Vec<(String, u32)> = entries.iter().map(|e| (e.key.clone(), number(e))).collect();
    assert_eq!(found, [(key("b.1"), 1), (key("b.2"), 0)]);
    assert_eq!(
        keys_under(s, &key("")).await,
        [key("a"), key("b.1"), key("b.2"), key("bc"), key("u")]
    );
    assert_eq!(
        keys_under(s, &key("b")).await,
        [key("b.1"), key("b.2"), key("bc")]
    );
    assert!(keys_under(s, &key("c")).await.is_empty());
}

/// Every write gets a revision greater than every earlier one, and greater than the
/// store's revision read before it; the store's revision is at least the last write's.
async fn revisions_increase<S: Datastore>(s: &S) {
    let mut last = s.revision().await.unwrap();
    for i in 0..5 {
        let r = revision_of(
            s.commit(put(&key(&i.to_string()), i, Expect::Absent))
                .await
                .unwrap(),
        );
        assert!(r > last);
        let now = s.revision().await.unwrap();
        assert!(now >= r, "revision {now} after a write at {r}");
        last = now;
    }
}

async fn concurrent_increments_lose_nothing<S: Datastore + Clone>(s: &S) {
    let counter = key("counter");
    revision_of(s.commit(put(&counter, 0, Expect::Absent)).await.unwrap());
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let s = s.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                loop {
                    let entry = s.get(&counter).await.unwrap().unwrap();
                    let txn = put(
                        &counter,
                        number(&entry) + 1,
                        Expect::Revision(entry.revision),
                    );
                    if s.commit(txn).await.unwrap() != Outcome::Conflict {
                        break;
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(read_number(s, &counter).await, Some(100));
}

async fn watch_reports_puts_and_deletes_under_prefix<S: Datastore>(s: &S) {
    let (other, watched) = (key("other"), key("w.a"));
    let mut watch = s.watch(&key("w.")).await.unwrap();
    revision_of(s.commit(put(&other, 1, Expect::Absent)).await.unwrap());
    let r = revision_of(s.commit(put(&watched, 2, Expect::Absent)).await.unwrap());
    let seen = tokio::time::timeout(Duration::from_secs(30), watch.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, r, "the change outside the prefix is not reported");
    let mut txn = Txn::new();
    txn.delete(&watched, Expect::Revision(r));
    let deleted = revision_of(s.commit(txn).await.unwrap());
    let seen = tokio::time::timeout(Duration::from_secs(30), watch.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, deleted);
}

async fn shared_handles_see_each_other<S: Datastore + Clone>(s: &S) {
    let a = key("a");
    let other = Arc::new(s.clone());
    revision_of(s.commit(put(&a, 1, Expect::Absent)).await.unwrap());
    assert_eq!(read_number(other.as_ref(), &a).await, Some(1));
}

async fn batched_reads_of_keys_and_prefixes<S: Datastore>(s: &S) {
    for (i, name) in ["p.1", "p.2", "q"].into_iter().enumerate() {
        let k = key(name);
        revision_of(s.commit(put(&k, i as u32, Expect::Absent)).await.unwrap());
    }
    let results = s
        .read(vec![
            Read::Prefix(key("p.")),
            Read::Key(key("q")),
            Read::Key(key("missing")),
            Read::Prefix(key("none.")),
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 4);
    let keys = |i: usize| results[i].iter().map(|e| e.key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(0), [key("p.1"), key("p.2")]);
    assert_eq!(keys(1), [key("q")]);
    assert_eq!(number(&results[1][0]), 2);
    assert!(results[2].is_empty() && results[3].is_empty());
    assert!(s.read(Vec::new()).await.unwrap().is_empty());
}

battery!(
    [sqlite, etcd, kubernetes],
    |store| &store,
    [
        get_missing_is_none,
        create_then_read_back,
        create_twice_conflicts,
        compare_and_swap_on_revision,
        delete_with_revision,
        transaction_of_several_keys,
        check_only_operations,
        blind_writes,
        list_is_by_prefix_and_sorted,
        revisions_increase,
        concurrent_increments_lose_nothing,
        watch_reports_puts_and_deletes_under_prefix,
        shared_handles_see_each_other,
        batched_reads_of_keys_and_prefixes,
    ]
);
