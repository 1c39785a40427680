//! What a task binds in architecture code: the input's shape and dtype, named constants, and the
//! output shape the model must return.

use serde::{Deserialize, Serialize};

use crate::shape::{DType, Shape};

/// The tasks autoarch knows by name. Configurations and records keep the name (`snake_case`,
/// as [`TaskKind::name`] writes it); code branches on the kind.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    Mqar,
    FuzzyRecall,
    NoisyRecall,
    SelectiveCopy,
    Memorization,
    Charlm,
    Digits,
    Fashion,
    /// A task described by the user's TOML file.
    Custom,
}

/// What a task's data is, which decides which library seeds fit it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TaskForm {
    /// `[B, SEQ_LEN]` tokens in, `[B, SEQ_LEN, VOCAB]` scores out.
    Tokens,
    /// `[B, C, H, W]` images in, `[B, NUM_CLASSES]` scores out.
    Images,
    /// Whatever the user's task file says.
    Custom,
}

impl TaskKind {
    /// Every task, in the order messages list them.
    pub const ALL: [TaskKind; 9] = [
        TaskKind::Mqar,
        TaskKind::FuzzyRecall,
        TaskKind::NoisyRecall,
        TaskKind::SelectiveCopy,
        TaskKind::Memorization,
        TaskKind::Charlm,
        TaskKind::Digits,
        TaskKind::Fashion,
        TaskKind::Custom,
    ];

    /// The name configurations, the command line and records use.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Mqar => "mqar",
            TaskKind::FuzzyRecall => "fuzzy_recall",
            TaskKind::NoisyRecall => "noisy_recall",
            TaskKind::SelectiveCopy => "selective_copy",
            TaskKind::Memorization => "memorization",
            TaskKind::Charlm => "charlm",
            TaskKind::Digits => "digits",
            TaskKind::Fashion => "fashion",
            TaskKind::Custom => "custom",
        }
    }

    /// The task called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<TaskKind> {
        TaskKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Every task's name, comma-separated, for messages.
    pub fn listed() -> String {
        TaskKind::ALL.map(TaskKind::name).join(", ")
    }

    /// What its data is.
    pub fn form(self) -> TaskForm {
        match self {
            TaskKind::Digits | TaskKind::Fashion => TaskForm::Images,
            TaskKind::Custom => TaskForm::Custom,
            _ => TaskForm::Tokens,
        }
    }

    /// Generated in code from a seed (the synthetic sequence tasks), rather than read from data.
    pub fn is_generated(self) -> bool {
        matches!(
            self,
            TaskKind::Mqar
                | TaskKind::FuzzyRecall
                | TaskKind::NoisyRecall
                | TaskKind::SelectiveCopy
                | TaskKind::Memorization
        )
    }

    /// The task the library's seeds for this one are written for: the token seeds are written
    /// for `mqar` and fit every token task, the image seeds for `digits` and fit `fashion`.
    pub fn seed_task(self) -> TaskKind {
        match self.form() {
            TaskForm::Tokens => TaskKind::Mqar,
            TaskForm::Images => TaskKind::Digits,
            TaskForm::Custom => TaskKind::Custom,
        }
    }
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// Whether larger or smaller values of a metric are better.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Minimize,
    Maximize,
}

impl Direction {
    /// In words, for tables.
    pub fn words(self) -> &'static str {
        match self {
            Direction::Maximize => "higher is better",
            Direction::Minimize => "lower is better",
        }
    }
}

/// A number a candidate is ranked by: the evaluator's metrics, and the traced graph's size.
/// Records keep the name ([`Metric::name`]); the direction belongs to the metric, never guessed
/// from its name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The task's score, higher is better: accuracy, or minus the bits per character or the
    /// squared error.
    Score,
    ValLoss,
    ValAccuracy,
    /// Bits per character (`charlm`).
    ValBpc,
    /// Mean squared error (custom regression tasks).
    ValMse,
    Params,
    Flops,
}

impl Metric {
    pub const ALL: [Metric; 7] = [
        Metric::Score,
        Metric::ValLoss,
        Metric::ValAccuracy,
        Metric::ValBpc,
        Metric::ValMse,
        Metric::Params,
        Metric::Flops,
    ];

    /// The name records and the command line use.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Score => "score",
            Metric::ValLoss => "val_loss",
            Metric::ValAccuracy => "val_accuracy",
            Metric::ValBpc => "val_bpc",
            Metric::ValMse => "val_mse",
            Metric::Params => "params",
            Metric::Flops => "flops",
        }
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn direction(self) -> Direction {
        match self {
            Metric::Score | Metric::ValAccuracy => Direction::Maximize,
            Metric::ValLoss | Metric::ValBpc | Metric::ValMse | Metric::Params | Metric::Flops => {
                Direction::Minimize
            }
        }
    }

    /// Every metric's name, comma-separated, for messages.
    pub fn listed() -> String {
        Metric::ALL.map(Metric::name).join(", ")
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for Metric {
    type Err = String;

    fn from_str(name: &str) -> Result<Metric, String> {
        Metric::from_name(name)
            .ok_or_else(|| format!("unknown metric {name:?}; metrics are {}", Metric::listed()))
    }
}

/// The interface between a task and an architecture.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct TaskShape {
    pub name: String,
    pub description: String,
    pub input: Shape,
    pub input_dtype: DType,
    pub output: Shape,
    /// Constants visible to the code, such as `VOCAB` or `NUM_CLASSES`.
    pub constants: Vec<(String, i64)>,
}

