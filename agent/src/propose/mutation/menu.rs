//! The edit menu: the structural edits that apply to a parent, numbered, for a proposer that
//! chooses among them instead of writing code (the LLM's `edits` answers). Choosing from the
//! menu cannot produce code that fails to parse: every entry is an edit the mutation proposer
//! would make, and the chosen ones are applied by the same code.

use std::collections::BTreeMap;

use autoarch_sandbox::outline::{apply_edits, outline, Edit};
use rand::seq::SliceRandom;
use rand::Rng;

use super::{candidates, Applied, EditKind, TaskKind, EDIT_KINDS};

/// A design a crossover entry takes from.
#[derive(Clone, Copy, Debug)]
pub struct Partner<'a> {
    pub id: u64,
    pub code: &'a str,
}

/// One numbered edit of the parent.
#[derive(Clone, Debug, PartialEq)]
pub struct MenuEntry {
    /// `E1`, `E2`, ...
    pub id: String,
    pub kind: EditKind,
    pub description: String,
    /// The crossover partner's id and code, for crossover entries.
    pub partner: Option<(u64, String)>,
    edits: Vec<Edit>,
}

impl MenuEntry {
    /// `E7: token mixer attention -> mix_linear_attention`.
    pub fn line(&self) -> String {
        format!("{}: {}", self.id, self.description)
    }
}

