//! `minke/kv`: a small `wasi:http/proxy` key-value server that keeps each key as a
//! file under `$KV_DIR` (default `/data`), to show volumes (emptyDir, PVCs) that
//! outlive a pod's restarts.
//!
//! `PUT /KEY` stores the body (201 new, 204 replaced), `GET /KEY` answers it (or 404),
//! `DELETE /KEY` removes it (204, or 404), `GET /` lists the keys one per line and
//! `GET /healthz` answers `ok`. Keys match `[A-Za-z0-9._-]{1,128}`, do not start with
//! `.` and are not `healthz` (else 400). Writes go to a dot-named temporary file and
//! are renamed into place, so a reader never sees half a value. Every response
//! carries `x-pod: NAME`; every request logs `METHOD PATH STATUS` to stdout.

use std::path::{Path, PathBuf};

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{IncomingRequest, ResponseOutparam};
use wstd::http::server::Responder;
use wstd::http::{Body, Method, Request, Response, StatusCode};

/// Largest value `PUT` accepts (413 above it): values are held in memory.
const MAX_VALUE: usize = 1 << 20;

/// The pod's name: `POD_NAME` (downward API), else `HOSTNAME`, else "unknown".
fn pod_name(pod: Option<String>, hostname: Option<String>) -> String {
    [pod, hostname]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Why a key is refused, or `None` when it is a valid key.
fn key_error(key: &str) -> Option<&'static str> {
    if key.is_empty() || key.len() > 128 {
        Some("key must be 1 to 128 characters")
    } else if !key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        Some("key may only hold A-Z a-z 0-9 . _ -")
    } else if key.starts_with('.') {
        Some("key must not start with '.'")
    } else if key == "healthz" {
        Some("key 'healthz' is reserved")
    } else {
        None
    }
}

/// One answer: status and plain-text body.
struct Reply(StatusCode, Vec<u8>);

impl Reply {
    fn text(status: StatusCode, text: impl Into<String>) -> Self {
        Reply(status, text.into().into_bytes())
    }
    fn empty(status: StatusCode) -> Self {
        Reply(status, Vec::new())
    }
    fn io_error(what: &str, e: std::io::Error) -> Self {
        Reply::text(StatusCode::INTERNAL_SERVER_ERROR, format!("{what}: {e}\n"))
    }
}

/// The stored keys, sorted: regular files whose names are valid keys (temporary
/// files start with `.` and are skipped).
fn list(dir: &Path) -> std::io::Result<Vec<String>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut keys: Vec<String> = rd
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|k| key_error(k).is_none())
        .collect();
    keys.sort();
    Ok(keys)
}

/// Stores `value` under `key` atomically; true when the key existed before. `nonce`
/// keeps concurrent writers of one key off each other's temporary file.
fn put(dir: &Path, key: &str, value: &[u8], nonce: u64) -> std::io::Result<bool> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{key}.{nonce:016x}.tmp"));
    let target = dir.join(key);
    let existed = target.is_file();
    let written = std::fs::write(&tmp, value).and_then(|()| std::fs::rename(&tmp, &target));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map(|()| existed)
}

/// Answers one request against the store in `dir`.
async fn serve(dir: &Path, req: Request<Body>) -> Reply {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    if path == "/" {
        return match method {
            Method::GET | Method::HEAD => match list(dir) {
                Ok(keys) => Reply::text(StatusCode::OK, keys.iter().map(|k| format!("{k}\n")).collect::<String>()),
                Err(e) => Reply::io_error("listing keys", e),
            },
            _ => Reply::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
        };
    }
    let key = path.strip_prefix('/').unwrap_or(&path);
    if key == "healthz" && matches!(method, Method::GET | Method::HEAD) {
        return Reply::text(StatusCode::OK, "ok\n");
    }
    if let Some(why) = key_error(key) {
        return Reply::text(StatusCode::BAD_REQUEST, format!("{why}\n"));
    }
    let file = dir.join(key);
    match method {
        Method::GET | Method::HEAD => match std::fs::read(&file) {
            Ok(value) => Reply(StatusCode::OK, value),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Reply::text(StatusCode::NOT_FOUND, "not found\n"),
            Err(e) => Reply::io_error("reading key", e),
        },
        Method::PUT => {
            if req.body().content_length().is_some_and(|n| n > MAX_VALUE as u64) {
                return Reply::text(StatusCode::PAYLOAD_TOO_LARGE, "value too large\n");
            }
            let mut body = req.into_body();
            let value = match body.contents().await {
                Ok(v) if v.len() > MAX_VALUE => return Reply::text(StatusCode::PAYLOAD_TOO_LARGE, "value too large\n"),
                Ok(v) => v.to_vec(),
                Err(e) => return Reply::text(StatusCode::BAD_REQUEST, format!("reading body: {e}\n")),
            };
            let mut nonce = [0u8; 8];
            wstd::rand::get_random_bytes(&mut nonce);
            match put(dir, key, &value, u64::from_le_bytes(nonce)) {
                Ok(true) => Reply::empty(StatusCode::NO_CONTENT),
                Ok(false) => Reply::text(StatusCode::CREATED, "created\n"),
                Err(e) => Reply::io_error("writing key", e),
            }
        }
        Method::DELETE => match std::fs::remove_file(&file) {
            Ok(()) => Reply::empty(StatusCode::NO_CONTENT),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Reply::text(StatusCode::NOT_FOUND, "not found\n"),
            Err(e) => Reply::io_error("deleting key", e),
        },
        _ => Reply::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
    }
}

