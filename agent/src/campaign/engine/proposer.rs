//! The engine's proposer side: choosing parents through the strategy, asking the proposer,
//! storing what it proposes (and queueing it), handing over to the fallback, and the analyses
//! that draw lessons from results.

use std::collections::BTreeSet;

use autoarch_archive::{Archive, CandidateId, EventKind, Metric, ProposerKind};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Engine, Result, Stop};
use crate::campaign::admit::{store_proposal, Stored};
use crate::campaign::context::{self, remember};
use crate::campaign::jobs::JobSpec;
use crate::campaign::RunEvent;
use crate::propose::{Analysis, Checker, Draft, Failure, Proposal, ProposalContext, ProposeError};
use crate::search::{Population, Selection};

/// Proposals in a row that may give nothing (no proposal, or only a duplicate) before the run
/// stops.
pub(super) const NOTHING_IN_A_ROW: u32 = 50;

/// The strategy's view of the campaign: the archive's samplers and the loop's own records,
/// without the random baseline's candidates.
pub(super) struct View<'a> {
    pub(super) archive: &'a Archive,
    pub(super) seeds: &'a [CandidateId],
    pub(super) scored: &'a [(CandidateId, f64)],
    pub(super) random: &'a BTreeSet<CandidateId>,
}

/// Draws again (a few times) when a sampler lands on a baseline candidate.
const RESAMPLES: usize = 8;

impl View<'_> {
    fn own(
        &self,
        mut draw: impl FnMut() -> crate::search::Result<Option<CandidateId>>,
    ) -> crate::search::Result<Option<CandidateId>> {
        for _ in 0..RESAMPLES {
            match draw()? {
                Some(id) if self.random.contains(&id) => continue,
                other => return Ok(other),
            }
        }
        Ok(None)
    }
}

impl Population for View<'_> {
    fn seeds(&self) -> Vec<CandidateId> {
        self.seeds.to_vec()
    }

    fn scored(&self) -> Vec<(CandidateId, f64)> {
        self.scored.to_vec()
    }

    fn sample_successful(
        &self,
        rng: &mut ChaCha8Rng,
    ) -> crate::search::Result<Option<CandidateId>> {
        self.archive.sample_successful(rng)
    }

    fn sample_elite(&self, rng: &mut ChaCha8Rng) -> crate::search::Result<Option<CandidateId>> {
        self.archive.sample_elite(rng)
    }

    fn sample_island(
        &self,
        island: u32,
        size: usize,
        rng: &mut ChaCha8Rng,
    ) -> crate::search::Result<Option<CandidateId>> {
        self.own(|| self.archive.sample_island(island, size, rng))
    }

    fn top(&self, k: usize) -> crate::search::Result<Vec<CandidateId>> {
        Ok(self
            .archive
            .top_k(Metric::Score, k + self.random.len())?
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| !self.random.contains(id))
            .take(k)
            .collect())
    }
}

