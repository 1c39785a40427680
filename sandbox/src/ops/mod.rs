//! The ops of the language, one module per family ([`Category`]): layers with parameters,
//! elementwise, reductions, reshaping, linear algebra, pooling, attention. A family's module holds
//! the definition of each of its ops: its entry in the language reference (signature, docs,
//! parameters, FLOPs in words), the shape rule, the FLOP count, the parameters it creates, and its
//! printing as Starlark and as PyTorch ([`print`]). Two layers sit on top and mirror the same
//! families: the Starlark builtins that record an op in a trace (`crate::tracer`'s `builtins/`)
//! and the evaluator's lowering to burn (`evaluator/src/model/lower/`). ARCHITECTURE.md, "How to
//! add an op", lists the places.
//!
//! This module holds what is shared: the [`Op`] enum (the graph's data), which family an op
//! belongs to, the checks shape rules share, and the reference assembled from the families.
//! The language reference (`autoarch ops`, and the LLM prompt) is generated from [`REGISTRY`], and
//! a test checks that the registry and the Starlark globals name the same functions. The module
//! depends on nothing but shapes and parameters, so the tracer, the printer and the graph can all
//! depend on it.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::param::ParamSpec;
use crate::shape::{DType, Dim, Shape};
use print::{Call, PyCall};

mod attention;
mod elementwise;
mod layers;
mod linalg;
mod pooling;
pub(crate) mod print;
mod reductions;
mod reshaping;

/// A primitive graph op with its attributes. Composite functions (`einsum`, `outer`, `flatten`,
/// `transpose`, ...) are traced into these, so each graph has one canonical spelling.
///
/// **Append new variants at the end.** The fingerprint hashes an op's postcard encoding, which
/// starts with the variant's index: a variant inserted in the middle renumbers the ones after it
/// and changes the fingerprint of every stored design that uses them.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
// Externally tagged: serde_json is built with `arbitrary_precision` here (a dependency asks for
// it), which breaks f64 fields inside internally tagged enums.
#[serde(rename_all = "snake_case")]
pub enum Op {
    Input,
    Scalar {
        value: f64,
    },
    CausalMask {
        size: u64,
    },
    Param,
    Linear {
        out: u64,
        bias: bool,
    },
    Conv1d {
        out: u64,
        kernel: u64,
        stride: u64,
        padding: u64,
        dilation: u64,
        groups: u64,
        bias: bool,
    },
    Conv2d {
        out: u64,
        kernel: [u64; 2],
        stride: [u64; 2],
        padding: [u64; 2],
        dilation: [u64; 2],
        groups: u64,
        bias: bool,
    },
    Embedding {
        vocab: u64,
        dim: u64,
    },
    LayerNorm {
        eps: f64,
    },
    RmsNorm {
        eps: f64,
    },
    BatchNorm {
        eps: f64,
        momentum: f64,
    },
    GroupNorm {
        groups: u64,
        eps: f64,
    },
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
    Neg,
    Relu,
    Gelu,
    Silu,
    Sigmoid,
    Tanh,
    Softplus,
    Elu {
        alpha: f64,
    },
    Exp,
    Log,
    Sqrt,
    Abs,
    Square,
    Pow {
        exponent: f64,
    },
    Clamp {
        min: Option<f64>,
        max: Option<f64>,
    },
    Sum {
        axes: Vec<usize>,
        keepdim: bool,
    },
    Mean {
        axes: Vec<usize>,
        keepdim: bool,
    },
    Max {
        axes: Vec<usize>,
        keepdim: bool,
    },
    Logsumexp {
        axis: usize,
        keepdim: bool,
    },
    Softmax {
        axis: usize,
    },
    LogSoftmax {
        axis: usize,
    },
    Cumsum {
        axis: usize,
    },
    Reshape {
        shape: Shape,
    },
    Permute {
        dims: Vec<usize>,
    },
    Concat {
        axis: usize,
    },
    Slice {
        axis: usize,
        start: u64,
        end: u64,
    },
    Pad {
        axis: usize,
        before: u64,
        after: u64,
        value: f64,
    },
    Expand {
        shape: Shape,
    },
    Matmul,
    AvgPool2d {
        kernel: [u64; 2],
        stride: [u64; 2],
        padding: [u64; 2],
    },
    MaxPool2d {
        kernel: [u64; 2],
        stride: [u64; 2],
        padding: [u64; 2],
    },
    ScaledDotProductAttention {
        causal: bool,
    },
    Dropout {
        p: f64,
    },
    /// Running maximum along an axis (added after the enum's first release: new variants go
    /// here, at the end).
    Cummax {
        axis: usize,
    },
}

