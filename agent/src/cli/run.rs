//! `autoarch run`, `autoarch init` and `autoarch report`: the campaign commands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use autoarch_archive::Archive;
use autoarch_sandbox::isolate::ChildCommand;

use crate::campaign::{Campaign, RunSummary, Stop};
use crate::config::{CampaignConfig, OnUnreachable, Overrides, ProposerChoice, DEFAULT_TOML};
use crate::llm::LlmProposer;
use crate::mutation::MutationProposer;
use crate::proposer::Proposer;
use crate::UsageError;

/// The hidden subcommand that runs one trace in an isolated child process.
pub const TRACE_CHILD: &str = "__trace-child";

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
}

/// The trace child: this very binary.
pub fn trace_child() -> anyhow::Result<ChildCommand> {
    Ok(ChildCommand {
        program: std::env::current_exe().context("locating the autoarch binary")?,
        args: vec![TRACE_CHILD.to_string()],
    })
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
        let missing = match seed.strip_prefix("library:") {
            Some(name) => crate::seeds::by_name(name).is_none(),
            None => seed != "library" && !Path::new(seed).is_file(),
        };
        if missing {
            let known: Vec<&str> = crate::seeds::LIBRARY.iter().map(|(n, _)| *n).collect();
            return Err(UsageError(format!(
                "`seeds` names {seed:?}, which does not exist (library seeds: {})",
                known.join(", ")
            ))
            .into());
        }
    }
    Ok(config)
}

fn proposer(config: &CampaignConfig) -> anyhow::Result<Arc<dyn Proposer>> {
    match config.proposer.kind {
        ProposerChoice::Mutation => Ok(Arc::new(MutationProposer {
            max_edits: config.proposer.max_edits,
        })),
        ProposerChoice::Llm => Ok(Arc::new(
            LlmProposer::new(&config.llm).map_err(|e| UsageError(format!("{e:#}")))?,
        )),
    }
}

/// The proposer that takes over when the LLM stays unreachable, if the config asks for one.
fn fallback(config: &CampaignConfig) -> Option<Arc<dyn Proposer>> {
    (config.proposer.kind == ProposerChoice::Llm
        && config.llm.on_unreachable == OnUnreachable::Mutation)
        .then(|| {
            Arc::new(MutationProposer {
                max_edits: config.proposer.max_edits,
            }) as Arc<dyn Proposer>
        })
}

/// Sends the campaign's tracing log to `campaign.log` in the archive directory.
fn start_log(dir: &Path) -> anyhow::Result<()> {
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn run(args: RunArgs, archive: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = resolve(&args, archive)?;
    let proposer = proposer(&config)?;
    let fallback = fallback(&config);
    start_log(&config.archive)?;
    let dir = config.archive.clone();
    let mut campaign = Campaign::prepare(
        config,
        proposer,
        crate::eval_cmd::worker_command()?,
        trace_child()?,
    )?;
    campaign.fallback = fallback;
    if campaign.config.proposer.kind == ProposerChoice::Llm {
        let l = &campaign.config.llm;
        eprintln!(
            "llm proposer: {} at {} (key from ${}{})",
            l.model_choices()
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            l.base_url.as_deref().unwrap_or(""),
            l.api_key_env,
            if crate::llm::api_key(l).is_some() {
                ""
            } else {
                ": not set, none sent"
            }
        );
    }
    eprintln!(
        "campaign {:?} on {} · archive {} · {} workers · log {}",
        campaign.config.name,
        campaign.config.task.name,
        dir.display(),
        campaign.config.evaluation.workers,
        dir.join(LOG_FILE).display()
    );
    let summary = runtime()?.block_on(campaign.run())?;
    print_summary(
        &campaign.config,
        &summary,
        archive.is_some() || campaign.config.archive != Path::new("autoarch-archive"),
    );
    Ok(match summary.stop {
        Stop::Finished | Stop::Budget(_) => ExitCode::SUCCESS,
        Stop::Interrupted => ExitCode::from(130),
        Stop::Proposer(_) => ExitCode::FAILURE,
    })
}

fn minutes(s: f64) -> String {
    let s = s.round() as u64;
    format!("{}m {:02}s", s / 60, s % 60)
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

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Evaluate N candidates sampled at random from the proposer's space (no selection) first,
    /// when the archive holds fewer; they are the baseline the best is compared with.
    #[arg(long, value_name = "N")]
    pub random_baseline: Option<usize>,
    /// Write the markdown here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn report(args: ReportArgs, dir: &Path) -> anyhow::Result<ExitCode> {
    let text = if let Some(n) = args.random_baseline {
        // Opening for writing would create an empty archive where there is none.
        if !dir.join("db").exists() {
            anyhow::bail!(
                "no archive at {}: run a campaign first, or pass --archive DIR",
                dir.display()
            );
        }
        let archive = Archive::open(dir)?;
        let record = archive
            .campaigns()?
            .into_iter()
            .next()
            .with_context(|| format!("{} holds no campaign: run one first", dir.display()))?;
        let mut config: CampaignConfig = serde_json::from_value(record.config)
            .context("reading the campaign's stored configuration")?;
        config.archive = dir.to_path_buf();
        drop(archive);
        start_log(dir)?;
        let campaign = Campaign::prepare(
            config.clone(),
            proposer(&config).unwrap_or_else(|_| {
                Arc::new(MutationProposer {
                    max_edits: config.proposer.max_edits,
                })
            }),
            crate::eval_cmd::worker_command()?,
            trace_child()?,
        )?;
        runtime()?.block_on(campaign.random_baseline(n))?;
        crate::report::render(&campaign.archive)?
    } else {
        let (archive, note) = Archive::open_for_review(dir)?;
        if let Some(note) = note {
            eprintln!("note: {note}");
        }
        crate::report::render(&archive)?
    };
    match args.out {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
