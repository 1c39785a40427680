//! Printing a graph back: as flat Starlark (which traces to the same fingerprint) and as a
//! PyTorch `nn.Module` source file.

use std::collections::HashMap;
use std::fmt::Write;

use crate::graph::{ArchGraph, Node, NodeId};
use crate::ops::{Op, MASKED};
use crate::param::{Init, ParamRole};
use crate::shape::Shape;

/// A float literal that both Starlark and Python read back as the same f64.
fn float(v: f64) -> String {
    if v.is_nan() {
        "float(\"nan\")".to_string()
    } else if v.is_infinite() {
        if v > 0.0 {
            "float(\"inf\")"
        } else {
            "-float(\"inf\")"
        }
        .to_string()
    } else {
        let s = format!("{v:?}");
        if s.contains('.') || s.contains('e') || s.contains("inf") {
            s
        } else {
            format!("{s}.0")
        }
    }
}

fn ints(v: &[u64]) -> String {
    let items: Vec<String> = v.iter().map(u64::to_string).collect();
    format!("[{}]", items.join(", "))
}

fn usizes(v: &[usize]) -> String {
    let items: Vec<String> = v.iter().map(usize::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// A target shape as code writes it: the batch dim (plain or merged) as -1.
fn script_shape(s: &Shape) -> String {
    let items: Vec<String> = s
        .dims()
        .iter()
        .map(|d| d.as_script_int().to_string())
        .collect();
    format!("[{}]", items.join(", "))
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// Names for parameter groups shared by more than one node (weight tying).
fn tie_names(g: &ArchGraph) -> HashMap<NodeId, String> {
    let mut users: HashMap<&[usize], Vec<NodeId>> = HashMap::new();
    for (id, n) in g.nodes.iter().enumerate() {
        if !n.params.is_empty() {
            users.entry(n.params.as_slice()).or_default().push(id);
        }
    }
    let mut groups: Vec<&Vec<NodeId>> = users.values().filter(|v| v.len() > 1).collect();
    groups.sort();
    let mut names = HashMap::new();
    for (k, group) in groups.into_iter().enumerate() {
        for &id in group {
            names.insert(id, format!("tied{k}"));
        }
    }
    names
}

/// The graph as flat Starlark: one line per node, tied layers named.
pub fn to_starlark(g: &ArchGraph) -> String {
    let ties = tie_names(g);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Flat form of a traced `{}` architecture, printed by autoarch.\n# fingerprint {}\n",
        g.task,
        g.fingerprint()
    );
    out.push_str("def model(x):\n");
    let var = |id: NodeId| -> String {
        match &g.nodes[id].op {
            Op::Input => "x".to_string(),
            Op::Scalar { value } => float(*value),
            _ => format!("v{id}"),
        }
    };
    let mut emitted_params: HashMap<&[usize], NodeId> = HashMap::new();
    for (id, n) in g.nodes.iter().enumerate() {
        if matches!(n.op, Op::Input | Op::Scalar { .. }) {
            continue;
        }
        // A tied raw parameter is one tensor: print it once.
        if matches!(n.op, Op::Param) {
            if let Some(&first) = emitted_params.get(n.params.as_slice()) {
                let _ = writeln!(out, "    v{id} = v{first}");
                continue;
            }
            emitted_params.insert(n.params.as_slice(), id);
        }
        let a = |i: usize| var(n.inputs[i]);
        let name = ties
            .get(&id)
            .map(|t| format!(", name=\"{t}\""))
            .unwrap_or_default();
        let expr = match &n.op {
            Op::Input | Op::Scalar { .. } => unreachable!("skipped above"),
            Op::CausalMask { size } => format!("causal_mask({size})"),
            Op::Param => {
                let spec = &g.params[n.params[0]];
                let init = match spec.init {
                    Init::Zeros => "init=\"zeros\"".to_string(),
                    Init::Ones => "init=\"ones\"".to_string(),
                    Init::Normal { std } => format!("init=\"normal\", std={}", float(std)),
                    Init::Uniform { high, .. } => format!("init=\"uniform\", std={}", float(high)),
                };
                format!("param({}, {init}{name})", ints(&spec.shape))
            }
            Op::Linear { out, bias } => {
                format!("linear({}, {out}, bias={}{name})", a(0), py_bool(*bias))
            }
            Op::Conv1d { out, kernel, stride, padding, dilation, groups, bias } => format!(
                "conv1d({}, {out}, {kernel}, stride={stride}, padding={padding}, groups={groups}, dilation={dilation}, bias={}{name})",
                a(0),
                py_bool(*bias)
            ),
            Op::Conv2d { out, kernel, stride, padding, dilation, groups, bias } => format!(
                "conv2d({}, {out}, {}, stride={}, padding={}, groups={groups}, dilation={}, bias={}{name})",
                a(0),
                ints(kernel),
                ints(stride),
                ints(padding),
                ints(dilation),
                py_bool(*bias)
            ),
            Op::Embedding { vocab, dim } => format!("embedding({}, {vocab}, {dim}{name})", a(0)),
            Op::LayerNorm { eps } => format!("layer_norm({}, eps={}{name})", a(0), float(*eps)),
            Op::RmsNorm { eps } => format!("rms_norm({}, eps={}{name})", a(0), float(*eps)),
            Op::BatchNorm { eps, momentum } => format!(
                "batch_norm({}, eps={}, momentum={}{name})",
                a(0),
                float(*eps),
                float(*momentum)
            ),
            Op::GroupNorm { groups, eps } => {
                format!("group_norm({}, {groups}, eps={}{name})", a(0), float(*eps))
            }
            Op::Add => format!("{} + {}", a(0), a(1)),
            Op::Mul => format!("{} * {}", a(0), a(1)),
            // Both operators need a tensor on the left; a scalar there can only come from
            // hand-built graphs, so spell it with a tensor-first form.
            Op::Sub => binary_tensor_first(g, n, "-", &var),
            Op::Div => binary_tensor_first(g, n, "/", &var),
            Op::Maximum => format!("maximum({}, {})", a(0), a(1)),
            Op::Minimum => format!("minimum({}, {})", a(0), a(1)),
            Op::Elu { alpha } => format!("elu({}, alpha={})", a(0), float(*alpha)),
            Op::Pow { exponent } => format!("pow({}, {})", a(0), float(*exponent)),
            Op::Clamp { min, max } => format!(
                "clamp({}, min={}, max={})",
                a(0),
                min.map(float).unwrap_or_else(|| "None".into()),
                max.map(float).unwrap_or_else(|| "None".into())
            ),
            op if op.is_unary_elementwise() => format!("{}({})", op.name(), a(0)),
            Op::Sum { axes, keepdim } | Op::Mean { axes, keepdim } | Op::Max { axes, keepdim } => {
                format!(
                    "{}({}, axis={}, keepdim={})",
                    n.op.name(),
                    a(0),
                    usizes(axes),
                    py_bool(*keepdim)
                )
            }
            Op::Logsumexp { axis, keepdim } => {
                format!("logsumexp({}, axis={axis}, keepdim={})", a(0), py_bool(*keepdim))
            }
            Op::Softmax { axis } | Op::LogSoftmax { axis } | Op::Cumsum { axis } => {
                format!("{}({}, axis={axis})", n.op.name(), a(0))
            }
            Op::Reshape { shape } => format!("reshape({}, {})", a(0), script_shape(shape)),
            Op::Permute { dims } => format!("permute({}, {})", a(0), usizes(dims)),
            Op::Concat { axis } => {
                let parts: Vec<String> = (0..n.inputs.len()).map(a).collect();
                format!("concat([{}], axis={axis})", parts.join(", "))
            }
            Op::Slice { axis, start, end } => format!("slice({}, {axis}, {start}, {end})", a(0)),
            Op::Pad { axis, before, after, value } => format!(
                "pad({}, [{before}, {after}], axis={axis}, value={})",
                a(0),
                float(*value)
            ),
            Op::Expand { shape } => {
                let input = &g.nodes[n.inputs[0]].shape;
                let offset = shape.rank() - input.rank();
                let dims: Vec<String> = shape
                    .dims()
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        if d.batch || (i >= offset && input.dims()[i - offset] == *d) {
                            "-1".to_string()
                        } else {
                            d.size.to_string()
                        }
                    })
                    .collect();
                format!("expand({}, [{}])", a(0), dims.join(", "))
            }
            Op::Matmul => format!("matmul({}, {})", a(0), a(1)),
            Op::AvgPool2d { kernel, stride, padding } | Op::MaxPool2d { kernel, stride, padding } => {
                format!(
                    "{}({}, {}, stride={}, padding={})",
                    n.op.name(),
                    a(0),
                    ints(kernel),
                    ints(stride),
                    ints(padding)
                )
            }
            Op::ScaledDotProductAttention { causal } => format!(
                "scaled_dot_product_attention({}, {}, {}, causal={})",
                a(0),
                a(1),
                a(2),
                py_bool(*causal)
            ),
            Op::Dropout { p } => format!("dropout({}, p={})", a(0), float(*p)),
            op => format!("{}({})", op.name(), a(0)),
        };
        let _ = writeln!(out, "    v{id} = {expr}");
    }
    let _ = writeln!(out, "    return {}", var(g.output));
    out
}

