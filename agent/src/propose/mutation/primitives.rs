//! Edits that build mechanisms from the language's primitives rather than re-tune or swap the
//! ones a design has: the mutation set of Primer (So et al. 2021) and AutoML-Zero (Real et al.
//! 2020) over our code. *Insert* a residual branch with a token mixer where the sequence stream
//! flows; put one primitive on a path (a square, a gate, a shift in time, a short causal
//! convolution, a running mean, a norm, a projection), alone or as a residual beside the
//! value; *delete* one call (bypass it) or *trade* it for a primitive; *rewire* an operand to
//! another tensor in scope; *alter* a constant of a primitive (a shift distance, a window, an
//! expansion).
//!
//! None of these checks shapes: the tracer does, and the proposer offers only what traces.

use std::ops::Range;

use autoarch_sandbox::outline::{Call, Edit, Outline};

use super::edits::{add_def, Options, Site, MIXERS};

/// The helpers primitive edits call, each generic in the width (`x.shape[-1]`); a helper is
/// added to the code the first time an edit uses it.
const HELPERS: &[(&str, &str)] = &[
    (
        "shift",
        "def shift(x, n):
    # x moved n positions later in time: position t sees position t - n, zeros before the start
    return pad(slice(x, 1, 0, SEQ_LEN - n), [n, 0], axis=1)",
    ),
    (
        "causal_conv",
        "def causal_conv(x, k):
    # each feature convolved over its last k positions (depthwise, causal)
    d = x.shape[-1]
    u = pad(permute(x, [0, 2, 1]), [k - 1, 0], axis=2)
    return permute(conv1d(u, d, k, groups=d), [0, 2, 1])",
    ),
    (
        "running_mean",
        "def running_mean(x):
    # the mean of each feature over positions 0..t, at position t
    return cumsum(x, axis=1) / cumsum(x * 0.0 + 1.0, axis=1)",
    ),
    (
        "sigmoid_gate",
        "def sigmoid_gate(x):
    # x scaled feature-wise by a sigmoid of a projection of itself
    return x * sigmoid(linear(x, x.shape[-1]))",
    ),
    (
        "product",
        "def product(x):
    # the elementwise product of two projections of x (a bilinear term)
    return linear(x, x.shape[-1]) * linear(x, x.shape[-1])",
    ),
    (
        "project",
        "def project(x):
    # a learned linear map of x to its own width
    return linear(x, x.shape[-1])",
    ),
];

/// One primitive put on a path: the call written around an expression `E`, the helper it
/// needs, whether it moves information along the sequence (sequence tasks only), and its
/// words.
struct Primitive {
    /// `{}` stands for the expression.
    template: String,
    helper: Option<&'static str>,
    sequence: bool,
    words: String,
}

fn primitives() -> Vec<Primitive> {
    let p = |template: &str, helper: Option<&'static str>, sequence: bool, words: &str| Primitive {
        template: template.to_string(),
        helper,
        sequence,
        words: words.to_string(),
    };
    let mut out = vec![
        p("square({})", None, false, "square"),
        p("square(relu({}))", None, false, "squared ReLU"),
        p("silu({})", None, false, "SiLU"),
        p(
            "sigmoid_gate({})",
            Some("sigmoid_gate"),
            false,
            "sigmoid gate",
        ),
        p(
            "product({})",
            Some("product"),
            false,
            "product of two projections",
        ),
        p("rms_norm({})", None, false, "RMS norm"),
        p("project({})", Some("project"), false, "linear projection"),
        p(
            "running_mean({})",
            Some("running_mean"),
            true,
            "causal running mean",
        ),
    ];
    for n in 1..=3 {
        out.push(p(
            &format!("shift({{}}, {n})"),
            Some("shift"),
            true,
            &format!("shift by {n}"),
        ));
    }
    for k in 2..=4 {
        out.push(p(
            &format!("causal_conv({{}}, {k})"),
            Some("causal_conv"),
            true,
            &format!("causal depthwise conv of width {k}"),
        ));
    }
    out
}

/// The source of the helper `name`.
fn helper(name: &str) -> &'static str {
    HELPERS
        .iter()
        .chain(MIXERS)
        .find(|(n, _)| *n == name)
        .map(|(_, def)| *def)
        .expect("a known helper")
}

