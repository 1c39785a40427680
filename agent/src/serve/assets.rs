//! The stylesheet and the script, embedded in the binary and served under URLs that carry their
//! content hash (so a browser may keep them for good), with ETags.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

struct Asset {
    name: &'static str,
    body: &'static str,
    mime: &'static str,
    hash: String,
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    [
        (
            "app.js",
            include_str!("assets/app.js"),
            "text/javascript; charset=utf-8",
        ),
        (
            "style.css",
            include_str!("assets/style.css"),
            "text/css; charset=utf-8",
        ),
        (
            "favicon.svg",
            include_str!("assets/favicon.svg"),
            "image/svg+xml",
        ),
    ]
    .into_iter()
    .map(|(name, body, mime)| Asset {
        name,
        body,
        mime,
        hash: blake3::hash(body.as_bytes()).to_hex()[..16].to_string(),
    })
    .collect()
});

/// The URL of an asset: `/assets/HASH/NAME`.
pub fn url(name: &str) -> String {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => format!("/assets/{}/{}", a.hash, a.name),
        None => format!("/assets/missing/{name}"),
    }
}

pub async fn serve(Path((hash, name)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == name && a.hash == hash) else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    let etag = format!("\"{}\"", a.hash);
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let common = [
        (header::ETAG, etag.clone()),
        (
            header::CACHE_CONTROL,
            "public, max-age=31536000, immutable".to_string(),
        ),
    ];
    if cached {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (common, [(header::CONTENT_TYPE, a.mime)], a.body).into_response()
}