/// The value a causal mask holds above the diagonal.
pub const MASKED: f64 = -1e9;

/// The shapes and dtypes of an op's inputs.
pub(super) type Inputs<'a> = [(&'a Shape, DType)];

pub(super) fn float_input(op: &str, inputs: &Inputs, i: usize) -> Result<Shape, String> {
    let (shape, dtype) = inputs[i];
    if dtype != DType::Float32 {
        return Err(format!(
            "{op} needs a float tensor, got an int tensor {shape}; token ids go through embedding(ids, vocab, dim) first"
        ));
    }
    Ok(shape.clone())
}

pub(super) fn fixed_dim(op: &str, d: Dim, what: &str) -> Result<u64, String> {
    if d.batch {
        return Err(format!("{op}: the {what} cannot be the batch dim"));
    }
    Ok(d.size)
}

pub(super) fn not_batch_axis(op: &str, shape: &Shape, axis: usize) -> Result<(), String> {
    if shape.dims()[axis].batch {
        return Err(format!(
            "{op} over axis {axis} of {shape} would mix samples: that axis holds the batch"
        ));
    }
    Ok(())
}

pub(super) fn min_rank(op: &str, shape: &Shape, rank: usize, layout: &str) -> Result<(), String> {
    if shape.rank() < rank {
        return Err(format!(
            "{op} needs a tensor of rank {rank} or more ({layout}), got {shape}"
        ));
    }
    Ok(())
}

pub(super) fn exact_rank(op: &str, shape: &Shape, rank: usize, layout: &str) -> Result<(), String> {
    if shape.rank() != rank {
        return Err(format!(
            "{op} needs a tensor of rank {rank} ({layout}), got {shape}"
        ));
    }
    Ok(())
}

/// Output length of a convolution or pooling window along one axis.
pub fn window_out(
    op: &str,
    len: u64,
    kernel: u64,
    stride: u64,
    padding: u64,
    dilation: u64,
) -> Result<u64, String> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return Err(format!(
            "{op}: kernel, stride and dilation must be at least 1"
        ));
    }
    let span = dilation * (kernel - 1) + 1;
    let padded = len + 2 * padding;
    if padded < span {
        return Err(format!(
            "{op}: a window of {span} does not fit an input of length {len} with padding {padding}"
        ));
    }
    Ok((padded - span) / stride + 1)
}

/// Calls a family module's function of the same name.
macro_rules! by_family {
    ($family:expr, $f:ident($($arg:expr),*)) => {
        match $family {
            Category::Layers => layers::$f($($arg),*),
            Category::Elementwise => elementwise::$f($($arg),*),
            Category::Reductions => reductions::$f($($arg),*),
            Category::Reshaping => reshaping::$f($($arg),*),
            Category::LinearAlgebra => linalg::$f($($arg),*),
            Category::Pooling => pooling::$f($($arg),*),
            Category::Attention => attention::$f($($arg),*),
        }
    };
}

