//! The control plane's HTTP face: the JSON admin API under `/v1` (bearer
//! token), the web console at `/ui/` (a client of it), plus the open
//! `/healthz`, `/readyz` and `/metrics`, all behind the browser rules of
//! [`guard`]; [`openapi`] describes the API. Every change it makes
//! invalidates the routing cache entries it affects at once.

mod auth;
mod console;
mod controls;
mod create;
mod domains;
mod error;
mod extract;
pub mod guard;
pub mod import;
mod jobs;
mod migrate;
pub mod openapi;
mod ops;
mod page;
mod pools;
mod tenants;
pub mod usage;
pub mod usage_export;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, ErrorBody, ErrorCode};

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
    /// Usage metering (`usage.enabled`): a read flushes this replica's
    /// counts first.
    pub usage: Option<Arc<crate::traffic::usage::flush::Flusher>>,
}

type Routes = OpenApiRouter<Arc<AdminState>>;

/// Every route of the admin listener and its OpenAPI description, from one
/// list; `protect` adds the token check to the `/v1` ones.
///
/// To add a route: annotate the handler with `#[utoipa::path(method, path
/// = "/relative/to/v1", operation_id, tag, params, request_body,
/// responses)]` (its own success and error answers; the shared 400, 401,
/// 403, 413, 415 and 500 are added by [`openapi::spec`]), derive
/// `utoipa::ToSchema` on its body types, and list it below in a `routes!`
/// (handlers of one path share one `routes!`). Never `.route(...)`: such a
/// route would be missing from the spec, which `tests/openapi.rs` and the
/// test below catch.
fn routes(protect: impl FnOnce(Routes) -> Routes) -> Routes {
    let v1 = OpenApiRouter::new()
        .routes(routes!(create::create, tenants::list))
        .routes(routes!(tenants::import))
        .routes(routes!(tenants::show, tenants::update, tenants::remove))
        .routes(routes!(domains::add))
        .routes(routes!(controls::maintenance))
        .routes(routes!(migrate::one))
        .routes(routes!(migrate::all))
        .routes(routes!(jobs::list))
        .routes(routes!(migrate::job))
        .routes(routes!(pools::list))
        .routes(routes!(domains::show, domains::remove))
        .routes(routes!(usage::tenant))
        .routes(routes!(usage::list))
        .routes(routes!(usage_export::export))
        .routes(routes!(ops::resolve))
        .routes(routes!(ops::reload))
        .routes(routes!(openapi::serve));
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .nest("/v1", protect(v1))
}

/// Builds the admin application.
pub fn app(state: Arc<AdminState>) -> axum::Router {
    let token = middleware::from_fn_with_state(state.clone(), auth::require_token);
    let (router, _) = routes(|v1| v1.route_layer(token)).split_for_parts();
    router
        // The console's static files: a client of the API, not part of it.
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
