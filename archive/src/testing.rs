//! Builders for tests, examples and benchmarks: candidates and evaluations with plausible
//! contents, without tracing code.

use std::collections::BTreeMap;

use autoarch_sandbox::{Shape, Stats};

use crate::record::Fidelity;
use crate::record::{CandidateId, NewCandidate, NewEvaluation, Outcome, ProposerKind, Tokens};

/// A mutation-proposed candidate named `name` with the given parents. Its fingerprint is derived
/// from the name, so equal names mean duplicate designs.
pub fn candidate(name: &str, parents: &[CandidateId]) -> NewCandidate {
    let params = 1000 + name.bytes().map(u64::from).sum::<u64>() * 37;
    NewCandidate {
        name: name.to_string(),
        motivation: format!("{name} tries something"),
        code: format!("# {name}\ndef model(x):\n    return linear(flatten(x), NUM_CLASSES)\n"),
        task: "digits".to_string(),
        fingerprint: format!("fp-{name}"),
        stats: Stats {
            params,
            buffers: 0,
            flops: params * 2,
            nodes: 4,
            depth: 1,
            op_histogram: BTreeMap::from([("linear".to_string(), 1), ("reshape".to_string(), 1)]),
            output_shape: Shape::batched(&[10]),
        },
        parents: parents.to_vec(),
        proposer: ProposerKind::Mutation,
        model: None,
        prompt: None,
        response: None,
        tokens: Tokens::default(),
        cost_usd: 0.0,
        calls: vec![],
        tags: Vec::new(),
        source: None,
        duplicate_of: None,
        island: 0,
    }
}

/// A successful short-budget evaluation with the given score and validation loss.
pub fn evaluation(candidate: CandidateId, score: f64, val_loss: f64) -> NewEvaluation {
    NewEvaluation {
        candidate,
        fidelity: Fidelity::SHORT,
        seed: 0,
        outcome: Outcome::Ok,
        reason: None,
        metrics: BTreeMap::from([
            ("score".to_string(), score),
            ("val_loss".to_string(), val_loss),
        ]),
        curve: vec![(0, 2.3), (50, 1.0), (100, val_loss)],
        timings: BTreeMap::from([("wall_seconds".to_string(), 1.5)]),
    }
}

/// A failed evaluation.
pub fn failure(candidate: CandidateId, outcome: Outcome, reason: &str) -> NewEvaluation {
    NewEvaluation {
        candidate,
        fidelity: Fidelity::SHORT,
        seed: 0,
        outcome,
        reason: Some(reason.to_string()),
        metrics: BTreeMap::new(),
        curve: Vec::new(),
        timings: BTreeMap::new(),
    }
}
