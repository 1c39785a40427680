//! `ArchGraph` → a trainable burn model: every parameter is a burn `Param`, and an interpreter
//! runs the graph's nodes in order.
//!
//! Every value is held at one rank, [`RANK`], with leading dims of size 1: a logical axis `a` of a
//! rank-`r` value is axis `a + RANK - r`. NumPy broadcasting then falls out of burn's own, and one
//! tensor type covers every rank a graph uses. The node's traced shape says what to reshape to
//! after each op, so reductions without `keepdim` are a reshape away from the `keepdim` form.

use autoarch_sandbox::{ArchGraph, DType, Init, Node, Op, ParamRole, Shape};
use burn::module::{Module, Param, ParamId};
use burn::tensor::activation;
use burn::tensor::module::{avg_pool2d, conv1d, conv2d, embedding, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::GraphError;

/// The rank every value is held at; graphs with higher-rank values are refused by [`compile`].
pub const RANK: usize = 6;

pub type T = Tensor<RANK>;
pub type TInt = Tensor<RANK, Int>;

/// A value flowing through the interpreter.
#[derive(Clone, Debug)]
pub enum Value {
    Float(T),
    Int(TInt),
}

impl Value {
    fn float(self, node: usize) -> Result<T, GraphError> {
        match self {
            Value::Float(t) => Ok(t),
            Value::Int(_) => Err(GraphError(format!(
                "node {node}: expected a float tensor, got ints"
            ))),
        }
    }
}

/// Training or evaluation: dropout and batch norm behave differently.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Train,
    Eval,
}

/// A compiled graph: parameters split by whether weight decay applies (matrices and
/// convolution kernels) or not (biases, norm scales, raw `param`s of rank ≤ 1), and buffers.
#[derive(Clone, Debug)]
pub struct GraphModel {
    pub graph: ArchGraph,
    /// Trainable parameters with weight decay.
    pub decay: Vec<Param<T>>,
    /// Trainable parameters without weight decay.
    pub no_decay: Vec<Param<T>>,
    /// Non-trainable state (batch-norm running statistics), updated by training forwards.
    pub buffers: Vec<T>,
    /// For each graph parameter: where it lives.
    slots: Vec<Slot>,
    /// For each node: the last node that reads it (`usize::MAX` for the output).
    last_use: Vec<usize>,
}

#[derive(Clone, Copy, Debug)]
enum Slot {
    Decay(usize),
    NoDecay(usize),
    Buffer(usize),
}

/// Buffers written by a training forward: (buffer index, new value).
pub type BufferUpdates = Vec<(usize, T)>;

fn padded(dims: &[usize]) -> [usize; RANK] {
    let mut out = [1; RANK];
    out[RANK - dims.len()..].copy_from_slice(dims);
    out
}

/// The concrete sizes of a traced shape for a given batch size.
pub fn concrete(shape: &Shape, batch: usize) -> Vec<usize> {
    shape
        .dims()
        .iter()
        .map(|d| d.size as usize * if d.batch { batch } else { 1 })
        .collect()
}

fn axis(shape: &Shape, a: usize) -> usize {
    a + RANK - shape.rank()
}

/// Draws a parameter's initial values.
fn init_values(init: Init, n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    match init {
        Init::Zeros => vec![0.0; n],
        Init::Ones => vec![1.0; n],
        Init::Uniform { low, high } => (0..n)
            .map(|_| rng.random_range(low..=high) as f32)
            .collect(),
        Init::Normal { std } => (0..n)
            .map(|_| {
                // Box–Muller: two uniforms give one standard normal.
                let u1: f64 = rng.random_range(f64::EPSILON..1.0);
                let u2: f64 = rng.random();
                ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * std) as f32
            })
            .collect(),
    }
}

fn last_uses(graph: &ArchGraph) -> Vec<usize> {
    let mut last_use = vec![0usize; graph.nodes.len()];
    for (i, n) in graph.nodes.iter().enumerate() {
        for &j in &n.inputs {
            last_use[j] = i;
        }
    }
    last_use[graph.output] = usize::MAX;
    last_use
}

