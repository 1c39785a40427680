//! Tasks end to end, in process: each built-in task and the custom task trains a small model
//! on data generated here, reports its metrics, and repeats exactly with the same seed.

use std::path::Path;

use autoarch_evaluator::{
    reference_scores, run_job, Job, MachineError, Reference, Status, Task, TaskConfig, TaskError,
    TrainConfig,
};
use autoarch_sandbox::{Limits, TaskKind, TaskShape, TraceConfig};
use npyz::WriterBuilder;
use rand::SeedableRng;
use safetensors::tensor::TensorView;
use safetensors::Dtype;

fn job(code: &str, task: TaskConfig, steps: u64) -> Job {
    Job {
        id: "t".into(),
        code: code.into(),
        task,
        train: TrainConfig {
            steps: Some(steps),
            batch_size: 16,
            latency_repeats: 2,
            ..TrainConfig::default()
        },
        limits: Limits::default(),
    }
}

const SEQUENCE_MODEL: &str = "def model(tokens):\n    h = embedding(tokens, VOCAB, 16)\n    h = h + causal_conv(h)\n    return linear(h, VOCAB)\n\ndef causal_conv(h):\n    t = permute(h, [0, 2, 1])\n    t = conv1d(pad(t, [2, 0]), 16, 3)\n    return permute(t, [0, 2, 1])\n";

const IMAGE_MODEL: &str =
    "def model(x):\n    return linear(relu(linear(flatten(x), 32)), NUM_CLASSES)\n";

#[test]
fn charlm_reports_bits_per_character_on_generated_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "the cat sat on the mat. ".repeat(400);
    let file = dir.path().join("text.txt");
    std::fs::write(&file, &text).expect("write");
    let task = TaskConfig {
        name: "charlm".into(),
        data: Some(file),
        seq_len: Some(32),
        validation_size: Some(16),
        ..TaskConfig::default()
    };
    let r = run_job(&job(SEQUENCE_MODEL, task.clone(), 150), &mut |_| {})
        .expect("the machine can evaluate");
    assert_eq!(r.status, Status::Ok, "{r:?}");
    let bpc = r.metrics["val_bpc"];
    assert!((bpc - r.metrics["val_loss"] / std::f64::consts::LN_2).abs() < 1e-9);
    // A repeated sentence is easy: far below the 7 bits of a uniform guess over 128 characters.
    assert!(bpc < 3.0, "bpc {bpc}");
    // The reference: minus the unigram model's bits (add-one smoothed) up to 0. Its 12
    // characters' frequencies put it near 3.2 bits; the model, which sees context, is below.
    let r = reference_scores(&task).expect("the text is there");
    assert_eq!(r.ceiling, 0.0);
    assert!((-3.5..-3.0).contains(&r.chance), "{r:?}");
    assert!(
        -bpc > r.chance,
        "bpc {bpc} against the unigram's {}",
        -r.chance
    );
}

/// Writes a digits CSV in scikit-learn's layout: 64 values 0–16 and a label per line. Class k
/// lights up row k % 8 of the image, so the classes are learnable.
fn write_digits(dir: &Path, n: usize) {
    let mut csv = String::new();
    for i in 0..n {
        let label = i % 10;
        let pixels: Vec<String> = (0..64)
            .map(|p| {
                if p / 8 == label % 8 && (label < 8 || p % 2 == 0) {
                    "16"
                } else {
                    "0"
                }
                .to_string()
            })
            .collect();
        csv.push_str(&format!("{},{label}\n", pixels.join(",")));
    }
    std::fs::write(dir.join("digits.csv"), csv).expect("write");
}

#[test]
fn digits_trains_from_a_csv_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_digits(dir.path(), 300);
    let task = TaskConfig {
        name: "digits".into(),
        data: Some(dir.path().to_path_buf()),
        ..TaskConfig::default()
    };
    let r = run_job(&job(IMAGE_MODEL, task, 120), &mut |_| {}).expect("the machine can evaluate");
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert!(r.metrics["val_accuracy"] > 0.9, "{:?}", r.metrics);
}

fn idx_images(n: usize, side: usize, f: impl Fn(usize, usize) -> u8) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [0x0803u32, n as u32, side as u32, side as u32] {
        v.extend(x.to_be_bytes());
    }
    for i in 0..n {
        for p in 0..side * side {
            v.push(f(i, p));
        }
    }
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [0x0801u32, labels.len() as u32] {
        v.extend(x.to_be_bytes());
    }
    v.extend(labels);
    v
}

