//! The canonical fingerprint: invariant to how code is written, sensitive to what it builds.

use autoarch_sandbox::{printer, trace, Fingerprint, TaskShape, TraceConfig};
use proptest::prelude::*;

fn fp_on(task: &str, code: &str) -> Fingerprint {
    let out = trace(code, &TraceConfig::new(TaskShape::by_name(task).unwrap()));
    match out.traced() {
        Some(t) => t.fingerprint.clone(),
        None => panic!("does not trace: {:?}\n{code}", out.diagnostics()),
    }
}

fn fp(code: &str) -> Fingerprint {
    fp_on("digits", code)
}

const BASE: &str = r#"
def model(x):
    h = flatten(x)
    a = relu(linear(h, 32))
    b = tanh(linear(h, 32))
    h = a + b
    h = h + linear(gelu(linear(h, 64)), 32)
    h = h + linear(gelu(linear(h, 64)), 32)
    return linear(h, NUM_CLASSES)
"#;

#[test]
fn invariant_to_names_helpers_loops_and_statement_order() {
    let base = fp(BASE);
    let renamed = r#"
def model(image):
    flat = flatten(image)
    left = relu(linear(flat, 32))
    right = tanh(linear(flat, 32))
    z = left + right
    z = z + linear(gelu(linear(z, 64)), 32)
    z = z + linear(gelu(linear(z, 64)), 32)
    return linear(z, NUM_CLASSES)
"#;
    let helpers_and_loop = r#"
WIDTH_ = 32

def mlp(h):
    return linear(gelu(linear(h, 2 * WIDTH_)), WIDTH_)

def stem(x):
    h = flatten(x)
    return relu(linear(h, WIDTH_)) + tanh(linear(h, WIDTH_))

def model(x):
    h = stem(x)
    for _ in range(2):
        h = h + mlp(h)
    return linear(h, NUM_CLASSES)
"#;
    let reordered_and_commuted = r#"
def model(x):
    h = flatten(x)
    b = tanh(linear(h, 32))
    a = relu(linear(h, 32))
    h = b + a
    h = linear(gelu(linear(h, 64)), 32) + h
    h = h + linear(gelu(linear(h, 64)), 32)
    unused = softmax(linear(h, 7))
    return linear(h, NUM_CLASSES)
"#;
    assert_eq!(fp(renamed), base);
    assert_eq!(fp(helpers_and_loop), base);
    assert_eq!(fp(reordered_and_commuted), base);
}

#[test]
fn sensitive_to_op_attribute_shape_wiring_and_tying() {
    let base = fp(BASE);
    let variants = [
        ("op", BASE.replacen("relu(", "silu(", 1)),
        (
            "attribute",
            BASE.replacen("gelu(linear(h, 64))", "gelu(linear(h, 64, bias=False))", 1),
        ),
        ("shape", BASE.replacen("linear(h, 64)", "linear(h, 48)", 1)),
        ("wiring", BASE.replacen("h = a + b", "h = a + a", 1)),
        (
            "order of a non-commutative op",
            BASE.replacen("h = a + b", "h = a - b", 1)
                .replacen("h = a - b", "h = b - a", 1),
        ),
    ];
    let mut seen = vec![base.clone()];
    for (what, code) in &variants {
        let f = fp(code);
        assert!(
            !seen.contains(&f),
            "changing the {what} must change the fingerprint"
        );
        seen.push(f);
    }
    let minus_ab = fp(&BASE.replacen("h = a + b", "h = a - b", 1));
    let minus_ba = fp(&BASE.replacen("h = a + b", "h = b - a", 1));
    assert_ne!(minus_ab, minus_ba);

    let untied = "def model(x):\n    h = flatten(x)\n    h = linear(h, 64)\n    h = linear(h, 64)\n    return linear(h, NUM_CLASSES)\n";
    let tied = "def model(x):\n    h = flatten(x)\n    h = linear(h, 64, name=\"a\")\n    h = linear(h, 64, name=\"a\")\n    return linear(h, NUM_CLASSES)\n";
    let tied_other_name = tied.replace("\"a\"", "\"shared\"");
    assert_ne!(fp(untied), fp(tied));
    assert_eq!(
        fp(tied),
        fp(&tied_other_name),
        "the tie's name is not part of the graph"
    );
}

#[test]
fn einsum_lowers_to_the_same_graph_as_matmul() {
    let with_matmul = "def model(x):\n    h = reshape(x, [-1, 8, 8])\n    w = param([8, 4])\n    return linear(flatten(matmul(h, w)), NUM_CLASSES)\n";
    let with_einsum = "def model(x):\n    h = reshape(x, [-1, 8, 8])\n    w = param([8, 4])\n    return linear(flatten(einsum(\"bij,jk->bik\", h, w)), NUM_CLASSES)\n";
    let batched = "def model(x):\n    h = reshape(x, [-1, 8, 8])\n    return linear(flatten(einsum(\"bij,bjk->bik\", h, h)), NUM_CLASSES)\n";
    let batched_matmul = "def model(x):\n    h = reshape(x, [-1, 8, 8])\n    return linear(flatten(matmul(h, h)), NUM_CLASSES)\n";
    assert_eq!(fp(with_matmul).0.len(), 32);
    assert_ne!(fp(with_matmul), fp(batched_matmul));
    assert_eq!(fp(batched), fp(batched_matmul));
    // "bij,jk->bik" merges b and i into one matmul row dim, so it is a reshape away from the
    // broadcast matmul: different graphs, same values. Both must trace and print back.
    fp(with_einsum);
}