/// Why a graph cannot be compiled (reported as the `invalid` outcome).
pub fn check_graph(graph: &ArchGraph, vocab: Option<u64>) -> Result<(), GraphError> {
    for (i, node) in graph.nodes.iter().enumerate() {
        if node.shape.rank() > RANK {
            return Err(GraphError(format!(
                "node {i} ({}) has rank {}; the evaluator supports values of rank ≤ {RANK}",
                node.op.name(),
                node.shape.rank()
            )));
        }
        if let (Op::Embedding { vocab: v, .. }, Some(task_vocab)) = (&node.op, vocab) {
            if *v < task_vocab {
                return Err(GraphError(format!(
                    "embedding with vocab {v} cannot look up the task's {task_vocab} token ids"
                )));
            }
        }
    }
    Ok(())
}

/// Builds the model: parameters initialised from `seed`, on `device`.
///
/// `vocab` is the largest token id + 1 the task feeds (for int inputs), checked against every
/// embedding's table size.
pub fn compile(
    graph: &ArchGraph,
    device: &Device,
    seed: u64,
    vocab: Option<u64>,
) -> Result<GraphModel, GraphError> {
    check_graph(graph, vocab)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut model = GraphModel {
        graph: graph.clone(),
        decay: Vec::new(),
        no_decay: Vec::new(),
        buffers: Vec::new(),
        slots: Vec::new(),
        last_use: last_uses(graph),
    };
    for spec in &graph.params {
        let dims: Vec<usize> = spec.shape.iter().map(|&d| d as usize).collect();
        if dims.len() > RANK {
            return Err(GraphError(format!(
                "a parameter of rank {} is more than the evaluator's {RANK}",
                dims.len()
            )));
        }
        let n = dims.iter().product();
        let data = TensorData::new(init_values(spec.init, n, &mut rng), padded(&dims));
        let tensor = T::from_data(data, device);
        let slot = if !spec.role.trainable() {
            model.buffers.push(tensor);
            Slot::Buffer(model.buffers.len() - 1)
        } else if spec.role == ParamRole::Weight && dims.len() >= 2 {
            model
                .decay
                .push(Param::initialized(ParamId::new(), tensor.require_grad()));
            Slot::Decay(model.decay.len() - 1)
        } else {
            model
                .no_decay
                .push(Param::initialized(ParamId::new(), tensor.require_grad()));
            Slot::NoDecay(model.no_decay.len() - 1)
        };
        model.slots.push(slot);
    }
    Ok(model)
}

impl GraphModel {
    fn param(&self, id: usize) -> T {
        match self.slots[id] {
            Slot::Decay(i) => self.decay[i].val(),
            Slot::NoDecay(i) => self.no_decay[i].val(),
            Slot::Buffer(i) => self.buffers[i].clone(),
        }
    }

    /// The current value of graph parameter `id` (padded to [`RANK`]).
    pub fn param_value(&self, id: usize) -> T {
        self.param(id)
    }

    /// Replaces the value of graph parameter `id` (same padded shape), keeping its identity for
    /// the optimizer. Used to load weights and by gradient tests.
    pub fn set_param(&mut self, id: usize, value: T) {
        match self.slots[id] {
            Slot::Decay(i) => {
                let pid = self.decay[i].id;
                self.decay[i] = Param::initialized(pid, value.require_grad());
            }
            Slot::NoDecay(i) => {
                let pid = self.no_decay[i].id;
                self.no_decay[i] = Param::initialized(pid, value.require_grad());
            }
            Slot::Buffer(i) => self.buffers[i] = value,
        }
    }

    fn buffer_index(&self, id: usize) -> usize {
        match self.slots[id] {
            Slot::Buffer(i) => i,
            _ => unreachable!("running statistics are buffers"),
        }
    }

    /// A copy for evaluation: parameters off the autodiff graph.
    pub fn valid(&self) -> GraphModel {
        GraphModel {
            decay: self.decay.valid(),
            no_decay: self.no_decay.valid(),
            buffers: self.buffers.iter().map(|b| b.clone().inner()).collect(),
            ..self.clone()
        }
    }

    /// Stores the buffers a training forward wrote.
    pub fn apply_buffer_updates(&mut self, updates: BufferUpdates) {
        for (i, t) in updates {
            self.buffers[i] = t.detach();
        }
    }

    /// Runs the graph on an input batch (rank-[`RANK`] padded, the batch dim where the task's
    /// input shape has it). Returns the output and, in training mode, the buffer updates.
    pub fn forward(&self, input: Value, batch: usize, mode: Mode) -> (T, BufferUpdates) {
        let mut updates = Vec::new();
        let out = self
            .run(input, batch, mode, &mut updates)
            .expect("compile() accepted the graph, so every node lowers");
        (out, updates)
    }

