//! The archive: records, the indexes derived from them, queries, samplers, verification and
//! JSON-lines export/import, over any [`Backend`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::backend::{
    f64_from_ordered, id_key, key_id, named_key, ordered_f64, Backend, MemoryBackend, SledBackend,
    Tree, WriteSet,
};
use crate::lock::{self, WriterLock};
use crate::query::{pareto_front, Cell};
use crate::record::{
    decode_candidate, decode_evaluation, decode_other, encode, now_ms, Campaign, Candidate,
    CandidateId, Evaluation, EvaluationId, Event, Insight, LlmCall, NewCandidate, NewEvaluation,
    Outcome, Status, Summary, CANDIDATE_VERSION, EVALUATION_VERSION, OTHER_VERSION,
};
use crate::{Error, Result};
use autoarch_sandbox::{Direction, Metric};

mod verify;

/// The file a writer leaves beside the database for review commands to read while it runs.
pub const SNAPSHOT_FILE: &str = "snapshot.jsonl";

/// The archive layout version, stored in the meta tree.
const FORMAT: u64 = 1;

/// A candidate with its derived summary, as listings show it.
#[derive(Clone, PartialEq, Debug)]
pub struct Listed {
    pub candidate: Candidate,
    pub summary: Summary,
}

/// Something `verify` found wrong.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Problem {
    pub tree: &'static str,
    pub key: String,
    pub message: String,
}

/// One line of a JSON-lines export.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Archive { format: u64 },
    Campaign(Campaign),
    Candidate(Box<Candidate>),
    Evaluation(Box<Evaluation>),
    Insight(Box<Insight>),
    Event(Event),
}

pub struct Archive {
    backend: Box<dyn Backend>,
    /// Serialises read-compute-write sequences (ids, summaries, index updates).
    writes: Mutex<()>,
    /// Flush after every write (the default); bulk loads turn it off and flush once.
    durable: bool,
    dir: Option<PathBuf>,
    _lock: Option<WriterLock>,
}

/// The id counters the archive keeps in its meta tree: each holds the next id to give.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum Counter {
    Candidate,
    Evaluation,
    Insight,
    Event,
}

impl Counter {
    /// The meta key, as archives have always stored it.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Counter::Candidate => "next_candidate",
            Counter::Evaluation => "next_evaluation",
            Counter::Insight => "next_insight",
            Counter::Event => "next_event",
        }
    }
}

fn meta_counter(counter: Counter) -> Vec<u8> {
    counter.key().as_bytes().to_vec()
}

fn eval_key(candidate: CandidateId, eval: EvaluationId) -> Vec<u8> {
    let mut k = id_key(candidate).to_vec();
    k.extend_from_slice(&id_key(eval));
    k
}

fn pair_key(a: u64, b: u64) -> Vec<u8> {
    let mut k = id_key(a).to_vec();
    k.extend_from_slice(&id_key(b));
    k
}

fn metric_key(metric: &str, value: f64, id: CandidateId) -> Vec<u8> {
    let mut rest = ordered_f64(value).to_vec();
    rest.extend_from_slice(&id_key(id));
    named_key(metric, &rest)
}

fn island_key(island: u32, id: CandidateId) -> Vec<u8> {
    let mut k = island.to_be_bytes().to_vec();
    k.extend_from_slice(&id_key(id));
    k
}

/// The entries a successful candidate has in the indexes of successful candidates, of its
/// island and of its MAP-Elites cell's members (written by `stage_indexes`, checked by
/// `verify`).
fn memberships(c: &Candidate) -> [(Tree, Vec<u8>); 3] {
    let cell = Cell::of(&c.stats).key();
    [
        (Tree::Successful, id_key(c.id).to_vec()),
        (Tree::Islands, island_key(c.island, c.id)),
        (
            Tree::CellMembers,
            named_key(&String::from_utf8_lossy(&cell), &id_key(c.id)),
        ),
    ]
}

/// The metrics a successful candidate is ranked by: its evaluated metrics, plus its size.
fn ranked_metrics(candidate: &Candidate, summary: &Summary) -> BTreeMap<String, f64> {
    if summary.status != Status::Ok {
        return BTreeMap::new();
    }
    let mut m: BTreeMap<String, f64> = summary
        .metrics
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    m.insert("params".into(), candidate.stats.params as f64);
    m.insert("flops".into(), candidate.stats.flops as f64);
    m
}

