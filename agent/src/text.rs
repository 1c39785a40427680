//! Text for people: numbers, op histograms and training curves.

use std::collections::BTreeMap;

/// `1234567` as `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The op histogram, most used first: `linear×4 relu×2 ...`.
pub fn op_histogram(h: &BTreeMap<String, usize>) -> String {
    let mut items: Vec<(&String, &usize)> = h.iter().filter(|(k, _)| *k != "input").collect();
    items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    items
        .iter()
        .map(|(k, v)| format!("{k}×{v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A curve's finite losses, with their least and greatest.
fn finite(curve: &[(u64, f64)]) -> (Vec<f64>, f64, f64) {
    let values: Vec<f64> = curve
        .iter()
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .collect();
    let (min, max) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    (values, min, max)
}

/// A training curve in words, as prompts show it.
pub fn curve_line(curve: &[(u64, f64)]) -> String {
    if curve.is_empty() {
        return "no curve".to_string();
    }
    let (_, min, _) = finite(curve);
    let (first, last) = (curve[0], curve[curve.len() - 1]);
    format!(
        "{} points, steps {}..{}: loss {:.4} -> {:.4} (min {:.4})",
        curve.len(),
        first.0,
        last.0,
        first.1,
        last.1,
        min
    )
}

/// A curve at a glance: [`curve_line`] and a sparkline.
pub fn curve_summary(curve: &[(u64, f64)]) -> String {
    if curve.is_empty() {
        return "no curve".to_string();
    }
    let (values, min, max) = finite(curve);
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let spark: String = values
        .iter()
        .map(|v| {
            let t = if max > min {
                (v - min) / (max - min)
            } else {
                0.0
            };
            BARS[((t * 7.0).round() as usize).min(7)]
        })
        .collect();
    format!("{}  {spark}", curve_line(curve))
}

/// Seconds as `4m 07s`.
pub fn minutes(s: f64) -> String {
    let s = s.round() as u64;
    format!("{}m {:02}s", s / 60, s % 60)
}

/// A unified diff of two candidates' code, headed by their ids and names.
pub fn unified_diff(a: &autoarch_archive::Candidate, b: &autoarch_archive::Candidate) -> String {
    similar::TextDiff::from_lines(&a.code, &b.code)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{} {}", a.id, a.name),
            &format!("{} {}", b.id, b.name),
        )
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
    }

    #[test]
    fn curve_summary_reads_at_a_glance() {
        let s = curve_summary(&[(0, 2.0), (10, 1.0), (20, 0.5)]);
        assert_eq!(
            s,
            "3 points, steps 0..20: loss 2.0000 -> 0.5000 (min 0.5000)  █▃▁"
        );
        assert_eq!(minutes(247.0), "4m 07s");
    }
}
