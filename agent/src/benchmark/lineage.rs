//! What a campaign changed about its seed: the edit kinds along an incumbent's lineage, from
//! its seed down to it, classed as re-tuning or structural, and a structural change that calls
//! language ops its seed does not as a new mechanism.
//!
//! The mutation proposer names a child `"<seed name> · <kind>+<kind>"` with the kinds of its
//! own edits (the suffix of the parent's name is dropped), so the kinds of a lineage are read
//! from the names of its members, following each one's first parent.

use std::collections::BTreeSet;

use autoarch_archive::{Archive, CandidateId, ProposerKind};
use autoarch_sandbox::outline::outline;
use autoarch_sandbox::REGISTRY;
use serde::Serialize;

use crate::propose::mutation::{EditKind, EDIT_KINDS};

/// How an incumbent differs from the seed it descends from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "class", content = "kinds", rename_all = "snake_case")]
pub enum Change {
    /// The incumbent is a seed as written.
    Unchanged,
    /// Only re-tuning edits (sizes, counts, weight tying): the seed's design, re-sized. The
    /// kinds, each once, in the order first applied.
    Retuned(Vec<String>),
    /// At least one structural edit (a mixer swap, a gate, a residual, a skip, an activation or
    /// norm swap, a crossover, a primitive edit) that calls no language op the seed lacks: every
    /// kind of the lineage, each once, in the order first applied.
    Structural(Vec<String>),
    /// Structural edits that brought in language ops the seed does not call: a new mechanism
    /// (a shift is `pad` and `slice`, a running mean `cumsum`, a gate `sigmoid`). The kinds,
    /// and the ops added and removed, by name.
    NewMechanism {
        kinds: Vec<String>,
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// A member of the lineage names no edit kinds (an LLM's proposal, or an older archive).
    Unrecorded,
}

impl Change {
    /// The change in words: `re-tuned (heads, depth)`.
    pub fn describe(&self) -> String {
        match self {
            Change::Unchanged => "the seed unchanged".into(),
            Change::Retuned(kinds) => format!("re-tuned ({})", kinds.join(", ")),
            Change::Structural(kinds) => format!("structural ({})", kinds.join(", ")),
            Change::NewMechanism {
                kinds,
                added,
                removed,
            } => {
                let mut ops: Vec<String> = added.iter().map(|o| format!("+{o}")).collect();
                ops.extend(removed.iter().map(|o| format!("−{o}")));
                format!("new mechanism: {} ({})", ops.join(" "), kinds.join(", "))
            }
            Change::Unrecorded => "edits not recorded".into(),
        }
    }
}

/// Whether an edit kind re-tunes the design (its sizes, counts and tying) rather than changing
/// its structure. Every kind is named, so that a new kind must be classed here.
fn retunes(kind: EditKind) -> bool {
    match kind {
        EditKind::Width
        | EditKind::Depth
        | EditKind::Heads
        | EditKind::Kernel
        | EditKind::Tie
        | EditKind::Untie
        | EditKind::Alter => true,
        EditKind::Activation
        | EditKind::Norm
        | EditKind::Mixer
        | EditKind::Residual
        | EditKind::Gate
        | EditKind::Skip
        | EditKind::Crossover
        | EditKind::Insert
        | EditKind::Primitive
        | EditKind::Delete
        | EditKind::Rewire
        | EditKind::Trade => false,
    }
}

fn kind_name(kind: EditKind) -> String {
    kind.name().to_string()
}

/// The edit kinds a mutation's name carries (`"Transformer · heads+depth"`), or `None` when
/// the name has no readable suffix.
pub fn kinds_of_name(name: &str) -> Option<Vec<EditKind>> {
    let (_, suffix) = name.rsplit_once(" · ")?;
    suffix
        .split('+')
        .map(|s| {
            EDIT_KINDS
                .iter()
                .copied()
                .find(|k| kind_name(*k) == s.trim())
        })
        .collect()
}

/// Classes a lineage's kinds, in the order applied (seed first).
pub fn classify(kinds: &[EditKind]) -> Change {
    if kinds.is_empty() {
        return Change::Unchanged;
    }
    let mut names: Vec<String> = Vec::new();
    for k in kinds {
        let n = kind_name(*k);
        if !names.contains(&n) {
            names.push(n);
        }
    }
    if kinds.iter().all(|k| retunes(*k)) {
        Change::Retuned(names)
    } else {
        Change::Structural(names)
    }
}

/// Ops that stand in for one another: a design that calls one of a group and gains another
/// has swapped, not gained a mechanism. (`sigmoid` is not here: it makes gates.)
const SWAPPABLE: &[&[&str]] = &[
    &["relu", "gelu", "silu", "tanh", "elu", "softplus"],
    &["layer_norm", "rms_norm", "batch_norm", "group_norm"],
];

/// The language ops a design's code calls on its way from `model` (helpers it calls, and theirs;
/// a helper an edit left behind unused does not count), by name.
fn ops_called(code: &str) -> BTreeSet<String> {
    let Ok(o) = outline(code) else {
        return BTreeSet::new();
    };
    let mut reached = BTreeSet::new();
    let mut stack = vec!["model".to_string()];
    while let Some(name) = stack.pop() {
        if let Some(d) = o.def(&name).filter(|_| reached.insert(name.clone())) {
            stack.extend(d.names.iter().filter(|n| o.def(n).is_some()).cloned());
        }
    }
    o.calls
        .iter()
        .filter(|c| c.function.as_ref().is_some_and(|f| reached.contains(f)))
        .filter(|c| REGISTRY.iter().any(|op| op.name == c.callee))
        .map(|c| c.callee.clone())
        .collect()
}

/// A structural change, told apart by the ops it brought in: a new mechanism when the
/// incumbent calls an op its seed does not.
fn by_ops(change: Change, seed: &str, incumbent: &str) -> Change {
    let Change::Structural(kinds) = change else {
        return change;
    };
    let (before, after) = (ops_called(seed), ops_called(incumbent));
    let added: Vec<String> = after.difference(&before).cloned().collect();
    let removed: Vec<String> = before.difference(&after).cloned().collect();
    // An activation or a norm where the seed has one of its kind (relu for gelu, layer_norm
    // beside rms_norm) is a swap, not a mechanism.
    let swap = |op: &String| {
        SWAPPABLE
            .iter()
            .any(|group| group.contains(&op.as_str()) && group.iter().any(|o| before.contains(*o)))
    };
    if added.iter().all(swap) {
        return Change::Structural(kinds);
    }
    Change::NewMechanism {
        kinds,
        added,
        removed,
    }
}

/// The change from its seed of candidate `id` of `archive`: its lineage is followed by first
/// parents up to a seed (or a candidate without parents).
pub fn change(archive: &Archive, id: CandidateId) -> autoarch_archive::Result<Change> {
    let incumbent = archive.candidate(id)?.map(|c| c.code).unwrap_or_default();
    let mut seed = String::new();
    let mut kinds: Vec<EditKind> = Vec::new();
    let mut next = Some(id);
    // A lineage is acyclic; the bound only keeps a damaged archive from looping.
    for _ in 0..100_000 {
        let Some(c) = next
            .and_then(|id| archive.candidate(id).transpose())
            .transpose()?
        else {
            break;
        };
        if matches!(c.proposer, ProposerKind::Seed | ProposerKind::Human) {
            seed = c.code;
            break;
        }
        let Some(own) = kinds_of_name(&c.name) else {
            return Ok(Change::Unrecorded);
        };
        // Walking up, so each step's kinds go before the ones found so far.
        kinds.splice(0..0, own);
        next = c.parents.first().copied();
        seed = c.code;
    }
    Ok(by_ops(classify(&kinds), &seed, &incumbent))
}

#[cfg(test)]
mod tests {
    use autoarch_archive::NewCandidate;

