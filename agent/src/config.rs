//! Campaign configuration: the TOML file, the embedded default, command-line overrides and
//! validation that names the key at fault.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use autoarch_evaluator::task::TASK_NAMES;
use autoarch_evaluator::TaskConfig;
use serde::{Deserialize, Serialize};

use crate::seeds::SeedSpec;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ProposerChoice {
    /// Offline structural edits of archived designs.
    Mutation,
    /// An LLM behind an OpenAI-compatible endpoint.
    Llm,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProposerConfig {
    pub kind: ProposerChoice,
    /// The most edits the mutation proposer applies to one parent.
    pub max_edits: u32,
}

impl Default for ProposerConfig {
    fn default() -> Self {
        ProposerConfig {
            kind: ProposerChoice::Mutation,
            max_edits: 2,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// The OpenAI-compatible endpoint, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8089/v1`.
    pub base_url: Option<String>,
    /// The one model to ask (or list several under `[[llm.models]]`).
    pub model: Option<String>,
    /// Several models, each asked in proportion to its weight.
    pub models: Vec<ModelChoice>,
    /// Price per million tokens, by model name; models not listed cost nothing.
    pub prices: BTreeMap<String, Price>,
    /// The environment variable holding the API key (the key itself is never stored).
    pub api_key_env: String,
    pub temperature: f64,
    pub max_tokens: u32,
    /// One request's limit: the call is abandoned (and retried) when it passes.
    pub timeout_seconds: f64,
    /// How long the endpoint may fail (timeouts, connection errors, 429, 5xx) before the campaign
    /// stops or falls back; retries back off exponentially with jitter in between.
    pub unreachable_seconds: f64,
    /// The first retry's wait; each later one doubles, up to `retry_max_seconds`.
    pub retry_base_seconds: f64,
    pub retry_max_seconds: f64,
    /// What to do when the endpoint stays unreachable: `stop` or `mutation` (go on offline).
    pub on_unreachable: OnUnreachable,
    /// How many times a proposal that does not trace goes back with its diagnostics.
    pub repair_rounds: u32,
    /// An `analyze` call after every this many evaluated candidates (0: never).
    pub analyze_every: u32,
    /// A directory whose `system.j2`, `propose.j2`, `repair.j2`, `analyze.j2` replace the
    /// built-in prompts (any subset; relative to the config file).
    pub prompts: Option<PathBuf>,
    /// Structured output: `auto` tries `json_schema`, then `json_object` with the schema, then
    /// plain text with a fenced code block, and remembers what the endpoint took.
    pub structured_output: StructuredOutput,
    /// The language reference in the system prompt: `full` (what `autoarch ops` prints) or
    /// `brief` (the rules and the signatures only, for models with a small context window).
    pub reference: Reference,
    /// How the model answers: `code` (the code, or SEARCH/REPLACE edits of the parent), `edits`
    /// (ids chosen from a menu of the structural edits that apply to the parent, under a JSON
    /// schema: it cannot write code that fails to parse) or `auto` (code, and edits for a model
    /// whose code keeps failing to trace).
    pub answer: AnswerChoice,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerChoice {
    Code,
    Edits,
    Auto,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reference {
    Full,
    Brief,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelChoice {
    pub name: String,
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// US dollars per million tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub prompt: f64,
    pub completion: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnreachable {
    Stop,
    Mutation,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StructuredOutput {
    Auto,
    JsonSchema,
    JsonObject,
    Text,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            base_url: None,
            model: None,
            models: vec![],
            prices: BTreeMap::new(),
            api_key_env: "OPENAI_API_KEY".to_string(),
            temperature: 0.7,
            max_tokens: 2048,
            timeout_seconds: 120.0,
            unreachable_seconds: 300.0,
            retry_base_seconds: 1.0,
            retry_max_seconds: 60.0,
            on_unreachable: OnUnreachable::Stop,
            repair_rounds: 3,
            analyze_every: 8,
            prompts: None,
            structured_output: StructuredOutput::Auto,
            reference: Reference::Full,
            answer: AnswerChoice::Auto,
        }
    }
}

impl LlmConfig {
    /// The models to ask, with their weights.
    pub fn model_choices(&self) -> Vec<ModelChoice> {
        match &self.model {
            Some(m) => vec![ModelChoice {
                name: m.clone(),
                weight: 1.0,
            }],
            None => self.models.clone(),
        }
    }
}

/// Limits on the whole campaign; the first one reached stops it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// Proposals stored (traced or not, duplicates included); seeds do not count.
    pub max_candidates: Option<u64>,
    /// Wall-clock seconds the campaign runs, summed over resumes.
    pub max_seconds: Option<f64>,
    /// LLM tokens (prompt + completion).
    pub max_tokens: Option<u64>,
    pub max_dollars: Option<f64>,
    /// Seconds of evaluation (worker wall time), summed over jobs.
    pub max_compute_seconds: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluationConfig {
    /// Worker processes training at once.
    pub workers: usize,
    /// The short (fidelity 0) training budget in steps...
    pub steps: Option<u64>,
    /// ...or in seconds.
    pub seconds: Option<f64>,
    pub batch_size: Option<usize>,
    pub learning_rate: Option<f64>,
    pub memory_limit_mb: u64,
    pub timeout_seconds: f64,
    /// The share of candidates (by short-budget score) re-trained with the longer budget.
    pub promote_fraction: f64,
    /// Extra seeds a promoted candidate is trained with (besides the first).
    pub promote_seeds: u32,
    /// The longer budget as a multiple of the short one.
    pub promote_factor: f64,
    /// The largest candidate in parameters: a proposal over it does not trace (a diagnostic
    /// says so), so that no design wins by growing. No cap by default beyond the tracer's own.
    pub max_params: Option<u64>,
    /// Where the workers run.
    pub launcher: Launcher,
    /// With `launcher = "command"`: the argv prefix that runs `autoarch worker` somewhere and
    /// carries its stdin and stdout (`["ssh", "gpu-node-3", "autoarch", "worker"]`); the
    /// campaign appends `--supervise`.
    pub command: Vec<String>,
    /// How long a remote worker may take to start and answer the handshake (a scheduler may
    /// queue it first); past it, the start failed.
    pub start_timeout_seconds: f64,
    /// With `launcher = "slurm"`: how `srun` asks for each worker.
    pub slurm: SlurmConfig,
}

/// Where the workers run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Launcher {
    /// Worker processes on this machine.
    #[default]
    Local,
    /// Each worker a Slurm job step, started with `srun`.
    Slurm,
    /// Each worker started by `[evaluation] command`.
    Command,
}

impl Launcher {
    pub fn as_str(self) -> &'static str {
        match self {
            Launcher::Local => "local",
            Launcher::Slurm => "slurm",
            Launcher::Command => "command",
        }
    }

    /// The most workers a campaign may ask for: a machine's worth locally, a cluster's elsewhere.
    pub fn max_workers(self) -> usize {
        match self {
            Launcher::Local => 64,
            Launcher::Slurm | Launcher::Command => 256,
        }
    }
}

/// What `srun` asks Slurm for, per worker (each worker is one job with one task).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmConfig {
    /// The `srun` program.
    pub srun: String,
    pub partition: Option<String>,
    pub account: Option<String>,
    /// The time limit of each worker's job (`--time`, e.g. "04:00:00").
    pub time: Option<String>,
    /// Memory per worker (`--mem`); by default the job's memory limit + 2.5 GiB, so that the
    /// node's own cap on a job (its limit + 2 GiB of address space) is reached first.
    pub mem_mb: Option<u64>,
    pub cpus_per_task: Option<u32>,
    /// Generic resources, e.g. "gpu:1".
    pub gres: Option<String>,
    /// The autoarch binary's path on the nodes; by default this binary's own path (a shared
    /// file system).
    pub binary: Option<PathBuf>,
    /// More `srun` arguments, as given (`["--qos=normal", "--constraint=a100"]`).
    pub extra_args: Vec<String>,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        SlurmConfig {
            srun: "srun".to_string(),
            partition: None,
            account: None,
            time: None,
            mem_mb: None,
            cpus_per_task: None,
            gres: None,
            binary: None,
            extra_args: Vec::new(),
        }
    }
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        EvaluationConfig {
            workers: 2,
            steps: None,
            seconds: None,
            batch_size: None,
            learning_rate: None,
            memory_limit_mb: 4096,
            timeout_seconds: 600.0,
            promote_fraction: 0.25,
            promote_seeds: 1,
            promote_factor: 3.0,
            max_params: None,
            launcher: Launcher::Local,
            command: Vec::new(),
            start_timeout_seconds: 300.0,
            slurm: SlurmConfig::default(),
        }
    }
}

/// The search strategy: who becomes a parent, what inspirations are shown, who is promoted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum StrategyChoice {
    /// MAP-Elites cells, islands and tournaments; asynchronous successive halving (`[selection]`).
    Autoarch,
    /// Regularized (aging) evolution, Real et al. 2019 (`[search.evolution]`).
    Evolution,
    /// Random search: a random seed with random edits; never looks at a score.
    Random,
}

