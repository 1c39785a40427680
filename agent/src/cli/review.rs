//! The archive commands: review (`ls`, `show`, `lineage`, `diff`, `top`, `pareto`, `verify`,
//! `export`) and the few that write (`tag`, `import`).
//!
//! Review commands open the archive with [`Archive::open_for_review`]: while a campaign holds it,
//! they read the snapshot the campaign keeps and say so on stderr.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use autoarch_archive::{Archive, Metric, ProposerKind, Status};
use serde_json::json;

use super::render::{self, ListOptions, SortKey};
use super::UsageError;

fn open_review(dir: &Path) -> anyhow::Result<Archive> {
    let (archive, notice) = Archive::open_for_review(dir)?;
    if let Some(notice) = notice {
        eprintln!("note: {notice}");
    }
    Ok(archive)
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// What `ls` takes on the command line.
#[derive(clap::Args)]
pub struct LsArgs {
    /// Sort by this metric, best first (score, val_loss, val_accuracy, params, flops, ...).
    #[arg(long)]
    pub sort: Option<SortKey>,
    #[arg(long)]
    pub limit: Option<usize>,
    /// Only candidates with this status: pending, ok, failed, duplicate.
    #[arg(long, value_parser = parse_status)]
    pub status: Option<Status>,
    /// Only candidates from this proposer: seed, human, llm, mutation.
    #[arg(long, value_parser = parse_proposer)]
    pub proposer: Option<ProposerKind>,
    /// Only candidates with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only candidates whose fingerprint starts with this.
    #[arg(long)]
    pub fingerprint: Option<String>,
    #[arg(long)]
    pub json: bool,
}

fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(s).ok_or_else(|| "use pending, ok, failed or duplicate".to_string())
}

fn parse_proposer(s: &str) -> Result<ProposerKind, String> {
    ProposerKind::parse(s).ok_or_else(|| "use seed, human, llm or mutation".to_string())
}

pub fn ls(dir: &Path, args: LsArgs) -> anyhow::Result<ExitCode> {
    let LsArgs {
        sort,
        limit,
        status,
        proposer,
        tag,
        fingerprint,
        json,
    } = args;
    let archive = open_review(dir)?;
    let sort_metric = match sort {
        Some(SortKey::Metric(m)) => Some(m),
        _ => None,
    };
    let rows = render::select(
        archive.list()?,
        &ListOptions {
            sort,
            limit,
            status,
            proposer,
            tag,
            fingerprint,
        },
    );
    if json {
        print_json(&serde_json::Value::Array(
            rows.iter().map(render::listed_json).collect(),
        ))?;
    } else if rows.is_empty() {
        println!(
            "no candidates{}",
            status
                .map(|s| format!(" with status {}", s.as_str()))
                .unwrap_or_default()
        );
    } else {
        print!("{}", render::table(&rows, sort_metric));
    }
    Ok(ExitCode::SUCCESS)
}

fn candidate(archive: &Archive, id: u64) -> anyhow::Result<autoarch_archive::Candidate> {
    archive
        .candidate(id)?
        .ok_or_else(|| UsageError(format!("no candidate {id}; `autoarch ls` lists them")).into())
}

