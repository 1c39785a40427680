//! Where the archive's bytes live: ordered key-value trees with atomic multi-tree writes.
//!
//! [`SledBackend`] is the durable store; [`MemoryBackend`] holds the same trees in memory (tests,
//! review snapshots). Everything above this trait — records, indexes, queries — is written once,
//! and the same tests run against both.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::RwLock;

use crate::{Error, Result};

/// The trees of an archive.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Tree {
    /// Counters and the archive format version.
    Meta,
    Campaigns,
    /// id → candidate record.
    Candidates,
    /// (candidate, evaluation id) → evaluation record.
    Evaluations,
    /// candidate → derived summary.
    Summaries,
    /// fingerprint → first candidate with it.
    Fingerprints,
    /// (parent, child) → ().
    Children,
    /// (tag, 0, candidate) → ().
    Tags,
    /// (metric, 0, ordered value, candidate) → () for successful candidates: top-k in O(k).
    Metrics,
    /// MAP-Elites cell → elite candidate.
    Cells,
    /// (cell, 0, candidate) → () for successful candidates.
    CellMembers,
    /// (island, candidate) → () for successful candidates.
    Islands,
    /// candidate → () for successful candidates.
    Successful,
    Insights,
    Events,
}

impl Tree {
    pub const ALL: [Tree; 15] = [
        Tree::Meta,
        Tree::Campaigns,
        Tree::Candidates,
        Tree::Evaluations,
        Tree::Summaries,
        Tree::Fingerprints,
        Tree::Children,
        Tree::Tags,
        Tree::Metrics,
        Tree::Cells,
        Tree::CellMembers,
        Tree::Islands,
        Tree::Successful,
        Tree::Insights,
        Tree::Events,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Campaigns => "campaigns",
            Tree::Candidates => "candidates",
            Tree::Evaluations => "evaluations",
            Tree::Summaries => "summaries",
            Tree::Fingerprints => "fingerprints",
            Tree::Children => "children",
            Tree::Tags => "tags",
            Tree::Metrics => "metrics",
            Tree::Cells => "cells",
            Tree::CellMembers => "cell_members",
            Tree::Islands => "islands",
            Tree::Successful => "successful",
            Tree::Insights => "insights",
            Tree::Events => "events",
        }
    }
}

/// One change of a write set.
#[derive(Clone, Debug)]
pub enum Write {
    Put(Tree, Vec<u8>, Vec<u8>),
    Delete(Tree, Vec<u8>),
}

/// Changes applied all together or not at all.
#[derive(Clone, Debug, Default)]
pub struct WriteSet(pub Vec<Write>);

impl WriteSet {
    pub fn put(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.0.push(Write::Put(tree, key.into(), value.into()));
    }

    pub fn delete(&mut self, tree: Tree, key: impl Into<Vec<u8>>) {
        self.0.push(Write::Delete(tree, key.into()));
    }
}

pub type Entry = (Vec<u8>, Vec<u8>);

/// Ordered byte trees with atomic multi-tree writes.
pub trait Backend: Send + Sync {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Entries whose key starts with `prefix`, in key order (or reversed), at most `limit`.
    fn scan(&self, tree: Tree, prefix: &[u8], reverse: bool, limit: usize) -> Result<Vec<Entry>>;
    /// The first entry with `prefix` whose key is at least `from`.
    fn first_from(&self, tree: Tree, prefix: &[u8], from: &[u8]) -> Result<Option<Entry>>;
    /// Apply every write or none. With `durable`, the writes are on disk when this returns.
    fn apply(&self, writes: &WriteSet, durable: bool) -> Result<()>;
    fn flush(&self) -> Result<()>;
    /// Bytes on disk, if the backend has a disk.
    fn size_on_disk(&self) -> Option<u64>;
}

/// The durable backend: one sled database, one sled tree per [`Tree`].
pub struct SledBackend {
    db: sled::Db,
    trees: Vec<sled::Tree>,
}

