//! The mutation proposer: structural edits of a parent's source that keep it valid code —
//! widths, depth, heads, kernel sizes; activation, norm and token-mixer swaps; residuals, gates
//! and skips; weight tying; crossover of blocks from an inspiration.
//!
//! Edits are made on the source text (located by the sandbox's outline), so the author's
//! helpers, names and comments survive and every candidate's code stays readable.

use std::collections::BTreeSet;

use async_trait::async_trait;
use autoarch_archive::{ProposerKind, Tokens};
use autoarch_sandbox::outline::{apply_edits, outline, Call, Edit, Outline};
use autoarch_sandbox::{DType, TaskShape};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::proposer::{Proposal, ProposalContext, ProposeError, Proposer};

/// The kinds of edit, in the order `autoarch` documents them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EditKind {
    Width,
    Depth,
    Heads,
    Kernel,
    Activation,
    Norm,
    Mixer,
    Residual,
    Gate,
    Skip,
    Tie,
    Untie,
    Crossover,
}

pub const EDIT_KINDS: &[EditKind] = &[
    EditKind::Width,
    EditKind::Depth,
    EditKind::Heads,
    EditKind::Kernel,
    EditKind::Activation,
    EditKind::Norm,
    EditKind::Mixer,
    EditKind::Residual,
    EditKind::Gate,
    EditKind::Skip,
    EditKind::Tie,
    EditKind::Untie,
    EditKind::Crossover,
];

const ACTIVATIONS: &[&str] = &["relu", "gelu", "silu", "tanh"];
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
    "conv1d",
    "matmul",
    "einsum",
    "softmax",
    "pad",
];

/// Token mixers for sequence tasks, generic in the width (`x.shape[-1]`).
const MIXERS: &[(&str, &str)] = &[
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

/// One edit applied to a source: the new source and what was done, in words.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    pub kind: EditKind,
    pub code: String,
    pub description: String,
}

/// The facts about the task the edits need.
#[derive(Clone, Copy, Debug)]
pub struct TaskKind {
    /// Token sequences (int input with a SEQ_LEN): token mixers and long skips apply.
    pub sequence: bool,
}

impl TaskKind {
    pub fn of(task: &TaskShape) -> TaskKind {
        TaskKind {
            sequence: task.input_dtype == DType::Int
                && task.constants.iter().any(|(k, _)| k == "SEQ_LEN"),
        }
    }
}

fn is_heads(name: &str) -> bool {
    matches!(name, "HEADS" | "N_HEADS" | "NUM_HEADS" | "H")
}

fn is_depth(name: &str) -> bool {
    matches!(
        name,
        "LAYERS" | "N_LAYERS" | "NUM_LAYERS" | "DEPTH" | "BLOCKS" | "LOOPS" | "STEPS"
    )
}

fn text(source: &str, r: &std::ops::Range<usize>) -> String {
    source[r.clone()].to_string()
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
fn add_def(source: &str, o: &Outline, def: &str) -> Edit {
    match o.def("model") {
        Some(m) => Edit::insert(m.span.start, format!("{def}\n\n")),
        None => Edit::insert(source.len(), format!("\n\n{def}\n")),
    }
}

/// User-defined helpers that mix tokens (call a mixing op, directly or through helpers).
fn mixer_defs(o: &Outline) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for d in &o.defs {
        if d.name == "model" {
            continue;
        }
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
fn call_at<'a>(o: &'a Outline, span: &std::ops::Range<usize>) -> Option<&'a Call> {
    o.calls.iter().find(|c| c.span == *span)
}

