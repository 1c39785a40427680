//! The dashboard's plots, drawn on the server as inline SVG: points are links to their
//! candidates, which an image could not carry. Colours and strokes come from the stylesheet
//! (classes only: the Content-Security-Policy allows no inline style), and every piece of text
//! is escaped.

use std::fmt::Write;

use super::highlight::escape;

/// One axis: its range, whether it is logarithmic, its label.
#[derive(Clone, Debug)]
pub struct Axis {
    pub min: f64,
    pub max: f64,
    pub log: bool,
    pub label: String,
}

impl Axis {
    /// An axis over `values` (finite ones; positive ones for a log axis), padded a little.
    pub fn over(values: impl Iterator<Item = f64>, log: bool, label: &str) -> Axis {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            (lo, hi) = if log { (1.0, 10.0) } else { (0.0, 1.0) };
        }
        if log {
            let (l, h) = (lo.log10(), hi.log10());
            let pad = ((h - l) * 0.05).max(0.05);
            (lo, hi) = (10f64.powf(l - pad), 10f64.powf(h + pad));
        } else {
            let pad = ((hi - lo) * 0.05).max(if hi.abs() > 0.0 {
                hi.abs() * 0.01
            } else {
                0.01
            });
            (lo, hi) = (lo - pad, hi + pad);
        }
        Axis {
            min: lo,
            max: hi,
            log,
            label: label.to_string(),
        }
    }

    fn unit(&self, v: f64) -> f64 {
        if self.log {
            let v = v.max(self.min);
            (v.log10() - self.min.log10()) / (self.max.log10() - self.min.log10())
        } else {
            (v - self.min) / (self.max - self.min)
        }
    }

    /// About five round values inside the range.
    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let (a, b) = (
                self.min.log10().ceil() as i32,
                self.max.log10().floor() as i32,
            );
            let step = ((b - a) / 6 + 1).max(1);
            return (a..=b)
                .step_by(step as usize)
                .map(|e| 10f64.powi(e))
                .collect();
        }
        let span = self.max - self.min;
        if span.is_nan() || span <= 0.0 {
            return vec![self.min];
        }
        let raw = span / 5.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| span / s <= 6.0)
            .unwrap_or(10.0 * mag);
        let first = (self.min / step).ceil();
        (0..)
            .map(|i| (first + f64::from(i)) * step)
            .take_while(|t| *t <= self.max + step * 1e-9)
            .take(20)
            .collect()
    }
}

/// A number on an axis: short and round.
pub fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.3}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.3}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.3}k", v / 1e3)
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
    .replace(".000", "")
}

/// A tick on a linear axis: as many decimals as its step needs (large values as with
/// [`tick_label`]).
pub fn step_label(v: f64, step: f64) -> String {
    if v.abs() >= 1e4 || step >= 1.0 {
        return tick_label(v);
    }
    let decimals = (-step.log10().floor()) as usize
        + usize::from((step / 10f64.powf(step.log10().floor()) - 2.5).abs() < 1e-9);
    format!("{v:.decimals$}")
}

/// A chart being drawn.
pub struct Chart {
    width: f64,
    height: f64,
    x: Axis,
    y: Axis,
    body: String,
}

const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 44.0;

impl Chart {
    pub fn new(width: f64, height: f64, x: Axis, y: Axis) -> Chart {
        Chart {
            width,
            height,
            x,
            y,
            body: String::new(),
        }
    }

    fn px(&self, x: f64) -> f64 {
        LEFT + self.x.unit(x) * (self.width - LEFT - RIGHT)
    }

    fn py(&self, y: f64) -> f64 {
        self.height - BOTTOM - self.y.unit(y) * (self.height - TOP - BOTTOM)
    }

    /// A polyline through the finite points, in order.
    pub fn line(&mut self, points: &[(f64, f64)], class: &str) {
        let pts: Vec<String> = points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", self.px(x), self.py(y)))
            .collect();
        if pts.len() > 1 {
            let _ = writeln!(
                self.body,
                "<polyline class=\"{class}\" points=\"{}\"/>",
                pts.join(" ")
            );
        }
    }

    /// A step line (the best so far): flat until the next point, then up.
    pub fn steps(&mut self, points: &[(f64, f64)], until: f64, class: &str) {
        let mut pts = Vec::new();
        for (i, &(x, y)) in points.iter().enumerate() {
            pts.push((x, y));
            let next = points.get(i + 1).map_or(until, |p| p.0);
            pts.push((next, y));
        }
        self.line(&pts, class);
    }

    /// A horizontal reference line across the chart, with its label.
    pub fn hline(&mut self, y: f64, class: &str, label: &str) {
        if !y.is_finite() {
            return;
        }
        let (x0, x1, py) = (LEFT, self.width - RIGHT, self.py(y));
        let _ = writeln!(
            self.body,
            "<line class=\"{class}\" x1=\"{x0:.1}\" y1=\"{py:.1}\" x2=\"{x1:.1}\" y2=\"{py:.1}\"/><text class=\"note\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            x1 - 4.0,
            py - 4.0,
            escape(label)
        );
    }