/// Recompute a candidate's summary from its evaluations.
pub fn summarise(candidate: &Candidate, evaluations: &[Evaluation]) -> Summary {
    let last_outcome = evaluations.iter().max_by_key(|e| e.id).map(|e| e.outcome);
    let ok: Vec<&Evaluation> = evaluations
        .iter()
        .filter(|e| e.outcome == Outcome::Ok)
        .collect();
    let fidelity = ok.iter().map(|e| e.fidelity).max().unwrap_or_default();
    let top: Vec<&&Evaluation> = ok.iter().filter(|e| e.fidelity == fidelity).collect();
    let mut metrics = BTreeMap::new();
    let mut spread = BTreeMap::new();
    let names: BTreeSet<&String> = top.iter().flat_map(|e| e.metrics.keys()).collect();
    for name in names {
        let values: Vec<f64> = top
            .iter()
            .filter_map(|e| e.metrics.get(name))
            .copied()
            .collect();
        metrics.insert(name.clone(), crate::stats::mean(&values));
        spread.insert(name.clone(), crate::stats::sd(&values));
    }
    let short: Vec<f64> = ok
        .iter()
        .filter(|e| e.fidelity.is_short())
        .filter_map(|e| e.metrics.get("score").copied())
        .collect();
    let short_score = (!short.is_empty()).then(|| short.iter().sum::<f64>() / short.len() as f64);
    let status = if candidate.duplicate_of.is_some() {
        Status::Duplicate
    } else if evaluations.is_empty() {
        Status::Pending
    } else if ok.is_empty() {
        Status::Failed
    } else {
        Status::Ok
    };
    Summary {
        status,
        fidelity,
        metrics,
        spread,
        evaluations: evaluations.len() as u32,
        last_outcome,
        short_score,
        sample_spread: true,
    }
}

