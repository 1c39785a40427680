//! Pure query helpers: Pareto fronts, MAP-Elites cells.

use std::collections::BTreeMap;

use autoarch_sandbox::{Direction, Stats};
use serde::{Deserialize, Serialize};

use crate::record::CandidateId;

/// The non-dominated points, each objective oriented by its direction.
///
/// Two objectives: sort by the first, sweep keeping strict improvements of the second
/// (O(n log n)); more: pairwise against the running front.
pub fn pareto_front(
    points: &[(CandidateId, Vec<f64>)],
    directions: &[Direction],
) -> Vec<(CandidateId, Vec<f64>)> {
    // Turn every objective into "smaller is better".
    let oriented = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .zip(directions)
            .map(|(x, d)| if *d == Direction::Maximize { -x } else { *x })
            .collect()
    };
    // Each point with its objectives oriented to "smaller is better".
    type Oriented<'a> = (Vec<f64>, &'a (CandidateId, Vec<f64>));
    let mut items: Vec<Oriented> = points
        .iter()
        .filter(|(_, v)| v.iter().all(|x| x.is_finite()))
        .map(|p| (oriented(&p.1), p))
        .collect();
    items.sort_by(|a, b| {
        a.0.partial_cmp(&b.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.1 .0.cmp(&b.1 .0))
    });
    let dominates = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| x <= y) && a != b;
    let mut front: Vec<Oriented> = Vec::new();
    if directions.len() == 2 {
        let mut best_second = f64::INFINITY;
        for item in items {
            if item.0[1] < best_second {
                best_second = item.0[1];
                front.push(item);
            } else if item.0[1] == best_second && front.last().is_some_and(|last| last.0 == item.0)
            {
                // An exact tie with the last point of the front is not dominated.
                front.push(item);
            }
        }
    } else {
        for item in items {
            if !front.iter().any(|f| dominates(&f.0, &item.0)) {
                front.retain(|f| !dominates(&item.0, &f.0));
                front.push(item);
            }
        }
    }
    front.into_iter().map(|(_, p)| p.clone()).collect()
}

/// A MAP-Elites cell: size and compute buckets (powers of two) and the kind of token mixing.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct Cell {
    pub params_log2: u32,
    pub flops_log2: u32,
    pub family: String,
}

impl Cell {
    pub fn of(stats: &Stats) -> Cell {
        let log2 = |v: u64| 64 - v.max(1).leading_zeros() - 1;
        Cell {
            params_log2: log2(stats.params),
            flops_log2: log2(stats.flops),
            family: family(&stats.op_histogram).to_string(),
        }
    }

    pub fn key(&self) -> Vec<u8> {
        format!(
            "{:02}/{:02}/{}",
            self.params_log2, self.flops_log2, self.family
        )
        .into_bytes()
    }

    pub fn parse(key: &[u8]) -> Option<Cell> {
        let text = std::str::from_utf8(key).ok()?;
        let mut parts = text.splitn(3, '/');
        Some(Cell {
            params_log2: parts.next()?.parse().ok()?,
            flops_log2: parts.next()?.parse().ok()?,
            family: parts.next()?.to_string(),
        })
    }
}

/// The op mix, reduced to the mechanism that mixes information across positions or pixels.
pub fn family(ops: &BTreeMap<String, usize>) -> &'static str {
    let has = |op: &str| ops.get(op).is_some_and(|n| *n > 0);
    if has("scaled_dot_product_attention") || has("softmax") {
        "attention"
    } else if has("cumsum") || has("cummax") {
        // A running sum or maximum over the positions: a scan.
        "recurrent"
    } else if has("conv1d") || has("conv2d") {
        "convolution"
    } else if has("matmul") {
        "matmul"
    } else {
        "mlp"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_family_is_the_mechanism_that_mixes_positions() {
        let ops = |names: &[&str]| -> BTreeMap<String, usize> {
            names.iter().map(|n| (n.to_string(), 1)).collect()
        };
        assert_eq!(family(&ops(&["linear", "softmax", "cumsum"])), "attention");
        assert_eq!(family(&ops(&["linear", "cumsum"])), "recurrent");
        assert_eq!(family(&ops(&["linear", "cummax"])), "recurrent");
        assert_eq!(family(&ops(&["conv1d", "linear"])), "convolution");
        assert_eq!(family(&ops(&["matmul"])), "matmul");
        assert_eq!(family(&ops(&["linear", "relu"])), "mlp");
    }

    #[test]
    fn two_objective_front_by_hand() {
        // (loss, params): 1 and 2 and 4 trade off; 3 is dominated by 2; 5 ties 4 exactly.
        let points = vec![
            (1, vec![0.1, 900.0]),
            (2, vec![0.2, 300.0]),
            (3, vec![0.3, 400.0]),
            (4, vec![0.5, 100.0]),
            (5, vec![0.5, 100.0]),
            (6, vec![f64::NAN, 1.0]),
        ];
        let dirs = [Direction::Minimize, Direction::Minimize];
        let ids: Vec<u64> = pareto_front(&points, &dirs).iter().map(|p| p.0).collect();
        assert_eq!(ids, vec![1, 2, 4, 5]);
    }

    #[test]
    fn three_objectives_and_maximised_metrics() {
        let points = vec![
            (1, vec![0.9, 100.0, 5.0]),
            (2, vec![0.8, 50.0, 5.0]),
            (3, vec![0.8, 100.0, 6.0]),
            (4, vec![0.95, 200.0, 1.0]),
        ];
        let dirs = [
            Direction::Maximize,
            Direction::Minimize,
            Direction::Minimize,
        ];
        let mut ids: Vec<u64> = pareto_front(&points, &dirs).iter().map(|p| p.0).collect();
        ids.sort();
        assert_eq!(ids, vec![1, 2, 4], "3 is dominated by 1");
    }
}
