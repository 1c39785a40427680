//! A candidate's lineage: ancestors and descendants as a tree.

use super::*;

pub(super) async fn lineage_best(State(dash): Dash) -> Response {
    match dash.view().best {
        Some(id) => Redirect::to(&format!("/lineage/{id}")).into_response(),
        None => PageError(
            StatusCode::NOT_FOUND,
            "no candidate has a score yet, so there is no best to trace".into(),
        )
        .into_response(),
    }
}

/// The most descendants drawn.
pub(super) const MAX_DESCENDANTS: usize = 120;

pub(super) async fn lineage(State(dash): Dash, Path(id): Path<u64>) -> PageResult {
    let archive = dash.archive();
    let view = dash.view();
    let c = get_candidate(&archive, id)?;
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    let node = |nid: u64, level: i64, focus: bool| -> svg::Node {
        match view.row(nid) {
            Some(r) => svg::Node {
                id: nid,
                label: format!(
                    "{}{}",
                    r.name,
                    r.score.map_or(String::new(), |s| format!(" · {s:.3}"))
                ),
                level,
                class: if focus {
                    "focus"
                } else if view.best == Some(nid) {
                    "best"
                } else {
                    "plain"
                },
                href: Some(format!("/lineage/{nid}")),
            },
            None => svg::Node {
                id: nid,
                label: "missing: not in this archive".into(),
                level,
                class: "missing",
                href: None,
            },
        }
    };
    // Ancestors, with parents the archive lacks drawn as placeholders.
    let ancestors = archive.ancestors(id)?;
    let mut seen = std::collections::BTreeSet::new();
    nodes.push(node(id, 0, true));
    seen.insert(id);
    for (a, d) in &ancestors {
        if seen.insert(*a) {
            nodes.push(node(*a, -(*d as i64), false));
        }
    }
    let mut frontier = vec![(id, 0i64)];
    while let Some((n, level)) = frontier.pop() {
        let parents = match archive.candidate(n)? {
            Some(x) => x.parents,
            None => Vec::new(),
        };
        for p in parents {
            edges.push((p, n));
            if seen.insert(p) {
                nodes.push(node(p, level - 1, false));
            }
            if view.row(p).is_some() {
                frontier.push((p, level - 1));
            }
        }
    }
    let descendants = archive.descendants(id)?;
    let shown: Vec<(u64, usize)> = descendants.iter().take(MAX_DESCENDANTS).copied().collect();
    for (d, depth) in &shown {
        if seen.insert(*d) {
            nodes.push(node(*d, *depth as i64, false));
        }
        if let Some(r) = view.row(*d) {
            for p in &r.parents {
                if seen.contains(p) {
                    edges.push((*p, *d));
                }
            }
        }
    }
    edges.sort();
    edges.dedup();
    let drawing = svg::lineage(&nodes, &edges);
    render(
        &dash,
        "lineage.html",
        "lineage",
        &format!("lineage of #{id}"),
        context! {
            c => context! { id => c.id, name => c.name.clone() },
            drawing => Value::from_safe_string(drawing),
            ancestors => named(&view, &ancestors.iter().map(|a| a.0).collect::<Vec<_>>()),
            descendants => named(&view, &shown.iter().map(|a| a.0).collect::<Vec<_>>()),
            more => descendants.len().saturating_sub(MAX_DESCENDANTS),
            best => view.best,
        },
    )
}
