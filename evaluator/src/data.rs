//! Task data, deterministic from a seed: the [`TokenTask`] generators (MQAR here, the MAD tasks in
//! [`crate::mad`]), and readers for text (charlm), the 8×8 digits CSV and Fashion-MNIST IDX files.
//! Plain vectors here; the training code turns batches into tensors.
//!
//! Targets use [`IGNORE`] for positions that carry no loss.

use std::io::Read;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::TaskError;

/// A target that contributes nothing to the loss or the metrics.
pub const IGNORE: i64 = -1;

/// Token sequences and their next-token targets, `batch × seq_len` each, row-major.
#[derive(Clone, PartialEq, Debug)]
pub struct TokenBatch {
    pub batch: usize,
    pub seq_len: usize,
    pub tokens: Vec<i64>,
    pub targets: Vec<i64>,
}

/// A sequence task generated in code: fresh examples from any rng (each training step draws its
/// own), a validation set fixed by the campaign's seed, and targets only where the task asks
/// something ([`IGNORE`] elsewhere). Inputs are `seq_len` token ids below `vocab`; the model
/// returns `[B, seq_len, vocab]` logits.
pub trait TokenTask {
    fn seq_len(&self) -> usize;
    fn vocab(&self) -> usize;
    /// Refuses impossible settings with a message that names the option to change.
    fn validate(&self) -> Result<(), TaskError>;
    /// One sequence: (tokens, targets), `seq_len` each.
    fn example(&self, rng: &mut ChaCha8Rng) -> (Vec<i64>, Vec<i64>);
    /// The accuracy of a guess that knows which tokens can be targets but nothing else: one over
    /// the number of them.
    fn chance(&self) -> f64;

    /// A batch of fresh examples.
    fn batch(&self, rng: &mut ChaCha8Rng, batch: usize) -> TokenBatch {
        let seq_len = self.seq_len();
        let mut tokens = Vec::with_capacity(batch * seq_len);
        let mut targets = Vec::with_capacity(batch * seq_len);
        for _ in 0..batch {
            let (t, y) = self.example(rng);
            debug_assert_eq!((t.len(), y.len()), (seq_len, seq_len));
            tokens.extend(t);
            targets.extend(y);
        }
        TokenBatch {
            batch,
            seq_len,
            tokens,
            targets,
        }
    }

    /// The fixed validation set: the same for every candidate of a campaign with this seed.
    fn validation(&self, seed: u64, size: usize) -> TokenBatch {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_da7a);
        self.batch(&mut rng, size)
    }
}

/// Multi-query associative recall (Arora et al. 2023, Zoology).
///
/// Each sequence opens with `kv_pairs` key-value pairs (keys from the lower half of the
/// vocabulary, values from the upper half), then every key is queried once at a position drawn
/// with Zoology's power-law preference for short gaps; the target at a query is its value. All
/// other positions hold random tokens and carry no loss.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Mqar {
    pub seq_len: usize,
    pub vocab: usize,
    pub kv_pairs: usize,
}

impl Default for Mqar {
    fn default() -> Mqar {
        Mqar {
            seq_len: 64,
            vocab: 256,
            kv_pairs: 8,
        }
    }
}

/// Zoology's exponent for the gap distribution: p(gap) ∝ alpha · gap^(alpha − 1).
const POWER_LAW_ALPHA: f64 = 0.01;

impl TokenTask for Mqar {
    fn seq_len(&self) -> usize {
        self.seq_len
    }

    fn vocab(&self) -> usize {
        self.vocab
    }

    fn validate(&self) -> Result<(), TaskError> {
        if self.vocab < 4 {
            return Err(TaskError::Options(format!(
                "mqar: vocab {} is too small; keys and values need at least 4 tokens",
                self.vocab
            )));
        }
        let keys = self.vocab / 2 - 1;
        if self.kv_pairs == 0 || self.kv_pairs > keys {
            return Err(TaskError::Options(format!(
                "mqar: kv_pairs must be between 1 and {keys} for a vocab of {} (its distinct keys), not {}",
                self.vocab, self.kv_pairs
            )));
        }
        let needs = 4 * self.kv_pairs;
        if self.seq_len < needs {
            return Err(TaskError::Options(format!(
                "mqar: seq_len {} cannot hold {} key-value pairs and their queries (needs at least {needs}); raise seq_len or lower kv_pairs",
                self.seq_len, self.kv_pairs
            )));
        }
        Ok(())
    }

