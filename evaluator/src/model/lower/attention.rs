//! Attention and regularisation.

use autoarch_sandbox::Op;
use burn::tensor::{activation, Device, Distribution, TensorData};

use super::{not_in_family, Args, At};
use crate::error::GraphError;
use crate::model::{padded, Mode, RANK, T};

pub(super) fn lower(at: &At, args: &mut Args) -> Result<T, GraphError> {
    Ok(match &at.node.op {
        Op::CausalMask { size } => causal_mask(*size as usize, at.device),
        Op::ScaledDotProductAttention { causal } => {
            let (q, k, v) = (args.next()?, args.next()?, args.next()?);
            let d = *at.in_dims(0).last().expect("rank ≥ 2");
            let scores = q.matmul(k.swap_dims(RANK - 2, RANK - 1)) / (d as f64).sqrt();
            let scores = if *causal {
                let t = scores.dims()[RANK - 1];
                scores + causal_mask(t, at.device)
            } else {
                scores
            };
            activation::softmax(scores, RANK - 1).matmul(v)
        }
        Op::Dropout { p } => {
            let t = args.next()?;
            if at.mode == Mode::Train && *p > 0.0 {
                let keep = 1.0 - p;
                let mask = T::random(t.dims(), Distribution::Bernoulli(keep), at.device);
                t * mask / keep
            } else {
                t
            }
        }
        op => not_in_family(op, "attention"),
    })
}

/// `[1, .., size, size]`: 0 on and below the diagonal, [`autoarch_sandbox::ops::MASKED`] above.
fn causal_mask(size: usize, device: &Device) -> T {
    let masked = autoarch_sandbox::ops::MASKED as f32;
    let values: Vec<f32> = (0..size * size)
        .map(|k| if k % size > k / size { masked } else { 0.0 })
        .collect();
    T::from_data(TensorData::new(values, padded(&[size, size])), device)
}
