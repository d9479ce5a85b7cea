//! The admin API's OpenAPI 3.1 description, served at `GET /v1/openapi.json`.
//! It is generated, never written by hand: the `routes!` list in
//! [`super::routes`] that builds the router also collects each handler's
//! `#[utoipa::path]` annotation and types; this module adds what every
//! operation shares (the bearer token and the error answers of the
//! extractors, the token check and the browser guard).

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Spec, Ref, RefOr};
use utoipa::OpenApi;

use super::error::{ErrorBody, ErrorCode};

/// The name of the bearer-token security scheme.
const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tenant-gateway admin API",
        description = "Tenants, domains, migrations and operations of a tenant-gateway. \
            Every `/v1` operation needs `Authorization: Bearer <admin.token>`; \
            errors are `{\"error\": {\"code\", \"message\"}}` with the status of their code.",
    ),
    security(("bearer" = [])),
    components(schemas(ErrorBody, ErrorCode)),
    tags(
        (name = "tenants", description = "Create, list, change and delete tenants"),
        (name = "domains", description = "The domains routed to a tenant"),
        (name = "migrations", description = "Schema migrations of provisioned tenants"),
        (name = "usage", description = "Requests, bytes and upstream time per tenant per hour, for billing"),
        (name = "operations", description = "Health, metrics, reload and routing explanations"),
    ),
)]
struct ApiDoc;

/// The skeleton the routes are added to: title, security, shared schemas.
pub(super) fn base() -> Spec {
    let mut spec = ApiDoc::openapi();
    spec.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            BEARER,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    spec
}

/// The whole description: every route of [`super::routes`], with the
/// answers every operation shares.
pub fn spec() -> Spec {
    let mut spec = super::routes(|v1| v1).into_openapi();
    for (path, item) in spec.paths.paths.iter_mut() {
        let protected = path.starts_with("/v1/");
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            add_shared_errors(operation, protected);
        }
    }
    spec
}

/// The errors any operation may answer besides its own: the browser guard
/// (403), the token check (401, `/v1` only), the extractors (400 for a bad
/// path, query or body; 413 and 415 for a body) and a bug or a failed
/// provisioning (500). An answer the operation describes itself is kept.
fn add_shared_errors(operation: &mut Operation, protected: bool) {
    let has_body = operation.request_body.is_some();
    let has_params = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let shared = [
        (
            ErrorCode::BadRequest,
            has_body || has_params,
            "The request is invalid: the message says why",
        ),
        (
            ErrorCode::Unauthorized,
            protected,
            "The bearer token is missing or wrong",
        ),
        (
            ErrorCode::Forbidden,
            true,
            "Refused by the Host or Origin rule (`error.rule`)",
        ),
        (
            ErrorCode::PayloadTooLarge,
            has_body,
            "The body is larger than the limit",
        ),
        (
            ErrorCode::UnsupportedMediaType,
            has_body,
            "The body's Content-Type is not one this operation reads",
        ),
        (
            ErrorCode::Internal,
            true,
            "A bug, or provisioning failed at `error.step` (undone)",
        ),
    ];
    let responses = &mut operation.responses.responses;
    for (code, applies, description) in shared {
        if applies {
            responses
                .entry(code.status().as_u16().to_string())
                .or_insert_with(|| error_response(description));
        }
    }
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .build(),
    )
}

/// This description, as JSON
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 description of this API",
        content_type = "application/json", body = Object)))]
pub async fn serve() -> impl IntoResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| {
        spec()
            .to_pretty_json()
            .expect("the OpenAPI description serializes")
    });
    ([(header::CONTENT_TYPE, "application/json")], json.as_str())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// `(METHOD, path)` of every operation in the description.
    fn described() -> BTreeSet<(String, String)> {
        let json = serde_json::to_value(spec()).unwrap();
        let mut operations = BTreeSet::new();
        for (path, item) in json["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
        operations
    }

    /// `(METHOD, path)` of every route the router serves, read from axum's
    /// `Debug` output (it has no other way to list them): each `RouteId(n)`
    /// with its `allow_header`, and the path of each `RouteId(n)`. HEAD,
    /// which axum adds to every GET, is left out.
    fn served() -> BTreeSet<(String, String)> {
        let (router, _) = super::super::routes(|v1| v1).split_for_parts();
        let debug = format!("{router:?}");
        let unreadable = || format!("axum's Debug output of a Router changed: {debug}");
        let own = debug.split(", fallback_router:").next().unwrap();
        let (endpoints, paths) = own
            .split_once("node: Node { paths: {")
            .unwrap_or_else(|| panic!("{}", unreadable()));
        let id_after = |text: &str| -> String { text.split(')').next().unwrap().to_owned() };
        let mut methods = std::collections::BTreeMap::new();
        for chunk in endpoints.split("RouteId(").skip(1) {
            let allow = chunk
                .split_once("allow_header: Bytes(b\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(allow, _)| allow)
                .unwrap_or_else(|| panic!("{}", unreadable()));
            methods.insert(id_after(chunk), allow.to_owned());
        }
        let mut operations = BTreeSet::new();
        for chunk in paths.split("RouteId(").skip(1) {
            let path = chunk
                .split('"')
                .nth(1)
                .unwrap_or_else(|| panic!("{}", unreadable()));
            let allow = &methods[&id_after(chunk)];
            for method in allow.split(',').filter(|m| *m != "HEAD") {
                operations.insert((method.to_owned(), path.to_owned()));
            }
        }
        assert!(!operations.is_empty(), "{}", unreadable());
        operations
    }

    #[test]
    fn every_route_is_described_and_every_description_routed() {
        let (described, served) = (described(), served());
        let undescribed: Vec<_> = served.difference(&described).collect();
        let unrouted: Vec<_> = described.difference(&served).collect();
        assert!(
            undescribed.is_empty(),
            "served but not in the OpenAPI spec: {undescribed:?}"
        );
        assert!(
            unrouted.is_empty(),
            "in the OpenAPI spec but not served: {unrouted:?}"
        );
        assert!(served.contains(&("GET".to_owned(), "/v1/openapi.json".to_owned())));
    }

    #[test]
    fn every_operation_describes_its_errors_with_the_error_body() {
        let json = serde_json::to_value(spec()).unwrap();
        for (path, item) in json["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = operation["responses"].as_object().unwrap();
                for (status, response) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        let schema = &response["content"]["application/json"]["schema"]["$ref"];
                        assert_eq!(
                            schema, "#/components/schemas/ErrorBody",
                            "{method} {path} {status}"
                        );
                    }
                }
                assert!(responses.contains_key("403"), "{method} {path}");
                assert_eq!(
                    responses.contains_key("401"),
                    path.starts_with("/v1/"),
                    "{method} {path}"
                );
            }
        }
    }
}
