//! The LLM proposer against a mock OpenAI-compatible server (wiremock), through the real
//! binary on a tiny task: each case ends with the campaign going on or stopping cleanly, and
//! the archive holding exactly what happened — prompts, answers, tokens, outcomes.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const SEED: &str = "# name: tiny linear\n# task: mqar\nD = 16\n\ndef model(tokens):\n    return linear(embedding(tokens, VOCAB, D), VOCAB)\n";

fn code_with_width(d: u32) -> String {
    format!(
        "D = {d}\n\ndef model(tokens):\n    return linear(embedding(tokens, VOCAB, D), VOCAB)\n"
    )
}

/// A chat completion carrying `content`.
fn completion(content: &str, prompt: u64, completion: u64, finish: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "mock",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    }))
}

fn proposal(name: &str, code: &str) -> ResponseTemplate {
    completion(
        &json!({"name": name, "motivation": format!("{name} should help"), "code": code})
            .to_string(),
        100,
        50,
        "stop",
    )
}

/// Answers requests in order from a script; the last answer repeats.
struct Script(Mutex<VecDeque<ResponseTemplate>>);

impl Script {
    fn new(replies: Vec<ResponseTemplate>) -> Script {
        Script(Mutex::new(replies.into()))
    }
}

impl Respond for Script {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut q = self.0.lock().unwrap();
        if q.len() > 1 {
            q.pop_front().unwrap()
        } else {
            q.front().cloned().expect("a non-empty script")
        }
    }
}

async fn server(replies: Vec<ResponseTemplate>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Script::new(replies))
        .mount(&server)
        .await;
    server
}

struct Campaign {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Campaign {
    /// A one-worker LLM campaign on the tiny task; `llm` and `budget` are appended to their tables.
    fn new(server: &MockServer, llm: &str, budget: &str) -> Campaign {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("seed.star"), SEED).unwrap();
        // Test defaults for [llm], each unless `llm` sets the key itself.
        let defaults = [
            "timeout_seconds = 5",
            "unreachable_seconds = 20",
            "retry_base_seconds = 0.2",
            "retry_max_seconds = 2",
            "analyze_every = 0",
            // The code path's tests; `answer = "edits"`/`"auto"` are tested on their own.
            "answer = \"code\"",
        ];
        let mut llm_table = String::new();
        for d in defaults {
            let key = d.split(' ').next().unwrap();
            if !llm.lines().any(|l| l.starts_with(&format!("{key} "))) {
                llm_table.push_str(d);
                llm_table.push('\n');
            }
        }
        // Sub-tables ([llm.prices]) go last.
        let (keys, tables) = match llm.find("\n[") {
            Some(i) => (&llm[..i], &llm[i..]),
            None if llm.starts_with('[') => ("", llm),
            None => (llm, ""),
        };
        let toml = format!(
            "name = \"llm\"\nseeds = [\"seed.star\"]\n\n[task]\nname = \"mqar\"\nseq_len = 16\nvocab = 16\nkv_pairs = 2\nvalidation_size = 16\n\n[proposer]\nkind = \"llm\"\n\n[llm]\nbase_url = \"{}/v1\"\nmodel = \"mock-model\"\napi_key_env = \"AUTOARCH_TEST_KEY\"\n{llm_table}{keys}\n{tables}\n\n[budget]\n{budget}\n\n[evaluation]\nworkers = 1\nsteps = 4\nbatch_size = 8\npromote_fraction = 0.0\nmemory_limit_mb = 1024\ntimeout_seconds = 120\n",
            server.uri()
        );
        std::fs::write(root.join("campaign.toml"), toml).unwrap();
        Campaign { _dir: dir, root }
    }

    /// The campaign's seed replaced by `code`.
    fn with_seed(self, code: &str) -> Campaign {
        std::fs::write(self.root.join("seed.star"), code).unwrap();
        self
    }

    fn autoarch(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_autoarch"))
            .current_dir(&self.root)
            .env("AUTOARCH_TEST_KEY", "sk-test-secret-1234")
            .env_remove("AUTOARCH_ARCHIVE")
            .args(args)
            .output()
            .unwrap()
    }

    async fn run(&self) -> Output {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_autoarch"))
                .current_dir(&root)
                .env("AUTOARCH_TEST_KEY", "sk-test-secret-1234")
                .env_remove("AUTOARCH_ARCHIVE")
                .args(["run", "campaign.toml"])
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    }

    fn records(&self) -> Records {
        let out = self.root.join("export.jsonl");
        let _ = std::fs::remove_file(&out);
        let o = self.autoarch(&["--archive", "autoarch-archive", "export", "export.jsonl"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = std::fs::read_to_string(&out).unwrap();
        // The API key is never stored, nor logged.
        assert!(
            !text.contains("sk-test-secret"),
            "the key reached the archive"
        );
        let log = std::fs::read_to_string(self.root.join("autoarch-archive/campaign.log"))
            .unwrap_or_default();
        assert!(!log.contains("sk-test-secret"), "the key reached the log");
        let mut r = Records::default();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            if let Some(c) = v.get("candidate") {
                r.candidates.push(c.clone());
            } else if let Some(e) = v.get("evaluation") {
                r.evaluations.push(e.clone());
            } else if let Some(i) = v.get("insight") {
                r.insights.push(i.clone());
            } else if let Some(e) = v.get("event") {
                r.events.push(e.clone());
            } else if let Some(c) = v.get("campaign") {
                r.campaign = c.clone();
            }
        }
        r
    }
}

#[derive(Default)]
struct Records {
    candidates: Vec<Value>,
    evaluations: Vec<Value>,
    insights: Vec<Value>,
    events: Vec<Value>,
    campaign: Value,
}

impl Records {
    fn llm(&self) -> Vec<&Value> {
        self.candidates
            .iter()
            .filter(|c| c["proposer"] == "llm")
            .collect()
    }

