//! Images end to end: pods pulling wasm OCI artifacts from a real registry (Debian's
//! `docker-registry`, started per test on a free loopback port with its own storage),
//! ErrImagePull → ImagePullBackOff with the kubelet's events, `imagePullPolicy:
//! Never`, `imagePullSecrets` against an htpasswd-protected registry, and the
//! `minke image import/ls/rm` command line.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::TestCluster;
use minke::kubelet::images::{Credentials, Reference, registry};
use tempfile::TempDir;

const WAIT: &str = "--timeout=60s";

fn hello_wasm() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("guests/hello/hello.wasm")
}

/// A `docker-registry` serving plain HTTP on 127.0.0.1; killed on drop.
struct Registry {
    child: Child,
    host: String,
    dir: TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn registry_bin() -> Option<PathBuf> {
    let find = || {
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .chain([PathBuf::from("/usr/bin")])
            .map(|d| d.join("docker-registry"))
            .find(|p| p.is_file())
    };
    if let Some(p) = find() {
        return Some(p);
    }
    // Not installed yet: the project's setup script installs it (idempotently).
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup.sh");
    let _ = Command::new("bash").arg(setup).status();
    find()
}

impl Registry {
    /// Start a registry, optionally requiring basic auth for `user:password`.
    /// `None` (with a message) when docker-registry cannot be installed here.
    async fn start(auth: Option<(&str, &str)>) -> Option<Registry> {
        let Some(bin) = registry_bin() else {
            eprintln!(
                "SKIPPED: docker-registry is not installed and scripts/setup.sh could not install it"
            );
            return None;
        };
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("registry dir");
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let host = format!("127.0.0.1:{port}");
            let mut config = format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
                dir.path().join("data").display()
            );
            if let Some((user, password)) = auth {
                let hash = bcrypt::hash(password, 5).expect("bcrypt");
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("htpasswd");
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: minke-test\n    path: {}\n",
                    htpasswd.display()
                ));
            }
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).expect("config");
            let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
            let child = Command::new(&bin)
                .arg("serve")
                .arg(&config_path)
                .env("HOME", dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("docker-registry starts");
            let mut reg = Registry { child, host, dir };
            if reg.ready().await {
                return Some(reg);
            }
            eprintln!(
                "registry on {} did not come up (port taken?):\n{}",
                reg.host,
                reg.log()
            );
        }
        panic!("docker-registry did not start");
    }

    /// Wait until `/v2/` answers (200, or 401 with auth).
    async fn ready(&mut self) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut s) = tokio::net::TcpStream::connect(&self.host).await {
                let req = format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.host);
                let mut buf = vec![0; 64];
                if s.write_all(req.as_bytes()).await.is_ok()
                    && let Ok(n) = s.read(&mut buf).await
                {
                    let head = String::from_utf8_lossy(&buf[..n]);
                    if head.contains(" 200 ") || head.contains(" 401 ") {
                        return true;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    fn image(&self, path: &str) -> String {
        format!("{}/{path}", self.host)
    }

    /// Push a wasm file as a CNCF wasm artifact; returns the manifest digest.
    async fn push(&self, file: &Path, path: &str, creds: Option<&Credentials>) -> String {
        let r: Reference = self.image(path).parse().expect("reference");
        let bytes = std::fs::read(file).expect("wasm");
        registry::push(&r, &bytes, creds)
            .await
            .unwrap_or_else(|e| panic!("push {r}: {e}\nregistry log:\n{}", self.log()))
    }
}

/// Push `file` as runwasi's shims take a `wasi/wasm` container image (what
/// `docker buildx build --platform wasi/wasm` makes of `FROM scratch` + `COPY
/// app.wasm /`): an OCI image config naming the entrypoint and one gzipped tar
/// layer holding the file.
async fn push_wasi_container_image(reg: &Registry, file: &Path, path: &str) {
    use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
    let mut tar = tar::Builder::new(Vec::new());
    let wasm = std::fs::read(file).expect("wasm");
    let mut header = tar::Header::new_gnu();
    header.set_size(wasm.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    tar.append_data(&mut header, "app.wasm", wasm.as_slice())
        .expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar.into_inner().expect("tar")).expect("gzip");
    let layer = ImageLayer {
        data: gz.finish().expect("gzip").into(),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        annotations: None,
    };
    let config = serde_json::json!({
        "architecture": "wasm", "os": "wasip1",
        "config": {"Entrypoint": ["/app.wasm"]},
        "rootfs": {"type": "layers", "diff_ids": []},
    });
    let config = Config {
        data: serde_json::to_vec(&config).expect("json").into(),
        media_type: "application/vnd.oci.image.config.v1+json".into(),
        annotations: None,
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    });
    let r: oci_client::Reference = reg.image(path).parse().expect("reference");
    client
        .push(
            &r,
            &[layer],
            config,
            &oci_client::secrets::RegistryAuth::Anonymous,
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("push {r}: {e}\n{}", reg.log()));
}