#[test]
fn fashion_reads_idx_files_and_uses_the_test_split_for_validation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pixel = |i: usize, p: usize| if p / 28 == (i % 10) * 2 { 255 } else { 0 };
    let labels: Vec<u8> = (0..200).map(|i| (i % 10) as u8).collect();
    for (prefix, n) in [("train", 200), ("t10k", 50)] {
        std::fs::write(
            dir.path().join(format!("{prefix}-images-idx3-ubyte")),
            idx_images(n, 28, pixel),
        )
        .expect("write");
        std::fs::write(
            dir.path().join(format!("{prefix}-labels-idx1-ubyte")),
            idx_labels(&labels[..n]),
        )
        .expect("write");
    }
    let task = TaskConfig {
        name: "fashion".into(),
        data: Some(dir.path().to_path_buf()),
        ..TaskConfig::default()
    };
    let loaded = Task::load(&task, 0).expect("loads");
    assert_eq!(loaded.validation_size(), 50);
    let r = run_job(&job(IMAGE_MODEL, task, 60), &mut |_| {}).expect("the machine can evaluate");
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert!(r.metrics["val_accuracy"] > 0.9, "{:?}", r.metrics);
}

fn write_npy<T: npyz::AutoSerialize + Copy>(path: &Path, shape: &[u64], data: &[T]) {
    let mut buf = Vec::new();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut buf)
        .begin_nd()
        .expect("npy writer");
    w.extend(data.iter().copied()).expect("write");
    w.finish().expect("finish");
    std::fs::write(path, buf).expect("write");
}

#[test]
fn custom_classification_from_npy_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 2-D points; the class is which side of the line x0 + x1 = 1 they fall.
    let n = 400;
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for i in 0..n {
        let a = ((i * 37) % 100) as f32 / 100.0;
        let b = ((i * 53) % 100) as f32 / 100.0;
        xs.extend([a, b]);
        ys.push(i64::from(a + b > 1.0));
    }
    write_npy(&dir.path().join("x.npy"), &[n as u64, 2], &xs);
    write_npy(&dir.path().join("y.npy"), &[n as u64], &ys);
    let toml = dir.path().join("task.toml");
    std::fs::write(
        &toml,
        "name = \"halfplane\"\ninput = \"x.npy\"\ntarget = \"y.npy\"\nloss = \"cross_entropy\"\n",
    )
    .expect("write");
    let task = TaskConfig {
        name: "custom".into(),
        data: Some(toml),
        ..TaskConfig::default()
    };
    let loaded = Task::load(&task, 0).expect("loads");
    assert_eq!(loaded.shape.output.to_string(), "[B, 2]");
    let code = "def model(x):\n    return linear(relu(linear(x, 32)), NUM_CLASSES)\n";
    let r = run_job(&job(code, task, 300), &mut |_| {}).expect("the machine can evaluate");
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert!(r.metrics["val_accuracy"] > 0.85, "{:?}", r.metrics);
}

#[test]
fn custom_regression_from_safetensors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 256usize;
    let xs: Vec<f32> = (0..n * 3)
        .map(|i| ((i * 7919) % 101) as f32 / 101.0)
        .collect();
    let ys: Vec<f32> = xs
        .chunks(3)
        .map(|c| 2.0 * c[0] - c[1] + 0.5 * c[2])
        .collect();
    let bytes = |v: &[f32]| v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>();
    let (xb, yb) = (bytes(&xs), bytes(&ys));
    let tensors = vec![
        (
            "x",
            TensorView::new(Dtype::F32, vec![n, 3], &xb).expect("view"),
        ),
        (
            "y",
            TensorView::new(Dtype::F32, vec![n, 1], &yb).expect("view"),
        ),
    ];
    let data = safetensors::tensor::serialize(tensors, None).expect("serialize");
    std::fs::write(dir.path().join("data.safetensors"), data).expect("write");
    let toml = dir.path().join("task.toml");
    std::fs::write(
        &toml,
        "input = \"data.safetensors:x\"\ntarget = \"data.safetensors:y\"\nloss = \"mse\"\n",
    )
    .expect("write");
    let task = TaskConfig {
        name: "custom".into(),
        data: Some(toml),
        ..TaskConfig::default()
    };
    let mut j = job("def model(x):\n    return linear(x, 1)\n", task, 300);
    j.train.learning_rate = 3e-2;
    let r = run_job(&j, &mut |_| {}).expect("the machine can evaluate");
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert!(r.metrics["val_mse"] < 0.01, "{:?}", r.metrics);
    assert!(!r.metrics.contains_key("val_accuracy"));
}

