//! Linear algebra: `matmul`, and `einsum` and `outer`, which trace into matmul, reshapes and
//! products.

use super::print::{Call, PyCall};
use super::Category::LinearAlgebra;
use super::{float_input, not_in_family, spec, Inputs, Op, OpSpec, NONE};
use crate::shape::{broadcast, DType, Shape};

/// The family's entries in the language reference (one line each, as a table).
#[rustfmt::skip]
pub(super) const SPECS: &[OpSpec] = &[
    spec("matmul", LinearAlgebra, "matmul(a, b)", "[..., M, K] @ [..., K, N] -> [..., M, N] with broadcast leading dims.", NONE, "2·M·N·K per leading index"),
    spec("einsum", LinearAlgebra, "einsum(equation, a, b)", "Two-operand einsum that lowers to permute/reshape/matmul, e.g. \"bhtd,bhsd->bhts\"; or one operand and a pure permutation.", NONE, "as the matmul it lowers to"),
    spec("outer", LinearAlgebra, "outer(a, b)", "[..., M] and [..., N] -> [..., M, N].", NONE, "1 per output element"),
];

pub(super) fn infer(op: &Op, inputs: &Inputs) -> Result<(Shape, DType), String> {
    let Op::Matmul = op else {
        not_in_family(op, "linear algebra")
    };
    let a = float_input("matmul", inputs, 0)?;
    let b = float_input("matmul", inputs, 1)?;
    if a.rank() < 2 || b.rank() < 2 {
        return Err(format!(
            "matmul needs tensors of rank 2 or more, got {a} and {b}"
        ));
    }
    let (m, k1) = (a.dims()[a.rank() - 2], a.dims()[a.rank() - 1]);
    let (k2, n) = (b.dims()[b.rank() - 2], b.dims()[b.rank() - 1]);
    if k1 != k2 || k1.batch {
        return Err(format!(
            "matmul: inner dims differ: {a} @ {b} contracts {k1} with {k2}"
        ));
    }
    let lead = broadcast(
        &Shape(a.dims()[..a.rank() - 2].to_vec()),
        &Shape(b.dims()[..b.rank() - 2].to_vec()),
    )
    .map_err(|e| format!("matmul leading dims: {e}"))?;
    let mut out = lead.0;
    out.push(m);
    out.push(n);
    Ok((Shape(out), DType::Float32))
}

pub(super) fn flops(op: &Op, inputs: &[&Shape], out: &Shape) -> u64 {
    let Op::Matmul = op else {
        not_in_family(op, "linear algebra")
    };
    let k = inputs[0].last().map_or(0, |d| d.size);
    2 * out.numel() * k
}

pub(super) fn starlark(op: &Op, c: &Call) -> String {
    let Op::Matmul = op else {
        not_in_family(op, "linear algebra")
    };
    format!("matmul({}, {})", c.arg(0), c.arg(1))
}

pub(super) fn pytorch(op: &Op, c: &mut PyCall) -> String {
    let Op::Matmul = op else {
        not_in_family(op, "linear algebra")
    };
    format!("torch.matmul({}, {})", c.arg(0), c.arg(1))
}
