//! The benchmark's report as markdown (`report.md`); `results.json` is [`Results`] as JSON.

use std::fmt::Write;

use super::lineage::Change;
use super::verdict::{Verdict, Verdicts, Versus};
use super::{plots, stats, BEST_AT};
use super::{ArmScores, CampaignResult, DesignResult, Results, Scores, TaskResult};

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
    provenance(&mut out, r);
    settings(&mut out, r);
    let _ = writeln!(
        out,
        "Each arm ran {} campaign(s) per task with {} s of evaluation each. The final protocol trained every campaign's incumbent (its own top-1), every seed and a random-sampled population with the fresh seeds {:?}{}; scores are means over those seeds, and an arm's score is the mean of its campaigns' means.\n",
        r.campaigns_per_arm,
        r.max_compute_seconds,
        r.final_seeds,
        if r.long_factor > 0.0 {
            format!(", at the search's budget and at {}× it", r.long_factor)
        } else {
            String::new()
        }
    );
    method(&mut out, r.campaigns_per_arm);
    overall(&mut out, r);
    for t in &r.tasks {
        task(&mut out, t, r.long_factor > 0.0, r.max_compute_seconds);
    }
    out
}

/// How the statistics are made, and what the number of campaigns allows.
fn method(out: &mut String, campaigns: u32) {
    let n = u64::from(campaigns);
    let smallest = 1.0 / stats::binomial(2 * n, n) as f64;
    let reach = if smallest < stats::ALPHA {
        format!(
            "with {campaigns} campaigns per arm the smallest p it can give is {}",
            p_value(smallest)
        )
    } else {
        format!(
            "with {campaigns} campaign(s) per arm the smallest p it can give is {}, so no difference between arms can be shown (that takes at least {} per arm)",
            p_value(smallest),
            stats::MIN_CAMPAIGNS
        )
    };
    let _ = writeln!(
        out,
        "How to read it: intervals are hierarchical bootstrap 95% intervals of the mean (campaigns resampled, then each campaign's final seeds), so they carry both the spread between campaigns and the training noise. Each ordered pair of arms is tested once, \"A scores higher than B\", one-sided at α = {} by an exact permutation test on the campaigns' final means (random permutations past {} splits); testing both orders makes a pair's test two-sided at {}. An arm \"beats\" another only when p < {}; {reach}. Against the best seed, the same test compares the arm's campaign means with the seed's per-seed scores (the seed is one design: its spread is training noise alone). When a difference is not shown, the campaigns per arm it would need are a normal approximation (one-sided α = {}, 80% power, d = the difference over the pooled SD of the campaign means, at least {}). P(>) is the share of campaign pairs where the row's arm ends above the other's (ties half): a description, not a verdict. A task whose calibration fails gets no verdicts.\n",
        stats::ALPHA,
        stats::EXACT_LIMIT,
        2.0 * stats::ALPHA,
        stats::ALPHA,
        stats::ALPHA,
        stats::MIN_CAMPAIGNS
    );
}