    fn example(&self, rng: &mut ChaCha8Rng) -> (Vec<i64>, Vec<i64>) {
        self.draw(rng)
    }

    /// One over the number of values (the upper half of the vocabulary): Zoology's 2/vocab.
    fn chance(&self) -> f64 {
        1.0 / (self.vocab - self.vocab / 2) as f64
    }
}

impl Mqar {
    /// One sequence: (tokens, targets).
    fn draw(&self, rng: &mut impl Rng) -> (Vec<i64>, Vec<i64>) {
        let half = self.vocab / 2;
        let context = 2 * self.kv_pairs;
        // Distinct keys from [1, half) (0 is never a key), values from [half, vocab).
        let mut key_pool: Vec<i64> = (1..half as i64).collect();
        key_pool.shuffle(rng);
        let keys = &key_pool[..self.kv_pairs];
        let values: Vec<i64> = (0..self.kv_pairs)
            .map(|_| rng.random_range(half as i64..self.vocab as i64))
            .collect();
        let mut tokens = vec![0i64; self.seq_len];
        let mut targets = vec![IGNORE; self.seq_len];
        for (i, (k, v)) in keys.iter().zip(&values).enumerate() {
            tokens[2 * i] = *k;
            tokens[2 * i + 1] = *v;
        }
        let is_query = place_queries(rng, &mut tokens, &mut targets, context, keys, &values);
        // Everything else is noise that the model must learn to ignore.
        for (pos, t) in tokens.iter_mut().enumerate().skip(context) {
            if !is_query[pos] {
                *t = rng.random_range(0..self.vocab as i64);
            }
        }
        (tokens, targets)
    }
}

/// Queries every key once after the first `context` positions, at even offsets from there with
/// Zoology's power-law preference for short gaps: the query holds the key and its target is the
/// value. Returns which positions are queries.
pub(crate) fn place_queries(
    rng: &mut impl Rng,
    tokens: &mut [i64],
    targets: &mut [i64],
    context: usize,
    keys: &[i64],
    values: &[i64],
) -> Vec<bool> {
    let space = (tokens.len() - context) / 2;
    let gaps = weighted_sample_without_replacement(rng, space, keys.len());
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.shuffle(rng);
    let mut is_query = vec![false; tokens.len()];
    for (gap, &pair) in gaps.iter().zip(&order) {
        let pos = context + 2 * gap;
        tokens[pos] = keys[pair];
        targets[pos] = values[pair];
        is_query[pos] = true;
    }
    is_query
}

/// `k` distinct indices in `0..n`, index `g` drawn with weight ∝ (g + 1)^(alpha − 1).
fn weighted_sample_without_replacement(rng: &mut impl Rng, n: usize, k: usize) -> Vec<usize> {
    let mut weights: Vec<f64> = (1..=n)
        .map(|g| POWER_LAW_ALPHA * (g as f64).powf(POWER_LAW_ALPHA - 1.0))
        .collect();
    let mut chosen = Vec::with_capacity(k);
    for _ in 0..k.min(n) {
        let total: f64 = weights.iter().sum();
        let mut r = rng.random::<f64>() * total;
        let mut pick = n - 1;
        for (i, w) in weights.iter().enumerate() {
            if *w > 0.0 && r < *w {
                pick = i;
                break;
            }
            r -= w;
        }
        // Rounding can leave r past the last positive weight: take the last one still free.
        if weights[pick] == 0.0 {
            pick = weights
                .iter()
                .rposition(|w| *w > 0.0)
                .expect("k ≤ n leaves a free slot");
        }
        weights[pick] = 0.0;
        chosen.push(pick);
    }
    chosen
}

/// Character-level language modelling over a text: ASCII characters are tokens (others map to
/// `?`), and the model predicts each next character of random windows.
#[derive(Clone, PartialEq, Debug)]
pub struct CharCorpus {
    pub train: Vec<i64>,
    pub validation: Vec<i64>,
}

/// The vocabulary of `charlm`: 7-bit ASCII.
pub const CHAR_VOCAB: usize = 128;

