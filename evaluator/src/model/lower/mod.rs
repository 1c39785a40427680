//! Lowering a node to burn, one module per op family, as the sandbox's `ops/` modules group
//! them: a new op's lowering goes in its family's module here.

mod attention;
mod elementwise;
mod layers;
mod linalg;
mod pooling;
mod reductions;
mod reshaping;

use autoarch_sandbox::ops::Category;
use autoarch_sandbox::{Node, Op, Shape};
use burn::tensor::Device;

use super::{concrete, BufferUpdates, GraphModel, Mode, Value, RANK, T};
use crate::error::GraphError;

/// The node being lowered, where it sits in the run, and the shapes around it.
pub(super) struct At<'a> {
    pub model: &'a GraphModel,
    /// The node's index in the graph.
    pub i: usize,
    pub node: &'a Node,
    pub batch: usize,
    pub mode: Mode,
    pub device: &'a Device,
    /// The node's output shape for this batch, padded to [`RANK`].
    pub out_shape: [usize; RANK],
}

impl At<'_> {
    /// The node's `k`-th parameter.
    fn p(&self, k: usize) -> T {
        self.model.param(self.node.params[k])
    }

    /// The traced shape of input `k`.
    fn in_shape(&self, k: usize) -> &Shape {
        &self.model.graph.nodes[self.node.inputs[k]].shape
    }

    /// The concrete dims of input `k` for this batch.
    fn in_dims(&self, k: usize) -> Vec<usize> {
        concrete(self.in_shape(k), self.batch)
    }

    /// Logical axis `a` of input `k`, at [`RANK`].
    fn axis(&self, k: usize, a: usize) -> usize {
        super::axis(self.in_shape(k), a)
    }

    fn error(&self, what: &str) -> GraphError {
        GraphError(format!("node {}: {what}", self.i))
    }
}

/// A node's float inputs, taken in order.
pub(super) struct Args {
    xs: std::vec::IntoIter<T>,
    node: usize,
}

impl Args {
    fn next(&mut self) -> Result<T, GraphError> {
        self.xs
            .next()
            .ok_or_else(|| GraphError(format!("node {}: missing input", self.node)))
    }

    /// Every input not taken yet.
    fn rest(&mut self) -> Vec<T> {
        self.xs.by_ref().collect()
    }
}

/// Lowers one node on its inputs' values.
pub(super) fn lower(
    at: &At,
    args: Vec<Value>,
    updates: &mut BufferUpdates,
) -> Result<Value, GraphError> {
    let family = at.node.op.family();
    // Reshaping works on ints as well as floats; an embedding looks ints up.
    if let Some(Value::Int(_)) = args.first() {
        match (family, &at.node.op) {
            (Some(Category::Reshaping), Op::Pad { .. }) => {}
            (Some(Category::Reshaping), _) => {
                let ints = args
                    .into_iter()
                    .map(|a| match a {
                        Value::Int(t) => Ok(t),
                        Value::Float(_) => Err(at.error("mixes ints and floats")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(Value::Int(reshaping::lower_int(at, ints)));
            }
            (_, Op::Embedding { .. }) => {
                let Some(Value::Int(ids)) = args.into_iter().next() else {
                    unreachable!("matched above")
                };
                return Ok(Value::Float(layers::embedding(at, ids)));
            }
            _ => {}
        }
    }
    let mut args = Args {
        xs: args
            .into_iter()
            .map(|a| a.float(at.i))
            .collect::<Result<Vec<T>, _>>()?
            .into_iter(),
        node: at.i,
    };
    let out = match family {
        None => match at.node.op {
            Op::Scalar { value } => T::full([1; RANK], value, at.device),
            _ => return Err(GraphError("the input is bound by the caller".into())),
        },
        Some(Category::Layers) => layers::lower(at, &mut args, updates)?,
        Some(Category::Elementwise) => elementwise::lower(at, &mut args)?,
        Some(Category::Reductions) => reductions::lower(at, &mut args)?,
        Some(Category::Reshaping) => reshaping::lower(at, &mut args)?,
        Some(Category::LinearAlgebra) => linalg::lower(at, &mut args)?,
        Some(Category::Pooling) => pooling::lower(at, &mut args)?,
        Some(Category::Attention) => attention::lower(at, &mut args)?,
    };
    Ok(Value::Float(out))
}

/// An op that a family's lowering was handed but does not hold.
fn not_in_family(op: &Op, family: &str) -> ! {
    unreachable!("{} is not in the {family} family", op.name())
}
