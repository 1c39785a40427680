//! Elementwise ops: arithmetic with broadcasting, activations and other functions of one value.

use super::print::{binary_tensor_first, float, Call, PyCall};
use super::Category::Elementwise;
use super::{float_input, not_in_family, spec, Inputs, Op, OpSpec, NONE};
use crate::shape::{broadcast, DType, Shape};

const ELEMENTWISE_FLOPS: &str = "1 per output element";

/// The family's entries in the language reference (one line each, as a table).
#[rustfmt::skip]
pub(super) const SPECS: &[OpSpec] = &[
    spec("+", Elementwise, "a + b", "Adds tensors (NumPy broadcasting) or a tensor and a number.", NONE, ELEMENTWISE_FLOPS),
    spec("-", Elementwise, "a - b, -a", "Subtracts or negates; a number on the left is not supported: write -x + 1.0.", NONE, ELEMENTWISE_FLOPS),
    spec("*", Elementwise, "a * b", "Multiplies elementwise (broadcasting), or by a number.", NONE, ELEMENTWISE_FLOPS),
    spec("/", Elementwise, "a / b", "Divides elementwise (broadcasting); the left side must be a tensor.", NONE, ELEMENTWISE_FLOPS),
    spec("neg", Elementwise, "neg(x)", "-x.", NONE, ELEMENTWISE_FLOPS),
    spec("relu", Elementwise, "relu(x)", "max(x, 0).", NONE, ELEMENTWISE_FLOPS),
    spec("gelu", Elementwise, "gelu(x)", "Gaussian error linear unit (erf form).", NONE, ELEMENTWISE_FLOPS),
    spec("silu", Elementwise, "silu(x)", "x * sigmoid(x) (swish).", NONE, ELEMENTWISE_FLOPS),
    spec("sigmoid", Elementwise, "sigmoid(x)", "1 / (1 + exp(-x)).", NONE, ELEMENTWISE_FLOPS),
    spec("tanh", Elementwise, "tanh(x)", "Hyperbolic tangent.", NONE, ELEMENTWISE_FLOPS),
    spec("softplus", Elementwise, "softplus(x)", "log(1 + exp(x)).", NONE, ELEMENTWISE_FLOPS),
    spec("elu", Elementwise, "elu(x, alpha=1.0)", "x for x > 0, alpha·(exp(x) - 1) otherwise.", NONE, ELEMENTWISE_FLOPS),
    spec("exp", Elementwise, "exp(x)", "e^x.", NONE, ELEMENTWISE_FLOPS),
    spec("log", Elementwise, "log(x)", "Natural logarithm.", NONE, ELEMENTWISE_FLOPS),
    spec("sqrt", Elementwise, "sqrt(x)", "Square root.", NONE, ELEMENTWISE_FLOPS),
    spec("abs", Elementwise, "abs(x)", "|x| (on numbers it is the usual abs).", NONE, ELEMENTWISE_FLOPS),
    spec("square", Elementwise, "square(x)", "x·x.", NONE, ELEMENTWISE_FLOPS),
    spec("pow", Elementwise, "pow(x, exponent)", "x raised to a number (there is no ** operator).", NONE, ELEMENTWISE_FLOPS),
    spec("clamp", Elementwise, "clamp(x, min=None, max=None)", "Limits x to [min, max].", NONE, ELEMENTWISE_FLOPS),
    spec("maximum", Elementwise, "maximum(a, b)", "Elementwise larger of two tensors (or a tensor and a number).", NONE, ELEMENTWISE_FLOPS),
    spec("minimum", Elementwise, "minimum(a, b)", "Elementwise smaller of two tensors (or a tensor and a number).", NONE, ELEMENTWISE_FLOPS),
];

pub(super) fn infer(op: &Op, inputs: &Inputs) -> Result<(Shape, DType), String> {
    let name = op.name();
    if matches!(
        op,
        Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Maximum | Op::Minimum
    ) {
        let a = float_input(name, inputs, 0)?;
        let b = float_input(name, inputs, 1)?;
        let s = broadcast(&a, &b).map_err(|e| format!("{name}: {e}"))?;
        return Ok((s, DType::Float32));
    }
    if !op.is_unary_elementwise() {
        not_in_family(op, "elementwise");
    }
    Ok((float_input(name, inputs, 0)?, DType::Float32))
}

pub(super) fn flops(_op: &Op, _inputs: &[&Shape], out: &Shape) -> u64 {
    out.numel()
}

pub(super) fn starlark(op: &Op, c: &Call) -> String {
    let a = |i: usize| c.arg(i);
    match op {
        Op::Add => format!("{} + {}", a(0), a(1)),
        Op::Mul => format!("{} * {}", a(0), a(1)),
        Op::Sub => binary_tensor_first(c, "-"),
        Op::Div => binary_tensor_first(c, "/"),
        Op::Maximum => format!("maximum({}, {})", a(0), a(1)),
        Op::Minimum => format!("minimum({}, {})", a(0), a(1)),
        Op::Elu { alpha } => format!("elu({}, alpha={})", a(0), float(*alpha)),
        Op::Pow { exponent } => format!("pow({}, {})", a(0), float(*exponent)),
        Op::Clamp { min, max } => format!(
            "clamp({}, min={}, max={})",
            a(0),
            min.map(float).unwrap_or_else(|| "None".into()),
            max.map(float).unwrap_or_else(|| "None".into())
        ),
        op if op.is_unary_elementwise() => format!("{}({})", op.name(), a(0)),
        _ => not_in_family(op, "elementwise"),
    }
}

pub(super) fn pytorch(op: &Op, c: &mut PyCall) -> String {
    let a = |i: usize| c.arg(i);
    match op {
        Op::Add => format!("{} + {}", a(0), a(1)),
        Op::Sub => format!("{} - {}", a(0), a(1)),
        Op::Mul => format!("{} * {}", a(0), a(1)),
        Op::Div => format!("{} / {}", a(0), a(1)),
        Op::Maximum => format!(
            "torch.maximum(torch.as_tensor({}), torch.as_tensor({}))",
            a(0),
            a(1)
        ),
        Op::Minimum => format!(
            "torch.minimum(torch.as_tensor({}), torch.as_tensor({}))",
            a(0),
            a(1)
        ),
        Op::Neg => format!("-{}", a(0)),
        Op::Relu => format!("F.relu({})", a(0)),
        Op::Gelu => format!("F.gelu({})", a(0)),
        Op::Silu => format!("F.silu({})", a(0)),
        Op::Sigmoid => format!("torch.sigmoid({})", a(0)),
        Op::Tanh => format!("torch.tanh({})", a(0)),
        Op::Softplus => format!("F.softplus({})", a(0)),
        Op::Elu { alpha } => format!("F.elu({}, alpha={})", a(0), float(*alpha)),
        Op::Exp => format!("torch.exp({})", a(0)),
        Op::Log => format!("torch.log({})", a(0)),
        Op::Sqrt => format!("torch.sqrt({})", a(0)),
        Op::Abs => format!("torch.abs({})", a(0)),
        Op::Square => format!("torch.square({})", a(0)),
        Op::Pow { exponent } => format!("torch.pow({}, {})", a(0), float(*exponent)),
        Op::Clamp { min, max } => format!(
            "torch.clamp({}, min={}, max={})",
            a(0),
            min.map(float).unwrap_or_else(|| "None".into()),
            max.map(float).unwrap_or_else(|| "None".into())
        ),
        _ => not_in_family(op, "elementwise"),
    }
}
