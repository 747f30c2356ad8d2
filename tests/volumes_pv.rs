//! Persistent volumes with the real kubectl: the default StorageClass and its
//! local-path provisioner (a claim binds to `pvc-<uid>` only once its first pod
//! is scheduled, the data outlives the pod, Delete removes volume and
//! directory), static volumes (smallest fit, class, selector, access modes;
//! Retain leaves them Released), in-use protection of claims and volumes, and
//! the scheduler's VolumeBinding messages (unbound immediate claims, missing
//! claims, volume node affinity conflicts).

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::TestCluster;

const WAIT: &str = "--timeout=60s";

/// Run kubectl until `done` accepts its stdout (bounded: ~30 s); for state that
/// no `kubectl wait` condition names (event messages, table rows).
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

async fn get(c: &TestCluster, what: &str, path: &str) -> String {
    let args: Vec<String> = what
        .split_whitespace()
        .map(String::from)
        .chain(["-o".to_string(), format!("jsonpath={path}")])
        .collect();
    let args: Vec<&str> = std::iter::once("get")
        .chain(args.iter().map(String::as_str))
        .collect();
    c.ok(&args).await
}

/// The reasons of the events about one object, oldest first.
async fn events_about(c: &TestCluster, name: &str) -> String {
    c.ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={name}"),
        "-o",
        "jsonpath={range .items[*]}{.type} {.reason}: {.message}{\"\\n\"}{end}",
    ])
    .await
}

async fn wait_for(c: &TestCluster, condition: &str, what: &str) {
    c.ok(&["wait", &format!("--for={condition}"), what, WAIT])
        .await;
}

fn claim(name: &str, size: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {name}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: {size}}}}}\n{extra}"
    )
}

fn pod(name: &str, claim: &str, args: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n{extra}  containers:\n  - name: c\n    image: minke/toolbox\n    args: {args}\n    volumeMounts:\n    - {{name: data, mountPath: /data}}\n  volumes:\n  - {{name: data, persistentVolumeClaim: {{claimName: {claim}}}}}\n"
    )
}

fn host_path_volume(name: &str, size: &str, dir: &Path, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {name}\n{extra}  hostPath: {{path: \"{}\", type: DirectoryOrCreate}}\n  capacity: {{storage: {size}}}\n",
        dir.join(name).display()
    )
}

/// The value of `key:` in `kubectl describe` output.
fn field<'a>(described: &'a str, key: &str) -> Option<&'a str> {
    described
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

