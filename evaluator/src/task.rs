//! Tasks: what a candidate is trained and scored on. Each task has an input/output spec (a
//! [`TaskShape`], which tracing binds), a loss, metrics, and a train/validation split, all
//! deterministic from a seed.
//!
//! Generated in code (no files; fresh examples every training step, a validation set of 256
//! fixed by the seed; `[B, seq_len]` token ids in, `[B, seq_len, vocab]` logits out; loss and
//! accuracy only at the positions that ask something; the score is that accuracy):
//!
//! - `mqar`: multi-query associative recall (Zoology; MAD's in-context recall). Options
//!   `seq_len` 64, `vocab` 256, `kv_pairs` 8 (the defaults). MAD's harder settings are more
//!   `kv_pairs` and a longer `seq_len`. Chance 2/vocab.
//! - `fuzzy_recall`: recall of values by keys that are motifs of 1 to `motif` tokens (MAD). Options
//!   `seq_len` 64, `vocab` 32, `kv_pairs` 4, `motif` 3. Chance 2/vocab.
//! - `noisy_recall`: `mqar` with noise tokens from a separate half of the vocabulary mixed into the
//!   key-value section (MAD). Options `seq_len` 32, `vocab` 64, `kv_pairs` 4, `noise` 0.2 (the
//!   share of noise in that section). Chance 4/vocab.
//! - `selective_copy`: copy `copy` content tokens scattered among blanks, in order (MAD). Options
//!   `seq_len` 32, `vocab` 16, `copy` 8. Chance 1/(vocab − 2).
//! - `memorization`: a fixed map from keys of `motif` tokens to values, learnt into the weights
//!   (MAD). Options `seq_len` 32, `vocab` 32, `motif` 2, `map_seed` 0 (the map's seed; the run's
//!   seed only draws the keys). Chance 2/vocab.
//!
//! [`crate::mad`] describes the MAD tasks, their citation and how they are scaled down from MAD's
//! settings. Every generated task's ceiling is an accuracy of 1 ([`reference_scores`]).
//!
//! Read from files:
//!
//! - `charlm`: next-character prediction on a text file (`data`, `seq_len`);
//! - `digits` / `fashion`: images from the scikit-learn CSV or Fashion-MNIST IDX files (`data`);
//! - `custom`: `.npy` or safetensors tensors described by a task TOML (`data`).
//!
//! Every task takes `validation_size`; an option a task does not use is refused by name.

use std::path::{Path, PathBuf};

use autoarch_sandbox::{DType, Shape, TaskKind, TaskShape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::custom::Custom;
use crate::data::{self, CharCorpus, Images, Mqar, TokenBatch, TokenTask, CHAR_VOCAB, IGNORE};
use crate::error::TaskError;
use crate::mad::{FuzzyRecall, Memorization, NoisyRecall, SelectiveCopy};

/// `charlm`'s window when the config gives none.
const CHARLM_SEQ_LEN: usize = 128;
/// Validation examples (or windows) when the config gives none.
const VALIDATION_SIZE: usize = 256;

/// The task part of a job or a campaign config. Options a task does not use are refused.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    pub name: String,
    /// A file or directory the task reads (charlm, digits, fashion) or the task TOML (custom).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_len: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_pairs: Option<usize>,
    /// The share of noise tokens in the key-value section (noisy_recall).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<f64>,
    /// The number of tokens to copy (selective_copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<usize>,
    /// The longest key or value motif (fuzzy_recall), or the length of a key (memorization), in
    /// tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub motif: Option<usize>,
    /// The seed of the fixed key→value map (memorization); the run's seed does not change it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_seed: Option<u64>,
    /// Validation examples (or windows) to score on; each task has a default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_size: Option<usize>,
}

impl TaskConfig {
    pub fn named(name: &str) -> TaskConfig {
        TaskConfig {
            name: name.to_string(),
            ..TaskConfig::default()
        }
    }

