//! The synthetic token tasks of MAD (Poli et al. 2024, "Mechanistic Design and Scaling of Hybrid
//! Architectures", github.com/athms/mad-lab), generated in code and scaled down for a CPU.
//!
//! Each task isolates one capability a sequence model needs, so that a design's profile across
//! them says what it can and cannot do:
//!
//! - [`FuzzyRecall`] (`fuzzy_recall`): recall when keys and values are motifs of 1 to `motif`
//!   tokens, so the model must find where a key starts and ends before it can look it up. MAD: vocab
//!   16, length 128, motifs up to 3. Here by default vocab 32, length 64, 4 pairs, motifs up to 3.
//! - [`NoisyRecall`] (`noisy_recall`): MQAR-style recall with tokens from a separate noise
//!   vocabulary mixed into the key-value section (a share `noise` of it) and between the queries, so
//!   the model must ignore what is irrelevant. MAD: vocab 32 (16 of them noise), length 128, 20%
//!   noise. Here by default vocab 64 (32 of them noise), length 32, 4 pairs, 20% noise.
//! - [`SelectiveCopy`] (`selective_copy`): `copy` content tokens scattered among blanks, to be
//!   written out in order after a copy prompt: content-dependent filtering and counting. MAD: vocab
//!   16, length 256, 16 tokens to copy. Here by default vocab 16, length 32, 8 tokens to copy.
//! - [`Memorization`] (`memorization`): a fixed map from keys of `motif` tokens to values (the same
//!   in every run, drawn from `map_seed`), asked after every key: facts stored in the weights
//!   rather than read from the context. MAD: vocab 256 (127 one-token keys, each followed by an
//!   insert token), length 32. Here by default vocab 32 and two-token keys (256 facts), length
//!   32: one-token keys are learnt by every library seed within 120 steps.
//!
//! MAD's in-context recall is [`Mqar`](crate::data::Mqar) (`mqar`); MAD's harder settings are
//! `mqar` with more `kv_pairs` and a longer `seq_len`. MAD trains on fixed sets of 12,800 examples
//! (256 for memorization) for many epochs; here every training step draws fresh examples, and
//! the validation set is fixed by the campaign's seed. MAD's own generators put the targets one
//! position later (inputs and targets are an autoregressive shift of one sequence); here, as in
//! `mqar`, the target sits at the position whose next token it is, and every position that asks
//! nothing is [`IGNORE`].
//!
//! The chance score of each task ([`TokenTask::chance`]) is one over the number of tokens that
//! can be a target; every task's ceiling is an accuracy of 1.

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::{place_queries, TokenTask, IGNORE};
use crate::error::TaskError;

fn refuse(task: &str, message: String) -> Result<(), TaskError> {
    Err(TaskError::Options(format!("{task}: {message}")))
}

/// Associative recall over motifs (MAD's fuzzy in-context recall).
///
/// Token 0 is padding; keys are drawn from `[1, vocab/2)` and values from `[vocab/2, vocab)`, so
/// that a key's and a value's tokens never mix. Each sequence opens with `kv_pairs` pairs, a key
/// of 1 to `motif` tokens (no key is a prefix of another, so a key is known when its last token
/// arrives) followed by a value of 1 to `motif` tokens. Then every key is queried once, in a random
/// order, followed by its value: the target at the key's last token is the value's first token,
/// and at each value token the next one (the value is fed in as the model predicts it). The spare
/// positions are padding, spread between the queries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FuzzyRecall {
    pub seq_len: usize,
    pub vocab: usize,
    pub kv_pairs: usize,
    /// The longest key or value, in tokens.
    pub motif: usize,
}

impl Default for FuzzyRecall {
    fn default() -> FuzzyRecall {
        FuzzyRecall {
            seq_len: 64,
            vocab: 32,
            kv_pairs: 4,
            motif: 3,
        }
    }
}