impl StrategyChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyChoice::Autoarch => "autoarch",
            StrategyChoice::Evolution => "evolution",
            StrategyChoice::Random => "random",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    pub strategy: StrategyChoice,
    pub evolution: EvolutionConfig,
    /// The campaign's random seed: the same config and seed make the same choices; another
    /// seed, another campaign (the benchmark runs several per arm).
    pub seed: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            strategy: StrategyChoice::Autoarch,
            evolution: EvolutionConfig::default(),
            seed: 0,
        }
    }
}

/// Regularized evolution's settings. Real et al. 2019 tuned P = 100, S = 25 for 20,000 models;
/// the defaults keep that 4:1 ratio at a size a campaign of tens to hundreds of candidates
/// fills, so that members do age out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvolutionConfig {
    /// P: the members kept; when a child joins a full population, the oldest leaves.
    pub population: usize,
    /// S: members sampled (uniformly, without replacement) per proposal; the best is the parent.
    pub sample: usize,
    /// Re-train the best with the longer budget as `[evaluation]` `promote_*` say.
    pub promote: bool,
}

impl Default for EvolutionConfig {
    fn default() -> Self {
        EvolutionConfig {
            population: 20,
            sample: 5,
            promote: false,
        }
    }
}

/// How the `autoarch` strategy chooses parents and inspirations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectionConfig {
    /// Islands: sub-populations that evolve apart (parents come from the proposal's island).
    pub islands: u32,
    /// The share of parents drawn uniformly from every successful candidate.
    pub exploration: f64,
    /// The share of parents drawn from the MAP-Elites cells (the rest: island tournaments).
    pub elites: f64,
    pub tournament: usize,
    /// Inspirations shown beside the parent (crossover partners for the mutation proposer).
    pub inspirations: usize,
}

