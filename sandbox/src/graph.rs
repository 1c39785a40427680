//! The traced graph (`ArchGraph`), its statistics and its canonical fingerprint.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_128;

use crate::ops::Op;
use crate::param::ParamSpec;
use crate::shape::{DType, Shape};

pub type NodeId = usize;
pub type ParamId = usize;

/// Where a node was created in the architecture code (1-based).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Span {
    pub line: u32,
    pub col: u32,
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
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
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
    /// Which nodes reach the output (the input always counts, as `model(x)` names it).
    fn live_nodes(&self) -> Vec<bool> {
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
        live
    }

    /// The graph without nodes and parameters that do not reach the output, renumbered.
    pub fn without_dead_code(&self) -> ArchGraph {
        let live = self.live_nodes();
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
            *op_histogram.entry(node.op.name().to_string()).or_insert(0) += 1;
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
        if self.has_dead_code() {
            return self.without_dead_code().fingerprint_of_live_graph();
        }
        self.fingerprint_of_live_graph()
    }

    /// Whether some node or parameter does not reach the output.
    pub fn has_dead_code(&self) -> bool {
        let live = self.live_nodes();
        let used_params: usize = {
            let mut used = vec![false; self.params.len()];
            for (id, n) in self.nodes.iter().enumerate() {
                if live[id] {
                    for &p in &n.params {
                        used[p] = true;
                    }
                }
            }
            used.iter().filter(|u| **u).count()
        };
        live.contains(&false) || used_params != self.params.len()
    }

    fn fingerprint_of_live_graph(&self) -> Fingerprint {
        let g = self;
        let n = g.nodes.len();
        // Scratch buffers reused across nodes: this runs on every trace.
        let mut buf = Vec::with_capacity(512);
        let mut hashes: Vec<u128> = Vec::with_capacity(8);
        // What each node is, without its inputs' identities, hashed once. The per-node hashes
        // only order nodes, so a fast 128-bit hash serves; blake3 makes the final fingerprint.
        let local: Vec<u128> = g
            .nodes
            .iter()
            .map(|node| local_hash(g, node, &mut buf))
            .collect();
        let mut merkle: Vec<u128> = Vec::with_capacity(n);
        let mut level = vec![0usize; n];
        for (id, node) in g.nodes.iter().enumerate() {
            hashes.clear();
            hashes.extend(node.inputs.iter().map(|&i| merkle[i]));
            if node.op.is_commutative() {
                hashes.sort_unstable();
            }
            buf.clear();
            buf.extend_from_slice(&local[id].to_le_bytes());
            for h in &hashes {
                buf.extend_from_slice(&h.to_le_bytes());
            }
            merkle.push(xxh3_128(&buf));
            level[id] = node.inputs.iter().map(|&i| level[i] + 1).max().unwrap_or(0);
        }
        // Nodes built alike from alike inputs (two `linear(h, 32)` calls) tie on the hash above;
        // a hash of how each node is used, from the output back, tells them apart so that
        // statement order cannot leak into the serialisation. Consumers are kept as one flat
        // list grouped by the node they use.
        let mut uses_of: Vec<(NodeId, NodeId, usize)> = Vec::with_capacity(2 * n);
        for (id, node) in g.nodes.iter().enumerate() {
            for (slot, &i) in node.inputs.iter().enumerate() {
                let slot = if node.op.is_commutative() { 0 } else { slot };
                uses_of.push((i, id, slot));
            }
        }
        uses_of.sort_unstable();
        let mut usage: Vec<u128> = vec![0; n];
        let mut uses: Vec<(u128, usize, u128)> = Vec::with_capacity(8);
        let mut end = uses_of.len();
        for id in (0..n).rev() {
            let start = uses_of[..end].partition_point(|&(used, _, _)| used < id);
            uses.clear();
            uses.extend(
                uses_of[start..end]
                    .iter()
                    .map(|&(_, c, slot)| (merkle[c], slot, usage[c])),
            );
            end = start;
            uses.sort_unstable();
            buf.clear();
            buf.extend_from_slice(if id == g.output { b"output" } else { b"inner" });
            for &(m, slot, u) in &uses {
                buf.extend_from_slice(&m.to_le_bytes());
                buf.extend_from_slice(&(slot as u64).to_le_bytes());
                buf.extend_from_slice(&u.to_le_bytes());
            }
            usage[id] = xxh3_128(&buf);
        }
        let mut order: Vec<NodeId> = (0..n).collect();
        order.sort_unstable_by(|&a, &b| {
            (level[a], merkle[a], usage[a], a).cmp(&(level[b], merkle[b], usage[b], b))
        });
        let mut position = vec![0usize; n];
        for (pos, &id) in order.iter().enumerate() {
            position[id] = pos;
        }
        let mut param_number: Vec<Option<usize>> = vec![None; g.params.len()];
        let mut next_param = 0usize;
        let mut ins: Vec<(u128, usize)> = Vec::with_capacity(8);
        let mut all = Vec::with_capacity(48 * n);
        all.extend_from_slice(b"autoarch-graph-v1");
        for &id in &order {
            let node = &g.nodes[id];
            all.extend_from_slice(&local[id].to_le_bytes());
            ins.clear();
            ins.extend(node.inputs.iter().map(|&i| (merkle[i], position[i])));
            if node.op.is_commutative() {
                ins.sort_unstable();
            }
            all.extend_from_slice(&(ins.len() as u64).to_le_bytes());
            for &(_, pos) in &ins {
                all.extend_from_slice(&(pos as u64).to_le_bytes());
            }
            for &p in &node.params {
                let number = *param_number[p].get_or_insert_with(|| {
                    next_param += 1;
                    next_param - 1
                });
                all.extend_from_slice(&(number as u64).to_le_bytes());
            }
        }
        all.extend_from_slice(&(position[g.output] as u64).to_le_bytes());
        Fingerprint(blake3::hash(&all).to_hex()[..32].to_string())
    }
}

/// A hash of what a node is, without its inputs' identities: op, attributes, shape, dtype and
/// parameter specs, encoded with postcard (a stable, compact serde format).
///
/// The encoding numbers enum variants by position: new ops go at the end of `Op`, and the golden
/// fingerprint test catches any change that would alter stored fingerprints.
fn local_hash(g: &ArchGraph, node: &Node, buf: &mut Vec<u8>) -> u128 {
    fn append<T: Serialize>(out: Vec<u8>, value: &T) -> Vec<u8> {
        postcard::to_extend(value, out).expect("graph values encode")
    }
    let mut out = std::mem::take(buf);
    out.clear();
    out = append(out, &node.op);
    out = append(out, &node.shape);
    out = append(out, &node.dtype);
    for &p in &node.params {
        out = append(out, &g.params[p]);
    }
    let hash = xxh3_128(&out);
    *buf = out;
    hash
}