/// Draws keys until one is no prefix of another (nor equal); after many misses, a one-token key
/// whose token starts no key yet, which always exists while fewer keys than key tokens are drawn.
fn prefix_free_keys(
    rng: &mut ChaCha8Rng,
    count: usize,
    motif: usize,
    tokens: std::ops::Range<i64>,
) -> Vec<Vec<i64>> {
    let mut keys: Vec<Vec<i64>> = Vec::with_capacity(count);
    let clash = |a: &[i64], b: &[i64]| a.starts_with(b) || b.starts_with(a);
    while keys.len() < count {
        let mut key = None;
        for _ in 0..64 {
            let candidate = motif_of(rng, motif, tokens.clone());
            if keys.iter().all(|k| !clash(k, &candidate)) {
                key = Some(candidate);
                break;
            }
        }
        let key = key.unwrap_or_else(|| {
            let free: Vec<i64> = tokens
                .clone()
                .filter(|t| keys.iter().all(|k| k[0] != *t))
                .collect();
            vec![*free.choose(rng).expect("fewer keys than key tokens")]
        });
        keys.push(key);
    }
    keys
}

/// A motif of 1 to `motif` tokens (the length uniform), each token uniform over `tokens`.
fn motif_of(rng: &mut ChaCha8Rng, motif: usize, tokens: std::ops::Range<i64>) -> Vec<i64> {
    let len = rng.random_range(1..=motif);
    (0..len).map(|_| rng.random_range(tokens.clone())).collect()
}

/// Splits `total` items into `parts` random counts (each item lands in a uniform part).
fn spread(rng: &mut ChaCha8Rng, total: usize, parts: usize) -> Vec<usize> {
    let mut counts = vec![0; parts];
    for _ in 0..total {
        counts[rng.random_range(0..parts)] += 1;
    }
    counts
}

impl TokenTask for FuzzyRecall {
    fn seq_len(&self) -> usize {
        self.seq_len
    }

    fn vocab(&self) -> usize {
        self.vocab
    }

    fn validate(&self) -> Result<(), TaskError> {
        let task = "fuzzy_recall";
        if self.vocab < 4 {
            return refuse(
                task,
                format!(
                    "vocab {} is too small; keys and values need at least 4 tokens",
                    self.vocab
                ),
            );
        }
        if self.motif == 0 {
            return refuse(
                task,
                "motif must be at least 1 (the longest key or value, in tokens)".into(),
            );
        }
        let keys = self.vocab / 2 - 1;
        if self.kv_pairs == 0 || self.kv_pairs > keys {
            return refuse(
                task,
                format!(
                "kv_pairs must be between 1 and {keys} for a vocab of {} (its key tokens), not {}",
                self.vocab, self.kv_pairs
            ),
            );
        }
        let needs = 4 * self.motif * self.kv_pairs;
        if self.seq_len < needs {
            return refuse(task, format!(
                "seq_len {} cannot hold {} key-value pairs of up to {} tokens each and their queries (needs at least {needs}); raise seq_len or lower kv_pairs or motif",
                self.seq_len, self.kv_pairs, self.motif
            ));
        }
        Ok(())
    }

    fn example(&self, rng: &mut ChaCha8Rng) -> (Vec<i64>, Vec<i64>) {
        let half = (self.vocab / 2) as i64;
        let keys = prefix_free_keys(rng, self.kv_pairs, self.motif, 1..half);
        let values: Vec<Vec<i64>> = (0..self.kv_pairs)
            .map(|_| motif_of(rng, self.motif, half..self.vocab as i64))
            .collect();
        let mut tokens = Vec::with_capacity(self.seq_len);
        for (k, v) in keys.iter().zip(&values) {
            tokens.extend(k);
            tokens.extend(v);
        }
        let mut targets = vec![IGNORE; tokens.len()];
        let used = 2 * tokens.len();
        let mut order: Vec<usize> = (0..self.kv_pairs).collect();
        order.shuffle(rng);
        let pads = spread(rng, self.seq_len - used, self.kv_pairs + 1);
        for (&pair, &pad) in order.iter().zip(&pads) {
            tokens.extend(std::iter::repeat_n(0, pad));
            targets.extend(std::iter::repeat_n(IGNORE, pad));
            let (k, v) = (&keys[pair], &values[pair]);
            tokens.extend(k);
            targets.extend(std::iter::repeat_n(IGNORE, k.len() - 1));
            tokens.extend(v);
            // Each position predicts the next value token; the value's last token asks nothing.
            targets.extend(v);
            targets.push(IGNORE);
        }
        tokens.resize(self.seq_len, 0);
        targets.resize(self.seq_len, IGNORE);
        (tokens, targets)
    }

