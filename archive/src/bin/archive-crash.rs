//! Crash test for the archive: kill -9 a writer at random moments, reopen, verify, and check that
//! every write the writer acknowledged is there and intact.
//!
//! ```text
//! archive-crash stress DIR --rounds 1000   # the stress run (CI runs 30 rounds in a test)
//! archive-crash write DIR                  # the writer: loops, printing "ack CANDIDATE EVALUATION I"
//! ```

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use autoarch_archive::testing::{candidate, evaluation};
use autoarch_archive::Archive;
use rand::Rng;

/// The score the writer records for its i-th candidate, so that readers can check contents.
fn score_of(i: u64) -> f64 {
    (i % 1000) as f64 / 1000.0
}

fn write(dir: &Path) -> Result<(), String> {
    let archive = Archive::open(dir).map_err(|e| e.to_string())?;
    let mut i = archive.candidate_count().map_err(|e| e.to_string())?;
    let stdout = std::io::stdout();
    loop {
        let parents: Vec<u64> = if i > 0 { vec![i - 1] } else { vec![] };
        let id = archive
            .insert_candidate(candidate(&format!("c{i}"), &parents))
            .map_err(|e| e.to_string())?;
        let eval = archive
            .record_evaluation(evaluation(id, score_of(i), 1.0 - score_of(i)))
            .map_err(|e| e.to_string())?;
        // Durable now: acknowledge.
        let mut out = stdout.lock();
        writeln!(out, "ack {id} {eval} {i}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        i += 1;
    }
}

fn check(dir: &Path, acked: &[(u64, u64, u64)]) -> Result<(), String> {
    let archive = Archive::open(dir).map_err(|e| format!("reopen: {e}"))?;
    let problems = archive.verify().map_err(|e| format!("verify: {e}"))?;
    if !problems.is_empty() {
        return Err(format!(
            "verify found {} problems: {problems:?}",
            problems.len()
        ));
    }
    for &(id, eval, i) in acked {
        let c = archive
            .candidate(id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("acknowledged candidate {id} is missing"))?;
        if c.name != format!("c{i}") {
            return Err(format!("candidate {id} is {:?}, expected c{i}", c.name));
        }
        let evals = archive.evaluations(id).map_err(|e| e.to_string())?;
        let e = evals
            .iter()
            .find(|e| e.id == eval)
            .ok_or_else(|| format!("acknowledged evaluation {eval} of {id} is missing"))?;
        if e.metrics.get("score") != Some(&score_of(i)) {
            return Err(format!("evaluation {eval} holds {:?}", e.metrics));
        }
    }
    Ok(())
}

fn stress(dir: &Path, rounds: u32) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut rng = rand::rng();
    let mut acked: Vec<(u64, u64, u64)> = Vec::new();
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .arg("write")
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().expect("piped");
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| {
                    let mut parts = l.split_whitespace().skip(1).map(|p| p.parse::<u64>().ok());
                    Some((parts.next()??, parts.next()??, parts.next()??))
                })
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(5..250)));
        child.kill().map_err(|e| e.to_string())?; // SIGKILL
        let status = child.wait().map_err(|e| e.to_string())?;
        let mut err = String::new();
        if let Some(mut s) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut s, &mut err);
        }
        if status.success() || !err.trim().is_empty() {
            return Err(format!(
                "round {round}: the writer failed before the kill: {err}"
            ));
        }
        let new = reader.join().map_err(|_| "reader panicked".to_string())?;
        acked.extend(new.iter().copied());
        check(dir, &acked).map_err(|e| format!("round {round}: {e}"))?;
        println!(
            "round {round}: +{} acknowledged, {} in all, archive verified",
            new.len(),
            acked.len()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [mode, dir] if mode == "write" => write(&PathBuf::from(dir)),
        [mode, dir, flag, n] if mode == "stress" && flag == "--rounds" => match n.parse() {
            Ok(n) => stress(&PathBuf::from(dir), n),
            Err(_) => Err(format!("--rounds takes a number, got {n}")),
        },
        _ => Err("usage: archive-crash stress DIR --rounds N | archive-crash write DIR".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
