//! The benchmark's report as markdown (`report.md`); `results.json` is [`Results`] as JSON.

use std::fmt::Write;

use super::{plots, BEST_AT};
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
    noise_lines(out, t);
    let _ = writeln!(out);
    verdicts(out, t);
    arm_table(out, t, "the search's budget", |a| a.short.as_ref());
    if long {
        arm_table(out, t, "the longer budget", |a| a.long.as_ref());
    }
    proposers(out, t);
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
        "\n### Seeds\n\nEach seed's score is at its best learning rate of the sweep (the search's rate without one); its SD over training seeds is the noise.\n\n| seed | params | best rate | score |{long_head} sweep |\n| --- | --- | --- | --- |{long_rule} --- |"
    );
    for d in &t.seeds {
        design_row(out, d, long);
    }
    incumbents(out, t, long_head, long_rule);
    let figures = plots::task_plots(t);
    if !figures.is_empty() {
        let _ = writeln!(out, "### Plots\n");
        for (file, _) in &figures {
            let _ = writeln!(out, "![{file}](plots/{file})\n");
        }
    }
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
                    format!("{} at {}", scores(d.short.as_ref()), rate(d.learning_rate)),
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
        "| {} | {} | {} | {} |{long} {} |",
        d.name,
        d.params,
        rate(d.learning_rate),
        scores(d.short.as_ref()),
        sweep(d)
    );
}

fn rate(lr: f64) -> String {
    format!("{lr:e}")
}

/// `1e-3: 0.31 · 3e-3: 0.36 · 1e-2: 0.12`
fn sweep(d: &DesignResult) -> String {
    if d.sweep.is_empty() {
        return "–".into();
    }
    d.sweep
        .iter()
        .map(|(lr, s)| {
            let m = s
                .as_ref()
                .filter(|s| s.n > 0)
                .map_or("–".into(), |s| num(s.mean));
            format!("{}: {m}", rate(*lr))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The task's noise, whether the short budget ranks like the long one, and the calibration.
fn noise_lines(out: &mut String, t: &TaskResult) {
    if let Some(sd) = t.noise_sd {
        let _ = writeln!(
            out,
            "- Noise: the median seed's SD over training seeds is {} (2σ = {})",
            num(sd),
            num(2.0 * sd)
        );
    }
    match t.kendall_tau {
        Some((tau, n)) => {
            let _ = writeln!(
                out,
                "- Short budget as a proxy: Kendall's τ between the random population's short- and long-budget scores is {tau:.2} over {n} designs"
            );
        }
        None if !t.random.is_empty() => {
            let _ = writeln!(
                out,
                "- Short budget as a proxy: no Kendall's τ (no long budget, or too few designs scored at both)"
            );
        }
        None => {}
    }
    if let Some(c) = &t.calibration {
        let _ = writeln!(
            out,
            "- Calibration: the best seed lands {:.0}% of the way from chance ({}) to the ceiling; the seeds span {} noise SDs: {}",
            100.0 * c.position,
            num(c.chance),
            opt(c.spread_sds, |x| format!("{x:.1}")),
            if c.accepted {
                "accepted (30–70% and at least 3 SDs)"
            } else {
                "outside the accepted band (30–70% and at least 3 SDs): read the arms with care"
            }
        );
    }
}

/// What the intervals support, in words: an arm beats another only when the interval of
/// P(>) lies above ½, and the best seed only when the interval of the arm's mean lies above it.
fn verdicts(out: &mut String, t: &TaskResult) {
    let _ = writeln!(out, "What the intervals support, at the search's budget:\n");
    let best = t
        .seeds
        .iter()
        .find(|d| Some(&d.name) == t.best_seed.as_ref())
        .and_then(|d| d.short.as_ref())
        .map(|s| s.mean);
    let mut any = false;
    for a in &t.arms {
        let Some(s) = &a.short else { continue };
        any = true;
        let (lo, hi) = s.mean_interval;
        let seed = match best {
            Some(b) if lo > b => format!("beats the best seed ({} > {})", num(s.mean), num(b)),
            Some(b) if hi < b => format!(
                "falls short of the best seed ({} < {})",
                num(s.mean),
                num(b)
            ),
            Some(_) => "no significant difference from the best seed".to_string(),
            None => "no seed to compare with".to_string(),
        };
        let mut others = Vec::new();
        for (o, _, (plo, phi)) in &s.versus {
            others.push(if *plo > 0.5 {
                format!("beats {o}")
            } else if *phi < 0.5 {
                format!("loses to {o}")
            } else {
                format!("no significant difference from {o}")
            });
        }
        let others = if others.is_empty() {
            String::new()
        } else {
            format!("; {}", others.join(", "))
        };
        let _ = writeln!(out, "- **{}** {seed}{others}.", a.name);
    }
    if !any {
        let _ = writeln!(out, "- No arm has a trained incumbent.");
    }
    let _ = writeln!(out);
}

/// The proposers' record per arm.
fn proposers(out: &mut String, t: &TaskResult) {
    let mut head =
        "| arm | proposer | proposals | traced | duplicates | better than parent by 2σ |"
            .to_string();
    let mut rule = "| --- | --- | --- | --- | --- | --- |".to_string();
    for n in BEST_AT {
        head.push_str(&format!(" best at {n} |"));
        rule.push_str(" --- |");
    }
    head.push_str(" tokens | tokens per improvement | $ per improvement |");
    rule.push_str(" --- | --- | --- |");
    let _ = writeln!(out, "Proposers (search scores at the short budget; best at N: the median over campaigns that made N proposals):\n\n{head}\n{rule}");
    for a in &t.arms {
        let mut row = format!(
            "| {} | {} | {} | {:.0}% | {:.0}% | {} |",
            a.name,
            a.proposer,
            a.candidates,
            100.0 * a.traced_share,
            100.0 * a.duplicate_share,
            opt(a.improved_share, |x| format!(
                "{:.1}% ({})",
                100.0 * x,
                a.improved
            )),
        );
        for (_, b) in &a.best_at {
            row.push_str(&format!(" {} |", opt(*b, num)));
        }
        let per = |x: f64| {
            if a.improved == 0 || x == 0.0 {
                "–".to_string()
            } else {
                format!("{:.0}", x / a.improved as f64)
            }
        };
        let dollars = if a.improved == 0 || a.cost_usd == 0.0 {
            "–".to_string()
        } else {
            format!("{:.4}", a.cost_usd / a.improved as f64)
        };
        row.push_str(&format!(
            " {} | {} | {dollars} |",
            a.tokens,
            per(a.tokens as f64)
        ));
        let _ = writeln!(out, "{row}");
    }
    let _ = writeln!(out);
}
