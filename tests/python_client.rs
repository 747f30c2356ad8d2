//! The Python `kubernetes` client against minke (tests/python/list_and_watch.py).

use crate::common;

use common::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_lists_namespaces_and_watches_configmaps() {
    let c = TestCluster::start().await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/list_and_watch.py");
    let out = tokio::process::Command::new("python3")
        .arg(&script)
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .output()
        .await
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python client failed (is the `kubernetes` package installed? .ci/run installs it):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