#[test]
fn broken_custom_task_files_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_npy(&dir.path().join("x.npy"), &[4, 2], &[0.0; 8]);
    write_npy(&dir.path().join("y.npy"), &[3], &[0.0; 3]);
    let toml = dir.path().join("task.toml");
    let load = |text: &str| {
        std::fs::write(&toml, text).expect("write");
        let task = TaskConfig {
            name: "custom".into(),
            data: Some(toml.clone()),
            ..TaskConfig::default()
        };
        Task::load(&task, 0).map(|_| ()).unwrap_err().to_string()
    };
    let e = load("input = \"x.npy\"\ntarget = \"y.npy\"\nloss = \"mse\"\n");
    assert!(e.contains("4 samples"), "{e}");
    let e = load("input = \"x.npy\"\ntarget = \"x.npy\"\nloss = \"cross_entropy\"\n");
    assert!(e.contains("integer class targets"), "{e}");
    let e = load("input = \"x.npy\"\ntarget = \"y.npy\"\nloss = \"hinge\"\n");
    assert!(e.contains("hinge"), "{e}");
    let e = load("input = \"missing.npy\"\ntarget = \"y.npy\"\nloss = \"mse\"\n");
    assert!(e.contains("missing.npy"), "{e}");
    std::fs::write(dir.path().join("junk.npy"), b"not an npy file").expect("write");
    let e = load("input = \"junk.npy\"\ntarget = \"y.npy\"\nloss = \"mse\"\n");
    assert!(e.contains("junk.npy"), "{e}");
}

#[test]
fn task_options_that_do_not_apply_are_refused() {
    let mut t = TaskConfig::named("mqar");
    t.data = Some("x".into());
    assert!(Task::load(&t, 0).unwrap_err().to_string().contains("data"));
    let mut t = TaskConfig::named("digits");
    t.kv_pairs = Some(3);
    assert!(Task::load(&t, 0)
        .unwrap_err()
        .to_string()
        .contains("kv_pairs"));
    assert!(Task::load(&TaskConfig::named("imagenet"), 0)
        .unwrap_err()
        .to_string()
        .contains("unknown task"));
}

#[test]
fn the_same_seed_gives_the_same_metrics() {
    let task = TaskConfig {
        name: "mqar".into(),
        seq_len: Some(16),
        vocab: Some(16),
        kv_pairs: Some(2),
        validation_size: Some(32),
        ..TaskConfig::default()
    };
    let a = run_job(&job(SEQUENCE_MODEL, task.clone(), 25), &mut |_| {})
        .expect("the machine can evaluate");
    let b = run_job(&job(SEQUENCE_MODEL, task.clone(), 25), &mut |_| {})
        .expect("the machine can evaluate");
    assert_eq!(a.status, Status::Ok, "{a:?}");
    assert_eq!(a.metrics, b.metrics);
    assert_eq!(a.curve, b.curve);
    let mut other = job(SEQUENCE_MODEL, task, 25);
    other.train.seed = 1;
    let c = run_job(&other, &mut |_| {}).expect("the machine can evaluate");
    assert_ne!(a.curve, c.curve, "a different seed trains differently");
}

#[test]
fn missing_data_is_a_failure_of_the_machine_not_an_outcome_of_the_candidate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gone = dir.path().join("gone.txt");
    let task = TaskConfig {
        name: "charlm".into(),
        data: Some(gone.clone()),
        ..TaskConfig::default()
    };
    let e = run_job(&job(SEQUENCE_MODEL, task.clone(), 5), &mut |_| {}).unwrap_err();
    assert!(
        matches!(e, MachineError::Task(TaskError::Missing(_))),
        "{e:?}"
    );
    assert!(e.to_string().contains("gone.txt"), "{e}");
    assert!(e.fix().contains("run the same command again"));
    // A file that goes away between jobs is the same failure.
    std::fs::write(&gone, "abcdefghij".repeat(50)).expect("write");
    assert!(Task::load(&task, 0).is_ok());
    std::fs::remove_file(&gone).expect("remove");
    assert!(matches!(Task::load(&task, 0), Err(TaskError::Missing(_))));
}

