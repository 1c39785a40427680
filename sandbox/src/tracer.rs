//! Running architecture code: Starlark values for tensors, the op builtins, limits, and the
//! translation of Starlark errors into [`Diagnostic`]s.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use allocative::Allocative;
use serde::{Deserialize, Serialize};
use starlark::environment::{Globals, GlobalsBuilder, LibraryExtension, Module};
use starlark::eval::Evaluator;
use starlark::syntax::{AstModule, Dialect, DialectTypes};
use starlark::values::float::UnpackFloat;
use starlark::values::list_or_tuple::UnpackListOrTuple;
use starlark::values::none::NoneOr;
use starlark::values::tuple::UnpackTuple;
use starlark::values::{
    starlark_value, Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Value, ValueLike,
};
use starlark::{starlark_module, starlark_simple_value};

use crate::diagnostic::{missing_syntax, Diagnostic};
use crate::graph::{ArchGraph, Fingerprint, Node, NodeId, ParamId, Span, Stats};
use crate::ops::Op;
use crate::param::ParamSpec;
use crate::shape::{DType, Dim, Shape};
use crate::task::TaskShape;

/// Bounds on what one trace may build and spend. All configurable per campaign.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    pub max_nodes: usize,
    pub max_params: u64,
    pub max_flops: u64,
    /// Starlark ticks (function calls and loop iterations).
    pub max_ticks: u64,
    /// Wall-clock deadline for one trace, in seconds.
    pub deadline_seconds: f64,
    /// Memory limit of the isolated trace process, in MiB.
    pub memory_mb: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_nodes: 20_000,
            max_params: 200_000_000,
            max_flops: 50_000_000_000,
            max_ticks: 2_000_000,
            deadline_seconds: 2.0,
            memory_mb: 1024,
        }
    }
}

/// What a trace needs: the task's interface and the limits.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct TraceConfig {
    pub task: TaskShape,
    #[serde(default)]
    pub limits: Limits,
}

impl TraceConfig {
    pub fn new(task: TaskShape) -> TraceConfig {
        TraceConfig {
            task,
            limits: Limits::default(),
        }
    }
}

/// A successfully traced architecture.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Traced {
    /// The dead-code-free graph.
    pub graph: ArchGraph,
    pub stats: Stats,
    pub fingerprint: Fingerprint,
}

/// The result of tracing: a graph, or what is wrong with the code.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceOutcome {
    Ok(Box<Traced>),
    Invalid { diagnostics: Vec<Diagnostic> },
}

impl TraceOutcome {
    pub fn invalid(diagnostics: Vec<Diagnostic>) -> TraceOutcome {
        TraceOutcome::Invalid { diagnostics }
    }

    pub fn traced(&self) -> Option<&Traced> {
        match self {
            TraceOutcome::Ok(t) => Some(t),
            TraceOutcome::Invalid { .. } => None,
        }
    }

    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            TraceOutcome::Ok(_) => &[],
            TraceOutcome::Invalid { diagnostics } => diagnostics,
        }
    }
}

/// The graph under construction, reachable from builtins through a thread-local while a trace runs.
struct Builder {
    nodes: Vec<Node>,
    params: Vec<ParamSpec>,
    /// Tied parameters: name -> (the op that created them, its parameter ids).
    named: HashMap<String, (Op, Vec<ParamId>, Option<Span>)>,
    scalars: HashMap<u64, NodeId>,
    masks: HashMap<u64, NodeId>,
    param_total: u64,
    flop_total: u64,
    limits: Limits,
}

thread_local! {
    static BUILDER: RefCell<Option<Builder>> = const { RefCell::new(None) };
}

fn with_builder<R>(f: impl FnOnce(&mut Builder) -> R) -> R {
    BUILDER.with(|b| {
        let mut b = b.borrow_mut();
        f(b.as_mut()
            .expect("architecture ops run only inside trace(), which installs a builder"))
    })
}

impl Builder {
    fn push(
        &mut self,
        op: Op,
        inputs: Vec<NodeId>,
        params: Vec<ParamId>,
        span: Option<Span>,
    ) -> Result<Tensor, String> {
        let ins: Vec<(&Shape, DType)> = inputs
            .iter()
            .map(|&i| (&self.nodes[i].shape, self.nodes[i].dtype))
            .collect();
        let (shape, dtype) = op.infer(&ins)?;
        if self.nodes.len() >= self.limits.max_nodes {
            return Err(format!(
                "the graph exceeds the limit of {} nodes",
                self.limits.max_nodes
            ));
        }
        let in_shapes: Vec<&Shape> = inputs.iter().map(|&i| &self.nodes[i].shape).collect();
        self.flop_total = self.flop_total.saturating_add(op.flops(&in_shapes, &shape));
        if self.flop_total > self.limits.max_flops {
            return Err(format!(
                "the graph exceeds the limit of {} FLOPs per sample ({} so far)",
                self.limits.max_flops, self.flop_total
            ));
        }
        let id = self.nodes.len();
        self.nodes.push(Node {
            op,
            inputs,
            params,
            shape: shape.clone(),
            dtype,
            span,
        });
        Ok(Tensor {
            node: id,
            shape,
            dtype,
        })
    }

