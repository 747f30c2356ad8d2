//! Unit tests for defaulting, named as sentences, compared with what `kubectl get -o yaml` shows on a 1.36 cluster.

use super::*;
use serde_json::json;

fn defaulted(group: &str, version: &str, kind: &str, mut obj: Value) -> Value {
    apply_defaults(group, version, kind, &mut obj);
    obj
}

/// The template spec of a minimal one-container workload, as the server returns it.
fn defaulted_template_spec(image_pull_policy: &str) -> Value {
    json!({
        "containers": [{
            "name": "web", "image": "nginx",
            "imagePullPolicy": image_pull_policy,
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "resources": {}
        }],
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Always",
        "securityContext": {},
        "terminationGracePeriodSeconds": 30,
        "schedulerName": "default-scheduler"
    })
}

fn minimal(kind: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
        }
    })
}

#[test]
fn a_minimal_deployment_gets_the_fields_a_real_cluster_shows() {
    let d = defaulted("apps", "v1", "Deployment", minimal("Deployment"));
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(spec["template"]["spec"], defaulted_template_spec("Always"));
    // Templates do not get the Pod-only fields.
    assert!(spec["template"]["spec"].get("enableServiceLinks").is_none());
    assert!(spec["template"]["spec"].get("priority").is_none());
    // And the result validates cleanly.
    assert!(crate::api::validation::validate("apps", "Deployment", &d, None).is_empty());
}