    /// The task its name calls for; an unknown name is refused with the list of tasks.
    pub fn kind(&self) -> Result<TaskKind, TaskError> {
        TaskKind::from_name(&self.name).ok_or_else(|| {
            TaskError::Options(format!(
                "unknown task {:?}; tasks are {}",
                self.name,
                TaskKind::listed()
            ))
        })
    }
}

/// A task option that only some tasks use (every task takes `validation_size`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TaskOption {
    Data,
    SeqLen,
    Vocab,
    KvPairs,
    Noise,
    Copy,
    Motif,
    MapSeed,
}

impl TaskOption {
    pub const ALL: [TaskOption; 8] = [
        TaskOption::Data,
        TaskOption::SeqLen,
        TaskOption::Vocab,
        TaskOption::KvPairs,
        TaskOption::Noise,
        TaskOption::Copy,
        TaskOption::Motif,
        TaskOption::MapSeed,
    ];

    /// The option's key, as a task config writes it.
    pub fn key(self) -> &'static str {
        match self {
            TaskOption::Data => "data",
            TaskOption::SeqLen => "seq_len",
            TaskOption::Vocab => "vocab",
            TaskOption::KvPairs => "kv_pairs",
            TaskOption::Noise => "noise",
            TaskOption::Copy => "copy",
            TaskOption::Motif => "motif",
            TaskOption::MapSeed => "map_seed",
        }
    }

    /// Whether `config` sets the option.
    pub fn is_set(self, config: &TaskConfig) -> bool {
        match self {
            TaskOption::Data => config.data.is_some(),
            TaskOption::SeqLen => config.seq_len.is_some(),
            TaskOption::Vocab => config.vocab.is_some(),
            TaskOption::KvPairs => config.kv_pairs.is_some(),
            TaskOption::Noise => config.noise.is_some(),
            TaskOption::Copy => config.copy.is_some(),
            TaskOption::Motif => config.motif.is_some(),
            TaskOption::MapSeed => config.map_seed.is_some(),
        }
    }
}

/// Refuses the first option `config` sets that is not among `used`, naming it and the ones the
/// task takes.
fn refuse_unused(config: &TaskConfig, used: &[TaskOption]) -> Result<(), TaskError> {
    let Some(unused) = TaskOption::ALL
        .into_iter()
        .find(|o| o.is_set(config) && !used.contains(o))
    else {
        return Ok(());
    };
    let mut takes: Vec<&str> = used.iter().map(|o| o.key()).collect();
    takes.push("validation_size");
    Err(TaskError::Options(format!(
        "task {}: option {} does not apply (it takes {})",
        config.name,
        unused.key(),
        takes.join(", ")
    )))
}

/// The tasks generated in code, each a [`TokenTask`].
#[derive(Clone, PartialEq, Debug)]
pub enum Generator {
    Mqar(Mqar),
    FuzzyRecall(FuzzyRecall),
    NoisyRecall(NoisyRecall),
    SelectiveCopy(SelectiveCopy),
    Memorization(Memorization),
}

impl Generator {
    /// The generated task `config` names, its options applied over the defaults and checked;
    /// `None` when the name is no generated task.
    pub fn from_config(config: &TaskConfig) -> Option<Result<Generator, TaskError>> {
        let (generator, used) = Generator::named(config)?;
        Some(
            refuse_unused(config, used)
                .and_then(|()| generator.task().validate())
                .map(|()| generator),
        )
    }

