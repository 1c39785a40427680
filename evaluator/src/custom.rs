//! The `custom` task: tensors from `.npy` or safetensors files, described by a task TOML.
//!
//! ```toml
//! name = "sine-regression"        # shown in task cards (optional)
//! description = "..."             # optional
//! input = "x.npy"                 # [N, ...] floats, or ints (token ids); or "data.safetensors:x"
//! target = "y.npy"                # [N, ...] ints (class ids, -1 = ignored) or floats
//! loss = "cross_entropy"          # or "mse"
//! classes = 10                    # cross_entropy only; default: the largest target + 1
//! validation_fraction = 0.2       # default 0.2
//! ```
//!
//! Paths are relative to the TOML file. The model's output is `[B, *target dims, classes]` for
//! cross-entropy and `[B, *target dims]` for MSE.

use std::path::Path;

use npyz::{NpyFile, TypeChar};
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use crate::data::read_error;
use crate::error::TaskError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    input: String,
    target: String,
    loss: LossName,
    #[serde(default)]
    classes: Option<usize>,
    #[serde(default)]
    validation_fraction: Option<f64>,
}

#[derive(Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum LossName {
    CrossEntropy,
    Mse,
}

/// A tensor read from a file: its shape and values, as ints or floats.
#[derive(Debug, PartialEq)]
pub struct Loaded {
    pub shape: Vec<usize>,
    pub ints: Vec<i64>,
    pub floats: Vec<f32>,
}