fn binary_tensor_first(
    g: &ArchGraph,
    n: &Node,
    op: &str,
    var: &dyn Fn(NodeId) -> String,
) -> String {
    let (l, r) = (n.inputs[0], n.inputs[1]);
    if let Op::Scalar { value } = g.nodes[l].op {
        // c - x == -x + c, c / x == pow(x, -1.0) * c
        return match op {
            "-" => format!("-{} + {}", var(r), float(value)),
            _ => format!("pow({}, -1.0) * {}", var(r), float(value)),
        };
    }
    format!("{} {op} {}", var(l), var(r))
}

/// The `nn.init` call that gives a layer's parameter (or buffer) autoarch's initialisation.
fn init_line(module: &str, spec: &crate::param::ParamSpec) -> String {
    let attr = match spec.role {
        ParamRole::Weight => "weight",
        ParamRole::Bias => "bias",
        ParamRole::RunningMean => "running_mean",
        ParamRole::RunningVar => "running_var",
    };
    let target = format!("self.{module}.{attr}");
    let call = match spec.init {
        Init::Zeros => format!("nn.init.zeros_({target})"),
        Init::Ones => format!("nn.init.ones_({target})"),
        Init::Normal { std } => format!("nn.init.normal_({target}, mean=0.0, std={})", float(std)),
        Init::Uniform { low, high } => format!(
            "nn.init.uniform_({target}, a={}, b={})",
            float(low),
            float(high)
        ),
    };
    format!("        {call}")
}

