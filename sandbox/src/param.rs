//! Parameters: their shapes, initialisers and roles. Both the op registry (which says what
//! parameters an op has) and the graph (which holds them) use these.

use serde::{Deserialize, Serialize};

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
