//! Reductions and normalisers over an axis.

use autoarch_sandbox::Op;
use burn::tensor::activation;

use super::{not_in_family, Args, At};
use crate::error::GraphError;
use crate::model::T;

pub(super) fn lower(at: &At, args: &mut Args) -> Result<T, GraphError> {
    let x = args.next()?;
    let axis = |a: usize| at.axis(0, a);
    Ok(match &at.node.op {
        Op::Sum { axes, .. } | Op::Mean { axes, .. } | Op::Max { axes, .. } => {
            let mut t = x;
            for &a in axes {
                t = match at.node.op {
                    Op::Sum { .. } => t.sum_dim(axis(a)),
                    Op::Mean { .. } => t.mean_dim(axis(a)),
                    _ => t.max_dim(axis(a)),
                };
            }
            t.reshape(at.out_shape)
        }
        Op::Logsumexp { axis: a, .. } => {
            let a = axis(*a);
            let m = x.clone().max_dim(a).detach();
            ((x - m.clone()).exp().sum_dim(a).log() + m).reshape(at.out_shape)
        }
        Op::Softmax { axis: a } => activation::softmax(x, axis(*a)),
        Op::LogSoftmax { axis: a } => activation::log_softmax(x, axis(*a)),
        Op::Cumsum { axis: a } => x.cumsum(axis(*a)),
        Op::Cummax { axis: a } => x.cummax(axis(*a)),
        op => not_in_family(op, "reductions"),
    })
}