struct Kv;

impl Guest for Kv {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let responder = Responder::new(out);
        wstd::runtime::block_on(async move {
            let req = match wstd::http::request::try_from_incoming(request) {
                Ok(req) => req,
                Err(e) => return responder.fail(e),
            };
            let line = format!("{} {}", req.method(), req.uri().path_and_query().map_or("/", |p| p.as_str()));
            let head = req.method() == Method::HEAD;
            let dir = PathBuf::from(std::env::var("KV_DIR").unwrap_or_else(|_| "/data".into()));
            let Reply(status, body) = serve(&dir, req).await;
            println!("{line} {}", status.as_u16());
            let pod = pod_name(std::env::var("POD_NAME").ok(), std::env::var("HOSTNAME").ok());
            let mut resp = Response::builder().status(status).header("x-pod", pod.as_str());
            if !body.is_empty() {
                resp = resp.header("content-type", "text/plain");
            }
            let body = if head { Body::empty() } else { Body::from(body) };
            match resp.body(body) {
                Ok(resp) => {
                    if let Err(e) = responder.respond(resp).await {
                        eprintln!("kv: sending response: {e}");
                    }
                }
                Err(e) => responder.fail(e.into()),
            }
        });
    }
}

wasip2::http::proxy::export!(Kv with_types_in wasip2);

/// `wasi:cli/run`: kv is served, not run.
fn main() {
    println!("kv: this is a wasi:http component; serve it (containerPort) instead of running it");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_error_accepts_the_documented_alphabet() {
        assert_eq!(key_error("a"), None);
        assert_eq!(key_error("Key_1.2-x"), None);
        assert_eq!(key_error("a.."), None);
        assert_eq!(key_error(&"k".repeat(128)), None);
    }

    #[test]
    fn key_error_refuses_empty_long_dotted_and_odd_keys() {
        for bad in ["", ".hidden", "..", "a/b", "a b", "ä", "a%2Fb", "healthz"] {
            assert!(key_error(bad).is_some(), "{bad:?} accepted");
        }
        assert!(key_error(&"k".repeat(129)).is_some());
    }

    #[test]
    fn pod_name_prefers_pod_name_then_hostname() {
        assert_eq!(pod_name(Some("kv-0".into()), Some("h".into())), "kv-0");
        assert_eq!(pod_name(None, Some("h".into())), "h");
        assert_eq!(pod_name(None, None), "unknown");
    }

    #[test]
    fn list_skips_temporary_files_and_put_replaces_atomically() {
        let dir = std::env::temp_dir().join(format!("kv-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b"), "2").unwrap();
        std::fs::write(dir.join("a"), "1").unwrap();
        std::fs::write(dir.join(".a.0123.tmp"), "x").unwrap();
        assert_eq!(list(&dir).unwrap(), ["a", "b"]);
        assert_eq!(list(&dir.join("missing")).unwrap(), Vec::<String>::new());
        assert!(!put(&dir, "c", b"one", 1).unwrap(), "c is new");
        assert!(put(&dir, "c", b"two", 2).unwrap(), "c is replaced");
        assert_eq!(std::fs::read(dir.join("c")).unwrap(), b"two");
        assert_eq!(list(&dir).unwrap(), ["a", "b", "c"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
