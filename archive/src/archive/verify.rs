//! `Archive::verify`: every tree checked against what the records say it must hold. Each index
//! tree's expected keys come from the same functions that write them ([`super::ranked_metrics`],
//! [`super::memberships`]), so a new index cannot drift from its check unnoticed.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    eval_key, memberships, metric_key, pair_key, ranked_metrics, summaries_match, summarise,
    Archive, Counter, Problem,
};
use crate::backend::{id_key, key_id, named_key, Tree};
use crate::query::Cell;
use crate::record::{
    decode_candidate, decode_evaluation, decode_other, Campaign, Candidate, CandidateId,
    Evaluation, Event, Insight, Status, Summary,
};
use crate::Result;

pub(super) struct Verifier<'a> {
    archive: &'a Archive,
    pub(super) problems: Vec<Problem>,
    candidates: BTreeMap<CandidateId, Candidate>,
    evaluations: BTreeMap<CandidateId, Vec<Evaluation>>,
    /// The summaries the evaluations give.
    expected: BTreeMap<CandidateId, Summary>,
}

fn lossy(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

impl<'a> Verifier<'a> {
    pub(super) fn run(archive: &'a Archive) -> Result<Vec<Problem>> {
        let mut v = Verifier {
            archive,
            problems: Vec::new(),
            candidates: BTreeMap::new(),
            evaluations: BTreeMap::new(),
            expected: BTreeMap::new(),
        };
        v.candidates()?;
        v.references()?;
        v.evaluations()?;
        v.summaries()?;
        v.indexes()?;
        v.cells()?;
        v.records()?;
        Ok(v.problems)
    }

    fn report(&mut self, tree: Tree, key: String, message: impl Into<String>) {
        self.problems.push(Problem {
            tree: tree.name(),
            key,
            message: message.into(),
        });
    }

    fn scan(&self, tree: Tree) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.archive.backend.scan(tree, &[], false, usize::MAX)
    }

    fn has(&self, tree: Tree, key: &[u8]) -> Result<bool> {
        Ok(self.archive.backend.get(tree, key)?.is_some())
    }

    /// Every candidate record decodes under its own id, below the next id.
    fn candidates(&mut self) -> Result<()> {
        for (k, v) in self.scan(Tree::Candidates)? {
            let key = key_id(&k).map_or_else(|| format!("{k:?}"), |i| i.to_string());
            match decode_candidate(&v) {
                Ok(c) if key_id(&k) == Some(c.id) => {
                    self.candidates.insert(c.id, c);
                }
                Ok(c) => self.report(Tree::Candidates, key, format!("holds candidate {}", c.id)),
                Err(e) => self.report(Tree::Candidates, key, e.to_string()),
            }
        }
        let next = self.archive.candidate_count()?;
        let ids: Vec<CandidateId> = self.candidates.keys().copied().collect();
        for id in ids.into_iter().filter(|id| *id >= next) {
            let message = format!("{next} is not above id {id}");
            self.report(Tree::Meta, Counter::Candidate.key().into(), message);
        }
        Ok(())
    }

    /// Parents and originals exist; the fingerprint, children and tag indexes hold each
    /// candidate.
    fn references(&mut self) -> Result<()> {
        let candidates: Vec<Candidate> = self.candidates.values().cloned().collect();
        for c in &candidates {
            for p in c.parents.iter().chain(&c.duplicate_of) {
                if !self.candidates.contains_key(p) {
                    let message = format!("refers to missing candidate {p}");
                    self.report(Tree::Candidates, c.id.to_string(), message);
                }
            }
            match self.archive.find_fingerprint(&c.fingerprint)? {
                Some(first)
                    if first <= c.id
                        && self
                            .candidates
                            .get(&first)
                            .is_some_and(|f| f.fingerprint == c.fingerprint) => {}
                other => {
                    let message = format!(
                        "indexes {other:?}, not the first candidate with it (≤ {})",
                        c.id
                    );
                    self.report(Tree::Fingerprints, c.fingerprint.clone(), message);
                }
            }
            for p in &c.parents {
                if !self.has(Tree::Children, &pair_key(*p, c.id))? {
                    let key = format!("{p}/{}", c.id);
                    self.report(Tree::Children, key, "missing child entry");
                }
            }
            for t in &c.tags {
                if !self.has(Tree::Tags, &named_key(t, &id_key(c.id)))? {
                    self.report(Tree::Tags, format!("{t}/{}", c.id), "missing tag entry");
                }
            }
        }
        Ok(())
    }

    /// Every evaluation decodes under its key, of a candidate that exists, below the next id.
    fn evaluations(&mut self) -> Result<()> {
        let next = self.archive.counter(Counter::Evaluation)?;
        for (k, v) in self.scan(Tree::Evaluations)? {
            let key = format!(
                "{:?}/{:?}",
                key_id(&k[..8.min(k.len())]),
                key_id(k.get(8..).unwrap_or_default())
            );
            match decode_evaluation(&v) {
                Ok(e) if k == eval_key(e.candidate, e.id) => {
                    if !self.candidates.contains_key(&e.candidate) {
                        let message = format!("evaluates missing candidate {}", e.candidate);
                        self.report(Tree::Evaluations, key, message);
                    } else if e.id >= next {
                        let message = format!("{next} is not above id {}", e.id);
                        self.report(Tree::Meta, Counter::Evaluation.key().into(), message);
                    } else {
                        self.evaluations.entry(e.candidate).or_default().push(e);
                    }
                }
                Ok(e) => {
                    let message = format!("holds evaluation {} of {}", e.id, e.candidate);
                    self.report(Tree::Evaluations, key, message);
                }
                Err(e) => self.report(Tree::Evaluations, key, e.to_string()),
            }
        }
        Ok(())
    }

    /// Each stored summary is the one its evaluations give.
    fn summaries(&mut self) -> Result<()> {
        let candidates: Vec<Candidate> = self.candidates.values().cloned().collect();
        for c in &candidates {
            let evaluations = self.evaluations.get(&c.id).map_or(&[][..], Vec::as_slice);
            let expected = summarise(c, evaluations);
            match self.archive.summary(c.id) {
                Ok(s) if summaries_match(&s, &expected) => {}
                Ok(s) => {
                    let message = format!(
                        "says {} with {} evaluations; the evaluations say {} with {}",
                        s.status.as_str(),
                        s.evaluations,
                        expected.status.as_str(),
                        expected.evaluations
                    );
                    self.report(Tree::Summaries, c.id.to_string(), message);
                }
                Err(e) => self.report(Tree::Summaries, c.id.to_string(), e.to_string()),
            }
            self.expected.insert(c.id, expected);
        }
        Ok(())
    }

    /// The rankings and the successful-candidate, island and cell-member indexes hold exactly
    /// the entries the summaries call for.
    fn indexes(&mut self) -> Result<()> {
        let mut metrics = BTreeSet::new();
        let mut members: Vec<(Tree, BTreeSet<Vec<u8>>)> =
            [Tree::Successful, Tree::Islands, Tree::CellMembers]
                .into_iter()
                .map(|t| (t, BTreeSet::new()))
                .collect();
        for (id, summary) in &self.expected {
            let c = &self.candidates[id];
            for (m, v) in ranked_metrics(c, summary) {
                metrics.insert(metric_key(&m, v, c.id));
            }
            if summary.status == Status::Ok {
                for (tree, key) in memberships(c) {
                    if let Some((_, keys)) = members.iter_mut().find(|(t, _)| *t == tree) {
                        keys.insert(key);
                    }
                }
            }
        }
        self.index(Tree::Metrics, &metrics, "ranking entry")?;
        for (tree, keys) in &members {
            self.index(*tree, keys, "entry")?;
        }
        Ok(())
    }

    /// Reports the keys `tree` lacks and the ones it holds for no reason.
    fn index(&mut self, tree: Tree, expected: &BTreeSet<Vec<u8>>, what: &str) -> Result<()> {
        let held: BTreeSet<Vec<u8>> = self.scan(tree)?.into_iter().map(|(k, _)| k).collect();
        for missing in expected.difference(&held) {
            self.report(tree, lossy(missing), format!("missing {what}"));
        }
        for extra in held.difference(expected) {
            let message = format!("{what} for no successful candidate");
            self.report(tree, lossy(extra), message);
        }
        Ok(())
    }

    /// Each MAP-Elites cell's elite is a best-scoring successful member, and every cell with a
    /// scored member has one.
    fn cells(&mut self) -> Result<()> {
        let mut best: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
        for (id, summary) in &self.expected {
            if summary.status != Status::Ok {
                continue;
            }
            if let Some(score) = summary.score() {
                let cell = Cell::of(&self.candidates[id].stats).key();
                let top = best.entry(cell).or_insert(f64::NEG_INFINITY);
                *top = top.max(score);
            }
        }
        let mut seen = BTreeSet::new();
        for (cell, elite) in self.archive.cells()? {
            let key = cell.key();
            seen.insert(key.clone());
            let in_cell = self
                .candidates
                .get(&elite)
                .is_some_and(|c| Cell::of(&c.stats) == cell);
            let score = self.expected.get(&elite).and_then(Summary::score);
            let fine = in_cell
                && match (score, best.get(&key)) {
                    // The writer compared scores read back from JSON: allow their last bit.
                    (Some(s), Some(b)) => s >= *b - 1e-12 * b.abs().max(1.0),
                    _ => false,
                };
            if !fine {
                let message = format!("elite {elite} is missing, not in the cell or not its best");
                self.report(Tree::Cells, lossy(&key), message);
            }
        }
        for cell in best.keys().filter(|k| !seen.contains(*k)) {
            self.report(Tree::Cells, lossy(cell), "a cell with members has no elite");
        }
        Ok(())
    }

    /// Insights (and the candidates they cite), events and campaign records decode.
    fn records(&mut self) -> Result<()> {
        for (k, v) in self.scan(Tree::Insights)? {
            let key = key_id(&k).map(|i| i.to_string()).unwrap_or_default();
            match decode_other::<Insight>(&v, "insight") {
                Ok(i) => {
                    for e in i
                        .evidence
                        .iter()
                        .filter(|e| !self.candidates.contains_key(e))
                    {
                        let message = format!("cites missing candidate {e}");
                        self.problems.push(Problem {
                            tree: Tree::Insights.name(),
                            key: key.clone(),
                            message,
                        });
                    }
                }
                Err(e) => self.report(Tree::Insights, key, e.to_string()),
            }
        }
        for (k, v) in self.scan(Tree::Events)? {
            if let Err(e) = decode_other::<Event>(&v, "event") {
                let key = key_id(&k).map(|i| i.to_string()).unwrap_or_default();
                self.report(Tree::Events, key, e.to_string());
            }
        }
        for (k, v) in self.scan(Tree::Campaigns)? {
            if let Err(e) = decode_other::<Campaign>(&v, "campaign") {
                self.report(Tree::Campaigns, lossy(&k), e.to_string());
            }
        }
        Ok(())
    }
}
