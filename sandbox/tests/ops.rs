//! One case per function of the language: its shape rule, FLOP count, parameters and printing.
//!
//! Each case traces `def model(x): return <expr>` against a task whose output shape is the expected
//! shape, so a passing trace proves the shape rule; FLOPs and parameters are then compared exactly,
//! the graph printed as Starlark must trace to the same fingerprint, and printed as PyTorch must
//! parse as Python.

use std::collections::BTreeSet;

use autoarch_sandbox::printer::{to_pytorch, to_starlark};
use autoarch_sandbox::tracer::builtin_names;
use autoarch_sandbox::{trace, DType, Shape, TaskShape, TraceConfig, TraceOutcome, REGISTRY};

struct Case {
    name: &'static str,
    input: &'static [u64],
    dtype: DType,
    expr: &'static str,
    output: Shape,
    flops: u64,
    params: u64,
}

const F: DType = DType::Float32;

fn case(
    name: &'static str,
    input: &'static [u64],
    expr: &'static str,
    output: &[u64],
    flops: u64,
    params: u64,
) -> Case {
    Case {
        name,
        input,
        dtype: F,
        expr,
        output: Shape::batched(output),
        flops,
        params,
    }
}

// A table: one case per function of the language.
#[allow(clippy::too_many_lines)]
fn cases() -> Vec<Case> {
    let x = &[4, 8];
    vec![
        // 2·rows·in·out + rows·out = 2·4·8·16 + 4·16; params 8·16 + 16.
        case("linear", x, "linear(x, 16)", &[4, 16], 1088, 144),
        // 40 outputs · (2·3·3 + 1); params 4·3·3 + 4.
        case(
            "conv1d",
            &[3, 10],
            "conv1d(x, 4, 3, padding=1)",
            &[4, 10],
            760,
            40,
        ),
        // (8 + 2 - 3) / 2 + 1 = 4; 96 outputs · (2·3·9 + 1); params 6·3·9 + 6.
        case(
            "conv2d",
            &[3, 8, 8],
            "conv2d(x, 6, 3, stride=2, padding=1)",
            &[6, 4, 4],
            5280,
            168,
        ),
        Case {
            name: "embedding",
            input: &[5],
            dtype: DType::Int,
            expr: "embedding(x, 100, 8)",
            output: Shape::batched(&[5, 8]),
            flops: 0,
            params: 800,
        },
        case("layer_norm", x, "layer_norm(x)", &[4, 8], 160, 16),
        case("rms_norm", x, "rms_norm(x)", &[4, 8], 128, 8),
        case(
            "batch_norm",
            &[3, 8, 8],
            "batch_norm(x)",
            &[3, 8, 8],
            960,
            6,
        ),
        case(
            "group_norm",
            &[4, 8, 8],
            "group_norm(x, 2)",
            &[4, 8, 8],
            1280,
            8,
        ),
        case("param", x, "x + param([4, 8])", &[4, 8], 32, 32),
        case("+", x, "x + 1.0", &[4, 8], 32, 0),
        case("-", x, "-(x - 1.0)", &[4, 8], 64, 0),
        case("*", x, "x * x", &[4, 8], 32, 0),
        case("/", x, "x / 2.0", &[4, 8], 32, 0),
        case("neg", x, "neg(x)", &[4, 8], 32, 0),
        case("relu", x, "relu(x)", &[4, 8], 32, 0),
        case("gelu", x, "gelu(x)", &[4, 8], 32, 0),
        case("silu", x, "silu(x)", &[4, 8], 32, 0),
        case("sigmoid", x, "sigmoid(x)", &[4, 8], 32, 0),
        case("tanh", x, "tanh(x)", &[4, 8], 32, 0),
        case("softplus", x, "softplus(x)", &[4, 8], 32, 0),
        case("elu", x, "elu(x, alpha=0.5)", &[4, 8], 32, 0),
        case("exp", x, "exp(x)", &[4, 8], 32, 0),
        case("log", x, "log(x)", &[4, 8], 32, 0),
        case("sqrt", x, "sqrt(x)", &[4, 8], 32, 0),
        case("abs", x, "abs(x)", &[4, 8], 32, 0),
        case("square", x, "square(x)", &[4, 8], 32, 0),
        case("pow", x, "pow(x, 3.0)", &[4, 8], 32, 0),
        case("clamp", x, "clamp(x, min=0.0)", &[4, 8], 32, 0),
        case("maximum", x, "maximum(x, 0.0)", &[4, 8], 32, 0),
        case("minimum", x, "minimum(1.0, x)", &[4, 8], 32, 0),
        case("sum", x, "sum(x, axis=-1)", &[4], 32, 0),
        case(
            "mean",
            x,
            "mean(x, axis=[1, 2], keepdim=True)",
            &[1, 1],
            32,
            0,
        ),
        case("max", x, "max(x, axis=1)", &[8], 32, 0),
        case("logsumexp", x, "logsumexp(x)", &[4], 96, 0),
        case("softmax", x, "softmax(x)", &[4, 8], 96, 0),
        case("log_softmax", x, "log_softmax(x, axis=1)", &[4, 8], 96, 0),
        case("cumsum", x, "cumsum(x, axis=1)", &[4, 8], 32, 0),
        case("cummax", x, "cummax(x, axis=1)", &[4, 8], 32, 0),
        case("reshape", x, "reshape(x, [-1, 32])", &[32], 0, 0),
        case("permute", x, "permute(x, [0, 2, 1])", &[8, 4], 0, 0),
        case("transpose", x, "transpose(x, 1, 2)", &[8, 4], 0, 0),
        case("flatten", &[3, 4, 5], "flatten(x)", &[60], 0, 0),
        case("concat", x, "concat([x, x], axis=1)", &[8, 8], 0, 0),
        case("split", x, "split(x, [3, 5], axis=2)[1]", &[4, 5], 0, 0),
        case("slice", x, "slice(x, 2, -3, 8)", &[4, 3], 0, 0),
        case("pad", x, "pad(x, [2, 1], axis=1)", &[7, 8], 0, 0),
        case("unsqueeze", x, "unsqueeze(x, 1)", &[1, 4, 8], 0, 0),
        case("squeeze", x, "squeeze(unsqueeze(x, -1), 3)", &[4, 8], 0, 0),
        case(
            "expand",
            x,
            "expand(unsqueeze(x, 2), [-1, 4, 3, 8])",
            &[4, 3, 8],
            0,
            0,
        ),
        // 2·M·N·K = 2·4·5·8; params 8·5.
        case("matmul", x, "matmul(x, param([8, 5]))", &[4, 5], 320, 40),
        case(
            "einsum",
            x,
            "einsum(\"bij,jk->bik\", x, param([8, 5]))",
            &[4, 5],
            320,
            40,
        ),
        case("outer", x, "outer(x, x)", &[4, 8, 8], 256, 0),
        case(
            "avg_pool2d",
            &[3, 8, 8],
            "avg_pool2d(x, 2)",
            &[3, 4, 4],
            192,
            0,
        ),
        case(
            "max_pool2d",
            &[3, 8, 8],
            "max_pool2d(x, 3, stride=2, padding=1)",
            &[3, 4, 4],
            432,
            0,
        ),
        case(
            "global_avg_pool",
            &[3, 8, 8],
            "global_avg_pool(x)",
            &[3],
            192,
            0,
        ),
        case("causal_mask", &[4, 4], "x + causal_mask(4)", &[4, 4], 16, 0),
        // 2 heads · 4 · 4 scores · (2·8 + 3 + 2·8).
        case(
            "scaled_dot_product_attention",
            &[2, 4, 8],
            "scaled_dot_product_attention(x, x, x, causal=True)",
            &[2, 4, 8],
            1120,
            0,
        ),
        case("dropout", x, "dropout(x, 0.1)", &[4, 8], 0, 0),
    ]
}

