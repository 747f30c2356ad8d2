//! NetworkPolicy end to end: a policy applied with kubectl isolates the echo pods
//! behind Service `web` — a toolbox pod's `wget` then fails (as a dropped
//! connection does, with a timeout), and works again once the policy is deleted;
//! a policy admitting only pods labelled `access=true` lets such a pod through
//! and not another; an egress policy holds its pods in; the node (NodePort) is
//! never filtered.

use std::net::SocketAddr;

use crate::common::http_get;
use crate::common::{TestCluster, echo_app};
use crate::network::{node_address, node_port, wget_with};

const WAIT: &str = "--timeout=120s";

/// A NetworkPolicy manifest; `spec` in YAML flow style.
fn policy(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}}}\nspec: {spec}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_policies_isolate_pods_and_admit_only_what_they_allow() {
    let node = node_address();
    let c = TestCluster::start_with(|b| b.node_address(node)).await;
    let web = echo_app(
        "web",
        "type: NodePort, ports: [{port: 80, targetPort: http}]",
    );
    c.ok_stdin(&["apply", "-f", "-"], &web).await;
    c.ok(&["rollout", "status", "deployment/web", WAIT]).await;
    let wget = |pod: &'static str, flags: &'static [&'static str]| {
        let c = &c;
        async move { wget_with(c, pod, flags, "http://web/").await }
    };

    let (ok, out) = wget("before", &[]).await;
    assert!(ok, "{out}");
    assert!(out.contains("pod: web-"), "{out}");

    let deny = policy(
        "deny-web",
        "{podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress]}",
    );
    c.ok_stdin(&["apply", "-f", "-"], &deny).await;
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

    let access = policy(
        "access-web",
        r#"{podSelector: {matchLabels: {app: web}}, ingress: [{from: [{podSelector: {matchLabels: {access: "true"}}}], ports: [{port: http}]}]}"#,
    );
    c.ok_stdin(&["apply", "-f", "-"], &access).await;
    let (ok, out) = wget("allowed", &["--labels=access=true"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("pod: web-"), "{out}");
    let (ok, out) = wget("stranger", &["--labels=access=false"]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("timed out"), "{out}");

    // Egress: pods labelled `role=locked` may only reach `app=db` pods, so not web,
    // even as `access=true`.
    let locked = policy(
        "locked-egress",
        "{podSelector: {matchLabels: {role: locked}}, policyTypes: [Egress], egress: [{to: [{podSelector: {matchLabels: {app: db}}}]}]}",
    );
    c.ok_stdin(&["apply", "-f", "-"], &locked).await;
    let (ok, out) = wget("locked", &["--labels=access=true,role=locked"]).await;
    assert!(!ok, "{out}");
    let (ok, out) = wget("unlocked", &["--labels=access=true,role=free"]).await;
    assert!(ok, "{out}");
}