    fn scalar(&mut self, value: f64) -> NodeId {
        if let Some(&id) = self.scalars.get(&value.to_bits()) {
            return id;
        }
        let id = self.nodes.len();
        self.nodes.push(Node {
            op: Op::Scalar { value },
            inputs: Vec::new(),
            params: Vec::new(),
            shape: Shape::default(),
            dtype: DType::Float32,
            span: None,
        });
        self.scalars.insert(value.to_bits(), id);
        id
    }

    /// A parameter op: create its parameters, or reuse those of an earlier call with `name`.
    fn layer(
        &mut self,
        op: Op,
        input: Option<&Tensor>,
        name: Option<&str>,
        span: Option<Span>,
    ) -> Result<Tensor, String> {
        let specs = op.param_specs(input.map(|t| &t.shape))?;
        let params = match name.and_then(|n| self.named.get(n)) {
            Some((first_op, ids, first_span)) => {
                let same = *first_op == op
                    && ids.len() == specs.len()
                    && ids.iter().zip(&specs).all(|(&i, s)| self.params[i] == *s);
                if !same {
                    let shapes = |v: Vec<Vec<u64>>| format!("{v:?}");
                    return Err(format!(
                        "parameters named {:?} were created by {}{} with shapes {}; this {} call needs shapes {}: tied layers must match",
                        name.unwrap_or_default(),
                        first_op.name(),
                        first_span.map(|s| format!(" at line {}", s.line)).unwrap_or_default(),
                        shapes(ids.iter().map(|&i| self.params[i].shape.clone()).collect()),
                        op.name(),
                        shapes(specs.iter().map(|s| s.shape.clone()).collect()),
                    ));
                }
                ids.clone()
            }
            None => {
                let added: u64 = specs
                    .iter()
                    .filter(|s| s.role.trainable())
                    .map(ParamSpec::numel)
                    .sum();
                self.param_total = self.param_total.saturating_add(added);
                if self.param_total > self.limits.max_params {
                    return Err(format!(
                        "the model exceeds the limit of {} parameters ({} so far)",
                        self.limits.max_params, self.param_total
                    ));
                }
                let first = self.params.len();
                self.params.extend(specs);
                let ids: Vec<ParamId> = (first..self.params.len()).collect();
                if let Some(n) = name {
                    self.named
                        .insert(n.to_string(), (op.clone(), ids.clone(), span));
                }
                ids
            }
        };
        let inputs = input.map(|t| vec![t.node]).unwrap_or_default();
        if inputs.is_empty() {
            // `param(shape)`: a source node holding the raw parameter.
            let id = self.nodes.len();
            let shape = Shape::fixed(&self.params[params[0]].shape);
            self.nodes.push(Node {
                op,
                inputs,
                params,
                shape: shape.clone(),
                dtype: DType::Float32,
                span,
            });
            return Ok(Tensor {
                node: id,
                shape,
                dtype: DType::Float32,
            });
        }
        self.push(op, inputs, params, span)
    }
}

/// A traced tensor as Starlark code sees it.
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Tensor {
    node: NodeId,
    #[allocative(skip)]
    shape: Shape,
    #[allocative(skip)]
    dtype: DType,
}

starlark_simple_value!(Tensor);

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor{} {}", self.shape, self.dtype)
    }
}

fn value_error(message: String) -> starlark::Error {
    starlark::Error::new_native(anyhow::anyhow!(message))
}

/// A tensor operand: a tensor, or a number turned into a scalar node.
fn operand(v: Value) -> Option<Result<NodeId, String>> {
    if let Some(t) = v.downcast_ref::<Tensor>() {
        return Some(Ok(t.node));
    }
    let number = v.unpack_i32().map(f64::from).or_else(|| {
        v.downcast_ref::<starlark::values::float::StarlarkFloat>()
            .map(|f| f.0)
    })?;
    Some(Ok(with_builder(|b| b.scalar(number))))
}

fn binary<'v>(
    op: Op,
    a: NodeId,
    b: Value<'v>,
    heap: Heap<'v>,
    swap: bool,
) -> Option<starlark::Result<Value<'v>>> {
    let b = match operand(b)? {
        Ok(b) => b,
        Err(e) => return Some(Err(value_error(e))),
    };
    let inputs = if swap { vec![b, a] } else { vec![a, b] };
    Some(
        with_builder(|builder| builder.push(op, inputs, Vec::new(), None))
            .map(|t| heap.alloc(t))
            .map_err(value_error),
    )
}

fn no_operand(op: &str, other: Value) -> starlark::Error {
    value_error(format!(
        "`{op}` is not defined between a tensor and a {}",
        other.get_type()
    ))
}

