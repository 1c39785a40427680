//! Layers with parameters.

use autoarch_sandbox::Op;
use burn::tensor::module::{conv1d, conv2d, embedding as lookup};
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;

use super::{not_in_family, Args, At};
use crate::error::GraphError;
use crate::model::{padded, BufferUpdates, GraphModel, Mode, TInt, RANK, T};

pub(super) fn lower(
    at: &At,
    args: &mut Args,
    updates: &mut BufferUpdates,
) -> Result<T, GraphError> {
    let out_shape = at.out_shape;
    Ok(match &at.node.op {
        Op::Param => at.p(0),
        Op::Linear { bias, .. } => {
            let x = args.next()?;
            let d = at.in_dims(0);
            let inp = *d.last().expect("rank ≥ 1");
            let rows = d.iter().product::<usize>() / inp.max(1);
            let w = at.p(0);
            let [.., wi, wo] = w.dims();
            let mut y: Tensor<2> = x.reshape([rows, inp]).matmul(w.reshape([wi, wo]));
            if *bias {
                let b: Tensor<2> = at.p(1).reshape([1, wo]);
                y = y + b;
            }
            y.reshape(out_shape)
        }
        Op::Conv1d { .. } | Op::Conv2d { .. } => convolution(at, args.next()?),
        Op::Embedding { .. } => return Err(at.error("embedding needs int ids")),
        Op::LayerNorm { eps } => {
            let x = args.next()?;
            let mean = x.clone().mean_dim(RANK - 1);
            let centred = x - mean;
            let var = centred.clone().square().mean_dim(RANK - 1);
            centred / (var + *eps).sqrt() * at.p(0) + at.p(1)
        }
        Op::RmsNorm { eps } => {
            let x = args.next()?;
            let ms = x.clone().square().mean_dim(RANK - 1);
            x / (ms + *eps).sqrt() * at.p(0)
        }
        Op::BatchNorm { eps, momentum } => batch_norm(at, args.next()?, *eps, *momentum, updates),
        Op::GroupNorm { groups, eps } => group_norm(at, args.next()?, *groups as usize, *eps),
        op => not_in_family(op, "layers"),
    })
}

/// A 1-D or 2-D convolution with the node's kernel (and bias).
fn convolution(at: &At, x: T) -> T {
    let d = at.in_dims(0);
    let w = at.p(0);
    match &at.node.op {
        Op::Conv1d {
            stride,
            padding,
            dilation,
            groups,
            bias,
            ..
        } => {
            let [.., wo, wc, wk] = w.dims();
            let b = bias.then(|| at.p(1).reshape([wo]));
            let options = ConvOptions::new(
                [*stride as usize],
                [*padding as usize],
                [*dilation as usize],
                *groups as usize,
            );
            conv1d(
                x.reshape([d[0], d[1], d[2]]),
                w.reshape([wo, wc, wk]),
                b,
                options,
            )
            .reshape(at.out_shape)
        }
        Op::Conv2d {
            stride,
            padding,
            dilation,
            groups,
            bias,
            ..
        } => {
            let [.., wo, wc, kh, kw] = w.dims();
            let b = bias.then(|| at.p(1).reshape([wo]));
            let pair = |v: &[u64; 2]| [v[0] as usize, v[1] as usize];
            let options = ConvOptions::new(
                pair(stride),
                pair(padding),
                pair(dilation),
                *groups as usize,
            );
            conv2d(
                x.reshape([d[0], d[1], d[2], d[3]]),
                w.reshape([wo, wc, kh, kw]),
                b,
                options,
            )
            .reshape(at.out_shape)
        }
        op => not_in_family(op, "convolutions"),
    }
}

/// Group norm: each sample's channels normalised in `groups` groups, then scaled and shifted
/// per channel.
fn group_norm(at: &At, x: T, groups: usize, eps: f64) -> T {
    let d = at.in_dims(0);
    let per_group = d.iter().product::<usize>() / d[0] / groups;
    let grouped: Tensor<3> = x.reshape([d[0], groups, per_group]);
    let mean = grouped.clone().mean_dim(2);
    let centred = grouped - mean;
    let var = centred.clone().square().mean_dim(2);
    let normed: T = (centred / (var + eps).sqrt()).reshape(at.out_shape);
    let ch = at.axis(0, 1);
    let mut channel_shape = [1; RANK];
    channel_shape[ch] = d[1];
    normed * at.p(0).reshape(channel_shape) + at.p(1).reshape(channel_shape)
}

/// Looks token ids up in the node's table.
pub(super) fn embedding(at: &At, ids: TInt) -> T {
    let n: usize = at.in_dims(0).iter().product();
    let ids: Tensor<2, burn::tensor::Int> = ids.reshape([1, n]);
    let table = at.p(0);
    let [_, _, _, _, v, d] = table.dims();
    let out = lookup(table.reshape([v, d]), ids);
    out.reshape(at.out_shape)
}

/// Batch norm: batch statistics while training (and the running statistics updated), the
/// running statistics when evaluating.
fn batch_norm(at: &At, x: T, eps: f64, momentum: f64, updates: &mut BufferUpdates) -> T {
    let out_shape = at.out_shape;
    let ch = at.axis(0, 1);
    let channel_shape = {
        let mut s = [1; RANK];
        s[ch] = out_shape[ch];
        s
    };
    let reduce: Vec<usize> = (0..RANK).filter(|&a| a != ch).collect();
    let (mean, var) = match at.mode {
        Mode::Train => {
            let mean = x.clone().mean_dims(&reduce);
            let var = (x.clone() - mean.clone()).square().mean_dims(&reduce);
            let n = (out_shape.iter().product::<usize>() / out_shape[ch]) as f64;
            let unbiased = var.clone().detach() * (n / (n - 1.0).max(1.0));
            let (rm, rv) = (at.node.params[2], at.node.params[3]);
            let model = at.model;
            let new_mean = model.param(rm).reshape(channel_shape) * (1.0 - momentum)
                + mean.clone().detach() * momentum;
            let new_var =
                model.param(rv).reshape(channel_shape) * (1.0 - momentum) + unbiased * momentum;
            updates.push((
                model.buffer_index(rm),
                new_mean.reshape(param_shape(rm, model)),
            ));
            updates.push((
                model.buffer_index(rv),
                new_var.reshape(param_shape(rv, model)),
            ));
            (mean, var)
        }
        Mode::Eval => (
            at.p(2).reshape(channel_shape),
            at.p(3).reshape(channel_shape),
        ),
    };
    (x - mean) / (var + eps).sqrt() * at.p(0).reshape(channel_shape)
        + at.p(1).reshape(channel_shape)
}

/// A graph parameter's shape, padded to [`RANK`].
fn param_shape(param: usize, model: &GraphModel) -> [usize; RANK] {
    let dims: Vec<usize> = model.graph.params[param]
        .shape
        .iter()
        .map(|&d| d as usize)
        .collect();
    padded(&dims)
}
