//! Reshaping ops, on floats and (all but `pad`) on ints.

use autoarch_sandbox::{Op, Shape};

use super::{not_in_family, Args, At};
use crate::error::GraphError;
use crate::model::{axis, TInt, RANK, T};

pub(super) fn lower(at: &At, args: &mut Args) -> Result<T, GraphError> {
    match &at.node.op {
        Op::Pad {
            axis: a,
            before,
            after,
            value,
        } => {
            let t = args.next()?;
            let a = at.axis(0, *a);
            let side = |n: u64| {
                let mut s = t.dims();
                s[a] = n as usize;
                T::full(s, *value, at.device)
            };
            let mut parts = Vec::with_capacity(3);
            if *before > 0 {
                parts.push(side(*before));
            }
            let after_part = (*after > 0).then(|| side(*after));
            parts.push(t);
            parts.extend(after_part);
            Ok(T::cat(parts, a))
        }
        op => {
            let xs = args.rest();
            if xs.is_empty() {
                return Err(at.error("missing input"));
            }
            Ok(move_float(op, xs, at.in_shape(0), at.out_shape))
        }
    }
}

/// A reshaping op on int tensors (token ids).
pub(super) fn lower_int(at: &At, ints: Vec<TInt>) -> TInt {
    move_int(&at.node.op, ints, at.in_shape(0), at.out_shape)
}

/// The axes of a permutation at [`RANK`].
fn permutation(dims: &[usize], shape: &Shape) -> [isize; RANK] {
    let off = RANK - shape.rank();
    let perm: Vec<isize> = (0..off)
        .chain(dims.iter().map(|d| d + off))
        .map(|d| d as isize)
        .collect();
    perm.try_into().expect("rank is RANK")
}

/// The ops that only move elements, for one tensor type.
macro_rules! moves {
    ($name:ident, $t:ty) => {
        fn $name(op: &Op, mut xs: Vec<$t>, shape: &Shape, out: [usize; RANK]) -> $t {
            match op {
                Op::Reshape { .. } => xs.remove(0).reshape(out),
                Op::Permute { dims } => xs.remove(0).permute(permutation(dims, shape)),
                Op::Slice {
                    axis: a,
                    start,
                    end,
                } => {
                    xs.remove(0)
                        .narrow(axis(shape, *a), *start as usize, (*end - *start) as usize)
                }
                Op::Expand { .. } => xs.remove(0).expand(out),
                Op::Concat { axis: a } => <$t>::cat(xs, axis(shape, *a)),
                op => not_in_family(op, "reshaping (element moves)"),
            }
        }
    };
}
moves!(move_float, T);
moves!(move_int, TInt);
