//! `autoarch benchmark` through the real binary on a tiny suite: the dry run's plan, a whole
//! benchmark (campaigns at equal compute, the size cap, the final protocol, the report and
//! results.json), the same command continuing without running anything again, and another
//! suite refused on the same output directory.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use serde_json::Value;

const SUITE: &str = r#"name = "tiny"
campaigns = 2
size_cap = 2.0

[budget]
max_compute_seconds = 0.3

[evaluation]
workers = 2
steps = 4
batch_size = 8
memory_limit_mb = 1024
timeout_seconds = 60
promote_fraction = 0.0

[final]
seeds = 2
first_seed = 1000
long_factor = 2.0
random_population = 3
learning_rates = [1e-3, 1e-2]

[[tasks]]
name = "tiny"
seeds = ["library:mlp_only", "library:transformer"]
[tasks.task]
name = "mqar"
seq_len = 16
vocab = 16
kv_pairs = 2
validation_size = 16

[[arms]]
name = "random"
strategy = "random"

[[arms]]
name = "evolution"
strategy = "evolution"
"#;

fn bench(dir: &Path, args: &[&str]) -> Output {
    autoarch()
        .current_dir(dir)
        .arg("benchmark")
        .args(args)
        .env_remove("AUTOARCH_ARCHIVE")
        .output()
        .unwrap()
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("suite.toml"), SUITE).unwrap();
    dir
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