/// Every edit of `kind` that applies to `source`; the caller picks one.
pub fn candidates(
    kind: EditKind,
    source: &str,
    o: &Outline,
    task: TaskKind,
    partner: Option<&str>,
) -> Vec<Applied> {
    let mut out = Vec::new();
    let mut push = |edits: Vec<Edit>, description: String| {
        if let Ok(code) = apply_edits(source, &edits) {
            if code != source {
                out.push(Applied {
                    kind,
                    code,
                    description,
                });
            }
        }
    };
    match kind {
        EditKind::Width => {
            let heads = heads_value(o);
            for c in &o.constants {
                if is_heads(&c.name) || is_depth(&c.name) || c.value < 8 {
                    continue;
                }
                for new in [c.value * 2, c.value / 2] {
                    let fits = (8..=256).contains(&new)
                        && new % heads.max(1) == 0
                        && (new > c.value || c.value % 2 == 0);
                    if fits {
                        push(
                            vec![Edit::new(c.span.clone(), new.to_string())],
                            format!("width {} {} -> {new}", c.name, c.value),
                        );
                    }
                }
            }
        }
        EditKind::Depth => {
            let mut sites: Vec<(String, i64, std::ops::Range<usize>)> = o
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
            for (name, n, span) in sites {
                for new in [n - 1, n + 1] {
                    if (1..=6).contains(&new) && (1..=8).contains(&n) {
                        push(
                            vec![Edit::new(span.clone(), new.to_string())],
                            format!("depth ({name}) {n} -> {new}"),
                        );
                    }
                }
            }
        }
        EditKind::Heads => {
            if let Some(width) = model_width(o) {
                for c in o.constants.iter().filter(|c| is_heads(&c.name)) {
                    for new in [1, 2, 4, 8, 16] {
                        if new != c.value && width % new == 0 && width / new >= 4 {
                            push(
                                vec![Edit::new(c.span.clone(), new.to_string())],
                                format!("heads {} -> {new}", c.value),
                            );
                        }
                    }
                }
            }
        }
        EditKind::Kernel => {
            for c in o
                .calls
                .iter()
                .filter(|c| c.callee == "conv1d" || c.callee == "conv2d")
            {
                let Some(k) = c.arg("kernel", 2).and_then(|a| a.int.map(|v| (v, a))) else {
                    continue;
                };
                let (k, karg) = k;
                if !(1..=7).contains(&k) {
                    continue;
                }
                let padding = c.arg("padding", 4);
                for new in [1i64, 3, 5, 7] {
                    if new == k {
                        continue;
                    }
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
                    push(
                        edits,
                        format!(
                            "kernel {k} -> {new} in {}",
                            c.function.as_deref().unwrap_or("?")
                        ),
                    );
                }
            }
        }
        EditKind::Activation => {
            for c in o
                .calls
                .iter()
                .filter(|c| ACTIVATIONS.contains(&c.callee.as_str()) && c.args.len() == 1)
            {
                for new in ACTIVATIONS.iter().filter(|a| **a != c.callee) {
                    push(
                        vec![Edit::new(c.callee_span.clone(), *new)],
                        format!(
                            "{} -> {new} in {}",
                            c.callee,
                            c.function.as_deref().unwrap_or("?")
                        ),
                    );
                }
            }
        }
        EditKind::Norm => {
            for c in &o.calls {
                let new = match c.callee.as_str() {
                    "rms_norm" => "layer_norm",
                    "layer_norm" => "rms_norm",
                    _ => continue,
                };
                push(
                    vec![Edit::new(c.callee_span.clone(), new)],
                    format!(
                        "{} -> {new} in {}",
                        c.callee,
                        c.function.as_deref().unwrap_or("?")
                    ),
                );
            }
        }
        EditKind::Mixer => {
            if !task.sequence {
                return out;
            }
            let mixers = mixer_defs(o);
            // Every call site of one mixer helper at once, so a block keeps one mixer.
            for old in &mixers {
                let sites: Vec<&Call> = o.calls.iter().filter(|c| &c.callee == old).collect();
                if sites.is_empty() {
                    continue;
                }
                for (name, def) in MIXERS {
                    if name == old {
                        continue;
                    }
                    let mut edits: Vec<Edit> = sites
                        .iter()
                        .map(|c| Edit::new(c.callee_span.clone(), *name))
                        .collect();
                    if o.def(name).is_none() {
                        edits.push(add_def(source, o, def));
                    }
                    push(edits, format!("token mixer {old} -> {name}"));
                }
            }
        }
        EditKind::Residual => {
            for a in &o.assigns {
                if let Some(e) = &a.residual {
                    // `h = h + pos` with a branch that does not read `h` (a learned position
                    // table, a bias) would drop the input altogether: not a residual to remove.
                    if !outline_mentions(&source[e.clone()], &a.target) {
                        continue;
                    }
                    push(
                        vec![Edit::new(a.value_span.clone(), text(source, e))],
                        format!("remove the residual around {}", text(source, e)),
                    );
                } else if let Some(c) = call_at(o, &a.value_span) {
                    let reads_target = c
                        .args
                        .iter()
                        .any(|arg| outline_mentions(&source[arg.value_span.clone()], &a.target));
                    let defined_before = o.assigns.iter().any(|b| {
                        b.target == a.target
                            && b.function == a.function
                            && b.span.end <= a.span.start
                    }) || a
                        .function
                        .as_deref()
                        .and_then(|f| o.def(f))
                        .is_some_and(|d| d.params.contains(&a.target));
                    // Outside sequence models a call may change the shape (channels,
                    // resolution); there only shape-keeping calls get a residual.
                    let keeps_shape = task.sequence
                        || o.calls
                            .iter()
                            .filter(|inner| {
                                a.value_span.start <= inner.span.start
                                    && inner.span.end <= a.value_span.end
                            })
                            .all(|inner| {
                                ACTIVATIONS.contains(&inner.callee.as_str())
                                    || inner.callee.ends_with("_norm")
                            });
                    if reads_target && defined_before && keeps_shape {
                        push(
                            vec![Edit::insert(a.value_span.start, format!("{} + ", a.target))],
                            format!("add a residual around {}", text(source, &a.value_span)),
                        );
                    }
                }
            }
        }
        EditKind::Gate => {
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
                push(edits, format!("gate the branch {}", text(source, e)));
            }
        }
        EditKind::Skip => {
            if !task.sequence {
                return out;
            }
            let Some(ret) = o
                .returns
                .iter()
                .find(|r| r.function.as_deref() == Some("model"))
            else {
                return out;
            };
            let Some(first) = o
                .assigns
                .iter()
                .find(|a| a.function.as_deref() == Some("model") && !a.in_loop)
            else {
                return out;
            };
            let t = &first.target;
            let saved = format!("{t}_in");
            if o.assigns.iter().any(|a| a.target == saved) {
                return out;
            }
            let line_end = source[first.span.end..]
                .find('\n')
                .map_or(source.len(), |i| first.span.end + i);
            let ret_line = source[..ret.span.start].rfind('\n').map_or(0, |i| i + 1);
            push(
                vec![
                    Edit::insert(line_end, format!("\n{}{saved} = {t}", first.indent)),
                    Edit::insert(ret_line, format!("{}{t} = {t} + {saved}\n", ret.indent)),
                ],
                format!("long skip from the first {t} to the output"),
            );
        }
        EditKind::Tie => {
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
            if !edits.is_empty() {
                push(
                    edits,
                    format!(
                        "tie the weights of every loop iteration ({})",
                        tied.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
        EditKind::Untie => {
            let mut edits = Vec::new();
            for c in &o.calls {
                let Some(i) = c
                    .args
                    .iter()
                    .position(|a| a.keyword.as_deref() == Some("name"))
                else {
                    continue;
                };
                if i == 0 {
                    continue;
                }
                edits.push(Edit::new(c.args[i - 1].span.end..c.args[i].span.end, ""));
            }
            if !edits.is_empty() {
                push(edits, "untie the shared weights".to_string());
            }
        }
        EditKind::Crossover => {
            let Some(partner) = partner else { return out };
            let Ok(p) = outline(partner) else { return out };
            let own_mixers = mixer_defs(o);
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
                    push(edits, format!("crossover: {} from the partner", d.name));
                } else if task.sequence
                    && mixer_defs(&p).contains(&d.name)
                    && o.binding(&d.name).is_none()
                {
                    for old in &own_mixers {
                        let sites: Vec<Edit> = o
                            .calls
                            .iter()
                            .filter(|c| &c.callee == old)
                            .map(|c| Edit::new(c.callee_span.clone(), d.name.clone()))
                            .collect();
                        if sites.is_empty() {
                            continue;
                        }
                        let mut edits = sites;
                        let mut added = deps.clone();
                        if !added.is_empty() {
                            added.push_str("\n\n");
                        }
                        added.push_str(block);
                        edits.push(add_def(source, o, &added));
                        push(
                            edits,
                            format!("crossover: the partner's mixer {} replaces {old}", d.name),
                        );
                    }
                }
            }
        }
    }
    out
}

/// Whether `name` appears as a whole identifier in `text`.
fn outline_mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
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

/// Applies one random edit that fits; `None` when no edit of any kind applies.
pub fn mutate_once(
    source: &str,
    task: TaskKind,
    partner: Option<&str>,
    rng: &mut impl Rng,
) -> Option<Applied> {
    let o = outline(source).ok()?;
    let mut kinds: Vec<EditKind> = EDIT_KINDS.to_vec();
    // Try kinds in random order; within a kind, a random site and value.
    while !kinds.is_empty() {
        let k = kinds.remove(rng.random_range(0..kinds.len()));
        let options = candidates(k, source, &o, task, partner);
        if let Some(pick) = options.choose(rng) {
            return Some(pick.clone());
        }
    }
    None
}

/// Rewrites the header comment: the new name, and the edit history (the last five edits).
fn rewrite_header(code: &str, name: &str, edits: &[String]) -> String {
    let mut header: Vec<String> = Vec::new();
    let mut rest = code;
    while let Some(line) = rest.lines().next() {
        if !line.trim_start().starts_with('#') {
            break;
        }
        header.push(line.to_string());
        rest = &rest[line.len()..];
        rest = rest.strip_prefix('\n').unwrap_or(rest);
    }
    let mut history: Vec<String> = header
        .iter()
        .filter_map(|l| l.strip_prefix("# edit: ").map(str::to_string))
        .collect();
    history.extend(edits.iter().cloned());
    let skip = history.len().saturating_sub(5);
    let mut out = vec![format!("# name: {name}")];
    out.extend(
        header
            .iter()
            .filter(|l| !(l.starts_with("# name:") || l.starts_with("# edit: ")))
            .cloned(),
    );
    out.extend(history[skip..].iter().map(|e| format!("# edit: {e}")));
    format!("{}\n{rest}", out.join("\n"))
}

/// The base of a candidate name: without the edit suffixes.
fn base_name(name: &str) -> &str {
    name.split(" · ").next().unwrap_or(name).trim()
}

/// A mutated design.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutated {
    pub name: String,
    pub description: String,
    pub code: String,
    pub kinds: Vec<EditKind>,
}

