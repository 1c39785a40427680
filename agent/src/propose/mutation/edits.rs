//! The edit kinds, one function each: every place and value where the kind applies to a
//! source, as text edits with a description. The caller applies them and picks one.

use std::collections::BTreeSet;
use std::ops::Range;

use autoarch_sandbox::outline::{outline, Call, Edit, Outline};

use super::TaskKind;

/// The source an edit applies to, its outline, the task, and the crossover partner.
pub(super) struct Site<'a> {
    pub source: &'a str,
    pub outline: &'a Outline,
    pub task: TaskKind,
    pub partner: Option<&'a str>,
}

/// The ways one kind applies: the text edits, and what they do in words.
pub(super) type Options = Vec<(Vec<Edit>, String)>;

pub(super) const ACTIVATIONS: &[&str] = &["relu", "gelu", "silu", "tanh"];

const PARAM_OPS: &[&str] = &[
    "linear",
    "conv1d",
    "conv2d",
    "embedding",
    "layer_norm",
    "rms_norm",
    "batch_norm",
    "group_norm",
    "param",
];

/// Ops that move information between positions: a helper using one is a token mixer.
const MIXING_OPS: &[&str] = &[
    "scaled_dot_product_attention",
    "cumsum",
    "cummax",
    "conv1d",
    "matmul",
    "einsum",
    "softmax",
    "pad",
];

