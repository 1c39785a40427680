//! `autoarch benchmark`: resolves the suite from its file, preset and options, prints the plan,
//! and runs it with [`benchmark::run`] (the campaigns, the final protocol, the report), printing
//! its progress; Ctrl-C stops it cleanly and the same command continues.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use autoarch_agent::benchmark::run::{Outcome, Progress};
use autoarch_agent::benchmark::{self, Preset, Suite};
use autoarch_agent::campaign::{Interrupt, Stop};
use autoarch_agent::config::ProposerChoice;

use super::UsageError;

#[derive(clap::Args, Debug)]
pub struct BenchmarkArgs {
    /// Suite file (TOML); without it, the embedded default suite.
    pub suite: Option<PathBuf>,
    /// Where the campaigns, the final runs and the report go.
    #[arg(long, default_value = "autoarch-benchmark")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "standard")]
    pub preset: Preset,
    /// Campaigns per arm and task (replaces the suite's and the preset's `campaigns`).
    #[arg(long)]
    pub campaigns: Option<u32>,
    /// Only these tasks of the suite, by name (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub tasks: Vec<String>,
    /// Worker processes (replaces the suite's `evaluation.workers`).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Add the LLM arms (`llm`: the campaign's own strategy; `llm-no-evolution`: parents are
    /// always seeds) with this endpoint and model.
    #[arg(long, value_enum)]
    pub proposer: Option<ProposerChoice>,
    #[arg(long)]
    pub llm_base_url: Option<String>,
    #[arg(long)]
    pub llm_model: Option<String>,
    /// Print the plan and its compute, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the embedded suite to this file (to edit) and run nothing.
    #[arg(long, value_name = "FILE")]
    pub write_suite: Option<PathBuf>,
}

fn resolve(args: &BenchmarkArgs) -> anyhow::Result<Suite> {
    let mut suite = match &args.suite {
        Some(path) => Suite::load(path).map_err(|e| UsageError(e.to_string()))?,
        None => Suite::embedded(),
    }
    .with_preset(args.preset)
    .with_overrides(args.campaigns, &args.tasks)
    .map_err(UsageError)?;
    if let Some(w) = args.workers {
        suite.evaluation.workers = w;
    }
    if args.proposer == Some(ProposerChoice::Llm) {
        let (Some(url), Some(model)) = (&args.llm_base_url, &args.llm_model) else {
            return Err(UsageError(
                "--proposer llm needs --llm-base-url URL and --llm-model NAME".into(),
            )
            .into());
        };
        suite.llm.base_url = Some(url.clone());
        suite.llm.model = Some(model.clone());
        for arm in benchmark::suite::llm_arms() {
            if !suite.arms.iter().any(|a| a.name == arm.name) {
                suite.arms.push(arm);
            }
        }
    }
    // Every campaign's config is checked before anything runs.
    for t in &suite.tasks {
        for a in &suite.arms {
            suite
                .campaign(t, a, 0, &args.out, None)
                .validate("the benchmark suite")
                .map_err(|e| UsageError(e.to_string()))?;
        }
    }
    Ok(suite)
}

pub fn benchmark(args: BenchmarkArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.write_suite {
        std::fs::write(path, benchmark::suite::DEFAULT_SUITE)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let suite = resolve(&args)?;
    print!("{}", benchmark::describe_plan(&suite));
    if args.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    let out = args.out.clone();
    let binary = super::binary()?;
    let command_line: Vec<String> = std::env::args().collect();
    let interrupt = Interrupt::default();
    let outcome = super::runtime()?.block_on(async {
        // Registered now, so a Ctrl-C at any point from here on is a clean stop.
        let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .context("listening for Ctrl-C")?;
        let on_ctrl_c = interrupt.clone();
        tokio::spawn(async move {
            if sigint.recv().await.is_some() {
                on_ctrl_c.trigger();
            }
        });
        let mut progress = print_progress;
        let run = benchmark::run(
            &suite,
            &out,
            &binary,
            &command_line,
            &interrupt,
            &mut progress,
        );
        run.await.map_err(|e| match e {
            e if e.is_usage() => UsageError(e.to_string()).into(),
            e => anyhow::Error::new(e),
        })
    })?;
    match outcome {
        Outcome::Finished(results) => {
            println!("{}", benchmark::report::render(&results));
            eprintln!(
                "report: {} (and {})",
                out.join("report.md").display(),
                out.join("results.json").display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Interrupted => {
            eprintln!("interrupted: run the same command to continue");
            Ok(ExitCode::from(Stop::Interrupted.exit_code()))
        }
        Outcome::Stopped(stop) => {
            eprintln!("error: {}", stop.describe());
            Ok(ExitCode::from(stop.exit_code()))
        }
    }
}

/// A line per campaign, and the final protocol's progress every ten runs.
fn print_progress(p: Progress) {
    match p {
        Progress::Campaign {
            index,
            total,
            task,
            arm,
            k,
            summary,
        } => {
            let best = summary
                .best
                .as_ref()
                .map_or("none".to_string(), |(id, name, score)| {
                    format!("#{id} {name} {score:.4}")
                });
            eprintln!(
                "[{}/{total}] {task} · {arm} · campaign {k}: {} · best {best} · {} proposals",
                index + 1,
                summary.stop.describe(),
                summary.proposals
            );
        }
        Progress::FinalRound { task, runs } => {
            eprintln!("final protocol, task {task}: {runs} run(s) to train");
        }
        Progress::FinalRun { done, total, run } => {
            if done % 10 == 0 || done == total {
                eprintln!(
                    "  {done}/{total} (last: {:?} {})",
                    run.status,
                    run.score.map_or("–".into(), |s| format!("{s:.4}"))
                );
            }
        }
    }
}