#[test]
fn tracing_is_deterministic() {
    let config = TraceConfig::new(TaskShape::by_name("digits").unwrap());
    let a = trace(BASE, &config);
    let b = trace(BASE, &config);
    assert_eq!(a, b);
}

/// A random program over [B, 16, 32] built from shape-preserving ops and residual adds.
#[derive(Debug, Clone)]
enum Stmt {
    Unary(&'static str, usize),
    Linear(usize, u64),
    Norm(&'static str, usize),
    Add(usize, usize),
    Mul(usize, usize),
    Scale(usize, i32),
    Softmax(usize),
    Attention(usize),
}

fn stmt() -> impl Strategy<Value = Stmt> {
    let unary = prop::sample::select(vec!["relu", "gelu", "silu", "tanh", "sigmoid"]);
    let norm = prop::sample::select(vec!["layer_norm", "rms_norm"]);
    let i = 0usize..1000;
    prop_oneof![
        (unary, i.clone()).prop_map(|(op, a)| Stmt::Unary(op, a)),
        (i.clone(), prop::sample::select(vec![16u64, 32, 48]))
            .prop_map(|(a, w)| Stmt::Linear(a, w)),
        (norm, i.clone()).prop_map(|(op, a)| Stmt::Norm(op, a)),
        (i.clone(), i.clone()).prop_map(|(a, b)| Stmt::Add(a, b)),
        (i.clone(), i.clone()).prop_map(|(a, b)| Stmt::Mul(a, b)),
        (i.clone(), -4i32..5).prop_map(|(a, s)| Stmt::Scale(a, s)),
        i.clone().prop_map(Stmt::Softmax),
        i.prop_map(Stmt::Attention),
    ]
}

fn program(stmts: &[Stmt], prefix: &str) -> String {
    let mut code = format!("def model(x):\n    {prefix}0 = linear(reshape(x, [-1, 16, 4]), 32)\n");
    for (k, s) in stmts.iter().enumerate() {
        let n = k + 1;
        let v = |i: usize| format!("{prefix}{}", i % n);
        let line = match s {
            Stmt::Unary(op, a) => format!("{op}({})", v(*a)),
            // A linear back to 32 keeps every variable [B, 16, 32].
            Stmt::Linear(a, w) => format!("linear(gelu(linear({}, {w})), 32)", v(*a)),
            Stmt::Norm(op, a) => format!("{op}({})", v(*a)),
            Stmt::Add(a, b) => format!("{} + {}", v(*a), v(*b)),
            Stmt::Mul(a, b) => format!("{} * {}", v(*a), v(*b)),
            Stmt::Scale(a, s) => format!("{} * {}.5", v(*a), s),
            Stmt::Softmax(a) => format!("softmax({}, axis=1)", v(*a)),
            Stmt::Attention(a) => format!(
                "scaled_dot_product_attention({0}, {0}, {0}, causal=True)",
                v(*a)
            ),
        };
        code.push_str(&format!("    {prefix}{n} = {line}\n"));
    }
    code.push_str(&format!(
        "    return linear(flatten({prefix}{}), NUM_CLASSES)\n",
        stmts.len()
    ));
    code
}

fn task() -> TaskShape {
    // 64 float features reshaped to [B, 16, 4] by the program.
    TaskShape::by_name("digits").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_programs_trace_deterministically_and_print_back(stmts in prop::collection::vec(stmt(), 1..25)) {
        let config = TraceConfig::new(task());
        let code = program(&stmts, "h");
        let first = trace(&code, &config);
        let t = first.traced().expect("generated programs are valid");
        prop_assert_eq!(&first, &trace(&code, &config));
        let renamed = trace(&program(&stmts, "tmp_"), &config);
        prop_assert_eq!(&renamed.traced().unwrap().fingerprint, &t.fingerprint);
        let flat = printer::to_starlark(&t.graph);
        let again = trace(&flat, &config);
        let again = again.traced().expect("printed programs trace");
        prop_assert_eq!(&again.fingerprint, &t.fingerprint);
    }
}

#[test]
fn sequence_models_print_back_with_their_tasks() {
    let code = "def model(x):\n    h = embedding(x, VOCAB, 16)\n    q, k = split(linear(h, 32), 2)\n    s = einsum(\"btd,bsd->bts\", q, k) / 4.0\n    h = matmul(softmax(s + causal_mask(SEQ_LEN)), h)\n    return linear(layer_norm(h), VOCAB)\n";
    let config = TraceConfig::new(TaskShape::by_name("mqar").unwrap());
    let t = trace(code, &config);
    let t = t.traced().unwrap();
    let again = trace(&printer::to_starlark(&t.graph), &config);
    assert_eq!(again.traced().unwrap().fingerprint, t.fingerprint);
    assert_eq!(fp_on("mqar", code), t.fingerprint);
}
