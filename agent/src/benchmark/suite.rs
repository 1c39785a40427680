//! The benchmark suite: tasks, arms (search strategy × proposer), campaigns per arm, the
//! search budget, the size cap and the final protocol; the embedded default and its presets;
//! the campaign config of each (task, arm, campaign seed).

use std::path::{Path, PathBuf};

use autoarch_evaluator::TaskConfig;
use serde::{Deserialize, Serialize};

use crate::config::{
    BudgetConfig, CampaignConfig, ConfigError, EvaluationConfig, LlmConfig, ProposerChoice,
    ProposerConfig, SearchConfig, StrategyChoice,
};
use crate::seeds::SeedSpec;

/// The embedded default suite.
pub const DEFAULT_SUITE: &str = include_str!("default_suite.toml");

/// The tasks the `full` preset adds to the embedded suite (a suite of their own, with the
/// embedded suite's arms, so that it parses on its own).
const FULL_TASKS: &str = include_str!("full_tasks.toml");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    pub name: String,
    /// Campaigns per arm and task; campaign `k` has `[search] seed = k`.
    #[serde(default = "default_campaigns")]
    pub campaigns: u32,
    /// Candidates may have at most this many times the largest seed's parameters.
    #[serde(default = "default_size_cap")]
    pub size_cap: f64,
    pub budget: SuiteBudget,
    #[serde(default)]
    pub evaluation: EvaluationConfig,
    /// The LLM settings of arms whose proposer is `llm`.
    #[serde(default)]
    pub llm: LlmConfig,
    #[serde(rename = "final", default)]
    pub final_protocol: FinalProtocol,
    pub tasks: Vec<SuiteTask>,
    pub arms: Vec<Arm>,
    /// Whether the report gives verdicts (the quick preset, a smoke test, gives none). Left out
    /// of `suite.json` when on, so that a benchmark begun without the field still continues.
    #[serde(default = "verdicts_on", skip_serializing_if = "Clone::clone")]
    pub verdicts: bool,
}

fn verdicts_on() -> bool {
    true
}

fn default_campaigns() -> u32 {
    3
}

fn default_size_cap() -> f64 {
    2.0
}

/// The search budget of every campaign: the same for every arm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteBudget {
    /// Evaluation-seconds (worker wall time, promotions included).
    pub max_compute_seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteTask {
    /// The task's name in the suite (campaign names and the report use it).
    pub name: String,
    pub task: TaskConfig,
    #[serde(default = "library")]
    pub seeds: Vec<SeedSpec>,
    /// A score that counts as solving the task (the MLP challenge: 0.9).
    pub goal: Option<f64>,
    /// Designs kept from the campaigns (`["library:NAME"]`): the final protocol trains them as
    /// reference lines, and a campaign whose incumbent reaches a held-out design's final mean
    /// has rediscovered it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holdout: Vec<SeedSpec>,
}

impl SuiteTask {
    /// The seeds the campaigns start from: the task's seeds without the held-out designs.
    pub fn campaign_seeds(&self) -> Vec<SeedSpec> {
        if self.holdout.is_empty() {
            return self.seeds.clone();
        }
        let held: Vec<String> = self.holdout.iter().map(SeedSpec::to_spec).collect();
        let mut out = Vec::new();
        for spec in &self.seeds {
            match spec {
                SeedSpec::Library => out.extend(
                    crate::seeds::for_task(&self.task.name)
                        .into_iter()
                        .map(|(name, _)| SeedSpec::Named(name.to_string())),
                ),
                other => out.push(other.clone()),
            }
        }
        out.retain(|s| !held.contains(&s.to_spec()));
        out
    }
}

fn library() -> Vec<SeedSpec> {
    vec![SeedSpec::Library]
}

/// One way of searching: a strategy with a proposer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arm {
    pub name: String,
    pub strategy: StrategyChoice,
    #[serde(default = "mutation")]
    pub proposer: ProposerChoice,
}

fn mutation() -> ProposerChoice {
    ProposerChoice::Mutation
}