/// The graph as a PyTorch module: `Model(nn.Module)` with layers in `__init__` (tied layers
/// created once, each parameter initialised as autoarch does) and the traced computation in
/// `forward`.
pub fn to_pytorch(g: &ArchGraph) -> String {
    let mut init = String::new();
    let mut forward = String::new();
    let mut modules: HashMap<Vec<usize>, String> = HashMap::new();
    let var = |id: NodeId| -> String {
        match &g.nodes[id].op {
            Op::Input => "x".to_string(),
            Op::Scalar { value } => float(*value),
            _ => format!("v{id}"),
        }
    };
    for (id, n) in g.nodes.iter().enumerate() {
        if matches!(n.op, Op::Input | Op::Scalar { .. }) {
            continue;
        }
        let a = |i: usize| var(n.inputs[i]);
        let in_shape = n.inputs.first().map(|&i| &g.nodes[i].shape);
        let last = || in_shape.and_then(Shape::last).map_or(0, |d| d.size);
        let channels = || in_shape.map_or(0, |s| s.dims()[1].size);
        let module = |modules: &mut HashMap<Vec<usize>, String>,
                      init: &mut String,
                      ctor: String|
         -> String {
            if let Some(name) = modules.get(n.params.as_slice()) {
                return name.clone();
            }
            let name = format!("{}_{}", n.op.name(), id);
            let _ = writeln!(init, "        self.{name} = {ctor}");
            // Every parameter as autoarch initialises it, not as PyTorch's layer defaults do
            // (they differ: an embedding is N(0, 1) there, N(0, 0.02) here).
            if !matches!(n.op, Op::Param) {
                for &p in &n.params {
                    let _ = writeln!(init, "{}", init_line(&name, &g.params[p]));
                }
            }
            modules.insert(n.params.clone(), name.clone());
            name
        };
        let expr = match &n.op {
            Op::Input | Op::Scalar { .. } => unreachable!("skipped above"),
            Op::CausalMask { size } => format!(
                "torch.triu(torch.full(({size}, {size}), {}, device=x.device), diagonal=1)",
                float(MASKED)
            ),
            Op::Param => {
                let spec = &g.params[n.params[0]];
                let shape = ints(&spec.shape);
                let ctor = match spec.init {
                    Init::Zeros => format!("nn.Parameter(torch.zeros({shape}))"),
                    Init::Ones => format!("nn.Parameter(torch.ones({shape}))"),
                    Init::Normal { std } => format!("nn.Parameter(torch.randn({shape}) * {})", float(std)),
                    Init::Uniform { low, high } => format!(
                        "nn.Parameter(torch.empty({shape}).uniform_({}, {}))",
                        float(low),
                        float(high)
                    ),
                };
                format!("self.{}", module(&mut modules, &mut init, ctor))
            }
            Op::Linear { out, bias } => {
                let m = module(&mut modules, &mut init, format!("nn.Linear({}, {out}, bias={})", last(), py_bool(*bias)));
                format!("self.{m}({})", a(0))
            }
            Op::Conv1d { out, kernel, stride, padding, dilation, groups, bias } => {
                let m = module(&mut modules, &mut init, format!(
                    "nn.Conv1d({}, {out}, {kernel}, stride={stride}, padding={padding}, dilation={dilation}, groups={groups}, bias={})",
                    channels(), py_bool(*bias)));
                format!("self.{m}({})", a(0))
            }
            Op::Conv2d { out, kernel, stride, padding, dilation, groups, bias } => {
                let m = module(&mut modules, &mut init, format!(
                    "nn.Conv2d({}, {out}, ({}, {}), stride=({}, {}), padding=({}, {}), dilation=({}, {}), groups={groups}, bias={})",
                    channels(), kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1],
                    dilation[0], dilation[1], py_bool(*bias)));
                format!("self.{m}({})", a(0))
            }
            Op::Embedding { vocab, dim } => {
                let m = module(&mut modules, &mut init, format!("nn.Embedding({vocab}, {dim})"));
                format!("self.{m}({})", a(0))
            }
            Op::LayerNorm { eps } => {
                let m = module(&mut modules, &mut init, format!("nn.LayerNorm({}, eps={})", last(), float(*eps)));
                format!("self.{m}({})", a(0))
            }
            Op::RmsNorm { eps } => {
                let m = module(&mut modules, &mut init, format!("nn.RMSNorm({}, eps={})", last(), float(*eps)));
                format!("self.{m}({})", a(0))
            }
            Op::BatchNorm { eps, momentum } => {
                let kind = if in_shape.map_or(0, Shape::rank) == 4 { "BatchNorm2d" } else { "BatchNorm1d" };
                let m = module(&mut modules, &mut init, format!(
                    "nn.{kind}({}, eps={}, momentum={})", channels(), float(*eps), float(*momentum)));
                format!("self.{m}({})", a(0))
            }
            Op::GroupNorm { groups, eps } => {
                let m = module(&mut modules, &mut init, format!("nn.GroupNorm({groups}, {}, eps={})", channels(), float(*eps)));
                format!("self.{m}({})", a(0))
            }
            Op::Add => format!("{} + {}", a(0), a(1)),
            Op::Sub => format!("{} - {}", a(0), a(1)),
            Op::Mul => format!("{} * {}", a(0), a(1)),
            Op::Div => format!("{} / {}", a(0), a(1)),
            Op::Maximum => format!("torch.maximum(torch.as_tensor({}), torch.as_tensor({}))", a(0), a(1)),
            Op::Minimum => format!("torch.minimum(torch.as_tensor({}), torch.as_tensor({}))", a(0), a(1)),
            Op::Neg => format!("-{}", a(0)),
            Op::Relu => format!("F.relu({})", a(0)),
            Op::Gelu => format!("F.gelu({})", a(0)),
            Op::Silu => format!("F.silu({})", a(0)),
            Op::Sigmoid => format!("torch.sigmoid({})", a(0)),
            Op::Tanh => format!("torch.tanh({})", a(0)),
            Op::Softplus => format!("F.softplus({})", a(0)),
            Op::Elu { alpha } => format!("F.elu({}, alpha={})", a(0), float(*alpha)),
            Op::Exp => format!("torch.exp({})", a(0)),
            Op::Log => format!("torch.log({})", a(0)),
            Op::Sqrt => format!("torch.sqrt({})", a(0)),
            Op::Abs => format!("torch.abs({})", a(0)),
            Op::Square => format!("torch.square({})", a(0)),
            Op::Pow { exponent } => format!("torch.pow({}, {})", a(0), float(*exponent)),
            Op::Clamp { min, max } => format!(
                "torch.clamp({}, min={}, max={})",
                a(0),
                min.map(float).unwrap_or_else(|| "None".into()),
                max.map(float).unwrap_or_else(|| "None".into())
            ),
            Op::Sum { axes, keepdim } => format!("torch.sum({}, dim={}, keepdim={})", a(0), tuple(axes), py_bool(*keepdim)),
            Op::Mean { axes, keepdim } => format!("torch.mean({}, dim={}, keepdim={})", a(0), tuple(axes), py_bool(*keepdim)),
            Op::Max { axes, keepdim } => format!("torch.amax({}, dim={}, keepdim={})", a(0), tuple(axes), py_bool(*keepdim)),
            Op::Logsumexp { axis, keepdim } => format!("torch.logsumexp({}, dim={axis}, keepdim={})", a(0), py_bool(*keepdim)),
            Op::Softmax { axis } => format!("F.softmax({}, dim={axis})", a(0)),
            Op::LogSoftmax { axis } => format!("F.log_softmax({}, dim={axis})", a(0)),
            Op::Cumsum { axis } => format!("torch.cumsum({}, dim={axis})", a(0)),
            Op::Reshape { shape } => format!("{}.reshape({})", a(0), tuple_i64(shape)),
            Op::Permute { dims } => format!("{}.permute({})", a(0), tuple(dims)),
            Op::Concat { axis } => {
                let parts: Vec<String> = (0..n.inputs.len()).map(a).collect();
                format!("torch.cat([{}], dim={axis})", parts.join(", "))
            }
            Op::Slice { axis, start, end } => format!("{}.narrow({axis}, {start}, {})", a(0), end - start),
            Op::Pad { axis, before, after, value } => {
                let rank = n.shape.rank();
                let mut pads = Vec::new();
                for ax in (*axis..rank).rev() {
                    if ax == *axis {
                        pads.push(format!("{before}, {after}"));
                    } else {
                        pads.push("0, 0".to_string());
                    }
                }
                format!("F.pad({}, ({}), value={})", a(0), pads.join(", "), float(*value))
            }
            Op::Expand { shape } => format!("{}.expand({})", a(0), tuple_i64(shape)),
            Op::Matmul => format!("torch.matmul({}, {})", a(0), a(1)),
            Op::AvgPool2d { kernel, stride, padding } => format!(
                "F.avg_pool2d({}, ({}, {}), stride=({}, {}), padding=({}, {}), count_include_pad=False)",
                a(0), kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1]
            ),
            Op::MaxPool2d { kernel, stride, padding } => format!(
                "F.max_pool2d({}, ({}, {}), stride=({}, {}), padding=({}, {}))",
                a(0), kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1]
            ),
            Op::ScaledDotProductAttention { causal } => format!(
                "F.scaled_dot_product_attention({}, {}, {}, is_causal={})",
                a(0), a(1), a(2), py_bool(*causal)
            ),
            Op::Dropout { p } => format!("F.dropout({}, p={}, training=self.training)", a(0), float(*p)),
        };
        let _ = writeln!(forward, "        v{id} = {expr}");
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\"\"\"A traced `{}` architecture exported by autoarch (fingerprint {}).\"\"\"\n",
        g.task,
        g.fingerprint()
    );
    out.push_str("import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n");
    out.push_str("class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n");
    if init.is_empty() {
        out.push_str("        pass\n");
    } else {
        out.push_str(&init);
    }
    out.push_str("\n    def forward(self, x):\n");
    out.push_str(&forward);
    let _ = writeln!(out, "        return {}", var(g.output));
    out
}

fn tuple(v: &[usize]) -> String {
    let items: Vec<String> = v.iter().map(usize::to_string).collect();
    if items.len() == 1 {
        format!("({},)", items[0])
    } else {
        format!("({})", items.join(", "))
    }
}

fn tuple_i64(s: &Shape) -> String {
    let items: Vec<String> = s
        .dims()
        .iter()
        .map(|d| d.as_script_int().to_string())
        .collect();
    if items.len() == 1 {
        format!("({},)", items[0])
    } else {
        format!("({})", items.join(", "))
    }
}
