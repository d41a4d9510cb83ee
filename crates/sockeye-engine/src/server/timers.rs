//! One timer task per engine: fires each session's single deadline.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Instant;

use tokio::sync::Notify;

use super::engine::Shared;

struct Entry {
    at: Instant,
    session: Weak<Shared>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.at.cmp(&other.at)
    }
}

/// A min-heap of (deadline, session). A session pushes an entry when its deadline moves
/// earlier than the one it already has; stale entries fire harmlessly (`handle_timeout` is
/// idempotent) and are replaced by the session's current deadline.
#[derive(Default)]
pub(crate) struct Timers {
    heap: Mutex<BinaryHeap<Reverse<Entry>>>,
    notify: Notify,
    started: AtomicBool,
    stopped: AtomicBool,
}

impl std::fmt::Debug for Timers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers").finish_non_exhaustive()
    }
}

impl Timers {
    pub(crate) fn schedule(self: &Arc<Self>, at: Instant, session: Weak<Shared>) {
        let earliest = {
            let mut heap = self.heap.lock().unwrap_or_else(PoisonError::into_inner);
            let earliest = heap.peek().is_none_or(|Reverse(top)| at < top.at);
            heap.push(Reverse(Entry { at, session }));
            earliest
        };
        if !self.started.swap(true, AtomicOrdering::AcqRel) {
            tokio::spawn(Arc::clone(self).run());
        }
        if earliest {
            self.notify.notify_one();
        }
    }

    pub(crate) fn stop(&self) {
        self.stopped.store(true, AtomicOrdering::Release);
        self.notify.notify_one();
    }

    async fn run(self: Arc<Self>) {
        let mut due = Vec::new();
        loop {
            if self.stopped.load(AtomicOrdering::Acquire) {
                return;
            }
            let now = super::now();
            let next = {
                let mut heap = self.heap.lock().unwrap_or_else(PoisonError::into_inner);
                while let Some(Reverse(top)) = heap.peek() {
                    if top.at > now {
                        break;
                    }
                    if let Some(Reverse(entry)) = heap.pop() {
                        due.push(entry.session);
                    }
                }
                heap.peek().map(|Reverse(top)| top.at)
            };
            if !due.is_empty() {
                for session in due.drain(..) {
                    if let Some(session) = session.upgrade() {
                        session.on_timer(now);
                    }
                }
                if due.capacity() > 1024 {
                    due = Vec::new();
                }
                continue;
            }
            match next {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {}
                        () = self.notify.notified() => {}
                    }
                }
                None => self.notify.notified().await,
            }
        }
    }
}
