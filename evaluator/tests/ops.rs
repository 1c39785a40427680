//! Every op's lowering: gradients against central finite differences (in f64 on the flex
//! backend), and forward values against results computed by hand.
//!
//! Graphs are built op by op with the sandbox's own shape rules, so each test exercises exactly
//! one primitive (plus the input and, where an operand is needed, a `param`).

use std::sync::OnceLock;

use autoarch_evaluator::model::{compile, input_value, GraphModel, Mode, Value, RANK, T};
use autoarch_sandbox::{ArchGraph, DType, Init, Node, Op, ParamRole, ParamSpec, Shape};
use burn::tensor::{Device, FloatDType, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BATCH: usize = 2;

/// The flex device in f64 with autodiff, shared by every test of this binary.
fn device() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            let mut d = Device::flex();
            d.configure(FloatDType::F64)
                .expect("flex computes in f64, so gradients can be checked tightly");
            d.autodiff()
        })
        .clone()
}

/// A graph under construction, using the sandbox's shape rules and parameter specs.
struct G {
    graph: ArchGraph,
}

impl G {
    fn new(input: &[u64], dtype: DType) -> G {
        G {
            graph: ArchGraph {
                task: "test".into(),
                nodes: vec![Node {
                    op: Op::Input,
                    inputs: vec![],
                    params: vec![],
                    shape: Shape::batched(input),
                    dtype,
                    span: None,
                }],
                params: vec![],
                input: 0,
                output: 0,
            },
        }
    }

    fn add(&mut self, op: Op, inputs: &[usize]) -> usize {
        let shapes: Vec<(&Shape, DType)> = inputs
            .iter()
            .map(|&i| (&self.graph.nodes[i].shape, self.graph.nodes[i].dtype))
            .collect();
        let (shape, dtype) = match &op {
            Op::Scalar { .. } => (Shape::default(), DType::Float32),
            Op::CausalMask { size } => (Shape::fixed(&[*size, *size]), DType::Float32),
            _ => op.infer(&shapes).unwrap_or_else(|e| panic!("{op:?}: {e}")),
        };
        let specs = op
            .param_specs(inputs.first().map(|&i| &self.graph.nodes[i].shape))
            .expect("param specs");
        let mut params = Vec::new();
        for s in specs {
            self.graph.params.push(s);
            params.push(self.graph.params.len() - 1);
        }
        self.graph.nodes.push(Node {
            op,
            inputs: inputs.to_vec(),
            params,
            shape,
            dtype,
            span: None,
        });
        self.graph.nodes.len() - 1
    }

    fn param(&mut self, shape: &[u64], init: Init) -> usize {
        self.graph.params.push(ParamSpec {
            shape: shape.to_vec(),
            init,
            role: ParamRole::Weight,
        });
        self.graph.nodes.push(Node {
            op: Op::Param,
            inputs: vec![],
            params: vec![self.graph.params.len() - 1],
            shape: Shape::fixed(shape),
            dtype: DType::Float32,
            span: None,
        });
        self.graph.nodes.len() - 1
    }

    fn finish(mut self, output: usize) -> ArchGraph {
        self.graph.output = output;
        self.graph
    }
}

fn padded(dims: &[usize]) -> [usize; RANK] {
    let mut out = [1; RANK];
    out[RANK - dims.len()..].copy_from_slice(dims);
    out
}

fn to_vec(t: T) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .expect("f64 data")
}

fn tensor(values: &[f64], dims: &[usize]) -> T {
    T::from_data(TensorData::new(values.to_vec(), padded(dims)), &device())
}

fn input_dims(graph: &ArchGraph) -> Vec<usize> {
    autoarch_evaluator::model::concrete(&graph.nodes[graph.input].shape, BATCH)
}

/// Input values in `range`, fixed by a seed.
fn values(n: usize, range: (f64, f64), seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(range.0..range.1)).collect()
}

/// sum(output ⊙ weights) for fixed random weights: a scalar whose gradient reaches every output.
fn objective(model: &GraphModel, x: Value, mode: Mode, weights: &[f64]) -> burn::tensor::Tensor<1> {
    device().seed(7); // the same dropout mask on every evaluation
    let (out, _) = model.forward(x, BATCH, mode);
    let dims = out.dims();
    (out * tensor(weights, &dims)).sum()
}

fn scalar(t: burn::tensor::Tensor<1>) -> f64 {
    t.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .expect("f64")[0]
}

fn assert_close(what: &str, analytic: f64, numeric: f64, tol: f64) {
    let scale = 1.0f64.max(analytic.abs()).max(numeric.abs());
    assert!(
        (analytic - numeric).abs() <= tol * scale,
        "{what}: autodiff {analytic} vs finite differences {numeric}"
    );
}

const H: f64 = 1e-6;
const TOL: f64 = 1e-5;

