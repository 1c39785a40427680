//! What a campaign changed about its seed: the edit kinds along an incumbent's lineage, from
//! its seed down to it, classed as re-tuning or structural.
//!
//! The mutation proposer names a child `"<seed name> · <kind>+<kind>"` with the kinds of its
//! own edits (the suffix of the parent's name is dropped), so the kinds of a lineage are read
//! from the names of its members, following each one's first parent.

use autoarch_archive::{Archive, CandidateId, ProposerKind};
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
    /// norm swap, a crossover): every kind of the lineage, each once, in the order first applied.
    Structural(Vec<String>),
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
        | EditKind::Untie => true,
        EditKind::Activation
        | EditKind::Norm
        | EditKind::Mixer
        | EditKind::Residual
        | EditKind::Gate
        | EditKind::Skip
        | EditKind::Crossover => false,
    }
}

fn kind_name(kind: EditKind) -> String {
    format!("{kind:?}").to_lowercase()
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

/// The change from its seed of candidate `id` of `archive`: its lineage is followed by first
/// parents up to a seed (or a candidate without parents).
pub fn change(archive: &Archive, id: CandidateId) -> autoarch_archive::Result<Change> {
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
            break;
        }
        let Some(own) = kinds_of_name(&c.name) else {
            return Ok(Change::Unrecorded);
        };
        // Walking up, so each step's kinds go before the ones found so far.
        kinds.splice(0..0, own);
        next = c.parents.first().copied();
    }
    Ok(classify(&kinds))
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
}
