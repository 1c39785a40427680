//! Reshaping: `reshape`, `permute` (and `transpose`, `flatten`, `unsqueeze`, `squeeze`, which
//! trace into these), `concat`, `split`, `slice`, `pad`, `expand`. They move elements and cost
//! no FLOPs; all but `pad` also work on int tensors.

use super::print::{float, script_shape, tuple, tuple_i64, usizes, Call, PyCall};
use super::Category::Reshaping;
use super::{
    check_axis, float_input, not_batch_axis, not_in_family, spec, Inputs, Op, OpSpec, FREE, NONE,
};
use crate::shape::{DType, Dim, Shape};

/// The family's entries in the language reference (one line each, as a table).
#[rustfmt::skip]
pub(super) const SPECS: &[OpSpec] = &[
    spec("reshape", Reshaping, "reshape(x, shape)", "New shape with the same elements; -1 infers one dim (x.shape shows the batch dim as -1).", NONE, FREE),
    spec("permute", Reshaping, "permute(x, dims)", "Reorders the axes: permute(x, [0, 2, 1]).", NONE, FREE),
    spec("transpose", Reshaping, "transpose(x, a=-2, b=-1)", "Swaps two axes.", NONE, FREE),
    spec("flatten", Reshaping, "flatten(x)", "[B, ...] -> [B, prod(...)]: keeps dim 0.", NONE, FREE),
    spec("concat", Reshaping, "concat(xs, axis=-1)", "Joins a list of tensors along an axis.", NONE, FREE),
    spec("split", Reshaping, "split(x, sections, axis=-1)", "A list of tensors: `sections` equal parts, or parts of the listed sizes.", NONE, FREE),
    spec("slice", Reshaping, "slice(x, axis, start, end)", "x[..., start:end, ...] along one axis (negative indices count from the end).", NONE, FREE),
    spec("pad", Reshaping, "pad(x, pads, axis=-1, value=0.0)", "Pads one axis with pads = [before, after] constant elements (e.g. causal convolution).", NONE, FREE),
    spec("unsqueeze", Reshaping, "unsqueeze(x, axis)", "Inserts an axis of size 1.", NONE, FREE),
    spec("squeeze", Reshaping, "squeeze(x, axis)", "Removes an axis of size 1.", NONE, FREE),
    spec("expand", Reshaping, "expand(x, shape)", "Broadcasts size-1 dims to the given shape (-1 keeps a dim).", NONE, FREE),
];

pub(super) fn infer(op: &Op, inputs: &Inputs) -> Result<(Shape, DType), String> {
    let name = op.name();
    match op {
        Op::Reshape { shape } => {
            let (s, dtype) = inputs[0];
            if s.numel() != shape.numel()
                || s.batch_axis().is_some() != shape.batch_axis().is_some()
            {
                return Err(format!("reshape: cannot reshape {s} into {shape}"));
            }
            Ok((shape.clone(), dtype))
        }
        Op::Permute { dims } => {
            let (s, dtype) = inputs[0];
            let mut seen = vec![false; s.rank()];
            if dims.len() != s.rank()
                || dims
                    .iter()
                    .any(|&d| d >= s.rank() || std::mem::replace(&mut seen[d], true))
            {
                return Err(format!(
                    "permute: {dims:?} is not a permutation of the {} axes of {s}",
                    s.rank()
                ));
            }
            Ok((Shape(dims.iter().map(|&d| s.dims()[d]).collect()), dtype))
        }
        Op::Concat { axis } => concat(inputs, *axis),
        Op::Slice { axis, start, end } => {
            let (s, dtype) = inputs[0];
            check_axis(name, s, *axis)?;
            not_batch_axis(name, s, *axis)?;
            let size = s.dims()[*axis].size;
            if start >= end || *end > size {
                return Err(format!(
                    "slice [{start}:{end}] is empty or out of range for axis {axis} of size {size}"
                ));
            }
            let mut out = s.clone();
            out.0[*axis] = Dim::fixed(end - start);
            Ok((out, dtype))
        }
        Op::Pad {
            axis,
            before,
            after,
            ..
        } => {
            let s = float_input(name, inputs, 0)?;
            check_axis(name, &s, *axis)?;
            not_batch_axis(name, &s, *axis)?;
            let mut out = s.clone();
            out.0[*axis] = Dim::fixed(s.dims()[*axis].size + before + after);
            Ok((out, DType::Float32))
        }
        Op::Expand { shape } => {
            let (s, dtype) = inputs[0];
            let ok = shape.rank() >= s.rank()
                && s.dims().iter().enumerate().all(|(i, d)| {
                    let t = shape.dims()[shape.rank() - s.rank() + i];
                    *d == t || *d == Dim::fixed(1)
                })
                && shape.dims()[..shape.rank() - s.rank()]
                    .iter()
                    .all(|d| !d.batch);
            if !ok {
                return Err(format!("expand: cannot expand {s} to {shape}"));
            }
            Ok((shape.clone(), dtype))
        }
        _ => not_in_family(op, "reshaping"),
    }
}