/// Checks d objective / d input (float inputs) and d objective / d every trainable parameter.
fn gradient_check(name: &str, graph: &ArchGraph, range: (f64, f64), mode: Mode) {
    let dev = device();
    let model = compile(graph, &dev, 1, None).unwrap_or_else(|e| panic!("{name}: {e}"));
    let dims = input_dims(graph);
    let n: usize = dims.iter().product();
    let out_dims = autoarch_evaluator::model::concrete(&graph.nodes[graph.output].shape, BATCH);
    let weights = values(out_dims.iter().product::<usize>().max(1), (-1.0, 1.0), 3);
    let int_input = graph.nodes[graph.input].dtype == DType::Int;
    let ints: Vec<i64> = (0..n as i64).map(|i| (i * 5 + 1) % 7).collect();
    let x0 = values(n, range, 2);
    let make_x = |xs: &[f64], grad: bool| -> (Value, Option<T>) {
        if int_input {
            let v = input_value(DType::Int, &dims, &ints, &[], &dev);
            (v, None)
        } else {
            let t = tensor(xs, &dims);
            let t = if grad { t.require_grad() } else { t };
            (Value::Float(t.clone()), Some(t))
        }
    };
    // Autodiff.
    let (x, x_tensor) = make_x(&x0, true);
    let loss = objective(&model, x, mode, &weights);
    let grads = loss.backward();
    if let Some(xt) = x_tensor {
        let gx = to_vec(T::from_inner(xt.grad(&grads).expect("input gradient")));
        for k in 0..n {
            let mut plus = x0.clone();
            plus[k] += H;
            let mut minus = x0.clone();
            minus[k] -= H;
            let f = |xs: &[f64]| scalar(objective(&model, make_x(xs, false).0, mode, &weights));
            let numeric = (f(&plus) - f(&minus)) / (2.0 * H);
            assert_close(&format!("{name}: d/dx[{k}]"), gx[k], numeric, TOL);
        }
    }
    for (id, spec) in graph.params.iter().enumerate() {
        if !spec.role.trainable() {
            continue;
        }
        let value = model.param_value(id);
        let pdims = value.dims();
        let g = value
            .grad(&grads)
            .map(|g| to_vec(T::from_inner(g)))
            .unwrap_or_else(|| panic!("{name}: no gradient for parameter {id}"));
        let base = to_vec(value.clone());
        for k in 0..base.len().min(40) {
            let f = |delta: f64| {
                let mut m = model.clone();
                let mut v = base.clone();
                v[k] += delta;
                m.set_param(id, T::from_data(TensorData::new(v, pdims), &dev));
                scalar(objective(&m, make_x(&x0, false).0, mode, &weights))
            };
            let numeric = (f(H) - f(-H)) / (2.0 * H);
            assert_close(&format!("{name}: d/dparam{id}[{k}]"), g[k], numeric, TOL);
        }
    }
}

/// The ops under test, each as a graph builder: (name, builder, input range, mode).
type Build = fn() -> ArchGraph;

fn unary(input: &[u64], op: Op) -> ArchGraph {
    let mut g = G::new(input, DType::Float32);
    let y = g.add(op, &[0]);
    g.finish(y)
}

fn binary_with_param(op: Op) -> ArchGraph {
    let mut g = G::new(&[3, 4], DType::Float32);
    let p = g.param(
        &[4],
        Init::Uniform {
            low: 0.5,
            high: 1.5,
        },
    );
    let y = g.add(op, &[0, p]);
    g.finish(y)
}

