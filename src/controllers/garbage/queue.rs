//! The collector's work queue: deduplicated, one worker per item at a time, and
//! failed items retried after an exponential back-off (client-go's rate-limited
//! workqueue, reduced to what the collector uses).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// The first retry delay; it doubles per consecutive failure.
const FIRST_RETRY: Duration = Duration::from_millis(50);
/// The longest retry delay.
const MAX_RETRY: Duration = Duration::from_secs(300);

/// A queue of keys to process.
#[derive(Debug)]
pub(crate) struct Queue<T> {
    ready: VecDeque<T>,
    /// In `ready`.
    queued: HashSet<T>,
    /// Handed to a worker and not yet done.
    active: HashSet<T>,
    /// Added again while active: queued once the worker is done.
    again: HashSet<T>,
    /// Retries by due time (with a sequence number to keep keys apart).
    delayed: BTreeMap<(Instant, u64), T>,
    seq: u64,
    failures: HashMap<T, u32>,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            ready: VecDeque::new(),
            queued: HashSet::new(),
            active: HashSet::new(),
            again: HashSet::new(),
            delayed: BTreeMap::new(),
            seq: 0,
            failures: HashMap::new(),
        }
    }
}

impl<T: Clone + Eq + Hash> Queue<T> {
    /// Queue `item` unless it is queued already.
    pub fn add(&mut self, item: T) {
        if self.active.contains(&item) {
            self.again.insert(item);
        } else if self.queued.insert(item.clone()) {
            self.ready.push_back(item);
        }
    }

    /// The next item to work on; it stays active until [`Queue::done`].
    pub fn pop(&mut self) -> Option<T> {
        let item = self.ready.pop_front()?;
        self.queued.remove(&item);
        self.active.insert(item.clone());
        Some(item)
    }

    /// The worker finished `item`: forget its failures on success, or schedule a
    /// retry after the back-off.
    pub fn done(&mut self, item: T, succeeded: bool) {
        self.finish(item, succeeded, Instant::now());
    }

    fn finish(&mut self, item: T, succeeded: bool, now: Instant) {
        self.active.remove(&item);
        if succeeded {
            self.failures.remove(&item);
        } else {
            let n = self.failures.entry(item.clone()).or_insert(0);
            let delay = FIRST_RETRY
                .saturating_mul(2u32.saturating_pow(*n))
                .min(MAX_RETRY);
            *n = n.saturating_add(1);
            self.seq += 1;
            self.delayed.insert((now + delay, self.seq), item.clone());
        }
        if self.again.remove(&item) {
            self.add(item);
        }
    }

    /// When the next retry is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.delayed.keys().next().map(|(at, _)| *at)
    }

    /// Queue the retries due by `now`.
    pub fn promote(&mut self, now: Instant) {
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let item = entry.remove();
            self.add(item);
        }
    }

    /// Whether nothing is ready to pop.
    #[cfg(test)]
    fn is_idle(&self) -> bool {
        self.ready.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_is_queued_once_and_again_only_after_its_worker_is_done() {
        let mut q = Queue::default();
        q.add("a");
        q.add("a");
        assert_eq!(q.pop(), Some("a"));
        assert_eq!(q.pop(), None);
        q.add("a");
        assert_eq!(q.pop(), None, "not while a worker has it");
        q.done("a", true);
        assert_eq!(q.pop(), Some("a"));
        q.done("a", true);
        assert!(q.is_idle());
    }

    #[test]
    fn failures_back_off_exponentially_and_success_resets_the_count() {
        let mut q = Queue::default();
        q.add("a");
        let mut now = Instant::now();
        for expect in [50, 100, 200] {
            assert_eq!(q.pop(), Some("a"));
            q.finish("a", false, now);
            let due = q.next_due().expect("retry scheduled");
            assert_eq!(due - now, Duration::from_millis(expect));
            q.promote(due - Duration::from_millis(1));
            assert_eq!(q.pop(), None, "not before it is due");
            now = due;
            q.promote(now);
        }
        assert_eq!(q.pop(), Some("a"));
        q.finish("a", true, now);
        q.add("a");
        assert_eq!(q.pop(), Some("a"));
        q.finish("a", false, now);
        assert_eq!(
            q.next_due().expect("retry") - now,
            Duration::from_millis(50)
        );
    }
}