impl Op {
    /// The op's name as it appears in graphs and histograms.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Scalar { .. } => "scalar",
            Op::CausalMask { .. } => "causal_mask",
            Op::Param => "param",
            Op::Linear { .. } => "linear",
            Op::Conv1d { .. } => "conv1d",
            Op::Conv2d { .. } => "conv2d",
            Op::Embedding { .. } => "embedding",
            Op::LayerNorm { .. } => "layer_norm",
            Op::RmsNorm { .. } => "rms_norm",
            Op::BatchNorm { .. } => "batch_norm",
            Op::GroupNorm { .. } => "group_norm",
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Mul => "mul",
            Op::Div => "div",
            Op::Maximum => "maximum",
            Op::Minimum => "minimum",
            Op::Neg => "neg",
            Op::Relu => "relu",
            Op::Gelu => "gelu",
            Op::Silu => "silu",
            Op::Sigmoid => "sigmoid",
            Op::Tanh => "tanh",
            Op::Softplus => "softplus",
            Op::Elu { .. } => "elu",
            Op::Exp => "exp",
            Op::Log => "log",
            Op::Sqrt => "sqrt",
            Op::Abs => "abs",
            Op::Square => "square",
            Op::Pow { .. } => "pow",
            Op::Clamp { .. } => "clamp",
            Op::Sum { .. } => "sum",
            Op::Mean { .. } => "mean",
            Op::Max { .. } => "max",
            Op::Logsumexp { .. } => "logsumexp",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::Cumsum { .. } => "cumsum",
            Op::Reshape { .. } => "reshape",
            Op::Permute { .. } => "permute",
            Op::Concat { .. } => "concat",
            Op::Slice { .. } => "slice",
            Op::Pad { .. } => "pad",
            Op::Expand { .. } => "expand",
            Op::Matmul => "matmul",
            Op::AvgPool2d { .. } => "avg_pool2d",
            Op::MaxPool2d { .. } => "max_pool2d",
            Op::ScaledDotProductAttention { .. } => "scaled_dot_product_attention",
            Op::Dropout { .. } => "dropout",
            Op::Cummax { .. } => "cummax",
        }
    }

    /// Ops whose result does not depend on the order of their inputs.
    pub fn is_commutative(&self) -> bool {
        matches!(self, Op::Add | Op::Mul | Op::Maximum | Op::Minimum)
    }

    /// Elementwise ops of one float tensor.
    pub fn is_unary_elementwise(&self) -> bool {
        matches!(
            self,
            Op::Neg
                | Op::Relu
                | Op::Gelu
                | Op::Silu
                | Op::Sigmoid
                | Op::Tanh
                | Op::Softplus
                | Op::Elu { .. }
                | Op::Exp
                | Op::Log
                | Op::Sqrt
                | Op::Abs
                | Op::Square
                | Op::Pow { .. }
                | Op::Clamp { .. }
        )
    }

    /// The family the op belongs to; `None` for the input and scalar constants, which the tracer
    /// creates and no function of the language names.
    pub fn family(&self) -> Option<Category> {
        use Category::*;
        Some(match self {
            Op::Input | Op::Scalar { .. } => return None,
            Op::Param
            | Op::Linear { .. }
            | Op::Conv1d { .. }
            | Op::Conv2d { .. }
            | Op::Embedding { .. }
            | Op::LayerNorm { .. }
            | Op::RmsNorm { .. }
            | Op::BatchNorm { .. }
            | Op::GroupNorm { .. } => Layers,
            Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::Maximum
            | Op::Minimum
            | Op::Neg
            | Op::Relu
            | Op::Gelu
            | Op::Silu
            | Op::Sigmoid
            | Op::Tanh
            | Op::Softplus
            | Op::Elu { .. }
            | Op::Exp
            | Op::Log
            | Op::Sqrt
            | Op::Abs
            | Op::Square
            | Op::Pow { .. }
            | Op::Clamp { .. } => Elementwise,
            Op::Sum { .. }
            | Op::Mean { .. }
            | Op::Max { .. }
            | Op::Logsumexp { .. }
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. }
            | Op::Cumsum { .. }
            | Op::Cummax { .. } => Reductions,
            Op::Reshape { .. }
            | Op::Permute { .. }
            | Op::Concat { .. }
            | Op::Slice { .. }
            | Op::Pad { .. }
            | Op::Expand { .. } => Reshaping,
            Op::Matmul => LinearAlgebra,
            Op::AvgPool2d { .. } | Op::MaxPool2d { .. } => Pooling,
            Op::CausalMask { .. } | Op::ScaledDotProductAttention { .. } | Op::Dropout { .. } => {
                Attention
            }
        })
    }

    /// The parameters (and buffers) a parameter op creates for an input of shape `input`.
    pub fn param_specs(&self, input: Option<&Shape>) -> Result<Vec<ParamSpec>, String> {
        match self.family() {
            Some(Category::Layers) => layers::params(self, input),
            _ => Ok(Vec::new()),
        }
    }

    /// The shape rule: the output shape and dtype for the given inputs, or why they do not fit.
    pub fn infer(&self, inputs: &Inputs) -> Result<(Shape, DType), String> {
        match self.family() {
            None if matches!(self, Op::Scalar { .. }) => Ok((Shape::default(), DType::Float32)),
            None => Err(format!("{} nodes are created by the tracer", self.name())),
            Some(family) => by_family!(family, infer(self, inputs)),
        }
    }

    /// Forward FLOPs per sample (a multiply-add counts 2).
    pub fn flops(&self, inputs: &[&Shape], out: &Shape) -> u64 {
        match self.family() {
            None => 0,
            Some(family) => by_family!(family, flops(self, inputs, out)),
        }
    }

    /// The op as a Starlark expression (for [`crate::printer::to_starlark`]); not for the input or a
    /// scalar, which print as names and literals.
    pub(crate) fn starlark(&self, call: &Call) -> String {
        let family = self.family().expect("inputs and scalars print as names");
        by_family!(family, starlark(self, call))
    }

    /// The op as a PyTorch expression (for [`crate::printer::to_pytorch`]), registering the modules it
    /// needs through `call`.
    pub(crate) fn pytorch(&self, call: &mut PyCall) -> String {
        let family = self.family().expect("inputs and scalars print as names");
        by_family!(family, pytorch(self, call))
    }
}

