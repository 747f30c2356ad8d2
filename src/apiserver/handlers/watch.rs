//! `watch`: newline-delimited JSON events, streamed until the timeout, the client
//! leaving, or shutdown; selectors applied with objects entering and leaving them.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Req;
use super::read::selectors;
use crate::api::error::ApiError;
use crate::api::selector::Selectors;
use crate::apiserver::request::Output;
use crate::apiserver::response::{Body, partial_metadata};
use crate::apiserver::{Shared, table};
use crate::store::{self, EventKind};

fn line(kind: &str, object: Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// How a change looks to a watcher with selectors: an object leaving the selection is
/// DELETED for it, one entering is ADDED.
fn visible(ev: &store::Event, sel: &Selectors) -> Option<&'static str> {
    let now = sel.matches(&ev.object);
    let before = ev.prev.as_ref().is_some_and(|p| sel.matches(p));
    match ev.kind {
        EventKind::Added => now.then_some("ADDED"),
        EventKind::Deleted => before.then_some("DELETED"),
        EventKind::Modified => match (before, now) {
            (true, true) => Some("MODIFIED"),
            (false, true) => Some("ADDED"),
            (true, false) => Some("DELETED"),
            (false, false) => None,
        },
    }
}

struct Encoder {
    rt: std::sync::Arc<crate::api::registry::ResourceType>,
    output: Output,
    first: bool,
}

impl Encoder {
    fn encode(&mut self, kind: &str, obj: Value) -> Bytes {
        let obj = self.rt.from_storage(obj);
        let object = match self.output {
            Output::Table(include) => {
                let meta = json!({"resourceVersion": obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null)});
                let t = table::table(
                    &self.rt,
                    std::slice::from_ref(&obj),
                    meta,
                    include,
                    self.first,
                );
                self.first = false;
                t
            }
            Output::Metadata => partial_metadata(&obj),
            _ => obj,
        };
        line(kind, object)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(
            "BOOKMARK",
            json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": meta}),
        )
    }
}

fn streaming(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let stream = tokio_stream_from(rx).map(|b| Ok::<_, std::convert::Infallible>(Frame::data(b)));
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    r
}

fn tokio_stream_from(mut rx: mpsc::Receiver<Bytes>) -> impl futures::Stream<Item = Bytes> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

pub(super) async fn watch(s: &Shared, r: Req) -> Result<Response<Body>, ApiError> {
    let sel = selectors(&r)?;
    let from = match r.query.get("resourceVersion") {
        None | Some("") | Some("0") => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v:?}")))?,
        ),
    };
    let timeout = r
        .query
        .number("timeoutSeconds")?
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let bookmarks = r.query.flag("allowWatchBookmarks");
    let initial_end = r.query.flag("sendInitialEvents");
    let prefix = r.rt.key_prefix(r.namespace.as_deref());
    let mut enc = Encoder {
        rt: r.rt.clone(),
        output: r.output,
        first: true,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut w = match s.store.watch(&prefix, from) {
        Ok(w) => w,
        Err(store::Error::TooOld { requested, oldest }) => {
            let status =
                ApiError::expired(format!("too old resource version: {requested} ({oldest})"))
                    .to_status();
            let _ = tx.try_send(line("ERROR", status));
            drop(tx);
            return Ok(streaming(rx));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let snapshot_end = (from.is_none() && initial_end).then(|| w.start_revision());
    let shutdown = s.shutdown.clone();
    let interval = s.settings.bookmark_interval;
    s.tasks.spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        let mut last_rv = w.start_revision();
        let mut pending_initial_end = snapshot_end;
        loop {
            // The snapshot's ADDED events come first; the end-of-initial-events bookmark
            // follows the last of them.
            if let Some(end) = pending_initial_end
                && w.backlog_is_empty() {
                    if tx.send(enc.bookmark(end, true)).await.is_err() {
                        break;
                    }
                    pending_initial_end = None;
                }
            let out = tokio::select! {
                ev = w.next() => match ev {
                    Ok(ev) => {
                        last_rv = last_rv.max(ev.rev);
                        match visible(&ev, &sel) {
                            Some(kind) => enc.encode(kind, (*ev.object).clone()),
                            None => continue,
                        }
                    }
                    Err(store::Error::TooOld { requested, oldest }) => {
                        let status = ApiError::expired(format!("too old resource version: {requested} ({oldest})")).to_status();
                        let _ = tx.send(line("ERROR", status)).await;
                        break;
                    }
                    Err(_) => break,
                },
                _ = ticker.tick(), if bookmarks => enc.bookmark(last_rv, false),
                _ = &mut deadline => break,
                _ = shutdown.cancelled() => break,
                _ = tx.closed() => break,
            };
            if tx.send(out).await.is_err() {
                break;
            }
        }
    });
    Ok(streaming(rx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ev(kind: EventKind, before: Option<&str>, after: &str) -> store::Event {
        let o = |app: &str| Arc::new(json!({"metadata": {"name": "p", "labels": {"app": app}}}));
        store::Event {
            rev: 2,
            key: "/k".into(),
            kind,
            object: o(after),
            prev: before.map(o),
        }
    }

    #[test]
    fn objects_entering_and_leaving_a_selection_are_added_and_deleted() {
        let sel = Selectors {
            labels: crate::api::selector::LabelSelector::parse("app=web").expect("sel"),
            ..Default::default()
        };
        assert_eq!(
            visible(&ev(EventKind::Modified, Some("db"), "web"), &sel),
            Some("ADDED")
        );
        assert_eq!(
            visible(&ev(EventKind::Modified, Some("web"), "db"), &sel),
            Some("DELETED")
        );
        assert_eq!(
            visible(&ev(EventKind::Modified, Some("db"), "db"), &sel),
            None
        );
        assert_eq!(
            visible(&ev(EventKind::Added, None, "web"), &sel),
            Some("ADDED")
        );
    }
}
