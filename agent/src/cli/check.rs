//! `autoarch check`, `autoarch export --format`, `autoarch tasks`: one file of architecture
//! code, traced in the isolated child.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use autoarch_agent::seeds::Header;
use autoarch_agent::text::{grouped, op_histogram};
use autoarch_sandbox::isolate::trace_isolated;
use autoarch_sandbox::{printer, render_all, Limits, TaskShape, TraceConfig, TraceOutcome, Traced};
use clap::ValueEnum;

use super::UsageError;

#[derive(clap::Args)]
pub struct TraceArgs {
    /// The task whose input and output shapes the code must fit (default: the file's
    /// `# task: NAME` header line, else mqar).
    #[arg(long)]
    pub task: Option<String>,
    /// Refuse models with more trainable parameters than this.
    #[arg(long)]
    pub max_params: Option<u64>,
    /// Refuse models with more forward FLOPs per sample than this.
    #[arg(long)]
    pub max_flops: Option<u64>,
    /// Memory limit of the trace process, in MiB.
    #[arg(long)]
    pub memory_limit: Option<u64>,
    /// Wall-clock deadline of the trace, in seconds.
    #[arg(long)]
    pub deadline: Option<f64>,
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// Architecture code (Starlark) defining `def model(x)`.
    pub file: PathBuf,
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Architecture code to export (with --format), or the .jsonl file to write the archive to.
    pub file: PathBuf,
    #[command(flatten)]
    pub trace: TraceArgs,
    #[arg(long, value_enum)]
    pub format: Option<ExportFormat>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Starlark,
    Pytorch,
    Json,
}

pub fn read_source(file: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).map_err(|e| {
        UsageError(format!(
            "cannot read {}: {e}; pass a file of architecture code (see seeds/ for examples)",
            file.display()
        ))
        .into()
    })
}

/// The task named by `--task`, else by a `# task: NAME` header line, else mqar.
pub fn task_for(source: &str, task: Option<&str>) -> anyhow::Result<TaskShape> {
    let name = task
        .map(str::to_string)
        .or_else(|| Header::parse(source).task())
        .unwrap_or_else(|| "mqar".to_string());
    TaskShape::by_name(&name).ok_or_else(|| {
        UsageError(format!(
            "unknown task {name:?}; choose one of: {} (see `autoarch tasks`)",
            TaskShape::names().join(", ")
        ))
        .into()
    })
}

fn limits(args: &TraceArgs) -> anyhow::Result<Limits> {
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
    Ok(limits)
}

/// Reads and traces a file in the isolated child.
pub fn trace_file(
    file: &Path,
    args: &TraceArgs,
) -> anyhow::Result<(String, TaskShape, TraceOutcome)> {
    let source = read_source(file)?;
    let task = task_for(&source, args.task.as_deref())?;
    let config = TraceConfig {
        task: task.clone(),
        limits: limits(args)?,
    };
    let outcome = trace_isolated(&source, &config, &super::trace_child()?)?;
    Ok((source, task, outcome))
}

fn check_json(task: &TaskShape, outcome: &TraceOutcome) -> serde_json::Value {
    match outcome {
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
    }
}

fn print_traced(file: &Path, task: &TaskShape, t: &Traced) {
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

pub fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let (_, task, outcome) = trace_file(&args.file, &args.trace)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&check_json(&task, &outcome))?
        );
    } else {
        match &outcome {
            TraceOutcome::Ok(t) => print_traced(&args.file, &task, t),
            TraceOutcome::Invalid { diagnostics } => {
                eprint!(
                    "{}",
                    render_all(diagnostics, &args.file.display().to_string())
                );
            }
        }
    }
    Ok(match outcome {
        TraceOutcome::Ok(_) => ExitCode::SUCCESS,
        TraceOutcome::Invalid { .. } => ExitCode::FAILURE,
    })
}

pub fn export(args: &ExportArgs, format: ExportFormat) -> anyhow::Result<ExitCode> {
    let (_, _, outcome) = trace_file(&args.file, &args.trace)?;
    let traced = match &outcome {
        TraceOutcome::Ok(t) => t,
        TraceOutcome::Invalid { diagnostics } => {
            eprint!(
                "{}",
                render_all(diagnostics, &args.file.display().to_string())
            );
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

pub fn print_tasks() {
    println!(
        "{:<14} {:<16} {:<8} {:<16} constants",
        "task", "input", "dtype", "output"
    );
    for t in TaskShape::builtin() {
        let constants: Vec<String> = t
            .constants
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!(
            "{:<14} {:<16} {:<8} {:<16} {}",
            t.name,
            t.input.to_string(),
            t.input_dtype.to_string(),
            t.output.to_string(),
            constants.join(" ")
        );
        println!("               {}", t.description);
    }
    println!(
        "{:<14} shapes, loss and constants from a task TOML naming .npy or safetensors data (eval --data TASK.toml)",
        "custom"
    );
}
