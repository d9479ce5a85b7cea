//! The events webhook (`events.webhook`): `tenant.provisioned` after a
//! tenant is created and `tenant.deleted` after it is deleted, POSTed as
//! `{"event", "tenant"}`. The admin API fires and forgets (a failure is
//! logged); the CLI waits for the delivery, since it exits right after.

use std::time::Duration;

use serde_json::json;

use super::webhook::Poster;
use crate::config::EventsConfig;
use crate::tenant::TenantRecord;

pub const PROVISIONED: &str = "tenant.provisioned";
pub const DELETED: &str = "tenant.deleted";

/// Where events go; does nothing without `events.webhook`.
#[derive(Clone, Default)]
pub struct Events {
    url: Option<String>,
    timeout: Duration,
    poster: Poster,
}

impl Events {
    pub fn new(config: &EventsConfig) -> Events {
        Events {
            url: config.webhook.clone(),
            timeout: config.timeout,
            poster: Poster::default(),
        }
    }

    /// Delivers in the background; a failure is logged, never returned.
    pub fn send(&self, event: &'static str, tenant: &TenantRecord) {
        if self.url.is_none() {
            return;
        }
        let this = self.clone();
        let tenant = tenant.clone();
        tokio::spawn(async move { this.deliver(event, &tenant).await });
    }

    /// Delivers now; a failure is logged, never returned.
    pub async fn deliver(&self, event: &'static str, tenant: &TenantRecord) {
        let Some(url) = &self.url else {
            return;
        };
        let body = json!({ "event": event, "tenant": tenant });
        if let Err(error) = self.poster.post_json(url, &body, self.timeout).await {
            tracing::warn!(event, tenant = %tenant.tenant.id, %error, "events webhook failed");
        }
    }
}
