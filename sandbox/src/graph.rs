//! The traced graph (`ArchGraph`), its statistics and its canonical fingerprint.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ops::Op;
use crate::shape::{DType, Shape};

pub type NodeId = usize;
pub type ParamId = usize;

/// Where a node was created in the architecture code (1-based).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Span {
    pub line: u32,
    pub col: u32,
}

/// How a parameter is initialised before training.
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    Zeros,
    Ones,
    Normal { std: f64 },
    Uniform { low: f64, high: f64 },
}

/// What a parameter is for; buffers are state that the optimizer does not train.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamRole {
    Weight,
    Bias,
    RunningMean,
    RunningVar,
}

impl ParamRole {
    pub fn trainable(self) -> bool {
        matches!(self, ParamRole::Weight | ParamRole::Bias)
    }
}

/// A parameter (or buffer) of the model. Shapes never contain the batch dim.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct ParamSpec {
    pub shape: Vec<u64>,
    pub init: Init,
    pub role: ParamRole,
}

impl ParamSpec {
    pub fn numel(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// One traced op call.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<NodeId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<ParamId>,
    pub shape: Shape,
    pub dtype: DType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
}

/// A traced architecture: nodes in topological order, parameters, one input and one output.
///
/// Parameters shared by several nodes (weight tying) appear once in `params` and are named by
/// index from every node that uses them.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct ArchGraph {
    pub task: String,
    pub nodes: Vec<Node>,
    pub params: Vec<ParamSpec>,
    pub input: NodeId,
    pub output: NodeId,
}

/// Summary numbers of a graph, all per sample.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Stats {
    /// Trainable parameters (tied parameters counted once).
    pub params: u64,
    /// Non-trainable state such as batch-norm running statistics.
    pub buffers: u64,
    /// Forward FLOPs per sample (a multiply-add counts 2).
    pub flops: u64,
    pub nodes: usize,
    /// The most parameterised layers on any path from the input to the output.
    pub depth: usize,
    pub op_histogram: BTreeMap<String, usize>,
    pub output_shape: Shape,
}

