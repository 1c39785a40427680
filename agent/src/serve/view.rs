//! What the dashboard shows, computed once per change of the archive: a row per candidate (the
//! candidates table filters, sorts and pages these in memory, fast at 100,000), the campaign's
//! record and budgets, counts, the best-so-far history, the event log's tail and the insights.
//! A rebuild reads evaluations only for candidates whose evaluation count changed.

use std::collections::HashMap;

use autoarch_archive::{Archive, Campaign, Cell, Event, Insight};
use serde::{Deserialize, Serialize};

use crate::campaign::{ranking, Spent, State};

/// A candidate as the tables show it.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub id: u64,
    pub name: String,
    pub status: &'static str,
    /// The outcome of its latest evaluation.
    pub outcome: Option<&'static str>,
    pub proposer: &'static str,
    pub model: Option<String>,
    pub tags: Vec<String>,
    /// The kind of token mixing (the MAP-Elites family).
    pub family: String,
    pub fidelity: autoarch_archive::Fidelity,
    pub score: Option<f64>,
    /// The short-budget score every candidate is compared at.
    pub short_score: Option<f64>,
    pub val_loss: Option<f64>,
    pub params: u64,
    pub flops: u64,
    pub latency_ms: Option<f64>,
    pub peak_mb: Option<f64>,
    /// Evaluation-seconds spent on it.
    pub compute_seconds: f64,
    pub created_ms: u64,
    pub parents: Vec<u64>,
    /// Its place in the campaign's ranking (1 is the best).
    pub rank: Option<usize>,
    /// It raised the best short-budget score when it arrived.
    pub record: bool,
    pub random_baseline: bool,
    #[serde(skip)]
    evaluations: u32,
    /// Lower-cased name and motivation, for the text filter.
    #[serde(skip)]
    text: String,
}

/// A point of the best-so-far history.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    pub id: u64,
    /// Minutes since the first candidate.
    pub minutes: f64,
    /// Evaluation-seconds spent up to and including it.
    pub compute: f64,
    pub score: f64,
    pub best: f64,
}

