//! The overview page: the campaign at a glance, its history plots, and its JSON.

use super::*;

/// The best-so-far against minutes and against evaluation-seconds, each candidate a point.
/// The most candidates a history plot draws as points.
pub(super) const MAX_POINTS: usize = 2000;

pub(super) fn history_plots(view: &View) -> (String, String) {
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
pub(super) struct Overview<'a> {
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

pub(super) fn overview_json<'a>(dash: &Dashboard, view: &'a View) -> Overview<'a> {
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

pub(super) async fn overview(State(dash): Dash) -> PageResult {
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

pub(super) async fn api_overview(State(dash): Dash) -> Response {
    let view = dash.view();
    axum::Json(overview_json(&dash, &view)).into_response()
}

pub(super) async fn api_plots(State(dash): Dash) -> Response {
    let (by_time, by_compute) = history_plots(&dash.view());
    axum::Json(serde_json::json!({ "by_time": by_time, "by_compute": by_compute })).into_response()
}
