//! The report's plots, as SVG (plotters' SVG backend: text is left to the viewer, so no font
//! is needed): best-so-far against evaluation-seconds and against proposals (median over
//! campaigns, interquartile band, the best seed and Acc_random as lines), the final scores of
//! every campaign beside the seeds and the random population, and score against parameters
//! with the Pareto front.

use plotters::prelude::*;

use super::{stats, CampaignResult, TaskResult};

const SIZE: (u32, u32) = (760, 440);
const FONT: &str = "sans-serif";

/// An arm's colour (the same in every plot).
fn colour(i: usize) -> RGBColor {
    const COLOURS: [RGBColor; 6] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
        RGBColor(23, 190, 207),
    ];
    COLOURS[i % COLOURS.len()]
}

type Error = Box<dyn std::error::Error>;

/// A plot of a task, as SVG.
type Plot = fn(&TaskResult) -> Result<String, Error>;

/// Every plot of a task: (file name, SVG).
pub fn task_plots(t: &TaskResult) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let plots: [(&str, Plot); 4] = [
        ("best-by-compute", |t| best_so_far(t, Axis::Compute)),
        ("best-by-candidates", |t| best_so_far(t, Axis::Candidates)),
        ("final-scores", final_scores),
        ("pareto", pareto),
    ];
    for (kind, plot) in plots {
        // A plot that cannot be drawn (nothing to show) is left out, not an error.
        if let Ok(svg) = plot(t) {
            out.push((format!("{}-{kind}.svg", t.name), svg));
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Axis {
    Compute,
    Candidates,
}

/// A campaign's best-so-far at `x` (a step function of its curve), NaN before its first score.
fn value_at(c: &CampaignResult, axis: Axis, x: f64) -> f64 {
    c.curve
        .iter()
        .take_while(|p| match axis {
            Axis::Compute => p.compute_seconds <= x,
            Axis::Candidates => p.candidates as f64 <= x,
        })
        .last()
        .map_or(f64::NAN, |p| p.best)
}

/// Median, first and third quartile over campaigns at each of `xs` (where any campaign has a
/// value).
fn bands(campaigns: &[CampaignResult], axis: Axis, xs: &[f64]) -> Vec<(f64, f64, f64, f64)> {
    xs.iter()
        .filter_map(|&x| {
            let mut v: Vec<f64> = campaigns
                .iter()
                .map(|c| value_at(c, axis, x))
                .filter(|v| v.is_finite())
                .collect();
            if v.is_empty() {
                return None;
            }
            v.sort_by(f64::total_cmp);
            let q = |p: f64| {
                let pos = p * (v.len() - 1) as f64;
                let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
                v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
            };
            Some((x, q(0.5), q(0.25), q(0.75)))
        })
        .collect()
}

fn score_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(0.01);
    (lo - pad, hi + pad)
}

fn reference_lines(t: &TaskResult) -> Vec<(String, f64, RGBColor)> {
    let mut lines = Vec::new();
    let best = t
        .seeds
        .iter()
        .find(|d| Some(&d.name) == t.best_seed.as_ref())
        .and_then(|d| d.short.as_ref());
    if let (Some(name), Some(s)) = (&t.best_seed, best) {
        lines.push((format!("best seed ({name}), final"), s.mean, BLACK));
    }
    if let Some(r) = t.random_mean {
        lines.push(("Acc_random, final".to_string(), r, RGBColor(120, 120, 120)));
    }
    lines
}

fn best_so_far(t: &TaskResult, axis: Axis) -> Result<String, Error> {
    let all = || t.arms.iter().flat_map(|a| &a.campaigns);
    let x_max = all()
        .filter_map(|c| c.curve.last())
        .map(|p| match axis {
            Axis::Compute => p.compute_seconds,
            Axis::Candidates => p.candidates as f64,
        })
        .fold(0.0, f64::max);
    if x_max <= 0.0 {
        return Err("no campaign has a curve".into());
    }
    let xs: Vec<f64> = (0..=120).map(|i| x_max * i as f64 / 120.0).collect();
    let lines = reference_lines(t);
    let (lo, hi) = score_range(
        all()
            .flat_map(|c| c.curve.iter().map(|p| p.best))
            .chain(lines.iter().map(|l| l.1)),
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let (title, x_desc) = match axis {
            Axis::Compute => ("best so far against compute", "evaluation-seconds"),
            Axis::Candidates => ("best so far against proposals", "proposals"),
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{}: {title}", t.name), (FONT, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_max, lo..hi)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("search score (short budget)")
            .draw()?;
        for (i, arm) in t.arms.iter().enumerate() {
            let b = bands(&arm.campaigns, axis, &xs);
            if b.is_empty() {
                continue;
            }
            let c = colour(i);
            let band: Vec<(f64, f64)> = b
                .iter()
                .map(|p| (p.0, p.3))
                .chain(b.iter().rev().map(|p| (p.0, p.2)))
                .collect();
            chart.draw_series(std::iter::once(Polygon::new(band, c.mix(0.18).filled())))?;
            chart
                .draw_series(LineSeries::new(
                    b.iter().map(|p| (p.0, p.1)),
                    c.stroke_width(2),
                ))?
                .label(format!("{} (median, IQR)", arm.name))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], c.stroke_width(2)));
        }
        for (label, y, c) in lines {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, y), (x_max, y)],
                    6,
                    4,
                    c.stroke_width(1),
                ))?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], c));
        }
        legend(&mut chart)?;
        root.present()?;
    }
    Ok(svg)
}