/// How every arm's incumbent, every seed and a random-sampled population are scored in the
/// end, identically, outside the search budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FinalProtocol {
    /// Training seeds per design, `first_seed`, `first_seed + 1`, …: none of them a search
    /// seed, so the training and (for generated tasks) the validation data are fresh.
    pub seeds: u32,
    pub first_seed: u64,
    /// Also train at this multiple of the search's budget (0: only the search's).
    pub long_factor: f64,
    /// Designs from the random arm's campaigns (in the order sampled) that give Acc_random.
    pub random_population: usize,
    /// The learning rates every design (seeds, incumbents and the random population alike) is
    /// trained with at the search's budget; each is scored at its best by mean (and trained at
    /// that one for the long budget), so that a "discovery" cannot be a learning-rate fix.
    /// Empty: every design at the search's rate.
    pub learning_rates: Vec<f64>,
}

impl Default for FinalProtocol {
    fn default() -> Self {
        FinalProtocol {
            seeds: 5,
            first_seed: 1000,
            long_factor: 3.0,
            random_population: 16,
            learning_rates: vec![1e-3, 3e-3, 1e-2],
        }
    }
}

/// Smaller or larger versions of a suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// A smoke test: the first task, one campaign per arm of at most 120 evaluation-seconds,
    /// 3 final seeds, a random population of 8, no long budget, no learning-rate sweep and no
    /// verdicts (8 min 45 s on 2 cores when last measured).
    Quick,
    /// The suite as written.
    Standard,
    /// The suite at 10 campaigns per arm or more, and with the embedded suite, the MLP
    /// challenge, memorization, `charlm` and `fashion` too (the last two's data from
    /// `scripts/fetch-data.sh`): for bigger machines or a cluster.
    Full,
}

/// The arm a suite gets with an LLM: the campaign's own strategy with the LLM proposer, and
/// the LLM without evolution (its parents are always seeds; it sees no scores).
pub fn llm_arms() -> [Arm; 2] {
    [
        Arm {
            name: "llm".into(),
            strategy: StrategyChoice::Autoarch,
            proposer: ProposerChoice::Llm,
        },
        Arm {
            name: "llm-no-evolution".into(),
            strategy: StrategyChoice::Random,
            proposer: ProposerChoice::Llm,
        },
    ]
}

impl Suite {
    pub fn embedded() -> Suite {
        Suite::parse(DEFAULT_SUITE, "the embedded suite").expect("the embedded suite is valid")
    }