    /// One over the number of value tokens.
    fn chance(&self) -> f64 {
        1.0 / (self.vocab - self.vocab / 2) as f64
    }
}

/// Multi-query associative recall with noise (MAD's noisy in-context recall).
///
/// The upper half of the vocabulary is noise; keys are drawn from `[1, vocab/4)` and values from
/// `[vocab/4, vocab/2)`. The key-value section holds `kv_pairs` adjacent key-value pairs and, at
/// random places between them, single noise tokens that make up a share `noise` of the section.
/// Then every key is queried once as in `mqar` (at even offsets, short gaps preferred; the target
/// at a query is its value), and every other position is a noise token.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct NoisyRecall {
    pub seq_len: usize,
    pub vocab: usize,
    pub kv_pairs: usize,
    /// The share of noise tokens in the key-value section, in [0, 0.9].
    pub noise: f64,
}

impl Default for NoisyRecall {
    fn default() -> NoisyRecall {
        NoisyRecall {
            seq_len: 32,
            vocab: 64,
            kv_pairs: 4,
            noise: 0.2,
        }
    }
}

impl NoisyRecall {
    /// The noise tokens in the key-value section: a share `noise` of it, rounded.
    pub fn noise_tokens(&self) -> usize {
        let pairs = (2 * self.kv_pairs) as f64;
        (pairs * self.noise / (1.0 - self.noise)).round() as usize
    }

    /// The length of the key-value section.
    pub fn context(&self) -> usize {
        2 * self.kv_pairs + self.noise_tokens()
    }
}

impl TokenTask for NoisyRecall {
    fn seq_len(&self) -> usize {
        self.seq_len
    }

    fn vocab(&self) -> usize {
        self.vocab
    }

    fn validate(&self) -> Result<(), TaskError> {
        let task = "noisy_recall";
        if !(0.0..=0.9).contains(&self.noise) {
            return refuse(task, format!("noise must be between 0 and 0.9 (the share of noise tokens among the key-value pairs), not {}", self.noise));
        }
        if self.vocab < 8 {
            return refuse(
                task,
                format!(
                    "vocab {} is too small; keys, values and noise need at least 8 tokens",
                    self.vocab
                ),
            );
        }
        let keys = self.vocab / 4 - 1;
        if self.kv_pairs == 0 || self.kv_pairs > keys {
            return refuse(task, format!(
                "kv_pairs must be between 1 and {keys} for a vocab of {} (keys are a quarter of it), not {}",
                self.vocab, self.kv_pairs
            ));
        }
        let needs = self.context() + 2 * self.kv_pairs;
        if self.seq_len < needs {
            return refuse(task, format!(
                "seq_len {} cannot hold {} key-value pairs with {} noise tokens and their queries (needs at least {needs}); raise seq_len or lower kv_pairs or noise",
                self.seq_len, self.kv_pairs, self.noise_tokens()
            ));
        }
        Ok(())
    }