    /// The generator with `config`'s options over the defaults, and the options it uses.
    fn named(c: &TaskConfig) -> Option<(Generator, &'static [TaskOption])> {
        use TaskOption::{Copy, KvPairs, MapSeed, Motif, Noise, SeqLen, Vocab};
        Some(match c.kind().ok()? {
            TaskKind::Mqar => {
                let d = Mqar::default();
                let g = Generator::Mqar(Mqar {
                    seq_len: c.seq_len.unwrap_or(d.seq_len),
                    vocab: c.vocab.unwrap_or(d.vocab),
                    kv_pairs: c.kv_pairs.unwrap_or(d.kv_pairs),
                });
                (g, &[SeqLen, Vocab, KvPairs])
            }
            TaskKind::FuzzyRecall => {
                let d = FuzzyRecall::default();
                let g = Generator::FuzzyRecall(FuzzyRecall {
                    seq_len: c.seq_len.unwrap_or(d.seq_len),
                    vocab: c.vocab.unwrap_or(d.vocab),
                    kv_pairs: c.kv_pairs.unwrap_or(d.kv_pairs),
                    motif: c.motif.unwrap_or(d.motif),
                });
                (g, &[SeqLen, Vocab, KvPairs, Motif])
            }
            TaskKind::NoisyRecall => {
                let d = NoisyRecall::default();
                let g = Generator::NoisyRecall(NoisyRecall {
                    seq_len: c.seq_len.unwrap_or(d.seq_len),
                    vocab: c.vocab.unwrap_or(d.vocab),
                    kv_pairs: c.kv_pairs.unwrap_or(d.kv_pairs),
                    noise: c.noise.unwrap_or(d.noise),
                });
                (g, &[SeqLen, Vocab, KvPairs, Noise])
            }
            TaskKind::SelectiveCopy => {
                let d = SelectiveCopy::default();
                let g = Generator::SelectiveCopy(SelectiveCopy {
                    seq_len: c.seq_len.unwrap_or(d.seq_len),
                    vocab: c.vocab.unwrap_or(d.vocab),
                    copy: c.copy.unwrap_or(d.copy),
                });
                (g, &[SeqLen, Vocab, Copy])
            }
            TaskKind::Memorization => {
                let d = Memorization::default();
                let g = Generator::Memorization(Memorization::new(
                    c.seq_len.unwrap_or(d.seq_len()),
                    c.vocab.unwrap_or(d.vocab()),
                    c.motif.unwrap_or(d.motif()),
                    c.map_seed.unwrap_or(d.map_seed()),
                ));
                (g, &[SeqLen, Vocab, Motif, MapSeed])
            }
            _ => return None,
        })
    }

    /// The generator as a [`TokenTask`].
    pub fn task(&self) -> &dyn TokenTask {
        match self {
            Generator::Mqar(g) => g,
            Generator::FuzzyRecall(g) => g,
            Generator::NoisyRecall(g) => g,
            Generator::SelectiveCopy(g) => g,
            Generator::Memorization(g) => g,
        }
    }
}

/// The scores that place a task's score: what guessing reaches, and the best possible.
#[derive(Clone, Copy, PartialEq, Debug, Serialize)]
pub struct Reference {
    pub chance: f64,
    pub ceiling: f64,
}

/// The chance and ceiling of a task's score. Where it is an accuracy: one over the number of
/// tokens a target can be for the generated tasks (2/vocab for `mqar`), 1/10 for the images, and
/// 1 as the ceiling. `charlm` scores minus the bits per character: its chance is minus those of
/// the unigram model (each character at its frequency in the training text, add-one smoothed) on
/// the validation windows a design is scored on, and its ceiling 0, so a position between them
/// is the share of the unigram model's bits a design removes. `None` for `custom`, for settings the task refuses, and
/// for `charlm` when its text cannot be read.
pub fn reference_scores(config: &TaskConfig) -> Option<Reference> {
    match config.kind().ok()? {
        TaskKind::Digits | TaskKind::Fashion => Some(Reference {
            chance: 0.1,
            ceiling: 1.0,
        }),
        TaskKind::Charlm => {
            let path = data_path(config).ok()?;
            let text = std::fs::read_to_string(path).ok()?;
            let corpus = CharCorpus::from_text(&text, 0.1).ok()?;
            let windows = corpus.validation(
                config.seq_len.unwrap_or(CHARLM_SEQ_LEN),
                config.validation_size.unwrap_or(VALIDATION_SIZE),
            );
            Some(Reference {
                chance: -corpus.unigram_bpc(&windows.targets),
                ceiling: 0.0,
            })
        }
        _ => Generator::from_config(config)?.ok().map(|g| Reference {
            chance: g.task().chance(),
            ceiling: 1.0,
        }),
    }
}