#[starlark_value(type = "Tensor")]
impl<'v> StarlarkValue<'v> for Tensor {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "shape" => {
                let dims: Vec<Value> = self
                    .shape
                    .dims()
                    .iter()
                    .map(|d| heap.alloc(d.as_script_int()))
                    .collect();
                Some(heap.alloc(starlark::values::tuple::AllocTuple(dims)))
            }
            "ndim" => Some(heap.alloc(self.shape.rank() as i32)),
            "dtype" => Some(heap.alloc(self.dtype.to_string())),
            _ => None,
        }
    }

    fn dir_attr(&self) -> Vec<String> {
        vec!["dtype".into(), "ndim".into(), "shape".into()]
    }

    fn add(&self, rhs: Value<'v>, heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        binary(Op::Add, self.node, rhs, heap, false)
    }

    fn radd(&self, lhs: Value<'v>, heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        binary(Op::Add, self.node, lhs, heap, false)
    }

    fn sub(&self, other: Value<'v>, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        binary(Op::Sub, self.node, other, heap, false)
            .unwrap_or_else(|| Err(no_operand("-", other)))
    }

    fn mul(&self, rhs: Value<'v>, heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        binary(Op::Mul, self.node, rhs, heap, false)
    }

    fn rmul(&self, lhs: Value<'v>, heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        binary(Op::Mul, self.node, lhs, heap, false)
    }

    fn div(&self, other: Value<'v>, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        binary(Op::Div, self.node, other, heap, false)
            .unwrap_or_else(|| Err(no_operand("/", other)))
    }

    fn minus(&self, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        with_builder(|b| b.push(Op::Neg, vec![self.node], Vec::new(), None))
            .map(|t| heap.alloc(t))
            .map_err(value_error)
    }

    fn at(&self, _index: Value<'v>, _heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        Err(value_error(
            "tensors cannot be indexed: use slice(x, axis, start, end) or split(x, sections, axis)"
                .to_string(),
        ))
    }
}

fn span_of(eval: &Evaluator) -> Option<Span> {
    let loc = eval.call_stack_top_location()?;
    let pos = loc.resolve_span().begin;
    Some(Span {
        line: pos.line as u32 + 1,
        col: pos.column as u32 + 1,
    })
}

fn size(op: &str, what: &str, v: i32) -> anyhow::Result<u64> {
    if v <= 0 {
        anyhow::bail!("{op}: {what} must be a positive int, got {v}");
    }
    Ok(v as u64)
}

fn non_negative(op: &str, what: &str, v: i32) -> anyhow::Result<u64> {
    if v < 0 {
        anyhow::bail!("{op}: {what} must be 0 or more, got {v}");
    }
    Ok(v as u64)
}

/// An int, or a list/tuple of two ints, as `[h, w]`.
fn pair(op: &str, what: &str, v: Value) -> anyhow::Result<[i32; 2]> {
    if let Some(i) = v.unpack_i32() {
        return Ok([i, i]);
    }
    if let Ok(Some(list)) = UnpackListOrTuple::<i32>::unpack_value(v) {
        if let [h, w] = list.items[..] {
            return Ok([h, w]);
        }
    }
    anyhow::bail!(
        "{op}: {what} must be an int or a pair of ints, got {}",
        v.to_repr()
    )
}

fn pair_sizes(op: &str, what: &str, v: Value, positive: bool) -> anyhow::Result<[u64; 2]> {
    let [h, w] = pair(op, what, v)?;
    if positive {
        Ok([size(op, what, h)?, size(op, what, w)?])
    } else {
        Ok([non_negative(op, what, h)?, non_negative(op, what, w)?])
    }
}

use starlark::values::UnpackValue;

/// Kernel, stride (default: the kernel) and padding of a pooling window, each `[h, w]`.
fn pool_window(
    op: &str,
    kernel: Value,
    stride: NoneOr<Value>,
    padding: Value,
) -> anyhow::Result<([u64; 2], [u64; 2], [u64; 2])> {
    let kernel = pair_sizes(op, "kernel", kernel, true)?;
    let stride = match stride.into_option() {
        Some(s) => pair_sizes(op, "stride", s, true)?,
        None => kernel,
    };
    Ok((kernel, stride, pair_sizes(op, "padding", padding, false)?))
}

fn tensor_of<'v>(op: &str, v: Value<'v>) -> anyhow::Result<&'v Tensor> {
    v.downcast_ref::<Tensor>()
        .ok_or_else(|| anyhow::anyhow!("{op} expects a tensor, got {}", v.get_type()))
}

/// Resolve `axis` (an int or a list of ints) against a shape.
fn axes(op: &str, shape: &Shape, axis: Value) -> anyhow::Result<Vec<usize>> {
    let raw: Vec<i32> = if let Some(i) = axis.unpack_i32() {
        vec![i]
    } else if let Ok(Some(list)) = UnpackListOrTuple::<i32>::unpack_value(axis) {
        list.items
    } else {
        anyhow::bail!(
            "{op}: axis must be an int or a list of ints, got {}",
            axis.to_repr()
        );
    };
    let mut out = Vec::new();
    for a in raw {
        let a = shape
            .axis(a as i64)
            .map_err(|e| anyhow::anyhow!("{op}: {e}"))?;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn one_axis(op: &str, shape: &Shape, axis: i32) -> anyhow::Result<usize> {
    shape
        .axis(axis as i64)
        .map_err(|e| anyhow::anyhow!("{op}: {e}"))
}

fn node(eval: &Evaluator, op: Op, inputs: Vec<NodeId>) -> anyhow::Result<Tensor> {
    let span = span_of(eval);
    with_builder(|b| b.push(op, inputs, Vec::new(), span)).map_err(|e| anyhow::anyhow!(e))
}

fn layer(
    eval: &Evaluator,
    op: Op,
    x: Option<&Tensor>,
    name: Option<&str>,
) -> anyhow::Result<Tensor> {
    let span = span_of(eval);
    with_builder(|b| b.layer(op, x, name, span)).map_err(|e| anyhow::anyhow!(e))
}

fn operand_node(op: &str, v: Value) -> anyhow::Result<NodeId> {
    match operand(v) {
        Some(r) => r.map_err(|e| anyhow::anyhow!(e)),
        None => anyhow::bail!("{op} expects a tensor or a number, got {}", v.get_type()),
    }
}

/// The target of a reshape: `-1` infers one dim, and carries the batch when the input has one.
pub(crate) fn reshape_target(x: &Shape, target: &[i32]) -> Result<Shape, String> {
    let mut known: u64 = 1;
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 if infer.is_none() => infer = Some(i),
            -1 => return Err("reshape: only one dim may be -1".to_string()),
            d if d <= 0 => return Err(format!("reshape: dim {d} must be positive or -1")),
            d => known *= d as u64,
        }
    }
    let total = x.numel();
    let batched = x.batch_axis().is_some();
    let mut dims: Vec<Dim> = target
        .iter()
        .map(|&d| Dim::fixed(d.max(1) as u64))
        .collect();
    match infer {
        Some(i) => {
            if known == 0 || !total.is_multiple_of(known) {
                return Err(format!("reshape: cannot reshape {x} into {target:?}"));
            }
            dims[i] = Dim {
                size: total / known,
                batch: batched,
            };
        }
        None if batched => {
            return Err(format!(
                "reshape: {x} has a batch dim; write -1 where it goes, e.g. reshape(x, [-1, ...])"
            ))
        }
        None if known != total => {
            return Err(format!("reshape: cannot reshape {x} into {target:?}"));
        }
        None => {}
    }
    Ok(Shape(dims))
}

