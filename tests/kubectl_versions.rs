//! Every kubectl from 1.27 to 1.33 reads, applies, explains and watches.

use crate::common;

use common::{TestCluster, example, kubectl_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_27_to_1_33_apply_get_and_explain() {
    let c = TestCluster::start().await;
    let dir = kubectl_dir();
    let mut tried = 0;
    for minor in 27..=33 {
        let bin = dir.join(format!("kubectl.1.{minor}"));
        if !bin.exists() {
            continue;
        }
        tried += 1;
        let run = |args: Vec<String>| {
            let bin = bin.clone();
            let (kc, home) = (
                c.kubeconfig.clone(),
                c.dir.path().join(format!("home-{minor}")),
            );
            async move {
                let out = tokio::process::Command::new(&bin)
                    .args(&args)
                    .env("KUBECONFIG", kc)
                    .env("HOME", home)
                    .output()
                    .await
                    .expect("kubectl");
                assert!(
                    out.status.success(),
                    "kubectl 1.{minor} {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout).into_owned()
            }
        };
        let ns = format!("v{minor}");
        let manifest = c.path(&format!("ns-{minor}.yaml"));
        std::fs::write(
            &manifest,
            format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
        )
        .expect("write");
        run(vec![
            "apply".into(),
            "-f".into(),
            manifest.display().to_string(),
        ])
        .await;
        let applied = run(vec![
            "apply".into(),
            "-n".into(),
            ns.clone(),
            "-f".into(),
            example("web.yaml"),
        ])
        .await;
        assert!(
            applied.contains("deployment.apps/web created"),
            "1.{minor}: {applied}"
        );
        let got = run(vec![
            "get".into(),
            "deploy,svc".into(),
            "-n".into(),
            ns.clone(),
        ])
        .await;
        assert!(
            got.contains("/3 ") && got.contains("ClusterIP"),
            "1.{minor}: {got}"
        );
        let explained = run(vec!["explain".into(), "deployment.spec.replicas".into()]).await;
        assert!(explained.contains("replicas"), "1.{minor}: {explained}");
    }
    assert!(
        tried >= 1,
        "no versioned kubectl binaries found in {}",
        dir.display()
    );
}
