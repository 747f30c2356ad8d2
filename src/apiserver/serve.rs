//! The HTTPS front door: TLS (HTTP/2 and HTTP/1.1), bearer-token authentication,
//! body size limits, and graceful connection shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ApiServer;
use super::response::{self, Body};
use crate::api::codec::MAX_BODY;
use crate::api::error::ApiError;

/// TLS material for the listener.
#[derive(Clone)]
pub struct Tls {
    /// rustls server configuration (certificate chain and key).
    pub config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

/// A bound listening socket.
#[derive(Debug)]
pub struct Listener {
    /// The socket.
    pub socket: TcpListener,
    /// The address it is bound to (the chosen port when asked for port 0).
    pub addr: SocketAddr,
}

/// Paths anyone may read without credentials, as the real API server's
/// `system:public-info-viewer` role allows.
fn anonymous_allowed(path: &str) -> bool {
    matches!(path, "/version" | "/healthz" | "/livez" | "/readyz")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
        || path.starts_with("/healthz/")
}

/// Compare without leaking where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authenticated(req: &Request<Incoming>, token: &str) -> bool {
    req.headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| same(t.trim().as_bytes(), token.as_bytes()))
}

async fn handle(
    api: ApiServer,
    token: Arc<str>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    if !anonymous_allowed(req.uri().path()) && !authenticated(&req, &token) {
        return Ok(response::error(&ApiError::unauthorized()));
    }
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Ok(response::error(&ApiError::too_large(format!(
                "Request entity too large: limit is {MAX_BODY}"
            ))));
        }
        Err(e) => {
            return Ok(response::error(&ApiError::bad_request(format!(
                "reading the request body: {e}"
            ))));
        }
    };
    Ok(api.handle(Request::from_parts(parts, bytes)).await)
}

/// Accept connections until `shutdown`; each connection is served on its own task
/// tracked by `tasks` and closed gracefully on shutdown.
pub async fn serve(
    api: ApiServer,
    listener: Listener,
    tls: Tls,
    token: String,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let acceptor = TlsAcceptor::from(tls.config);
    let token: Arc<str> = token.into();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.socket.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection");
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = tcp.set_nodelay(true);
        let (api, token, acceptor, shutdown) = (
            api.clone(),
            token.clone(),
            acceptor.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            let stream =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let service =
                hyper::service::service_fn(move |req| handle(api.clone(), token.clone(), req));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
    }
    tracing::debug!("API listener stopped: shutdown");
}
