//! `exec`, the pod proxy, port forwarding and metrics, the kubelet's side of [`NodeAgent`]: a command runs as a fresh
//! instance in the pod's sandbox (the container's env, volumes, working dir and
//! limits) — the container's own component when the command names its program,
//! else a `toolbox` applet (`ls`, `cat`, `env`, `sh -c`, …).

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use wasmtime_wasi::cli::{
    AsyncStdinStream, AsyncStdoutStream, IsTerminal, StdinStream, StdoutStream,
};

use super::images;
use super::pods::Kubelet;
use super::runtime::{Exit, Output, Spec};
use crate::apiserver::nodes::{ExecError, ExecIo, NodeAgent, NodeUsage, PodUsage};

/// The kubelet as the API server sees it (weakly held: the kubelet's client holds
/// the API server, so a strong reference back would keep both alive forever).
pub struct Agent(pub std::sync::Weak<Kubelet>);

/// A stdio stream that tells the guest whether it is a terminal.
struct Term<T> {
    inner: Arc<T>,
    tty: bool,
}

impl<T> IsTerminal for Term<T> {
    fn is_terminal(&self) -> bool {
        self.tty
    }
}

impl<T: StdoutStream + Sync + Send> StdoutStream for Term<T> {
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::OutputStream> {
        self.inner.p2_stream()
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        self.inner.async_stream()
    }
}

impl<T: StdinStream + Sync + Send> StdinStream for Term<T> {
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::InputStream> {
        self.inner.p2_stream()
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncRead + Send + Sync> {
        self.inner.async_stream()
    }
}

/// Bytes a guest may write ahead of the client reading them.
const BUDGET: usize = 64 * 1024;

/// A terminal turns `\n` into `\r\n` (the line discipline's ONLCR); a guest has
/// none, so the output passes through this on its way to the client.
fn onlcr(to: DuplexStream) -> DuplexStream {
    let (guest, mut ours) = tokio::io::duplex(BUDGET);
    tokio::spawn(async move {
        let mut to = to;
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = ours.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let mut out = Vec::with_capacity(n + n / 8);
            for &b in &buf[..n] {
                if b == b'\n' {
                    out.push(b'\r');
                }
                out.push(b);
            }
            if to.write_all(&out).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    });
    guest
}

impl Agent {
    async fn run(
        k: std::sync::Weak<Kubelet>,
        uid: String,
        container: String,
        command: Vec<String>,
        io: ExecIo,
    ) -> Result<i32, ExecError> {
        let k = k
            .upgrade()
            .ok_or_else(|| ExecError::ContainerNotFound(container.clone()))?;
        run_in(&k, &uid, &container, command, io).await
    }
}

/// Run `command` as a fresh instance in `container` of pod `uid` (exec, exec probes):
/// its exit code.
pub(super) async fn run_in(
    k: &Kubelet,
    uid: &str,
    container: &str,
    command: Vec<String>,
    io: ExecIo,
) -> Result<i32, ExecError> {
    let not_found = || ExecError::ContainerNotFound(container.to_string());
    let sandbox = k.sandboxes.get(uid).ok_or_else(not_found)?;
    let prepared = sandbox.prepared(container).ok_or_else(not_found)?;
    let program = command
        .first()
        .map(|c| c.rsplit('/').next().unwrap_or(c).to_string())
        .unwrap_or_default();
    let compiled = if program == prepared.program {
        prepared.compiled.clone()
    } else {
        let toolbox = images::builtin("minke/toolbox")
            .ok_or_else(|| ExecError::Start("the toolbox image is missing".into()))?;
        k.runtime
            .compile(toolbox)
            .map_err(|e| ExecError::Start(e.to_string()))?
    };
    let tty = io.tty;
    let stdout = if tty { onlcr(io.stdout) } else { io.stdout };
    let stdout = Arc::new(AsyncStdoutStream::new(BUDGET, stdout));
    let out: Output = Box::new(Term {
        inner: stdout.clone(),
        tty,
    });
    let err: Output = match io.stderr {
        Some(e) => Box::new(Term {
            inner: Arc::new(AsyncStdoutStream::new(BUDGET, e)),
            tty,
        }),
        // With a terminal, stderr goes where stdout goes.
        None => Box::new(Term { inner: stdout, tty }),
    };
    let stdin = io.stdin.map(|i| {
        Box::new(Term {
            inner: Arc::new(AsyncStdinStream::new(i)),
            tty,
        }) as super::runtime::Stdin
    });
    let mut ctx = prepared.ctx.clone();
    ctx.argv = command;
    let spec = Spec {
        ctx,
        stdin,
        stdout: out,
        stderr: err,
    };
    match k.runtime.run(&compiled, spec).await {
        Ok(exit @ (Exit::Code(_) | Exit::OomKilled)) => Ok(exit.code()),
        Ok(Exit::Trap(m)) => Err(ExecError::Start(format!("the command trapped: {m}"))),
        Err(e) => Err(ExecError::Start(e.to_string())),
    }
}

impl NodeAgent for Agent {
    fn exec(
        &self,
        uid: &str,
        container: &str,
        command: Vec<String>,
        io: ExecIo,
    ) -> BoxFuture<'static, Result<i32, ExecError>> {
        Box::pin(Self::run(
            self.0.clone(),
            uid.to_string(),
            container.to_string(),
            command,
            io,
        ))
    }

    fn proxy(
        &self,
        uid: &str,
        port: u16,
        req: http::Request<bytes::Bytes>,
    ) -> BoxFuture<'static, Result<http::Response<bytes::Bytes>, String>> {
        let (k, uid) = (self.0.clone(), uid.to_string());
        Box::pin(async move {
            let refused = || format!("dial tcp: connect to pod port {port}: connection refused");
            let k = k.upgrade().ok_or_else(refused)?;
            let server = k
                .sandboxes
                .get(&uid)
                .and_then(|s| s.server(port))
                .ok_or_else(refused)?;
            let req = req.map(|b| {
                http_body_util::BodyExt::map_err(
                    http_body_util::Full::new(b),
                    |e: std::convert::Infallible| -> wasmtime_wasi_http::Error { match e {} },
                )
            });
            let resp = server.handle(req).await.map_err(|e| e.to_string())?;
            let (parts, body) = resp.into_parts();
            let bytes = http_body_util::BodyExt::collect(body)
                .await
                .map_err(|e| format!("reading the response: {e:?}"))?
                .to_bytes();
            Ok(http::Response::from_parts(parts, bytes))
        })
    }

    fn port_forward(
        &self,
        uid: &str,
        port: u16,
    ) -> BoxFuture<'static, Result<crate::net::Stream, String>> {
        let (k, uid) = (self.0.clone(), uid.to_string());
        Box::pin(async move {
            let sandbox = k
                .upgrade()
                .and_then(|k| k.sandboxes.get(&uid))
                .ok_or_else(|| "pod not found".to_string())?;
            match sandbox.connect_loopback(port).await {
                Ok(conn) => Ok(conn.stream),
                Err(e) => Err(format!(
                    "failed to connect to localhost:{port} inside the pod's network namespace: dial tcp4 127.0.0.1:{port}: connect: {e}"
                )),
            }
        })
    }

    fn pod_usage(&self) -> Vec<PodUsage> {
        self.0
            .upgrade()
            .map(|k| k.metrics.pods())
            .unwrap_or_default()
    }

    fn node_usage(&self) -> Option<NodeUsage> {
        self.0.upgrade().and_then(|k| k.metrics.node())
    }
}
