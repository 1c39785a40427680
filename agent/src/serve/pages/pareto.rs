//! The Pareto page: the front of score against a cost, and a parallel-coordinates plot.

use super::*;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ParetoQuery {
    /// params, flops or latency.
    x: Option<String>,
    /// "0" for a linear axis (log by default).
    log: Option<String>,
}

pub(super) fn x_value(r: &Row, x: &str) -> Option<f64> {
    match x {
        "flops" => Some(r.flops as f64),
        "latency" => r.latency_ms,
        _ => Some(r.params as f64),
    }
}

pub(super) async fn pareto(State(dash): Dash, Query(pq): Query<ParetoQuery>) -> PageResult {
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
pub(super) fn parallel_plot(view: &View, on_front: &std::collections::BTreeSet<u64>) -> String {
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
