//! One story of an archive's life, run against the sled store and the in-memory store alike, and
//! the behaviours that only the durable store has.

use std::collections::BTreeMap;

use autoarch_archive::record::{decode_candidate, CANDIDATE_VERSION};
use autoarch_archive::testing::{candidate, evaluation, failure};
use autoarch_archive::Fidelity;
use autoarch_archive::{Archive, Campaign, Error, Metric, NewEvaluation, Outcome, Status};
use rand::SeedableRng;

/// Both stores, each with the directory that keeps the durable one alive.
fn stores() -> Vec<(&'static str, Archive, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let sled = Archive::open(&dir.path().join("archive")).unwrap();
    vec![
        ("sled", sled, dir),
        ("memory", Archive::in_memory(), tempfile::tempdir().unwrap()),
    ]
}

#[test]
fn story() {
    for (name, a, _dir) in stores() {
        story_on(name, &a);
    }
}

// One archive's story, read top to bottom: each step depends on the ones before it.
#[allow(clippy::too_many_lines)]
fn story_on(store: &str, a: &Archive) {
    // Two seeds, then children; one failure, one duplicate.
    let s0 = a.insert_candidate(candidate("seed-a", &[])).unwrap();
    let s1 = a.insert_candidate(candidate("seed-b", &[])).unwrap();
    let c2 = a.insert_candidate(candidate("child", &[s0])).unwrap();
    let c3 = a.insert_candidate(candidate("cross", &[c2, s1])).unwrap();
    let c4 = a.insert_candidate(candidate("broken", &[c3])).unwrap();
    let mut dup = candidate("child", &[s0]);
    dup.duplicate_of = Some(c2);
    let c5 = a.insert_candidate(dup).unwrap();
    assert_eq!((s0, s1, c2, c3, c4, c5), (0, 1, 2, 3, 4, 5), "{store}");
    assert_eq!(a.summary(c2).unwrap().status, Status::Pending);

    a.record_evaluation(evaluation(s0, 0.50, 0.9)).unwrap();
    a.record_evaluation(evaluation(s1, 0.60, 0.8)).unwrap();
    a.record_evaluation(evaluation(c2, 0.70, 0.7)).unwrap();
    a.record_evaluation(evaluation(c3, 0.65, 0.6)).unwrap();
    a.record_evaluation(failure(c4, Outcome::Diverged, "loss became NaN at step 12"))
        .unwrap();

    // Summaries and status.
    assert_eq!(a.summary(c4).unwrap().status, Status::Failed, "{store}");
    assert_eq!(a.summary(c5).unwrap().status, Status::Duplicate, "{store}");
    assert_eq!(a.summary(c2).unwrap().metrics["score"], 0.70);
    assert_eq!(
        a.find_fingerprint("fp-child").unwrap(),
        Some(c2),
        "the first one is indexed"
    );

    // Rankings, oriented by metric.
    assert_eq!(
        a.top_k(Metric::Score, 2).unwrap(),
        vec![(c2, 0.70), (c3, 0.65)],
        "{store}"
    );
    assert_eq!(
        a.top_k(Metric::ValLoss, 1).unwrap(),
        vec![(c3, 0.6)],
        "lower loss is better"
    );
    assert!(
        a.top_k(Metric::Score, 10)
            .unwrap()
            .iter()
            .all(|(id, _)| *id != c4),
        "failures are not ranked"
    );
    assert_eq!(a.metric_values(Metric::Params).unwrap().len(), 4);

    // Promotion: two more seeds at a higher fidelity replace the short-budget mean.
    for (seed, score) in [(1, 0.80), (2, 0.90)] {
        let mut e = evaluation(c3, score, 0.5);
        e.fidelity = Fidelity::PROMOTED;
        e.seed = seed;
        a.record_evaluation(e).unwrap();
    }
    let s = a.summary(c3).unwrap();
    assert_eq!((s.fidelity, s.evaluations), (Fidelity::PROMOTED, 3));
    assert!((s.metrics["score"] - 0.85).abs() < 1e-12);
    // The sample SD of 0.80 and 0.90: 0.05·√2.
    assert!((s.spread["score"] - 0.05 * 2f64.sqrt()).abs() < 1e-12);
    assert_eq!(
        a.top_k(Metric::Score, 1).unwrap(),
        vec![(c3, s.metrics["score"])],
        "{store}"
    );

    // Lineage.
    assert_eq!(a.ancestors(c3).unwrap(), vec![(c2, 1), (s1, 1), (s0, 2)]);
    let mut d = a.descendants(s0).unwrap();
    d.sort();
    assert_eq!(
        d,
        vec![(c2, 1), (c3, 2), (c4, 3), (c5, 1)],
        "the duplicate is a child too"
    );
    assert_eq!(a.children(c2).unwrap(), vec![c3]);
    assert!(matches!(a.ancestors(99), Err(Error::UnknownCandidate(99))));
    assert!(matches!(
        a.insert_candidate(candidate("orphan", &[42])),
        Err(Error::UnknownCandidate(42))
    ));

    // Tags.
    a.add_tag(c3, "promising").unwrap();
    a.add_tag(c3, "promising").unwrap();
    assert_eq!(a.by_tag("promising").unwrap(), vec![c3]);
    assert_eq!(a.candidate(c3).unwrap().unwrap().tags, vec!["promising"]);

    // Pareto over score (max) and params (min).
    let front: Vec<u64> = a
        .pareto(&[Metric::Score, Metric::Params])
        .unwrap()
        .iter()
        .map(|p| p.0)
        .collect();
    let values = |id| {
        (
            a.summary(id).unwrap().metrics["score"],
            a.candidate(id).unwrap().unwrap().stats.params,
        )
    };
    for id in [s0, s1, c2, c3] {
        let (score, params) = values(id);
        let dominated = [s0, s1, c2, c3].iter().any(|&o| {
            let (os, op) = values(o);
            o != id && os >= score && op <= params && (os > score || op < params)
        });
        assert_eq!(front.contains(&id), !dominated, "{store}: candidate {id}");
    }

    // Samplers never return failures or duplicates.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..50 {
        let id = a.sample_successful(&mut rng).unwrap().unwrap();
        assert_eq!(a.summary(id).unwrap().status, Status::Ok, "{store}");
        let id = a.sample_island(0, 3, &mut rng).unwrap().unwrap();
        assert_eq!(a.summary(id).unwrap().status, Status::Ok);
    }
    assert_eq!(
        a.sample_island(7, 3, &mut rng).unwrap(),
        None,
        "an empty island"
    );
    let cells = a.cells().unwrap();
    assert!(!cells.is_empty());
    for (cell, elite) in &cells {
        let best = a
            .list()
            .unwrap()
            .into_iter()
            .filter(|l| l.summary.status == Status::Ok)
            .filter(|l| autoarch_archive::Cell::of(&l.candidate.stats) == *cell)
            .map(|l| (l.summary.score().unwrap(), l.candidate.id))
            .fold(None, |b: Option<(f64, u64)>, x| {
                if b.is_none_or(|b| x.0 > b.0) {
                    Some(x)
                } else {
                    b
                }
            });
        assert_eq!(
            Some(*elite),
            best.map(|b| b.1),
            "{store}: elite of {cell:?}"
        );
    }

    // Insights, events, campaigns.
    let i = a
        .add_insight("crossing the seeds helped", &[c3, s1])
        .unwrap();
    assert_eq!(a.insights().unwrap()[0].id, i);
    a.log_event(
        autoarch_archive::EventKind::Promotion,
        "candidate 3 promoted",
        Some(c3),
    )
    .unwrap();
    a.log_event(
        autoarch_archive::EventKind::Campaign,
        "budget reached",
        None,
    )
    .unwrap();
    assert_eq!(a.events().unwrap().len(), 2);
    let campaign = Campaign {
        name: "demo".into(),
        config: serde_json::json!({"task": "digits"}),
        state: serde_json::json!({"done": 4}),
        updated_ms: 1,
    };
    a.put_campaign(&campaign).unwrap();
    assert_eq!(a.campaign("demo").unwrap(), Some(campaign));

    assert_eq!(a.verify().unwrap(), vec![], "{store}");

    // JSON lines: export, import into an empty archive, export again: the same bytes.
    let mut first = Vec::new();
    let records = a.export_jsonl(&mut first).unwrap();
    assert_eq!(
        records,
        1 + 6 + 7 + 1 + 2,
        "campaign, candidates, evaluations, insight, events"
    );
    let copy = Archive::in_memory();
    copy.import_jsonl(first.as_slice()).unwrap();
    let mut second = Vec::new();
    copy.export_jsonl(&mut second).unwrap();
    assert_eq!(
        String::from_utf8(first).unwrap(),
        String::from_utf8(second).unwrap()
    );
    assert_eq!(copy.verify().unwrap(), vec![]);
    assert_eq!(
        copy.top_k(Metric::Score, 3).unwrap(),
        a.top_k(Metric::Score, 3).unwrap()
    );
    assert!(
        matches!(copy.import_jsonl(&b""[..]), Err(Error::Invalid(_))),
        "import needs an empty archive"
    );
}

