//! Small controllers with the real kubectl: the `default` ServiceAccount in every
//! namespace.

mod common;

use common::TestCluster;

const WAIT: &str = "--timeout=30s";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_namespace_gets_a_default_service_account_back_even_after_deleting_it() {
    let c = TestCluster::start().await;
    for ns in ["default", "kube-system"] {
        c.ok(&[
            "wait",
            "--for=create",
            "serviceaccount/default",
            "-n",
            ns,
            WAIT,
        ])
        .await;
    }
    c.ok(&["create", "namespace", "team"]).await;
    c.ok(&[
        "wait",
        "--for=create",
        "serviceaccount/default",
        "-n",
        "team",
        WAIT,
    ])
    .await;
    let table = c.ok(&["get", "serviceaccounts", "-n", "team"]).await;
    assert!(
        table.starts_with("NAME") && table.contains("\ndefault "),
        "{table}"
    );
    c.ok(&["delete", "serviceaccount", "default", "-n", "team"])
        .await;
    c.ok(&[
        "wait",
        "--for=create",
        "serviceaccount/default",
        "-n",
        "team",
        WAIT,
    ])
    .await;
}