impl Engine<'_> {
    /// Keeps one proposal per worker ready while workers train; `false` when the strategy
    /// has no parent to offer yet.
    pub(super) fn start_proposals(&mut self) -> Result<bool> {
        let capacity = self.c.evaluator.capacity();
        while self.wants_more() && self.queue.len() + self.proposing.len() < capacity {
            let n = self.made;
            let mut rng = ChaCha8Rng::seed_from_u64(
                n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.c.config.search.seed,
            );
            let view = View {
                archive: &self.c.archive,
                seeds: &self.seeds,
                scored: &self.scored,
                random: &self.random,
            };
            let Some(selection) = self.strategy.select(&view, n, &mut rng)? else {
                return Ok(false);
            };
            self.made += 1;
            self.purpose.record_made(&mut self.state, self.made);
            self.emit(RunEvent::Selected {
                proposal: n,
                parent: selection.parent,
                inspirations: selection.inspirations.clone(),
            });
            let ctx = self.context(selection, n)?;
            self.spawn_proposal(n, ctx);
        }
        Ok(true)
    }

    pub(super) fn context(&self, selection: Selection, n: u64) -> Result<ProposalContext> {
        let archive = &self.c.archive;
        let blind = selection.blind;
        let inspirations = selection
            .inspirations
            .iter()
            .map(|id| context::shown(archive, *id, blind))
            .collect::<Result<Vec<_>>>()?;
        Ok(ProposalContext {
            task: self.c.task.clone(),
            limits: self.c.config.limits(),
            parent: context::shown(archive, selection.parent, blind)?,
            inspirations,
            failures: if blind {
                Vec::new()
            } else {
                self.failures.iter().cloned().collect()
            },
            insights: if blind {
                Vec::new()
            } else {
                context::insights(archive)?
            },
            // The proposer's randomness follows the campaign seed too (seed 0: the number).
            seed: n ^ self
                .c
                .config
                .search
                .seed
                .wrapping_mul(0xD1B5_4A32_D192_ED03),
            checker: Checker::new(self.c.tracer.clone(), self.trace_config()),
            known: self.known.clone(),
            edits: selection.edits,
        })
    }

    /// Asks the proposer, then traces what it did not trace itself.
    pub(super) fn spawn_proposal(&mut self, n: u64, ctx: ProposalContext) {
        let proposer = self.proposer.clone();
        let tracer = self.c.tracer.clone();
        let config = self.trace_config();
        self.proposing.spawn(async move {
            let kind = proposer.kind();
            let result = async {
                let mut p = proposer.propose(ctx).await?;
                if let Draft::Code(code) = &p.draft {
                    let outcome = tracer.trace(code, &config).await?;
                    p.draft = Draft::Traced {
                        code: code.clone(),
                        outcome,
                    };
                }
                Ok(p)
            }
            .await;
            (n, kind, result)
        });
    }

    pub(super) fn on_proposed(
        &mut self,
        n: u64,
        kind: ProposerKind,
        result: std::result::Result<Proposal, ProposeError>,
    ) -> Result<Option<Stop>> {
        match result {
            Ok(p) => {
                self.counters.nothing_in_a_row = 0;
                if self.store(n, p, kind)? {
                    self.counters.stale_in_a_row = 0;
                } else {
                    self.stale();
                }
                Ok(None)
            }
            Err(ProposeError::Machine { error, calls }) => {
                self.account_lost_calls(&calls)?;
                Ok(Some(Stop::Machine(error.explained())))
            }
            Err(e @ ProposeError::Unavailable(_)) => Ok(self.unavailable(kind, &e)?),
            Err(e) => {
                self.counters.nothing_in_a_row += 1;
                self.stale();
                tracing::info!(proposal = n, "no proposal: {e}");
                Ok(
                    (self.counters.nothing_in_a_row >= NOTHING_IN_A_ROW).then(|| {
                        Stop::Proposer(format!(
                            "{NOTHING_IN_A_ROW} proposals in a row gave nothing (last: {e})"
                        ))
                    }),
                )
            }
        }
    }

    /// A proposal that gave nothing new (a duplicate, or no proposal at all). After
    /// [`NOTHING_IN_A_ROW`] of them in a row the run stops proposing; what is queued and running
    /// still finishes (promotions included), and then the run ends as exhausted.
    pub(super) fn stale(&mut self) {
        self.counters.stale_in_a_row += 1;
        if self.counters.stale_in_a_row >= NOTHING_IN_A_ROW && self.purpose.can_be_exhausted() {
            self.exhausted = true;
        }
    }

    /// LLM calls of a proposal that the machine cut short: no candidate carries them, so the
    /// campaign record does (they count against the token and dollar budgets).
    pub(super) fn account_lost_calls(&mut self, calls: &[autoarch_archive::LlmCall]) -> Result<()> {
        if calls.is_empty() {
            return Ok(());
        }
        let tokens: u64 = calls
            .iter()
            .map(|c| c.tokens.prompt + c.tokens.completion)
            .sum();
        let dollars: f64 = calls.iter().map(|c| c.cost_usd).sum();
        self.state.other_tokens += tokens;
        self.state.other_dollars += dollars;
        self.spent.tokens += tokens;
        self.spent.dollars += dollars;
        self.c.archive.log_event(
            EventKind::Proposer,
            &format!(
                "{} LLM calls ({tokens} tokens) of a proposal cut short by the machine",
                calls.len()
            ),
            None,
        )?;
        Ok(())
    }

    /// Stores a proposal and queues its evaluation when it is new; whether it gave anything: a
    /// new design, or an LLM's code that did not trace (a lesson for the repair prompts). A
    /// duplicate gives nothing, nor does a mutation that did not trace (no one learns from it:
    /// a random sampler in a small space makes such edits, and duplicates, forever).
    pub(super) fn store(&mut self, n: u64, mut p: Proposal, kind: ProposerKind) -> Result<bool> {
        let notes = std::mem::take(&mut p.notes);
        // The baseline gives up on a small space on its own terms, not by staleness.
        if self.purpose.samples() && !self.is_new(&p)? {
            self.log_notes(&notes, None)?;
            return Ok(true);
        }
        let tags = self.purpose.mark(&mut p);
        let (tokens, dollars) = (p.tokens(), p.cost_usd());
        let (id, stored) =
            store_proposal(&self.c.archive, p, kind, tags, &self.c.config.task.name)?;
        if self.purpose.budgeted() {
            self.spent.candidates += 1;
        }
        self.spent.tokens += tokens.prompt + tokens.completion;
        self.spent.dollars += dollars;
        let c = self
            .c
            .archive
            .candidate(id)?
            .ok_or(autoarch_archive::Error::UnknownCandidate(id))?;
        self.log_notes(&notes, Some(id))?;
        self.known.insert(&c.fingerprint);
        self.emit(RunEvent::Stored {
            id,
            proposal: n,
            name: c.name.clone(),
            stored,
        });
        match stored {
            Stored::Queued => {
                self.counters.traced += 1;
                self.queue.push_back(JobSpec::short(id));
                if self.purpose.samples() {
                    self.random.insert(id);
                }
            }
            Stored::Duplicate => {
                self.counters.traced += 1;
                self.counters.duplicates += 1;
            }
            Stored::Untraced => {
                self.counters.untraced += 1;
                let evaluations = self.c.archive.evaluations(id)?;
                let reason = evaluations.last().and_then(|e| e.reason.clone());
                let failure = Failure {
                    name: c.name,
                    code: c.code,
                    reason: reason.unwrap_or_default(),
                };
                remember(&mut self.failures, failure);
            }
        }
        Ok(match stored {
            Stored::Queued => true,
            Stored::Untraced => kind != ProposerKind::Mutation,
            Stored::Duplicate => false,
        })
    }

    /// A proposer's notes (e.g. a model switching how it answers): the archive's event log,
    /// the campaign log and the observer each get them.
    pub(super) fn log_notes(&mut self, notes: &[String], id: Option<CandidateId>) -> Result<()> {
        for line in notes {
            self.c.archive.log_event(EventKind::Proposer, line, id)?;
            tracing::info!("{line}");
            self.emit(RunEvent::Note(line.clone()));
        }
        Ok(())
    }

    /// Whether a proposal traced into a design the archive does not hold yet.
    pub(super) fn is_new(&self, p: &Proposal) -> Result<bool> {
        Ok(match &p.draft {
            Draft::Traced {
                outcome: autoarch_sandbox::TraceOutcome::Ok(t),
                ..
            } => self.c.archive.find_fingerprint(&t.fingerprint.0)?.is_none(),
            _ => false,
        })
    }

    /// The proposer is gone: hand over to the fallback once, else stop.
    pub(super) fn unavailable(
        &mut self,
        kind: ProposerKind,
        e: &ProposeError,
    ) -> Result<Option<Stop>> {
        if self.fell_back && kind != ProposerKind::Mutation {
            // A call that was in flight when the fallback began.
            return Ok(None);
        }
        match (&self.c.fallback, self.fell_back) {
            (Some(fallback), false) => {
                self.fell_back = true;
                self.proposer = fallback.clone();
                let line = format!(
                    "{e}; going on with the {} proposer",
                    fallback.kind().as_str()
                );
                self.c.archive.log_event(EventKind::Proposer, &line, None)?;
                tracing::warn!("{line}");
                self.emit(RunEvent::Note(line));
                Ok(None)
            }
            _ => Ok(Some(Stop::Proposer(e.to_string()))),
        }
    }

    /// Draws a lesson from the results every `analyze_every` short evaluations.
    pub(super) fn start_analysis(&mut self) -> Result<()> {
        let every = u64::from(self.c.config.llm.analyze_every);
        let due = self.purpose.learns()
            && !self.strategy.blind()
            && every > 0
            && self.analysing.is_empty()
            && !self.fell_back
            && self.spent.short >= self.state.analysed_at + every;
        if due {
            self.state.analysed_at = self.spent.short;
            let ctx = context::analysis(&self.c.archive, &self.c.task)?;
            let proposer = self.proposer.clone();
            self.analysing
                .spawn(async move { proposer.analyze(ctx).await });
        }
        Ok(())
    }

    pub(super) fn on_analysed(
        &mut self,
        result: std::result::Result<Option<Analysis>, ProposeError>,
    ) -> Result<Option<Stop>> {
        match result {
            Ok(Some(analysis)) => {
                let call = &analysis.call;
                self.spent.tokens += call.tokens.prompt + call.tokens.completion;
                self.spent.dollars += call.cost_usd;
                if let Some(text) =
                    context::store_analysis(&self.c.archive, analysis, &mut self.state)?
                {
                    self.emit(RunEvent::Insight(text));
                }
            }
            Ok(None) => {}
            Err(ProposeError::Machine { error, calls }) => {
                self.account_lost_calls(&calls)?;
                return Ok(Some(Stop::Machine(error.explained())));
            }
            // The proposals meet the same endpoint and stop or fall back.
            Err(e) => {
                self.c
                    .archive
                    .log_event(EventKind::Analysis, &e.to_string(), None)?;
            }
        }
        Ok(None)
    }
}