/// The builtins, one per function of the registry. Signatures mirror the language's keyword
/// arguments (conv2d has ten), hence the lint exception.
#[allow(clippy::too_many_arguments)]
mod builtins {
    use super::*;

    #[starlark_module]
    pub(super) fn arch_ops(builder: &mut GlobalsBuilder) {
        fn linear<'v>(
            x: &Tensor,
            out: i32,
            #[starlark(default = true)] bias: bool,
            #[starlark(require = named)] name: Option<&str>,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            let out = size("linear", "out", out)?;
            layer(eval, Op::Linear { out, bias }, Some(x), name)
        }

        fn conv1d<'v>(
            x: &Tensor,
            out: i32,
            kernel: i32,
            #[starlark(default = 1)] stride: i32,
            #[starlark(default = 0)] padding: i32,
            #[starlark(default = 1)] groups: i32,
            #[starlark(default = 1)] dilation: i32,
            #[starlark(default = true)] bias: bool,
            #[starlark(require = named)] name: Option<&str>,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            let op = Op::Conv1d {
                out: size("conv1d", "out", out)?,
                kernel: size("conv1d", "kernel", kernel)?,
                stride: size("conv1d", "stride", stride)?,
                padding: non_negative("conv1d", "padding", padding)?,
                dilation: size("conv1d", "dilation", dilation)?,
                groups: size("conv1d", "groups", groups)?,
                bias,
            };
            layer(eval, op, Some(x), name)
        }

        fn conv2d<'v>(
            x: &Tensor,
            out: i32,
            kernel: Value<'v>,
            #[starlark(default = 1)] stride: Value<'v>,
            #[starlark(default = 0)] padding: Value<'v>,
            #[starlark(default = 1)] groups: i32,
            #[starlark(default = 1)] dilation: Value<'v>,
            #[starlark(default = true)] bias: bool,
            #[starlark(require = named)] name: Option<&str>,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            let op = Op::Conv2d {
                out: size("conv2d", "out", out)?,
                kernel: pair_sizes("conv2d", "kernel", kernel, true)?,
                stride: pair_sizes("conv2d", "stride", stride, true)?,
                padding: pair_sizes("conv2d", "padding", padding, false)?,
                dilation: pair_sizes("conv2d", "dilation", dilation, true)?,
                groups: size("conv2d", "groups", groups)?,
                bias,
            };
            layer(eval, op, Some(x), name)
        }

        fn embedding<'v>(
            ids: &Tensor,
            vocab: i32,
            dim: i32,
            #[starlark(require = named)] name: Option<&str>,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            let op = Op::Embedding {
                vocab: size("embedding", "vocab", vocab)?,
                dim: size("embedding", "dim", dim)?,
            };
            layer(eval, op, Some(ids), name)
        }

        fn layer_norm<'v>(
            x: &Tensor,
            #[starlark(default = UnpackFloat(1e-5))] eps: UnpackFloat,
            #[starlark(require = named)] name: Option<&str>,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            layer(eval, Op::LayerNorm { eps: eps.0 }, Some(x), name)
        }

        fn rms_norm<'v>(
            x: &Tensor,
            #[starlark(default = UnpackFloat(1e-6))] eps: UnpackFloat,
            #[starlark(require = named)] name: Option<&str>,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            layer(eval, Op::RmsNorm { eps: eps.0 }, Some(x), name)
        }

        fn batch_norm<'v>(
            x: &Tensor,
            #[starlark(default = UnpackFloat(1e-5))] eps: UnpackFloat,
            #[starlark(default = UnpackFloat(0.1))] momentum: UnpackFloat,
            #[starlark(require = named)] name: Option<&str>,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            layer(
                eval,
                Op::BatchNorm {
                    eps: eps.0,
                    momentum: momentum.0,
                },
                Some(x),
                name,
            )
        }

        fn group_norm<'v>(
            x: &Tensor,
            groups: i32,
            #[starlark(default = UnpackFloat(1e-5))] eps: UnpackFloat,
            #[starlark(require = named)] name: Option<&str>,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            let groups = size("group_norm", "groups", groups)?;
            layer(eval, Op::GroupNorm { groups, eps: eps.0 }, Some(x), name)
        }

        fn param<'v>(
            shape: UnpackListOrTuple<i32>,
            #[starlark(default = "normal")] init: &str,
            #[starlark(default = UnpackFloat(0.02))] std: UnpackFloat,
            #[starlark(require = named)] name: Option<&str>,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            let dims = shape
                .items
                .iter()
                .map(|&d| size("param", "every dim", d))
                .collect::<anyhow::Result<Vec<u64>>>()?;
            let init = match init {
                "normal" => crate::param::Init::Normal { std: std.0 },
                "uniform" => crate::param::Init::Uniform {
                    low: -std.0,
                    high: std.0,
                },
                "zeros" => crate::param::Init::Zeros,
                "ones" => crate::param::Init::Ones,
                other => anyhow::bail!(
                    "param: init must be \"normal\", \"uniform\", \"zeros\" or \"ones\", got {other:?}"
                ),
            };
            let spec = ParamSpec {
                shape: dims,
                init,
                role: crate::param::ParamRole::Weight,
            };
            let span = span_of(eval);
            with_builder(|b| b.raw_param(spec, name, span)).map_err(|e| anyhow::anyhow!(e))
        }

        fn neg<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
            node(eval, Op::Neg, vec![x.node])
        }
        fn relu<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
            node(eval, Op::Relu, vec![x.node])
        }
        fn gelu<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
            node(eval, Op::Gelu, vec![x.node])
        }
        fn silu<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
            node(eval, Op::Silu, vec![x.node])
        }
        fn sigmoid<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
            node(eval, Op::Sigmoid, vec![x.node])
        }
        fn tanh<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
            node(eval, Op::Tanh, vec![x.node])
        }
        fn softplus<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
            node(eval, Op::Softplus, vec![x.node])
        }
        fn elu<'v>(
            x: &Tensor,
            #[starlark(default = UnpackFloat(1.0))] alpha: UnpackFloat,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            node(eval, Op::Elu { alpha: alpha.0 }, vec![x.node])
        }
        fn exp<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
            node(eval, Op::Exp, vec![x.node])
        }
        fn log<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
            node(eval, Op::Log, vec![x.node])
        }
        fn sqrt<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
            node(eval, Op::Sqrt, vec![x.node])
        }
        fn square<'v>(x: &Tensor, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
            node(eval, Op::Square, vec![x.node])
        }

        fn abs<'v>(x: Value<'v>, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Value<'v>> {
            if let Some(t) = x.downcast_ref::<Tensor>() {
                let out = node(eval, Op::Abs, vec![t.node])?;
                return Ok(eval.heap().alloc(out));
            }
            if let Some(i) = x.unpack_i32() {
                return Ok(eval.heap().alloc(i.abs()));
            }
            match x.downcast_ref::<starlark::values::float::StarlarkFloat>() {
                Some(f) => Ok(eval.heap().alloc(f.0.abs())),
                None => anyhow::bail!("abs expects a tensor or a number, got {}", x.get_type()),
            }
        }

        fn pow<'v>(
            x: &Tensor,
            exponent: UnpackFloat,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            node(
                eval,
                Op::Pow {
                    exponent: exponent.0,
                },
                vec![x.node],
            )
        }

        fn clamp<'v>(
            x: &Tensor,
            #[starlark(default = NoneOr::None)] min: NoneOr<UnpackFloat>,
            #[starlark(default = NoneOr::None)] max: NoneOr<UnpackFloat>,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            let (min, max) = (
                min.into_option().map(|f| f.0),
                max.into_option().map(|f| f.0),
            );
            if let (Some(lo), Some(hi)) = (min, max) {
                if lo > hi {
                    anyhow::bail!("clamp: min {lo} is above max {hi}");
                }
            }
            node(eval, Op::Clamp { min, max }, vec![x.node])
        }

        fn maximum<'v>(
            a: Value<'v>,
            b: Value<'v>,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            let (a, b) = (operand_node("maximum", a)?, operand_node("maximum", b)?);
            node(eval, Op::Maximum, vec![a, b])
        }

        fn minimum<'v>(
            a: Value<'v>,
            b: Value<'v>,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            let (a, b) = (operand_node("minimum", a)?, operand_node("minimum", b)?);
            node(eval, Op::Minimum, vec![a, b])
        }

        fn sum<'v>(
            x: &Tensor,
            #[starlark(default = -1)] axis: Value<'v>,
            #[starlark(default = false)] keepdim: bool,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            let axes = axes("sum", &x.shape, axis)?;
            node(eval, Op::Sum { axes, keepdim }, vec![x.node])
        }

        fn mean<'v>(
            x: &Tensor,
            #[starlark(default = -1)] axis: Value<'v>,
            #[starlark(default = false)] keepdim: bool,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            let axes = axes("mean", &x.shape, axis)?;
            node(eval, Op::Mean { axes, keepdim }, vec![x.node])
        }

        /// `max(x, axis=-1)` on a tensor; Starlark's `max` on anything else.
        fn max<'v>(
            #[starlark(args)] args: UnpackTuple<Value<'v>>,
            #[starlark(require = named)] axis: Option<Value<'v>>,
            #[starlark(require = named)] keepdim: Option<bool>,
            #[starlark(require = named)] key: Option<Value<'v>>,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Value<'v>> {
            if let Some(x) = args.items.first().and_then(|v| v.downcast_ref::<Tensor>()) {
                let axis = match (axis, args.items.get(1)) {
                    (Some(a), None) => a,
                    (None, Some(&a)) => a,
                    (None, None) => eval.heap().alloc(-1),
                    (Some(_), Some(_)) => anyhow::bail!("max: axis given twice"),
                };
                if args.items.len() > 2 {
                    anyhow::bail!("max(x, axis=-1, keepdim=False) takes one tensor; use maximum(a, b) elementwise");
                }
                let axes = axes("max", &x.shape, axis)?;
                let out = node(
                    eval,
                    Op::Max {
                        axes,
                        keepdim: keepdim.unwrap_or(false),
                    },
                    vec![x.node],
                )?;
                return Ok(eval.heap().alloc(out));
            }
            let builtin = STANDARD
                .iter()
                .find(|(n, _)| *n == "max")
                .map(|(_, v)| v)
                .expect("the standard library has max")
                .to_value();
            let named: Vec<(&str, Value)> = key.map(|k| ("key", k)).into_iter().collect();
            eval.eval_function(builtin, &args.items, &named)
                .map_err(|e| e.into_anyhow())
        }

        fn logsumexp<'v>(
            x: &Tensor,
            #[starlark(default = -1)] axis: i32,
            #[starlark(default = false)] keepdim: bool,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            let axis = one_axis("logsumexp", &x.shape, axis)?;
            node(eval, Op::Logsumexp { axis, keepdim }, vec![x.node])
        }

        fn softmax<'v>(
            x: &Tensor,
            #[starlark(default = -1)] axis: i32,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            let axis = one_axis("softmax", &x.shape, axis)?;
            node(eval, Op::Softmax { axis }, vec![x.node])
        }

        fn log_softmax<'v>(
            x: &Tensor,
            #[starlark(default = -1)] axis: i32,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            let axis = one_axis("log_softmax", &x.shape, axis)?;
            node(eval, Op::LogSoftmax { axis }, vec![x.node])
        }

        fn cumsum<'v>(
            x: &Tensor,
            axis: i32,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            let axis = one_axis("cumsum", &x.shape, axis)?;
            node(eval, Op::Cumsum { axis }, vec![x.node])
        }

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
                        anyhow::bail!(
                            "expand: dim {d} must be positive, or -1 to keep an existing dim"
                        )
                    }
                });
            }
            node(eval, Op::Expand { shape: Shape(dims) }, vec![x.node])
        }

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

        fn avg_pool2d<'v>(
            x: &Tensor,
            kernel: Value<'v>,
            #[starlark(default = NoneOr::None)] stride: NoneOr<Value<'v>>,
            #[starlark(default = 0)] padding: Value<'v>,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            let (kernel, stride, padding) = pool_window("avg_pool2d", kernel, stride, padding)?;
            node(
                eval,
                Op::AvgPool2d {
                    kernel,
                    stride,
                    padding,
                },
                vec![x.node],
            )
        }

        fn max_pool2d<'v>(
            x: &Tensor,
            kernel: Value<'v>,
            #[starlark(default = NoneOr::None)] stride: NoneOr<Value<'v>>,
            #[starlark(default = 0)] padding: Value<'v>,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            let (kernel, stride, padding) = pool_window("max_pool2d", kernel, stride, padding)?;
            node(
                eval,
                Op::MaxPool2d {
                    kernel,
                    stride,
                    padding,
                },
                vec![x.node],
            )
        }

        fn global_avg_pool<'v>(
            x: &Tensor,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            if x.shape.rank() != 4 {
                anyhow::bail!("global_avg_pool needs [B, C, H, W], got {}", x.shape);
            }
            node(
                eval,
                Op::Mean {
                    axes: vec![2, 3],
                    keepdim: false,
                },
                vec![x.node],
            )
        }

        fn causal_mask<'v>(size: i32, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Tensor> {
            let size = self::size("causal_mask", "size", size)?;
            let span = span_of(eval);
            Ok(with_builder(|b| b.mask(size, span)))
        }

        fn scaled_dot_product_attention<'v>(
            q: &Tensor,
            k: &Tensor,
            v: &Tensor,
            #[starlark(default = false)] causal: bool,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            node(
                eval,
                Op::ScaledDotProductAttention { causal },
                vec![q.node, k.node, v.node],
            )
        }

        fn dropout<'v>(
            x: &Tensor,
            #[starlark(default = UnpackFloat(0.1))] p: UnpackFloat,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<Tensor> {
            node(eval, Op::Dropout { p: p.0 }, vec![x.node])
        }
    }
}

