//! The embedded datastore: one SQLite file shared by every process on a host (bgpd and
//! concurrent `wren-ipam` invocations).
//!
//! WAL journal, a 30 s busy timeout and `BEGIN IMMEDIATE` transactions, so writers queue
//! on the file lock instead of failing; a transaction checks every expectation and writes
//! inside one SQLite transaction, so a process killed at any point leaves either all of a
//! commit or none of it. Revisions come from a counter row; deleted keys leave a
//! tombstone (pruned after a while) so that [`SqliteStore::watch`], which polls the
//! largest revision under a prefix, also sees deletions.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use super::{Action, Datastore, Entry, Expect, Outcome, Read, StoreError, Txn, Watch, prefix_end};

/// How long a writer waits for the file lock before reporting the store unavailable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a watch looks at the database files (a `stat` each, no query).
const WATCH_POLL: Duration = Duration::from_millis(100);
/// A watch queries the change counter when the files changed, and at least this often.
const WATCH_QUERY_EVERY: Duration = Duration::from_secs(2);
/// Tombstones older than this many revisions are pruned.
const TOMBSTONE_KEEP: u64 = 100_000;

/// A SQLite-backed [`Datastore`]. Cheap to clone (the connection is shared).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    url: Arc<str>,
    path: Arc<PathBuf>,
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database a `sqlite:///ABSOLUTE/PATH` URL names.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let path = parse_url(url)?;
        let url_owned = url.to_string();
        let path_for_open = path.clone();
        let conn =
            tokio::task::spawn_blocking(move || open_connection(&url_owned, &path_for_open, true))
                .await
                .map_err(|e| unavailable(url, &e.to_string()))??;
        Ok(SqliteStore {
            url: Arc::from(url),
            path: Arc::new(path),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the shared connection. A statement takes microseconds, so it runs
    /// on the calling thread: inside `block_in_place` on a multi-threaded runtime (the
    /// worker's other tasks move elsewhere meanwhile), directly on a current-thread
    /// runtime (the CNI plugin, which runs nothing else). Handing each statement to
    /// the blocking pool instead cost two thread wake-ups per call.
    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &str) -> Result<T, StoreError> + Send + 'static,
    {
        let run = || {
            let mut guard = self
                .conn
                .lock()
                .map_err(|_| failed(&self.url, "connection lock poisoned"))?;
            f(&mut guard, &self.url)
        };
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
            _ => run(),
        }
    }
}

impl Datastore for SqliteStore {
    fn url(&self) -> &str {
        &self.url
    }

    fn multi_key_transactions(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let key = key.to_string();
        self.with_conn(move |conn, url| get_blocking(conn, &key).map_err(|e| sql_error(url, e)))
            .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        let prefix = prefix.to_string();
        self.with_conn(move |conn, url| list_blocking(conn, &prefix).map_err(|e| sql_error(url, e)))
            .await
    }

    async fn commit(&self, txn: Txn) -> Result<Outcome, StoreError> {
        self.with_conn(move |conn, url| commit_blocking(conn, &txn).map_err(|e| sql_error(url, e)))
            .await
    }

    async fn read(&self, reads: Vec<Read>) -> Result<Vec<Vec<Entry>>, StoreError> {
        self.with_conn(move |conn, url| {
            // One read transaction, so every read sees the same revision.
            let run = |conn: &mut Connection| -> Result<Vec<Vec<Entry>>, rusqlite::Error> {
                let tx = conn.transaction()?;
                let mut out = Vec::with_capacity(reads.len());
                for read in &reads {
                    out.push(match read {
                        Read::Key(key) => get_blocking(&tx, key)?.into_iter().collect(),
                        Read::Prefix(prefix) | Read::PrefixFromCache(prefix) => {
                            list_blocking(&tx, prefix)?
                        }
                        Read::NodeBlocks(node) => {
                            super::node_blocks(list_blocking(&tx, crate::keys::BLOCKS)?, node)
                        }
                    });
                }
                Ok(out)
            };
            run(conn).map_err(|e| sql_error(url, e))
        })
        .await
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        self.with_conn(|conn, url| current_revision(conn).map_err(|e| sql_error(url, e)))
            .await
    }

    async fn watch_node(&self, _node: &str) -> Result<Watch, StoreError> {
        self.watch(crate::keys::IPAM).await
    }