/// An op that a family module was handed but does not hold: the family dispatch is wrong.
fn not_in_family(op: &Op, family: &str) -> ! {
    unreachable!("{} is not in the {family} family", op.name())
}

pub(super) fn check_groups(op: &str, c: u64, out: u64, groups: u64) -> Result<(), String> {
    if groups == 0 || !c.is_multiple_of(groups) || !out.is_multiple_of(groups) {
        return Err(format!(
            "{op}: groups={groups} must divide both the {c} input channels and the {out} output channels"
        ));
    }
    Ok(())
}

pub(super) fn check_axis(op: &str, s: &Shape, axis: usize) -> Result<(), String> {
    if axis >= s.rank() {
        return Err(format!("{op}: axis {axis} is out of range for {s}"));
    }
    Ok(())
}

pub(super) fn reduce_shape(
    op: &str,
    s: &Shape,
    axes: &[usize],
    keepdim: bool,
) -> Result<(Shape, DType), String> {
    for &a in axes {
        check_axis(op, s, a)?;
        not_batch_axis(op, s, a)?;
    }
    let dims = s
        .dims()
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keepdim) {
            (false, _) => Some(d),
            (true, true) => Some(Dim::fixed(1)),
            (true, false) => None,
        })
        .collect();
    Ok((Shape(dims), DType::Float32))
}