/// The suite over its tasks: each task's final means, and each arm's mean on the tasks' own
/// scales with its tests.
fn overall(out: &mut String, r: &Results) {
    let o = &r.overall;
    if r.tasks.len() < 2 {
        return;
    }
    let _ = writeln!(out, "## The suite\n");
    let arms: Vec<&str> = o.arms.iter().map(|a| a.name.as_str()).collect();
    let _ = writeln!(
        out,
        "Final means at the search's budget. The suite's score puts each task's mean on the task's own scale (0 is chance, 1 the ceiling, as in the calibration) and averages over the tasks that take part; a suite run of an arm is its campaign k on every task, so the same permutation test compares arms on their {} suite runs.\n",
        o.arms.first().map_or(0, |a| a.runs.len())
    );
    let _ = writeln!(
        out,
        "| task | chance | ceiling | best seed | {} |",
        arms.join(" | ")
    );
    let _ = writeln!(out, "|{}", " --- |".repeat(4 + arms.len()));
    for t in &r.tasks {
        let best = t
            .seeds
            .iter()
            .find(|d| Some(&d.name) == t.best_seed.as_ref())
            .and_then(|d| d.short.as_ref())
            .map(|s| s.mean);
        let cells: Vec<String> = t
            .arms
            .iter()
            .map(|a| opt(a.short.as_ref().map(|s| s.mean), num))
            .collect();
        let (chance, ceiling) = t
            .calibration
            .as_ref()
            .map_or((None, t.ceiling), |c| (Some(c.chance), Some(c.ceiling)));
        let mark = if o.tasks.contains(&t.name) {
            ""
        } else {
            " (left out)"
        };
        let _ = writeln!(
            out,
            "| {}{mark} | {} | {} | {} | {} |",
            t.name,
            opt(chance, num),
            opt(ceiling, num),
            opt(best, num),
            cells.join(" | ")
        );
    }
    let scaled: Vec<String> = o
        .arms
        .iter()
        .map(|a| match (a.mean, a.interval) {
            (Some(m), Some((lo, hi))) => format!("{} [{}, {}]", num(m), num(lo), num(hi)),
            (m, _) => opt(m, num),
        })
        .collect();
    let best = o
        .best_seeds
        .as_ref()
        .filter(|b| !b.is_empty())
        .map(|b| stats::mean(b));
    let _ = writeln!(
        out,
        "| **suite** (0 = chance, 1 = ceiling) | 0 | 1 | {} | {} |\n",
        opt(best, num),
        scaled.join(" | ")
    );
    for (task, why) in &o.left_out {
        let _ = writeln!(out, "- {task} is left out of the suite's score: {why}.");
    }
    if !o.left_out.is_empty() {
        let _ = writeln!(out);
    }
    if !o.verdicts {
        let _ = writeln!(
            out,
            "No verdicts on the suite (this suite turns them off, or no task takes part).\n"
        );
        return;
    }
    let _ = writeln!(
        out,
        "What the tests show over the suite (exact one-sided permutation tests of the suite runs, α = {}; the best seeds' runs are their final seeds, averaged over the tasks seed by seed):\n",
        stats::ALPHA
    );
    for a in o.arms.iter().filter(|a| a.mean.is_some()) {
        let mut claims = vec![match &a.versus_best_seed {
            Some(v) => verdict(v, "the best seeds"),
            None => "no seeds to compare with".to_string(),
        }];
        claims.extend(a.versus.iter().map(|v| verdict(v, &v.other)));
        let _ = writeln!(out, "- **{}**: {}.", a.name, claims.join("; "));
    }
    let _ = writeln!(out);
}

fn p_value(p: f64) -> String {
    format!("{p:.3}")
}

/// Where, when and how the benchmark ran, and what it spent.
fn provenance(out: &mut String, r: &Results) {
    let _ = writeln!(out, "## How it ran\n");
    let sessions = &r.provenance.sessions;
    if sessions.is_empty() {
        let _ = writeln!(
            out,
            "- No `run.json`: where and how this benchmark ran was not recorded"
        );
    }
    for (i, s) in sessions.iter().enumerate() {
        let _ = writeln!(
            out,
            "- {}: `{}` at commit `{}` on {} ({} cores), started {}, ran {}",
            if sessions.len() > 1 {
                format!("Session {}", i + 1)
            } else {
                "Command".to_string()
            },
            s.command,
            s.commit,
            s.host,
            s.cores,
            s.started,
            duration(s.wall_seconds)
        );
    }
    if sessions.len() > 1 {
        let _ = writeln!(
            out,
            "- Wall time over {} sessions: {}",
            sessions.len(),
            duration(r.provenance.wall_seconds())
        );
    }
    let _ = writeln!(
        out,
        "- Compute: {:.0} evaluation-seconds of search and {:.0} of the final protocol ({} runs): {:.0} in all ({:.1} h)\n",
        r.search_seconds,
        r.final_cost.seconds,
        r.final_cost.runs,
        r.search_seconds + r.final_cost.seconds,
        (r.search_seconds + r.final_cost.seconds) / 3600.0
    );
}

fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// The search's settings and each arm's strategy.
fn settings(out: &mut String, r: &Results) {
    let s = &r.settings;
    let budget = match (s.steps, s.seconds) {
        (Some(n), Some(t)) => format!("{n} steps or {t} s, whichever ends first"),
        (Some(n), None) => format!("{n} steps"),
        (None, Some(t)) => format!("{t} s"),
        (None, None) => "the evaluator's default".into(),
    };
    let sweep = if s.learning_rates.is_empty() {
        "the final protocol trains every design at the search's rate".to_string()
    } else {
        format!(
            "the final protocol trains every design (seeds, incumbents, the random population and any held-out design) at each of {:?} and scores it at the rate with the fewest failed runs, then the best mean",
            s.learning_rates
        )
    };
    let _ = writeln!(
        out,
        "## Settings\n\n- Search: {} evaluation-seconds per campaign, {} campaign(s) per arm and task, {} worker(s); each candidate trains {budget} with batch {}\n- Learning rate: {} peak, {:.0}% warm-up then cosine decay; {sweep}\n- Size cap: {}× the largest seed's parameters\n\n| arm | strategy | proposer | parameters |\n| --- | --- | --- | --- |",
        r.max_compute_seconds,
        r.campaigns_per_arm,
        s.workers,
        s.batch_size,
        rate(s.learning_rate),
        100.0 * s.warmup_fraction,
        s.size_cap
    );
    for a in &s.arms {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            a.name, a.strategy, a.proposer, a.parameters
        );
    }
    let _ = writeln!(out);
}

fn task(out: &mut String, t: &TaskResult, long: bool, budget: f64) {
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
    rediscovery_line(out, t);
    noise_lines(out, t);
    let _ = writeln!(
        out,
        "- Final protocol: {} runs, {:.0} evaluation-seconds\n",
        t.final_cost.runs, t.final_cost.seconds
    );
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
    if !t.holdouts.is_empty() {
        let _ = writeln!(
            out,
            "\nHeld out of the campaigns (the rediscovery's reference):\n\n| design | params | best rate | score |{long_head} sweep |\n| --- | --- | --- | --- |{long_rule} --- |"
        );
        for d in &t.holdouts {
            design_row(out, d, long);
        }
    }
    campaigns(out, t, budget);
    incumbents(out, t, long_head, long_rule);
    let figures = plots::task_plots(t);
    if !figures.is_empty() {
        let _ = writeln!(out, "### Plots\n");
        for (file, _) in &figures {
            let _ = writeln!(out, "![{file}](plots/{file})\n");
        }
    }
}