    async fn watch(&self, prefix: &str) -> Result<Watch, StoreError> {
        let url = self.url.to_string();
        let path = PathBuf::clone(&self.path);
        let start = prefix.to_string();
        let end = text_prefix_end(prefix);
        let (conn, mut last) = {
            let url_inner = url.clone();
            let (start, end) = (start.clone(), end.clone());
            tokio::task::spawn_blocking(move || {
                let conn = open_connection(&url_inner, &path, false)?;
                let last = max_revision_under(&conn, &start, &end)
                    .map_err(|e| sql_error(&url_inner, e))?;
                Ok::<_, StoreError>((conn, last))
            })
            .await
            .map_err(|e| failed(&url, &e.to_string()))??
        };
        let conn = Arc::new(Mutex::new(conn));
        let (sender, receiver) = tokio::sync::mpsc::channel(16);
        let files = FileStamps::new(&self.path);
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(WATCH_POLL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut seen = files.read();
            let mut queried = tokio::time::Instant::now();
            loop {
                ticker.tick().await;
                // Every commit writes the WAL (or, after a checkpoint, the database
                // file): unchanged files mean nothing to query.
                let now = files.read();
                if now == seen && queried.elapsed() < WATCH_QUERY_EVERY {
                    continue;
                }
                seen = now;
                queried = tokio::time::Instant::now();
                let (conn, url2, start, end) =
                    (Arc::clone(&conn), url.clone(), start.clone(), end.clone());
                let polled = tokio::task::spawn_blocking(move || {
                    let guard = conn
                        .lock()
                        .map_err(|_| failed(&url2, "connection lock poisoned"))?;
                    max_revision_under(&guard, &start, &end).map_err(|e| sql_error(&url2, e))
                })
                .await
                .unwrap_or_else(|e| Err(failed(&url, &e.to_string())));
                match polled {
                    Ok(revision) if revision > last => {
                        last = revision;
                        if sender.send(Ok(revision)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = sender.send(Err(e)).await;
                        return;
                    }
                }
            }
        });
        Ok(Watch::new(receiver, task))
    }
}

/// Size and modification time of the database file and its WAL: what a watch compares
/// between polls (a missing file reads as `None`).
#[derive(Debug, Clone)]
struct FileStamps {
    database: PathBuf,
    wal: PathBuf,
}

type Stamp = Option<(u64, std::time::SystemTime)>;

impl FileStamps {
    fn new(database: &Path) -> FileStamps {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        FileStamps {
            database: database.to_path_buf(),
            wal: PathBuf::from(wal),
        }
    }

    fn read(&self) -> (Stamp, Stamp) {
        let stamp = |path: &Path| {
            std::fs::metadata(path)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)))
        };
        (stamp(&self.database), stamp(&self.wal))
    }
}

/// `sqlite:///abs/path` -> `/abs/path`.
pub(super) fn parse_url(url: &str) -> Result<PathBuf, StoreError> {
    let bad = |reason: &str| StoreError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let rest = url
        .strip_prefix("sqlite://")
        .ok_or_else(|| bad("a SQLite URL starts with sqlite://"))?;
    if !rest.starts_with('/') {
        return Err(bad(
            "the path must be absolute (sqlite:///var/lib/wren/ipam.db)",
        ));
    }
    if rest.contains('?') || rest.contains('#') {
        return Err(bad("query strings are not supported"));
    }
    Ok(PathBuf::from(rest))
}

fn open_connection(url: &str, path: &Path, create: bool) -> Result<Connection, StoreError> {
    if create && let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| unavailable(url, &format!("cannot create {}: {e}", parent.display())))?;
    }
    let conn = Connection::open(path).map_err(|e| unavailable(url, &e.to_string()))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sql_error(url, e))?;
    // WAL lets readers run while one writer commits; NORMAL sync in WAL mode keeps
    // every committed transaction across a process crash (not across power loss
    // of the last few commits).
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
        .map_err(|e| sql_error(url, e))?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| sql_error(url, e))?;
    if create {
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL,
                 revision INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS tombstones (key TEXT PRIMARY KEY,
                 revision INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)
                 WITHOUT ROWID;
             INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0);
             COMMIT;",
        )
        .map_err(|e| sql_error(url, e))?;
    }
    Ok(conn)
}