    pub fn load(path: &Path) -> Result<Suite, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        let mut suite = Suite::parse(&text, &file)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for t in &mut suite.tasks {
            t.task.data = t.task.data.take().map(|p| base.join(p));
            t.seeds = std::mem::take(&mut t.seeds)
                .into_iter()
                .map(|s| s.rebased(base))
                .collect();
            t.holdout = std::mem::take(&mut t.holdout)
                .into_iter()
                .map(|s| s.rebased(base))
                .collect();
        }
        Ok(suite)
    }

    pub fn parse(text: &str, file: &str) -> Result<Suite, ConfigError> {
        let suite: Suite =
            toml::from_str(text).map_err(|e: toml::de::Error| ConfigError::Parse {
                file: file.to_string(),
                message: e.to_string().trim_end().to_string(),
            })?;
        suite.validate(file)?;
        Ok(suite)
    }

    fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: &str| {
            Err(ConfigError::Invalid {
                file: file.to_string(),
                key: key.to_string(),
                reason: reason.to_string(),
            })
        };
        if self.campaigns == 0 {
            return bad("campaigns", "must be at least 1");
        }
        if !(self.size_cap.is_finite() && self.size_cap >= 1.0) {
            return bad("size_cap", "must be at least 1");
        }
        let b = self.budget.max_compute_seconds;
        if !(b.is_finite() && b > 0.0) {
            return bad("budget.max_compute_seconds", "must be a positive number");
        }
        if self.final_protocol.seeds == 0 {
            return bad("final.seeds", "must be at least 1");
        }
        let lrs = &self.final_protocol.learning_rates;
        if lrs.iter().any(|lr| !(lr.is_finite() && *lr > 0.0)) {
            return bad("final.learning_rates", "must be positive numbers");
        }
        if lrs.iter().enumerate().any(|(i, lr)| lrs[..i].contains(lr)) {
            return bad("final.learning_rates", "lists a rate twice");
        }
        let long = self.final_protocol.long_factor;
        if !(long == 0.0 || (long.is_finite() && long >= 1.0)) {
            return bad("final.long_factor", "must be 0 (off) or at least 1");
        }
        if self.tasks.is_empty() {
            return bad("tasks", "must list at least one task");
        }
        if self.arms.is_empty() {
            return bad("arms", "must list at least one arm");
        }
        for (what, names) in [
            (
                "tasks",
                self.tasks.iter().map(|t| &t.name).collect::<Vec<_>>(),
            ),
            ("arms", self.arms.iter().map(|a| &a.name).collect()),
        ] {
            for (i, n) in names.iter().enumerate() {
                if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return bad(what, &format!("{n:?}: names are letters, digits and '-'"));
                }
                if names[..i].contains(n) {
                    return bad(what, &format!("{n:?} is given twice"));
                }
            }
        }
        for t in &self.tasks {
            self.validate_holdout(t, file)?;
        }
        // Each campaign's config must be valid on its own (the task, the evaluation).
        for t in &self.tasks {
            for a in &self.arms {
                self.campaign(t, a, 0, Path::new("."), None)
                    .validate(file)
                    .or_else(|e| match e {
                        // An LLM arm without an endpoint is completed by the command line.
                        ConfigError::Invalid { key, .. } if key.starts_with("llm.") => Ok(()),
                        e => Err(e),
                    })?;
            }
        }
        Ok(())
    }

    /// Held-out designs must exist, and leave the campaigns a seed to start from.
    fn validate_holdout(&self, t: &SuiteTask, file: &str) -> Result<(), ConfigError> {
        let bad = |reason: String| ConfigError::Invalid {
            file: file.to_string(),
            key: format!("tasks.{}.holdout", t.name),
            reason,
        };
        for spec in &t.holdout {
            let designs = spec.designs(&t.task.name).map_err(|e| bad(e.to_string()))?;
            if designs.len() != 1 {
                return Err(bad(format!(
                    "{:?} must name one design (\"library:NAME\" or a file)",
                    spec.to_spec()
                )));
            }
        }
        if !t.holdout.is_empty() && t.campaign_seeds().is_empty() {
            return Err(bad("holds out every seed: the campaigns need one".into()));
        }
        Ok(())
    }

    /// The suite a preset makes of this one.
    pub fn with_preset(mut self, preset: Preset) -> Suite {
        match preset {
            Preset::Quick => {
                self.tasks.truncate(1);
                self.campaigns = 1;
                self.budget.max_compute_seconds = self.budget.max_compute_seconds.min(120.0);
                self.final_protocol.seeds = self.final_protocol.seeds.min(3);
                self.final_protocol.random_population =
                    self.final_protocol.random_population.min(8);
                self.final_protocol.long_factor = 0.0;
                self.final_protocol.learning_rates.clear();
                self.verdicts = false;
            }
            Preset::Standard => {}
            Preset::Full => {
                self.campaigns = self.campaigns.max(10);
                if self.name == "default" {
                    let full = Suite::parse(FULL_TASKS, "the embedded full tasks")
                        .expect("the embedded full tasks are valid");
                    for t in full.tasks {
                        if !self.tasks.iter().any(|u| u.name == t.name) {
                            self.tasks.push(t);
                        }
                    }
                }
            }
        }
        self
    }

    /// The suite with the command line's choices: `campaigns` per arm and task, and only the
    /// tasks named (all when none is).
    pub fn with_overrides(
        mut self,
        campaigns: Option<u32>,
        tasks: &[String],
    ) -> Result<Suite, String> {
        if let Some(n) = campaigns {
            if n == 0 {
                return Err("--campaigns must be at least 1".into());
            }
            self.campaigns = n;
        }
        if let Some(unknown) = tasks
            .iter()
            .find(|n| !self.tasks.iter().any(|t| &t.name == *n))
        {
            let known: Vec<&str> = self.tasks.iter().map(|t| t.name.as_str()).collect();
            return Err(format!(
                "--tasks: the suite has no task {unknown:?} (it has {})",
                known.join(", ")
            ));
        }
        if !tasks.is_empty() {
            self.tasks.retain(|t| tasks.contains(&t.name));
        }
        Ok(self)
    }

    /// Where campaign `k` of an arm on a task keeps its archive.
    pub fn archive_of(out: &Path, task: &SuiteTask, arm: &Arm, k: u32) -> PathBuf {
        out.join("campaigns")
            .join(&task.name)
            .join(&arm.name)
            .join(k.to_string())
    }

    /// The campaign config of campaign `k` of an arm on a task, with its candidates capped at
    /// `max_params`.
    pub fn campaign(
        &self,
        task: &SuiteTask,
        arm: &Arm,
        k: u32,
        out: &Path,
        max_params: Option<u64>,
    ) -> CampaignConfig {
        let mut evaluation = self.evaluation.clone();
        evaluation.max_params = max_params;
        CampaignConfig {
            name: format!("{}-{}-{}-{k}", self.name, task.name, arm.name),
            archive: Suite::archive_of(out, task, arm, k),
            seeds: task.campaign_seeds(),
            task: task.task.clone(),
            proposer: ProposerConfig {
                kind: arm.proposer,
                ..ProposerConfig::default()
            },
            llm: self.llm.clone(),
            budget: BudgetConfig {
                max_compute_seconds: Some(self.budget.max_compute_seconds),
                ..BudgetConfig::default()
            },
            evaluation,
            selection: Default::default(),
            search: SearchConfig {
                strategy: arm.strategy,
                seed: u64::from(k),
                ..SearchConfig::default()
            },
        }
    }

    /// The arm whose samples give the random-sampled population: the first with random search
    /// and the mutation proposer.
    pub fn random_arm(&self) -> Option<&Arm> {
        self.arms.iter().find(|a| {
            a.strategy == StrategyChoice::Random && a.proposer == ProposerChoice::Mutation
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELD_OUT: &str = "name = \"h\"\n[budget]\nmax_compute_seconds = 10\n[[tasks]]\nname = \"r\"\nholdout = [\"library:shift_attention\"]\n[tasks.task]\nname = \"mqar\"\n[[arms]]\nname = \"random\"\nstrategy = \"random\"\n";

    #[test]
    fn a_held_out_design_is_in_no_campaign_and_must_exist() {
        let s = Suite::parse(HELD_OUT, "suite.toml").unwrap();
        let t = &s.tasks[0];
        let seeds: Vec<String> = t.campaign_seeds().iter().map(SeedSpec::to_spec).collect();
        let library = crate::seeds::for_task("mqar");
        assert_eq!(seeds.len(), library.len() - 1, "{seeds:?}");
        assert!(!seeds.contains(&"library:shift_attention".to_string()));
        assert!(seeds.contains(&"library:transformer".to_string()));
        let c = s.campaign(t, &s.arms[0], 0, Path::new("out"), None);
        assert_eq!(c.seeds, t.campaign_seeds());
        // Without a holdout the task's seeds are the campaigns' as written.
        let plain = Suite::parse(
            &HELD_OUT.replace("holdout = [\"library:shift_attention\"]\n", ""),
            "s",
        )
        .unwrap();
        assert_eq!(plain.tasks[0].campaign_seeds(), vec![SeedSpec::Library]);
        let missing = HELD_OUT.replace("library:shift_attention", "library:nonesuch");
        let err = Suite::parse(&missing, "suite.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tasks.r.holdout"), "{err}");
        let all = HELD_OUT.replace(
            "[tasks.task]",
            "seeds = [\"library:shift_attention\"]\n[tasks.task]",
        );
        let err = Suite::parse(&all, "suite.toml").unwrap_err().to_string();
        assert!(err.contains("holds out every seed"), "{err}");
    }

    #[test]
    fn the_command_line_picks_campaigns_and_tasks() {
        let s = Suite::embedded();
        let names: Vec<String> = s.tasks.iter().map(|t| t.name.clone()).collect();
        let one = s.clone().with_overrides(Some(7), &names[1..2]).unwrap();
        assert_eq!(one.campaigns, 7);
        assert_eq!(one.tasks.len(), 1);
        assert_eq!(one.tasks[0].name, names[1]);
        assert_eq!(s.clone().with_overrides(None, &[]).unwrap(), s);
        let err = s
            .clone()
            .with_overrides(None, &["nope".into()])
            .unwrap_err();
        assert!(err.contains("no task \"nope\""), "{err}");
        assert!(s.with_overrides(Some(0), &[]).is_err());
    }

    #[test]
    fn the_embedded_suite_is_valid_and_the_quick_preset_shrinks_it() {
        let s = Suite::embedded();
        assert_eq!(s.tasks.len(), 4);
        assert_eq!(s.arms.len(), 3);
        assert_eq!(s.random_arm().map(|a| a.name.as_str()), Some("random"));
        let q = s.clone().with_preset(Preset::Quick);
        assert_eq!((q.tasks.len(), q.campaigns), (1, 1));
        assert_eq!(q.budget.max_compute_seconds, 120.0);
        assert_eq!(q.final_protocol.long_factor, 0.0);
        assert!(q.final_protocol.learning_rates.is_empty());
        assert!(s.verdicts && !q.verdicts);
        assert_eq!(s.clone().with_preset(Preset::Standard), s);
        let f = s.clone().with_preset(Preset::Full);
        assert_eq!(f.campaigns, 10);
        let names: Vec<&str> = f.tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "mqar-rediscovery",
                "noisy-recall",
                "selective-copy",
                "fuzzy-recall",
                "mqar",
                "mlp-challenge",
                "memorization",
                "charlm",
                "fashion"
            ]
        );
    }

    #[test]
    fn each_campaign_gets_the_same_budget_its_strategy_and_its_seed() {
        let s = Suite::embedded();
        let c = s.campaign(&s.tasks[0], &s.arms[1], 2, Path::new("out"), Some(5000));
        assert_eq!(c.name, "default-mqar-rediscovery-evolution-2");
        assert_eq!(
            c.archive,
            Path::new("out/campaigns/mqar-rediscovery/evolution/2")
        );
        assert_eq!(c.search.strategy, StrategyChoice::Evolution);
        assert_eq!(c.search.seed, 2);
        assert_eq!(c.budget.max_compute_seconds, Some(120.0));
        assert_eq!(c.budget.max_candidates, None);
        assert_eq!(c.evaluation.max_params, Some(5000));
        assert_eq!(c.limits().max_params, 5000);
    }

    #[test]
    fn broken_suites_name_the_key() {
        let base = DEFAULT_SUITE;
        let cases = [
            (
                base.replace("campaigns = 5", "campaigns = 0"),
                "`campaigns` must be at least 1",
            ),
            (
                base.replace("size_cap = 2.0", "size_cap = 0.5"),
                "`size_cap` must be at least 1",
            ),
            (
                base.replace("max_compute_seconds = 120", "max_compute_seconds = -1"),
                "`budget.max_compute_seconds` must be a positive number",
            ),
            (
                base.replace("name = \"evolution\"", "name = \"random\""),
                "\"random\" is given twice",
            ),
            (
                base.replace("strategy = \"evolution\"", "strategy = \"annealing\""),
                "unknown variant `annealing`",
            ),
            (
                base.replace("long_factor = 3.0", "long_factor = 0.5"),
                "`final.long_factor` must be 0 (off) or at least 1",
            ),
            (
                base.replace("[final]", "[finale]"),
                "unknown field `finale`",
            ),
            (
                base.replace("learning_rates = []", "learning_rates = [1e-3, 0.0]"),
                "`final.learning_rates` must be positive numbers",
            ),
        ];
        for (text, expected) in cases {
            let err = Suite::parse(&text, "suite.toml").unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
