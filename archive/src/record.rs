//! The records the archive keeps, their on-disk format versions and upgrade path.
//!
//! Every record is stored as JSON with a `"v"` field. Decoding reads the version, runs the upgrade
//! chain from that version to the current one, then deserialises. A record written by a newer
//! autoarch (a version above the current) is refused, never misread.

use std::collections::BTreeMap;

use autoarch_sandbox::Stats;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Result};

pub type CandidateId = u64;
pub type EvaluationId = u64;

/// Where a candidate came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ProposerKind {
    /// A design from the shipped seed library.
    Seed,
    /// A design a person added (`autoarch seed add`).
    Human,
    Llm,
    Mutation,
}

impl ProposerKind {
    pub fn parse(s: &str) -> Option<ProposerKind> {
        [
            ProposerKind::Seed,
            ProposerKind::Human,
            ProposerKind::Llm,
            ProposerKind::Mutation,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProposerKind::Seed => "seed",
            ProposerKind::Human => "human",
            ProposerKind::Llm => "llm",
            ProposerKind::Mutation => "mutation",
        }
    }
}

/// LLM token usage of the call that produced a candidate.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Tokens {
    pub prompt: u64,
    pub completion: u64,
}

/// One LLM call behind a candidate or an insight: what was asked, what came back, what it cost
/// and what became of it. Failed HTTP attempts before the answer are kept in `attempts`.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct LlmCall {
    pub purpose: CallPurpose,
    pub model: String,
    /// The structured-output mode the answer was asked in; `None` in records that hold none.
    /// Stored as `json_schema`, `json_object`, `text` or an empty string, as it always was.
    #[serde(default, with = "mode_text")]
    pub mode: Option<AnswerMode>,
    pub prompt: String,
    /// The answer's text; empty when no answer came.
    pub response: String,
    pub tokens: Tokens,
    pub cost_usd: f64,
    pub seconds: f64,
    /// Each failed attempt (HTTP status, timeout, connection error) and the wait that followed.
    pub attempts: Vec<String>,
    /// What became of the answer: `traced`, or why it was not used.
    pub outcome: String,
    /// What the model was asked to answer with; `None` for a call that proposes nothing (an
    /// analysis) and in records from before the choice existed, which were all code. Stored as
    /// `code`, `edits` or an empty string, as it always was.
    #[serde(default, with = "answer_text")]
    pub answer: Option<AnswerKind>,
    /// In `edits` answers: the menu entries the model chose, in order, as `E7: what it does`.
    #[serde(default)]
    pub edits: Vec<String>,
}

/// Why an LLM was called. Stored as `propose`, `repair` or `analyze`, as it always was.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallPurpose {
    /// A new design.
    #[default]
    Propose,
    /// Code sent back with its diagnostics.
    Repair,
    /// Insights drawn from results.
    Analyze,
    /// A purpose this version does not know (a record from a newer one), read rather than
    /// refused.
    #[serde(other)]
    Other,
}

impl CallPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            CallPurpose::Propose => "propose",
            CallPurpose::Repair => "repair",
            CallPurpose::Analyze => "analyze",
            CallPurpose::Other => "other",
        }
    }
}

impl std::fmt::Display for CallPurpose {
    /// The stored text, honouring width and alignment (`{:<8}`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl LlmCall {
    /// The answer kind, `code` for records from before the choice existed.
    pub fn answer_kind(&self) -> AnswerKind {
        self.answer.unwrap_or(AnswerKind::Code)
    }
}

/// How an LLM's answer is asked to be shaped: a JSON schema the server enforces, any JSON
/// object, or free text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnswerMode {
    JsonSchema,
    JsonObject,
    Text,
}

impl AnswerMode {
    pub const ALL: [AnswerMode; 3] = [
        AnswerMode::JsonSchema,
        AnswerMode::JsonObject,
        AnswerMode::Text,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AnswerMode::JsonSchema => "json_schema",
            AnswerMode::JsonObject => "json_object",
            AnswerMode::Text => "text",
        }
    }

    pub fn parse(s: &str) -> Option<AnswerMode> {
        AnswerMode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl std::fmt::Display for AnswerMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// [`LlmCall::mode`] as the text records have always held. A mode this version does not know
/// (a record from a newer one) is read as `None` rather than refused.
mod mode_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::AnswerMode;

    pub fn serialize<S: Serializer>(v: &Option<AnswerMode>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.map_or("", AnswerMode::as_str))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<AnswerMode>, D::Error> {
        Ok(AnswerMode::parse(&String::deserialize(d)?))
    }
}

