//! End to end against a real local LLM: SmolLM2-135M behind an OpenAI-compatible server
//! (`scripts/local-llm.sh`, started by `.ci/run`). The model is weak; this proves
//! the client, the structured output, the parsing and the repair path against a real server,
//! not the quality of its designs.
//!
//! Run with the server up:
//!     AUTOARCH_E2E_LLM=http://127.0.0.1:8089/v1 cargo test -p autoarch-agent --test llm_e2e -- --nocapture
//!
//! It is a test target of its own that `cargo test` leaves out (`test = false` in Cargo.toml).

use std::process::Command;

use serde_json::Value;

const SEED: &str = "# name: tiny linear\n# task: mqar\nD = 16\n\ndef model(tokens):\n    return linear(embedding(tokens, VOCAB, D), VOCAB)\n";

#[test]
fn a_three_candidate_campaign_against_a_real_local_llm_runs_to_completion() {
    let url = std::env::var("AUTOARCH_E2E_LLM").expect("AUTOARCH_E2E_LLM: the server's base URL");
    let model = std::env::var("AUTOARCH_E2E_MODEL").unwrap_or_else(|_| "smollm2".into());
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("seed.star"), SEED).unwrap();
    std::fs::write(
        root.join("campaign.toml"),
        format!(
            "name = \"e2e\"\nseeds = [\"seed.star\"]\n\n[task]\nname = \"mqar\"\nseq_len = 16\nvocab = 16\nkv_pairs = 2\nvalidation_size = 16\n\n[proposer]\nkind = \"llm\"\n\n[llm]\nbase_url = \"{url}\"\nmodel = \"{model}\"\ntemperature = 0.3\nmax_tokens = 256\ntimeout_seconds = 120\nunreachable_seconds = 60\nrepair_rounds = 1\nanalyze_every = 2\nreference = \"brief\"\n\n[budget]\nmax_candidates = 3\n\n[evaluation]\nworkers = 1\nsteps = 4\nbatch_size = 8\npromote_fraction = 0.0\n\n[selection]\ninspirations = 0\n"
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_autoarch"))
        .current_dir(root)
        .args(["run", "campaign.toml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("finished"), "{stdout}");

    let export = root.join("export.jsonl");
    let e = Command::new(env!("CARGO_BIN_EXE_autoarch"))
        .current_dir(root)
        .args(["--archive", "autoarch-archive", "export"])
        .arg(&export)
        .output()
        .unwrap();
    assert!(e.status.success());
    let mut candidates = vec![];
    let mut evaluations = vec![];
    for line in std::fs::read_to_string(&export).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if let Some(c) = v.get("candidate") {
            if c["proposer"] == "llm" {
                candidates.push(c.clone());
            }
        } else if let Some(ev) = v.get("evaluation") {
            evaluations.push(ev.clone());
        }
    }
    assert_eq!(candidates.len(), 3, "three LLM candidates");
    let (mut first, mut repaired, mut calls) = (0, 0, 0);
    for c in &candidates {
        let list = c["calls"].as_array().unwrap();
        assert!(!list.is_empty());
        for call in list {
            calls += 1;
            // Every answer is recorded with the tokens the server reported.
            assert!(call["tokens"]["prompt"].as_u64().unwrap() > 0, "{call}");
            assert!(!call["outcome"].as_str().unwrap().is_empty(), "{call}");
            assert!(!call["prompt"].as_str().unwrap().is_empty());
        }
        // What fails is an outcome: every candidate has its evaluation record.
        let id = &c["id"];
        let ev = evaluations
            .iter()
            .find(|e| e["candidate"] == *id && e["fidelity"] == 0)
            .unwrap_or_else(|| panic!("candidate {id} has no outcome"));
        let traced = c["fingerprint"] != "";
        if traced && list.len() == 1 {
            first += 1;
        } else if traced {
            repaired += 1;
        }
        eprintln!(
            "#{id} {:?}: {} call(s) ({} s, {} prompt tokens), {} → {}",
            c["name"].as_str().unwrap_or(""),
            list.len(),
            list.iter()
                .map(|c| format!("{:.0}", c["seconds"].as_f64().unwrap_or(0.0)))
                .collect::<Vec<_>>()
                .join("+"),
            list.iter()
                .map(|c| c["tokens"]["prompt"].to_string())
                .collect::<Vec<_>>()
                .join("+"),
            list.iter()
                .map(|c| c["outcome"]
                    .as_str()
                    .unwrap_or("")
                    .chars()
                    .take(80)
                    .collect::<String>())
                .collect::<Vec<_>>()
                .join(" | "),
            ev["outcome"]
        );
    }
    eprintln!(
        "local model: {first}/3 traced first time, {repaired}/3 after repair, {calls} calls; modes: {:?}",
        candidates.iter().map(|c| c["calls"][0]["mode"].clone()).collect::<Vec<_>>()
    );
}