/// The tasks generated in code.
const GENERATED: [&str; 5] = [
    "mqar",
    "fuzzy_recall",
    "noisy_recall",
    "selective_copy",
    "memorization",
];

#[test]
fn generated_tasks_load_with_their_built_in_shapes_and_ask_only_some_positions() {
    for name in GENERATED {
        assert!(
            TaskKind::from_name(name).is_some_and(TaskKind::is_generated),
            "{name}"
        );
        let task = Task::load(&TaskConfig::named(name), 0).expect("the defaults are valid");
        assert_eq!(
            Some(&task.shape),
            TaskShape::by_name(name).as_ref(),
            "{name}"
        );
        assert_eq!(task.validation_size(), 256);
        let vocab = task.vocab.expect("token input") as i64;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let batch = task.train_batch(&mut rng, 8);
        assert!(batch.ints.iter().all(|t| (0..vocab).contains(t)), "{name}");
        let asked = batch.int_targets.iter().filter(|&&t| t != -1).count();
        assert!(asked > 0, "{name} asks something");
        assert!(
            batch
                .int_targets
                .iter()
                .all(|&t| t == -1 || (0..vocab).contains(&t)),
            "{name}"
        );
        assert!(
            asked <= batch.int_targets.len() / 2,
            "{name} asks only some positions"
        );
        let v = task.validation_batches(100);
        assert_eq!(v.iter().map(|b| b.size).collect::<Vec<_>>(), [100, 100, 56]);
        assert_eq!(
            v,
            Task::load(&TaskConfig::named(name), 0)
                .unwrap()
                .validation_batches(100)
        );
        assert_ne!(
            v,
            Task::load(&TaskConfig::named(name), 1)
                .unwrap()
                .validation_batches(100)
        );
    }
}

#[test]
fn the_library_sequence_seeds_trace_on_every_generated_task() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds");
    let seeds = [
        "transformer.star",
        "shift_attention.star",
        "mlp_only.star",
        "long_conv.star",
    ];
    for name in GENERATED {
        let shape = Task::load(&TaskConfig::named(name), 0).unwrap().shape;
        for file in seeds {
            let code = std::fs::read_to_string(dir.join(file)).expect("seed file");
            let out = autoarch_sandbox::trace(&code, &TraceConfig::new(shape.clone()));
            let traced = out
                .traced()
                .unwrap_or_else(|| panic!("{file} on {name}: {:?}", out.diagnostics()));
            assert_eq!(traced.stats.output_shape, shape.output, "{file} on {name}");
        }
    }
}

