//! `kubectl port-forward` to pods, Services and Deployments (the websocket
//! tunnel of kubectl ≥ 1.31 and plain SPDY of older ones), the API server's
//! Service proxy, and `kubectl proxy` in front of it — with curl-like clients
//! on the host, many connections at once.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::common::{TestCluster, http_get, kubectl_bin, kubectl_dir};

const WAIT: &str = "--timeout=120s";
/// How long kubectl may take to start listening, or to give up.
const PATIENCE: Duration = Duration::from_secs(60);

/// A long-running kubectl (port-forward, proxy), killed when dropped; its
/// output is drained (Go exits on a broken stdout) and kept.
struct Background {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

/// Copy `from` line by line into `into`, and to `lines` while anyone listens.
fn drain(
    from: impl AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<String>>,
    lines: Option<mpsc::UnboundedSender<String>>,
) {
    tokio::spawn(async move {
        let mut from = BufReader::new(from).lines();
        while let Ok(Some(line)) = from.next_line().await {
            if let Ok(mut all) = into.lock() {
                all.push_str(&line);
                all.push('\n');
            }
            if let Some(tx) = &lines {
                let _ = tx.send(line);
            }
        }
    });
}

impl Background {
    /// Run `bin args` with the cluster's kubeconfig and `home`, until its stdout
    /// names the local port it serves on (`… 127.0.0.1:PORT …`).
    async fn start(c: &TestCluster, bin: &Path, home: &Path, args: &[&str]) -> (Background, u16) {
        let mut child = Command::new(bin)
            .args(args)
            .env("KUBECONFIG", &c.kubeconfig)
            .env("HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("kubectl runs");
        let (stdout, stderr) = (Arc::default(), Arc::new(Mutex::new(String::new())));
        let (tx, mut lines) = mpsc::unbounded_channel();
        drain(child.stdout.take().expect("stdout"), stdout, Some(tx));
        drain(child.stderr.take().expect("stderr"), stderr.clone(), None);
        let port = tokio::time::timeout(PATIENCE, async {
            while let Some(line) = lines.recv().await {
                let port = line
                    .split_once("127.0.0.1:")
                    .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|p| p.parse::<u16>().ok());
                if let Some(port) = port {
                    return port;
                }
            }
            panic!(
                "kubectl {args:?} ended before listening: {}",
                stderr.lock().map(|s| s.clone()).unwrap_or_default()
            );
        })
        .await
        .unwrap_or_else(|_| panic!("kubectl {args:?} never listened"));
        (Background { child, stderr }, port)
    }

