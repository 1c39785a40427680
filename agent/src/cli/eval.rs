//! `autoarch eval`: train and score one architecture file in an isolated worker.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use autoarch_evaluator::{
    EvalResult, Evaluator, Job, JobLimits, Progress, Status, TaskConfig, TrainConfig,
};
use autoarch_sandbox::{render_all, Limits, TaskKind};

use autoarch_agent::seeds::Header;

use super::UsageError;

/// What `autoarch eval` was asked to do.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Architecture code (Starlark) defining `def model(x)`.
    pub file: PathBuf,
    /// The task (default: the file's `# task: NAME` header, else mqar).
    #[arg(long)]
    pub task: Option<String>,
    /// Data file or directory (charlm, digits, fashion), or the task TOML (custom).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Training steps (default 300 when no budget is given).
    #[arg(long, conflicts_with = "seconds")]
    pub steps: Option<u64>,
    /// Training time budget in seconds.
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Seed for initialisation, data order and validation set.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Task options: sequence length (generated tasks, charlm), vocabulary (generated tasks),
    /// key-value pairs (mqar, fuzzy_recall, noisy_recall).
    #[arg(long)]
    pub seq_len: Option<usize>,
    #[arg(long)]
    pub vocab: Option<usize>,
    #[arg(long)]
    pub kv_pairs: Option<usize>,
    /// The share of noise tokens among the key-value pairs (noisy_recall).
    #[arg(long)]
    pub noise: Option<f64>,
    /// The number of tokens to copy (selective_copy).
    #[arg(long)]
    pub copy: Option<usize>,
    /// The longest key or value motif (fuzzy_recall), or the length of a key (memorization),
    /// in tokens.
    #[arg(long)]
    pub motif: Option<usize>,
    /// The seed of the fixed key-value map (memorization).
    #[arg(long)]
    pub map_seed: Option<u64>,
    /// Wall-clock limit for the whole job, in seconds; the worker is killed past it.
    #[arg(long, default_value_t = 600.0)]
    pub timeout: f64,
    /// Memory limit of the worker, in MiB.
    #[arg(long, default_value_t = 4096)]
    pub memory_limit: u64,
    /// Print one JSON object (the result) instead of text.
    #[arg(long)]
    pub json: bool,
}

fn read_code(file: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
}

pub fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let code = read_code(&args.file)?;
    let task = args
        .task
        .clone()
        .or_else(|| Header::parse(&code).task())
        .unwrap_or_else(|| "mqar".to_string());
    if TaskKind::from_name(&task).is_none() {
        return Err(UsageError(format!(
            "unknown task {task:?}; tasks are {}",
            TaskKind::listed()
        ))
        .into());
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(UsageError("--timeout must be a positive number of seconds".into()).into());
    }
    let mut train = TrainConfig {
        steps: args.steps,
        seconds: args.seconds,
        seed: args.seed,
        ..TrainConfig::default()
    };
    if let Some(b) = args.batch_size {
        train.batch_size = b;
    }
    if let Some(lr) = args.learning_rate {
        train.learning_rate = lr;
    }
    train
        .validate()
        .map_err(|e| UsageError(format!("training config: {e}")))?;
    let job = Job {
        id: args.file.display().to_string(),
        code,
        task: TaskConfig {
            name: task,
            data: args.data.clone(),
            seq_len: args.seq_len,
            vocab: args.vocab,
            kv_pairs: args.kv_pairs,
            noise: args.noise,
            copy: args.copy,
            motif: args.motif,
            map_seed: args.map_seed,
            validation_size: None,
        },
        train,
        limits: Limits::default(),
    };
    let limits = JobLimits {
        timeout: Duration::from_secs_f64(args.timeout),
        memory_mb: args.memory_limit,
    };
    let mut evaluator = Evaluator::new(super::binary()?.local_worker());
    let mut progress = |p: Progress| {
        eprintln!(
            "step {:>6}  loss {:>8.4}  {:>3.0}%  {:.1} s",
            p.step,
            p.loss,
            p.fraction * 100.0,
            p.elapsed
        );
    };
    let result = evaluator
        .evaluate(&job, limits, &mut progress)
        .map_err(|e| anyhow::anyhow!("{e}; {}", e.fix()))?;
    if args.json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &result)?;
        writeln!(out)?;
    } else {
        print_result(&args.file, &result);
    }
    Ok(if result.status == Status::Ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_result(file: &Path, r: &EvalResult) {
    println!("status        {}", r.status.as_str());
    if let Some(m) = &r.message {
        println!("message       {m}");
    }
    if !r.diagnostics.is_empty() {
        print!(
            "{}",
            render_all(&r.diagnostics, &file.display().to_string())
        );
    }
    for (k, v) in &r.metrics {
        println!("{k:<13} {v:.4}");
    }
    if r.status == Status::Ok || r.status == Status::Diverged {
        println!("params        {}", autoarch_agent::text::grouped(r.params));
        println!("flops         {}", autoarch_agent::text::grouped(r.flops));
        println!("steps         {}", r.steps);
        println!("throughput    {:.1} samples/s", r.throughput);
    }
    if let Some(l) = &r.latency_ms {
        println!(
            "latency       {:.2} ms at batch 1, {:.2} ms at batch {}",
            l.batch_1, l.training_batch, l.training_batch_size
        );
    }
    println!("wall          {:.1} s", r.wall_seconds);
    if r.peak_rss_mb > 0.0 {
        println!("peak memory   {:.0} MiB", r.peak_rss_mb);
    }
    if let Some(tail) = &r.stderr_tail {
        println!("worker stderr (last lines):\n{tail}");
    }
}
