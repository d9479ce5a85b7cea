//! Maintenance holds: while a tenant is under maintenance its requests get
//! a 503 at once, or, with a hold, wait up to the hold for maintenance to
//! end and are then released in the order they arrived. Per tenant, one
//! FIFO gate (a one-permit fair semaphore): the request at its head polls
//! the router every [`POLL`] for the end of maintenance (a change reaches
//! the router through the admin API at once, or through the change feed),
//! the others queue behind it, so the store never sees more than one
//! re-read per held tenant per poll however many requests are held.
//! Gates exist only while a tenant has held requests.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How often the request at the head of a held tenant's queue looks for
/// the end of maintenance: what a release may lag behind the switch.
pub const POLL: Duration = Duration::from_millis(10);

/// The `Retry-After` of a maintenance 503, in seconds.
pub const RETRY_AFTER_SECS: u64 = 5;

/// The small page a maintenance 503 carries.
pub const PAGE: &str = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Down for maintenance</title></head>\n<body><h1>Down for maintenance</h1><p>This site is being updated. Please try again in a moment.</p></body></html>\n";

/// Held requests' gates, one per tenant that has any.
#[derive(Default)]
pub struct Holds {
    /// Never locked across an `.await`.
    gates: Mutex<HashMap<Box<str>, Arc<Semaphore>>>,
}

impl Holds {
    pub fn new() -> Holds {
        Holds::default()
    }

    /// Waits until `ended` answers (maintenance is over: `Some`), asking it
    /// every [`POLL`], or until `deadline` (`None`). Requests of one tenant
    /// take turns in arrival order, so they are released in that order.
    pub async fn wait<T, F, Fut>(&self, tenant: &str, deadline: Instant, mut ended: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let gate = self.gate(tenant);
        let released = async {
            // Tokio's semaphore is fair: permits go out in the order asked.
            let Ok(Ok(_turn)) = tokio::time::timeout_at(deadline, gate.acquire()).await else {
                return None;
            };
            loop {
                if let Some(over) = ended().await {
                    return Some(over);
                }
                let now = Instant::now();
                if now >= deadline {
                    return None;
                }
                tokio::time::sleep_until((now + POLL).min(deadline)).await;
            }
        }
        .await;
        self.forget(tenant, gate);
        released
    }

    /// Held tenants (for tests and the metrics' sake).
    pub fn tenants(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Arc<Semaphore>>> {
        self.gates.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn gate(&self, tenant: &str) -> Arc<Semaphore> {
        let mut gates = self.lock();
        match gates.get(tenant) {
            Some(gate) => gate.clone(),
            None => {
                let gate = Arc::new(Semaphore::new(1));
                gates.insert(tenant.into(), gate.clone());
                gate
            }
        }
    }

    /// Drops the tenant's gate once no request holds it (clones are made
    /// under the lock, so the count is exact there).
    fn forget(&self, tenant: &str, gate: Arc<Semaphore>) {
        let mut gates = self.lock();
        if Arc::strong_count(&gate) == 2 {
            gates.remove(tenant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn held_requests_are_released_in_arrival_order_when_maintenance_ends() {
        let holds = Arc::new(Holds::new());
        let over = Arc::new(AtomicBool::new(false));
        let order = Arc::new(Mutex::new(Vec::new()));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (holds, over, order) = (holds.clone(), over.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let released = holds
                    .wait("acme", deadline, || {
                        let over = over.load(Ordering::SeqCst);
                        async move { over.then_some(()) }
                    })
                    .await;
                order.lock().unwrap().push(i);
                released
            }));
            // Arrive one after the other.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(order.lock().unwrap().is_empty(), "all held");
        assert_eq!(holds.tenants(), 1);
        over.store(true, Ordering::SeqCst);
        for task in tasks {
            assert_eq!(task.await.unwrap(), Some(()));
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
        assert_eq!(holds.tenants(), 0, "the gate goes with its last request");
    }

    #[tokio::test]
    async fn a_hold_that_runs_out_answers_none_at_its_deadline() {
        let holds = Holds::new();
        let started = Instant::now();
        let deadline = started + Duration::from_millis(200);
        let first = holds.wait("acme", deadline, || async { None::<()> });
        let second = holds.wait("acme", deadline, || async { None::<()> });
        let other = holds.wait("globex", deadline, || async { Some(()) });
        let (first, second, other) = tokio::join!(first, second, other);
        assert_eq!((first, second), (None, None));
        assert_eq!(other, Some(()), "another tenant's gate is its own");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(waited < Duration::from_millis(400), "{waited:?}");
        assert_eq!(holds.tenants(), 0);
    }
}
