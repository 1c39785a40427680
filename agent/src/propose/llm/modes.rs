//! `[llm] answer = "auto"`: per model, answer with code while its code traces often enough,
//! with edits from the menu when it does not, and probe code again now and then.
//!
//! The rule: a model starts in `code`. When fewer than a quarter of its last [`WINDOW`] code
//! proposals (at least [`EVIDENCE`] of them) traced, after repair, into a design the archive did
//! not hold (the caller decides; a copy of a known design counts as a failure), it switches to
//! `edits`. In
//! `edits`, every [`WINDOW`]th proposal is a code probe; when the share is back at a quarter or
//! more, the model switches back to `code`. The state lives in the proposer; a resumed campaign
//! replays its own proposals ([`Modes::replay`]), so each model goes on with the answer kind and
//! the probe cadence it had.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use crate::config::AnswerChoice;
use crate::propose::prompts::AnswerKind;

/// The code proposals the share is taken over, and the period of the probes.
pub const WINDOW: usize = 8;
/// The fewest code proposals a switch to edits rests on.
pub const EVIDENCE: usize = 2;
/// The share of code proposals that must trace.
pub const THRESHOLD: f64 = 0.25;

#[derive(Debug)]
struct ModelState {
    current: AnswerKind,
    /// The last code proposals: traced (after repair) or not.
    code: VecDeque<bool>,
    /// Proposals asked in `edits` since the last code proposal.
    edits_since_code: usize,
}

impl Default for ModelState {
    fn default() -> Self {
        ModelState {
            current: AnswerKind::Code,
            code: VecDeque::new(),
            edits_since_code: 0,
        }
    }
}

impl ModelState {
    fn share(&self) -> f64 {
        self.code.iter().filter(|t| **t).count() as f64 / self.code.len().max(1) as f64
    }
}

/// The answer kind per model.
#[derive(Debug)]
pub struct Modes {
    choice: AnswerChoice,
    models: Mutex<BTreeMap<String, ModelState>>,
}

