//! `autoarch run` and `autoarch init`: campaigns from the command line, with a progress bar
//! (or one line per event when stderr is not a terminal) drawn from the run's events.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use autoarch_agent::campaign::{self, Campaign, RunEvent, RunSummary, Stop, Stored};
use autoarch_agent::config::{
    CampaignConfig, OnUnreachable, Overrides, ProposerChoice, StrategyChoice, DEFAULT_TOML,
};
use autoarch_agent::propose::mutation::MutationProposer;
use autoarch_agent::propose::Proposer;
use autoarch_agent::text::minutes;
use indicatif::{ProgressBar, ProgressStyle};

use super::UsageError;

/// The log file a campaign writes inside its archive directory.
pub const LOG_FILE: &str = "campaign.log";

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Campaign file (TOML, see `autoarch init`); without it, the embedded default campaign.
    pub config: Option<PathBuf>,
    /// The task (replaces the file's [task] table).
    #[arg(long)]
    pub task: Option<String>,
    /// The task's data file or directory (charlm, digits, fashion) or task TOML (custom).
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub proposer: Option<ProposerChoice>,
    /// The search strategy (replaces `[search] strategy`).
    #[arg(long, value_enum)]
    pub search: Option<StrategyChoice>,
    #[arg(long)]
    pub llm_base_url: Option<String>,
    #[arg(long)]
    pub llm_model: Option<String>,
    #[arg(long)]
    pub max_candidates: Option<u64>,
    /// Wall-clock budget in seconds, summed over resumes.
    #[arg(long)]
    pub max_seconds: Option<f64>,
    /// Worker processes training at once.
    #[arg(long)]
    pub workers: Option<usize>,
    /// A seed design (`FILE.star`, `library` or `library:NAME`); repeat for several. Replaces
    /// the file's `seeds`.
    #[arg(long = "seed", value_name = "SEED")]
    pub seeds: Vec<String>,
    /// Training steps of the short budget (replaces `evaluation.steps` / `seconds`).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Serve the dashboard while the campaign runs, live (at 127.0.0.1:8321 without ADDR). It
    /// stays up with the final results after the campaign ends, until Ctrl-C.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8321")]
    pub serve: Option<std::net::SocketAddr>,
}

/// The configuration `autoarch run` would use.
pub fn resolve(args: &RunArgs, archive: Option<&Path>) -> anyhow::Result<CampaignConfig> {
    let mut config = match &args.config {
        Some(path) => CampaignConfig::load(path).map_err(|e| UsageError(e.to_string()))?,
        None => CampaignConfig::embedded(),
    };
    config
        .apply(&Overrides {
            archive: archive.map(Path::to_path_buf),
            task: args.task.clone(),
            data: args.data.clone(),
            proposer: args.proposer,
            search: args.search,
            llm_base_url: args.llm_base_url.clone(),
            llm_model: args.llm_model.clone(),
            max_candidates: args.max_candidates,
            max_seconds: args.max_seconds,
            workers: args.workers,
            seeds: args.seeds.clone(),
            steps: args.steps,
        })
        .map_err(|e| UsageError(e.to_string()))?;
    // Seeds that are not there are a config error: refuse them before anything is created.
    for seed in &config.seeds {
        seed.check_exists()
            .map_err(|e| UsageError(format!("`seeds`: {e}")))?;
    }
    Ok(config)
}

/// The proposer the config asks for.
pub fn proposer(config: &CampaignConfig) -> anyhow::Result<Arc<dyn Proposer>> {
    Ok(autoarch_agent::propose::for_config(config).map_err(UsageError)?)
}

/// The proposer that takes over when the LLM stays unreachable, if the config asks for one.
fn fallback(config: &CampaignConfig) -> Option<Arc<dyn Proposer>> {
    (config.proposer.kind == ProposerChoice::Llm
        && config.llm.on_unreachable == OnUnreachable::Mutation)
        .then(|| {
            Arc::new(MutationProposer {
                max_edits: config.proposer.max_edits,
                kinds: config.proposer.edits.clone(),
            }) as Arc<dyn Proposer>
        })
}

