//! What the review commands print: tables for people, JSON for machines.

use std::fmt::Write;

use autoarch_archive::{Archive, Candidate, Direction, Evaluation, Listed, Metric, Summary};
use serde_json::{json, Value};

use autoarch_agent::text::{curve_summary, grouped};

/// How `ls` filters and orders.
#[derive(Default)]
pub struct ListOptions {
    pub sort: Option<SortKey>,
    pub limit: Option<usize>,
    pub status: Option<autoarch_archive::Status>,
    pub proposer: Option<autoarch_archive::ProposerKind>,
    pub tag: Option<String>,
    /// A fingerprint or a prefix of one.
    pub fingerprint: Option<String>,
}

/// What `ls` sorts by: a metric (best first), or the id.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SortKey {
    Id,
    Metric(Metric),
}

impl std::str::FromStr for SortKey {
    type Err = String;

    fn from_str(s: &str) -> Result<SortKey, String> {
        if s == "id" {
            return Ok(SortKey::Id);
        }
        s.parse::<Metric>()
            .map(SortKey::Metric)
            .map_err(|_| format!("use id or a metric: {}", Metric::listed()))
    }
}

/// A candidate's value of `metric`: a summary metric, or the candidate's size.
pub fn metric_of(l: &Listed, metric: Metric) -> Option<f64> {
    match metric {
        Metric::Params => Some(l.candidate.stats.params as f64),
        Metric::Flops => Some(l.candidate.stats.flops as f64),
        m => l.summary.metrics.get(m.name()).copied(),
    }
}

/// Filter by status, sort by a metric (best first, candidates without it last), cut to a limit.
pub fn select(mut all: Vec<Listed>, options: &ListOptions) -> Vec<Listed> {
    if let Some(status) = options.status {
        all.retain(|l| l.summary.status == status);
    }
    if let Some(proposer) = options.proposer {
        all.retain(|l| l.candidate.proposer == proposer);
    }
    if let Some(tag) = &options.tag {
        all.retain(|l| l.candidate.tags.contains(tag));
    }
    if let Some(fp) = &options.fingerprint {
        all.retain(|l| l.candidate.fingerprint.starts_with(fp.as_str()));
    }
    if let Some(SortKey::Id) = options.sort {
        all.sort_by_key(|l| l.candidate.id);
    }
    if let Some(SortKey::Metric(metric)) = options.sort {
        let dir = metric.direction();
        all.sort_by(|a, b| {
            let (x, y) = (metric_of(a, metric), metric_of(b, metric));
            match (x, y) {
                (Some(x), Some(y)) => {
                    let ord = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                    if dir == Direction::Maximize {
                        ord.reverse()
                    } else {
                        ord
                    }
                }
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
            .then(a.candidate.id.cmp(&b.candidate.id))
        });
    }
    if let Some(limit) = options.limit {
        all.truncate(limit);
    }
    all
}

/// One `ls --json` row.
pub fn listed_json(l: &Listed) -> Value {
    let c = &l.candidate;
    json!({
        "id": c.id,
        "name": c.name,
        "proposer": c.proposer.as_str(),
        "status": l.summary.status.as_str(),
        "fingerprint": c.fingerprint,
        "parents": c.parents,
        "params": c.stats.params,
        "flops": c.stats.flops,
        "metrics": l.summary.metrics,
        "score": l.summary.score(),
        "tags": c.tags,
    })
}

fn score_text(s: &Summary) -> String {
    match s.score() {
        Some(v) => format!("{v:.4}"),
        None => "-".to_string(),
    }
}

fn short(fp: &str) -> &str {
    &fp[..fp.len().min(12)]
}

/// An aligned table of candidates.
pub fn table(rows: &[Listed], extra_metric: Option<Metric>) -> String {
    let extra =
        extra_metric.filter(|m| !matches!(*m, Metric::Score | Metric::Params | Metric::Flops));
    let mut out = String::new();
    let _ = write!(
        out,
        "{:>5}  {:<24} {:<9} {:<9} {:>8}",
        "id", "name", "proposer", "status", "score"
    );
    if let Some(m) = extra {
        let _ = write!(out, " {m:>12}");
    }
    let _ = writeln!(
        out,
        " {:>11} {:>14}  {:<12}  tags",
        "params", "flops", "fingerprint"
    );
    for l in rows {
        let c = &l.candidate;
        let name: String = c.name.chars().take(24).collect();
        let _ = write!(
            out,
            "{:>5}  {:<24} {:<9} {:<9} {:>8}",
            c.id,
            name,
            c.proposer.as_str(),
            l.summary.status.as_str(),
            score_text(&l.summary)
        );
        if let Some(m) = extra {
            let v = metric_of(l, m)
                .map(|v| format!("{v:.4}"))
                .unwrap_or("-".into());
            let _ = write!(out, " {v:>12}");
        }
        let _ = writeln!(
            out,
            " {:>11} {:>14}  {:<12}  {}",
            grouped(c.stats.params),
            grouped(c.stats.flops),
            short(&c.fingerprint),
            c.tags.join(",")
        );
    }
    out
}

fn when(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

/// Everything about one candidate, for people.
pub fn show(c: &Candidate, s: &Summary, evaluations: &[Evaluation], children: &[u64]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "candidate {}: {}", c.id, c.name);
    let _ = writeln!(
        out,
        "  status       {} (fidelity {}, {} evaluations)",
        s.status.as_str(),
        s.fidelity,
        s.evaluations
    );
    let _ = writeln!(out, "  task         {}", c.task);
    let _ = writeln!(
        out,
        "  proposer     {}{}",
        c.proposer.as_str(),
        c.model
            .as_ref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default()
    );
    if let Some(src) = &c.source {
        let _ = writeln!(out, "  source       {src}");
    }
    let _ = writeln!(out, "  created      {}", when(c.created_ms));
    let _ = writeln!(out, "  fingerprint  {}", c.fingerprint);
    let _ = writeln!(
        out,
        "  size         {} params, {} FLOPs per sample, {} nodes, depth {}",
        grouped(c.stats.params),
        grouped(c.stats.flops),
        c.stats.nodes,
        c.stats.depth
    );
    let _ = writeln!(out, "  parents      {}", ids(&c.parents));
    let _ = writeln!(out, "  children     {}", ids(children));
    if let Some(d) = c.duplicate_of {
        let _ = writeln!(out, "  duplicate of {d}");
    }
    if !c.tags.is_empty() {
        let _ = writeln!(out, "  tags         {}", c.tags.join(", "));
    }
    out.push_str(&llm_calls(c));
    out.push_str(&results(s, evaluations));
    if !c.motivation.is_empty() {
        let _ = writeln!(out, "\nmotivation\n  {}", c.motivation);
    }
    let _ = writeln!(out, "\ncode\n{}", c.code.trim_end());
    out
}

/// A candidate's LLM cost and calls.
fn llm_calls(c: &Candidate) -> String {
    let mut out = String::new();
    if c.tokens.prompt + c.tokens.completion > 0 || c.cost_usd > 0.0 {
        let _ = writeln!(
            out,
            "  LLM cost     {} prompt + {} completion tokens, ${:.4}",
            c.tokens.prompt, c.tokens.completion, c.cost_usd
        );
    }
    if !c.calls.is_empty() {
        let _ = writeln!(out, "  LLM calls    (prompts and answers: show --json)");
        for (i, call) in c.calls.iter().enumerate() {
            let answer = call
                .answer
                .map(|k| format!("{} answer · ", k.as_str()))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    {}. {:<8} {} · {} · {answer}{} + {} tokens · ${:.4} · {:.1} s → {}",
                i + 1,
                call.purpose,
                call.model,
                call.mode.map_or("-", |m| m.as_str()),
                call.tokens.prompt,
                call.tokens.completion,
                call.cost_usd,
                call.seconds,
                call.outcome
            );
            for e in &call.edits {
                let _ = writeln!(out, "         chose {e}");
            }
            for a in &call.attempts {
                let _ = writeln!(out, "         retried: {a}");
            }
        }
    }
    out
}

