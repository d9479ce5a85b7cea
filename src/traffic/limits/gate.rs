//! A tenant's concurrency gate: at most `cap` requests in flight, the next
//! ones waiting in a short bounded FIFO queue (tokio's semaphore queues its
//! waiters in order and hands a freed slot to the first of them, so a new
//! arrival never overtakes one that waits). The cap may change between two
//! requests (a reload, a tenant update): slots are added at once, and slots
//! taken away are withheld as their requests finish.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Semaphore;

/// How long and how many requests may wait for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queue {
    pub timeout: Duration,
    pub size: u32,
}

/// One tenant's gate.
#[derive(Debug)]
pub struct Gate {
    slots: Semaphore,
    /// The cap the semaphore's slots were sized for (0: not sized yet).
    cap: AtomicU32,
    /// Slots to withhold as requests finish, after the cap went down while
    /// they were in flight.
    owed: AtomicU32,
    waiting: AtomicU32,
    /// Serialises resizes (rare: a cap changed); never held across an await.
    resizing: Mutex<()>,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate {
            slots: Semaphore::new(0),
            cap: AtomicU32::new(0),
            owed: AtomicU32::new(0),
            waiting: AtomicU32::new(0),
            resizing: Mutex::new(()),
        }
    }
}

/// Decrements the waiting count however the wait ends (the client may go).
struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Gate {
    /// Takes a slot under `cap`, waiting in the queue when none is free.
    /// `false`: the queue was full or the wait timed out. A slot taken must
    /// be given back with [`Gate::leave`].
    pub async fn enter(&self, cap: u32, queue: Queue) -> bool {
        if self.cap.load(Ordering::Relaxed) != cap {
            self.resize(cap);
        }
        if let Ok(slot) = self.slots.try_acquire() {
            slot.forget();
            return true;
        }
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= queue.size {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        let _waiting = Waiting(&self.waiting);
        match tokio::time::timeout(queue.timeout, self.slots.acquire()).await {
            Ok(Ok(slot)) => {
                slot.forget();
                true
            }
            // Timed out (the semaphore is never closed).
            _ => false,
        }
    }

    /// Gives a slot back, or withholds it while the cap owes slots.
    pub fn leave(&self) {
        let paid = self
            .owed
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |owed| {
                owed.checked_sub(1)
            })
            .is_ok();
        if !paid {
            self.slots.add_permits(1);
        }
    }

    /// Requests waiting for a slot now.
    #[cfg(test)]
    pub fn waiting(&self) -> u32 {
        self.waiting.load(Ordering::Relaxed)
    }

    fn resize(&self, cap: u32) {
        let _resizing = self.resizing.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.cap.load(Ordering::Relaxed);
        if cap > old {
            let mut more = cap - old;
            // Slots still owed are cancelled first: they are in flight.
            let _ = self
                .owed
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |owed| {
                    let cancel = owed.min(more);
                    more = cap - old - cancel;
                    Some(owed - cancel)
                });
            self.slots.add_permits(more as usize);
        } else if cap < old {
            let fewer = old - cap;
            let free = self.slots.forget_permits(fewer as usize) as u32;
            self.owed.fetch_add(fewer - free, Ordering::Relaxed);
        }
        self.cap.store(cap, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const QUEUE: Queue = Queue {
        timeout: Duration::from_millis(50),
        size: 10,
    };

    #[tokio::test]
    async fn beyond_the_cap_requests_wait_then_time_out() {
        let gate = Gate::default();
        assert!(gate.enter(2, QUEUE).await);
        assert!(gate.enter(2, QUEUE).await);
        let started = std::time::Instant::now();
        assert!(!gate.enter(2, QUEUE).await);
        assert!(started.elapsed() >= Duration::from_millis(45));
        gate.leave();
        assert!(gate.enter(2, QUEUE).await);
        assert_eq!(gate.waiting(), 0);
    }

    #[tokio::test]
    async fn a_waiter_gets_the_slot_freed_and_a_full_queue_refuses_at_once() {
        let gate = Arc::new(Gate::default());
        assert!(gate.enter(1, QUEUE).await);
        let one_place = Queue {
            timeout: Duration::from_secs(5),
            size: 1,
        };
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter(1, one_place).await }
        });
        while gate.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        let started = std::time::Instant::now();
        assert!(!gate.enter(1, one_place).await, "the queue is full");
        assert!(started.elapsed() < Duration::from_secs(1));
        gate.leave();
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn a_lowered_cap_withholds_slots_as_requests_finish() {
        let gate = Gate::default();
        for _ in 0..3 {
            assert!(gate.enter(3, QUEUE).await);
        }
        // Cap 1 with 3 in flight: two finish before a slot is free again.
        assert!(!gate.enter(1, QUEUE).await);
        gate.leave();
        gate.leave();
        assert!(!gate.enter(1, QUEUE).await);
        gate.leave();
        assert!(gate.enter(1, QUEUE).await);
        assert!(!gate.enter(1, QUEUE).await);
        // Raised again: two more at once.
        assert!(gate.enter(3, QUEUE).await);
        assert!(gate.enter(3, QUEUE).await);
        assert!(!gate.enter(3, QUEUE).await);
    }
}