/// What an LLM is asked to answer with (`[llm] answer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnswerKind {
    /// The code, or SEARCH/REPLACE edits of the parent.
    Code,
    /// Ids from a menu of structural edits.
    Edits,
}

impl AnswerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerKind::Code => "code",
            AnswerKind::Edits => "edits",
        }
    }
}

/// [`LlmCall::answer`] as the text records have always held: `code`, `edits` or empty.
mod answer_text {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    use super::AnswerKind;

    pub fn serialize<S: Serializer>(v: &Option<AnswerKind>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.map_or("", AnswerKind::as_str))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<AnswerKind>, D::Error> {
        match String::deserialize(d)?.as_str() {
            "" => Ok(None),
            "code" => Ok(Some(AnswerKind::Code)),
            "edits" => Ok(Some(AnswerKind::Edits)),
            other => Err(D::Error::custom(format!(
                "unknown answer kind {other:?} (code or edits)"
            ))),
        }
    }
}

/// A proposed architecture, immutable once stored (except its tags).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Candidate {
    pub id: CandidateId,
    pub name: String,
    pub motivation: String,
    pub code: String,
    pub task: String,
    pub fingerprint: String,
    pub stats: Stats,
    pub parents: Vec<CandidateId>,
    pub proposer: ProposerKind,
    /// The model that wrote it (LLM proposer), if any.
    pub model: Option<String>,
    pub prompt: Option<String>,
    pub response: Option<String>,
    pub tokens: Tokens,
    pub cost_usd: f64,
    /// Every LLM call that led to this code (the proposal, then each repair round), in order.
    pub calls: Vec<LlmCall>,
    pub tags: Vec<String>,
    /// Where a human design came from (its file).
    pub source: Option<String>,
    /// An exact duplicate (same fingerprint) of this earlier candidate: recorded, not retrained.
    pub duplicate_of: Option<CandidateId>,
    /// The island it belongs to, for island-model parent sampling.
    pub island: u32,
    /// Unix time in milliseconds.
    pub created_ms: u64,
}

impl Candidate {
    /// Whether its code traced: a candidate that did not trace has no fingerprint (and no
    /// graph, so it is never trained).
    pub fn traced(&self) -> bool {
        !self.fingerprint.is_empty()
    }
}

/// A candidate before the archive has given it an id and a time.
#[derive(Clone, PartialEq, Debug)]
pub struct NewCandidate {
    pub name: String,
    pub motivation: String,
    pub code: String,
    pub task: String,
    pub fingerprint: String,
    pub stats: Stats,
    pub parents: Vec<CandidateId>,
    pub proposer: ProposerKind,
    pub model: Option<String>,
    pub prompt: Option<String>,
    pub response: Option<String>,
    pub tokens: Tokens,
    pub cost_usd: f64,
    pub calls: Vec<LlmCall>,
    pub tags: Vec<String>,
    pub source: Option<String>,
    pub duplicate_of: Option<CandidateId>,
    pub island: u32,
}

/// How an evaluation ended. Every failure is an outcome, recorded with its reason.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Invalid,
    Diverged,
    Timeout,
    Oom,
    Crashed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Invalid => "invalid",
            Outcome::Diverged => "diverged",
            Outcome::Timeout => "timeout",
            Outcome::Oom => "oom",
            Outcome::Crashed => "crashed",
        }
    }
}

/// The training budget an evaluation ran at: [`Fidelity::SHORT`], the search's budget that every
/// candidate gets, or a longer one bought by a promotion ([`Fidelity::PROMOTED`]). Stored as its
/// number, as archives always held it.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Fidelity(pub u32);

impl Fidelity {
    /// The search's budget: every candidate's first evaluation.
    pub const SHORT: Fidelity = Fidelity(0);
    /// The longer budget of a promotion (`promote_factor` × the short one).
    pub const PROMOTED: Fidelity = Fidelity(1);