/// Whether `text` is a plain identifier.
fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether an expression can carry a tensor: it names a variable or calls something (a
/// lowercase identifier somewhere), and is no list, string or constant arithmetic.
fn may_be_tensor(text: &str) -> bool {
    let t = text.trim();
    if t.starts_with('[') || t.starts_with('"') || t.starts_with('\'') {
        return false;
    }
    t.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| w.starts_with(|c: char| c.is_ascii_lowercase() || c == '_'))
}

/// Source text on one line, shortened: for descriptions, which are one line each.
fn short(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= 60 {
        return flat;
    }
    let cut: String = flat.chars().take(57).collect();
    format!("{cut}...")
}

/// Where an expression sits, for descriptions: the statement it is part of (so that two sites
/// read differently) and the function.
fn place(o: &Outline, source: &str, span: &Range<usize>) -> String {
    let contains = |outer: &Range<usize>| outer.start <= span.start && span.end <= outer.end;
    let at = short(&source[span.clone()]);
    if let Some(a) = o.assigns.iter().find(|a| contains(&a.value_span)) {
        let f = a.function.as_deref().unwrap_or("?");
        return format!("`{at}` in `{}` ({f})", short(&source[a.span.clone()]));
    }
    if let Some(r) = o.returns.iter().find(|r| contains(&r.value_span)) {
        let f = r.function.as_deref().unwrap_or("?");
        return format!("`{at}` in `{}` ({f})", short(&source[r.span.clone()]));
    }
    format!("`{at}`")
}

/// The places a primitive can go: every positional argument of a call inside a function that
/// may be a tensor, except the helpers' own insides and, on sequence tasks, the token ids
/// (`model`'s input: arithmetic on ids means nothing, and a shift of the ids is a shift of
/// their embedding, which is offered).
fn operand_sites(s: &Site<'_>) -> Vec<Range<usize>> {
    let own = |c: &Call| {
        c.function
            .as_deref()
            .is_some_and(|f| HELPERS.iter().chain(MIXERS).any(|(n, _)| *n == f))
    };
    let ids: Vec<&str> = match s.outline.def("model") {
        Some(m) if s.task.sequence => m.params.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    let mut sites: Vec<Range<usize>> = s
        .outline
        .calls
        .iter()
        .filter(|c| c.function.is_some() && !own(c) && c.callee != "range")
        .flat_map(|c| c.args.iter().filter(|a| a.keyword.is_none()))
        .filter(|a| {
            let text = &s.source[a.value_span.clone()];
            may_be_tensor(text) && !ids.contains(&text)
        })
        .map(|a| a.value_span.clone())
        .collect();
    sites.sort_by_key(|r| (r.start, r.end));
    sites.dedup();
    sites
}

/// Adds `name`'s helper to `edits` unless the code defines it already.
fn with_helper(s: &Site<'_>, edits: &mut Vec<Edit>, name: Option<&'static str>) {
    if let Some(name) = name {
        if s.outline.def(name).is_none() {
            edits.push(add_def(s.source, s.outline, helper(name)));
        }
    }
}

/// One primitive on a path: `E` becomes `f(E)`; where `E` is a variable, also `(E + f(E))`, the
/// primitive as a residual beside it.
pub(super) fn primitive(s: &Site<'_>) -> Options {
    let mut out = Options::new();
    let kinds: Vec<Primitive> = primitives()
        .into_iter()
        .filter(|p| s.task.sequence || !p.sequence)
        .collect();
    for span in operand_sites(s) {
        let e = &s.source[span.clone()];
        let at = place(s.outline, s.source, &span);
        for p in &kinds {
            let wrapped = p.template.replace("{}", e);
            let mut edits = vec![Edit::new(span.clone(), wrapped.clone())];
            with_helper(s, &mut edits, p.helper);
            out.push((edits, format!("{} on {at}", p.words)));
            if is_identifier(e) {
                let mut edits = vec![Edit::new(span.clone(), format!("({e} + {wrapped})"))];
                with_helper(s, &mut edits, p.helper);
                out.push((edits, format!("{} beside {at}, as a residual", p.words)));
            }
        }
    }
    out
}

/// A residual branch `h = h + f(rms_norm(h))` with a token mixer `f`, after a statement that
/// updates the sequence stream `h` (a variable that some statement of the same function
/// updates as `h = h + …`). Sequence tasks only.
pub(super) fn insert(s: &Site<'_>) -> Options {
    let (source, o) = (s.source, s.outline);
    if !s.task.sequence {
        return Options::new();
    }
    let mut out = Options::new();
    let streams = |f: &Option<String>, t: &str| {
        o.assigns
            .iter()
            .any(|b| b.residual.is_some() && &b.function == f && b.target == t)
    };
    for a in o.assigns.iter().filter(|a| streams(&a.function, &a.target)) {
        let line_end = source[a.span.end..]
            .find('\n')
            .map_or(source.len(), |i| a.span.end + i);
        let f = a.function.as_deref().unwrap_or("?");
        for (name, _) in MIXERS {
            let t = &a.target;
            let mut edits = vec![Edit::insert(
                line_end,
                format!("\n{}{t} = {t} + {name}(rms_norm({t}))", a.indent),
            )];
            with_helper(s, &mut edits, Some(name));
            let after = short(&source[a.span.clone()]);
            out.push((
                edits,
                format!("insert a {name} branch after `{after}` ({f})"),
            ));
        }
    }
    out
}

/// The calls an edit can take out: inside a function, with a first operand that may be a
/// tensor; each with that operand's text, and whether it is one term (a name or a call).
fn removable<'a>(s: &Site<'a>) -> Vec<(&'a Call, &'a str, bool)> {
    let mut out = Vec::new();
    for c in s.outline.calls.iter().filter(|c| c.function.is_some()) {
        if matches!(c.callee.as_str(), "range" | "embedding" | "param") {
            continue;
        }
        let Some(first) = c.args.first().filter(|a| a.keyword.is_none()) else {
            continue;
        };
        let e = &s.source[first.value_span.clone()];
        if !may_be_tensor(e) {
            continue;
        }
        let one_term = is_identifier(e)
            || s.outline
                .calls
                .iter()
                .any(|inner| inner.span == first.value_span);
        out.push((c, e, one_term));
    }
    out
}

