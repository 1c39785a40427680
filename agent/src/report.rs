//! `autoarch report`: a markdown summary of a campaign — the best candidates with metrics and
//! code, the best versus the best seed, and versus the campaign's random-sampled population
//! (relative improvement as in Yang et al., "NAS evaluation is frustratingly hard", ICLR 2020).

use std::collections::BTreeMap;
use std::fmt::Write;

use autoarch_archive::{Archive, Listed, Outcome, ProposerKind, Status};

use crate::campaign::{State, RANDOM_TAG};
use crate::format::grouped;

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The short-budget (fidelity 0) score of a candidate, if it has one.
fn short_score(archive: &Archive, id: u64) -> Option<f64> {
    archive
        .evaluations(id)
        .ok()?
        .iter()
        .filter(|e| e.fidelity == 0 && e.outcome == Outcome::Ok)
        .find_map(|e| e.metrics.get("score").copied())
}

pub fn is_random(l: &Listed) -> bool {
    l.candidate.tags.iter().any(|t| t == RANDOM_TAG)
}

/// The campaign's successful candidates, best first: promoted results (longer, several seeds)
/// before short-budget ones, then by score; ties (a saturated task) go to the lower validation
/// loss, then to fewer parameters. The random baseline is left out.
/// The ranking order of two successful candidates (`Less`: `a` ranks first).
pub fn order(a: &Listed, b: &Listed) -> std::cmp::Ordering {
    let key =
        |l: &Listed, m: &str, missing: f64| l.summary.metrics.get(m).copied().unwrap_or(missing);
    b.summary
        .fidelity
        .cmp(&a.summary.fidelity)
        .then(key(b, "score", f64::NEG_INFINITY).total_cmp(&key(a, "score", f64::NEG_INFINITY)))
        .then(key(a, "val_loss", f64::INFINITY).total_cmp(&key(b, "val_loss", f64::INFINITY)))
        .then(a.candidate.stats.params.cmp(&b.candidate.stats.params))
        .then(a.candidate.id.cmp(&b.candidate.id))
}

pub fn ranking(listed: &[Listed]) -> Vec<&Listed> {
    let mut ok: Vec<&Listed> = listed
        .iter()
        .filter(|l| !is_random(l))
        .filter(|l| l.summary.status == Status::Ok && l.summary.score().is_some())
        .collect();
    ok.sort_by(|a, b| order(a, b));
    ok
}

