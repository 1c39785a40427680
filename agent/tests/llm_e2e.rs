//! End to end against a real local LLM: SmolLM2-135M behind an OpenAI-compatible server
//! (`scripts/local-llm.sh`, started by `.ci/run`). The model is weak; this proves the client,
//! the structured output, the parsing, the repair path and `answer = "auto"` against a real
//! server: a model whose code does not trace is switched to choosing edits from the menu, and
//! the campaign still gets designs that train. One edit per answer (`max_edits = 1`): every
//! entry on the menu is traced before it is offered, so a choice cannot fail to trace.
//!
//! Run with the server up:
//!     AUTOARCH_E2E_LLM=http://127.0.0.1:8089/v1 cargo test -p autoarch-agent --test llm_e2e -- --nocapture
//!
//! It is a test target of its own that `cargo test` leaves out (`test = false` in Cargo.toml).

use std::process::Command;

use serde_json::Value;

/// A small design with a token-mixer helper, residuals and norms, so that most edit kinds
/// apply to it.
const SEED: &str = "# name: tiny block\n# task: mqar\nD = 16\n\ndef mix(x):\n    prev = pad(slice(x, 1, 0, SEQ_LEN - 1), [1, 0], axis=1)\n    return linear(concat([x, prev], axis=-1), D)\n\ndef model(tokens):\n    h = embedding(tokens, VOCAB, D)\n    h = h + mix(rms_norm(h))\n    return linear(rms_norm(h), VOCAB)\n";

const PROPOSALS: usize = 8;

#[test]
fn an_auto_mode_campaign_of_eight_proposals_against_a_real_local_llm_gets_designs_that_train() {
    let url = std::env::var("AUTOARCH_E2E_LLM").expect("AUTOARCH_E2E_LLM: the server's base URL");
    let model = std::env::var("AUTOARCH_E2E_MODEL").unwrap_or_else(|_| "smollm2".into());
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("seed.star"), SEED).unwrap();
    std::fs::write(
        root.join("campaign.toml"),
        format!(
            "name = \"e2e\"\nseeds = [\"seed.star\"]\n\n[task]\nname = \"mqar\"\nseq_len = 16\nvocab = 16\nkv_pairs = 2\nvalidation_size = 16\n\n[proposer]\nkind = \"llm\"\nmax_edits = 1\n\n[llm]\nbase_url = \"{url}\"\nmodel = \"{model}\"\nanswer = \"auto\"\ntemperature = 0.3\nmax_tokens = 384\ntimeout_seconds = 120\nunreachable_seconds = 60\nrepair_rounds = 1\nanalyze_every = 4\nreference = \"brief\"\n\n[budget]\nmax_candidates = {PROPOSALS}\n\n[evaluation]\nworkers = 1\nsteps = 4\nbatch_size = 8\npromote_fraction = 0.0\n\n[selection]\ninspirations = 1\n"
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
    let (mut candidates, mut evaluations, mut events) = (vec![], vec![], vec![]);
    for line in std::fs::read_to_string(&export).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if let Some(c) = v.get("candidate") {
            if c["proposer"] == "llm" {
                candidates.push(c.clone());
            }
        } else if let Some(ev) = v.get("evaluation") {
            evaluations.push(ev.clone());
        } else if let Some(ev) = v.get("event") {
            events.push(ev.clone());
        }
    }
    assert_eq!(candidates.len(), PROPOSALS, "{PROPOSALS} LLM candidates");
    let (mut traced, mut ok) = (0, 0);
    for c in &candidates {
        let calls = c["calls"].as_array().unwrap();
        assert!(!calls.is_empty());
        for call in calls {
            // Every call is recorded with the tokens the server reported and its answer kind.
            assert!(call["tokens"]["prompt"].as_u64().unwrap() > 0, "{call}");
            assert!(!call["outcome"].as_str().unwrap().is_empty(), "{call}");
            assert!(!call["prompt"].as_str().unwrap().is_empty());
            assert!(
                call["answer"] == "code" || call["answer"] == "edits",
                "{call}"
            );
        }
        // What fails is an outcome: every candidate has its evaluation record, except an exact
        // duplicate, which is recorded and not trained again.
        let id = &c["id"];
        let ev = evaluations
            .iter()
            .find(|e| e["candidate"] == *id && e["fidelity"] == 0);
        let outcome = match ev {
            Some(ev) => ev["outcome"].clone(),
            None if !c["duplicate_of"].is_null() => Value::from("duplicate"),
            None => panic!("candidate {id} has no outcome"),
        };
        traced += usize::from(c["fingerprint"] != "");
        ok += usize::from(outcome == "ok");
        eprintln!(
            "#{id} {:?}: {} answer, {} call(s) ({} s), {} → {}",
            c["name"].as_str().unwrap_or(""),
            calls[0]["answer"].as_str().unwrap_or(""),
            calls.len(),
            calls
                .iter()
                .map(|c| format!("{:.0}", c["seconds"].as_f64().unwrap_or(0.0)))
                .collect::<Vec<_>>()
                .join("+"),
            calls
                .iter()
                .map(|c| c["outcome"]
                    .as_str()
                    .unwrap_or("")
                    .chars()
                    .take(80)
                    .collect::<String>())
                .collect::<Vec<_>>()
                .join(" | "),
            outcome
        );
    }
    let switches: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "proposer")
        .filter_map(|e| e["message"].as_str())
        .collect();
    eprintln!("local model: {traced}/{PROPOSALS} traced, {ok}/{PROPOSALS} evaluated ok; switches: {switches:?}");
    assert!(traced >= 6, "{traced} of {PROPOSALS} traced");
    assert!(ok >= 4, "{ok} of {PROPOSALS} evaluated ok");
    // Where the model's code failed, auto switched it to edits, and said so.
    let first_code: Vec<bool> = candidates
        .iter()
        .filter(|c| c["calls"][0]["answer"] == "code")
        .take(2)
        .map(|c| c["fingerprint"] == "")
        .collect();
    if first_code == [true, true] {
        assert!(
            switches
                .iter()
                .any(|s| s.contains("answers switch from code to edits")),
            "{switches:?}"
        );
    }
}
