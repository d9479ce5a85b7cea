//! The warm-up at start: the domain table loads in the background while the
//! data path already serves (routes not loaded yet come from the store), and
//! `/readyz` says ready once it is done.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::routing::Router;

/// How long warming waits for the change feed's first catch-up (a store
/// slow to answer should not keep the cache cold for long).
const FEED_WAIT_BEFORE_WARMING: Duration = Duration::from_secs(5);

/// Loads the domain table on a task of its own.
pub(super) fn start(router: Arc<Router>) {
    router.start_warming();
    tokio::spawn(async move {
        let started = Instant::now();
        router.until_feed_caught_up(FEED_WAIT_BEFORE_WARMING).await;
        match router.warm().await {
            Ok(domains) => {
                let elapsed_ms = started.elapsed().as_millis() as u64;
                tracing::info!(domains, elapsed_ms, "domain table warmed");
                // The load's buffers are freed by now; mimalloc keeps freed
                // pages for reuse unless told to hand them back.
                // SAFETY: mi_collect has no preconditions (any thread, any time).
                unsafe { libmimalloc_sys::mi_collect(true) };
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot load the domain table; routes load on demand until a retry succeeds")
            }
        }
        router.finish_warming();
    });
}
