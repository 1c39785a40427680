//! A generated campaign archive for the dashboard's tests, browser tests and benchmark: real
//! seed code, lineages, promotions, failures, duplicates, LLM calls, events and insights, and
//! on request a candidate whose every LLM-written field carries HTML and script payloads.

use std::collections::BTreeMap;

use autoarch_archive::testing;
use autoarch_archive::{
    Archive, Campaign, CandidateId, LlmCall, NewEvaluation, Outcome, ProposerKind, Result, Tokens,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::campaign::State;
use crate::config::CampaignConfig;

/// The payloads the XSS candidate carries in its name, motivation, code, tags, model, prompt
/// and answer: none of them may ever run or be parsed as markup.
pub const PAYLOADS: [&str; 3] = [
    "</pre><script>window.autoarchPwned = 1</script>",
    "<img src=x onerror=\"window.autoarchPwned = 2\">",
    "</textarea><svg onload=\"window.autoarchPwned = 3\">",
];

/// Builds an archive of `n` proposals on `mqar` (plus the library's seeds); with `xss`, one of
/// them (the last) carries [`PAYLOADS`] everywhere an LLM writes.
pub fn archive(archive: &Archive, n: usize, xss: bool) -> Result<Vec<CandidateId>> {
    let mut g = Generator {
        archive,
        rng: ChaCha8Rng::seed_from_u64(7),
        ids: Vec::new(),
        scores: BTreeMap::new(),
    };
    let seeds = crate::seeds::for_task("mqar");
    for (name, code) in seeds.iter().take(4) {
        let mut c = testing::candidate(name, &[]);
        c.code = code.to_string();
        c.task = "mqar".into();
        c.proposer = ProposerKind::Seed;
        c.source = Some(format!("library:{name}"));
        let id = archive.insert_candidate(c)?;
        let score = 0.05 + 0.1 * g.rng.random::<f64>();
        archive.record_evaluation(eval(
            id,
            autoarch_archive::Fidelity::SHORT,
            0,
            score,
            &mut g.rng,
        ))?;
        g.scores.insert(id, score);
        g.ids.push(id);
    }
    for k in 0..n {
        let xss_here = xss && k + 1 == n;
        let id = g.proposal(k, seeds[0].1, xss_here)?;
        g.ids.push(id);
    }
    finish(archive, &g.ids, n, xss)?;
    Ok(g.ids)
}

struct Generator<'a> {
    archive: &'a Archive,
    rng: ChaCha8Rng,
    ids: Vec<CandidateId>,
    scores: BTreeMap<CandidateId, f64>,
}

impl Generator<'_> {
    /// Proposal number `k`: a variant of a random earlier design, evaluated (or failed, or a
    /// duplicate), sometimes promoted, sometimes by the LLM.
    fn proposal(&mut self, k: usize, base: &str, xss: bool) -> Result<CandidateId> {
        let rng = &mut self.rng;
        let parent = self.ids[rng.random_range(0..self.ids.len())];
        let parent_score = self.scores.get(&parent).copied().unwrap_or(0.1);
        let llm = k.is_multiple_of(5);
        let mut c = testing::candidate(&format!("variant {k}"), &[parent]);
        c.task = "mqar".into();
        c.code = format!("# variant {k} of #{parent}\n{base}");
        c.motivation = format!("variant {k}: a change to #{parent}'s mixing");
        c.stats.params = rng.random_range(20_000..2_000_000);
        c.stats.flops = c.stats.params * rng.random_range(40..200);
        if llm {
            c.proposer = ProposerKind::Llm;
            c.model = Some("mock-model".into());
            c.tokens = Tokens {
                prompt: 900,
                completion: 300,
            };
            c.cost_usd = 0.0012;
            c.calls = vec![call(
                autoarch_archive::CallPurpose::Propose,
                "a prompt",
                "an answer",
            )];
        }
        if k % 17 == 3 {
            c.tags = vec!["promising".into()];
        }
        let duplicate = k % 23 == 7;
        if duplicate {
            c.duplicate_of = Some(parent);
        }
        if xss {
            c.name = format!("xss {}", PAYLOADS[0]);
            c.motivation = PAYLOADS.join(" ");
            c.code = format!(
                "# {}\n# {}\n{base}\nNOTE = \"{}\"\n",
                PAYLOADS[0], PAYLOADS[1], PAYLOADS[2]
            );
            c.model = Some(format!("model {}", PAYLOADS[1]));
            c.tags = vec![PAYLOADS[2].to_string()];
            c.calls = vec![call(
                autoarch_archive::CallPurpose::Propose,
                &PAYLOADS.join("\n"),
                &PAYLOADS.join("\n"),
            )];
            c.proposer = ProposerKind::Llm;
        }
        let archive = self.archive;
        let id = archive.insert_candidate(c)?;
        if duplicate {
            return Ok(id);
        }
        if k % 11 == 5 {
            let outcome = if k.is_multiple_of(2) {
                Outcome::Timeout
            } else {
                Outcome::Diverged
            };
            let why = "training stopped: the loss became NaN at step 37";
            archive.record_evaluation(testing::failure(id, outcome, why))?;
            return Ok(id);
        }
        let score = (parent_score + 0.08 * (rng.random::<f64>() - 0.35)).clamp(0.01, 1.0);
        archive.record_evaluation(eval(id, autoarch_archive::Fidelity::SHORT, 0, score, rng))?;
        self.scores.insert(id, score);
        if k % 9 == 4 {
            // Two seeds that disagree a little, so the candidate has a spread to show.
            for seed in 0..2 {
                let promoted = (score + 0.2 - 0.01 * seed as f64).min(1.0);
                archive.record_evaluation(eval(
                    id,
                    autoarch_archive::Fidelity::PROMOTED,
                    seed,
                    promoted,
                    &mut self.rng,
                ))?;
            }
        }
        if k % 50 == 10 {
            archive.log_event(
                autoarch_archive::EventKind::Analysis,
                &format!("#{id} looks promising"),
                Some(id),
            )?;
        }
        Ok(id)
    }
}

