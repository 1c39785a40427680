//! Campaign configuration: the TOML file, the embedded default, command-line overrides and
//! validation that names the key at fault.

use std::path::{Path, PathBuf};

use autoarch_evaluator::TaskConfig;
use autoarch_sandbox::TaskKind;
use serde::{Deserialize, Serialize};

use crate::seeds::SeedSpec;

mod evaluation;
mod llm;
mod search;

pub use evaluation::{BudgetConfig, EvaluationConfig, Launcher, SlurmConfig};
pub use llm::{
    AnswerChoice, EditKind, LlmConfig, ModelChoice, OnUnreachable, Price, ProposerChoice,
    ProposerConfig, Reference, StructuredOutput,
};
pub use search::{EvolutionConfig, SearchConfig, SelectionConfig, StrategyChoice};

/// The embedded default campaign, and the commented example `autoarch init` writes: a small
/// `mqar` searched by the mutation proposer from the seed library, offline, within minutes on
/// two CPU cores.
pub const DEFAULT_TOML: &str = include_str!("default_campaign.toml");

/// A configuration the tool refuses, with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: `{key}` {reason}")]
    Invalid {
        file: String,
        key: String,
        reason: String,
    },
    #[error("{file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignConfig {
    pub name: String,
    /// The archive directory (relative to the config file).
    #[serde(default = "default_archive")]
    pub archive: PathBuf,
    /// Seed designs: `"library"` (every library seed for the task), `"library:NAME"` (one, by
    /// file stem), or paths to `.star` files (relative to the config file).
    #[serde(default = "default_seeds")]
    pub seeds: Vec<SeedSpec>,
    pub task: TaskConfig,
    #[serde(default)]
    pub proposer: ProposerConfig,
    #[serde(default)]
    pub llm: LlmConfig,
    #[serde(default)]
    pub budget: BudgetConfig,
    #[serde(default)]
    pub evaluation: EvaluationConfig,
    #[serde(default)]
    pub selection: SelectionConfig,
    #[serde(default)]
    pub search: SearchConfig,
}

fn default_archive() -> PathBuf {
    PathBuf::from("autoarch-archive")
}

fn default_seeds() -> Vec<SeedSpec> {
    vec![SeedSpec::Library]
}

/// A path from a config file, relative to the file's directory `base`.
fn rebase(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() || base == Path::new(".") || base.as_os_str().is_empty() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// A key at fault and why, or fine.
pub(super) type Checked = Result<(), (String, String)>;

pub(super) fn bad(key: &str, reason: &str) -> Checked {
    Err((key.to_string(), reason.to_string()))
}

/// An optional number that, when given, is positive and finite.
pub(super) fn positive(v: Option<f64>) -> bool {
    v.is_none_or(|v| v.is_finite() && v > 0.0)
}

/// Command-line settings that override the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub archive: Option<PathBuf>,
    pub task: Option<String>,
    pub data: Option<PathBuf>,
    pub proposer: Option<ProposerChoice>,
    pub search: Option<StrategyChoice>,
    pub llm_base_url: Option<String>,
    pub llm_model: Option<String>,
    pub max_candidates: Option<u64>,
    pub max_seconds: Option<f64>,
    pub workers: Option<usize>,
    /// Replaces `seeds` when not empty (paths relative to the working directory).
    pub seeds: Vec<String>,
    pub steps: Option<u64>,
}

impl CampaignConfig {
    /// The embedded default campaign.
    pub fn embedded() -> CampaignConfig {
        CampaignConfig::parse(
            DEFAULT_TOML,
            "the embedded default campaign",
            Path::new("."),
        )
        .expect("the embedded default is valid")
    }

