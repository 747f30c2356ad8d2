//! The store: objects as JSON in redb, one global resourceVersion, group commit and watches.
//!
//! Every write goes through one committer thread ([`commit`]) that batches whatever
//! writes are waiting into a single durable redb transaction, so one fsync serves many
//! writers; a write is acknowledged only after its transaction committed. Committed
//! changes are then published to the watch hub ([`watch`]), which keeps a bounded
//! history so watchers can resume from a resourceVersion, and answers "too old" (410)
//! for anything before it — as the real API server does once etcd compacted.

mod commit;
mod watch;

use std::path::Path;
use std::sync::{Arc, Mutex};

use redb::{ReadableDatabase, TableDefinition};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

pub use watch::{Event, EventKind, Watch};

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION: &str = "revision";

/// Store failures. `NotFound`, `AlreadyExists` and `Conflict` are the caller's to map to
/// API errors; the rest are internal.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No object at the key.
    #[error("object not found")]
    NotFound,
    /// An object already exists at the key.
    #[error("object already exists")]
    AlreadyExists,
    /// The stored resourceVersion differs from the expected one.
    #[error("resource version conflict: stored {stored}")]
    Conflict {
        /// The stored resourceVersion.
        stored: u64,
    },
    /// The watch start is older than the history window.
    #[error("too old resource version: {requested} ({oldest})")]
    TooOld {
        /// The resourceVersion asked for.
        requested: u64,
        /// The oldest resourceVersion still servable.
        oldest: u64,
    },
    /// The data dir's database is held by another process.
    #[error(
        "the database {0} is in use by another process (is another minke running on this data dir?)"
    )]
    Locked(String),
    /// redb failed.
    #[error("storage: {0}")]
    Storage(String),
    /// A stored value could not be decoded.
    #[error("corrupt stored object at {0}")]
    Corrupt(String),
    /// The committer has stopped (cluster shutting down).
    #[error("store is closed")]
    Closed,
}

impl Error {
    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound)
    }
    /// True for [`Error::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }
}

/// Shorthand for store results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn storage(e: impl std::fmt::Display) -> Error {
    Error::Storage(e.to_string())
}

/// One write, applied atomically inside a batch.
#[derive(Debug)]
pub enum Write {
    /// Insert; fails with `AlreadyExists`.
    Create {
        /// Store key.
        key: String,
        /// The object; its `metadata.resourceVersion` is set by the store.
        object: Value,
    },
    /// Replace; fails with `NotFound`, or `Conflict` when `expect` differs.
    Update {
        /// Store key.
        key: String,
        /// The object; its `metadata.resourceVersion` is set by the store.
        object: Value,
        /// Expected current resourceVersion.
        expect: Option<u64>,
    },
    /// Remove; fails with `NotFound`, or `Conflict` when `expect` differs.
    Delete {
        /// Store key.
        key: String,
        /// Expected current resourceVersion.
        expect: Option<u64>,
    },
}

/// Tunables of a store.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events kept for watchers resuming from a resourceVersion (default 100 000).
    pub history: usize,
    /// Most writes batched in one transaction (default 512).
    pub max_batch: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            history: 100_000,
            max_batch: 512,
        }
    }
}

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    // Field order matters: `db` drops before `writes`, so when the last handle's
    // sender closes the channel, the committer holds the only database reference.
    db: Arc<redb::Database>,
    writes: mpsc::UnboundedSender<commit::Request>,
    hub: Arc<Mutex<watch::Hub>>,
    /// Set by the committer once it closed the database.
    closed: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// Split a stored row into its resourceVersion and JSON.
fn decode_row(key: &str, row: &[u8]) -> Result<(u64, Value)> {
    let (rv, json) = row
        .split_at_checked(8)
        .ok_or_else(|| Error::Corrupt(key.into()))?;
    let rv = u64::from_le_bytes(rv.try_into().map_err(|_| Error::Corrupt(key.into()))?);
    let value = serde_json::from_slice(json).map_err(|_| Error::Corrupt(key.into()))?;
    Ok((rv, value))
}

