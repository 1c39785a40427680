//! Where and how a benchmark ran: `run.json` in its output directory keeps one [`Session`] per
//! time the command ran (the commit, the host, its cores, when, the command line, the wall
//! time), written as it goes, so that a report made later still says what produced it and a
//! resumed benchmark adds up its wall time.

use std::path::Path;
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

/// The commit the binary was built from (`git rev-parse --short HEAD`, with `-dirty` when the
/// work tree had changes), or `unknown` outside a git checkout.
pub const COMMIT: &str = env!("AUTOARCH_COMMIT");

/// One run of the benchmark command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub commit: String,
    pub host: String,
    pub cores: usize,
    /// When it started, UTC (RFC 3339).
    pub started: String,
    pub command: String,
    /// Wall-clock seconds it ran (so far, while it runs).
    pub wall_seconds: f64,
}

/// Every session of a benchmark, in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub sessions: Vec<Session>,
}

impl Provenance {
    /// The wall time of every session together.
    pub fn wall_seconds(&self) -> f64 {
        self.sessions.iter().map(|s| s.wall_seconds).sum()
    }

    /// Reads `run.json` in `dir`; nothing there (or a file that does not parse) is no session.
    pub fn load(dir: &Path) -> Provenance {
        std::fs::read_to_string(dir.join("run.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }
}

/// The session running now: it rewrites its line of `run.json` each time it is recorded.
pub struct Recorder {
    start: Instant,
    /// Its index in `run.json`'s sessions.
    index: usize,
    session: Session,
}

impl Recorder {
    /// Starts a session of the command `args` (this process's arguments), after the sessions
    /// `run.json` in `dir` holds already.
    pub fn start(dir: &Path, args: &[String]) -> std::io::Result<Recorder> {
        let index = Provenance::load(dir).sessions.len();
        let r = Recorder {
            start: Instant::now(),
            index,
            session: Session {
                commit: COMMIT.to_string(),
                host: host_name(),
                cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
                started: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
                command: command_line(args),
                wall_seconds: 0.0,
            },
        };
        r.record(dir)?;
        Ok(r)
    }

    /// Writes the session with its wall time so far.
    pub fn record(&self, dir: &Path) -> std::io::Result<()> {
        let mut p = Provenance::load(dir);
        let mut session = self.session.clone();
        session.wall_seconds = self.start.elapsed().as_secs_f64();
        p.sessions.truncate(self.index);
        p.sessions.push(session);
        let text = serde_json::to_string_pretty(&p).map_err(std::io::Error::other)? + "\n";
        std::fs::write(dir.join("run.json"), text)
    }
}

/// The machine's host name, or `unknown`.
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Arguments as a shell line: quoted where they hold anything but plain characters.
pub fn command_line(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_accumulate_in_run_json() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Provenance::load(dir.path()), Provenance::default());
        let args = [
            "autoarch".to_string(),
            "benchmark".into(),
            "my suite.toml".into(),
        ];
        let first = Recorder::start(dir.path(), &args).unwrap();
        first.record(dir.path()).unwrap();
        let second = Recorder::start(dir.path(), &args).unwrap();
        second.record(dir.path()).unwrap();
        let p = Provenance::load(dir.path());
        assert_eq!(p.sessions.len(), 2, "{p:?}");
        assert_eq!(p.sessions[0].command, "autoarch benchmark 'my suite.toml'");
        assert_eq!(p.sessions[1].commit, COMMIT);
        assert!(p.sessions[0].started.ends_with('Z'), "{p:?}");
        assert!(p.wall_seconds() >= 0.0 && p.sessions[0].cores >= 1);
    }
}
