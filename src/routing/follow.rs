//! Keeps this replica's routing cache in step with the registry when other
//! processes (replicas, the CLI) change it: applies the store's change feed
//! to the router (and to whatever else the replica keeps per
//! domain, such as on-demand certificates), and reports it in the metrics.

use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;

use super::Router;
use crate::store::feed::{Change, FeedEvent};

/// Something else a replica keeps per domain that a change to the domain
/// makes stale (given each changed domain).
pub type DomainChanged = Box<dyn Fn(&str) + Send + Sync>;

/// Applies feed events until the feed ends (at shutdown).
pub async fn follow(
    router: Arc<Router>,
    mut events: UnboundedReceiver<FeedEvent>,
    also: Option<DomainChanged>,
) {
    while let Some(event) = events.recv().await {
        match event {
            FeedEvent::Connected(up) => router.metrics.change_feed_connected.set(i64::from(up)),
            FeedEvent::CaughtUp => router.feed_caught_up(),
            FeedEvent::Changes(batch) => {
                // One re-read of the warm table for the whole batch.
                let mut domains = Vec::new();
                for change in &batch.changes {
                    match change {
                        Change::Domains(changed) => domains.extend_from_slice(changed),
                        Change::Everything => router.apply(change).await,
                    }
                }
                router.invalidate_names(&domains).await;
                if let Some(also) = &also {
                    domains.iter().for_each(|domain| also(domain));
                }
                router
                    .metrics
                    .changes_applied
                    .inc_by(batch.changes.len() as u64);
                if let Some(lag) = batch.lag {
                    router.metrics.change_lag_seconds.observe(lag.as_secs_f64());
                }
            }
        }
    }
}

impl Router {
    /// Marks the change feed as in step (see `Router::until_feed_caught_up`).
    fn feed_caught_up(&self) {
        self.feed_in_step.send_replace(true);
    }

    /// Waits (at most `limit`) until the change feed has caught up once.
    /// Warming after that keeps the first catch-up, which replays recent
    /// changes to cover loads made before notifications flowed, from
    /// evicting routes just loaded.
    pub async fn until_feed_caught_up(&self, limit: std::time::Duration) {
        let mut in_step = self.feed_in_step.subscribe();
        let _ = tokio::time::timeout(limit, in_step.wait_for(|&done| done)).await;
    }

    /// Forgets what a change made stale.
    pub async fn apply(&self, change: &Change) {
        match change {
            Change::Domains(domains) => self.invalidate_names(domains).await,
            Change::Everything => self.invalidate_all(),
        }
    }
}