    /// Wait for kubectl to exit by itself; its stderr.
    async fn exited(mut self) -> String {
        tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("kubectl exits")
            .expect("kubectl status");
        // Let the drain task take the last lines.
        tokio::task::yield_now().await;
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Deployment `web` (2 echo pods) behind Service `web` (port 80 → 8080); the
/// name of one of its pods.
async fn web(c: &TestCluster) -> String {
    c.echo_deployment("web", 2).await;
    c.ok(&[
        "expose",
        "deployment/web",
        "--port=80",
        "--target-port=8080",
    ])
    .await;
    let pods = c.ok(&["get", "pods", "-l", "app=web", "-o", "name"]).await;
    let first = pods.lines().next().expect("a web pod");
    first.trim_start_matches("pod/").to_string()
}

/// A pod of `minke/kv` with an emptyDir, ready.
async fn kv(c: &TestCluster) {
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: kv}\nspec:\n  containers:\n  - name: kv\n    image: minke/kv\n    volumeMounts: [{name: data, mountPath: /data}]\n  volumes: [{name: data, emptyDir: {}}]\n";
    c.ok_stdin(&["apply", "-f", "-"], manifest).await;
    c.ok(&["wait", "--for=condition=Ready", "pod/kv", WAIT])
        .await;
}

/// `method path` with `body` over HTTP/1.0; the status code and the body.
async fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("request head");
    s.write_all(body).await.expect("request body");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("response");
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let status = String::from_utf8_lossy(&out[..split])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    (status, out[split + 4..].to_vec())
}

/// A value of most of a MiB (far past SPDY's 64 KiB windows) goes to the kv
/// pod through `port` and comes back the same, several times at once.
async fn large_round_trip(port: u16, key: &str) {
    let value: Vec<u8> = (0..900_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (status, _) = http(port, "PUT", &format!("/{key}"), &value).await;
    assert_eq!(status, 201, "PUT /{key}");
    let path = format!("/{key}");
    let gets = (0..4).map(|_| http(port, "GET", &path, &[]));
    for (status, body) in futures::future::join_all(gets).await {
        assert_eq!(status, 200, "GET /{key}");
        assert!(body == value, "GET /{key}: {} bytes differ", body.len());
    }
}

/// Requests one after another and 16 at once through `port`, each answered
/// with its own path by a `web` pod (`pod`, when given).
async fn exercise(port: u16, pod: Option<&str>) {
    let at = SocketAddr::from(([127, 0, 0, 1], port));
    let check = |path: &str, body: &str| {
        assert!(body.contains(&format!("path: {path}\n")), "{path}: {body}");
        let from = pod.unwrap_or("web-");
        assert!(body.contains(&format!("pod: {from}")), "{path}: {body}");
    };
    for i in 0..3 {
        let path = format!("/one/{i}");
        check(&path, &http_get(at, &path).await);
    }
    let paths: Vec<String> = (0..16).map(|i| format!("/many/{i}")).collect();
    let bodies = futures::future::join_all(paths.iter().map(|p| http_get(at, p))).await;
    for (path, body) in paths.iter().zip(&bodies) {
        check(path, body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_reaches_pods_services_and_deployments() {
    let c = TestCluster::start().await;
    let pod = web(&c).await;
    let kubectl = std::path::PathBuf::from(kubectl_bin());
    let home = c.dir.path().to_path_buf();
    for (target, remote, from) in [
        (format!("pod/{pod}"), ":8080", Some(pod.as_str())),
        ("svc/web".to_string(), ":80", None),
        ("deployment/web".to_string(), ":8080", None),
    ] {
        let (forward, port) =
            Background::start(&c, &kubectl, &home, &["port-forward", &target, remote]).await;
        exercise(port, from).await;
        drop(forward);
    }

    // Nothing listens on the pod's port: the kubelet's words reach kubectl,
    // which gives up on the pod as it does with a real cluster.
    let (forward, port) = Background::start(
        &c,
        &kubectl,
        &home,
        &["port-forward", &format!("pod/{pod}"), ":9999"],
    )
    .await;
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "{rest:?}");
    let stderr = forward.exited().await;
    assert!(
        stderr.contains("error forwarding port 9999 to pod")
            && stderr.contains("connect: connection refused"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_works_from_kubectl_1_27_to_1_33_over_spdy_and_websockets_with_large_bodies() {
    let c = TestCluster::start().await;
    web(&c).await;
    kv(&c).await;
    let dir = kubectl_dir();
    let mut tried = 0;
    // 1.27–1.30 upgrade to SPDY/3.1; 1.31 and later tunnel it through a websocket.
    for minor in [27, 30, 31, 33] {
        let bin = dir.join(format!("kubectl.1.{minor}"));
        if !bin.exists() {
            continue;
        }
        tried += 1;
        let home = c.path(&format!("home-{minor}"));
        let (forward, port) =
            Background::start(&c, &bin, &home, &["port-forward", "svc/web", ":80"]).await;
        exercise(port, None).await;
        drop(forward);
        let (forward, port) =
            Background::start(&c, &bin, &home, &["port-forward", "pod/kv", ":8080"]).await;
        large_round_trip(port, &format!("v{minor}")).await;
        drop(forward);
    }
    assert!(tried > 0, "no versioned kubectl beside {}", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_forwards_over_websocket_channels() {
    use k8s_openapi::api::core::v1::Pod;
    let c = TestCluster::start().await;
    kv(&c).await;
    let kubeconfig = kube::config::Kubeconfig::read_from(&c.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    let pods: kube::Api<Pod> =
        kube::Api::default_namespaced(kube::Client::try_from(config).expect("client"));

    // Two ports on one connection: kv's, and one nothing listens on.
    let mut forward = pods
        .portforward("kv", &[8080, 9999])
        .await
        .expect("upgrade");
    let mut kv_port = forward.take_stream(8080).expect("8080");
    let value = vec![b'x'; 200_000];
    let head = format!(
        "PUT /big HTTP/1.0\r\nHost: kv\r\nContent-Length: {}\r\n\r\n",
        value.len()
    );
    kv_port.write_all(head.as_bytes()).await.expect("head");
    kv_port.write_all(&value).await.expect("body");
    let mut answer = Vec::new();
    kv_port.read_to_end(&mut answer).await.expect("answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.0 201"), "{answer}");
    let refused = forward.take_error(9999).expect("9999").await;
    let refused = refused.expect("an error for 9999");
    assert!(
        refused.contains("error forwarding port 9999") && refused.contains("connection refused"),
        "{refused}"
    );
    // Every port's connection ended, so the server closed the websocket (the
    // kubelet does too); kube-rs's own closing frame then finds it closed.
    drop(kv_port);
    let _ = forward.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_proxy_reaches_endpoints_directly_and_through_kubectl_proxy() {
    let c = TestCluster::start().await;
    web(&c).await;
    let base = "/api/v1/namespaces/default/services";
    for id in ["web:80", "http:web:80", "web"] {
        let body = c
            .ok(&["get", "--raw", &format!("{base}/{id}/proxy/hello?x=1")])
            .await;
        assert!(body.contains("path: /hello?x=1\n"), "{id}: {body}");
        assert!(body.contains("pod: web-"), "{id}: {body}");
    }
    for (id, error) in [
        ("nope:80", "(NotFound): services \"nope\" not found"),
        (
            "web:81",
            "(ServiceUnavailable): no service port 81 found for service \"web\"",
        ),
        (
            "ftp:web:80",
            "(BadRequest): invalid service request \"ftp:web:80\"",
        ),
        // echo speaks plain HTTP, so TLS to it fails at the handshake.
        (
            "https:web:80",
            "(ServiceUnavailable): error trying to reach service: tls handshake",
        ),
    ] {
        let err = c
            .fails(&["get", "--raw", &format!("{base}/{id}/proxy/")])
            .await;
        assert!(err.contains(error), "{id}: {err}");
    }

    let home = c.dir.path().to_path_buf();
    let kubectl = std::path::PathBuf::from(kubectl_bin());
    let (_proxy, port) = Background::start(&c, &kubectl, &home, &["proxy", "--port=0"]).await;
    let at = SocketAddr::from(([127, 0, 0, 1], port));
    let body = http_get(at, &format!("{base}/web:80/proxy/through/kubectl")).await;
    assert!(body.contains("path: /through/kubectl\n"), "{body}");
    assert!(body.contains("pod: web-"), "{body}");

    // Without endpoints: 503 as kube-apiserver words it.
    c.ok(&["scale", "deployment", "web", "--replicas=0"]).await;
    c.ok(&["wait", "--for=delete", "pod", "-l", "app=web", WAIT])
        .await;
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let body = http_get(at, &format!("{base}/web:80/proxy/")).await;
        if body.contains("no endpoints available for service \\\"web\\\"") {
            assert!(body.contains("\"code\":503"), "{body}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