pub fn render(archive: &Archive) -> anyhow::Result<String> {
    let mut out = String::new();
    let listed = archive.list()?;
    let campaign = archive.campaigns()?.into_iter().next();
    let state: State = campaign
        .as_ref()
        .and_then(|c| serde_json::from_value(c.state.clone()).ok())
        .unwrap_or_default();
    let name = campaign
        .as_ref()
        .map_or("(no campaign record)".to_string(), |c| c.name.clone());
    let task = listed
        .first()
        .map(|l| l.candidate.task.clone())
        .unwrap_or_default();
    writeln!(out, "# Campaign `{name}` on `{task}`\n")?;
    if let Some(c) = &campaign {
        let get = |path: &[&str]| {
            let mut v = &c.config;
            for p in path {
                v = v.get(p)?;
            }
            Some(v.to_string())
        };
        writeln!(
            out,
            "- task options: {}",
            get(&["task"]).unwrap_or_else(|| "-".into())
        )?;
        writeln!(
            out,
            "- proposer: {}; short budget: {} steps / {} s; promoted: {} runs at {}× the budget",
            get(&["proposer", "kind"])
                .unwrap_or_default()
                .trim_matches('"'),
            get(&["evaluation", "steps"]).unwrap_or_else(|| "-".into()),
            get(&["evaluation", "seconds"]).unwrap_or_else(|| "-".into()),
            get(&["evaluation", "promote_seeds"])
                .and_then(|s| s.parse::<u64>().ok())
                .map_or("-".into(), |s| (s + 1).to_string()),
            get(&["evaluation", "promote_factor"]).unwrap_or_else(|| "-".into()),
        )?;
        let m = (state.elapsed_seconds / 60.0).floor();
        writeln!(
            out,
            "- wall time: {m:.0} min {:.0} s in all; worker utilisation {:.0}%; last run {}",
            state.elapsed_seconds - 60.0 * m,
            if state.capacity_seconds > 0.0 {
                100.0 * state.busy_seconds / state.capacity_seconds
            } else {
                0.0
            },
            state.stopped.as_deref().unwrap_or("-")
        )?;
    }

    // Counts.
    let own: Vec<&Listed> = listed.iter().filter(|l| !is_random(l)).collect();
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_outcome: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &own {
        *by_status.entry(l.summary.status.as_str()).or_default() += 1;
        if l.summary.status == Status::Failed {
            if let Some(o) = l.summary.last_outcome {
                *by_outcome.entry(o.as_str()).or_default() += 1;
            }
        }
    }
    let seeds = own
        .iter()
        .filter(|l| l.candidate.proposer == ProposerKind::Seed)
        .count();
    let proposed: Vec<&&Listed> = own
        .iter()
        .filter(|l| {
            matches!(
                l.candidate.proposer,
                ProposerKind::Mutation | ProposerKind::Llm
            )
        })
        .collect();
    let traced = proposed
        .iter()
        .filter(|l| !l.candidate.fingerprint.is_empty())
        .count();
    writeln!(
        out,
        "- candidates: {} ({seeds} seeds, {} proposed, {} other); status: {}",
        own.len(),
        proposed.len(),
        own.len() - seeds - proposed.len(),
        by_status
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    if !proposed.is_empty() {
        writeln!(
            out,
            "- proposals that traced: {traced}/{} ({:.0}%)",
            proposed.len(),
            100.0 * traced as f64 / proposed.len() as f64
        )?;
    }
    if !by_outcome.is_empty() {
        writeln!(
            out,
            "- failures: {}",
            by_outcome
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }

    llm_section(archive, &own, &mut out)?;

    // Best candidates.
    let ok = ranking(&listed);
    writeln!(out, "\n## Best candidates\n")?;
    if ok.is_empty() {
        writeln!(out, "No candidate has been evaluated successfully yet.")?;
        return Ok(out);
    }
    let metric_names: Vec<String> = ok[0]
        .summary
        .metrics
        .keys()
        .filter(|k| *k != "score")
        .cloned()
        .collect();
    writeln!(
        out,
        "Promoted (longer, multi-seed) results first, then by score; ties go to the lower validation loss, then fewer parameters. ± is the spread over seeds.\n"
    )?;
    write!(
        out,
        "| # | id | name | score | runs | {} | params | FLOPs | proposer |\n|---|---|---|---|---|",
        metric_names.join(" | ")
    )?;
    for _ in &metric_names {
        write!(out, "---|")?;
    }
    writeln!(out, "---|---|---|")?;
    for (rank, l) in ok.iter().take(10).enumerate() {
        let s = &l.summary;
        let runs = if s.fidelity > 0 {
            format!("promoted ({} evals)", s.evaluations)
        } else {
            "short".to_string()
        };
        write!(
            out,
            "| {} | {} | {} | {:.4} ± {:.4} | {runs} |",
            rank + 1,
            l.candidate.id,
            l.candidate.name.replace('|', "/"),
            s.score().unwrap_or(f64::NAN),
            s.spread.get("score").copied().unwrap_or(0.0)
        )?;
        for m in &metric_names {
            write!(
                out,
                " {:.4} |",
                s.metrics.get(m).copied().unwrap_or(f64::NAN)
            )?;
        }
        writeln!(
            out,
            " {} | {} | {} |",
            grouped(l.candidate.stats.params),
            grouped(l.candidate.stats.flops),
            l.candidate.proposer.as_str()
        )?;
    }

    // Best versus the best seed, on the same footing (short-budget scores).
    let best = ok[0];
    writeln!(out, "\n## Best versus baselines\n")?;
    writeln!(
        out,
        "Compared on the short budget every candidate gets (fidelity 0, seed 0), so the numbers are like for like.\n"
    )?;
    let best_short = short_score(archive, best.candidate.id);
    let seed_best = own
        .iter()
        .filter(|l| l.candidate.proposer == ProposerKind::Seed)
        .filter_map(|l| short_score(archive, l.candidate.id).map(|s| (l, s)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some(b) = best_short {
        writeln!(
            out,
            "- best: #{} {} — short-budget score {b:.4}",
            best.candidate.id, best.candidate.name
        )?;
        if let Some((l, s)) = seed_best {
            writeln!(
                out,
                "- best seed: #{} {} — {s:.4}; the best is {:+.4} ({})",
                l.candidate.id,
                l.candidate.name,
                b - s,
                if b > s {
                    "better"
                } else if b < s {
                    "worse"
                } else {
                    "the same"
                }
            )?;
        }
    }
    let best_proposal = own
        .iter()
        .filter(|l| {
            matches!(
                l.candidate.proposer,
                ProposerKind::Mutation | ProposerKind::Llm
            )
        })
        .filter_map(|l| short_score(archive, l.candidate.id).map(|s| (l, s)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let (Some((l, s)), Some((_, seed))) = (best_proposal, seed_best) {
        writeln!(
            out,
            "- best proposal (not a seed): #{} {} — {s:.4}; {:+.4} against the best seed",
            l.candidate.id,
            l.candidate.name,
            s - seed
        )?;
    }
    let random: Vec<f64> = listed
        .iter()
        .filter(|l| is_random(l))
        .filter_map(|l| short_score(archive, l.candidate.id))
        .collect();
    let population: Vec<f64> = own
        .iter()
        .filter_map(|l| short_score(archive, l.candidate.id))
        .collect();
    if !population.is_empty() {
        let (m, sd) = mean_sd(&population);
        writeln!(
            out,
            "- campaign population: mean {m:.4} ± {sd:.4} over {} candidates",
            population.len()
        )?;
    }
    if random.is_empty() {
        writeln!(
            out,
            "- random sampling: no random-sampled population in this archive; `autoarch report --random-baseline 8` evaluates 8"
        )?;
    } else {
        let (m, sd) = mean_sd(&random);
        writeln!(
            out,
            "- random sampling (same proposer's space, no selection): mean {m:.4} ± {sd:.4} over {} candidates",
            random.len()
        )?;
        if let Some(b) = best_short {
            if m > 0.0 {
                writeln!(
                    out,
                    "- relative improvement over random sampling, RI = 100·(best − random mean)/random mean = **{:.1}%**",
                    100.0 * (b - m) / m
                )?;
            } else {
                writeln!(out, "- best minus random mean: **{:+.4}**", b - m)?;
            }
        }
    }

    // The best candidate in full.
    writeln!(
        out,
        "\n## Best candidate: #{} {}\n",
        best.candidate.id, best.candidate.name
    )?;
    writeln!(out, "{}\n", best.candidate.motivation)?;
    let lineage: Vec<String> = archive
        .ancestors(best.candidate.id)?
        .into_iter()
        .filter_map(|(id, _)| archive.candidate(id).ok().flatten())
        .map(|c| format!("#{} {}", c.id, c.name))
        .collect();
    if !lineage.is_empty() {
        writeln!(out, "Ancestors: {}\n", lineage.join(" ← "))?;
    }
    writeln!(out, "```python\n{}\n```", best.candidate.code.trim_end())?;
    writeln!(
        out,
        "\nMore: `autoarch show {}`, `autoarch lineage {}`, `autoarch top`.",
        best.candidate.id, best.candidate.id
    )?;
    Ok(out)
}

#[derive(Default)]
struct ModelUse {
    proposals: usize,
    first_time: usize,
    repaired: usize,
    ok: usize,
    calls: usize,
    analyses: usize,
    prompt: u64,
    completion: u64,
    dollars: f64,
}

/// Per-model proposals, trace and success rates, tokens and cost; then the stored insights.
fn llm_section(archive: &Archive, own: &[&Listed], out: &mut String) -> anyhow::Result<()> {
    let mut models: BTreeMap<String, ModelUse> = BTreeMap::new();
    for l in own {
        let c = &l.candidate;
        if c.calls.is_empty() {
            continue;
        }
        let m = models
            .entry(c.model.clone().unwrap_or_default())
            .or_default();
        m.proposals += 1;
        let traced = !c.fingerprint.is_empty();
        if traced && c.calls.len() == 1 {
            m.first_time += 1;
        } else if traced {
            m.repaired += 1;
        }
        if l.summary.status == Status::Ok {
            m.ok += 1;
        }
        for call in &c.calls {
            let m = models.entry(call.model.clone()).or_default();
            m.calls += 1;
            m.prompt += call.tokens.prompt;
            m.completion += call.tokens.completion;
            m.dollars += call.cost_usd;
        }
    }
    let insights = archive.insights()?;
    for i in &insights {
        if let Some(call) = &i.call {
            let m = models.entry(call.model.clone()).or_default();
            m.calls += 1;
            m.analyses += 1;
            m.prompt += call.tokens.prompt;
            m.completion += call.tokens.completion;
            m.dollars += call.cost_usd;
        }
    }
    if !models.is_empty() {
        writeln!(out, "\n## LLM usage\n")?;
        writeln!(
            out,
            "model | proposals | traced first time | traced after repair | evaluated ok (success) | calls | insights | tokens in / out | cost"
        )?;
        writeln!(out, "---|---|---|---|---|---|---|---|---")?;
        for (name, m) in &models {
            let pct = |n: usize| {
                if m.proposals > 0 {
                    format!("{n} ({:.0}%)", 100.0 * n as f64 / m.proposals as f64)
                } else {
                    "-".into()
                }
            };
            writeln!(
                out,
                "{name} | {} | {} | {} | {} | {} | {} | {} / {} | ${:.4}",
                m.proposals,
                pct(m.first_time),
                pct(m.repaired),
                pct(m.ok),
                m.calls,
                m.analyses,
                m.prompt,
                m.completion,
                m.dollars
            )?;
        }
    }
    if !insights.is_empty() {
        writeln!(out, "\n## Insights\n")?;
        for i in &insights {
            let evidence: Vec<String> = i.evidence.iter().map(|e| format!("#{e}")).collect();
            writeln!(out, "- {} (evidence: {})", i.text, evidence.join(", "))?;
        }
    }
    Ok(())
}
