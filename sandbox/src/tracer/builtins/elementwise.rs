//! The builtins of the elementwise family (`crate::ops` holds the ops' rules).

use super::prelude::*;

// A `#[starlark_module]` is the list of a family's builtins, which the macro wraps into one
// function: it is as long as the family is wide, each builtin a few lines.
#[allow(clippy::too_many_lines)]
#[starlark_module]
pub(crate) fn builtins(builder: &mut GlobalsBuilder) {
    fn neg<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
        node(eval, Op::Neg, vec![x.node])
    }

    fn relu<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
        node(eval, Op::Relu, vec![x.node])
    }

    fn gelu<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
        node(eval, Op::Gelu, vec![x.node])
    }

    fn silu<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
        node(eval, Op::Silu, vec![x.node])
    }

    fn sigmoid<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
        node(eval, Op::Sigmoid, vec![x.node])
    }

    fn tanh<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
        node(eval, Op::Tanh, vec![x.node])
    }

    fn softplus<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
        node(eval, Op::Softplus, vec![x.node])
    }

    fn elu<'v>(
        x: &Tensor,
        #[starlark(default = UnpackFloat(1.0))] alpha: UnpackFloat,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        node(eval, Op::Elu { alpha: alpha.0 }, vec![x.node])
    }

    fn exp<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
        node(eval, Op::Exp, vec![x.node])
    }

    fn log<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
        node(eval, Op::Log, vec![x.node])
    }

    fn sqrt<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
        node(eval, Op::Sqrt, vec![x.node])
    }

    fn square<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
        node(eval, Op::Square, vec![x.node])
    }

    fn abs<'v>(x: Value<'v>, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Value<'v>> {
        if let Some(t) = x.downcast_ref::<Tensor>() {
            let out = node(eval, Op::Abs, vec![t.node])?;
            return Ok(eval.heap().alloc(out));
        }
        if let Some(i) = x.unpack_i32() {
            return Ok(eval.heap().alloc(i.abs()));
        }
        match x.downcast_ref::<starlark::values::float::StarlarkFloat>() {
            Some(f) => Ok(eval.heap().alloc(f.0.abs())),
            None => anyhow::bail!("abs expects a tensor or a number, got {}", x.get_type()),
        }
    }

    fn pow<'v>(
        x: &Tensor,
        exponent: UnpackFloat,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        node(
            eval,
            Op::Pow {
                exponent: exponent.0,
            },
            vec![x.node],
        )
    }

    fn clamp<'v>(
        x: &Tensor,
        #[starlark(default = NoneOr::None)] min: NoneOr<UnpackFloat>,
        #[starlark(default = NoneOr::None)] max: NoneOr<UnpackFloat>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let (min, max) = (
            min.into_option().map(|f| f.0),
            max.into_option().map(|f| f.0),
        );
        if let (Some(lo), Some(hi)) = (min, max) {
            if lo > hi {
                anyhow::bail!("clamp: min {lo} is above max {hi}");
            }
        }
        node(eval, Op::Clamp { min, max }, vec![x.node])
    }

    fn maximum<'v>(
        a: Value<'v>,
        b: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let (a, b) = (operand_node("maximum", a)?, operand_node("maximum", b)?);
        node(eval, Op::Maximum, vec![a, b])
    }

    fn minimum<'v>(
        a: Value<'v>,
        b: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let (a, b) = (operand_node("minimum", a)?, operand_node("minimum", b)?);
        node(eval, Op::Minimum, vec![a, b])
    }
}
