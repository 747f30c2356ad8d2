//! Serving `wasi:http/proxy` components, as `wasmtime serve` does: the component is
//! pre-instantiated once and every request gets a fresh instance (its container's
//! env, volumes, limits and log), so a warm request costs an instantiation, not a
//! compile. Deleting the pod drains in-flight requests within its grace period.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio_util::task::TaskTracker;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::limits::Metered;
use super::runtime::{Compiled, Context, Error, Guest, Output, Runtime};

/// One log stream shared by every instance of a served container.
#[derive(Clone)]
struct SharedOutput(Arc<Output>);

impl IsTerminal for SharedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for SharedOutput {
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::OutputStream> {
        self.0.p2_stream()
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        self.0.async_stream()
    }
}

/// A served HTTP component.
pub struct HttpServer {
    runtime: Arc<Runtime>,
    pre: ProxyPre<Guest>,
    ctx: Context,
    stdout: SharedOutput,
    stderr: SharedOutput,
    inflight: TaskTracker,
    open: AtomicBool,
}

/// Why a request got no response from the guest.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The container is stopping and takes no new requests.
    #[error("the container is shutting down")]
    Closed,
    /// The guest failed or never answered.
    #[error("{0}")]
    Guest(String),
}

impl HttpServer {
    /// Prepare to serve `compiled` (an HTTP component) with `ctx`, logging to `stdout`/`stderr`.
    pub fn new(
        runtime: Arc<Runtime>,
        compiled: &Compiled,
        ctx: Context,
        stdout: Output,
        stderr: Output,
    ) -> Result<HttpServer, Error> {
        let Compiled::Component(component, _) = compiled else {
            return Err(Error::Instantiate("a core module cannot serve HTTP".into()));
        };
        Ok(HttpServer {
            pre: runtime.proxy(component)?,
            runtime,
            ctx,
            stdout: SharedOutput(Arc::new(stdout)),
            stderr: SharedOutput(Arc::new(stderr)),
            inflight: TaskTracker::new(),
            open: AtomicBool::new(true),
        })
    }

    /// Serve one request with a fresh instance.
    pub async fn handle<B>(
        &self,
        req: hyper::Request<B>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, ServeError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        if !self.open.load(Ordering::Acquire) {
            return Err(ServeError::Closed);
        }
        let guest = |e: &dyn std::fmt::Display| ServeError::Guest(e.to_string());
        let wasi = Runtime::serving_wasi(
            &self.ctx,
            Box::new(self.stdout.clone()),
            Box::new(self.stderr.clone()),
        )
        .map_err(|e| guest(&e))?;
        let mut store = self.runtime.store(&self.ctx, wasi).map_err(|e| guest(&e))?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let (req, out) = {
            let mut http = wasmtime_wasi_http::WasiHttpView::http(store.data_mut());
            let req = http
                .new_incoming_request(Scheme::Http, req)
                .map_err(|e| guest(&e))?;
            let out = http.new_response_outparam(sender).map_err(|e| guest(&e))?;
            (req, out)
        };
        let (pre, usage, cpu) = (self.pre.clone(), self.ctx.usage.clone(), self.ctx.cpu_limit);
        // The instance runs on its own task: it may keep streaming the body after
        // the response head is sent.
        let task = self.inflight.spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            Metered::new(
                Box::pin(
                    proxy
                        .wasi_http_incoming_handler()
                        .call_handle(&mut store, req, out),
                ),
                usage,
                cpu,
            )
            .await
        });
        match receiver.await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(code)) => Err(ServeError::Guest(format!("{code:?}"))),
            Err(_) => Err(match task.await {
                Ok(Ok(())) => ServeError::Guest("the component never set a response".into()),
                Ok(Err(e)) => ServeError::Guest(format!("{e:#}")),
                Err(e) => ServeError::Guest(e.to_string()),
            }),
        }
    }

    /// Stop taking requests and wait (at most `grace`) for those in flight.
    pub async fn drain(&self, grace: Duration) {
        self.open.store(false, Ordering::Release);
        self.inflight.close();
        let _ = tokio::time::timeout(grace, self.inflight.wait()).await;
    }
}

/// Serve HTTP/1.1 with `server` on every connection `listener` (the pod's port
/// in the network) accepts, until the task is dropped.
pub async fn listen(mut listener: crate::net::Listener, server: Arc<HttpServer>) {
    while let Some(conn) = listener.accept().await {
        let server = server.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(&server, req).await) }
            });
            let io = hyper_util::rt::TokioIo::new(conn.stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(peer = %conn.peer, error = %e, "pod HTTP connection");
            }
        });
    }
}

/// The guest's response, or the error a proxy in front of it would give.
async fn respond(
    server: &HttpServer,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<HyperOutgoingBody> {
    let (status, message) = match server.handle(req).await {
        Ok(resp) => return resp,
        Err(ServeError::Closed) => (503, "the container is shutting down\n".to_string()),
        Err(ServeError::Guest(e)) => (500, format!("{e}\n")),
    };
    let body = http_body_util::BodyExt::boxed_unsync(http_body_util::BodyExt::map_err(
        http_body_util::Full::new(Bytes::from(message)),
        |never: std::convert::Infallible| -> wasmtime_wasi_http::Error { match never {} },
    ));
    let mut resp = hyper::Response::new(body);
    *resp.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    resp
}