impl Store {
    /// Open (or create) the store in `dir/minke.redb`.
    pub fn open(dir: &Path, options: Options) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(storage)?;
        let path = dir.join("minke.redb");
        let db = redb::Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::Locked(path.display().to_string()),
            other => storage(other),
        })?;
        Self::start(db, options)
    }

    /// A store that lives in memory only (tests, `--in-memory`).
    pub fn in_memory(options: Options) -> Result<Store> {
        let db = redb::Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(storage)?;
        Self::start(db, options)
    }

    fn start(db: redb::Database, options: Options) -> Result<Store> {
        let db = Arc::new(db);
        {
            let tx = db.begin_write().map_err(storage)?;
            tx.open_table(OBJECTS).map_err(storage)?;
            tx.open_table(META).map_err(storage)?;
            tx.commit().map_err(storage)?;
        }
        let revision = Self::read_revision(&db)?;
        let hub = Arc::new(Mutex::new(watch::Hub::new(revision, options.history)));
        let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writes = commit::spawn(db.clone(), hub.clone(), options.max_batch, closed.clone())?;
        Ok(Store {
            db,
            writes,
            hub,
            closed,
        })
    }

    fn read_revision(db: &redb::Database) -> Result<u64> {
        let tx = db.begin_read().map_err(storage)?;
        let meta = tx.open_table(META).map_err(storage)?;
        Ok(meta
            .get(REVISION)
            .map_err(storage)?
            .map(|v| v.value())
            .unwrap_or(0))
    }

    /// A handle that tells when every `Store` clone is gone and the database (with its
    /// file lock) is closed.
    pub fn release_watch(&self) -> Released {
        Released(self.closed.clone())
    }

    /// The current global resourceVersion.
    pub fn revision(&self) -> Result<u64> {
        Self::read_revision(&self.db)
    }

    /// Apply one write durably; returns the object as stored (for a delete: the last
    /// state, stamped with the deletion's resourceVersion).
    pub async fn write(&self, write: Write) -> Result<Arc<Value>> {
        let (reply, rx) = oneshot::channel();
        self.writes
            .send(commit::Request { write, reply })
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Read one object with its resourceVersion.
    pub fn get(&self, key: &str) -> Result<Option<(u64, Value)>> {
        let tx = self.db.begin_read().map_err(storage)?;
        let table = tx.open_table(OBJECTS).map_err(storage)?;
        match table.get(key).map_err(storage)? {
            Some(row) => Ok(Some(decode_row(key, row.value())?)),
            None => Ok(None),
        }
    }

    /// Read every object under `prefix` whose key sorts after `start_after` (for paging),
    /// at most `limit` (0 = all), from one consistent snapshot. Returns the objects, the
    /// snapshot's resourceVersion, and whether more remain.
    pub fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Listing> {
        let tx = self.db.begin_read().map_err(storage)?;
        let meta = tx.open_table(META).map_err(storage)?;
        let revision = meta
            .get(REVISION)
            .map_err(storage)?
            .map(|v| v.value())
            .unwrap_or(0);
        let table = tx.open_table(OBJECTS).map_err(storage)?;
        let mut items = Vec::new();
        let mut remaining = 0usize;
        let start = start_after.unwrap_or(prefix);
        for row in table.range(start..).map_err(storage)? {
            let (k, v) = row.map_err(storage)?;
            let key = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            if start_after == Some(key) {
                continue;
            }
            if limit > 0 && items.len() >= limit {
                remaining += 1;
                continue;
            }
            let (rv, value) = decode_row(key, v.value())?;
            items.push(Item {
                key: key.to_string(),
                revision: rv,
                object: value,
            });
        }
        Ok(Listing {
            items,
            revision,
            remaining,
        })
    }

    /// Watch keys under `prefix`. `from = None` starts now and first replays every
    /// current object as ADDED (a consistent snapshot); `Some(rv)` replays the changes
    /// after `rv` from history, or fails with [`Error::TooOld`].
    pub fn watch(&self, prefix: &str, from: Option<u64>) -> Result<Watch> {
        match from {
            Some(rv) => {
                let hub = self.hub.lock().map_err(|_| Error::Closed)?;
                hub.watch_from(prefix, rv)
            }
            None => {
                // Subscribe first, then snapshot: anything committed after the snapshot is
                // in the subscription, and the watch skips events at or before it.
                let mut watch = {
                    let hub = self.hub.lock().map_err(|_| Error::Closed)?;
                    hub.subscribe(prefix)
                };
                let listing = self.list(prefix, None, 0)?;
                watch.seed(listing.revision, listing.items);
                Ok(watch)
            }
        }
    }
}

/// See [`Store::release_watch`].
#[derive(Debug, Clone)]
pub struct Released(Arc<std::sync::atomic::AtomicBool>);

impl Released {
    /// Whether the database has been closed.
    pub fn is_released(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// One object read from a listing.
#[derive(Debug, Clone)]
pub struct Item {
    /// Store key.
    pub key: String,
    /// Its resourceVersion.
    pub revision: u64,
    /// The object.
    pub object: Value,
}

/// The result of [`Store::list`].
#[derive(Debug)]
pub struct Listing {
    /// Objects in key order.
    pub items: Vec<Item>,
    /// The snapshot's resourceVersion.
    pub revision: u64,
    /// How many matching objects were left out by `limit`.
    pub remaining: usize,
}

#[cfg(test)]
mod tests;
