//! The builtins of the reductions family (`crate::ops` holds the ops' rules).

use super::prelude::*;

// A `#[starlark_module]` is the list of a family's builtins, which the macro wraps into one
// function: it is as long as the family is wide, each builtin a few lines.
#[allow(clippy::too_many_lines)]
#[starlark_module]
pub(crate) fn builtins(builder: &mut GlobalsBuilder) {
    fn sum<'v>(
        x: &Tensor,
        #[starlark(default = -1)] axis: Value<'v>,
        #[starlark(default = false)] keepdim: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let axes = axes("sum", &x.shape, axis)?;
        node(eval, Op::Sum { axes, keepdim }, vec![x.node])
    }

    fn mean<'v>(
        x: &Tensor,
        #[starlark(default = -1)] axis: Value<'v>,
        #[starlark(default = false)] keepdim: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let axes = axes("mean", &x.shape, axis)?;
        node(eval, Op::Mean { axes, keepdim }, vec![x.node])
    }

    /// `max(x, axis=-1)` on a tensor; Starlark's `max` on anything else.
    fn max<'v>(
        #[starlark(args)] args: UnpackTuple<Value<'v>>,
        #[starlark(require = named)] axis: Option<Value<'v>>,
        #[starlark(require = named)] keepdim: Option<bool>,
        #[starlark(require = named)] key: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        if let Some(x) = args.items.first().and_then(|v| v.downcast_ref::<Tensor>()) {
            let axis = match (axis, args.items.get(1)) {
                (Some(a), None) => a,
                (None, Some(&a)) => a,
                (None, None) => eval.heap().alloc(-1),
                (Some(_), Some(_)) => anyhow::bail!("max: axis given twice"),
            };
            if args.items.len() > 2 {
                anyhow::bail!("max(x, axis=-1, keepdim=False) takes one tensor; use maximum(a, b) elementwise");
            }
            let axes = axes("max", &x.shape, axis)?;
            let out = node(
                eval,
                Op::Max {
                    axes,
                    keepdim: keepdim.unwrap_or(false),
                },
                vec![x.node],
            )?;
            return Ok(eval.heap().alloc(out));
        }
        let builtin = STANDARD
            .iter()
            .find(|(n, _)| *n == "max")
            .map(|(_, v)| v)
            .expect("the standard library has max")
            .to_value();
        let named: Vec<(&str, Value)> = key.map(|k| ("key", k)).into_iter().collect();
        eval.eval_function(builtin, &args.items, &named)
            .map_err(|e| e.into_anyhow())
    }

    fn logsumexp<'v>(
        x: &Tensor,
        #[starlark(default = -1)] axis: i32,
        #[starlark(default = false)] keepdim: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let axis = one_axis("logsumexp", &x.shape, axis)?;
        node(eval, Op::Logsumexp { axis, keepdim }, vec![x.node])
    }

    fn softmax<'v>(
        x: &Tensor,
        #[starlark(default = -1)] axis: i32,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let axis = one_axis("softmax", &x.shape, axis)?;
        node(eval, Op::Softmax { axis }, vec![x.node])
    }

    fn log_softmax<'v>(
        x: &Tensor,
        #[starlark(default = -1)] axis: i32,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let axis = one_axis("log_softmax", &x.shape, axis)?;
        node(eval, Op::LogSoftmax { axis }, vec![x.node])
    }

    fn cumsum<'v>(
        x: &Tensor,
        axis: i32,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let axis = one_axis("cumsum", &x.shape, axis)?;
        node(eval, Op::Cumsum { axis }, vec![x.node])
    }

    fn cummax<'v>(
        x: &Tensor,
        axis: i32,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let axis = one_axis("cummax", &x.shape, axis)?;
        node(eval, Op::Cummax { axis }, vec![x.node])
    }
}