    use super::*;

    #[test]
    fn names_give_their_kinds_and_lineages_their_class() {
        assert_eq!(
            kinds_of_name("Softmax attention · heads+depth"),
            Some(vec![EditKind::Heads, EditKind::Depth])
        );
        assert_eq!(kinds_of_name("Softmax attention"), None);
        assert_eq!(kinds_of_name("An LLM's idea · with a twist"), None);
        assert_eq!(classify(&[]).describe(), "the seed unchanged");
        assert_eq!(
            classify(&[EditKind::Heads, EditKind::Tie, EditKind::Heads]).describe(),
            "re-tuned (heads, tie)"
        );
        assert_eq!(
            classify(&[EditKind::Width, EditKind::Mixer]).describe(),
            "structural (width, mixer)"
        );
    }

    fn add(archive: &Archive, name: &str, proposer: ProposerKind, parent: Option<u64>) -> u64 {
        archive
            .insert_candidate(NewCandidate {
                name: name.into(),
                motivation: String::new(),
                code: format!("# {name}"),
                task: "mqar".into(),
                fingerprint: format!("f-{name}"),
                stats: Default::default(),
                parents: parent.into_iter().collect(),
                proposer,
                model: None,
                prompt: None,
                response: None,
                tokens: Default::default(),
                cost_usd: 0.0,
                calls: Vec::new(),
                tags: Vec::new(),
                source: None,
                duplicate_of: None,
                island: 0,
            })
            .unwrap()
    }

