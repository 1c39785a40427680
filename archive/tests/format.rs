//! The stored format holds: an archive that an earlier autoarch wrote, committed under
//! `tests/fixtures/archive-2026-12-03/`, opens with today's code and reads back every record
//! as it was. The fixture is a real campaign: `autoarch run` at commit 4391ac7 (a tiny `mqar`
//! from four library seeds, with a promotion), then `autoarch tag`; `export.jsonl` beside it is
//! that binary's `autoarch export` of the same archive. Its summaries predate sample SDs (their
//! spreads divide by n), so reading them exercises the recomputation too.

use std::path::Path;

use autoarch_archive::{Archive, Status};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/archive-2026-12-03"
);

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Each JSON line as a value, so that key order and float spelling do not matter.
fn lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn an_archive_written_by_an_earlier_autoarch_opens_and_reads_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive");
    // Opening takes the writer lock and may write; the committed copy stays as it was.
    copy_dir(&Path::new(FIXTURE).join("archive"), &path);
    let archive = Archive::open(&path).unwrap();
    assert_eq!(archive.verify().unwrap(), vec![]);

    let listed = archive.list().unwrap();
    assert!(listed.len() >= 6, "{} candidates", listed.len());
    let mut evaluations = 0;
    let mut promoted = 0;
    for l in &listed {
        let id = l.candidate.id;
        assert_eq!(archive.candidate(id).unwrap().as_ref(), Some(&l.candidate));
        let evals = archive.evaluations(id).unwrap();
        evaluations += evals.len();
        let summary = archive.summary(id).unwrap();
        assert_eq!(summary.evaluations as usize, evals.len());
        if summary.status == Status::Ok && summary.fidelity.is_promoted() {
            promoted += 1;
            let scores: Vec<f64> = evals
                .iter()
                .filter(|e| e.fidelity == summary.fidelity)
                .filter_map(|e| e.metrics.get("score").copied())
                .collect();
            let sd = autoarch_archive::stats::sd(&scores);
            assert!(
                (summary.spread["score"] - sd).abs() < 1e-12,
                "#{id}: the spread is read as the sample SD"
            );
        }
        for child in archive.children(id).unwrap() {
            assert!(archive.candidate(child).unwrap().is_some());
        }
    }
    assert!(evaluations > listed.len(), "{evaluations} evaluations");
    assert!(promoted >= 1, "the fixture holds a promoted candidate");
    assert!(listed.iter().any(|l| !l.candidate.tags.is_empty()));
    assert!(!archive.events().unwrap().is_empty());
    assert_eq!(archive.campaigns().unwrap().len(), 1);

    // Every record reads back as the earlier binary exported it.
    let mut export = Vec::new();
    archive.export_jsonl(&mut export).unwrap();
    let then = std::fs::read_to_string(Path::new(FIXTURE).join("export.jsonl")).unwrap();
    assert_eq!(lines(&String::from_utf8(export).unwrap()), lines(&then));
}
