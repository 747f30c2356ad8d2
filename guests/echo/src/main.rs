//! `minke/echo`: a `wasi:http/proxy` server that answers every request with what it
//! saw (method, path, headers) and which pod answered, so Services, load balancing
//! and port-forwards can be checked by eye or by a test.
//!
//! Response body (200, `text/plain`), one line each:
//! `text: $ECHO_TEXT` (only when set), `method: GET`, `path: /p?q`,
//! `header: NAME: VALUE` per request header, `pod: NAME`.
//! `GET /healthz` answers `ok`. Every request logs `METHOD PATH STATUS` to stdout.
//!
//! The component exports `wasi:http/incoming-handler`; built with the preview-1
//! command adapter it also exports `wasi:cli/run`, which only explains itself.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{IncomingRequest, ResponseOutparam};
use wstd::http::server::Responder;
use wstd::http::{Body, Request, Response, StatusCode};

/// The pod's name: `POD_NAME` (downward API), else `HOSTNAME` (set by the kubelet),
/// else "unknown".
fn pod_name(pod: Option<String>, hostname: Option<String>) -> String {
    [pod, hostname]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The echo body for one request.
fn render(text: Option<&str>, method: &str, path: &str, headers: &[(String, String)], pod: &str) -> String {
    let mut out = String::new();
    if let Some(t) = text {
        out += &format!("text: {t}\n");
    }
    out += &format!("method: {method}\npath: {path}\n");
    for (name, value) in headers {
        out += &format!("header: {name}: {value}\n");
    }
    out += &format!("pod: {pod}\n");
    out
}

/// What to answer: status and body. `/healthz` is the probe endpoint.
fn answer(req: &Request<Body>) -> (StatusCode, String) {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    if req.method() == wstd::http::Method::GET && req.uri().path() == "/healthz" {
        return (StatusCode::OK, "ok\n".into());
    }
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let pod = pod_name(std::env::var("POD_NAME").ok(), std::env::var("HOSTNAME").ok());
    let text = std::env::var("ECHO_TEXT").ok();
    (StatusCode::OK, render(text.as_deref(), req.method().as_str(), path, &headers, &pod))
}

struct Echo;

impl Guest for Echo {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let responder = Responder::new(out);
        wstd::runtime::block_on(async move {
            let req = match wstd::http::request::try_from_incoming(request) {
                Ok(req) => req,
                Err(e) => return responder.fail(e),
            };
            let (status, body) = answer(&req);
            println!("{} {} {}", req.method(), req.uri().path_and_query().map_or("/", |p| p.as_str()), status.as_u16());
            let resp = Response::builder()
                .status(status)
                .header("content-type", "text/plain")
                .body(Body::from(body));
            match resp {
                Ok(resp) => {
                    if let Err(e) = responder.respond(resp).await {
                        eprintln!("echo: sending response: {e}");
                    }
                }
                Err(e) => responder.fail(e.into()),
            }
        });
    }
}

wasip2::http::proxy::export!(Echo with_types_in wasip2);

/// `wasi:cli/run`: echo is served, not run.
fn main() {
    println!("echo: this is a wasi:http component; serve it (containerPort) instead of running it");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_name_prefers_pod_name_then_hostname() {
        assert_eq!(pod_name(Some("web-1".into()), Some("h".into())), "web-1");
        assert_eq!(pod_name(None, Some("h".into())), "h");
        assert_eq!(pod_name(Some(String::new()), Some("h".into())), "h");
        assert_eq!(pod_name(None, None), "unknown");
    }

    #[test]
    fn render_lists_text_method_path_headers_and_pod() {
        let headers = vec![("host".to_owned(), "svc".to_owned()), ("accept".to_owned(), "*/*".to_owned())];
        assert_eq!(
            render(Some("hi"), "GET", "/a?b=1", &headers, "p"),
            "text: hi\nmethod: GET\npath: /a?b=1\nheader: host: svc\nheader: accept: */*\npod: p\n"
        );
        assert_eq!(render(None, "POST", "/", &[], "p"), "method: POST\npath: /\npod: p\n");
    }
}
