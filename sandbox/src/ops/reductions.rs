//! Reductions and normalisers over an axis: `sum`, `mean`, `max`, `logsumexp`, `softmax`,
//! `log_softmax`, and the running `cumsum` and `cummax`.

use super::print::{py_bool, tuple, usizes, Call, PyCall};
use super::Category::Reductions;
use super::{
    check_axis, float_input, not_batch_axis, not_in_family, reduce_shape, spec, Inputs, Op, OpSpec,
    NONE,
};
use crate::shape::{DType, Shape};

/// The family's entries in the language reference (one line each, as a table).
#[rustfmt::skip]
pub(super) const SPECS: &[OpSpec] = &[
    spec("sum", Reductions, "sum(x, axis=-1, keepdim=False)", "Sum over an axis or a list of axes (never the batch).", NONE, "1 per input element"),
    spec("mean", Reductions, "mean(x, axis=-1, keepdim=False)", "Mean over an axis or a list of axes.", NONE, "1 per input element"),
    spec("max", Reductions, "max(x, axis=-1, keepdim=False)", "Maximum over an axis or a list of axes (on numbers it is the usual max).", NONE, "1 per input element"),
    spec("logsumexp", Reductions, "logsumexp(x, axis=-1, keepdim=False)", "log(sum(exp(x))) over one axis, computed stably.", NONE, "3 per input element"),
    spec("softmax", Reductions, "softmax(x, axis=-1)", "Softmax along one axis.", NONE, "3 per element"),
    spec("log_softmax", Reductions, "log_softmax(x, axis=-1)", "Log of softmax along one axis, computed stably.", NONE, "3 per element"),
    spec("cumsum", Reductions, "cumsum(x, axis)", "Running sum along one axis (causal prefix sums).", NONE, "1 per element"),
    spec("cummax", Reductions, "cummax(x, axis)", "Running maximum along one axis: out[t] is the largest of x[0], ..., x[t] (a causal max over the prefix).", NONE, "1 per element"),
];

pub(super) fn infer(op: &Op, inputs: &Inputs) -> Result<(Shape, DType), String> {
    let name = op.name();
    let s = float_input(name, inputs, 0)?;
    match op {
        Op::Sum { axes, keepdim } | Op::Mean { axes, keepdim } | Op::Max { axes, keepdim } => {
            reduce_shape(name, &s, axes, *keepdim)
        }
        Op::Logsumexp { axis, keepdim } => reduce_shape(name, &s, &[*axis], *keepdim),
        Op::Softmax { axis }
        | Op::LogSoftmax { axis }
        | Op::Cumsum { axis }
        | Op::Cummax { axis } => {
            check_axis(name, &s, *axis)?;
            not_batch_axis(name, &s, *axis)?;
            Ok((s, DType::Float32))
        }
        _ => not_in_family(op, "reductions"),
    }
}

pub(super) fn flops(op: &Op, inputs: &[&Shape], _out: &Shape) -> u64 {
    let n = inputs[0].numel();
    match op {
        Op::Sum { .. }
        | Op::Mean { .. }
        | Op::Max { .. }
        | Op::Cumsum { .. }
        | Op::Cummax { .. } => n,
        Op::Logsumexp { .. } | Op::Softmax { .. } | Op::LogSoftmax { .. } => 3 * n,
        _ => not_in_family(op, "reductions"),
    }
}

pub(super) fn starlark(op: &Op, c: &Call) -> String {
    let x = c.arg(0);
    match op {
        Op::Sum { axes, keepdim } | Op::Mean { axes, keepdim } | Op::Max { axes, keepdim } => {
            format!(
                "{}({x}, axis={}, keepdim={})",
                op.name(),
                usizes(axes),
                py_bool(*keepdim)
            )
        }
        Op::Logsumexp { axis, keepdim } => {
            format!("logsumexp({x}, axis={axis}, keepdim={})", py_bool(*keepdim))
        }
        Op::Softmax { axis }
        | Op::LogSoftmax { axis }
        | Op::Cumsum { axis }
        | Op::Cummax { axis } => {
            format!("{}({x}, axis={axis})", op.name())
        }
        _ => not_in_family(op, "reductions"),
    }
}

pub(super) fn pytorch(op: &Op, c: &mut PyCall) -> String {
    let x = c.arg(0);
    match op {
        Op::Sum { axes, keepdim } => format!(
            "torch.sum({x}, dim={}, keepdim={})",
            tuple(axes),
            py_bool(*keepdim)
        ),
        Op::Mean { axes, keepdim } => format!(
            "torch.mean({x}, dim={}, keepdim={})",
            tuple(axes),
            py_bool(*keepdim)
        ),
        Op::Max { axes, keepdim } => format!(
            "torch.amax({x}, dim={}, keepdim={})",
            tuple(axes),
            py_bool(*keepdim)
        ),
        Op::Logsumexp { axis, keepdim } => format!(
            "torch.logsumexp({x}, dim={axis}, keepdim={})",
            py_bool(*keepdim)
        ),
        Op::Softmax { axis } => format!("F.softmax({x}, dim={axis})"),
        Op::LogSoftmax { axis } => format!("F.log_softmax({x}, dim={axis})"),
        Op::Cumsum { axis } => format!("torch.cumsum({x}, dim={axis})"),
        Op::Cummax { axis } => format!("torch.cummax({x}, dim={axis}).values"),
        _ => not_in_family(op, "reductions"),
    }
}