/// One function of the architecture language, as the language reference shows it.
#[derive(Clone, Copy, Debug)]
pub struct OpSpec {
    pub name: &'static str,
    pub category: Category,
    pub signature: &'static str,
    pub doc: &'static str,
    /// Parameters it creates ("" for none).
    pub params: &'static str,
    /// Forward FLOPs per sample.
    pub flops: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Category {
    Layers,
    Elementwise,
    Reductions,
    Reshaping,
    LinearAlgebra,
    Pooling,
    Attention,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::Layers,
        Category::Elementwise,
        Category::Reductions,
        Category::Reshaping,
        Category::LinearAlgebra,
        Category::Pooling,
        Category::Attention,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Category::Layers => "Layers with parameters",
            Category::Elementwise => "Elementwise",
            Category::Reductions => "Reductions and normalisers",
            Category::Reshaping => "Shape",
            Category::LinearAlgebra => "Linear algebra",
            Category::Pooling => "Pooling",
            Category::Attention => "Attention and regularisation",
        }
    }
}

pub(super) const fn spec(
    name: &'static str,
    category: Category,
    signature: &'static str,
    doc: &'static str,
    params: &'static str,
    flops: &'static str,
) -> OpSpec {
    OpSpec {
        name,
        category,
        signature,
        doc,
        params,
        flops,
    }
}

/// What the reference says of an op without parameters, and of one that costs nothing.
pub(super) const NONE: &str = "";
pub(super) const FREE: &str = "0";

/// Every function of the architecture language, family by family. The Starlark globals
/// implement exactly these names (a test holds them together).
pub static REGISTRY: LazyLock<Vec<OpSpec>> = LazyLock::new(|| {
    [
        layers::SPECS,
        elementwise::SPECS,
        reductions::SPECS,
        reshaping::SPECS,
        linalg::SPECS,
        pooling::SPECS,
        attention::SPECS,
    ]
    .concat()
});

/// Look up a function of the language by name.
pub fn lookup(name: &str) -> Option<&'static OpSpec> {
    REGISTRY.iter().find(|s| s.name == name)
}

/// The rules of the language that every reference states.
const REFERENCE_INTRO: &str = "# The autoarch architecture language\n\n\
         Architecture code is Starlark (a hermetic Python dialect). Define `def model(x)`: the task \
         binds `x` and constants such as VOCAB, SEQ_LEN, NUM_CLASSES, CHANNELS, HEIGHT and WIDTH, and \
         the returned tensor must have the task's output shape. Running `model` traces a graph.\n\n\
         - Dim 0 is the batch `B`: symbolic, never reduced, sliced or mixed across samples. \
         `x.shape` is a tuple of ints with -1 for the batch dim; `x.ndim` and `x.dtype` also exist.\n\
         - Broadcasting follows NumPy. Dtypes: float32, and int for token ids (only `embedding` takes them).\n\
         - A layer called with `name=\"...\"` reuses the parameters of the earlier call with that \
         name (weight tying; shapes must match).\n\
         - Not available: `while` (use `for i in range(n)`), `**` (use `pow`), `@` (use `matmul`), \
         `class`, `import`/`load`, `try`, recursion, tensor indexing (use `slice`/`split`).\n\
         - FLOPs are per sample for the forward pass; a multiply-add counts 2.\n";

/// The language reference with only the signatures, one category a line: for models with a
/// small context window.
pub fn reference_brief() -> String {
    let mut out = REFERENCE_INTRO.to_string();
    out.push('\n');
    for cat in Category::ALL {
        let sigs: Vec<&str> = REGISTRY
            .iter()
            .filter(|s| s.category == cat)
            .map(|s| s.signature)
            .collect();
        out.push_str(&format!("- {}: {}\n", cat.title(), sigs.join("; ")));
    }
    out
}

/// The language reference in markdown, generated from the registry.
pub fn reference_markdown() -> String {
    let mut out = String::new();
    out.push_str(REFERENCE_INTRO);
    for cat in Category::ALL {
        out.push_str(&format!("\n## {}\n\n", cat.title()));
        for s in REGISTRY.iter().filter(|s| s.category == cat) {
            out.push_str(&format!("- `{}` — {}", s.signature, s.doc));
            if !s.params.is_empty() {
                out.push_str(&format!(" Params: {}.", s.params));
            }
            out.push_str(&format!(" FLOPs: {}.\n", s.flops));
        }
    }
    out
}
