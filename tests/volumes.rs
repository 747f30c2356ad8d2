//! Volumes seen by pods, with the real kubectl: downwardAPI and projected (and
//! their refresh on a label edit), subPath/subPathExpr, hostPath only under the
//! allowed root (refused with a FailedMount event otherwise), a claim bound to a
//! hostPath PV whose data outlives the pod, and the sandbox: no way out of a
//! mount through `..`, absolute paths or host-planted symlinks, no writes to
//! read-only mounts.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::TestCluster;

const WAIT: &str = "--timeout=60s";

/// Run kubectl until `done` accepts its stdout (bounded: ~30 s); for state that
/// no `kubectl wait` condition names (file content, event messages).
async fn eventually(c: &TestCluster, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..120 {
        let out = c.kubectl(args).await;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && done(&stdout) {
            return stdout;
        }
        last = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "kubectl {} never satisfied the check; last output:\n{last}",
        args.join(" ")
    );
}

async fn exec(c: &TestCluster, pod: &str, cmd: &[&str]) -> std::process::Output {
    let mut args = vec!["exec", pod, "--"];
    args.extend_from_slice(cmd);
    c.kubectl(&args).await
}

/// `kubectl exec` must fail and print nothing of `secret`.
async fn denied(c: &TestCluster, pod: &str, cmd: &[&str], secret: &str) {
    let out = exec(c, pod, cmd).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && (secret.is_empty() || !stdout.contains(secret)),
        "{cmd:?} was allowed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn exec_ok(c: &TestCluster, pod: &str, cmd: &[&str]) -> String {
    let mut args = vec!["exec", pod, "--"];
    args.extend_from_slice(cmd);
    c.ok(&args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_volumes_example_shows_downward_api_and_projected_files_and_follows_label_edits() {
    let c = TestCluster::start().await;
    c.ok(&["apply", "-f", &common::example("pod-volumes.yaml")])
        .await;
    c.ok(&["wait", "--for=condition=Ready", "pod/volumes-demo", WAIT])
        .await;
    let pod = "volumes-demo";
    assert_eq!(
        exec_ok(&c, pod, &["cat", "/etc/podinfo/labels"]).await,
        "app=\"volumes-demo\"\ntier=\"backend\""
    );
    let annotations = exec_ok(&c, pod, &["cat", "/etc/podinfo/annotations"]).await;
    assert!(
        annotations.lines().any(|l| l == "build=\"42\""),
        "{annotations}"
    );
    assert_eq!(exec_ok(&c, pod, &["cat", "/etc/podinfo/name"]).await, pod);
    assert_eq!(
        exec_ok(&c, pod, &["cat", "/etc/podinfo/limits/cpu"]).await,
        "250"
    );
    assert_eq!(
        exec_ok(&c, pod, &["cat", "/etc/podinfo/limits/memory"]).await,
        "64"
    );
    assert_eq!(
        exec_ok(&c, pod, &["cat", "/etc/bundle/config/greeting"]).await,
        "hello from a projected configMap"
    );
    assert_eq!(
        exec_ok(&c, pod, &["cat", "/etc/bundle/token"]).await,
        "s3cr3t"
    );
    assert_eq!(
        exec_ok(&c, pod, &["cat", "/etc/bundle/namespace"]).await,
        "default"
    );
    exec_ok(&c, pod, &["write", "/scratch/note", "kept"]).await;
    assert_eq!(exec_ok(&c, pod, &["cat", "/scratch/note"]).await, "kept\n");
    denied(&c, pod, &["write", "/etc/bundle/token", "x"], "").await;
    denied(&c, pod, &["write", "/etc/podinfo/new", "x"], "").await;

    // A label edit reaches the running pod through the atomic ..data swap.
    c.ok(&["label", "pod", pod, "tier=frontend", "--overwrite"])
        .await;
    eventually(
        &c,
        &["exec", pod, "--", "cat", "/etc/podinfo/labels"],
        |s| s == "app=\"volumes-demo\"\ntier=\"frontend\"",
    )
    .await;
    // So does a ConfigMap edit, into the projected volume.
    c.ok(&[
        "patch",
        "configmap",
        "volumes-demo",
        "-p",
        r#"{"data":{"greeting":"edited"}}"#,
    ])
    .await;
    eventually(
        &c,
        &["exec", pod, "--", "cat", "/etc/bundle/config/greeting"],
        |s| s == "edited",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projected_sources_fail_until_present_and_service_account_tokens_write_nothing() {
    let c = TestCluster::start().await;
    let pod = r#"apiVersion: v1
kind: Pod
metadata:
  name: proj
spec:
  containers:
  - name: c
    image: minke/toolbox
    args: ["loop", "5", "true"]
    volumeMounts:
    - {name: all, mountPath: /etc/all}
  volumes:
  - name: all
    projected:
      sources:
      - configMap: {name: late, items: [{key: a, path: dir/a, mode: 0400}]}
      - serviceAccountToken: {path: token, expirationSeconds: 3600}
"#;
    c.ok_stdin(&["apply", "-f", "-"], pod).await;
    let message = eventually(
        &c,
        &[
            "get",
            "pod",
            "proj",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.message}",
        ],
        |m| !m.is_empty(),
    )
    .await;
    assert_eq!(
        message,
        "MountVolume.SetUp failed for volume \"all\" : configmap \"late\" not found"
    );
    c.ok(&["create", "configmap", "late", "--from-literal=a=1"])
        .await;
    c.ok(&["wait", "--for=condition=Ready", "pod/proj", WAIT])
        .await;
    assert_eq!(exec_ok(&c, "proj", &["cat", "/etc/all/dir/a"]).await, "1");
    assert_eq!(exec_ok(&c, "proj", &["ls", "/etc/all"]).await, "dir\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_paths_mount_a_configmap_file_and_a_per_pod_dir_of_an_empty_dir() {
    let c = TestCluster::start().await;
    c.ok(&[
        "create",
        "configmap",
        "game",
        "--from-literal=game.properties=lives=3",
        "--from-literal=ui.properties=color=purple",
    ])
    .await;
    let pod = r#"apiVersion: v1
kind: Pod
metadata:
  name: sub
spec:
  containers:
  - name: c
    image: minke/toolbox
    args: ["loop", "5", "true"]
    env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    volumeMounts:
    - {name: cfg, mountPath: /etc/game.properties, subPath: game.properties}
    - {name: cfg, mountPath: /etc/cfg}
    - {name: work, mountPath: /mine, subPathExpr: "pods/$(POD_NAME)"}
    - {name: work, mountPath: /all}
  volumes:
  - {name: cfg, configMap: {name: game}}
  - {name: work, emptyDir: {}}
"#;
    c.ok_stdin(&["apply", "-f", "-"], pod).await;
    c.ok(&["wait", "--for=condition=Ready", "pod/sub", WAIT])
        .await;
    assert_eq!(
        exec_ok(&c, "sub", &["cat", "/etc/game.properties"]).await,
        "lives=3"
    );
    // Only the one key is visible, not its siblings.
    assert_eq!(
        exec_ok(&c, "sub", &["ls", "/etc"]).await,
        "game.properties\n"
    );
    denied(&c, "sub", &["cat", "/etc/ui.properties"], "purple").await;
    exec_ok(&c, "sub", &["write", "/mine/note", "mine"]).await;
    assert_eq!(
        exec_ok(&c, "sub", &["cat", "/all/pods/sub/note"]).await,
        "mine\n"
    );

    // A subPath file does not follow ConfigMap edits, as in Kubernetes, while the
    // whole-volume mount of the same ConfigMap does.
    c.ok(&[
        "patch",
        "configmap",
        "game",
        "-p",
        r#"{"data":{"game.properties":"lives=9"}}"#,
    ])
    .await;
    eventually(
        &c,
        &["exec", "sub", "--", "cat", "/etc/cfg/game.properties"],
        |s| s == "lives=9",
    )
    .await;
    assert_eq!(
        exec_ok(&c, "sub", &["cat", "/etc/game.properties"]).await,
        "lives=3"
    );

    // `..` and absolute subPaths are refused by validation.
    for bad in ["../escape", "/etc"] {
        let manifest = pod
            .replace("name: sub\n", "name: bad\n")
            .replace("subPath: game.properties", &format!("subPath: {bad}"));
        let err = c.fails_stdin(&["apply", "-f", "-"], &manifest).await;
        assert!(err.contains("subPath"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_paths_work_under_the_root_and_are_refused_outside_it_with_an_event() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&root).expect("root");
    std::fs::create_dir_all(&outside).expect("outside");
    std::os::unix::fs::symlink(&outside, root.join("link")).expect("symlink");
    let c = TestCluster::start_with(|b| b.host_path_root(&root)).await;
    let pod = |name: &str, path: &Path, kind: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: minke/toolbox\n    args: [\"write\", \"/host/hello\", \"from {name}\"]\n    volumeMounts:\n    - {{name: host, mountPath: /host}}\n  volumes:\n  - name: host\n    hostPath: {{path: \"{}\", type: \"{kind}\"}}\n",
            path.display()
        )
    };
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod("inside", &root.join("data"), "DirectoryOrCreate"),
    )
    .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/inside",
        WAIT,
    ])
    .await;
    assert_eq!(
        std::fs::read_to_string(root.join("data/hello")).expect("written on the host"),
        "from inside\n"
    );

    let refused = [
        ("etc", Path::new("/etc").to_path_buf(), ""),
        ("through-link", root.join("link"), "Directory"),
        ("dotdot", root.join("../outside"), ""),
    ];
    for (name, path, kind) in &refused {
        c.ok_stdin(&["apply", "-f", "-"], &pod(name, path, kind))
            .await;
    }
    for (name, path, _) in &refused {
        let prefix = format!("{name}|");
        let events = eventually(
            &c,
            &[
                "get",
                "events",
                "-o",
                r#"jsonpath={range .items[?(@.reason=="FailedMount")]}{.involvedObject.name}{"|"}{.type}{"|"}{.message}{"\n"}{end}"#,
            ],
            |m| m.lines().any(|l| l.starts_with(&prefix)),
        )
        .await;
        let warnings: Vec<&str> = events
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .collect();
        assert_eq!(warnings.len(), 1, "one event while retrying: {warnings:?}");
        let message = warnings[0].strip_prefix("Warning|").unwrap_or_default();
        assert!(
            message.starts_with("MountVolume.SetUp failed for volume \"host\" : hostPath"),
            "{name}: {message}"
        );
        assert!(message.contains(&path.display().to_string()), "{message}");
        let reason = c
            .ok(&[
                "get",
                "pod",
                name,
                "-o",
                "jsonpath={.status.containerStatuses[0].state.waiting.reason}",
            ])
            .await;
        assert_eq!(reason, "ContainerCreating");
        let describe = c.ok(&["describe", "pod", name]).await;
        assert!(
            describe
                .lines()
                .any(|l| l.contains("Warning") && l.contains("FailedMount")),
            "{describe}"
        );
    }
    assert!(
        std::fs::read_dir(&outside)
            .expect("outside")
            .next()
            .is_none(),
        "nothing written outside the root"
    );

    // A type check failure is the kubelet's wording.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod("not-a-file", &root.join("data"), "File"),
    )
    .await;
    let message = eventually(
        &c,
        &[
            "get",
            "pod",
            "not-a-file",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.message}",
        ],
        |m| !m.is_empty(),
    )
    .await;
    assert_eq!(
        message,
        format!(
            "MountVolume.SetUp failed for volume \"host\" : hostPath type check failed: {} is not a file",
            root.canonicalize().expect("canon").join("data").display()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_host_path_root_every_host_path_is_refused() {
    let c = TestCluster::start().await;
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hp\nspec:\n  containers:\n  - name: c\n    image: minke/toolbox\n    volumeMounts:\n    - {name: h, mountPath: /h}\n  volumes:\n  - {name: h, hostPath: {path: /tmp}}\n";
    c.ok_stdin(&["apply", "-f", "-"], pod).await;
    let message = eventually(
        &c,
        &[
            "get",
            "pod",
            "hp",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.message}",
        ],
        |m| !m.is_empty(),
    )
    .await;
    assert!(
        message.starts_with(
            "MountVolume.SetUp failed for volume \"h\" : hostPath \"/tmp\" is not allowed"
        ),
        "{message}"
    );
}

/// A relative symlink target climbing from `from` to `to` (both under one dir).
fn relative(from: &Path, to: &Path) -> String {
    let from = from.canonicalize().expect("from");
    let to = to.canonicalize().expect("to");
    let common = from
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    let ups = from.components().count() - common;
    let rest: Vec<String> = to
        .components()
        .skip(common)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    format!("{}{}", "../".repeat(ups), rest.join("/"))
}

/// Symlinks a malicious host-side (or another container's) writer could plant.
fn plant(dir: &Path, outside: &Path) {
    let ln = |target: &str, name: &str| {
        std::os::unix::fs::symlink(target, dir.join(name)).expect("symlink");
    };
    ln(&outside.display().to_string(), "abs");
    ln(
        &outside.join("secret.txt").display().to_string(),
        "abs-file",
    );
    ln(&relative(dir, outside), "rel");
    ln("/", "root");
    std::fs::create_dir_all(dir.join("sub")).expect("sub");
    std::fs::write(dir.join("sub/ok.txt"), "inside").expect("ok");
    ln("sub", "inner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_cannot_leave_its_mounts_through_symlinks_dotdot_or_read_only_mounts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (data, root, outside) = (
        tmp.path().join("data"),
        tmp.path().join("root"),
        tmp.path().join("outside"),
    );
    for d in [&data, &root.join("shared"), &root.join("ro"), &outside] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::write(outside.join("secret.txt"), "TOPSECRET").expect("secret");
    let c = TestCluster::start_with(|b| b.data_dir(&data).host_path_root(&root)).await;
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: jail\nspec:\n  containers:\n  - name: c\n    image: minke/toolbox\n    args: [\"loop\", \"5\", \"true\"]\n    volumeMounts:\n    - {{name: shared, mountPath: /shared}}\n    - {{name: scratch, mountPath: /scratch}}\n    - {{name: ro, mountPath: /ro, readOnly: true}}\n  volumes:\n  - {{name: shared, hostPath: {{path: \"{}\", type: Directory}}}}\n  - {{name: ro, hostPath: {{path: \"{}\"}}}}\n  - {{name: scratch, emptyDir: {{}}}}\n",
        root.join("shared").display(),
        root.join("ro").display()
    );
    c.ok_stdin(&["apply", "-f", "-"], &pod).await;
    c.ok(&["wait", "--for=condition=Ready", "pod/jail", WAIT])
        .await;
    let uid = c
        .ok(&["get", "pod", "jail", "-o", "jsonpath={.metadata.uid}"])
        .await;
    let scratch = data
        .join("pods")
        .join(format!("default_jail_{uid}"))
        .join(".volumes/scratch");
    assert!(scratch.is_dir(), "{}", scratch.display());
    plant(&root.join("shared"), &outside);
    plant(&scratch, &outside);

    for vol in ["/shared", "/scratch"] {
        let p = |s: &str| format!("{vol}/{s}");
        for cmd in [
            vec!["cat".to_string(), p("abs-file")],
            vec!["cat".into(), p("abs-file/")],
            vec!["cat".into(), p("abs/secret.txt")],
            vec!["ls".into(), p("abs/")],
            vec!["ls".into(), p("abs/.")],
            vec!["cat".into(), p("rel/secret.txt")],
            vec!["ls".into(), p("rel/")],
            vec!["ls".into(), p("root/")],
            vec!["cat".into(), p("root/etc/passwd")],
            vec!["cat".into(), p("../outside/secret.txt")],
            vec!["cat".into(), p("sub/../../outside/secret.txt")],
            vec!["write".into(), p("abs/pwned"), "x".into()],
            vec!["write".into(), p("rel/pwned"), "x".into()],
            vec!["mkdir".into(), p("abs/newdir")],
        ] {
            let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
            denied(&c, "jail", &cmd, "TOPSECRET").await;
        }
        // Symlinks and `..` that stay inside the volume still work.
        assert_eq!(
            exec_ok(&c, "jail", &["cat", &p("inner/ok.txt")]).await,
            "inside"
        );
        assert_eq!(
            exec_ok(&c, "jail", &["cat", &p("sub/../inner/ok.txt")]).await,
            "inside"
        );
    }
    for cmd in [
        ["cat", "/etc/passwd"],
        ["ls", "/"],
        ["cat", "/shared/../../etc/passwd"],
    ] {
        denied(&c, "jail", &cmd, "root:").await;
    }
    assert_eq!(
        std::fs::read_dir(&outside).expect("outside").count(),
        1,
        "nothing was created outside"
    );

    // Read-only mounts refuse writes, file creation and dirs alike.
    std::fs::write(root.join("ro/file"), "original").expect("ro file");
    denied(&c, "jail", &["write", "/ro/file", "changed"], "").await;
    denied(&c, "jail", &["write", "/ro/new", "x"], "").await;
    denied(&c, "jail", &["mkdir", "/ro/d"], "").await;
    assert_eq!(exec_ok(&c, "jail", &["cat", "/ro/file"]).await, "original");
    assert_eq!(
        std::fs::read_to_string(root.join("ro/file")).expect("ro"),
        "original"
    );
    assert!(!root.join("ro/new").exists() && !root.join("ro/d").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_bound_to_a_host_path_pv_mounts_its_dir_and_data_outlives_the_pod() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pv_dir = tmp.path().join("pv/data");
    let c = TestCluster::start().await;
    // Placed on the node directly (no scheduler, which would wait for the claim),
    // so the kubelet's own retries are what is seen.
    let node = c
        .ok(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"])
        .await;
    let pod = |name: &str, args: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: {node}\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: minke/toolbox\n    args: {args}\n    volumeMounts:\n    - {{name: data, mountPath: /data}}\n  volumes:\n  - {{name: data, persistentVolumeClaim: {{claimName: data}}}}\n"
        )
    };
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod("writer", r#"["write", "/data/note", "persisted"]"#),
    )
    .await;
    let waiting = [
        "get",
        "pod",
        "writer",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.waiting.message}",
    ];
    let missing = eventually(&c, &waiting, |m| m.contains("not found")).await;
    assert_eq!(
        missing,
        "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[data]: error processing PVC default/data: failed to fetch PVC from API server: persistentvolumeclaims \"data\" not found"
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n  storageClassName: \"\"\n  volumeName: pv-data\n",
    )
    .await;
    let unbound = eventually(&c, &waiting, |m| m.contains("not bound")).await;
    assert!(
        unbound.ends_with("error processing PVC default/data: PVC is not bound"),
        "{unbound}"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "pod",
            "writer",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.reason}"
        ])
        .await,
        "ContainerCreating"
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: pv-data\nspec:\n  capacity: {{storage: 1Gi}}\n  accessModes: [ReadWriteOnce]\n  hostPath: {{path: \"{}\", type: DirectoryOrCreate}}\n  claimRef: {{namespace: default, name: data}}\n",
            pv_dir.display()
        ),
    )
    .await;
    // The PV controller binds the pair; the kubelet's next try mounts it.
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Bound",
        "pvc/data",
        WAIT,
    ])
    .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/writer",
        WAIT,
    ])
    .await;
    assert_eq!(
        std::fs::read_to_string(pv_dir.join("note")).expect("on the PV"),
        "persisted\n"
    );
    c.ok(&["delete", "pod", "writer", "--wait=true", WAIT])
        .await;
    assert!(
        pv_dir.join("note").exists(),
        "the PV's data survives the pod"
    );

    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod("reader", r#"["cat", "/data/note"]"#),
    )
    .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/reader",
        WAIT,
    ])
    .await;
    assert_eq!(c.ok(&["logs", "reader"]).await, "persisted\n");

    // readOnly on the claim source is honoured.
    let ro = pod("ro", r#"["write", "/data/other", "x"]"#)
        .replace("claimName: data}", "claimName: data, readOnly: true}");
    c.ok_stdin(&["apply", "-f", "-"], &ro).await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Failed",
        "pod/ro",
        WAIT,
    ])
    .await;
    assert!(!pv_dir.join("other").exists());
}
