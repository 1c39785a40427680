//! Pooling over [B, C, H, W].

use autoarch_sandbox::Op;
use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};

use super::{not_in_family, Args, At};
use crate::error::GraphError;
use crate::model::T;

pub(super) fn lower(at: &At, args: &mut Args) -> Result<T, GraphError> {
    let d = at.in_dims(0);
    let x = args.next()?.reshape([d[0], d[1], d[2], d[3]]);
    let pair = |v: &[u64; 2]| [v[0] as usize, v[1] as usize];
    let y = match &at.node.op {
        Op::AvgPool2d {
            kernel,
            stride,
            padding,
        } => {
            let options = AvgPoolOptions::new(pair(kernel))
                .with_stride(pair(stride))
                .with_padding(pair(padding))
                .with_count_include_pad(false);
            avg_pool2d(x, options)
        }
        Op::MaxPool2d {
            kernel,
            stride,
            padding,
        } => {
            let options = MaxPoolOptions::new(pair(kernel))
                .with_stride(pair(stride))
                .with_padding(pair(padding));
            max_pool2d(x, options)
        }
        op => not_in_family(op, "pooling"),
    };
    Ok(y.reshape(at.out_shape))
}