/// Up to `size` edits of `source`, spread over the kinds that apply (one of each kind in turn,
/// a random site and value within a kind), numbered in the order of [`EDIT_KINDS`]. Crossover
/// entries come from each partner. Empty when nothing applies or the source does not parse.
pub fn menu(
    source: &str,
    task: TaskKind,
    partners: &[Partner<'_>],
    size: usize,
    rng: &mut impl Rng,
) -> Vec<MenuEntry> {
    let Ok(o) = outline(source) else {
        return Vec::new();
    };
    // Per kind, the options in random order (crossover: each partner's, interleaved).
    let mut pools: BTreeMap<EditKind, Vec<(Applied, Option<Partner<'_>>)>> = BTreeMap::new();
    for kind in EDIT_KINDS.iter().filter(|k| **k != EditKind::Crossover) {
        let mut options: Vec<_> = candidates(*kind, source, &o, task, None)
            .into_iter()
            .map(|a| (a, None))
            .collect();
        options.shuffle(rng);
        pools.insert(*kind, options);
    }
    let mut crossover = Vec::new();
    for p in partners {
        let mut options = candidates(EditKind::Crossover, source, &o, task, Some(p.code));
        options.shuffle(rng);
        crossover.push(
            options
                .into_iter()
                .map(|a| (a, Some(*p)))
                .collect::<Vec<_>>(),
        );
    }
    let longest = crossover.iter().map(Vec::len).max().unwrap_or(0);
    let mut mixed = Vec::new();
    for i in 0..longest {
        for c in &mut crossover {
            if i < c.len() {
                mixed.push(c[i].clone());
            }
        }
    }
    pools.insert(EditKind::Crossover, mixed);
    // Round-robin over the kinds, so that a design with many activation calls does not fill
    // the menu with activation swaps.
    let mut picked: Vec<(Applied, Option<Partner<'_>>)> = Vec::new();
    let mut round = 0;
    while picked.len() < size && pools.values().any(|v| v.len() > round) {
        for options in pools.values() {
            if picked.len() < size {
                if let Some(o) = options.get(round) {
                    // Two sites can read the same in words (two `relu` calls in one function):
                    // the model could not tell them apart, so only the first is offered. Two
                    // edits with the same result are one.
                    let seen = picked
                        .iter()
                        .any(|(a, _)| a.code == o.0.code || a.description == o.0.description);
                    if !seen {
                        picked.push(o.clone());
                    }
                }
            }
        }
        round += 1;
    }
    picked.sort_by_key(|(a, _)| a.kind);
    picked
        .into_iter()
        .enumerate()
        .map(|(i, (a, partner))| MenuEntry {
            id: format!("E{}", i + 1),
            kind: a.kind,
            description: match partner {
                Some(p) => format!("{} (#{})", a.description, p.id),
                None => a.description,
            },
            partner: partner.map(|p| (p.id, p.code.to_string())),
            edits: a.edits,
        })
        .collect()
}

/// The entries kept (say, those whose code traces), numbered again from `E1`.
pub fn renumber(entries: Vec<MenuEntry>) -> Vec<MenuEntry> {
    entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| MenuEntry {
            id: format!("E{}", i + 1),
            ..e
        })
        .collect()
}

/// What applying chosen entries gave: the code, the entries applied (in order) and those
/// skipped because an earlier choice changed the same text.
#[derive(Clone, Debug, PartialEq)]
pub struct Chosen {
    pub code: String,
    pub applied: Vec<MenuEntry>,
    pub skipped: Vec<(MenuEntry, String)>,
}

/// Applies the chosen entries of the menu made for `source`, in order. Entries that touch
/// different text are applied together, exactly as listed; where one overlaps an earlier one,
/// it is made again on the code so far (the same kind and description), or skipped when it no
/// longer applies there.
pub fn apply(source: &str, chosen: &[&MenuEntry], task: TaskKind) -> Chosen {
    let mut out = Chosen {
        code: source.to_string(),
        applied: Vec::new(),
        skipped: Vec::new(),
    };
    let mut together: Vec<Edit> = Vec::new();
    for (i, e) in chosen.iter().enumerate() {
        let mut trial = together.clone();
        for edit in &e.edits {
            // Two entries may insert the same helper: once is enough.
            if !trial.contains(edit) {
                trial.push(edit.clone());
            }
        }
        if let Ok(code) = apply_edits(source, &trial) {
            together = trial;
            out.code = code;
            out.applied.push((*e).clone());
            continue;
        }
        // Overlaps: the rest go one at a time on the code so far.
        for e in &chosen[i..] {
            match again(&out.code, e, task) {
                Some(code) => {
                    out.code = code;
                    out.applied.push((*e).clone());
                }
                None => {
                    let after: Vec<&str> = out.applied.iter().map(|a| a.id.as_str()).collect();
                    out.skipped.push((
                        (*e).clone(),
                        format!("no longer applies after {}", after.join(", ")),
                    ));
                }
            }
        }
        break;
    }
    out
}

/// The same edit made on changed code: the first option of its kind with its description.
fn again(code: &str, e: &MenuEntry, task: TaskKind) -> Option<String> {
    let o = outline(code).ok()?;
    let partner = e.partner.as_ref().map(|(_, c)| c.as_str());
    let base = match &e.partner {
        Some((id, _)) => e
            .description
            .strip_suffix(&format!(" (#{id})"))
            .unwrap_or(&e.description),
        None => &e.description,
    };
    candidates(e.kind, code, &o, task, partner)
        .into_iter()
        .find(|a| a.description == base)
        .map(|a| a.code)
}

#[cfg(test)]
mod tests {
    use autoarch_sandbox::{trace, TaskShape, TraceConfig, TraceOutcome};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    const SEQ: TaskKind = TaskKind { sequence: true };

    fn transformer_menu(size: usize) -> (&'static str, Vec<MenuEntry>) {
        let code = crate::seeds::by_name("transformer").unwrap();
        let partner = crate::seeds::by_name("linear_attention").unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let m = menu(
            code,
            SEQ,
            &[Partner {
                id: 9,
                code: partner,
            }],
            size,
            &mut rng,
        );
        (code, m)
    }

    #[test]
    fn the_menu_spreads_over_kinds_numbers_in_order_and_names_partners() {
        let (_, m) = transformer_menu(12);
        assert_eq!(m.len(), 12);
        for (i, e) in m.iter().enumerate() {
            assert_eq!(e.id, format!("E{}", i + 1));
        }
        let kinds: std::collections::BTreeSet<EditKind> = m.iter().map(|e| e.kind).collect();
        assert!(kinds.len() >= 8, "{kinds:?}");
        assert!(m.windows(2).all(|w| w[0].kind <= w[1].kind));
        let cross: Vec<&MenuEntry> = m.iter().filter(|e| e.kind == EditKind::Crossover).collect();
        assert!(!cross.is_empty());
        assert!(
            cross.iter().all(|e| e.description.ends_with("(#9)")),
            "{cross:?}"
        );
        // Reproducible from the seed.
        assert_eq!(transformer_menu(12).1, m);
    }

    #[test]
    fn chosen_entries_apply_exactly_and_trace() {
        let (code, m) = transformer_menu(24);
        let config = TraceConfig::new(TaskShape::by_name("mqar").unwrap());
        // Edits are made without shapes: the LLM proposer traces the menu and shows the model
        // only the entries that trace (`traced_entries`). Most do.
        let mut traced = 0;
        for e in &m {
            let c = apply(code, &[e], SEQ);
            assert!(c.skipped.is_empty());
            assert_eq!(c.applied, vec![e.clone()]);
            assert_eq!(c.code, apply_edits(code, &e.edits).unwrap(), "{}", e.line());
            traced += usize::from(matches!(trace(&c.code, &config), TraceOutcome::Ok(_)));
        }
        assert!(traced * 4 >= m.len() * 3, "{traced} of {}", m.len());
        // Two entries of different kinds at different places: both, as listed.
        let width = m.iter().find(|e| e.kind == EditKind::Width).unwrap();
        let act = m.iter().find(|e| e.kind == EditKind::Activation).unwrap();
        let both = apply(code, &[width, act], SEQ);
        assert_eq!(both.applied.len(), 2);
        let mut edits = width.edits.clone();
        edits.extend(act.edits.iter().cloned());
        assert_eq!(both.code, apply_edits(code, &edits).unwrap());
        assert_ne!(both.code, apply_edits(code, &width.edits).unwrap());
    }

    #[test]
    fn an_overlapping_choice_is_made_again_or_skipped_with_why() {
        let code = crate::seeds::by_name("transformer").unwrap();
        let o = outline(code).unwrap();
        let swaps = candidates(EditKind::Mixer, code, &o, SEQ, None);
        let entry = |a: &Applied, id: &str| MenuEntry {
            id: id.into(),
            kind: a.kind,
            description: a.description.clone(),
            partner: None,
            edits: a.edits.clone(),
        };
        // Both replace the same mixer: the second no longer applies once the first did.
        let (a, b) = (entry(&swaps[0], "E1"), entry(&swaps[1], "E2"));
        let c = apply(code, &[&a, &b], SEQ);
        assert_eq!(c.applied, vec![a.clone()]);
        assert_eq!(c.skipped.len(), 1);
        assert_eq!(c.skipped[0].0.id, "E2");
        assert_eq!(c.skipped[0].1, "no longer applies after E1");
        assert_eq!(c.code, swaps[0].code);
    }

    #[test]
    fn every_entry_reads_differently() {
        let code = crate::seeds::by_name("shift_attention").unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let m = menu(code, SEQ, &[], 100, &mut rng);
        let words: std::collections::BTreeSet<&str> =
            m.iter().map(|e| e.description.as_str()).collect();
        assert_eq!(words.len(), m.len());
    }

    #[test]
    fn a_design_with_nothing_to_edit_has_an_empty_menu() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        // Nothing to re-size, swap, wrap or bypass: no edit of any kind has a place to go.
        let bare = "def model(tokens):\n    return embedding(tokens, VOCAB, VOCAB)\n";
        assert_eq!(menu(bare, SEQ, &[], 10, &mut rng), vec![]);
    }

    #[test]
    fn code_that_does_not_parse_has_an_empty_menu() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert!(menu("def model(x:\n", SEQ, &[], 10, &mut rng).is_empty());
    }
}
