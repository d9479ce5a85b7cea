//! The process signals the server obeys: SIGHUP reloads the config file;
//! SIGTERM and SIGINT start the graceful shutdown.

use std::sync::Arc;

use crate::reload::Reloader;

/// SIGHUP re-reads the config file (pools and backends).
pub(super) fn spawn_reload_on_hangup(reloader: Arc<Reloader>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hangup.recv().await.is_some() {
            if let Err(errors) = reloader.reload().await {
                tracing::error!(%errors, "SIGHUP: configuration not reloaded, keeping the current one");
            }
        }
    });
    #[cfg(not(unix))]
    let _ = reloader;
}

/// Waits for SIGTERM or SIGINT (Ctrl-C).
pub(super) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
