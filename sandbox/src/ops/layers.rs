//! Layers with parameters: `linear`, `conv1d`, `conv2d`, `embedding`, the norms and `param`.

use super::print::{float, ints, py_bool, Call, PyCall};
use super::Category::Layers;
use super::{
    check_groups, exact_rank, fixed_dim, float_input, min_rank, not_in_family, spec, window_out,
    Inputs, Op, OpSpec, FREE,
};
use crate::param::{Init, ParamRole, ParamSpec};
use crate::shape::{DType, Dim, Shape};

/// The family's entries in the language reference (one line each, as a table).
#[rustfmt::skip]
pub(super) const SPECS: &[OpSpec] = &[
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
];

pub(super) fn infer(op: &Op, inputs: &Inputs) -> Result<(Shape, DType), String> {
    let f32 = DType::Float32;
    let name = op.name();
    match op {
        Op::Param => Err(format!("{name} nodes are created by the tracer")),
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
        _ => not_in_family(op, "layers"),
    }
}

pub(super) fn flops(op: &Op, inputs: &[&Shape], out: &Shape) -> u64 {
    let n = out.numel();
    match op {
        Op::Param | Op::Embedding { .. } => 0,
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
        Op::LayerNorm { .. } | Op::BatchNorm { .. } | Op::GroupNorm { .. } => 5 * n,
        Op::RmsNorm { .. } => 4 * n,
        _ => not_in_family(op, "layers"),
    }
}

/// The parameters (and buffers) a layer creates for an input of shape `input`.
pub(super) fn params(op: &Op, input: Option<&Shape>) -> Result<Vec<ParamSpec>, String> {
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
    Ok(match op {
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
        // A raw parameter's spec comes from its call (`param(shape, init=...)`).
        _ => Vec::new(),
    })
}

pub(super) fn starlark(op: &Op, c: &Call) -> String {
    let (x, name) = (c.args.first().map_or("", String::as_str), &c.name);
    match op {
        Op::Param => {
            let spec = c.param();
            let init = match spec.init {
                Init::Zeros => "init=\"zeros\"".to_string(),
                Init::Ones => "init=\"ones\"".to_string(),
                Init::Normal { std } => format!("init=\"normal\", std={}", float(std)),
                Init::Uniform { high, .. } => format!("init=\"uniform\", std={}", float(high)),
            };
            format!("param({}, {init}{name})", ints(&spec.shape))
        }
        Op::Linear { out, bias } => format!("linear({x}, {out}, bias={}{name})", py_bool(*bias)),
        Op::Conv1d {
            out,
            kernel,
            stride,
            padding,
            dilation,
            groups,
            bias,
        } => format!(
            "conv1d({x}, {out}, {kernel}, stride={stride}, padding={padding}, groups={groups}, dilation={dilation}, bias={}{name})",
            py_bool(*bias)
        ),
        Op::Conv2d {
            out,
            kernel,
            stride,
            padding,
            dilation,
            groups,
            bias,
        } => format!(
            "conv2d({x}, {out}, {}, stride={}, padding={}, groups={groups}, dilation={}, bias={}{name})",
            ints(kernel),
            ints(stride),
            ints(padding),
            ints(dilation),
            py_bool(*bias)
        ),
        Op::Embedding { vocab, dim } => format!("embedding({x}, {vocab}, {dim}{name})"),
        Op::LayerNorm { eps } => format!("layer_norm({x}, eps={}{name})", float(*eps)),
        Op::RmsNorm { eps } => format!("rms_norm({x}, eps={}{name})", float(*eps)),
        Op::BatchNorm { eps, momentum } => format!(
            "batch_norm({x}, eps={}, momentum={}{name})",
            float(*eps),
            float(*momentum)
        ),
        Op::GroupNorm { groups, eps } => {
            format!("group_norm({x}, {groups}, eps={}{name})", float(*eps))
        }
        _ => not_in_family(op, "layers"),
    }
}

pub(super) fn pytorch(op: &Op, c: &mut PyCall) -> String {
    match op {
        Op::Param => {
            let spec = c.param();
            let shape = ints(&spec.shape);
            let ctor = match spec.init {
                Init::Zeros => format!("nn.Parameter(torch.zeros({shape}))"),
                Init::Ones => format!("nn.Parameter(torch.ones({shape}))"),
                Init::Normal { std } => {
                    format!("nn.Parameter(torch.randn({shape}) * {})", float(std))
                }
                Init::Uniform { low, high } => format!(
                    "nn.Parameter(torch.empty({shape}).uniform_({}, {}))",
                    float(low),
                    float(high)
                ),
            };
            format!("self.{}", (c.module)(ctor))
        }
        Op::Linear { out, bias } => {
            let ctor = format!("nn.Linear({}, {out}, bias={})", c.last(), py_bool(*bias));
            c.layer(ctor)
        }
        Op::Conv1d {
            out,
            kernel,
            stride,
            padding,
            dilation,
            groups,
            bias,
        } => {
            let ctor = format!(
                "nn.Conv1d({}, {out}, {kernel}, stride={stride}, padding={padding}, dilation={dilation}, groups={groups}, bias={})",
                c.channels(),
                py_bool(*bias)
            );
            c.layer(ctor)
        }
        Op::Conv2d {
            out,
            kernel,
            stride,
            padding,
            dilation,
            groups,
            bias,
        } => {
            let ctor = format!(
                "nn.Conv2d({}, {out}, ({}, {}), stride=({}, {}), padding=({}, {}), dilation=({}, {}), groups={groups}, bias={})",
                c.channels(),
                kernel[0],
                kernel[1],
                stride[0],
                stride[1],
                padding[0],
                padding[1],
                dilation[0],
                dilation[1],
                py_bool(*bias)
            );
            c.layer(ctor)
        }
        Op::Embedding { vocab, dim } => c.layer(format!("nn.Embedding({vocab}, {dim})")),
        Op::LayerNorm { eps } => {
            let ctor = format!("nn.LayerNorm({}, eps={})", c.last(), float(*eps));
            c.layer(ctor)
        }
        Op::RmsNorm { eps } => {
            let ctor = format!("nn.RMSNorm({}, eps={})", c.last(), float(*eps));
            c.layer(ctor)
        }
        Op::BatchNorm { eps, momentum } => {
            let kind = if c.input_shape().map_or(0, Shape::rank) == 4 {
                "BatchNorm2d"
            } else {
                "BatchNorm1d"
            };
            let ctor = format!(
                "nn.{kind}({}, eps={}, momentum={})",
                c.channels(),
                float(*eps),
                float(*momentum)
            );
            c.layer(ctor)
        }
        Op::GroupNorm { groups, eps } => {
            let ctor = format!(
                "nn.GroupNorm({groups}, {}, eps={})",
                c.channels(),
                float(*eps)
            );
            c.layer(ctor)
        }
        _ => not_in_family(op, "layers"),
    }
}