/// The legend, in the lower right.
fn legend<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
) -> Result<(), Error>
where
    X: plotters::coord::ranged1d::Ranged,
    Y: plotters::coord::ranged1d::Ranged,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 12))
        .draw()?;
    Ok(())
}

/// Every campaign's incumbent (final score at the search's budget) per arm, beside each seed
/// and each random design; a bar marks the mean.
fn final_scores(t: &TaskResult) -> Result<String, Error> {
    let mut columns: Vec<(String, Vec<f64>, RGBColor)> = t
        .arms
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let xs = a
                .campaigns
                .iter()
                .filter_map(|c| c.incumbent.as_ref()?.1.short.as_ref().map(|s| s.mean))
                .filter(|x| x.is_finite())
                .collect();
            (a.name.clone(), xs, colour(i))
        })
        .collect();
    let finals = |ds: &[super::DesignResult]| -> Vec<f64> {
        ds.iter()
            .filter_map(|d| d.short.as_ref().map(|s| s.mean))
            .filter(|x| x.is_finite())
            .collect()
    };
    columns.push(("seeds".into(), finals(&t.seeds), BLACK));
    columns.push(("random".into(), finals(&t.random), RGBColor(120, 120, 120)));
    if columns.iter().all(|c| c.1.is_empty()) {
        return Err("no final scores".into());
    }
    let (lo, hi) = score_range(columns.iter().flat_map(|c| c.1.iter().copied()));
    let names: Vec<String> = columns.iter().map(|c| c.0.clone()).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "{}: final scores (each point a campaign or a design)",
                    t.name
                ),
                (FONT, 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5..columns.len() as f64 - 0.5, lo..hi)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(columns.len())
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("final score (mean over fresh seeds)")
            .draw()?;
        for (i, (_, xs, c)) in columns.iter().enumerate() {
            let n = xs.len().max(1) as f64;
            chart.draw_series(xs.iter().enumerate().map(|(j, &y)| {
                // Spread the points of a column a little so that equal scores stay visible.
                let dx = if xs.len() > 1 {
                    -0.2 + 0.4 * j as f64 / (n - 1.0)
                } else {
                    0.0
                };
                Circle::new((i as f64 + dx, y), 4, c.mix(0.8).filled())
            }))?;
            if !xs.is_empty() {
                let m = stats::mean(xs);
                chart.draw_series(std::iter::once(PathElement::new(
                    [(i as f64 - 0.3, m), (i as f64 + 0.3, m)],
                    c.stroke_width(2),
                )))?;
            }
        }
        root.present()?;
    }
    Ok(svg)
}

/// The points of `points` that no other point beats in both score (higher) and parameters
/// (fewer), by parameters.
pub fn pareto_front(points: &[(u64, f64)]) -> Vec<(u64, f64)> {
    let mut sorted: Vec<(u64, f64)> = points.iter().copied().filter(|p| p.1.is_finite()).collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut front: Vec<(u64, f64)> = Vec::new();
    for p in sorted {
        if front.last().is_none_or(|l| p.1 > l.1) {
            front.push(p);
        }
    }
    front
}

/// Search score against parameters (log axis) of every candidate that trained, by arm, with
/// the front over all arms.
fn pareto(t: &TaskResult) -> Result<String, Error> {
    let all: Vec<(u64, f64)> = t
        .arms
        .iter()
        .flat_map(|a| a.campaigns.iter().flat_map(|c| c.points.iter().copied()))
        .filter(|p| p.0 > 0 && p.1.is_finite())
        .collect();
    if all.is_empty() {
        return Err("no candidate trained".into());
    }
    let (pmin, pmax) = all
        .iter()
        .fold((u64::MAX, 0), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let (x_lo, x_hi) = (pmin as f64 / 1.5, pmax as f64 * 1.5);
    let (lo, hi) = score_range(all.iter().map(|p| p.1));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: score against parameters (front in black)", t.name),
                (FONT, 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d((x_lo..x_hi).log_scale(), lo..hi)?;
        chart
            .configure_mesh()
            .x_desc("parameters (log)")
            .y_desc("search score (short budget)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()?;
        for (i, arm) in t.arms.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series(
                    arm.campaigns
                        .iter()
                        .flat_map(|k| k.points.iter())
                        .filter(|p| p.0 > 0 && p.1.is_finite())
                        .map(|p| Circle::new((p.0 as f64, p.1), 3, c.mix(0.6).filled())),
                )?
                .label(arm.name.clone())
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
        }
        let front = pareto_front(&all);
        chart
            .draw_series(LineSeries::new(
                front.iter().map(|p| (p.0 as f64, p.1)),
                BLACK.stroke_width(2),
            ))?
            .label("Pareto front")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.stroke_width(2)));
        legend(&mut chart)?;
        root.present()?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_front_keeps_only_undominated_points() {
        let points = [
            (100, 0.5),
            (50, 0.3),
            (200, 0.5),
            (80, 0.6),
            (300, 0.9),
            (10, f64::NAN),
        ];
        assert_eq!(
            pareto_front(&points),
            vec![(50, 0.3), (80, 0.6), (300, 0.9)]
        );
    }
}
