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

/// A JavaScript module of the console (`console.js` imports the others).
const fn script(name: &'static str, body: &'static [u8]) -> Asset {
    Asset {
        name,
        content_type: "text/javascript; charset=utf-8",
        body,
    }
}

/// The console's files, by the name they are served under (`/ui/{name}`).
const ASSETS: [Asset; 7] = [
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
    script("console.js", include_bytes!("ui/console.js")),
    script("api.js", include_bytes!("ui/api.js")),
    script("tenants.js", include_bytes!("ui/tenants.js")),
    script("status.js", include_bytes!("ui/status.js")),
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

    fn text(name: &str) -> &'static str {
        let asset = ASSETS.iter().find(|a| a.name == name).unwrap();
        std::str::from_utf8(asset.body).unwrap()
    }

    #[test]
    fn the_page_loads_only_its_own_files_and_no_inline_script() {
        let page = text("index.html");
        // Every file is used: by the page, or imported by a module.
        let modules: String = ASSETS
            .iter()
            .filter(|a| a.name.ends_with(".js"))
            .map(|a| text(a.name))
            .collect();
        for asset in &ASSETS[1..] {
            let by_page = page.contains(&format!("\"{}\"", asset.name));
            let imported = modules.contains(&format!("from \"./{}\"", asset.name));
            assert!(by_page || imported, "nothing loads {}", asset.name);
        }
        // Every <script> has a src (CSP forbids inline script anyway), and
        // nothing is fetched from elsewhere.
        assert_eq!(
            page.matches("<script").count(),
            page.matches(r#"<script type="module" src="#).count()
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
