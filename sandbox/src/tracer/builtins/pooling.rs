//! The builtins of the pooling family (`crate::ops` holds the ops' rules).

use super::prelude::*;

#[starlark_module]
pub(crate) fn builtins(builder: &mut GlobalsBuilder) {
    fn avg_pool2d<'v>(
        x: &Tensor,
        kernel: Value<'v>,
        #[starlark(default = NoneOr::None)] stride: NoneOr<Value<'v>>,
        #[starlark(default = 0)] padding: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let (kernel, stride, padding) = pool_window("avg_pool2d", kernel, stride, padding)?;
        node(
            eval,
            Op::AvgPool2d {
                kernel,
                stride,
                padding,
            },
            vec![x.node],
        )
    }

    fn max_pool2d<'v>(
        x: &Tensor,
        kernel: Value<'v>,
        #[starlark(default = NoneOr::None)] stride: NoneOr<Value<'v>>,
        #[starlark(default = 0)] padding: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let (kernel, stride, padding) = pool_window("max_pool2d", kernel, stride, padding)?;
        node(
            eval,
            Op::MaxPool2d {
                kernel,
                stride,
                padding,
            },
            vec![x.node],
        )
    }

    fn global_avg_pool<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
        if x.shape.rank() != 4 {
            anyhow::bail!("global_avg_pool needs [B, C, H, W], got {}", x.shape);
        }
        node(
            eval,
            Op::Mean {
                axes: vec![2, 3],
                keepdim: false,
            },
            vec![x.node],
        )
    }
}
