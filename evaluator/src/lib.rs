//! The autoarch evaluator: trains and scores traced architectures on a campaign's task.
//!
//! Built so far: the task data ([`data`]): the MQAR generator and the readers for text, the 8×8
//! digits CSV and Fashion-MNIST IDX files, deterministic from a seed. The lowering of `ArchGraph`s
//! to burn modules, the training loop and the isolated worker come next (see ARCHITECTURE.md).

pub mod data;