impl Modes {
    pub fn new(choice: AnswerChoice) -> Modes {
        Modes {
            choice,
            models: Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether the answer kind is fixed (`code` or `edits`), not chosen per model.
    pub fn fixed(&self) -> bool {
        self.choice != AnswerChoice::Auto
    }

    /// How the next proposal of `model` is asked for.
    pub fn next(&self, model: &str) -> AnswerKind {
        match self.choice {
            AnswerChoice::Code => AnswerKind::Code,
            AnswerChoice::Edits => AnswerKind::Edits,
            AnswerChoice::Auto => {
                let mut models = self.models.lock().expect("modes lock");
                let s = models.entry(model.to_string()).or_default();
                match s.current {
                    AnswerKind::Code => AnswerKind::Code,
                    AnswerKind::Edits if s.edits_since_code + 1 >= WINDOW => {
                        // The probe: counted as asked, so that proposals in flight at the same
                        // time do not all probe.
                        s.edits_since_code = 0;
                        AnswerKind::Code
                    }
                    AnswerKind::Edits => {
                        s.edits_since_code += 1;
                        AnswerKind::Edits
                    }
                }
            }
        }
    }

    /// Forgets every model's record (before a replay).
    pub fn clear(&self) {
        self.models.lock().expect("modes lock").clear();
    }

    /// Replays a proposal of an earlier run exactly as it went live — the choice of its kind
    /// (which moves the probe cadence), then its result — so that a resumed campaign goes on
    /// where it was. Returns the switch line, if the proposal caused one.
    pub fn replay(&self, model: &str, kind: AnswerKind, traced: bool) -> Option<String> {
        self.next(model);
        self.record(model, kind, traced)
    }

    /// The answer kind of each model that is not on `code`, for the log of a resumed run.
    pub fn not_on_code(&self) -> Vec<String> {
        let models = self.models.lock().expect("modes lock");
        models
            .iter()
            .filter(|(_, s)| s.current != AnswerKind::Code)
            .map(|(m, s)| {
                format!(
                    "{m}: resumes with {} answers ({} of its last {} code proposals traced into a new design)",
                    s.current.as_str(),
                    s.code.iter().filter(|t| **t).count(),
                    s.code.len()
                )
            })
            .collect()
    }

    /// Records how a proposal asked as `kind` ended; returns the line to log when the model
    /// switched.
    pub fn record(&self, model: &str, kind: AnswerKind, traced: bool) -> Option<String> {
        if self.choice != AnswerChoice::Auto || kind != AnswerKind::Code {
            return None;
        }
        let mut models = self.models.lock().expect("modes lock");
        let s = models.entry(model.to_string()).or_default();
        s.code.push_back(traced);
        while s.code.len() > WINDOW {
            s.code.pop_front();
        }
        let share = s.share();
        let (ok, n) = (s.code.iter().filter(|t| **t).count(), s.code.len());
        let to = match s.current {
            AnswerKind::Code if n >= EVIDENCE && share < THRESHOLD => AnswerKind::Edits,
            AnswerKind::Edits if share >= THRESHOLD => AnswerKind::Code,
            _ => return None,
        };
        s.current = to;
        s.edits_since_code = 0;
        let why = match to {
            AnswerKind::Edits => format!(
                "{ok} of its last {n} code proposals traced into a new design (under {:.0}%); code is probed every {WINDOW}th proposal",
                THRESHOLD * 100.0
            ),
            AnswerKind::Code => format!(
                "a code probe gave a new design: {ok} of its last {n} code proposals did (at least {:.0}%)",
                THRESHOLD * 100.0
            ),
        };
        Some(format!(
            "{model}: answers switch from {} to {}: {why}",
            match to {
                AnswerKind::Edits => "code",
                AnswerKind::Code => "edits",
            },
            to.as_str()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_choices_never_switch() {
        for (choice, kind) in [
            (AnswerChoice::Code, AnswerKind::Code),
            (AnswerChoice::Edits, AnswerKind::Edits),
        ] {
            let m = Modes::new(choice);
            for _ in 0..20 {
                assert_eq!(m.next("a"), kind);
                assert_eq!(m.record("a", kind, false), None);
            }
        }
    }

    #[test]
    fn auto_switches_to_edits_probes_every_eighth_and_switches_back_per_model() {
        let m = Modes::new(AnswerChoice::Auto);
        assert_eq!(m.next("small"), AnswerKind::Code);
        assert_eq!(
            m.record("small", AnswerKind::Code, false),
            None,
            "one is no evidence"
        );
        assert_eq!(m.next("small"), AnswerKind::Code);
        let line = m.record("small", AnswerKind::Code, false).unwrap();
        assert_eq!(
            line,
            "small: answers switch from code to edits: 0 of its last 2 code proposals traced into a new design (under 25%); code is probed every 8th proposal"
        );
        // Another model keeps its own state.
        assert_eq!(m.next("big"), AnswerKind::Code);
        let kinds: Vec<AnswerKind> = (0..16).map(|_| m.next("small")).collect();
        let probes: Vec<usize> = (0..16).filter(|i| kinds[*i] == AnswerKind::Code).collect();
        assert_eq!(probes, vec![7, 15], "{kinds:?}");
        // Edits answers do not move the share; a failed probe keeps edits.
        assert_eq!(m.record("small", AnswerKind::Edits, true), None);
        assert_eq!(m.record("small", AnswerKind::Code, false), None);
        // 1 of 4 traced: back to code.
        let back = m.record("small", AnswerKind::Code, true).unwrap();
        assert!(
            back.starts_with(
                "small: answers switch from edits to code: a code probe gave a new design: 1 of its last 4"
            ),
            "{back}"
        );
        assert_eq!(m.next("small"), AnswerKind::Code);
    }

    #[test]
    fn a_replayed_history_resumes_the_answer_kind_and_the_probe_cadence() {
        use AnswerKind::{Code, Edits};
        // A live run: two failed code proposals, edits, a fallback to code while in edits (no
        // edit applied to that parent), a failed probe, more edits.
        let live = Modes::new(AnswerChoice::Auto);
        let mut history = Vec::new();
        for i in 0..14 {
            let mut kind = live.next("small");
            if kind == Edits && i == 4 {
                kind = Code; // the menu was empty
            }
            live.record("small", kind, kind == Edits);
            history.push(kind);
        }
        let resumed = Modes::new(AnswerChoice::Auto);
        let switches: Vec<String> = history
            .iter()
            .filter_map(|k| resumed.replay("small", *k, *k == Edits))
            .collect();
        assert_eq!(switches.len(), 1, "{switches:?}");
        assert_eq!(
            resumed.not_on_code(),
            vec!["small: resumes with edits answers (0 of its last 4 code proposals traced into a new design)"]
        );
        let next_live: Vec<AnswerKind> = (0..10).map(|_| live.next("small")).collect();
        let next_resumed: Vec<AnswerKind> = (0..10).map(|_| resumed.next("small")).collect();
        assert_eq!(next_resumed, next_live);
        assert!(next_live.contains(&Code) && next_live.contains(&Edits));
        resumed.clear();
        assert_eq!(resumed.next("small"), Code);
    }

    #[test]
    fn a_model_whose_code_traces_stays_in_code() {
        let m = Modes::new(AnswerChoice::Auto);
        for i in 0..30 {
            assert_eq!(m.next("good"), AnswerKind::Code);
            // One in three traces: above the quarter.
            assert_eq!(m.record("good", AnswerKind::Code, i % 3 == 0), None, "{i}");
        }
    }
}
