//! The language's builtins, one module per op family (the families of `crate::ops`, which hold
//! each op's rules): a builtin checks its arguments and records its op in the trace.

mod attention;
mod elementwise;
mod layers;
mod linalg;
mod pooling;
mod reductions;
mod reshaping;

use starlark::environment::GlobalsBuilder;

/// Every family's builtins.
pub(super) fn all(builder: &mut GlobalsBuilder) {
    layers::builtins(builder);
    elementwise::builtins(builder);
    reductions::builtins(builder);
    reshaping::builtins(builder);
    linalg::builtins(builder);
    pooling::builtins(builder);
    attention::builtins(builder);
}

/// What the families' builtins use.
mod prelude {
    pub(super) use starlark::environment::GlobalsBuilder;
    pub(super) use starlark::eval::Evaluator;
    pub(super) use starlark::starlark_module;
    pub(super) use starlark::values::float::UnpackFloat;
    pub(super) use starlark::values::list_or_tuple::UnpackListOrTuple;
    pub(super) use starlark::values::none::NoneOr;
    pub(super) use starlark::values::tuple::UnpackTuple;
    pub(super) use starlark::values::{UnpackValue, Value, ValueLike};

    pub(super) use super::super::{
        axes, layer, node, non_negative, one_axis, operand_node, pair_sizes, pool_window,
        reshape_target, size, span_of, tensor_of, with_builder, Tensor, STANDARD,
    };
    pub(super) use crate::ops::Op;
    pub(super) use crate::param::ParamSpec;
    pub(super) use crate::shape::{Dim, Shape};
}