/// Split a table row into its cells (cells here hold no spaces).
fn cells(row: &str) -> Vec<&str> {
    row.split_whitespace().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_class_claim_binds_when_its_first_pod_is_scheduled_and_delete_removes_its_volume()
{
    let c = TestCluster::start().await;
    let sc = c.ok(&["get", "sc"]).await;
    let mut lines = sc.lines();
    assert_eq!(
        cells(lines.next().unwrap_or_default()),
        [
            "NAME",
            "PROVISIONER",
            "RECLAIMPOLICY",
            "VOLUMEBINDINGMODE",
            "ALLOWVOLUMEEXPANSION",
            "AGE"
        ]
    );
    let row = lines.next().unwrap_or_default();
    assert!(
        row.starts_with("standard (default)"),
        "the default class is marked: {sc}"
    );
    assert_eq!(
        cells(row)[2..6],
        [
            "minke.dev/local-path",
            "Delete",
            "WaitForFirstConsumer",
            "false"
        ]
    );

    c.ok_stdin(&["apply", "-f", "-"], &claim("data", "64Mi", ""))
        .await;
    assert_eq!(
        get(&c, "pvc data", "{.spec.storageClassName}").await,
        "standard"
    );
    assert_eq!(
        get(&c, "pvc data", "{.metadata.finalizers}").await,
        r#"["kubernetes.io/pvc-protection"]"#
    );
    let waiting = eventually(
        &c,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=data",
        ],
        |e| e.contains("WaitForFirstConsumer"),
    )
    .await;
    assert!(
        waiting.contains("waiting for first consumer to be created before binding"),
        "{waiting}"
    );
    assert_eq!(get(&c, "pvc data", "{.status.phase}").await, "Pending");
    assert_eq!(
        get(&c, "pvc data", "{.spec.volumeName}").await,
        "",
        "no volume before a pod"
    );
    assert_eq!(c.ok(&["get", "pv", "-o", "name"]).await, "");

    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod(
            "writer",
            "data",
            r#"["write", "/data/note", "persisted"]"#,
            "",
        ),
    )
    .await;
    wait_for(&c, "jsonpath={.status.phase}=Bound", "pvc/data").await;
    let uid = get(&c, "pvc data", "{.metadata.uid}").await;
    let volume = format!("pvc-{uid}");
    assert_eq!(get(&c, "pvc data", "{.spec.volumeName}").await, volume);
    let node = c
        .ok(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"])
        .await;
    let annotations = get(&c, "pvc data", "{.metadata.annotations}").await;
    for expected in [
        format!(r#""volume.kubernetes.io/selected-node":"{node}""#),
        r#""volume.kubernetes.io/storage-provisioner":"minke.dev/local-path""#.to_string(),
        r#""pv.kubernetes.io/bind-completed":"yes""#.to_string(),
        r#""pv.kubernetes.io/bound-by-controller":"yes""#.to_string(),
    ] {
        assert!(
            annotations.contains(&expected),
            "{expected} in {annotations}"
        );
    }
    wait_for(&c, "jsonpath={.status.phase}=Succeeded", "pod/writer").await;

    // The volume: the claim's size, modes and class, the class's policy, pinned
    // to the node the pod went to.
    let pv = format!("pv {volume}");
    assert_eq!(
        get(
            &c,
            &pv,
            "{.metadata.annotations.pv\\.kubernetes\\.io/provisioned-by}"
        )
        .await,
        "minke.dev/local-path"
    );
    assert_eq!(get(&c, &pv, "{.spec.capacity.storage}").await, "64Mi");
    assert_eq!(
        get(&c, &pv, "{.spec.persistentVolumeReclaimPolicy}").await,
        "Delete"
    );
    assert_eq!(get(&c, &pv, "{.spec.claimRef.uid}").await, uid);
    assert_eq!(
        get(
            &c,
            &pv,
            "{.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}"
        )
        .await,
        node
    );
    let dir = get(&c, &pv, "{.spec.hostPath.path}").await;
    assert_eq!(
        std::fs::read_to_string(Path::new(&dir).join("note")).expect("written on the host"),
        "persisted\n"
    );
    let pvs = c.ok(&["get", "pv"]).await;
    let mut lines = pvs.lines();
    assert_eq!(
        cells(lines.next().unwrap_or_default()),
        [
            "NAME",
            "CAPACITY",
            "ACCESS",
            "MODES",
            "RECLAIM",
            "POLICY",
            "STATUS",
            "CLAIM",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "REASON",
            "AGE"
        ]
    );
    assert_eq!(
        cells(lines.next().unwrap_or_default())[..8],
        [
            volume.as_str(),
            "64Mi",
            "RWO",
            "Delete",
            "Bound",
            "default/data",
            "standard",
            "<unset>"
        ]
    );
    let pvcs = c.ok(&["get", "pvc"]).await;
    let mut lines = pvcs.lines();
    assert_eq!(
        cells(lines.next().unwrap_or_default()),
        [
            "NAME",
            "STATUS",
            "VOLUME",
            "CAPACITY",
            "ACCESS",
            "MODES",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "AGE"
        ]
    );
    assert_eq!(
        cells(lines.next().unwrap_or_default())[..7],
        [
            "data",
            "Bound",
            volume.as_str(),
            "64Mi",
            "RWO",
            "standard",
            "<unset>"
        ]
    );

    // A second pod reads what the first wrote.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod("reader", "data", r#"["cat", "/data/note"]"#, ""),
    )
    .await;
    wait_for(&c, "jsonpath={.status.phase}=Succeeded", "pod/reader").await;
    assert_eq!(c.ok(&["logs", "reader"]).await, "persisted\n");

    let described = c.ok(&["describe", "pvc", "data"]).await;
    for (key, value) in [
        ("StorageClass", "standard"),
        ("Status", "Bound"),
        ("Volume", volume.as_str()),
        ("Finalizers", "[kubernetes.io/pvc-protection]"),
        ("Capacity", "64Mi"),
        ("Access Modes", "RWO"),
        ("Used By", "reader"),
    ] {
        assert_eq!(
            field(&described, key),
            Some(value),
            "{key} in:\n{described}"
        );
    }
    for expected in [
        "waiting for first consumer to be created before binding".to_string(),
        "Waiting for a volume to be created either by the external provisioner 'minke.dev/local-path' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.".to_string(),
        "External provisioner is provisioning volume for claim \"default/data\"".to_string(),
        format!("Successfully provisioned volume {volume}"),
    ] {
        assert!(described.contains(&expected), "{expected:?} in:\n{described}");
    }
    // The PV controller's ExternalProvisioning and the provisioner's Provisioning
    // race (as in Kubernetes); the first and the last are sure.
    let events = events_about(&c, "data").await;
    let mut order: Vec<&str> = events.lines().filter_map(|l| l.split(':').next()).collect();
    assert_eq!(
        order.first(),
        Some(&"Normal WaitForFirstConsumer"),
        "{events}"
    );
    assert_eq!(
        order.last(),
        Some(&"Normal ProvisioningSucceeded"),
        "{events}"
    );
    order.sort_unstable();
    assert_eq!(
        order,
        [
            "Normal ExternalProvisioning",
            "Normal Provisioning",
            "Normal ProvisioningSucceeded",
            "Normal WaitForFirstConsumer",
        ],
        "{events}"
    );

    // Deleting the claim (its pods are gone) deletes the volume and its directory.
    c.ok(&["delete", "pod", "writer", "reader", "--wait=true", WAIT])
        .await;
    c.ok(&["delete", "pvc", "data", "--wait=true", WAIT]).await;
    wait_for(&c, "delete", &format!("pv/{volume}")).await;
    assert!(!Path::new(&dir).exists(), "{dir} is removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_volumes_bind_the_smallest_fit_by_class_selector_and_access_modes_and_retain_their_data()
 {
    let c = TestCluster::start().await;
    // Under /tmp, where the in-tree hostPath deleter is allowed to delete.
    let tmp = tempfile::Builder::new()
        .prefix("minke-pv-")
        .tempdir_in("/tmp")
        .expect("tmp");
    let dirs = tmp.path();
    let rwo = "spec:\n  accessModes: [ReadWriteOnce]\n";
    for pv in [
        host_path_volume("small", "1Gi", dirs, rwo),
        host_path_volume("mid", "2Gi", dirs, rwo),
        host_path_volume("big", "5Gi", dirs, rwo),
        host_path_volume(
            "gold",
            "3Gi",
            dirs,
            &format!("  labels: {{tier: gold}}\n{rwo}"),
        ),
        host_path_volume(
            "shared",
            "2Gi",
            dirs,
            "spec:\n  accessModes: [ReadWriteMany]\n",
        ),
        host_path_volume(
            "fast",
            "2Gi",
            dirs,
            &format!("{rwo}  storageClassName: fast\n"),
        ),
        host_path_volume(
            "scratch",
            "1Gi",
            dirs,
            &format!("{rwo}  storageClassName: scratch\n  persistentVolumeReclaimPolicy: Delete\n"),
        ),
    ] {
        c.ok_stdin(&["apply", "-f", "-"], &pv).await;
    }
    for pv in ["small", "mid", "big", "gold", "shared", "fast", "scratch"] {
        std::fs::create_dir_all(dirs.join(pv)).expect("mkdir");
        wait_for(
            &c,
            "jsonpath={.status.phase}=Available",
            &format!("pv/{pv}"),
        )
        .await;
    }
    assert_eq!(
        get(&c, "pv mid", "{.metadata.finalizers}").await,
        r#"["kubernetes.io/pv-protection"]"#
    );
    let classless = "  storageClassName: \"\"\n";
    for (name, size, extra) in [
        ("a", "1500Mi", classless.to_string()),
        (
            "b",
            "1Gi",
            format!("{classless}  selector: {{matchLabels: {{tier: gold}}}}\n"),
        ),
        ("c", "1Gi", "  storageClassName: fast\n".to_string()),
        (
            "d",
            "1Gi",
            format!("{classless}  accessModes: [ReadWriteMany]\n"),
        ),
        ("e", "1Gi", "  storageClassName: scratch\n".to_string()),
        ("huge", "10Gi", classless.to_string()),
    ] {
        let mut manifest = claim(name, size, &extra);
        if extra.contains("accessModes") {
            manifest = manifest.replace("  accessModes: [ReadWriteOnce]\n", "");
        }
        c.ok_stdin(&["apply", "-f", "-"], &manifest).await;
    }
    for (claim, volume) in [
        ("a", "mid"),
        ("b", "gold"),
        ("c", "fast"),
        ("d", "shared"),
        ("e", "scratch"),
    ] {
        wait_for(
            &c,
            "jsonpath={.status.phase}=Bound",
            &format!("pvc/{claim}"),
        )
        .await;
        assert_eq!(
            get(&c, &format!("pvc {claim}"), "{.spec.volumeName}").await,
            volume,
            "claim {claim}"
        );
        wait_for(
            &c,
            "jsonpath={.status.phase}=Bound",
            &format!("pv/{volume}"),
        )
        .await;
    }
    assert_eq!(
        get(&c, "pvc a", "{.spec.storageClassName}").await,
        "",
        "\"\" stays classless"
    );
    assert_eq!(get(&c, "pvc a", "{.status.capacity.storage}").await, "2Gi");
    assert_eq!(
        get(&c, "pvc a", "{.status.accessModes}").await,
        r#"["ReadWriteOnce"]"#
    );
    let uid = get(&c, "pvc a", "{.metadata.uid}").await;
    let claim_ref = get(&c, "pv mid", "{.spec.claimRef}").await;
    for expected in [
        r#""kind":"PersistentVolumeClaim""#.to_string(),
        r#""apiVersion":"v1""#.to_string(),
        r#""namespace":"default""#.to_string(),
        r#""name":"a""#.to_string(),
        format!(r#""uid":"{uid}""#),
        r#""resourceVersion":""#.to_string(),
    ] {
        assert!(claim_ref.contains(&expected), "{expected} in {claim_ref}");
    }
    assert_eq!(
        get(
            &c,
            "pv mid",
            "{.metadata.annotations.pv\\.kubernetes\\.io/bound-by-controller}"
        )
        .await,
        "yes"
    );
    assert_eq!(get(&c, "pv small", "{.status.phase}").await, "Available");
    assert!(
        !get(&c, "pv mid", "{.status.lastPhaseTransitionTime}")
            .await
            .is_empty()
    );
    // No class: an empty STORAGECLASS cell.
    let row = c.ok(&["get", "pv", "mid", "--no-headers"]).await;
    assert_eq!(
        cells(&row)[..7],
        [
            "mid",
            "2Gi",
            "RWO",
            "Retain",
            "Bound",
            "default/a",
            "<unset>"
        ]
    );

    // Nothing fits and no class: Pending, said as the PV controller says it.
    let events = eventually(
        &c,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=huge",
        ],
        |e| e.contains("FailedBinding"),
    )
    .await;
    assert!(
        events
            .contains("no persistent volumes available for this claim and no storage class is set"),
        "{events}"
    );
    assert_eq!(get(&c, "pvc huge", "{.status.phase}").await, "Pending");

    // Retain: the volume is Released and keeps its data.
    std::fs::write(dirs.join("mid/kept"), "x").expect("write");
    c.ok(&["delete", "pvc", "a", "--wait=true", WAIT]).await;
    wait_for(&c, "jsonpath={.status.phase}=Released", "pv/mid").await;
    assert!(dirs.join("mid/kept").exists());
    let row = c.ok(&["get", "pv", "mid", "--no-headers"]).await;
    assert_eq!(cells(&row)[4..6], ["Released", "default/a"]);

    // Delete on a hostPath under /tmp: volume and directory go.
    std::fs::write(dirs.join("scratch/file"), "x").expect("write");
    c.ok(&["delete", "pvc", "e", "--wait=true", WAIT]).await;
    wait_for(&c, "delete", "pv/scratch").await;
    assert!(!dirs.join("scratch").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_in_use_stays_terminating_until_its_pod_is_gone() {
    let c = TestCluster::start().await;
    c.ok_stdin(&["apply", "-f", "-"], &claim("data", "16Mi", ""))
        .await;
    c.ok_stdin(&["apply", "-f", "-"], &claim("idle", "16Mi", ""))
        .await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod("user", "data", r#"["sleep", "3600"]"#, ""),
    )
    .await;
    wait_for(&c, "condition=Ready", "pod/user").await;
    let volume = get(&c, "pvc data", "{.spec.volumeName}").await;
    let dir = get(&c, &format!("pv {volume}"), "{.spec.hostPath.path}").await;

    c.ok(&["delete", "pvc", "data", "idle", "--wait=false"])
        .await;
    // The unused claim goes; the one the pod mounts stays, Terminating.
    wait_for(&c, "delete", "pvc/idle").await;
    let row = c.ok(&["get", "pvc", "data", "--no-headers"]).await;
    assert_eq!(cells(&row)[1], "Terminating", "{row}");
    assert_eq!(
        get(&c, "pvc data", "{.metadata.finalizers}").await,
        r#"["kubernetes.io/pvc-protection"]"#
    );
    // A bound volume is protected too.
    c.ok(&["delete", "pv", &volume, "--wait=false"]).await;
    let row = c.ok(&["get", "pv", &volume, "--no-headers"]).await;
    assert_eq!(cells(&row)[4], "Terminating", "{row}");
    assert_eq!(get(&c, "pod user", "{.status.phase}").await, "Running");

    c.ok(&["delete", "pod", "user", "--wait=true", WAIT]).await;
    wait_for(&c, "delete", "pvc/data").await;
    wait_for(&c, "delete", &format!("pv/{volume}")).await;
    assert!(!Path::new(&dir).exists(), "{dir} is removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_with_unbound_immediate_or_missing_claims_wait_with_the_schedulers_message() {
    let c = TestCluster::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: manual\nprovisioner: kubernetes.io/no-provisioner\nvolumeBindingMode: Immediate\n",
    )
    .await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &claim("data", "1Gi", "  storageClassName: manual\n"),
    )
    .await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod("user", "data", r#"["cat", "/data/note"]"#, ""),
    )
    .await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod("orphan", "nope", r#"["true"]"#, ""),
    )
    .await;
    wait_for(&c, "condition=PodScheduled=false", "pod/user").await;
    let events = eventually(
        &c,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=user",
        ],
        |e| e.contains("FailedScheduling"),
    )
    .await;
    assert!(
        events.contains("0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.."),
        "{events}"
    );
    wait_for(&c, "condition=PodScheduled=false", "pod/orphan").await;
    assert_eq!(
        get(
            &c,
            "pod orphan",
            "{.status.conditions[?(@.type==\"PodScheduled\")].message}"
        )
        .await,
        "0/1 nodes are available: persistentvolumeclaim \"nope\" not found. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.."
    );
    let claim_events = eventually(
        &c,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=data",
        ],
        |e| e.contains("ProvisioningFailed"),
    )
    .await;
    assert!(
        claim_events.contains("no volume plugin matched name: kubernetes.io/no-provisioner"),
        "{claim_events}"
    );

    // A volume of the class appears: the claim binds and the pod runs.
    std::fs::create_dir_all(tmp.path().join("pv")).expect("mkdir");
    std::fs::write(tmp.path().join("pv/note"), "static\n").expect("write");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: manual-pv\nspec:\n  storageClassName: manual\n  accessModes: [ReadWriteOnce]\n  capacity: {{storage: 1Gi}}\n  hostPath: {{path: \"{}\"}}\n",
            tmp.path().join("pv").display()
        ),
    )
    .await;
    wait_for(&c, "jsonpath={.status.phase}=Bound", "pvc/data").await;
    wait_for(&c, "jsonpath={.status.phase}=Succeeded", "pod/user").await;
    assert_eq!(c.ok(&["logs", "user"]).await, "static\n");
    // The claim that never existed is created: that pod runs too.
    c.ok_stdin(&["apply", "-f", "-"], &claim("nope", "16Mi", ""))
        .await;
    wait_for(&c, "jsonpath={.status.phase}=Succeeded", "pod/orphan").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_follows_its_volume_to_the_node_it_was_provisioned_on() {
    let c = TestCluster::start_with(|b| b.nodes(3)).await;
    let nodes: Vec<String> = c
        .ok(&["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"])
        .await
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(nodes.len(), 3);
    let on = |node: &str| format!("  nodeSelector: {{kubernetes.io/hostname: {node}}}\n");
    c.ok_stdin(&["apply", "-f", "-"], &claim("data", "16Mi", ""))
        .await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod(
            "first",
            "data",
            r#"["write", "/data/n", "1"]"#,
            &on(&nodes[1]),
        ),
    )
    .await;
    wait_for(&c, "jsonpath={.status.phase}=Succeeded", "pod/first").await;
    assert_eq!(
        get(
            &c,
            "pvc data",
            "{.metadata.annotations.volume\\.kubernetes\\.io/selected-node}"
        )
        .await,
        nodes[1]
    );
    // Free to go anywhere, the next pod goes where the volume is.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod("second", "data", r#"["cat", "/data/n"]"#, ""),
    )
    .await;
    wait_for(&c, "jsonpath={.status.phase}=Succeeded", "pod/second").await;
    assert_eq!(get(&c, "pod second", "{.spec.nodeName}").await, nodes[1]);
    // Held to another node, a pod cannot have it.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod("elsewhere", "data", r#"["true"]"#, &on(&nodes[2])),
    )
    .await;
    wait_for(&c, "condition=PodScheduled=false", "pod/elsewhere").await;
    assert_eq!(
        get(
            &c,
            "pod elsewhere",
            "{.status.conditions[?(@.type==\"PodScheduled\")].message}"
        )
        .await,
        "0/3 nodes are available: 1 node(s) had volume node affinity conflict, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_class_made_later_is_given_to_claims_that_had_none() {
    let c = TestCluster::start().await;
    c.ok(&["delete", "sc", "standard"]).await;
    c.ok_stdin(&["apply", "-f", "-"], &claim("data", "16Mi", ""))
        .await;
    assert_eq!(get(&c, "pvc data", "{.spec.storageClassName}").await, "");
    let events = eventually(
        &c,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=data",
        ],
        |e| e.contains("FailedBinding"),
    )
    .await;
    assert!(
        events
            .contains("no persistent volumes available for this claim and no storage class is set"),
        "{events}"
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: later\n  annotations: {storageclass.kubernetes.io/is-default-class: \"true\"}\nprovisioner: minke.dev/local-path\nvolumeBindingMode: Immediate\nreclaimPolicy: Retain\n",
    )
    .await;
    wait_for(&c, "jsonpath={.spec.storageClassName}=later", "pvc/data").await;
    // Immediate binding: provisioned without waiting for a pod, and with no node
    // to pin to (every node shares the host's filesystem).
    wait_for(&c, "jsonpath={.status.phase}=Bound", "pvc/data").await;
    let volume = get(&c, "pvc data", "{.spec.volumeName}").await;
    assert_eq!(
        get(
            &c,
            &format!("pv {volume}"),
            "{.spec.persistentVolumeReclaimPolicy}"
        )
        .await,
        "Retain"
    );
    assert_eq!(
        get(&c, &format!("pv {volume}"), "{.spec.nodeAffinity}").await,
        ""
    );
}
