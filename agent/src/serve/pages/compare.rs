//! Two candidates side by side, with the diff of their code.

use super::*;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CompareQuery {
    /// Candidate ids, separated by commas or spaces.
    ids: Option<String>,
}

pub(super) async fn compare(State(dash): Dash, Query(cq): Query<CompareQuery>) -> PageResult {
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
