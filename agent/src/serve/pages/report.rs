//! The campaign report, rendered from markdown.

use super::*;

/// Markdown as HTML, with any raw HTML in it shown as text and links only to this site or the
/// web (no `javascript:`), images shown as their text.
pub fn markdown_html(md: &str) -> String {
    use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};
    let safe_url = |u: &CowStr| {
        let u = u.trim().to_ascii_lowercase();
        u.starts_with("http://")
            || u.starts_with("https://")
            || u.starts_with('/')
            || u.starts_with('#')
    };
    let events = Parser::new_ext(md, Options::ENABLE_TABLES).filter_map(|e| match e {
        Event::Html(t) | Event::InlineHtml(t) => Some(Event::Text(t)),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let dest_url = if safe_url(&dest_url) {
                dest_url
            } else {
                CowStr::from("#")
            };
            Some(Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }))
        }
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        other => Some(other),
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

pub(super) async fn report(State(dash): Dash) -> PageResult {
    let archive = dash.archive();
    let md = crate::report::render(&archive)
        .map_err(|e| PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    render(
        &dash,
        "report.html",
        "report",
        "report",
        context! { body => Value::from_safe_string(markdown_html(&md)) },
    )
}