#[test]
fn the_dry_run_prints_the_plan_and_its_compute_and_creates_nothing() {
    let dir = setup();
    let o = bench(dir.path(), &["suite.toml", "--out", "out", "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(
        plan.contains("1 task(s) × 2 arm(s) × 2 campaign(s) = 4 campaigns"),
        "{plan}"
    );
    assert!(
        plan.contains("0.3 s of evaluation per campaign, 1 s in all"),
        "{plan}"
    );
    assert!(
        plan.contains("arm evolution: strategy evolution, proposer mutation"),
        "{plan}"
    );
    assert!(!dir.path().join("out").exists());
    // The tiny suite's timeout (60 s) per worker is far past its budget: the plan says so.
    assert!(plan.contains("workers will wait for one another"), "{plan}");

    // The embedded suite plans too, and its quick preset is smaller.
    let o = bench(dir.path(), &["--dry-run", "--preset", "quick"]);
    assert!(o.status.success(), "{}", text(&o));
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(
        plan.contains("1 task(s) × 3 arm(s) × 1 campaign(s) = 3 campaigns"),
        "{plan}"
    );
    assert!(plan.contains("120 s of evaluation per campaign"), "{plan}");
    assert!(!plan.contains("workers will wait"), "{plan}");
    // The full preset adds the tasks with real data and ten campaigns per arm.
    let o = bench(dir.path(), &["--dry-run", "--preset", "full"]);
    assert!(o.status.success(), "{}", text(&o));
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(
        plan.contains("9 task(s) × 3 arm(s) × 10 campaign(s) = 270 campaigns"),
        "{plan}"
    );
    assert!(plan.contains("task fashion: fashion"), "{plan}");
    assert!(
        plan.contains("(seeds: library, held out: library:shift_attention)"),
        "{plan}"
    );
    // The command line picks campaigns and tasks.
    let o = bench(
        dir.path(),
        &[
            "--dry-run",
            "--campaigns",
            "4",
            "--tasks",
            "selective-copy,mqar-rediscovery",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(
        plan.contains("2 task(s) × 3 arm(s) × 4 campaign(s) = 24 campaigns"),
        "{plan}"
    );
    assert!(plan.contains("task selective-copy: selective_copy seq_len=32 vocab=16 copy=8"));
    let o = bench(dir.path(), &["--dry-run", "--tasks", "nonesuch"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("the suite has no task \"nonesuch\""),
        "{}",
        text(&o)
    );
}

// One benchmark's life, step by step: the steps share its output directory, so they stay one story.
#[allow(clippy::too_many_lines)]
#[test]
fn a_benchmark_runs_reports_continues_and_refuses_another_suite() {
    let dir = setup();
    let o = bench(dir.path(), &["suite.toml", "--out", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("[4/4] tiny · evolution · campaign 1"), "{err}");
    let out = dir.path().join("out");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("## tiny (mqar seq_len=16 vocab=16 kv_pairs=2"),
        "{report}"
    );
    assert!(
        report.contains("| arm | median | mean [95% CI] | RI % |"),
        "{report}"
    );
    assert!(report.contains("P(> random)"), "{report}");
    assert!(
        report.contains("Final scores at the longer budget"),
        "{report}"
    );
    for section in [
        "## How it ran",
        "- Command: `",
        "## Settings",
        "| evolution | evolution | mutation | population P = 20, sample S = 5, promotion off |",
        "What the tests show, at the search's budget (exact one-sided permutation tests",
        "- Noise (SD over training seeds at the search's budget): the best seed's",
        "- Final protocol: ",
        "### Campaigns",
        "| arm | campaign seed | evaluation-s | of budget | proposals | stopped | incumbent | change from its seed |",
        "| arm | proposer | proposals | traced | duplicates | better than parent by 2σ | best at 25 |",
        "![tiny-best-by-compute.svg](plots/tiny-best-by-compute.svg)",
        "![tiny-pareto.svg](plots/tiny-pareto.svg)",
    ] {
        assert!(report.contains(section), "{section}: {report}");
    }
    for plot in [
        "best-by-compute",
        "best-by-candidates",
        "final-scores",
        "pareto",
    ] {
        let svg = std::fs::read_to_string(out.join(format!("plots/tiny-{plot}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{plot}");
        assert!(
            svg.contains("random") && svg.contains("evolution"),
            "{plot}: {svg}"
        );
    }

    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let task = &r["tasks"][0];
    assert_eq!(r["final_seeds"], serde_json::json!([1000, 1001]));
    // Both seeds trained twice at each budget.
    let seeds = task["seeds"].as_array().unwrap();
    assert_eq!(seeds.len(), 2);
    let largest = seeds
        .iter()
        .map(|s| s["params"].as_u64().unwrap())
        .max()
        .unwrap();
    for s in seeds {
        assert_eq!(
            s["short"]["n"].as_u64().unwrap() + s["short"]["failed"].as_u64().unwrap(),
            2,
            "{s}"
        );
        assert!(s["long"].is_object(), "{s}");
        // The learning-rate sweep: both rates, and the design scored at one of them.
        let sweep = s["sweep"].as_array().unwrap();
        assert_eq!(sweep.len(), 2, "{s}");
        assert_eq!(
            (&sweep[0][0], &sweep[1][0]),
            (&Value::from(1e-3), &Value::from(1e-2))
        );
        assert!(
            [1e-3, 1e-2].contains(&s["learning_rate"].as_f64().unwrap()),
            "{s}"
        );
    }
    // Each seed's long runs are at its best rate.
    let runs: Vec<Value> = std::fs::read_to_string(out.join("final.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for s in seeds {
        let ours = |budget: &str| -> Vec<f64> {
            runs.iter()
                .filter(|r| r["fingerprint"] == s["fingerprint"] && r["budget"] == budget)
                .map(|r| r["learning_rate"].as_f64().unwrap())
                .collect()
        };
        let long = ours("long");
        assert_eq!(long, vec![s["learning_rate"].as_f64().unwrap(); 2], "{s}");
        assert_eq!(ours("short").len(), 4, "{s}");
    }
    // One rule for every design: the random population is swept like the seeds.
    for d in task["random"].as_array().unwrap() {
        assert_eq!(d["sweep"].as_array().unwrap().len(), 2, "{d}");
        let rate = d["learning_rate"].as_f64().unwrap();
        assert!([1e-3, 1e-2].contains(&rate), "{d}");
    }
    assert!(
        task.get("kendall_tau").is_some() && task["noise_sd"].is_number(),
        "{task}"
    );
    assert!(task["noise"]["best_seed_sd"].is_number(), "{task}");
    // Two campaigns per arm can never show a difference: no arm beats another, whether the
    // calibration let the task have verdicts or not.
    let state = task["verdicts"]["state"].as_str().unwrap();
    assert!(["given", "calibration_failed"].contains(&state), "{task}");
    assert!(!report.contains("beats random") && !report.contains("beats evolution"));
    if state == "calibration_failed" {
        assert!(
            report.contains("- No verdicts: the calibration failed ("),
            "{report}"
        );
    }
    // What the benchmark spent and where it ran.
    assert!(task["final_cost"]["runs"].as_u64().unwrap() > 0, "{task}");
    assert_eq!(
        r["final_cost"]["runs"].as_u64(),
        Some(lines(&out.join("final.jsonl")) as u64)
    );
    // Four campaigns of 0.3 s each: charged at dispatch, they land on their budget (a job cut
    // at the end of one is stopped within the worker's 50 ms poll).
    let search = r["search_seconds"].as_f64().unwrap();
    assert!((0.7 * 1.2..=1.5 * 1.2).contains(&search), "{search}");
    let sessions = r["provenance"]["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{r}");
    assert!(sessions[0]["command"]
        .as_str()
        .unwrap()
        .contains("benchmark suite.toml --out out"));
    assert!(sessions[0]["wall_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(r["settings"]["steps"], 4);
    assert!(task["best_seed"].is_string());
    let random = task["random"].as_array().unwrap();
    assert!(!random.is_empty() && random.len() <= 3, "{random:?}");
    assert!(task["random_mean"].is_number(), "{task}");
    let arms = task["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 2);
    for arm in arms {
        let campaigns = arm["campaigns"].as_array().unwrap();
        assert_eq!(campaigns.len(), 2, "{arm}");
        for c in campaigns {
            // Equal compute: every campaign spent its budget (charged at dispatch, it stops
            // within its slack of 10 ms; a cut job is stopped within the worker's 50 ms poll).
            let spent = c["compute_seconds"].as_f64().unwrap();
            assert!((0.285..=0.45).contains(&spent), "{c}");
            let (_, incumbent) = (&c["incumbent"][0], &c["incumbent"][1]);
            assert!(incumbent["params"].as_u64().unwrap() <= 2 * largest, "{c}");
            // Each campaign says why it stopped and what it changed; each score keeps its runs.
            assert!(!c["stopped"].as_str().unwrap().is_empty(), "{c}");
            assert!(
                ["unchanged", "retuned", "structural", "new_mechanism"]
                    .contains(&c["change"]["class"].as_str().unwrap()),
                "{c}"
            );
            let short = &incumbent["short"];
            assert_eq!(
                short["runs"].as_array().unwrap().len() as u64,
                short["n"].as_u64().unwrap(),
                "{c}"
            );
        }
        assert!(arm["short"]["mean"].is_number(), "{arm}");
        assert!(arm["traced_share"].as_f64().unwrap() > 0.5, "{arm}");
        assert_eq!(arm["best_at"].as_array().unwrap().len(), 3, "{arm}");
        assert_eq!(arm["short"]["campaigns"], 2, "{arm}");
        assert_eq!(arm["short"]["versus"].as_array().unwrap().len(), 1, "{arm}");
    }
    // The two arms' campaigns differ from each other (campaign seeds 0 and 1).
    let names: Vec<&Value> = arms[1]["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["archive"])
        .collect();
    assert_ne!(names[0], names[1]);

    // The same command continues: nothing is run again, not even a campaign that ended.
    let runs = lines(&out.join("final.jsonl"));
    assert_eq!(lines(&out.join("campaigns.done")), 4);
    let o = bench(dir.path(), &["suite.toml", "--out", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("[1/4]"),
        "{}",
        text(&o)
    );
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("final protocol, task"),
        "{}",
        text(&o)
    );
    assert_eq!(lines(&out.join("final.jsonl")), runs);
    let again: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(
        again["tasks"][0]["arms"], r["tasks"][0]["arms"],
        "the same results"
    );
    // The second session is recorded beside the first, and the wall time adds up.
    let sessions = again["provenance"]["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{again}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("- Session 2: `"), "{report}");
    assert!(report.contains("- Wall time over 2 sessions: "), "{report}");

    // Another suite on the same directory is refused (exit 2), and changes nothing.
    let o = bench(
        dir.path(),
        &["suite.toml", "--out", "out", "--preset", "quick"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("holds a benchmark of another suite"),
        "{}",
        text(&o)
    );
    assert_eq!(lines(&out.join("final.jsonl")), runs);
}
