//! The autoarch evaluator: trains and scores traced architectures on a campaign's task.
//!
//! - [`model`]: `ArchGraph` → a burn model (parameters as `Param`s, an interpreter over the nodes).
//! - [`data`], [`mad`] and [`task`]: the tasks' data, deterministic from a seed (the generated
//!   tasks: MQAR and the MAD suite), and their losses and metrics.
//! - [`train`]: AdamW with warm-up and cosine decay, global-norm clipping, divergence checks, scoring.
//! - [`job`] and [`worker`]: the JSON-lines protocol and the isolated worker processes.
//!
//! The only crate that knows burn (a test in the agent crate holds that).

pub mod custom;
pub mod data;
pub mod error;
pub mod job;
pub mod mad;
pub mod model;
pub mod task;
pub mod train;
pub mod worker;

pub use error::{DeviceError, GraphError, MachineError, TaskError, TrainError};
pub use job::{run_job, EvalResult, Job, Status};
pub use task::{reference_scores, Reference, Task, TaskConfig};
pub use train::{Progress, TrainConfig};
pub use worker::{Evaluator, Hello, JobLimits, Placement, WorkerCommand};
