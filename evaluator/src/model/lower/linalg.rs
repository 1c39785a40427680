//! Linear algebra.

use autoarch_sandbox::Op;
use burn::tensor::Tensor;

use super::{not_in_family, Args, At};
use crate::error::GraphError;
use crate::model::{RANK, T};

pub(super) fn lower(at: &At, args: &mut Args) -> Result<T, GraphError> {
    match &at.node.op {
        Op::Matmul => {
            let (a, b) = (args.next()?, args.next()?);
            Ok(matmul(a, b, &at.in_dims(0), &at.in_dims(1), at.out_shape))
        }
        op => not_in_family(op, "linear algebra"),
    }
}

/// Matrix product with NumPy broadcasting of the leading dims. A right operand without leading
/// dims (a weight) multiplies the left one flattened to two dims: one large GEMM, no copies.
fn matmul(a: T, b: T, a_dims: &[usize], b_dims: &[usize], out_shape: [usize; RANK]) -> T {
    let (k, n) = (b_dims[b_dims.len() - 2], b_dims[b_dims.len() - 1]);
    let b_lead: usize = b_dims[..b_dims.len() - 2].iter().product();
    if b_lead == 1 {
        let rows = a_dims.iter().product::<usize>() / k.max(1);
        let y: Tensor<2> = a.reshape([rows, k]).matmul(b.reshape([k, n]));
        return y.reshape(out_shape);
    }
    let a_lead = &a.dims()[..RANK - 2];
    let b_lead = &b.dims()[..RANK - 2];
    if a_lead == b_lead {
        return a.matmul(b);
    }
    // Broadcast both to the output's leading dims first.
    let mut a_shape = out_shape;
    a_shape[RANK - 1] = k;
    let mut b_shape = out_shape;
    b_shape[RANK - 2] = k;
    a.expand(a_shape).matmul(b.expand(b_shape))
}