/// Canonical hash of a graph: see [`ArchGraph::fingerprint`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(pub String);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ArchGraph {
    /// The graph without nodes and parameters that do not reach the output, renumbered.
    pub fn without_dead_code(&self) -> ArchGraph {
        let mut live = vec![false; self.nodes.len()];
        live[self.output] = true;
        live[self.input] = true;
        for id in (0..self.nodes.len()).rev() {
            if live[id] {
                for &i in &self.nodes[id].inputs {
                    live[i] = true;
                }
            }
        }
        let mut node_map = vec![usize::MAX; self.nodes.len()];
        let mut param_map = vec![usize::MAX; self.params.len()];
        let mut nodes = Vec::new();
        let mut params = Vec::new();
        for (id, node) in self.nodes.iter().enumerate() {
            if !live[id] {
                continue;
            }
            let mut node = node.clone();
            for i in &mut node.inputs {
                *i = node_map[*i];
            }
            for p in &mut node.params {
                if param_map[*p] == usize::MAX {
                    param_map[*p] = params.len();
                    params.push(self.params[*p].clone());
                }
                *p = param_map[*p];
            }
            node_map[id] = nodes.len();
            nodes.push(node);
        }
        ArchGraph {
            task: self.task.clone(),
            nodes,
            params,
            input: node_map[self.input],
            output: node_map[self.output],
        }
    }

    pub fn stats(&self) -> Stats {
        let mut op_histogram = BTreeMap::new();
        let mut flops = 0u64;
        let mut depth = vec![0usize; self.nodes.len()];
        for (id, node) in self.nodes.iter().enumerate() {
            *op_histogram
                .entry(node.op.name().to_string())
                .or_insert(0) += 1;
            let shapes: Vec<&Shape> = node.inputs.iter().map(|&i| &self.nodes[i].shape).collect();
            flops = flops.saturating_add(node.op.flops(&shapes, &node.shape));
            let below = node.inputs.iter().map(|&i| depth[i]).max().unwrap_or(0);
            depth[id] = below + usize::from(!node.params.is_empty());
        }
        let (params, buffers) = self.params.iter().fold((0, 0), |(p, b), spec| {
            if spec.role.trainable() {
                (p + spec.numel(), b)
            } else {
                (p, b + spec.numel())
            }
        });
        Stats {
            params,
            buffers,
            flops,
            nodes: self.nodes.len(),
            depth: depth[self.output],
            op_histogram,
            output_shape: self.nodes[self.output].shape.clone(),
        }
    }

    /// A canonical hash of the dead-code-free graph.
    ///
    /// Nodes are hashed bottom-up from their op, attributes, shape and inputs (inputs of
    /// commutative ops unordered) and top-down from their uses, then serialised in the order
    /// (level, hash, use hash), which depends only on the structure: variable names, helper functions, loops and the order of independent
    /// statements do not change it. Parameters are numbered by first use in that order, so weight
    /// tying is part of the hash.
    pub fn fingerprint(&self) -> Fingerprint {
        let g = self.without_dead_code();
        let n = g.nodes.len();
        let mut merkle: Vec<[u8; 32]> = Vec::with_capacity(n);
        let mut level = vec![0usize; n];
        for (id, node) in g.nodes.iter().enumerate() {
            let mut h = blake3::Hasher::new();
            hash_local(&mut h, &g, node);
            let mut ins: Vec<[u8; 32]> = node.inputs.iter().map(|&i| merkle[i]).collect();
            if node.op.is_commutative() {
                ins.sort_unstable();
            }
            for i in &ins {
                h.update(i);
            }
            merkle.push(*h.finalize().as_bytes());
            level[id] = node.inputs.iter().map(|&i| level[i] + 1).max().unwrap_or(0);
        }
        // Nodes built alike from alike inputs (two `linear(h, 32)` calls) tie on the hash above;
        // a hash of how each node is used, from the output back, tells them apart so that
        // statement order cannot leak into the serialisation.
        let mut consumers: Vec<Vec<(NodeId, usize)>> = vec![Vec::new(); n];
        for (id, node) in g.nodes.iter().enumerate() {
            for (slot, &i) in node.inputs.iter().enumerate() {
                let slot = if node.op.is_commutative() { 0 } else { slot };
                consumers[i].push((id, slot));
            }
        }
        let mut usage: Vec<[u8; 32]> = vec![[0; 32]; n];
        for id in (0..n).rev() {
            let mut uses: Vec<([u8; 32], usize, [u8; 32])> = consumers[id]
                .iter()
                .map(|&(c, slot)| (merkle[c], slot, usage[c]))
                .collect();
            uses.sort_unstable();
            let mut h = blake3::Hasher::new();
            h.update(if id == g.output { b"output" } else { b"inner" });
            for (m, slot, u) in uses {
                h.update(&m);
                h.update(&(slot as u64).to_le_bytes());
                h.update(&u);
            }
            usage[id] = *h.finalize().as_bytes();
        }
        let mut order: Vec<NodeId> = (0..n).collect();
        order.sort_by(|&a, &b| {
            (level[a], merkle[a], usage[a]).cmp(&(level[b], merkle[b], usage[b]))
        });
        let mut position = vec![0usize; n];
        for (pos, &id) in order.iter().enumerate() {
            position[id] = pos;
        }
        let mut param_number: Vec<Option<usize>> = vec![None; g.params.len()];
        let mut next_param = 0usize;
        let mut h = blake3::Hasher::new();
        h.update(b"autoarch-graph-v1");
        for &id in &order {
            let node = &g.nodes[id];
            hash_local(&mut h, &g, node);
            let mut ins: Vec<(usize, [u8; 32])> = node
                .inputs
                .iter()
                .map(|&i| (position[i], merkle[i]))
                .collect();
            if node.op.is_commutative() {
                ins.sort_unstable_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
            }
            h.update(&(ins.len() as u64).to_le_bytes());
            for (pos, _) in ins {
                h.update(&(pos as u64).to_le_bytes());
            }
            for &p in &node.params {
                let number = *param_number[p].get_or_insert_with(|| {
                    next_param += 1;
                    next_param - 1
                });
                h.update(&(number as u64).to_le_bytes());
            }
        }
        h.update(&(position[g.output] as u64).to_le_bytes());
        Fingerprint(h.finalize().to_hex()[..32].to_string())
    }
}

/// Hash what a node is, without its inputs' identities.
fn hash_local(h: &mut blake3::Hasher, g: &ArchGraph, node: &Node) {
    // serde_json output is deterministic and stable across builds, unlike Debug.
    serde_json::to_writer(&mut *h, &node.op).expect("ops serialise");
    serde_json::to_writer(&mut *h, &node.shape).expect("shapes serialise");
    serde_json::to_writer(&mut *h, &node.dtype).expect("dtypes serialise");
    for &p in &node.params {
        serde_json::to_writer(&mut *h, &g.params[p]).expect("params serialise");
    }
    h.update(b";");
}