#[test]
fn every_op_has_its_shape_rule_flops_and_params_and_prints_both_ways() {
    let mut python = String::new();
    for c in cases() {
        let task = TaskShape {
            name: format!("op-{}", c.name),
            description: String::new(),
            input: Shape::batched(c.input),
            input_dtype: c.dtype,
            output: c.output.clone(),
            constants: Vec::new(),
        };
        let code = format!("def model(x):\n    return {}\n", c.expr);
        match trace(&code, &TraceConfig::new(task.clone())) {
            TraceOutcome::Ok(t) => {
                assert_eq!(t.stats.flops, c.flops, "FLOPs of {}: {}", c.name, c.expr);
                assert_eq!(t.stats.params, c.params, "params of {}: {}", c.name, c.expr);
                let flat = to_starlark(&t.graph);
                let again = trace(&flat, &TraceConfig::new(task.clone()));
                let again = again
                    .traced()
                    .unwrap_or_else(|| panic!("{}: {flat}", c.name));
                assert_eq!(again.fingerprint, t.fingerprint, "{}: {flat}", c.name);
                // JSON string literals are Python string literals.
                let literal = |s: &str| serde_json::to_string(s).expect("strings encode");
                python.push_str(&format!(
                    "compile({}, {}, \"exec\")\n",
                    literal(&to_pytorch(&t.graph)),
                    literal(c.name)
                ));
            }
            TraceOutcome::Invalid { diagnostics } => {
                panic!("{} ({}) did not trace: {diagnostics:?}", c.name, c.expr)
            }
        }
    }
    // Every export parses as Python (python3 is on every machine the tests run on).
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg(&python)
        .status()
        .expect("python3 is on the machine");
    assert!(status.success(), "an export does not parse");
}

