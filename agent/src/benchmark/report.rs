//! The benchmark's report as markdown (`report.md`); `results.json` is [`Results`] as JSON.

use std::fmt::Write;

use super::{ArmScores, DesignResult, Results, Scores, TaskResult};

fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "–".into()
    }
}

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.filter(|v| v.is_finite()).map_or("–".into(), f)
}

fn scores(s: Option<&Scores>) -> String {
    match s {
        Some(s) if s.n > 0 => {
            let failed = if s.failed > 0 {
                format!(" ({} failed)", s.failed)
            } else {
                String::new()
            };
            format!("{} ± {} (n = {}){failed}", num(s.mean), num(s.sd), s.n)
        }
        Some(s) => format!("failed ({} runs)", s.failed),
        None => "not run".into(),
    }
}

/// The markdown report.
pub fn render(r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmark `{}`\n", r.suite);
    let _ = writeln!(
        out,
        "Each arm ran {} campaign(s) per task with {} s of evaluation each. The final protocol trained every campaign's incumbent (its own top-1), every seed and a random-sampled population with the fresh seeds {:?}{}; scores are means over those seeds. Intervals are bootstrap 95% intervals over campaigns; P(>) is the probability that a campaign of the row's arm ends above one of the other arm's, ties counting half.\n",
        r.campaigns_per_arm,
        r.max_compute_seconds,
        r.final_seeds,
        if r.long_factor > 0.0 {
            format!(", at the search's budget and at {}× it", r.long_factor)
        } else {
            String::new()
        }
    );
    for t in &r.tasks {
        task(&mut out, t, r.long_factor > 0.0);
    }
    out
}

fn task(out: &mut String, t: &TaskResult, long: bool) {
    let _ = writeln!(out, "## {} ({})\n", t.name, t.settings);
    let best = t.best_seed.as_deref().unwrap_or("none trained");
    let best_scores = t
        .seeds
        .iter()
        .find(|d| Some(&d.name) == t.best_seed.as_ref())
        .and_then(|d| d.short.as_ref());
    let _ = writeln!(
        out,
        "- Best seed (the human baseline): **{best}**, {}",
        scores(best_scores)
    );
    let failed = t
        .random
        .iter()
        .filter(|d| d.short.as_ref().is_some_and(|s| s.n == 0))
        .count();
    let _ = writeln!(
        out,
        "- Random-sampled population (Acc_random): {} over {} designs{}",
        opt(t.random_mean, num),
        t.random.len(),
        if failed > 0 {
            format!(" ({failed} failed every run)")
        } else {
            String::new()
        }
    );
    if let Some(g) = t.goal {
        let _ = writeln!(
            out,
            "- Goal: {g} (a campaign whose incumbent reaches it solves the task)"
        );
    }
    let _ = writeln!(out);
    arm_table(out, t, "the search's budget", |a| a.short.as_ref());
    if long {
        arm_table(out, t, "the longer budget", |a| a.long.as_ref());
    }
    let _ = writeln!(
        out,
        "| arm | evaluation-s | candidates | failed | duplicates |\n| --- | --- | --- | --- | --- |"
    );
    for a in &t.arms {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {:.0}% | {:.0}% |",
            a.name,
            a.compute_seconds,
            a.candidates,
            100.0 * a.failed_share,
            100.0 * a.duplicate_share
        );
    }
    let (long_head, long_rule) = if long {
        (" longer budget |", " --- |")
    } else {
        ("", "")
    };
    let _ = writeln!(
        out,
        "\n### Seeds\n\n| seed | params | score |{long_head}\n| --- | --- | --- |{long_rule}"
    );
    for d in &t.seeds {
        design_row(out, d, long);
    }
    incumbents(out, t, long_head, long_rule);
}

/// Every campaign's incumbent with its scores and the command that shows it.
fn incumbents(out: &mut String, t: &TaskResult, long_head: &str, long_rule: &str) {
    let _ = writeln!(out, "\n### Incumbents\n\n| arm | campaign | incumbent | params | search score | final score |{long_head} review |\n| --- | --- | --- | --- | --- | --- |{long_rule} --- |");
    for a in &t.arms {
        for c in &a.campaigns {
            let (name, params, short, long_scores, show) = match &c.incumbent {
                Some((id, d)) => (
                    d.name.clone(),
                    d.params.to_string(),
                    scores(d.short.as_ref()),
                    scores(d.long.as_ref()),
                    format!("`autoarch --archive {} show {id}`", c.archive.display()),
                ),
                None => (
                    "none".into(),
                    "–".into(),
                    "–".into(),
                    "–".into(),
                    "–".into(),
                ),
            };
            let long = if long_head.is_empty() {
                String::new()
            } else {
                format!(" {long_scores} |")
            };
            let _ = writeln!(
                out,
                "| {} | {} | {name} | {params} | {} | {short} |{long} {show} |",
                a.name,
                c.k,
                opt(c.search_score, num)
            );
        }
    }
    let _ = writeln!(out);
}

fn arm_table(
    out: &mut String,
    t: &TaskResult,
    budget: &str,
    pick: impl Fn(&super::ArmResult) -> Option<&ArmScores>,
) {
    let others: Vec<&str> = t.arms.iter().map(|a| a.name.as_str()).collect();
    let _ = writeln!(out, "Final scores at {budget}:\n");
    let mut head = "| arm | median | mean [95% CI] | RI % | Δ best seed | gap closed |".to_string();
    let mut rule = "| --- | --- | --- | --- | --- | --- |".to_string();
    for o in &others {
        head.push_str(&format!(" P(> {o}) |"));
        rule.push_str(" --- |");
    }
    if t.goal.is_some() {
        head.push_str(" solved |");
        rule.push_str(" --- |");
    }
    let _ = writeln!(out, "{head}\n{rule}");
    for a in &t.arms {
        let Some(s) = pick(a) else {
            let _ = writeln!(out, "| {} | no incumbent trained |", a.name);
            continue;
        };
        let mut row = format!(
            "| {} | {} | {} [{}, {}] | {} | {} | {} |",
            a.name,
            num(s.median),
            num(s.mean),
            num(s.mean_interval.0),
            num(s.mean_interval.1),
            opt(s.ri, |x| format!("{x:+.1}")),
            opt(s.delta_best_seed, |x| format!("{x:+.3}")),
            opt(s.gap_closed, |x| format!("{:.0}%", 100.0 * x)),
        );
        for o in &others {
            match s.versus.iter().find(|(n, _, _)| n == o) {
                Some((_, p, (lo, hi))) => {
                    row.push_str(&format!(" {:.2} [{:.2}, {:.2}] |", p, lo, hi));
                }
                None => row.push_str(" – |"),
            }
        }
        if let Some(solved) = s.solved {
            row.push_str(&format!(" {solved} of {} |", s.campaigns));
        }
        let _ = writeln!(out, "{row}");
    }
    let _ = writeln!(out);
}

fn design_row(out: &mut String, d: &DesignResult, long: bool) {
    let long = if long {
        format!(" {} |", scores(d.long.as_ref()))
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "| {} | {} | {} |{long}",
        d.name,
        d.params,
        scores(d.short.as_ref())
    );
}
