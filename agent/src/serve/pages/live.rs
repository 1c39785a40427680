//! Server-sent events: the pages refresh when the campaign moves.

use super::*;

pub(super) async fn events(
    State(dash): Dash,
) -> Sse<impl tokio_stream::Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = dash.pushes.subscribe();
    let hello = tokio_stream::once(Ok(SseEvent::default()
        .event("hello")
        .data(serde_json::json!({ "version": dash.version() }).to_string())));
    let stream = BroadcastStream::new(rx).filter_map(|m| {
        m.ok()
            .map(|p| Ok(SseEvent::default().event(p.kind).data(p.data)))
    });
    Sse::new(hello.chain(stream)).keep_alive(KeepAlive::default())
}