    fn example(&self, rng: &mut ChaCha8Rng) -> (Vec<i64>, Vec<i64>) {
        let (quarter, half) = ((self.vocab / 4) as i64, (self.vocab / 2) as i64);
        let mut key_pool: Vec<i64> = (1..quarter).collect();
        key_pool.shuffle(rng);
        let keys = &key_pool[..self.kv_pairs];
        let values: Vec<i64> = (0..self.kv_pairs)
            .map(|_| rng.random_range(quarter..half))
            .collect();
        // The section's units: a pair (Some) or a noise token (None), in a random order.
        let mut units: Vec<Option<usize>> = (0..self.kv_pairs).map(Some).collect();
        units.extend(std::iter::repeat_n(None, self.noise_tokens()));
        units.shuffle(rng);
        let mut tokens = Vec::with_capacity(self.seq_len);
        for unit in units {
            match unit {
                Some(i) => tokens.extend([keys[i], values[i]]),
                None => tokens.push(rng.random_range(half..self.vocab as i64)),
            }
        }
        let context = tokens.len();
        tokens.resize(self.seq_len, 0);
        let mut targets = vec![IGNORE; self.seq_len];
        let is_query = place_queries(rng, &mut tokens, &mut targets, context, keys, &values);
        for (pos, t) in tokens.iter_mut().enumerate().skip(context) {
            if !is_query[pos] {
                *t = rng.random_range(half..self.vocab as i64);
            }
        }
        (tokens, targets)
    }

    /// One over the number of value tokens (a quarter of the vocabulary).
    fn chance(&self) -> f64 {
        1.0 / (self.vocab / 2 - self.vocab / 4) as f64
    }
}

/// Blank token of [`SelectiveCopy`].
pub const COPY_BLANK: i64 = 0;
/// The copy prompt of [`SelectiveCopy`].
pub const COPY_PROMPT: i64 = 1;

/// Selective copying (MAD; Gu and Dao 2023, Mamba).
///
/// The first `seq_len − copy` positions hold `copy` content tokens (from `[2, vocab)`) at random
/// places among blanks (token 0). The copy prompt (token 1) follows, then blanks to the end: the
/// target at the prompt is the first content token and at each following position the next one,
/// so the last `copy` positions spell out the content in order. Nothing is fed back: the model
/// must count where it is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SelectiveCopy {
    pub seq_len: usize,
    pub vocab: usize,
    /// The number of content tokens to copy.
    pub copy: usize,
}

impl Default for SelectiveCopy {
    fn default() -> SelectiveCopy {
        SelectiveCopy {
            seq_len: 32,
            vocab: 16,
            copy: 8,
        }
    }
}

impl TokenTask for SelectiveCopy {
    fn seq_len(&self) -> usize {
        self.seq_len
    }

    fn vocab(&self) -> usize {
        self.vocab
    }

    fn validate(&self) -> Result<(), TaskError> {
        let task = "selective_copy";
        if self.vocab < 3 {
            return refuse(task, format!("vocab {} is too small; the blank, the copy prompt and content need at least 3 tokens", self.vocab));
        }
        if self.copy == 0 {
            return refuse(
                task,
                "copy must be at least 1 (the number of tokens to copy)".into(),
            );
        }
        let needs = 2 * self.copy + 1;
        if self.seq_len < needs {
            return refuse(task, format!(
                "seq_len {} cannot hold {} tokens to copy among blanks and their copies (needs at least {needs}); raise seq_len or lower copy",
                self.seq_len, self.copy
            ));
        }
        Ok(())
    }

    fn example(&self, rng: &mut ChaCha8Rng) -> (Vec<i64>, Vec<i64>) {
        let region = self.seq_len - self.copy;
        let content: Vec<i64> = (0..self.copy)
            .map(|_| rng.random_range(2..self.vocab as i64))
            .collect();
        let mut places = rand::seq::index::sample(rng, region, self.copy).into_vec();
        places.sort_unstable();
        let mut tokens = vec![COPY_BLANK; self.seq_len];
        for (&p, &c) in places.iter().zip(&content) {
            tokens[p] = c;
        }
        tokens[region] = COPY_PROMPT;
        let mut targets = vec![IGNORE; region];
        targets.extend(&content);
        (tokens, targets)
    }

    /// One over the number of content tokens.
    fn chance(&self) -> f64 {
        1.0 / (self.vocab - 2) as f64
    }
}

/// The most facts [`Memorization`] holds (its map is a table in memory).
pub const MAX_FACTS: usize = 1 << 20;

