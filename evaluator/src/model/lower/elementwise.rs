//! Elementwise ops.

use autoarch_sandbox::Op;
use burn::tensor::activation;

use super::{not_in_family, Args, At};
use crate::error::GraphError;
use crate::model::T;

pub(super) fn lower(at: &At, args: &mut Args) -> Result<T, GraphError> {
    let out_shape = at.out_shape;
    let mut x = || args.next();
    Ok(match &at.node.op {
        Op::Add => x()? + x()?,
        Op::Sub => x()? - x()?,
        Op::Mul => x()? * x()?,
        Op::Div => x()? / x()?,
        Op::Maximum => x()?.expand(out_shape).max_pair(x()?.expand(out_shape)),
        Op::Minimum => x()?.expand(out_shape).min_pair(x()?.expand(out_shape)),
        Op::Neg => x()?.neg(),
        Op::Relu => activation::relu(x()?),
        Op::Gelu => activation::gelu(x()?),
        Op::Silu => activation::silu(x()?),
        Op::Sigmoid => activation::sigmoid(x()?),
        Op::Tanh => x()?.tanh(),
        Op::Softplus => activation::softplus(x()?, 1.0),
        Op::Elu { alpha } => activation::elu(x()?, *alpha),
        Op::Exp => x()?.exp(),
        Op::Log => x()?.log(),
        Op::Sqrt => x()?.sqrt(),
        Op::Abs => x()?.abs(),
        Op::Square => x()?.square(),
        Op::Pow { exponent } => x()?.powf_scalar(*exponent),
        Op::Clamp { min, max } => {
            let mut t = x()?;
            if let Some(lo) = min {
                t = t.clamp_min(*lo);
            }
            if let Some(hi) = max {
                t = t.clamp_max(*hi);
            }
            t
        }
        op => not_in_family(op, "elementwise"),
    })
}
