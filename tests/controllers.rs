//! Small controllers with the real kubectl: the `default` ServiceAccount in every
//! namespace.

use crate::common;

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

fn job(name: &str, image: &str, args: &str, spec: &str) -> String {
    format!(
        r#"{{"apiVersion": "batch/v1", "kind": "Job", "metadata": {{"name": "{name}"}},
          "spec": {{{spec} "template": {{"spec": {{"restartPolicy": "Never",
            "containers": [{{"name": "c", "image": "{image}", "args": {args}}}]}}}}}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_five_completions_two_at_a_time() {
    let c = TestCluster::start().await;
    let manifest = job(
        "five",
        "minke/hello",
        r#"["x"]"#,
        r#""completions": 5, "parallelism": 2,"#,
    );
    c.ok_stdin(&["apply", "-f", "-"], &manifest).await;
    c.ok(&[
        "wait",
        "--for=condition=Complete",
        "job/five",
        "--timeout=60s",
    ])
    .await;
    let pods = c
        .ok(&[
            "get",
            "pods",
            "-l",
            "job-name=five",
            "-o",
            "jsonpath={.items[*].status.phase}",
        ])
        .await;
    assert_eq!(
        pods.split_whitespace()
            .filter(|p| *p == "Succeeded")
            .count(),
        5,
        "{pods}"
    );
    let table = c.ok(&["get", "job", "five"]).await;
    assert!(
        table.contains("Complete") && table.contains("5/5"),
        "{table}"
    );
    let described = c.ok(&["describe", "job", "five"]).await;
    assert!(
        described.contains("Completed") && described.contains("SuccessfulCreate"),
        "{described}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_stops_at_its_backoff_limit() {
    let c = TestCluster::start().await;
    let manifest = job(
        "fails",
        "minke/crasher",
        r#"["crasher", "1", "0"]"#,
        r#""backoffLimit": 2,"#,
    );
    c.ok_stdin(&["apply", "-f", "-"], &manifest).await;
    c.ok(&[
        "wait",
        "--for=condition=Failed",
        "job/fails",
        "--timeout=60s",
    ])
    .await;
    let reason = c
        .ok(&[
            "get",
            "job",
            "fails",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Failed\")].reason} {.status.failed}",
        ])
        .await;
    assert_eq!(reason, "BackoffLimitExceeded 3");
    let pods = c
        .ok(&["get", "pods", "-l", "job-name=fails", "-o", "name"])
        .await;
    assert_eq!(pods.lines().count(), 3, "{pods}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indexed_job_gives_each_pod_its_index_and_finished_jobs_expire() {
    let c = TestCluster::start().await;
    let manifest = job(
        "idx",
        "minke/toolbox",
        r#"["env"]"#,
        // Long enough for the checks below to read the pods under a loaded CI
        // machine before the TTL controller removes them.
        r#""completions": 3, "parallelism": 3, "completionMode": "Indexed", "ttlSecondsAfterFinished": 15,"#,
    );
    c.ok_stdin(&["apply", "-f", "-"], &manifest).await;
    c.ok(&[
        "wait",
        "--for=condition=Complete",
        "job/idx",
        "--timeout=60s",
    ])
    .await;
    let done = c
        .ok(&[
            "get",
            "job",
            "idx",
            "-o",
            "jsonpath={.status.completedIndexes}",
        ])
        .await;
    assert_eq!(done, "0-2");
    for i in 0..3 {
        let pod = c
            .ok(&[
                "get",
                "pods",
                "-l",
                &format!("batch.kubernetes.io/job-completion-index={i}"),
                "-o",
                "jsonpath={.items[0].metadata.name}",
            ])
            .await;
        assert!(pod.starts_with(&format!("idx-{i}-")), "{pod}");
        let logs = c.ok(&["logs", &pod]).await;
        assert!(
            logs.contains(&format!("JOB_COMPLETION_INDEX={i}")),
            "{logs}"
        );
    }
    c.ok(&["wait", "--for=delete", "job/idx", "--timeout=60s"])
        .await;
}