    /// Reads and validates a campaign file; relative paths in it are taken from its directory.
    pub fn load(path: &Path) -> Result<CampaignConfig, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        CampaignConfig::parse(&text, &file, base)
    }

    /// Parses and validates TOML; `base` is the directory relative paths start from.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<CampaignConfig, ConfigError> {
        let mut config: CampaignConfig =
            toml::from_str(text).map_err(|e: toml::de::Error| ConfigError::Parse {
                file: file.to_string(),
                message: e.to_string().trim_end().to_string(),
            })?;
        config.archive = rebase(base, &config.archive);
        config.task.data = config.task.data.map(|p| rebase(base, &p));
        config.llm.prompts = config.llm.prompts.map(|p| rebase(base, &p));
        config.seeds = config.seeds.into_iter().map(|s| s.rebased(base)).collect();
        config.validate(file)?;
        Ok(config)
    }

    /// Applies command-line overrides, then validates again.
    pub fn apply(&mut self, o: &Overrides) -> Result<(), ConfigError> {
        if let Some(a) = &o.archive {
            self.archive = a.clone();
        }
        if let Some(t) = &o.task {
            if *t != self.task.name {
                // Options of the file's task need not fit another task.
                self.task = TaskConfig::named(t);
            }
        }
        if let Some(d) = &o.data {
            self.task.data = Some(d.clone());
        }
        if let Some(p) = o.proposer {
            self.proposer.kind = p;
        }
        if let Some(s) = o.search {
            self.search.strategy = s;
        }
        if let Some(u) = &o.llm_base_url {
            self.llm.base_url = Some(u.clone());
        }
        if let Some(m) = &o.llm_model {
            self.llm.model = Some(m.clone());
            self.llm.models.clear();
        }
        if let Some(n) = o.max_candidates {
            self.budget.max_candidates = Some(n);
        }
        if let Some(s) = o.max_seconds {
            self.budget.max_seconds = Some(s);
        }
        if let Some(w) = o.workers {
            self.evaluation.workers = w;
        }
        if !o.seeds.is_empty() {
            self.seeds = o
                .seeds
                .iter()
                .map(|s| SeedSpec::parse(s))
                .collect::<Result<_, _>>()
                .map_err(|e| ConfigError::Invalid {
                    file: "the command line".into(),
                    key: "--seed".into(),
                    reason: e.to_string(),
                })?;
        }
        if let Some(steps) = o.steps {
            self.evaluation.steps = Some(steps);
            self.evaluation.seconds = None;
        }
        self.validate("the command line")
    }

    pub fn validate(&self, file: &str) -> Result<(), ConfigError> {
        self.check_basics()
            .and_then(|_| self.llm.check(&self.proposer))
            .and_then(|_| self.budget.check())
            .and_then(|_| self.evaluation.check())
            .and_then(|_| self.selection.check())
            .and_then(|_| self.search.evolution.check())
            .map_err(|(key, reason)| ConfigError::Invalid {
                file: file.to_string(),
                key,
                reason,
            })
    }

    /// The name, the task and the seeds.
    fn check_basics(&self) -> Checked {
        if self.name.trim().is_empty() {
            return bad("name", "must not be empty");
        }
        if TaskKind::from_name(&self.task.name).is_none() {
            return bad(
                "task.name",
                &format!("must be one of {}", TaskKind::listed()),
            );
        }
        if self.seeds.is_empty() {
            return bad(
                "seeds",
                "must name at least one design (\"library\" for the seed library)",
            );
        }
        Ok(())
    }

    /// The tracing limits of the campaign's candidates: the tracer's defaults, with
    /// `evaluation.max_params` as the parameter cap when it is set.
    pub fn limits(&self) -> autoarch_sandbox::Limits {
        let mut limits = autoarch_sandbox::Limits::default();
        if let Some(cap) = self.evaluation.max_params {
            limits.max_params = limits.max_params.min(cap);
        }
        limits
    }

    /// A job's timeout at `fidelity`: `timeout_seconds`, times `promote_factor` for the
    /// promoted budget (whose runs train that many times longer).
    pub fn job_timeout(&self, fidelity: autoarch_archive::Fidelity) -> f64 {
        let e = &self.evaluation;
        if fidelity.is_promoted() {
            e.timeout_seconds * e.promote_factor.max(1.0)
        } else {
            e.timeout_seconds
        }
    }

    pub fn train_config(
        &self,
        fidelity: autoarch_archive::Fidelity,
        seed: u64,
    ) -> autoarch_evaluator::TrainConfig {
        let e = &self.evaluation;
        let mut t = autoarch_evaluator::TrainConfig {
            steps: e.steps,
            seconds: e.seconds,
            seed,
            ..Default::default()
        };
        if t.steps.is_none() && t.seconds.is_none() {
            t.steps = Some(autoarch_evaluator::train::DEFAULT_STEPS);
        }
        if fidelity.is_promoted() {
            let f = e.promote_factor;
            t.steps = t.steps.map(|s| ((s as f64) * f).round() as u64);
            t.seconds = t.seconds.map(|s| s * f);
        }
        if let Some(b) = e.batch_size {
            t.batch_size = b;
        }
        if let Some(lr) = e.learning_rate {
            t.learning_rate = lr;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CampaignConfig, ConfigError> {
        CampaignConfig::parse(text, "c.toml", Path::new("."))
    }

    #[test]
    fn a_promoted_job_gets_its_budgets_factor_of_the_timeout() {
        let mut c = CampaignConfig::embedded();
        c.evaluation.timeout_seconds = 30.0;
        c.evaluation.promote_factor = 3.0;
        assert_eq!(c.job_timeout(autoarch_archive::Fidelity::SHORT), 30.0);
        assert_eq!(c.job_timeout(autoarch_archive::Fidelity::PROMOTED), 90.0);
        let steps = |f| c.train_config(f, 0).steps.unwrap() as f64;
        assert_eq!(
            steps(autoarch_archive::Fidelity::PROMOTED) / steps(autoarch_archive::Fidelity::SHORT),
            3.0,
            "the runs it times train 3x as long"
        );
    }

    #[test]
    fn the_embedded_default_is_valid_and_offline() {
        let c = CampaignConfig::embedded();
        assert_eq!(c.task.name, "mqar");
        assert_eq!(c.proposer.kind, ProposerChoice::Mutation);
        assert!(c.budget.max_seconds.is_some() && c.budget.max_candidates.is_some());
        assert_eq!(c.proposer.edits, EditKind::ALL.to_vec());
        let only = parse(
            "name = \"x\"\n[task]\nname = \"mqar\"\n[proposer]\nedits = [\"insert\", \"primitive\"]\n",
        )
        .unwrap();
        assert_eq!(only.proposer.edits, [EditKind::Insert, EditKind::Primitive]);
    }

    #[test]
    fn the_local_llm_example_is_valid_and_points_at_the_project_server() {
        let c = CampaignConfig::parse(
            include_str!("../../../examples/local-llm.toml"),
            "examples/local-llm.toml",
            Path::new("examples"),
        )
        .unwrap();
        assert_eq!(c.proposer.kind, ProposerChoice::Llm);
        assert_eq!(c.llm.base_url.as_deref(), Some("http://127.0.0.1:8089/v1"));
        assert_eq!(c.llm.model.as_deref(), Some("smollm2"));
        assert_eq!(c.evaluation.workers, 1);
    }

    #[test]
    fn a_minimal_file_takes_defaults_and_rebases_paths() {
        let c = CampaignConfig::parse(
            "name = \"x\"\nseeds = [\"a.star\", \"library:mlp_only\"]\n[task]\nname = \"digits\"\ndata = \"d.csv\"\n",
            "dir/c.toml",
            Path::new("dir"),
        )
        .unwrap();
        assert_eq!(c.archive, Path::new("dir/autoarch-archive"));
        assert_eq!(
            c.seeds,
            vec![
                SeedSpec::File("dir/a.star".into()),
                SeedSpec::Named("mlp_only".into())
            ]
        );
        assert_eq!(c.task.data.as_deref(), Some(Path::new("dir/d.csv")));
        assert_eq!(c.evaluation, EvaluationConfig::default());
    }

    #[test]
    fn broken_configs_name_the_key_and_the_reason() {
        let cases = [
            ("name = \"x\"\n", "missing field `task`"),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[evaluation]\nworkerz = 2\n",
                "unknown field `workerz`",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[evaluation]\nworkers = \"two\"\n",
                "invalid type: string \"two\"",
            ),
            (
                "name = \"x\"\n[task]\nname = \"nope\"\n",
                "`task.name` must be one of",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[evaluation]\nworkers = 0\n",
                "`evaluation.workers` must be between 1 and 64 with launcher = \"local\"",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[evaluation]\nsteps = 10\nseconds = 5\n",
                "`evaluation.steps` and `evaluation.seconds` are both set",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[budget]\nmax_seconds = -1\n",
                "`budget.max_seconds` must be a positive number",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[proposer]\nkind = \"llm\"\n",
                "`llm.base_url` is required",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[proposer]\nkind = \"genetic\"\n",
                "unknown variant `genetic`",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[proposer]\nedits = [\"width\", \"splice\"]\n",
                "unknown variant `splice`, expected one of `width`, `depth`",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[proposer]\nedits = []\n",
                "`proposer.edits` must name at least one kind of edit",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[evaluation]\npromote_fraction = 2.0\n",
                "`evaluation.promote_fraction` must be between 0 and 1",
            ),
            ("name = \"x\"\n[task\n", "TOML parse error"),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[proposer]\nkind = \"llm\"\n[llm]\nbase_url = \"http://h/v1\"\n",
                "`llm.model` is required",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[llm]\nmodel = \"a\"\n[[llm.models]]\nname = \"b\"\n",
                "`llm.models` cannot be given together with `llm.model`",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[[llm.models]]\nname = \"b\"\nweight = 0\n",
                "gives b a weight that is not a positive number",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[llm.prices]\nm = { prompt = -1.0, completion = 1.0 }\n",
                "gives m a price that is not a non-negative number",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[llm]\ntimeout_seconds = 0\n",
                "`llm.timeout_seconds` must be a positive number of seconds",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[llm]\non_unreachable = \"retry\"\n",
                "unknown variant `retry`",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[search]\nstrategy = \"annealing\"\n",
                "unknown variant `annealing`",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[search.evolution]\npopulation = 10\nsample = 11\n",
                "`search.evolution.sample` must be between 1 and",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[search.evolution]\ntournament = 3\n",
                "unknown field `tournament`",
            ),
            (
                "name = \"x\"\nseeds = [\"libraryx\"]\n[task]\nname = \"mqar\"\n",
                "write \"library\" or \"library:NAME\"",
            ),
        ];
        assert_refused(&cases);
    }

    fn assert_refused(cases: &[(&str, &str)]) {
        for (text, expected) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(err.starts_with("c.toml"), "{err}");
        }
    }

    #[test]
    fn broken_launchers_name_the_key_and_the_reason() {
        assert_refused(&[
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[evaluation]\nlauncher = \"slurm\"\nworkers = 300\n",
                "`evaluation.workers` must be between 1 and 256 with launcher = \"slurm\"",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[evaluation]\nlauncher = \"command\"\n",
                "`evaluation.command` must name the program that starts a worker",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[evaluation]\ncommand = [\"ssh\", \"n1\"]\n",
                "`evaluation.command` is only used with launcher = \"command\"",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[evaluation.slurm]\npartition = \"gpu\"\n",
                "`evaluation.slurm` is only used with launcher = \"slurm\"",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[evaluation]\nlauncher = \"slurm\"\n[evaluation.slurm]\npartiton = \"gpu\"\n",
                "unknown field `partiton`",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[evaluation]\nlauncher = \"pbs\"\n",
                "unknown variant `pbs`",
            ),
            (
                "name = \"x\"\n[task]\nname = \"mqar\"\n[evaluation]\nstart_timeout_seconds = 1e300\n",
                "`evaluation.start_timeout_seconds` must be a positive number of seconds, at most a week",
            ),
        ]);
    }

    #[test]
    fn several_models_with_weights_and_prices() {
        let c = parse(
            "name = \"x\"\n[task]\nname = \"mqar\"\n[proposer]\nkind = \"llm\"\n[llm]\nbase_url = \"https://api.example.com/v1\"\n[llm.prices]\ncheap = { prompt = 0.1, completion = 0.4 }\n[[llm.models]]\nname = \"cheap\"\nweight = 3\n[[llm.models]]\nname = \"strong\"\n",
        )
        .unwrap();
        let m = c.llm.model_choices();
        assert_eq!((m[0].name.as_str(), m[0].weight), ("cheap", 3.0));
        assert_eq!((m[1].name.as_str(), m[1].weight), ("strong", 1.0));
        assert_eq!(c.llm.prices["cheap"].completion, 0.4);
        // `--llm-model` replaces the list.
        let mut c = c;
        c.apply(&Overrides {
            llm_model: Some("other".into()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(c.llm.model_choices().len(), 1);
    }

    #[test]
    fn toml_errors_point_at_the_line() {
        let err =
            parse("name = \"x\"\n[task]\nname = \"mqar\"\n[budget]\nmax_candidates = \"ten\"\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("line 5"), "{err}");
        assert!(err.contains("max_candidates"), "{err}");
    }

    #[test]
    fn overrides_replace_file_settings() {
        let mut c = CampaignConfig::embedded();
        c.apply(&Overrides {
            task: Some("digits".into()),
            max_candidates: Some(3),
            workers: Some(1),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(c.task, TaskConfig::named("digits"));
        assert_eq!(c.budget.max_candidates, Some(3));
        assert_eq!(c.evaluation.workers, 1);
        let err = c
            .apply(&Overrides {
                workers: Some(0),
                ..Overrides::default()
            })
            .unwrap_err();
        assert!(err.to_string().contains("evaluation.workers"), "{err}");
    }

    #[test]
    fn promotion_multiplies_the_budget() {
        let c = CampaignConfig::embedded();
        let short = c
            .train_config(autoarch_archive::Fidelity::SHORT, 0)
            .steps
            .unwrap();
        let long = c.train_config(autoarch_archive::Fidelity::PROMOTED, 3);
        assert_eq!(
            long.steps.unwrap(),
            (short as f64 * c.evaluation.promote_factor).round() as u64
        );
        assert_eq!(long.seed, 3);
    }
}
