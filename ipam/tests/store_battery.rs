//! One battery of key-value tests, run against the stores that keep any key (SQLite
//! always; etcd when /usr/bin/etcd is installed). The Kubernetes store keeps only the
//! IPAM keys, each value the spec of its resource, and writes one object per
//! transaction: the IPAM battery (`ipam_battery.rs`), `stop_after_write.rs` and
//! `kubernetes_store.rs` run on it.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use ipam::store::{Datastore, Expect, Outcome, Read, Txn};

fn put(key: &str, value: &str, expect: Expect) -> Txn {
    let mut txn = Txn::new();
    txn.put(key, value.as_bytes().to_vec(), expect);
    txn
}

fn revision_of(outcome: Outcome) -> u64 {
    match outcome {
        Outcome::Committed { revision } => revision,
        Outcome::Conflict => panic!("unexpected conflict"),
    }
}

async fn get_missing_is_none<S: Datastore>(s: &S) {
    assert_eq!(s.get("/t/missing").await.unwrap(), None);
    assert!(s.list("/t/").await.unwrap().is_empty());
}

async fn create_then_read_back<S: Datastore>(s: &S) {
    let revision = revision_of(s.commit(put("/t/a", "one", Expect::Absent)).await.unwrap());
    let entry = s.get("/t/a").await.unwrap().unwrap();
    assert_eq!(entry.key, "/t/a");
    assert_eq!(entry.value, b"one");
    assert_eq!(entry.revision, revision);
    assert!(s.revision().await.unwrap() >= revision);
}

async fn create_twice_conflicts<S: Datastore>(s: &S) {
    revision_of(s.commit(put("/t/a", "one", Expect::Absent)).await.unwrap());
    assert_eq!(
        s.commit(put("/t/a", "two", Expect::Absent)).await.unwrap(),
        Outcome::Conflict
    );
    assert_eq!(s.get("/t/a").await.unwrap().unwrap().value, b"one");
}

async fn compare_and_swap_on_revision<S: Datastore>(s: &S) {
    let r1 = revision_of(s.commit(put("/t/a", "one", Expect::Absent)).await.unwrap());
    let r2 = revision_of(
        s.commit(put("/t/a", "two", Expect::Revision(r1)))
            .await
            .unwrap(),
    );
    assert!(r2 > r1);
    // A writer still holding r1 loses.
    assert_eq!(
        s.commit(put("/t/a", "stale", Expect::Revision(r1)))
            .await
            .unwrap(),
        Outcome::Conflict
    );
    // Expecting a revision of a missing key fails too.
    assert_eq!(
        s.commit(put("/t/b", "x", Expect::Revision(r1)))
            .await
            .unwrap(),
        Outcome::Conflict
    );
    let entry = s.get("/t/a").await.unwrap().unwrap();
    assert_eq!((entry.value.as_slice(), entry.revision), (&b"two"[..], r2));
}

async fn delete_with_revision<S: Datastore>(s: &S) {
    let r1 = revision_of(s.commit(put("/t/a", "one", Expect::Absent)).await.unwrap());
    let mut stale = Txn::new();
    stale.delete("/t/a", Expect::Revision(r1 + 1000));
    assert_eq!(s.commit(stale).await.unwrap(), Outcome::Conflict);
    let mut txn = Txn::new();
    txn.delete("/t/a", Expect::Revision(r1));
    revision_of(s.commit(txn).await.unwrap());
    assert_eq!(s.get("/t/a").await.unwrap(), None);
    // Recreating after a delete works.
    revision_of(
        s.commit(put("/t/a", "again", Expect::Absent))
            .await
            .unwrap(),
    );
}

async fn transaction_is_all_or_nothing<S: Datastore>(s: &S) {
    let r1 = revision_of(s.commit(put("/t/a", "one", Expect::Absent)).await.unwrap());
    let mut txn = Txn::new();
    txn.put("/t/b", b"new".to_vec(), Expect::Absent);
    txn.delete("/t/a", Expect::Revision(r1));
    txn.put("/t/c", b"new".to_vec(), Expect::Revision(7)); // fails
    assert_eq!(s.commit(txn).await.unwrap(), Outcome::Conflict);
    assert_eq!(s.get("/t/b").await.unwrap(), None);
    assert!(s.get("/t/a").await.unwrap().is_some());

    let mut txn = Txn::new();
    txn.put("/t/b", b"new".to_vec(), Expect::Absent);
    txn.put("/t/c", b"new".to_vec(), Expect::Absent);
    txn.delete("/t/a", Expect::Revision(r1));
    let revision = revision_of(s.commit(txn).await.unwrap());
    assert_eq!(s.get("/t/b").await.unwrap().unwrap().revision, revision);
    assert_eq!(s.get("/t/c").await.unwrap().unwrap().revision, revision);
    assert_eq!(s.get("/t/a").await.unwrap(), None);
}

async fn check_only_operations<S: Datastore>(s: &S) {
    let r1 = revision_of(s.commit(put("/t/a", "one", Expect::Absent)).await.unwrap());
    let mut txn = Txn::new();
    txn.check("/t/a", Expect::Absent);
    txn.put("/t/b", b"x".to_vec(), Expect::Absent);
    assert_eq!(s.commit(txn).await.unwrap(), Outcome::Conflict);
    assert_eq!(s.get("/t/b").await.unwrap(), None);
    let mut txn = Txn::new();
    txn.check("/t/a", Expect::Revision(r1));
    txn.put("/t/b", b"x".to_vec(), Expect::Absent);
    revision_of(s.commit(txn).await.unwrap());
    // The checked key is unchanged.
    assert_eq!(s.get("/t/a").await.unwrap().unwrap().revision, r1);
}

