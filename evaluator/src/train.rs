//! Training and scoring one candidate: AdamW with linear warm-up and cosine decay, global-norm
//! gradient clipping, a budget in steps or seconds, early stop on a non-finite or diverging loss,
//! then validation metrics, inference latency, throughput and peak memory.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use autoarch_sandbox::{Metric, Traced};
use burn::module::{Param, ParamId};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{activation, Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DeviceError, TrainError};
use crate::model::{self, compile, input_value, BufferUpdates, GraphModel, Mode, Value, RANK, T};
use crate::task::{counted, Batch, Loss, Task};

/// How a candidate is trained. Every field has a default, so a job may give only what it changes.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Optimizer steps; with `seconds` too, whichever ends first.
    pub steps: Option<u64>,
    /// Training wall-clock budget (the schedule follows elapsed time then).
    pub seconds: Option<f64>,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Share of the budget spent warming the learning rate up from 0.
    pub warmup_fraction: f64,
    /// Decoupled weight decay on matrices and kernels (not on biases and norm scales).
    pub weight_decay: f64,
    /// Global gradient-norm clipping threshold (0 turns it off).
    pub clip_norm: f64,
    /// Parameter initialisation, data order and dropout all follow this seed.
    pub seed: u64,
    /// Validation batch size.
    pub eval_batch_size: usize,
    /// The run counts as diverged when the smoothed loss exceeds this multiple of its first value.
    pub divergence_factor: f64,
    /// Repeats for each latency measurement (median taken).
    pub latency_repeats: usize,
}

impl Default for TrainConfig {
    fn default() -> TrainConfig {
        TrainConfig {
            steps: None,
            seconds: None,
            batch_size: 32,
            learning_rate: 3e-3,
            warmup_fraction: 0.05,
            weight_decay: 0.1,
            clip_norm: 1.0,
            seed: 0,
            eval_batch_size: 64,
            divergence_factor: 4.0,
            latency_repeats: 10,
        }
    }
}

/// Steps used when a job names no budget at all.
pub const DEFAULT_STEPS: u64 = 300;

impl TrainConfig {
    pub fn validate(&self) -> Result<(), String> {
        let bad = |what: &str| Err(what.to_string());
        if self.batch_size == 0 || self.eval_batch_size == 0 {
            return bad("batch sizes must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning_rate must be a positive number");
        }
        if !(0.0..1.0).contains(&self.warmup_fraction) {
            return bad("warmup_fraction must be in [0, 1)");
        }
        if self.steps == Some(0) {
            return bad("steps must be at least 1");
        }
        if let Some(s) = self.seconds {
            if !(s.is_finite() && s > 0.0) {
                return bad("seconds must be a positive number");
            }
        }
        if self.weight_decay < 0.0 || self.clip_norm < 0.0 || self.divergence_factor <= 1.0 {
            return bad("weight_decay and clip_norm must be ≥ 0, divergence_factor > 1");
        }
        Ok(())
    }

    fn step_budget(&self) -> Option<u64> {
        match (self.steps, self.seconds) {
            (None, None) => Some(DEFAULT_STEPS),
            (steps, _) => steps,
        }
    }

    /// Learning rate at `progress` ∈ [0, 1] of the budget.
    pub fn learning_rate_at(&self, progress: f64) -> f64 {
        let w = self.warmup_fraction;
        if progress < w {
            self.learning_rate * progress / w
        } else {
            let t = ((progress - w) / (1.0 - w)).clamp(0.0, 1.0);
            self.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
        }
    }
}

/// Inference latency: medians over repeats, in milliseconds.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Latency {
    pub batch_1: f64,
    pub training_batch: f64,
    pub training_batch_size: usize,
}

/// What a finished (or stopped) training run measured.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Trained {
    pub metrics: BTreeMap<String, f64>,
    pub steps: u64,
    pub train_seconds: f64,
    /// Training samples per second.
    pub throughput: f64,
    pub latency_ms: Option<Latency>,
    /// (step, loss) pairs, downsampled to at most [`CURVE_POINTS`].
    pub curve: Vec<[f64; 2]>,
    /// Set when the run stopped because the loss went non-finite or diverged.
    pub diverged: Option<String>,
}

/// Points kept of the training-loss curve.
pub const CURVE_POINTS: usize = 64;

/// A progress report, sent about once a second while training.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Progress {
    pub step: u64,
    pub loss: f64,
    pub elapsed: f64,
    /// Share of the budget used, 0–1.
    pub fraction: f64,
}