/// Rediscovery: the held-out design's mark, and per arm the campaigns that reached it.
fn rediscovery_line(out: &mut String, t: &TaskResult) {
    let Some((d, mark)) = super::holdout_mark(&t.holdouts) else {
        if !t.holdouts.is_empty() {
            let _ = writeln!(out, "- Rediscovery: the held-out designs have no score yet");
        }
        return;
    };
    let arms: Vec<String> = t
        .arms
        .iter()
        .map(|a| {
            format!(
                "{} {} of {}",
                a.name,
                a.rediscovered.unwrap_or(0),
                a.campaigns.len()
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "- Rediscovery: the held-out **{}** scores {} at the search's budget; campaigns whose incumbent reaches it: {}",
        d.name,
        num(mark),
        arms.join(", ")
    );
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
            match s.versus.iter().find(|v| v.other == *o) {
                Some(v) => {
                    let (lo, hi) = v.prob_interval;
                    row.push_str(&format!(
                        " {:.2} [{:.2}, {:.2}] |",
                        v.prob_improvement, lo, hi
                    ));
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
    let n = &t.noise;
    if n.best_seed_sd.is_some() || n.incumbents_median_sd.is_some() {
        let _ = writeln!(
            out,
            "- Noise (SD over training seeds at the search's budget): the best seed's {}, the incumbents' median {}; the calibration and the proposers' 2σ use the larger, {} (2σ = {})",
            opt(n.best_seed_sd, num),
            opt(n.incumbents_median_sd, num),
            opt(t.noise_sd, num),
            opt(t.noise_sd, |sd| num(2.0 * sd))
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
    match &t.calibration {
        Some(c) => {
            let _ = writeln!(
                out,
                "- Calibration: the best seed lands {:.0}% of the way from chance ({}) to the ceiling{}; the seeds span {} noise SDs: {}",
                100.0 * c.position,
                num(c.chance),
                c.long_best
                    .filter(|x| x.is_finite())
                    .map_or(String::new(), |x| format!(
                        " and scores {} at the longer budget",
                        num(x)
                    )),
                opt(c.spread_sds, |x| format!("{x:.1}")),
                if c.accepted {
                    "accepted (30–70%, at least 3 SDs, below the ceiling at the longer budget)"
                } else {
                    "refused (it takes 30–70%, at least 3 SDs, and staying below the ceiling at the longer budget)"
                }
            );
        }
        None => {
            let _ = writeln!(
                out,
                "- Calibration: none (no chance level or ceiling is known for this task)"
            );
        }
    }
}

/// What the tests show at the search's budget: each arm against the best seed and the other
/// arms; nothing when the task's verdicts are off or its calibration failed.
fn verdicts(out: &mut String, t: &TaskResult) {
    let _ = writeln!(
        out,
        "What the tests show, at the search's budget (exact one-sided permutation tests of the campaigns' final means, α = {}):\n",
        stats::ALPHA
    );
    match &t.verdicts {
        Verdicts::Given => {}
        Verdicts::Off => {
            let _ = writeln!(
                out,
                "- No verdicts: this suite turns them off (a smoke test).\n"
            );
            return;
        }
        Verdicts::CalibrationFailed { why } => {
            let _ = writeln!(out, "- No verdicts: the calibration failed ({why}).\n");
            return;
        }
    }
    let mut any = false;
    for a in &t.arms {
        let Some(s) = &a.short else { continue };
        any = true;
        let mut claims = vec![match &s.versus_best_seed {
            Some(v) => verdict(v, "the best seed"),
            None => "no seed to compare with".to_string(),
        }];
        claims.extend(s.versus.iter().map(|v| verdict(v, &v.other)));
        let _ = writeln!(out, "- **{}**: {}.", a.name, claims.join("; "));
    }
    if !any {
        let _ = writeln!(out, "- No arm has a trained incumbent.");
    }
    let _ = writeln!(out);
}

/// One comparison in words: `beats random (p = 0.014)`, or why it is not shown.
fn verdict(v: &Versus, other: &str) -> String {
    match v.verdict() {
        Verdict::Higher { p } => format!("beats {other} (p = {})", p_value(p)),
        Verdict::Lower { p } => format!("loses to {other} (p = {})", p_value(p)),
        Verdict::NotShown {
            p,
            campaigns_needed,
        } => {
            let p = p.map_or("–".into(), p_value);
            let why = match campaigns_needed {
                Some(n) => format!(
                    "about {n} campaigns per arm would be needed for a difference this size"
                ),
                None if v.difference == 0.0 => "the means are equal".into(),
                None => "too few campaigns to size the difference against their spread".into(),
            };
            format!("against {other}, not shown (p = {p}; {why})")
        }
    }
}

/// Every campaign: its spend, its proposals, why it stopped and what its incumbent is.
fn campaigns(out: &mut String, t: &TaskResult, budget: f64) {
    let _ = writeln!(
        out,
        "\n### Campaigns\n\n| arm | campaign seed | evaluation-s | of budget | proposals | stopped | incumbent | change from its seed |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for a in &t.arms {
        for c in &a.campaigns {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0}% | {} | {} | {} | {} |",
                a.name,
                c.k,
                seconds(c.compute_seconds),
                100.0 * c.compute_seconds / budget,
                c.candidates,
                c.stopped.as_deref().unwrap_or("–"),
                incumbent_name(c),
                c.change.as_ref().map_or("–".into(), Change::describe)
            );
        }
    }
}

/// Seconds to the nearest one, or to a tenth below 100.
fn seconds(s: f64) -> String {
    if s < 100.0 {
        format!("{s:.1}")
    } else {
        format!("{s:.0}")
    }
}

fn incumbent_name(c: &CampaignResult) -> String {
    match (&c.incumbent, &c.change) {
        (Some((_, d)), Some(Change::Unchanged)) => format!("{} (the unmodified seed)", d.name),
        (Some((_, d)), _) => d.name.clone(),
        (None, _) => "none".into(),
    }
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

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::super::fixture;
    use super::super::Calibration;
    use super::*;

    /// The section of the report between two headings (or to its end).
    fn section<'a>(report: &'a str, from: &str, to: &str) -> &'a str {
        let start = report
            .find(from)
            .unwrap_or_else(|| panic!("{from}: {report}"));
        let rest = &report[start..];
        rest.find(to).map_or(rest, |end| &rest[..end])
    }

    fn separated_task(campaigns: usize) -> TaskResult {
        let arm = |base: f64| -> Vec<Vec<f64>> {
            (0..campaigns)
                .map(|k| {
                    let m = base + 0.01 * k as f64;
                    vec![m - 0.01, m, m + 0.01]
                })
                .collect()
        };
        fixture::task(
            &[("random", arm(0.30)), ("evolution", arm(0.90))],
            &[0.45, 0.47, 0.49],
            fixture::accepted(),
        )
    }

    #[test]
    fn the_report_states_how_it_ran_its_settings_and_its_method() {
        let report = render(&fixture::results(separated_task(4)));
        expect![[r#"
            # Benchmark `fixture`

            ## How it ran

            - Command: `autoarch benchmark --out out` at commit `abc1234` on bench-host (2 cores), started 2025-01-01T00:00:00Z, ran 1:02:05
            - Compute: 488 evaluation-seconds of search and 90 of the final protocol (30 runs): 578 in all (0.2 h)

            ## Settings

            - Search: 60 evaluation-seconds per campaign, 4 campaign(s) per arm and task, 2 worker(s); each candidate trains 120 steps with batch 32
            - Learning rate: 3e-3 peak, 5% warm-up then cosine decay; the final protocol trains every design at the search's rate
            - Size cap: 2× the largest seed's parameters

            | arm | strategy | proposer | parameters |
            | --- | --- | --- | --- |
            | random | random | mutation | a random seed with random edits; never looks at a score |
            | evolution | evolution | mutation | population P = 20, sample S = 5, promotion off |
            | autoarch | autoarch | mutation | 2 islands, parents 20% uniform / 30% MAP-Elites / the rest tournaments of 3, 2 inspirations, promote fraction 0.25 |

        "#]]
        .assert_eq(section(&report, "# Benchmark", "Each arm ran"));
        expect![[r#"
            - Noise (SD over training seeds at the search's budget): the best seed's 0.020, the incumbents' median 0.010; the calibration and the proposers' 2σ use the larger, 0.020 (2σ = 0.040)
            - Calibration: the best seed lands 45% of the way from chance (0.030) to the ceiling; the seeds span 20.0 noise SDs: accepted (30–70%, at least 3 SDs, below the ceiling at the longer budget)
            - Final protocol: 30 runs, 90 evaluation-seconds

            What the tests show, at the search's budget (exact one-sided permutation tests of the campaigns' final means, α = 0.05):

            - **random**: loses to the best seed (p = 0.029); loses to evolution (p = 0.014).
            - **evolution**: beats the best seed (p = 0.029); beats random (p = 0.014).

        "#]]
        .assert_eq(section(&report, "- Noise", "Final scores at"));
        expect![[r#"
            ### Campaigns

            | arm | campaign seed | evaluation-s | of budget | proposals | stopped | incumbent | change from its seed |
            | --- | --- | --- | --- | --- | --- | --- | --- |
            | random | 0 | 61.0 | 102% | 12 | stopped: compute budget of 60 s spent | Transformer (the unmodified seed) | the seed unchanged |
            | random | 1 | 61.0 | 102% | 12 | stopped: compute budget of 60 s spent | Transformer · heads | re-tuned (heads) |
            | random | 2 | 61.0 | 102% | 12 | stopped: compute budget of 60 s spent | Transformer · heads | re-tuned (heads) |
            | random | 3 | 61.0 | 102% | 12 | stopped: compute budget of 60 s spent | Transformer · heads | re-tuned (heads) |
            | evolution | 0 | 61.0 | 102% | 12 | stopped: compute budget of 60 s spent | Transformer (the unmodified seed) | the seed unchanged |
            | evolution | 1 | 61.0 | 102% | 12 | stopped: compute budget of 60 s spent | Transformer · heads | re-tuned (heads) |
            | evolution | 2 | 61.0 | 102% | 12 | stopped: compute budget of 60 s spent | Transformer · heads | re-tuned (heads) |
            | evolution | 3 | 61.0 | 102% | 12 | stopped: compute budget of 60 s spent | Transformer · heads | re-tuned (heads) |

        "#]]
        .assert_eq(section(&report, "### Campaigns", "### Incumbents"));
    }

    #[test]
    fn three_campaigns_per_arm_never_print_beats_whatever_the_data() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for round in 0..200 {
            // Anything from identical arms to arms far apart, with or without seed noise.
            let gap: f64 = rng.random_range(0.0..1.0);
            let noise: f64 = if round % 2 == 0 { 0.0 } else { 0.05 };
            let mut arm = |base: f64| -> Vec<Vec<f64>> {
                (0..3)
                    .map(|_| {
                        let m = base + rng.random_range(0.0..0.02);
                        vec![m - noise, m, m + noise]
                    })
                    .collect()
            };
            let (a, b) = (arm(0.0), arm(gap));
            let t = fixture::task(
                &[("random", a), ("evolution", b)],
                &[0.5, 0.5],
                fixture::accepted(),
            );
            let report = render(&fixture::results(t));
            let verdicts = section(&report, "What the tests show", "Final scores at");
            for claim in [
                "beats random",
                "beats evolution",
                "loses to random",
                "loses to evolution",
            ] {
                assert!(!verdicts.contains(claim), "round {round}: {verdicts}");
            }
            assert!(verdicts.contains("not shown (p = "), "{verdicts}");
        }
        // Three campaigns per arm, fully separated: p = 1/20, not below 0.05.
        let report = render(&fixture::results(separated_task(3)));
        expect![[r#"
            What the tests show, at the search's budget (exact one-sided permutation tests of the campaigns' final means, α = 0.05):

            - **random**: against the best seed, not shown (p = 0.050; about 4 campaigns per arm would be needed for a difference this size); against evolution, not shown (p = 0.050; about 4 campaigns per arm would be needed for a difference this size).
            - **evolution**: against the best seed, not shown (p = 0.050; about 4 campaigns per arm would be needed for a difference this size); against random, not shown (p = 0.050; about 4 campaigns per arm would be needed for a difference this size).

        "#]]
        .assert_eq(section(&report, "What the tests show", "Final scores at"));
        // Four campaigns per arm, fully separated, can.
        let report = render(&fixture::results(separated_task(4)));
        assert!(report.contains("beats random (p = 0.014)"), "{report}");
    }

    #[test]
    fn a_failed_calibration_or_a_smoke_test_prints_no_verdicts() {
        let mut t = separated_task(4);
        let refused = Calibration {
            chance: 0.03,
            ceiling: 1.0,
            long_best: None,
            position: 0.01,
            spread_sds: Some(0.5),
            accepted: false,
        };
        t.verdicts = Verdicts::of(true, Some(&refused));
        t.calibration = Some(refused);
        let report = render(&fixture::results(t.clone()));
        expect![[r#"
            What the tests show, at the search's budget (exact one-sided permutation tests of the campaigns' final means, α = 0.05):

            - No verdicts: the calibration failed (the best seed lands 1% of the way from chance to the ceiling, outside 30–70%; the seeds span 0.5 noise SDs, fewer than 3).

        "#]]
        .assert_eq(section(&report, "What the tests show", "Final scores at"));
        t.verdicts = Verdicts::of(false, None);
        let report = render(&fixture::results(t));
        expect![[r#"
            What the tests show, at the search's budget (exact one-sided permutation tests of the campaigns' final means, α = 0.05):

            - No verdicts: this suite turns them off (a smoke test).

        "#]]
        .assert_eq(section(&report, "What the tests show", "Final scores at"));
    }

    #[test]
    fn the_suite_section_scores_arms_over_the_tasks_that_take_part() {
        let mut two = separated_task(4);
        two.name = "two".into();
        let mut refused = separated_task(4);
        refused.name = "refused".into();
        refused.verdicts = Verdicts::CalibrationFailed {
            why: "too easy".into(),
        };
        let report = render(&fixture::results_of(vec![separated_task(4), two, refused]));
        expect![[r#"
            ## The suite

            Final means at the search's budget. The suite's score puts each task's mean on the task's own scale (0 is chance, 1 the ceiling, as in the calibration) and averages over the tasks that take part; a suite run of an arm is its campaign k on every task, so the same permutation test compares arms on their 4 suite runs.

            | task | chance | ceiling | best seed | random | evolution |
            | --- | --- | --- | --- | --- | --- |
            | t | 0.030 | 1.000 | 0.470 | 0.315 | 0.915 |
            | two | 0.030 | 1.000 | 0.470 | 0.315 | 0.915 |
            | refused (left out) | 0.030 | 1.000 | 0.470 | 0.315 | 0.915 |
            | **suite** (0 = chance, 1 = ceiling) | 0 | 1 | 0.454 | 0.294 [0.284, 0.304] | 0.912 [0.902, 0.923] |

            - refused is left out of the suite's score: its calibration failed.

            What the tests show over the suite (exact one-sided permutation tests of the suite runs, α = 0.05; the best seeds' runs are their final seeds, averaged over the tasks seed by seed):

            - **random**: loses to the best seeds (p = 0.029); loses to evolution (p = 0.014).
            - **evolution**: beats the best seeds (p = 0.029); beats random (p = 0.014).

        "#]]
        .assert_eq(section(&report, "## The suite", "## t "));
        // One task: no suite section (it would repeat the task).
        let report = render(&fixture::results(separated_task(4)));
        assert!(!report.contains("## The suite"), "{report}");
    }

    #[test]
    fn an_arms_interval_widens_with_its_seed_spread() {
        let width = |noise: f64| {
            let campaigns: Vec<Vec<f64>> = [0.4, 0.5, 0.6]
                .iter()
                .map(|m| vec![m - noise, *m, m + noise])
                .collect();
            let t = fixture::task(&[("evolution", campaigns)], &[0.5], fixture::accepted());
            let (lo, hi) = t.arms[0].short.as_ref().unwrap().mean_interval;
            hi - lo
        };
        assert!(width(0.0) < width(0.1) && width(0.1) < width(0.2));
    }
}
