//! Times the phases of tracing the 1,000-op benchmark program:
//! `cargo run --release --example phases` from `sandbox/`.

use autoarch_sandbox::{diagnostic, trace, TaskShape, TraceConfig};
use std::time::Instant;

fn main() {
    let file =
        std::env::var("PROGRAM").unwrap_or_else(|_| "benches/program_1000_looped.star".into());
    let src = std::fs::read_to_string(&file).expect("run from sandbox/");
    let cfg = TraceConfig::new(TaskShape::by_name("mqar").expect("built-in task"));
    let traced = trace(&src, &cfg)
        .traced()
        .expect("the program traces")
        .clone();
    let only = std::env::args().nth(1);
    let n = 300;
    let time = |name: &str, f: &dyn Fn()| {
        if only.as_deref().is_some_and(|o| o != name) {
            return;
        }
        for _ in 0..20 {
            f()
        }
        let start = Instant::now();
        for _ in 0..n {
            f()
        }
        println!("{name:<16} {:?}", start.elapsed() / n);
    };
    time("trace", &|| {
        std::hint::black_box(trace(&src, &cfg));
    });
    time("fingerprint", &|| {
        std::hint::black_box(traced.graph.fingerprint());
    });
    time("stats", &|| {
        std::hint::black_box(traced.graph.stats());
    });
    time("syntax-scan", &|| {
        std::hint::black_box(diagnostic::missing_syntax(&src));
    });
}
