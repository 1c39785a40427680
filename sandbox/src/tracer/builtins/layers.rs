//! The builtins of the layers family (`crate::ops` holds the ops' rules). Signatures mirror
//! the language's keyword arguments (conv2d has ten), and the macro expands each builtin into a
//! function of its own, so the module is exempt from `too_many_arguments`.
#![allow(clippy::too_many_arguments)]

use super::prelude::*;

// A `#[starlark_module]` is the list of a family's builtins, which the macro wraps into one
// function: it is as long as the family is wide, each builtin a few lines.
#[allow(clippy::too_many_lines)]
#[starlark_module]
pub(crate) fn builtins(builder: &mut GlobalsBuilder) {
    fn linear<'v>(
        x: &Tensor,
        out: i32,
        #[starlark(default = true)] bias: bool,
        #[starlark(require = named)] name: Option<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let out = size("linear", "out", out)?;
        layer(eval, Op::Linear { out, bias }, Some(x), name)
    }

    fn conv1d<'v>(
        x: &Tensor,
        out: i32,
        kernel: i32,
        #[starlark(default = 1)] stride: i32,
        #[starlark(default = 0)] padding: i32,
        #[starlark(default = 1)] groups: i32,
        #[starlark(default = 1)] dilation: i32,
        #[starlark(default = true)] bias: bool,
        #[starlark(require = named)] name: Option<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let op = Op::Conv1d {
            out: size("conv1d", "out", out)?,
            kernel: size("conv1d", "kernel", kernel)?,
            stride: size("conv1d", "stride", stride)?,
            padding: non_negative("conv1d", "padding", padding)?,
            dilation: size("conv1d", "dilation", dilation)?,
            groups: size("conv1d", "groups", groups)?,
            bias,
        };
        layer(eval, op, Some(x), name)
    }

    fn conv2d<'v>(
        x: &Tensor,
        out: i32,
        kernel: Value<'v>,
        #[starlark(default = 1)] stride: Value<'v>,
        #[starlark(default = 0)] padding: Value<'v>,
        #[starlark(default = 1)] groups: i32,
        #[starlark(default = 1)] dilation: Value<'v>,
        #[starlark(default = true)] bias: bool,
        #[starlark(require = named)] name: Option<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let op = Op::Conv2d {
            out: size("conv2d", "out", out)?,
            kernel: pair_sizes("conv2d", "kernel", kernel, true)?,
            stride: pair_sizes("conv2d", "stride", stride, true)?,
            padding: pair_sizes("conv2d", "padding", padding, false)?,
            dilation: pair_sizes("conv2d", "dilation", dilation, true)?,
            groups: size("conv2d", "groups", groups)?,
            bias,
        };
        layer(eval, op, Some(x), name)
    }

    fn embedding<'v>(
        ids: &Tensor,
        vocab: i32,
        dim: i32,
        #[starlark(require = named)] name: Option<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let op = Op::Embedding {
            vocab: size("embedding", "vocab", vocab)?,
            dim: size("embedding", "dim", dim)?,
        };
        layer(eval, op, Some(ids), name)
    }

    fn layer_norm<'v>(
        x: &Tensor,
        #[starlark(default = UnpackFloat(1e-5))] eps: UnpackFloat,
        #[starlark(require = named)] name: Option<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        layer(eval, Op::LayerNorm { eps: eps.0 }, Some(x), name)
    }

    fn rms_norm<'v>(
        x: &Tensor,
        #[starlark(default = UnpackFloat(1e-6))] eps: UnpackFloat,
        #[starlark(require = named)] name: Option<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        layer(eval, Op::RmsNorm { eps: eps.0 }, Some(x), name)
    }

    fn batch_norm<'v>(
        x: &Tensor,
        #[starlark(default = UnpackFloat(1e-5))] eps: UnpackFloat,
        #[starlark(default = UnpackFloat(0.1))] momentum: UnpackFloat,
        #[starlark(require = named)] name: Option<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        layer(
            eval,
            Op::BatchNorm {
                eps: eps.0,
                momentum: momentum.0,
            },
            Some(x),
            name,
        )
    }

    fn group_norm<'v>(
        x: &Tensor,
        groups: i32,
        #[starlark(default = UnpackFloat(1e-5))] eps: UnpackFloat,
        #[starlark(require = named)] name: Option<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let groups = size("group_norm", "groups", groups)?;
        layer(eval, Op::GroupNorm { groups, eps: eps.0 }, Some(x), name)
    }

    fn param<'v>(
        shape: UnpackListOrTuple<i32>,
        #[starlark(default = "normal")] init: &str,
        #[starlark(default = UnpackFloat(0.02))] std: UnpackFloat,
        #[starlark(require = named)] name: Option<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let dims = shape
            .items
            .iter()
            .map(|&d| size("param", "every dim", d))
            .collect::<anyhow::Result<Vec<u64>>>()?;
        let init = match init {
            "normal" => crate::param::Init::Normal { std: std.0 },
            "uniform" => crate::param::Init::Uniform {
                low: -std.0,
                high: std.0,
            },
            "zeros" => crate::param::Init::Zeros,
            "ones" => crate::param::Init::Ones,
            other => anyhow::bail!(
                "param: init must be \"normal\", \"uniform\", \"zeros\" or \"ones\", got {other:?}"
            ),
        };
        let spec = ParamSpec {
            shape: dims,
            init,
            role: crate::param::ParamRole::Weight,
        };
        let span = span_of(eval);
        with_builder(|b| b.raw_param(spec, name, span)).map_err(|e| anyhow::anyhow!(e))
    }
}