impl Default for SelectionConfig {
    fn default() -> Self {
        SelectionConfig {
            islands: 2,
            exploration: 0.2,
            elites: 0.3,
            tournament: 3,
            inspirations: 2,
        }
    }
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
type Checked = Result<(), (String, String)>;

fn bad(key: &str, reason: &str) -> Checked {
    Err((key.to_string(), reason.to_string()))
}

/// An optional number that, when given, is positive and finite.
fn positive(v: Option<f64>) -> bool {
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
            .and_then(|_| self.check_llm())
            .and_then(|_| self.check_budget())
            .and_then(|_| self.check_search())
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
        if !TASK_NAMES.contains(&self.task.name.as_str()) {
            return bad(
                "task.name",
                &format!("must be one of {}", TASK_NAMES.join(", ")),
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

    /// The LLM settings and the proposer.
    fn check_llm(&self) -> Checked {
        if self.proposer.kind == ProposerChoice::Llm {
            if self.llm.base_url.is_none() {
                return bad("llm.base_url", "is required by the llm proposer");
            }
            if self.llm.model.is_none() && self.llm.models.is_empty() {
                return bad(
                    "llm.model",
                    "is required by the llm proposer (or list models under [[llm.models]])",
                );
            }
        }
        if self.llm.model.is_some() && !self.llm.models.is_empty() {
            return bad("llm.models", "cannot be given together with `llm.model`");
        }
        for m in &self.llm.models {
            if m.name.trim().is_empty() {
                return bad("llm.models", "has a model without a name");
            }
            if !(m.weight.is_finite() && m.weight > 0.0) {
                return bad(
                    "llm.models",
                    &format!("gives {} a weight that is not a positive number", m.name),
                );
            }
        }
        for (model, p) in &self.llm.prices {
            if !(p.prompt.is_finite()
                && p.prompt >= 0.0
                && p.completion.is_finite()
                && p.completion >= 0.0)
            {
                return bad(
                    "llm.prices",
                    &format!("gives {model} a price that is not a non-negative number"),
                );
            }
        }
        for (key, v) in [
            ("llm.timeout_seconds", self.llm.timeout_seconds),
            ("llm.unreachable_seconds", self.llm.unreachable_seconds),
            ("llm.retry_base_seconds", self.llm.retry_base_seconds),
            ("llm.retry_max_seconds", self.llm.retry_max_seconds),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(key, "must be a positive number of seconds");
            }
        }
        if self.llm.repair_rounds > 10 {
            return bad("llm.repair_rounds", "must be at most 10");
        }
        if let Some(u) = &self.llm.base_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return bad("llm.base_url", "must be an http:// or https:// URL");
            }
        }
        if !(self.llm.temperature.is_finite() && (0.0..=2.0).contains(&self.llm.temperature)) {
            return bad("llm.temperature", "must be between 0 and 2");
        }
        if self.llm.max_tokens == 0 {
            return bad("llm.max_tokens", "must be at least 1");
        }
        if !(1..=3).contains(&self.proposer.max_edits) {
            return bad("proposer.max_edits", "must be 1, 2 or 3");
        }
        Ok(())
    }

