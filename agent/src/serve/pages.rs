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
        ("base.html", include_str!("templates/base.html")),
        ("overview.html", include_str!("templates/overview.html")),
        ("candidates.html", include_str!("templates/candidates.html")),
        ("candidate.html", include_str!("templates/candidate.html")),
        ("lineage.html", include_str!("templates/lineage.html")),
        ("pareto.html", include_str!("templates/pareto.html")),
        ("compare.html", include_str!("templates/compare.html")),
        ("report.html", include_str!("templates/report.html")),
        ("error.html", include_str!("templates/error.html")),
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

// ---------------------------------------------------------------- overview

/// The best-so-far against minutes and against evaluation-seconds, each candidate a point.
/// The most candidates a history plot draws as points.
const MAX_POINTS: usize = 2000;

fn history_plots(view: &View) -> (String, String) {
    let plot = |x_of: fn(&view::Point) -> f64, label: &str| {
        let h = &view.history;
        let x = Axis::over(h.iter().map(x_of).chain([0.0]), false, label);
        let y = Axis::over(h.iter().map(|p| p.score), false, "short-budget score");
        let until = x.max;
        let mut c = Chart::new(640.0, 300.0, x, y);
        // At most about MAX_POINTS points drawn: every one that raised the best, and an even
        // sample of the rest (the line is drawn from all of them).
        let every = h.len().div_ceil(MAX_POINTS).max(1);
        for (i, p) in h.iter().enumerate() {
            if i % every != 0 && p.score < p.best {
                continue;
            }
            let href = format!("/candidate/{}", p.id);
            let title = format!("#{} · score {:.4}", p.id, p.score);
            c.point(x_of(p), p.score, "pt", Some(&href), &title);
        }
        let steps: Vec<(f64, f64)> = h
            .iter()
            .filter(|p| p.score >= p.best)
            .map(|p| (x_of(p), p.best))
            .collect();
        c.steps(&steps, until, "best");
        c.finish(&format!("best so far against {label}"))
    };
    (
        plot(|p| p.minutes, "minutes"),
        plot(|p| p.compute, "evaluation-seconds"),
    )
}

/// What the overview shows that changes as a campaign runs (its page, and its JSON for live
/// updates).
#[derive(serde::Serialize)]
struct Overview<'a> {
    version: u64,
    status: &'static str,
    note: String,
    counts: &'a view::Counts,
    budgets: &'a [view::Budget],
    best: Option<&'a Row>,
    latest: Vec<&'a Row>,
    events: Vec<&'a autoarch_archive::Event>,
    insights: usize,
}

fn overview_json<'a>(dash: &Dashboard, view: &'a View) -> Overview<'a> {
    let (status, note) = dash.status();
    Overview {
        version: dash.version(),
        status,
        note,
        counts: &view.counts,
        budgets: &view.budgets,
        best: view.best.and_then(|id| view.row(id)),
        latest: view.latest(12),
        events: view.events.iter().rev().take(20).collect(),
        insights: view.insights.len(),
    }
}

async fn overview(State(dash): Dash) -> PageResult {
    let view = dash.view();
    let (by_time, by_compute) = history_plots(&view);
    let best = view.best.and_then(|id| view.row(id)).cloned();
    let events: Vec<_> = view.events.iter().rev().take(30).cloned().collect();
    render(
        &dash,
        "overview.html",
        "overview",
        "overview",
        context! {
            view => ser(overview_json(&dash, &view)),
            best => ser(best),
            events => ser(events),
            insights => ser(&view.insights),
            config => view.config.clone(),
            state => ser(&view.state),
            by_time => Value::from_safe_string(by_time),
            by_compute => Value::from_safe_string(by_compute),
        },
    )
}

async fn api_overview(State(dash): Dash) -> Response {
    let view = dash.view();
    axum::Json(overview_json(&dash, &view)).into_response()
}

async fn api_plots(State(dash): Dash) -> Response {
    let (by_time, by_compute) = history_plots(&dash.view());
    axum::Json(serde_json::json!({ "by_time": by_time, "by_compute": by_compute })).into_response()
}

// ---------------------------------------------------------------- candidates

