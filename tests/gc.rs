//! Garbage collection by ownerReferences with the real kubectl: background, foreground
//! and orphan cascading deletion, dependents with several owners, dangling and
//! invalid references, cluster-scoped owners, pods as dependents, and collection
//! after a restart.
//!
//! The owners and dependents are ConfigMaps, Secrets and ClusterRoles, which no
//! controller touches, so only the garbage collector acts on them.

use crate::common;

use std::time::Duration;

use common::TestCluster;

const WAIT: &str = "--timeout=60s";

/// One ownerReference of a test object.
struct Owner<'a> {
    api_version: &'a str,
    kind: &'a str,
    name: &'a str,
    uid: String,
    block: bool,
}

impl<'a> Owner<'a> {
    /// The ConfigMap `name` in `default`, as an owner.
    async fn cm(c: &TestCluster, name: &'a str, block: bool) -> Owner<'a> {
        Owner {
            api_version: "v1",
            kind: "ConfigMap",
            name,
            uid: uid(c, "cm", name).await,
            block,
        }
    }
}

async fn uid(c: &TestCluster, resource: &str, name: &str) -> String {
    let uid = c
        .ok(&["get", resource, name, "-o", "jsonpath={.metadata.uid}"])
        .await;
    assert!(!uid.is_empty(), "{resource}/{name} has a uid");
    uid
}

/// A manifest of `kind` named `name` owned by `owners`, holding `finalizers`.
fn manifest(
    kind: &str,
    api_version: &str,
    name: &str,
    owners: &[&Owner<'_>],
    finalizers: &[&str],
) -> String {
    let mut y = format!("apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: {name}\n");
    if !finalizers.is_empty() {
        y.push_str("  finalizers:\n");
        for f in finalizers {
            y.push_str(&format!("  - {f}\n"));
        }
    }
    if !owners.is_empty() {
        y.push_str("  ownerReferences:\n");
        for o in owners {
            y.push_str(&format!(
                "  - apiVersion: {}\n    kind: {}\n    name: {}\n    uid: {}\n    blockOwnerDeletion: {}\n",
                o.api_version, o.kind, o.name, o.uid, o.block
            ));
        }
    }
    y
}

async fn create(c: &TestCluster, yaml: &str) {
    c.ok_stdin(&["create", "-f", "-"], yaml).await;
}

async fn create_cm(c: &TestCluster, name: &str, owners: &[&Owner<'_>], finalizers: &[&str]) {
    create(c, &manifest("ConfigMap", "v1", name, owners, finalizers)).await;
}

/// Whether `kubectl get` finds the object.
async fn exists(c: &TestCluster, resource: &str, name: &str) -> bool {
    let out = c
        .kubectl(&["get", resource, name, "--ignore-not-found", "-o", "name"])
        .await;
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

/// Poll kubectl until `want` holds for its output (bounded; for states `kubectl wait`
/// cannot express).
async fn eventually(c: &TestCluster, args: &[&str], want: impl Fn(&str) -> bool) -> String {
    let mut out = String::new();
    for _ in 0..300 {
        out = c.ok(args).await;
        if want(&out) {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "kubectl {} never satisfied the check; last output:\n{out}",
        args.join(" ")
    );
}

async fn release(c: &TestCluster, resource: &str, name: &str) {
    c.ok(&[
        "patch",
        resource,
        name,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_deletion_removes_children_and_grandchildren() {
    let c = TestCluster::start().await;
    create_cm(&c, "owner", &[], &[]).await;
    let owner = Owner::cm(&c, "owner", false).await;
    create_cm(&c, "child", &[&owner], &[]).await;
    create(
        &c,
        &manifest("Secret", "v1", "child-secret", &[&owner], &[]),
    )
    .await;
    let child = Owner::cm(&c, "child", true).await;
    create_cm(&c, "grandchild", &[&child], &[]).await;
    create_cm(&c, "bystander", &[], &[]).await;

    let out = c.ok(&["delete", "cm", "owner"]).await;
    assert!(out.contains("configmap \"owner\" deleted"), "{out}");
    c.ok(&[
        "wait",
        "--for=delete",
        "cm/child",
        "cm/grandchild",
        "secret/child-secret",
        WAIT,
    ])
    .await;
    assert!(
        exists(&c, "cm", "bystander").await,
        "objects without owners stay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_deletion_keeps_children_and_removes_their_references() {
    let c = TestCluster::start().await;
    create_cm(&c, "owner", &[], &[]).await;
    let owner = Owner::cm(&c, "owner", true).await;
    create_cm(&c, "other", &[], &[]).await;
    let other = Owner::cm(&c, "other", false).await;
    create_cm(&c, "child", &[&owner], &[]).await;
    create_cm(&c, "shared", &[&owner, &other], &[]).await;

    // kubectl waits for the owner to go, which happens once the collector has
    // released the children and removed the `orphan` finalizer.
    let out = c
        .ok(&["delete", "cm", "owner", "--cascade=orphan", WAIT])
        .await;
    assert!(out.contains("configmap \"owner\" deleted"), "{out}");
    assert!(!exists(&c, "cm", "owner").await);
    let refs = c
        .ok(&[
            "get",
            "cm",
            "child",
            "shared",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.metadata.ownerReferences[*].name};{end}",
        ])
        .await;
    assert_eq!(refs, "child=;shared=other;");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deprecated_orphan_dependents_parameter_orphans_too() {
    let c = TestCluster::start().await;
    create_cm(&c, "owner", &[], &[]).await;
    let owner = Owner::cm(&c, "owner", false).await;
    create_cm(&c, "child", &[&owner], &[]).await;
    let out = c
        .ok(&[
            "delete",
            "--raw",
            "/api/v1/namespaces/default/configmaps/owner?orphanDependents=true",
        ])
        .await;
    assert!(
        out.contains("\"orphan\""),
        "pending with the orphan finalizer: {out}"
    );
    c.ok(&["wait", "--for=delete", "cm/owner", WAIT]).await;
    let refs = c
        .ok(&[
            "get",
            "cm",
            "child",
            "-o",
            "jsonpath={.metadata.ownerReferences}",
        ])
        .await;
    assert_eq!(refs, "", "released");

    let err = c
        .fails(&[
            "delete",
            "--raw",
            "/api/v1/namespaces/default/configmaps/child?propagationPolicy=Sideways",
        ])
        .await;
    assert!(
        err.contains("propagationPolicy: Unsupported value: \"Sideways\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""),
        "{err}"
    );
    let err = c
        .fails(&["delete", "--raw", "/api/v1/namespaces/default/configmaps/child?propagationPolicy=Orphan&orphanDependents=false"])
        .await;
    assert!(
        err.contains("orphanDependents and deletionPropagation cannot be both set"),
        "{err}"
    );
    assert!(exists(&c, "cm", "child").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_keeps_the_owner_until_blocking_children_are_gone() {
    let c = TestCluster::start().await;
    create_cm(&c, "owner", &[], &[]).await;
    let blocking = Owner::cm(&c, "owner", true).await;
    let loose = Owner::cm(&c, "owner", false).await;
    // Children that linger once deleted (held by a finalizer of ours): one blocks
    // its owner's deletion, one does not.
    create_cm(&c, "blocker", &[&blocking], &["example.com/hold"]).await;
    create_cm(&c, "loose", &[&loose], &["example.com/hold"]).await;
    create_cm(&c, "quick", &[&blocking], &[]).await;

    let out = c
        .ok(&[
            "delete",
            "cm",
            "owner",
            "--cascade=foreground",
            "--wait=false",
        ])
        .await;
    assert!(out.contains("configmap \"owner\" deleted"), "{out}");
    // The collector deletes every child; the held ones linger.
    eventually(
        &c,
        &[
            "get",
            "cm",
            "blocker",
            "loose",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}:{.metadata.deletionTimestamp};{end}",
        ],
        |o| {
            o.split(';')
                .filter(|e| !e.is_empty())
                .all(|e| !e.ends_with(':'))
        },
    )
    .await;
    c.ok(&["wait", "--for=delete", "cm/quick", WAIT]).await;
    let owner = c
        .ok(&[
            "get",
            "cm",
            "owner",
            "-o",
            "jsonpath={.metadata.finalizers} {.metadata.deletionTimestamp}",
        ])
        .await;
    assert!(
        owner.starts_with("[\"foregroundDeletion\"] 20"),
        "the owner waits, marked: {owner}"
    );

    release(&c, "cm", "blocker").await;
    c.ok(&["wait", "--for=delete", "cm/blocker", "cm/owner", WAIT])
        .await;
    assert!(
        exists(&c, "cm", "loose").await,
        "a non-blocking child does not hold the owner back"
    );
    release(&c, "cm", "loose").await;
    c.ok(&["wait", "--for=delete", "cm/loose", WAIT]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_cascades_down_a_chain() {
    let c = TestCluster::start().await;
    create_cm(&c, "owner", &[], &[]).await;
    let owner = Owner::cm(&c, "owner", true).await;
    create_cm(&c, "child", &[&owner], &[]).await;
    let child = Owner::cm(&c, "child", true).await;
    create_cm(&c, "grandchild", &[&child], &["example.com/hold"]).await;

    c.ok(&[
        "delete",
        "cm",
        "owner",
        "--cascade=foreground",
        "--wait=false",
    ])
    .await;
    // The child has a dependent of its own, so it is deleted in the foreground too.
    eventually(
        &c,
        &[
            "get",
            "cm",
            "child",
            "-o",
            "jsonpath={.metadata.finalizers}",
        ],
        |f| f.contains("foregroundDeletion"),
    )
    .await;
    eventually(
        &c,
        &[
            "get",
            "cm",
            "grandchild",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ],
        |t| !t.is_empty(),
    )
    .await;
    assert!(exists(&c, "cm", "owner").await && exists(&c, "cm", "child").await);
    release(&c, "cm", "grandchild").await;
    c.ok(&[
        "wait",
        "--for=delete",
        "cm/grandchild",
        "cm/child",
        "cm/owner",
        WAIT,
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_delete_ends_a_foreground_deletion_at_once() {
    let c = TestCluster::start().await;
    create_cm(&c, "owner", &[], &[]).await;
    let owner = Owner::cm(&c, "owner", true).await;
    create_cm(&c, "child", &[&owner], &["example.com/hold"]).await;
    c.ok(&[
        "delete",
        "cm",
        "owner",
        "--cascade=foreground",
        "--wait=false",
    ])
    .await;
    eventually(
        &c,
        &[
            "get",
            "cm",
            "child",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ],
        |t| !t.is_empty(),
    )
    .await;
    assert!(exists(&c, "cm", "owner").await);
    // As in Kubernetes, deleting again with another policy replaces the finalizer.
    c.ok(&["delete", "cm", "owner", "--cascade=background", WAIT])
        .await;
    assert!(!exists(&c, "cm", "owner").await);
    release(&c, "cm", "child").await;
    c.ok(&["wait", "--for=delete", "cm/child", WAIT]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependent_with_two_owners_survives_one_and_goes_with_the_second() {
    let c = TestCluster::start().await;
    create_cm(&c, "one", &[], &[]).await;
    create_cm(&c, "two", &[], &[]).await;
    let one = Owner::cm(&c, "one", false).await;
    let two = Owner::cm(&c, "two", false).await;
    create_cm(&c, "shared", &[&one, &two], &[]).await;

    c.ok(&["delete", "cm", "one"]).await;
    // The reference to the gone owner is dropped, the dependent kept.
    eventually(
        &c,
        &[
            "get",
            "cm",
            "shared",
            "-o",
            "jsonpath={.metadata.ownerReferences[*].name}",
        ],
        |names| names == "two",
    )
    .await;
    c.ok(&["delete", "cm", "two"]).await;
    c.ok(&["wait", "--for=delete", "cm/shared", WAIT]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dangling_references_are_collected() {
    let c = TestCluster::start().await;
    let nobody = Owner {
        api_version: "v1",
        kind: "ConfigMap",
        name: "nobody",
        uid: "00000000-0000-4000-8000-000000000000".into(),
        block: false,
    };
    create_cm(&c, "orphan", &[&nobody], &[]).await;
    // A reference naming an existing object but another uid (an owner deleted and
    // recreated under the same name) is dangling too.
    create_cm(&c, "owner", &[], &[]).await;
    let impostor = Owner {
        uid: "00000000-0000-4000-8000-000000000001".into(),
        ..Owner::cm(&c, "owner", false).await
    };
    create_cm(&c, "stale", &[&impostor], &[]).await;
    c.ok(&["wait", "--for=delete", "cm/orphan", "cm/stale", WAIT])
        .await;
    assert!(exists(&c, "cm", "owner").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_scoped_owners_own_namespaced_dependents_but_not_the_reverse() {
    let c = TestCluster::start().await;
    c.ok(&[
        "create",
        "clusterrole",
        "owner-role",
        "--verb=get",
        "--resource=pods",
    ])
    .await;
    let role = Owner {
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRole",
        name: "owner-role",
        uid: uid(&c, "clusterrole", "owner-role").await,
        block: false,
    };
    create_cm(&c, "child", &[&role], &[]).await;
    create_cm(&c, "owner", &[], &[]).await;
    let cm_owner = Owner::cm(&c, "owner", false).await;
    create(
        &c,
        &manifest(
            "ClusterRole",
            "rbac.authorization.k8s.io/v1",
            "misowned",
            &[&cm_owner],
            &[],
        ),
    )
    .await;
    // A cluster-scoped object naming a namespaced owner gets a warning and stays.
    let events = eventually(
        &c,
        &[
            "get",
            "events",
            "-n",
            "default",
            "-o",
            "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
        ],
        |e| e.contains("OwnerRefInvalidNamespace"),
    )
    .await;
    assert!(
        events.contains(&format!(
            "OwnerRefInvalidNamespace: ownerRef [v1/ConfigMap, namespace: , name: owner, uid: {}] does not exist in namespace \"\"",
            cm_owner.uid
        )),
        "{events}"
    );

    c.ok(&["delete", "clusterrole", "owner-role"]).await;
    c.ok(&["wait", "--for=delete", "cm/child", WAIT]).await;
    assert!(exists(&c, "clusterrole", "misowned").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_pods_are_collected_and_a_foreground_owner_waits_for_them() {
    let c = TestCluster::start().await;
    create_cm(&c, "owner", &[], &[]).await;
    let owner = Owner::cm(&c, "owner", true).await;
    // One pod goes as soon as its kubelet stopped it; the other is held by a
    // finalizer of ours after that, so the owner's wait can be seen.
    for (name, finalizers) in [
        ("quick", ""),
        ("held", "\n  finalizers: [example.com/hold]"),
    ] {
        let pod = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}{finalizers}\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: owner\n    uid: {}\n    blockOwnerDeletion: true\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: main\n    image: minke/toolbox\n    args: [sleep, \"3600\"]\n",
            owner.uid
        );
        create(&c, &pod).await;
    }
    c.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/quick",
        "pod/held",
        WAIT,
    ])
    .await;

    c.ok(&[
        "delete",
        "cm",
        "owner",
        "--cascade=foreground",
        "--wait=false",
    ])
    .await;
    c.ok(&["wait", "--for=delete", "pod/quick", WAIT]).await;
    eventually(
        &c,
        &[
            "get",
            "pod",
            "held",
            "-o",
            "jsonpath={.metadata.deletionTimestamp} {.status.phase}",
        ],
        |s| s.starts_with("20") && !s.ends_with("Running"),
    )
    .await;
    assert!(
        exists(&c, "cm", "owner").await,
        "the owner waits for its pods"
    );
    release(&c, "pod", "held").await;
    c.ok(&["wait", "--for=delete", "pod/held", "cm/owner", WAIT])
        .await;
}

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_own_and_are_owned() {
    let c = TestCluster::start().await;
    c.ok_stdin(&["apply", "-f", "-"], CRD).await;
    c.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        WAIT,
    ])
    .await;
    create(
        &c,
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: owner\n",
    )
    .await;
    let widget = Owner {
        api_version: "example.com/v1",
        kind: "Widget",
        name: "owner",
        uid: uid(&c, "widget", "owner").await,
        block: true,
    };
    create_cm(&c, "owned-by-widget", &[&widget], &[]).await;
    c.ok(&["delete", "widget", "owner"]).await;
    c.ok(&["wait", "--for=delete", "cm/owned-by-widget", WAIT])
        .await;

    // The collector now watches widgets (a kind added while it ran), so a
    // widget blocks its owner's foreground deletion.
    create_cm(&c, "owner", &[], &[]).await;
    let cm_owner = Owner::cm(&c, "owner", true).await;
    create(
        &c,
        &manifest("Widget", "example.com/v1", "owned-by-cm", &[&cm_owner], &[]),
    )
    .await;
    c.ok(&["delete", "cm", "owner", "--cascade=foreground", WAIT])
        .await;
    assert!(!exists(&c, "widget", "owned-by-cm").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_of_owners_deleted_while_the_collector_was_off_go_after_a_restart() {
    let data = tempfile::tempdir().expect("data dir");
    let c = TestCluster::start_with(|b| b.data_dir(data.path()).garbage_collector(false)).await;
    create_cm(&c, "owner", &[], &[]).await;
    let owner = Owner::cm(&c, "owner", true).await;
    create_cm(&c, "child", &[&owner], &[]).await;
    // Without a collector, no finalizer is added that nothing would remove.
    c.ok(&["delete", "cm", "owner", "--cascade=foreground", WAIT])
        .await;
    assert!(exists(&c, "cm", "child").await);
    let TestCluster { cluster, dir, .. } = c;
    cluster.shutdown().await;

    let restarted = TestCluster::start_with(|b| b.data_dir(data.path())).await;
    restarted
        .ok(&["wait", "--for=delete", "cm/child", WAIT])
        .await;
    drop(dir);
}
