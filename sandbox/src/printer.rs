//! Printing a graph back: as flat Starlark (which traces to the same fingerprint) and as a
//! PyTorch `nn.Module` source file.

use std::collections::HashMap;
use std::fmt::Write;

use crate::graph::{ArchGraph, NodeId};
use crate::ops::print::{float, Call, PyCall};
use crate::ops::Op;
use crate::param::{Init, ParamRole};

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
        let call = Call {
            args: (0..n.inputs.len()).map(a).collect(),
            name,
            inputs: n.inputs.iter().map(|&i| &g.nodes[i].shape).collect(),
            param: n.params.first().map(|&p| &g.params[p]),
            lhs_scalar: n.inputs.first().and_then(|&i| match g.nodes[i].op {
                Op::Scalar { value } => Some(value),
                _ => None,
            }),
        };
        let expr = n.op.starlark(&call);
        let _ = writeln!(out, "    v{id} = {expr}");
    }
    let _ = writeln!(out, "    return {}", var(g.output));
    out
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
        let mut module = |ctor: String| -> String {
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
        let mut call = PyCall {
            args: n.inputs.iter().map(|&i| var(i)).collect(),
            inputs: n.inputs.iter().map(|&i| &g.nodes[i].shape).collect(),
            output: &n.shape,
            param: n.params.first().map(|&p| &g.params[p]),
            module: &mut module,
        };
        let expr = n.op.pytorch(&mut call);
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