#[test]
fn mqar_takes_harder_settings_and_says_which_option_is_impossible() {
    let hard = TaskConfig {
        seq_len: Some(64),
        vocab: Some(64),
        kv_pairs: Some(8),
        ..TaskConfig::named("mqar")
    };
    let task = Task::load(&hard, 0).expect("64 positions hold 8 pairs");
    assert_eq!(task.shape.output.to_string(), "[B, 64, 64]");
    let error = |c: TaskConfig| Task::load(&c, 0).map(|_| ()).unwrap_err().to_string();
    let errors = [
        error(TaskConfig {
            seq_len: Some(24),
            ..hard.clone()
        }),
        error(TaskConfig {
            kv_pairs: Some(40),
            ..hard.clone()
        }),
        error(TaskConfig {
            vocab: Some(2),
            ..hard.clone()
        }),
    ];
    expect_test::expect![[r#"
        mqar: seq_len 24 cannot hold 8 key-value pairs and their queries (needs at least 32); raise seq_len or lower kv_pairs
        mqar: kv_pairs must be between 1 and 31 for a vocab of 64 (its distinct keys), not 40
        mqar: vocab 2 is too small; keys and values need at least 4 tokens"#]]
    .assert_eq(&errors.join("\n"));
}

#[test]
fn each_task_refuses_the_options_it_does_not_use_by_name() {
    let error = |name: &str, set: fn(&mut TaskConfig)| {
        let mut c = TaskConfig::named(name);
        set(&mut c);
        Task::load(&c, 0).map(|_| ()).unwrap_err().to_string()
    };
    let errors = [
        error("mqar", |c| c.motif = Some(2)),
        error("fuzzy_recall", |c| c.noise = Some(0.1)),
        error("noisy_recall", |c| c.copy = Some(4)),
        error("selective_copy", |c| c.kv_pairs = Some(4)),
        error("memorization", |c| c.data = Some("x".into())),
        error("charlm", |c| c.map_seed = Some(1)),
        error("digits", |c| c.vocab = Some(8)),
    ];
    expect_test::expect![[r#"
        task mqar: option motif does not apply (it takes seq_len, vocab, kv_pairs, validation_size)
        task fuzzy_recall: option noise does not apply (it takes seq_len, vocab, kv_pairs, motif, validation_size)
        task noisy_recall: option copy does not apply (it takes seq_len, vocab, kv_pairs, noise, validation_size)
        task selective_copy: option kv_pairs does not apply (it takes seq_len, vocab, copy, validation_size)
        task memorization: option data does not apply (it takes seq_len, vocab, motif, map_seed, validation_size)
        task charlm: option map_seed does not apply (it takes data, seq_len, validation_size)
        task digits: option vocab does not apply (it takes data, validation_size)"#]]
    .assert_eq(&errors.join("\n"));
}

#[test]
fn task_options_read_from_toml_and_unknown_ones_are_refused() {
    let c: TaskConfig =
        toml::from_str("name = \"noisy_recall\"\nnoise = 0.4\nkv_pairs = 3\n").expect("parses");
    assert_eq!((c.noise, c.kv_pairs), (Some(0.4), Some(3)));
    let e = toml::from_str::<TaskConfig>("name = \"selective_copy\"\ncopies = 4\n").unwrap_err();
    assert!(e.to_string().contains("unknown field `copies`"), "{e}");
}

#[test]
fn chance_and_ceiling_come_with_each_accuracy_task() {
    let reference = |name: &str, set: fn(&mut TaskConfig)| {
        let mut c = TaskConfig::named(name);
        set(&mut c);
        reference_scores(&c)
    };
    let r = |chance: f64| {
        Some(Reference {
            chance,
            ceiling: 1.0,
        })
    };
    assert_eq!(reference("mqar", |c| c.vocab = Some(64)), r(2.0 / 64.0));
    assert_eq!(reference("mqar", |_| {}), r(2.0 / 256.0));
    assert_eq!(reference("fuzzy_recall", |_| {}), r(1.0 / 16.0));
    assert_eq!(
        reference("noisy_recall", |c| c.vocab = Some(32)),
        r(1.0 / 8.0)
    );
    assert_eq!(reference("selective_copy", |_| {}), r(1.0 / 14.0));
    assert_eq!(
        reference("memorization", |c| c.vocab = Some(64)),
        r(1.0 / 32.0),
        "one over the values, however many keys"
    );
    assert_eq!(reference("fashion", |_| {}), r(0.1));
    assert_eq!(
        reference("charlm", |c| c.data = Some("/nonexistent/text.txt".into())),
        None,
        "no text, no unigram model"
    );
    assert_eq!(
        reference("mqar", |c| c.kv_pairs = Some(500)),
        None,
        "an impossible setting"
    );
}

#[test]
fn memorization_is_learnt_into_the_weights() {
    // A token mixer to see the key's first token, and an MLP to combine the two.
    let memory_model = SEQUENCE_MODEL.replace(
        "    return linear(h, VOCAB)",
        "    h = h + linear(gelu(linear(h, 64)), 16)\n    return linear(h, VOCAB)",
    );
    let task = TaskConfig {
        seq_len: Some(16),
        vocab: Some(16),
        validation_size: Some(32),
        ..TaskConfig::named("memorization")
    };
    let r = run_job(&job(&memory_model, task, 300), &mut |_| {}).expect("the machine can evaluate");
    assert_eq!(r.status, Status::Ok, "{r:?}");
    eprintln!("memorization: {:?} in {:.2} s", r.metrics, r.wall_seconds);
    // 64 facts (pairs of 8 key tokens) over 8 values: guessing scores 1/8, and the last token
    // alone (without the conv's look back) about 1/4.
    assert!(r.metrics["val_accuracy"] > 0.5, "{:?}", r.metrics);
}
