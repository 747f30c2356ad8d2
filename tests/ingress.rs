//! The built-in Ingress controller end to end: an Ingress applied with kubectl
//! routes `/a` and `/b` of one host to two echo Services; `curl` on the host
//! reaches each through the ingress listener (plain, and TLS with a self-signed
//! Secret chosen by SNI); unmatched requests answer 404 and a Service without
//! endpoints 503; the Ingress gets the default class and its status names the
//! listen address.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::{TestCluster, echo_app};
use crate::network::node_address;

const WAIT: &str = "--timeout=120s";

const INGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  tls: [{hosts: [shop.test], secretName: shop-tls}]
  rules:
  - host: shop.test
    http:
      paths:
      - {path: /a, pathType: Prefix, backend: {service: {name: alpha, port: {name: http}}}}
      - {path: /b, pathType: Prefix, backend: {service: {name: beta, port: {number: 8000}}}}
      - {path: /none, pathType: Exact, backend: {service: {name: nobody, port: {number: 80}}}}
"#;

/// `curl ARGS…`: its stdout, or the failure.
async fn curl(args: &[&str]) -> Result<String, String> {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .await
        .map_err(|e| format!("curl: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Retry `curl` until `want` holds of its output (routes reload from watches).
async fn curl_until(args: &[&str], want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = curl(args).await;
        match &got {
            Ok(out) if want(out) => return out.clone(),
            _ if Instant::now() > deadline => panic!("curl {args:?}: {got:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A self-signed certificate and key for `host`, written as PEM files.
fn self_signed(c: &TestCluster, host: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec![host.into()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let (crt, pem) = (c.path("tls.crt"), c.path("tls.key"));
    std::fs::write(&crt, cert.pem()).expect("write cert");
    std::fs::write(&pem, key.serialize_pem()).expect("write key");
    (crt.display().to_string(), pem.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_routes_hosts_and_paths_to_services_over_http_and_tls() {
    let node = node_address();
    let c = TestCluster::start_with(|b| {
        b.node_address(node)
            .ingress_listen(Some(SocketAddr::new(node, 0)))
            .ingress_tls_listen(Some(SocketAddr::new(node, 0)))
    })
    .await;
    let http = c.cluster.ingress_addr().expect("http listener");
    let https = c.cluster.ingress_tls_addr().expect("https listener");
    assert_eq!(
        c.ok(&[
            "get",
            "ingressclass",
            "-o",
            "jsonpath={.items[*].spec.controller}"
        ])
        .await,
        "minke.dev/ingress"
    );

    let apps = [
        echo_app("alpha", "ports: [{name: http, port: 80, targetPort: 8080}]"),
        echo_app("beta", "ports: [{port: 8000, targetPort: http}]"),
        // A Service no pod backs.
        "{apiVersion: v1, kind: Service, metadata: {name: nobody}, spec: {selector: {app: nobody}, ports: [{port: 80}]}}".into(),
    ];
    c.ok_stdin(&["apply", "-f", "-"], &apps.concat()).await;
    let (crt, key) = self_signed(&c, "shop.test");
    c.ok(&[
        "create", "secret", "tls", "shop-tls", "--cert", &crt, "--key", &key,
    ])
    .await;
    c.ok_stdin(&["apply", "-f", "-"], INGRESS).await;
    // DefaultIngressClass admission names the default class.
    assert_eq!(
        c.ok(&[
            "get",
            "ingress",
            "shop",
            "-o",
            "jsonpath={.spec.ingressClassName}"
        ])
        .await,
        "minke"
    );
    for d in ["alpha", "beta"] {
        c.ok(&["rollout", "status", &format!("deployment/{d}"), WAIT])
            .await;
    }
    c.ok(&[
        "wait",
        &format!("--for=jsonpath={{.status.loadBalancer.ingress[0].ip}}={node}"),
        "ingress/shop",
        WAIT,
    ])
    .await;

    // Plain HTTP, by Host header: each path reaches its own Service.
    let url = |path: &str| format!("http://{http}{path}");
    let a = curl_until(&["-H", "Host: shop.test", &url("/a/x?q=1")], |o| {
        o.contains("pod: alpha-")
    })
    .await;
    assert!(a.contains("path: /a/x?q=1"), "{a}");
    assert!(a.contains("header: x-forwarded-host: shop.test"), "{a}");
    assert!(a.contains("header: x-forwarded-proto: http"), "{a}");
    let b = curl(&["-H", "Host: shop.test", &url("/b")])
        .await
        .expect("/b");
    assert!(b.contains("pod: beta-"), "{b}");

    // Nothing matches: 404 (another host, another path); no endpoints: 503.
    let code = |host: &'static str, path: &'static str| {
        let url = url(path);
        async move {
            curl(&[
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                &format!("Host: {host}"),
                &url,
            ])
            .await
            .expect("curl")
        }
    };
    assert_eq!(code("other.test", "/a").await, "404");
    assert_eq!(code("shop.test", "/c").await, "404");
    assert_eq!(code("shop.test", "/ab").await, "404");
    assert_eq!(code("shop.test", "/none").await, "503");

    // TLS: SNI picks the Secret's certificate, which curl checks against the
    // file it was made from.
    let resolve = format!("shop.test:{}:{}", https.port(), https.ip());
    let tls_url = format!("https://shop.test:{}/b", https.port());
    let b = curl(&["--cacert", &crt, "--resolve", &resolve, &tls_url])
        .await
        .expect("TLS with the Secret's certificate");
    assert!(b.contains("pod: beta-"), "{b}");
    assert!(b.contains("header: x-forwarded-proto: https"), "{b}");
    let a = curl(&[
        "-k",
        "--resolve",
        &resolve,
        &format!("https://shop.test:{}/a", https.port()),
    ])
    .await
    .expect("curl -k");
    assert!(a.contains("pod: alpha-"), "{a}");

    // Routes follow changes: a new path appears, a deleted Ingress stops serving.
    c.ok(&[
        "patch",
        "ingress",
        "shop",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/rules/0/http/paths/-","value":{"path":"/c","pathType":"Prefix","backend":{"service":{"name":"alpha","port":{"number":80}}}}}]"#,
    ])
    .await;
    curl_until(&["-H", "Host: shop.test", &url("/c")], |o| {
        o.contains("pod: alpha-")
    })
    .await;
    c.ok(&["delete", "ingress", "shop"]).await;
    curl_until(
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Host: shop.test",
            &url("/a"),
        ],
        |o| o == "404",
    )
    .await;
}
