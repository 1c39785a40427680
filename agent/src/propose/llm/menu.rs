//! `edits` answers: the model chooses structural edits of the parent from a numbered menu
//! (the mutation engine's edits that apply to it) under a JSON schema whose ids are an enum of
//! the menu's, and autoarch applies them. What the model cannot get wrong, it is not asked for.

use serde_json::{json, Value};

use super::answer::MenuAnswer;
use crate::propose::mutation::menu::MenuEntry;
use crate::propose::Unusable;

/// The most entries a menu shows: enough for every kind, few enough for a small context.
pub const MENU_SIZE: usize = 24;

/// The answer's JSON schema: a name, a motivation and 1..=`max_edits` ids of the menu.
pub fn schema(menu: &[MenuEntry], max_edits: u32) -> Value {
    let ids: Vec<&str> = menu.iter().map(|e| e.id.as_str()).collect();
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 80},
            "motivation": {"type": "string", "maxLength": 400},
            "edits": {
                "type": "array",
                "items": {"type": "string", "enum": ids},
                "minItems": 1,
                "maxItems": max_edits.max(1)
            }
        },
        "required": ["name", "motivation", "edits"]
    })
}

/// The menu entries an answer chose, in order, each once; at most `max_edits` (the rest are
/// named in the second value). An id that is not on the menu, or no id at all, makes the
/// answer unusable.
pub fn resolve<'m>(
    answer: &MenuAnswer,
    menu: &'m [MenuEntry],
    max_edits: u32,
) -> Result<(Vec<&'m MenuEntry>, Vec<String>), Unusable> {
    let mut chosen: Vec<&MenuEntry> = Vec::new();
    for id in &answer.ids {
        let Some(e) = menu.iter().find(|e| &e.id == id) else {
            let last = menu.last().map_or("-", |e| e.id.as_str());
            return Err(Unusable {
                headline: "the answer chose an edit that is not on the menu".into(),
                detail: format!("{id} is not on the menu (E1 to {last})"),
            });
        };
        if !chosen.iter().any(|c| c.id == e.id) {
            chosen.push(e);
        }
    }
    if chosen.is_empty() {
        return Err(Unusable {
            headline: "the answer chose no edit".into(),
            detail: String::new(),
        });
    }
    let max = max_edits.max(1) as usize;
    let dropped = chosen
        .split_off(chosen.len().min(max))
        .into_iter()
        .map(|e| e.id.clone())
        .collect();
    Ok((chosen, dropped))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::propose::mutation::menu::menu;
    use crate::propose::mutation::TaskKind;

    fn sample_menu() -> Vec<MenuEntry> {
        let code = crate::seeds::by_name("transformer").unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        menu(code, TaskKind { sequence: true }, &[], 6, &mut rng)
    }

    fn answer(ids: &[&str]) -> MenuAnswer {
        MenuAnswer {
            name: "n".into(),
            motivation: "m".into(),
            ids: ids.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_schema_enumerates_the_menu_ids_and_bounds_the_count() {
        let m = sample_menu();
        let s = schema(&m, 2);
        let ids = s["properties"]["edits"]["items"]["enum"]
            .as_array()
            .unwrap();
        assert_eq!(ids.len(), 6);
        assert_eq!(ids[0], "E1");
        assert_eq!(s["properties"]["edits"]["maxItems"], 2);
    }

    #[test]
    fn ids_resolve_in_order_once_and_capped_and_a_stranger_is_refused() {
        let m = sample_menu();
        let (chosen, dropped) = resolve(&answer(&["E3", "E1", "E3", "E5"]), &m, 2).unwrap();
        let ids: Vec<&str> = chosen.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, vec!["E3", "E1"]);
        assert_eq!(dropped, vec!["E5"]);
        let e = resolve(&answer(&["E2", "E99"]), &m, 2).unwrap_err();
        assert_eq!(
            e.headline,
            "the answer chose an edit that is not on the menu"
        );
        assert_eq!(e.detail, "E99 is not on the menu (E1 to E6)");
        let none = resolve(&answer(&[]), &m, 2).unwrap_err();
        assert_eq!(none.headline, "the answer chose no edit");
    }
}
