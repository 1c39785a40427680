//! The web dashboard: `autoarch serve [ARCHIVE]` and `autoarch run --serve`.
//!
//! Read-only (GET and HEAD), bound to 127.0.0.1 unless told otherwise, with everything it sends
//! from the binary: templates (minijinja, HTML auto-escaping on for every one), the stylesheet
//! and the script (content-hash URLs, ETags), and plots drawn on the server as SVG. Everything
//! an LLM wrote is untrusted text, escaped wherever it appears; the Content-Security-Policy
//! allows scripts and styles from the dashboard only, and no inline script.
//!
//! A [`Dashboard`] keeps a [`View`] of its archive and swaps in a new one when the archive
//! changes: for a running campaign in this process, after its events (at most once a second);
//! for an archive directory, when its database or the review snapshot a running campaign
//! writes changes. Open pages hear of each new view over server-sent events.

mod assets;
pub mod fixture;
pub mod highlight;
mod pages;
pub mod svg;
pub mod view;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use autoarch_archive::archive::SNAPSHOT_FILE;
use autoarch_archive::Archive;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::campaign::{Campaign, RunEvent};
use crate::machine::Trace;
pub use view::View;

/// The Content-Security-Policy of every response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Where the dashboard reads.
pub enum Source {
    /// The campaign this process runs: its archive, read directly.
    Live(Arc<Campaign>),
    /// An archive directory, copied into memory and read again when it changes (while a
    /// campaign holds it, the review snapshot that campaign keeps).
    Dir(PathBuf),
    /// An archive handed over whole (tests and benchmarks).
    Fixed,
}

/// A message for open pages.
#[derive(Clone, Debug, Serialize)]
pub struct Push {
    /// `event` (a line of the campaign's log) or `update` (a new view is ready).
    pub kind: &'static str,
    pub data: String,
}

/// The archive a dashboard reads: its own copy, or the live campaign's.
#[derive(Clone)]
pub enum Handle {
    Copy(Arc<Archive>),
    Live(Arc<Campaign>),
}

impl std::ops::Deref for Handle {
    type Target = Archive;

    fn deref(&self) -> &Archive {
        match self {
            Handle::Copy(a) => a,
            Handle::Live(c) => &c.archive,
        }
    }
}

/// What is loaded now.
struct Loaded {
    archive: Handle,
    view: Arc<View>,
    /// Increases with every new view.
    version: u64,
    /// Set while a campaign in another process holds the archive: its pid, if known.
    held_by: Option<Option<u32>>,
    /// When the shown data were written (the snapshot's time while the archive is held).
    written: Option<SystemTime>,
}

pub struct Dashboard {
    source: Source,
    loaded: RwLock<Loaded>,
    pushes: broadcast::Sender<Push>,
    dirty: AtomicBool,
    version: AtomicU64,
    tracer: Arc<dyn Trace>,
    templates: minijinja::Environment<'static>,
    /// The task's shape for exports, found once.
    shape: std::sync::OnceLock<Option<autoarch_sandbox::TaskShape>>,
}

/// What a run's event says on the dashboard's event log, if anything.
fn event_line(e: &RunEvent) -> Option<String> {
    Some(match e {
        RunEvent::Stored {
            id, name, stored, ..
        } => format!("#{id} {name}: {}", stored.as_str()),
        RunEvent::Evaluated {
            id,
            name,
            fidelity,
            status,
            score,
            ..
        } => format!(
            "#{id} {name} [fidelity {fidelity}]: {}{}",
            status.as_str(),
            score.map_or(String::new(), |s| format!(" score {s:.4}"))
        ),
        RunEvent::Promoted { id, runs, factor } => {
            format!("#{id} promoted: {runs} runs at {factor}× the budget")
        }
        RunEvent::Insight(t) => format!("insight: {t}"),
        RunEvent::Note(t) => t.clone(),
        _ => return None,
    })
}

impl Dashboard {
    fn new(
        source: Source,
        archive: Handle,
        tracer: Arc<dyn Trace>,
    ) -> anyhow::Result<Arc<Dashboard>> {
        let view = View::build(&archive, None)?;
        let (pushes, _) = broadcast::channel(1024);
        Ok(Arc::new(Dashboard {
            source,
            loaded: RwLock::new(Loaded {
                archive,
                view: Arc::new(view),
                version: 1,
                held_by: None,
                written: None,
            }),
            pushes,
            dirty: AtomicBool::new(false),
            version: AtomicU64::new(1),
            tracer,
            templates: pages::templates(),
            shape: std::sync::OnceLock::new(),
        }))
    }

