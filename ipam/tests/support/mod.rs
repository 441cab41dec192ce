//! Test fixtures: a fresh store of each kind (SQLite in a temporary directory, etcd
//! started by `lab::Etcd` on free ports) with a guard that removes it on drop.
#![allow(dead_code)]

use ipam::store::{EtcdStore, SqliteStore};

/// Keeps a test's store alive; dropping it removes the SQLite file or stops etcd.
pub struct Guard {
    _dir: Option<tempfile::TempDir>,
    etcd: Option<lab::Etcd>,
    pub url: String,
}

impl Guard {
    pub fn etcd(&self) -> Option<&lab::Etcd> {
        self.etcd.as_ref()
    }

    pub fn etcd_mut(&mut self) -> Option<&mut lab::Etcd> {
        self.etcd.as_mut()
    }
}

pub async fn sqlite() -> Option<(SqliteStore, Guard)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ipam.db", dir.path().display());
    let store = SqliteStore::open(&url).await.unwrap();
    Some((
        store,
        Guard {
            _dir: Some(dir),
            etcd: None,
            url,
        },
    ))
}

/// `None` (a printed skip) when etcd is not installed, unless WREN_REQUIRE_LAB=1.
pub async fn etcd() -> Option<(EtcdStore, Guard)> {
    let ready = lab::require!(Etcd)?;
    drop(ready);
    let etcd = tokio::task::spawn_blocking(lab::Etcd::on_host)
        .await
        .unwrap()
        .unwrap();
    let url = etcd.endpoint().replace("http://", "etcd://");
    let store = EtcdStore::open(&url).await.unwrap();
    Some((
        store,
        Guard {
            _dir: None,
            etcd: Some(etcd),
            url,
        },
    ))
}

/// Polls `f` every 10 ms until it returns true, failing after 60 s.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !f().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