fn constants(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn sequence(name: &str, description: &str, seq_len: u64, vocab: u64) -> TaskShape {
    TaskShape {
        name: name.to_string(),
        description: description.to_string(),
        input: Shape::batched(&[seq_len]),
        input_dtype: DType::Int,
        output: Shape::batched(&[seq_len, vocab]),
        constants: constants(&[("VOCAB", vocab as i64), ("SEQ_LEN", seq_len as i64)]),
    }
}

fn image(name: &str, description: &str, channels: u64, side: u64, classes: u64) -> TaskShape {
    TaskShape {
        name: name.to_string(),
        description: description.to_string(),
        input: Shape::batched(&[channels, side, side]),
        input_dtype: DType::Float32,
        output: Shape::batched(&[classes]),
        constants: constants(&[
            ("NUM_CLASSES", classes as i64),
            ("CHANNELS", channels as i64),
            ("HEIGHT", side as i64),
            ("WIDTH", side as i64),
        ]),
    }
}

impl TaskShape {
    /// A sequence task with custom sizes (tasks whose options change the shapes use this).
    pub fn sequence(name: &str, description: &str, seq_len: u64, vocab: u64) -> TaskShape {
        sequence(name, description, seq_len, vocab)
    }

    /// The built-in tasks, with their default sizes.
    pub fn builtin() -> Vec<TaskShape> {
        vec![
            sequence(
                "mqar",
                "multi-query associative recall (Zoology): key-value pairs, then queries; predict each queried value",
                64,
                256,
            ),
            sequence(
                "fuzzy_recall",
                "fuzzy recall (MAD): keys and values are motifs of 1-3 tokens; after each queried key, predict its value's tokens",
                64,
                32,
            ),
            sequence(
                "noisy_recall",
                "noisy recall (MAD): associative recall with noise tokens among the key-value pairs and the queries; predict each queried value",
                32,
                64,
            ),
            sequence(
                "selective_copy",
                "selective copying (MAD): content tokens scattered among blanks; after the copy prompt, write them out in order",
                32,
                16,
            ),
            sequence(
                "memorization",
                "memorization (MAD): a fixed map from two-token keys to values, the same in every run; predict each key's value from the weights",
                32,
                32,
            ),
            sequence(
                "charlm",
                "next-character language modelling on a text (bits per character)",
                128,
                128,
            ),
            image(
                "digits",
                "8x8 handwritten digits (scikit-learn's copy of the UCI set), 10 classes",
                1,
                8,
                10,
            ),
            image(
                "fashion",
                "Fashion-MNIST 28x28 grey images of clothing, 10 classes",
                1,
                28,
                10,
            ),
        ]
    }

    pub fn by_name(name: &str) -> Option<TaskShape> {
        TaskShape::builtin().into_iter().find(|t| t.name == name)
    }

    pub fn names() -> Vec<String> {
        TaskShape::builtin().into_iter().map(|t| t.name).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_is_stored_as_its_name_and_read_back() {
        for kind in TaskKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
            assert_eq!(serde_json::from_str::<TaskKind>(&json).unwrap(), kind);
            assert_eq!(TaskKind::from_name(kind.name()), Some(kind));
            assert_eq!(format!("{kind:>14}"), format!("{:>14}", kind.name()));
        }
        assert_eq!(TaskKind::from_name("MQAR"), None);
    }

    #[test]
    fn every_builtin_shape_is_a_kind_and_every_kind_but_custom_has_a_shape() {
        let shapes = TaskShape::names();
        for kind in TaskKind::ALL {
            assert_eq!(
                shapes.iter().any(|n| n == kind.name()),
                kind != TaskKind::Custom,
                "{kind}"
            );
        }
        assert_eq!(shapes.len(), TaskKind::ALL.len() - 1);
    }

    #[test]
    fn metrics_are_stored_by_name_and_carry_their_direction() {
        for m in Metric::ALL {
            assert_eq!(
                serde_json::to_string(&m).unwrap(),
                format!("\"{}\"", m.name())
            );
            assert_eq!(m.name().parse::<Metric>(), Ok(m));
        }
        assert_eq!(Metric::Score.direction(), Direction::Maximize);
        assert_eq!(Metric::ValAccuracy.direction(), Direction::Maximize);
        assert_eq!(Metric::ValBpc.direction(), Direction::Minimize);
        assert_eq!(Metric::Flops.direction(), Direction::Minimize);
        let unknown = "val_acc".parse::<Metric>().unwrap_err();
        assert!(unknown.contains("metrics are score, val_loss"), "{unknown}");
    }

    #[test]
    fn seeds_are_shared_within_a_form() {
        assert_eq!(TaskKind::Charlm.seed_task(), TaskKind::Mqar);
        assert_eq!(TaskKind::NoisyRecall.seed_task(), TaskKind::Mqar);
        assert_eq!(TaskKind::Fashion.seed_task(), TaskKind::Digits);
        assert_eq!(TaskKind::Custom.seed_task(), TaskKind::Custom);
        assert!(TaskKind::Memorization.is_generated() && !TaskKind::Charlm.is_generated());
    }
}