    /// The budgets and the evaluation settings.
    fn check_budget(&self) -> Checked {
        let b = &self.budget;
        if b.max_candidates == Some(0) {
            return bad("budget.max_candidates", "must be at least 1");
        }
        if b.max_tokens == Some(0) {
            return bad("budget.max_tokens", "must be at least 1");
        }
        for (key, v) in [
            ("budget.max_seconds", b.max_seconds),
            ("budget.max_dollars", b.max_dollars),
            ("budget.max_compute_seconds", b.max_compute_seconds),
        ] {
            if !positive(v) {
                return bad(key, "must be a positive number");
            }
        }
        let e = &self.evaluation;
        let most = e.launcher.max_workers();
        if !(1..=most).contains(&e.workers) {
            return bad(
                "evaluation.workers",
                &format!(
                    "must be between 1 and {most} with launcher = \"{}\"",
                    e.launcher.as_str()
                ),
            );
        }
        if e.steps.is_some() && e.seconds.is_some() {
            return bad(
                "evaluation.steps",
                "and `evaluation.seconds` are both set: give one training budget",
            );
        }
        if e.steps == Some(0) {
            return bad("evaluation.steps", "must be at least 1");
        }
        for (key, v) in [
            ("evaluation.seconds", e.seconds),
            ("evaluation.learning_rate", e.learning_rate),
            ("evaluation.timeout_seconds", Some(e.timeout_seconds)),
        ] {
            if !positive(v) {
                return bad(key, "must be a positive number");
            }
        }
        if e.batch_size == Some(0) {
            return bad("evaluation.batch_size", "must be at least 1");
        }
        if e.memory_limit_mb < 64 {
            return bad("evaluation.memory_limit_mb", "must be at least 64");
        }
        if !(e.promote_fraction.is_finite() && (0.0..=1.0).contains(&e.promote_fraction)) {
            return bad("evaluation.promote_fraction", "must be between 0 and 1");
        }
        if !(e.promote_factor.is_finite() && e.promote_factor >= 1.0) {
            return bad("evaluation.promote_factor", "must be at least 1");
        }
        if e.promote_seeds > 16 {
            return bad("evaluation.promote_seeds", "must be at most 16");
        }
        if e.max_params == Some(0) {
            return bad("evaluation.max_params", "must be at least 1");
        }
        self.check_launcher()
    }

    /// The launcher and what it needs.
    fn check_launcher(&self) -> Checked {
        let e = &self.evaluation;
        if !(positive(Some(e.start_timeout_seconds)) && e.start_timeout_seconds <= 604_800.0) {
            return bad(
                "evaluation.start_timeout_seconds",
                "must be a positive number of seconds, at most a week",
            );
        }
        match e.launcher {
            Launcher::Command if e.command.first().is_none_or(|p| p.trim().is_empty()) => bad(
                "evaluation.command",
                "must name the program that starts a worker, e.g. [\"ssh\", \"node-1\", \"autoarch\", \"worker\"]",
            ),
            Launcher::Local | Launcher::Slurm if !e.command.is_empty() => bad(
                "evaluation.command",
                "is only used with launcher = \"command\"",
            ),
            _ if e.slurm != SlurmConfig::default() && e.launcher != Launcher::Slurm => bad(
                "evaluation.slurm",
                "is only used with launcher = \"slurm\"",
            ),
            _ if e.slurm.srun.trim().is_empty() => {
                bad("evaluation.slurm.srun", "must name the srun program")
            }
            _ if e.slurm.mem_mb.is_some_and(|m| m < 64) => {
                bad("evaluation.slurm.mem_mb", "must be at least 64")
            }
            _ if e.slurm.cpus_per_task == Some(0) => {
                bad("evaluation.slurm.cpus_per_task", "must be at least 1")
            }
            _ => Ok(()),
        }
    }

    /// The search strategies' settings.
    fn check_search(&self) -> Checked {
        let s = &self.selection;
        if s.islands == 0 {
            return bad("selection.islands", "must be at least 1");
        }
        for (key, v) in [
            ("selection.exploration", s.exploration),
            ("selection.elites", s.elites),
        ] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return bad(key, "must be between 0 and 1");
            }
        }
        if s.exploration + s.elites > 1.0 {
            return bad(
                "selection.elites",
                "plus `selection.exploration` must not exceed 1",
            );
        }
        if s.tournament == 0 {
            return bad("selection.tournament", "must be at least 1");
        }
        let ev = &self.search.evolution;
        if ev.population < 2 {
            return bad("search.evolution.population", "must be at least 2");
        }
        if !(1..=ev.population).contains(&ev.sample) {
            return bad(
                "search.evolution.sample",
                "must be between 1 and `search.evolution.population`",
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

    /// The short (fidelity 0) training budget.
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
    }

    #[test]
    fn the_local_llm_example_is_valid_and_points_at_the_project_server() {
        let c = CampaignConfig::parse(
            include_str!("../../examples/local-llm.toml"),
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