#[test]
fn a_worse_re_evaluation_hands_the_cell_to_the_next_best() {
    for (store, a, _dir) in stores() {
        let x = a.insert_candidate(candidate("a", &[])).unwrap();
        let y = a.insert_candidate(candidate("b", &[])).unwrap();
        a.record_evaluation(evaluation(x, 0.5, 1.0)).unwrap();
        a.record_evaluation(evaluation(y, 0.7, 1.0)).unwrap();
        assert_eq!(a.cells().unwrap().len(), 1, "{store}: one cell for both");
        assert_eq!(a.cells().unwrap()[0].1, y);
        let mut worse = evaluation(y, 0.3, 1.0);
        worse.fidelity = Fidelity::PROMOTED;
        a.record_evaluation(worse).unwrap();
        assert_eq!(a.cells().unwrap()[0].1, x, "{store}");
        assert_eq!(a.verify().unwrap(), vec![]);
    }
}

#[test]
fn an_old_candidate_record_is_upgraded() {
    let v1 = serde_json::json!({
        "v": 1, "id": 3, "name": "old", "motivation": "", "code": "def model(x):\n    return x\n",
        "task": "digits", "fingerprint": "abc",
        "stats": {"params": 10, "buffers": 0, "flops": 20, "nodes": 2, "depth": 1,
                  "op_histogram": {"linear": 1}, "output_shape": ["B", 10]},
        "parents": [], "proposer": "llm", "model": "m", "prompt": "p", "response": "r",
        "tokens": 1234, "cost": 0.5, "tags": [], "source": null, "duplicate_of": null,
        "island": 0, "created_ms": 7
    });
    let c = decode_candidate(&serde_json::to_vec(&v1).unwrap()).unwrap();
    assert_eq!((c.tokens.prompt, c.tokens.completion), (0, 1234));
    assert_eq!(c.cost_usd, 0.5);
    assert!(
        c.calls.is_empty(),
        "v3 adds the LLM calls: none for older records"
    );

    let mut v2 = v1.clone();
    v2["v"] = 2.into();
    v2["tokens"] = serde_json::json!({"prompt": 7, "completion": 8});
    v2.as_object_mut().unwrap().remove("cost");
    v2["cost_usd"] = 0.25.into();
    let c = decode_candidate(&serde_json::to_vec(&v2).unwrap()).unwrap();
    assert_eq!(
        (c.tokens.prompt, c.tokens.completion, c.cost_usd),
        (7, 8, 0.25)
    );
    assert!(c.calls.is_empty());

    let newer = serde_json::json!({"v": CANDIDATE_VERSION + 1});
    let err = decode_candidate(&serde_json::to_vec(&newer).unwrap()).unwrap_err();
    assert!(matches!(err, Error::TooNew { .. }), "{err}");
    assert!(err.to_string().contains("upgrade autoarch"));
}

