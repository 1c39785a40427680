//! The dashboard's pages and JSON endpoints. Pages are minijinja templates with HTML
//! auto-escaping on for every one; the only strings marked safe are the ones this module
//! builds itself (highlighted code, diffs, SVG), and those escape every piece of text they
//! carry.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use autoarch_archive::{Archive, Candidate, Evaluation, Outcome};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use minijinja::{context, AutoEscape, Environment, Value};
use serde::Deserialize;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

use super::highlight::{code_html, diff_html, escape};
use super::svg::{self, Axis, Chart};
use super::view::{self, Row, View};
use super::{assets, Dashboard};

type Dash = State<Arc<Dashboard>>;

/// Any serialisable value as a template value.
fn ser<T: serde::Serialize>(value: T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

pub fn routes() -> axum::Router<Arc<Dashboard>> {
    axum::Router::new()
        .route("/", get(overview))
        .route("/candidates", get(candidates))
        .route("/candidate/{id}", get(candidate))
        .route("/candidate/{id}/code.star", get(download_code))
        .route("/candidate/{id}/model.py", get(download_pytorch))
        .route("/lineage", get(lineage_best))
        .route("/lineage/{id}", get(lineage))
        .route("/pareto", get(pareto))
        .route("/compare", get(compare))
        .route("/report", get(report))
        .route("/api/overview", get(api_overview))
        .route("/api/candidates", get(api_candidates))
        .route("/api/candidate/{id}", get(api_candidate))
        .route("/api/plots", get(api_plots))
        .route("/events", get(events))
        .route("/assets/{hash}/{name}", get(assets::serve))
        .fallback(not_found)
}

/// The templates, with HTML escaping on for all of them.
pub fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    for (name, text) in [
        ("base.html", include_str!("../templates/base.html")),
        ("overview.html", include_str!("../templates/overview.html")),
        (
            "candidates.html",
            include_str!("../templates/candidates.html"),
        ),
        (
            "candidate.html",
            include_str!("../templates/candidate.html"),
        ),
        ("lineage.html", include_str!("../templates/lineage.html")),
        ("pareto.html", include_str!("../templates/pareto.html")),
        ("compare.html", include_str!("../templates/compare.html")),
        ("report.html", include_str!("../templates/report.html")),
        ("error.html", include_str!("../templates/error.html")),
    ] {
        env.add_template(name, text)
            .expect("the dashboard's templates parse");
    }
    // The dashboard's own URLs (no outside text in them).
    env.add_function("asset", |name: &str| {
        Value::from_safe_string(assets::url(name))
    });
    env.add_filter("num", |v: Option<f64>, digits: Option<usize>| match v {
        Some(x) if x.is_finite() => format!("{x:.*}", digits.unwrap_or(4)),
        _ => "–".to_string(),
    });
    env.add_filter("grouped", |v: Option<f64>| match v {
        Some(x) if x.is_finite() => crate::text::grouped(x.round().max(0.0) as u64),
        _ => "–".to_string(),
    });
    env.add_filter("when", |ms: u64| {
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
        )
        .to_string()
    });
    env
}

/// A page error: a status and what to say.
pub struct PageError(StatusCode, String);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let html = templates()
            .get_template("error.html")
            .and_then(|t| {
                t.render(context! { title => "error", status => self.0.as_u16(), message => self.1.clone(), nav => Value::UNDEFINED, page => "error" })
            })
            .unwrap_or_else(|_| escape(&self.1));
        (self.0, Html(html)).into_response()
    }
}

impl From<autoarch_archive::Error> for PageError {
    fn from(e: autoarch_archive::Error) -> Self {
        PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl From<minijinja::Error> for PageError {
    fn from(e: minijinja::Error) -> Self {
        PageError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
    }
}

type PageResult = Result<Response, PageError>;

/// What every page's header shows.
fn nav(dash: &Dashboard, view: &View) -> Value {
    let (status, note) = dash.status();
    context! {
        campaign => view.campaign.as_ref().map(|c| c.name.clone()).unwrap_or_else(|| "archive".into()),
        status => status,
        note => note,
        version => dash.version(),
        best => view.best,
    }
}

fn render(dash: &Dashboard, name: &str, page: &str, title: &str, ctx: Value) -> PageResult {
    let view = dash.view();
    let html = dash.templates.get_template(name)?.render(context! {
        nav => nav(dash, &view),
        page => page,
        title => title,
        ..ctx
    })?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response())
}

fn missing(id: u64) -> PageError {
    PageError(
        StatusCode::NOT_FOUND,
        format!("no candidate #{id} in this archive"),
    )
}

async fn not_found() -> PageError {
    PageError(StatusCode::NOT_FOUND, "no such page".into())
}

mod candidate;
mod candidates;
mod compare;
mod lineage;
mod live;
mod overview;
mod pareto;
pub(super) mod report;

use candidate::*;
use candidates::*;
use compare::*;
use lineage::*;
use live::*;
use overview::*;
use pareto::*;
use report::*;
