//! `autoarch benchmark`: the suite's campaigns one after another, then the final protocol, then
//! `report.md` and `results.json` in the output directory. The same command continues an
//! interrupted benchmark: campaigns resume (a finished one stops at once, its budget spent) and
//! final runs already stored are not run again.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use autoarch_agent::benchmark::protocol::{self, Store};
use autoarch_agent::benchmark::provenance::Recorder;
use autoarch_agent::benchmark::{self, Preset, Suite};
use autoarch_agent::campaign::Stop;
use autoarch_agent::config::ProposerChoice;
use autoarch_agent::machine::{worker_command, IsolatedTracer, ProcessPool, Trace};
use autoarch_sandbox::{Limits, TraceConfig, TraceOutcome};

use super::run::{campaign, proposer, run_interruptible};
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
    claim(&out, &suite)?;
    // Where and how this session runs, in `run.json`: its wall time is written after every
    // campaign and phase, so an interrupted session counts too.
    let args: Vec<String> = std::env::args().collect();
    let session = Recorder::start(&out, &args).context("writing run.json")?;
    let caps = size_caps(&suite)?;
    let outcome = run_campaigns(&suite, &out, &caps, &session)?;
    session.record(&out).context("writing run.json")?;
    if let Some(code) = outcome {
        return Ok(code);
    }
    let finished = final_protocol(&suite, &out)?;
    session.record(&out).context("writing run.json")?;
    if !finished {
        eprintln!("interrupted: run the same command to continue");
        return Ok(ExitCode::from(130));
    }
    let store = Store::open(&out).context("reading final.jsonl")?;
    let results = benchmark::results(&suite, &out, &store)?;
    let report = benchmark::report::render(&results);
    let plots = out.join("plots");
    std::fs::create_dir_all(&plots).with_context(|| format!("creating {}", plots.display()))?;
    for t in &results.tasks {
        for (file, svg) in benchmark::plots::task_plots(t) {
            std::fs::write(plots.join(&file), svg)
                .with_context(|| format!("writing {}", plots.join(&file).display()))?;
        }
    }
    std::fs::write(out.join("report.md"), &report).context("writing report.md")?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&results)? + "\n",
    )
    .context("writing results.json")?;
    println!("{report}");
    eprintln!(
        "report: {} (and {})",
        out.join("report.md").display(),
        out.join("results.json").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The output directory holds this suite's benchmark or nothing: a different suite there is
/// refused, so that results of two suites are never mixed.
fn claim(out: &Path, suite: &Suite) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join("suite.json");
    let ours = serde_json::to_string_pretty(suite)? + "\n";
    match std::fs::read_to_string(&path) {
        Ok(theirs) if theirs == ours => Ok(()),
        Ok(_) => Err(UsageError(format!(
            "{} holds a benchmark of another suite (or preset, arms or workers): give another --out, or the same suite and options to continue it",
            out.display()
        ))
        .into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&path, ours).with_context(|| format!("writing {}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Per task, the parameter cap: `size_cap` × the largest seed (traced in the trace child).
fn size_caps(suite: &Suite) -> anyhow::Result<BTreeMap<String, u64>> {
    let tracer = IsolatedTracer {
        child: super::trace_child()?,
    };
    let rt = super::runtime()?;
    let mut caps = BTreeMap::new();
    for t in &suite.tasks {
        let shape = autoarch_evaluator::Task::load(&t.task, 0)
            .map_err(|e| UsageError(format!("task {}: {e}", t.name)))?
            .shape;
        let config = TraceConfig {
            task: shape,
            limits: Limits::default(),
        };
        let mut largest = 0;
        for spec in &t.seeds {
            for d in spec
                .designs(&t.task.name)
                .map_err(|e| UsageError(format!("task {}: {e}", t.name)))?
            {
                if let TraceOutcome::Ok(traced) = rt.block_on(tracer.trace(&d.code, &config))? {
                    largest = largest.max(traced.stats.params);
                }
            }
        }
        if largest == 0 {
            return Err(UsageError(format!("task {}: no seed traces", t.name)).into());
        }
        caps.insert(
            t.name.clone(),
            (largest as f64 * suite.size_cap).round() as u64,
        );
    }
    Ok(caps)
}

/// Runs (or resumes) every campaign of the plan; an exit code when the benchmark cannot go on.
fn run_campaigns(
    suite: &Suite,
    out: &Path,
    caps: &BTreeMap<String, u64>,
    session: &Recorder,
) -> anyhow::Result<Option<ExitCode>> {
    let plan = benchmark::plan(suite);
    // Campaigns that ended are not run again: a campaign that used up its space would propose
    // another round of duplicates on every resume.
    let done_path = out.join("campaigns.done");
    let done: Vec<String> = std::fs::read_to_string(&done_path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    for (i, p) in plan.iter().enumerate() {
        let (task, arm) = (&suite.tasks[p.task], &suite.arms[p.arm]);
        let label = format!("{}/{}/{}", task.name, arm.name, p.k);
        if done.contains(&label) {
            continue;
        }
        let config = suite.campaign(task, arm, p.k, out, caps.get(&task.name).copied());
        let proposer = proposer(&config)?;
        let mut c = campaign(config, proposer)?;
        // The benchmark prints a line per campaign, not its events.
        c.observer = Arc::new(|_| {});
        let summary = run_interruptible(&c, c.run())??;
        session.record(out).context("writing run.json")?;
        let best = summary
            .best
            .as_ref()
            .map_or("none".to_string(), |(id, name, score)| {
                format!("#{id} {name} {score:.4}")
            });
        eprintln!(
            "[{}/{}] {} · {} · campaign {}: {} · best {best} · {} proposals",
            i + 1,
            plan.len(),
            task.name,
            arm.name,
            p.k,
            summary.stop.describe(),
            summary.proposals
        );
        match summary.stop {
            Stop::Interrupted => {
                eprintln!("interrupted: run the same command to continue");
                return Ok(Some(ExitCode::from(summary.stop.exit_code())));
            }
            // A campaign whose seeds all failed is that campaign's result, and running it
            // again gives the same (its failed evaluations are stored): the benchmark records
            // it and goes on, where `autoarch run` reports it as a failure (exit 1).
            Stop::NoParent => record_done(&done_path, &label)?,
            ref stop if stop.is_failure() => {
                eprintln!("error: {}", stop.describe());
                return Ok(Some(ExitCode::from(stop.exit_code())));
            }
            _ => record_done(&done_path, &label)?,
        }
    }
    Ok(None)
}

/// Appends a campaign's label to the list of campaigns that ended.
fn record_done(done_path: &Path, label: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(done_path)
        .with_context(|| format!("writing {}", done_path.display()))?;
    writeln!(f, "{label}").with_context(|| format!("writing {}", done_path.display()))
}

/// Trains what the final protocol still owes, task by task; `false` when Ctrl-C stopped it.
/// A task takes two rounds when it has a long budget: the learning-rate sweep at the search's
/// budget first, then the long runs at each design's best rate.
fn final_protocol(suite: &Suite, out: &Path) -> anyhow::Result<bool> {
    let mut store = Store::open(out).context("reading final.jsonl")?;
    let exe = std::env::current_exe().context("locating the autoarch binary")?;
    let rt = super::runtime()?;
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let mut sigint = rt
        .block_on(async {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        })
        .context("listening for Ctrl-C")?;
    rt.spawn(async move {
        if sigint.recv().await.is_some() {
            flag.store(true, Ordering::SeqCst);
        }
    });
    for (t, task) in suite.tasks.iter().enumerate() {
        let s = benchmark::subjects(suite, out, t)?;
        loop {
            let (owed, config) = {
                let protocol = benchmark::Protocol::new(suite, out, t, &store);
                let mut owed: Vec<protocol::Owed> = Vec::new();
                let swept = s
                    .seeds
                    .iter()
                    .chain(&s.holdouts)
                    .map(|(x, _)| x)
                    .chain(s.incumbents.iter().flatten().flatten().map(|(_, x, _)| x))
                    .map(|x| (x, true));
                // One learning-rate rule for every design: the random population is swept too.
                let random = s.random.iter().map(|(x, _)| (x, true));
                for (subject, sweep) in swept.chain(random) {
                    for o in protocol.owed(subject, sweep) {
                        if !owed.iter().any(|p| p.key == o.key) {
                            owed.push(o);
                        }
                    }
                }
                (owed, protocol.config)
            };
            if owed.is_empty() {
                break;
            }
            let total = owed.len();
            eprintln!(
                "final protocol, task {}: {total} run(s) to train",
                task.name
            );
            let pool: Arc<dyn autoarch_agent::machine::Evaluate> = Arc::new(ProcessPool::new(
                worker_command(&config.evaluation, &config.name, &exe),
                config.evaluation.workers,
            ));
            let mut done = 0;
            let stop = Arc::clone(&cancel);
            rt.block_on(protocol::run(pool, &mut store, owed, stop, |run| {
                done += 1;
                if done % 10 == 0 || done == total {
                    eprintln!(
                        "  {done}/{total} (last: {:?} {})",
                        run.status,
                        run.score.map_or("–".into(), |s| format!("{s:.4}"))
                    );
                }
            }))
            .map_err(|e| anyhow::anyhow!("{}", e.explained()))?;
            if cancel.load(Ordering::SeqCst) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}