// A table: one gradient case per op.
#[allow(clippy::too_many_lines)]
fn cases() -> Vec<(&'static str, Build, (f64, f64), Mode)> {
    let any = (-1.0, 1.0);
    let positive = (0.5, 1.5);
    vec![
        (
            "scalar",
            || {
                let mut g = G::new(&[3, 4], DType::Float32);
                let s = g.add(Op::Scalar { value: 2.5 }, &[]);
                let y = g.add(Op::Mul, &[0, s]);
                g.finish(y)
            },
            any,
            Mode::Train,
        ),
        (
            "causal_mask",
            || {
                let mut g = G::new(&[4, 4], DType::Float32);
                let m = g.add(Op::CausalMask { size: 4 }, &[]);
                let s = g.add(Op::Add, &[0, m]);
                let y = g.add(Op::Softmax { axis: 2 }, &[s]);
                g.finish(y)
            },
            any,
            Mode::Train,
        ),
        (
            "param",
            || {
                let mut g = G::new(&[3, 4], DType::Float32);
                let p = g.param(&[3, 4], Init::Normal { std: 1.0 });
                let y = g.add(Op::Mul, &[0, p]);
                g.finish(y)
            },
            any,
            Mode::Train,
        ),
        (
            "linear",
            || unary(&[3, 4], Op::Linear { out: 5, bias: true }),
            any,
            Mode::Train,
        ),
        (
            "conv1d",
            || {
                unary(
                    &[2, 6],
                    Op::Conv1d {
                        out: 4,
                        kernel: 3,
                        stride: 1,
                        padding: 1,
                        dilation: 1,
                        groups: 2,
                        bias: true,
                    },
                )
            },
            any,
            Mode::Train,
        ),
        (
            "conv2d",
            || {
                unary(
                    &[2, 5, 5],
                    Op::Conv2d {
                        out: 2,
                        kernel: [3, 3],
                        stride: [2, 2],
                        padding: [1, 1],
                        dilation: [1, 1],
                        groups: 1,
                        bias: true,
                    },
                )
            },
            any,
            Mode::Train,
        ),
        (
            "embedding",
            || {
                let mut g = G::new(&[3], DType::Int);
                let y = g.add(Op::Embedding { vocab: 7, dim: 4 }, &[0]);
                g.finish(y)
            },
            any,
            Mode::Train,
        ),
        (
            "layer_norm",
            || unary(&[3, 4], Op::LayerNorm { eps: 1e-5 }),
            any,
            Mode::Train,
        ),
        (
            "rms_norm",
            || unary(&[3, 4], Op::RmsNorm { eps: 1e-6 }),
            any,
            Mode::Train,
        ),
        (
            "batch_norm",
            || {
                unary(
                    &[3, 4],
                    Op::BatchNorm {
                        eps: 1e-5,
                        momentum: 0.1,
                    },
                )
            },
            any,
            Mode::Train,
        ),
        (
            "group_norm",
            || {
                unary(
                    &[4, 3],
                    Op::GroupNorm {
                        groups: 2,
                        eps: 1e-5,
                    },
                )
            },
            any,
            Mode::Train,
        ),
        ("add", || binary_with_param(Op::Add), any, Mode::Train),
        ("sub", || binary_with_param(Op::Sub), any, Mode::Train),
        ("mul", || binary_with_param(Op::Mul), any, Mode::Train),
        ("div", || binary_with_param(Op::Div), any, Mode::Train),
        (
            "maximum",
            || binary_with_param(Op::Maximum),
            positive,
            Mode::Train,
        ),
        (
            "minimum",
            || binary_with_param(Op::Minimum),
            positive,
            Mode::Train,
        ),
        ("neg", || unary(&[3, 4], Op::Neg), any, Mode::Train),
        ("relu", || unary(&[3, 4], Op::Relu), any, Mode::Train),
        ("gelu", || unary(&[3, 4], Op::Gelu), any, Mode::Train),
        ("silu", || unary(&[3, 4], Op::Silu), any, Mode::Train),
        ("sigmoid", || unary(&[3, 4], Op::Sigmoid), any, Mode::Train),
        ("tanh", || unary(&[3, 4], Op::Tanh), any, Mode::Train),
        (
            "softplus",
            || unary(&[3, 4], Op::Softplus),
            any,
            Mode::Train,
        ),
        (
            "elu",
            || unary(&[3, 4], Op::Elu { alpha: 0.7 }),
            any,
            Mode::Train,
        ),
        ("exp", || unary(&[3, 4], Op::Exp), any, Mode::Train),
        ("log", || unary(&[3, 4], Op::Log), positive, Mode::Train),
        ("sqrt", || unary(&[3, 4], Op::Sqrt), positive, Mode::Train),
        ("abs", || unary(&[3, 4], Op::Abs), any, Mode::Train),
        ("square", || unary(&[3, 4], Op::Square), any, Mode::Train),
        (
            "pow",
            || unary(&[3, 4], Op::Pow { exponent: 2.5 }),
            positive,
            Mode::Train,
        ),
        (
            "clamp",
            || {
                unary(
                    &[3, 4],
                    Op::Clamp {
                        min: Some(-0.3),
                        max: Some(0.4),
                    },
                )
            },
            any,
            Mode::Train,
        ),
        (
            "sum",
            || {
                unary(
                    &[3, 4],
                    Op::Sum {
                        axes: vec![1, 2],
                        keepdim: false,
                    },
                )
            },
            any,
            Mode::Train,
        ),
        (
            "mean",
            || {
                unary(
                    &[3, 4],
                    Op::Mean {
                        axes: vec![2],
                        keepdim: true,
                    },
                )
            },
            any,
            Mode::Train,
        ),
        (
            "max",
            || {
                unary(
                    &[3, 4],
                    Op::Max {
                        axes: vec![1],
                        keepdim: false,
                    },
                )
            },
            any,
            Mode::Train,
        ),
        (
            "logsumexp",
            || {
                unary(
                    &[3, 4],
                    Op::Logsumexp {
                        axis: 2,
                        keepdim: false,
                    },
                )
            },
            any,
            Mode::Train,
        ),
        (
            "softmax",
            || unary(&[3, 4], Op::Softmax { axis: 1 }),
            any,
            Mode::Train,
        ),
        (
            "log_softmax",
            || unary(&[3, 4], Op::LogSoftmax { axis: 2 }),
            any,
            Mode::Train,
        ),
        (
            "cumsum",
            || unary(&[3, 4], Op::Cumsum { axis: 1 }),
            any,
            Mode::Train,
        ),
        (
            "cummax",
            || unary(&[3, 4], Op::Cummax { axis: 1 }),
            any,
            Mode::Train,
        ),
        (
            "reshape",
            || {
                unary(
                    &[3, 4],
                    Op::Reshape {
                        shape: Shape::batched(&[2, 6]),
                    },
                )
            },
            any,
            Mode::Train,
        ),
        (
            "permute",
            || {
                unary(
                    &[3, 4],
                    Op::Permute {
                        dims: vec![0, 2, 1],
                    },
                )
            },
            any,
            Mode::Train,
        ),
        (
            "concat",
            || {
                let mut g = G::new(&[3, 4], DType::Float32);
                let s = g.add(Op::Square, &[0]);
                let y = g.add(Op::Concat { axis: 2 }, &[0, s]);
                g.finish(y)
            },
            any,
            Mode::Train,
        ),
        (
            "slice",
            || {
                unary(
                    &[3, 4],
                    Op::Slice {
                        axis: 2,
                        start: 1,
                        end: 3,
                    },
                )
            },
            any,
            Mode::Train,
        ),
        (
            "pad",
            || {
                unary(
                    &[3, 4],
                    Op::Pad {
                        axis: 1,
                        before: 1,
                        after: 2,
                        value: 0.5,
                    },
                )
            },
            any,
            Mode::Train,
        ),
        (
            "expand",
            || {
                unary(
                    &[1, 4],
                    Op::Expand {
                        shape: Shape::batched(&[3, 4]),
                    },
                )
            },
            any,
            Mode::Train,
        ),
        (
            "matmul",
            || {
                let mut g = G::new(&[3, 4], DType::Float32);
                let w = g.param(&[4, 5], Init::Normal { std: 1.0 });
                let y = g.add(Op::Matmul, &[0, w]);
                g.finish(y)
            },
            any,
            Mode::Train,
        ),
        (
            "matmul_batched",
            || {
                let mut g = G::new(&[3, 4], DType::Float32);
                let t = g.add(
                    Op::Permute {
                        dims: vec![0, 2, 1],
                    },
                    &[0],
                );
                let y = g.add(Op::Matmul, &[0, t]);
                g.finish(y)
            },
            any,
            Mode::Train,
        ),
        (
            "avg_pool2d",
            || {
                unary(
                    &[2, 4, 4],
                    Op::AvgPool2d {
                        kernel: [3, 3],
                        stride: [1, 1],
                        padding: [1, 1],
                    },
                )
            },
            any,
            Mode::Train,
        ),
        (
            "max_pool2d",
            || {
                unary(
                    &[2, 4, 4],
                    Op::MaxPool2d {
                        kernel: [2, 2],
                        stride: [2, 2],
                        padding: [0, 0],
                    },
                )
            },
            any,
            Mode::Train,
        ),
        (
            "scaled_dot_product_attention",
            || {
                let mut g = G::new(&[2, 3, 4], DType::Float32);
                let k = g.add(Op::Square, &[0]);
                let y = g.add(Op::ScaledDotProductAttention { causal: true }, &[0, k, 0]);
                g.finish(y)
            },
            any,
            Mode::Train,
        ),
        (
            "dropout",
            || unary(&[3, 4], Op::Dropout { p: 0.5 }),
            any,
            Mode::Train,
        ),
    ]
}