/// One call bypassed: `f(E, …)` becomes `E`, where `E` may be a tensor.
pub(super) fn delete(s: &Site<'_>) -> Options {
    removable(s)
        .into_iter()
        .map(|(c, e, one_term)| {
            // An operand that is not one term keeps its parentheses: `f(a + b) * c` bypassed
            // is `(a + b) * c`.
            let operand = if one_term {
                e.to_string()
            } else {
                format!("({e})")
            };
            (
                vec![Edit::new(c.span.clone(), operand)],
                format!(
                    "bypass {} on {}",
                    c.callee,
                    place(s.outline, s.source, &c.span)
                ),
            )
        })
        .collect()
}

/// One call traded for a primitive at the same place: `f(E)` becomes `p(E)` (Primer's
/// delete-and-insert; `gelu` traded for a squared ReLU is its best-known find). Calls of one
/// operand only, so that nothing else they read is dropped.
pub(super) fn trade(s: &Site<'_>) -> Options {
    let kinds: Vec<Primitive> = primitives()
        .into_iter()
        .filter(|p| s.task.sequence || !p.sequence)
        .collect();
    let mut out = Options::new();
    for (c, e, _) in removable(s) {
        if c.args.len() != 1 {
            continue;
        }
        let at = place(s.outline, s.source, &c.span);
        for p in &kinds {
            let traded = p.template.replace("{}", e);
            if s.source[c.span.clone()] == traded {
                continue;
            }
            let mut edits = vec![Edit::new(c.span.clone(), traded)];
            with_helper(s, &mut edits, p.helper);
            out.push((
                edits,
                format!("{} traded for {} on {at}", c.callee, p.words),
            ));
        }
    }
    out
}

/// One operand rewired: a variable read by a call replaced by another variable of the same
/// function, assigned before the call or a parameter (the move that makes gates and new token
/// mixing out of what a design computes already).
pub(super) fn rewire(s: &Site<'_>) -> Options {
    let (source, o) = (s.source, s.outline);
    let mut out = Options::new();
    for c in o.calls.iter().filter(|c| c.function.is_some()) {
        let f = c.function.as_deref().expect("filtered");
        let mut in_scope: Vec<&str> = o
            .def(f)
            .map(|d| d.params.iter().map(String::as_str).collect())
            .unwrap_or_default();
        for a in o.assigns.iter() {
            if a.function.as_deref() == Some(f)
                && a.span.end <= c.span.start
                && !in_scope.contains(&a.target.as_str())
            {
                in_scope.push(&a.target);
            }
        }
        for arg in c.args.iter().filter(|a| a.keyword.is_none()) {
            let v = &source[arg.value_span.clone()];
            if !is_identifier(v) || !in_scope.contains(&v) {
                continue;
            }
            for w in in_scope.iter().filter(|w| **w != v) {
                out.push((
                    vec![Edit::new(arg.value_span.clone(), *w)],
                    format!(
                        "rewire {} to read {w} instead of {v} in {}",
                        c.callee,
                        place(o, source, &c.span)
                    ),
                ));
            }
        }
    }
    out
}