/// Fact memorization (MAD's memorization).
///
/// A fixed map sends each key, a motif of `motif` tokens from `[0, vocab/2)`, to a value in
/// `[vocab/2, vocab)`; the values are dealt out evenly (one-to-one when there are as many keys as
/// values, as with one-token keys). The map is drawn from `map_seed`, not from the run's seed, so
/// every candidate and every training seed learns the same facts. A sequence is keys one after
/// another, and the target at each key's last token is its value: nothing in the context helps,
/// the facts must be in the weights. Positions left over after the last whole key hold key tokens
/// and ask nothing.
///
/// With one-token keys a lookup from the embedding to the output head is enough, and every
/// library seed learns 128 facts (vocab 256) or even 2,048 (vocab 4,096) within 120 steps; with
/// two-token keys (the default) there are (vocab/2)² facts, and a model must combine a token with
/// the one before it (as MAD's model combines a key with the insert token after it).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Memorization {
    seq_len: usize,
    vocab: usize,
    motif: usize,
    map_seed: u64,
    /// `map[index of the key]` is the key's value (empty when there would be too many facts).
    map: Vec<i64>,
}

impl Default for Memorization {
    fn default() -> Memorization {
        Memorization::new(32, 32, 2, 0)
    }
}

impl Memorization {
    /// The task with its map drawn from `map_seed`.
    pub fn new(seq_len: usize, vocab: usize, motif: usize, map_seed: u64) -> Memorization {
        let facts = (vocab / 2)
            .checked_pow(motif as u32)
            .filter(|&n| n <= MAX_FACTS && vocab >= 2)
            .unwrap_or(0);
        let values = (vocab / 2) as i64..vocab as i64;
        let mut map: Vec<i64> = values.cycle().take(facts).collect();
        map.shuffle(&mut ChaCha8Rng::seed_from_u64(map_seed ^ 0xfac7_5eed));
        Memorization {
            seq_len,
            vocab,
            motif,
            map_seed,
            map,
        }
    }

    /// The seed the map was drawn from.
    pub fn map_seed(&self) -> u64 {
        self.map_seed
    }

    /// The length of a key, in tokens.
    pub fn motif(&self) -> usize {
        self.motif
    }

    /// The value of a key (`motif` tokens).
    pub fn value(&self, key: &[i64]) -> i64 {
        let keys = (self.vocab / 2) as i64;
        let index = key.iter().fold(0, |at, &t| at * keys + t);
        self.map[index as usize]
    }
}

impl TokenTask for Memorization {
    fn seq_len(&self) -> usize {
        self.seq_len
    }

    fn vocab(&self) -> usize {
        self.vocab
    }

    fn validate(&self) -> Result<(), TaskError> {
        let task = "memorization";
        if self.vocab < 2 {
            return refuse(
                task,
                format!(
                    "vocab {} is too small; keys and values need at least 2 tokens",
                    self.vocab
                ),
            );
        }
        if self.motif == 0 {
            return refuse(
                task,
                "motif must be at least 1 (the length of a key, in tokens)".into(),
            );
        }
        if self.map.is_empty() {
            return refuse(task, format!(
                "{} keys of {} tokens are more facts than the {MAX_FACTS} a map holds; lower vocab or motif",
                self.vocab / 2, self.motif
            ));
        }
        if self.seq_len < self.motif {
            return refuse(
                task,
                format!(
                    "seq_len {} cannot hold a key of {} tokens; raise seq_len or lower motif",
                    self.seq_len, self.motif
                ),
            );
        }
        Ok(())
    }

    fn example(&self, rng: &mut ChaCha8Rng) -> (Vec<i64>, Vec<i64>) {
        let keys = (self.vocab / 2) as i64;
        let tokens: Vec<i64> = (0..self.seq_len)
            .map(|_| rng.random_range(0..keys))
            .collect();
        let mut targets = vec![IGNORE; self.seq_len];
        for (i, key) in tokens.chunks_exact(self.motif).enumerate() {
            targets[(i + 1) * self.motif - 1] = self.value(key);
        }
        (tokens, targets)
    }

