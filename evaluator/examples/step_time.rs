//! Times training steps of one architecture on synthetic data of a built-in task's shapes, for
//! `bench/compare.sh` (which runs the same model in PyTorch).
//!
//! ```text
//! cargo run --release -p autoarch-evaluator --example step_time -- FILE TASK BATCH STEPS
//! ```
//!
//! Prints one JSON object: `{"task", "batch", "params", "times_ms": [...]}` (after 3 warm-up
//! steps). `AUTOARCH_DEVICE=gpu` (with `--features gpu`) times the GPU backend.

use std::time::Instant;

use autoarch_evaluator::train::{training_device, TrainConfig, Trainer};
use autoarch_evaluator::Task;
use autoarch_sandbox::{trace, TraceConfig, TraceOutcome};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, task_name, batch, steps] = args.as_slice() else {
        return Err("usage: step_time FILE TASK BATCH STEPS".into());
    };
    let batch: usize = batch.parse().map_err(|e| format!("BATCH: {e}"))?;
    let steps: usize = steps.parse().map_err(|e| format!("STEPS: {e}"))?;
    let code = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let kind = autoarch_sandbox::TaskKind::from_name(task_name)
        .ok_or_else(|| format!("unknown task {task_name:?}"))?;
    let task = Task::synthetic(kind, batch * 4, 0).map_err(|e| e.to_string())?;
    let traced = match trace(&code, &TraceConfig::new(task.shape.clone())) {
        TraceOutcome::Ok(t) => t,
        TraceOutcome::Invalid { diagnostics } => {
            return Err(autoarch_sandbox::render_all(&diagnostics, file))
        }
    };
    let device = training_device().map_err(|e| e.to_string())?;
    let config = TrainConfig {
        batch_size: batch,
        ..TrainConfig::default()
    };
    let mut trainer =
        Trainer::new(&traced.graph, task.vocab, &config, &device).map_err(|e| e.to_string())?;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut times = Vec::with_capacity(steps);
    for i in 0..steps + 3 {
        let b = task.train_batch(&mut rng, batch);
        let start = Instant::now();
        let loss = trainer.step(&task, &b, 1e-3, &device);
        device.sync().map_err(|e| format!("{e:?}"))?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        if !loss.is_finite() {
            return Err(format!("loss {loss} at step {i}"));
        }
        if i >= 3 {
            times.push(ms);
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "task": task_name,
            "batch": batch,
            "params": traced.stats.params,
            "times_ms": times,
        })
    );
    Ok(())
}
