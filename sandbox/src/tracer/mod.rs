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
use starlark::starlark_simple_value;
use starlark::syntax::{AstModule, Dialect, DialectTypes};
use starlark::values::list_or_tuple::UnpackListOrTuple;
use starlark::values::none::NoneOr;
use starlark::values::{
    starlark_value, Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Value, ValueLike,
};

mod builtins;

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
pub(crate) struct Builder {
    pub(crate) nodes: Vec<Node>,
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

pub(crate) fn with_builder<R>(f: impl FnOnce(&mut Builder) -> R) -> R {
    BUILDER.with(|b| {
        let mut b = b.borrow_mut();
        f(b.as_mut()
            .expect("architecture ops run only inside trace(), which installs a builder"))
    })
}

impl Builder {
    pub(crate) fn push(
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
    pub(crate) node: NodeId,
    #[allocative(skip)]
    pub(crate) shape: Shape,
    #[allocative(skip)]
    pub(crate) dtype: DType,
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

pub(crate) fn span_of(eval: &Evaluator) -> Option<Span> {
    let loc = eval.call_stack_top_location()?;
    let pos = loc.resolve_span().begin;
    Some(Span {
        line: pos.line as u32 + 1,
        col: pos.column as u32 + 1,
    })
}

pub(crate) fn size(op: &str, what: &str, v: i32) -> anyhow::Result<u64> {
    if v <= 0 {
        anyhow::bail!("{op}: {what} must be a positive int, got {v}");
    }
    Ok(v as u64)
}

pub(crate) fn non_negative(op: &str, what: &str, v: i32) -> anyhow::Result<u64> {
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

pub(crate) fn pair_sizes(
    op: &str,
    what: &str,
    v: Value,
    positive: bool,
) -> anyhow::Result<[u64; 2]> {
    let [h, w] = pair(op, what, v)?;
    if positive {
        Ok([size(op, what, h)?, size(op, what, w)?])
    } else {
        Ok([non_negative(op, what, h)?, non_negative(op, what, w)?])
    }
}

use starlark::values::UnpackValue;

/// Kernel, stride (default: the kernel) and padding of a pooling window, each `[h, w]`.
pub(crate) fn pool_window(
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

pub(crate) fn tensor_of<'v>(op: &str, v: Value<'v>) -> anyhow::Result<&'v Tensor> {
    v.downcast_ref::<Tensor>()
        .ok_or_else(|| anyhow::anyhow!("{op} expects a tensor, got {}", v.get_type()))
}

/// Resolve `axis` (an int or a list of ints) against a shape.
pub(crate) fn axes(op: &str, shape: &Shape, axis: Value) -> anyhow::Result<Vec<usize>> {
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

pub(crate) fn one_axis(op: &str, shape: &Shape, axis: i32) -> anyhow::Result<usize> {
    shape
        .axis(axis as i64)
        .map_err(|e| anyhow::anyhow!("{op}: {e}"))
}

pub(crate) fn node(eval: &Evaluator, op: Op, inputs: Vec<NodeId>) -> anyhow::Result<Tensor> {
    let span = span_of(eval);
    with_builder(|b| b.push(op, inputs, Vec::new(), span)).map_err(|e| anyhow::anyhow!(e))
}

pub(crate) fn layer(
    eval: &Evaluator,
    op: Op,
    x: Option<&Tensor>,
    name: Option<&str>,
) -> anyhow::Result<Tensor> {
    let span = span_of(eval);
    with_builder(|b| b.layer(op, x, name, span)).map_err(|e| anyhow::anyhow!(e))
}

pub(crate) fn operand_node(op: &str, v: Value) -> anyhow::Result<NodeId> {
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

impl Builder {
    pub(crate) fn raw_param(
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

    pub(crate) fn mask(&mut self, size: u64, span: Option<Span>) -> Tensor {
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

pub(crate) static STANDARD: LazyLock<Globals> = LazyLock::new(|| {
    GlobalsBuilder::extended_by(&[LibraryExtension::Json, LibraryExtension::Print]).build()
});

static GLOBALS: LazyLock<Globals> = LazyLock::new(|| {
    GlobalsBuilder::extended_by(&[LibraryExtension::Print])
        .with(builtins::all)
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
