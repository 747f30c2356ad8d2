//! The proxy subresources: `pods/NAME[:PORT]/proxy/PATH` (through the pod's
//! kubelet) and `services/[SCHEME:]NAME[:PORT]/proxy/PATH` (through the pod
//! network to one ready endpoint, picked as kube-apiserver picks it). Both
//! forward the request minus the client's credentials and hop-by-hop headers;
//! `https:` Service backends are spoken to over TLS ([`tls`]).

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::{Req, current};
use crate::api::error::ApiError;
use crate::apiserver::Shared;
use crate::apiserver::response::Body;

/// Headers that belong to one hop and are not forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The path after `RESOURCE/NAME/proxy` (at least `/`), with the query.
fn backend_path(parts: &http::request::Parts, r: &Req) -> String {
    let full = parts.uri.path();
    let marker = format!("/{}/{}/proxy", r.rt.resource, r.name());
    let rest = full
        .find(&marker)
        .map(|i| &full[i + marker.len()..])
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    match parts.uri.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    }
}

/// The request to send to the backend `authority`.
fn backend_request(
    parts: &http::request::Parts,
    r: &Req,
    authority: &str,
    body: Bytes,
) -> Result<http::Request<Bytes>, ApiError> {
    let mut req = http::Request::builder()
        .method(parts.method.clone())
        .uri(backend_path(parts, r));
    for (h, v) in &parts.headers {
        if h != http::header::AUTHORIZATION
            && h != http::header::HOST
            && !HOP_BY_HOP.contains(&h.as_str())
        {
            req = req.header(h, v);
        }
    }
    req.header(http::header::HOST, authority)
        .body(body)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `pods/NAME[:PORT]/proxy/PATH`: an HTTP request to the pod, through its kubelet.
pub(super) async fn pod(
    s: &Shared,
    parts: &http::request::Parts,
    r: Req,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let (name, port) = match r.name().split_once(':') {
        Some((n, p)) => (
            n.to_string(),
            Some(p.parse::<u16>().map_err(|_| {
                ApiError::bad_request(format!("invalid port {p:?} in {:?}", r.name()))
            })?),
        ),
        None => (r.name().to_string(), None),
    };
    let (_, pod) = current(s, &r.rt, r.namespace.as_deref(), &name)?;
    let port = port.unwrap_or_else(|| {
        pod.pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.pointer("/ports/0/containerPort").and_then(Value::as_u64))
            .find_map(|p| u16::try_from(p).ok())
            .unwrap_or(8080)
    });
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let agent = s
        .nodes
        .get(node)
        .ok_or_else(|| ApiError::unavailable(format!("pod {name} is not running")))?;
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    let req = backend_request(parts, &r, &format!("{name}:{port}"), body)?;
    let resp = agent
        .proxy(uid, port, req)
        .await
        .map_err(|e| ApiError::unavailable(format!("error trying to reach service: {e}")))?;
    let (parts, bytes) = resp.into_parts();
    Ok(Response::from_parts(
        parts,
        crate::apiserver::response::full(bytes),
    ))
}

/// `[SCHEME:]NAME[:PORT]` as kube-apiserver's `SplitSchemeNamePort` reads it.
fn split_scheme_name_port(id: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => return None,
    };
    (!name.is_empty() && matches!(scheme, "" | "http" | "https")).then_some((scheme, name, port))
}

/// The endpoint a Service request goes to: a random ready address of a random
/// subset carrying the port named `port_name` (kube-apiserver's ResourceLocation).
fn pick_endpoint(endpoints: &Value, port_name: &str) -> Option<SocketAddr> {
    let subsets = endpoints["subsets"].as_array()?;
    let start = rand::random_range(0..subsets.len().max(1));
    (0..subsets.len())
        .map(|i| &subsets[(start + i) % subsets.len()])
        .find_map(|ss| {
            let addrs = ss["addresses"].as_array().filter(|a| !a.is_empty())?;
            let port = ss["ports"]
                .as_array()?
                .iter()
                .find(|p| p["name"].as_str().unwrap_or("") == port_name)?;
            let port = u16::try_from(port["port"].as_u64()?).ok()?;
            let first = rand::random_range(0..addrs.len());
            (0..addrs.len()).find_map(|i| {
                let ip: IpAddr = addrs[(first + i) % addrs.len()]["ip"]
                    .as_str()?
                    .parse()
                    .ok()?;
                Some(SocketAddr::new(ip, port))
            })
        })
}

