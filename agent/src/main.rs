//! The `autoarch` command-line tool: argument parsing, wiring and printing. The logic lives in
//! the library crates.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use autoarch_agent::format::{grouped, op_histogram};
use autoarch_agent::{archive_cmd, UsageError};
use autoarch_archive::{Archive, NewCandidate, ProposerKind};
use autoarch_sandbox::isolate::{serve_child, trace_isolated, ChildCommand};
use autoarch_sandbox::{
    printer, reference_markdown, render_all, Limits, TaskShape, TraceConfig, TraceOutcome,
};
use clap::{Parser, Subcommand, ValueEnum};

use autoarch_agent::run_cmd::TRACE_CHILD;

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
    Run(autoarch_agent::run_cmd::RunArgs),
    /// Write a commented example campaign file.
    Init(autoarch_agent::run_cmd::InitArgs),
    /// A markdown summary of the campaign: best candidates, best versus seeds and random sampling.
    Report(autoarch_agent::run_cmd::ReportArgs),
    /// Trace architecture code and report its shapes, parameters, FLOPs and fingerprint.
    Check {
        /// Architecture code (Starlark) defining `def model(x)`.
        file: PathBuf,
        #[command(flatten)]
        trace: TraceArgs,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// With --format: print architecture code as flat Starlark, a PyTorch module, or the graph as
    /// JSON. Without: write the whole archive to FILE.jsonl.
    Export {
        /// Architecture code to export (with --format), or the .jsonl file to write the archive to.
        file: PathBuf,
        #[command(flatten)]
        trace: TraceArgs,
        #[arg(long, value_enum)]
        format: Option<ExportFormat>,
    },
    /// Load an archive export (JSON lines) into an empty archive.
    Import { file: PathBuf },
    /// Add human designs to the archive.
    Seed {
        #[command(subcommand)]
        command: SeedCommand,
    },
    /// List candidates.
    Ls(archive_cmd::LsArgs),
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
        #[arg(long, default_value = "score")]
        metric: String,
        #[arg(short = 'n', default_value_t = 10)]
        n: usize,
        #[arg(long)]
        json: bool,
    },
    /// The Pareto front over two or more metrics.
    Pareto {
        /// Comma-separated metrics, e.g. val_loss,params.
        #[arg(long, value_delimiter = ',', required = true)]
        objectives: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Tag a candidate.
    Tag { id: u64, tag: String },
    /// Check that every record decodes and every reference resolves.
    Verify,
    /// Train and score one architecture file on a task, in an isolated worker process.
    Eval(autoarch_agent::eval_cmd::EvalArgs),
    /// Serve evaluation jobs: JSON lines on stdin, progress and results as JSON lines on stdout.
    Worker,
    /// Print the language reference (the op registry) as markdown.
    Ops,
    /// List the built-in tasks and what they bind.
    Tasks,
    #[command(name = TRACE_CHILD, hide = true)]
    TraceChild,
}