fn store_error(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

impl SledBackend {
    pub fn open(dir: &Path) -> Result<SledBackend> {
        let db = sled::Config::new()
            .path(dir.join("db"))
            .open()
            .map_err(|e| match e {
                // sled reports its file lock as ErrorKind::Other with this message.
                sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("could not acquire lock") =>
                {
                    Error::InUse {
                        dir: dir.to_path_buf(),
                        pid: None,
                    }
                }
                other => store_error(other),
            })?;
        let trees = Tree::ALL
            .iter()
            .map(|t| db.open_tree(t.name()).map_err(store_error))
            .collect::<Result<Vec<_>>>()?;
        Ok(SledBackend { db, trees })
    }

    fn tree(&self, t: Tree) -> &sled::Tree {
        &self.trees[Tree::ALL
            .iter()
            .position(|x| *x == t)
            .expect("every tree is opened")]
    }
}

impl Backend for SledBackend {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tree(tree)
            .get(key)
            .map_err(store_error)?
            .map(|v| v.to_vec()))
    }

    fn scan(&self, tree: Tree, prefix: &[u8], reverse: bool, limit: usize) -> Result<Vec<Entry>> {
        let iter = self.tree(tree).scan_prefix(prefix);
        let collect = |item: sled::Result<(sled::IVec, sled::IVec)>| {
            item.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(store_error)
        };
        if reverse {
            iter.rev().take(limit).map(collect).collect()
        } else {
            iter.take(limit).map(collect).collect()
        }
    }

    fn first_from(&self, tree: Tree, prefix: &[u8], from: &[u8]) -> Result<Option<Entry>> {
        match self.tree(tree).range(from..).next() {
            Some(Ok((k, v))) if k.starts_with(prefix) => Ok(Some((k.to_vec(), v.to_vec()))),
            Some(Err(e)) => Err(store_error(e)),
            _ => Ok(None),
        }
    }

    fn apply(&self, writes: &WriteSet, durable: bool) -> Result<()> {
        use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
        let touched: BTreeSet<Tree> = writes
            .0
            .iter()
            .map(|w| match w {
                Write::Put(t, _, _) | Write::Delete(t, _) => *t,
            })
            .collect();
        let touched: Vec<Tree> = touched.into_iter().collect();
        let trees: Vec<&sled::Tree> = touched.iter().map(|t| self.tree(*t)).collect();
        let index = |t: Tree| touched.iter().position(|x| *x == t).expect("touched");
        trees
            .as_slice()
            .transaction(|views| {
                for w in &writes.0 {
                    match w {
                        Write::Put(t, k, v) => {
                            views[index(*t)].insert(k.as_slice(), v.as_slice())?;
                        }
                        Write::Delete(t, k) => {
                            views[index(*t)].remove(k.as_slice())?;
                        }
                    }
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(|e: TransactionError<()>| store_error(format!("{e:?}")))?;
        if durable {
            self.db.flush().map_err(store_error)?;
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map(|_| ()).map_err(store_error)
    }

    fn size_on_disk(&self) -> Option<u64> {
        self.db.size_on_disk().ok()
    }
}

type Trees = BTreeMap<Tree, BTreeMap<Vec<u8>, Vec<u8>>>;

/// The same trees in memory.
#[derive(Default)]
pub struct MemoryBackend {
    trees: RwLock<Trees>,
}

impl Backend for MemoryBackend {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let trees = self.trees.read().expect("no writer panicked");
        Ok(trees.get(&tree).and_then(|t| t.get(key)).cloned())
    }

    fn scan(&self, tree: Tree, prefix: &[u8], reverse: bool, limit: usize) -> Result<Vec<Entry>> {
        let trees = self.trees.read().expect("no writer panicked");
        let Some(t) = trees.get(&tree) else {
            return Ok(Vec::new());
        };
        let matching = t
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()));
        Ok(if reverse {
            let mut all: Vec<Entry> = matching.collect();
            all.reverse();
            all.truncate(limit);
            all
        } else {
            matching.take(limit).collect()
        })
    }

    fn first_from(&self, tree: Tree, prefix: &[u8], from: &[u8]) -> Result<Option<Entry>> {
        let trees = self.trees.read().expect("no writer panicked");
        Ok(trees.get(&tree).and_then(|t| {
            t.range(from.to_vec()..)
                .next()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
        }))
    }

    fn apply(&self, writes: &WriteSet, _durable: bool) -> Result<()> {
        let mut trees = self.trees.write().expect("no writer panicked");
        for w in &writes.0 {
            match w {
                Write::Put(t, k, v) => {
                    trees.entry(*t).or_default().insert(k.clone(), v.clone());
                }
                Write::Delete(t, k) => {
                    if let Some(tree) = trees.get_mut(t) {
                        tree.remove(k);
                    }
                }
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn size_on_disk(&self) -> Option<u64> {
        None
    }
}

/// Big-endian ids sort numerically.
pub fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

pub fn key_id(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}

/// An f64 as bytes that sort like the numbers (NaN is not indexed).
pub fn ordered_f64(v: f64) -> [u8; 8] {
    let bits = v.to_bits();
    let flipped = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    flipped.to_be_bytes()
}

pub fn f64_from_ordered(bytes: [u8; 8]) -> f64 {
    let flipped = u64::from_be_bytes(bytes);
    let bits = if flipped >> 63 == 1 {
        flipped & !(1 << 63)
    } else {
        !flipped
    };
    f64::from_bits(bits)
}

/// `name`, a 0 byte, then `rest`: a key inside a named group.
pub fn named_key(name: &str, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1 + rest.len());
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k.extend_from_slice(rest);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_floats_sort_like_numbers() {
        let values = [-1e30, -2.5, -0.0, 0.0, 1e-9, 3.0, 1e30, f64::INFINITY];
        let keys: Vec<[u8; 8]> = values.iter().map(|v| ordered_f64(*v)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        for v in values {
            assert_eq!(f64_from_ordered(ordered_f64(v)).to_bits(), v.to_bits());
        }
    }
}