use builtins::arch_ops;

impl Builder {
    fn raw_param(
        &mut self,
        spec: ParamSpec,
        name: Option<&str>,
        span: Option<Span>,
    ) -> Result<Tensor, String> {
        if let Some((first_op, ids, first_span)) = name.and_then(|n| self.named.get(n)) {
            if *first_op != Op::Param || self.params[ids[0]].shape != spec.shape {
                return Err(format!(
                    "parameters named {:?} were created by {}{} with shape {:?}; param{:?} does not match",
                    name.unwrap_or_default(),
                    first_op.name(),
                    first_span.map(|s| format!(" at line {}", s.line)).unwrap_or_default(),
                    self.params[ids[0]].shape,
                    spec.shape
                ));
            }
            // A tied raw parameter is the same tensor: reuse its node.
            let id = self
                .nodes
                .iter()
                .position(|n| n.op == Op::Param && n.params == *ids)
                .expect("a named param has a node");
            return Ok(Tensor {
                node: id,
                shape: self.nodes[id].shape.clone(),
                dtype: DType::Float32,
            });
        }
        let before = self.params.len();
        self.param_total = self.param_total.saturating_add(spec.numel());
        if self.param_total > self.limits.max_params {
            return Err(format!(
                "the model exceeds the limit of {} parameters ({} so far)",
                self.limits.max_params, self.param_total
            ));
        }
        let shape = Shape::fixed(&spec.shape);
        self.params.push(spec);
        let id = self.nodes.len();
        self.nodes.push(Node {
            op: Op::Param,
            inputs: Vec::new(),
            params: vec![before],
            shape: shape.clone(),
            dtype: DType::Float32,
            span,
        });
        if let Some(n) = name {
            self.named
                .insert(n.to_string(), (Op::Param, vec![before], span));
        }
        Ok(Tensor {
            node: id,
            shape,
            dtype: DType::Float32,
        })
    }