/// The columns of the candidates table: (sort key, heading).
const COLUMNS: [(&str, &str); 12] = [
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

fn query_string(q: &view::Query) -> String {
    serde_urlencoded_lite(q)
}

/// The query as URL parameters (empty values left out).
fn serde_urlencoded_lite(q: &view::Query) -> String {
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

fn percent(s: &str) -> String {
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

async fn candidates(State(dash): Dash, Query(q): Query<view::Query>) -> PageResult {
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

async fn api_candidates(State(dash): Dash, Query(q): Query<view::Query>) -> Response {
    let view = dash.view();
    axum::Json(view.select(&q)).into_response()
}

// ---------------------------------------------------------------- candidate

/// Per fidelity: the mean and SD of each metric over its successful seeds.
fn per_fidelity(evaluations: &[Evaluation]) -> Vec<Value> {
    let mut by: BTreeMap<autoarch_archive::Fidelity, Vec<&Evaluation>> = BTreeMap::new();
    for e in evaluations.iter().filter(|e| e.outcome == Outcome::Ok) {
        by.entry(e.fidelity).or_default().push(e);
    }
    by.into_iter()
        .map(|(fidelity, es)| {
            let mut metrics: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
            for e in &es {
                for (k, v) in &e.metrics {
                    metrics.entry(k).or_default().push(*v);
                }
            }
            let stats: Vec<Value> = metrics
                .into_iter()
                .map(|(k, v)| {
                    context! {
                        name => k,
                        mean => autoarch_archive::stats::mean(&v),
                        sd => autoarch_archive::stats::sd(&v),
                        n => v.len(),
                    }
                })
                .collect();
            context! { fidelity => fidelity.0, seeds => es.len(), metrics => stats }
        })
        .collect()
}

/// The training curves of every evaluation, overlaid.
fn curves_plot(series: &[(String, &[(u64, f64)])]) -> Option<String> {
    let all = || series.iter().flat_map(|(_, c)| c.iter());
    all().next()?;
    let positive = all().all(|p| p.1 > 0.0);
    let x = Axis::over(all().map(|p| p.0 as f64), false, "step");
    let y = Axis::over(all().map(|p| p.1), positive, "training loss");
    let mut c = Chart::new(640.0, 280.0, x, y);
    for (i, (label, curve)) in series.iter().enumerate() {
        let pts: Vec<(f64, f64)> = curve.iter().map(|p| (p.0 as f64, p.1)).collect();
        c.line(&pts, &format!("curve c{}", i % 6));
        if let Some(last) = pts.last() {
            c.point(last.0, last.1, &format!("end c{}", i % 6), None, label);
        }
    }
    Some(c.finish("training curves"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CandidateQuery {
    /// Diff against this candidate instead of the parent.
    against: Option<u64>,
}

fn get_candidate(archive: &Archive, id: u64) -> Result<Candidate, PageError> {
    archive.candidate(id)?.ok_or_else(|| missing(id))
}

fn named(view: &View, ids: &[u64]) -> Vec<Value> {
    ids.iter()
        .map(|id| match view.row(*id) {
            Some(r) => context! { id => id, name => r.name.clone(), score => r.score, present => true },
            None => context! { id => id, name => "(not in this archive)", score => Value::UNDEFINED, present => false },
        })
        .collect()
}

async fn candidate(
    State(dash): Dash,
    Path(id): Path<u64>,
    Query(cq): Query<CandidateQuery>,
) -> PageResult {
    let archive = dash.archive();
    let view = dash.view();
    let c = get_candidate(&archive, id)?;
    let summary = archive.summary(id)?;
    let evaluations = archive.evaluations(id)?;
    let children = archive.children(id)?;
    let other = match cq.against.or_else(|| c.parents.first().copied()) {
        Some(o) => archive.candidate(o)?,
        None => None,
    };
    let diff = other
        .as_ref()
        .map(|o| diff_html(&crate::text::unified_diff(o, &c)));
    let series: Vec<(String, &[(u64, f64)])> = evaluations
        .iter()
        .filter(|e| !e.curve.is_empty())
        .map(|e| {
            (
                format!(
                    "fidelity {} seed {} ({})",
                    e.fidelity,
                    e.seed,
                    e.outcome.as_str()
                ),
                e.curve.as_slice(),
            )
        })
        .collect();
    let ancestors = archive.ancestors(id)?;
    let ancestor_ids: Vec<u64> = ancestors.iter().map(|(a, _)| *a).collect();
    let row = view.row(id).cloned();
    render(
        &dash,
        "candidate.html",
        "candidate",
        &format!("#{id}"),
        context! {
            c => ser(&c),
            row => ser(row),
            summary => ser(&summary),
            evaluations => ser(&evaluations),
            fidelities => per_fidelity(&evaluations),
            code => Value::from_safe_string(code_html(&c.code)),
            diff => diff.map(Value::from_safe_string),
            against => other.as_ref().map(|o| context! { id => o.id, name => o.name.clone() }),
            curves => curves_plot(&series).map(Value::from_safe_string),
            parents => named(&view, &c.parents),
            children => named(&view, &children),
            ancestors => named(&view, &ancestor_ids),
            ops => ser(&c.stats.op_histogram),
        },
    )
}

async fn api_candidate(State(dash): Dash, Path(id): Path<u64>) -> Result<Response, PageError> {
    let archive = dash.archive();
    let c = get_candidate(&archive, id)?;
    Ok(axum::Json(serde_json::json!({
        "candidate": c,
        "summary": archive.summary(id)?,
        "evaluations": archive.evaluations(id)?,
        "children": archive.children(id)?,
    }))
    .into_response())
}

/// A download: plain text, as an attachment, never rendered.
fn attachment(name: String, body: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

async fn download_code(State(dash): Dash, Path(id): Path<u64>) -> PageResult {
    let c = get_candidate(&dash.archive(), id)?;
    Ok(attachment(format!("candidate-{id}.star"), c.code))
}

async fn download_pytorch(State(dash): Dash, Path(id): Path<u64>) -> PageResult {
    let c = get_candidate(&dash.archive(), id)?;
    let Some(shape) = dash.task_shape() else {
        return Err(PageError(
            StatusCode::NOT_FOUND,
            "the campaign's task is not known here, so the design cannot be traced for export"
                .into(),
        ));
    };
    let config = autoarch_sandbox::TraceConfig {
        task: shape,
        limits: autoarch_sandbox::Limits::default(),
    };
    match dash.tracer.trace(&c.code, &config).await {
        Ok(autoarch_sandbox::TraceOutcome::Ok(t)) => Ok(attachment(
            format!("candidate-{id}.py"),
            autoarch_sandbox::printer::to_pytorch(&t.graph),
        )),
        Ok(autoarch_sandbox::TraceOutcome::Invalid { diagnostics }) => Err(PageError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the design does not trace, so it has no export:\n{}",
                autoarch_sandbox::render_all(&diagnostics, "code.star")
            ),
        )),
        Err(e) => Err(PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

// ---------------------------------------------------------------- lineage

async fn lineage_best(State(dash): Dash) -> Response {
    match dash.view().best {
        Some(id) => Redirect::to(&format!("/lineage/{id}")).into_response(),
        None => PageError(
            StatusCode::NOT_FOUND,
            "no candidate has a score yet, so there is no best to trace".into(),
        )
        .into_response(),
    }
}

/// The most descendants drawn.
const MAX_DESCENDANTS: usize = 120;

async fn lineage(State(dash): Dash, Path(id): Path<u64>) -> PageResult {
    let archive = dash.archive();
    let view = dash.view();
    let c = get_candidate(&archive, id)?;
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    let node = |nid: u64, level: i64, focus: bool| -> svg::Node {
        match view.row(nid) {
            Some(r) => svg::Node {
                id: nid,
                label: format!(
                    "{}{}",
                    r.name,
                    r.score.map_or(String::new(), |s| format!(" · {s:.3}"))
                ),
                level,
                class: if focus {
                    "focus"
                } else if view.best == Some(nid) {
                    "best"
                } else {
                    "plain"
                },
                href: Some(format!("/lineage/{nid}")),
            },
            None => svg::Node {
                id: nid,
                label: "missing: not in this archive".into(),
                level,
                class: "missing",
                href: None,
            },
        }
    };
    // Ancestors, with parents the archive lacks drawn as placeholders.
    let ancestors = archive.ancestors(id)?;
    let mut seen = std::collections::BTreeSet::new();
    nodes.push(node(id, 0, true));
    seen.insert(id);
    for (a, d) in &ancestors {
        if seen.insert(*a) {
            nodes.push(node(*a, -(*d as i64), false));
        }
    }
    let mut frontier = vec![(id, 0i64)];
    while let Some((n, level)) = frontier.pop() {
        let parents = match archive.candidate(n)? {
            Some(x) => x.parents,
            None => Vec::new(),
        };
        for p in parents {
            edges.push((p, n));
            if seen.insert(p) {
                nodes.push(node(p, level - 1, false));
            }
            if view.row(p).is_some() {
                frontier.push((p, level - 1));
            }
        }
    }
    let descendants = archive.descendants(id)?;
    let shown: Vec<(u64, usize)> = descendants.iter().take(MAX_DESCENDANTS).copied().collect();
    for (d, depth) in &shown {
        if seen.insert(*d) {
            nodes.push(node(*d, *depth as i64, false));
        }
        if let Some(r) = view.row(*d) {
            for p in &r.parents {
                if seen.contains(p) {
                    edges.push((*p, *d));
                }
            }
        }
    }
    edges.sort();
    edges.dedup();
    let drawing = svg::lineage(&nodes, &edges);
    render(
        &dash,
        "lineage.html",
        "lineage",
        &format!("lineage of #{id}"),
        context! {
            c => context! { id => c.id, name => c.name.clone() },
            drawing => Value::from_safe_string(drawing),
            ancestors => named(&view, &ancestors.iter().map(|a| a.0).collect::<Vec<_>>()),
            descendants => named(&view, &shown.iter().map(|a| a.0).collect::<Vec<_>>()),
            more => descendants.len().saturating_sub(MAX_DESCENDANTS),
            best => view.best,
        },
    )
}

// ---------------------------------------------------------------- pareto

#[derive(Deserialize, Default)]
#[serde(default)]
struct ParetoQuery {
    /// params, flops or latency.
    x: Option<String>,
    /// "0" for a linear axis (log by default).
    log: Option<String>,
}

fn x_value(r: &Row, x: &str) -> Option<f64> {
    match x {
        "flops" => Some(r.flops as f64),
        "latency" => r.latency_ms,
        _ => Some(r.params as f64),
    }
}

async fn pareto(State(dash): Dash, Query(pq): Query<ParetoQuery>) -> PageResult {
    let view = dash.view();
    let x = match pq.x.as_deref() {
        Some("flops") => "flops",
        Some("latency") => "latency",
        _ => "params",
    };
    let log = pq.log.as_deref() != Some("0");
    let pts: Vec<(&Row, f64, f64)> = view
        .rows
        .iter()
        .filter(|r| !r.random_baseline)
        .filter_map(|r| Some((r, x_value(r, x)?, r.score?)))
        .filter(|(_, a, b)| a.is_finite() && b.is_finite() && (!log || *a > 0.0))
        .collect();
    // The front: no other point has a higher score with no more of x.
    let mut sorted: Vec<&(&Row, f64, f64)> = pts.iter().collect();
    sorted.sort_by(|a, b| a.1.total_cmp(&b.1).then(b.2.total_cmp(&a.2)));
    let mut front: Vec<&(&Row, f64, f64)> = Vec::new();
    for p in sorted {
        if front.last().is_none_or(|l| p.2 > l.2) {
            front.push(p);
        }
    }
    let label = match x {
        "flops" => "FLOPs per sample",
        "latency" => "latency (ms, batch 1)",
        _ => "parameters",
    };
    let xa = Axis::over(pts.iter().map(|p| p.1), log, label);
    let ya = Axis::over(pts.iter().map(|p| p.2), false, "score");
    let mut chart = Chart::new(720.0, 380.0, xa, ya);
    let on_front: std::collections::BTreeSet<u64> = front.iter().map(|p| p.0.id).collect();
    for (r, a, b) in &pts {
        let class = if on_front.contains(&r.id) {
            "pt front"
        } else {
            "pt"
        };
        let href = format!("/candidate/{}", r.id);
        chart.point(
            *a,
            *b,
            class,
            Some(&href),
            &format!("#{} {} · {:.4}", r.id, r.name, b),
        );
    }
    chart.line(
        &front.iter().map(|p| (p.1, p.2)).collect::<Vec<_>>(),
        "frontline",
    );
    let plot = chart.finish(&format!("score against {label}"));
    let parallel = parallel_plot(&view, &on_front);
    render(
        &dash,
        "pareto.html",
        "pareto",
        "Pareto front",
        context! {
            x => x,
            log => log,
            plot => Value::from_safe_string(plot),
            parallel => Value::from_safe_string(parallel),
            front => ser(front.iter().map(|p| p.0).collect::<Vec<&Row>>()),
            points => pts.len(),
        },
    )
}

/// Parallel coordinates of the best 200 by score, the front's lines highlighted.
fn parallel_plot(view: &View, on_front: &std::collections::BTreeSet<u64>) -> String {
    let mut top: Vec<&Row> = view
        .rows
        .iter()
        .filter(|r| r.score.is_some() && !r.random_baseline)
        .collect();
    top.sort_by(|a, b| {
        b.score
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&a.score.unwrap_or(f64::NEG_INFINITY))
    });
    top.truncate(200);
    let axes = vec![
        Axis::over(top.iter().filter_map(|r| r.score), false, "score"),
        Axis::over(top.iter().filter_map(|r| r.val_loss), false, "val loss"),
        Axis::over(top.iter().map(|r| r.params as f64), true, "params"),
        Axis::over(top.iter().map(|r| r.flops as f64), true, "FLOPs"),
        Axis::over(top.iter().filter_map(|r| r.latency_ms), true, "latency ms"),
    ];
    let lines: Vec<(String, Vec<f64>, &'static str)> = top
        .iter()
        .map(|r| {
            (
                format!("#{} {}", r.id, r.name),
                vec![
                    r.score.unwrap_or(f64::NAN),
                    r.val_loss.unwrap_or(f64::NAN),
                    r.params as f64,
                    r.flops as f64,
                    r.latency_ms.unwrap_or(f64::NAN),
                ],
                if on_front.contains(&r.id) {
                    "pline front"
                } else {
                    "pline"
                },
            )
        })
        .collect();
    svg::parallel(&axes, &lines)
}

// ---------------------------------------------------------------- compare

#[derive(Deserialize, Default)]
#[serde(default)]
struct CompareQuery {
    /// Candidate ids, separated by commas or spaces.
    ids: Option<String>,
}

async fn compare(State(dash): Dash, Query(cq): Query<CompareQuery>) -> PageResult {
    let archive = dash.archive();
    let view = dash.view();
    let text = cq.ids.unwrap_or_default();
    let mut ids: Vec<u64> = Vec::new();
    for part in text.split([',', ' ']).filter(|p| !p.is_empty()) {
        let id: u64 = part.trim_start_matches('#').parse().map_err(|_| {
            PageError(
                StatusCode::BAD_REQUEST,
                format!("{part:?} is not a candidate id"),
            )
        })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids.truncate(8);
    let mut cands = Vec::new();
    let mut series_store: Vec<(String, Vec<(u64, f64)>)> = Vec::new();
    for id in &ids {
        let c = get_candidate(&archive, *id)?;
        if let Some(e) = archive
            .evaluations(*id)?
            .into_iter()
            .find(|e| e.fidelity.is_short() && !e.curve.is_empty())
        {
            series_store.push((format!("#{id} {}", c.name), e.curve));
        }
        cands.push(c);
    }
    let series: Vec<(String, &[(u64, f64)])> = series_store
        .iter()
        .map(|(l, c)| (l.clone(), c.as_slice()))
        .collect();
    let diffs: Vec<Value> = cands
        .iter()
        .skip(1)
        .map(|c| {
            context! {
                a => cands[0].id,
                b => c.id,
                diff => Value::from_safe_string(diff_html(&crate::text::unified_diff(&cands[0], c))),
            }
        })
        .collect();
    let rows: Vec<Option<Row>> = ids.iter().map(|id| view.row(*id).cloned()).collect();
    render(
        &dash,
        "compare.html",
        "compare",
        "compare",
        context! {
            ids => text,
            rows => ser(rows),
            names => cands.iter().map(|c| context! { id => c.id, name => c.name.clone() }).collect::<Vec<_>>(),
            curves => curves_plot(&series).map(Value::from_safe_string),
            diffs => diffs,
        },
    )
}

// ---------------------------------------------------------------- report

/// Markdown as HTML, with any raw HTML in it shown as text and links only to this site or the
/// web (no `javascript:`), images shown as their text.
pub fn markdown_html(md: &str) -> String {
    use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};
    let safe_url = |u: &CowStr| {
        let u = u.trim().to_ascii_lowercase();
        u.starts_with("http://")
            || u.starts_with("https://")
            || u.starts_with('/')
            || u.starts_with('#')
    };
    let events = Parser::new_ext(md, Options::ENABLE_TABLES).filter_map(|e| match e {
        Event::Html(t) | Event::InlineHtml(t) => Some(Event::Text(t)),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let dest_url = if safe_url(&dest_url) {
                dest_url
            } else {
                CowStr::from("#")
            };
            Some(Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }))
        }
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        other => Some(other),
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

async fn report(State(dash): Dash) -> PageResult {
    let archive = dash.archive();
    let md = crate::report::render(&archive)
        .map_err(|e| PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    render(
        &dash,
        "report.html",
        "report",
        "report",
        context! { body => Value::from_safe_string(markdown_html(&md)) },
    )
}

// ---------------------------------------------------------------- live

async fn events(
    State(dash): Dash,
) -> Sse<impl tokio_stream::Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = dash.pushes.subscribe();
    let hello = tokio_stream::once(Ok(SseEvent::default()
        .event("hello")
        .data(serde_json::json!({ "version": dash.version() }).to_string())));
    let stream = BroadcastStream::new(rx).filter_map(|m| {
        m.ok()
            .map(|p| Ok(SseEvent::default().event(p.kind).data(p.data)))
    });
    Sse::new(hello.chain(stream)).keep_alive(KeepAlive::default())
}
