//! The Ingress proxy's data path: HTTP/1.1 (and HTTPS) served on host listeners,
//! each request matched in the [`Routes`] and forwarded over the pod network to
//! its Service's ClusterIP (so the network balances it over the endpoints), with
//! the `X-Forwarded-*` headers ingress controllers add. Upgrades (WebSocket) are
//! tunnelled. Nothing matches: 404; the backend has no endpoints or does not
//! exist: 503; it fails otherwise: 502.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::backend::Backend;
use super::routes::{self, Routes};
use crate::net::{NetError, Network};

/// The body of what the proxy answers.
type Body = BoxBody<Bytes, hyper::Error>;

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1).
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// What every listener of the proxy shares: the routes and the network.
pub struct Proxy {
    net: Network,
    routes: RwLock<Arc<Routes>>,
    shutdown: CancellationToken,
}

/// Where a request came in.
#[derive(Debug, Clone, Copy)]
struct Origin {
    client: SocketAddr,
    port: u16,
    tls: bool,
}

impl Proxy {
    /// A proxy with no routes yet, forwarding into `net`, stopping on `shutdown`.
    pub fn new(net: Network, shutdown: CancellationToken) -> Proxy {
        Proxy {
            net,
            routes: RwLock::default(),
            shutdown,
        }
    }

    /// Route by `routes` from the next request on.
    pub fn set_routes(&self, routes: Routes) {
        if let Ok(mut r) = self.routes.write() {
            *r = Arc::new(routes);
        }
    }

    fn routes(&self) -> Arc<Routes> {
        self.routes.read().map(|r| r.clone()).unwrap_or_default()
    }

    async fn handle(&self, req: Request<Incoming>, origin: Origin) -> Response<Body> {
        let host = request_host(&req);
        let span = tracing::debug_span!(
            "ingress",
            host = host.as_deref().unwrap_or(""),
            path = req.uri().path()
        );
        self.route(req, host, origin).instrument(span).await
    }

    async fn route(
        &self,
        req: Request<Incoming>,
        host: Option<String>,
        origin: Origin,
    ) -> Response<Body> {
        let path = req.uri().path();
        match self.routes().find(host.as_deref(), path).cloned() {
            None => text(
                StatusCode::NOT_FOUND,
                format!(
                    "no Ingress rule matches {}{path}",
                    host.as_deref().unwrap_or("")
                ),
            ),
            Some(routes::Backend::Unavailable(why)) => text(StatusCode::SERVICE_UNAVAILABLE, why),
            Some(routes::Backend::Service { addr, name }) => {
                self.forward(req, addr, &name, origin).await
            }
        }
    }

    async fn forward(
        &self,
        mut req: Request<Incoming>,
        to: SocketAddr,
        name: &str,
        origin: Origin,
    ) -> Response<Body> {
        let upgrade = req.headers().contains_key(header::UPGRADE);
        let client_side = upgrade.then(|| hyper::upgrade::on(&mut req));
        prepare_request(&mut req, origin, upgrade);
        let conn = match self.net.connect_from_node(to).await {
            Ok(c) => c,
            Err(NetError::Refused) => {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("service {name} has no endpoint that accepts connections"),
                );
            }
            Err(e) => {
                return text(StatusCode::BAD_GATEWAY, format!("service {name}: {e}"));
            }
        };
        let (mut sender, driver) =
            match hyper::client::conn::http1::handshake(TokioIo::new(Backend::new(conn.stream)))
                .await
            {
                Ok(pair) => pair,
                Err(e) => return text(StatusCode::BAD_GATEWAY, format!("service {name}: {e}")),
            };
        let stop = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                r = driver.with_upgrades() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "ingress backend connection ended");
                    }
                }
                () = stop.cancelled() => {}
            }
        });
        let mut resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => return text(StatusCode::BAD_GATEWAY, format!("service {name}: {e}")),
        };
        match client_side {
            Some(client) if resp.status() == StatusCode::SWITCHING_PROTOCOLS => {
                let backend = hyper::upgrade::on(&mut resp);
                let stop = self.shutdown.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = tunnel(client, backend) => {}
                        () = stop.cancelled() => {}
                    }
                });
            }
            _ => {
                // A backend that will close (e.g. it answered without reading the
                // whole body) has the client stop sending, too.
                let closing = resp
                    .headers()
                    .get_all(header::CONNECTION)
                    .iter()
                    .any(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
                strip_hop_by_hop(resp.headers_mut(), false);
                if closing {
                    resp.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
            }
        }
        resp.map(BodyExt::boxed)
    }
}

