//! The control plane's HTTP face: the JSON admin API under `/v1` (bearer
//! token), the web console at `/ui/` (a client of it), plus the open
//! `/healthz`, `/readyz` and `/metrics`, all behind the browser rules of
//! [`guard`]. Every change it makes invalidates the routing cache entries it
//! affects at once.

mod auth;
mod console;
mod domains;
mod error;
mod extract;
pub mod guard;
pub mod import;
mod jobs;
mod migrate;
mod ops;
mod pools;
mod tenants;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

pub use error::ApiError;

use crate::proxy::DataPath;
use crate::reload::Reloader;
use crate::store::Store;

/// What the admin handlers share.
pub struct AdminState {
    pub store: Arc<dyn Store>,
    /// The data path's router, pools and policy: used to invalidate and to explain.
    pub data_path: Arc<DataPath>,
    pub token: Option<String>,
    /// The `Host` and `Origin` values this listener answers.
    pub access: guard::AccessRules,
    /// Re-reads the config and swaps in new pools (`POST /v1/reload`).
    pub reloader: Arc<Reloader>,
    /// Creates schemas and databases (PostgreSQL store only).
    pub provisioner: Option<Arc<crate::provision::Provisioner>>,
    /// Told `tenant.provisioned` and `tenant.deleted` (`events.webhook`).
    pub events: crate::provision::events::Events,
    /// On-demand certificates (`tls.acme`), for `"tls": "issue"` and the
    /// certificate state of a domain.
    pub acme: Option<crate::tls::acme::Acme>,
}

/// Builds the admin application.
pub fn app(state: Arc<AdminState>) -> axum::Router {
    let v1 = axum::Router::new()
        .route("/tenants", post(tenants::create).get(tenants::list))
        .route("/tenants/import", post(tenants::import))
        .route(
            "/tenants/{id}",
            get(tenants::show)
                .patch(tenants::update)
                .delete(tenants::remove),
        )
        .route("/tenants/{id}/domains", post(domains::add))
        .route("/tenants/{id}/migrate", post(migrate::one))
        .route("/migrate", post(migrate::all))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(migrate::job))
        .route("/pools", get(pools::list))
        .route(
            "/domains/{domain}",
            get(domains::show).delete(domains::remove),
        )
        .route("/resolve", get(ops::resolve))
        .route("/reload", post(ops::reload))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    axum::Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .nest("/v1", v1)
        .merge(console::routes())
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state.clone(), guard::check))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

async fn count_requests(
    State(state): State<Arc<AdminState>>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let response = next.run(req).await;
    state
        .data_path
        .metrics
        .record_admin(method.as_str(), response.status().as_u16());
    response
}