#[test]
fn every_op_has_a_gradient_case() {
    let mut covered = std::collections::BTreeSet::new();
    for (_, build, _, _) in cases() {
        for node in build().nodes {
            covered.insert(node.op.name());
        }
    }
    for (name, build, _, _) in cases() {
        let graph = build();
        let last = &graph.nodes[graph.output].op;
        assert!(
            name.starts_with(last.name())
                || name == "causal_mask"
                || name == "scalar"
                || name == "param",
            "case {name} ends in {}",
            last.name()
        );
    }
    // Every variant name appears (the match above lists them all).
    let all = [
        "input",
        "scalar",
        "causal_mask",
        "param",
        "linear",
        "conv1d",
        "conv2d",
        "embedding",
        "layer_norm",
        "rms_norm",
        "batch_norm",
        "group_norm",
        "add",
        "sub",
        "mul",
        "div",
        "maximum",
        "minimum",
        "neg",
        "relu",
        "gelu",
        "silu",
        "sigmoid",
        "tanh",
        "softplus",
        "elu",
        "exp",
        "log",
        "sqrt",
        "abs",
        "square",
        "pow",
        "clamp",
        "sum",
        "mean",
        "max",
        "logsumexp",
        "softmax",
        "log_softmax",
        "cumsum",
        "cummax",
        "reshape",
        "permute",
        "concat",
        "slice",
        "pad",
        "expand",
        "matmul",
        "avg_pool2d",
        "max_pool2d",
        "scaled_dot_product_attention",
        "dropout",
    ];
    for name in all {
        assert!(covered.contains(name), "no gradient case uses {name}");
    }
}

#[test]
fn gradients_match_finite_differences() {
    for (name, build, range, mode) in cases() {
        gradient_check(name, &build(), range, mode);
    }
}