/// The device training runs on: the flex CPU backend with autodiff, or a GPU with the `gpu`
/// feature and `AUTOARCH_DEVICE=gpu`.
pub fn training_device() -> Result<Device, DeviceError> {
    match std::env::var("AUTOARCH_DEVICE").as_deref() {
        Ok("gpu") => gpu_device(),
        Ok("cpu") | Err(_) => Ok(Device::flex().autodiff()),
        Ok(other) => Err(DeviceError::Unknown(other.to_string())),
    }
}

/// The GPU, once a probe has run on it: without an adapter burn panics at the first tensor
/// op, which would make every candidate "crash"; the probe makes it a failure of the machine.
#[cfg(feature = "gpu")]
fn gpu_device() -> Result<Device, DeviceError> {
    let device = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice).autodiff();
    let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let t = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 2.0], [2]), &device);
        scalar(t.sum())
    }));
    match probe {
        Ok(v) if v == 3.0 => Ok(device),
        Ok(v) => Err(DeviceError::Unavailable(format!(
            "a probe sum of 1 + 2 on the GPU gave {v}"
        ))),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the GPU backend panicked".into());
            Err(DeviceError::Unavailable(why))
        }
    }
}

#[cfg(not(feature = "gpu"))]
fn gpu_device() -> Result<Device, DeviceError> {
    Err(DeviceError::NotBuilt)
}

fn batch_input(task: &Task, batch: &Batch, device: &Device) -> Value {
    let mut dims = model::concrete(&task.shape.input, batch.size);
    if dims.is_empty() {
        dims.push(1);
    }
    input_value(
        task.shape.input_dtype,
        &dims,
        &batch.ints,
        &batch.floats,
        device,
    )
}

/// The loss of a batch (mean over counted targets) and the count of counted targets.
pub fn loss(task: &Task, out: T, batch: &Batch) -> (Tensor<1>, usize) {
    let device = out.device();
    match task.loss {
        Loss::CrossEntropy { classes } => {
            let n = batch.int_targets.len();
            let logits: Tensor<2> = out.reshape([n, classes]);
            let idx: Vec<i64> = batch.int_targets.iter().map(|&t| t.max(0)).collect();
            let mask: Vec<f32> = batch
                .int_targets
                .iter()
                .map(|&t| if counted(t) { 1.0 } else { 0.0 })
                .collect();
            let count = mask.iter().filter(|&&m| m > 0.0).count();
            let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [n, 1]), &device);
            let mask = Tensor::<2>::from_data(TensorData::new(mask, [n, 1]), &device);
            let picked = activation::log_softmax(logits, 1).gather(1, idx);
            let total = (picked * mask).sum().neg();
            (total / count.max(1) as f64, count)
        }
        Loss::Mse => {
            let n = batch.float_targets.len();
            let pred: Tensor<1> = out.reshape([n]);
            let target =
                Tensor::<1>::from_data(TensorData::new(batch.float_targets.clone(), [n]), &device);
            ((pred - target).square().mean(), n)
        }
    }
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .map_or(f64::NAN, f64::from)
}

/// Scales all gradients so that their global L2 norm is at most `max_norm`.
fn clip_global_norm(grads: &mut [(&[Param<T>], &mut GradientsParams)], max_norm: f64) {
    if max_norm <= 0.0 {
        return;
    }
    // One read-back for the whole norm: sum the squares on the device first.
    let mut total: Option<Tensor<1>> = None;
    for (params, g) in grads.iter() {
        for p in params.iter() {
            if let Some(t) = g.get::<RANK>(p.id) {
                let sq = t.square().sum();
                total = Some(match total {
                    Some(acc) => acc + sq,
                    None => sq,
                });
            }
        }
    }
    let Some(total) = total else {
        return;
    };
    let norm = scalar(total).sqrt();
    if !norm.is_finite() || norm <= max_norm {
        return;
    }
    let factor = max_norm / (norm + 1e-6);
    for (params, g) in grads.iter_mut() {
        for p in params.iter() {
            let id: ParamId = p.id;
            if let Some(t) = g.remove::<RANK>(id) {
                g.register(id, t * factor);
            }
        }
    }
}