    /// A point, a link to `href` when given, with a tooltip.
    pub fn point(&mut self, x: f64, y: f64, class: &str, href: Option<&str>, title: &str) {
        if !(x.is_finite() && y.is_finite()) {
            return;
        }
        let circle = format!(
            "<circle class=\"{class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\"><title>{}</title></circle>",
            self.px(x),
            self.py(y),
            escape(title)
        );
        match href {
            Some(h) => {
                let _ = writeln!(self.body, "<a href=\"{}\">{circle}</a>", escape(h));
            }
            None => {
                let _ = writeln!(self.body, "{circle}");
            }
        }
    }

    /// The chart with its axes, as an `<svg>` element.
    pub fn finish(self, label: &str) -> String {
        let mut axes = String::new();
        let (x0, x1) = (LEFT, self.width - RIGHT);
        let (y0, y1) = (self.height - BOTTOM, TOP);
        let _ = writeln!(
            axes,
            "<rect class=\"frame\" x=\"{x0}\" y=\"{y1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
            x1 - x0,
            y0 - y1
        );
        let tick = |a: &Axis, ticks: &[f64], t: f64| {
            if a.log || ticks.len() < 2 {
                tick_label(t)
            } else {
                step_label(t, ticks[1] - ticks[0])
            }
        };
        let xt = self.x.ticks();
        for &t in &xt {
            let px = self.px(t);
            let _ = writeln!(
                axes,
                "<line class=\"grid\" x1=\"{px:.1}\" y1=\"{y1}\" x2=\"{px:.1}\" y2=\"{y0}\"/><text class=\"tick\" x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                y0 + 16.0,
                tick(&self.x, &xt, t)
            );
        }
        let yt = self.y.ticks();
        for &t in &yt {
            let py = self.py(t);
            let _ = writeln!(
                axes,
                "<line class=\"grid\" x1=\"{x0}\" y1=\"{py:.1}\" x2=\"{x1}\" y2=\"{py:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                x0 - 6.0,
                py + 4.0,
                tick(&self.y, &yt, t)
            );
        }
        let _ = writeln!(
            axes,
            "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}{}</text>",
            (x0 + x1) / 2.0,
            self.height - 8.0,
            escape(&self.x.label),
            if self.x.log { " (log)" } else { "" }
        );
        let _ = writeln!(
            axes,
            "<text class=\"axis\" x=\"14\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {:.1})\">{}{}</text>",
            (y0 + y1) / 2.0,
            (y0 + y1) / 2.0,
            escape(&self.y.label),
            if self.y.log { " (log)" } else { "" }
        );
        format!(
            "<svg class=\"chart\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">\n{axes}{}</svg>",
            self.width,
            self.height,
            escape(label),
            self.body
        )
    }
}

/// A node of a lineage drawing.
pub struct Node {
    pub id: u64,
    pub label: String,
    /// Its distance from the focus: negative for ancestors, positive for descendants.
    pub level: i64,
    pub class: &'static str,
    /// `None` for a parent that is not in the archive (drawn as a placeholder, no link).
    pub href: Option<String>,
}

/// A layered drawing: one row per level, edges from parent to child.
pub fn lineage(nodes: &[Node], edges: &[(u64, u64)]) -> String {
    use std::collections::BTreeMap;
    let mut levels: BTreeMap<i64, Vec<&Node>> = BTreeMap::new();
    for n in nodes {
        levels.entry(n.level).or_default().push(n);
    }
    let widest = levels.values().map(Vec::len).max().unwrap_or(1).max(1);
    let (box_w, box_h, gap_x, gap_y) = (150.0, 34.0, 14.0, 40.0);
    let width = (widest as f64 * (box_w + gap_x) + gap_x).max(400.0);
    let height = levels.len() as f64 * (box_h + gap_y) + gap_y;
    let mut at: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for (row, (_, ns)) in levels.iter().enumerate() {
        let total = ns.len() as f64 * (box_w + gap_x) - gap_x;
        let start = (width - total) / 2.0;
        for (i, n) in ns.iter().enumerate() {
            let x = start + i as f64 * (box_w + gap_x);
            let y = gap_y / 2.0 + row as f64 * (box_h + gap_y);
            at.insert(n.id, (x, y));
        }
    }
    // Drawn at its own size (a narrow lineage is not blown up to the page's width).
    let mut out = format!(
        "<svg class=\"lineage\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" aria-label=\"lineage\" xmlns=\"http://www.w3.org/2000/svg\">\n"
    );
    for (p, c) in edges {
        if let (Some(&(px, py)), Some(&(cx, cy))) = (at.get(p), at.get(c)) {
            let _ = writeln!(
                out,
                "<line class=\"edge\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>",
                px + box_w / 2.0,
                py + box_h,
                cx + box_w / 2.0,
                cy
            );
        }
    }
    for n in nodes {
        let (x, y) = at[&n.id];
        let label: String = n.label.chars().take(22).collect();
        let node = format!(
            "<g class=\"node {}\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{box_w}\" height=\"{box_h}\" rx=\"4\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">#{} {}</text><title>{}</title></g>",
            n.class,
            x + box_w / 2.0,
            y + box_h / 2.0 + 4.0,
            n.id,
            escape(&label),
            escape(&n.label)
        );
        match &n.href {
            Some(h) => {
                let _ = writeln!(out, "<a href=\"{}\">{node}</a>", escape(h));
            }
            None => {
                let _ = writeln!(out, "{node}");
            }
        }
    }
    out.push_str("</svg>");
    out
}

