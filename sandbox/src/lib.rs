//! The autoarch architecture language.
//!
//! Architecture code is Starlark (a hermetic Python dialect). Running its `def model(x)` *traces*
//! a typed graph ([`ArchGraph`]): every op call records a node with its inferred shape, parameter
//! ops record parameter shapes and initialisers. The crate owns the op registry (shape rules,
//! FLOP counts, docs), diagnostics, the canonical fingerprint, printing graphs back as Starlark or
//! PyTorch, and tracing in an isolated child process with OS limits.
//!
//! ```
//! use autoarch_sandbox::{trace, TaskShape, TraceConfig};
//!
//! let code = "def model(x):\n    return linear(flatten(x), NUM_CLASSES)\n";
//! let config = TraceConfig::new(TaskShape::by_name("digits").unwrap());
//! let traced = trace(code, &config);
//! let traced = traced.traced().expect("the code traces");
//! assert_eq!(traced.stats.params, 64 * 10 + 10);
//! ```
//!
//! No burn and no IO here, except at the edge: [`isolate`] spawns and serves the child process.

pub mod diagnostic;
pub mod einsum;
pub mod graph;
pub mod isolate;
pub mod ops;
pub mod outline;
pub mod param;
pub mod printer;
pub mod shape;
pub mod task;
pub mod tracer;

pub use diagnostic::{render_all, Diagnostic};
pub use graph::{ArchGraph, Fingerprint, Node, NodeId, ParamId, Span, Stats};
pub use ops::{reference_brief, reference_markdown, Op, OpSpec, REGISTRY};
pub use param::{Init, ParamRole, ParamSpec};
pub use shape::{DType, Dim, Shape};
pub use task::{Direction, Metric, TaskForm, TaskKind, TaskShape};
pub use tracer::{trace, Limits, TraceConfig, TraceOutcome, Traced};