/// `services/[SCHEME:]NAME[:PORT]/proxy/PATH`: an HTTP request to one ready
/// endpoint of the Service, over the pod network.
pub(super) async fn service(
    s: &Shared,
    parts: &http::request::Parts,
    r: Req,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let id = r.name().to_string();
    let (scheme, name, port) = split_scheme_name_port(&id)
        .ok_or_else(|| ApiError::bad_request(format!("invalid service request {id:?}")))?;
    let ns = r.namespace.as_deref();
    let (_, svc) = current(s, &r.rt, ns, name)?;
    // A port number means the Service port with that number, known by its name.
    let port_name = match port.parse::<i64>() {
        Ok(number) => svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p["port"].as_i64() == Some(number))
            .map(|p| p["name"].as_str().unwrap_or("").to_string())
            .ok_or_else(|| {
                ApiError::unavailable(format!(
                    "no service port {number} found for service {name:?}"
                ))
            })?,
        Err(_) => port.to_string(),
    };
    let endpoints_rt = s
        .registry
        .lookup("", "v1", "endpoints")
        .ok_or_else(|| ApiError::internal("the endpoints resource is not registered"))?;
    let (_, endpoints) = current(s, &endpoints_rt, ns, name)?;
    if endpoints["subsets"].as_array().is_none_or(Vec::is_empty) {
        return Err(ApiError::unavailable(format!(
            "no endpoints available for service {name:?}"
        )));
    }
    let at = pick_endpoint(&endpoints, &port_name).ok_or_else(|| {
        ApiError::unavailable(format!("no endpoints available for service {id:?}"))
    })?;
    let network = s
        .network
        .get()
        .ok_or_else(|| ApiError::unavailable("error trying to reach service: no pod network"))?;
    let unreachable = |e: &dyn std::fmt::Display| {
        ApiError::unavailable(format!("error trying to reach service: {e}"))
    };
    let conn = network
        .connect_from_node(at)
        .await
        .map_err(|e| unreachable(&format!("dial tcp {at}: connect: {e}")))?;
    let io: crate::net::Stream = if scheme == "https" {
        Box::new(
            crate::net::backend_tls::connect(conn.stream, at.ip())
                .await
                .map_err(|e| unreachable(&format!("tls handshake with {at}: {e}")))?,
        )
    } else {
        conn.stream
    };
    let req = backend_request(parts, &r, &at.to_string(), body)?;
    let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| unreachable(&e))?;
    // The connection lives as long as its response body is being read.
    tokio::spawn(async move {
        if let Err(e) = driver.await {
            tracing::debug!(error = %e, "service proxy connection ended");
        }
    });
    let resp = sender
        .send_request(req.map(http_body_util::Full::new))
        .await
        .map_err(|e| unreachable(&e))?;
    let (mut head, incoming) = resp.into_parts();
    for h in HOP_BY_HOP {
        head.headers.remove(h);
    }
    Ok(Response::from_parts(head, streamed(incoming)))
}

/// A backend's body as ours: frames as they come, ending early (not failing)
/// if the backend breaks off.
fn streamed(incoming: hyper::body::Incoming) -> Body {
    let frames = futures::stream::unfold(incoming, |mut b| async move {
        match b.frame().await? {
            Ok(f) => Some((Ok::<_, std::convert::Infallible>(f), b)),
            Err(e) => {
                tracing::debug!(error = %e, "service proxy response cut short");
                None
            }
        }
    });
    http_body_util::StreamBody::new(frames).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn service_ids_split_as_kube_apiserver_splits_them() {
        assert_eq!(split_scheme_name_port("web"), Some(("", "web", "")));
        assert_eq!(split_scheme_name_port("web:80"), Some(("", "web", "80")));
        assert_eq!(
            split_scheme_name_port("web:http"),
            Some(("", "web", "http"))
        );
        assert_eq!(
            split_scheme_name_port("https:web:443"),
            Some(("https", "web", "443"))
        );
        assert_eq!(split_scheme_name_port("ftp:web:21"), None);
        assert_eq!(split_scheme_name_port(":80"), None);
        assert_eq!(split_scheme_name_port("a:b:c:d"), None);
    }

    #[test]
    fn endpoints_are_picked_by_port_name_among_ready_addresses() {
        let eps = json!({"subsets": [
            {"notReadyAddresses": [{"ip": "10.244.0.9"}], "ports": [{"name": "http", "port": 8080}]},
            {"addresses": [{"ip": "10.244.0.5"}, {"ip": "10.244.0.6"}],
             "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}]},
        ]});
        for _ in 0..20 {
            let at = pick_endpoint(&eps, "metrics").expect("endpoint");
            assert_eq!(at.port(), 9090);
            assert!(["10.244.0.5", "10.244.0.6"].contains(&at.ip().to_string().as_str()));
        }
        assert_eq!(pick_endpoint(&eps, ""), None);
        assert_eq!(pick_endpoint(&json!({"subsets": []}), "http"), None);
    }
}
