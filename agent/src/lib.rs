//! The autoarch agent: campaigns and the library behind the `autoarch` tool.
//!
//! - [`campaign`]: the event loop — seeds, proposals, traces, evaluations, promotion, budgets,
//!   resume — and the random baseline.
//! - [`search`]: search strategies (who is a parent, who is promoted).
//! - [`propose`]: proposers (mutation, LLM) and the LLM's prompts.
//! - [`machine`]: the IO boundary (worker processes, the trace child) behind traits.
//! - [`config`]: campaign files and their validation.
//! - [`seeds`]: the seed library, seed specs, the design header.
//! - [`report`]: the markdown report of a campaign.
//! - [`text`]: numbers and curves for people.
//!
//! The library never prints; the binary (`src/main.rs`, `src/cli/`) parses arguments, wires the
//! pieces together and renders what they return.

// Functions fit on a screen: the threshold (100 lines) is in clippy.toml.

pub mod benchmark;
pub mod campaign;
pub mod config;
pub mod machine;
pub mod propose;
pub mod report;
pub mod search;
pub mod seeds;
pub mod serve;
pub mod text;