/// Runs a graph on given input values in evaluation mode (or training mode for batch norm's
/// batch statistics) and returns the flat output.
fn run(graph: &ArchGraph, x: &[f64], mode: Mode, set: &[(usize, Vec<f64>)]) -> Vec<f64> {
    let dev = device();
    let mut model = compile(graph, &dev, 1, None).expect("compiles");
    for (id, v) in set {
        let dims: Vec<usize> = graph.params[*id]
            .shape
            .iter()
            .map(|&d| d as usize)
            .collect();
        model.set_param(*id, tensor(v, &dims));
    }
    let dims = input_dims(graph);
    let (out, _) = model.forward(Value::Float(tensor(x, &dims)), BATCH, mode);
    to_vec(out)
}

fn assert_values(name: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{name}: {got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() < 1e-6,
            "{name}[{i}]: got {g}, want {w}\n{got:?}"
        );
    }
}

fn one_to(n: usize) -> Vec<f64> {
    (1..=n).map(|v| v as f64).collect()
}

#[test]
fn elementwise_forward_values() {
    // Input: two samples of [1, 4]: -2, -0.5, 0.5, 2 and 1, 2, 3, 4.
    let x = [-2.0, -0.5, 0.5, 2.0, 1.0, 2.0, 3.0, 4.0];
    let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
    let erf_gelu = |v: f64| {
        // gelu(v) = v·Φ(v); Φ via the Abramowitz–Stegun erf (1.5e-7), good to the test's 1e-6
        let z = v / 2f64.sqrt();
        let t = 1.0 / (1.0 + 0.3275911 * z.abs());
        let y = 1.0
            - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
                + 0.254829592)
                * t
                * (-z * z).exp();
        v * 0.5 * (1.0 + y.copysign(z))
    };
    type F = Box<dyn Fn(f64) -> f64>;
    let table: Vec<(&str, Op, F)> = vec![
        ("neg", Op::Neg, Box::new(|v| -v)),
        ("relu", Op::Relu, Box::new(|v: f64| v.max(0.0))),
        ("gelu", Op::Gelu, Box::new(erf_gelu)),
        ("silu", Op::Silu, Box::new(move |v| v * sigmoid(v))),
        ("sigmoid", Op::Sigmoid, Box::new(sigmoid)),
        ("tanh", Op::Tanh, Box::new(f64::tanh)),
        (
            "softplus",
            Op::Softplus,
            Box::new(|v: f64| (1.0 + v.exp()).ln()),
        ),
        (
            "elu",
            Op::Elu { alpha: 0.7 },
            Box::new(|v: f64| if v > 0.0 { v } else { 0.7 * (v.exp() - 1.0) }),
        ),
        ("exp", Op::Exp, Box::new(f64::exp)),
        ("abs", Op::Abs, Box::new(f64::abs)),
        ("square", Op::Square, Box::new(|v| v * v)),
        (
            "clamp",
            Op::Clamp {
                min: Some(-1.0),
                max: Some(2.5),
            },
            Box::new(|v: f64| v.clamp(-1.0, 2.5)),
        ),
    ];
    for (name, op, f) in table {
        let got = run(&unary(&[1, 4], op), &x, Mode::Eval, &[]);
        let want: Vec<f64> = x.iter().map(|&v| f(v)).collect();
        assert_values(name, &got, &want);
    }
    let pos = [0.25, 1.0, 4.0, 9.0, 1.0, 2.0, 3.0, 16.0];
    let table: Vec<(&str, Op, F)> = vec![
        ("log", Op::Log, Box::new(f64::ln)),
        ("sqrt", Op::Sqrt, Box::new(f64::sqrt)),
        (
            "pow",
            Op::Pow { exponent: 1.5 },
            Box::new(|v: f64| v.powf(1.5)),
        ),
    ];
    for (name, op, f) in table {
        let got = run(&unary(&[1, 4], op), &pos, Mode::Eval, &[]);
        let want: Vec<f64> = pos.iter().map(|&v| f(v)).collect();
        assert_values(name, &got, &want);
    }
}

#[test]
fn binary_ops_broadcast_like_numpy() {
    // x: [B=2, 1, 4]; p: [4] = 1, 2, 4, 8 broadcast over the batch.
    let x = [-2.0, -0.5, 0.5, 2.0, 1.0, 2.0, 3.0, 4.0];
    let p = vec![1.0, 2.0, 4.0, 8.0];
    type Binary = fn(f64, f64) -> f64;
    let cases: [(Op, Binary); 6] = [
        (Op::Add, |a, b| a + b),
        (Op::Sub, |a, b| a - b),
        (Op::Mul, |a, b| a * b),
        (Op::Div, |a, b| a / b),
        (Op::Maximum, f64::max),
        (Op::Minimum, f64::min),
    ];
    for (op, f) in cases {
        let name = op.name();
        let mut g = G::new(&[1, 4], DType::Float32);
        let pn = g.param(&[4], Init::Zeros);
        let y = g.add(op, &[0, pn]);
        let graph = g.finish(y);
        let got = run(&graph, &x, Mode::Eval, &[(0, p.clone())]);
        let want: Vec<f64> = x.iter().enumerate().map(|(i, &v)| f(v, p[i % 4])).collect();
        assert_values(name, &got, &want);
    }
    // A scalar operand.
    let mut g = G::new(&[1, 4], DType::Float32);
    let s = g.add(Op::Scalar { value: 0.5 }, &[]);
    let y = g.add(Op::Sub, &[0, s]);
    let got = run(&g.finish(y), &x, Mode::Eval, &[]);
    let want: Vec<f64> = x.iter().map(|v| v - 0.5).collect();
    assert_values("sub scalar", &got, &want);
}

