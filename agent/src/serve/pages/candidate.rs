//! One candidate: its code, evaluations, curves, lineage neighbours, downloads and JSON.

use super::*;

/// Per fidelity: the mean and SD of each metric over its successful seeds.
pub(super) fn per_fidelity(evaluations: &[Evaluation]) -> Vec<Value> {
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
pub(super) fn curves_plot(series: &[(String, &[(u64, f64)])]) -> Option<String> {
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
pub(super) struct CandidateQuery {
    /// Diff against this candidate instead of the parent.
    against: Option<u64>,
}

pub(super) fn get_candidate(archive: &Archive, id: u64) -> Result<Candidate, PageError> {
    archive.candidate(id)?.ok_or_else(|| missing(id))
}

pub(super) fn named(view: &View, ids: &[u64]) -> Vec<Value> {
    ids.iter()
        .map(|id| match view.row(*id) {
            Some(r) => context! { id => id, name => r.name.clone(), score => r.score, present => true },
            None => context! { id => id, name => "(not in this archive)", score => Value::UNDEFINED, present => false },
        })
        .collect()
}

pub(super) async fn candidate(
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

pub(super) async fn api_candidate(
    State(dash): Dash,
    Path(id): Path<u64>,
) -> Result<Response, PageError> {
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
pub(super) fn attachment(name: String, body: String) -> Response {
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

pub(super) async fn download_code(State(dash): Dash, Path(id): Path<u64>) -> PageResult {
    let c = get_candidate(&dash.archive(), id)?;
    Ok(attachment(format!("candidate-{id}.star"), c.code))
}

pub(super) async fn download_pytorch(State(dash): Dash, Path(id): Path<u64>) -> PageResult {
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