/// Sends the campaign's tracing log to `campaign.log` in the archive directory.
pub fn start_log(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(LOG_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("AUTOARCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
    Ok(())
}

/// A campaign with the real machine: worker processes and the isolated trace child.
pub fn campaign(config: CampaignConfig, proposer: Arc<dyn Proposer>) -> anyhow::Result<Campaign> {
    Ok(Campaign::with_binary(config, proposer, &super::binary()?)?)
}

/// Runs a campaign future with Ctrl-C wired to the campaign's interrupt.
pub fn run_interruptible<T>(
    campaign: &Campaign,
    work: impl std::future::Future<Output = T>,
) -> anyhow::Result<T> {
    let interrupt = campaign.interrupt.clone();
    super::runtime()?.block_on(async move {
        // Registered now, so a Ctrl-C at any point from here on is a clean stop.
        let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .context("listening for Ctrl-C")?;
        tokio::spawn(async move {
            if sigint.recv().await.is_some() {
                interrupt.trigger();
            }
        });
        Ok(work.await)
    })
}

fn print_llm(config: &CampaignConfig) {
    let l = &config.llm;
    let models: Vec<String> = l.model_choices().into_iter().map(|m| m.name).collect();
    let key = if autoarch_agent::propose::llm::api_key(l).is_some() {
        ""
    } else {
        ": not set, none sent"
    };
    eprintln!(
        "llm proposer: {} at {} (key from ${}{key})",
        models.join(", "),
        l.base_url.as_deref().unwrap_or(""),
        l.api_key_env,
    );
}

pub fn run(args: RunArgs, archive: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = resolve(&args, archive)?;
    let proposer = proposer(&config)?;
    let fallback = fallback(&config);
    let dir = config.archive.clone();
    // The task is loaded (and so checked) before the archive or its log is created.
    let mut campaign = campaign(config, proposer)?;
    start_log(&dir)?;
    campaign.fallback = fallback;
    let progress = Progress::new(std::io::stderr().is_terminal());
    campaign.observer = progress.observer();
    let c = &campaign.config;
    if c.proposer.kind == ProposerChoice::Llm {
        print_llm(c);
    }
    eprintln!(
        "campaign {:?} on {} · {} search · archive {} · {} workers · log {}",
        c.name,
        c.task.name,
        c.search.strategy.as_str(),
        dir.display(),
        c.evaluation.workers,
        dir.join(LOG_FILE).display()
    );
    let custom_archive =
        archive.is_some() || campaign.config.archive != Path::new("autoarch-archive");
    let summary = match args.serve {
        None => {
            let summary = run_interruptible(&campaign, campaign.run())??;
            progress.finish();
            print_summary(&campaign.config, &summary, custom_archive);
            summary
        }
        Some(addr) => run_serving(campaign, &progress, addr, custom_archive)?,
    };
    if summary.stop.is_failure() {
        eprintln!("error: {}", summary.stop.describe());
    }
    Ok(ExitCode::from(summary.stop.exit_code()))
}

/// Runs the campaign with its dashboard, then keeps the dashboard up until Ctrl-C (unless
/// Ctrl-C stopped the campaign).
fn run_serving(
    mut campaign: Campaign,
    progress: &Progress,
    addr: std::net::SocketAddr,
    custom_archive: bool,
) -> anyhow::Result<RunSummary> {
    use autoarch_agent::serve::{self, Dashboard};
    let rt = super::runtime()?;
    let listener = rt.block_on(super::serve::listen(addr))?;
    // Events go to the progress display and to the dashboard.
    let slot: Arc<std::sync::OnceLock<Arc<Dashboard>>> = Arc::default();
    let (draw, to_dashboard) = (campaign.observer.clone(), Arc::clone(&slot));
    campaign.observer = Arc::new(move |e| {
        draw(e);
        if let Some(d) = to_dashboard.get() {
            d.observe(e);
        }
    });
    let campaign = Arc::new(campaign);
    let dash = Dashboard::live(Arc::clone(&campaign), super::serve::tracer()?)?;
    let _ = slot.set(Arc::clone(&dash));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(serve::serve(listener, Arc::clone(&dash), async move {
        let _ = stopped.await;
    }));
    let (interrupt, running) = (campaign.interrupt.clone(), Arc::clone(&campaign));
    let summary = rt.block_on(async move {
        let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .context("listening for Ctrl-C")?;
        let first = tokio::spawn(async move {
            if sigint.recv().await.is_some() {
                interrupt.trigger();
            }
        });
        let summary = running.run().await;
        first.abort();
        anyhow::Ok(summary)
    })??;
    progress.finish();
    print_summary(&campaign.config, &summary, custom_archive);
    dash.observe(&RunEvent::Note(format!(
        "the campaign stopped: {}",
        summary.stop.describe()
    )));
    if !matches!(summary.stop, Stop::Interrupted) {
        eprintln!("the campaign stopped; the dashboard stays up with its results until Ctrl-C");
        rt.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
    }
    let _ = stop.send(());
    let _ = rt.block_on(server);
    Ok(summary)
}

/// Draws a run's events: a bar with news above it on a terminal, one line per event otherwise.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    terminal: bool,
}

impl Progress {
    pub fn new(terminal: bool) -> Progress {
        let bar = if terminal {
            ProgressBar::no_length()
        } else {
            ProgressBar::hidden()
        };
        Progress { bar, terminal }
    }

    pub fn observer(&self) -> campaign::Observer {
        let me = self.clone();
        Arc::new(move |e| me.draw(e))
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn say(&self, line: &str) {
        if self.terminal {
            self.bar.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    fn start(&self, total: Option<u64>) {
        if !self.terminal {
            return;
        }
        let template = match total {
            Some(n) => {
                self.bar.set_length(n);
                "{spinner} {elapsed_precise} [{bar:24}] {pos}/{len} candidates, ETA {eta}  {msg}"
            }
            None => "{spinner} {elapsed_precise} {pos} candidates  {msg}",
        };
        self.bar.set_style(
            ProgressStyle::with_template(template)
                .expect("a valid template")
                .progress_chars("=> "),
        );
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    fn draw(&self, e: &RunEvent) {
        match e {
            RunEvent::Started { total, .. } => self.start(*total),
            RunEvent::Selected { .. } => {}
            RunEvent::Stored {
                id, name, stored, ..
            } => {
                self.say(&format!("#{id} {name}: {}", stored.as_str()));
                if *stored != Stored::Queued {
                    self.bar.inc(1);
                }
            }
            RunEvent::Evaluated {
                id,
                name,
                fidelity,
                seed,
                status,
                score,
                message,
            } => {
                let detail = match (score, message) {
                    (Some(s), _) => format!(" score {s:.4}"),
                    (None, Some(m)) => format!(" ({})", m.lines().next().unwrap_or("")),
                    (None, None) => String::new(),
                };
                let status = status.as_str();
                self.say(&format!(
                    "#{id} {name} [fidelity {fidelity}, seed {seed}]: {status}{detail}"
                ));
                if fidelity.is_short() {
                    self.bar.inc(1);
                }
            }
            RunEvent::Promoted { id, runs, factor } => self.say(&format!(
                "#{id} promoted: {runs} runs at {factor}× the budget"
            )),
            RunEvent::Insight(text) => self.say(&format!("insight: {text}")),
            RunEvent::Note(line) => self.say(line),
            RunEvent::Progress {
                running,
                done,
                failed,
                duplicates,
                best,
            } => {
                let best = best.map_or("-".into(), |(id, s)| format!("{s:.4} (#{id})"));
                self.bar.set_message(format!(
                    "running {running} · done {done} · failed {failed} · dup {duplicates} · best {best}"
                ));
            }
        }
    }
}

fn print_summary(config: &CampaignConfig, s: &RunSummary, custom_archive: bool) {
    println!("campaign {:?}: {}", config.name, s.stop.describe());
    println!(
        "  this run: {} evaluations ok, {} failed; {} seeds in the archive",
        s.evaluated, s.failed, s.seeds
    );
    let made = s.traced + s.untraced;
    if made > 0 {
        println!(
            "  proposals this run: {made} ({} traced = {:.0}%, {} did not trace, {} duplicates)",
            s.traced,
            100.0 * s.traced as f64 / made as f64,
            s.untraced,
            s.duplicates
        );
    }
    println!(
        "  proposals in all: {}{}; promoted: {}",
        s.proposals,
        config
            .budget
            .max_candidates
            .map(|m| format!(" of {m}"))
            .unwrap_or_default(),
        s.promoted
    );
    println!(
        "  elapsed {} this run, {} in all; worker utilisation {:.0}% of {} workers",
        minutes(s.run_seconds),
        minutes(s.elapsed_seconds),
        100.0 * s.utilisation,
        config.evaluation.workers
    );
    if let Some((id, name, score)) = &s.best {
        println!("  best: #{id} {name}  score {score:.4}");
    }
    if let Some((id, name, score)) = &s.best_seed {
        println!("  best seed: #{id} {name}  score {score:.4}");
    }
    let a = if custom_archive {
        format!(" --archive {}", config.archive.display())
    } else {
        String::new()
    };
    println!("review:");
    println!("  autoarch{a} top");
    if let Some((id, _, _)) = &s.best {
        println!("  autoarch{a} show {id}");
        println!("  autoarch{a} lineage {id}");
    }
    println!("  autoarch{a} report");
    if matches!(s.stop, Stop::Interrupted | Stop::Budget(_)) {
        println!("resume: run the same command again");
    }
}

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Where to write the example campaign.
    #[arg(default_value = "campaign.toml")]
    pub file: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

pub fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    if args.file.exists() && !args.force {
        return Err(UsageError(format!(
            "{} exists; pass --force to overwrite it",
            args.file.display()
        ))
        .into());
    }
    std::fs::write(&args.file, DEFAULT_TOML)
        .with_context(|| format!("writing {}", args.file.display()))?;
    println!(
        "wrote {} (the embedded default campaign, commented); edit it, then: autoarch run {}",
        args.file.display(),
        args.file.display()
    );
    Ok(ExitCode::SUCCESS)
}