    #[test]
    fn a_lineage_is_read_from_the_incumbent_up_to_its_seed() {
        let archive = Archive::in_memory();
        let seed = add(&archive, "Transformer", ProposerKind::Seed, None);
        let child = add(
            &archive,
            "Transformer · heads",
            ProposerKind::Mutation,
            Some(seed),
        );
        let grandchild = add(
            &archive,
            "Transformer · gate+width",
            ProposerKind::Mutation,
            Some(child),
        );
        let llm = add(&archive, "A new idea", ProposerKind::Llm, Some(child));
        assert_eq!(change(&archive, seed).unwrap(), Change::Unchanged);
        assert_eq!(
            change(&archive, child).unwrap(),
            Change::Retuned(vec!["heads".into()])
        );
        assert_eq!(
            change(&archive, grandchild).unwrap(),
            Change::Structural(vec!["heads".into(), "gate".into(), "width".into()])
        );
        assert_eq!(change(&archive, llm).unwrap(), Change::Unrecorded);
    }

    #[test]
    fn a_structural_change_that_calls_new_ops_is_a_new_mechanism() {
        let seed_code = "def model(x):\n    return linear(gelu(linear(x, 8)), 4)\n";
        let shift_code = "def shift(x, n):\n    return pad(slice(x, 1, 0, 31), [n, 0], axis=1)\n\ndef model(x):\n    return linear(gelu(linear(shift(x, 1), 8)), 4)\n";
        assert_eq!(
            by_ops(classify(&[EditKind::Primitive]), seed_code, shift_code),
            Change::NewMechanism {
                kinds: vec!["primitive".into()],
                added: vec!["pad".into(), "slice".into()],
                removed: vec![],
            }
        );
        assert_eq!(
            by_ops(classify(&[EditKind::Primitive]), seed_code, shift_code).describe(),
            "new mechanism: +pad +slice (primitive)"
        );
        // A helper left defined but no longer called brings nothing in.
        let dead = format!("{shift_code}\ndef unused(x):\n    return cumsum(x, axis=1)\n");
        assert_eq!(
            by_ops(classify(&[EditKind::Primitive]), seed_code, &dead).describe(),
            "new mechanism: +pad +slice (primitive)"
        );
        // A swap of an activation or a norm is structural, even where the seed keeps the old
        // one elsewhere; a square where there was none is new.
        let normed = "def model(x):\n    return linear(rms_norm(gelu(linear(x, 8))), 4)\n";
        let both =
            "def model(x):\n    return linear(layer_norm(silu(linear(rms_norm(x), 8))), 4)\n";
        assert_eq!(
            by_ops(classify(&[EditKind::Norm]), normed, both).describe(),
            "structural (norm)"
        );
        let relu_code = seed_code.replace("gelu", "relu");
        assert_eq!(
            by_ops(classify(&[EditKind::Activation]), seed_code, &relu_code).describe(),
            "structural (activation)"
        );
        let squared = seed_code
            .replace("gelu(", "square(gelu(")
            .replace("8)", "8))");
        assert_eq!(
            by_ops(classify(&[EditKind::Primitive]), seed_code, &squared).describe(),
            "new mechanism: +square (primitive)"
        );
        // The same ops, wired otherwise: structural. Re-tuning stays re-tuning whatever it calls.
        let wider = seed_code.replace("8)", "16)");
        assert_eq!(
            by_ops(classify(&[EditKind::Residual]), seed_code, &wider).describe(),
            "structural (residual)"
        );
        assert_eq!(
            by_ops(classify(&[EditKind::Width]), seed_code, &relu_code).describe(),
            "re-tuned (width)"
        );
    }
}