    pub fn is_short(self) -> bool {
        self == Fidelity::SHORT
    }

    /// Above the short budget.
    pub fn is_promoted(self) -> bool {
        self > Fidelity::SHORT
    }
}

impl std::fmt::Display for Fidelity {
    /// The number, honouring width and alignment.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

/// One training-and-scoring run of a candidate.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Evaluation {
    pub id: EvaluationId,
    pub candidate: CandidateId,
    pub fidelity: Fidelity,
    pub seed: u64,
    pub outcome: Outcome,
    /// Why it failed (diagnostics, stderr tail, ...), when it did.
    pub reason: Option<String>,
    /// Task metrics such as `val_loss` and `val_accuracy`, plus `score` (higher is better).
    pub metrics: BTreeMap<String, f64>,
    /// Downsampled training curve: (step, train loss).
    pub curve: Vec<(u64, f64)>,
    /// Wall time, training time, latency and the like, in seconds or milliseconds as named.
    pub timings: BTreeMap<String, f64>,
    pub created_ms: u64,
}

/// An evaluation before the archive has given it an id and a time.
#[derive(Clone, PartialEq, Debug)]
pub struct NewEvaluation {
    pub candidate: CandidateId,
    pub fidelity: Fidelity,
    pub seed: u64,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub metrics: BTreeMap<String, f64>,
    pub curve: Vec<(u64, f64)>,
    pub timings: BTreeMap<String, f64>,
}

/// A lesson drawn from results, with the candidates it rests on.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Insight {
    pub id: u64,
    pub text: String,
    pub evidence: Vec<CandidateId>,
    pub created_ms: u64,
    /// The `analyze` call that drew it, if an LLM did.
    #[serde(default)]
    pub call: Option<LlmCall>,
}

/// What an event of the log is about. Stored as its snake_case name, as the kinds always were.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The run started or stopped.
    Campaign,
    /// A seed design entered the archive.
    SeedAdded,
    /// A budget stopped a job or the run.
    Budget,
    /// The machine: a lost worker, a job handed back.
    Machine,
    /// A candidate moved to the longer budget.
    Promotion,
    /// The proposer: a switch of answer kind, a hand-over to the fallback.
    Proposer,
    /// An analysis of the results, or why it gave none.
    Analysis,
    /// A kind this version does not know (a record from a newer one), read rather than refused.
    #[serde(other)]
    Other,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Campaign => "campaign",
            EventKind::SeedAdded => "seed_added",
            EventKind::Budget => "budget",
            EventKind::Machine => "machine",
            EventKind::Promotion => "promotion",
            EventKind::Proposer => "proposer",
            EventKind::Analysis => "analysis",
            EventKind::Other => "other",
        }
    }
}

impl std::fmt::Display for EventKind {
    /// The stored name, honouring width and alignment.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One line of the append-only event log.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub kind: EventKind,
    pub message: String,
    pub candidate: Option<CandidateId>,
    pub created_ms: u64,
}

/// A campaign: its configuration (as the agent wrote it) and its resumable state.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Campaign {
    pub name: String,
    pub config: Value,
    pub state: Value,
    pub updated_ms: u64,
}

/// Where a candidate stands, derived from its evaluations.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not evaluated yet.
    Pending,
    /// Its latest evaluation at the top fidelity succeeded.
    Ok,
    /// Its latest evaluation failed.
    Failed,
    /// An exact duplicate of an earlier candidate.
    Duplicate,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Duplicate => "duplicate",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Pending,
            Status::Ok,
            Status::Failed,
            Status::Duplicate,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// The derived view of a candidate that listings and rankings use: recomputed from its
/// evaluations whenever one is recorded.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub status: Status,
    /// The highest fidelity evaluated.
    pub fidelity: Fidelity,
    /// Mean of each metric over the successful evaluations at that fidelity (seeds).
    pub metrics: BTreeMap<String, f64>,
    /// The sample standard deviation (n − 1) over those seeds (0 for one seed).
    pub spread: BTreeMap<String, f64>,
    pub evaluations: u32,
    pub last_outcome: Option<Outcome>,
    /// The mean score at the short budget (fidelity 0) that every candidate gets, so that a
    /// candidate promoted to a longer budget can still be compared where all were measured.
    /// `None` in archives written before it was kept, until the candidate's next evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_score: Option<f64>,
    /// Whether `spread` is the sample SD. Archives written before it was (their spread divided
    /// by n) have `false`, and their spreads are recomputed from the evaluations on reading.
    #[serde(default)]
    pub sample_spread: bool,
}

