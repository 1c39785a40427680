//! `autoarch seed add`: human designs into the archive, through the same admission as a
//! campaign's seeds.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use autoarch_agent::campaign::{admit, Admitted, Design};
use autoarch_agent::machine::IsolatedTracer;
use autoarch_agent::seeds::Header;
use autoarch_archive::{Archive, ProposerKind};
use autoarch_sandbox::{render_all, Limits, TraceConfig};

use super::check::{read_source, task_for};

#[derive(clap::Subcommand)]
pub enum SeedCommand {
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

/// Trace each file, refuse what does not trace, report duplicates, add the rest.
pub fn add(
    dir: &Path,
    files: &[PathBuf],
    task: Option<String>,
    tags: &[String],
) -> anyhow::Result<ExitCode> {
    let archive = Archive::open(dir)?;
    let tracer = IsolatedTracer {
        child: super::trace_child()?,
    };
    let runtime = super::runtime()?;
    let mut refused = 0;
    for file in files {
        let source = read_source(file)?;
        let shape = task_for(&source, task.as_deref())?;
        let header = Header::parse(&source);
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = header.get("name").unwrap_or(stem);
        let design = Design {
            name: name.clone(),
            motivation: header.get("idea").unwrap_or_default(),
            code: source,
            proposer: ProposerKind::Human,
            source: file.display().to_string(),
            tags: tags.to_vec(),
            task: shape.name.clone(),
            island: 0,
        };
        let config = TraceConfig {
            task: shape,
            limits: Limits::default(),
        };
        match runtime.block_on(admit(&archive, &tracer, &config, design))? {
            Admitted::Added(id) => println!("added candidate {id}: {name} ({})", file.display()),
            Admitted::Duplicate(first) => {
                let other = archive
                    .candidate(first)?
                    .map(|c| c.name)
                    .unwrap_or_default();
                println!(
                    "duplicate: {} is the same design as candidate {first} ({other}); not added",
                    file.display()
                );
            }
            Admitted::Refused(diagnostics) => {
                eprint!("{}", render_all(&diagnostics, &file.display().to_string()));
                eprintln!("refused: {} does not trace; nothing stored", file.display());
                refused += 1;
            }
        }
    }
    Ok(if refused > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
