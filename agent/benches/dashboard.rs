//! Dashboard benchmark: a generated archive of N proposals (100,000 by default), then the time
//! each page and endpoint takes to answer through the router (in process, the whole response
//! rendered and read), median of repeats.
//!
//! `cargo bench -p autoarch-agent --bench dashboard -- 100000`. Target: the candidates table
//! and the overview under 200 ms each at 100,000 candidates.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use autoarch_agent::machine::testing::InProcessTracer;
use autoarch_agent::serve::{fixture, router, Dashboard, View};
use autoarch_archive::Archive;
use axum::body::Body;
use axum::http::{header, Request};
use tower::ServiceExt;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.replace('_', "").parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let start = Instant::now();
    let archive = Archive::in_memory();
    let ids = fixture::archive(&archive, n, false).expect("the fixture");
    println!(
        "generated {} candidates in {:.1} s",
        ids.len(),
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let view = View::build(&archive, None).expect("a view");
    println!(
        "built the view in {} (a rebuild with nothing changed: see below)",
        ms(start.elapsed())
    );
    let start = Instant::now();
    let again = View::build(&archive, Some(&view)).expect("a view");
    println!("rebuilt it with nothing changed in {}", ms(start.elapsed()));
    drop((view, again));
    let dash = Dashboard::fixed(archive, Arc::new(InProcessTracer)).expect("a dashboard");
    let bound: SocketAddr = "127.0.0.1:8321".parse().expect("an address");
    let best = dash.view().best.expect("a best");
    let pages = [
        "/".to_string(),
        "/api/overview".to_string(),
        "/candidates".to_string(),
        "/candidates?sort=score&page=40".to_string(),
        "/candidates?status=ok&proposer=llm&sort=params&dir=asc".to_string(),
        "/candidates?q=variant%209999".to_string(),
        "/candidates?best=1".to_string(),
        "/candidates?top=1".to_string(),
        "/api/candidates?sort=val_loss&per=100".to_string(),
        format!("/candidate/{best}"),
        format!("/lineage/{best}"),
        "/pareto".to_string(),
    ];
    println!("\n| request | median of 15 | slowest |\n| --- | --- | --- |");
    for uri in &pages {
        let mut times = Vec::new();
        for _ in 0..15 {
            let app = router(Arc::clone(&dash), bound);
            let started = Instant::now();
            let bytes = rt.block_on(async {
                let res = app
                    .oneshot(
                        Request::builder()
                            .uri(uri.as_str())
                            .header(header::HOST, "127.0.0.1:8321")
                            .body(Body::empty())
                            .expect("a request"),
                    )
                    .await
                    .expect("an answer");
                assert!(res.status().is_success(), "{uri}: {}", res.status());
                axum::body::to_bytes(res.into_body(), usize::MAX)
                    .await
                    .expect("a body")
                    .len()
            });
            std::hint::black_box(bytes);
            times.push(started.elapsed());
        }
        let slowest = *times.iter().max().expect("times");
        println!("| `{uri}` | {} | {} |", ms(median(times)), ms(slowest));
    }
}