    /// A dashboard of a whole archive in memory.
    pub fn fixed(archive: Archive, tracer: Arc<dyn Trace>) -> anyhow::Result<Arc<Dashboard>> {
        Dashboard::new(Source::Fixed, Handle::Copy(Arc::new(archive)), tracer)
    }

    /// A dashboard of an archive directory (a finished campaign's, or a running one's through
    /// its review snapshot).
    pub fn dir(dir: &Path, tracer: Arc<dyn Trace>) -> anyhow::Result<Arc<Dashboard>> {
        let (archive, held_by, written) = load_dir(dir)?;
        let d = Dashboard::new(
            Source::Dir(dir.to_path_buf()),
            Handle::Copy(Arc::new(archive)),
            tracer,
        )?;
        {
            let mut l = d.loaded.write().expect("the dashboard's lock");
            l.held_by = held_by;
            l.written = written;
        }
        Ok(d)
    }

    /// A dashboard of the campaign this process runs. Feed it the campaign's events with
    /// [`Dashboard::observe`].
    pub fn live(campaign: Arc<Campaign>, tracer: Arc<dyn Trace>) -> anyhow::Result<Arc<Dashboard>> {
        let archive = Handle::Live(Arc::clone(&campaign));
        Dashboard::new(Source::Live(campaign), archive, tracer)
    }

    /// Hears a run's event: a line for open pages, and a new view soon.
    pub fn observe(&self, e: &RunEvent) {
        if let Some(line) = event_line(e) {
            let _ = self.pushes.send(Push {
                kind: "event",
                data: serde_json::json!({ "message": line }).to_string(),
            });
        }
        if !matches!(e, RunEvent::Selected { .. } | RunEvent::Progress { .. }) {
            self.dirty.store(true, Ordering::SeqCst);
        }
    }

    pub fn view(&self) -> Arc<View> {
        Arc::clone(&self.loaded.read().expect("the dashboard's lock").view)
    }

