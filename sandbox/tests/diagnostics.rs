//! The catalogue of wrong programs and the diagnostics they get (snapshots: `UPDATE_EXPECT=1`).

use autoarch_sandbox::{render_all, trace, Limits, TaskShape, TraceConfig, TraceOutcome};
use expect_test::{expect, Expect};

fn check_with(code: &str, config: &TraceConfig, expected: Expect) {
    match trace(code, config) {
        TraceOutcome::Ok(t) => panic!("expected diagnostics, got a graph {}", t.fingerprint),
        TraceOutcome::Invalid { diagnostics } => {
            expected.assert_eq(&render_all(&diagnostics, "model.star"));
        }
    }
}

fn check(task: &str, code: &str, expected: Expect) {
    check_with(
        code,
        &TraceConfig::new(TaskShape::by_name(task).unwrap()),
        expected,
    );
}

#[test]
fn shape_mismatch_in_a_helper_points_into_the_helper() {
    check(
        "digits",
        r#"
def block(h):
    return linear(h, 33) + h

def model(x):
    h = linear(flatten(x), 32)
    return linear(block(h), NUM_CLASSES)
"#,
        expect![[r#"
            error: add: shapes [B, 33] and [B, 32] do not broadcast
             --> model.star:3:12
              |
            3 |     return linear(h, 33) + h
              |            ^^^^^^^^^^^^^^^^^
              = note: in `block`, called at line 7:19
        "#]],
    );
}

#[test]
fn wrong_argument_type() {
    check(
        "digits",
        "def model(x):\n    return linear(flatten(x), \"10\")\n",
        expect![[r#"
            error: Type of parameter `out` doesn't match, expected `int`, actual `string (repr: "10")`
             --> model.star:2:12
              |
            2 |     return linear(flatten(x), "10")
              |            ^^^^^^^^^^^^^^^^^^^^^^^^
              = note: in `linear`, called at line 2:12
        "#]],
    );
}

#[test]
fn unknown_op() {
    check(
        "digits",
        "def model(x):\n    return linearr(flatten(x), 10)\n",
        expect![[r#"
            error: Variable `linearr` not found, did you mean `linear`?
             --> model.star:2:12
              |
            2 |     return linearr(flatten(x), 10)
              |            ^^^^^^^
              = note: `autoarch ops` lists every op of the language
        "#]],
    );
}

#[test]
fn missing_model() {
    check(
        "digits",
        "def net(x):\n    return x\n",
        expect![[r#"
            error: no `model` function: define `def model(x):` returning the output tensor
             --> model.star:1:1
              |
            1 | def net(x):
              | ^
        "#]],
    );
}

#[test]
fn wrong_output_shape() {
    check(
        "mqar",
        "def model(x):\n    h = embedding(x, VOCAB, 32)\n    return linear(h, 10)\n",
        expect![[r#"
            error: model returns float32 [B, 64, 10], but task `mqar` needs float32 [B, 64, 256]
             --> model.star:3:12
              |
            3 |     return linear(h, 10)
              |            ^
        "#]],
    );
}

#[test]
fn model_must_return_a_tensor() {
    check(
        "digits",
        "def model(x):\n    return [x]\n",
        expect![[r#"
            error: model returned a list, but it must return a tensor of shape [B, 10]
             --> model.star:1:1
              |
            1 | def model(x):
              | ^
        "#]],
    );
}

#[test]
fn while_loop_says_what_to_write_instead() {
    check(
        "digits",
        "def model(x):\n    h = flatten(x)\n    while True:\n        h = relu(h)\n    return h\n",
        expect![[r#"
            error: `while` loops are not available: use `for i in range(n):` with a fixed bound
             --> model.star:3:5
              |
            3 |     while True:
              |     ^^^^^
        "#]],
    );
}

#[test]
fn load_is_refused() {
    check(
        "digits",
        "load(\"layers.star\", \"block\")\n\ndef model(x):\n    return block(x)\n",
        expect![[r#"
            error: `load` is not available: architecture code is one self-contained file
             --> model.star:1:1
              |
            1 | load("layers.star", "block")
              | ^^^^
        "#]],
    );
}

#[test]
fn python_only_syntax_is_located_with_a_replacement() {
    check(
        "digits",
        "import torch\n\nclass Net:\n    pass\n\ndef model(x):\n    y = x ** 2\n    z = x @ x\n    try:\n        pass\n    except:\n        pass\n    return y\n",
        expect![[r#"
            error: imports are not available: every op is built in (see `autoarch ops`)
             --> model.star:1:1
              |
            1 | import torch
              | ^^^^^^

            error: `class` is not available: write functions that build the graph
             --> model.star:3:1
              |
            3 | class Net:
              | ^^^^^

            error: `**` (power) is not available: use `pow(x, p)` on tensors, or write the number out
             --> model.star:7:11
              |
            7 |     y = x ** 2
              |           ^^

            error: `@` (matrix multiply) is not available: use `matmul(a, b)`
             --> model.star:8:11
              |
            8 |     z = x @ x
              |           ^

            error: `try` is not available: the tracer reports errors itself
             --> model.star:9:5
              |
            9 |     try:
              |     ^^^

            error: `try`/`except` is not available: the tracer reports errors itself
              --> model.star:11:5
               |
            11 |     except:
               |     ^^^^^^
        "#]],
    );
}

#[test]
fn runaway_loop_hits_the_tick_budget() {
    check(
        "digits",
        "def model(x):\n    n = 0\n    for i in range(1000000000):\n        n += i\n    return x\n",
        expect![[r#"
            error: the code ran more than 2000000 steps (calls and loop iterations) while tracing; is a loop unbounded?
             --> model.star:1:1
              |
            1 | def model(x):
              | ^
        "#]],
    );
}

#[test]
fn over_budget_parameters() {
    let mut config = TraceConfig::new(TaskShape::by_name("digits").unwrap());
    config.limits = Limits {
        max_params: 10_000,
        ..Limits::default()
    };
    check_with(
        "def model(x):\n    h = relu(linear(flatten(x), 256))\n    return linear(h, NUM_CLASSES)\n",
        &config,
        expect![[r#"
            error: the model exceeds the limit of 10000 parameters (16640 so far)
             --> model.star:2:14
              |
            2 |     h = relu(linear(flatten(x), 256))
              |              ^^^^^^^^^^^^^^^^^^^^^^^
              = note: in `linear`, called at line 2:14
        "#]],
    );
}

#[test]
fn over_budget_flops_and_nodes() {
    let mut config = TraceConfig::new(TaskShape::by_name("digits").unwrap());
    config.limits.max_flops = 1_000;
    check_with(
        "def model(x):\n    return linear(flatten(x), NUM_CLASSES)\n",
        &config,
        expect![[r#"
            error: the graph exceeds the limit of 1000 FLOPs per sample (1290 so far)
             --> model.star:2:12
              |
            2 |     return linear(flatten(x), NUM_CLASSES)
              |            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
              = note: in `linear`, called at line 2:12
        "#]],
    );
    let mut config = TraceConfig::new(TaskShape::by_name("digits").unwrap());
    config.limits.max_nodes = 50;
    let code = "def model(x):\n    h = flatten(x)\n    for _ in range(100):\n        h = relu(h)\n    return linear(h, NUM_CLASSES)\n";
    let out = trace(code, &config);
    assert!(
        out.diagnostics()[0].message.contains("limit of 50 nodes"),
        "{:?}",
        out.diagnostics()
    );
}

#[test]
fn tied_layers_must_match() {
    check(
        "digits",
        "def model(x):\n    h = linear(flatten(x), 32, name=\"shared\")\n    h = linear(h, 32, name=\"shared\")\n    return linear(h, NUM_CLASSES)\n",
        expect![[r#"
            error: parameters named "shared" were created by linear at line 2 with shapes [[64, 32], [32]]; this linear call needs shapes [[32, 32], [32]]: tied layers must match
             --> model.star:3:9
              |
            3 |     h = linear(h, 32, name="shared")
              |         ^^^^^^^^^^^^^^^^^^^^^^^^^^^^
              = note: in `linear`, called at line 3:9
        "#]],
    );
}

#[test]
fn a_number_minus_a_tensor_gets_a_hint() {
    check(
        "digits",
        "def model(x):\n    h = 1.0 - flatten(x)\n    return linear(h, NUM_CLASSES)\n",
        expect![[r#"
            error: Operation `-` not supported for types `float` and `Tensor`
             --> model.star:2:9
              |
            2 |     h = 1.0 - flatten(x)
              |         ^^^^^^^^^^^^^^^^
              = note: a number on the left of `-` or `/` with a tensor on the right is not supported: write `-x + 1.0`, or `pow(x, -1.0) * c`
        "#]],
    );
}

#[test]
fn token_ids_need_an_embedding() {
    check(
        "mqar",
        "def model(x):\n    return linear(x, VOCAB)\n",
        expect![[r#"
            error: linear needs a float tensor, got an int tensor [B, 64]; token ids go through embedding(ids, vocab, dim) first
             --> model.star:2:12
              |
            2 |     return linear(x, VOCAB)
              |            ^^^^^^^^^^^^^^^^
              = note: in `linear`, called at line 2:12
        "#]],
    );
}

#[test]
fn reducing_over_the_batch_is_refused() {
    check(
        "digits",
        "def model(x):\n    h = linear(flatten(x), NUM_CLASSES)\n    return h - mean(h, axis=0, keepdim=True)\n",
        expect![[r#"
            error: mean over axis 0 of [B, 10] would mix samples: that axis holds the batch
             --> model.star:3:16
              |
            3 |     return h - mean(h, axis=0, keepdim=True)
              |                ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
              = note: in `mean`, called at line 3:16
        "#]],
    );
}

#[test]
fn unsupported_einsum_says_why() {
    check(
        "digits",
        "def model(x):\n    h = reshape(x, [-1, 8, 8])\n    d = einsum(\"bii->bi\", h)\n    return linear(d, NUM_CLASSES)\n",
        expect![[r#"
            error: einsum "bii->bi": repeated index 'i' within one operand (diagonals) does not lower to matmul
             --> model.star:3:9
              |
            3 |     d = einsum("bii->bi", h)
              |         ^^^^^^^^^^^^^^^^^^^^
              = note: in `einsum`, called at line 3:9
        "#]],
    );
}

#[test]
fn syntax_errors_are_located() {
    let out = trace(
        "def model(x)\n    return x\n",
        &TraceConfig::new(TaskShape::by_name("digits").unwrap()),
    );
    let d = &out.diagnostics()[0];
    assert_eq!((d.line, d.col), (1, 13), "{d:?}");
    assert!(d.message.to_lowercase().contains("parse error"), "{d:?}");
}
