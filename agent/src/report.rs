//! `autoarch report`: a markdown summary of a campaign — the best candidates with metrics and
//! code, the best versus the best seed, and versus the campaign's random-sampled population
//! (relative improvement as in Yang et al., "NAS evaluation is frustratingly hard", ICLR 2020).

use std::collections::BTreeMap;
use std::fmt::Write;

use autoarch_archive::{Archive, Campaign, Listed, ProposerKind, Status};

use crate::campaign::ranking::{is_random, ranking};
use crate::campaign::{Result, State};
use crate::text::grouped;

/// The mean and the sample SD (n − 1), as every spread autoarch shows.
fn mean_sd(v: &[f64]) -> (f64, f64) {
    (
        autoarch_archive::stats::mean(v),
        autoarch_archive::stats::sd(v),
    )
}

/// The short-budget (fidelity 0) score of a candidate, if it has one: its summary's.
fn short_score(archive: &Archive, id: u64) -> Option<f64> {
    archive.summary(id).ok()?.short_score
}

fn is_proposal(l: &Listed) -> bool {
    matches!(
        l.candidate.proposer,
        ProposerKind::Mutation | ProposerKind::Llm
    )
}

/// The whole report.
pub fn render(archive: &Archive) -> Result<String> {
    let listed = archive.list()?;
    let campaign = archive.campaigns()?.into_iter().next();
    let dir = "the archive";
    let state = match &campaign {
        Some(c) => State::decode(c, dir)?,
        None => State::default(),
    };
    let own: Vec<&Listed> = listed.iter().filter(|l| !is_random(l)).collect();
    let mut out = header(campaign.as_ref(), &state, &listed);
    out.push_str(&counts(&own));
    out.push_str(&llm_section(archive, &own)?);
    let ok = ranking(&listed);
    out.push_str("\n## Best candidates\n\n");
    if ok.is_empty() {
        out.push_str("No candidate has been evaluated successfully yet.\n");
        return Ok(out);
    }
    out.push_str(&best_table(&ok));
    out.push_str(&baselines(archive, ok[0], &own, &listed));
    out.push_str(&best_in_full(archive, ok[0])?);
    Ok(out)
}

/// The title, the campaign's settings and its time.
fn header(campaign: Option<&Campaign>, state: &State, listed: &[Listed]) -> String {
    let mut out = String::new();
    let name = campaign.map_or("(no campaign record)".to_string(), |c| c.name.clone());
    let task = listed
        .first()
        .map(|l| l.candidate.task.clone())
        .unwrap_or_default();
    let _ = writeln!(out, "# Campaign `{name}` on `{task}`\n");
    let Some(c) = campaign else {
        return out;
    };
    let get = |path: &[&str]| {
        let mut v = &c.config;
        for p in path {
            v = v.get(p)?;
        }
        Some(v.to_string())
    };
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let _ = writeln!(out, "- task options: {}", or_dash(get(&["task"])));
    let strategy = get(&["search", "strategy"]).unwrap_or_else(|| "\"autoarch\"".into());
    let strategy = strategy.trim_matches('"');
    let fraction = get(&["evaluation", "promote_fraction"])
        .and_then(|f| f.parse::<f64>().ok())
        .unwrap_or(0.0);
    let promotes = fraction > 0.0
        && match strategy {
            "random" => false,
            "evolution" => get(&["search", "evolution", "promote"]).as_deref() == Some("true"),
            _ => true,
        };
    let promotion = if promotes {
        format!(
            "the best {:.0}% promoted to {} runs at {}× the budget",
            100.0 * fraction,
            get(&["evaluation", "promote_seeds"])
                .and_then(|s| s.parse::<u64>().ok())
                .map_or("-".into(), |s| (s + 1).to_string()),
            or_dash(get(&["evaluation", "promote_factor"])),
        )
    } else {
        "no promotion".to_string()
    };
    let _ = writeln!(
        out,
        "- search: {strategy}; proposer: {}; short budget: {} steps / {} s; {promotion}",
        get(&["proposer", "kind"])
            .unwrap_or_default()
            .trim_matches('"'),
        or_dash(get(&["evaluation", "steps"])),
        or_dash(get(&["evaluation", "seconds"])),
    );
    let m = (state.elapsed_seconds / 60.0).floor();
    let _ = writeln!(
        out,
        "- wall time: {m:.0} min {:.0} s in all; worker utilisation {:.0}%; last run {}",
        state.elapsed_seconds - 60.0 * m,
        100.0 * state.utilisation(),
        state.stopped.as_deref().unwrap_or("-")
    );
    out
}