#[test]
fn a_pod_gets_pod_only_defaults_as_well() {
    let pod = json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}});
    let p = defaulted("", "v1", "Pod", pod);
    let spec = &p["spec"];
    assert_eq!(spec["enableServiceLinks"], true);
    assert_eq!(spec["priority"], 0);
    assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(spec["containers"][0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(spec["containers"][0]["ports"][0]["protocol"], "TCP");
    assert_eq!(spec["restartPolicy"], "Always");
}

#[test]
fn image_pull_policy_follows_the_tag() {
    let policy = |image: &str| {
        let p = defaulted(
            "",
            "v1",
            "Pod",
            json!({"spec": {"containers": [{"name": "c", "image": image}]}}),
        );
        p["spec"]["containers"][0]["imagePullPolicy"].clone()
    };
    assert_eq!(policy("nginx"), "Always");
    assert_eq!(policy("nginx:latest"), "Always");
    assert_eq!(policy("localhost:5000/nginx"), "Always");
    assert_eq!(policy("nginx:1.27"), "IfNotPresent");
    assert_eq!(policy("nginx@sha256:abc"), "IfNotPresent");
}

#[test]
fn env_field_refs_probes_and_volumes_are_defaulted() {
    let pod = json!({"spec": {
        "containers": [{"name": "c", "image": "x:1",
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "livenessProbe": {"httpGet": {"port": 8080}},
            "resources": {"limits": {"cpu": "1"}}}],
        "volumes": [{"name": "a"}, {"name": "b", "secret": {"secretName": "s"}}]
    }});
    let p = defaulted("", "v1", "Pod", pod);
    let c = &p["spec"]["containers"][0];
    assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(c["resources"]["requests"], json!({"cpu": "1"}));
    assert_eq!(p["spec"]["volumes"][0]["emptyDir"], json!({}));
    assert_eq!(p["spec"]["volumes"][1]["secret"]["defaultMode"], 420);
}

#[test]
fn statefulset_and_daemonset_get_their_strategies() {
    let s = defaulted("apps", "v1", "StatefulSet", minimal("StatefulSet"));
    assert_eq!(s["spec"]["replicas"], 1);
    assert_eq!(s["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        s["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        s["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(s["spec"]["revisionHistoryLimit"], 10);
    let d = defaulted("apps", "v1", "DaemonSet", minimal("DaemonSet"));
    assert_eq!(
        d["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    let r = defaulted("apps", "v1", "ReplicaSet", minimal("ReplicaSet"));
    assert_eq!(r["spec"]["replicas"], 1);
}

#[test]
fn a_job_gets_counts_policies_and_a_generated_selector() {
    let job = json!({"metadata": {"name": "pi", "namespace": "default", "uid": "u-1"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "perl:5"}]}}}});
    let j = defaulted("batch", "v1", "Job", job);
    let spec = &j["spec"];
    for (k, v) in [
        ("completions", json!(1)),
        ("parallelism", json!(1)),
        ("backoffLimit", json!(6)),
        ("completionMode", json!("NonIndexed")),
        ("suspend", json!(false)),
        ("manualSelector", json!(false)),
        ("podReplacementPolicy", json!("TerminatingOrFailed")),
    ] {
        assert_eq!(spec[k], v, "{k}");
    }
    assert_eq!(
        spec["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
    );
    assert_eq!(spec["template"]["metadata"]["labels"]["job-name"], "pi");
    assert_eq!(
        spec["template"]["metadata"]["labels"]["controller-uid"],
        "u-1"
    );
    assert!(crate::api::validation::validate("batch", "Job", &j, None).is_empty());
}

#[test]
fn a_cronjob_gets_its_policies_and_a_defaulted_pod_template() {
    let cj = json!({"metadata": {"name": "c", "namespace": "default"}, "spec": {"schedule": "* * * * *",
        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
    let c = defaulted("batch", "v1", "CronJob", cj);
    assert_eq!(c["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(c["spec"]["suspend"], false);
    assert_eq!(c["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(c["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(
        c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["schedulerName"],
        "default-scheduler"
    );
}

#[test]
fn a_service_gets_type_affinity_ports_and_policies_but_no_ip() {
    let svc = json!({"metadata": {"name": "s", "namespace": "default"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
    let s = defaulted("", "v1", "Service", svc);
    let spec = &s["spec"];
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(
        spec["ports"][0],
        json!({"port": 80, "protocol": "TCP", "targetPort": 80})
    );
    assert_eq!(spec["externalTrafficPolicy"], "Cluster");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert!(spec.get("clusterIP").is_none());
    assert!(spec["ports"][0].get("nodePort").is_none());
    let plain = defaulted(
        "",
        "v1",
        "Service",
        json!({"spec": {"ports": [{"port": 80, "targetPort": "http"}]}}),
    );
    assert_eq!(plain["spec"]["type"], "ClusterIP");
    assert_eq!(plain["spec"]["ports"][0]["targetPort"], "http");
    assert!(plain["spec"].get("externalTrafficPolicy").is_none());
}

#[test]
fn namespaces_secrets_and_volumes_get_their_defaults() {
    let ns = defaulted(
        "",
        "v1",
        "Namespace",
        json!({"metadata": {"name": "team-a"}}),
    );
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team-a"
    );
    assert_eq!(
        defaulted("", "v1", "Secret", json!({"metadata": {"name": "s"}}))["type"],
        "Opaque"
    );
    let pvc = defaulted("", "v1", "PersistentVolumeClaim", json!({"spec": {}}));
    assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
    let pv = defaulted("", "v1", "PersistentVolume", json!({"spec": {}}));
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
}

#[test]
fn an_hpa_v2_gets_min_replicas_and_the_cpu_metric() {
    let h = defaulted(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        json!({"spec": {"maxReplicas": 5, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
    );
    assert_eq!(h["spec"]["minReplicas"], 1);
    assert_eq!(
        h["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        80
    );
    assert_eq!(
        h["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        60
    );
    assert_eq!(
        h["spec"]["behavior"]["scaleUp"]["policies"][0],
        json!({"type": "Pods", "value": 4, "periodSeconds": 15})
    );
}

#[test]
fn defaulting_twice_changes_nothing_more() {
    let once = defaulted("apps", "v1", "Deployment", minimal("Deployment"));
    assert_eq!(defaulted("apps", "v1", "Deployment", once.clone()), once);
}

#[test]
fn admission_defaults_add_the_service_account_and_tolerations() {
    let mut p = json!({"spec": {"containers": [{"name": "c", "image": "x"}]}});
    apply_admission_defaults("", "Pod", &mut p);
    assert_eq!(p["spec"]["serviceAccountName"], "default");
    assert_eq!(p["spec"]["tolerations"].as_array().map(Vec::len), Some(2));
}

#[test]
fn a_container_limit_range_defaults_limits_to_max_and_requests_to_limits_then_min() {
    let lr = defaulted(
        "",
        "v1",
        "LimitRange",
        json!({"spec": {"limits": [
            {"type": "Container", "max": {"cpu": "1", "memory": "1Gi"},
             "default": {"memory": "512Mi"}, "min": {"ephemeral-storage": "1Mi"}},
            {"type": "Pod", "max": {"cpu": "2"}},
        ]}}),
    );
    assert_eq!(
        lr["spec"]["limits"],
        json!([
            {"type": "Container", "max": {"cpu": "1", "memory": "1Gi"},
             "default": {"memory": "512Mi", "cpu": "1"},
             "defaultRequest": {"memory": "512Mi", "cpu": "1", "ephemeral-storage": "1Mi"},
             "min": {"ephemeral-storage": "1Mi"}},
            {"type": "Pod", "max": {"cpu": "2"}},
        ])
    );
}