#[test]
fn a_second_writer_is_refused_at_once_with_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive");
    let _first = Archive::open(&path).unwrap();
    let start = std::time::Instant::now();
    let err = Archive::open(&path).err().expect("the second open fails");
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
    match &err {
        Error::InUse { pid, .. } => assert_eq!(*pid, Some(std::process::id())),
        other => panic!("{other}"),
    }
    assert!(
        err.to_string()
            .contains(&format!("in use by pid {}", std::process::id())),
        "{err}"
    );
    assert!(Archive::is_in_use(&path));
}

#[test]
fn review_reads_the_snapshot_while_a_writer_holds_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive");
    let writer = Archive::open(&path).unwrap();
    let id = writer.insert_candidate(candidate("a", &[])).unwrap();
    writer.record_evaluation(evaluation(id, 0.9, 0.1)).unwrap();
    writer.write_snapshot().unwrap();
    let (review, notice) = Archive::open_for_review(&path).unwrap();
    assert!(notice.unwrap().contains("showing its snapshot"));
    assert_eq!(review.top_k(Metric::Score, 1).unwrap(), vec![(id, 0.9)]);
    drop(writer);
    let (_, notice) = Archive::open_for_review(&path).unwrap();
    assert_eq!(
        notice, None,
        "with no writer, review opens the archive itself"
    );
}