/// A budget and what is spent of it.
#[derive(Clone, Debug, Serialize)]
pub struct Budget {
    pub name: &'static str,
    pub spent: f64,
    pub limit: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    pub total: usize,
    pub by_status: Vec<(&'static str, usize)>,
    pub by_outcome: Vec<(&'static str, usize)>,
    pub by_proposer: Vec<(&'static str, usize)>,
}

/// Everything the pages read, for one state of the archive.
#[derive(Clone, Debug, Default, Serialize)]
pub struct View {
    pub campaign: Option<Campaign>,
    /// The campaign's config as pretty JSON.
    pub config: String,
    pub state: Option<State>,
    pub budgets: Vec<Budget>,
    pub rows: Vec<Row>,
    #[serde(skip)]
    index: HashMap<u64, usize>,
    pub counts: Counts,
    pub history: Vec<Point>,
    pub events: Vec<Event>,
    pub insights: Vec<Insight>,
    pub best: Option<u64>,
}

fn count<T: Ord + Copy>(values: impl Iterator<Item = T>) -> Vec<(T, usize)> {
    let mut m = std::collections::BTreeMap::new();
    for v in values {
        *m.entry(v).or_insert(0) += 1;
    }
    m.into_iter().collect()
}

impl View {
    /// Reads the archive; rows of `previous` whose evaluations did not change are reused.
    pub fn build(archive: &Archive, previous: Option<&View>) -> autoarch_archive::Result<View> {
        let listed = archive.list()?;
        let mut rows = Vec::with_capacity(listed.len());
        for l in &listed {
            rows.push(row_of(archive, l, previous)?);
        }
        let index: HashMap<u64, usize> = rows.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
        let ranked = ranking::ranking(&listed);
        for (k, l) in ranked.iter().enumerate() {
            rows[index[&l.candidate.id]].rank = Some(k + 1);
        }
        let best = ranked.first().map(|l| l.candidate.id);
        let history = history(&mut rows);
        let campaign = archive.campaigns()?.into_iter().next();
        let state = campaign
            .as_ref()
            .and_then(|c| State::decode(c, "the archive").ok());
        let budgets = match (&campaign, &state) {
            (Some(c), Some(st)) => budgets(c, st, archive)?,
            _ => Vec::new(),
        };
        let events = archive.events()?;
        let events = events[events.len().saturating_sub(50)..].to_vec();
        let counts = Counts {
            total: rows.len(),
            by_status: count(rows.iter().map(|r| r.status)),
            by_outcome: count(rows.iter().filter_map(|r| r.outcome)),
            by_proposer: count(rows.iter().map(|r| r.proposer)),
        };
        Ok(View {
            config: campaign
                .as_ref()
                .map(|c| serde_json::to_string_pretty(&c.config).unwrap_or_default())
                .unwrap_or_default(),
            campaign,
            state,
            budgets,
            rows,
            index,
            counts,
            history,
            events,
            insights: archive.insights()?,
            best,
        })
    }

    pub fn row(&self, id: u64) -> Option<&Row> {
        self.index.get(&id).map(|&i| &self.rows[i])
    }

    /// The latest results: the last `n` candidates that finished an evaluation, newest first.
    pub fn latest(&self, n: usize) -> Vec<&Row> {
        self.rows
            .iter()
            .rev()
            .filter(|r| r.outcome.is_some())
            .take(n)
            .collect()
    }

    /// The candidates a query selects, sorted, and the page asked for.
    pub fn select(&self, q: &Query) -> Page<'_> {
        let text =
            q.q.as_deref()
                .map(str::to_lowercase)
                .filter(|t| !t.is_empty());
        let mut rows: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| {
                q.status
                    .as_deref()
                    .is_none_or(|s| s.is_empty() || r.status == s)
            })
            .filter(|r| {
                q.proposer
                    .as_deref()
                    .is_none_or(|s| s.is_empty() || r.proposer == s)
            })
            .filter(|r| {
                q.model
                    .as_deref()
                    .is_none_or(|s| s.is_empty() || r.model.as_deref() == Some(s))
            })
            .filter(|r| {
                q.tag
                    .as_deref()
                    .is_none_or(|s| s.is_empty() || r.tags.iter().any(|t| t == s))
            })
            .filter(|r| {
                q.family
                    .as_deref()
                    .is_none_or(|s| s.is_empty() || r.family == s)
            })
            .filter(|r| q.fidelity.is_none_or(|f| r.fidelity.0 == f))
            .filter(|r| text.as_deref().is_none_or(|t| r.text.contains(t)))
            .filter(|r| !q.best_only() || r.record)
            .collect();
        if let Some(pct) = q.top.filter(|p| *p > 0.0 && *p < 100.0) {
            let mut scores: Vec<f64> = rows.iter().filter_map(|r| r.score).collect();
            scores.sort_by(|a, b| b.total_cmp(a));
            let keep = ((scores.len() as f64 * pct / 100.0).ceil() as usize).max(1);
            let cut = scores.get(keep - 1).copied().unwrap_or(f64::INFINITY);
            rows.retain(|r| r.score.is_some_and(|s| s >= cut));
        }
        let key = q.sort.as_deref().unwrap_or("rank");
        let descending = match q.dir.as_deref() {
            Some("asc") => false,
            Some("desc") => true,
            _ => default_descending(key),
        };
        sort(&mut rows, key, descending);
        let per = q.per.unwrap_or(50).clamp(1, 500);
        let total = rows.len();
        let pages = total.div_ceil(per).max(1);
        let page = q.page.unwrap_or(1).clamp(1, pages);
        let rows = rows.into_iter().skip((page - 1) * per).take(per).collect();
        Page {
            total,
            page,
            pages,
            per,
            sort: key.to_string(),
            descending,
            rows,
        }
    }

    /// The values the filters offer: proposers, models, tags, families, fidelities.
    pub fn choices(&self) -> Choices {
        let mut c = Choices::default();
        let push = |v: &mut Vec<String>, s: &str| {
            if !v.iter().any(|x| x == s) {
                v.push(s.to_string());
            }
        };
        for r in &self.rows {
            push(&mut c.proposers, r.proposer);
            if let Some(m) = &r.model {
                push(&mut c.models, m);
            }
            for t in &r.tags {
                push(&mut c.tags, t);
            }
            push(&mut c.families, &r.family);
            if !c.fidelities.contains(&r.fidelity.0) {
                c.fidelities.push(r.fidelity.0);
            }
        }
        c.proposers.sort();
        c.models.sort();
        c.tags.sort();
        c.families.sort();
        c.fidelities.sort();
        c
    }
}

/// A candidate's row: what its summary says, and from its evaluations (read only when they
/// changed since `previous`) the compute it took, its latency and its peak memory.
fn row_of(
    archive: &Archive,
    l: &autoarch_archive::Listed,
    previous: Option<&View>,
) -> autoarch_archive::Result<Row> {
    let c = &l.candidate;
    let s = &l.summary;
    let reuse = previous
        .and_then(|p| p.row(c.id))
        .filter(|r| r.evaluations == s.evaluations && r.status == s.status.as_str());
    let (compute, latency, peak) = match reuse {
        Some(r) => (r.compute_seconds, r.latency_ms, r.peak_mb),
        None if s.evaluations == 0 => (0.0, None, None),
        None => {
            let evals = archive.evaluations(c.id)?;
            let top = |key: &str| {
                evals
                    .iter()
                    .filter(|e| {
                        e.fidelity == s.fidelity && e.outcome == autoarch_archive::Outcome::Ok
                    })
                    .filter_map(|e| e.timings.get(key).copied())
                    .next_back()
            };
            (
                evals
                    .iter()
                    .filter_map(|e| e.timings.get("wall_seconds"))
                    .fold(0.0, |a, b| a + b),
                top("latency_ms_batch_1"),
                top("peak_rss_mb"),
            )
        }
    };
    Ok(Row {
        id: c.id,
        name: c.name.clone(),
        status: s.status.as_str(),
        outcome: s.last_outcome.map(|o| o.as_str()),
        proposer: c.proposer.as_str(),
        model: c.model.clone(),
        tags: c.tags.clone(),
        family: Cell::of(&c.stats).family,
        fidelity: s.fidelity,
        score: s.score(),
        short_score: s.short_score.or(if s.fidelity.is_short() {
            s.score()
        } else {
            None
        }),
        val_loss: s.metrics.get("val_loss").copied(),
        params: c.stats.params,
        flops: c.stats.flops,
        latency_ms: latency,
        peak_mb: peak,
        compute_seconds: compute,
        created_ms: c.created_ms,
        parents: c.parents.clone(),
        rank: None,
        record: false,
        random_baseline: ranking::is_random(l),
        evaluations: s.evaluations,
        text: format!("{}\n{}", c.name, c.motivation).to_lowercase(),
    })
}

/// Scores, sizes and counts: higher first; names, ids and losses: lower first.
fn default_descending(key: &str) -> bool {
    matches!(key, "score" | "short_score" | "compute" | "created")
}

/// Sorts by a column (unknown columns sort by rank); candidates without the value go last.
fn sort(rows: &mut [&Row], key: &str, descending: bool) {
    use std::cmp::Ordering;
    let num = |r: &Row| -> Option<f64> {
        match key {
            "id" => Some(r.id as f64),
            "score" => r.score,
            "short_score" => r.short_score,
            "val_loss" => r.val_loss,
            "params" => Some(r.params as f64),
            "flops" => Some(r.flops as f64),
            "latency" => r.latency_ms,
            "fidelity" => Some(f64::from(r.fidelity.0)),
            "compute" => Some(r.compute_seconds),
            "created" => Some(r.created_ms as f64),
            _ => r.rank.map(|k| k as f64),
        }
    };
    let text = |r: &Row| -> Option<String> {
        match key {
            "name" => Some(r.name.to_lowercase()),
            "status" => Some(r.status.to_string()),
            "proposer" => Some(r.proposer.to_string()),
            "family" => Some(r.family.clone()),
            "model" => r.model.clone(),
            _ => None,
        }
    };
    let textual = matches!(key, "name" | "status" | "proposer" | "family" | "model");
    rows.sort_by(|a, b| {
        let ord = if textual {
            match (text(a), text(b)) {
                (Some(x), Some(y)) => Some(x.cmp(&y)),
                (Some(_), None) => return Ordering::Less,
                (None, Some(_)) => return Ordering::Greater,
                (None, None) => None,
            }
        } else {
            match (num(a), num(b)) {
                (Some(x), Some(y)) => Some(x.total_cmp(&y)),
                (Some(_), None) => return Ordering::Less,
                (None, Some(_)) => return Ordering::Greater,
                (None, None) => None,
            }
        };
        let ord = ord.unwrap_or(Ordering::Equal);
        let ord = if descending { ord.reverse() } else { ord };
        ord.then(a.id.cmp(&b.id))
    });
}

/// Marks the candidates that raised the best short-budget score, in the order they were
/// created, and returns the history (each scored candidate a point, with the best so far).
fn history(rows: &mut [Row]) -> Vec<Point> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| (rows[i].created_ms, rows[i].id));
    let start = order.first().map_or(0, |&i| rows[i].created_ms);
    let (mut best, mut compute) = (f64::NEG_INFINITY, 0.0);
    let mut out = Vec::new();
    for i in order {
        let r = &mut rows[i];
        compute += r.compute_seconds;
        if r.random_baseline {
            continue;
        }
        let Some(score) = r.short_score.filter(|s| s.is_finite()) else {
            continue;
        };
        if score > best {
            best = score;
            r.record = true;
        }
        out.push(Point {
            id: r.id,
            minutes: (r.created_ms.saturating_sub(start)) as f64 / 60_000.0,
            compute,
            score,
            best,
        });
    }
    out
}