// One hand-computed case per reduction, one after another.
#[allow(clippy::too_many_lines)]
#[test]
fn reductions_forward_values() {
    // Two samples of [2, 3]: 1..6 and 7..12.
    let x = one_to(12);
    let sum = run(
        &unary(
            &[2, 3],
            Op::Sum {
                axes: vec![2],
                keepdim: false,
            },
        ),
        &x,
        Mode::Eval,
        &[],
    );
    assert_values("sum", &sum, &[6.0, 15.0, 24.0, 33.0]);
    let sum_all = run(
        &unary(
            &[2, 3],
            Op::Sum {
                axes: vec![1, 2],
                keepdim: true,
            },
        ),
        &x,
        Mode::Eval,
        &[],
    );
    assert_values("sum both axes", &sum_all, &[21.0, 57.0]);
    let mean = run(
        &unary(
            &[2, 3],
            Op::Mean {
                axes: vec![1],
                keepdim: false,
            },
        ),
        &x,
        Mode::Eval,
        &[],
    );
    assert_values("mean", &mean, &[2.5, 3.5, 4.5, 8.5, 9.5, 10.5]);
    let max = run(
        &unary(
            &[2, 3],
            Op::Max {
                axes: vec![2],
                keepdim: false,
            },
        ),
        &x,
        Mode::Eval,
        &[],
    );
    assert_values("max", &max, &[3.0, 6.0, 9.0, 12.0]);
    let lse = run(
        &unary(
            &[2, 3],
            Op::Logsumexp {
                axis: 2,
                keepdim: false,
            },
        ),
        &x,
        Mode::Eval,
        &[],
    );
    let l = |a: f64| (a.exp() + (a + 1.0).exp() + (a + 2.0).exp()).ln();
    assert_values("logsumexp", &lse, &[l(1.0), l(4.0), l(7.0), l(10.0)]);
    let sm = run(
        &unary(&[2, 3], Op::Softmax { axis: 2 }),
        &x,
        Mode::Eval,
        &[],
    );
    let z = 1.0 + 1f64.exp() + 2f64.exp();
    let row = [1.0 / z, 1f64.exp() / z, 2f64.exp() / z];
    assert_values("softmax", &sm, &row.repeat(4));
    let lsm = run(
        &unary(&[2, 3], Op::LogSoftmax { axis: 2 }),
        &x,
        Mode::Eval,
        &[],
    );
    let lrow: Vec<f64> = row.iter().map(|v| v.ln()).collect();
    assert_values("log_softmax", &lsm, &lrow.repeat(4));
    let cs = run(&unary(&[2, 3], Op::Cumsum { axis: 2 }), &x, Mode::Eval, &[]);
    assert_values(
        "cumsum",
        &cs,
        &[
            1.0, 3.0, 6.0, 4.0, 9.0, 15.0, 7.0, 15.0, 24.0, 10.0, 21.0, 33.0,
        ],
    );
    // The running maximum of each row of three.
    let rows = [3.0, 1.0, 2.0, 1.0, 4.0, 2.0, 5.0, 5.0, 0.0, -1.0, -2.0, 7.0];
    let cm = run(
        &unary(&[2, 3], Op::Cummax { axis: 2 }),
        &rows,
        Mode::Eval,
        &[],
    );
    assert_values(
        "cummax",
        &cm,
        &[3.0, 3.0, 3.0, 1.0, 4.0, 4.0, 5.0, 5.0, 5.0, -1.0, -1.0, 7.0],
    );
}

#[test]
fn shape_ops_forward_values() {
    let x = one_to(12); // two samples of [2, 3]
    let r = run(
        &unary(
            &[2, 3],
            Op::Reshape {
                shape: Shape::batched(&[3, 2]),
            },
        ),
        &x,
        Mode::Eval,
        &[],
    );
    assert_values("reshape", &r, &x);
    let p = run(
        &unary(
            &[2, 3],
            Op::Permute {
                dims: vec![0, 2, 1],
            },
        ),
        &x,
        Mode::Eval,
        &[],
    );
    assert_values(
        "permute",
        &p,
        &[
            1.0, 4.0, 2.0, 5.0, 3.0, 6.0, 7.0, 10.0, 8.0, 11.0, 9.0, 12.0,
        ],
    );
    let s = run(
        &unary(
            &[2, 3],
            Op::Slice {
                axis: 2,
                start: 1,
                end: 3,
            },
        ),
        &x,
        Mode::Eval,
        &[],
    );
    assert_values("slice", &s, &[2.0, 3.0, 5.0, 6.0, 8.0, 9.0, 11.0, 12.0]);
    let pd = run(
        &unary(
            &[2, 3],
            Op::Pad {
                axis: 1,
                before: 1,
                after: 0,
                value: -1.0,
            },
        ),
        &x,
        Mode::Eval,
        &[],
    );
    assert_values(
        "pad",
        &pd,
        &[
            -1.0, -1.0, -1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -1.0, -1.0, -1.0, 7.0, 8.0, 9.0, 10.0,
            11.0, 12.0,
        ],
    );
    let mut g = G::new(&[2, 3], DType::Float32);
    let n = g.add(Op::Neg, &[0]);
    let c = g.add(Op::Concat { axis: 1 }, &[0, n]);
    let cat = run(&g.finish(c), &x, Mode::Eval, &[]);
    assert_values(
        "concat",
        &cat,
        &[
            1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0, 7.0, 8.0, 9.0, 10.0,
            11.0, 12.0, -7.0, -8.0, -9.0, -10.0, -11.0, -12.0,
        ],
    );
    let e = run(
        &unary(
            &[1, 3],
            Op::Expand {
                shape: Shape::batched(&[2, 3]),
            },
        ),
        &one_to(6),
        Mode::Eval,
        &[],
    );
    assert_values(
        "expand",
        &e,
        &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 4.0, 5.0, 6.0],
    );
}

