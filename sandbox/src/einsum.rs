//! `einsum` lowered to permute, reshape and matmul, so that graphs keep one spelling of each
//! contraction (`einsum("bij,bjk->bik", a, b)` traces to the same graph as `matmul(a, b)`).

use crate::ops::Op;
use crate::shape::{Dim, Shape};

/// How to compute one einsum from permutes, reshapes and a matmul.
pub struct Plan {
    steps_a: Vec<Op>,
    steps_b: Vec<Op>,
    /// Set for two operands: matmul, then these steps on its result.
    after: Option<Vec<Op>>,
}

fn merged(dims: &[Dim]) -> Dim {
    Dim {
        size: dims.iter().map(|d| d.size).product(),
        batch: dims.iter().any(|d| d.batch),
    }
}

fn parse_operand(eq: &str, letters: &str, shape: &Shape) -> Result<Vec<char>, String> {
    let chars: Vec<char> = letters.trim().chars().collect();
    if chars
        .iter()
        .any(|c| !c.is_ascii_lowercase() && !c.is_ascii_uppercase())
    {
        return Err(format!(
            "einsum {eq:?}: operands are written with letters only (no `...` or spaces)"
        ));
    }
    if chars.len() != shape.rank() {
        return Err(format!(
            "einsum {eq:?}: {letters:?} names {} axes but the tensor {shape} has {}",
            chars.len(),
            shape.rank()
        ));
    }
    for (i, c) in chars.iter().enumerate() {
        if chars[..i].contains(c) {
            return Err(format!(
                "einsum {eq:?}: repeated index {c:?} within one operand (diagonals) does not lower to matmul"
            ));
        }
    }
    Ok(chars)
}

fn permutation(from: &[char], to: &[char]) -> Vec<usize> {
    to.iter()
        .map(|c| from.iter().position(|f| f == c).expect("letters checked"))
        .collect()
}

fn permute_step(from: &[char], to: &[char], steps: &mut Vec<Op>) {
    let dims = permutation(from, to);
    if dims.iter().enumerate().any(|(i, &d)| i != d) {
        steps.push(Op::Permute { dims });
    }
}

fn reshape_step(current: &Shape, target: Shape, steps: &mut Vec<Op>) {
    if *current != target {
        steps.push(Op::Reshape { shape: target });
    }
}

/// Plan `equation` for operands of shapes `a` and (optionally) `b`.
pub fn plan(equation: &str, a: &Shape, b: Option<&Shape>) -> Result<Plan, String> {
    let (inputs, output) = equation.split_once("->").ok_or_else(|| {
        format!("einsum {equation:?}: write the output explicitly, e.g. \"ij,jk->ik\"")
    })?;
    let operands: Vec<&str> = inputs.split(',').collect();
    let out: Vec<char> = output.trim().chars().collect();
    for (i, c) in out.iter().enumerate() {
        if out[..i].contains(c) {
            return Err(format!("einsum {equation:?}: output index {c:?} repeats"));
        }
    }
    match (operands.as_slice(), b) {
        ([la], None) => permutation_plan(equation, &parse_operand(equation, la, a)?, &out),
        ([la, lb], Some(b)) => {
            let la = parse_operand(equation, la, a)?;
            let lb = parse_operand(equation, lb, b)?;
            contraction_plan(equation, (&la, a), (&lb, b), &out)
        }
        _ => Err(format!(
            "einsum {equation:?}: takes one or two operands, matching the equation"
        )),
    }
}

/// One operand: only a permutation lowers.
fn permutation_plan(equation: &str, la: &[char], out: &[char]) -> Result<Plan, String> {
    let mut sorted_in = la.to_vec();
    sorted_in.sort_unstable();
    let mut sorted_out = out.to_vec();
    sorted_out.sort_unstable();
    if sorted_in != sorted_out {
        return Err(format!(
            "einsum {equation:?}: with one operand only permutations lower; use sum(x, axis) to reduce"
        ));
    }
    let mut steps_a = Vec::new();
    permute_step(la, out, &mut steps_a);
    Ok(Plan {
        steps_a,
        steps_b: Vec::new(),
        after: None,
    })
}

