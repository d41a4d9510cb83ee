//! One timer task per purpose for the whole server (never one per socket): a pure
//! [`ExpirySchedule`] behind a mutex, and a loop that sleeps until its earliest deadline.

use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use crate::app::expiry::ExpirySchedule;

/// A point in time a [`Scheduler`] can wait for.
pub(crate) trait Deadline: Ord + Copy + Send + 'static {
    /// The current time.
    fn now() -> Self;
    /// When tokio should wake up for it.
    fn to_tokio(self) -> tokio::time::Instant;
}

impl Deadline for Instant {
    fn now() -> Self {
        tokio::time::Instant::now().into_std()
    }

    fn to_tokio(self) -> tokio::time::Instant {
        self.into()
    }
}

/// Whole seconds since the Unix epoch (JWT `exp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct UnixSecs(pub(crate) u64);

impl Deadline for UnixSecs {
    fn now() -> Self {
        Self(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        )
    }

    fn to_tokio(self) -> tokio::time::Instant {
        let at = UNIX_EPOCH + Duration::from_secs(self.0);
        let wait = at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        tokio::time::Instant::now() + wait.min(Duration::from_secs(86_400))
    }
}

/// Keys ordered by deadline, and the wake-up of the one task that serves them.
#[derive(Debug)]
pub(crate) struct Scheduler<K, T> {
    schedule: Mutex<ExpirySchedule<K, T>>,
    notify: Notify,
}

impl<K: Ord + Hash + Clone + Send + 'static, T: Deadline> Scheduler<K, T> {
    pub(crate) fn new() -> Self {
        Self {
            schedule: Mutex::new(ExpirySchedule::default()),
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ExpirySchedule<K, T>> {
        self.schedule.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets or moves `key`'s deadline.
    pub(crate) fn insert(&self, key: K, at: T) {
        if self.lock().insert(key, at) {
            self.notify.notify_one();
        }
    }

    /// Forgets `key`.
    pub(crate) fn remove(&self, key: &K) {
        self.lock().remove(key);
    }

    /// How many keys are scheduled.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Serves the schedule forever: calls `fire` with the keys whose deadline passed.
    pub(crate) async fn run(
        self: std::sync::Arc<Self>,
        mut fire: impl FnMut(Vec<K>) + Send + 'static,
    ) {
        {
            loop {
                let next = self.lock().poll_timeout();
                let notified = self.notify.notified();
                match next {
                    None => notified.await,
                    Some(at) => {
                        tokio::select! {
                            () = tokio::time::sleep_until(at.to_tokio()) => {}
                            () = notified => continue,
                        }
                    }
                }
                let due = self.lock().handle_timeout(T::now());
                if !due.is_empty() {
                    fire(due);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fires_in_order_and_wakes_for_earlier_deadlines() {
        let scheduler = Arc::new(Scheduler::<u32, Instant>::new());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(scheduler.clone().run(move |due| {
            for k in due {
                let _ = tx.send(k);
            }
        }));
        let now = || tokio::time::Instant::now().into_std();
        let t0 = now();
        scheduler.insert(1, t0 + Duration::from_secs(10));
        tokio::task::yield_now().await;
        scheduler.insert(2, t0 + Duration::from_secs(1));
        scheduler.insert(3, t0 + Duration::from_secs(5));
        scheduler.remove(&3);
        assert_eq!(rx.recv().await, Some(2));
        assert!(now() >= t0 + Duration::from_secs(1));
        assert_eq!(rx.recv().await, Some(1));
        assert!(now() >= t0 + Duration::from_secs(10));
        assert_eq!(scheduler.len(), 0);
        task.abort();
    }
}
