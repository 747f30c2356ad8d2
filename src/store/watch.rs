//! The watch hub: a bounded history of committed changes plus a broadcast of new ones.
//!
//! A [`Watch`] first drains its backlog (history after its start, or a snapshot of the
//! current objects as ADDED), then follows the broadcast, skipping anything at or before
//! where its backlog ended, so no change is missed or seen twice.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use super::{Error, Item, Result};

/// How an object changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created (or present at the start of a watch without resourceVersion).
    Added,
    /// Updated.
    Modified,
    /// Deleted.
    Deleted,
}

/// One committed change.
#[derive(Debug)]
pub struct Event {
    /// resourceVersion of the change.
    pub rev: u64,
    /// Store key.
    pub key: String,
    /// What happened.
    pub kind: EventKind,
    /// The object after the change (for deletes: its last state).
    pub object: Arc<Value>,
    /// The object before the change, so filtered watches can tell an object leaving
    /// their selection from one being modified.
    pub prev: Option<Arc<Value>>,
}

const BROADCAST_CAPACITY: usize = 16 * 1024;

/// History ring + broadcast, guarded by the store's mutex.
pub(super) struct Hub {
    history: VecDeque<Arc<Event>>,
    capacity: usize,
    /// Watches may start at any resourceVersion >= this.
    oldest: u64,
    tx: broadcast::Sender<Arc<Event>>,
}

impl Hub {
    pub(super) fn new(revision: u64, capacity: usize) -> Hub {
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        Hub {
            history: VecDeque::new(),
            capacity: capacity.max(1),
            oldest: revision,
            tx,
        }
    }

    pub(super) fn publish(&mut self, events: Vec<Arc<Event>>) {
        for ev in events {
            self.history.push_back(ev.clone());
            while self.history.len() > self.capacity {
                if let Some(old) = self.history.pop_front() {
                    self.oldest = old.rev;
                }
            }
            // No receivers is fine: nobody is watching.
            let _ = self.tx.send(ev);
        }
    }

    pub(super) fn subscribe(&self, prefix: &str) -> Watch {
        Watch {
            backlog: VecDeque::new(),
            rx: self.tx.subscribe(),
            prefix: prefix.to_string(),
            after: 0,
        }
    }

    pub(super) fn watch_from(&self, prefix: &str, rv: u64) -> Result<Watch> {
        if rv < self.oldest {
            return Err(Error::TooOld {
                requested: rv,
                oldest: self.oldest,
            });
        }
        let backlog: VecDeque<_> = self
            .history
            .iter()
            .filter(|e| e.rev > rv && e.key.starts_with(prefix))
            .cloned()
            .collect();
        let last = self.history.back().map_or(rv, |e| e.rev.max(rv));
        Ok(Watch {
            backlog,
            rx: self.tx.subscribe(),
            prefix: prefix.to_string(),
            after: last,
        })
    }
}

/// A stream of changes under one key prefix.
pub struct Watch {
    backlog: VecDeque<Arc<Event>>,
    rx: broadcast::Receiver<Arc<Event>>,
    prefix: String,
    after: u64,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("prefix", &self.prefix)
            .field("after", &self.after)
            .finish()
    }
}

impl Watch {
    /// Start from a snapshot: its objects become ADDED events.
    pub(super) fn seed(&mut self, revision: u64, items: Vec<Item>) {
        self.backlog = items
            .into_iter()
            .map(|i| {
                Arc::new(Event {
                    rev: i.revision,
                    key: i.key,
                    kind: EventKind::Added,
                    object: Arc::new(i.object),
                    prev: None,
                })
            })
            .collect();
        self.after = revision;
    }

    /// Whether the replayed backlog (snapshot or history) has been consumed.
    pub fn backlog_is_empty(&self) -> bool {
        self.backlog.is_empty()
    }

    /// The resourceVersion up to which this watch's backlog reaches.
    pub fn start_revision(&self) -> u64 {
        self.after
    }

    /// The next change, in resourceVersion order. Fails with [`Error::TooOld`] when this
    /// watcher fell so far behind that changes were dropped (the client must re-list),
    /// and with [`Error::Closed`] when the store stopped.
    pub async fn next(&mut self) -> Result<Arc<Event>> {
        if let Some(ev) = self.backlog.pop_front() {
            return Ok(ev);
        }
        loop {
            match self.rx.recv().await {
                Ok(ev) => {
                    if ev.rev > self.after && ev.key.starts_with(&self.prefix) {
                        self.after = ev.rev;
                        return Ok(ev);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Err(Error::TooOld {
                        requested: self.after,
                        oldest: self.after + 1,
                    });
                }
                Err(broadcast::error::RecvError::Closed) => return Err(Error::Closed),
            }
        }
    }
}