/// Candidates by status and failure outcome; the share of proposals that traced.
fn counts(own: &[&Listed]) -> String {
    let mut out = String::new();
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_outcome: BTreeMap<&str, usize> = BTreeMap::new();
    for l in own {
        *by_status.entry(l.summary.status.as_str()).or_default() += 1;
        if let (Status::Failed, Some(o)) = (l.summary.status, l.summary.last_outcome) {
            *by_outcome.entry(o.as_str()).or_default() += 1;
        }
    }
    let listing = |m: &BTreeMap<&str, usize>| {
        m.iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let seeds = own
        .iter()
        .filter(|l| l.candidate.proposer == ProposerKind::Seed)
        .count();
    let proposed: Vec<&&Listed> = own.iter().filter(|l| is_proposal(l)).collect();
    let traced = proposed.iter().filter(|l| l.candidate.traced()).count();
    let _ = writeln!(
        out,
        "- candidates: {} ({seeds} seeds, {} proposed, {} other); status: {}",
        own.len(),
        proposed.len(),
        own.len() - seeds - proposed.len(),
        listing(&by_status)
    );
    if !proposed.is_empty() {
        let _ = writeln!(
            out,
            "- proposals that traced: {traced}/{} ({:.0}%)",
            proposed.len(),
            100.0 * traced as f64 / proposed.len() as f64
        );
    }
    if !by_outcome.is_empty() {
        let _ = writeln!(out, "- failures: {}", listing(&by_outcome));
    }
    out
}

/// The ten best with their metrics.
fn best_table(ok: &[&Listed]) -> String {
    let mut out = String::new();
    let metric_names: Vec<String> = ok[0]
        .summary
        .metrics
        .keys()
        .filter(|k| *k != "score")
        .cloned()
        .collect();
    out.push_str(
        "Promoted (longer, multi-seed) results first, then by score; ties go to the lower validation loss, then fewer parameters. ± is the sample SD over seeds (n − 1).\n\n",
    );
    let _ = write!(
        out,
        "| # | id | name | score | runs | {} | params | FLOPs | proposer |\n|---|---|---|---|---|",
        metric_names.join(" | ")
    );
    out.push_str(&"---|".repeat(metric_names.len()));
    out.push_str("---|---|---|\n");
    for (rank, l) in ok.iter().take(10).enumerate() {
        let s = &l.summary;
        let runs = if s.fidelity.is_promoted() {
            format!("promoted ({} evals)", s.evaluations)
        } else {
            "short".to_string()
        };
        let _ = write!(
            out,
            "| {} | {} | {} | {:.4} ± {:.4} | {runs} |",
            rank + 1,
            l.candidate.id,
            l.candidate.name.replace('|', "/"),
            s.score().unwrap_or(f64::NAN),
            s.spread.get("score").copied().unwrap_or(0.0)
        );
        for m in &metric_names {
            let _ = write!(
                out,
                " {:.4} |",
                s.metrics.get(m).copied().unwrap_or(f64::NAN)
            );
        }
        let _ = writeln!(
            out,
            " {} | {} | {} |",
            grouped(l.candidate.stats.params),
            grouped(l.candidate.stats.flops),
            l.candidate.proposer.as_str()
        );
    }
    out
}

/// The best versus the best seed, the best proposal, the population and random sampling, all
/// on the short budget every candidate gets.
fn baselines(archive: &Archive, best: &Listed, own: &[&Listed], listed: &[Listed]) -> String {
    let mut out = String::from("\n## Best versus baselines\n\n");
    out.push_str("Compared on the short budget every candidate gets (fidelity 0, seed 0), so the numbers are like for like.\n\n");
    let scored = |filter: &dyn Fn(&Listed) -> bool| {
        own.iter()
            .filter(|l| filter(l))
            .filter_map(|l| short_score(archive, l.candidate.id).map(|s| (*l, s)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    };
    let best_short = short_score(archive, best.candidate.id);
    let seed_best = scored(&|l| l.candidate.proposer == ProposerKind::Seed);
    if let Some(b) = best_short {
        let c = &best.candidate;
        let _ = writeln!(
            out,
            "- best: #{} {} — short-budget score {b:.4}",
            c.id, c.name
        );
        if let Some((l, s)) = seed_best {
            let verdict = match b.total_cmp(&s) {
                std::cmp::Ordering::Greater => "better",
                std::cmp::Ordering::Less => "worse",
                std::cmp::Ordering::Equal => "the same",
            };
            let _ = writeln!(
                out,
                "- best seed: #{} {} — {s:.4}; the best is {:+.4} ({verdict})",
                l.candidate.id,
                l.candidate.name,
                b - s
            );
        }
    }
    if let (Some((l, s)), Some((_, seed))) = (scored(&is_proposal), seed_best) {
        let _ = writeln!(
            out,
            "- best proposal (not a seed): #{} {} — {s:.4}; {:+.4} against the best seed",
            l.candidate.id,
            l.candidate.name,
            s - seed
        );
    }
    let population: Vec<f64> = own
        .iter()
        .filter_map(|l| short_score(archive, l.candidate.id))
        .collect();
    if !population.is_empty() {
        let (m, sd) = mean_sd(&population);
        let _ = writeln!(
            out,
            "- campaign population: mean {m:.4} ± {sd:.4} over {} candidates",
            population.len()
        );
    }
    let random: Vec<f64> = listed
        .iter()
        .filter(|l| is_random(l))
        .filter_map(|l| short_score(archive, l.candidate.id))
        .collect();
    out.push_str(&random_sampling(&random, best_short));
    out
}

/// The random-sampled population and the relative improvement over it.
fn random_sampling(random: &[f64], best_short: Option<f64>) -> String {
    if random.is_empty() {
        return "- random sampling: no random-sampled population in this archive; `autoarch report --random-baseline 8` evaluates 8\n".into();
    }
    let mut out = String::new();
    let (m, sd) = mean_sd(random);
    let _ = writeln!(
        out,
        "- random sampling (same proposer's space, no selection): mean {m:.4} ± {sd:.4} over {} candidates",
        random.len()
    );
    match best_short {
        Some(b) if m > 0.0 => {
            let _ = writeln!(
                out,
                "- relative improvement over random sampling, RI = 100·(best − random mean)/random mean = **{:.1}%**",
                100.0 * (b - m) / m
            );
        }
        Some(b) => {
            let _ = writeln!(out, "- best minus random mean: **{:+.4}**", b - m);
        }
        None => {}
    }
    out
}

/// The best candidate: motivation, ancestors, code.
fn best_in_full(archive: &Archive, best: &Listed) -> Result<String> {
    let c = &best.candidate;
    let mut out = format!(
        "\n## Best candidate: #{} {}\n\n{}\n\n",
        c.id, c.name, c.motivation
    );
    let lineage: Vec<String> = archive
        .ancestors(c.id)?
        .into_iter()
        .filter_map(|(id, _)| archive.candidate(id).ok().flatten())
        .map(|a| format!("#{} {}", a.id, a.name))
        .collect();
    if !lineage.is_empty() {
        let _ = writeln!(out, "Ancestors: {}\n", lineage.join(" ← "));
    }
    let _ = writeln!(out, "```python\n{}\n```", c.code.trim_end());
    let _ = writeln!(
        out,
        "\nMore: `autoarch show {}`, `autoarch lineage {}`, `autoarch top`.",
        c.id, c.id
    );
    Ok(out)
}

#[derive(Default)]
struct ModelUse {
    proposals: usize,
    first_time: usize,
    repaired: usize,
    ok: usize,
    /// Short-budget score minus the first parent's, for evaluated proposals.
    gains: Vec<f64>,
    calls: usize,
    analyses: usize,
    prompt: u64,
    completion: u64,
    dollars: f64,
}

impl ModelUse {
    fn add_call(&mut self, call: &autoarch_archive::LlmCall) {
        self.calls += 1;
        self.prompt += call.tokens.prompt;
        self.completion += call.tokens.completion;
        self.dollars += call.cost_usd;
    }

    fn share(&self, n: usize) -> String {
        if self.proposals > 0 {
            format!("{n} ({:.0}%)", 100.0 * n as f64 / self.proposals as f64)
        } else {
            "-".into()
        }
    }

    fn gain(&self) -> String {
        if self.gains.is_empty() {
            return "-".into();
        }
        let (mean, _) = mean_sd(&self.gains);
        format!("{mean:+.4} (n={})", self.gains.len())
    }
}

/// Per model and answer kind (`code`, `edits`; `analysis` for analyze calls): proposals, trace
/// and success rates, the mean score gain over the parent, tokens and cost; then the stored
/// insights.
fn llm_section(archive: &Archive, own: &[&Listed]) -> Result<String> {
    let mut models: BTreeMap<(String, String), ModelUse> = BTreeMap::new();
    for l in own.iter().filter(|l| !l.candidate.calls.is_empty()) {
        let c = &l.candidate;
        let answer = c.calls[0].answer_kind().as_str().to_string();
        let m = models
            .entry((c.model.clone().unwrap_or_default(), answer.clone()))
            .or_default();
        m.proposals += 1;
        let traced = c.traced();
        if traced && c.calls.len() == 1 {
            m.first_time += 1;
        } else if traced {
            m.repaired += 1;
        }
        if l.summary.status == Status::Ok {
            m.ok += 1;
            let parent = c.parents.first().and_then(|p| short_score(archive, *p));
            if let (Some(s), Some(p)) = (short_score(archive, c.id), parent) {
                m.gains.push(s - p);
            }
        }
        for call in &c.calls {
            models
                .entry((call.model.clone(), answer.clone()))
                .or_default()
                .add_call(call);
        }
    }
    let insights = archive.insights()?;
    for call in insights.iter().filter_map(|i| i.call.as_ref()) {
        let m = models
            .entry((call.model.clone(), "analysis".into()))
            .or_default();
        m.add_call(call);
        m.analyses += 1;
    }
    let mut out = String::new();
    if !models.is_empty() {
        out.push_str("\n## LLM usage\n\n");
        out.push_str("model | answer | proposals | traced first time | traced after repair | evaluated ok (success) | mean score gain over the parent | calls | insights | tokens in / out | cost\n");
        out.push_str("---|---|---|---|---|---|---|---|---|---|---\n");
        for ((name, answer), m) in &models {
            let _ = writeln!(
                out,
                "{name} | {answer} | {} | {} | {} | {} | {} | {} | {} | {} / {} | ${:.4}",
                m.proposals,
                m.share(m.first_time),
                m.share(m.repaired),
                m.share(m.ok),
                m.gain(),
                m.calls,
                m.analyses,
                m.prompt,
                m.completion,
                m.dollars
            );
        }
    }
    if !insights.is_empty() {
        out.push_str("\n## Insights\n\n");
        for i in &insights {
            let evidence: Vec<String> = i.evidence.iter().map(|e| format!("#{e}")).collect();
            let _ = writeln!(out, "- {} (evidence: {})", i.text, evidence.join(", "));
        }
    }
    Ok(out)
}