/// How the loss is computed from the model output and the targets.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Loss {
    /// Int targets, one per output row; the output's last dim holds the class scores. Targets
    /// equal to [`IGNORE`] carry no loss.
    CrossEntropy { classes: usize },
    /// Float targets of the output's shape.
    Mse,
}

/// A batch ready for the model: the input (ints or floats, `batch × per-sample` row-major) and
/// the targets.
#[derive(Clone, PartialEq, Debug)]
pub struct Batch {
    pub size: usize,
    pub ints: Vec<i64>,
    pub floats: Vec<f32>,
    pub int_targets: Vec<i64>,
    pub float_targets: Vec<f32>,
}

/// Samples with a fixed per-sample shape, in memory.
#[derive(Clone, PartialEq, Debug)]
struct Table {
    count: usize,
    input_dims: Vec<usize>,
    ints: Vec<i64>,
    floats: Vec<f32>,
    target_dims: Vec<usize>,
    int_targets: Vec<i64>,
    float_targets: Vec<f32>,
}

impl Table {
    fn gather(&self, rows: &[usize]) -> Batch {
        let per_in: usize = self.input_dims.iter().product();
        let per_t: usize = self.target_dims.iter().product();
        let pick = |v: &[i64], per: usize| -> Vec<i64> {
            if v.is_empty() {
                return Vec::new();
            }
            rows.iter()
                .flat_map(|&r| v[r * per..(r + 1) * per].iter().copied())
                .collect()
        };
        let pick_f = |v: &[f32], per: usize| -> Vec<f32> {
            if v.is_empty() {
                return Vec::new();
            }
            rows.iter()
                .flat_map(|&r| v[r * per..(r + 1) * per].iter().copied())
                .collect()
        };
        Batch {
            size: rows.len(),
            ints: pick(&self.ints, per_in),
            floats: pick_f(&self.floats, per_in),
            int_targets: pick(&self.int_targets, per_t),
            float_targets: pick_f(&self.float_targets, per_t),
        }
    }

    fn from_images(images: Images) -> Table {
        Table {
            count: images.count,
            input_dims: vec![images.channels, images.height, images.width],
            ints: Vec::new(),
            floats: images.pixels,
            target_dims: Vec::new(),
            int_targets: images.labels,
            float_targets: Vec::new(),
        }
    }
}

#[derive(Clone, Debug)]
enum Source {
    Generated {
        generator: Generator,
        validation: TokenBatch,
    },
    Chars {
        corpus: CharCorpus,
        seq_len: usize,
        validation: TokenBatch,
    },
    Table {
        train: Table,
        validation: Table,
    },
}

/// A loaded task.
#[derive(Clone, Debug)]
pub struct Task {
    pub kind: TaskKind,
    pub shape: TaskShape,
    pub loss: Loss,
    /// The number of distinct token ids an int input holds (embeddings must cover it).
    pub vocab: Option<u64>,
    source: Source,
}

fn token_batch(b: TokenBatch) -> Batch {
    Batch {
        size: b.batch,
        ints: b.tokens,
        floats: Vec::new(),
        int_targets: b.targets,
        float_targets: Vec::new(),
    }
}

/// Where the data of a task is looked for when `--data` is not given.
pub fn default_data(kind: TaskKind) -> Vec<PathBuf> {
    let here = |p: &str| PathBuf::from(p);
    match kind {
        TaskKind::Charlm => vec![here("data/shakespeare.txt")],
        TaskKind::Digits => vec![here("data/digits")],
        TaskKind::Fashion => vec![
            here("/usr/share/datasets/fashion-mnist"),
            here("data/fashion-mnist"),
        ],
        _ => Vec::new(),
    }
}