    fn mask(&mut self, size: u64, span: Option<Span>) -> Tensor {
        let id = match self.masks.get(&size) {
            Some(&id) => id,
            None => {
                let id = self.nodes.len();
                self.nodes.push(Node {
                    op: Op::CausalMask { size },
                    inputs: Vec::new(),
                    params: Vec::new(),
                    shape: Shape::fixed(&[size, size]),
                    dtype: DType::Float32,
                    span,
                });
                self.masks.insert(size, id);
                id
            }
        };
        Tensor {
            node: id,
            shape: Shape::fixed(&[size, size]),
            dtype: DType::Float32,
        }
    }
}

static STANDARD: LazyLock<Globals> = LazyLock::new(|| {
    GlobalsBuilder::extended_by(&[LibraryExtension::Json, LibraryExtension::Print]).build()
});

static GLOBALS: LazyLock<Globals> = LazyLock::new(|| {
    GlobalsBuilder::extended_by(&[LibraryExtension::Print])
        .with(arch_ops)
        .build()
});

/// The names of the architecture builtins (for the registry test).
pub fn builtin_names() -> Vec<String> {
    let standard: Vec<String> = GlobalsBuilder::extended_by(&[LibraryExtension::Print])
        .build()
        .names()
        .map(|n| n.as_str().to_string())
        .collect();
    let mut names: Vec<String> = GLOBALS
        .names()
        .map(|n| n.as_str().to_string())
        .filter(|n| !standard.contains(n) || n == "max" || n == "abs")
        .collect();
    names.sort();
    names
}