async fn blind_writes<S: Datastore>(s: &S) {
    revision_of(s.commit(put("/t/a", "one", Expect::Any)).await.unwrap());
    revision_of(s.commit(put("/t/a", "two", Expect::Any)).await.unwrap());
    let mut txn = Txn::new();
    txn.delete("/t/missing", Expect::Any);
    revision_of(s.commit(txn).await.unwrap());
    assert_eq!(s.get("/t/a").await.unwrap().unwrap().value, b"two");
}

async fn list_is_by_prefix_and_sorted<S: Datastore>(s: &S) {
    for key in ["/t/b/2", "/t/b/1", "/t/bc", "/t/a", "/u/b/3"] {
        revision_of(s.commit(put(key, key, Expect::Absent)).await.unwrap());
    }
    let keys: Vec<String> = s
        .list("/t/b/")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["/t/b/1", "/t/b/2"]);
    let keys: Vec<String> = s
        .list("/t/")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["/t/a", "/t/b/1", "/t/b/2", "/t/bc"]);
}

async fn revisions_increase<S: Datastore>(s: &S) {
    let mut last = s.revision().await.unwrap();
    for i in 0..5 {
        let r = revision_of(
            s.commit(put(&format!("/t/{i}"), "v", Expect::Absent))
                .await
                .unwrap(),
        );
        assert!(r > last);
        last = r;
    }
    assert_eq!(s.revision().await.unwrap(), last);
}

async fn concurrent_increments_lose_nothing<S: Datastore + Clone>(s: &S) {
    revision_of(
        s.commit(put("/t/counter", "0", Expect::Absent))
            .await
            .unwrap(),
    );
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                loop {
                    let entry = s.get("/t/counter").await.unwrap().unwrap();
                    let n: u64 = std::str::from_utf8(&entry.value).unwrap().parse().unwrap();
                    let txn = put(
                        "/t/counter",
                        &(n + 1).to_string(),
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
    assert_eq!(s.get("/t/counter").await.unwrap().unwrap().value, b"100");
}

async fn watch_reports_puts_and_deletes_under_prefix<S: Datastore>(s: &S) {
    let mut watch = s.watch("/t/w/").await.unwrap();
    revision_of(
        s.commit(put("/t/other", "x", Expect::Absent))
            .await
            .unwrap(),
    );
    let r = revision_of(s.commit(put("/t/w/a", "x", Expect::Absent)).await.unwrap());
    let seen = tokio::time::timeout(Duration::from_secs(30), watch.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, r, "the change outside the prefix is not reported");
    let mut txn = Txn::new();
    txn.delete("/t/w/a", Expect::Revision(r));
    let deleted = revision_of(s.commit(txn).await.unwrap());
    let seen = tokio::time::timeout(Duration::from_secs(30), watch.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, deleted);
}

async fn shared_handles_see_each_other<S: Datastore + Clone>(s: &S) {
    let other = Arc::new(s.clone());
    revision_of(s.commit(put("/t/a", "one", Expect::Absent)).await.unwrap());
    assert_eq!(other.get("/t/a").await.unwrap().unwrap().value, b"one");
}

async fn batched_reads_of_keys_and_prefixes<S: Datastore>(s: &S) {
    for key in ["/t/p/1", "/t/p/2", "/t/q"] {
        revision_of(s.commit(put(key, key, Expect::Absent)).await.unwrap());
    }
    let results = s
        .read(vec![
            Read::Prefix("/t/p/".into()),
            Read::Key("/t/q".into()),
            Read::Key("/t/missing".into()),
            Read::Prefix("/t/none/".into()),
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 4);
    let keys = |i: usize| {
        results[i]
            .iter()
            .map(|e| e.key.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(0), ["/t/p/1", "/t/p/2"]);
    assert_eq!(keys(1), ["/t/q"]);
    assert_eq!(results[1][0].value, b"/t/q");
    assert!(results[2].is_empty() && results[3].is_empty());
    assert!(s.read(Vec::new()).await.unwrap().is_empty());
}

macro_rules! battery {
    ($store:ident, $($test:ident),* $(,)?) => {
        mod $store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some((store, _guard)) = super::support::$store().await else { return };
                    super::$test(&store).await;
                }
            )*
        }
    };
}

macro_rules! batteries {
    ($($test:ident),* $(,)?) => {
        battery!(sqlite, $($test),*);
        battery!(etcd, $($test),*);
    };
}

batteries!(
    get_missing_is_none,
    create_then_read_back,
    create_twice_conflicts,
    compare_and_swap_on_revision,
    delete_with_revision,
    transaction_is_all_or_nothing,
    check_only_operations,
    blind_writes,
    list_is_by_prefix_and_sorted,
    revisions_increase,
    concurrent_increments_lose_nothing,
    watch_reports_puts_and_deletes_under_prefix,
    shared_handles_see_each_other,
    batched_reads_of_keys_and_prefixes,
);
