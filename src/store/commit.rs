//! The committer: one thread that batches queued writes into one durable redb
//! transaction (group commit), answers each writer, then publishes watch events.

use std::sync::{Arc, Mutex};

use redb::{Durability, ReadableTable};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::watch::{Event, EventKind, Hub};
use super::{Error, META, OBJECTS, REVISION, Result, Write, decode_row, storage};

/// A queued write and where to send its outcome.
pub(super) struct Request {
    pub write: Write,
    pub reply: oneshot::Sender<Result<Arc<Value>>>,
}

/// Start the committer thread; it stops when every sender is dropped.
pub(super) fn spawn(
    db: Arc<redb::Database>,
    hub: Arc<Mutex<Hub>>,
    max_batch: usize,
    closed: Arc<std::sync::atomic::AtomicBool>,
) -> Result<mpsc::UnboundedSender<Request>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
    std::thread::Builder::new()
        .name("minke-store-commit".into())
        .spawn(move || {
            while let Some(first) = rx.blocking_recv() {
                let mut batch = vec![first];
                while batch.len() < max_batch {
                    match rx.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                commit_batch(&db, &hub, batch);
            }
            // Every `Store` handle is gone, so this is the last reference: close the
            // database (flush, release the file lock) here, then say so.
            drop(db);
            closed.store(true, std::sync::atomic::Ordering::Release);
            tracing::debug!("store committer stopped: all handles dropped");
        })
        .map_err(storage)?;
    Ok(tx)
}

fn set_revision(object: &mut Value, rev: u64) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rev.to_string()));
    }
}

fn encode_row(rev: u64, object: &Value) -> Result<Vec<u8>> {
    let mut row = rev.to_le_bytes().to_vec();
    serde_json::to_writer(&mut row, object).map_err(storage)?;
    Ok(row)
}

/// What one write did inside the transaction, kept until the commit succeeds.
struct Applied {
    event: Event,
}

fn apply_one(table: &mut redb::Table<&str, &[u8]>, rev: u64, write: Write) -> Result<Applied> {
    let (key, current) = {
        let key = match &write {
            Write::Create { key, .. } | Write::Update { key, .. } | Write::Delete { key, .. } => {
                key.clone()
            }
        };
        let current = match table.get(key.as_str()).map_err(storage)? {
            Some(row) => Some(decode_row(&key, row.value())?),
            None => None,
        };
        (key, current)
    };
    let check = |expect: Option<u64>| -> Result<(u64, Value)> {
        let (stored, prev) = current.clone().ok_or(Error::NotFound)?;
        match expect {
            Some(e) if e != stored => Err(Error::Conflict { stored }),
            _ => Ok((stored, prev)),
        }
    };
    match write {
        Write::Create { mut object, .. } => {
            if current.is_some() {
                return Err(Error::AlreadyExists);
            }
            set_revision(&mut object, rev);
            table
                .insert(key.as_str(), encode_row(rev, &object)?.as_slice())
                .map_err(storage)?;
            Ok(Applied {
                event: Event {
                    rev,
                    key,
                    kind: EventKind::Added,
                    object: Arc::new(object),
                    prev: None,
                },
            })
        }
        Write::Update {
            mut object, expect, ..
        } => {
            let (_, prev) = check(expect)?;
            set_revision(&mut object, rev);
            table
                .insert(key.as_str(), encode_row(rev, &object)?.as_slice())
                .map_err(storage)?;
            Ok(Applied {
                event: Event {
                    rev,
                    key,
                    kind: EventKind::Modified,
                    object: Arc::new(object),
                    prev: Some(Arc::new(prev)),
                },
            })
        }
        Write::Delete { expect, .. } => {
            let (_, mut prev) = check(expect)?;
            table.remove(key.as_str()).map_err(storage)?;
            let before = Arc::new(prev.clone());
            set_revision(&mut prev, rev);
            Ok(Applied {
                event: Event {
                    rev,
                    key,
                    kind: EventKind::Deleted,
                    object: Arc::new(prev),
                    prev: Some(before),
                },
            })
        }
    }
}

/// Apply a batch in one transaction. Writes that fail their own checks answer their
/// writer and take no revision; if the commit itself fails, every writer hears why.
fn commit_batch(db: &redb::Database, hub: &Mutex<Hub>, batch: Vec<Request>) {
    let (writes, replies): (Vec<Write>, Vec<_>) =
        batch.into_iter().map(|r| (r.write, r.reply)).unzip();
    let result = (|| -> Result<Vec<Result<Event>>> {
        let mut tx = db.begin_write().map_err(storage)?;
        tx.set_durability(Durability::Immediate).map_err(storage)?;
        let mut outcomes = Vec::with_capacity(writes.len());
        {
            let mut meta = tx.open_table(META).map_err(storage)?;
            let mut rev = meta
                .get(REVISION)
                .map_err(storage)?
                .map(|v| v.value())
                .unwrap_or(0);
            let mut table = tx.open_table(OBJECTS).map_err(storage)?;
            for write in writes {
                let outcome = apply_one(&mut table, rev + 1, write).map(|a| a.event);
                if outcome.is_ok() {
                    rev += 1;
                }
                outcomes.push(outcome);
            }
            meta.insert(REVISION, rev).map_err(storage)?;
        }
        tx.commit().map_err(storage)?;
        Ok(outcomes)
    })();
    match result {
        Ok(outcomes) => {
            let mut events = Vec::new();
            let mut answers = Vec::with_capacity(outcomes.len());
            for outcome in outcomes {
                answers.push(outcome.map(|ev| {
                    let object = ev.object.clone();
                    events.push(Arc::new(ev));
                    object
                }));
            }
            if let Ok(mut hub) = hub.lock() {
                hub.publish(events);
            }
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(answer);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "store commit failed");
            for reply in replies {
                let _ = reply.send(Err(Error::Storage(e.to_string())));
            }
        }
    }
}