pub(crate) fn dialect() -> Dialect {
    Dialect {
        enable_def: true,
        enable_lambda: true,
        enable_load: false,
        enable_keyword_only_arguments: true,
        enable_types: DialectTypes::ParseOnly,
        enable_top_level_stmt: true,
        enable_f_strings: true,
        ..Dialect::Standard
    }
}

struct DropPrints;

impl starlark::PrintHandler for DropPrints {
    fn println(&self, _text: &str) -> starlark::Result<()> {
        Ok(())
    }
}

/// The file name diagnostics show for architecture code.
pub const SOURCE_NAME: &str = "model.star";

/// The diagnostics of code that does not parse. Every Python construct Starlark lacks is a parse
/// error; they are named when present.
pub(crate) fn parse_errors(source: &str, e: &starlark::Error, limits: &Limits) -> Vec<Diagnostic> {
    let missing = missing_syntax(source);
    if !missing.is_empty() {
        return missing;
    }
    vec![from_starlark(source, e, limits)]
}

/// Trace architecture code in this process.
///
/// Bounded by the tick budget, the wall deadline and the graph limits, but not in memory: code
/// from an untrusted source should go through [`crate::isolate::trace_isolated`].
pub fn trace(source: &str, config: &TraceConfig) -> TraceOutcome {
    let ast = match AstModule::parse(SOURCE_NAME, source.to_owned(), &dialect()) {
        Ok(ast) => ast,
        Err(e) => return TraceOutcome::invalid(parse_errors(source, &e, &config.limits)),
    };
    BUILDER.with(|b| {
        *b.borrow_mut() = Some(Builder {
            nodes: Vec::new(),
            params: Vec::new(),
            named: HashMap::new(),
            scalars: HashMap::new(),
            masks: HashMap::new(),
            param_total: 0,
            flop_total: 0,
            limits: config.limits.clone(),
        })
    });
    let result = run_model(source, ast, config);
    let builder = BUILDER
        .with(|b| b.borrow_mut().take())
        .expect("builder installed above");
    let (input, output) = match result {
        Ok(ids) => ids,
        Err(d) => return TraceOutcome::invalid(vec![d]),
    };
    let out_node = &builder.nodes[output];
    if out_node.shape != config.task.output || out_node.dtype != DType::Float32 {
        let (line, col) = out_node
            .span
            .map(|s| (s.line, s.col))
            .unwrap_or_else(|| def_model_position(source));
        let d = Diagnostic::at(
            source,
            line,
            col,
            1,
            format!(
                "model returns {} {}, but task `{}` needs float32 {}",
                out_node.dtype, out_node.shape, config.task.name, config.task.output
            ),
        );
        return TraceOutcome::invalid(vec![d]);
    }
    let graph = ArchGraph {
        task: config.task.name.clone(),
        nodes: builder.nodes,
        params: builder.params,
        input,
        output,
    };
    let graph = if graph.has_dead_code() {
        graph.without_dead_code()
    } else {
        graph
    };
    let stats = graph.stats();
    let fingerprint = graph.fingerprint();
    TraceOutcome::Ok(Box::new(Traced {
        graph,
        stats,
        fingerprint,
    }))
}