impl CharCorpus {
    /// Split `text` into a training part and the last `validation_fraction` for validation.
    pub fn from_text(text: &str, validation_fraction: f64) -> Result<CharCorpus, TaskError> {
        let ids: Vec<i64> = text
            .chars()
            .map(|c| if c.is_ascii() { c as i64 } else { '?' as i64 })
            .collect();
        let split = ((ids.len() as f64) * (1.0 - validation_fraction.clamp(0.0, 0.5))) as usize;
        let (train, validation) = ids.split_at(split);
        if train.len() < 2 || validation.len() < 2 {
            return Err(TaskError::Data(format!(
                "charlm: the text has {} characters; it needs enough for both a training and a validation window",
                ids.len()
            )));
        }
        Ok(CharCorpus {
            train: train.to_vec(),
            validation: validation.to_vec(),
        })
    }

    /// The bits per character of the unigram model on `targets` (those a validation batch
    /// scores; [`IGNORE`] skipped): each character predicted with its frequency in the training
    /// text, add-one smoothed over the vocabulary.
    pub fn unigram_bpc(&self, targets: &[i64]) -> f64 {
        let mut counts = vec![1.0f64; CHAR_VOCAB];
        for &c in &self.train {
            counts[c as usize] += 1.0;
        }
        let total: f64 = counts.iter().sum();
        let scored: Vec<f64> = targets
            .iter()
            .filter(|&&c| c != IGNORE)
            .map(|&c| -(counts[c as usize] / total).log2())
            .collect();
        scored.iter().sum::<f64>() / scored.len() as f64
    }

    fn windows(ids: &[i64], starts: &[usize], seq_len: usize) -> TokenBatch {
        let mut tokens = Vec::with_capacity(starts.len() * seq_len);
        let mut targets = Vec::with_capacity(starts.len() * seq_len);
        for &s in starts {
            for t in 0..seq_len {
                tokens.push(ids.get(s + t).copied().unwrap_or(0));
                targets.push(ids.get(s + t + 1).copied().unwrap_or(IGNORE));
            }
        }
        TokenBatch {
            batch: starts.len(),
            seq_len,
            tokens,
            targets,
        }
    }

    /// Random training windows of `seq_len` characters with their next characters as targets.
    pub fn batch(&self, rng: &mut impl Rng, batch: usize, seq_len: usize) -> TokenBatch {
        let last = self.train.len().saturating_sub(seq_len + 1).max(1);
        let starts: Vec<usize> = (0..batch).map(|_| rng.random_range(0..last)).collect();
        CharCorpus::windows(&self.train, &starts, seq_len)
    }

    /// Consecutive validation windows covering the validation text (at most `max_windows`).
    pub fn validation(&self, seq_len: usize, max_windows: usize) -> TokenBatch {
        let starts: Vec<usize> = (0..self.validation.len().saturating_sub(1))
            .step_by(seq_len)
            .take(max_windows)
            .collect();
        CharCorpus::windows(&self.validation, &starts, seq_len)
    }
}

/// Labelled images, `count × channels × height × width` floats in [0, 1].
#[derive(Clone, PartialEq, Debug)]
pub struct Images {
    pub count: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<f32>,
    pub labels: Vec<i64>,
}

impl Images {
    /// Split off the last `fraction` as validation, after a shuffle fixed by `seed`.
    pub fn split(mut self, fraction: f64, seed: u64) -> (Images, Images) {
        let per = self.channels * self.height * self.width;
        let mut order: Vec<usize> = (0..self.count).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let take = |idx: &[usize], src: &Images| Images {
            count: idx.len(),
            channels: src.channels,
            height: src.height,
            width: src.width,
            pixels: idx
                .iter()
                .flat_map(|&i| src.pixels[i * per..(i + 1) * per].iter().copied())
                .collect(),
            labels: idx.iter().map(|&i| src.labels[i]).collect(),
        };
        let cut = ((self.count as f64) * (1.0 - fraction.clamp(0.0, 0.9))) as usize;
        let train = take(&order[..cut], &self);
        let validation = take(&order[cut..], &self);
        self.pixels.clear();
        (train, validation)
    }
}

