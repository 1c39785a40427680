//! Archive benchmark: insert N candidates with one evaluation each, then time the queries.
//!
//! `cargo bench -p autoarch-archive --bench archive -- 100000` (N defaults to 100,000; the
//! archive lives in a temp dir and is deleted afterwards). Target: top-k ≤ 10 ms at 1M.

use std::time::{Duration, Instant};

use autoarch_archive::testing::{candidate, evaluation};
use autoarch_archive::{Archive, Metric, Outcome};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(repeats: usize, mut f: impl FnMut() -> T) -> Duration {
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let start = Instant::now();
        std::hint::black_box(f());
        times.push(start.elapsed());
    }
    median(times)
}

/// Fills `archive` with `n` candidates, one evaluation each: the first 500 with a flush per call,
/// as a campaign writes them, the rest as a bulk load. The durable pairs written and the two
/// phases' times.
fn fill(archive: &mut Archive, n: u64, rng: &mut StdRng) -> (u64, Duration, Duration) {
    // A realistic amount of code per candidate (the seeds are 0.6–1.5 KB).
    let code = format!(
        "def model(x):\n{}    return x\n",
        "    h = linear(h, 64)  # a layer of the design\n".repeat(24)
    );
    let durable_n = 500.min(n);
    let start = Instant::now();
    for i in 0..durable_n {
        let id = archive
            .insert_candidate(candidate(&format!("d{i}"), &[]))
            .expect("insert");
        archive
            .record_evaluation(evaluation(id, rng.random(), rng.random()))
            .expect("record");
    }
    let durable = start.elapsed();

    archive.set_durable(false);
    let start = Instant::now();
    for i in durable_n..n {
        let parents = if i > 10 {
            vec![rng.random_range(0..i)]
        } else {
            vec![]
        };
        let mut c = candidate(&format!("c{i}"), &parents);
        c.code.clone_from(&code);
        c.stats.params = rng.random_range(1_000..10_000_000);
        c.stats.flops = c.stats.params * rng.random_range(2..2_000);
        c.island = rng.random_range(0..8);
        let id = archive.insert_candidate(c).expect("insert");
        let e = if rng.random_bool(0.9) {
            evaluation(id, rng.random(), rng.random_range(0.1..3.0))
        } else {
            autoarch_archive::testing::failure(id, Outcome::Diverged, "NaN")
        };
        archive.record_evaluation(e).expect("record");
    }
    archive.flush().expect("flush");
    (durable_n, durable, start.elapsed())
}

// The benchmark's measurements in order, each printed as it is made.
fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.replace('_', "").parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("archive");
    let mut rng = StdRng::seed_from_u64(1);
    let mut archive = Archive::open(&path).expect("open");
    let (durable_n, durable, bulk) = fill(&mut archive, n, &mut rng);
    let disk = archive.size_on_disk().unwrap_or(0);

    let top10 = time(200, || archive.top_k(Metric::Score, 10).expect("top"));
    let top10_loss = time(200, || archive.top_k(Metric::ValLoss, 10).expect("top"));
    let pareto = time(5, || {
        archive
            .pareto(&[Metric::ValLoss, Metric::Params])
            .expect("pareto")
    });
    let uniform = time(2000, || {
        archive.sample_successful(&mut rng).expect("sample")
    });
    let elite = time(200, || archive.sample_elite(&mut rng).expect("sample"));
    let island = time(1000, || {
        archive.sample_island(3, 4, &mut rng).expect("sample")
    });
    let lineage = time(50, || archive.ancestors(n - 1).expect("lineage"));
    let cells = archive.cells().expect("cells").len();
    let front = archive
        .pareto(&[Metric::ValLoss, Metric::Params])
        .expect("pareto")
        .len();

    println!("archive benchmark: {n} candidates with one evaluation each");
    println!("  durable insert (flush per call)   {:>9.2} ms per candidate+evaluation ({durable_n} pairs)", durable.as_secs_f64() * 1e3 / durable_n as f64);
    println!(
        "  bulk insert                       {:>9.1} s for {} pairs ({:.0} pairs/s)",
        bulk.as_secs_f64(),
        n - durable_n,
        (n - durable_n) as f64 / bulk.as_secs_f64()
    );
    println!(
        "  disk size                         {:>9.1} MiB",
        disk as f64 / (1024.0 * 1024.0)
    );
    println!(
        "  top-10 by score                   {:>9.3} ms",
        top10.as_secs_f64() * 1e3
    );
    println!(
        "  top-10 by val_loss                {:>9.3} ms",
        top10_loss.as_secs_f64() * 1e3
    );
    println!(
        "  Pareto val_loss × params          {:>9.1} ms ({front} on the front)",
        pareto.as_secs_f64() * 1e3
    );
    println!(
        "  sample uniform (successful)       {:>9.3} ms",
        uniform.as_secs_f64() * 1e3
    );
    println!(
        "  sample MAP-Elites elite           {:>9.3} ms ({cells} cells)",
        elite.as_secs_f64() * 1e3
    );
    println!(
        "  sample island (tournament of 4)   {:>9.3} ms",
        island.as_secs_f64() * 1e3
    );
    println!(
        "  ancestors of the newest           {:>9.3} ms",
        lineage.as_secs_f64() * 1e3
    );
}
