//! The builtins of the reshaping family (`crate::ops` holds the ops' rules).

use super::prelude::*;

// A `#[starlark_module]` is the list of a family's builtins, which the macro wraps into one
// function: it is as long as the family is wide, each builtin a few lines.
#[allow(clippy::too_many_lines)]
#[starlark_module]
pub(crate) fn builtins(builder: &mut GlobalsBuilder) {
    fn reshape<'v>(
        x: &Tensor,
        shape: UnpackListOrTuple<i32>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let shape = reshape_target(&x.shape, &shape.items).map_err(|e| anyhow::anyhow!(e))?;
        node(eval, Op::Reshape { shape }, vec![x.node])
    }

    fn permute<'v>(
        x: &Tensor,
        dims: UnpackListOrTuple<i32>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let dims = dims
            .items
            .iter()
            .map(|&d| one_axis("permute", &x.shape, d))
            .collect::<anyhow::Result<Vec<usize>>>()?;
        node(eval, Op::Permute { dims }, vec![x.node])
    }

    fn transpose<'v>(
        x: &Tensor,
        #[starlark(default = -2)] a: i32,
        #[starlark(default = -1)] b: i32,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let a = one_axis("transpose", &x.shape, a)?;
        let b = one_axis("transpose", &x.shape, b)?;
        let mut dims: Vec<usize> = (0..x.shape.rank()).collect();
        dims.swap(a, b);
        node(eval, Op::Permute { dims }, vec![x.node])
    }

    fn flatten<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
        if x.shape.rank() < 2 {
            anyhow::bail!("flatten needs a tensor of rank 2 or more, got {}", x.shape);
        }
        let rest: u64 = x.shape.dims()[1..].iter().map(|d| d.size).product();
        if x.shape.dims()[1..].iter().any(|d| d.batch) {
            anyhow::bail!(
                "flatten keeps dim 0, but the batch of {} is not there",
                x.shape
            );
        }
        let shape = Shape(vec![x.shape.dims()[0], Dim::fixed(rest)]);
        node(eval, Op::Reshape { shape }, vec![x.node])
    }

    fn concat<'v>(
        xs: UnpackListOrTuple<Value<'v>>,
        #[starlark(default = -1)] axis: i32,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let tensors = xs
            .items
            .iter()
            .map(|&v| tensor_of("concat", v))
            .collect::<anyhow::Result<Vec<&Tensor>>>()?;
        let first = tensors
            .first()
            .ok_or_else(|| anyhow::anyhow!("concat needs at least one tensor"))?;
        let axis = one_axis("concat", &first.shape, axis)?;
        node(
            eval,
            Op::Concat { axis },
            tensors.iter().map(|t| t.node).collect(),
        )
    }

    fn split<'v>(
        x: &Tensor,
        sections: Value<'v>,
        #[starlark(default = -1)] axis: i32,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Vec<Tensor>> {
        let axis = one_axis("split", &x.shape, axis)?;
        let len = x.shape.dims()[axis];
        if len.batch {
            anyhow::bail!(
                "split along axis {axis} of {} would split the batch",
                x.shape
            );
        }
        let sizes: Vec<u64> = if let Some(n) = sections.unpack_i32() {
            let n = size("split", "sections", n)?;
            if !len.size.is_multiple_of(n) {
                anyhow::bail!(
                    "split: axis {axis} of size {} does not split into {n} equal parts",
                    len.size
                );
            }
            vec![len.size / n; n as usize]
        } else if let Ok(Some(list)) = UnpackListOrTuple::<i32>::unpack_value(sections) {
            let sizes = list
                .items
                .iter()
                .map(|&s| size("split", "every size", s))
                .collect::<anyhow::Result<Vec<u64>>>()?;
            if sizes.iter().sum::<u64>() != len.size {
                anyhow::bail!("split: sizes {sizes:?} do not add up to {}", len.size);
            }
            sizes
        } else {
            anyhow::bail!("split: sections must be an int or a list of sizes");
        };
        let mut start = 0;
        let mut parts = Vec::new();
        for s in sizes {
            parts.push(node(
                eval,
                Op::Slice {
                    axis,
                    start,
                    end: start + s,
                },
                vec![x.node],
            )?);
            start += s;
        }
        Ok(parts)
    }

    fn slice<'v>(
        x: &Tensor,
        axis: i32,
        start: i32,
        end: i32,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let axis = one_axis("slice", &x.shape, axis)?;
        let len = x.shape.dims()[axis].size as i64;
        let resolve = |i: i32| {
            let i = i as i64;
            (if i < 0 { i + len } else { i }).clamp(0, len) as u64
        };
        node(
            eval,
            Op::Slice {
                axis,
                start: resolve(start),
                end: resolve(end),
            },
            vec![x.node],
        )
    }

    fn pad<'v>(
        x: &Tensor,
        pads: UnpackListOrTuple<i32>,
        #[starlark(default = -1)] axis: i32,
        #[starlark(default = UnpackFloat(0.0))] value: UnpackFloat,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let [before, after] = pads.items[..] else {
            anyhow::bail!("pad: pads must be [before, after], got {:?}", pads.items);
        };
        let axis = one_axis("pad", &x.shape, axis)?;
        let op = Op::Pad {
            axis,
            before: non_negative("pad", "before", before)?,
            after: non_negative("pad", "after", after)?,
            value: value.0,
        };
        node(eval, op, vec![x.node])
    }

    fn unsqueeze<'v>(
        x: &Tensor,
        axis: i32,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let rank = x.shape.rank() as i64 + 1;
        let a = axis as i64;
        let a = if a < 0 { a + rank } else { a };
        if a < 0 || a >= rank {
            anyhow::bail!("unsqueeze: axis {axis} is out of range for {}", x.shape);
        }
        let mut dims = x.shape.0.clone();
        dims.insert(a as usize, Dim::fixed(1));
        node(eval, Op::Reshape { shape: Shape(dims) }, vec![x.node])
    }

    fn squeeze<'v>(
        x: &Tensor,
        axis: i32,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let a = one_axis("squeeze", &x.shape, axis)?;
        if x.shape.dims()[a] != Dim::fixed(1) {
            anyhow::bail!("squeeze: axis {a} of {} is not of size 1", x.shape);
        }
        let mut dims = x.shape.0.clone();
        dims.remove(a);
        node(eval, Op::Reshape { shape: Shape(dims) }, vec![x.node])
    }

    fn expand<'v>(
        x: &Tensor,
        shape: UnpackListOrTuple<i32>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let target = &shape.items;
        if target.len() < x.shape.rank() {
            anyhow::bail!("expand: {target:?} has fewer dims than {}", x.shape);
        }
        let offset = target.len() - x.shape.rank();
        let mut dims = Vec::new();
        for (i, &d) in target.iter().enumerate() {
            dims.push(match d {
                -1 if i >= offset => x.shape.dims()[i - offset],
                d if d > 0 => Dim::fixed(d as u64),
                d => {
                    anyhow::bail!("expand: dim {d} must be positive, or -1 to keep an existing dim")
                }
            });
        }
        node(eval, Op::Expand { shape: Shape(dims) }, vec![x.node])
    }
}