impl Summary {
    pub fn score(&self) -> Option<f64> {
        self.metrics.get("score").copied()
    }
}

/// Current format versions.
pub const CANDIDATE_VERSION: u64 = 3;
pub const EVALUATION_VERSION: u64 = 1;
pub const OTHER_VERSION: u64 = 1;

/// The upgrade chain for candidate records: `CANDIDATE_UPGRADES[v - 1]` turns version `v` into
/// `v + 1`.
///
/// Version 1 (the first, pre-release layout) kept one total token count `tokens: u64` and the cost
/// as `cost`; version 2 splits tokens into prompt and completion and names the cost `cost_usd`.
/// The split of an old total is unknown, so it is kept as completion tokens.
/// Version 3 adds `calls`, the LLM calls behind the code (none for older records).
const CANDIDATE_UPGRADES: &[fn(Value) -> Result<Value>] = &[candidate_v1_to_v2, candidate_v2_to_v3];

fn candidate_v2_to_v3(mut v: Value) -> Result<Value> {
    let obj = v
        .as_object_mut()
        .ok_or_else(|| Error::Corrupt("a v2 candidate is not an object".into()))?;
    obj.insert("calls".into(), Value::Array(vec![]));
    Ok(v)
}

fn candidate_v1_to_v2(mut v: Value) -> Result<Value> {
    let obj = v
        .as_object_mut()
        .ok_or_else(|| Error::Corrupt("a v1 candidate is not an object".into()))?;
    let total = obj.remove("tokens").and_then(|t| t.as_u64()).unwrap_or(0);
    obj.insert(
        "tokens".into(),
        serde_json::json!({"prompt": 0, "completion": total}),
    );
    let cost = obj.remove("cost").and_then(|c| c.as_f64()).unwrap_or(0.0);
    obj.insert("cost_usd".into(), serde_json::json!(cost));
    Ok(v)
}

/// Serialise a record with its version.
pub fn encode<T: Serialize>(record: &T, version: u64) -> Vec<u8> {
    let mut value = serde_json::to_value(record).expect("records serialise");
    if let Some(obj) = value.as_object_mut() {
        obj.insert("v".into(), Value::from(version));
    }
    serde_json::to_vec(&value).expect("values serialise")
}

fn decode_versioned<T: DeserializeOwned>(
    bytes: &[u8],
    what: &str,
    current: u64,
    upgrades: &[fn(Value) -> Result<Value>],
) -> Result<T> {
    let mut value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::Corrupt(format!("{what} record is not JSON: {e}")))?;
    let version = value
        .get("v")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::Corrupt(format!("{what} record has no version")))?;
    if version > current {
        return Err(Error::TooNew {
            what: what.to_string(),
            version,
            supported: current,
        });
    }
    for upgrade in &upgrades[(version as usize).saturating_sub(1)..(current as usize - 1)] {
        value = upgrade(value)?;
    }
    if let Some(obj) = value.as_object_mut() {
        obj.remove("v");
    }
    serde_json::from_value(value).map_err(|e| Error::Corrupt(format!("{what} record: {e}")))
}

pub fn decode_candidate(bytes: &[u8]) -> Result<Candidate> {
    decode_versioned(bytes, "candidate", CANDIDATE_VERSION, CANDIDATE_UPGRADES)
}

pub fn decode_evaluation(bytes: &[u8]) -> Result<Evaluation> {
    decode_versioned(bytes, "evaluation", EVALUATION_VERSION, &[])
}