#[test]
fn the_archive_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive");
    {
        let a = Archive::open(&path).unwrap();
        let id = a.insert_candidate(candidate("a", &[])).unwrap();
        a.record_evaluation(evaluation(id, 0.4, 0.2)).unwrap();
    }
    let a = Archive::open(&path).unwrap();
    assert_eq!(a.top_k(Metric::Score, 1).unwrap(), vec![(0, 0.4)]);
    let next = a.insert_candidate(candidate("b", &[0])).unwrap();
    assert_eq!(next, 1, "ids continue after a reopen");
}

/// sled under the archive, opened directly. Another test's thread may be forking at this
/// moment, and a forked child shares sled's lock until it execs (the archive waits that out,
/// a raw open does not), so a busy lock is tried again for two seconds.
fn raw_sled(path: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() < deadline && e.to_string().contains("lock") => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("opening {}: {e}", path.display()),
        }
    }
}

#[test]
fn verify_reports_corrupt_and_dangling_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive");
    {
        let a = Archive::open(&path).unwrap();
        let id = a.insert_candidate(candidate("a", &[])).unwrap();
        a.record_evaluation(evaluation(id, 0.4, 0.2)).unwrap();
    }
    {
        // Damage it behind the archive's back.
        let db = raw_sled(&path.join("db"));
        db.open_tree("candidates")
            .unwrap()
            .insert(7u64.to_be_bytes(), &b"not json"[..])
            .unwrap();
        let mut orphan = serde_json::to_value(autoarch_archive::Evaluation {
            id: 9,
            candidate: 42,
            fidelity: Fidelity::SHORT,
            seed: 0,
            outcome: Outcome::Ok,
            reason: None,
            metrics: BTreeMap::new(),
            curve: vec![],
            timings: BTreeMap::new(),
            created_ms: 0,
        })
        .unwrap();
        orphan["v"] = 1.into();
        let mut key = 42u64.to_be_bytes().to_vec();
        key.extend_from_slice(&9u64.to_be_bytes());
        db.open_tree("evaluations")
            .unwrap()
            .insert(key, serde_json::to_vec(&orphan).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let a = Archive::open(&path).unwrap();
    let problems = a.verify().unwrap();
    let text: Vec<String> = problems
        .iter()
        .map(|p| format!("{} {}: {}", p.tree, p.key, p.message))
        .collect();
    assert!(
        text.iter()
            .any(|t| t.starts_with("candidates 7: corrupt record")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("evaluates missing candidate 42")),
        "{text:?}"
    );
    // What was stored before is still readable.
    assert_eq!(a.top_k(Metric::Score, 1).unwrap(), vec![(0, 0.4)]);
}

#[test]
fn evaluations_of_unknown_candidates_are_refused() {
    let a = Archive::in_memory();
    let e = NewEvaluation {
        candidate: 3,
        ..evaluation(0, 0.1, 0.1)
    };
    assert!(matches!(
        a.record_evaluation(e),
        Err(Error::UnknownCandidate(3))
    ));
}

#[test]
fn kill_9_at_random_moments_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_archive-crash"))
        .arg("stress")
        .arg(dir.path().join("archive"))
        .args(["--rounds", "30"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.ends_with("archive verified"))
            .count(),
        30
    );
}

/// A forking thread shares the lock's file description until its child execs; a reopen right
/// after a drop must wait that out instead of reporting the archive in use by itself.
#[test]
fn reopening_while_another_thread_spawns_processes() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive");
    let stop = Arc::new(AtomicBool::new(false));
    let spawner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = std::process::Command::new("true").status();
            }
        })
    };
    for i in 0..100 {
        let a = Archive::open(&path).unwrap_or_else(|e| panic!("reopen {i}: {e}"));
        a.insert_candidate(candidate(&format!("r{i}"), &[]))
            .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    spawner.join().unwrap();
    assert_eq!(
        Archive::open(&path).unwrap().candidate_count().unwrap(),
        100
    );
}