/// The insights, events and the campaign record.
fn finish(archive: &Archive, ids: &[CandidateId], n: usize, xss: bool) -> Result<()> {
    archive.add_insight(
        "Token shift before attention speeds up recall on every variant tried",
        &ids[..2.min(ids.len())],
    )?;
    if xss {
        let last = *ids.last().expect("at least one candidate");
        archive.add_insight(&format!("insight {}", PAYLOADS[1]), &[last])?;
        archive.log_event(
            autoarch_archive::EventKind::Analysis,
            &format!("event {}", PAYLOADS[0]),
            Some(last),
        )?;
    }
    let mut config = CampaignConfig::embedded();
    config.name = "fixture".into();
    config.budget.max_candidates = Some(n as u64);
    let state = State {
        elapsed_seconds: 600.0 + n as f64,
        proposals: n as u64,
        busy_seconds: 1000.0,
        capacity_seconds: 1200.0,
        stopped: Some("the candidate budget is spent".into()),
        ..State::default()
    };
    archive.put_campaign(&Campaign {
        name: "fixture".into(),
        config: serde_json::to_value(&config).expect("a config serialises"),
        state: serde_json::to_value(&state).expect("a state serialises"),
        updated_ms: 0,
    })
}

fn call(purpose: autoarch_archive::CallPurpose, prompt: &str, response: &str) -> LlmCall {
    LlmCall {
        purpose,
        model: "mock-model".into(),
        mode: Some(autoarch_archive::AnswerMode::JsonSchema),
        prompt: prompt.into(),
        response: response.into(),
        tokens: Tokens {
            prompt: 900,
            completion: 300,
        },
        cost_usd: 0.0012,
        seconds: 2.5,
        attempts: Vec::new(),
        outcome: "traced".into(),
        answer: Some(autoarch_archive::AnswerKind::Code),
        edits: Vec::new(),
    }
}

fn eval(
    id: CandidateId,
    fidelity: autoarch_archive::Fidelity,
    seed: u64,
    score: f64,
    rng: &mut ChaCha8Rng,
) -> NewEvaluation {
    let mut e = testing::evaluation(id, score, 1.0 - score * 0.9);
    e.fidelity = fidelity;
    e.seed = seed;
    e.curve = (0..=10)
        .map(|i| {
            (
                i * 12,
                4.0 * (-0.2 * i as f64).exp() + 0.1 + 0.05 * rng.random::<f64>(),
            )
        })
        .collect();
    e.timings
        .insert("latency_ms_batch_1".into(), 0.2 + rng.random::<f64>());
    e.timings
        .insert("peak_rss_mb".into(), 180.0 + 50.0 * rng.random::<f64>());
    e.timings
        .insert("wall_seconds".into(), 2.0 + 3.0 * rng.random::<f64>());
    e
}