pub fn show(dir: &Path, id: u64, json: bool) -> anyhow::Result<ExitCode> {
    let archive = open_review(dir)?;
    let c = candidate(&archive, id)?;
    let s = archive.summary(id)?;
    let evaluations = archive.evaluations(id)?;
    let children = archive.children(id)?;
    if json {
        print_json(&render::show_json(&c, &s, &evaluations, &children))?;
    } else {
        print!("{}", render::show(&c, &s, &evaluations, &children));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn lineage(dir: &Path, id: u64) -> anyhow::Result<ExitCode> {
    let archive = open_review(dir)?;
    candidate(&archive, id)?;
    print!("{}", render::lineage(&archive, id)?);
    Ok(ExitCode::SUCCESS)
}

pub fn diff(dir: &Path, a: u64, b: u64) -> anyhow::Result<ExitCode> {
    let archive = open_review(dir)?;
    let (a, b) = (candidate(&archive, a)?, candidate(&archive, b)?);
    let text = render::diff(&a, &b);
    if text.is_empty() {
        println!("candidates {} and {} have the same code", a.id, b.id);
    } else {
        print!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn top(dir: &Path, metric: Metric, n: usize, json: bool) -> anyhow::Result<ExitCode> {
    let archive = open_review(dir)?;
    let best = archive.top_k(metric, n)?;
    let rows = best
        .iter()
        .map(|(id, value)| Ok((candidate(&archive, *id)?, archive.summary(*id)?, *value)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if json {
        print_json(&serde_json::Value::Array(
            rows.iter()
                .map(|(c, s, v)| json!({"id": c.id, "name": c.name, "metric": metric, "value": v, "status": s.status.as_str()}))
                .collect(),
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no successful candidate has {metric}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "top {} by {metric} ({})",
        rows.len(),
        metric.direction().words()
    );
    println!("{:>4}  {:>5}  {:<28} {:>12}", "rank", "id", "name", metric);
    for (rank, (c, _, v)) in rows.iter().enumerate() {
        println!("{:>4}  {:>5}  {:<28} {:>12.4}", rank + 1, c.id, c.name, v);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn pareto(dir: &Path, objectives: &[Metric], json: bool) -> anyhow::Result<ExitCode> {
    if objectives.len() < 2 {
        return Err(UsageError(
            "--objectives needs two or more metrics, e.g. val_loss,params".into(),
        )
        .into());
    }
    let archive = open_review(dir)?;
    let front = archive.pareto(objectives)?;
    let names: Vec<&str> = objectives.iter().map(|m| m.name()).collect();
    if json {
        print_json(&serde_json::Value::Array(
            front
                .iter()
                .map(|(id, values)| {
                    let name = archive
                        .candidate(*id)
                        .ok()
                        .flatten()
                        .map(|c| c.name)
                        .unwrap_or_default();
                    let values: serde_json::Map<String, serde_json::Value> = names
                        .iter()
                        .zip(values)
                        .map(|(k, v)| (k.to_string(), json!(v)))
                        .collect();
                    json!({"id": id, "name": name, "values": values})
                })
                .collect(),
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Pareto front over {} ({} candidates)",
        names.join(", "),
        front.len()
    );
    print!("{:>5}  {:<28}", "id", "name");
    for n in &names {
        print!(" {n:>14}");
    }
    println!();
    for (id, values) in &front {
        let c = candidate(&archive, *id)?;
        print!(
            "{:>5}  {:<28}",
            id,
            c.name.chars().take(28).collect::<String>()
        );
        for v in values {
            print!(" {v:>14.4}");
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

pub fn tag(dir: &Path, id: u64, tag: &str) -> anyhow::Result<ExitCode> {
    let archive = Archive::open(dir)?;
    candidate(&archive, id)?;
    archive.add_tag(id, tag)?;
    println!("tagged candidate {id} {tag}");
    Ok(ExitCode::SUCCESS)
}

pub fn verify(dir: &Path) -> anyhow::Result<ExitCode> {
    let archive = open_review(dir)?;
    let problems = archive.verify()?;
    let count = archive.candidate_count()?;
    if problems.is_empty() {
        println!("ok: {count} candidates; every record decodes and every reference resolves");
        return Ok(ExitCode::SUCCESS);
    }
    for p in &problems {
        println!("{} {}: {}", p.tree, p.key, p.message);
    }
    println!("{} problems found; nothing was changed", problems.len());
    Ok(ExitCode::FAILURE)
}

pub fn export(dir: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    if file.extension().and_then(|e| e.to_str()) != Some("jsonl") {
        return Err(UsageError(format!(
            "to export architecture code give --format starlark|pytorch|json; to export the archive give a .jsonl path (got {})",
            file.display()
        ))
        .into());
    }
    let archive = open_review(dir)?;
    let tmp = file.with_extension("jsonl.tmp");
    let out = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut out = std::io::BufWriter::new(out);
    let n = archive.export_jsonl(&mut out)?;
    drop(out);
    std::fs::rename(&tmp, file).with_context(|| format!("writing {}", file.display()))?;
    println!("exported {n} records to {}", file.display());
    Ok(ExitCode::SUCCESS)
}

pub fn import(dir: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let open = || {
        std::fs::File::open(file)
            .map(std::io::BufReader::new)
            .map_err(|e| UsageError(format!("cannot read {}: {e}", file.display())))
    };
    // A dry run in memory first: a file that is bad anywhere stores nothing.
    Archive::in_memory()
        .import_jsonl(open()?)
        .with_context(|| {
            format!(
                "{} is not a valid archive export; nothing was imported",
                file.display()
            )
        })?;
    let input = open()?;
    let mut archive = Archive::open(dir)?;
    archive.set_durable(false);
    let n = archive.import_jsonl(input)?;
    archive.flush()?;
    println!("imported {n} records into {}", dir.display());
    Ok(ExitCode::SUCCESS)
}
