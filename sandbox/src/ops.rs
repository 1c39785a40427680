//! The op registry: every primitive graph op with its shape rule, FLOP count and parameters, and
//! every function the architecture language offers, with its one-line documentation.
//!
//! The language reference (`autoarch ops`, and the LLM prompt) is generated from [`REGISTRY`], and
//! a test checks that the registry and the Starlark globals name the same functions.

use serde::{Deserialize, Serialize};

use crate::param::{Init, ParamRole, ParamSpec};
use crate::shape::{broadcast, DType, Dim, Shape};

/// A primitive graph op with its attributes. Composite functions (`einsum`, `outer`, `flatten`,
/// `transpose`, ...) are traced into these, so each graph has one canonical spelling.
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
}

/// The value a causal mask holds above the diagonal.
pub const MASKED: f64 = -1e9;

type Inputs<'a> = [(&'a Shape, DType)];

fn float_input(op: &str, inputs: &Inputs, i: usize) -> Result<Shape, String> {
    let (shape, dtype) = inputs[i];
    if dtype != DType::Float32 {
        return Err(format!(
            "{op} needs a float tensor, got an int tensor {shape}; token ids go through embedding(ids, vocab, dim) first"
        ));
    }
    Ok(shape.clone())
}

fn fixed_dim(op: &str, d: Dim, what: &str) -> Result<u64, String> {
    if d.batch {
        return Err(format!("{op}: the {what} cannot be the batch dim"));
    }
    Ok(d.size)
}

fn not_batch_axis(op: &str, shape: &Shape, axis: usize) -> Result<(), String> {
    if shape.dims()[axis].batch {
        return Err(format!(
            "{op} over axis {axis} of {shape} would mix samples: that axis holds the batch"
        ));
    }
    Ok(())
}

fn min_rank(op: &str, shape: &Shape, rank: usize, layout: &str) -> Result<(), String> {
    if shape.rank() < rank {
        return Err(format!(
            "{op} needs a tensor of rank {rank} or more ({layout}), got {shape}"
        ));
    }
    Ok(())
}