fn npy(path: &Path) -> Result<Loaded, TaskError> {
    let fail = |e: std::io::Error| TaskError::Data(format!("{}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| read_error(path, e))?;
    let npy = NpyFile::new(std::io::BufReader::new(file)).map_err(fail)?;
    if npy.order() != npyz::Order::C {
        return Err(TaskError::Data(format!(
            "{}: Fortran-ordered arrays are not supported; save with np.ascontiguousarray",
            path.display()
        )));
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let npyz::DType::Plain(ts) = npy.dtype() else {
        return Err(TaskError::Data(format!(
            "{}: structured arrays are not supported",
            path.display()
        )));
    };
    let (ints, floats) = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Float, 4) => (Vec::new(), npy.into_vec::<f32>().map_err(fail)?),
        (TypeChar::Float, 8) => (
            Vec::new(),
            npy.into_vec::<f64>()
                .map_err(fail)?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
        ),
        (TypeChar::Int, 8) => (npy.into_vec::<i64>().map_err(fail)?, Vec::new()),
        (TypeChar::Int, 4) => (
            npy.into_vec::<i32>()
                .map_err(fail)?
                .into_iter()
                .map(i64::from)
                .collect(),
            Vec::new(),
        ),
        (TypeChar::Uint, 1) => (
            npy.into_vec::<u8>()
                .map_err(fail)?
                .into_iter()
                .map(i64::from)
                .collect(),
            Vec::new(),
        ),
        (c, s) => {
            return Err(TaskError::Data(format!(
            "{}: dtype {c:?} of {s} bytes is not supported (use float32/float64/int64/int32/uint8)",
            path.display()
        )))
        }
    };
    Ok(Loaded {
        shape,
        ints,
        floats,
    })
}

fn safetensor(path: &Path, name: &str) -> Result<Loaded, TaskError> {
    let bytes = std::fs::read(path).map_err(|e| read_error(path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| TaskError::Data(format!("{}: {e}", path.display())))?;
    let view = st.tensor(name).map_err(|e| {
        TaskError::Data(format!(
            "{}: no tensor {name:?} ({e}); it holds {}",
            path.display(),
            st.names()
                .into_iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let data = view.data();
    let shape = view.shape().to_vec();
    let chunks = |n: usize| data.chunks_exact(n);
    let (ints, floats) = match view.dtype() {
        Dtype::F32 => (
            Vec::new(),
            chunks(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect(),
        ),
        Dtype::F64 => (
            Vec::new(),
            chunks(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                .collect(),
        ),
        Dtype::I64 => (
            chunks(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
            Vec::new(),
        ),
        Dtype::I32 => (
            chunks(4)
                .map(|c| i64::from(i32::from_le_bytes(c.try_into().expect("4 bytes"))))
                .collect(),
            Vec::new(),
        ),
        Dtype::U8 => (data.iter().map(|&b| i64::from(b)).collect(), Vec::new()),
        other => {
            return Err(TaskError::Data(format!(
                "{}: tensor {name:?} has dtype {other:?}; use F32, F64, I64, I32 or U8",
                path.display()
            )))
        }
    };
    Ok(Loaded {
        shape,
        ints,
        floats,
    })
}

/// Reads `FILE.npy` or `FILE.safetensors:NAME`, relative to `base`.
pub fn read_tensor(base: &Path, reference: &str) -> Result<Loaded, TaskError> {
    if let Some((file, name)) = reference.rsplit_once(':') {
        if file.ends_with(".safetensors") {
            return safetensor(&base.join(file), name);
        }
    }
    if reference.ends_with(".npy") {
        return npy(&base.join(reference));
    }
    Err(TaskError::Options(format!(
        "{reference:?}: name a .npy file or FILE.safetensors:TENSOR"
    )))
}

/// A custom task as its files describe it; the task module builds the [`Task`] from it.
///
/// [`Task`]: crate::Task
#[derive(Debug)]
pub struct Custom {
    pub name: String,
    pub description: String,
    /// `Some(classes)` for cross-entropy over class ids, `None` for MSE.
    pub classes: Option<usize>,
    pub input: Loaded,
    pub target: Loaded,
    pub validation_fraction: f64,
}

/// Reads a custom task's TOML description and the tensors it names, and checks that they fit.
pub fn load(path: &Path) -> Result<Custom, TaskError> {
    let text = std::fs::read_to_string(path).map_err(|e| read_error(path, e))?;
    let spec: Spec = toml::from_str(&text)
        .map_err(|e| TaskError::Options(format!("{}: {e}", path.display())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let input = read_tensor(base, &spec.input)?;
    let target = read_tensor(base, &spec.target)?;
    let bad = |message: String| Err(TaskError::Data(message));
    let count = *input
        .shape
        .first()
        .ok_or_else(|| TaskError::Data(format!("{}: the input needs a sample dim", spec.input)))?;
    if target.shape.first() != Some(&count) {
        return bad(format!(
            "input {:?} has {count} samples but target {:?} has shape {:?}",
            spec.input, spec.target, target.shape
        ));
    }
    let classes = match spec.loss {
        LossName::CrossEntropy => {
            if target.ints.is_empty() {
                return bad(format!(
                    "loss = \"cross_entropy\" needs integer class targets; {:?} holds floats",
                    spec.target
                ));
            }
            let largest = target.ints.iter().copied().max().unwrap_or(0);
            let classes = spec.classes.unwrap_or((largest + 1).max(1) as usize);
            if largest >= classes as i64 || target.ints.iter().any(|&t| t < -1) {
                return bad(format!(
                    "targets must lie in 0..{classes} (or be -1 to ignore); found {largest}"
                ));
            }
            Some(classes)
        }
        LossName::Mse => {
            if spec.classes.is_some() {
                return Err(TaskError::Options(
                    "classes applies to loss = \"cross_entropy\" only".into(),
                ));
            }
            if target.floats.is_empty() {
                return bad(format!(
                    "loss = \"mse\" needs float targets; {:?} holds ints",
                    spec.target
                ));
            }
            None
        }
    };
    if input.ints.iter().any(|&t| t < 0) {
        return bad(format!("{:?}: token ids must not be negative", spec.input));
    }
    Ok(Custom {
        name: spec.name.unwrap_or_else(|| "custom".into()),
        description: spec
            .description
            .unwrap_or_else(|| format!("custom task from {}", path.display())),
        classes,
        input,
        target,
        validation_fraction: spec.validation_fraction.unwrap_or(0.2),
    })
}