fn downsample(curve: &[(u64, f64)]) -> Vec<[f64; 2]> {
    if curve.len() <= CURVE_POINTS {
        return curve.iter().map(|&(s, l)| [s as f64, l]).collect();
    }
    let per = curve.len().div_ceil(CURVE_POINTS);
    curve
        .chunks(per)
        .map(|c| {
            let step = c.last().expect("non-empty chunk").0 as f64;
            let loss = c.iter().map(|&(_, l)| l).sum::<f64>() / c.len() as f64;
            [step, loss]
        })
        .collect()
}

/// Evaluates on the validation split: the loss, the accuracy for classification, the bits per
/// character for character LMs, the squared error for regression, and the score campaigns rank
/// by, higher is better: the accuracy, minus the bits per character, or minus the squared error.
pub fn validate(
    task: &Task,
    model: &GraphModel,
    config: &TrainConfig,
    device: &Device,
) -> BTreeMap<String, f64> {
    let eval = model.valid();
    let inner = device.clone().inner();
    let (mut loss_sum, mut counted_total, mut correct) = (0.0f64, 0usize, 0usize);
    for batch in task.validation_batches(config.eval_batch_size) {
        let input = batch_input(task, &batch, &inner);
        let (out, _) = eval.forward(input, batch.size, Mode::Eval);
        if let Loss::CrossEntropy { classes } = task.loss {
            let n = batch.int_targets.len();
            let logits: Tensor<2> = out.clone().reshape([n, classes]);
            let argmax = logits.argmax(1).into_data().convert::<i64>();
            let predicted = argmax.try_to_vec::<i64>().unwrap_or_default();
            correct += predicted
                .iter()
                .zip(&batch.int_targets)
                .filter(|(p, t)| counted(**t) && *p == *t)
                .count();
        }
        let (l, count) = loss(task, out, &batch);
        loss_sum += scalar(l) * count as f64;
        counted_total += count;
    }
    let val_loss = loss_sum / counted_total.max(1) as f64;
    let mut metrics = vec![(Metric::ValLoss, val_loss)];
    match task.loss {
        Loss::CrossEntropy { .. } => {
            let accuracy = correct as f64 / counted_total.max(1) as f64;
            metrics.push((Metric::ValAccuracy, accuracy));
            if task.reports_bpc() {
                let bpc = val_loss / std::f64::consts::LN_2;
                metrics.push((Metric::ValBpc, bpc));
                metrics.push((Metric::Score, -bpc));
            } else {
                metrics.push((Metric::Score, accuracy));
            }
        }
        Loss::Mse => {
            metrics.push((Metric::ValMse, val_loss));
            metrics.push((Metric::Score, -val_loss));
        }
    }
    metrics
        .into_iter()
        .map(|(m, v)| (m.name().to_string(), v))
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Median forward latency at a batch size, in ms (results are read back, so the time includes
/// the whole forward on any backend).
fn latency(task: &Task, model: &GraphModel, size: usize, repeats: usize, device: &Device) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let batch = task.train_batch(&mut rng, size);
    let run = || {
        let input = batch_input(task, &batch, device);
        let start = Instant::now();
        let (out, _) = model.forward(input, size, Mode::Eval);
        let _ = out.into_data();
        start.elapsed().as_secs_f64() * 1e3
    };
    run(); // warm-up
    let budget = Instant::now();
    let mut times = Vec::new();
    for _ in 0..repeats.max(1) {
        times.push(run());
        if budget.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    median(times)
}

/// One model with its optimizers: the unit the training loop and the step benchmark drive.
pub struct Trainer {
    pub model: GraphModel,
    opt_decay: ModuleOptimizer,
    opt_plain: ModuleOptimizer,
    clip_norm: f64,
}

impl Trainer {
    /// Compiles the graph on `device` with parameters drawn from `config.seed`.
    pub fn new(
        graph: &autoarch_sandbox::ArchGraph,
        vocab: Option<u64>,
        config: &TrainConfig,
        device: &Device,
    ) -> Result<Trainer, TrainError> {
        config.validate().map_err(TrainError::Config)?;
        device.seed(config.seed);
        Ok(Trainer {
            model: compile(graph, device, config.seed, vocab)?,
            opt_decay: AdamWConfig::new()
                .with_weight_decay(config.weight_decay as f32)
                .init(),
            opt_plain: AdamWConfig::new().with_weight_decay(0.0).init(),
            clip_norm: config.clip_norm,
        })
    }

    /// The loss of a batch without updating anything (the forward runs in training mode).
    fn forward_loss(
        &self,
        task: &Task,
        batch: &Batch,
        device: &Device,
    ) -> (Tensor<1>, BufferUpdates) {
        let input = batch_input(task, batch, device);
        let (out, updates) = self.model.forward(input, batch.size, Mode::Train);
        let (l, _) = loss(task, out, batch);
        (l, updates)
    }

    /// One optimizer step at learning rate `lr`. Returns the batch loss before the update; a
    /// non-finite loss leaves the parameters as they were.
    pub fn step(&mut self, task: &Task, batch: &Batch, lr: f64, device: &Device) -> f64 {
        let (l, updates) = self.forward_loss(task, batch, device);
        let value = scalar(l.clone());
        if !value.is_finite() {
            return value;
        }
        let mut grads = l.backward();
        let mut g_decay = GradientsParams::from_module(&mut grads, &self.model.decay);
        let mut g_plain = GradientsParams::from_module(&mut grads, &self.model.no_decay);
        clip_global_norm(
            &mut [
                (&self.model.decay, &mut g_decay),
                (&self.model.no_decay, &mut g_plain),
            ],
            self.clip_norm,
        );
        let decay = std::mem::take(&mut self.model.decay);
        self.model.decay = self.opt_decay.step(lr, decay, g_decay);
        let plain = std::mem::take(&mut self.model.no_decay);
        self.model.no_decay = self.opt_plain.step(lr, plain, g_plain);
        self.model.apply_buffer_updates(updates);
        value
    }
}

/// Trains `traced` on `task` and scores it. `on_progress` is called about once a second.
pub fn train(
    traced: &Traced,
    task: &Task,
    config: &TrainConfig,
    device: &Device,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<Trained, TrainError> {
    let mut trainer = Trainer::new(&traced.graph, task.vocab, config, device)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0xda7a_0000_0000);
    let budget_steps = config.step_budget();
    let start = Instant::now();
    let mut last_report = Instant::now();
    let mut curve: Vec<(u64, f64)> = Vec::new();
    let mut first_loss: Option<f64> = None;
    let mut smoothed: Option<f64> = None;
    let mut diverged = None;
    let mut step = 0u64;
    loop {
        let by_steps = budget_steps.map_or(0.0, |n| step as f64 / n as f64);
        let by_time = config
            .seconds
            .map_or(0.0, |s| start.elapsed().as_secs_f64() / s);
        let fraction = by_steps.max(by_time);
        if fraction >= 1.0 {
            break;
        }
        let batch = task.train_batch(&mut rng, config.batch_size);
        let value = trainer.step(task, &batch, config.learning_rate_at(fraction), device);
        step += 1;
        curve.push((step, value));
        if !value.is_finite() {
            diverged = Some(format!("the training loss became {value} at step {step}"));
            break;
        }
        let first = *first_loss.get_or_insert(value);
        let ema = smoothed.map_or(value, |s| 0.9 * s + 0.1 * value);
        smoothed = Some(ema);
        if step > 10 && ema > config.divergence_factor * first.max(1e-3) {
            diverged = Some(format!(
                "the smoothed training loss rose to {ema:.3} at step {step}, over {}× its first value {first:.3}",
                config.divergence_factor
            ));
            break;
        }
        if step == 1 || last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            on_progress(Progress {
                step,
                loss: value,
                elapsed: start.elapsed().as_secs_f64(),
                fraction,
            });
        }
    }
    let train_seconds = start.elapsed().as_secs_f64();
    let throughput = (step as f64 * config.batch_size as f64) / train_seconds.max(1e-9);
    if let Some(reason) = diverged {
        return Ok(Trained {
            metrics: BTreeMap::new(),
            steps: step,
            train_seconds,
            throughput,
            latency_ms: None,
            curve: downsample(&curve),
            diverged: Some(reason),
        });
    }
    let model = &trainer.model;
    let metrics = validate(task, model, config, device);
    let diverged = metrics
        .get("val_loss")
        .filter(|v| !v.is_finite())
        .map(|v| format!("the validation loss is {v}"));
    let eval = model.valid();
    let inner = device.clone().inner();
    let latency_ms = diverged.is_none().then(|| Latency {
        batch_1: latency(task, &eval, 1, config.latency_repeats, &inner),
        training_batch: latency(
            task,
            &eval,
            config.batch_size,
            config.latency_repeats,
            &inner,
        ),
        training_batch_size: config.batch_size,
    });
    Ok(Trained {
        metrics,
        steps: step,
        train_seconds,
        throughput,
        latency_ms,
        curve: downsample(&curve),
        diverged,
    })
}
