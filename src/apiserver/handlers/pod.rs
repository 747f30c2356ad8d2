//! Pod subresources: `binding` (assign a pod to a node, as the scheduler does) and
//! `log` (read a container's log file the kubelet writes).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response};
use serde_json::{Value, json};

use super::{RETRIES, Req, commit_update, current, retryable};
use crate::api::error::ApiError;
use crate::apiserver::Shared;
use crate::apiserver::objects::now;
use crate::apiserver::response::{self, Body};
use crate::kubelet::logs::{self, View};

/// `POST pods/NAME/binding`: set `spec.nodeName` once and mark the pod scheduled.
pub(super) async fn bind(s: &Shared, r: Req) -> Result<Response<Body>, ApiError> {
    let binding = crate::api::codec::decode(&r.content_type, &r.body)?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("Binding.target.name is required"))?
        .to_string();
    let name = r.name().to_string();
    let mut last = None;
    for _ in 0..RETRIES {
        let (rv, pod) = current(s, &r.rt, r.namespace.as_deref(), &name)?;
        if let Some(assigned) = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return Err(ApiError::conflict(
                "",
                "pods/binding",
                &name,
                &format!("pod {name} is already assigned to node \"{assigned}\""),
            ));
        }
        let mut next = pod.clone();
        next["spec"]["nodeName"] = json!(node);
        let conditions = next["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut conditions: Vec<Value> = conditions
            .into_iter()
            .filter(|c| c["type"] != "PodScheduled")
            .collect();
        conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now()}));
        next["status"]["conditions"] = Value::Array(conditions);
        match commit_update(s, &r.rt, &r.key(), rv, &pod, next, r.query.dry_run()?).await {
            Ok(_) => {
                return Ok(response::json(
                    201,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                ));
            }
            Err(e) if retryable(&e, false) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| ApiError::conflict("", "pods", &name, ApiError::MODIFIED)))
}

/// Where the kubelet writes a container's log: `DIR/NS_NAME_UID/CONTAINER/RESTART.log`.
pub fn log_path(dir: &std::path::Path, pod: &Value, container: &str, restart: u64) -> PathBuf {
    let meta = |k: &str| {
        pod.pointer(&format!("/metadata/{k}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    dir.join(format!(
        "{}_{}_{}",
        meta("namespace"),
        meta("name"),
        meta("uid")
    ))
    .join(container)
    .join(format!("{restart}.log"))
}

fn container_status<'a>(pod: &'a Value, container: &str) -> Option<&'a Value> {
    ["/status/containerStatuses", "/status/initContainerStatuses"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .find(|c| c["name"] == container)
}

/// Which container a log request means: the one named, or the only one.
pub(super) fn pick_container(
    pod: &Value,
    asked: Option<&str>,
    name: &str,
) -> Result<String, ApiError> {
    let list = |p: &str| -> Vec<&str> {
        pod.pointer(p)
            .and_then(Value::as_array)
            .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default()
    };
    let names = list("/spec/containers");
    let init = list("/spec/initContainers");
    match asked {
        Some(c) if init.contains(&c) => Ok(c.to_string()),
        Some(c) if names.contains(&c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if names.len() == 1 => Ok(names[0].to_string()),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            names.join(" ")
        ))),
    }
}

/// What the query asks of the log: timestamps, since, tail, byte limit.
fn log_view(r: &Req) -> Result<View, ApiError> {
    let since = match (r.query.number("sinceSeconds")?, r.query.get("sinceTime")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "at most one of sinceTime or sinceSeconds may be specified",
            ));
        }
        (Some(secs), None) => jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_secs(
                i64::try_from(secs).unwrap_or(i64::MAX),
            ))
            .ok(),
        (None, Some(t)) => Some(t.parse::<jiff::Timestamp>().map_err(|_| {
            ApiError::bad_request(format!(
                "sinceTime: Invalid value: \"{t}\": must be RFC 3339"
            ))
        })?),
        (None, None) => None,
    };
    Ok(View {
        timestamps: r.query.flag("timestamps"),
        since,
        tail: r.query.number("tailLines")?,
        limit_bytes: r.query.number("limitBytes")?,
    })
}

/// `GET pods/NAME/log`: the current (or `previous`) run's output; `follow` streams
/// until the container stops running.
pub(super) async fn log(s: &Shared, r: Req) -> Result<Response<Body>, ApiError> {
    let name = r.name().to_string();
    let (_, pod) = current(s, &r.rt, r.namespace.as_deref(), &name)?;
    let container = pick_container(&pod, r.query.get("container"), &name)?;
    let dir = s
        .settings
        .logs_dir
        .clone()
        .ok_or_else(|| ApiError::bad_request("this cluster runs no kubelet"))?;
    let status = container_status(&pod, &container);
    let restarts = status.and_then(|c| c["restartCount"].as_u64()).unwrap_or(0);
    let previous = r.query.flag("previous");
    if status.is_none()
        || status.is_some_and(|c| {
            c.pointer("/state/waiting").is_some() && c.pointer("/lastState/terminated").is_none()
        }) && !previous
    {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {}",
            status
                .and_then(|c| c.pointer("/state/waiting/reason"))
                .and_then(Value::as_str)
                .unwrap_or("ContainerCreating")
        )));
    }
    let run = if previous {
        if restarts == 0 {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        restarts - 1
    } else {
        restarts
    };
    let path = log_path(&dir, &pod, &container, run);
    let view = log_view(&r)?;
    let bytes = std::fs::read(&path).unwrap_or_default();
    let mut offset = logs::complete(&bytes);
    let first = logs::render(&String::from_utf8_lossy(&bytes[..offset]), &view);
    if !r.query.flag("follow") || previous {
        return Ok(response::text(200, first));
    }
    // Following: only new lines from here on, whatever the tail asked for.
    let view = View { tail: None, ..view };
    let render = move |new: &[u8]| Bytes::from(logs::render(&String::from_utf8_lossy(new), &view));
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let _ = tx.try_send(Bytes::from(first));
    let (store, key, shutdown) = (s.store.clone(), r.key(), s.shutdown.clone());
    s.tasks.spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
                () = shutdown.cancelled() => break,
                () = tx.closed() => break,
            }
            let bytes = std::fs::read(&path).unwrap_or_default();
            let end = offset + logs::complete(bytes.get(offset..).unwrap_or_default());
            if end > offset {
                if tx.send(render(&bytes[offset..end])).await.is_err() {
                    break;
                }
                offset = end;
            }
            let running = store.get(&key).ok().flatten().is_some_and(|(_, p)| {
                container_status(&p, &container)
                    .is_some_and(|c| c.pointer("/state/running").is_some())
                    && c_restarts(&p, &container) == run
            });
            if !running {
                // One last read after the container stopped, then end the stream.
                let bytes = std::fs::read(&path).unwrap_or_default();
                if let Some(rest) = bytes.get(offset..).filter(|r| !r.is_empty()) {
                    let _ = tx.send(render(rest)).await;
                }
                break;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| {
            (
                Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(b)),
                rx,
            )
        })
    });
    let mut resp = Response::new(http_body_util::BodyExt::boxed(
        http_body_util::StreamBody::new(stream),
    ));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    Ok(resp)
}

fn c_restarts(pod: &Value, container: &str) -> u64 {
    container_status(pod, container)
        .and_then(|c| c["restartCount"].as_u64())
        .unwrap_or(0)
}
