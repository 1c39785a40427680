//! Fuzz the tracer with arbitrary source text: it must never panic, and every program that
//! traces must print back to flat Starlark with the same fingerprint.
//!
//! `cargo fuzz run trace` from `sandbox/` (see docs/testing.md, "Fuzzing").

#![no_main]

use autoarch_sandbox::{printer, trace, Limits, TaskShape, TraceConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let task = if data.first().is_some_and(|b| b % 2 == 0) {
        "mqar"
    } else {
        "digits"
    };
    let config = TraceConfig {
        task: TaskShape::by_name(task).expect("built-in task"),
        limits: Limits {
            max_ticks: 100_000,
            deadline_seconds: 0.5,
            max_nodes: 2_000,
            ..Limits::default()
        },
    };
    if let Some(traced) = trace(source, &config).traced() {
        let flat = printer::to_starlark(&traced.graph);
        let again = trace(&flat, &config);
        let again = again.traced().expect("a printed graph traces");
        assert_eq!(again.fingerprint, traced.fingerprint);
    }
});
