//! Running a suite ([`run`]): its campaigns one after another, then the final protocol, then
//! `report.md`, `results.json` and the plots in the output directory. The same call continues an
//! interrupted benchmark: campaigns resume (a finished one stops at once, its budget spent) and
//! final runs already stored are not run again.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use autoarch_sandbox::{Limits, TraceConfig, TraceOutcome};

use super::protocol::{self, Store};
use super::provenance::Recorder;
use super::{plan, report, subjects, Protocol, Results, Suite};
use crate::campaign::{self, Campaign, Interrupt, RunSummary, Stop};
use crate::machine::{Binary, Evaluate, Trace};

/// Why a benchmark cannot run or go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The output directory holds another suite's benchmark.
    #[error("{0} holds a benchmark of another suite (or preset, arms or workers): give another --out, or the same suite and options to continue it")]
    OtherSuite(PathBuf),
    #[error("task {0}: no seed traces")]
    NoSeedTraces(String),
    /// A task of the suite cannot be loaded, or its seeds read.
    #[error("task {task}: {message}")]
    Task { task: String, message: String },
    /// A campaign's proposer cannot be built (its LLM configuration).
    #[error("{0}")]
    Proposer(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Campaign(#[from] campaign::Error),
}

impl Error {
    /// Whether the suite or its options are at fault (the command line's usage error), not the
    /// machine.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::OtherSuite(_) | Error::NoSeedTraces(_) | Error::Task { .. } | Error::Proposer(_)
        )
    }
}

pub type Result<T> = std::result::Result<T, Error>;

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { what, path, source }
}

/// What the benchmark reports as it goes.
pub enum Progress<'a> {
    /// A campaign of the plan ended (`index` of `total`, from 0).
    Campaign {
        index: usize,
        total: usize,
        task: &'a str,
        arm: &'a str,
        k: u32,
        summary: &'a RunSummary,
    },
    /// The final protocol starts a round of `runs` runs on `task`.
    FinalRound { task: &'a str, runs: usize },
    /// A final run ended: `done` of the round's `total`.
    FinalRun {
        done: usize,
        total: usize,
        run: &'a protocol::FinalRun,
    },
}

/// How a benchmark run ended.
pub enum Outcome {
    /// Everything ran; the report is written.
    Finished(Box<Results>),
    /// Interrupted: the same call continues.
    Interrupted,
    /// A campaign cannot go on (the machine, the proposer): why; the same call continues once
    /// it is fixed.
    Stopped(Stop),
}

/// Runs (or resumes) the benchmark of `suite` into `out`, with workers and the trace child
/// started from `binary`; `interrupt` stops it cleanly. `args` is the command line, recorded in
/// `run.json`.
pub async fn run(
    suite: &Suite,
    out: &Path,
    binary: &Binary,
    args: &[String],
    interrupt: &Interrupt,
    on: &mut (dyn FnMut(Progress) + Send),
) -> Result<Outcome> {
    claim(out, suite)?;
    // Where and how this session runs, in `run.json`: its wall time is written after every
    // campaign and phase, so an interrupted session counts too.
    let session = Recorder::start(out, args).map_err(io("writing", &out.join("run.json")))?;
    let record = |s: &Recorder| s.record(out).map_err(io("writing", &out.join("run.json")));
    let caps = size_caps(suite, binary).await?;
    let stopped = run_campaigns(suite, out, &caps, binary, interrupt, &session, on).await?;
    record(&session)?;
    if let Some(stop) = stopped {
        return Ok(match stop {
            Stop::Interrupted => Outcome::Interrupted,
            stop => Outcome::Stopped(stop),
        });
    }
    let finished = final_protocol(suite, out, binary, interrupt, on).await?;
    record(&session)?;
    if !finished {
        return Ok(Outcome::Interrupted);
    }
    let store = Store::open(out).map_err(io("reading", &out.join("final.jsonl")))?;
    let results = super::results(suite, out, &store)?;
    write_report(out, &results)?;
    Ok(Outcome::Finished(Box::new(results)))
}

/// Writes `report.md`, `results.json` and the plots.
fn write_report(out: &Path, results: &Results) -> Result<()> {
    let plots = out.join("plots");
    std::fs::create_dir_all(&plots).map_err(io("creating", &plots))?;
    for t in &results.tasks {
        for (file, svg) in super::plots::task_plots(t) {
            let path = plots.join(&file);
            std::fs::write(&path, svg).map_err(io("writing", &path))?;
        }
    }
    let path = out.join("report.md");
    std::fs::write(&path, report::render(results)).map_err(io("writing", &path))?;
    let json = serde_json::to_string_pretty(results).map_err(campaign::Error::from)? + "\n";
    let path = out.join("results.json");
    std::fs::write(&path, json).map_err(io("writing", &path))
}

/// The output directory holds this suite's benchmark or nothing: a different suite there is
/// refused, so that results of two suites are never mixed.
fn claim(out: &Path, suite: &Suite) -> Result<()> {
    std::fs::create_dir_all(out).map_err(io("creating", out))?;
    let path = out.join("suite.json");
    let ours = serde_json::to_string_pretty(suite).map_err(campaign::Error::from)? + "\n";
    match std::fs::read_to_string(&path) {
        Ok(theirs) if theirs == ours => Ok(()),
        Ok(_) => Err(Error::OtherSuite(out.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&path, ours).map_err(io("writing", &path))
        }
        Err(e) => Err(io("reading", &path)(e)),
    }
}