/// Each budget the campaign set, with what is spent of it (those it did not set, spent only).
fn budgets(
    c: &Campaign,
    state: &State,
    archive: &Archive,
) -> autoarch_archive::Result<Vec<Budget>> {
    let spent =
        Spent::of(archive, state).map_err(|e| autoarch_archive::Error::Invalid(e.to_string()))?;
    let limit = |key: &str| {
        c.config
            .get("budget")
            .and_then(|b| b.get(key))
            .and_then(|v| v.as_f64())
    };
    Ok(vec![
        Budget {
            name: "candidates",
            spent: spent.candidates as f64,
            limit: limit("max_candidates"),
        },
        Budget {
            name: "evaluation-seconds",
            spent: spent.compute,
            limit: limit("max_compute_seconds"),
        },
        Budget {
            name: "wall-seconds",
            spent: state.elapsed_seconds,
            limit: limit("max_seconds"),
        },
        Budget {
            name: "tokens",
            spent: spent.tokens as f64,
            limit: limit("max_tokens"),
        },
        Budget {
            name: "dollars",
            spent: spent.dollars,
            limit: limit("max_dollars"),
        },
    ])
}

/// The candidates table's query (the page's URL and the JSON endpoint take the same).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Query {
    pub sort: Option<String>,
    pub dir: Option<String>,
    pub status: Option<String>,
    pub proposer: Option<String>,
    pub model: Option<String>,
    pub tag: Option<String>,
    pub family: Option<String>,
    pub fidelity: Option<u32>,
    /// Text in the name or the motivation.
    pub q: Option<String>,
    /// "1": only the candidates that raised the best score.
    pub best: Option<String>,
    /// Only the top this-many percent by score.
    pub top: Option<f64>,
    pub page: Option<usize>,
    pub per: Option<usize>,
}

impl Query {
    fn best_only(&self) -> bool {
        matches!(self.best.as_deref(), Some("1" | "on" | "true"))
    }
}

/// A page of the candidates table.
#[derive(Debug, Serialize)]
pub struct Page<'a> {
    pub total: usize,
    pub page: usize,
    pub pages: usize,
    pub per: usize,
    pub sort: String,
    pub descending: bool,
    pub rows: Vec<&'a Row>,
}

/// What the table's filters offer.
#[derive(Debug, Default, Serialize)]
pub struct Choices {
    pub proposers: Vec<String>,
    pub models: Vec<String>,
    pub tags: Vec<String>,
    pub families: Vec<String>,
    pub fidelities: Vec<u32>,
}