    /// The interpreter. Errors here mean a graph that `check_graph` should have refused.
    fn run(
        &self,
        input: Value,
        batch: usize,
        mode: Mode,
        updates: &mut BufferUpdates,
    ) -> Result<T, GraphError> {
        let graph = &self.graph;
        let device = match &input {
            Value::Float(t) => t.device(),
            Value::Int(t) => t.device(),
        };
        // Free each value after its last use.
        let last_use = &self.last_use;
        let mut values: Vec<Option<Value>> = vec![None; graph.nodes.len()];
        let mut input = Some(input);
        for (i, node) in graph.nodes.iter().enumerate() {
            let args: Vec<Value> = node
                .inputs
                .iter()
                .map(|&j| {
                    let v = if last_use[j] == i
                        && node.inputs.iter().filter(|&&k| k == j).count() == 1
                    {
                        values[j].take()
                    } else {
                        values[j].clone()
                    };
                    v.ok_or_else(|| GraphError(format!("node {i}: input {j} is not computed")))
                })
                .collect::<Result<_, _>>()?;
            let value = if i == graph.input {
                input
                    .take()
                    .ok_or_else(|| GraphError("the graph has two inputs".to_string()))?
            } else {
                self.lower(i, node, args, batch, mode, &device, updates)?
            };
            values[i] = Some(value);
        }
        values[graph.output]
            .take()
            .ok_or_else(|| GraphError("no output".to_string()))?
            .float(graph.output)
    }

