//! Resource limits and accounting for guests: memory (a `ResourceLimiter` that caps
//! all of an instance's memories together and accounts what it holds) and CPU (a
//! future wrapper that charges the thread CPU time of each poll and enforces a
//! quota per period, the way the kernel's CFS quota does for containers).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A container's resource use: CPU time (cumulative) and linear memory (current),
/// shared across its restarts; the kubelet's metrics read it.
#[derive(Debug, Default)]
pub struct Usage {
    cpu_nanos: AtomicU64,
    memory_bytes: AtomicU64,
}

impl Usage {
    /// CPU time the guest has used, in nanoseconds (all runs).
    pub fn cpu_nanos(&self) -> u64 {
        self.cpu_nanos.load(Ordering::Relaxed)
    }

    /// Linear memory the container's running instances hold, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes.load(Ordering::Relaxed)
    }
}

/// Denies memory growth past the limit (all of a guest's memories together),
/// remembers that it did, and accounts what the guest holds.
pub(super) struct MemoryLimit {
    max: Option<usize>,
    pub(super) hit: bool,
    held: usize,
    usage: Arc<Usage>,
}

impl MemoryLimit {
    pub(super) fn new(max: Option<usize>, usage: Arc<Usage>) -> MemoryLimit {
        MemoryLimit {
            max,
            hit: false,
            held: 0,
            usage,
        }
    }
}

impl Drop for MemoryLimit {
    fn drop(&mut self) {
        // The instance is gone with its store, and so is the memory it held.
        self.usage
            .memory_bytes
            .fetch_sub(as_u64(self.held), Ordering::Relaxed);
    }
}

impl wasmtime::ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let held = self.held.saturating_add(desired.saturating_sub(current));
        if self.max.is_some_and(|m| held > m) {
            self.hit = true;
            return Ok(false);
        }
        self.usage
            .memory_bytes
            .fetch_add(as_u64(held - self.held), Ordering::Relaxed);
        self.held = held;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// CPU limits are enforced over periods of this length, as the kernel's CFS quota.
const CPU_PERIOD: Duration = Duration::from_millis(100);

/// Runs a guest's future, charging the time spent polling it (the guest runs only
/// inside `poll`, at most one epoch tick at a time) to its [`Usage`], and with a CPU
/// limit, parking it for the rest of the period once its quota is used.
pub(super) struct Metered<'a, T> {
    run: Pin<Box<dyn Future<Output = T> + Send + 'a>>,
    usage: Arc<Usage>,
    quota: Option<Duration>,
    period_start: Instant,
    used_in_period: Duration,
    throttle: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<'a, T> Metered<'a, T> {
    pub(super) fn new(
        run: Pin<Box<dyn Future<Output = T> + Send + 'a>>,
        usage: Arc<Usage>,
        millicores: Option<u64>,
    ) -> Self {
        let quota = millicores.map(|m| CPU_PERIOD.mul_f64(m.max(1) as f64 / 1000.0));
        Metered {
            run,
            usage,
            quota,
            period_start: Instant::now(),
            used_in_period: Duration::ZERO,
            throttle: None,
        }
    }
}

impl<T> Future for Metered<'_, T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if let Some(sleep) = self.throttle.as_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.throttle = None;
        }
        let start = Instant::now();
        let cpu_start = thread_cpu_time();
        if start.duration_since(self.period_start) >= CPU_PERIOD {
            self.period_start = start;
            self.used_in_period = Duration::ZERO;
        }
        let out = self.run.as_mut().poll(cx);
        // CPU time, not wall time: a descheduled thread is not the guest's use.
        let spent = match (cpu_start, thread_cpu_time()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => start.elapsed(),
        };
        self.usage.cpu_nanos.fetch_add(
            u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.used_in_period += spent;
        if out.is_pending()
            && let Some(quota) = self.quota
            && self.used_in_period >= quota
        {
            // Over quota: sit out the rest of this period (and of any periods the
            // overshoot borrowed from), then run again.
            let owed = self.used_in_period.as_secs_f64() / quota.as_secs_f64();
            let resume = self.period_start + CPU_PERIOD.mul_f64(owed.floor().max(1.0));
            self.period_start = resume;
            self.used_in_period = Duration::ZERO;
            let mut sleep = Box::pin(tokio::time::sleep_until(resume.into()));
            if sleep.as_mut().poll(cx).is_ready() {
                cx.waker().wake_by_ref();
            } else {
                self.throttle = Some(sleep);
            }
        }
        out
    }
}

/// CPU time of the calling thread (a guest runs on one thread for the whole of a
/// poll), from `CLOCK_THREAD_CPUTIME_ID`.
fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| {
        Duration::new(
            u64::try_from(ts.tv_sec).unwrap_or(0),
            u32::try_from(ts.tv_nsec).unwrap_or(0),
        )
    })
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_advances_with_work_on_this_thread() {
        let before = thread_cpu_time().expect("thread cpu clock");
        let mut x = 1u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = thread_cpu_time().expect("thread cpu clock");
        assert!(after > before);
    }
}