/// Parallel coordinates: one polyline per row across the axes (each scaled to its own range,
/// logarithmic where asked), with a tooltip per line.
pub fn parallel(axes: &[Axis], rows: &[(String, Vec<f64>, &'static str)]) -> String {
    let (width, height) = (760.0, 320.0);
    let (top, bottom) = (24.0, 40.0);
    let n = axes.len().max(2);
    let x_of = |i: usize| 50.0 + i as f64 * (width - 100.0) / (n - 1) as f64;
    let y_of =
        |a: &Axis, v: f64| height - bottom - a.unit(v).clamp(0.0, 1.0) * (height - top - bottom);
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"parallel coordinates\" xmlns=\"http://www.w3.org/2000/svg\">\n"
    );
    for (title, values, class) in rows {
        let pts: Vec<String> = axes
            .iter()
            .zip(values)
            .enumerate()
            .filter(|(_, (_, v))| v.is_finite())
            .map(|(i, (a, v))| format!("{:.1},{:.1}", x_of(i), y_of(a, *v)))
            .collect();
        if pts.len() > 1 {
            let _ = writeln!(
                out,
                "<polyline class=\"{class}\" points=\"{}\"><title>{}</title></polyline>",
                pts.join(" "),
                escape(title)
            );
        }
    }
    for (i, a) in axes.iter().enumerate() {
        let x = x_of(i);
        let _ = writeln!(
            out,
            "<line class=\"paxis\" x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{:.1}\"/><text class=\"axis\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text><text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text><text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            height - bottom,
            height - 8.0,
            escape(&a.label),
            top - 8.0,
            tick_label(a.max),
            height - bottom + 14.0,
            tick_label(a.min)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside_the_range() {
        let a = Axis {
            min: 0.0,
            max: 1.0,
            log: false,
            label: "score".into(),
        };
        let ticks = a.ticks();
        assert_eq!(ticks.len(), 6, "{ticks:?}");
        for (t, want) in ticks.iter().zip([0.0, 0.2, 0.4, 0.6, 0.8, 1.0]) {
            assert!((t - want).abs() < 1e-12, "{ticks:?}");
        }
        let l = Axis {
            min: 900.0,
            max: 2e6,
            log: true,
            label: "params".into(),
        };
        assert_eq!(l.ticks(), vec![1e3, 1e4, 1e5, 1e6]);
        assert_eq!(tick_label(2_500_000.0), "2.500M");
        assert_eq!(step_label(0.0015, 0.0005), "0.0015");
        assert_eq!(step_label(0.75, 0.25), "0.75");
        assert_eq!(step_label(0.4, 0.2), "0.4");
        assert_eq!(tick_label(0.25), "0.250");
    }

    #[test]
    fn points_link_and_text_is_escaped() {
        let x = Axis::over([1.0, 10.0].into_iter(), false, "x <axis>");
        let y = Axis::over([0.0, 1.0].into_iter(), false, "y");
        let mut c = Chart::new(400.0, 300.0, x, y);
        c.point(
            2.0,
            0.5,
            "pt",
            Some("/candidate/3"),
            "#3 <script>alert(1)</script>",
        );
        let svg = c.finish("a \"chart\"");
        assert!(
            svg.contains("<a href=\"/candidate/3\"><circle class=\"pt\""),
            "{svg}"
        );
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(
            svg.contains("x &lt;axis&gt;") && svg.contains("aria-label=\"a &quot;chart&quot;\"")
        );
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn a_lineage_draws_placeholders_without_links() {
        let nodes = [
            Node {
                id: 1,
                label: "missing".into(),
                level: -1,
                class: "missing",
                href: None,
            },
            Node {
                id: 2,
                label: "child <b>".into(),
                level: 0,
                class: "focus",
                href: Some("/candidate/2".into()),
            },
        ];
        let svg = lineage(&nodes, &[(1, 2)]);
        assert!(svg.contains("<g class=\"node missing\">"));
        assert!(!svg.contains("href=\"/candidate/1\""));
        assert!(svg.contains("<a href=\"/candidate/2\">"));
        assert!(svg.contains("child &lt;b&gt;"));
        assert_eq!(svg.matches("class=\"edge\"").count(), 1);
    }
}
