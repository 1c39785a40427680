//! Pooling over the spatial dims of [B, C, H, W]: `avg_pool2d`, `max_pool2d`, and
//! `global_avg_pool`, which traces into a mean.

use super::print::{ints, Call, PyCall};
use super::Category::Pooling;
use super::{
    exact_rank, fixed_dim, float_input, not_in_family, spec, window_out, Inputs, Op, OpSpec, NONE,
};
use crate::shape::{DType, Dim, Shape};

/// The family's entries in the language reference (one line each, as a table).
#[rustfmt::skip]
pub(super) const SPECS: &[OpSpec] = &[
    spec("avg_pool2d", Pooling, "avg_pool2d(x, kernel, stride=None, padding=0)", "Average over windows of [B, C, H, W]; stride defaults to kernel.", NONE, "kh·kw per output element"),
    spec("max_pool2d", Pooling, "max_pool2d(x, kernel, stride=None, padding=0)", "Maximum over windows of [B, C, H, W]; stride defaults to kernel.", NONE, "kh·kw per output element"),
    spec("global_avg_pool", Pooling, "global_avg_pool(x)", "[B, C, H, W] -> [B, C]: mean over the spatial dims.", NONE, "1 per input element"),
];

/// A pooling op's window.
fn window(op: &Op) -> (&[u64; 2], &[u64; 2], &[u64; 2]) {
    match op {
        Op::AvgPool2d {
            kernel,
            stride,
            padding,
        }
        | Op::MaxPool2d {
            kernel,
            stride,
            padding,
        } => (kernel, stride, padding),
        _ => not_in_family(op, "pooling"),
    }
}

pub(super) fn infer(op: &Op, inputs: &Inputs) -> Result<(Shape, DType), String> {
    let name = op.name();
    let (kernel, stride, padding) = window(op);
    let s = float_input(name, inputs, 0)?;
    exact_rank(name, &s, 4, "[B, C, H, W]")?;
    let h = fixed_dim(name, s.dims()[2], "height dim")?;
    let w = fixed_dim(name, s.dims()[3], "width dim")?;
    if padding[0] * 2 > kernel[0] || padding[1] * 2 > kernel[1] {
        return Err(format!("{name}: padding must be at most half the kernel"));
    }
    let ho = window_out(name, h, kernel[0], stride[0], padding[0], 1)?;
    let wo = window_out(name, w, kernel[1], stride[1], padding[1], 1)?;
    Ok((
        Shape(vec![
            s.dims()[0],
            s.dims()[1],
            Dim::fixed(ho),
            Dim::fixed(wo),
        ]),
        DType::Float32,
    ))
}

pub(super) fn flops(op: &Op, _inputs: &[&Shape], out: &Shape) -> u64 {
    let (kernel, ..) = window(op);
    out.numel() * kernel[0] * kernel[1]
}

pub(super) fn starlark(op: &Op, c: &Call) -> String {
    let (kernel, stride, padding) = window(op);
    format!(
        "{}({}, {}, stride={}, padding={})",
        op.name(),
        c.arg(0),
        ints(kernel),
        ints(stride),
        ints(padding)
    )
}

pub(super) fn pytorch(op: &Op, c: &mut PyCall) -> String {
    let (k, s, p) = window(op);
    let window = format!(
        "({}, {}), stride=({}, {}), padding=({}, {})",
        k[0], k[1], s[0], s[1], p[0], p[1]
    );
    match op {
        Op::AvgPool2d { .. } => format!(
            "F.avg_pool2d({}, {window}, count_include_pad=False)",
            c.arg(0)
        ),
        _ => format!("F.max_pool2d({}, {window})", c.arg(0)),
    }
}