/// A candidate's metrics and evaluations.
fn results(s: &Summary, evaluations: &[Evaluation]) -> String {
    let mut out = String::new();
    if !s.metrics.is_empty() {
        let _ = writeln!(out, "  metrics");
        for (k, v) in &s.metrics {
            let spread = s.spread.get(k).copied().unwrap_or(0.0);
            let _ = writeln!(
                out,
                "    {k:<18} {v:.4}{}",
                if spread > 0.0 {
                    format!(" ± {spread:.4}")
                } else {
                    String::new()
                }
            );
        }
    }
    if !evaluations.is_empty() {
        let _ = writeln!(out, "  evaluations");
        for e in evaluations {
            let _ = writeln!(
                out,
                "    #{:<5} fidelity {} seed {:<4} {:<9} {}",
                e.id,
                e.fidelity,
                e.seed,
                e.outcome.as_str(),
                e.reason.as_deref().unwrap_or("")
            );
            if !e.curve.is_empty() {
                let _ = writeln!(out, "           {}", curve_summary(&e.curve));
            }
        }
    }
    out
}

/// `show --json`.
pub fn show_json(
    c: &Candidate,
    s: &Summary,
    evaluations: &[Evaluation],
    children: &[u64],
) -> Value {
    json!({
        "candidate": c,
        "summary": s,
        "evaluations": evaluations,
        "children": children,
    })
}

fn ids(v: &[u64]) -> String {
    if v.is_empty() {
        return "-".to_string();
    }
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

/// Ancestors and descendants, one per line, indented by distance.
pub fn lineage(archive: &Archive, id: u64) -> autoarch_archive::Result<String> {
    let line = |id: u64, depth: usize| -> autoarch_archive::Result<String> {
        let c = archive
            .candidate(id)?
            .ok_or(autoarch_archive::Error::UnknownCandidate(id))?;
        let s = archive.summary(id)?;
        Ok(format!(
            "{}{} {} [{}] score {}\n",
            "  ".repeat(depth),
            c.id,
            c.name,
            s.status.as_str(),
            score_text(&s)
        ))
    };
    let mut out = String::from("ancestors\n");
    let ancestors = archive.ancestors(id)?;
    if ancestors.is_empty() {
        out.push_str("  (none)\n");
    }
    for (a, d) in ancestors {
        out.push_str(&line(a, d)?);
    }
    out.push_str(&format!("candidate\n{}", line(id, 1)?));
    out.push_str("descendants\n");
    let descendants = archive.descendants(id)?;
    if descendants.is_empty() {
        out.push_str("  (none)\n");
    }
    for (a, d) in descendants {
        out.push_str(&line(a, d)?);
    }
    Ok(out)
}

/// A unified diff of two candidates' code.
pub fn diff(a: &Candidate, b: &Candidate) -> String {
    autoarch_agent::text::unified_diff(a, b)
}