#[test]
fn the_table_covers_the_whole_registry() {
    let covered: BTreeSet<&str> = cases().iter().map(|c| c.name).collect();
    let registered: BTreeSet<&str> = REGISTRY.iter().map(|s| s.name).collect();
    assert_eq!(covered, registered);
}

#[test]
fn the_registry_and_the_starlark_globals_name_the_same_functions() {
    let registered: BTreeSet<String> = REGISTRY
        .iter()
        .map(|s| s.name.to_string())
        .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    let globals: BTreeSet<String> = builtin_names().into_iter().collect();
    assert_eq!(registered, globals);
}

#[test]
fn batch_norm_keeps_running_statistics_as_buffers() {
    let task = TaskShape {
        name: "bn".into(),
        description: String::new(),
        input: Shape::batched(&[3, 4, 4]),
        input_dtype: F,
        output: Shape::batched(&[3, 4, 4]),
        constants: Vec::new(),
    };
    let t = trace(
        "def model(x):\n    return batch_norm(x)\n",
        &TraceConfig::new(task),
    );
    let t = t.traced().unwrap();
    assert_eq!((t.stats.params, t.stats.buffers), (6, 6));
}

#[test]
fn max_and_abs_keep_their_meaning_on_numbers() {
    let task = TaskShape::by_name("digits").unwrap();
    let code = "N = max(3, 7) + max([1, 2]) + abs(-2)\ndef model(x):\n    return linear(flatten(x), N + 1)\n";
    let t = trace(
        code,
        &TraceConfig::new(TaskShape {
            output: Shape::batched(&[7 + 2 + 2 + 1]),
            ..task
        }),
    );
    assert!(t.traced().is_some(), "{:?}", t.diagnostics());
}

#[test]
fn tensors_expose_shape_ndim_and_dtype() {
    let task = TaskShape::by_name("mqar").unwrap();
    let code = "def model(x):\n    b, t = x.shape\n    h = embedding(x, VOCAB, 8)\n    if b != -1 or t != SEQ_LEN or h.ndim != 3 or x.dtype != \"int\":\n        fail(\"unexpected\")\n    return linear(h, VOCAB)\n";
    let t = trace(code, &TraceConfig::new(task));
    assert!(t.traced().is_some(), "{:?}", t.diagnostics());
}
