//! The `minke up` binary: what it prints, the kubeconfig it merges, clean shutdown on
//! SIGTERM, and refusing a locked data dir or a busy port at once.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;

struct Up {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

fn up(data: &std::path::Path, kubeconfig: &std::path::Path, listen: &str) -> Up {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_minke"))
        .args([
            "up",
            "--listen",
            listen,
            "--data-dir",
            &data.display().to_string(),
            "--kubeconfig",
            &kubeconfig.display().to_string(),
            // Not the defaults (127.0.0.1:10053, :10080, :10443): tests run side by side.
            "--dns-listen",
            "127.0.0.1:0",
            "--ingress-listen",
            "127.0.0.1:0",
            "--ingress-tls-listen",
            "127.0.0.1:0",
        ])
        .env("HOME", data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("minke up");
    let lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    Up { child, lines }
}

async fn line(up: &mut Up) -> String {
    tokio::time::timeout(Duration::from_secs(30), up.lines.next_line())
        .await
        .expect("in time")
        .expect("read")
        .expect("a line")
}

async fn failure(mut child: tokio::process::Child) -> String {
    let out = tokio::time::timeout(Duration::from_secs(30), async {
        let status = child.wait().await.expect("exit");
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use tokio::io::AsyncReadExt;
            e.read_to_string(&mut err).await.expect("stderr");
        }
        (status, err)
    })
    .await
    .expect("exits at once");
    assert!(!out.0.success());
    out.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_prints_where_it_listens_merges_the_kubeconfig_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tmp");
    let kubeconfig = dir.path().join("config");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster: {server: https://example.invalid}\ncontexts:\n- name: other\n  context: {cluster: other, user: other}\nusers:\n- name: other\n  user: {token: t}\ncurrent-context: other\n").expect("kubeconfig");
    let data = dir.path().join("data");
    let mut first = up(&data, &kubeconfig, "127.0.0.1:0");
    let ready = line(&mut first).await;
    assert!(
        ready.starts_with("minke 0.1.0: API ready at https://127.0.0.1:") && ready.ends_with(" ms"),
        "{ready}"
    );
    let written = line(&mut first).await;
    assert_eq!(
        written,
        format!(
            "kubeconfig: context \"minke\" written to {} (current-context)",
            kubeconfig.display()
        )
    );
    let dns = line(&mut first).await;
    assert!(
        dns.starts_with("DNS: cluster.local on 127.0.0.1:") && dns.ends_with(" (UDP and TCP)"),
        "{dns}"
    );
    let ingress = line(&mut first).await;
    assert!(
        ingress.starts_with("Ingress: http://127.0.0.1:")
            && ingress.contains(", https://127.0.0.1:")
            && !ingress.contains(":10080"),
        "{ingress}"
    );
    let config = std::fs::read_to_string(&kubeconfig).expect("read");
    assert!(
        config.contains("current-context: minke") && config.contains("name: other"),
        "{config}"
    );

    // A second cluster on the same data dir is refused at once, with the reason.
    let second = up(&data, &dir.path().join("config2"), "127.0.0.1:0");
    let err = failure(second.child).await;
    assert!(
        err.contains("is in use by another process (is another minke running on this data dir?)"),
        "{err}"
    );

    // So is a busy port.
    let port = ready
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .expect("port");
    let busy = up(
        &dir.path().join("data2"),
        &dir.path().join("config3"),
        &format!("127.0.0.1:{port}"),
    );
    let err = failure(busy.child).await;
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );

    let pid = first.child.id().expect("pid");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert_eq!(line(&mut first).await, "minke: shutting down");
    let status = tokio::time::timeout(Duration::from_secs(20), first.child.wait())
        .await
        .expect("stops")
        .expect("status");
    assert!(status.success(), "{status}");
}