    fn outcome(&self, id: &Value) -> (String, String) {
        let e = self
            .evaluations
            .iter()
            .find(|e| e["candidate"] == *id && e["fidelity"] == 0)
            .unwrap_or_else(|| panic!("candidate {id} has no evaluation"));
        (
            e["outcome"].as_str().unwrap().to_string(),
            e["reason"].as_str().unwrap_or("").to_string(),
        )
    }

    fn stopped(&self) -> String {
        self.campaign["state"]["stopped"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn bodies(requests: &[Request]) -> Vec<Value> {
    requests
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// The question of a request: its last user message (worked examples come before it).
fn user_prompt(body: &Value) -> String {
    let messages = body["messages"].as_array().unwrap();
    messages.last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_full_code_proposal_is_traced_evaluated_and_recorded() {
    let server = server(vec![proposal("wider", &code_with_width(32))]).await;
    let c = Campaign::new(&server, "", "max_candidates = 1");
    ok(&c.run().await);
    let r = c.records();
    let llm = r.llm();
    assert_eq!(llm.len(), 1);
    let cand = llm[0];
    assert_eq!(cand["name"], "wider");
    assert_eq!(cand["motivation"], "wider should help");
    assert_eq!(cand["code"], code_with_width(32));
    assert_eq!(cand["model"], "mock-model");
    assert_eq!(cand["tokens"], json!({"prompt": 100, "completion": 50}));
    let calls = cand["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["purpose"], "propose");
    assert_eq!(calls[0]["outcome"], "traced");
    assert_eq!(calls[0]["mode"], "json_schema");
    assert!(calls[0]["attempts"].as_array().unwrap().is_empty());
    assert_eq!(r.outcome(&cand["id"]).0, "ok");

    // The request: the model, the schema, the key in the header only, and a prompt with the
    // task card, the language reference, the parent's code and metrics.
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].headers.get("authorization").unwrap(),
        "Bearer sk-test-secret-1234"
    );
    let body = &bodies(&requests)[0];
    assert_eq!(body["model"], "mock-model");
    assert_eq!(body["response_format"]["type"], "json_schema");
    // Each request carries a seed drawn from the proposal's, so calls can be reproduced.
    assert!(body["seed"].is_u64(), "{body}");
    let system = body["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("# Task: mqar") && system.contains("linear("),
        "{system}"
    );
    let user = user_prompt(body);
    assert!(
        user.contains("# Parent #0: tiny linear") && user.contains("D = 16"),
        "{user}"
    );
    assert!(user.contains("score"), "{user}");
    // The archive holds the prompt exactly as sent.
    assert!(calls[0]["prompt"].as_str().unwrap().contains(&user));
}

#[tokio::test(flavor = "multi_thread")]
async fn search_replace_edits_apply_to_the_parent_in_json_and_in_text() {
    let json_edits = completion(
        &json!({"name": "wide", "motivation": "m", "edits": [{"search": "D = 16", "replace": "D = 24"}]}).to_string(),
        10,
        10,
        "stop",
    );
    let text_edits = completion(
        "NAME: wider still\nMOTIVATION: more width\n<<<<<<< SEARCH\nD = 16\n=======\nD = 40\n>>>>>>> REPLACE\n",
        10,
        10,
        "stop",
    );
    let server = server(vec![json_edits]).await;
    let c = Campaign::new(&server, "", "max_candidates = 1");
    ok(&c.run().await);
    let r = c.records();
    assert_eq!(r.llm()[0]["code"], SEED.replace("D = 16", "D = 24"));

    let server2 = self::server(vec![text_edits]).await;
    let c = Campaign::new(
        &server2,
        "structured_output = \"text\"",
        "max_candidates = 1",
    );
    ok(&c.run().await);
    let r = c.records();
    let cand = r.llm()[0];
    assert_eq!(cand["code"], SEED.replace("D = 16", "D = 40"));
    assert_eq!(cand["name"], "wider still");
    assert_eq!(cand["calls"][0]["mode"], "text");
    let body = &bodies(&server2.received_requests().await.unwrap())[0];
    assert!(body.get("response_format").is_none(), "{body}");
    assert!(user_prompt(body).contains("<<<<<<< SEARCH"));
}

#[tokio::test(flavor = "multi_thread")]
async fn code_that_does_not_trace_goes_back_with_its_diagnostics_and_is_repaired() {
    let broken =
        "D = 16\n\ndef model(tokens):\n    return linaer(embedding(tokens, VOCAB, D), VOCAB)\n";
    let server = server(vec![
        proposal("typo", broken),
        proposal("typo fixed", &code_with_width(20)),
    ])
    .await;
    let c = Campaign::new(&server, "", "max_candidates = 1");
    ok(&c.run().await);
    let r = c.records();
    let cand = r.llm()[0];
    assert_eq!(cand["code"], code_with_width(20));
    let calls = cand["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert!(
        calls[0]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("does not trace"),
        "{}",
        calls[0]
    );
    assert_eq!(calls[1]["purpose"], "repair");
    assert_eq!(calls[1]["outcome"], "traced");
    assert_eq!(cand["tokens"], json!({"prompt": 200, "completion": 100}));
    assert_eq!(r.outcome(&cand["id"]).0, "ok");
    let show = c.autoarch(&["--archive", "autoarch-archive", "show", "1"]);
    ok(&show);
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        text.contains("1. propose  mock-model · json_schema · code answer · 100 + 50 tokens"),
        "{text}"
    );
    assert!(
        text.contains("2. repair   mock-model") && text.contains("→ traced"),
        "{text}"
    );
    let repair = user_prompt(&bodies(&server.received_requests().await.unwrap())[1]);
    assert!(repair.contains("repair round 1 of 3"), "{repair}");
    assert!(
        repair.contains("linaer") && repair.contains("model.star:4:"),
        "{repair}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn edits_that_do_not_apply_are_diagnosed_and_after_the_repair_rounds_stored_as_invalid() {
    let bad = completion(
        &json!({"name": "nope", "motivation": "m", "edits": [{"search": "D = 99", "replace": "D = 8"}]}).to_string(),
        30,
        20,
        "stop",
    );
    let server = server(vec![bad]).await;
    let c = Campaign::new(&server, "repair_rounds = 2", "max_candidates = 1");
    ok(&c.run().await);
    let r = c.records();
    let cand = r.llm()[0];
    let calls = cand["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 3, "the proposal and two repair rounds");
    for call in calls {
        assert!(
            call["outcome"]
                .as_str()
                .unwrap()
                .starts_with("its edits do not apply"),
            "{call}"
        );
    }
    assert_eq!(cand["code"], "");
    assert_eq!(cand["fingerprint"], "");
    let (outcome, reason) = r.outcome(&cand["id"]);
    assert_eq!(outcome, "invalid");
    assert!(
        reason.starts_with("its edits do not apply (after 2 repair rounds)"),
        "{reason}"
    );
    assert!(
        reason.contains("edit 1 does not apply: its SEARCH block is not in model.star"),
        "{reason}"
    );
    assert!(reason.contains("--> model.star:3"), "{reason}");
    let requests = bodies(&server.received_requests().await.unwrap());
    assert!(user_prompt(&requests[1]).contains("edit 1 does not apply"));
    assert_eq!(cand["tokens"], json!({"prompt": 90, "completion": 60}));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_is_retried_after_the_servers_retry_after() {
    let server = server(vec![
        ResponseTemplate::new(429)
            .insert_header("retry-after", "2")
            .set_body_json(
                json!({"error": {"message": "rate limited", "type": "rate_limit_error"}}),
            ),
        proposal("after the wait", &code_with_width(12)),
    ])
    .await;
    let c = Campaign::new(&server, "", "max_candidates = 1");
    let started = Instant::now();
    ok(&c.run().await);
    assert!(started.elapsed() >= Duration::from_secs(2));
    let r = c.records();
    let call = &r.llm()[0]["calls"][0];
    assert_eq!(call["outcome"], "traced");
    let attempts = call["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    let a = attempts[0].as_str().unwrap();
    assert!(
        a.starts_with("HTTP 429") && a.contains("waited 2.0 s (Retry-After)"),
        "{a}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried_with_backoff() {
    let err = ResponseTemplate::new(500).set_body_string("upstream overloaded");
    let server = server(vec![
        err.clone(),
        err,
        proposal("third time", &code_with_width(28)),
    ])
    .await;
    let c = Campaign::new(&server, "", "max_candidates = 1");
    ok(&c.run().await);
    let r = c.records();
    let call = &r.llm()[0]["calls"][0];
    let attempts: Vec<&str> = call["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    for a in attempts {
        assert!(
            a.starts_with("HTTP 500: upstream overloaded") && a.contains("(backoff)"),
            "{a}"
        );
    }
    assert_eq!(
        call["mode"], "json_schema",
        "a plain 500 is not a refused format"
    );
    assert_eq!(r.outcome(&r.llm()[0]["id"]).0, "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_server_is_abandoned_at_the_timeout_and_the_call_retried() {
    let server = server(vec![
        proposal("slow", &code_with_width(36)).set_delay(Duration::from_secs(60)),
        proposal("fast", &code_with_width(36)),
    ])
    .await;
    let c = Campaign::new(&server, "timeout_seconds = 1", "max_candidates = 1");
    let started = Instant::now();
    ok(&c.run().await);
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "the timeout did not fire"
    );
    let r = c.records();
    let cand = r.llm()[0];
    assert_eq!(cand["name"], "fast");
    let a = cand["calls"][0]["attempts"][0].as_str().unwrap();
    assert!(a.starts_with("timed out after 1.0 s"), "{a}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_server_stops_the_campaign_cleanly_or_hands_over_to_mutation() {
    let down = ResponseTemplate::new(503).set_body_string("service unavailable");
    let server = server(vec![down]).await;
    let c = Campaign::new(&server, "unreachable_seconds = 1.5", "max_candidates = 2");
    let o = c.run().await;
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("has been unreachable for"), "{stdout}");
    let r = c.records();
    assert!(r.llm().is_empty());
    assert_eq!(r.outcome(&json!(0)).0, "ok", "the seed's result is kept");
    assert!(r.stopped().contains("unreachable"), "{}", r.stopped());

    let c = Campaign::new(
        &server,
        "unreachable_seconds = 1.5\non_unreachable = \"mutation\"",
        "max_candidates = 2",
    );
    ok(&c.run().await);
    let r = c.records();
    let proposed: Vec<&Value> = r
        .candidates
        .iter()
        .filter(|c| c["proposer"] != "seed")
        .collect();
    assert_eq!(proposed.len(), 2);
    assert!(proposed.iter().all(|c| c["proposer"] == "mutation"));
    assert!(
        r.events.iter().any(|e| e["kind"] == "proposer"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("going on with the mutation proposer")),
        "{:?}",
        r.events
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_empty_truncated_and_malformed_answers_are_outcomes() {
    let server = server(vec![
        completion("I like turtles.", 5, 5, "stop"),
        completion("", 5, 0, "stop"),
        completion(
            "{\"name\": \"cut\", \"motivation\": \"m\", \"code\": \"D = 16\\ndef mo",
            5,
            64,
            "length",
        ),
        ResponseTemplate::new(200).set_body_json(json!({"object": "error", "detail": "nope"})),
        proposal("finally", &code_with_width(44)),
    ])
    .await;
    let c = Campaign::new(&server, "repair_rounds = 0", "max_candidates = 5");
    ok(&c.run().await);
    let r = c.records();
    let llm = r.llm();
    assert_eq!(llm.len(), 5);
    let reasons: Vec<String> = llm.iter().take(4).map(|c| r.outcome(&c["id"]).1).collect();
    assert!(
        reasons[0].contains("neither a fenced code block"),
        "{}",
        reasons[0]
    );
    assert!(reasons[1].contains("the answer is empty"), "{}", reasons[1]);
    assert!(
        reasons[2].contains("cut off at the token limit"),
        "{}",
        reasons[2]
    );
    assert!(reasons[3].contains("no `choices`"), "{}", reasons[3]);
    for c in llm.iter().take(4) {
        assert_eq!(r.outcome(&c["id"]).0, "invalid");
        assert_eq!(c["calls"].as_array().unwrap().len(), 1);
    }
    assert_eq!(llm[0]["response"], "I like turtles.");
    assert_eq!(llm[2]["tokens"], json!({"prompt": 5, "completion": 64}));
    assert_eq!(r.outcome(&llm[4]["id"]).0, "ok", "the campaign went on");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_rejects_json_schema_gets_json_object_with_the_schema_from_then_on() {
    struct RejectsSchema;
    impl Respond for RejectsSchema {
        fn respond(&self, req: &Request) -> ResponseTemplate {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            match body["response_format"]["type"].as_str() {
                Some("json_schema") => ResponseTemplate::new(500).set_body_json(
                    json!({"error": {"code": 500, "message": "Unsupported response_format type: json_schema"}}),
                ),
                Some("json_object") if body["response_format"]["schema"].is_object() => {
                    let n = body["messages"][1]["content"].as_str().unwrap().len() % 7;
                    proposal("json object", &code_with_width(48 + n as u32))
                }
                _ => ResponseTemplate::new(400).set_body_string("unexpected request"),
            }
        }
    }
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(RejectsSchema)
        .mount(&server)
        .await;
    let c = Campaign::new(&server, "", "max_candidates = 2");
    ok(&c.run().await);
    let r = c.records();
    let llm = r.llm();
    assert_eq!(llm.len(), 2);
    let first = &llm[0]["calls"][0];
    assert_eq!(first["mode"], "json_object");
    let a = first["attempts"][0].as_str().unwrap();
    assert!(
        a.contains("HTTP 500") && a.contains("falling back to json_object"),
        "{a}"
    );
    assert!(llm[1]["calls"][0]["attempts"]
        .as_array()
        .unwrap()
        .is_empty());
    let types: Vec<String> = bodies(&server.received_requests().await.unwrap())
        .iter()
        .map(|b| b["response_format"]["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        ["json_schema", "json_object", "json_object"],
        "remembered"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_budget_and_the_dollar_budget_stop_the_run() {
    let replies = || {
        (0..6)
            .map(|i| proposal(&format!("p{i}"), &code_with_width(8 + 4 * i)))
            .collect::<Vec<_>>()
    };
    // 150 tokens a call: the third call would pass 400.
    let server = server(replies()).await;
    let c = Campaign::new(&server, "", "max_candidates = 6\nmax_tokens = 400");
    ok(&c.run().await);
    let r = c.records();
    assert!(r.stopped().contains("token budget"), "{}", r.stopped());
    let spent: u64 = r
        .llm()
        .iter()
        .map(|c| {
            c["tokens"]["prompt"].as_u64().unwrap() + c["tokens"]["completion"].as_u64().unwrap()
        })
        .sum();
    assert!((400..=550).contains(&spent), "{spent}");
    assert!(r.llm().len() <= 3);

    // $1000 and $2000 per million tokens: $0.2 a call, so $0.5 is passed after three.
    let server = self::server(replies()).await;
    let c = Campaign::new(
        &server,
        "[llm.prices]\n\"mock-model\" = { prompt = 1000.0, completion = 2000.0 }",
        "max_candidates = 6\nmax_dollars = 0.5",
    );
    ok(&c.run().await);
    let r = c.records();
    assert!(r.stopped().contains("dollar budget"), "{}", r.stopped());
    for cand in r.llm() {
        assert!(
            (cand["cost_usd"].as_f64().unwrap() - 0.2).abs() < 1e-9,
            "{cand}"
        );
    }
    assert!((3..=4).contains(&r.llm().len()), "{}", r.llm().len());
}

#[tokio::test(flavor = "multi_thread")]
async fn analysis_turns_results_into_an_insight_shown_in_later_prompts_and_the_report() {
    struct Analyst(Mutex<u32>);
    impl Respond for Analyst {
        fn respond(&self, req: &Request) -> ResponseTemplate {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let user = body["messages"][1]["content"].as_str().unwrap();
            if user.contains("Find ONE pattern") {
                return completion(
                    &json!({"insight": "wider embeddings help", "evidence": [0, 1, 999]})
                        .to_string(),
                    300,
                    20,
                    "stop",
                );
            }
            let mut n = self.0.lock().unwrap();
            *n += 1;
            proposal(&format!("w{n}"), &code_with_width(16 + 8 * *n))
        }
    }
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Analyst(Mutex::new(0)))
        .mount(&server)
        .await;
    let c = Campaign::new(&server, "analyze_every = 2", "max_candidates = 4");
    ok(&c.run().await);
    let r = c.records();
    assert!(!r.insights.is_empty());
    let i = &r.insights[0];
    assert_eq!(i["text"], "wider embeddings help");
    assert_eq!(i["evidence"], json!([0, 1]), "unknown ids are dropped");
    assert_eq!(i["call"]["purpose"], "analyze");
    assert_eq!(
        i["call"]["tokens"],
        json!({"prompt": 300, "completion": 20})
    );
    let later: Vec<String> = bodies(&server.received_requests().await.unwrap())
        .iter()
        .map(user_prompt)
        .filter(|p| p.contains("Improve on the parent"))
        .collect();
    assert!(later.last().unwrap().contains("wider embeddings help"));
    let report = c.autoarch(&["--archive", "autoarch-archive", "report"]);
    ok(&report);
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        text.contains("## LLM usage")
            && text.contains("mock-model | code | 4 | 4 (100%)")
            && text.contains("mock-model | analysis | 0 |"),
        "{text}"
    );
    assert!(
        text.contains("- wider embeddings help (evidence: #0, #1)"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_takes_the_llm_from_flags_without_a_config_file() {
    let server = server(vec![proposal("from flags", &code_with_width(32))]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("seed.star"), SEED).unwrap();
    let url = format!("{}/v1", server.uri());
    let root = dir.path().to_path_buf();
    let o = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_autoarch"))
            .current_dir(&root)
            .env_remove("OPENAI_API_KEY")
            .args([
                "run",
                "--proposer",
                "llm",
                "--llm-base-url",
                &url,
                "--llm-model",
                "flag-model",
            ])
            .args([
                "--seed",
                "seed.star",
                "--task",
                "mqar",
                "--steps",
                "4",
                "--max-candidates",
                "1",
                "--workers",
                "1",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    ok(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("llm proposer: flag-model at "), "{stderr}");
    let body = &bodies(&server.received_requests().await.unwrap())[0];
    assert_eq!(body["model"], "flag-model");
}

/// A seed with a token-mixer helper, residuals and norms: most edit kinds apply to it.
const BLOCK_SEED: &str = "# name: tiny block\n# task: mqar\nD = 16\n\ndef mix(x):\n    prev = pad(slice(x, 1, 0, SEQ_LEN - 1), [1, 0], axis=1)\n    return linear(concat([x, prev], axis=-1), D)\n\ndef model(tokens):\n    h = embedding(tokens, VOCAB, D)\n    h = h + mix(rms_norm(h))\n    return linear(rms_norm(h), VOCAB)\n";

/// The menu of an `edits` request: (id, description) from its prompt's `# Menu` section.
fn menu_of(body: &Value) -> Vec<(String, String)> {
    let user = user_prompt(body);
    let menu = user.split("# Menu\n").nth(1).expect("a menu");
    menu.lines()
        .take_while(|l| l.starts_with('E'))
        .map(|l| {
            let (id, what) = l.split_once(": ").unwrap();
            (id.to_string(), what.to_string())
        })
        .collect()
}

/// Whether a request asks for an `edits` answer (its schema enumerates menu ids).
fn asks_for_edits(body: &Value) -> bool {
    body["response_format"]["json_schema"]["schema"]["properties"]["edits"]["items"]["enum"]
        .is_array()
}

/// Answers each request with what `reply` makes of its body.
struct Replies<F>(F);

impl<F: Fn(&Value) -> ResponseTemplate + Send + Sync + 'static> Respond for Replies<F> {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        (self.0)(&serde_json::from_slice(&req.body).unwrap())
    }
}

async fn replying(
    reply: impl Fn(&Value) -> ResponseTemplate + Send + Sync + 'static,
) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Replies(reply))
        .mount(&server)
        .await;
    server
}

fn choose(ids: &[&str]) -> ResponseTemplate {
    completion(
        &json!({"name": "chosen", "motivation": "wider and linear attention", "edits": ids})
            .to_string(),
        200,
        20,
        "stop",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edits_answer_is_applied_exactly_and_recorded_with_its_ids() {
    // The width entry, and whichever token-mixer swap the menu offers.
    let server = replying(|body| {
        let menu = menu_of(body);
        let id = |what: &str| {
            menu.iter()
                .find(|(_, w)| w.starts_with(what))
                .unwrap_or_else(|| panic!("no {what:?} in {menu:?}"))
                .0
                .clone()
        };
        choose(&[&id("width D 16 -> 32"), &id("token mixer mix -> ")])
    })
    .await;
    let c =
        Campaign::new(&server, "answer = \"edits\"", "max_candidates = 1").with_seed(BLOCK_SEED);
    ok(&c.run().await);
    let body = &bodies(&server.received_requests().await.unwrap())[0];
    // The schema's ids are exactly the menu's; a worked example comes before the question, and
    // the system prompt leaves the language reference out.
    let menu = menu_of(body);
    assert!(menu.len() >= 6, "{menu:?}");
    let ids: Vec<Value> = menu.iter().map(|(id, _)| json!(id)).collect();
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["properties"]["edits"]["items"]["enum"],
        json!(ids)
    );
    let roles: Vec<&str> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert!(body["messages"][2]["content"]
        .as_str()
        .unwrap()
        .contains("\"edits\": [\"E4\", \"E1\"]"));
    assert!(!body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("# The language's operations"));

    let mixer = menu
        .iter()
        .find_map(|(_, w)| w.strip_prefix("token mixer mix -> "))
        .unwrap()
        .to_string();

    let r = c.records();
    let llm = r.llm();
    assert_eq!(llm.len(), 1);
    let cand = llm[0];
    let code = cand["code"].as_str().unwrap();
    // The parent with exactly the two edits: the width, and the mixer replaced at its call.
    let expected_body = BLOCK_SEED.split_once("D = 16").unwrap().1.replace(
        "h = h + mix(rms_norm(h))",
        &format!("h = h + {mixer}(rms_norm(h))"),
    );
    assert!(code.starts_with("# name: chosen\n# task: mqar\n"), "{code}");
    assert!(
        code.contains(&format!(
            "# edit: width D 16 -> 32\n# edit: token mixer mix -> {mixer}\n"
        )),
        "{code}"
    );
    assert!(code.contains("D = 32\n"), "{code}");
    assert!(code.contains(&format!("def {mixer}(x):")), "{code}");
    for line in expected_body.lines().filter(|l| !l.is_empty()) {
        assert!(code.contains(line), "{line:?} missing from\n{code}");
    }
    let call = &cand["calls"][0];
    assert_eq!(call["answer"], "edits");
    assert_eq!(call["outcome"], "traced");
    let chosen: Vec<&str> = call["edits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(chosen.len(), 2);
    assert!(chosen[0].ends_with(": width D 16 -> 32"), "{chosen:?}");
    assert!(
        chosen[1].ends_with(&format!(": token mixer mix -> {mixer}")),
        "{chosen:?}"
    );
    assert!(cand["motivation"]
        .as_str()
        .unwrap()
        .starts_with("wider and linear attention\nEdits chosen from the menu: "));
    assert_eq!(r.outcome(&cand["id"]).0, "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_id_outside_the_menu_or_an_unreadable_choice_is_an_outcome_and_the_campaign_goes_on() {
    let server = server(vec![
        choose(&["E99"]),
        completion("I would make it wider.", 50, 10, "stop"),
        choose(&["E1"]),
    ])
    .await;
    let c =
        Campaign::new(&server, "answer = \"edits\"", "max_candidates = 3").with_seed(BLOCK_SEED);
    ok(&c.run().await);
    let r = c.records();
    let llm = r.llm();
    assert_eq!(llm.len(), 3);
    let (outcome, reason) = r.outcome(&llm[0]["id"]);
    assert_eq!(outcome, "invalid");
    assert!(
        reason.contains("the answer chose an edit that is not on the menu"),
        "{reason}"
    );
    assert!(
        reason.contains("E99 is not on the menu (E1 to E"),
        "{reason}"
    );
    let (outcome, reason) = r.outcome(&llm[1]["id"]);
    assert_eq!(outcome, "invalid");
    assert!(reason.contains("no `EDITS:` line"), "{reason}");
    assert_eq!(r.outcome(&llm[2]["id"]).0, "ok");
    for c in &llm {
        assert_eq!(c["calls"][0]["answer"], "edits");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_switches_a_failing_model_to_edits_probes_code_and_switches_back_with_events() {
    let code_calls = std::sync::atomic::AtomicU32::new(0);
    let server = replying(move |body| {
        if asks_for_edits(body) {
            return choose(&["E1"]);
        }
        // Code: garbage twice, then code that traces (a new width each time).
        let n = code_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n < 2 {
            completion("I like turtles.", 50, 10, "stop")
        } else {
            proposal("probe", &code_with_width(20 + n))
        }
    })
    .await;
    let c = Campaign::new(
        &server,
        "answer = \"auto\"\nrepair_rounds = 0",
        "max_candidates = 11",
    )
    .with_seed(BLOCK_SEED);
    let out = c.run().await;
    ok(&out);
    let kinds: Vec<&str> = bodies(&server.received_requests().await.unwrap())
        .iter()
        .map(|b| if asks_for_edits(b) { "edits" } else { "code" })
        .collect();
    let mut expected = vec!["code", "code"];
    expected.extend(["edits"; 7]);
    expected.extend(["code", "code"]);
    assert_eq!(kinds, expected);
    let r = c.records();
    let switches: Vec<&str> = r
        .events
        .iter()
        .filter(|e| e["kind"] == "proposer")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(switches.len(), 2, "{switches:?}");
    assert_eq!(
        switches[0],
        "mock-model: answers switch from code to edits: 0 of its last 2 code proposals traced into a new design (under 25%); code is probed every 8th proposal"
    );
    assert!(
        switches[1].starts_with(
            "mock-model: answers switch from edits to code: a code probe gave a new design: 1 of its last 3"
        ),
        "{}",
        switches[1]
    );
    // The switches are tied to the proposals that caused them, and printed.
    let llm = r.llm();
    let second = r
        .events
        .iter()
        .find(|e| e["message"] == switches[0])
        .unwrap();
    assert_eq!(second["candidate"], llm[1]["id"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("answers switch from code to edits"),
        "{stderr}"
    );
    // The report splits the model's figures by answer kind.
    let report = c.autoarch(&["--archive", "autoarch-archive", "report"]);
    ok(&report);
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        text.contains("\nmock-model | code | 4 | 2 (50%) | 0 (0%) |"),
        "{text}"
    );
    assert!(
        text.contains("\nmock-model | edits | 7 | 7 (100%) | 0 (0%) |"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_campaign_keeps_a_models_answer_kind() {
    let server = replying(|body| {
        if asks_for_edits(body) {
            choose(&["E1"])
        } else {
            completion("I like turtles.", 50, 10, "stop")
        }
    })
    .await;
    let c = Campaign::new(
        &server,
        "answer = \"auto\"\nrepair_rounds = 0",
        "max_candidates = 3",
    )
    .with_seed(BLOCK_SEED);
    ok(&c.run().await);
    let kinds = |requests: &[Request]| -> Vec<&'static str> {
        bodies(requests)
            .iter()
            .map(|b| if asks_for_edits(b) { "edits" } else { "code" })
            .collect()
    };
    assert_eq!(
        kinds(&server.received_requests().await.unwrap()),
        ["code", "code", "edits"]
    );
    // The same campaign with a larger budget: the model goes on with edits, no code first.
    let root = c.root.clone();
    let more = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_autoarch"))
            .current_dir(&root)
            .env_remove("AUTOARCH_ARCHIVE")
            .args(["run", "campaign.toml", "--max-candidates", "5"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    ok(&more);
    assert_eq!(
        kinds(&server.received_requests().await.unwrap()),
        ["code", "code", "edits", "edits", "edits"]
    );
    // The switch was logged in the first run; the second says where it resumed.
    let switches = c
        .records()
        .events
        .iter()
        .filter(|e| e["kind"] == "proposer")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    assert_eq!(switches.len(), 2, "{switches:?}");
    assert!(switches[0].starts_with("mock-model: answers switch from code to edits"));
    assert_eq!(
        switches[1],
        "mock-model: resumes with edits answers (0 of its last 2 code proposals traced into a new design)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn edits_answers_follow_the_structured_output_fallback_to_json_object_and_text() {
    let server = replying(|body| {
        let kind = body["response_format"]["type"].as_str().unwrap_or("text");
        let edits_schema = body["response_format"]["schema"]["properties"]["edits"].is_object();
        match kind {
            "json_schema" => ResponseTemplate::new(400)
                .set_body_string("response_format of type json_schema is not supported"),
            "json_object" if edits_schema => choose(&["E2"]),
            _ => ResponseTemplate::new(400).set_body_string("unexpected request"),
        }
    })
    .await;
    let c =
        Campaign::new(&server, "answer = \"edits\"", "max_candidates = 2").with_seed(BLOCK_SEED);
    ok(&c.run().await);
    let r = c.records();
    let llm = r.llm();
    assert_eq!(llm.len(), 2);
    for cand in &llm {
        let call = &cand["calls"][0];
        assert_eq!(call["mode"], "json_object", "{call}");
        assert_eq!(call["answer"], "edits");
        assert!(call["edits"][0].as_str().unwrap().starts_with("E2: "));
        assert_eq!(r.outcome(&cand["id"]).0, "ok");
    }
    // In text mode the prompt asks for an EDITS line, and such an answer is read.
    let text_server = replying(|body| {
        if body.get("response_format").is_some() {
            ResponseTemplate::new(400).set_body_string("response_format is not supported")
        } else {
            completion(
                "NAME: wider\nMOTIVATION: more room\nEDITS: E1 and E3\n",
                80,
                12,
                "stop",
            )
        }
    })
    .await;
    let t = Campaign::new(&text_server, "answer = \"edits\"", "max_candidates = 2")
        .with_seed(BLOCK_SEED);
    ok(&t.run().await);
    // The first question was written for JSON before the server refused it; the next one
    // asks for the text form.
    let last = bodies(&text_server.received_requests().await.unwrap())
        .pop()
        .unwrap();
    assert!(user_prompt(&last).contains("EDITS: the ids you choose"));
    let r = t.records();
    let call = &r.llm()[0]["calls"][0];
    assert_eq!(call["mode"], "text");
    assert_eq!(call["edits"].as_array().unwrap().len(), 2, "{call}");
    assert_eq!(r.llm()[0]["name"], "wider");
}

/// A design no edit applies to (one embedding of the token ids, nothing to re-size, swap, wrap
/// or bypass): its edit menu is empty.
const BARE_SEED: &str =
    "# name: bare\n# task: mqar\ndef model(tokens):\n    return embedding(tokens, VOCAB, VOCAB)\n";

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_menu_is_no_proposal_with_edits_and_a_code_answer_with_auto() {
    // `edits`: nothing to offer, nothing asked; the campaign stops with the reason.
    let quiet = server(vec![choose(&["E1"])]).await;
    let c = Campaign::new(&quiet, "answer = \"edits\"", "max_candidates = 3").with_seed(BARE_SEED);
    let out = c.run().await;
    assert!(quiet.received_requests().await.unwrap().is_empty());
    let r = c.records();
    assert!(r.llm().is_empty());
    assert!(
        r.stopped()
            .contains("no edit on the menu traces for this parent"),
        "{}\n{}",
        r.stopped(),
        String::from_utf8_lossy(&out.stderr)
    );
    // `auto`: the model is on edits after two failures, but this parent gets code answers.
    let fallback = replying(|body| {
        assert!(!asks_for_edits(body), "an empty menu was offered");
        completion("I like turtles.", 50, 10, "stop")
    })
    .await;
    let a = Campaign::new(
        &fallback,
        "answer = \"auto\"\nrepair_rounds = 0",
        "max_candidates = 4",
    )
    .with_seed(BARE_SEED);
    ok(&a.run().await);
    assert_eq!(fallback.received_requests().await.unwrap().len(), 4);
    for cand in a.records().llm() {
        assert_eq!(cand["calls"][0]["answer"], "code");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_menu_leaves_out_edits_that_would_repeat_an_archived_design() {
    // A model that always takes the first entry: without the archive's designs left off the
    // menu, the same parent would give the same child again and again.
    let server = server(vec![choose(&["E1"])]).await;
    let c =
        Campaign::new(&server, "answer = \"edits\"", "max_candidates = 6").with_seed(BLOCK_SEED);
    ok(&c.run().await);
    let r = c.records();
    let llm = r.llm();
    assert_eq!(llm.len(), 6);
    for cand in &llm {
        assert!(cand["duplicate_of"].is_null(), "{}", cand["name"]);
        assert_eq!(r.outcome(&cand["id"]).0, "ok");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_counts_code_that_only_copies_an_archived_design_as_a_failure() {
    // A model that answers every code request with its parent's code: it traces, but each is a
    // duplicate, so after two of them the model is switched to edits.
    let server = replying(|body| {
        if asks_for_edits(body) {
            choose(&["E1"])
        } else {
            proposal("copy", BLOCK_SEED)
        }
    })
    .await;
    let c = Campaign::new(
        &server,
        "answer = \"auto\"\nrepair_rounds = 0",
        "max_candidates = 4",
    )
    .with_seed(BLOCK_SEED);
    ok(&c.run().await);
    let kinds: Vec<&str> = bodies(&server.received_requests().await.unwrap())
        .iter()
        .map(|b| if asks_for_edits(b) { "edits" } else { "code" })
        .collect();
    assert_eq!(kinds, ["code", "code", "edits", "edits"]);
    let r = c.records();
    let llm = r.llm();
    assert!(llm[0]["duplicate_of"].is_u64() && llm[1]["duplicate_of"].is_u64());
}

/// Answers each request with a new design (widths 8..=31 in turn).
struct Widths(std::sync::atomic::AtomicU32);

impl Respond for Widths {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        proposal(
            &format!("width {}", 8 + n % 24),
            &code_with_width(8 + n % 24),
        )
    }
}

// A whole benchmark against a mock server: the setup, the run and the report's checks share it.
#[allow(clippy::too_many_lines)]
#[tokio::test(flavor = "multi_thread")]
async fn the_benchmark_adds_the_llm_arms_and_reports_their_tokens() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Widths(0.into()))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    std::fs::write(root.join("seed.star"), SEED).unwrap();
    std::fs::write(
        root.join("suite.toml"),
        r#"name = "llm-tiny"
campaigns = 1

[budget]
max_compute_seconds = 0.5

[evaluation]
workers = 1
steps = 4
batch_size = 8
memory_limit_mb = 1024
timeout_seconds = 120
promote_fraction = 0.0

[llm]
api_key_env = "AUTOARCH_TEST_KEY"
timeout_seconds = 5
analyze_every = 0
answer = "code"

[final]
seeds = 2
long_factor = 0
random_population = 2
learning_rates = []

[[tasks]]
name = "tiny"
seeds = ["seed.star"]
[tasks.task]
name = "mqar"
seq_len = 16
vocab = 16
kv_pairs = 2
validation_size = 16

[[arms]]
name = "random"
strategy = "random"
"#,
    )
    .unwrap();
    let url = format!("{}/v1", server.uri());
    let o = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_autoarch"))
            .current_dir(&root)
            .env("AUTOARCH_TEST_KEY", "sk-test-secret-1234")
            .env_remove("AUTOARCH_ARCHIVE")
            .args([
                "benchmark",
                "suite.toml",
                "--out",
                "out",
                "--proposer",
                "llm",
            ])
            .args(["--llm-base-url", &url, "--llm-model", "mock-model"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("arm llm: strategy autoarch, proposer llm"),
        "{text}"
    );
    assert!(
        text.contains("arm llm-no-evolution: strategy random, proposer llm"),
        "{text}"
    );
    let out = dir.path().join("out");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let arms = r["tasks"][0]["arms"].as_array().unwrap();
    let names: Vec<&str> = arms.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["random", "llm", "llm-no-evolution"]);
    for arm in &arms[1..] {
        assert_eq!(arm["proposer"], "llm", "{arm}");
        // Every proposal cost one call of 150 tokens; the LLM's designs trained.
        let proposals = arm["candidates"].as_u64().unwrap();
        assert!(proposals >= 1, "{arm}");
        assert_eq!(arm["tokens"].as_u64().unwrap(), 150 * proposals, "{arm}");
        assert!(arm["campaigns"][0]["incumbent"].is_array(), "{arm}");
    }
    assert_eq!(arms[0]["tokens"], 0);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("| llm-no-evolution | llm |"), "{report}");
    // The key is never written into the benchmark's files.
    for file in ["report.md", "results.json", "suite.json"] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(!text.contains("sk-test-secret"), "{file}");
    }
}