impl Archive {
    /// Open (or create) the archive in `dir` for writing. Fails at once with
    /// [`Error::InUse`] when another process writes it.
    pub fn open(dir: &Path) -> Result<Archive> {
        let lock = WriterLock::acquire(dir)?;
        // With the writer lock ours, a busy sled lock can only be this process's own: an archive
        // just dropped whose file description a forking thread still shares. Wait it out briefly.
        let deadline = std::time::Instant::now() + lock::SELF_RELEASE_WAIT;
        let backend = loop {
            match SledBackend::open(dir) {
                Err(Error::InUse { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                other => break other?,
            }
        };
        let archive = Archive {
            backend: Box::new(backend),
            writes: Mutex::new(()),
            durable: true,
            dir: Some(dir.to_path_buf()),
            _lock: Some(lock),
        };
        archive.check_format()?;
        Ok(archive)
    }

    /// Open for reading. When a campaign holds the archive, read the snapshot it keeps beside the
    /// database instead; the second value then says how old that snapshot is.
    pub fn open_for_review(dir: &Path) -> Result<(Archive, Option<String>)> {
        if !dir.join("db").exists() && !dir.join(SNAPSHOT_FILE).exists() {
            return Err(Error::Invalid(format!(
                "no archive at {}: add designs with `autoarch seed add`, run a campaign, or pass --archive DIR",
                dir.display()
            )));
        }
        match Archive::open(dir) {
            Ok(a) => Ok((a, None)),
            Err(Error::InUse { pid, .. }) => {
                let path = dir.join(SNAPSHOT_FILE);
                let file = std::fs::File::open(&path).map_err(|_| Error::InUse {
                    dir: dir.to_path_buf(),
                    pid,
                })?;
                let age = file
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .map(|d| format!("{} s", d.as_secs()))
                    .unwrap_or_else(|| "unknown age".into());
                let archive = Archive::in_memory();
                archive.import_jsonl(std::io::BufReader::new(file))?;
                let who = pid.map(|p| format!(" by pid {p}")).unwrap_or_default();
                Ok((
                    archive,
                    Some(format!(
                        "archive in use{who}; showing its snapshot ({age} old)"
                    )),
                ))
            }
            Err(e) => Err(e),
        }
    }

    /// An archive held in memory only.
    pub fn in_memory() -> Archive {
        Archive {
            backend: Box::new(MemoryBackend::default()),
            writes: Mutex::new(()),
            durable: true,
            dir: None,
            _lock: None,
        }
    }

    /// Whether another process is writing the archive in `dir` now.
    pub fn is_in_use(dir: &Path) -> bool {
        lock::is_locked(dir)
    }

    /// Skip the flush after each write (bulk loads); call [`Archive::flush`] at the end.
    pub fn set_durable(&mut self, durable: bool) {
        self.durable = durable;
    }

    pub fn flush(&self) -> Result<()> {
        self.backend.flush()
    }

    pub fn size_on_disk(&self) -> Option<u64> {
        self.backend.size_on_disk()
    }

    fn check_format(&self) -> Result<()> {
        match self.backend.get(Tree::Meta, b"format")? {
            None => {
                let mut w = WriteSet::default();
                w.put(
                    Tree::Meta,
                    b"format".to_vec(),
                    FORMAT.to_be_bytes().to_vec(),
                );
                self.backend.apply(&w, true)
            }
            Some(v) => {
                let version = key_id(&v).unwrap_or(u64::MAX);
                if version > FORMAT {
                    return Err(Error::TooNew {
                        what: "archive".into(),
                        version,
                        supported: FORMAT,
                    });
                }
                Ok(())
            }
        }
    }

    /// Write a consistent JSON-lines snapshot beside the database (atomically replaced), for
    /// review commands to read while this process holds the archive.
    pub fn write_snapshot(&self) -> Result<Option<PathBuf>> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let _guard = self.writes.lock().expect("no writer panicked");
        let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
        let path = dir.join(SNAPSHOT_FILE);
        let io = |p: &Path, e| Error::Io {
            path: p.to_path_buf(),
            source: e,
        };
        let file = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
        let mut out = std::io::BufWriter::new(file);
        self.export_unlocked(&mut out)?;
        let file = out.into_inner().map_err(|e| io(&tmp, e.into_error()))?;
        file.sync_all().map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        Ok(Some(path))
    }

    fn next_id(&self, counter: Counter, writes: &mut WriteSet) -> Result<u64> {
        let key = meta_counter(counter);
        let next = self
            .backend
            .get(Tree::Meta, &key)?
            .and_then(|v| key_id(&v))
            .unwrap_or(0);
        writes.put(Tree::Meta, key, id_key(next + 1).to_vec());
        Ok(next)
    }

    fn counter(&self, counter: Counter) -> Result<u64> {
        Ok(self
            .backend
            .get(Tree::Meta, &meta_counter(counter))?
            .and_then(|v| key_id(&v))
            .unwrap_or(0))
    }

    // ---- writes -------------------------------------------------------------------------

    /// Store a candidate; its parents (and the candidate it duplicates) must exist.
    pub fn insert_candidate(&self, new: NewCandidate) -> Result<CandidateId> {
        let _guard = self.writes.lock().expect("no writer panicked");
        let mut writes = WriteSet::default();
        let id = self.next_id(Counter::Candidate, &mut writes)?;
        let candidate = Candidate {
            id,
            name: new.name,
            motivation: new.motivation,
            code: new.code,
            task: new.task,
            fingerprint: new.fingerprint,
            stats: new.stats,
            parents: new.parents,
            proposer: new.proposer,
            model: new.model,
            prompt: new.prompt,
            response: new.response,
            tokens: new.tokens,
            cost_usd: new.cost_usd,
            calls: new.calls,
            tags: new.tags,
            source: new.source,
            duplicate_of: new.duplicate_of,
            island: new.island,
            created_ms: now_ms(),
        };
        self.stage_candidate(&candidate, &mut writes)?;
        self.backend.apply(&writes, self.durable)?;
        Ok(id)
    }

    fn stage_candidate(&self, c: &Candidate, writes: &mut WriteSet) -> Result<()> {
        for &p in c.parents.iter().chain(&c.duplicate_of) {
            if p >= c.id || self.backend.get(Tree::Candidates, &id_key(p))?.is_none() {
                return Err(Error::UnknownCandidate(p));
            }
        }
        writes.put(
            Tree::Candidates,
            id_key(c.id).to_vec(),
            encode(c, CANDIDATE_VERSION),
        );
        if self
            .backend
            .get(Tree::Fingerprints, c.fingerprint.as_bytes())?
            .is_none()
        {
            writes.put(
                Tree::Fingerprints,
                c.fingerprint.as_bytes().to_vec(),
                id_key(c.id).to_vec(),
            );
        }
        for &p in &c.parents {
            writes.put(Tree::Children, pair_key(p, c.id), Vec::new());
        }
        for tag in &c.tags {
            writes.put(Tree::Tags, named_key(tag, &id_key(c.id)), Vec::new());
        }
        let summary = summarise(c, &[]);
        writes.put(
            Tree::Summaries,
            id_key(c.id).to_vec(),
            encode(&summary, OTHER_VERSION),
        );
        Ok(())
    }

    /// Store an evaluation and update the candidate's summary, rankings and sampler indexes in
    /// the same atomic write. Durable when this returns.
    pub fn record_evaluation(&self, new: NewEvaluation) -> Result<EvaluationId> {
        let _guard = self.writes.lock().expect("no writer panicked");
        let mut writes = WriteSet::default();
        let id = self.next_id(Counter::Evaluation, &mut writes)?;
        let evaluation = Evaluation {
            id,
            candidate: new.candidate,
            fidelity: new.fidelity,
            seed: new.seed,
            outcome: new.outcome,
            reason: new.reason,
            metrics: new.metrics,
            curve: new.curve,
            timings: new.timings,
            created_ms: now_ms(),
        };
        self.stage_evaluation(&evaluation, &mut writes)?;
        self.backend.apply(&writes, self.durable)?;
        Ok(id)
    }

    fn stage_evaluation(&self, e: &Evaluation, writes: &mut WriteSet) -> Result<()> {
        let candidate = self
            .candidate(e.candidate)?
            .ok_or(Error::UnknownCandidate(e.candidate))?;
        let old = self.summary(e.candidate)?;
        let mut evaluations = self.evaluations(e.candidate)?;
        evaluations.push(e.clone());
        let new = summarise(&candidate, &evaluations);
        writes.put(
            Tree::Evaluations,
            eval_key(e.candidate, e.id),
            encode(e, EVALUATION_VERSION),
        );
        writes.put(
            Tree::Summaries,
            id_key(e.candidate).to_vec(),
            encode(&new, OTHER_VERSION),
        );
        self.stage_indexes(&candidate, &old, &new, writes)
    }

    /// Move a candidate's index entries from its old summary to its new one.
    fn stage_indexes(
        &self,
        c: &Candidate,
        old: &Summary,
        new: &Summary,
        writes: &mut WriteSet,
    ) -> Result<()> {
        for (metric, value) in ranked_metrics(c, old) {
            writes.delete(Tree::Metrics, metric_key(&metric, value, c.id));
        }
        for (metric, value) in ranked_metrics(c, new) {
            writes.put(Tree::Metrics, metric_key(&metric, value, c.id), Vec::new());
        }
        for (tree, key) in memberships(c) {
            if new.status == Status::Ok {
                writes.put(tree, key, Vec::new());
            } else {
                writes.delete(tree, key);
            }
        }
        let cell = Cell::of(&c.stats);
        // The cell's elite: the best score among its successful members.
        let elite = self
            .backend
            .get(Tree::Cells, &cell.key())?
            .and_then(|v| key_id(&v));
        let new_score = (new.status == Status::Ok).then(|| new.score()).flatten();
        match (elite, new_score) {
            (None, Some(_)) => writes.put(Tree::Cells, cell.key(), id_key(c.id).to_vec()),
            (Some(e), Some(score)) if e != c.id => {
                let elite_score = self.summary(e)?.score().unwrap_or(f64::NEG_INFINITY);
                if score > elite_score {
                    writes.put(Tree::Cells, cell.key(), id_key(c.id).to_vec());
                }
            }
            (Some(e), _) if e == c.id => {
                // The elite changed: choose again among the members, this one as it is now.
                let mut best: Option<(f64, CandidateId)> = new_score.map(|s| (s, c.id));
                let prefix = named_key(&String::from_utf8_lossy(&cell.key()), &[]);
                for (k, _) in self
                    .backend
                    .scan(Tree::CellMembers, &prefix, false, usize::MAX)?
                {
                    let Some(m) = key_id(&k[prefix.len()..]) else {
                        continue;
                    };
                    if m == c.id {
                        continue;
                    }
                    if let Some(s) = self.summary(m)?.score() {
                        if best.is_none_or(|(b, _)| s > b) {
                            best = Some((s, m));
                        }
                    }
                }
                match best {
                    Some((_, m)) => writes.put(Tree::Cells, cell.key(), id_key(m).to_vec()),
                    None => writes.delete(Tree::Cells, cell.key()),
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Add a tag to a candidate (a no-op when it has it).
    pub fn add_tag(&self, id: CandidateId, tag: &str) -> Result<()> {
        if tag.is_empty() || tag.contains('\0') {
            return Err(Error::Invalid(format!("bad tag {tag:?}")));
        }
        let _guard = self.writes.lock().expect("no writer panicked");
        let mut c = self.candidate(id)?.ok_or(Error::UnknownCandidate(id))?;
        if c.tags.iter().any(|t| t == tag) {
            return Ok(());
        }
        c.tags.push(tag.to_string());
        let mut writes = WriteSet::default();
        writes.put(
            Tree::Candidates,
            id_key(id).to_vec(),
            encode(&c, CANDIDATE_VERSION),
        );
        writes.put(Tree::Tags, named_key(tag, &id_key(id)), Vec::new());
        self.backend.apply(&writes, self.durable)
    }

    pub fn add_insight(&self, text: &str, evidence: &[CandidateId]) -> Result<u64> {
        self.add_insight_from(text, evidence, None)
    }

    /// An insight with the LLM call that drew it.
    pub fn add_insight_from(
        &self,
        text: &str,
        evidence: &[CandidateId],
        call: Option<LlmCall>,
    ) -> Result<u64> {
        let _guard = self.writes.lock().expect("no writer panicked");
        for &e in evidence {
            if self.backend.get(Tree::Candidates, &id_key(e))?.is_none() {
                return Err(Error::UnknownCandidate(e));
            }
        }
        let mut writes = WriteSet::default();
        let id = self.next_id(Counter::Insight, &mut writes)?;
        let insight = Insight {
            id,
            text: text.to_string(),
            evidence: evidence.to_vec(),
            created_ms: now_ms(),
            call,
        };
        writes.put(
            Tree::Insights,
            id_key(id).to_vec(),
            encode(&insight, OTHER_VERSION),
        );
        self.backend.apply(&writes, self.durable)?;
        Ok(id)
    }

    /// Append to the event log.
    pub fn log_event(
        &self,
        kind: crate::record::EventKind,
        message: &str,
        candidate: Option<CandidateId>,
    ) -> Result<u64> {
        let _guard = self.writes.lock().expect("no writer panicked");
        let mut writes = WriteSet::default();
        let seq = self.next_id(Counter::Event, &mut writes)?;
        let event = Event {
            seq,
            kind,
            message: message.to_string(),
            candidate,
            created_ms: now_ms(),
        };
        writes.put(
            Tree::Events,
            id_key(seq).to_vec(),
            encode(&event, OTHER_VERSION),
        );
        self.backend.apply(&writes, self.durable)?;
        Ok(seq)
    }

    pub fn put_campaign(&self, campaign: &Campaign) -> Result<()> {
        let _guard = self.writes.lock().expect("no writer panicked");
        let mut writes = WriteSet::default();
        writes.put(
            Tree::Campaigns,
            campaign.name.as_bytes().to_vec(),
            encode(campaign, OTHER_VERSION),
        );
        self.backend.apply(&writes, self.durable)
    }

    // ---- reads --------------------------------------------------------------------------

    pub fn candidate(&self, id: CandidateId) -> Result<Option<Candidate>> {
        self.backend
            .get(Tree::Candidates, &id_key(id))?
            .map(|b| decode_candidate(&b))
            .transpose()
    }

    pub fn evaluations(&self, id: CandidateId) -> Result<Vec<Evaluation>> {
        self.backend
            .scan(Tree::Evaluations, &id_key(id), false, usize::MAX)?
            .iter()
            .map(|(_, v)| decode_evaluation(v))
            .collect()
    }

    /// The candidate's summary (pending when it was never evaluated).
    pub fn summary(&self, id: CandidateId) -> Result<Summary> {
        match self.backend.get(Tree::Summaries, &id_key(id))? {
            Some(b) => self.completed(id, decode_other(&b, "summary")?),
            None => Err(Error::UnknownCandidate(id)),
        }
    }

    /// A summary stored before the short-budget score was kept gets it on reading: at fidelity
    /// 0 it is the score; a promoted candidate's is read from its evaluations.
    ///
    /// A summary stored before spreads were sample SDs gets them recomputed from its
    /// evaluations (only a candidate with several seeds has a spread to change).
    fn completed(&self, id: CandidateId, mut s: Summary) -> Result<Summary> {
        if !s.sample_spread {
            if s.spread.values().any(|v| *v != 0.0) {
                let candidate = self.candidate(id)?.ok_or(Error::UnknownCandidate(id))?;
                s.spread = summarise(&candidate, &self.evaluations(id)?).spread;
            }
            s.sample_spread = true;
        }
        if s.short_score.is_none() && s.status == Status::Ok {
            s.short_score = if s.fidelity.is_short() {
                s.score()
            } else {
                let candidate = self.candidate(id)?.ok_or(Error::UnknownCandidate(id))?;
                summarise(&candidate, &self.evaluations(id)?).short_score
            };
        }
        Ok(s)
    }

    pub fn find_fingerprint(&self, fingerprint: &str) -> Result<Option<CandidateId>> {
        Ok(self
            .backend
            .get(Tree::Fingerprints, fingerprint.as_bytes())?
            .and_then(|v| key_id(&v)))
    }

    pub fn children(&self, id: CandidateId) -> Result<Vec<CandidateId>> {
        Ok(self
            .backend
            .scan(Tree::Children, &id_key(id), false, usize::MAX)?
            .iter()
            .filter_map(|(k, _)| key_id(&k[8..]))
            .collect())
    }

    pub fn candidate_count(&self) -> Result<u64> {
        self.counter(Counter::Candidate)
    }

    /// Every candidate with its summary, in id order.
    pub fn list(&self) -> Result<Vec<Listed>> {
        let candidates = self
            .backend
            .scan(Tree::Candidates, &[], false, usize::MAX)?;
        let summaries = self.backend.scan(Tree::Summaries, &[], false, usize::MAX)?;
        let summaries: BTreeMap<Vec<u8>, Vec<u8>> = summaries.into_iter().collect();
        candidates
            .iter()
            .map(|(k, v)| {
                let candidate = decode_candidate(v)?;
                let summary = match summaries.get(k) {
                    Some(s) => self.completed(candidate.id, decode_other(s, "summary")?)?,
                    None => {
                        return Err(Error::Corrupt(format!(
                            "candidate {} has no summary",
                            candidate.id
                        )))
                    }
                };
                Ok(Listed { candidate, summary })
            })
            .collect()
    }

    /// The `k` best successful candidates by `metric` (oriented by its direction), in O(k).
    pub fn top_k(&self, metric: Metric, k: usize) -> Result<Vec<(CandidateId, f64)>> {
        let prefix = named_key(metric.name(), &[]);
        let reverse = metric.direction() == Direction::Maximize;
        Ok(self
            .backend
            .scan(Tree::Metrics, &prefix, reverse, k)?
            .iter()
            .filter_map(|(key, _)| decode_metric_key(&key[prefix.len()..]))
            .map(|(v, id)| (id, v))
            .collect())
    }

    /// Every successful candidate's value of `metric`.
    pub fn metric_values(&self, metric: Metric) -> Result<BTreeMap<CandidateId, f64>> {
        let prefix = named_key(metric.name(), &[]);
        Ok(self
            .backend
            .scan(Tree::Metrics, &prefix, false, usize::MAX)?
            .iter()
            .filter_map(|(key, _)| decode_metric_key(&key[prefix.len()..]))
            .map(|(v, id)| (id, v))
            .collect())
    }

    /// The Pareto front of successful candidates over two or more objectives.
    pub fn pareto(&self, objectives: &[Metric]) -> Result<Vec<(CandidateId, Vec<f64>)>> {
        if objectives.len() < 2 {
            return Err(Error::Invalid(
                "a Pareto front needs two or more objectives".into(),
            ));
        }
        let columns = objectives
            .iter()
            .map(|o| self.metric_values(*o))
            .collect::<Result<Vec<_>>>()?;
        let points: Vec<(CandidateId, Vec<f64>)> = columns[0]
            .keys()
            .filter_map(|id| {
                let row: Option<Vec<f64>> = columns.iter().map(|c| c.get(id).copied()).collect();
                row.map(|r| (*id, r))
            })
            .collect();
        let directions: Vec<Direction> = objectives.iter().map(|o| o.direction()).collect();
        Ok(pareto_front(&points, &directions))
    }

    /// Ancestors by breadth-first search over parents, with their distance.
    pub fn ancestors(&self, id: CandidateId) -> Result<Vec<(CandidateId, usize)>> {
        self.walk(id, |a, c| {
            Ok(a.candidate(c)?.map(|c| c.parents).unwrap_or_default())
        })
    }

    /// Descendants by breadth-first search over children, with their distance.
    pub fn descendants(&self, id: CandidateId) -> Result<Vec<(CandidateId, usize)>> {
        self.walk(id, |a, c| a.children(c))
    }

    fn walk(
        &self,
        start: CandidateId,
        next: impl Fn(&Archive, CandidateId) -> Result<Vec<CandidateId>>,
    ) -> Result<Vec<(CandidateId, usize)>> {
        if self.candidate(start)?.is_none() {
            return Err(Error::UnknownCandidate(start));
        }
        let mut seen = BTreeSet::from([start]);
        let mut queue = VecDeque::from([(start, 0)]);
        let mut out = Vec::new();
        while let Some((id, depth)) = queue.pop_front() {
            for n in next(self, id)? {
                if seen.insert(n) {
                    out.push((n, depth + 1));
                    queue.push_back((n, depth + 1));
                }
            }
        }
        Ok(out)
    }

    pub fn by_tag(&self, tag: &str) -> Result<Vec<CandidateId>> {
        let prefix = named_key(tag, &[]);
        Ok(self
            .backend
            .scan(Tree::Tags, &prefix, false, usize::MAX)?
            .iter()
            .filter_map(|(k, _)| key_id(&k[prefix.len()..]))
            .collect())
    }

    pub fn insights(&self) -> Result<Vec<Insight>> {
        self.backend
            .scan(Tree::Insights, &[], false, usize::MAX)?
            .iter()
            .map(|(_, v)| decode_other(v, "insight"))
            .collect()
    }

    pub fn events(&self) -> Result<Vec<Event>> {
        self.backend
            .scan(Tree::Events, &[], false, usize::MAX)?
            .iter()
            .map(|(_, v)| decode_other(v, "event"))
            .collect()
    }

    pub fn campaign(&self, name: &str) -> Result<Option<Campaign>> {
        self.backend
            .get(Tree::Campaigns, name.as_bytes())?
            .map(|b| decode_other(&b, "campaign"))
            .transpose()
    }

    pub fn campaigns(&self) -> Result<Vec<Campaign>> {
        self.backend
            .scan(Tree::Campaigns, &[], false, usize::MAX)?
            .iter()
            .map(|(_, v)| decode_other(v, "campaign"))
            .collect()
    }

    // ---- samplers -----------------------------------------------------------------------

    /// A random successful candidate: a random id, then the next successful one (wrapping).
    /// Uniform when successes are spread evenly over ids.
    pub fn sample_successful(&self, rng: &mut impl Rng) -> Result<Option<CandidateId>> {
        self.random_in(Tree::Successful, &[], rng)
    }

    fn random_in(
        &self,
        tree: Tree,
        prefix: &[u8],
        rng: &mut impl Rng,
    ) -> Result<Option<CandidateId>> {
        let n = self.candidate_count()?;
        if n == 0 {
            return Ok(None);
        }
        let mut from = prefix.to_vec();
        from.extend_from_slice(&id_key(rng.random_range(0..n)));
        let hit = match self.backend.first_from(tree, prefix, &from)? {
            Some(e) => Some(e),
            None => self
                .backend
                .scan(tree, prefix, false, 1)?
                .into_iter()
                .next(),
        };
        Ok(hit.and_then(|(k, _)| key_id(&k[prefix.len()..])))
    }

    /// Every occupied MAP-Elites cell with its elite (best score).
    pub fn cells(&self) -> Result<Vec<(Cell, CandidateId)>> {
        Ok(self
            .backend
            .scan(Tree::Cells, &[], false, usize::MAX)?
            .iter()
            .filter_map(|(k, v)| Some((Cell::parse(k)?, key_id(v)?)))
            .collect())
    }

    /// The elite of a random occupied cell.
    pub fn sample_elite(&self, rng: &mut impl Rng) -> Result<Option<CandidateId>> {
        let cells = self.cells()?;
        if cells.is_empty() {
            return Ok(None);
        }
        Ok(Some(cells[rng.random_range(0..cells.len())].1))
    }

    /// Tournament selection within an island: the best score of `size` random members.
    pub fn sample_island(
        &self,
        island: u32,
        size: usize,
        rng: &mut impl Rng,
    ) -> Result<Option<CandidateId>> {
        let prefix = island.to_be_bytes();
        let mut best: Option<(f64, CandidateId)> = None;
        for _ in 0..size.max(1) {
            let Some(id) = self.random_in(Tree::Islands, &prefix, rng)? else {
                return Ok(None);
            };
            let score = self.summary(id)?.score().unwrap_or(f64::NEG_INFINITY);
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, id));
            }
        }
        Ok(best.map(|(_, id)| id))
    }

    // ---- verify, export, import -------------------------------------------------------------

    /// Check that every record decodes, every reference resolves and every index holds what the
    /// records call for. Reports; repairs nothing.
    pub fn verify(&self) -> Result<Vec<Problem>> {
        verify::Verifier::run(self)
    }

    /// Write the whole archive as JSON lines: a header, then campaigns, candidates, evaluations,
    /// insights and events, each in id order. Returns the number of records.
    pub fn export_jsonl(&self, out: &mut impl std::io::Write) -> Result<usize> {
        let _guard = self.writes.lock().expect("no writer panicked");
        self.export_unlocked(out)
    }

    fn export_unlocked(&self, out: &mut impl std::io::Write) -> Result<usize> {
        let io = |e| Error::Io {
            path: PathBuf::from("<export>"),
            source: e,
        };
        let mut n = 0;
        let mut line = |l: &Line, out: &mut dyn std::io::Write| -> Result<()> {
            serde_json::to_writer(&mut *out, l).map_err(|e| Error::Io {
                path: PathBuf::from("<export>"),
                source: e.into(),
            })?;
            out.write_all(b"\n").map_err(io)?;
            n += 1;
            Ok(())
        };
        line(&Line::Archive { format: FORMAT }, out)?;
        for c in self.campaigns()? {
            line(&Line::Campaign(c), out)?;
        }
        for (_, v) in self
            .backend
            .scan(Tree::Candidates, &[], false, usize::MAX)?
        {
            line(&Line::Candidate(Box::new(decode_candidate(&v)?)), out)?;
        }
        for (_, v) in self
            .backend
            .scan(Tree::Evaluations, &[], false, usize::MAX)?
        {
            line(&Line::Evaluation(Box::new(decode_evaluation(&v)?)), out)?;
        }
        for i in self.insights()? {
            line(&Line::Insight(Box::new(i)), out)?;
        }
        for e in self.events()? {
            line(&Line::Event(e), out)?;
        }
        out.flush().map_err(io)?;
        Ok(n - 1)
    }

    /// Load an export into this archive, which must hold no candidates yet. Ids are kept, so
    /// lineage and evidence still resolve. Returns the number of records.
    pub fn import_jsonl(&self, input: impl BufRead) -> Result<usize> {
        if self.candidate_count()? > 0 {
            return Err(Error::Invalid(
                "import needs an empty archive: this one already holds candidates".into(),
            ));
        }
        let _guard = self.writes.lock().expect("no writer panicked");
        let mut n = 0;
        let mut counters: BTreeMap<Counter, u64> = BTreeMap::new();
        for (number, line) in input.lines().enumerate() {
            let line = line.map_err(|e| Error::Io {
                path: PathBuf::from("<import>"),
                source: e,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let parsed: Line = serde_json::from_str(&line)
                .map_err(|e| Error::Invalid(format!("line {}: {e}", number + 1)))?;
            let mut writes = WriteSet::default();
            match parsed {
                Line::Archive { format } if format > FORMAT => {
                    return Err(Error::TooNew {
                        what: "export".into(),
                        version: format,
                        supported: FORMAT,
                    })
                }
                Line::Archive { .. } => continue,
                Line::Campaign(c) => writes.put(
                    Tree::Campaigns,
                    c.name.as_bytes().to_vec(),
                    encode(&c, OTHER_VERSION),
                ),
                Line::Candidate(c) => {
                    self.stage_candidate(&c, &mut writes)?;
                    bump(&mut counters, Counter::Candidate, c.id);
                }
                Line::Evaluation(e) => {
                    self.stage_evaluation(&e, &mut writes)?;
                    bump(&mut counters, Counter::Evaluation, e.id);
                }
                Line::Insight(i) => {
                    writes.put(
                        Tree::Insights,
                        id_key(i.id).to_vec(),
                        encode(&i, OTHER_VERSION),
                    );
                    bump(&mut counters, Counter::Insight, i.id);
                }
                Line::Event(e) => {
                    writes.put(
                        Tree::Events,
                        id_key(e.seq).to_vec(),
                        encode(&e, OTHER_VERSION),
                    );
                    bump(&mut counters, Counter::Event, e.seq);
                }
            }
            // Counters move with each record so that staged checks (parents exist) see them.
            for (name, next) in &counters {
                writes.put(Tree::Meta, meta_counter(*name), id_key(*next).to_vec());
            }
            self.backend.apply(&writes, false)?;
            n += 1;
        }
        self.backend.flush()?;
        Ok(n)
    }
}

fn bump(counters: &mut BTreeMap<Counter, u64>, counter: Counter, id: u64) {
    let next = counters.entry(counter).or_insert(0);
    *next = (*next).max(id + 1);
}

fn summaries_match(a: &Summary, b: &Summary) -> bool {
    let close = |x: &BTreeMap<String, f64>, y: &BTreeMap<String, f64>| {
        x.len() == y.len()
            && x.iter().zip(y).all(|((ka, va), (kb, vb))| {
                ka == kb
                    && ((va - vb).abs() <= 1e-9 * va.abs().max(1.0) || (va.is_nan() && vb.is_nan()))
            })
    };
    a.status == b.status
        && a.fidelity == b.fidelity
        && a.evaluations == b.evaluations
        && a.last_outcome == b.last_outcome
        && close(&a.metrics, &b.metrics)
        && close(&a.spread, &b.spread)
        // An archive written before the short-budget score was kept has none: not corrupt.
        && match (a.short_score, b.short_score) {
            (None, _) => true,
            (Some(x), Some(y)) => close(&BTreeMap::from([(String::new(), x)]), &BTreeMap::from([(String::new(), y)])),
            (Some(_), None) => false,
        }
}

fn decode_metric_key(rest: &[u8]) -> Option<(f64, CandidateId)> {
    let value: [u8; 8] = rest.get(..8)?.try_into().ok()?;
    Some((f64_from_ordered(value), key_id(rest.get(8..16)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn spreads_are_sample_sds_and_older_summaries_are_recomputed_on_reading() {
        let archive = Archive::in_memory();
        let id = archive
            .insert_candidate(testing::candidate("three seeds", &[]))
            .unwrap();
        for (seed, score) in [(0, 0.5), (1, 0.6), (2, 1.0)] {
            let mut e = testing::evaluation(id, score, 1.0);
            e.seed = seed;
            archive.record_evaluation(e).unwrap();
        }
        let summary = archive.summary(id).unwrap();
        // Deviations from 0.7: 0.2, 0.1, 0.3; their squares sum to 0.14, over n − 1 = 2.
        let sample = 0.07f64.sqrt();
        assert!((summary.spread["score"] - sample).abs() < 1e-12);
        assert!(summary.sample_spread);

        // A summary as an older autoarch wrote it: no `sample_spread`, the SD divided by n.
        let mut legacy = serde_json::to_value(&summary).unwrap();
        legacy["spread"]["score"] = serde_json::json!((0.14f64 / 3.0).sqrt());
        legacy.as_object_mut().unwrap().remove("sample_spread");
        let legacy: Summary = serde_json::from_value(legacy).unwrap();
        let mut w = WriteSet::default();
        w.put(
            Tree::Summaries,
            id_key(id).to_vec(),
            encode(&legacy, OTHER_VERSION),
        );
        archive.backend.apply(&w, true).unwrap();
        let read = archive.summary(id).unwrap();
        assert!((read.spread["score"] - sample).abs() < 1e-12);
        let listed = archive.list().unwrap();
        assert!((listed[0].summary.spread["score"] - sample).abs() < 1e-12);
        assert!(archive.verify().unwrap().is_empty());
    }

    /// Two successful candidates in one MAP-Elites cell (same size), the second the better.
    fn two_in_a_cell() -> (Archive, CandidateId, CandidateId) {
        let archive = Archive::in_memory();
        let a = archive
            .insert_candidate(testing::candidate("a", &[]))
            .unwrap();
        let b = archive
            .insert_candidate(testing::candidate("b", &[]))
            .unwrap();
        archive
            .record_evaluation(testing::evaluation(a, 0.4, 1.0))
            .unwrap();
        archive
            .record_evaluation(testing::evaluation(b, 0.7, 1.0))
            .unwrap();
        assert_eq!(archive.verify().unwrap(), vec![]);
        (archive, a, b)
    }

    fn damage(archive: &Archive, write: impl FnOnce(&mut WriteSet)) -> Vec<String> {
        let mut w = WriteSet::default();
        write(&mut w);
        archive.backend.apply(&w, true).unwrap();
        archive
            .verify()
            .unwrap()
            .into_iter()
            .map(|p| format!("{}: {}", p.tree, p.message))
            .collect()
    }

    #[test]
    fn verify_checks_the_membership_indexes_and_the_elites() {
        let (archive, a, _) = two_in_a_cell();
        let found = damage(&archive, |w| w.delete(Tree::Successful, id_key(a).to_vec()));
        assert_eq!(found, ["successful: missing entry"]);

        let (archive, a, _) = two_in_a_cell();
        let found = damage(&archive, |w| {
            w.put(Tree::Islands, island_key(7, a), Vec::new())
        });
        assert_eq!(found, ["islands: entry for no successful candidate"]);

        let (archive, a, _) = two_in_a_cell();
        let candidate = archive.candidate(a).unwrap().unwrap();
        let (tree, key) = memberships(&candidate)[2].clone();
        let found = damage(&archive, |w| w.delete(tree, key));
        assert_eq!(found, ["cell_members: missing entry"]);

        // The elite must be the cell's best: `a` scores 0.4 against `b`'s 0.7.
        let (archive, a, _) = two_in_a_cell();
        let cell = Cell::of(&archive.candidate(a).unwrap().unwrap().stats).key();
        let found = damage(&archive, |w| w.put(Tree::Cells, cell, id_key(a).to_vec()));
        assert_eq!(
            found,
            [format!(
                "cells: elite {a} is missing, not in the cell or not its best"
            )]
        );
    }
}
