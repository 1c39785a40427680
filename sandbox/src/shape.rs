//! Shapes with a symbolic batch dimension.
//!
//! Dim 0 of a model input is the batch `B`, unknown while tracing. A dim is either a fixed size or
//! `size * B` (after a reshape merges the batch with other dims, e.g. `[B, 64, D] -> [B*64, D]`).
//! Per-sample quantities (FLOPs, element counts) take `B = 1`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One dimension: `size`, or `size * B` when `batch` is set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Dim {
    pub size: u64,
    pub batch: bool,
}

impl Dim {
    pub const BATCH: Dim = Dim {
        size: 1,
        batch: true,
    };

    pub const fn fixed(size: u64) -> Dim {
        Dim { size, batch: false }
    }

    /// The value that `x.shape` shows in Starlark: the size, or -1 for a batch dim.
    pub fn as_script_int(self) -> i64 {
        if self.batch {
            -1
        } else {
            self.size as i64
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.batch, self.size) {
            (true, 1) => f.write_str("B"),
            (true, n) => write!(f, "B*{n}"),
            (false, n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Dim {
    /// A number, or the string `"B"` / `"B*64"` for a batch dim.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.batch {
            s.serialize_str(&self.to_string())
        } else {
            s.serialize_u64(self.size)
        }
    }
}

struct DimVisitor;

impl serde::de::Visitor<'_> for DimVisitor {
    type Value = Dim;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a dim size or \"B\" / \"B*N\"")
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dim, E> {
        Ok(Dim::fixed(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dim, E> {
        u64::try_from(v)
            .map(Dim::fixed)
            .map_err(|_| E::custom(format!("negative dim {v}")))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dim, E> {
        let size = match v {
            "B" => 1,
            other => other
                .strip_prefix("B*")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| E::custom(format!("bad dim {other:?}")))?,
        };
        Ok(Dim { size, batch: true })
    }
}

impl<'de> Deserialize<'de> for Dim {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DimVisitor)
    }
}

/// A tensor shape.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Shape(pub Vec<Dim>);

impl Shape {
    pub fn fixed(dims: &[u64]) -> Shape {
        Shape(dims.iter().copied().map(Dim::fixed).collect())
    }

    /// A batched shape: `B` followed by `rest`.
    pub fn batched(rest: &[u64]) -> Shape {
        let mut dims = vec![Dim::BATCH];
        dims.extend(rest.iter().copied().map(Dim::fixed));
        Shape(dims)
    }

    pub fn rank(&self) -> usize {
        self.0.len()
    }

    pub fn dims(&self) -> &[Dim] {
        &self.0
    }

    /// Elements per sample (`B = 1`).
    pub fn numel(&self) -> u64 {
        self.0.iter().map(|d| d.size).product()
    }

    /// The position of the batch dim, if any.
    pub fn batch_axis(&self) -> Option<usize> {
        self.0.iter().position(|d| d.batch)
    }

    pub fn last(&self) -> Option<Dim> {
        self.0.last().copied()
    }

    /// Resolve a possibly negative axis against this rank.
    pub fn axis(&self, axis: i64) -> Result<usize, String> {
        let rank = self.rank() as i64;
        let resolved = if axis < 0 { axis + rank } else { axis };
        if resolved < 0 || resolved >= rank {
            return Err(format!(
                "axis {axis} is out of range for a tensor of rank {rank} (shape {self})"
            ));
        }
        Ok(resolved as usize)
    }

    /// The non-batch sizes, for shapes whose dims are all fixed.
    pub fn fixed_sizes(&self) -> Option<Vec<u64>> {
        self.0
            .iter()
            .map(|d| (!d.batch).then_some(d.size))
            .collect()
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// NumPy broadcasting of two shapes.
pub fn broadcast(a: &Shape, b: &Shape) -> Result<Shape, String> {
    let rank = a.rank().max(b.rank());
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        let da = (i + a.rank()).checked_sub(rank).map(|j| a.0[j]);
        let db = (i + b.rank()).checked_sub(rank).map(|j| b.0[j]);
        let d = match (da, db) {
            (Some(x), None) | (None, Some(x)) => x,
            (Some(x), Some(y)) if x == y => x,
            (Some(x), Some(y)) if x == Dim::fixed(1) => y,
            (Some(x), Some(y)) if y == Dim::fixed(1) => x,
            _ => return Err(format!("shapes {a} and {b} do not broadcast")),
        };
        out.push(d);
    }
    Ok(Shape(out))
}

/// Element type of a tensor.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DType {
    Float32,
    Int,
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::Float32 => "float32",
            DType::Int => "int",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        let a = Shape::batched(&[64, 1]);
        let b = Shape::fixed(&[8]);
        assert_eq!(broadcast(&a, &b).unwrap().to_string(), "[B, 64, 8]");
        assert!(broadcast(&Shape::batched(&[3]), &Shape::fixed(&[4])).is_err());
        // The batch dim only matches itself or a fixed 1.
        let merged = Shape(vec![
            Dim {
                size: 64,
                batch: true,
            },
            Dim::fixed(8),
        ]);
        assert!(broadcast(&merged, &Shape::batched(&[8])).is_err());
    }

    #[test]
    fn dims_round_trip_through_json() {
        let s = Shape(vec![
            Dim::BATCH,
            Dim {
                size: 64,
                batch: true,
            },
            Dim::fixed(3),
        ]);
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(text, r#"["B","B*64",3]"#);
        assert_eq!(serde_json::from_str::<Shape>(&text).unwrap(), s);
    }
}
