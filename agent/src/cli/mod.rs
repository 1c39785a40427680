//! The commands: argument parsing, exit codes and rendering. The logic lives in the library
//! (`autoarch_agent`) and the other workspace crates.
//!
//! Exit codes: 0 success; 1 a finding about the code (diagnostics) or a campaign that cannot
//! go on; 2 a usage error, with a message that says what to do; 130 a campaign stopped by
//! Ctrl-C.

mod benchmark;
mod check;
mod eval;
mod render;
mod report;
mod review;
mod run;
mod seed;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use autoarch_archive::Metric;
use clap::{Parser, Subcommand};

/// The hidden subcommand that runs one trace in an isolated child process.
pub const TRACE_CHILD: &str = "__trace-child";

/// An error in how the tool was called (exit 2), as opposed to a finding about the code (exit 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

#[derive(Parser)]
#[command(
    name = "autoarch",
    version,
    about = "Autonomous neural-architecture discovery"
)]
struct Cli {
    /// The archive directory [default: autoarch-archive; for `run`, the campaign file's].
    #[arg(long, global = true, env = "AUTOARCH_ARCHIVE")]
    archive: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a discovery campaign (the embedded default without FILE); run it again to resume.
    Run(run::RunArgs),
    /// Write a commented example campaign file.
    Init(run::InitArgs),
    /// The discovery benchmark: the suite's arms at equal compute against the seeds and random
    /// sampling, scored by one final protocol; run it again to continue.
    Benchmark(benchmark::BenchmarkArgs),
    /// The web dashboard of an archive (finished, or running: it follows the campaign's
    /// snapshot), on http://127.0.0.1:8321/ by default.
    Serve(serve::ServeArgs),
    /// A markdown summary of the campaign: best candidates, best versus seeds and random sampling.
    Report(report::ReportArgs),
    /// Trace architecture code and report its shapes, parameters, FLOPs and fingerprint.
    Check(check::CheckArgs),
    /// With --format: print architecture code as flat Starlark, a PyTorch module, or the graph as
    /// JSON. Without: write the whole archive to FILE.jsonl.
    Export(check::ExportArgs),
    /// Load an archive export (JSON lines) into an empty archive.
    Import { file: PathBuf },
    /// Add human designs to the archive.
    Seed {
        #[command(subcommand)]
        command: seed::SeedCommand,
    },
    /// List candidates.
    Ls(review::LsArgs),
    /// Everything about one candidate: code, motivation, metrics, curve, parents, children.
    Show {
        id: u64,
        #[arg(long)]
        json: bool,
    },
    /// A candidate's ancestors and descendants.
    Lineage { id: u64 },
    /// The difference between two candidates' code.
    Diff { a: u64, b: u64 },
    /// The best candidates by a metric.
    Top {
        /// score, val_loss, val_accuracy, val_bpc, val_mse, params or flops.
        #[arg(long, default_value = "score")]
        metric: Metric,
        #[arg(short = 'n', default_value_t = 10)]
        n: usize,
        #[arg(long)]
        json: bool,
    },
    /// The Pareto front over two or more metrics.
    Pareto {
        /// Comma-separated metrics, e.g. val_loss,params.
        #[arg(long, value_delimiter = ',', required = true)]
        objectives: Vec<Metric>,
        #[arg(long)]
        json: bool,
    },
    /// Tag a candidate.
    Tag { id: u64, tag: String },
    /// Check that every record decodes and every reference resolves.
    Verify,
    /// Train and score one architecture file on a task, in an isolated worker process.
    Eval(eval::EvalArgs),
    /// Serve evaluation jobs: JSON lines on stdin, progress and results as JSON lines on stdout.
    Worker {
        /// Run each job in a local worker of this one's, under the job's time and memory
        /// limits (what a campaign's remote launchers start: `srun`, `ssh`, `kubectl exec`).
        #[arg(long)]
        supervise: bool,
    },
    /// Print the language reference (the op registry) as markdown.
    Ops,
    /// List the built-in tasks and what they bind.
    Tasks,
    #[command(name = TRACE_CHILD, hide = true)]
    TraceChild,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let default_dir = PathBuf::from("autoarch-archive");
    let dir = cli.archive.as_deref().unwrap_or(&default_dir);
    match cli.command {
        Command::Run(args) => run::run(args, cli.archive.as_deref()),
        Command::Init(args) => run::init(args),
        Command::Report(args) => report::report(args, dir),
        Command::Serve(args) => serve::serve(args, dir),
        Command::Check(args) => check::check(&args),
        Command::Export(args) => match args.format {
            Some(format) => check::export(&args, format),
            None => review::export(dir, &args.file),
        },
        Command::Import { file } => review::import(dir, &file),
        Command::Seed {
            command: seed::SeedCommand::Add { files, task, tag },
        } => seed::add(dir, &files, task, &tag),
        Command::Ls(args) => review::ls(dir, args),
        Command::Show { id, json } => review::show(dir, id, json),
        Command::Lineage { id } => review::lineage(dir, id),
        Command::Diff { a, b } => review::diff(dir, a, b),
        Command::Top { metric, n, json } => review::top(dir, metric, n, json),
        Command::Pareto { objectives, json } => review::pareto(dir, &objectives, json),
        Command::Tag { id, tag } => review::tag(dir, id, &tag),
        Command::Verify => review::verify(dir),
        Command::Eval(args) => eval::eval(args),
        Command::Benchmark(args) => benchmark::benchmark(args),
        Command::Worker { supervise: false } => {
            autoarch_evaluator::worker::serve().context("worker")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker { supervise: true } => {
            autoarch_evaluator::worker::serve_supervised(binary()?.local_worker())
                .context("supervising worker")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ops => {
            print!("{}", autoarch_sandbox::reference_markdown());
            Ok(ExitCode::SUCCESS)
        }
        Command::Tasks => {
            check::print_tasks();
            Ok(ExitCode::SUCCESS)
        }
        Command::TraceChild => {
            autoarch_sandbox::isolate::serve_child().context("trace child")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The trace child: this very binary.
pub fn trace_child() -> anyhow::Result<autoarch_sandbox::isolate::ChildCommand> {
    Ok(binary()?.trace_child)
}

/// This binary, as workers and the trace child are started from it.
pub fn binary() -> anyhow::Result<autoarch_agent::machine::Binary> {
    let exe = std::env::current_exe().context("locating the autoarch binary")?;
    Ok(autoarch_agent::machine::Binary {
        trace_child: autoarch_sandbox::isolate::ChildCommand {
            program: exe.clone(),
            args: vec![TRACE_CHILD.to_string()],
        },
        exe,
    })
}

/// A runtime for the async parts (campaigns, the trace child of `seed add`).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}