/// The pod's events as `reason: message` lines, oldest first.
async fn events(c: &TestCluster, pod: &str) -> String {
    c.ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={pod}"),
        "--sort-by=.metadata.creationTimestamp",
        "-o",
        "jsonpath={range .items[*]}{.type} {.reason}: {.message}{\"\\n\"}{end}",
    ])
    .await
}

fn minke(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_minke"))
        .args(args)
        .env_remove("MINKE_DATA_DIR")
        .output()
        .expect("minke runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_runs_a_wasm_artifact_pulled_from_a_local_registry() {
    let Some(reg) = Registry::start(None).await else {
        return;
    };
    let digest = reg.push(&hello_wasm(), "demo/hello:v1", None).await;
    let image = reg.image("demo/hello:v1");
    let c = TestCluster::start().await;
    c.ok(&[
        "run",
        "hello",
        &format!("--image={image}"),
        "--restart=Never",
        "--",
        "a",
        "b",
    ])
    .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/hello",
        WAIT,
    ])
    .await;
    let logs = c.ok(&["logs", "hello"]).await;
    assert!(logs.contains("hello from minke! args: a b"), "{logs}");
    let ev = events(&c, "hello").await;
    assert!(
        ev.contains(&format!("Normal Pulling: Pulling image \"{image}\"")),
        "{ev}"
    );
    let size = std::fs::metadata(hello_wasm()).expect("size").len();
    assert!(
        ev.contains(&format!(
            "Normal Pulled: Successfully pulled image \"{image}\" in "
        )) && ev.contains(&format!("including waiting). Image size: {size} bytes.")),
        "{ev}"
    );

    // A second pod finds it on the node (IfNotPresent for a non-latest tag).
    c.ok(&[
        "run",
        "again",
        &format!("--image={image}"),
        "--restart=Never",
    ])
    .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/again",
        WAIT,
    ])
    .await;
    let ev = events(&c, "again").await;
    assert!(
        ev.contains(&format!(
            "Normal Pulled: Container image \"{image}\" already present on machine"
        )),
        "{ev}"
    );
    assert!(!ev.contains("Pulling"), "{ev}");

    // By digest, as a Deployment pinned to a manifest would name it.
    let pinned = format!("{}@{digest}", reg.image("demo/hello"));
    c.ok(&[
        "run",
        "pinned",
        &format!("--image={pinned}"),
        "--restart=Never",
    ])
    .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/pinned",
        WAIT,
    ])
    .await;

    // runwasi's other layout: a `wasi/wasm` container image with a tar layer.
    push_wasi_container_image(&reg, &hello_wasm(), "demo/hello-rootfs:v1").await;
    let rootfs = reg.image("demo/hello-rootfs:v1");
    c.ok(&[
        "run",
        "rootfs",
        &format!("--image={rootfs}"),
        "--restart=Never",
        "--",
        "c",
    ])
    .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/rootfs",
        WAIT,
    ])
    .await;
    let logs = c.ok(&["logs", "rootfs"]).await;
    assert!(logs.contains("args: c"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_tag_backs_off_with_the_kubelets_events_until_it_is_pushed() {
    let Some(reg) = Registry::start(None).await else {
        return;
    };
    let image = reg.image("demo/hello:later");
    let c = TestCluster::start_with(|b| b.image_pull_backoff(Duration::from_secs(2))).await;
    c.ok(&[
        "run",
        "ghost",
        &format!("--image={image}"),
        "--restart=Never",
    ])
    .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}=ImagePullBackOff",
        "pod/ghost",
        WAIT,
    ])
    .await;
    let message = c
        .ok(&[
            "get",
            "pod",
            "ghost",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.message}",
        ])
        .await;
    let not_found = format!(
        "failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": {image}: not found"
    );
    assert_eq!(
        message,
        format!("Back-off pulling image \"{image}\": ErrImagePull: {not_found}")
    );
    let ev = events(&c, "ghost").await;
    for line in [
        format!("Normal Pulling: Pulling image \"{image}\""),
        format!("Warning Failed: Failed to pull image \"{image}\": {not_found}"),
        "Warning Failed: Error: ErrImagePull".to_string(),
        format!("Normal BackOff: Back-off pulling image \"{image}\""),
        "Warning Failed: Error: ImagePullBackOff".to_string(),
    ] {
        assert!(ev.contains(&line), "missing {line:?} in:\n{ev}");
    }
    let describe = c.ok(&["describe", "pod", "ghost"]).await;
    assert!(describe.contains("ImagePullBackOff"), "{describe}");
    let table = c.ok(&["get", "pod", "ghost"]).await;
    assert!(
        table.contains("ImagePullBackOff") || table.contains("ErrImagePull"),
        "{table}"
    );

    // Once the tag exists, the next retry pulls it and the pod runs.
    reg.push(&hello_wasm(), "demo/hello:later", None).await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/ghost",
        WAIT,
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_policy_never_waits_for_an_import_and_the_cli_manages_images() {
    let data = tempfile::tempdir().expect("data dir");
    let data_dir = data.path().to_str().expect("utf-8 path");
    let c = TestCluster::start_with(|b| {
        b.data_dir(data.path())
            .image_pull_backoff(Duration::from_millis(500))
    })
    .await;
    c.ok(&[
        "run",
        "local",
        "--image=demo/local:v1",
        "--image-pull-policy=Never",
        "--restart=Never",
        "--",
        "x",
    ])
    .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}=ErrImageNeverPull",
        "pod/local",
        WAIT,
    ])
    .await;
    let ev = events(&c, "local").await;
    assert!(
        ev.contains("Warning ErrImageNeverPull: Container image \"demo/local:v1\" is not present with pull policy of Never"),
        "{ev}"
    );
    assert!(
        ev.contains("Warning Failed: Error: ErrImageNeverPull"),
        "{ev}"
    );

    // `minke image import` into the running cluster's data dir: the pod starts.
    let hello = hello_wasm();
    let out = minke(&[
        "image",
        "import",
        "--data-dir",
        data_dir,
        hello.to_str().expect("utf-8"),
        "demo/local:v1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    let digest = minke::kubelet::images::digest(&std::fs::read(&hello).expect("wasm"));
    assert_eq!(printed.trim(), format!("docker.io/demo/local:v1: {digest}"));
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/local",
        WAIT,
    ])
    .await;
    let logs = c.ok(&["logs", "local"]).await;
    assert!(logs.contains("args: x"), "{logs}");

    // ls: built-ins and the import, like `crictl images`.
    let out = minke(&["image", "ls", "--data-dir", data_dir]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let header: Vec<_> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["IMAGE", "TAG", "DIGEST", "SIZE"], "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("minke/hello ")),
        "{table}"
    );
    let row: Vec<_> = table
        .lines()
        .find(|l| l.starts_with("docker.io/demo/local "))
        .unwrap_or_else(|| panic!("{table}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        row[1..3],
        ["v1", &digest["sha256:".len()..][..12]],
        "{table}"
    );

    // rm: gone, then an error; non-wasm files are refused.
    let out = minke(&["image", "rm", "--data-dir", data_dir, "demo/local:v1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = minke(&["image", "rm", "--data-dir", data_dir, "demo/local:v1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not found"),
        "{out:?}"
    );
    let junk = data.path().join("junk.wasm");
    std::fs::write(&junk, "not wasm").expect("write");
    let out = minke(&[
        "image",
        "import",
        "--data-dir",
        data_dir,
        junk.to_str().expect("utf-8"),
        "junk:v1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a wasm"),
        "{out:?}"
    );
    let out = minke(&["image", "ls", "--data-dir", data_dir]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("demo/local"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_pull_secrets_open_a_password_protected_registry() {
    let Some(reg) = Registry::start(Some(("minke", "s3cret"))).await else {
        return;
    };
    let creds = Credentials {
        username: "minke".into(),
        password: "s3cret".into(),
    };
    reg.push(&hello_wasm(), "private/hello:v1", Some(&creds))
        .await;
    let image = reg.image("private/hello:v1");
    let c = TestCluster::start().await;

    // Without the secret the registry refuses.
    c.ok(&[
        "run",
        "denied",
        &format!("--image={image}"),
        "--restart=Never",
    ])
    .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}=ImagePullBackOff",
        "pod/denied",
        WAIT,
    ])
    .await;
    let ev = events(&c, "denied").await;
    assert!(ev.contains("pull access denied"), "{ev}");

    c.ok(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &format!("--docker-server={}", reg.host),
        "--docker-username=minke",
        "--docker-password=s3cret",
    ])
    .await;
    let pod = format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "allowed"}},
            "spec": {{"restartPolicy": "Never", "imagePullSecrets": [{{"name": "missing"}}, {{"name": "regcred"}}],
                     "containers": [{{"name": "c", "image": "{image}", "args": ["ok"]}}]}}}}"#
    );
    c.ok_stdin(&["apply", "-f", "-"], &pod).await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/allowed",
        WAIT,
    ])
    .await;
    let logs = c.ok(&["logs", "allowed"]).await;
    assert!(logs.contains("args: ok"), "{logs}");
    let ev = events(&c, "allowed").await;
    assert!(
        ev.contains("Warning FailedToRetrieveImagePullSecret: Unable to retrieve some image pull secrets (missing); attempting to pull the image may not succeed."),
        "{ev}"
    );
}