/// Carry the bytes of an upgraded connection both ways.
async fn tunnel(client: hyper::upgrade::OnUpgrade, backend: hyper::upgrade::OnUpgrade) {
    let (Ok(client), Ok(backend)) = (client.await, backend.await) else {
        return;
    };
    let _ =
        tokio::io::copy_bidirectional(&mut TokioIo::new(client), &mut TokioIo::new(backend)).await;
}

/// The request's host: the `Host` header, else the URI's authority.
fn request_host<B>(req: &Request<B>) -> Option<String> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()))
}

/// Make `req` the backend's: origin-form URI, `Host` kept, hop-by-hop headers
/// dropped (but for an upgrade's own), `X-Forwarded-*` added.
fn prepare_request<B>(req: &mut Request<B>, origin: Origin, upgrade: bool) {
    let host = request_host(req);
    if let Some(pq) = req.uri().path_and_query().cloned()
        && let Ok(uri) = pq.as_str().parse()
    {
        *req.uri_mut() = uri;
    }
    *req.version_mut() = http::Version::HTTP_11;
    let headers = req.headers_mut();
    strip_hop_by_hop(headers, upgrade);
    let has_host = headers.contains_key(header::HOST);
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let client = origin.client.ip().to_string();
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {client}"),
        None => client.clone(),
    };
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set("x-forwarded-for", &forwarded_for);
    set("x-real-ip", &client);
    set(
        "x-forwarded-proto",
        if origin.tls { "https" } else { "http" },
    );
    set("x-forwarded-port", &origin.port.to_string());
    if let Some(h) = &host {
        set("x-forwarded-host", h);
        if !has_host {
            set("host", h);
        }
    }
}

/// Remove hop-by-hop headers and those `Connection` names; an upgrade keeps its
/// `Upgrade` header.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        if !(upgrade && *name == header::UPGRADE) {
            headers.remove(name);
        }
    }
}

/// A plain-text answer of the proxy's own.
fn text(status: StatusCode, message: String) -> Response<Body> {
    tracing::debug!(%status, %message, "ingress answers itself");
    let body = format!(
        "{} {}: {message}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    );
    let mut resp = Response::new(Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Accept connections on `listener` (through TLS when `tls` is given) and serve
/// them until the proxy shuts down; open connections close with it.
pub async fn serve(listener: TcpListener, proxy: Arc<Proxy>, tls: Option<TlsAcceptor>) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, client)) => {
                    let _ = stream.set_nodelay(true);
                    let origin = Origin { client, port, tls: tls.is_some() };
                    conns.spawn(connection(stream, origin, proxy.clone(), tls.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: let some close.
                    tracing::warn!(error = %e, port, "ingress accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            () = proxy.shutdown.cancelled() => break,
        }
    }
    tracing::debug!(port, "ingress listener closed: shutting down");
}

async fn connection(
    stream: tokio::net::TcpStream,
    origin: Origin,
    proxy: Arc<Proxy>,
    tls: Option<TlsAcceptor>,
) {
    match tls {
        None => serve_http(stream, origin, proxy).await,
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve_http(stream, origin, proxy).await,
                Ok(Err(e)) => {
                    tracing::debug!(client = %origin.client, error = %e, "TLS handshake failed")
                }
                Err(_) => tracing::debug!(client = %origin.client, "TLS handshake timed out"),
            }
        }
    }
}