fn def_model_position(source: &str) -> (u32, u32) {
    source
        .lines()
        .position(|l| l.trim_start().starts_with("def model"))
        .map(|i| (i as u32 + 1, 1))
        .unwrap_or((1, 1))
}

/// Evaluate the module, then call `model` on the task's input. Returns (input, output) node ids.
fn run_model(
    source: &str,
    ast: AstModule,
    config: &TraceConfig,
) -> Result<(NodeId, NodeId), Diagnostic> {
    let limits = &config.limits;
    let at_model = |message: String| {
        let (line, col) = def_model_position(source);
        Diagnostic::at(source, line, col, 1, message)
    };
    Module::with_temp_heap(|module| {
        let heap = module.heap();
        for (k, v) in &config.task.constants {
            module.set(k, heap.alloc(*v));
        }
        let mut eval = Evaluator::new(&module);
        eval.set_max_tick_count(limits.max_ticks.max(1))
            .expect("the tick limit is set once");
        let deadline = Instant::now() + Duration::from_secs_f64(limits.deadline_seconds.max(0.001));
        eval.set_check_cancelled(Box::new(move || Instant::now() > deadline));
        eval.set_print_handler(&DropPrints);
        eval.eval_module(ast, &GLOBALS)
            .map_err(|e| from_starlark(source, &e, limits))?;
        let Some(model) = module.get("model") else {
            return Err(Diagnostic::at(
                source,
                1,
                1,
                1,
                "no `model` function: define `def model(x):` returning the output tensor"
                    .to_string(),
            ));
        };
        if model.get_type() != "function" {
            return Err(at_model(format!(
                "`model` must be a function `def model(x):`, not a {}",
                model.get_type()
            )));
        }
        let input = with_builder(|b| {
            let id = b.nodes.len();
            b.nodes.push(Node {
                op: Op::Input,
                inputs: Vec::new(),
                params: Vec::new(),
                shape: config.task.input.clone(),
                dtype: config.task.input_dtype,
                span: None,
            });
            id
        });
        let x = heap.alloc(Tensor {
            node: input,
            shape: config.task.input.clone(),
            dtype: config.task.input_dtype,
        });
        let out = eval
            .eval_function(model, &[x], &[])
            .map_err(|e| from_starlark(source, &e, limits))?;
        match out.downcast_ref::<Tensor>() {
            Some(t) => Ok((input, t.node)),
            None => Err(at_model(format!(
                "model returned a {}, but it must return a tensor of shape {}",
                out.get_type(),
                config.task.output
            ))),
        }
    })
}

/// Turn a Starlark error into a located diagnostic with the innermost frames as notes.
fn from_starlark(source: &str, e: &starlark::Error, limits: &Limits) -> Diagnostic {
    let raw = e.without_diagnostic().to_string();
    let raw = raw.trim().to_string();
    let (mut message, mut hints) = (raw.clone(), Vec::new());
    if raw.contains("Execution duration limit") {
        message = format!(
            "the code ran more than {} steps (calls and loop iterations) while tracing; is a loop unbounded?",
            limits.max_ticks
        );
    } else if raw.contains("Evaluation cancelled") {
        message = format!(
            "tracing took longer than the {} s deadline; is a loop unbounded?",
            limits.deadline_seconds
        );
    } else if raw.contains("not found") && raw.starts_with("Variable") {
        hints.push("`autoarch ops` lists every op of the language".to_string());
    } else if raw.contains("and `Tensor`") && (raw.contains("`-`") || raw.contains("`/`")) {
        hints.push(
            "a number on the left of `-` or `/` with a tensor on the right is not supported: write `-x + 1.0`, or `pow(x, -1.0) * c`".to_string(),
        );
    }
    let (line, col, width) = match e.span() {
        Some(span) => {
            let r = span.resolve_span();
            let width = if r.end.line == r.begin.line {
                r.end.column.saturating_sub(r.begin.column)
            } else {
                1
            };
            (r.begin.line as u32 + 1, r.begin.column as u32 + 1, width)
        }
        None => (1, 1, 1),
    };
    let mut d = Diagnostic::at(source, line, col, width, message);
    // Innermost frames first, at most three.
    let frames = &e.call_stack().frames;
    for frame in frames.iter().rev().take(3) {
        if let Some(loc) = &frame.location {
            let pos = loc.resolve_span().begin;
            d = d.with_note(format!(
                "in `{}`, called at line {}:{}",
                frame.name,
                pos.line + 1,
                pos.column + 1
            ));
        }
    }
    for h in hints {
        d = d.with_note(h);
    }
    d
}
