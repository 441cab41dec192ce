//! A datastore that is down or misnamed gives one clear error naming its URL, and a
//! failed operation leaves nothing half-written.

#![allow(clippy::unwrap_used)]

mod support;

use ipam::{Family, IpamError, Pool, StoreError};

#[tokio::test]
async fn malformed_urls_are_refused() {
    for url in [
        "mysql://db/ipam",
        "sqlite://relative/ipam.db",
        "etcd://host-without-port",
        "etcd://",
    ] {
        let err = ipam::connect(url).await.unwrap_err();
        assert!(
            matches!(err, IpamError::Store(StoreError::BadUrl { .. })),
            "{url}: {err}"
        );
        assert!(err.to_string().contains(url), "{err}");
        assert!(!err.to_string().contains('\n'));
    }
}

#[tokio::test]
async fn sqlite_that_cannot_be_opened() {
    let url = "sqlite:///proc/wren-ipam-test/ipam.db";
    let err = ipam::connect(url).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("datastore sqlite:///proc/wren-ipam-test/ipam.db is unavailable: "),
        "{text}"
    );
    assert!(!text.contains('\n'));
}

#[tokio::test]
async fn etcd_nobody_listens() {
    // A port that was free a moment ago: nothing answers there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("etcd://127.0.0.1:{port}");
    let err = ipam::connect(&url).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("datastore {url} is unavailable: ")),
        "{text}"
    );
    assert!(!text.contains('\n'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_killed_then_restarted() {
    let Some((store, mut guard)) = support::etcd().await else {
        return;
    };
    let ipam = ipam::Ipam::new(store);
    ipam.add_pool(Pool::new("10.244.0.0/16".parse().unwrap()))
        .await
        .unwrap();
    ipam.assign("node-a", "before", Family::Ipv4, 1)
        .await
        .unwrap();
    guard.etcd().unwrap().kill().unwrap();
    let err = ipam
        .assign("node-a", "during", Family::Ipv4, 1)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("datastore {}", guard.url)),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
    let etcd = guard.etcd_mut().unwrap();
    tokio::task::block_in_place(|| etcd.restart()).unwrap();
    // The same client reconnects; nothing of the failed call was written.
    support::eventually("etcd to answer again", || async {
        ipam.pools().await.is_ok()
    })
    .await;
    assert!(ipam.addresses_of("during").await.unwrap().is_empty());
    assert_eq!(ipam.addresses_of("before").await.unwrap().len(), 1);
    assert!(ipam.check().await.unwrap().is_clean());
    ipam.assign("node-a", "after", Family::Ipv4, 1)
        .await
        .unwrap();
}
