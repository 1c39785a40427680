//! The dashboard's routes in process (no browser, no socket): every page and JSON endpoint, the
//! structure of each page (snapshots), escaping of LLM-written text, and the security layer.

use std::net::SocketAddr;
use std::sync::Arc;

use autoarch_archive::Archive;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use expect_test::{expect, Expect};
use tower::ServiceExt;

use super::{fixture, router, Dashboard, CSP};
use crate::machine::testing::InProcessTracer;

const BOUND: &str = "127.0.0.1:8321";

fn dashboard(n: usize) -> (Arc<Dashboard>, Vec<u64>) {
    let archive = Archive::in_memory();
    let ids = fixture::archive(&archive, n, true).unwrap();
    (
        Dashboard::fixed(archive, Arc::new(InProcessTracer)).unwrap(),
        ids,
    )
}

struct Got {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn request(dash: &Arc<Dashboard>, method: Method, uri: &str, host: &str) -> Got {
    let bound: SocketAddr = BOUND.parse().unwrap();
    let res = router(Arc::clone(dash), bound)
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .header(header::HOST, host)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    Got {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get(dash: &Arc<Dashboard>, uri: &str) -> Got {
    request(dash, Method::GET, uri, BOUND).await
}

/// The page's structure: its landmarks, headings, tables, forms and figures, with ids and
/// classes, in order (text, rows and numbers left out).
fn outline(html: &str) -> String {
    const TAGS: [&str; 14] = [
        "h1", "h2", "h3", "section", "table", "form", "figure", "svg", "nav", "ul", "ol",
        "details", "article", "select",
    ];
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..end];
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if TAGS.contains(&name.as_str()) {
            let attr = |a: &str| {
                tag.find(&format!(" {a}=\"")).map(|p| {
                    let v = &tag[p + a.len() + 3..];
                    v[..v.find('"').unwrap_or(v.len())].to_string()
                })
            };
            let mut line = name.clone();
            if let Some(id) = attr("id") {
                line.push_str(&format!("#{id}"));
            }
            if let Some(class) = attr("class") {
                line.push_str(&format!(".{}", class.replace(' ', ".")));
            }
            if let Some(n) = attr("name") {
                line.push_str(&format!("[{n}]"));
            }
            out.push(line);
        }
    }
    out.join("\n") + "\n"
}

async fn page(dash: &Arc<Dashboard>, uri: &str, expected: Expect) -> String {
    let got = get(dash, uri).await;
    assert_eq!(got.status, StatusCode::OK, "{uri}: {}", got.body);
    assert_eq!(got.headers[header::CONTENT_SECURITY_POLICY], CSP);
    assert_eq!(got.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(got.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    // No inline script or style anywhere: the policy would block them.
    assert!(
        !got.body.contains("<script>") && !got.body.contains(" style=\""),
        "{uri}"
    );
    expected.assert_eq(&outline(&got.body));
    got.body
}

#[tokio::test]
async fn the_overview_and_the_table_render_with_their_structure() {
    let (dash, _) = dashboard(60);
    page(
        &dash,
        "/",
        expect![[r#"
            nav
            h1
            section.cards
            h2
            h2
            table#counts.small
            h2
            table#outcomes.small
            h3
            table.small
            h2
            table#budgets.small
            section
            h2
            figure#plot-time
            svg.chart
            figure#plot-compute
            svg.chart
            section
            h2
            table#latest.grid
            section.two
            h2
            ul#events.log
            h2
            ul.insights
            section
            details
        "#]],
    )
    .await;
    page(
        &dash,
        "/candidates",
        expect![[r#"
            nav
            h1
            form#filters.filters
            select[status]
            select[proposer]
            select[model]
            select[tag]
            select[family]
            select[fidelity]
            table#candidates.grid.sortable
        "#]],
    )
    .await;
}

#[tokio::test]
async fn a_candidate_and_its_lineage_render_with_their_structure() {
    let (dash, ids) = dashboard(60);
    let best = dash.view().best.unwrap();
    let llm = ids[4];
    page(
        &dash,
        &format!("/candidate/{llm}"),
        expect![[r#"
            nav
            h1
            section.two
            h2
            table.small
            h2
            h2
            table.small
            h2
            table.small.ops
            section
            h2
            h3
            table.small
            table.grid
            figure
            svg.chart
            section
            h2
            table.code
            section
            h2
            form.inline
            table.code.diff
            section
            h2
            details.call
            h3
            h3
        "#]],
    )
    .await;
    page(
        &dash,
        &format!("/lineage/{best}"),
        expect![[r#"
            nav
            h1
            figure.wide
            svg.lineage
            section.two
            h2
            ol
            h2
            ol
        "#]],
    )
    .await;
}

/// The number after `after` in `text` (from its first occurrence), as printed.
fn number_after(text: &str, after: &str) -> f64 {
    let rest = &text[text
        .find(after)
        .unwrap_or_else(|| panic!("no {after:?} in the page"))
        + after.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(rest.len());
    rest[..end].parse().unwrap()
}

#[tokio::test]
async fn the_report_and_the_dashboard_agree_on_a_candidates_spread() {
    let (dash, _) = dashboard(60);
    let best = dash.view().best.unwrap();
    let archive = dash.archive();
    let summary = archive.summary(best).unwrap();
    assert!(
        summary.fidelity.is_promoted(),
        "the fixture's best is promoted"
    );
    let scores: Vec<f64> = archive
        .evaluations(best)
        .unwrap()
        .iter()
        .filter(|e| e.fidelity == summary.fidelity)
        .filter_map(|e| e.metrics.get("score").copied())
        .collect();
    assert!(scores.len() >= 2, "{scores:?}");
    // The sample SD by hand (n − 1).
    let m = scores.iter().sum::<f64>() / scores.len() as f64;
    let by_hand =
        (scores.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (scores.len() - 1) as f64).sqrt();
    assert!(by_hand > 0.0);
    let report = crate::report::render(&archive).unwrap();
    let row = report
        .lines()
        .find(|l| l.contains(&format!("| {best} |")) && l.contains(" ± "))
        .unwrap_or_else(|| panic!("no row of #{best} in the report:\n{report}"));
    let in_report = number_after(row, " ± ");
    let html = get(&dash, &format!("/candidate/{best}")).await.body;
    // The highest fidelity's table comes last; its score row is mean, then SD.
    let last = &html[html.rfind("<td>score</td>").unwrap()..];
    let cells: Vec<&str> = last
        .split("<td class=\"num\">")
        .skip(1)
        .take(2)
        .map(|c| c.split('<').next().unwrap())
        .collect();
    let in_dashboard: f64 = cells[1].parse().unwrap();
    for (what, shown) in [("report", in_report), ("dashboard", in_dashboard)] {
        assert!(
            (shown - by_hand).abs() < 5e-5,
            "the {what} shows {shown}, the sample SD is {by_hand}"
        );
    }
}

#[tokio::test]
async fn pareto_compare_and_report_render_with_their_structure() {
    let (dash, ids) = dashboard(60);
    let best = dash.view().best.unwrap();
    page(
        &dash,
        "/pareto?x=flops&log=1",
        expect![[r#"
            nav
            h1
            figure.wide
            svg.chart
            h2
            table.grid
            h2
            figure.wide
            svg.chart
        "#]],
    )
    .await;
    page(
        &dash,
        &format!("/compare?ids={},{best}", ids[4]),
        expect![[r#"
            nav
            h1
            form.inline
            table.grid
            h2
            figure
            svg.chart
            h2
            table.code.diff
        "#]],
    )
    .await;
    let report = page(
        &dash,
        "/report",
        expect![[r#"
            nav
            article.report
            h1
            ul
            h2
            table
            h2
            ul
            h2
            table
            h2
            ul
            h2
        "#]],
    )
    .await;
    assert!(report.contains("Best candidates"), "{report}");
    // The best's lineage from the menu, and a page that does not exist.
    let got = get(&dash, "/lineage").await;
    assert_eq!(got.status, StatusCode::SEE_OTHER);
    assert_eq!(got.headers[header::LOCATION], format!("/lineage/{best}"));
    let got = get(&dash, "/candidate/999999").await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
    assert!(got.body.contains("no candidate #999999"));
    let got = get(&dash, "/no/such/page").await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
    assert_eq!(got.headers[header::CONTENT_SECURITY_POLICY], CSP);
}

#[tokio::test]
async fn llm_written_text_is_escaped_everywhere() {
    let (dash, ids) = dashboard(30);
    let xss = *ids.last().unwrap();
    let tag: String =
        url::form_urlencoded::byte_serialize(fixture::PAYLOADS[2].as_bytes()).collect();
    let pages = [
        "/".to_string(),
        "/candidates?q=xss".to_string(),
        format!("/candidates?tag={tag}"),
        format!("/candidate/{xss}"),
        format!("/lineage/{xss}"),
        format!("/compare?ids={xss},{}", ids[0]),
        "/pareto".to_string(),
        "/report".to_string(),
    ];
    for uri in &pages {
        let got = get(&dash, uri).await;
        assert!(got.status.is_success(), "{uri}: {}", got.status);
        for p in fixture::PAYLOADS {
            assert!(!got.body.contains(p), "{uri} carries {p:?} unescaped");
        }
        assert!(!got.body.contains("<script>window"), "{uri}");
        assert!(!got.body.contains("<img src=x"), "{uri}");
        assert!(!got.body.contains("<svg onload"), "{uri}");
    }
    // JSON carries the text as it is, as JSON that no browser renders.
    for uri in [
        "/api/overview".to_string(),
        "/api/candidates?q=xss".to_string(),
        format!("/api/candidate/{xss}"),
    ] {
        let got = get(&dash, &uri).await;
        assert_eq!(
            got.headers[header::CONTENT_TYPE],
            "application/json",
            "{uri}"
        );
        assert_eq!(got.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
    let filtered = get(&dash, &format!("/api/candidates?tag={tag}")).await;
    assert!(filtered.body.contains("\"total\":1"), "{}", filtered.body);
    let got = get(&dash, &format!("/candidate/{xss}")).await;
    assert!(got
        .body
        .contains("&lt;/pre&gt;&lt;script&gt;window.autoarchPwned = 1&lt;/script&gt;"));
    assert!(got.body.contains("&lt;img src=x onerror="));
    // The raw code is a plain-text attachment, never a page.
    let got = get(&dash, &format!("/candidate/{xss}/code.star")).await;
    assert_eq!(
        got.headers[header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    assert!(got.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    assert!(got.body.contains(fixture::PAYLOADS[0]));
}

#[tokio::test]
async fn the_security_layer_checks_hosts_and_methods() {
    let (dash, _) = dashboard(5);
    // DNS rebinding: another name for this address is refused.
    let got = request(&dash, Method::GET, "/", "evil.example:8321").await;
    assert_eq!(got.status, StatusCode::MISDIRECTED_REQUEST);
    for host in ["localhost:8321", "[::1]:8321", BOUND] {
        assert_eq!(
            request(&dash, Method::GET, "/", host).await.status,
            StatusCode::OK
        );
    }
    // Read-only: HEAD answers, anything that writes does not.
    assert_eq!(
        request(&dash, Method::HEAD, "/", BOUND).await.status,
        StatusCode::OK
    );
    for m in [Method::POST, Method::PUT, Method::DELETE] {
        let got = request(&dash, m.clone(), "/candidates", BOUND).await;
        assert_eq!(got.status, StatusCode::METHOD_NOT_ALLOWED, "{m}");
    }
    // On a non-loopback bind the Host is not checked (there is no name to check against).
    let open: SocketAddr = "0.0.0.0:8321".parse().unwrap();
    let res = router(Arc::clone(&dash), open)
        .oneshot(
            Request::builder()
                .uri("/")
                .header(header::HOST, "dashboard.lab:8321")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn assets_carry_their_hash_and_revalidate() {
    let (dash, _) = dashboard(3);
    let html = get(&dash, "/").await.body;
    let start = html.find("/assets/").unwrap();
    let start = start + html[start..].find("/assets/").unwrap();
    let start = html[start..]
        .find("style.css")
        .map(|e| html[..start + e].rfind("/assets/").unwrap())
        .unwrap();
    let url = &html[start..start + html[start..].find('"').unwrap()];
    assert!(url.ends_with("/style.css"), "{url}");
    let got = get(&dash, url).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
    let etag = got.headers[header::ETAG].to_str().unwrap().to_string();
    assert!(got.headers[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let bound: SocketAddr = BOUND.parse().unwrap();
    let res = router(Arc::clone(&dash), bound)
        .oneshot(
            Request::builder()
                .uri(url)
                .header(header::HOST, BOUND)
                .header(header::IF_NONE_MATCH, &etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    let got = get(&dash, "/assets/0000000000000000/style.css").await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_table_filters_sorts_and_pages() {
    let (dash, _) = dashboard(120);
    let json = |got: Got| -> serde_json::Value { serde_json::from_str(&got.body).unwrap() };
    let all = json(get(&dash, "/api/candidates?per=500").await);
    let total = all["total"].as_u64().unwrap();
    assert_eq!(total, 124);
    let page = json(get(&dash, "/api/candidates?sort=score&per=20&page=2").await);
    let scores: Vec<f64> = page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["score"].as_f64())
        .collect();
    assert_eq!(page["page"], 2);
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let asc = json(get(&dash, "/api/candidates?sort=params&dir=asc&per=500").await);
    let params: Vec<u64> = asc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["params"].as_u64().unwrap())
        .collect();
    assert!(params.windows(2).all(|w| w[0] <= w[1]));
    let failed = json(get(&dash, "/api/candidates?status=failed&per=500").await);
    assert!(failed["total"].as_u64().unwrap() > 0);
    assert!(failed["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "failed"));
    let text = json(get(&dash, "/api/candidates?q=variant%2011%3A").await);
    assert_eq!(text["total"], 1);
    let best = json(get(&dash, "/api/candidates?best=1&per=500").await);
    assert!(best["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["record"] == true));
    let top = json(get(&dash, "/api/candidates?top=10&per=500").await);
    let scored = all["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["score"].is_number())
        .count() as f64;
    assert_eq!(top["total"].as_u64().unwrap() as f64, (scored * 0.1).ceil());
    let llm = json(get(&dash, "/api/candidates?proposer=llm&model=mock-model").await);
    assert!(llm["total"].as_u64().unwrap() > 10);
    // The page itself takes the same query.
    let html = get(&dash, "/candidates?status=failed&sort=params&dir=asc")
        .await
        .body;
    assert!(html.contains("<option value=\"failed\" selected>failed</option>"));
    assert!(html.contains("class=\"sorted asc\""));
}

#[tokio::test]
async fn the_pytorch_export_traces_the_design() {
    let (dash, ids) = dashboard(3);
    let got = get(&dash, &format!("/candidate/{}/model.py", ids[0])).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(
        got.headers[header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    assert!(got.body.contains("import torch"), "{}", got.body);
    assert!(got.body.contains("nn.Module"));
}

#[test]
fn markdown_shows_raw_html_as_text_and_drops_script_links() {
    let html = super::pages::report::markdown_html(
        "# T\n\n| a | b |\n|---|---|\n| <script>x</script> | [l](javascript:alert(1)) |\n\n<img src=x onerror=y>\n\n![i](http://e/x.png)",
    );
    assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"), "{html}");
    assert!(html.contains("&lt;img src=x onerror=y&gt;"), "{html}");
    assert!(!html.contains("javascript:"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(html.contains("<table>"));
}
