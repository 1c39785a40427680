//! The builtins of the attention family (`crate::ops` holds the ops' rules).

use super::prelude::*;

#[starlark_module]
pub(crate) fn builtins(builder: &mut GlobalsBuilder) {
    fn causal_mask<'v>(size: i32, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
        let size = self::size("causal_mask", "size", size)?;
        let span = span_of(eval);
        Ok(with_builder(|b| b.mask(size, span)))
    }

    fn scaled_dot_product_attention<'v>(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        #[starlark(default = false)] causal: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        node(
            eval,
            Op::ScaledDotProductAttention { causal },
            vec![q.node, k.node, v.node],
        )
    }

    fn dropout<'v>(
        x: &Tensor,
        #[starlark(default = UnpackFloat(0.1))] p: UnpackFloat,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        node(eval, Op::Dropout { p: p.0 }, vec![x.node])
    }
}