/// Applies 1..=`max_edits` random edits to `parent` (crossover may take blocks from `partner`).
pub fn mutate(
    parent_name: &str,
    parent: &str,
    task: TaskKind,
    partner: Option<&str>,
    max_edits: u32,
    rng: &mut impl Rng,
) -> Option<Mutated> {
    let n = rng.random_range(1..=max_edits.max(1));
    let mut code = parent.to_string();
    let mut applied = Vec::new();
    for _ in 0..n {
        match mutate_once(&code, task, partner, rng) {
            Some(a) => {
                code = a.code.clone();
                applied.push(a);
            }
            None => break,
        }
    }
    if applied.is_empty() {
        return None;
    }
    let descriptions: Vec<String> = applied.iter().map(|a| a.description.clone()).collect();
    let kinds: Vec<EditKind> = applied.iter().map(|a| a.kind).collect();
    let name = format!(
        "{} · {}",
        base_name(parent_name),
        kinds
            .iter()
            .map(|k| format!("{k:?}").to_lowercase())
            .collect::<Vec<_>>()
            .join("+")
    );
    Some(Mutated {
        code: rewrite_header(&code, &name, &descriptions),
        name,
        description: descriptions.join("; "),
        kinds,
    })
}

/// The offline proposer.
pub struct MutationProposer {
    pub max_edits: u32,
}