fn data_path(config: &TaskConfig) -> Result<PathBuf, TaskError> {
    if let Some(p) = &config.data {
        if !p.exists() {
            return Err(TaskError::Missing(format!(
                "{}: no such file or directory",
                p.display()
            )));
        }
        return Ok(p.clone());
    }
    let candidates = default_data(config.kind()?);
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .ok_or_else(|| {
            TaskError::Missing(format!(
                "task {} needs data: pass --data PATH, or run scripts/fetch-data.sh (looked in {})",
                config.name,
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// Finds the first existing file among names, with or without `.gz`.
fn find_file(dir: &Path, names: &[&str]) -> Result<PathBuf, TaskError> {
    for name in names {
        for candidate in [dir.join(name), dir.join(format!("{name}.gz"))] {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(TaskError::Missing(format!(
        "{}: no {} (or .gz) there",
        dir.display(),
        names.join(" or ")
    )))
}

impl Task {
    /// Loads (or generates) the task's data. Validation sets are fixed by `seed`.
    pub fn load(config: &TaskConfig, seed: u64) -> Result<Task, TaskError> {
        match config.kind()? {
            TaskKind::Charlm => Task::charlm(config),
            kind @ (TaskKind::Digits | TaskKind::Fashion) => Task::images(config, kind, seed),
            TaskKind::Custom => {
                refuse_unused(config, &[TaskOption::Data])?;
                let path = config.data.clone().ok_or_else(|| {
                    TaskError::Options(
                        "task custom needs --data TASK.toml (see docs/tasks.md: custom tasks)"
                            .into(),
                    )
                })?;
                Task::from_custom(crate::custom::load(&path)?, seed)
            }
            kind => match Generator::from_config(config) {
                Some(generator) => Task::generated(config, kind, generator?, seed),
                None => unreachable!("{kind} is a generated task"),
            },
        }
    }

    /// A task generated in code, its validation set drawn from `seed`.
    fn generated(
        config: &TaskConfig,
        kind: TaskKind,
        generator: Generator,
        seed: u64,
    ) -> Result<Task, TaskError> {
        let g = generator.task();
        let validation = g.validation(seed, config.validation_size.unwrap_or(VALIDATION_SIZE));
        let description =
            TaskShape::by_name(kind.name()).map_or_else(String::new, |t| t.description);
        let shape = TaskShape::sequence(
            kind.name(),
            &description,
            g.seq_len() as u64,
            g.vocab() as u64,
        );
        Ok(Task {
            kind,
            shape,
            loss: Loss::CrossEntropy { classes: g.vocab() },
            vocab: Some(g.vocab() as u64),
            source: Source::Generated {
                generator,
                validation,
            },
        })
    }

    /// Next-character prediction on a text file.
    fn charlm(config: &TaskConfig) -> Result<Task, TaskError> {
        refuse_unused(config, &[TaskOption::Data, TaskOption::SeqLen])?;
        let path = data_path(config)?;
        let text = std::fs::read_to_string(&path).map_err(|e| data::read_error(&path, e))?;
        let corpus = CharCorpus::from_text(&text, 0.1)?;
        let seq_len = config.seq_len.unwrap_or(CHARLM_SEQ_LEN);
        if seq_len == 0 {
            return Err(TaskError::Options(
                "charlm: seq_len must be at least 1".into(),
            ));
        }
        let validation =
            corpus.validation(seq_len, config.validation_size.unwrap_or(VALIDATION_SIZE));
        let shape = TaskShape::sequence(
            "charlm",
            "next-character language modelling on a text (bits per character)",
            seq_len as u64,
            CHAR_VOCAB as u64,
        );
        Ok(Task {
            kind: TaskKind::Charlm,
            shape,
            loss: Loss::CrossEntropy {
                classes: CHAR_VOCAB,
            },
            vocab: Some(CHAR_VOCAB as u64),
            source: Source::Chars {
                corpus,
                seq_len,
                validation,
            },
        })
    }

    /// 8×8 digits or Fashion-MNIST images.
    fn images(config: &TaskConfig, kind: TaskKind, seed: u64) -> Result<Task, TaskError> {
        refuse_unused(config, &[TaskOption::Data])?;
        let path = data_path(config)?;
        let (train, validation) = if kind == TaskKind::Digits {
            let file = if path.is_dir() {
                find_file(&path, &["digits.csv"])?
            } else {
                path
            };
            data::read_digits_csv(&file)?.split(0.2, seed)
        } else {
            let f = |names: &[&str]| find_file(&path, names);
            let train = data::read_idx(
                &f(&["train-images-idx3-ubyte"])?,
                &f(&["train-labels-idx1-ubyte"])?,
            )?;
            let test = data::read_idx(
                &f(&["t10k-images-idx3-ubyte"])?,
                &f(&["t10k-labels-idx1-ubyte"])?,
            )?;
            (train, test)
        };
        let mut validation = Table::from_images(validation);
        if let Some(n) = config.validation_size {
            let rows: Vec<usize> = (0..n.min(validation.count)).collect();
            let b = validation.gather(&rows);
            validation.count = rows.len();
            validation.floats = b.floats;
            validation.int_targets = b.int_targets;
        }
        let shape = TaskShape::by_name(kind.name()).expect("a built-in task");
        Ok(Task {
            kind,
            shape,
            loss: Loss::CrossEntropy { classes: 10 },
            vocab: None,
            source: Source::Table {
                train: Table::from_images(train),
                validation,
            },
        })
    }

    /// Random data with the shapes, loss and vocabulary of a built-in task: for timing steps
    /// without data files (the step benchmark), not for judging architectures.
    pub fn synthetic(kind: TaskKind, count: usize, seed: u64) -> Result<Task, TaskError> {
        let shape = TaskShape::by_name(kind.name())
            .ok_or_else(|| TaskError::Options(format!("task {kind} has no built-in shape")))?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let per: usize = shape.input.dims().iter().map(|d| d.size as usize).product();
        let out: Vec<usize> = shape
            .output
            .dims()
            .iter()
            .map(|d| d.size as usize)
            .collect();
        let classes = *out.last().expect("outputs have a class dim");
        let target_dims: Vec<usize> = shape.input.dims()[1..]
            .iter()
            .map(|d| d.size as usize)
            .take(out.len() - 2)
            .collect();
        let per_target: usize = target_dims.iter().product();
        let input_dims: Vec<usize> = shape.input.dims()[1..]
            .iter()
            .map(|d| d.size as usize)
            .collect();
        let vocab = (shape.input_dtype == DType::Int).then_some(classes as u64);
        let (ints, floats) = match shape.input_dtype {
            DType::Int => (
                (0..count * per)
                    .map(|_| rng.random_range(0..classes as i64))
                    .collect(),
                Vec::new(),
            ),
            DType::Float32 => (
                Vec::new(),
                (0..count * per).map(|_| rng.random::<f32>()).collect(),
            ),
        };
        let targets = (0..count * per_target.max(1))
            .map(|_| rng.random_range(0..classes as i64))
            .collect();
        let table = Table {
            count,
            input_dims,
            ints,
            floats,
            target_dims,
            int_targets: targets,
            float_targets: Vec::new(),
        };
        Ok(Task {
            kind,
            shape,
            loss: Loss::CrossEntropy { classes },
            vocab,
            source: Source::Table {
                train: table.clone(),
                validation: table,
            },
        })
    }

    /// Builds a custom task from what its files hold.
    fn from_custom(c: Custom, seed: u64) -> Result<Task, TaskError> {
        let loss = match c.classes {
            Some(classes) => Loss::CrossEntropy { classes },
            None => Loss::Mse,
        };
        let count = c.input.shape[0];
        let input_dims = c.input.shape[1..].to_vec();
        let target_dims = c.target.shape[1..].to_vec();
        let input = (c.input.ints, c.input.floats);
        let target = (c.target.ints, c.target.floats);
        let validation_fraction = c.validation_fraction;
        let (name, description) = (c.name, c.description);
        let vocab = (!input.0.is_empty()).then(|| input.0.iter().max().map_or(1, |m| m + 1) as u64);
        let table = Table {
            count,
            input_dims: input_dims.clone(),
            ints: input.0,
            floats: input.1,
            target_dims: target_dims.clone(),
            int_targets: target.0,
            float_targets: target.1,
        };
        let mut order: Vec<usize> = (0..count).collect();
        rand::seq::SliceRandom::shuffle(&mut order[..], &mut ChaCha8Rng::seed_from_u64(seed));
        let cut = ((count as f64) * (1.0 - validation_fraction.clamp(0.01, 0.9))).round() as usize;
        if cut == 0 || cut >= count {
            return Err(TaskError::Data(format!(
                "custom task: {count} samples cannot be split into training and validation"
            )));
        }
        let part = |rows: &[usize]| {
            let b = table.gather(rows);
            Table {
                count: rows.len(),
                input_dims: table.input_dims.clone(),
                ints: b.ints,
                floats: b.floats,
                target_dims: table.target_dims.clone(),
                int_targets: b.int_targets,
                float_targets: b.float_targets,
            }
        };
        let u = |d: &[usize]| d.iter().map(|&x| x as u64).collect::<Vec<_>>();
        let output = match loss {
            Loss::CrossEntropy { classes } => {
                let mut o = u(&target_dims);
                o.push(classes as u64);
                o
            }
            Loss::Mse => u(&target_dims),
        };
        let input_dtype = if vocab.is_some() {
            DType::Int
        } else {
            DType::Float32
        };
        let mut constants = Vec::new();
        if let Loss::CrossEntropy { classes } = loss {
            constants.push(("NUM_CLASSES".to_string(), classes as i64));
        }
        if let Some(v) = vocab {
            constants.push(("VOCAB".to_string(), v as i64));
        }
        let shape = TaskShape {
            name,
            description,
            input: Shape::batched(&u(&input_dims)),
            input_dtype,
            output: Shape::batched(&output),
            constants,
        };
        Ok(Task {
            kind: TaskKind::Custom,
            shape,
            loss,
            vocab,
            source: Source::Table {
                train: part(&order[..cut]),
                validation: part(&order[cut..]),
            },
        })
    }

    /// A fresh training batch.
    pub fn train_batch(&self, rng: &mut ChaCha8Rng, size: usize) -> Batch {
        match &self.source {
            Source::Generated { generator, .. } => token_batch(generator.task().batch(rng, size)),
            Source::Chars {
                corpus, seq_len, ..
            } => token_batch(corpus.batch(rng, size, *seq_len)),
            Source::Table { train, .. } => {
                let rows: Vec<usize> = (0..size)
                    .map(|_| rng.random_range(0..train.count))
                    .collect();
                train.gather(&rows)
            }
        }
    }

    /// The fixed validation set, in batches of at most `size`.
    pub fn validation_batches(&self, size: usize) -> Vec<Batch> {
        let size = size.max(1);
        match &self.source {
            Source::Generated { validation, .. } | Source::Chars { validation, .. } => {
                let per = validation.seq_len;
                (0..validation.batch)
                    .step_by(size)
                    .map(|start| {
                        let end = (start + size).min(validation.batch);
                        Batch {
                            size: end - start,
                            ints: validation.tokens[start * per..end * per].to_vec(),
                            floats: Vec::new(),
                            int_targets: validation.targets[start * per..end * per].to_vec(),
                            float_targets: Vec::new(),
                        }
                    })
                    .collect()
            }
            Source::Table { validation, .. } => (0..validation.count)
                .step_by(size)
                .map(|start| {
                    let rows: Vec<usize> = (start..(start + size).min(validation.count)).collect();
                    validation.gather(&rows)
                })
                .collect(),
        }
    }

    /// The number of validation samples.
    pub fn validation_size(&self) -> usize {
        match &self.source {
            Source::Generated { validation, .. } | Source::Chars { validation, .. } => {
                validation.batch
            }
            Source::Table { validation, .. } => validation.count,
        }
    }

    /// Names of the metrics this task reports, besides `val_loss`.
    pub fn reports_bpc(&self) -> bool {
        self.kind == TaskKind::Charlm
    }
}

/// Whether a target counts.
pub fn counted(target: i64) -> bool {
    target != IGNORE
}