/// Every output index is in an operand, and an index in both has one size there.
fn check_indices(
    equation: &str,
    (la, a): (&[char], &Shape),
    (lb, b): (&[char], &Shape),
    out: &[char],
) -> Result<(), String> {
    for c in out {
        if !la.contains(c) && !lb.contains(c) {
            return Err(format!(
                "einsum {equation:?}: output index {c:?} is in neither operand"
            ));
        }
    }
    for (i, c) in la.iter().enumerate() {
        if let Some(j) = lb.iter().position(|x| x == c) {
            if a.dims()[i] != b.dims()[j] {
                return Err(format!(
                    "einsum {equation:?}: index {c:?} is {} in the first operand and {} in the second",
                    a.dims()[i],
                    b.dims()[j]
                ));
            }
        }
    }
    Ok(())
}

/// Two operands: permute each to (batch, free, contracted), reshape to three dims, one batched
/// matmul, then back to the output's order.
fn contraction_plan(
    equation: &str,
    (la, a): (&[char], &Shape),
    (lb, b): (&[char], &Shape),
    out: &[char],
) -> Result<Plan, String> {
    check_indices(equation, (la, a), (lb, b), out)?;
    let dim_of = |c: char| -> Dim {
        match la.iter().position(|&x| x == c) {
            Some(i) => a.dims()[i],
            None => b.dims()[lb.iter().position(|&x| x == c).expect("letter present")],
        }
    };
    let batch: Vec<char> = out
        .iter()
        .copied()
        .filter(|c| la.contains(c) && lb.contains(c))
        .collect();
    let contracted: Vec<char> = la
        .iter()
        .copied()
        .filter(|c| lb.contains(c) && !out.contains(c))
        .collect();
    let a_free: Vec<char> = la.iter().copied().filter(|c| !lb.contains(c)).collect();
    let b_free: Vec<char> = lb.iter().copied().filter(|c| !la.contains(c)).collect();
    if let Some(c) = a_free.iter().chain(&b_free).find(|c| !out.contains(c)) {
        return Err(format!(
            "einsum {equation:?}: index {c:?} appears in one operand only and not in the output; sum it first with sum(x, axis)"
        ));
    }
    if contracted.iter().any(|&c| dim_of(c).batch) {
        return Err(format!(
            "einsum {equation:?}: cannot contract over the batch dim"
        ));
    }
    let dims = |letters: &[char]| -> Vec<Dim> { letters.iter().map(|&c| dim_of(c)).collect() };
    let batch_dims = dims(&batch);
    let chain = |parts: [&[char]; 3]| -> Vec<char> { parts.concat() };
    let operand_steps = |letters: &[char], order: Vec<char>, m: &[char], n: &[char]| {
        let mut steps = Vec::new();
        permute_step(letters, &order, &mut steps);
        let mut target = batch_dims.clone();
        target.push(merged(&dims(m)));
        target.push(merged(&dims(n)));
        reshape_step(&Shape(dims(&order)), Shape(target), &mut steps);
        steps
    };
    let steps_a = operand_steps(
        la,
        chain([&batch, &a_free, &contracted]),
        &a_free,
        &contracted,
    );
    let steps_b = operand_steps(
        lb,
        chain([&batch, &contracted, &b_free]),
        &contracted,
        &b_free,
    );
    let mut after = Vec::new();
    let mut mm = batch_dims.clone();
    mm.push(merged(&dims(&a_free)));
    mm.push(merged(&dims(&b_free)));
    let result_order = chain([&batch, &a_free, &b_free]);
    reshape_step(&Shape(mm), Shape(dims(&result_order)), &mut after);
    permute_step(&result_order, out, &mut after);
    Ok(Plan {
        steps_a,
        steps_b,
        after: Some(after),
    })
}

impl Plan {
    /// Emit the plan's nodes through `push(op, inputs) -> node`, returning the result node.
    pub fn apply<E>(
        self,
        a: usize,
        b: Option<usize>,
        push: &mut dyn FnMut(Op, Vec<usize>) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let mut a = a;
        for op in self.steps_a {
            a = push(op, vec![a])?;
        }
        let Some(after) = self.after else {
            return Ok(a);
        };
        let mut b = b.expect("two-operand plans get two operands");
        for op in self.steps_b {
            b = push(op, vec![b])?;
        }
        let mut out = push(Op::Matmul, vec![a, b])?;
        for op in after {
            out = push(op, vec![out])?;
        }
        Ok(out)
    }
}