/// Token mixers for sequence tasks, generic in the width (`x.shape[-1]`).
pub(super) const MIXERS: &[(&str, &str)] = &[
    (
        "mix_softmax_attention",
        "def mix_softmax_attention(x):
    # causal multi-head softmax attention
    d = x.shape[-1]
    heads = 4 if d % 4 == 0 else 1
    q = permute(reshape(linear(x, d), [-1, SEQ_LEN, heads, d // heads]), [0, 2, 1, 3])
    k = permute(reshape(linear(x, d), [-1, SEQ_LEN, heads, d // heads]), [0, 2, 1, 3])
    v = permute(reshape(linear(x, d), [-1, SEQ_LEN, heads, d // heads]), [0, 2, 1, 3])
    o = scaled_dot_product_attention(q, k, v, causal=True)
    return linear(reshape(permute(o, [0, 2, 1, 3]), [-1, SEQ_LEN, d]), d)",
    ),
    (
        "mix_linear_attention",
        "def mix_linear_attention(x):
    # causal linear attention, phi = elu + 1
    d = x.shape[-1]
    q = elu(linear(x, d)) + 1.0
    k = elu(linear(x, d)) + 1.0
    v = linear(x, d)
    kv = cumsum(outer(k, v), axis=1)
    num = einsum(\"btd,btde->bte\", q, kv)
    den = sum(q * cumsum(k, axis=1), axis=-1, keepdim=True)
    return linear(num / (den + 1e-6), d)",
    ),
    (
        "mix_long_conv",
        "def mix_long_conv(x):
    # gated causal depthwise convolution as long as the sequence
    d = x.shape[-1]
    u = pad(permute(linear(x, d), [0, 2, 1]), [SEQ_LEN - 1, 0], axis=2)
    y = permute(conv1d(u, d, SEQ_LEN, groups=d), [0, 2, 1])
    return linear(y * sigmoid(linear(x, d)), d)",
    ),
    (
        "mix_short_conv",
        "def mix_short_conv(x):
    # causal depthwise convolution over the last 4 positions
    d = x.shape[-1]
    u = pad(permute(linear(x, d), [0, 2, 1]), [3, 0], axis=2)
    return linear(permute(conv1d(u, d, 4, groups=d), [0, 2, 1]), d)",
    ),
    (
        "mix_token_shift",
        "def mix_token_shift(x):
    # each position mixes in a projection of the previous one
    d = x.shape[-1]
    prev = pad(slice(x, 1, 0, SEQ_LEN - 1), [1, 0], axis=1)
    return linear(concat([x, prev], axis=-1), d)",
    ),
    (
        "mix_retention",
        "def mix_retention(x):
    # linear attention with a learned, input-dependent decay
    d = x.shape[-1]
    g = cumsum(sigmoid(linear(x, 1)) * -0.05, axis=1)
    keep = exp(causal_mask(SEQ_LEN))
    scores = matmul(linear(x, d) * exp(g), transpose(linear(x, d) * exp(neg(g)))) * keep
    return linear(matmul(scores, linear(x, d)) / 8.0, d)",
    ),
];

const GATE_DEF: &str = "def gated(x, y):
    # y scaled feature-wise by a sigmoid gate computed from x
    return y * sigmoid(linear(x, y.shape[-1]))";

fn is_heads(name: &str) -> bool {
    matches!(name, "HEADS" | "N_HEADS" | "NUM_HEADS" | "H")
}

fn is_depth(name: &str) -> bool {
    matches!(
        name,
        "LAYERS" | "N_LAYERS" | "NUM_LAYERS" | "DEPTH" | "BLOCKS" | "LOOPS" | "STEPS"
    )
}

fn text(source: &str, r: &Range<usize>) -> String {
    source[r.clone()].to_string()
}

/// The function a call is in, for descriptions.
fn within(c: &Call) -> &str {
    c.function.as_deref().unwrap_or("?")
}

/// The width constant heads must divide, if the code has one.
fn model_width(o: &Outline) -> Option<i64> {
    ["D", "DIM", "D_MODEL", "WIDTH", "HIDDEN"]
        .iter()
        .find_map(|n| o.constant(n))
        .map(|c| c.value)
}

fn heads_value(o: &Outline) -> i64 {
    o.constants
        .iter()
        .find(|c| is_heads(&c.name))
        .map_or(1, |c| c.value)
}

/// Insert a top-level definition before `def model`, or at the end.
pub(super) fn add_def(source: &str, o: &Outline, def: &str) -> Edit {
    match o.def("model") {
        Some(m) => Edit::insert(m.span.start, format!("{def}\n\n")),
        None => Edit::insert(source.len(), format!("\n\n{def}\n")),
    }
}

/// User-defined helpers that mix tokens (call a mixing op, directly or through helpers).
fn mixer_defs(o: &Outline) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for d in o.defs.iter().filter(|d| d.name != "model") {
        let mut seen = BTreeSet::new();
        let mut stack = vec![d.name.clone()];
        while let Some(n) = stack.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            if let Some(def) = o.def(&n) {
                if def.names.iter().any(|x| MIXING_OPS.contains(&x.as_str())) {
                    out.insert(d.name.clone());
                    break;
                }
                stack.extend(def.names.iter().filter(|x| o.def(x).is_some()).cloned());
            }
        }
    }
    out
}

/// The call at the head of an expression span, if the span is exactly one call.
fn call_at<'a>(o: &'a Outline, span: &Range<usize>) -> Option<&'a Call> {
    o.calls.iter().find(|c| c.span == *span)
}

/// Whether `name` appears as a whole identifier in `text`.
pub(super) fn mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

/// Width constants doubled or halved (8..=256, divisible by the heads).
pub(super) fn width(s: &Site<'_>) -> Options {
    let o = s.outline;
    let heads = heads_value(o);
    let mut out = Options::new();
    for c in &o.constants {
        if is_heads(&c.name) || is_depth(&c.name) || c.value < 8 {
            continue;
        }
        for new in [c.value * 2, c.value / 2] {
            let fits = (8..=256).contains(&new)
                && new % heads.max(1) == 0
                && (new > c.value || c.value % 2 == 0);
            if fits {
                out.push((
                    vec![Edit::new(c.span.clone(), new.to_string())],
                    format!("width {} {} -> {new}", c.name, c.value),
                ));
            }
        }
    }
    out
}

/// A depth constant or a `range(N)` loop one shorter or longer (1..=6).
pub(super) fn depth(s: &Site<'_>) -> Options {
    let o = s.outline;
    let mut sites: Vec<(String, i64, Range<usize>)> = o
        .constants
        .iter()
        .filter(|c| is_depth(&c.name))
        .map(|c| (c.name.clone(), c.value, c.span.clone()))
        .collect();
    for c in o.calls.iter().filter(|c| c.callee == "range") {
        if let [a] = c.args.as_slice() {
            if let Some(n) = a.int {
                sites.push(("loop".into(), n, a.value_span.clone()));
            }
        }
    }
    let mut out = Options::new();
    for (name, n, span) in sites {
        for new in [n - 1, n + 1] {
            if (1..=6).contains(&new) && (1..=8).contains(&n) {
                out.push((
                    vec![Edit::new(span.clone(), new.to_string())],
                    format!("depth ({name}) {n} -> {new}"),
                ));
            }
        }
    }
    out
}

/// Another head count that divides the width into heads of at least 4.
pub(super) fn heads(s: &Site<'_>) -> Options {
    let o = s.outline;
    let Some(width) = model_width(o) else {
        return Options::new();
    };
    let mut out = Options::new();
    for c in o.constants.iter().filter(|c| is_heads(&c.name)) {
        for new in [1, 2, 4, 8, 16] {
            if new != c.value && width % new == 0 && width / new >= 4 {
                out.push((
                    vec![Edit::new(c.span.clone(), new.to_string())],
                    format!("heads {} -> {new}", c.value),
                ));
            }
        }
    }
    out
}

/// Another odd kernel size for a convolution, its "same" padding following.
pub(super) fn kernel(s: &Site<'_>) -> Options {
    let mut out = Options::new();
    let convs = s
        .outline
        .calls
        .iter()
        .filter(|c| c.callee == "conv1d" || c.callee == "conv2d");
    for c in convs {
        let Some((k, karg)) = c.arg("kernel", 2).and_then(|a| a.int.map(|v| (v, a))) else {
            continue;
        };
        if !(1..=7).contains(&k) {
            continue;
        }
        let padding = c.arg("padding", 4);
        for new in [1i64, 3, 5, 7].into_iter().filter(|n| *n != k) {
            let mut edits = vec![Edit::new(karg.value_span.clone(), new.to_string())];
            match padding {
                Some(p) if p.int == Some(k / 2) && k % 2 == 1 => {
                    edits.push(Edit::new(p.value_span.clone(), (new / 2).to_string()))
                }
                None if k == 1 => edits.push(Edit::insert(
                    c.span.end - 1,
                    format!(", padding={}", new / 2),
                )),
                _ => continue,
            }
            out.push((edits, format!("kernel {k} -> {new} in {}", within(c))));
        }
    }
    out
}

/// One activation function for another.
pub(super) fn activation(s: &Site<'_>) -> Options {
    let mut out = Options::new();
    let calls = s
        .outline
        .calls
        .iter()
        .filter(|c| ACTIVATIONS.contains(&c.callee.as_str()) && c.args.len() == 1);
    for c in calls {
        for new in ACTIVATIONS.iter().filter(|a| **a != c.callee) {
            out.push((
                vec![Edit::new(c.callee_span.clone(), *new)],
                format!("{} -> {new} in {}", c.callee, within(c)),
            ));
        }
    }
    out
}

/// RMS norm for layer norm and back.
pub(super) fn norm(s: &Site<'_>) -> Options {
    let mut out = Options::new();
    for c in &s.outline.calls {
        let new = match c.callee.as_str() {
            "rms_norm" => "layer_norm",
            "layer_norm" => "rms_norm",
            _ => continue,
        };
        out.push((
            vec![Edit::new(c.callee_span.clone(), new)],
            format!("{} -> {new} in {}", c.callee, within(c)),
        ));
    }
    out
}

/// A token-mixer helper replaced by another mixer, at every call site at once (so a block
/// keeps one mixer). Sequence tasks only.
pub(super) fn mixer(s: &Site<'_>) -> Options {
    let (source, o) = (s.source, s.outline);
    if !s.task.sequence {
        return Options::new();
    }
    let mut out = Options::new();
    for old in &mixer_defs(o) {
        let sites: Vec<&Call> = o.calls.iter().filter(|c| &c.callee == old).collect();
        if sites.is_empty() {
            continue;
        }
        for (name, def) in MIXERS.iter().filter(|(name, _)| name != old) {
            let mut edits: Vec<Edit> = sites
                .iter()
                .map(|c| Edit::new(c.callee_span.clone(), *name))
                .collect();
            if o.def(name).is_none() {
                edits.push(add_def(source, o, def));
            }
            out.push((edits, format!("token mixer {old} -> {name}")));
        }
    }
    out
}

/// A residual removed (`h = h + f(h)` becomes `h = f(h)`), or added around a call that
/// reads the variable it assigns.
pub(super) fn residual(s: &Site<'_>) -> Options {
    let (source, o) = (s.source, s.outline);
    let mut out = Options::new();
    for a in &o.assigns {
        if let Some(e) = &a.residual {
            // `h = h + pos` with a branch that does not read `h` (a learned position table, a
            // bias) would drop the input altogether: not a residual to remove.
            if mentions(&source[e.clone()], &a.target) {
                out.push((
                    vec![Edit::new(a.value_span.clone(), text(source, e))],
                    format!("remove the residual around {}", text(source, e)),
                ));
            }
            continue;
        }
        let Some(c) = call_at(o, &a.value_span) else {
            continue;
        };
        let reads_target = c
            .args
            .iter()
            .any(|arg| mentions(&source[arg.value_span.clone()], &a.target));
        let defined_before = o.assigns.iter().any(|b| {
            b.target == a.target && b.function == a.function && b.span.end <= a.span.start
        }) || a
            .function
            .as_deref()
            .and_then(|f| o.def(f))
            .is_some_and(|d| d.params.contains(&a.target));
        // Outside sequence models a call may change the shape (channels, resolution); there
        // only shape-keeping calls get a residual.
        let keeps_shape = s.task.sequence
            || o.calls
                .iter()
                .filter(|inner| {
                    a.value_span.start <= inner.span.start && inner.span.end <= a.value_span.end
                })
                .all(|inner| {
                    ACTIVATIONS.contains(&inner.callee.as_str()) || inner.callee.ends_with("_norm")
                });
        if reads_target && defined_before && keeps_shape {
            out.push((
                vec![Edit::insert(a.value_span.start, format!("{} + ", a.target))],
                format!("add a residual around {}", text(source, &a.value_span)),
            ));
        }
    }
    out
}

/// A residual branch scaled by a sigmoid gate computed from the stream.
pub(super) fn gate(s: &Site<'_>) -> Options {
    let (source, o) = (s.source, s.outline);
    let mut out = Options::new();
    for a in &o.assigns {
        let Some(e) = &a.residual else { continue };
        if source[e.clone()].starts_with("gated(") {
            continue;
        }
        let mut edits = vec![
            Edit::insert(e.start, format!("gated({}, ", a.target)),
            Edit::insert(e.end, ")"),
        ];
        if o.def("gated").is_none() {
            edits.push(add_def(source, o, GATE_DEF));
        }
        out.push((edits, format!("gate the branch {}", text(source, e))));
    }
    out
}

/// A long skip from the model's first hidden state to its output (sequence tasks).
pub(super) fn skip(s: &Site<'_>) -> Options {
    let (source, o) = (s.source, s.outline);
    if !s.task.sequence {
        return Options::new();
    }
    let in_model = |f: &Option<String>| f.as_deref() == Some("model");
    let Some(ret) = o.returns.iter().find(|r| in_model(&r.function)) else {
        return Options::new();
    };
    let Some(first) = o
        .assigns
        .iter()
        .find(|a| in_model(&a.function) && !a.in_loop)
    else {
        return Options::new();
    };
    let t = &first.target;
    let saved = format!("{t}_in");
    if o.assigns.iter().any(|a| a.target == saved) {
        return Options::new();
    }
    let line_end = source[first.span.end..]
        .find('\n')
        .map_or(source.len(), |i| first.span.end + i);
    let ret_line = source[..ret.span.start].rfind('\n').map_or(0, |i| i + 1);
    vec![(
        vec![
            Edit::insert(line_end, format!("\n{}{saved} = {t}", first.indent)),
            Edit::insert(ret_line, format!("{}{t} = {t} + {saved}\n", ret.indent)),
        ],
        format!("long skip from the first {t} to the output"),
    )]
}

/// The weights of every loop iteration tied (`name=` on each parameter op in a loop).
pub(super) fn tie(s: &Site<'_>) -> Options {
    let o = s.outline;
    let looped: BTreeSet<&str> = o
        .calls
        .iter()
        .filter(|c| c.in_loop)
        .map(|c| c.callee.as_str())
        .collect();
    let mut edits = Vec::new();
    let mut tied = BTreeSet::new();
    for (k, c) in o.calls.iter().enumerate() {
        let Some(f) = c.function.as_deref() else {
            continue;
        };
        let in_looped_helper = f != "model" && looped.contains(f);
        let in_model_loop = f == "model" && c.in_loop;
        if PARAM_OPS.contains(&c.callee.as_str())
            && (in_looped_helper || in_model_loop)
            && c.arg("name", 99).is_none()
        {
            edits.push(Edit::insert(c.span.end - 1, format!(", name=\"{f}_{k}\"")));
            tied.insert(f.to_string());
        }
    }
    if edits.is_empty() {
        return Options::new();
    }
    let tied: Vec<String> = tied.into_iter().collect();
    vec![(
        edits,
        format!(
            "tie the weights of every loop iteration ({})",
            tied.join(", ")
        ),
    )]
}

/// Every `name=` argument removed: each call gets its own weights again.
pub(super) fn untie(s: &Site<'_>) -> Options {
    let mut edits = Vec::new();
    for c in &s.outline.calls {
        let named = c
            .args
            .iter()
            .position(|a| a.keyword.as_deref() == Some("name"));
        if let Some(i) = named.filter(|i| *i > 0) {
            edits.push(Edit::new(c.args[i - 1].span.end..c.args[i].span.end, ""));
        }
    }
    if edits.is_empty() {
        return Options::new();
    }
    vec![(edits, "untie the shared weights".to_string())]
}

/// A helper taken from the partner: one the parent also defines, replaced by the partner's; or
/// (sequence tasks) the partner's token mixer in place of the parent's.
pub(super) fn crossover(s: &Site<'_>) -> Options {
    let (source, o) = (s.source, s.outline);
    let Some(partner) = s.partner else {
        return Options::new();
    };
    let Ok(p) = outline(partner) else {
        return Options::new();
    };
    let mut out = Options::new();
    for d in p.defs.iter().filter(|d| d.name != "model") {
        let block = &partner[d.span.clone()];
        let deps = dependencies(partner, &p, o, &d.name);
        if let Some(mine) = o.def(&d.name) {
            if &source[mine.span.clone()] == block {
                continue;
            }
            let mut edits = vec![Edit::new(mine.span.clone(), block)];
            if !deps.is_empty() {
                edits.push(add_def(source, o, &deps));
            }
            out.push((edits, format!("crossover: {} from the partner", d.name)));
        } else if s.task.sequence
            && mixer_defs(&p).contains(&d.name)
            && o.binding(&d.name).is_none()
        {
            out.extend(mixer_from_partner(s, &d.name, block, &deps));
        }
    }
    out
}

/// The partner's mixer `name` (its source `block`, with the bindings it needs) in place of
/// each of the parent's mixers.
fn mixer_from_partner(s: &Site<'_>, name: &str, block: &str, deps: &str) -> Options {
    let (source, o) = (s.source, s.outline);
    let mut out = Options::new();
    for old in &mixer_defs(o) {
        let mut edits: Vec<Edit> = o
            .calls
            .iter()
            .filter(|c| &c.callee == old)
            .map(|c| Edit::new(c.callee_span.clone(), name.to_string()))
            .collect();
        if edits.is_empty() {
            continue;
        }
        let mut added = deps.to_string();
        if !added.is_empty() {
            added.push_str("\n\n");
        }
        added.push_str(block);
        edits.push(add_def(source, o, &added));
        out.push((
            edits,
            format!("crossover: the partner's mixer {name} replaces {old}"),
        ));
    }
    out
}

/// The partner's top-level bindings that `name` needs (transitively) and the parent lacks, as
/// source text in the partner's order.
fn dependencies(partner: &str, p: &Outline, own: &Outline, name: &str) -> String {
    let mut needed = BTreeSet::new();
    let mut stack: Vec<String> = p
        .binding(name)
        .map(|b| b.names.iter().cloned().collect())
        .unwrap_or_default();
    while let Some(n) = stack.pop() {
        if n == name || own.binding(&n).is_some() || !needed.insert(n.clone()) {
            continue;
        }
        match p.binding(&n) {
            Some(b) => stack.extend(b.names.iter().cloned()),
            None => {
                needed.remove(&n);
            }
        }
    }
    p.bindings
        .iter()
        .filter(|b| needed.contains(&b.name))
        .map(|b| &partner[b.span.clone()])
        .collect::<Vec<_>>()
        .join("\n\n")
}