/// The 8×8 digits as scikit-learn ships them (`sklearn/datasets/data/digits.csv.gz`, or that file
/// unpacked): 64 pixel values 0–16 then the label, one image per line.
pub fn read_digits_csv(path: &Path) -> Result<Images, TaskError> {
    let text = read_maybe_gz(path)?;
    let text = String::from_utf8(text)
        .map_err(|e| TaskError::Data(format!("{}: not text: {e}", path.display())))?;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let values: Vec<f32> = line
            .split(',')
            .map(|v| v.trim().parse::<f32>())
            .collect::<Result<_, _>>()
            .map_err(|e| TaskError::Data(format!("{} line {}: {e}", path.display(), n + 1)))?;
        if values.len() != 65 {
            return Err(TaskError::Data(format!(
                "{} line {}: expected 64 pixels and a label, got {} values",
                path.display(),
                n + 1,
                values.len()
            )));
        }
        pixels.extend(values[..64].iter().map(|v| v / 16.0));
        let label = values[64];
        if !(0.0..10.0).contains(&label) || label.fract() != 0.0 {
            return Err(TaskError::Data(format!(
                "{} line {}: label {label} is not a digit",
                path.display(),
                n + 1
            )));
        }
        labels.push(label as i64);
    }
    Ok(Images {
        count: labels.len(),
        channels: 1,
        height: 8,
        width: 8,
        pixels,
        labels,
    })
}

/// An IDX image file and its label file (MNIST / Fashion-MNIST format; `.gz` or plain).
pub fn read_idx(images: &Path, labels: &Path) -> Result<Images, TaskError> {
    let raw = read_maybe_gz(images)?;
    let header = |bytes: &[u8], at: usize| -> Result<usize, TaskError> {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| TaskError::Data("truncated IDX header".to_string()))
    };
    if header(&raw, 0)? != 0x0803 {
        return Err(TaskError::Data(format!(
            "{}: not an IDX image file (magic 0x00000803)",
            images.display()
        )));
    }
    let (count, height, width) = (header(&raw, 4)?, header(&raw, 8)?, header(&raw, 12)?);
    let body = &raw[16..];
    if body.len() != count * height * width {
        return Err(TaskError::Data(format!(
            "{}: {} pixel bytes for {count} images of {height}×{width}",
            images.display(),
            body.len()
        )));
    }
    let raw_labels = read_maybe_gz(labels)?;
    if header(&raw_labels, 0)? != 0x0801 || header(&raw_labels, 4)? != count {
        return Err(TaskError::Data(format!(
            "{}: not an IDX label file for {count} images",
            labels.display()
        )));
    }
    Ok(Images {
        count,
        channels: 1,
        height,
        width,
        pixels: body.iter().map(|&b| f32::from(b) / 255.0).collect(),
        labels: raw_labels[8..].iter().map(|&b| i64::from(b)).collect(),
    })
}

/// A data file that cannot be read: missing (the machine's setup), or unreadable.
pub fn read_error(path: &Path, e: std::io::Error) -> TaskError {
    if e.kind() == std::io::ErrorKind::NotFound {
        TaskError::Missing(format!("{}: no such file or directory", path.display()))
    } else {
        TaskError::Data(format!("cannot read {}: {e}", path.display()))
    }
}