#[async_trait]
impl Proposer for MutationProposer {
    fn kind(&self) -> ProposerKind {
        ProposerKind::Mutation
    }

    async fn propose(&self, ctx: ProposalContext) -> Result<Proposal, ProposeError> {
        let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
        let task = TaskKind::of(&ctx.task);
        let partner = ctx.inspirations.choose(&mut rng);
        let m = mutate(
            &ctx.parent.candidate.name,
            &ctx.parent.candidate.code,
            task,
            partner.map(|p| p.candidate.code.as_str()),
            self.max_edits,
            &mut rng,
        )
        .ok_or_else(|| ProposeError::Nothing("no edit applies to the parent".into()))?;
        let mut parents = vec![ctx.parent.candidate.id];
        if let Some(p) = partner {
            if m.kinds.contains(&EditKind::Crossover) && p.candidate.id != ctx.parent.candidate.id {
                parents.push(p.candidate.id);
            }
        }
        Ok(Proposal {
            name: m.name,
            motivation: format!(
                "Mutation of #{}: {}.",
                ctx.parent.candidate.id, m.description
            ),
            code: m.code,
            parents,
            model: None,
            prompt: None,
            response: None,
            tokens: Tokens::default(),
            cost_usd: 0.0,
            calls: vec![],
            failure: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use autoarch_sandbox::{trace, TaskShape, TraceConfig, TraceOutcome};

    use super::*;

    /// Mutates every library seed of `task` `rounds` times (a chain of up to three generations,
    /// with another seed as crossover partner) and counts, per edit kind, the proposals that trace.
    fn trace_share(
        task: &str,
        rounds: usize,
    ) -> (usize, usize, BTreeMap<EditKind, (usize, usize)>) {
        let shape = TaskShape::by_name(task).unwrap();
        let config = TraceConfig::new(shape.clone());
        let seeds = crate::seeds::for_task(task);
        let kind = TaskKind::of(&shape);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (mut ok, mut total) = (0, 0);
        let mut by_kind: BTreeMap<EditKind, (usize, usize)> = BTreeMap::new();
        for (i, (name, code)) in seeds.iter().enumerate() {
            let partner = seeds[(i + 1) % seeds.len()].1;
            let mut current = (name.to_string(), code.to_string());
            for round in 0..rounds {
                let Some(m) = mutate(&current.0, &current.1, kind, Some(partner), 2, &mut rng)
                else {
                    continue;
                };
                total += 1;
                let traced = matches!(trace(&m.code, &config), TraceOutcome::Ok(_));
                ok += traced as usize;
                for k in &m.kinds {
                    let e = by_kind.entry(*k).or_default();
                    e.0 += traced as usize;
                    e.1 += 1;
                }
                if !traced && std::env::var("SHOW_FAILED").is_ok() {
                    eprintln!(
                        "--- {}\n{}\n{:?}",
                        m.description,
                        m.code,
                        trace(&m.code, &config).diagnostics()
                    );
                }
                // Walk on from traced children now and then, so edits stack up over generations.
                if traced && round % 3 != 2 {
                    current = (m.name, m.code);
                } else {
                    current = (name.to_string(), code.to_string());
                }
            }
        }
        (ok, total, by_kind)
    }

    #[test]
    fn at_least_nine_in_ten_sequence_mutations_trace() {
        let (ok, total, by_kind) = trace_share("mqar", 40);
        eprintln!("mqar: {ok}/{total} traced; by kind {by_kind:?}");
        assert!(total >= 200, "{total}");
        assert!(ok as f64 >= 0.9 * total as f64, "{ok}/{total}: {by_kind:?}");
        // Every kind that applies to sequence models was exercised.
        for k in EDIT_KINDS.iter().filter(|k| **k != EditKind::Kernel) {
            assert!(by_kind.contains_key(k), "{k:?} never applied: {by_kind:?}");
        }
    }

    #[test]
    fn at_least_nine_in_ten_image_mutations_trace() {
        let (ok, total, by_kind) = trace_share("digits", 40);
        eprintln!("digits: {ok}/{total} traced; by kind {by_kind:?}");
        assert!(ok as f64 >= 0.9 * total as f64, "{ok}/{total}: {by_kind:?}");
        assert!(by_kind.contains_key(&EditKind::Kernel), "{by_kind:?}");
    }

    #[test]
    fn edits_keep_comments_and_rewrite_the_header() {
        let code = crate::seeds::by_name("transformer").unwrap();
        let o = outline(code).unwrap();
        let task = TaskKind { sequence: true };
        let swaps = candidates(EditKind::Activation, code, &o, task, None);
        let to_relu = swaps
            .iter()
            .find(|a| a.description.starts_with("gelu -> relu"))
            .unwrap();
        assert!(to_relu.code.contains("linear(relu(linear(h, 4 * D)), D)"));
        assert!(to_relu
            .code
            .contains("# [B, T, D] -> [B, HEADS, T, D / HEADS]"));
        let header = rewrite_header(
            &to_relu.code,
            "transformer · activation",
            std::slice::from_ref(&to_relu.description),
        );
        assert!(
            header.starts_with("# name: transformer · activation\n# task: mqar\n"),
            "{header}"
        );
        assert!(header.contains("# edit: gelu -> relu in mlp\n"), "{header}");
    }

    #[test]
    fn mixer_swaps_replace_every_call_of_the_helper() {
        let code = crate::seeds::by_name("transformer").unwrap();
        let o = outline(code).unwrap();
        let swaps = candidates(EditKind::Mixer, code, &o, TaskKind { sequence: true }, None);
        let lin = swaps
            .iter()
            .find(|a| a.description == "token mixer attention -> mix_linear_attention")
            .unwrap();
        assert!(lin
            .code
            .contains("h = h + mix_linear_attention(rms_norm(h))"));
        assert!(lin.code.contains("def mix_linear_attention(x):"));
        let config = TraceConfig::new(TaskShape::by_name("mqar").unwrap());
        for s in &swaps {
            assert!(
                matches!(trace(&s.code, &config), TraceOutcome::Ok(_)),
                "{}",
                s.description
            );
        }
    }
}
