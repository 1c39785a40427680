//! What the final protocol trains for a task (seeds, held-out designs, incumbents, the random
//! population), and how it scores them ([`Protocol`]).

use super::campaigns::is_new_proposal;
use super::*;

/// How the final protocol trains a task's designs: which runs each owes and what it scores.
/// Every design is `swept` (trained at every rate of the sweep, scored at its best, and
/// trained for the long budget at that rate): seeds, incumbents and the random population
/// alike, so that no arm's relative improvement comes from a rate the others were denied.
pub struct Protocol<'a> {
    pub store: &'a Store,
    pub config: crate::config::CampaignConfig,
    pub seeds: Vec<u64>,
    pub rates: Vec<f64>,
    pub long: Option<Setting>,
}

impl<'a> Protocol<'a> {
    pub fn new(suite: &Suite, out: &Path, t: usize, store: &'a Store) -> Protocol<'a> {
        let f = &suite.final_protocol;
        Protocol {
            store,
            config: suite.campaign(&suite.tasks[t], &suite.arms[0], 0, out, None),
            seeds: final_seeds(suite),
            rates: f.learning_rates.clone(),
            long: (f.long_factor > 0.0).then_some(Setting {
                budget: Budget::Long,
                factor: f.long_factor,
                learning_rate: None,
            }),
        }
    }

    /// The rate a design is scored at: the sweep's best (once every sweep run is stored), or
    /// the search's rate (`None`) for a design that is not swept.
    fn rate(&self, s: &Subject, swept: bool) -> Result<Option<f64>, ()> {
        if !swept || self.rates.is_empty() {
            return Ok(None);
        }
        protocol::best_rate(
            self.store,
            &self.config,
            &s.fingerprint,
            &self.seeds,
            &self.rates,
        )
        .map(Some)
        .ok_or(())
    }

    /// The runs a design still owes: the short budget (at every rate of the sweep), then,
    /// once its rate is known, the long budget.
    pub fn owed(&self, s: &Subject, swept: bool) -> Vec<protocol::Owed> {
        let mut settings = Vec::new();
        if swept && !self.rates.is_empty() {
            settings.extend(self.rates.iter().map(|&r| Setting::SHORT.at_rate(Some(r))));
        } else {
            settings.push(Setting::SHORT);
        }
        if let (Some(long), Ok(rate)) = (self.long, self.rate(s, swept)) {
            settings.push(long.at_rate(rate));
        }
        protocol::owed(self.store, &self.config, s, &self.seeds, &settings)
    }

    fn scores(&self, s: &Subject, setting: Setting) -> Option<Scores> {
        Scores::of(&protocol::scores(
            self.store,
            &self.config,
            &s.fingerprint,
            &self.seeds,
            setting,
        ))
    }

    /// The keys of every final run these designs may have (each budget at each rate of the
    /// sweep and at the search's), each once.
    pub fn keys<'s>(&self, subjects: impl Iterator<Item = &'s Subject>) -> Vec<String> {
        let rates = std::iter::once(None).chain(self.rates.iter().map(|&r| Some(r)));
        let mut settings = Vec::new();
        for rate in rates {
            settings.push(Setting::SHORT.at_rate(rate));
            settings.extend(self.long.map(|l| l.at_rate(rate)));
        }
        let mut keys = std::collections::BTreeSet::new();
        for s in subjects {
            for &setting in &settings {
                for &seed in &self.seeds {
                    let train = protocol::train_config(&self.config, setting, seed);
                    keys.insert(protocol::key(&s.fingerprint, &self.config.task, &train));
                }
            }
        }
        keys.into_iter().collect()
    }

    /// A design's results: at its rate, at both budgets, and the sweep.
    pub fn design(&self, s: &Subject, params: u64, swept: bool) -> DesignResult {
        let rate = self.rate(s, swept).ok().flatten();
        let sweep = if swept {
            self.rates
                .iter()
                .map(|&r| (r, self.scores(s, Setting::SHORT.at_rate(Some(r)))))
                .collect()
        } else {
            Vec::new()
        };
        let search_rate = self
            .config
            .train_config(autoarch_archive::Fidelity::SHORT, 0)
            .learning_rate;
        DesignResult {
            name: s.name.clone(),
            fingerprint: s.fingerprint.clone(),
            params,
            learning_rate: rate.unwrap_or(search_rate),
            sweep,
            short: if swept && !self.rates.is_empty() && rate.is_none() {
                None
            } else {
                self.scores(s, Setting::SHORT.at_rate(rate))
            },
            long: self.long.and_then(|l| self.scores(s, l.at_rate(rate))),
        }
    }
}