fn concat(inputs: &Inputs, axis: usize) -> Result<(Shape, DType), String> {
    let (first, dtype) = inputs
        .first()
        .copied()
        .ok_or_else(|| "concat needs at least one tensor".to_string())?;
    check_axis("concat", first, axis)?;
    not_batch_axis("concat", first, axis)?;
    let mut total = 0;
    for &(s, dt) in inputs {
        let same_elsewhere = s.rank() == first.rank()
            && (0..s.rank()).all(|i| i == axis || s.dims()[i] == first.dims()[i]);
        if !same_elsewhere || dt != dtype {
            return Err(format!(
                "concat along axis {axis}: {s} does not match {first} on the other axes"
            ));
        }
        total += s.dims()[axis].size;
    }
    let mut out = first.clone();
    out.0[axis] = Dim::fixed(total);
    Ok((out, dtype))
}

pub(super) fn flops(_op: &Op, _inputs: &[&Shape], _out: &Shape) -> u64 {
    0
}

pub(super) fn starlark(op: &Op, c: &Call) -> String {
    let x = c.arg(0);
    match op {
        Op::Reshape { shape } => format!("reshape({x}, {})", script_shape(shape)),
        Op::Permute { dims } => format!("permute({x}, {})", usizes(dims)),
        Op::Concat { axis } => format!("concat([{}], axis={axis})", c.args.join(", ")),
        Op::Slice { axis, start, end } => format!("slice({x}, {axis}, {start}, {end})"),
        Op::Pad {
            axis,
            before,
            after,
            value,
        } => format!(
            "pad({x}, [{before}, {after}], axis={axis}, value={})",
            float(*value)
        ),
        Op::Expand { shape } => {
            let input = c.inputs[0];
            let offset = shape.rank() - input.rank();
            let dims: Vec<String> = shape
                .dims()
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    if d.batch || (i >= offset && input.dims()[i - offset] == *d) {
                        "-1".to_string()
                    } else {
                        d.size.to_string()
                    }
                })
                .collect();
            format!("expand({x}, [{}])", dims.join(", "))
        }
        _ => not_in_family(op, "reshaping"),
    }
}

pub(super) fn pytorch(op: &Op, c: &mut PyCall) -> String {
    let x = c.arg(0);
    match op {
        Op::Reshape { shape } => format!("{x}.reshape({})", tuple_i64(shape)),
        Op::Permute { dims } => format!("{x}.permute({})", tuple(dims)),
        Op::Concat { axis } => format!("torch.cat([{}], dim={axis})", c.args.join(", ")),
        Op::Slice { axis, start, end } => format!("{x}.narrow({axis}, {start}, {})", end - start),
        Op::Pad {
            axis,
            before,
            after,
            value,
        } => {
            let rank = c.output.rank();
            let pads: Vec<String> = (*axis..rank)
                .rev()
                .map(|ax| {
                    if ax == *axis {
                        format!("{before}, {after}")
                    } else {
                        "0, 0".to_string()
                    }
                })
                .collect();
            format!("F.pad({x}, ({}), value={})", pads.join(", "), float(*value))
        }
        Op::Expand { shape } => format!("{x}.expand({})", tuple_i64(shape)),
        _ => not_in_family(op, "reshaping"),
    }
}
