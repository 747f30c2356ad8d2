//! NetworkPolicy end to end: a policy applied with kubectl isolates the echo pods
//! behind Service `web` — a toolbox pod's `wget` then fails (as a dropped
//! connection does, with a timeout), and works again once the policy is deleted;
//! a policy admitting only pods labelled `access=true` lets such a pod through
//! and not another; an egress policy holds its pods in; the node (NodePort) is
//! never filtered.

use std::net::SocketAddr;

use crate::common::TestCluster;
use crate::network::{http_get, node_address, node_port, wget_with};

const WAIT: &str = "--timeout=120s";

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: echo, image: minke/echo, ports: [{name: http, containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
"#;

const DENY: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-web}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
"#;

const ACCESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: access-web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {access: "true"}}}]
    ports: [{port: http}]
"#;

const LOCKED: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: locked-egress}
spec:
  podSelector: {matchLabels: {role: locked}}
  policyTypes: [Egress]
  egress: [{to: [{podSelector: {matchLabels: {app: db}}}]}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_policies_isolate_pods_and_admit_only_what_they_allow() {
    let node = node_address();
    let c = TestCluster::start_with(|b| b.node_address(node)).await;
    c.ok_stdin(&["apply", "-f", "-"], WEB).await;
    c.ok(&["rollout", "status", "deployment/web", WAIT]).await;
    let wget = |pod: &'static str, flags: &'static [&'static str]| {
        let c = &c;
        async move { wget_with(c, pod, flags, "http://web/").await }
    };

    let (ok, out) = wget("before", &[]).await;
    assert!(ok, "{out}");
    assert!(out.contains("pod: web-"), "{out}");

    c.ok_stdin(&["apply", "-f", "-"], DENY).await;
    let (ok, out) = wget("denied", &[]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("timed out"), "{out}");
    // The node is not subject to policies: the NodePort still answers.
    let at = SocketAddr::new(node, node_port(&c, "web").await);
    let answer = http_get(at, "/").await;
    assert!(answer.contains("pod: web-"), "{answer}");

    c.ok(&["delete", "networkpolicy", "deny-web"]).await;
    let (ok, out) = wget("restored", &[]).await;
    assert!(ok, "{out}");

    c.ok_stdin(&["apply", "-f", "-"], ACCESS).await;
    let (ok, out) = wget("allowed", &["--labels=access=true"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("pod: web-"), "{out}");
    let (ok, out) = wget("stranger", &["--labels=access=false"]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("timed out"), "{out}");

    // Egress: pods labelled `role=locked` may only reach `app=db` pods, so not web,
    // even as `access=true`.
    c.ok_stdin(&["apply", "-f", "-"], LOCKED).await;
    let (ok, out) = wget("locked", &["--labels=access=true,role=locked"]).await;
    assert!(!ok, "{out}");
    let (ok, out) = wget("unlocked", &["--labels=access=true,role=free"]).await;
    assert!(ok, "{out}");
}
