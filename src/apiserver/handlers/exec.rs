//! `pods/exec` over WebSockets (`v5.channel.k8s.io`, and `v4` without the stdin
//! close signal), as kubectl ≥ 1.30 speaks it: each binary message starts with its
//! channel (0 stdin, 1 stdout, 2 stderr, 3 the final `Status`, 4 terminal resize,
//! 255 close-a-channel); the command runs in the pod's sandbox on its node's agent.

use futures::{SinkExt, StreamExt};
use http::Response;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::Req;
use crate::api::error::ApiError;
use crate::apiserver::Shared;
use crate::apiserver::nodes::{ExecIo, NodeAgent};
use crate::apiserver::response::Body;
use crate::apiserver::websocket::{frame, normal_close};

/// Subprotocols we speak, best first.
const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const CLOSE: u8 = 255;
/// Pipe buffer between the websocket and the guest.
const PIPE: usize = 64 * 1024;

/// What the query asks for.
struct Options {
    command: Vec<String>,
    container: String,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

fn options(parts: &http::request::Parts, pod: &Value, name: &str) -> Result<Options, ApiError> {
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let flag = |k: &str| get(k).is_some_and(|v| v == "true" || v == "1");
    let command: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    let o = Options {
        command,
        container: super::pod::pick_container(pod, get("container"), name)?,
        stdin: flag("stdin"),
        stdout: flag("stdout"),
        stderr: flag("stderr"),
        tty: flag("tty"),
    };
    if !(o.stdin || o.stdout || o.stderr) {
        return Err(ApiError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    Ok(o)
}

/// `GET`/`POST pods/NAME/exec`: upgrade to a websocket and run the command.
pub(super) async fn exec(
    s: &Shared,
    parts: &http::request::Parts,
    r: Req,
) -> Result<Response<Body>, ApiError> {
    let (name, pod) = super::stream::pod_of(s, &r)?;
    let o = options(parts, &pod, &name)?;
    let (agent, uid) = super::stream::pod_agent(s, &pod, &name)?;
    let Some(key) = super::stream::websocket_key(parts) else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let offered = super::stream::header_list(parts, "sec-websocket-protocol");
    let Some(protocol) = PROTOCOLS.iter().find(|p| offered.contains(p)) else {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade: no supported stream protocol among {offered:?}; supported: {PROTOCOLS:?}"
        )));
    };
    let on_upgrade = super::stream::on_upgrade(parts)?;
    let v5 = *protocol == PROTOCOLS[0];
    s.tasks.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                session(ws, agent, uid, o, v5).await;
            }
            Err(e) => tracing::debug!(error = %e, "exec upgrade failed"),
        }
    });
    Ok(super::stream::websocket_accepted(key, protocol))
}

/// The final status of an exec, on the error channel, as the kubelet words it.
fn status(result: &Result<i32, String>) -> Value {
    match result {
        Ok(0) => json!({"metadata": {}, "status": "Success"}),
        Ok(code) => json!({
            "metadata": {}, "status": "Failure",
            "message": format!("command terminated with non-zero exit code: exit status {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Err(message) => json!({
            "metadata": {}, "status": "Failure", "message": message,
            "reason": "InternalError", "code": 500,
        }),
    }
}

/// Copy a pipe to websocket frames on `channel` until end-of-file.
async fn pump(mut from: DuplexStream, channel: u8, to: tokio::sync::mpsc::Sender<Message>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.send(frame(channel, &buf[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn session<S>(
    ws: WebSocketStream<S>,
    agent: std::sync::Arc<dyn NodeAgent>,
    uid: String,
    o: Options,
    v5: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut incoming) = ws.split();
    let pipe = || tokio::io::duplex(PIPE);
    let (stdin_theirs, stdin_ours) = if o.stdin {
        let (a, b) = pipe();
        (Some(a), Some(b))
    } else {
        (None, None)
    };
    let (stdout_theirs, stdout_ours) = pipe();
    let (stderr_theirs, stderr_ours) = if o.stderr && !o.tty {
        let (a, b) = pipe();
        (Some(a), Some(b))
    } else {
        (None, None)
    };
    // Everything for the client goes through one queue into the sink.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(64);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    // The client's frames: stdin data, stdin close (v5), resize (ignored: guests
    // have no terminal size), or the connection closing.
    let reader = tokio::spawn(async move {
        let mut stdin = stdin_ours;
        while let Some(Ok(m)) = incoming.next().await {
            let data = match m {
                Message::Binary(b) => b.to_vec(),
                Message::Text(t) => t.as_bytes().to_vec(),
                Message::Close(_) => break,
                _ => continue,
            };
            match data.split_first() {
                Some((&STDIN, rest)) => {
                    if let Some(w) = stdin.as_mut()
                        && w.write_all(rest).await.is_err()
                    {
                        stdin = None;
                    }
                }
                Some((&CLOSE, [channel, ..])) if v5 && *channel == STDIN => stdin = None,
                _ => {}
            }
        }
    });
    let stdout_pump = {
        let tx = tx.clone();
        let keep = o.stdout || o.tty;
        tokio::spawn(async move {
            if keep {
                pump(stdout_ours, STDOUT, tx).await;
            } else {
                // Not asked for: drain so the guest never blocks on a full pipe.
                let mut sink = tokio::io::sink();
                let mut from = stdout_ours;
                let _ = tokio::io::copy(&mut from, &mut sink).await;
            }
        })
    };
    let stderr_pump = stderr_ours.map(|e| tokio::spawn(pump(e, STDERR, tx.clone())));
    let io = ExecIo {
        stdin: stdin_theirs,
        stdout: stdout_theirs,
        stderr: stderr_theirs,
        tty: o.tty,
    };
    let result = agent
        .exec(&uid, &o.container, o.command, io)
        .await
        .map_err(|e| e.to_string());
    // The command is done and its pipes closed: flush what it wrote, then report.
    let _ = stdout_pump.await;
    if let Some(p) = stderr_pump {
        let _ = p.await;
    }
    let _ = tx
        .send(frame(ERROR, status(&result).to_string().as_bytes()))
        .await;
    // A normal closure (1000) is end-of-stream for the client; no status is an error.
    let _ = tx.send(normal_close()).await;
    drop(tx);
    let _ = writer.await;
    reader.abort();
}