fn commit_blocking(conn: &mut Connection, txn: &Txn) -> Result<Outcome, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for op in &txn.ops {
        let found: Option<i64> = tx
            .prepare_cached("SELECT revision FROM kv WHERE key = ?1")?
            .query_row(params![op.key], |row| row.get(0))
            .optional()?;
        let holds = match op.expect {
            Expect::Any => true,
            Expect::Absent => found.is_none(),
            Expect::Revision(r) => found == Some(r as i64),
        };
        if !holds {
            return Ok(Outcome::Conflict); // dropping `tx` rolls back
        }
    }
    let mut revision = current_revision(&tx)?;
    if txn.ops.iter().any(|op| op.action != Action::Check) {
        revision += 1;
        tx.prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'revision'")?
            .execute(params![revision as i64])?;
        for op in &txn.ops {
            match &op.action {
                Action::Put(value) => {
                    tx.prepare_cached(
                        "INSERT INTO kv (key, value, revision) VALUES (?1, ?2, ?3) \
                         ON CONFLICT(key) DO UPDATE SET value = excluded.value, \
                         revision = excluded.revision",
                    )?
                    .execute(params![op.key, value, revision as i64])?;
                }
                Action::Delete => {
                    tx.prepare_cached("DELETE FROM kv WHERE key = ?1")?
                        .execute(params![op.key])?;
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO tombstones (key, revision) VALUES (?1, ?2)",
                    )?
                    .execute(params![op.key, revision as i64])?;
                }
                Action::Check => {}
            }
        }
        if revision % 1024 == 0 {
            tx.prepare_cached("DELETE FROM tombstones WHERE revision < ?1")?
                .execute(params![revision.saturating_sub(TOMBSTONE_KEEP) as i64])?;
        }
    }
    tx.commit()?;
    Ok(Outcome::Committed { revision })
}

fn get_blocking(conn: &Connection, key: &str) -> Result<Option<Entry>, rusqlite::Error> {
    conn.prepare_cached("SELECT value, revision FROM kv WHERE key = ?1")?
        .query_row(params![key], |row| {
            Ok(Entry {
                key: key.to_string(),
                value: row.get(0)?,
                revision: row.get::<_, i64>(1)? as u64,
            })
        })
        .optional()
}

fn list_blocking(conn: &Connection, prefix: &str) -> Result<Vec<Entry>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT key, value, revision FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key",
    )?;
    let rows = stmt.query_map(params![prefix, text_prefix_end(prefix)], |row| {
        Ok(Entry {
            key: row.get(0)?,
            value: row.get(1)?,
            revision: row.get::<_, i64>(2)? as u64,
        })
    })?;
    rows.collect()
}

fn current_revision(conn: &Connection) -> Result<u64, rusqlite::Error> {
    conn.prepare_cached("SELECT value FROM meta WHERE name = 'revision'")?
        .query_row([], |row| row.get::<_, i64>(0))
        .map(|v| v as u64)
}

fn max_revision_under(conn: &Connection, start: &str, end: &str) -> Result<u64, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT MAX(IFNULL((SELECT MAX(revision) FROM kv \
             WHERE key >= ?1 AND key < ?2), 0), \
         IFNULL((SELECT MAX(revision) FROM tombstones \
             WHERE key >= ?1 AND key < ?2), 0))",
    )?
    .query_row(params![start, end], |row| row.get::<_, i64>(0))
    .map(|v| v as u64)
}

/// Keys are ASCII (the allocator validates every name it puts in one), so the range end
/// of an ASCII prefix is ASCII too.
fn text_prefix_end(prefix: &str) -> String {
    String::from_utf8_lossy(&prefix_end(prefix)).into_owned()
}

fn sql_error(url: &str, error: rusqlite::Error) -> StoreError {
    let down = matches!(
        error.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::CannotOpen
                | ErrorCode::SystemIoFailure
                | ErrorCode::ReadOnly
                | ErrorCode::DiskFull
                | ErrorCode::NotADatabase
                | ErrorCode::DatabaseCorrupt
        )
    );
    if down {
        unavailable(url, &error.to_string())
    } else {
        failed(url, &error.to_string())
    }
}

fn unavailable(url: &str, reason: &str) -> StoreError {
    StoreError::Unavailable {
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

fn failed(url: &str, reason: &str) -> StoreError {
    StoreError::Failed {
        url: url.to_string(),
        reason: reason.to_string(),
    }
}
