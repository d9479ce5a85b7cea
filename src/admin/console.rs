//! The web console at `/ui/`: a few static files (HTML, CSS, JavaScript, no
//! build step) compiled into the binary, so it works offline. It is a client
//! of the `/v1` API like any other: it asks for the bearer token once, keeps
//! it in `sessionStorage`, and sends JSON bodies from this listener's own
//! origin, which [`super::guard`] allows. Every file is served with strict
//! security headers (no inline script, no framing, no referrer).

use axum::extract::Path;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::error::ApiError;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// The console's files, by the name they are served under (`/ui/{name}`).
const ASSETS: [Asset; 4] = [
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("ui/index.html"),
    },
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("ui/console.css"),
    },
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("ui/console.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("ui/favicon.svg"),
    },
];

/// Scripts and styles only from these files, requests only to this
/// listener, no plugins, no framing, no form posting anywhere (the forms
/// are handled by the script).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS: [(HeaderName, &str); 7] = [
    (header::CONTENT_SECURITY_POLICY, CSP),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
    (
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    ),
    // The files change with the binary: always revalidate.
    (header::CACHE_CONTROL, "no-cache"),
];

/// The console's routes, merged into the admin application (outside `/v1`:
/// the files themselves need no token).
pub fn routes<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    axum::Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|| async { serve("index.html") }))
        .route(
            "/ui/{file}",
            get(|Path(file): Path<String>| async move { serve(&file) }),
        )
}

fn serve(name: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return ApiError::NotFound(format!("no console file '{name}'")).into_response();
    };
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files_and_no_inline_script() {
        let page = std::str::from_utf8(ASSETS[0].body).unwrap();
        for asset in &ASSETS[1..] {
            assert!(
                page.contains(asset.name),
                "index.html does not use {}",
                asset.name
            );
        }
        // Every <script> has a src (CSP forbids inline script anyway), and
        // nothing is fetched from elsewhere.
        assert_eq!(
            page.matches("<script").count(),
            page.matches("<script src=").count()
        );
        assert!(!page.contains("http://") && !page.contains("https://"));
        for handler in [
            "onclick=",
            "onsubmit=",
            "onload=",
            "oninput=",
            "javascript:",
        ] {
            assert!(!page.contains(handler), "inline {handler} in index.html");
        }
    }

    #[test]
    fn only_embedded_files_are_served_each_with_the_security_headers() {
        let response = serve("../Cargo.toml");
        assert_eq!(response.status(), axum::http::StatusCode::NOT_FOUND);
        let response = serve("console.js");
        assert_eq!(response.status(), axum::http::StatusCode::OK);
        assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY");
    }
}
