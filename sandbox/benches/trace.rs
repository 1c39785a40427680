//! Trace + check of a 1,000-op program, in process: `cargo bench -p autoarch-sandbox`.
//! Target: ≤ 2 ms. Two spellings of the same 1,004-node graph: with helpers and a loop (as
//! architecture code is usually written) and as 500 straight-line statements (the worst case
//! for Starlark's parser and compiler).

use autoarch_sandbox::{trace, TaskShape, TraceConfig};
use criterion::{criterion_group, criterion_main, Criterion};

const LOOPED: &str = include_str!("program_1000_looped.star");
const STRAIGHT: &str = include_str!("program_1000.star");

fn bench_trace(c: &mut Criterion) {
    let config = TraceConfig::new(TaskShape::by_name("mqar").expect("built-in task"));
    let looped = trace(LOOPED, &config);
    let straight = trace(STRAIGHT, &config);
    let (looped, straight) = (
        looped.traced().expect("the looped program traces"),
        straight.traced().expect("the straight-line program traces"),
    );
    assert!(looped.stats.nodes >= 1000, "{} nodes", looped.stats.nodes);
    assert_eq!(
        looped.fingerprint, straight.fingerprint,
        "one graph, two spellings"
    );
    c.bench_function("trace_check_1000_ops_looped", |b| {
        b.iter(|| trace(std::hint::black_box(LOOPED), &config))
    });
    c.bench_function("trace_check_1000_ops_straight_line", |b| {
        b.iter(|| trace(std::hint::black_box(STRAIGHT), &config))
    });
    c.bench_function("fingerprint_1000_ops", |b| {
        b.iter(|| std::hint::black_box(&looped.graph).fingerprint())
    });
}

criterion_group!(benches, bench_trace);
criterion_main!(benches);
