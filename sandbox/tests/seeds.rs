//! The seed library: every seed traces on its task, with parameter counts computed by hand here.

use std::path::PathBuf;

use autoarch_sandbox::{printer, trace, TaskShape, TraceConfig, Traced};

fn seeds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../seeds")
}

fn header_task(source: &str) -> String {
    source
        .lines()
        .find_map(|l| l.strip_prefix("# task:"))
        .map(|t| t.trim().to_string())
        .expect("every seed names its task")
}

fn trace_seed(file: &str, task: Option<&str>) -> Traced {
    let source = std::fs::read_to_string(seeds_dir().join(file)).unwrap();
    let task = task
        .map(str::to_string)
        .unwrap_or_else(|| header_task(&source));
    let out = trace(
        &source,
        &TraceConfig::new(TaskShape::by_name(&task).unwrap()),
    );
    match out.traced() {
        Some(t) => t.clone(),
        None => panic!("{file} on {task}: {:?}", out.diagnostics()),
    }
}

/// linear(in, out) with bias.
const fn lin(i: u64, o: u64) -> u64 {
    i * o + o
}

#[test]
fn seed_parameter_counts_match_hand_counts() {
    let (d, vocab, seq) = (64, 256, 64);
    let embed = vocab * d;
    let head = d + lin(d, vocab); // final rms_norm + output projection
    let mlp = lin(d, 4 * d) + lin(4 * d, d);
    let positions = seq * d;
    let attention = 4 * lin(d, d); // q, k, v, o
    let transformer_layer = d + attention + d + mlp; // two rms_norms
    let retention_layer = d + 3 * lin(d, d) + lin(d, 1) + lin(d, d) + d + mlp;
    let conv_layer = d + lin(d, d) + (d * seq + d) + lin(d, d) + lin(d, d) + d + mlp;

    let bn = |c: u64| 2 * c;
    let conv =
        |cin: u64, cout: u64, k: u64, bias: bool| cout * cin * k * k + if bias { cout } else { 0 };
    let wide = 16 * 6;
    let inverted = conv(16, wide, 1, false)
        + bn(wide)
        + wide * 9
        + bn(wide)
        + conv(wide, 16, 1, false)
        + bn(16);
    let vit_block = 2 * 32 + 4 * lin(32, 32) + 2 * 32 + lin(32, 64) + lin(64, 32);

    let expected: &[(&str, u64)] = &[
        ("mlp_only.star", embed + 2 * (d + mlp) + head),
        (
            "transformer.star",
            embed + positions + 2 * transformer_layer + head,
        ),
        (
            "shift_attention.star",
            embed + positions + lin(64, 64) + 2 * transformer_layer + head,
        ),
        (
            "linear_attention.star",
            embed + positions + 2 * transformer_layer + head,
        ),
        (
            "gated_retention.star",
            embed + positions + 2 * retention_layer + head,
        ),
        ("long_conv.star", embed + 2 * conv_layer + head),
        (
            "looped_transformer.star",
            embed + positions + transformer_layer + head,
        ),
        (
            "image_mlp.star",
            lin(64, 128) + lin(128, 128) + lin(128, 10),
        ),
        (
            "cnn.star",
            conv(1, 16, 3, true) + conv(16, 32, 3, true) + conv(32, 64, 3, true) + lin(64, 10),
        ),
        (
            "resnet.star",
            conv(1, 32, 3, false)
                + bn(32)
                + 2 * 2 * (conv(32, 32, 3, false) + bn(32))
                + lin(32, 10),
        ),
        (
            "mobilenet.star",
            conv(1, 16, 3, false)
                + bn(16)
                + 2 * inverted
                + conv(16, 64, 1, false)
                + bn(64)
                + lin(64, 10),
        ),
        (
            "patch_transformer.star",
            (32 * 4 + 32) + 16 * 32 + 2 * vit_block + 2 * 32 + lin(32, 10),
        ),
    ];
    for &(file, params) in expected {
        assert_eq!(trace_seed(file, None).stats.params, params, "{file}");
    }
    let mut files: Vec<String> = std::fs::read_dir(seeds_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".star"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = expected.iter().map(|(f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed, "every seed has a hand count");
}

#[test]
fn every_seed_has_the_header_people_read() {
    for entry in std::fs::read_dir(seeds_dir()).unwrap() {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        for key in ["# name:", "# task:", "# idea:", "# paper:"] {
            assert!(source.contains(key), "{} lacks {key}", path.display());
        }
    }
}

#[test]
fn image_seeds_fit_fashion_sized_input_too() {
    for file in [
        "image_mlp.star",
        "cnn.star",
        "resnet.star",
        "mobilenet.star",
        "patch_transformer.star",
    ] {
        let t = trace_seed(file, Some("fashion"));
        assert_eq!(t.stats.output_shape.to_string(), "[B, 10]", "{file}");
    }
}

#[test]
fn looped_transformer_ties_one_block_across_four_loops() {
    let t = trace_seed("looped_transformer.star", None);
    let linears = t.stats.op_histogram["linear"];
    assert_eq!(
        linears,
        4 * 6 + 1,
        "six tied linears per loop plus the head"
    );
    // Every loop's q projection uses the same parameter ids.
    let q_params: Vec<&Vec<usize>> = t
        .graph
        .nodes
        .iter()
        .filter(|n| n.params.len() == 2 && t.graph.params[n.params[0]].shape == vec![64, 64])
        .map(|n| &n.params)
        .collect();
    let distinct: std::collections::BTreeSet<_> = q_params.iter().collect();
    assert_eq!(
        distinct.len(),
        4,
        "q, k, v and o are each one parameter group"
    );
}

#[test]
fn printing_back_preserves_every_seed_fingerprint() {
    for entry in std::fs::read_dir(seeds_dir()).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        let t = trace_seed(&file, None);
        let flat = printer::to_starlark(&t.graph);
        let again = trace(
            &flat,
            &TraceConfig::new(TaskShape::by_name(&t.graph.task).unwrap()),
        );
        let again = again.traced().unwrap_or_else(|| {
            panic!(
                "{file} printed back does not trace: {:?}\n{flat}",
                again.diagnostics()
            )
        });
        assert_eq!(again.fingerprint, t.fingerprint, "{file}\n{flat}");
        assert_eq!(again.stats, t.stats, "{file}");
    }
}

#[test]
fn pytorch_export_is_valid_python_for_every_seed() {
    let dir = std::env::temp_dir().join(format!("autoarch-pytorch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(seeds_dir()).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        let t = trace_seed(&file, None);
        let source = printer::to_pytorch(&t.graph);
        assert!(source.contains("class Model(nn.Module):"));
        let path = dir.join(file.replace(".star", ".py"));
        std::fs::write(&path, source).unwrap();
        files.push(path);
    }
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg("import ast, sys\nfor f in sys.argv[1:]:\n    ast.parse(open(f).read(), f)\n")
        .args(&files)
        .status()
        .expect("python3 is on the machine");
    assert!(status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The export initialises every parameter as autoarch does: one `nn.init` call per parameter of
/// each layer (a tied layer once), with autoarch's distribution — an embedding N(0, 0.02), not
/// PyTorch's N(0, 1); a linear layer U(±1/sqrt(fan_in)).
#[test]
fn pytorch_export_initialises_every_parameter_as_autoarch_does() {
    use autoarch_sandbox::param::Init;
    for entry in std::fs::read_dir(seeds_dir()).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        let g = trace_seed(&file, None).graph;
        let source = printer::to_pytorch(&g);
        let calls: Vec<&str> = source
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("nn.init."))
            .collect();
        // Parameters of layers (not `param(...)` tensors, which carry their own init), counted
        // once per distinct set (tied layers share theirs).
        let mut layers: Vec<&Vec<usize>> = g
            .nodes
            .iter()
            .filter(|n| !n.params.is_empty() && n.op.name() != "param")
            .map(|n| &n.params)
            .collect();
        layers.sort();
        layers.dedup();
        let expected: usize = layers.iter().map(|p| p.len()).sum();
        assert_eq!(calls.len(), expected, "{file}:\n{source}");
        for p in layers.iter().flat_map(|p| p.iter()) {
            let want = match g.params[*p].init {
                Init::Zeros => "zeros_(".to_string(),
                Init::Ones => "ones_(".to_string(),
                Init::Normal { std } => format!("std={std:?}"),
                Init::Uniform { low, .. } => format!("a={low:?}"),
            };
            assert!(
                calls.iter().any(|c| c.contains(&want)),
                "{file}: no init with {want}"
            );
        }
        if source.contains("nn.Embedding(") {
            assert!(
                calls
                    .iter()
                    .any(|c| c.starts_with("nn.init.normal_(self.embedding_")
                        && c.ends_with("std=0.02)")),
                "{file}:\n{source}"
            );
        }
    }
}

/// Fingerprints are stored in archives and compared across versions: this snapshot changes only
/// when the graph encoding changes on purpose (then say so in the change).
#[test]
fn seed_fingerprints_are_stable() {
    let mut files: Vec<String> = std::fs::read_dir(seeds_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let listing: String = files
        .iter()
        .map(|f| format!("{f:<24} {}\n", trace_seed(f, None).fingerprint))
        .collect();
    expect_test::expect![[r#"
        cnn.star                 a7fa8101f959e9946cb5180d74a4cffb
        gated_retention.star     a7b9dbea86465cd04f3846c7912bdb5c
        image_mlp.star           3301218f8e7317a7738d1b887ebd238e
        linear_attention.star    66fd019022fd11038279603f4c5d8e9f
        long_conv.star           24fa26a49e17f11f7744bf66a49a1d18
        looped_transformer.star  d00a267c7bc0e512a290178f2b1f8736
        mlp_only.star            1540959322399b641fbb855fa34c4e41
        mobilenet.star           e06dffd74fde55908b424547ec27c4a1
        patch_transformer.star   677a954d99abcf5b398798961f56bf53
        resnet.star              d14db7f34f43a429159b41dd9e957de2
        shift_attention.star     772b1a4ff6c8c218fb1bd6923c688ac3
        transformer.star         9e5f11fd42117d2cb906b332b4d2a68d
    "#]]
    .assert_eq(&listing);
}
