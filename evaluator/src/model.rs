//! `ArchGraph` → a trainable burn model: every parameter is a burn `Param`, and an interpreter
//! runs the graph's nodes in order.
//!
//! Every value is held at one rank, [`RANK`], with leading dims of size 1: a logical axis `a` of a
//! rank-`r` value is axis `a + RANK - r`. NumPy broadcasting then falls out of burn's own, and one
//! tensor type covers every rank a graph uses. The node's traced shape says what to reshape to
//! after each op, so reductions without `keepdim` are a reshape away from the `keepdim` form.
//! Each op's lowering lives with its family in [`lower`].

use autoarch_sandbox::{ArchGraph, DType, Init, Op, ParamRole, Shape};
use burn::module::{Module, Param, ParamId};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::GraphError;

mod lower;

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
                let at = lower::At {
                    model: self,
                    i,
                    node,
                    batch,
                    mode,
                    device: &device,
                    out_shape: padded(&concrete(&node.shape, batch)),
                };
                lower::lower(&at, args, updates)?
            };
            values[i] = Some(value);
        }
        values[graph.output]
            .take()
            .ok_or_else(|| GraphError("no output".to_string()))?
            .float(graph.output)
    }
}

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