// One hand-computed case per layer, one after another.
#[allow(clippy::too_many_lines)]
#[test]
fn layers_forward_values() {
    // linear: x [B, 1, 2] · W [2, 3] + b.
    let x = [1.0, 2.0, 3.0, 4.0];
    let lin = unary(&[1, 2], Op::Linear { out: 3, bias: true });
    let got = run(
        &lin,
        &x,
        Mode::Eval,
        &[
            (0, vec![1.0, 0.0, 2.0, 0.0, 1.0, -1.0]),
            (1, vec![0.5, 0.0, 1.0]),
        ],
    );
    assert_values("linear", &got, &[1.5, 2.0, 1.0, 3.5, 4.0, 3.0]);

    // matmul with a batched right operand: x @ xᵀ per sample.
    let mut g = G::new(&[2, 2], DType::Float32);
    let t = g.add(
        Op::Permute {
            dims: vec![0, 2, 1],
        },
        &[0],
    );
    let y = g.add(Op::Matmul, &[0, t]);
    let got = run(&g.finish(y), &one_to(8), Mode::Eval, &[]);
    assert_values(
        "matmul",
        &got,
        &[5.0, 11.0, 11.0, 25.0, 61.0, 83.0, 83.0, 113.0],
    );

    // conv1d: one channel, kernel [1, 0, -1], padding 1: y[t] = x[t-1] - x[t+1].
    let conv = unary(
        &[1, 4],
        Op::Conv1d {
            out: 1,
            kernel: 3,
            stride: 1,
            padding: 1,
            dilation: 1,
            groups: 1,
            bias: false,
        },
    );
    let got = run(
        &conv,
        &[1.0, 2.0, 4.0, 8.0, 0.0, 1.0, 0.0, 1.0],
        Mode::Eval,
        &[(0, vec![1.0, 0.0, -1.0])],
    );
    assert_values(
        "conv1d",
        &got,
        &[-2.0, -3.0, -6.0, 4.0, -1.0, 0.0, 0.0, 0.0],
    );

    // conv2d: 3×3 input 1..9, 2×2 kernel of ones, bias 1: window sums + 1.
    let conv = unary(
        &[1, 3, 3],
        Op::Conv2d {
            out: 1,
            kernel: [2, 2],
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            bias: true,
        },
    );
    let mut xs = one_to(9);
    xs.extend(vec![0.0; 9]);
    let got = run(&conv, &xs, Mode::Eval, &[(0, vec![1.0; 4]), (1, vec![1.0])]);
    assert_values(
        "conv2d",
        &got,
        &[13.0, 17.0, 25.0, 29.0, 1.0, 1.0, 1.0, 1.0],
    );

    // layer_norm and rms_norm of [1, 2, 3, 4] with unit scale.
    let norm_in = [1.0, 2.0, 3.0, 4.0, 2.0, 2.0, 2.0, 2.0];
    let ln = run(
        &unary(&[1, 4], Op::LayerNorm { eps: 0.0 }),
        &norm_in[..4].repeat(2),
        Mode::Eval,
        &[],
    );
    let sd = 1.25f64.sqrt();
    let row = [-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd];
    assert_values("layer_norm", &ln, &row.repeat(2));
    let rms = run(
        &unary(&[1, 4], Op::RmsNorm { eps: 0.0 }),
        &norm_in,
        Mode::Eval,
        &[],
    );
    let r = 7.5f64.sqrt();
    assert_values(
        "rms_norm",
        &rms,
        &[1.0 / r, 2.0 / r, 3.0 / r, 4.0 / r, 1.0, 1.0, 1.0, 1.0],
    );

    // batch_norm in training mode: per channel over batch and length.
    // channel 0 holds 1, 3 (sample 0) and 5, 7 (sample 1): mean 4, variance 5.
    let bn = unary(
        &[1, 2],
        Op::BatchNorm {
            eps: 0.0,
            momentum: 0.1,
        },
    );
    let got = run(&bn, &[1.0, 3.0, 5.0, 7.0], Mode::Train, &[]);
    let s5 = 5f64.sqrt();
    assert_values(
        "batch_norm",
        &got,
        &[-3.0 / s5, -1.0 / s5, 1.0 / s5, 3.0 / s5],
    );
    // ... and in evaluation mode with its fresh running statistics (mean 0, variance 1).
    let got = run(&bn, &[1.0, 3.0, 5.0, 7.0], Mode::Eval, &[]);
    assert_values("batch_norm eval", &got, &[1.0, 3.0, 5.0, 7.0]);

    // group_norm: 2 channels in 2 groups of one channel, over the length.
    let gn = unary(
        &[2, 2],
        Op::GroupNorm {
            groups: 2,
            eps: 0.0,
        },
    );
    let got = run(
        &gn,
        &[1.0, 3.0, 10.0, 20.0, 0.0, 2.0, 5.0, 7.0],
        Mode::Eval,
        &[],
    );
    assert_values(
        "group_norm",
        &got,
        &[-1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0],
    );
}