/// Decode one of the records without an upgrade history yet.
pub fn decode_other<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    decode_versioned(bytes, what, OTHER_VERSION, &[])
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_llm_calls_answer_kind_is_stored_as_the_text_it_always_was() {
        let call = |answer| LlmCall {
            answer,
            ..LlmCall::default()
        };
        for (answer, text) in [
            (None, ""),
            (Some(AnswerKind::Code), "code"),
            (Some(AnswerKind::Edits), "edits"),
        ] {
            let json = serde_json::to_value(call(answer)).unwrap();
            assert_eq!(json["answer"], text);
            let back: LlmCall = serde_json::from_value(json).unwrap();
            assert_eq!(back.answer, answer);
        }
        // Records from before the choice have no field; they were all code.
        let mut old = serde_json::to_value(call(None)).unwrap();
        old.as_object_mut().unwrap().remove("answer");
        let old: LlmCall = serde_json::from_value(old).unwrap();
        assert_eq!((old.answer, old.answer_kind()), (None, AnswerKind::Code));
        let mut bad = serde_json::to_value(call(None)).unwrap();
        bad["answer"] = "poem".into();
        let err = serde_json::from_value::<LlmCall>(bad).unwrap_err();
        assert!(err.to_string().contains("unknown answer kind"), "{err}");
    }

    #[test]
    fn an_llm_calls_mode_is_stored_as_the_text_it_always_was() {
        let call = |mode| LlmCall {
            mode,
            ..LlmCall::default()
        };
        for (mode, text) in [
            (None, ""),
            (Some(AnswerMode::JsonSchema), "json_schema"),
            (Some(AnswerMode::JsonObject), "json_object"),
            (Some(AnswerMode::Text), "text"),
        ] {
            let json = serde_json::to_value(call(mode)).unwrap();
            assert_eq!(json["mode"], text);
            let back: LlmCall = serde_json::from_value(json).unwrap();
            assert_eq!(back.mode, mode);
        }
        // A mode from a newer version is read, as no mode, rather than refused.
        let mut newer = serde_json::to_value(call(None)).unwrap();
        newer["mode"] = "grammar".into();
        assert_eq!(serde_json::from_value::<LlmCall>(newer).unwrap().mode, None);
    }

    #[test]
    fn an_llm_calls_purpose_is_stored_as_the_text_it_always_was() {
        for (purpose, text) in [
            (CallPurpose::Propose, "propose"),
            (CallPurpose::Repair, "repair"),
            (CallPurpose::Analyze, "analyze"),
        ] {
            let call = LlmCall {
                purpose,
                ..LlmCall::default()
            };
            let json = serde_json::to_value(&call).unwrap();
            assert_eq!(json["purpose"], text);
            assert_eq!(purpose.to_string(), text);
            assert_eq!(format!("{purpose:<8}|"), format!("{text:<8}|"));
            let back: LlmCall = serde_json::from_value(json).unwrap();
            assert_eq!(back.purpose, purpose);
        }
        // A purpose from a newer version is read, not refused.
        let mut newer = serde_json::to_value(LlmCall::default()).unwrap();
        newer["purpose"] = "summarise".into();
        let newer: LlmCall = serde_json::from_value(newer).unwrap();
        assert_eq!(newer.purpose, CallPurpose::Other);
    }

    #[test]
    fn an_events_kind_is_stored_as_the_name_it_always_was() {
        let event = |kind| Event {
            seq: 1,
            kind,
            message: "m".into(),
            candidate: None,
            created_ms: 0,
        };
        for (kind, text) in [
            (EventKind::Campaign, "campaign"),
            (EventKind::SeedAdded, "seed_added"),
            (EventKind::Budget, "budget"),
            (EventKind::Machine, "machine"),
            (EventKind::Promotion, "promotion"),
            (EventKind::Proposer, "proposer"),
            (EventKind::Analysis, "analysis"),
        ] {
            let json = serde_json::to_value(event(kind)).unwrap();
            assert_eq!(json["kind"], text);
            assert_eq!(format!("{kind:<10}|"), format!("{text:<10}|"));
            let back: Event = serde_json::from_value(json).unwrap();
            assert_eq!(back.kind, kind);
        }
        let mut newer = serde_json::to_value(event(EventKind::Campaign)).unwrap();
        newer["kind"] = "migration".into();
        let newer: Event = serde_json::from_value(newer).unwrap();
        assert_eq!(newer.kind, EventKind::Other);
    }
}