/// A constant of a primitive altered: a shift distance (1..=3) or a causal window (2..=4)
/// one step either way, or an expansion factor (`4 * D`) doubled or halved (1..=8).
pub(super) fn alter(s: &Site<'_>) -> Options {
    let (source, o) = (s.source, s.outline);
    let mut out = Options::new();
    for c in &o.calls {
        let range = match c.callee.as_str() {
            "shift" => Some(1..=3),
            "causal_conv" => Some(2..=4),
            _ => None,
        };
        let arg = c.args.get(1).and_then(|a| a.int.map(|n| (a, n)));
        if let (Some(range), Some((arg, n))) = (range, arg) {
            for new in [n - 1, n + 1].into_iter().filter(|v| range.contains(v)) {
                out.push((
                    vec![Edit::new(arg.value_span.clone(), new.to_string())],
                    format!("{} {n} -> {new} on {}", c.callee, place(o, source, &c.span)),
                ));
            }
        }
        if c.callee != "linear" {
            continue;
        }
        let Some(width) = c.arg("out", 1) else {
            continue;
        };
        let text = &source[width.value_span.clone()];
        let Some((factor, rest)) = text.split_once(" * ") else {
            continue;
        };
        let Ok(k) = factor.trim().parse::<i64>() else {
            continue;
        };
        for new in [k * 2, k / 2]
            .into_iter()
            .filter(|v| (1..=8).contains(v) && *v != k)
        {
            out.push((
                vec![Edit::new(
                    width.value_span.clone(),
                    format!("{new} * {rest}"),
                )],
                format!("expansion {k} -> {new} in {}", place(o, source, &c.span)),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use autoarch_sandbox::outline::outline;
    use autoarch_sandbox::{trace, TaskShape, TraceConfig, TraceOutcome};

    use super::super::{candidates, Applied, EditKind, TaskKind};

    fn traces(code: &str, task: &str) -> bool {
        let config = TraceConfig::new(TaskShape::by_name(task).unwrap());
        matches!(trace(code, &config), TraceOutcome::Ok(_))
    }

    fn options(seed: &str, kind: EditKind, sequence: bool) -> Vec<Applied> {
        let code = crate::seeds::by_name(seed).unwrap();
        let o = outline(code).unwrap();
        candidates(kind, code, &o, TaskKind { sequence }, None)
    }

    #[test]
    fn each_primitive_kind_applies_to_the_transformer_traces_and_says_what_it_did() {
        for kind in [
            EditKind::Insert,
            EditKind::Primitive,
            EditKind::Delete,
            EditKind::Rewire,
            EditKind::Alter,
        ] {
            let all = options("transformer", kind, true);
            assert!(!all.is_empty(), "{kind:?} does not apply");
            let traced = all.iter().filter(|a| traces(&a.code, "mqar")).count();
            assert!(traced > 0, "no {kind:?} edit traces");
            for a in &all {
                assert!(!a.description.is_empty() && !a.description.contains('\n'));
            }
        }
    }

    #[test]
    fn a_shift_of_the_attention_input_is_one_primitive_edit_away() {
        let all = options("transformer", EditKind::Primitive, true);
        let shift = all
            .iter()
            .find(|a| {
                a.description == "shift by 1 on `h` in `q = split_heads(linear(h, D))` (attention)"
            })
            .unwrap_or_else(|| {
                let d: Vec<&str> = all.iter().map(|a| a.description.as_str()).collect();
                panic!("{d:#?}")
            });
        assert!(shift
            .code
            .contains("q = split_heads(linear(shift(h, 1), D))"));
        assert!(shift
            .code
            .contains("def shift(x, n):\n    # x moved n positions"));
        assert!(traces(&shift.code, "mqar"));
        let beside = all
            .iter()
            .find(|a| {
                a.description
                    == "shift by 2 beside `h` in `k = split_heads(linear(h, D))` (attention), as a residual"
            })
            .unwrap();
        assert!(beside
            .code
            .contains("k = split_heads(linear((h + shift(h, 2)), D))"));
        assert!(traces(&beside.code, "mqar"));
    }

    #[test]
    fn inserting_a_token_shift_branch_gives_the_transformer_the_shift_seeds_mechanism() {
        let all = options("transformer", EditKind::Insert, true);
        let branch = all
            .iter()
            .find(|a| {
                a.description
                    == "insert a mix_token_shift branch after `h = h + attention(rms_norm(h))` (model)"
            })
            .unwrap();
        assert!(branch.code.contains(
            "        h = h + attention(rms_norm(h))\n        h = h + mix_token_shift(rms_norm(h))\n"
        ));
        assert!(branch.code.contains("def mix_token_shift(x):"));
        assert!(traces(&branch.code, "mqar"));
        // Every mixer can be inserted after every update of the stream, and all of them trace.
        assert!(all.len() >= 12, "{}", all.len());
        assert!(all.iter().all(|a| traces(&a.code, "mqar")));
    }

    #[test]
    fn image_designs_get_no_primitive_that_moves_along_a_sequence() {
        let all = options("cnn", EditKind::Primitive, false);
        assert!(!all.is_empty());
        assert!(all.iter().all(|a| !a.code.contains("def shift(")
            && !a.code.contains("def causal_conv(")
            && !a.code.contains("def running_mean(")));
        assert!(all.iter().any(|a| traces(&a.code, "digits")));
        assert!(options("cnn", EditKind::Insert, false).is_empty());
    }

    #[test]
    fn alter_steps_a_shift_distance_and_an_expansion_within_their_ranges() {
        let code = crate::seeds::by_name("transformer").unwrap();
        let shifted = code.replace("linear(h, D))\n    k", "linear(shift(h, 3), D))\n    k");
        let shifted = format!(
            "{shifted}\ndef shift(x, n):\n    return pad(slice(x, 1, 0, SEQ_LEN - n), [n, 0], axis=1)\n"
        );
        let o = outline(&shifted).unwrap();
        let all = candidates(
            EditKind::Alter,
            &shifted,
            &o,
            TaskKind { sequence: true },
            None,
        );
        let words: Vec<&str> = all.iter().map(|a| a.description.as_str()).collect();
        assert!(
            words.contains(
                &"shift 3 -> 2 on `shift(h, 3)` in `q = split_heads(linear(shift(h, 3), D))` (attention)"
            ),
            "{words:#?}"
        );
        assert!(!words.iter().any(|w| w.starts_with("shift 3 -> 4")));
        let mlp = "`linear(h, 4 * D)` in `return linear(gelu(linear(h, 4 * D)), D)` (mlp)";
        assert!(words.contains(&format!("expansion 4 -> 8 in {mlp}").as_str()));
        assert!(words.contains(&format!("expansion 4 -> 2 in {mlp}").as_str()));
        assert!(all.iter().all(|a| traces(&a.code, "mqar")), "{words:#?}");
    }

    #[test]
    fn a_bypass_keeps_the_operands_grouping_and_sites_read_apart() {
        let code = "D = 16\n\ndef model(tokens):\n    h = embedding(tokens, VOCAB, D)\n    g = h\n    h = silu(h + g) * h\n    return linear(rms_norm(h), VOCAB)\n";
        let o = outline(code).unwrap();
        let all = candidates(
            EditKind::Delete,
            code,
            &o,
            TaskKind { sequence: true },
            None,
        );
        let silu = all
            .iter()
            .find(|a| a.description.starts_with("bypass silu"))
            .unwrap();
        assert!(silu.code.contains("h = (h + g) * h\n"), "{}", silu.code);
        let primitive = options("transformer", EditKind::Primitive, true);
        let words: Vec<&str> = primitive.iter().map(|a| a.description.as_str()).collect();
        let unique: std::collections::BTreeSet<&&str> = words.iter().collect();
        assert_eq!(unique.len(), words.len(), "two sites read alike");
    }

    #[test]
    fn trading_the_mlps_gelu_for_a_squared_relu_is_one_edit() {
        let all = options("transformer", EditKind::Trade, true);
        let primer = all
            .iter()
            .find(|a| a.description.starts_with("gelu traded for squared ReLU on"))
            .unwrap();
        assert!(primer
            .code
            .contains("return linear(square(relu(linear(h, 4 * D))), D)"));
        assert!(traces(&primer.code, "mqar"));
        // One-operand calls only: `linear(h, D)` is never traded away.
        assert!(all
            .iter()
            .all(|a| !a.description.starts_with("linear traded")));
        assert!(all.iter().filter(|a| traces(&a.code, "mqar")).count() * 2 > all.len());
    }
}