async fn serve_http<S>(stream: S, origin: Origin, proxy: Arc<Proxy>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let proxy = proxy.clone();
        async move { Ok::<_, Infallible>(proxy.handle(req, origin).await) }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await
    {
        tracing::debug!(client = %origin.client, error = %e, "ingress connection ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(port: u16, tls: bool) -> Origin {
        Origin {
            client: "127.0.0.1:5555".parse().expect("addr"),
            port,
            tls,
        }
    }

    #[test]
    fn requests_lose_hop_by_hop_headers_and_gain_forwarded_ones() {
        let mut req = Request::builder()
            .uri("http://shop.test:10080/cart?id=1")
            .header("connection", "keep-alive, x-secret")
            .header("x-secret", "1")
            .header("keep-alive", "timeout=5")
            .header("x-forwarded-for", "192.0.2.1")
            .header("accept", "*/*")
            .body(())
            .expect("request");
        prepare_request(&mut req, origin(10443, true), false);
        assert_eq!(req.uri(), "/cart?id=1");
        let h = req.headers();
        for gone in ["connection", "x-secret", "keep-alive"] {
            assert!(!h.contains_key(gone), "{gone} kept");
        }
        assert_eq!(h["host"], "shop.test:10080");
        assert_eq!(h["x-forwarded-host"], "shop.test:10080");
        assert_eq!(h["x-forwarded-for"], "192.0.2.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-port"], "10443");
        assert_eq!(h["accept"], "*/*");
    }

    #[test]
    fn upgrades_keep_their_upgrade_headers() {
        let mut req = Request::builder()
            .uri("/ws")
            .header("host", "chat.test")
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .body(())
            .expect("request");
        prepare_request(&mut req, origin(10080, false), true);
        assert_eq!(req.headers()["upgrade"], "websocket");
        assert_eq!(req.headers()["connection"], "upgrade");
        assert_eq!(req.headers()["x-forwarded-proto"], "http");
    }

    /// A backend on pod 10.244.0.5:8080 behind Service 10.96.0.50:80 that echoes
    /// the bytes of an upgraded connection, or answers with the client's address.
    fn backend_pod(net: &Network) -> crate::net::PodNet {
        let pod = net.attach(
            "10.244.0.5".parse().expect("ip"),
            crate::net::PodInfo::default(),
        );
        let mut listener = pod
            .listen("0.0.0.0:8080".parse().expect("addr"))
            .expect("listen");
        tokio::spawn(async move {
            while let Some(conn) = listener.accept().await {
                let service = hyper::service::service_fn(|mut req: Request<Incoming>| async move {
                    if req.headers().contains_key(header::UPGRADE) {
                        let up = hyper::upgrade::on(&mut req);
                        tokio::spawn(async move {
                            if let Ok(up) = up.await {
                                let (mut r, mut w) = tokio::io::split(TokioIo::new(up));
                                let _ = tokio::io::copy(&mut r, &mut w).await;
                            }
                        });
                        let mut resp = Response::new(Full::new(Bytes::new()));
                        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                        resp.headers_mut()
                            .insert(header::UPGRADE, HeaderValue::from_static("echo"));
                        resp.headers_mut()
                            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                        return Ok::<_, Infallible>(resp);
                    }
                    let xff = req.headers().get("x-forwarded-for").cloned();
                    let body = format!("from {xff:?}");
                    Ok(Response::new(Full::new(Bytes::from(body))))
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(conn.stream), service)
                        .with_upgrades(),
                );
            }
        });
        pod
    }

    #[tokio::test]
    async fn requests_reach_the_service_and_upgrades_are_tunnelled() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let net = Network::new(crate::net::Egress::Deny);
        let _pod = backend_pod(&net);
        let svc = serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.50", "ports": [{"port": 80}]}
        });
        let slice = serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"port": 8080}],
            "endpoints": [{"addresses": ["10.244.0.5"]}]
        });
        let svc: Arc<k8s_openapi::api::core::v1::Service> =
            Arc::new(serde_json::from_value(svc).expect("service"));
        net.services().rebuild(
            std::slice::from_ref(&svc),
            &[std::sync::Arc::new(
                serde_json::from_value(slice).expect("slice"),
            )],
        );
        let ing = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "i", "namespace": "default"},
            "spec": {"rules": [{"host": "web.test", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}
            ]}}]}
        }))
        .expect("ingress");
        let stop = CancellationToken::new();
        let proxy = Arc::new(Proxy::new(net.clone(), stop.clone()));
        proxy.set_routes(Routes::build([&ing], |_, name| {
            (name == "web").then(|| svc.clone())
        }));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let at = listener.local_addr().expect("addr");
        let server = tokio::spawn(serve(listener, proxy, None));

        let exchange = |request: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(at).await.expect("connect");
            s.write_all(request.as_bytes()).await.expect("request");
            let mut out = String::new();
            s.read_to_string(&mut out).await.expect("response");
            out
        };
        let ok = exchange("GET / HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.ends_with(r#"from Some("127.0.0.1")"#), "{ok}");
        let missing =
            exchange("GET / HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

        // An upgrade: 101 passed on, then the bytes flow both ways.
        let mut s = tokio::net::TcpStream::connect(at).await.expect("connect");
        s.write_all(
            b"GET /ws HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await
        .expect("upgrade request");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(s.read_u8().await.expect("head"));
        }
        let head = String::from_utf8_lossy(&head).to_lowercase();
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(head.contains("upgrade: echo"), "{head}");
        s.write_all(b"ping").await.expect("ping");
        let mut pong = [0; 4];
        s.read_exact(&mut pong).await.expect("pong");
        assert_eq!(&pong, b"ping");

        // No endpoints: 503.
        net.services().rebuild(&[svc], &[]);
        let none = exchange("GET / HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n").await;
        assert!(none.starts_with("HTTP/1.1 503"), "{none}");
        stop.cancel();
        server.await.expect("server stops");
    }
}