fn exact_rank(op: &str, shape: &Shape, rank: usize, layout: &str) -> Result<(), String> {
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

    /// The parameters (and buffers) a parameter op creates for an input of shape `input`.
    pub fn param_specs(&self, input: Option<&Shape>) -> Result<Vec<ParamSpec>, String> {
        let spec = |shape: Vec<u64>, init, role| ParamSpec { shape, init, role };
        let uniform = |fan_in: u64| {
            let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
            Init::Uniform {
                low: -bound,
                high: bound,
            }
        };
        let last = |op: &str| -> Result<u64, String> {
            let shape = input.expect("parameter ops with inputs get their input shape");
            let d = shape
                .last()
                .ok_or_else(|| format!("{op} needs a tensor of rank 1 or more"))?;
            fixed_dim(op, d, "last dim")
        };
        let channels = |op: &str| -> Result<u64, String> {
            let shape = input.expect("parameter ops with inputs get their input shape");
            min_rank(op, shape, 2, "[B, C, ...]")?;
            fixed_dim(op, shape.dims()[1], "channel dim")
        };
        // A convolution's kernel (out, in / groups, *kernel) and its bias.
        let conv = |out: u64, per_group: u64, kernel: &[u64], bias: bool| {
            let fan_in = per_group * kernel.iter().product::<u64>();
            let mut shape = vec![out, per_group];
            shape.extend_from_slice(kernel);
            let mut v = vec![spec(shape, uniform(fan_in), ParamRole::Weight)];
            if bias {
                v.push(spec(vec![out], uniform(fan_in), ParamRole::Bias));
            }
            v
        };
        Ok(match self {
            Op::Linear { out, bias } => {
                let inp = last("linear")?;
                let mut v = vec![spec(vec![inp, *out], uniform(inp), ParamRole::Weight)];
                if *bias {
                    v.push(spec(vec![*out], uniform(inp), ParamRole::Bias));
                }
                v
            }
            Op::Conv1d {
                out,
                kernel,
                groups,
                bias,
                ..
            } => conv(
                *out,
                channels("conv1d")? / groups.max(&1),
                &[*kernel],
                *bias,
            ),
            Op::Conv2d {
                out,
                kernel,
                groups,
                bias,
                ..
            } => conv(*out, channels("conv2d")? / groups.max(&1), kernel, *bias),
            Op::Embedding { vocab, dim } => vec![spec(
                vec![*vocab, *dim],
                Init::Normal { std: 0.02 },
                ParamRole::Weight,
            )],
            Op::LayerNorm { .. } => {
                let d = last("layer_norm")?;
                vec![
                    spec(vec![d], Init::Ones, ParamRole::Weight),
                    spec(vec![d], Init::Zeros, ParamRole::Bias),
                ]
            }
            Op::RmsNorm { .. } => {
                let d = last("rms_norm")?;
                vec![spec(vec![d], Init::Ones, ParamRole::Weight)]
            }
            Op::BatchNorm { .. } => {
                let c = channels("batch_norm")?;
                vec![
                    spec(vec![c], Init::Ones, ParamRole::Weight),
                    spec(vec![c], Init::Zeros, ParamRole::Bias),
                    spec(vec![c], Init::Zeros, ParamRole::RunningMean),
                    spec(vec![c], Init::Ones, ParamRole::RunningVar),
                ]
            }
            Op::GroupNorm { .. } => {
                let c = channels("group_norm")?;
                vec![
                    spec(vec![c], Init::Ones, ParamRole::Weight),
                    spec(vec![c], Init::Zeros, ParamRole::Bias),
                ]
            }
            _ => Vec::new(),
        })
    }

    /// The shape rule: the output shape and dtype for the given inputs, or why they do not fit.
    pub fn infer(&self, inputs: &Inputs) -> Result<(Shape, DType), String> {
        let f32 = DType::Float32;
        let name = self.name();
        match self {
            Op::Input | Op::Param => Err(format!("{name} nodes are created by the tracer")),
            Op::Scalar { .. } => Ok((Shape::default(), f32)),
            Op::CausalMask { size } => Ok((Shape::fixed(&[*size, *size]), f32)),
            Op::Linear { out, .. } => {
                let mut s = float_input(name, inputs, 0)?;
                min_rank(name, &s, 1, "[..., in]")?;
                fixed_dim(name, s.last().expect("rank checked"), "last dim")?;
                *s.0.last_mut().expect("rank checked") = Dim::fixed(*out);
                Ok((s, f32))
            }
            Op::Conv1d {
                out,
                kernel,
                stride,
                padding,
                dilation,
                groups,
                ..
            } => {
                let s = float_input(name, inputs, 0)?;
                exact_rank(name, &s, 3, "[B, C, L]")?;
                let c = fixed_dim(name, s.dims()[1], "channel dim")?;
                check_groups(name, c, *out, *groups)?;
                let len = fixed_dim(name, s.dims()[2], "length dim")?;
                let l = window_out(name, len, *kernel, *stride, *padding, *dilation)?;
                Ok((
                    Shape(vec![s.dims()[0], Dim::fixed(*out), Dim::fixed(l)]),
                    f32,
                ))
            }
            Op::Conv2d {
                out,
                kernel,
                stride,
                padding,
                dilation,
                groups,
                ..
            } => {
                let s = float_input(name, inputs, 0)?;
                exact_rank(name, &s, 4, "[B, C, H, W]")?;
                let c = fixed_dim(name, s.dims()[1], "channel dim")?;
                check_groups(name, c, *out, *groups)?;
                let h = fixed_dim(name, s.dims()[2], "height dim")?;
                let w = fixed_dim(name, s.dims()[3], "width dim")?;
                let ho = window_out(name, h, kernel[0], stride[0], padding[0], dilation[0])?;
                let wo = window_out(name, w, kernel[1], stride[1], padding[1], dilation[1])?;
                Ok((
                    Shape(vec![
                        s.dims()[0],
                        Dim::fixed(*out),
                        Dim::fixed(ho),
                        Dim::fixed(wo),
                    ]),
                    f32,
                ))
            }
            Op::Embedding { dim, .. } => {
                let (s, dtype) = inputs[0];
                if dtype != DType::Int {
                    return Err(format!(
                        "embedding needs int token ids, got a float tensor {s}"
                    ));
                }
                let mut s = s.clone();
                s.0.push(Dim::fixed(*dim));
                Ok((s, f32))
            }
            Op::LayerNorm { .. } | Op::RmsNorm { .. } => {
                let s = float_input(name, inputs, 0)?;
                min_rank(name, &s, 1, "[..., D]")?;
                fixed_dim(name, s.last().expect("rank checked"), "last dim")?;
                Ok((s, f32))
            }
            Op::BatchNorm { .. } => {
                let s = float_input(name, inputs, 0)?;
                min_rank(name, &s, 2, "[B, C, ...]")?;
                fixed_dim(name, s.dims()[1], "channel dim")?;
                Ok((s, f32))
            }
            Op::GroupNorm { groups, .. } => {
                let s = float_input(name, inputs, 0)?;
                min_rank(name, &s, 2, "[B, C, ...]")?;
                let c = fixed_dim(name, s.dims()[1], "channel dim")?;
                if *groups == 0 || !c.is_multiple_of(*groups) {
                    return Err(format!(
                        "group_norm: {c} channels do not split into {groups} groups"
                    ));
                }
                Ok((s, f32))
            }
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Maximum | Op::Minimum => {
                let a = float_input(name, inputs, 0)?;
                let b = float_input(name, inputs, 1)?;
                let s = broadcast(&a, &b).map_err(|e| format!("{name}: {e}"))?;
                Ok((s, f32))
            }
            Op::Pow { .. } | Op::Clamp { .. } | Op::Elu { .. } => {
                Ok((float_input(name, inputs, 0)?, f32))
            }
            _ if self.is_unary_elementwise() => Ok((float_input(name, inputs, 0)?, f32)),
            Op::Sum { axes, keepdim } | Op::Mean { axes, keepdim } | Op::Max { axes, keepdim } => {
                let s = float_input(name, inputs, 0)?;
                reduce_shape(name, &s, axes, *keepdim)
            }
            Op::Logsumexp { axis, keepdim } => {
                let s = float_input(name, inputs, 0)?;
                reduce_shape(name, &s, &[*axis], *keepdim)
            }
            Op::Softmax { axis } | Op::LogSoftmax { axis } | Op::Cumsum { axis } => {
                let s = float_input(name, inputs, 0)?;
                check_axis(name, &s, *axis)?;
                not_batch_axis(name, &s, *axis)?;
                Ok((s, f32))
            }
            Op::Reshape { shape } => {
                let (s, dtype) = inputs[0];
                if s.numel() != shape.numel()
                    || s.batch_axis().is_some() != shape.batch_axis().is_some()
                {
                    return Err(format!("reshape: cannot reshape {s} into {shape}"));
                }
                Ok((shape.clone(), dtype))
            }
            Op::Permute { dims } => {
                let (s, dtype) = inputs[0];
                let mut seen = vec![false; s.rank()];
                if dims.len() != s.rank()
                    || dims
                        .iter()
                        .any(|&d| d >= s.rank() || std::mem::replace(&mut seen[d], true))
                {
                    return Err(format!(
                        "permute: {dims:?} is not a permutation of the {} axes of {s}",
                        s.rank()
                    ));
                }
                Ok((Shape(dims.iter().map(|&d| s.dims()[d]).collect()), dtype))
            }
            Op::Concat { axis } => {
                let (first, dtype) = inputs
                    .first()
                    .copied()
                    .ok_or_else(|| "concat needs at least one tensor".to_string())?;
                check_axis(name, first, *axis)?;
                not_batch_axis(name, first, *axis)?;
                let mut total = 0;
                for &(s, dt) in inputs {
                    let same_elsewhere = s.rank() == first.rank()
                        && (0..s.rank()).all(|i| i == *axis || s.dims()[i] == first.dims()[i]);
                    if !same_elsewhere || dt != dtype {
                        return Err(format!(
                            "concat along axis {axis}: {s} does not match {first} on the other axes"
                        ));
                    }
                    total += s.dims()[*axis].size;
                }
                let mut out = first.clone();
                out.0[*axis] = Dim::fixed(total);
                Ok((out, dtype))
            }
            Op::Slice { axis, start, end } => {
                let (s, dtype) = inputs[0];
                check_axis(name, s, *axis)?;
                not_batch_axis(name, s, *axis)?;
                let size = s.dims()[*axis].size;
                if start >= end || *end > size {
                    return Err(format!(
                        "slice [{start}:{end}] is empty or out of range for axis {axis} of size {size}"
                    ));
                }
                let mut out = s.clone();
                out.0[*axis] = Dim::fixed(end - start);
                Ok((out, dtype))
            }
            Op::Pad {
                axis,
                before,
                after,
                ..
            } => {
                let s = float_input(name, inputs, 0)?;
                check_axis(name, &s, *axis)?;
                not_batch_axis(name, &s, *axis)?;
                let mut out = s.clone();
                out.0[*axis] = Dim::fixed(s.dims()[*axis].size + before + after);
                Ok((out, f32))
            }
            Op::Expand { shape } => {
                let (s, dtype) = inputs[0];
                let ok = shape.rank() >= s.rank()
                    && s.dims().iter().enumerate().all(|(i, d)| {
                        let t = shape.dims()[shape.rank() - s.rank() + i];
                        *d == t || *d == Dim::fixed(1)
                    })
                    && shape.dims()[..shape.rank() - s.rank()]
                        .iter()
                        .all(|d| !d.batch);
                if !ok {
                    return Err(format!("expand: cannot expand {s} to {shape}"));
                }
                Ok((shape.clone(), dtype))
            }
            Op::Matmul => {
                let a = float_input(name, inputs, 0)?;
                let b = float_input(name, inputs, 1)?;
                if a.rank() < 2 || b.rank() < 2 {
                    return Err(format!(
                        "matmul needs tensors of rank 2 or more, got {a} and {b}"
                    ));
                }
                let (m, k1) = (a.dims()[a.rank() - 2], a.dims()[a.rank() - 1]);
                let (k2, n) = (b.dims()[b.rank() - 2], b.dims()[b.rank() - 1]);
                if k1 != k2 || k1.batch {
                    return Err(format!(
                        "matmul: inner dims differ: {a} @ {b} contracts {k1} with {k2}"
                    ));
                }
                let lead = broadcast(
                    &Shape(a.dims()[..a.rank() - 2].to_vec()),
                    &Shape(b.dims()[..b.rank() - 2].to_vec()),
                )
                .map_err(|e| format!("matmul leading dims: {e}"))?;
                let mut out = lead.0;
                out.push(m);
                out.push(n);
                Ok((Shape(out), f32))
            }
            Op::AvgPool2d {
                kernel,
                stride,
                padding,
            }
            | Op::MaxPool2d {
                kernel,
                stride,
                padding,
            } => {
                let s = float_input(name, inputs, 0)?;
                exact_rank(name, &s, 4, "[B, C, H, W]")?;
                let h = fixed_dim(name, s.dims()[2], "height dim")?;
                let w = fixed_dim(name, s.dims()[3], "width dim")?;
                if padding[0] * 2 > kernel[0] || padding[1] * 2 > kernel[1] {
                    return Err(format!("{name}: padding must be at most half the kernel"));
                }
                let ho = window_out(name, h, kernel[0], stride[0], padding[0], 1)?;
                let wo = window_out(name, w, kernel[1], stride[1], padding[1], 1)?;
                Ok((
                    Shape(vec![
                        s.dims()[0],
                        s.dims()[1],
                        Dim::fixed(ho),
                        Dim::fixed(wo),
                    ]),
                    f32,
                ))
            }
            Op::ScaledDotProductAttention { causal } => {
                let q = float_input(name, inputs, 0)?;
                let k = float_input(name, inputs, 1)?;
                let v = float_input(name, inputs, 2)?;
                let r = q.rank();
                if r < 2 || k.rank() != r || v.rank() != r {
                    return Err(format!(
                        "{name} needs q, k, v of one rank ≥ 2 ([..., T, D]), got {q}, {k}, {v}"
                    ));
                }
                let lead = &q.dims()[..r - 2];
                if &k.dims()[..r - 2] != lead || &v.dims()[..r - 2] != lead {
                    return Err(format!(
                        "{name}: leading dims of q {q}, k {k} and v {v} differ"
                    ));
                }
                let (tq, d) = (q.dims()[r - 2], q.dims()[r - 1]);
                let (tk, dk) = (k.dims()[r - 2], k.dims()[r - 1]);
                let (tv, dv) = (v.dims()[r - 2], v.dims()[r - 1]);
                if d != dk || tk != tv {
                    return Err(format!(
                        "{name}: q {q} and k {k} need the same last dim, k and v the same length"
                    ));
                }
                for (dim, what) in [(tq, "query length"), (tk, "key length"), (d, "head dim")] {
                    fixed_dim(name, dim, what)?;
                }
                if *causal && tq != tk {
                    return Err(format!(
                        "{name}: causal attention needs equal query and key lengths, got {tq} and {tk}"
                    ));
                }
                let mut out = lead.to_vec();
                out.push(tq);
                out.push(dv);
                Ok((Shape(out), f32))
            }
            Op::Dropout { p } => {
                if !(0.0..1.0).contains(p) {
                    return Err(format!("dropout probability must be in [0, 1), got {p}"));
                }
                Ok((float_input(name, inputs, 0)?, f32))
            }
            // Unreachable: every unary op is matched by `is_unary_elementwise` above.
            _ => Err(format!("{name}: no shape rule")),
        }
    }

    /// Forward FLOPs per sample (a multiply-add counts 2).
    pub fn flops(&self, inputs: &[&Shape], out: &Shape) -> u64 {
        let n = out.numel();
        let in0 = || inputs[0].numel();
        match self {
            Op::Input | Op::Scalar { .. } | Op::CausalMask { .. } | Op::Param => 0,
            Op::Embedding { .. } | Op::Dropout { .. } => 0,
            Op::Reshape { .. }
            | Op::Permute { .. }
            | Op::Concat { .. }
            | Op::Slice { .. }
            | Op::Pad { .. }
            | Op::Expand { .. } => 0,
            Op::Linear { out: o, bias } => {
                let inp = inputs[0].last().map_or(0, |d| d.size);
                let rows = n / o.max(&1);
                2 * rows * inp * o + if *bias { n } else { 0 }
            }
            Op::Conv1d {
                kernel,
                groups,
                bias,
                ..
            } => {
                let c = inputs[0].dims()[1].size;
                n * 2 * (c / groups.max(&1)) * kernel + if *bias { n } else { 0 }
            }
            Op::Conv2d {
                kernel,
                groups,
                bias,
                ..
            } => {
                let c = inputs[0].dims()[1].size;
                n * 2 * (c / groups.max(&1)) * kernel[0] * kernel[1] + if *bias { n } else { 0 }
            }
            Op::LayerNorm { .. } => 5 * n,
            Op::RmsNorm { .. } => 4 * n,
            Op::BatchNorm { .. } | Op::GroupNorm { .. } => 5 * n,
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Maximum | Op::Minimum => n,
            _ if self.is_unary_elementwise() => n,
            Op::Sum { .. } | Op::Mean { .. } | Op::Max { .. } | Op::Cumsum { .. } => in0(),
            Op::Logsumexp { .. } | Op::Softmax { .. } | Op::LogSoftmax { .. } => 3 * in0(),
            Op::Matmul => {
                let k = inputs[0].last().map_or(0, |d| d.size);
                2 * n * k
            }
            Op::AvgPool2d { kernel, .. } | Op::MaxPool2d { kernel, .. } => {
                n * kernel[0] * kernel[1]
            }
            Op::ScaledDotProductAttention { .. } => {
                let q = inputs[0];
                let r = q.rank();
                let d = q.dims()[r - 1].size;
                let tk = inputs[1].dims()[r - 2].size;
                let dv = out.dims()[r - 1].size;
                // scores (2·Tq·Tk·d), softmax (3·Tq·Tk), weighted values (2·Tq·Tk·dv)
                let scores = n / dv.max(1) * tk;
                scores * (2 * d + 3 + 2 * dv)
            }
            _ => 0,
        }
    }
}