pub(super) fn subject(c: &autoarch_archive::Candidate) -> Subject {
    Subject {
        name: c.name.clone(),
        code: c.code.clone(),
        fingerprint: c.fingerprint.clone(),
    }
}

/// What the final protocol trains for a task: the seeds (from the first campaign's archive),
/// each campaign's incumbent, and the random population (proposals of the random arm's
/// campaigns, interleaved by campaign, new designs only).
pub struct TaskSubjects {
    pub seeds: Vec<(Subject, u64)>,
    /// The held-out designs (in no campaign), traced here.
    pub holdouts: Vec<(Subject, u64)>,
    pub incumbents: Vec<Vec<Option<(u64, Subject, u64)>>>,
    pub random: Vec<(Subject, u64)>,
}

/// The task's held-out designs as subjects of the final protocol: library seeds and the
/// user's own files, traced in this process (the campaigns never saw them).
pub(super) fn holdouts(task: &SuiteTask) -> crate::campaign::Result<Vec<(Subject, u64)>> {
    use crate::campaign::Error;
    if task.holdout.is_empty() {
        return Ok(Vec::new());
    }
    let shape = autoarch_evaluator::Task::load(&task.task, 0)
        .map_err(|source| Error::Task {
            task: task.name.clone(),
            source,
        })?
        .shape;
    let config = autoarch_sandbox::TraceConfig::new(shape);
    let mut out = Vec::new();
    for spec in &task.holdout {
        for d in spec.designs(&task.task.name)? {
            match autoarch_sandbox::trace(&d.code, &config) {
                autoarch_sandbox::TraceOutcome::Ok(t) => out.push((
                    Subject {
                        name: d.name,
                        code: d.code,
                        fingerprint: t.fingerprint.0.clone(),
                    },
                    t.stats.params,
                )),
                autoarch_sandbox::TraceOutcome::Invalid { diagnostics } => {
                    return Err(Error::SeedDoesNotTrace {
                        diagnostics: autoarch_sandbox::render_all(&diagnostics, &d.source),
                        seed: d.source,
                        task: task.name.clone(),
                    })
                }
            }
        }
    }
    Ok(out)
}

/// Reads a finished campaign's archive.
pub(super) fn open(path: &Path) -> crate::campaign::Result<Archive> {
    Ok(Archive::open_for_review(path)?.0)
}

pub fn subjects(suite: &Suite, out: &Path, t: usize) -> crate::campaign::Result<TaskSubjects> {
    let task = &suite.tasks[t];
    let first = open(&Suite::archive_of(out, task, &suite.arms[0], 0))?;
    let seeds = first
        .list()?
        .into_iter()
        .filter(|l| l.candidate.proposer == ProposerKind::Seed && l.candidate.traced())
        .map(|l| (subject(&l.candidate), l.candidate.stats.params))
        .collect();
    let mut incumbents = Vec::new();
    for arm in &suite.arms {
        let mut per = Vec::new();
        for k in 0..suite.campaigns {
            let archive = open(&Suite::archive_of(out, task, arm, k))?;
            per.push(ranking::best(&archive)?.map(|l| {
                (
                    l.candidate.id,
                    subject(&l.candidate),
                    l.candidate.stats.params,
                )
            }));
        }
        incumbents.push(per);
    }
    let mut random = Vec::new();
    if let Some(arm) = suite.random_arm() {
        let mut lists = Vec::new();
        for k in 0..suite.campaigns {
            let archive = open(&Suite::archive_of(out, task, arm, k))?;
            lists.push(
                archive
                    .list()?
                    .into_iter()
                    .filter(is_new_proposal)
                    .collect::<Vec<_>>(),
            );
        }
        let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
        'fill: for i in 0..longest {
            for list in &lists {
                if random.len() >= suite.final_protocol.random_population {
                    break 'fill;
                }
                if let Some(l) = list.get(i) {
                    random.push((subject(&l.candidate), l.candidate.stats.params));
                }
            }
        }
    }
    let holdouts = holdouts(task)?;
    Ok(TaskSubjects {
        seeds,
        holdouts,
        incumbents,
        random,
    })
}