/// A file's bytes, gunzipped when it starts with the gzip magic.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, TaskError> {
    let bytes = std::fs::read(path).map_err(|e| read_error(path, e))?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| TaskError::Data(format!("{}: bad gzip data: {e}", path.display())))?;
        return Ok(out);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unigram_bits_per_character_by_hand() {
        let mut train = vec![97i64; 500];
        train.extend(vec![98i64; 500]);
        let corpus = CharCorpus {
            train,
            validation: vec![97, 98, 97, 98, 97],
        };
        // Add-one smoothing over 128 characters: 'a' and 'b' each have 501 of 1128.
        let expected = -(501.0f64 / 1128.0).log2();
        let targets = corpus.validation(2, 8).targets;
        assert!((corpus.unigram_bpc(&targets) - expected).abs() < 1e-12);
        // A character the training text never shows costs log2(1128) bits; ignored targets
        // cost nothing.
        let unseen = CharCorpus {
            train: vec![97; 1000],
            validation: Vec::new(),
        };
        let bits = unseen.unigram_bpc(&[122, IGNORE]);
        assert!((bits - 1128f64.log2()).abs() < 1e-12);
    }

    #[test]
    fn mqar_queries_every_key_once_with_its_value() {
        let task = Mqar::default();
        task.validate().unwrap();
        let b = task.batch(&mut ChaCha8Rng::seed_from_u64(3), 50);
        for row in 0..b.batch {
            let t = &b.tokens[row * 64..(row + 1) * 64];
            let y = &b.targets[row * 64..(row + 1) * 64];
            let pairs: Vec<(i64, i64)> = (0..8).map(|i| (t[2 * i], t[2 * i + 1])).collect();
            let keys: std::collections::BTreeSet<i64> = pairs.iter().map(|p| p.0).collect();
            assert_eq!(keys.len(), 8, "distinct keys");
            assert!(pairs
                .iter()
                .all(|(k, v)| (1..128).contains(k) && (128..256).contains(v)));
            let queries: Vec<usize> = (0..64).filter(|&p| y[p] != IGNORE).collect();
            assert_eq!(queries.len(), 8, "every key is queried once");
            for p in queries {
                assert!(p >= 16 && (p - 16) % 2 == 0);
                let value = pairs
                    .iter()
                    .find(|(k, _)| *k == t[p])
                    .expect("a query is a key")
                    .1;
                assert_eq!(y[p], value);
            }
            assert!(t.iter().all(|&x| (0..256).contains(&x)));
        }
    }

    #[test]
    fn mqar_is_deterministic_from_its_seed_and_prefers_short_gaps() {
        let task = Mqar::default();
        assert_eq!(task.validation(7, 4), task.validation(7, 4));
        assert_ne!(task.validation(7, 4), task.validation(8, 4));
        let b = task.batch(&mut ChaCha8Rng::seed_from_u64(1), 400);
        let mut early = 0;
        let mut late = 0;
        for (i, y) in b.targets.iter().enumerate() {
            if *y != IGNORE {
                if i % 64 < 40 {
                    early += 1;
                } else {
                    late += 1;
                }
            }
        }
        assert!(
            early > late,
            "power law: {early} early vs {late} late queries"
        );
        assert!(Mqar {
            kv_pairs: 20,
            ..task
        }
        .validate()
        .is_err());
    }

    #[test]
    fn charlm_windows_predict_the_next_character() {
        let text = "the quick brown fox jumps over the lazy dog. ".repeat(20) + "é";
        let corpus = CharCorpus::from_text(&text, 0.1).unwrap();
        let b = corpus.batch(&mut ChaCha8Rng::seed_from_u64(0), 3, 16);
        for row in 0..3 {
            for t in 0..15 {
                assert_eq!(b.targets[row * 16 + t], b.tokens[row * 16 + t + 1]);
            }
        }
        assert!(
            corpus.validation.contains(&('?' as i64)),
            "non-ASCII maps to ?"
        );
        let v = corpus.validation(16, 100);
        assert!(v.batch >= 5);
        assert!(CharCorpus::from_text("ab", 0.1).is_err());
    }

    #[test]
    fn digits_csv_and_idx_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("digits.csv");
        let row = |label: u8| {
            let mut v: Vec<String> = (0..64).map(|i| (i % 17).to_string()).collect();
            v.push(label.to_string());
            v.join(",")
        };
        std::fs::write(&csv, format!("{}\n{}\n", row(3), row(9))).unwrap();
        let d = read_digits_csv(&csv).unwrap();
        assert_eq!((d.count, d.labels.clone()), (2, vec![3, 9]));
        assert_eq!(d.pixels[16], 16.0 / 16.0);
        std::fs::write(&csv, "1,2,3\n").unwrap();
        assert!(read_digits_csv(&csv)
            .unwrap_err()
            .to_string()
            .contains("expected 64 pixels"));
        assert!(matches!(
            read_digits_csv(&dir.path().join("gone.csv")),
            Err(TaskError::Missing(_))
        ));

        let images = dir.path().join("images-idx3-ubyte.gz");
        let labels = dir.path().join("labels-idx1-ubyte");
        let mut img = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2];
        img.extend([0, 255, 51, 102, 1, 2, 3, 4]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &img).unwrap();
        std::fs::write(&images, gz.finish().unwrap()).unwrap();
        std::fs::write(&labels, [0, 0, 8, 1, 0, 0, 0, 2, 7, 1]).unwrap();
        let f = read_idx(&images, &labels).unwrap();
        assert_eq!((f.count, f.height, f.width), (2, 2, 2));
        assert_eq!(f.labels, vec![7, 1]);
        assert_eq!(f.pixels[1], 1.0);
        let (train, val) = f.split(0.5, 1);
        assert_eq!((train.count, val.count), (1, 1));
        assert!(read_idx(&labels, &labels).is_err());
    }
}
