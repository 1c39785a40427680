//! Attention and regularisation: `causal_mask`, `scaled_dot_product_attention`, `dropout`.

use super::print::{float, py_bool, Call, PyCall};
use super::Category::Attention;
use super::{fixed_dim, float_input, not_in_family, spec, Inputs, Op, OpSpec, FREE, MASKED, NONE};
use crate::shape::{DType, Shape};

/// The family's entries in the language reference (one line each, as a table).
#[rustfmt::skip]
pub(super) const SPECS: &[OpSpec] = &[
    spec("causal_mask", Attention, "causal_mask(size)", "[size, size] additive mask: 0 on and below the diagonal, -1e9 above.", NONE, FREE),
    spec("scaled_dot_product_attention", Attention, "scaled_dot_product_attention(q, k, v, causal=False)",
        "softmax(q·kᵀ/√d [+ causal mask]) · v over the last two dims, any leading dims ([B, H, T, D] or [B, T, D]).",
        NONE, "2·Tq·Tk·d + 3·Tq·Tk + 2·Tq·Tk·dv per leading index"),
    spec("dropout", Attention, "dropout(x, p=0.1)", "Zeroes elements with probability p while training; identity when evaluating.", NONE, FREE),
];

pub(super) fn infer(op: &Op, inputs: &Inputs) -> Result<(Shape, DType), String> {
    let name = op.name();
    match op {
        Op::CausalMask { size } => Ok((Shape::fixed(&[*size, *size]), DType::Float32)),
        Op::ScaledDotProductAttention { causal } => attention(inputs, *causal),
        Op::Dropout { p } => {
            if !(0.0..1.0).contains(p) {
                return Err(format!("dropout probability must be in [0, 1), got {p}"));
            }
            Ok((float_input(name, inputs, 0)?, DType::Float32))
        }
        _ => not_in_family(op, "attention"),
    }
}

fn attention(inputs: &Inputs, causal: bool) -> Result<(Shape, DType), String> {
    let name = "scaled_dot_product_attention";
    let q = float_input(name, inputs, 0)?;
    let k = float_input(name, inputs, 1)?;
    let v = float_input(name, inputs, 2)?;
    let r = q.rank();
    if r < 2 || k.rank() != r || v.rank() != r {
        return Err(format!(
            "{name} needs q, k, v of one rank ≥ 2 ([..., T, D]), got {q}, {k}, {v}"
        ));
    }
    let lead = &q.dims()[..r - 2];
    if &k.dims()[..r - 2] != lead || &v.dims()[..r - 2] != lead {
        return Err(format!(
            "{name}: leading dims of q {q}, k {k} and v {v} differ"
        ));
    }
    let (tq, d) = (q.dims()[r - 2], q.dims()[r - 1]);
    let (tk, dk) = (k.dims()[r - 2], k.dims()[r - 1]);
    let (tv, dv) = (v.dims()[r - 2], v.dims()[r - 1]);
    if d != dk || tk != tv {
        return Err(format!(
            "{name}: q {q} and k {k} need the same last dim, k and v the same length"
        ));
    }
    for (dim, what) in [(tq, "query length"), (tk, "key length"), (d, "head dim")] {
        fixed_dim(name, dim, what)?;
    }
    if causal && tq != tk {
        return Err(format!(
            "{name}: causal attention needs equal query and key lengths, got {tq} and {tk}"
        ));
    }
    let mut out = lead.to_vec();
    out.push(tq);
    out.push(dv);
    Ok((Shape(out), DType::Float32))
}

pub(super) fn flops(op: &Op, inputs: &[&Shape], out: &Shape) -> u64 {
    match op {
        Op::CausalMask { .. } | Op::Dropout { .. } => 0,
        Op::ScaledDotProductAttention { .. } => {
            let q = inputs[0];
            let r = q.rank();
            let d = q.dims()[r - 1].size;
            let tk = inputs[1].dims()[r - 2].size;
            let dv = out.dims()[r - 1].size;
            // scores (2·Tq·Tk·d), softmax (3·Tq·Tk), weighted values (2·Tq·Tk·dv)
            let scores = out.numel() / dv.max(1) * tk;
            scores * (2 * d + 3 + 2 * dv)
        }
        _ => not_in_family(op, "attention"),
    }
}

pub(super) fn starlark(op: &Op, c: &Call) -> String {
    match op {
        Op::CausalMask { size } => format!("causal_mask({size})"),
        Op::ScaledDotProductAttention { causal } => format!(
            "scaled_dot_product_attention({}, {}, {}, causal={})",
            c.arg(0),
            c.arg(1),
            c.arg(2),
            py_bool(*causal)
        ),
        Op::Dropout { p } => format!("dropout({}, p={})", c.arg(0), float(*p)),
        _ => not_in_family(op, "attention"),
    }
}

pub(super) fn pytorch(op: &Op, c: &mut PyCall) -> String {
    match op {
        Op::CausalMask { size } => format!(
            "torch.triu(torch.full(({size}, {size}), {}, device=x.device), diagonal=1)",
            float(MASKED)
        ),
        Op::ScaledDotProductAttention { causal } => format!(
            "F.scaled_dot_product_attention({}, {}, {}, is_causal={})",
            c.arg(0),
            c.arg(1),
            c.arg(2),
            py_bool(*causal)
        ),
        Op::Dropout { p } => format!(
            "F.dropout({}, p={}, training=self.training)",
            c.arg(0),
            float(*p)
        ),
        _ => not_in_family(op, "attention"),
    }
}
