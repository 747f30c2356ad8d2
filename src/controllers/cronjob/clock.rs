//! The time the CronJob controller schedules by: the system clock, or the system
//! clock moved forward by a test ([`Clock::advance`]) so a schedule point can be
//! reached without waiting for it. Nothing else in the cluster reads this clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

/// The CronJob controller's clock. Clones share one offset.
///
/// ```
/// let clock = minke::controllers::cronjob::Clock::system();
/// let before = clock.now();
/// clock.advance(std::time::Duration::from_secs(3600));
/// assert!(clock.now().duration_since(before).as_secs() >= 3600);
/// ```
#[derive(Debug, Clone)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    offset: Mutex<SignedDuration>,
    moved: watch::Sender<()>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl Clock {
    /// The system clock (no offset).
    pub fn system() -> Clock {
        Clock {
            inner: Arc::new(Inner {
                offset: Mutex::new(SignedDuration::ZERO),
                moved: watch::channel(()).0,
            }),
        }
    }

    /// Now, as the controller sees it.
    pub fn now(&self) -> Timestamp {
        let offset = self
            .inner
            .offset
            .lock()
            .map_or(SignedDuration::ZERO, |o| *o);
        Timestamp::now()
            .checked_add(offset)
            .unwrap_or(Timestamp::MAX)
    }

    /// Move this clock `by` forward (it keeps running from there); the controller
    /// looks at every CronJob again at once.
    pub fn advance(&self, by: Duration) {
        let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX);
        if let Ok(mut o) = self.inner.offset.lock() {
            *o = o.saturating_add(by);
        }
        self.inner.moved.send_replace(());
    }

    /// A tick each time the clock is moved.
    pub(crate) fn moves(&self) -> impl Stream<Item = ()> + Send + 'static {
        let rx = self.inner.moved.subscribe();
        futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn advancing_moves_now_and_ticks_every_clone() {
        let clock = Clock::system();
        let shared = clock.clone();
        let mut moves = Box::pin(shared.moves());
        let before = clock.now();
        clock.advance(Duration::from_secs(120));
        assert!(shared.now().duration_since(before) >= SignedDuration::from_secs(120));
        assert_eq!(moves.next().await, Some(()));
    }
}
