//! kubectl changing objects: edit, client-side and server-side apply, diff, label,
//! annotate, scale, delete, namespace deletion, and watching changes as they happen.

use crate::common;

use std::time::Duration;

use common::{TestCluster, example};
use tokio::io::AsyncBufReadExt;

fn changed_web(replicas: u32, image: &str, greeting_key: &str) -> String {
    std::fs::read_to_string(example("web.yaml"))
        .expect("example")
        .replace("replicas: 3", &format!("replicas: {replicas}"))
        .replace("image: minke/echo", &format!("image: {image}"))
        .replace("key: greeting", &format!("key: {greeting_key}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_again_changes_replicas_image_and_env_and_diff_shows_it_first() {
    let c = TestCluster::start().await;
    c.ok(&["apply", "-f", &example("web.yaml")]).await;
    let changed = c.path("web2.yaml");
    std::fs::write(&changed, changed_web(4, "minke/echo:v2", "game.properties")).expect("write");
    let changed = changed.display().to_string();

    let diff = c.kubectl(&["diff", "-f", &changed]).await;
    assert_eq!(
        diff.status.code(),
        Some(1),
        "diff exits 1 when there are differences"
    );
    let text = String::from_utf8_lossy(&diff.stdout);
    assert!(
        text.contains("-  replicas: 3") && text.contains("+  replicas: 4"),
        "{text}"
    );
    assert_eq!(
        c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])
            .await,
        "3",
        "diff stores nothing"
    );

    let out = c.ok(&["apply", "-f", &changed]).await;
    assert!(
        out.contains("deployment.apps/web configured")
            && out.contains("configmap/web-config unchanged"),
        "{out}"
    );
    let got = c
        .ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef.key} {.metadata.generation}"])
        .await;
    assert_eq!(got, "4 minke/echo:v2 game.properties 2");
    let clean = c.kubectl(&["diff", "-f", &changed]).await;
    assert_eq!(
        clean.status.code(),
        Some(0),
        "no differences after apply: {}",
        String::from_utf8_lossy(&clean.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_owns_fields_and_conflicts_need_force() {
    let c = TestCluster::start().await;
    let out = c
        .ok(&["apply", "--server-side", "-f", &example("web.yaml")])
        .await;
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let other = c.path("other.yaml");
    std::fs::write(&other, changed_web(6, "minke/echo", "greeting")).expect("write");
    let other = other.display().to_string();
    let err = c
        .fails(&[
            "apply",
            "--server-side",
            "--field-manager=other",
            "-f",
            &other,
        ])
        .await;
    assert!(
        err.contains(
            "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas"
        ),
        "{err}"
    );
    c.ok(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        &other,
    ])
    .await;
    assert_eq!(
        c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])
            .await,
        "6"
    );
    let managers = c
        .ok(&[
            "get",
            "deploy",
            "web",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ])
        .await;
    assert!(
        managers.contains("other") && managers.contains("kubectl"),
        "{managers}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_label_annotate_and_scale_change_the_stored_object() {
    let c = TestCluster::start().await;
    c.ok(&["apply", "-f", &example("web.yaml")]).await;
    let editor = c.path("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/greeting: hello/greeting: bonjour/' \"$1\"\n",
    )
    .expect("editor");
    std::process::Command::new("chmod")
        .args(["+x", &editor.display().to_string()])
        .status()
        .expect("chmod");
    let editor = editor.display().to_string();
    let out = c
        .kubectl_with(
            &["edit", "configmap", "web-config"],
            None,
            &[("KUBE_EDITOR", editor.as_str())],
        )
        .await;
    assert!(common::assert_ok(&["edit"], &out).contains("configmap/web-config edited"));
    assert_eq!(
        c.ok(&["get", "cm", "web-config", "-o", "jsonpath={.data.greeting}"])
            .await,
        "bonjour"
    );

    c.ok(&["label", "deployment", "web", "tier=frontend"]).await;
    c.ok(&["annotate", "deployment", "web", "owner=team-a"])
        .await;
    let meta = c
        .ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.labels.tier} {.metadata.annotations.owner}",
        ])
        .await;
    assert_eq!(meta, "frontend team-a");
    let overwrite = c
        .fails(&["label", "deployment", "web", "tier=backend"])
        .await;
    assert!(
        overwrite.contains("'tier' already has a value (frontend), and --overwrite is false"),
        "{overwrite}"
    );
    c.ok(&["label", "deployment", "web", "tier-"]).await;
    assert_eq!(
        c.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.labels.tier}"
        ])
        .await,
        ""
    );

    let scaled = c.ok(&["scale", "deployment", "web", "--replicas=5"]).await;
    assert!(scaled.contains("deployment.apps/web scaled"), "{scaled}");
    assert_eq!(
        c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])
            .await,
        "5"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_by_file_and_deleting_a_namespace_empties_it() {
    let c = TestCluster::start().await;
    c.ok(&["create", "namespace", "demo"]).await;
    c.ok(&["apply", "-n", "demo", "-f", &example("web.yaml")])
        .await;
    let out = c
        .ok(&["delete", "-n", "demo", "-f", &example("web.yaml")])
        .await;
    assert!(
        out.contains("configmap \"web-config\" deleted")
            && out.contains("deployment.apps \"web\" deleted"),
        "{out}"
    );
    assert_eq!(
        c.ok(&["get", "cm,secret,svc,deploy", "-n", "demo", "-o", "name"])
            .await,
        ""
    );

    c.ok(&["apply", "-n", "demo", "-f", &example("web.yaml")])
        .await;
    let out = c.ok(&["delete", "ns", "demo", "--timeout=30s"]).await;
    assert!(out.contains("namespace \"demo\" deleted"), "{out}");
    let gone = c.fails(&["get", "ns", "demo"]).await;
    assert!(gone.contains("namespaces \"demo\" not found"), "{gone}");
    assert_eq!(
        c.ok(&["get", "cm,deploy", "-A", "-o", "name", "-l", "app=web"])
            .await,
        ""
    );
    let protected = c.fails(&["delete", "ns", "default"]).await;
    assert!(
        protected
            .contains("namespaces \"default\" is forbidden: this namespace may not be deleted"),
        "{protected}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_configmap_changes_as_they_happen() {
    let c = TestCluster::start().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\n",
    )
    .await;
    let mut child = tokio::process::Command::new(common::kubectl_bin())
        .args(["get", "configmaps", "--watch", "--request-timeout=60s"])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl watch");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next_row = async || {
        tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("a row in time")
            .expect("read")
            .expect("open")
    };
    // The list part of the watch prints the existing object; changes after that
    // arrive through the watch.
    assert!(next_row().await.starts_with("NAME"));
    assert!(next_row().await.starts_with("first"));
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched\ndata:\n  a: '1'\n",
    )
    .await;
    let added = next_row().await;
    assert!(
        added.starts_with("watched") && added.split_whitespace().nth(1) == Some("1"),
        "{added}"
    );
    c.ok(&["patch", "cm", "watched", "-p", "{\"data\":{\"b\":\"2\"}}"])
        .await;
    let modified = next_row().await;
    assert!(
        modified.starts_with("watched") && modified.split_whitespace().nth(1) == Some("2"),
        "{modified}"
    );
}