    #[allow(clippy::too_many_arguments)]
    fn lower(
        &self,
        i: usize,
        node: &Node,
        args: Vec<Value>,
        batch: usize,
        mode: Mode,
        device: &Device,
        updates: &mut BufferUpdates,
    ) -> Result<Value, GraphError> {
        let graph = &self.graph;
        let out_dims = concrete(&node.shape, batch);
        let out_shape = padded(&out_dims);
        let in_shape = |k: usize| &graph.nodes[node.inputs[k]].shape;
        let in_dims = |k: usize| concrete(in_shape(k), batch);
        // Shape-only ops work on ints as well as floats.
        match (&node.op, args.first()) {
            (Op::Reshape { .. }, Some(Value::Int(_)))
            | (Op::Permute { .. }, Some(Value::Int(_)))
            | (Op::Slice { .. }, Some(Value::Int(_)))
            | (Op::Expand { .. }, Some(Value::Int(_)))
            | (Op::Concat { .. }, Some(Value::Int(_))) => {
                let ints = args
                    .into_iter()
                    .map(|a| match a {
                        Value::Int(t) => Ok(t),
                        Value::Float(_) => {
                            Err(GraphError(format!("node {i}: mixes ints and floats")))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(Value::Int(shape_op_int(
                    &node.op,
                    ints,
                    in_shape(0),
                    out_shape,
                )));
            }
            (Op::Embedding { .. }, Some(Value::Int(ids))) => {
                let n: usize = in_dims(0).iter().product();
                let ids: Tensor<2, Int> = ids.clone().reshape([1, n]);
                let table = self.param(node.params[0]);
                let [_, _, _, _, v, d] = table.dims();
                let out = embedding(table.reshape([v, d]), ids);
                return Ok(Value::Float(out.reshape(out_shape)));
            }
            (Op::Embedding { .. }, _) => {
                return Err(GraphError(format!("node {i}: embedding needs int ids")))
            }
            _ => {}
        }
        let mut xs = args
            .into_iter()
            .map(|a| a.float(i))
            .collect::<Result<Vec<T>, _>>()?
            .into_iter();
        let mut x = || {
            xs.next()
                .ok_or_else(|| GraphError(format!("node {i}: missing input")))
        };
        let p = |k: usize| self.param(node.params[k]);
        let out: T = match &node.op {
            Op::Input => return Err(GraphError("the input is bound by the caller".into())),
            Op::Param => p(0),
            Op::Scalar { value } => T::full([1; RANK], *value, device),
            Op::CausalMask { size } => causal_mask(*size as usize, device),
            Op::Linear { bias, .. } => {
                let x = x()?;
                let d = in_dims(0);
                let inp = *d.last().expect("rank ≥ 1");
                let rows = d.iter().product::<usize>() / inp.max(1);
                let w = p(0);
                let [.., wi, wo] = w.dims();
                let mut y: Tensor<2> = x.reshape([rows, inp]).matmul(w.reshape([wi, wo]));
                if *bias {
                    let b: Tensor<2> = p(1).reshape([1, wo]);
                    y = y + b;
                }
                y.reshape(out_shape)
            }
            Op::Conv1d {
                stride,
                padding,
                dilation,
                groups,
                bias,
                ..
            } => {
                let d = in_dims(0);
                let (c, l) = (d[1], d[2]);
                let w = p(0);
                let [.., wo, wc, wk] = w.dims();
                let b = bias.then(|| p(1).reshape([wo]));
                let options = ConvOptions::new(
                    [*stride as usize],
                    [*padding as usize],
                    [*dilation as usize],
                    *groups as usize,
                );
                conv1d(
                    x()?.reshape([d[0], c, l]),
                    w.reshape([wo, wc, wk]),
                    b,
                    options,
                )
                .reshape(out_shape)
            }
            Op::Conv2d {
                stride,
                padding,
                dilation,
                groups,
                bias,
                ..
            } => {
                let d = in_dims(0);
                let w = p(0);
                let [.., wo, wc, kh, kw] = w.dims();
                let b = bias.then(|| p(1).reshape([wo]));
                let options = ConvOptions::new(
                    [stride[0] as usize, stride[1] as usize],
                    [padding[0] as usize, padding[1] as usize],
                    [dilation[0] as usize, dilation[1] as usize],
                    *groups as usize,
                );
                conv2d(
                    x()?.reshape([d[0], d[1], d[2], d[3]]),
                    w.reshape([wo, wc, kh, kw]),
                    b,
                    options,
                )
                .reshape(out_shape)
            }
            Op::Embedding { .. } => unreachable!("handled above"),
            Op::LayerNorm { eps } => {
                let x = x()?;
                let mean = x.clone().mean_dim(RANK - 1);
                let centred = x - mean;
                let var = centred.clone().square().mean_dim(RANK - 1);
                centred / (var + *eps).sqrt() * p(0) + p(1)
            }
            Op::RmsNorm { eps } => {
                let x = x()?;
                let ms = x.clone().square().mean_dim(RANK - 1);
                x / (ms + *eps).sqrt() * p(0)
            }
            Op::BatchNorm { eps, momentum } => {
                let x = x()?;
                let shape = in_shape(0);
                let ch = axis(shape, 1);
                let channel_shape = {
                    let mut s = [1; RANK];
                    s[ch] = out_shape[ch];
                    s
                };
                let reduce: Vec<usize> = (0..RANK).filter(|&a| a != ch).collect();
                let (mean, var) = match mode {
                    Mode::Train => {
                        let mean = x.clone().mean_dims(&reduce);
                        let var = (x.clone() - mean.clone()).square().mean_dims(&reduce);
                        let momentum = *momentum;
                        let n = (out_shape.iter().product::<usize>() / out_shape[ch]) as f64;
                        let unbiased = var.clone().detach() * (n / (n - 1.0).max(1.0));
                        let (rm, rv) = (node.params[2], node.params[3]);
                        let new_mean = self.param(rm).reshape(channel_shape) * (1.0 - momentum)
                            + mean.clone().detach() * momentum;
                        let new_var = self.param(rv).reshape(channel_shape) * (1.0 - momentum)
                            + unbiased * momentum;
                        updates.push((
                            self.buffer_index(rm),
                            new_mean.reshape(out_shape_of(rm, self)),
                        ));
                        updates.push((
                            self.buffer_index(rv),
                            new_var.reshape(out_shape_of(rv, self)),
                        ));
                        (mean, var)
                    }
                    Mode::Eval => (p(2).reshape(channel_shape), p(3).reshape(channel_shape)),
                };
                (x - mean) / (var + *eps).sqrt() * p(0).reshape(channel_shape)
                    + p(1).reshape(channel_shape)
            }
            Op::GroupNorm { groups, eps } => {
                let x = x()?;
                let d = in_dims(0);
                let g = *groups as usize;
                let per_group = d.iter().product::<usize>() / d[0] / g;
                let grouped: Tensor<3> = x.reshape([d[0], g, per_group]);
                let mean = grouped.clone().mean_dim(2);
                let centred = grouped - mean;
                let var = centred.clone().square().mean_dim(2);
                let normed: T = (centred / (var + *eps).sqrt()).reshape(out_shape);
                let ch = axis(in_shape(0), 1);
                let mut channel_shape = [1; RANK];
                channel_shape[ch] = d[1];
                normed * p(0).reshape(channel_shape) + p(1).reshape(channel_shape)
            }
            Op::Add => x()? + x()?,
            Op::Sub => x()? - x()?,
            Op::Mul => x()? * x()?,
            Op::Div => x()? / x()?,
            Op::Maximum => x()?.expand(out_shape).max_pair(x()?.expand(out_shape)),
            Op::Minimum => x()?.expand(out_shape).min_pair(x()?.expand(out_shape)),
            Op::Neg => x()?.neg(),
            Op::Relu => activation::relu(x()?),
            Op::Gelu => activation::gelu(x()?),
            Op::Silu => activation::silu(x()?),
            Op::Sigmoid => activation::sigmoid(x()?),
            Op::Tanh => x()?.tanh(),
            Op::Softplus => activation::softplus(x()?, 1.0),
            Op::Elu { alpha } => activation::elu(x()?, *alpha),
            Op::Exp => x()?.exp(),
            Op::Log => x()?.log(),
            Op::Sqrt => x()?.sqrt(),
            Op::Abs => x()?.abs(),
            Op::Square => x()?.square(),
            Op::Pow { exponent } => x()?.powf_scalar(*exponent),
            Op::Clamp { min, max } => {
                let mut t = x()?;
                if let Some(lo) = min {
                    t = t.clamp_min(*lo);
                }
                if let Some(hi) = max {
                    t = t.clamp_max(*hi);
                }
                t
            }
            Op::Sum { axes, .. } | Op::Mean { axes, .. } | Op::Max { axes, .. } => {
                let mut t = x()?;
                for &a in axes {
                    let a = axis(in_shape(0), a);
                    t = match node.op {
                        Op::Sum { .. } => t.sum_dim(a),
                        Op::Mean { .. } => t.mean_dim(a),
                        _ => t.max_dim(a),
                    };
                }
                t.reshape(out_shape)
            }
            Op::Logsumexp { axis: a, .. } => {
                let t = x()?;
                let a = axis(in_shape(0), *a);
                let m = t.clone().max_dim(a).detach();
                ((t - m.clone()).exp().sum_dim(a).log() + m).reshape(out_shape)
            }
            Op::Softmax { axis: a } => activation::softmax(x()?, axis(in_shape(0), *a)),
            Op::LogSoftmax { axis: a } => activation::log_softmax(x()?, axis(in_shape(0), *a)),
            Op::Cumsum { axis: a } => x()?.cumsum(axis(in_shape(0), *a)),
            Op::Reshape { .. } | Op::Permute { .. } | Op::Slice { .. } | Op::Expand { .. } => {
                shape_op_float(&node.op, vec![x()?], in_shape(0), out_shape)
            }
            Op::Concat { .. } => {
                let all: Vec<T> = std::iter::from_fn(|| xs.next()).collect();
                shape_op_float(&node.op, all, in_shape(0), out_shape)
            }
            Op::Pad {
                axis: a,
                before,
                after,
                value,
            } => {
                let t = x()?;
                let a = axis(in_shape(0), *a);
                let mut parts = Vec::with_capacity(3);
                let side = |n: u64| {
                    let mut s = t.dims();
                    s[a] = n as usize;
                    T::full(s, *value, device)
                };
                if *before > 0 {
                    parts.push(side(*before));
                }
                let after_part = (*after > 0).then(|| side(*after));
                parts.push(t);
                parts.extend(after_part);
                T::cat(parts, a)
            }
            Op::Matmul => {
                let (a, b) = (x()?, x()?);
                matmul(a, b, &in_dims(0), &in_dims(1), out_shape)
            }
            Op::AvgPool2d {
                kernel,
                stride,
                padding,
            } => {
                let d = in_dims(0);
                let options = AvgPoolOptions::new([kernel[0] as usize, kernel[1] as usize])
                    .with_stride([stride[0] as usize, stride[1] as usize])
                    .with_padding([padding[0] as usize, padding[1] as usize])
                    .with_count_include_pad(false);
                avg_pool2d(x()?.reshape([d[0], d[1], d[2], d[3]]), options).reshape(out_shape)
            }
            Op::MaxPool2d {
                kernel,
                stride,
                padding,
            } => {
                let d = in_dims(0);
                let options = MaxPoolOptions::new([kernel[0] as usize, kernel[1] as usize])
                    .with_stride([stride[0] as usize, stride[1] as usize])
                    .with_padding([padding[0] as usize, padding[1] as usize]);
                max_pool2d(x()?.reshape([d[0], d[1], d[2], d[3]]), options).reshape(out_shape)
            }
            Op::ScaledDotProductAttention { causal } => {
                let (q, k, v) = (x()?, x()?, x()?);
                let d = *in_dims(0).last().expect("rank ≥ 2");
                let scores = q.matmul(k.swap_dims(RANK - 2, RANK - 1)) / (d as f64).sqrt();
                let scores = if *causal {
                    let t = scores.dims()[RANK - 1];
                    scores + causal_mask(t, device)
                } else {
                    scores
                };
                activation::softmax(scores, RANK - 1).matmul(v)
            }
            Op::Dropout { p: prob } => {
                let t = x()?;
                if mode == Mode::Train && *prob > 0.0 {
                    let keep = 1.0 - prob;
                    let mask = T::random(t.dims(), Distribution::Bernoulli(keep), device);
                    t * mask / keep
                } else {
                    t
                }
            }
        };
        Ok(Value::Float(out))
    }
}

fn out_shape_of(param: usize, model: &GraphModel) -> [usize; RANK] {
    let dims: Vec<usize> = model.graph.params[param]
        .shape
        .iter()
        .map(|&d| d as usize)
        .collect();
    padded(&dims)
}

/// `[1, .., size, size]`: 0 on and below the diagonal, [`autoarch_sandbox::ops::MASKED`] above.
fn causal_mask(size: usize, device: &Device) -> T {
    let masked = autoarch_sandbox::ops::MASKED as f32;
    let values: Vec<f32> = (0..size * size)
        .map(|k| if k % size > k / size { masked } else { 0.0 })
        .collect();
    T::from_data(TensorData::new(values, padded(&[size, size])), device)
}

/// Matrix product with NumPy broadcasting of the leading dims. A right operand without leading
/// dims (a weight) multiplies the left one flattened to two dims: one large GEMM, no copies.
fn matmul(a: T, b: T, a_dims: &[usize], b_dims: &[usize], out_shape: [usize; RANK]) -> T {
    let (k, n) = (b_dims[b_dims.len() - 2], b_dims[b_dims.len() - 1]);
    let b_lead: usize = b_dims[..b_dims.len() - 2].iter().product();
    if b_lead == 1 {
        let rows = a_dims.iter().product::<usize>() / k.max(1);
        let y: Tensor<2> = a.reshape([rows, k]).matmul(b.reshape([k, n]));
        return y.reshape(out_shape);
    }
    let a_lead = &a.dims()[..RANK - 2];
    let b_lead = &b.dims()[..RANK - 2];
    if a_lead == b_lead {
        return a.matmul(b);
    }
    // Broadcast both to the output's leading dims first.
    let mut a_shape = out_shape;
    a_shape[RANK - 1] = k;
    let mut b_shape = out_shape;
    b_shape[RANK - 2] = k;
    a.expand(a_shape).matmul(b.expand(b_shape))
}

fn permutation(op: &Op, shape: &Shape) -> Vec<isize> {
    let Op::Permute { dims } = op else {
        unreachable!()
    };
    let off = RANK - shape.rank();
    (0..off)
        .chain(dims.iter().map(|d| d + off))
        .map(|d| d as isize)
        .collect()
}

macro_rules! shape_op {
    ($name:ident, $t:ty) => {
        fn $name(op: &Op, mut xs: Vec<$t>, shape: &Shape, out: [usize; RANK]) -> $t {
            match op {
                Op::Reshape { .. } => xs.remove(0).reshape(out),
                Op::Permute { .. } => {
                    let perm = permutation(op, shape);
                    let perm: [isize; RANK] = perm.try_into().expect("rank is RANK");
                    xs.remove(0).permute(perm)
                }
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
                _ => unreachable!("only shape ops come here"),
            }
        }
    };
}
shape_op!(shape_op_float, T);
shape_op!(shape_op_int, TInt);

/// The task input as a padded value: token ids or floats with the given logical dims.
pub fn input_value(
    dtype: DType,
    dims: &[usize],
    ints: &[i64],
    floats: &[f32],
    device: &Device,
) -> Value {
    match dtype {
        DType::Int => Value::Int(TInt::from_data(
            TensorData::new(ints.to_vec(), padded(dims)),
            device,
        )),
        DType::Float32 => Value::Float(T::from_data(
            TensorData::new(floats.to_vec(), padded(dims)),
            device,
        )),
    }
}
