//! Shared helper for end-to-end tests: a real cluster on an ephemeral port in a temp
//! dir, and the real `kubectl` run with its own KUBECONFIG and HOME.

use std::path::{Path, PathBuf};
use std::process::Output;

use minke::Cluster;
use tempfile::TempDir;

/// A running cluster plus the files kubectl needs.
pub struct TestCluster {
    pub cluster: Cluster,
    pub dir: TempDir,
    pub kubeconfig: PathBuf,
}

/// With `MINKE_TEST_LOG` set (an env-filter such as `minke::kubelet=debug`), the
/// clusters' logs go to each test's captured output (shown when it fails).
fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("MINKE_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

/// The kubectl binary to drive: `$KUBECTL`, else `kubectl` on PATH.
pub fn kubectl_bin() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

/// The directory of the `kubectl` on PATH, where `kubectl.1.27` … `kubectl.1.33`
/// sit beside it.
pub fn kubectl_dir() -> PathBuf {
    let which = std::process::Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v kubectl)\""])
        .output()
        .expect("which kubectl");
    PathBuf::from(String::from_utf8_lossy(&which.stdout).trim())
        .parent()
        .map(Path::to_path_buf)
        .expect("kubectl dir")
}

impl TestCluster {
    /// An in-memory cluster.
    pub async fn start() -> TestCluster {
        Self::start_with(|b| b).await
    }

    /// A cluster with builder tweaks (data dir, watch history, ...).
    pub async fn start_with(
        f: impl FnOnce(minke::ClusterBuilder) -> minke::ClusterBuilder,
    ) -> TestCluster {
        init_logs();
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        let cluster = f(Cluster::builder().kubeconfig(&kubeconfig))
            .start()
            .await
            .expect("cluster starts");
        TestCluster {
            cluster,
            dir,
            kubeconfig,
        }
    }

    /// Run kubectl with this cluster's kubeconfig; HOME points into the temp dir so the
    /// discovery cache never touches the user's.
    pub async fn kubectl_with(
        &self,
        args: &[&str],
        stdin: Option<&str>,
        env: &[(&str, &str)],
    ) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut cmd = tokio::process::Command::new(kubectl_bin());
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("kubectl runs");
        if let Some(mut pipe) = child.stdin.take()
            && let Some(input) = stdin
        {
            pipe.write_all(input.as_bytes()).await.expect("stdin");
        }
        child.wait_with_output().await.expect("kubectl output")
    }

    pub async fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with(args, None, &[]).await
    }

    /// Run kubectl, require success, return stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert_ok(args, &out)
    }

    /// Run kubectl with stdin, require success, return stdout.
    pub async fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl_with(args, Some(stdin), &[]).await;
        assert_ok(args, &out)
    }

    /// Run kubectl, require failure, return stderr.
    pub async fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert_fails(args, &out)
    }

    /// Run kubectl with stdin, require failure, return stderr.
    pub async fn fails_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl_with(args, Some(stdin), &[]).await;
        assert_fails(args, &out)
    }

    /// Run `kubectl ARGS` every 200 ms until its output satisfies `done` (120 s at
    /// most, else the test fails saying `what`); the last output.
    pub async fn until(&self, args: &[&str], what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let out = self.kubectl(args).await;
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && done(&stdout) {
                return stdout;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waited 120 s for {what}; kubectl {} printed:\n{stdout}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// `kubectl create deployment NAME --image=minke/echo --replicas=N`, rolled out.
    pub async fn echo_deployment(&self, name: &str, replicas: u32) {
        self.ok(&[
            "create",
            "deployment",
            name,
            "--image=minke/echo",
            &format!("--replicas={replicas}"),
        ])
        .await;
        self.ok(&[
            "rollout",
            "status",
            &format!("deployment/{name}"),
            "--timeout=120s",
        ])
        .await;
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub fn assert_ok(args: &[&str], out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl {} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub fn assert_fails(args: &[&str], out: &Output) -> String {
    assert!(
        !out.status.success(),
        "kubectl {} unexpectedly succeeded:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Manifests of an echo app: a Deployment `name` of `minke/echo` (pods labelled
/// `app: NAME`, container port 8080 named `http`) and a Service `name` selecting
/// it, its spec completed by `service` (YAML flow entries, e.g.
/// `ports: [{port: 80, targetPort: http}]`).
pub fn echo_app(name: &str, service: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: echo, image: minke/echo, ports: [{{name: http, containerPort: 8080}}]}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec: {{selector: {{app: {name}}}, {service}}}
---
"#
    )
}

/// `GET path` from `at` over plain HTTP/1.0 (so the server closes the
/// connection); the response body.
pub async fn http_get(at: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(at).await.expect("connect");
    let request = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", at.ip());
    s.write_all(request.as_bytes()).await.expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("response");
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(out)
}

/// The repository's examples directory.
pub fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .display()
        .to_string()
}
