//! The builtins of the linalg family (`crate::ops` holds the ops' rules).

use super::prelude::*;

#[starlark_module]
pub(crate) fn builtins(builder: &mut GlobalsBuilder) {
    fn matmul<'v>(
        a: &Tensor,
        b: &Tensor,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        node(eval, Op::Matmul, vec![a.node, b.node])
    }

    fn einsum<'v>(
        equation: &str,
        a: &Tensor,
        b: Option<&Tensor>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let plan = crate::einsum::plan(equation, &a.shape, b.map(|t| &t.shape))
            .map_err(|e| anyhow::anyhow!(e))?;
        let span = span_of(eval);
        with_builder(|builder| {
            plan.apply(a.node, b.map(|t| t.node), &mut |op, inputs| {
                builder.push(op, inputs, Vec::new(), span).map(|t| t.node)
            })
            .map(|id| Tensor {
                node: id,
                shape: builder.nodes[id].shape.clone(),
                dtype: builder.nodes[id].dtype,
            })
        })
        .map_err(|e| anyhow::anyhow!(e))
    }

    fn outer<'v>(
        a: &Tensor,
        b: &Tensor,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Tensor> {
        let mut da = a.shape.0.clone();
        da.push(Dim::fixed(1));
        let mut db = b.shape.0.clone();
        db.insert(db.len().saturating_sub(1), Dim::fixed(1));
        if b.shape.rank() == 0 || a.shape.rank() == 0 {
            anyhow::bail!("outer needs tensors of rank 1 or more");
        }
        let ua = node(eval, Op::Reshape { shape: Shape(da) }, vec![a.node])?;
        let ub = node(eval, Op::Reshape { shape: Shape(db) }, vec![b.node])?;
        node(eval, Op::Mul, vec![ua.node, ub.node])
    }
}
