//! What the printers (`crate::printer`) hand a family to print one op: its inputs as printed,
//! the shapes around it, its parameter; and the literals both languages share.

use crate::param::ParamSpec;
use crate::shape::Shape;

/// One node as the Starlark printer hands it to its op's family.
pub(crate) struct Call<'a> {
    /// The inputs as printed: a variable or a literal.
    pub args: Vec<String>,
    /// `, name="tiedK"` for a layer whose parameters are shared, or nothing.
    pub name: String,
    pub inputs: Vec<&'a Shape>,
    /// The node's first parameter (a raw `param`'s spec).
    pub param: Option<&'a ParamSpec>,
    /// Input 0's value where it is a scalar constant.
    pub lhs_scalar: Option<f64>,
}

impl Call<'_> {
    pub fn arg(&self, i: usize) -> &str {
        &self.args[i]
    }

    pub fn param(&self) -> &ParamSpec {
        self.param.expect("a param node has its parameter")
    }
}

/// One node as the PyTorch printer hands it to its op's family.
pub(crate) struct PyCall<'a, 'm> {
    pub args: Vec<String>,
    pub inputs: Vec<&'a Shape>,
    pub output: &'a Shape,
    pub param: Option<&'a ParamSpec>,
    /// Declares the node's module in `__init__` from its constructor (once per set of tied
    /// parameters) and returns its attribute name.
    pub module: &'m mut dyn FnMut(String) -> String,
}

impl PyCall<'_, '_> {
    pub fn arg(&self, i: usize) -> &str {
        &self.args[i]
    }

    /// A layer's call: its module declared from `ctor`, applied to the first input.
    pub fn layer(&mut self, ctor: String) -> String {
        let m = (self.module)(ctor);
        format!("self.{m}({})", self.args[0])
    }

    pub fn param(&self) -> &ParamSpec {
        self.param.expect("a param node has its parameter")
    }

    pub fn input_shape(&self) -> Option<&Shape> {
        self.inputs.first().copied()
    }

    /// The size of the first input's last dim (a layer's features).
    pub fn last(&self) -> u64 {
        self.input_shape()
            .and_then(Shape::last)
            .map_or(0, |d| d.size)
    }

    /// The size of the first input's dim 1 (a layer's channels).
    pub fn channels(&self) -> u64 {
        self.input_shape().map_or(0, |s| s.dims()[1].size)
    }
}

/// A float literal that both Starlark and Python read back as the same f64.
pub(crate) fn float(v: f64) -> String {
    if v.is_nan() {
        "float(\"nan\")".to_string()
    } else if v.is_infinite() {
        if v > 0.0 {
            "float(\"inf\")"
        } else {
            "-float(\"inf\")"
        }
        .to_string()
    } else {
        let s = format!("{v:?}");
        if s.contains('.') || s.contains('e') || s.contains("inf") {
            s
        } else {
            format!("{s}.0")
        }
    }
}

pub(crate) fn ints(v: &[u64]) -> String {
    let items: Vec<String> = v.iter().map(u64::to_string).collect();
    format!("[{}]", items.join(", "))
}

pub(crate) fn usizes(v: &[usize]) -> String {
    let items: Vec<String> = v.iter().map(usize::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// A target shape as code writes it: the batch dim (plain or merged) as -1.
pub(crate) fn script_shape(s: &Shape) -> String {
    let items: Vec<String> = s
        .dims()
        .iter()
        .map(|d| d.as_script_int().to_string())
        .collect();
    format!("[{}]", items.join(", "))
}

pub(crate) fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// `a - b` or `a / b`. Both operators need a tensor on the left; a scalar there can only come
/// from hand-built graphs, so it is spelled with a tensor-first form.
pub(crate) fn binary_tensor_first(call: &Call, op: &str) -> String {
    let (l, r) = (call.arg(0), call.arg(1));
    if let Some(value) = call.lhs_scalar {
        // c - x == -x + c, c / x == pow(x, -1.0) * c
        return match op {
            "-" => format!("-{r} + {}", float(value)),
            _ => format!("pow({r}, -1.0) * {}", float(value)),
        };
    }
    format!("{l} {op} {r}")
}

pub(crate) fn tuple(v: &[usize]) -> String {
    let items: Vec<String> = v.iter().map(usize::to_string).collect();
    if items.len() == 1 {
        format!("({},)", items[0])
    } else {
        format!("({})", items.join(", "))
    }
}

pub(crate) fn tuple_i64(s: &Shape) -> String {
    let items: Vec<String> = s
        .dims()
        .iter()
        .map(|d| d.as_script_int().to_string())
        .collect();
    if items.len() == 1 {
        format!("({},)", items[0])
    } else {
        format!("({})", items.join(", "))
    }
}