/// Per task, the parameter cap: `size_cap` × the largest seed (traced in the trace child).
async fn size_caps(suite: &Suite, binary: &Binary) -> Result<BTreeMap<String, u64>> {
    let tracer = binary.tracer();
    let mut caps = BTreeMap::new();
    for t in &suite.tasks {
        let refused = |message: String| Error::Task {
            task: t.name.clone(),
            message,
        };
        let shape = autoarch_evaluator::Task::load(&t.task, 0)
            .map_err(|e| refused(e.to_string()))?
            .shape;
        let config = TraceConfig {
            task: shape,
            limits: Limits::default(),
        };
        let mut largest = 0;
        for spec in &t.seeds {
            for d in spec
                .designs(&t.task.name)
                .map_err(|e| refused(e.to_string()))?
            {
                let outcome = tracer
                    .trace(&d.code, &config)
                    .await
                    .map_err(campaign::Error::from)?;
                if let TraceOutcome::Ok(traced) = outcome {
                    largest = largest.max(traced.stats.params);
                }
            }
        }
        if largest == 0 {
            return Err(Error::NoSeedTraces(t.name.clone()));
        }
        caps.insert(
            t.name.clone(),
            (largest as f64 * suite.size_cap).round() as u64,
        );
    }
    Ok(caps)
}

/// Runs (or resumes) every campaign of the plan; the stop when the benchmark cannot go on.
async fn run_campaigns(
    suite: &Suite,
    out: &Path,
    caps: &BTreeMap<String, u64>,
    binary: &Binary,
    interrupt: &Interrupt,
    session: &Recorder,
    on: &mut (dyn FnMut(Progress) + Send),
) -> Result<Option<Stop>> {
    let plan = plan(suite);
    // Campaigns that ended are not run again: a campaign that used up its space would propose
    // another round of duplicates on every resume.
    let done_path = out.join("campaigns.done");
    let done: Vec<String> = std::fs::read_to_string(&done_path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    for (index, p) in plan.iter().enumerate() {
        let (task, arm) = (&suite.tasks[p.task], &suite.arms[p.arm]);
        let label = format!("{}/{}/{}", task.name, arm.name, p.k);
        if done.contains(&label) {
            continue;
        }
        let config = suite.campaign(task, arm, p.k, out, caps.get(&task.name).copied());
        let proposer = crate::propose::for_config(&config).map_err(Error::Proposer)?;
        let mut c = Campaign::with_binary(config, proposer, binary)?;
        c.interrupt = interrupt.clone();
        let summary = c.run().await?;
        session
            .record(out)
            .map_err(io("writing", &out.join("run.json")))?;
        on(Progress::Campaign {
            index,
            total: plan.len(),
            task: &task.name,
            arm: &arm.name,
            k: p.k,
            summary: &summary,
        });
        match summary.stop {
            Stop::Interrupted => return Ok(Some(Stop::Interrupted)),
            // A campaign whose seeds all failed is that campaign's result, and running it
            // again gives the same (its failed evaluations are stored): the benchmark records
            // it and goes on, where `autoarch run` reports it as a failure (exit 1).
            Stop::NoParent => record_done(&done_path, &label)?,
            stop if stop.is_failure() => return Ok(Some(stop)),
            _ => record_done(&done_path, &label)?,
        }
    }
    Ok(None)
}

/// Appends a campaign's label to the list of campaigns that ended.
fn record_done(done_path: &Path, label: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(done_path)
        .map_err(io("writing", done_path))?;
    writeln!(f, "{label}").map_err(io("writing", done_path))
}

/// Trains what the final protocol still owes, task by task; `false` when interrupted. A task
/// takes two rounds when it has a long budget: the learning-rate sweep at the search's budget
/// first, then the long runs at each design's best rate.
async fn final_protocol(
    suite: &Suite,
    out: &Path,
    binary: &Binary,
    interrupt: &Interrupt,
    on: &mut (dyn FnMut(Progress) + Send),
) -> Result<bool> {
    let mut store = Store::open(out).map_err(io("reading", &out.join("final.jsonl")))?;
    // The protocol's runs stop on a flag; the interrupt sets it.
    let cancel = Arc::new(AtomicBool::new(interrupt.is_triggered()));
    let watcher = {
        let (flag, interrupt) = (Arc::clone(&cancel), interrupt.clone());
        tokio::spawn(async move {
            interrupt.triggered().await;
            flag.store(true, Ordering::SeqCst);
        })
    };
    let finished = final_rounds(suite, out, binary, &mut store, &cancel, on).await;
    watcher.abort();
    finished
}

async fn final_rounds(
    suite: &Suite,
    out: &Path,
    binary: &Binary,
    store: &mut Store,
    cancel: &Arc<AtomicBool>,
    on: &mut (dyn FnMut(Progress) + Send),
) -> Result<bool> {
    for (t, task) in suite.tasks.iter().enumerate() {
        let s = subjects(suite, out, t)?;
        loop {
            let (owed, config) = {
                let protocol = Protocol::new(suite, out, t, store);
                let mut owed: Vec<protocol::Owed> = Vec::new();
                let swept = s
                    .seeds
                    .iter()
                    .chain(&s.holdouts)
                    .map(|(x, _)| x)
                    .chain(s.incumbents.iter().flatten().flatten().map(|(_, x, _)| x));
                // One learning-rate rule for every design: the random population is swept too.
                let random = s.random.iter().map(|(x, _)| x);
                for subject in swept.chain(random) {
                    for o in protocol.owed(subject, true) {
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
            on(Progress::FinalRound {
                task: &task.name,
                runs: total,
            });
            let pool: Arc<dyn Evaluate> =
                Arc::new(binary.workers(&config.evaluation, &config.name));
            let mut done = 0;
            protocol::run(pool, store, owed, Arc::clone(cancel), |run| {
                done += 1;
                on(Progress::FinalRun { done, total, run });
            })
            .await
            .map_err(campaign::Error::from)?;
            if cancel.load(Ordering::SeqCst) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}