    pub fn archive(&self) -> Handle {
        self.loaded
            .read()
            .expect("the dashboard's lock")
            .archive
            .clone()
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// "running", "finished" or "interrupted", and a line on how fresh the data are.
    pub fn status(&self) -> (&'static str, String) {
        let l = self.loaded.read().expect("the dashboard's lock");
        let stopped = l.view.state.as_ref().and_then(|s| s.stopped.clone());
        let ended = |stopped: Option<String>| match stopped {
            Some(s) if s.contains("interrupt") || s.contains("Ctrl-C") => "interrupted",
            Some(_) => "finished",
            None => "interrupted",
        };
        match (&self.source, &l.held_by) {
            (Source::Live(_), _) => ("running", "live: this process runs the campaign".into()),
            (Source::Dir(_), Some(pid)) => {
                let age = l
                    .written
                    .and_then(|w| w.elapsed().ok())
                    .map_or("of unknown age".into(), |d| {
                        format!("{} s old", d.as_secs())
                    });
                let who = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
                (
                    "running",
                    format!("live, snapshot {age}: a campaign{who} holds the archive"),
                )
            }
            (Source::Dir(dir), None) => (ended(stopped), format!("archive {}", dir.display())),
            (Source::Fixed, _) => (ended(stopped), "archive in memory".into()),
        }
    }

    fn swap(
        &self,
        archive: Option<Handle>,
        view: View,
        held_by: Option<Option<u32>>,
        written: Option<SystemTime>,
    ) {
        let version = self.version.fetch_add(1, Ordering::SeqCst) + 1;
        {
            let mut l = self.loaded.write().expect("the dashboard's lock");
            if let Some(a) = archive {
                l.archive = a;
            }
            l.view = Arc::new(view);
            l.version = version;
            l.held_by = held_by;
            l.written = written;
        }
        let _ = self.pushes.send(Push {
            kind: "update",
            data: serde_json::json!({ "version": version }).to_string(),
        });
    }

    /// Keeps the view current: after events (live), or when the directory changes.
    pub async fn refresh(self: Arc<Self>) {
        let mut last = match &self.source {
            Source::Dir(dir) => stamp(dir),
            _ => None,
        };
        loop {
            tokio::time::sleep(match self.source {
                Source::Live(_) => Duration::from_millis(700),
                _ => Duration::from_secs(2),
            })
            .await;
            match &self.source {
                Source::Live(_) => {
                    if !self.dirty.swap(false, Ordering::SeqCst) {
                        continue;
                    }
                    let me = Arc::clone(&self);
                    let built = tokio::task::spawn_blocking(move || {
                        let archive = me.archive();
                        let old = me.view();
                        View::build(&archive, Some(&old))
                    })
                    .await;
                    if let Ok(Ok(view)) = built {
                        self.swap(None, view, None, None);
                    }
                }
                Source::Dir(dir) => {
                    let now = stamp(dir);
                    if now == last {
                        continue;
                    }
                    last = now;
                    let (me, dir) = (Arc::clone(&self), dir.clone());
                    let loaded = tokio::task::spawn_blocking(move || {
                        let (archive, held, written) = load_dir(&dir)?;
                        let view = View::build(&archive, Some(&me.view()))?;
                        anyhow::Ok((archive, view, held, written))
                    })
                    .await;
                    match loaded {
                        Ok(Ok((archive, view, held, written))) => {
                            self.swap(Some(Handle::Copy(Arc::new(archive))), view, held, written)
                        }
                        Ok(Err(e)) => {
                            tracing::warn!("dashboard: reading the archive again failed: {e:#}")
                        }
                        Err(_) => {}
                    }
                }
                Source::Fixed => return,
            }
        }
    }

    /// The task's shape for exports, from the campaign's record.
    fn task_shape(&self) -> Option<autoarch_sandbox::TaskShape> {
        self.shape
            .get_or_init(|| {
                let view = self.view();
                let task = view.campaign.as_ref()?.config.get("task")?.clone();
                let task: autoarch_evaluator::TaskConfig = serde_json::from_value(task).ok()?;
                autoarch_evaluator::Task::load(&task, 0)
                    .ok()
                    .map(|t| t.shape)
            })
            .clone()
    }
}

/// When the directory's data last changed: the snapshot's and the database's times and sizes.
fn stamp(dir: &Path) -> Option<Vec<(SystemTime, u64)>> {
    let mut out = Vec::new();
    for p in [
        dir.join(SNAPSHOT_FILE),
        dir.join("db").join("db"),
        dir.join("db").join("conf"),
    ] {
        if let Ok(m) = std::fs::metadata(&p) {
            out.push((m.modified().ok()?, m.len()));
        }
    }
    Some(out)
}

/// Reads an archive directory into memory, so that no lock is held between requests: the
/// database when no campaign holds it, the review snapshot when one does.
type LoadedDir = (Archive, Option<Option<u32>>, Option<SystemTime>);

fn load_dir(dir: &Path) -> anyhow::Result<LoadedDir> {
    if !dir.join("db").exists() && !dir.join(SNAPSHOT_FILE).exists() {
        // The review path's own error names what to do.
        Archive::open_for_review(dir)?;
    }
    match Archive::open(dir) {
        Ok(archive) => {
            // We hold the archive's lock now: copy it and let go at once, so that a campaign
            // can start on it while it is shown.
            let mut buf = Vec::new();
            archive.export_jsonl(&mut buf)?;
            drop(archive);
            let copy = Archive::in_memory();
            copy.import_jsonl(std::io::BufReader::new(&buf[..]))?;
            Ok((copy, None, None))
        }
        Err(autoarch_archive::Error::InUse { pid, .. }) => {
            let (archive, _) = Archive::open_for_review(dir)?;
            let written = std::fs::metadata(dir.join(SNAPSHOT_FILE))
                .and_then(|m| m.modified())
                .ok();
            Ok((archive, Some(pid), written))
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether an address is a loopback one (then the Host header is checked).
fn loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// The security every response gets: the Host check on loopback binds (DNS rebinding), and
/// the headers.
async fn guard(State(bound): State<SocketAddr>, req: Request, next: Next) -> Response {
    if loopback(&bound) {
        let port = bound.port();
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let allowed = [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ];
        if !allowed.iter().any(|a| a == host) {
            return (
                StatusCode::MISDIRECTED_REQUEST,
                "this dashboard answers only to 127.0.0.1, localhost and [::1] with its port\n",
            )
                .into_response();
        }
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// The dashboard's routes, with the security layer for a server bound to `bound`.
pub fn router(dash: Arc<Dashboard>, bound: SocketAddr) -> axum::Router {
    pages::routes()
        .with_state(dash)
        .layer(axum::middleware::from_fn_with_state(bound, guard))
}

/// Serves until the future `stop` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    dash: Arc<Dashboard>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let bound = listener.local_addr()?;
    tokio::spawn(Arc::clone(&dash).refresh());
    axum::serve(listener, router(dash, bound))
        .with_graceful_shutdown(stop)
        .await
}

/// The warning a non-loopback bind prints.
pub fn exposure_warning(addr: &SocketAddr) -> Option<String> {
    (!loopback(addr)).then(|| {
        format!(
            "warning: the dashboard listens on {addr}, beyond this machine, and has no authentication: anyone who can reach it can read the archive (code, prompts, answers)"
        )
    })
}