    /// One over the number of values (each is the value of as many keys as any other).
    fn chance(&self) -> f64 {
        1.0 / (self.vocab - self.vocab / 2) as f64
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    fn rows(task: &dyn TokenTask, seed: u64, n: usize) -> Vec<(Vec<i64>, Vec<i64>)> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| task.example(&mut rng)).collect()
    }

    /// Splits a fuzzy-recall context into its (key, value) motifs by the token halves.
    fn motifs(tokens: &[i64], half: i64, pairs: usize) -> Vec<(Vec<i64>, Vec<i64>)> {
        let mut out: Vec<(Vec<i64>, Vec<i64>)> = Vec::new();
        let mut at = 0;
        while out.len() < pairs {
            let key: Vec<i64> = tokens[at..]
                .iter()
                .take_while(|&&t| t < half)
                .copied()
                .collect();
            at += key.len();
            let value: Vec<i64> = tokens[at..]
                .iter()
                .take_while(|&&t| t >= half)
                .copied()
                .collect();
            at += value.len();
            out.push((key, value));
        }
        out
    }

    #[test]
    fn fuzzy_recall_asks_each_keys_value_token_by_token_after_the_key() {
        let task = FuzzyRecall::default();
        task.validate().unwrap();
        let mut lengths = BTreeSet::new();
        for (t, y) in rows(&task, 3, 200) {
            assert_eq!((t.len(), y.len()), (64, 64));
            let pairs = motifs(&t, 16, 4);
            let map: BTreeMap<Vec<i64>, Vec<i64>> = pairs.iter().cloned().collect();
            assert_eq!(map.len(), 4, "distinct keys: {pairs:?}");
            for (i, (k, v)) in pairs.iter().enumerate() {
                assert!(
                    (1..=3).contains(&k.len()) && (1..=3).contains(&v.len()),
                    "{pairs:?}"
                );
                lengths.insert(k.len());
                for (other, _) in &pairs[i + 1..] {
                    assert!(
                        !k.starts_with(other) && !other.starts_with(k),
                        "prefix-free: {pairs:?}"
                    );
                }
                assert!(
                    k.iter().all(|x| (1..16).contains(x)) && v.iter().all(|x| (16..32).contains(x))
                );
            }
            let context: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
            assert!(
                y[..context].iter().all(|&x| x == IGNORE),
                "no targets in the context"
            );
            // Every target is the token that follows it, inside a queried value.
            let asked: Vec<usize> = (0..64).filter(|&p| y[p] != IGNORE).collect();
            assert_eq!(asked.len(), pairs.iter().map(|p| p.1.len()).sum::<usize>());
            for &p in &asked {
                assert_eq!(y[p], t[p + 1]);
            }
            // Reading the query section back gives each key once, with its own value.
            let queries = motifs(
                &t[context..]
                    .iter()
                    .copied()
                    .filter(|&x| x != 0)
                    .collect::<Vec<_>>(),
                16,
                4,
            );
            let asked_keys: BTreeSet<&Vec<i64>> = queries.iter().map(|q| &q.0).collect();
            assert_eq!(asked_keys.len(), 4);
            for (k, v) in &queries {
                assert_eq!(map.get(k), Some(v), "{queries:?} vs {pairs:?}");
            }
        }
        assert_eq!(lengths, BTreeSet::from([1, 2, 3]), "keys of every length");
    }

    #[test]
    fn noisy_recall_mixes_in_the_asked_share_of_noise_and_queries_like_mqar() {
        for noise in [0.0, 0.2, 0.5] {
            let task = NoisyRecall {
                seq_len: 48,
                noise,
                kv_pairs: 6,
                ..NoisyRecall::default()
            };
            task.validate().unwrap();
            let context = task.context();
            let (mut noisy, mut total) = (0, 0);
            for (t, y) in rows(&task, 1, 100) {
                let pairs: Vec<(i64, i64)> = t[..context]
                    .windows(2)
                    .filter(|w| (1..16).contains(&w[0]))
                    .map(|w| (w[0], w[1]))
                    .collect();
                assert_eq!(pairs.len(), 6, "{t:?}");
                assert!(
                    pairs.iter().all(|(_, v)| (16..32).contains(v)),
                    "a key's value follows it"
                );
                noisy += t[..context].iter().filter(|&&x| x >= 32).count();
                total += context;
                let asked: Vec<usize> = (0..48).filter(|&p| y[p] != IGNORE).collect();
                assert_eq!(asked.len(), 6);
                for p in asked {
                    assert!(p >= context && (p - context).is_multiple_of(2));
                    assert_eq!(
                        Some(y[p]),
                        pairs.iter().find(|(k, _)| *k == t[p]).map(|p| p.1)
                    );
                }
                let fill = (context..48).filter(|&p| y[p] == IGNORE);
                assert!(
                    fill.into_iter().all(|p| t[p] >= 32),
                    "noise between the queries"
                );
            }
            let rate = noisy as f64 / total as f64;
            assert!((rate - noise).abs() < 0.05, "asked {noise}, got {rate}");
        }
    }

    #[test]
    fn selective_copy_asks_the_content_in_order_after_the_prompt() {
        let task = SelectiveCopy::default();
        task.validate().unwrap();
        let mut first_places = BTreeSet::new();
        for (t, y) in rows(&task, 5, 100) {
            let content: Vec<i64> = t[..24]
                .iter()
                .copied()
                .filter(|&x| x != COPY_BLANK)
                .collect();
            assert_eq!(content.len(), 8);
            assert!(content.iter().all(|x| (2..16).contains(x)));
            first_places.insert(t.iter().position(|&x| x >= 2));
            assert_eq!(t[24], COPY_PROMPT);
            assert!(t[25..].iter().all(|&x| x == COPY_BLANK));
            assert!(y[..24].iter().all(|&x| x == IGNORE));
            assert_eq!(&y[24..], &content[..]);
        }
        assert!(
            first_places.len() > 5,
            "the content moves: {first_places:?}"
        );
    }

    #[test]
    fn memorization_keeps_its_map_across_run_seeds_and_changes_it_with_the_map_seed() {
        let task = Memorization::default();
        task.validate().unwrap();
        let facts = |m: &Memorization, seed: u64| -> BTreeMap<Vec<i64>, i64> {
            let mut facts = BTreeMap::new();
            for (t, y) in rows(m, seed, 100) {
                for (p, &v) in y.iter().enumerate().filter(|(_, &v)| v != IGNORE) {
                    assert_eq!(p % 2, 1, "the target is at a key's last token");
                    let key = t[p - 1..=p].to_vec();
                    assert_eq!(*facts.entry(key).or_insert(v), v, "one value per key");
                }
            }
            facts
        };
        let (a, b) = (facts(&task, 0), facts(&task, 1));
        assert!(
            a.len() > 200,
            "most of the 256 keys appear in 1,600 draws: {}",
            a.len()
        );
        assert!(a.keys().flatten().all(|k| (0..16).contains(k)));
        assert!(a.values().all(|v| (16..32).contains(v)));
        let shared: Vec<_> = a.keys().filter(|k| b.contains_key(*k)).collect();
        assert!(shared.len() > 200);
        assert!(
            shared.iter().all(|k| a[*k] == b[*k]),
            "the run's seed keeps the facts"
        );
        let mut uses = BTreeMap::new();
        for k in 0..16 {
            for j in 0..16 {
                *uses.entry(task.value(&[k, j])).or_insert(0) += 1;
            }
        }
        assert!(
            uses.values().all(|&n| n == 16),
            "values dealt out evenly: {uses:?}"
        );
        let other = facts(&Memorization::new(32, 32, 2, 7), 0);
        let moved = other
            .iter()
            .filter(|(k, v)| a.get(*k).is_some_and(|w| w != *v))
            .count();
        assert!(moved > 150, "another map seed, other facts ({moved} moved)");
        assert_ne!(
            rows(&task, 0, 1),
            rows(&task, 1, 1),
            "the run's seed draws the keys"
        );
        let single = Memorization::new(8, 16, 1, 0);
        let values: BTreeSet<i64> = (0..8).map(|k| single.value(&[k])).collect();
        assert_eq!(values.len(), 8, "one-token keys map one-to-one");
    }

    #[test]
    fn each_task_is_deterministic_from_its_seed() {
        let tasks: [&dyn TokenTask; 4] = [
            &FuzzyRecall::default(),
            &NoisyRecall::default(),
            &SelectiveCopy::default(),
            &Memorization::default(),
        ];
        for task in tasks {
            assert_eq!(task.validation(7, 4), task.validation(7, 4));
            assert_ne!(task.validation(7, 4), task.validation(8, 4));
            let b = task.batch(&mut ChaCha8Rng::seed_from_u64(2), 3);
            assert_eq!(
                (b.tokens.len(), b.targets.len()),
                (3 * task.seq_len(), 3 * task.seq_len())
            );
            assert!(b
                .tokens
                .iter()
                .all(|&x| (0..task.vocab() as i64).contains(&x)));
            assert!(b.targets.iter().any(|&x| x != IGNORE));
        }
    }

    #[test]
    fn impossible_settings_are_refused_naming_the_option() {
        let errors: Vec<String> = [
            FuzzyRecall {
                seq_len: 40,
                ..FuzzyRecall::default()
            }
            .validate(),
            FuzzyRecall {
                motif: 0,
                ..FuzzyRecall::default()
            }
            .validate(),
            FuzzyRecall {
                kv_pairs: 16,
                ..FuzzyRecall::default()
            }
            .validate(),
            NoisyRecall {
                noise: 1.0,
                ..NoisyRecall::default()
            }
            .validate(),
            NoisyRecall {
                seq_len: 16,
                ..NoisyRecall::default()
            }
            .validate(),
            NoisyRecall {
                vocab: 16,
                ..NoisyRecall::default()
            }
            .validate(),
            SelectiveCopy {
                copy: 16,
                ..SelectiveCopy::default()
            }
            .validate(),
            SelectiveCopy {
                vocab: 2,
                ..SelectiveCopy::default()
            }
            .validate(),
            Memorization::new(1, 32, 2, 0).validate(),
            Memorization::new(32, 256, 4, 0).validate(),
        ]
        .into_iter()
        .map(|r| r.unwrap_err().to_string())
        .collect();
        expect_test::expect![[r#"
            fuzzy_recall: seq_len 40 cannot hold 4 key-value pairs of up to 3 tokens each and their queries (needs at least 48); raise seq_len or lower kv_pairs or motif
            fuzzy_recall: motif must be at least 1 (the longest key or value, in tokens)
            fuzzy_recall: kv_pairs must be between 1 and 15 for a vocab of 32 (its key tokens), not 16
            noisy_recall: noise must be between 0 and 0.9 (the share of noise tokens among the key-value pairs), not 1
            noisy_recall: seq_len 16 cannot hold 4 key-value pairs with 2 noise tokens and their queries (needs at least 18); raise seq_len or lower kv_pairs or noise
            noisy_recall: kv_pairs must be between 1 and 3 for a vocab of 16 (keys are a quarter of it), not 4
            selective_copy: seq_len 32 cannot hold 16 tokens to copy among blanks and their copies (needs at least 33); raise seq_len or lower copy
            selective_copy: vocab 2 is too small; the blank, the copy prompt and content need at least 3 tokens
            memorization: seq_len 1 cannot hold a key of 2 tokens; raise seq_len or lower motif
            memorization: 128 keys of 4 tokens are more facts than the 1048576 a map holds; lower vocab or motif"#]]
        .assert_eq(&errors.join("\n"));
    }

    #[test]
    fn chance_is_one_over_the_possible_targets() {
        assert_eq!(FuzzyRecall::default().chance(), 1.0 / 16.0);
        assert_eq!(NoisyRecall::default().chance(), 1.0 / 16.0);
        assert_eq!(SelectiveCopy::default().chance(), 1.0 / 14.0);
        assert_eq!(Memorization::default().chance(), 1.0 / 16.0);
    }
}
