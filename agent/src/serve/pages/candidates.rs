//! The candidates table: filters, sorting and its JSON.

use super::*;

/// The columns of the candidates table: (sort key, heading).
pub(super) const COLUMNS: [(&str, &str); 12] = [
    ("rank", "rank"),
    ("id", "id"),
    ("name", "name"),
    ("status", "status"),
    ("proposer", "proposer"),
    ("family", "mixing"),
    ("fidelity", "fidelity"),
    ("score", "score"),
    ("short_score", "short score"),
    ("val_loss", "val loss"),
    ("params", "params"),
    ("flops", "FLOPs"),
];

pub(super) fn query_string(q: &view::Query) -> String {
    serde_urlencoded_lite(q)
}

/// The query as URL parameters (empty values left out).
pub(super) fn serde_urlencoded_lite(q: &view::Query) -> String {
    let v = serde_json::to_value(q).unwrap_or_default();
    let mut parts = Vec::new();
    if let Some(map) = v.as_object() {
        for (k, v) in map {
            let s = match v {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) if s.is_empty() => continue,
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            parts.push(format!("{k}={}", percent(&s)));
        }
    }
    parts.join("&")
}

pub(super) fn percent(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) async fn candidates(State(dash): Dash, Query(q): Query<view::Query>) -> PageResult {
    let view = dash.view();
    let page = view.select(&q);
    let headings: Vec<Value> = COLUMNS
        .iter()
        .map(|(key, label)| {
            let mut next = q.clone();
            let active = page.sort == *key;
            next.sort = Some(key.to_string());
            next.dir = Some(
                if active && page.descending {
                    "asc"
                } else if active {
                    "desc"
                } else {
                    ""
                }
                .to_string(),
            );
            if next.dir.as_deref() == Some("") {
                next.dir = None;
            }
            next.page = None;
            context! {
                key => *key,
                label => *label,
                href => format!("/candidates?{}", query_string(&next)),
                active => active,
                dir => if page.descending { "desc" } else { "asc" },
            }
        })
        .collect();
    let link = |p: usize| {
        let mut next = q.clone();
        next.page = Some(p);
        format!("/candidates?{}", query_string(&next))
    };
    render(
        &dash,
        "candidates.html",
        "candidates",
        "candidates",
        context! {
            q => ser(&q),
            headings => headings,
            choices => ser(view.choices()),
            total => page.total,
            page => page.page,
            pages => page.pages,
            prev => (page.page > 1).then(|| link(page.page - 1)),
            next => (page.page < page.pages).then(|| link(page.page + 1)),
            rows => ser(&page.rows),
            all => view.rows.len(),
        },
    )
}

pub(super) async fn api_candidates(State(dash): Dash, Query(q): Query<view::Query>) -> Response {
    let view = dash.view();
    axum::Json(view.select(&q)).into_response()
}