#[derive(Subcommand)]
enum SeedCommand {
    /// Check each file with the sandbox and add it as a human design; files that do not trace
    /// are refused with their diagnostics, duplicates are reported and not added.
    Add {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The task (default: each file's `# task:` header, else mqar).
        #[arg(long)]
        task: Option<String>,
        /// Tags for every added candidate.
        #[arg(long)]
        tag: Vec<String>,
    },
}

#[derive(clap::Args)]
struct TraceArgs {
    /// The task whose input and output shapes the code must fit (default: the file's
    /// `# task: NAME` header line, else mqar).
    #[arg(long)]
    task: Option<String>,
    /// Refuse models with more trainable parameters than this.
    #[arg(long)]
    max_params: Option<u64>,
    /// Refuse models with more forward FLOPs per sample than this.
    #[arg(long)]
    max_flops: Option<u64>,
    /// Memory limit of the trace process, in MiB.
    #[arg(long)]
    memory_limit: Option<u64>,
    /// Wall-clock deadline of the trace, in seconds.
    #[arg(long)]
    deadline: Option<f64>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    Starlark,
    Pytorch,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
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

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let default_dir = PathBuf::from("autoarch-archive");
    let dir = cli.archive.as_deref().unwrap_or(&default_dir);
    match cli.command {
        Command::Run(args) => autoarch_agent::run_cmd::run(args, cli.archive.as_deref()),
        Command::Init(args) => autoarch_agent::run_cmd::init(args),
        Command::Report(args) => autoarch_agent::run_cmd::report(args, dir),
        Command::Check { file, trace, json } => check(&file, &trace, json),
        Command::Export {
            file,
            trace,
            format: Some(format),
        } => export(&file, &trace, format),
        Command::Export {
            file, format: None, ..
        } => archive_cmd::export(dir, &file),
        Command::Import { file } => archive_cmd::import(dir, &file),
        Command::Seed {
            command: SeedCommand::Add { files, task, tag },
        } => seed_add(dir, &files, task, &tag),
        Command::Ls(args) => archive_cmd::ls(dir, args),
        Command::Show { id, json } => archive_cmd::show(dir, id, json),
        Command::Lineage { id } => archive_cmd::lineage(dir, id),
        Command::Diff { a, b } => archive_cmd::diff(dir, a, b),
        Command::Top { metric, n, json } => archive_cmd::top(dir, &metric, n, json),
        Command::Pareto { objectives, json } => archive_cmd::pareto(dir, &objectives, json),
        Command::Tag { id, tag } => archive_cmd::tag(dir, id, &tag),
        Command::Verify => archive_cmd::verify(dir),
        Command::Eval(args) => autoarch_agent::eval_cmd::eval(args),
        Command::Worker => {
            autoarch_evaluator::worker::serve().context("worker")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ops => {
            print!("{}", reference_markdown());
            Ok(ExitCode::SUCCESS)
        }
        Command::Tasks => {
            print_tasks();
            Ok(ExitCode::SUCCESS)
        }
        Command::TraceChild => {
            serve_child().context("trace child")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Trace each file, refuse what does not trace, report duplicates, add the rest.
fn seed_add(
    dir: &Path,
    files: &[PathBuf],
    task: Option<String>,
    tags: &[String],
) -> anyhow::Result<ExitCode> {
    let archive = Archive::open(dir)?;
    let mut refused = 0;
    for file in files {
        let args = TraceArgs {
            task: task.clone(),
            max_params: None,
            max_flops: None,
            memory_limit: None,
            deadline: None,
        };
        let (source, task, outcome) = trace_file(file, &args)?;
        let traced = match outcome {
            TraceOutcome::Ok(t) => t,
            TraceOutcome::Invalid { diagnostics } => {
                eprint!("{}", render_all(&diagnostics, &file.display().to_string()));
                eprintln!("refused: {} does not trace; nothing stored", file.display());
                refused += 1;
                continue;
            }
        };
        if let Some(first) = archive.find_fingerprint(&traced.fingerprint.0)? {
            let name = archive
                .candidate(first)?
                .map(|c| c.name)
                .unwrap_or_default();
            println!(
                "duplicate: {} is the same design as candidate {first} ({name}); not added",
                file.display()
            );
            continue;
        }
        let header = autoarch_agent::review::seed_header(&source);
        let name = header.get("name").cloned().unwrap_or_else(|| {
            file.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        let id = archive.insert_candidate(NewCandidate {
            name: name.clone(),
            motivation: header.get("idea").cloned().unwrap_or_default(),
            code: source,
            task: task.name.clone(),
            fingerprint: traced.fingerprint.0.clone(),
            stats: traced.stats.clone(),
            parents: Vec::new(),
            proposer: ProposerKind::Human,
            model: None,
            prompt: None,
            response: None,
            tokens: Default::default(),
            cost_usd: 0.0,
            calls: vec![],
            tags: tags.to_vec(),
            source: Some(file.display().to_string()),
            duplicate_of: None,
            island: 0,
        })?;
        archive.log_event(
            "seed_added",
            &format!("{} from {}", name, file.display()),
            Some(id),
        )?;
        println!("added candidate {id}: {name} ({})", file.display());
    }
    Ok(if refused > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn read_source(file: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).map_err(|e| {
        UsageError(format!(
            "cannot read {}: {e}; pass a file of architecture code (see seeds/ for examples)",
            file.display()
        ))
        .into()
    })
}

/// The task named by `--task`, else by a `# task: NAME` header line, else mqar.
fn task_for(source: &str, args: &TraceArgs) -> anyhow::Result<TaskShape> {
    let name = args
        .task
        .clone()
        .or_else(|| autoarch_agent::header_task(source))
        .unwrap_or_else(|| "mqar".to_string());
    TaskShape::by_name(&name).ok_or_else(|| {
        UsageError(format!(
            "unknown task {name:?}; choose one of: {} (see `autoarch tasks`)",
            TaskShape::names().join(", ")
        ))
        .into()
    })
}

fn trace_file(file: &Path, args: &TraceArgs) -> anyhow::Result<(String, TaskShape, TraceOutcome)> {
    let source = read_source(file)?;
    let task = task_for(&source, args)?;
    let mut limits = Limits::default();
    if let Some(p) = args.max_params {
        limits.max_params = p;
    }
    if let Some(f) = args.max_flops {
        limits.max_flops = f;
    }
    if let Some(m) = args.memory_limit {
        limits.memory_mb = m;
    }
    if let Some(d) = args.deadline {
        if !(d > 0.0 && d.is_finite()) {
            return Err(UsageError(format!(
                "--deadline must be a positive number of seconds, got {d}"
            ))
            .into());
        }
        limits.deadline_seconds = d;
    }
    let config = TraceConfig {
        task: task.clone(),
        limits,
    };
    let child = ChildCommand {
        program: std::env::current_exe().context("locating the autoarch binary")?,
        args: vec![TRACE_CHILD.to_string()],
    };
    let outcome = trace_isolated(&source, &config, &child)?;
    Ok((source, task, outcome))
}

fn check(file: &Path, args: &TraceArgs, json: bool) -> anyhow::Result<ExitCode> {
    let (_, task, outcome) = trace_file(file, args)?;
    if json {
        let value = match &outcome {
            TraceOutcome::Ok(t) => serde_json::json!({
                "ok": true,
                "task": task.name,
                "params": t.stats.params,
                "flops": t.stats.flops,
                "nodes": t.stats.nodes,
                "depth": t.stats.depth,
                "fingerprint": t.fingerprint,
                "output_shape": t.stats.output_shape,
                "op_histogram": t.stats.op_histogram,
                "diagnostics": [],
            }),
            TraceOutcome::Invalid { diagnostics } => serde_json::json!({
                "ok": false,
                "task": task.name,
                "params": null,
                "flops": null,
                "nodes": null,
                "depth": null,
                "fingerprint": null,
                "output_shape": null,
                "diagnostics": diagnostics,
            }),
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        match &outcome {
            TraceOutcome::Ok(t) => {
                let s = &t.stats;
                println!("ok: {} traces for task {}", file.display(), task.name);
                println!("  output       {}", s.output_shape);
                println!("  params       {}", grouped(s.params));
                if s.buffers > 0 {
                    println!("  buffers      {}", grouped(s.buffers));
                }
                println!("  FLOPs        {} per sample", grouped(s.flops));
                println!("  nodes        {} (depth {})", s.nodes, s.depth);
                println!("  fingerprint  {}", t.fingerprint);
                println!("  ops          {}", op_histogram(&s.op_histogram));
            }
            TraceOutcome::Invalid { diagnostics } => {
                eprint!("{}", render_all(diagnostics, &file.display().to_string()));
            }
        }
    }
    Ok(match outcome {
        TraceOutcome::Ok(_) => ExitCode::SUCCESS,
        TraceOutcome::Invalid { .. } => ExitCode::FAILURE,
    })
}

fn export(file: &Path, args: &TraceArgs, format: ExportFormat) -> anyhow::Result<ExitCode> {
    let (_, _, outcome) = trace_file(file, args)?;
    let traced = match &outcome {
        TraceOutcome::Ok(t) => t,
        TraceOutcome::Invalid { diagnostics } => {
            eprint!("{}", render_all(diagnostics, &file.display().to_string()));
            return Ok(ExitCode::FAILURE);
        }
    };
    match format {
        ExportFormat::Starlark => print!("{}", printer::to_starlark(&traced.graph)),
        ExportFormat::Pytorch => print!("{}", printer::to_pytorch(&traced.graph)),
        ExportFormat::Json => println!("{}", serde_json::to_string_pretty(traced.as_ref())?),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_tasks() {
    println!(
        "{:<9} {:<16} {:<8} {:<16} constants",
        "task", "input", "dtype", "output"
    );
    for t in TaskShape::builtin() {
        let constants: Vec<String> = t
            .constants
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!(
            "{:<9} {:<16} {:<8} {:<16} {}",
            t.name,
            t.input.to_string(),
            t.input_dtype.to_string(),
            t.output.to_string(),
            constants.join(" ")
        );
        println!("          {}", t.description);
    }
    println!(
        "{:<9} shapes, loss and constants from a task TOML naming .npy or safetensors data (eval --data TASK.toml)",
        "custom"
    );
}
