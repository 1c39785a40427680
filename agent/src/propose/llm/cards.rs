//! The cards a prompt shows: the task, the limits, a design (the parent, an inspiration).

use super::*;

pub fn task_card(task: &TaskShape) -> TaskCard {
    TaskCard {
        name: task.name.clone(),
        description: task.description.clone(),
        input: task.input.to_string(),
        input_dtype: task.input_dtype.to_string(),
        output: task.output.to_string(),
        constants: task
            .constants
            .iter()
            .map(|(k, v)| Constant {
                name: k.clone(),
                value: *v,
            })
            .collect(),
    }
}

pub(super) fn limits_card(l: &Limits) -> LimitsCard {
    LimitsCard {
        max_params: l.max_params,
        max_flops: l.max_flops,
        max_nodes: l.max_nodes,
    }
}

pub fn design_card(s: &Shown, reason: String) -> DesignCard {
    let c = &s.candidate;
    DesignCard {
        id: c.id,
        name: c.name.clone(),
        code: c.code.clone(),
        motivation: c.motivation.clone(),
        status: s.summary.status.as_str().to_string(),
        score: s.summary.score().map(|v| (v * 1e4).round() / 1e4),
        metrics: s
            .summary
            .metrics
            .iter()
            .map(|(k, v)| Metric {
                name: k.clone(),
                value: (v * 1e4).round() / 1e4,
            })
            .collect(),
        curve: s.curve.clone(),
        params: c.stats.params,
        flops: c.stats.flops,
        parents: c.parents.clone(),
        reason,
    }
}

/// The inspirations as prompts show them.
pub(super) fn inspiration_cards(ctx: &ProposalContext) -> Vec<DesignCard> {
    ctx.inspirations
        .iter()
        .map(|s| design_card(s, String::new()))
        .collect()
}

/// A candidate's name from the model's, or from its parent's when the model gave none.
pub(super) fn name_of(given: &str, fallback: &str) -> String {
    let n = given.trim();
    if n.is_empty() {
        let base = fallback.trim_end_matches(" (llm)");
        format!("{base} (llm)")
    } else {
        n.chars().take(80).collect()
    }
}
