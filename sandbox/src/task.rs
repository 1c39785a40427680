//! What a task binds in architecture code: the input's shape and dtype, named constants, and the
//! output shape the model must return.

use serde::{Deserialize, Serialize};

use crate::shape::{DType, Shape};

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
