//! Outgoing `wasi:http` from guests, routed through the pod network: the host
//! name is resolved as the pod would (cluster DNS, search path), the connection
//! goes to a pod, a Service (balanced) or — egress permitting — the outside, and
//! the request is spoken over it with hyper. HTTPS to the outside goes through
//! wasmtime-wasi-http's own client (TLS with the web PKI roots).

use std::future::Future;
use std::net::SocketAddr;

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiHttpHooks};

use super::{Egress, LookupError, NetError, PodNet, addr};

/// The request body type wasmtime-wasi-http hands over.
type Body = wasmtime_wasi_http::WasiBody;
/// What `send_request` resolves to: the response and a future reporting I/O errors.
type Sent = (
    http::Response<Body>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

/// The `wasi:http` hooks of one guest instance.
#[derive(Debug, Clone, Default)]
pub struct PodHttp {
    /// The pod's network; without one (no pod around it) nothing is reachable.
    pub pod: Option<PodNet>,
}

impl WasiHttpHooks for PodHttp {
    fn send_request(
        &mut self,
        request: http::Request<Body>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Result<Sent, Error>> + Send> {
        drop(fut);
        let pod = self.pod.clone();
        Box::new(async move {
            let pod = pod.ok_or(Error::DestinationIpProhibited)?;
            send(&pod, request, options).await
        })
    }
}

async fn send(
    pod: &PodNet,
    mut request: http::Request<Body>,
    options: Option<RequestOptions>,
) -> Result<Sent, Error> {
    let uri = request.uri().clone();
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?.to_string();
    let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let ips = pod.resolve(&host).await.map_err(|e| match e {
        LookupError::NotFound => Error::DnsError {
            rcode: Some("NXDOMAIN".into()),
            info_code: None,
        },
        LookupError::Temporary => Error::DnsTimeout,
    })?;
    if tls {
        // Only the outside speaks TLS to guests here; cluster HTTPS needs the
        // pod's own TLS (over wasi:sockets).
        if ips.iter().any(|ip| addr::in_cluster(*ip)) {
            return Err(Error::TlsProtocolError);
        }
        if pod.network().egress() == Egress::Deny {
            return Err(Error::DestinationIpProhibited);
        }
        let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
        return Ok((res.map(BodyExt::boxed_unsync), Box::new(io)));
    }
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(std::time::Duration::from_secs(600));
    let mut last = Error::DestinationNotFound;
    let mut conn = None;
    for ip in ips {
        let at = SocketAddr::new(ip, port);
        match tokio::time::timeout(connect_timeout, pod.connect(at)).await {
            Ok(Ok(c)) => {
                conn = Some(c);
                break;
            }
            Ok(Err(e)) => last = connect_error(e),
            Err(_) => last = Error::ConnectionTimeout,
        }
    }
    let conn = conn.ok_or(last)?;
    let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(conn.stream))
        .await
        .map_err(Error::from)?;
    let driver = tokio::spawn(driver);
    // The request line carries the path only (the authority is in Host).
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;
    let response = sender.send_request(request).await.map_err(Error::from)?;
    let io = async move {
        match driver.await {
            Ok(r) => r.map_err(Error::from),
            Err(_) => Err(Error::ConnectionTerminated),
        }
    };
    Ok((
        response.map(|b| b.map_err(Error::from).boxed_unsync()),
        Box::new(io),
    ))
}

fn connect_error(e: NetError) -> Error {
    match e {
        NetError::Refused => Error::ConnectionRefused,
        NetError::Unreachable => Error::DestinationUnavailable,
        NetError::Denied => Error::DestinationIpProhibited,
        NetError::AddrInUse | NetError::AddrNotAvailable => Error::ConnectionLimitReached,
        NetError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => Error::ConnectionTimeout,
        NetError::Io(e) => Error::Connect(e),
    }
}