#[test]
fn pooling_attention_and_dropout_forward_values() {
    // 4×4 input 1..16 (sample 0), zeros (sample 1).
    let mut xs = one_to(16);
    xs.extend(vec![0.0; 16]);
    let mp = run(
        &unary(
            &[1, 4, 4],
            Op::MaxPool2d {
                kernel: [2, 2],
                stride: [2, 2],
                padding: [0, 0],
            },
        ),
        &xs,
        Mode::Eval,
        &[],
    );
    assert_values(
        "max_pool2d",
        &mp,
        &[6.0, 8.0, 14.0, 16.0, 0.0, 0.0, 0.0, 0.0],
    );
    let ap = run(
        &unary(
            &[1, 4, 4],
            Op::AvgPool2d {
                kernel: [2, 2],
                stride: [2, 2],
                padding: [0, 0],
            },
        ),
        &xs,
        Mode::Eval,
        &[],
    );
    assert_values(
        "avg_pool2d",
        &ap,
        &[3.5, 5.5, 11.5, 13.5, 0.0, 0.0, 0.0, 0.0],
    );
    // Padding is not counted: the corner window of a 3×3/stride-1/pad-1 pool covers 1, 2, 5, 6.
    let ap = run(
        &unary(
            &[1, 4, 4],
            Op::AvgPool2d {
                kernel: [3, 3],
                stride: [1, 1],
                padding: [1, 1],
            },
        ),
        &xs,
        Mode::Eval,
        &[],
    );
    assert_values("avg_pool2d corner", &ap[..1], &[3.5]);

    // Attention with one key: the output is that key's value. Causal, two positions:
    // position 0 sees only itself.
    let mut g = G::new(&[2, 1], DType::Float32);
    let y = g.add(Op::ScaledDotProductAttention { causal: true }, &[0, 0, 0]);
    let got = run(&g.finish(y), &[1.0, 2.0, 0.0, 0.0], Mode::Eval, &[]);
    // position 1 attends to values 1, 2 with weights ∝ exp(2·1), exp(2·2).
    let w = (4f64.exp()) / (2f64.exp() + 4f64.exp());
    assert_values("attention", &got, &[1.0, 1.0 - w + 2.0 * w, 0.0, 0.0]);

    // Dropout: identity when evaluating; in training, zeros or x / (1 - p).
    let x: Vec<f64> = vec![1.0; 200];
    let d = unary(&[100], Op::Dropout { p: 0.25 });
    assert_values("dropout eval", &run(&d, &x, Mode::Eval, &[]), &x);
    let train = run(&d, &x, Mode::Train, &[]);
    let zeros = train.iter().filter(|&&v| v == 0.0).count();
    assert!(train
        .iter()
        .all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-9));
    assert!(
        (20..=80).contains(&zeros),
        "{zeros} of 200 dropped at p = 0.25"
    );

    // Embedding: looks rows up by id.
    let mut g = G::new(&[3], DType::Int);
    let y = g.add(Op::Embedding { vocab: 3, dim: 2 }, &[0]);
    let graph = g.finish(y);
    let dev = device();
    let mut model = compile(&graph, &dev, 1, Some(3)).expect("compiles");
    model.set_param(0, tensor(&[0.0, 0.5, 1.0, 1.5, 2.0, 2.5], &[3, 2]));
    let ids = input_value(DType::Int, &[2, 3], &[2, 0, 1, 1, 1, 0], &[], &dev);
    let (out, _) = model.forward(ids, 2, Mode::Eval);
    assert_values(
        "embedding",
        &to_vec(out),
        &[2.0, 2.5, 0.0, 0.5, 1.0, 1.5, 1.0, 1.5, 1.0, 1.5, 0.0, 0.5],
    );
}

#[test]
fn embedding_smaller_than_the_task_vocabulary_is_refused() {
    let mut g = G::new(&[3], DType::Int);
    let y = g.add(Op::Embedding { vocab: 3, dim: 2 }, &[0]);
    let err = compile(&g.finish(y), &device(), 1, Some(10)).unwrap_err();
    assert!(err.0.contains("vocab 3"), "{err}");
}
