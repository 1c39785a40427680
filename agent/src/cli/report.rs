//! `autoarch report`: the campaign's markdown report, after sampling the random baseline when
//! asked.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::Context;
use autoarch_agent::campaign::Stop;
use autoarch_agent::config::CampaignConfig;
use autoarch_agent::propose::mutation::MutationProposer;
use autoarch_archive::Archive;

use super::run::{campaign, run_interruptible, start_log, Progress};

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

/// Samples and evaluates the random baseline, then renders the report from the archive; `Err`
/// with the exit code when the baseline could not be completed.
fn with_random_baseline(dir: &Path, n: usize) -> anyhow::Result<Result<String, ExitCode>> {
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
    // The baseline samples with the mutation proposer whatever the campaign used.
    let proposer = Arc::new(MutationProposer {
        max_edits: 3,
        kinds: config.proposer.edits.clone(),
    });
    let mut campaign = campaign(config, proposer)?;
    let progress = Progress::new(false);
    campaign.observer = progress.observer();
    eprintln!("random baseline: sampling until {n} candidates have a short-budget result");
    let summary = run_interruptible(&campaign, campaign.random_baseline(n))??;
    eprintln!("random baseline: {}", summary.stop.describe());
    match summary.stop {
        Stop::Interrupted => {
            eprintln!("resume: run the same command again");
            Ok(Err(ExitCode::from(130)))
        }
        stop if stop.is_failure() => Err(anyhow::anyhow!(
            "the random baseline is incomplete: {}",
            stop.describe()
        )),
        _ => Ok(Ok(autoarch_agent::report::render(&campaign.archive)?)),
    }
}

pub fn report(args: ReportArgs, dir: &Path) -> anyhow::Result<ExitCode> {
    let text = match args.random_baseline {
        Some(n) => match with_random_baseline(dir, n)? {
            Ok(text) => text,
            Err(code) => return Ok(code),
        },
        None => {
            let (archive, note) = Archive::open_for_review(dir)?;
            if let Some(note) = note {
                eprintln!("note: {note}");
            }
            autoarch_agent::report::render(&archive)?
        }
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