fn check_groups(op: &str, c: u64, out: u64, groups: u64) -> Result<(), String> {
    if groups == 0 || !c.is_multiple_of(groups) || !out.is_multiple_of(groups) {
        return Err(format!(
            "{op}: groups={groups} must divide both the {c} input channels and the {out} output channels"
        ));
    }
    Ok(())
}

fn check_axis(op: &str, s: &Shape, axis: usize) -> Result<(), String> {
    if axis >= s.rank() {
        return Err(format!("{op}: axis {axis} is out of range for {s}"));
    }
    Ok(())
}

fn reduce_shape(
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

const fn spec(
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

const ELEMENTWISE_FLOPS: &str = "1 per output element";
const NONE: &str = "";
const FREE: &str = "0";

use Category::*;

/// Every function of the architecture language. The Starlark globals implement exactly these
/// names (a test holds them together).
pub static REGISTRY: &[OpSpec] = &[
    spec("linear", Layers, "linear(x, out, bias=True, name=None)",
        "Affine map of the last dim: [..., in] -> [..., out].",
        "weight in·out, bias out", "2·rows·in·out (+ rows·out with bias)"),
    spec("conv1d", Layers,
        "conv1d(x, out, kernel, stride=1, padding=0, groups=1, dilation=1, bias=True, name=None)",
        "1-D convolution of [B, C, L] -> [B, out, L'].",
        "weight out·(C/groups)·kernel, bias out", "2·(C/groups)·kernel per output element (+1 with bias)"),
    spec("conv2d", Layers,
        "conv2d(x, out, kernel, stride=1, padding=0, groups=1, dilation=1, bias=True, name=None)",
        "2-D convolution of [B, C, H, W] -> [B, out, H', W']; kernel, stride, padding, dilation take an int or [h, w].",
        "weight out·(C/groups)·kh·kw, bias out", "2·(C/groups)·kh·kw per output element (+1 with bias)"),
    spec("embedding", Layers, "embedding(ids, vocab, dim, name=None)",
        "Looks up int token ids: [...] int -> [..., dim] float.",
        "table vocab·dim", FREE),
    spec("layer_norm", Layers, "layer_norm(x, eps=1e-5, name=None)",
        "Normalises the last dim to zero mean and unit variance, then scales and shifts.",
        "weight D, bias D", "5 per element"),
    spec("rms_norm", Layers, "rms_norm(x, eps=1e-6, name=None)",
        "Divides the last dim by its root mean square, then scales.",
        "weight D", "4 per element"),
    spec("batch_norm", Layers, "batch_norm(x, eps=1e-5, momentum=0.1, name=None)",
        "Normalises each channel (dim 1) over the batch and the remaining dims.",
        "weight C, bias C (running mean and variance are buffers, not parameters)", "5 per element"),
    spec("group_norm", Layers, "group_norm(x, groups, eps=1e-5, name=None)",
        "Normalises groups of channels (dim 1) of each sample.",
        "weight C, bias C", "5 per element"),
    spec("param", Layers, "param(shape, init=\"normal\", std=0.02, name=None)",
        "A raw learned tensor of the given shape (no batch dim); init is \"normal\", \"zeros\", \"ones\" or \"uniform\" (±std).",
        "prod(shape)", FREE),
    spec("+", Elementwise, "a + b", "Adds tensors (NumPy broadcasting) or a tensor and a number.", NONE, ELEMENTWISE_FLOPS),
    spec("-", Elementwise, "a - b, -a", "Subtracts or negates; a number on the left is not supported: write -x + 1.0.", NONE, ELEMENTWISE_FLOPS),
    spec("*", Elementwise, "a * b", "Multiplies elementwise (broadcasting), or by a number.", NONE, ELEMENTWISE_FLOPS),
    spec("/", Elementwise, "a / b", "Divides elementwise (broadcasting); the left side must be a tensor.", NONE, ELEMENTWISE_FLOPS),
    spec("neg", Elementwise, "neg(x)", "-x.", NONE, ELEMENTWISE_FLOPS),
    spec("relu", Elementwise, "relu(x)", "max(x, 0).", NONE, ELEMENTWISE_FLOPS),
    spec("gelu", Elementwise, "gelu(x)", "Gaussian error linear unit (erf form).", NONE, ELEMENTWISE_FLOPS),
    spec("silu", Elementwise, "silu(x)", "x * sigmoid(x) (swish).", NONE, ELEMENTWISE_FLOPS),
    spec("sigmoid", Elementwise, "sigmoid(x)", "1 / (1 + exp(-x)).", NONE, ELEMENTWISE_FLOPS),
    spec("tanh", Elementwise, "tanh(x)", "Hyperbolic tangent.", NONE, ELEMENTWISE_FLOPS),
    spec("softplus", Elementwise, "softplus(x)", "log(1 + exp(x)).", NONE, ELEMENTWISE_FLOPS),
    spec("elu", Elementwise, "elu(x, alpha=1.0)", "x for x > 0, alpha·(exp(x) - 1) otherwise.", NONE, ELEMENTWISE_FLOPS),
    spec("exp", Elementwise, "exp(x)", "e^x.", NONE, ELEMENTWISE_FLOPS),
    spec("log", Elementwise, "log(x)", "Natural logarithm.", NONE, ELEMENTWISE_FLOPS),
    spec("sqrt", Elementwise, "sqrt(x)", "Square root.", NONE, ELEMENTWISE_FLOPS),
    spec("abs", Elementwise, "abs(x)", "|x| (on numbers it is the usual abs).", NONE, ELEMENTWISE_FLOPS),
    spec("square", Elementwise, "square(x)", "x·x.", NONE, ELEMENTWISE_FLOPS),
    spec("pow", Elementwise, "pow(x, exponent)", "x raised to a number (there is no ** operator).", NONE, ELEMENTWISE_FLOPS),
    spec("clamp", Elementwise, "clamp(x, min=None, max=None)", "Limits x to [min, max].", NONE, ELEMENTWISE_FLOPS),
    spec("maximum", Elementwise, "maximum(a, b)", "Elementwise larger of two tensors (or a tensor and a number).", NONE, ELEMENTWISE_FLOPS),
    spec("minimum", Elementwise, "minimum(a, b)", "Elementwise smaller of two tensors (or a tensor and a number).", NONE, ELEMENTWISE_FLOPS),
    spec("sum", Reductions, "sum(x, axis=-1, keepdim=False)", "Sum over an axis or a list of axes (never the batch).", NONE, "1 per input element"),
    spec("mean", Reductions, "mean(x, axis=-1, keepdim=False)", "Mean over an axis or a list of axes.", NONE, "1 per input element"),
    spec("max", Reductions, "max(x, axis=-1, keepdim=False)", "Maximum over an axis or a list of axes (on numbers it is the usual max).", NONE, "1 per input element"),
    spec("logsumexp", Reductions, "logsumexp(x, axis=-1, keepdim=False)", "log(sum(exp(x))) over one axis, computed stably.", NONE, "3 per input element"),
    spec("softmax", Reductions, "softmax(x, axis=-1)", "Softmax along one axis.", NONE, "3 per element"),
    spec("log_softmax", Reductions, "log_softmax(x, axis=-1)", "Log of softmax along one axis, computed stably.", NONE, "3 per element"),
    spec("cumsum", Reductions, "cumsum(x, axis)", "Running sum along one axis (causal prefix sums).", NONE, "1 per element"),
    spec("reshape", Reshaping, "reshape(x, shape)", "New shape with the same elements; -1 infers one dim (x.shape shows the batch dim as -1).", NONE, FREE),
    spec("permute", Reshaping, "permute(x, dims)", "Reorders the axes: permute(x, [0, 2, 1]).", NONE, FREE),
    spec("transpose", Reshaping, "transpose(x, a=-2, b=-1)", "Swaps two axes.", NONE, FREE),
    spec("flatten", Reshaping, "flatten(x)", "[B, ...] -> [B, prod(...)]: keeps dim 0.", NONE, FREE),
    spec("concat", Reshaping, "concat(xs, axis=-1)", "Joins a list of tensors along an axis.", NONE, FREE),
    spec("split", Reshaping, "split(x, sections, axis=-1)", "A list of tensors: `sections` equal parts, or parts of the listed sizes.", NONE, FREE),
    spec("slice", Reshaping, "slice(x, axis, start, end)", "x[..., start:end, ...] along one axis (negative indices count from the end).", NONE, FREE),
    spec("pad", Reshaping, "pad(x, pads, axis=-1, value=0.0)", "Pads one axis with pads = [before, after] constant elements (e.g. causal convolution).", NONE, FREE),
    spec("unsqueeze", Reshaping, "unsqueeze(x, axis)", "Inserts an axis of size 1.", NONE, FREE),
    spec("squeeze", Reshaping, "squeeze(x, axis)", "Removes an axis of size 1.", NONE, FREE),
    spec("expand", Reshaping, "expand(x, shape)", "Broadcasts size-1 dims to the given shape (-1 keeps a dim).", NONE, FREE),
    spec("matmul", LinearAlgebra, "matmul(a, b)", "[..., M, K] @ [..., K, N] -> [..., M, N] with broadcast leading dims.", NONE, "2·M·N·K per leading index"),
    spec("einsum", LinearAlgebra, "einsum(equation, a, b)", "Two-operand einsum that lowers to permute/reshape/matmul, e.g. \"bhtd,bhsd->bhts\"; or one operand and a pure permutation.", NONE, "as the matmul it lowers to"),
    spec("outer", LinearAlgebra, "outer(a, b)", "[..., M] and [..., N] -> [..., M, N].", NONE, "1 per output element"),
    spec("avg_pool2d", Pooling, "avg_pool2d(x, kernel, stride=None, padding=0)", "Average over windows of [B, C, H, W]; stride defaults to kernel.", NONE, "kh·kw per output element"),
    spec("max_pool2d", Pooling, "max_pool2d(x, kernel, stride=None, padding=0)", "Maximum over windows of [B, C, H, W]; stride defaults to kernel.", NONE, "kh·kw per output element"),
    spec("global_avg_pool", Pooling, "global_avg_pool(x)", "[B, C, H, W] -> [B, C]: mean over the spatial dims.", NONE, "1 per input element"),
    spec("causal_mask", Attention, "causal_mask(size)", "[size, size] additive mask: 0 on and below the diagonal, -1e9 above.", NONE, FREE),
    spec("scaled_dot_product_attention", Attention, "scaled_dot_product_attention(q, k, v, causal=False)",
        "softmax(q·kᵀ/√d [+ causal mask]) · v over the last two dims, any leading dims ([B, H, T, D] or [B, T, D]).",
        NONE, "2·Tq·Tk·d + 3·Tq·Tk + 2·Tq·Tk·dv per leading index"),
    spec("dropout", Attention, "dropout(x, p=0.1)", "Zeroes elements with probability p while training; identity when evaluating.", NONE, FREE),
];

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
