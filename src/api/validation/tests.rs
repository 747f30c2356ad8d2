//! Unit tests for validation, named as sentences, comparing against Kubernetes 1.36's exact texts.

use super::*;
use crate::api::defaults::apply_defaults;
use crate::api::quantity::Quantity;
use serde_json::{Value, json};

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn texts(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

/// Defaults then validates a create, like the registry does.
fn create(group: &str, kind: &str, mut obj: Value) -> Vec<String> {
    apply_defaults(group, "v1", kind, &mut obj);
    texts(&validate(group, kind, &obj, None))
}

fn update(group: &str, kind: &str, mut new: Value, mut old: Value) -> Vec<String> {
    apply_defaults(group, "v1", kind, &mut new);
    apply_defaults(group, "v1", kind, &mut old);
    texts(&validate(group, kind, &new, Some(&old)))
}

fn deployment(selector: Value, template_labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": template_labels}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
        }
    })
}

fn pod(containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": containers}})
}

#[test]
fn a_configmap_named_bad_name_gives_the_exact_message() {
    let cm = json!({"metadata": {"name": "Bad_Name", "namespace": "default"}, "data": {"a": "b"}});
    let errs = validate("", "ConfigMap", &cm, None);
    assert_eq!(
        texts(&errs),
        vec![format!(
            "metadata.name: Invalid value: \"Bad_Name\": {SUBDOMAIN_MSG}"
        )]
    );
    assert_eq!(errs[0].reason(), "FieldValueInvalid");
    assert_eq!(
        errs[0].body(),
        format!("Invalid value: \"Bad_Name\": {SUBDOMAIN_MSG}")
    );
    assert_eq!(
        invalid_message("", "ConfigMap", "Bad_Name", &errs),
        format!(
            "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": {SUBDOMAIN_MSG}"
        )
    );
}

#[test]
fn a_two_mib_configmap_is_too_long_with_the_exact_text() {
    let big = "x".repeat(2 * 1024 * 1024);
    let cm = json!({"metadata": {"name": "big", "namespace": "default"}, "data": {"blob": big}});
    let errs = validate("", "ConfigMap", &cm, None);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].kind, ErrorKind::TooLong);
    assert_eq!(errs[0].reason(), "FieldValueTooLong");
    assert_eq!(
        errs[0].to_string(),
        "[]: Too long: may not be more than 1048576 bytes"
    );
}

#[test]
fn a_deployment_whose_selector_does_not_match_its_template_gives_the_real_message() {
    let errs = create(
        "apps",
        "Deployment",
        deployment(json!({"app": "web"}), json!({"tier": "x", "app": "x"})),
    );
    assert_eq!(
        errs,
        vec![
            "spec.template.metadata.labels: Invalid value: {\"app\":\"x\",\"tier\":\"x\"}: `selector` does not match template `labels`"
        ]
    );
}

#[test]
fn a_deployment_without_a_selector_is_required_and_mismatched() {
    let mut d = deployment(json!({}), json!({"app": "x"}));
    d["spec"].as_object_mut().map(|s| s.remove("selector"));
    let errs = create("apps", "Deployment", d);
    assert_eq!(
        errs,
        vec![
            "spec.selector: Required value",
            "spec.template.metadata.labels: Invalid value: {\"app\":\"x\"}: `selector` does not match template `labels`"
        ]
    );
}

#[test]
fn a_deployment_selector_cannot_change_on_update() {
    let errs = update(
        "apps",
        "Deployment",
        deployment(json!({"app": "y"}), json!({"app": "y"})),
        deployment(json!({"app": "x"}), json!({"app": "x"})),
    );
    assert_eq!(
        errs,
        vec!["spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"y\"}}: field is immutable"]
    );
}

#[test]
fn a_service_named_web_with_a_capital_fails_dns_1035() {
    let svc = json!({"metadata": {"name": "Web", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}});
    let errs = create("", "Service", svc);
    assert_eq!(
        errs,
        vec![
            "metadata.name: Invalid value: \"Web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
        ]
    );
}

#[test]
fn a_namespace_named_a_dot_b_fails_the_dns_1123_label_rule() {
    let errs = create("", "Namespace", json!({"metadata": {"name": "a.b"}}));
    assert_eq!(
        errs,
        vec!["metadata.name: Invalid value: \"a.b\": must not contain dots"]
    );
    assert_eq!(
        validate_name("", "Namespace", "a.b"),
        vec!["must not contain dots"]
    );
}

#[test]
fn a_label_value_over_63_characters_is_rejected() {
    let long = "a".repeat(64);
    let cm = json!({"metadata": {"name": "c", "namespace": "default", "labels": {"app": long}}});
    let errs = texts(&validate("", "ConfigMap", &cm, None));
    assert_eq!(
        errs,
        vec![format!(
            "metadata.labels: Invalid value: \"{long}\": must be no more than 63 bytes"
        )]
    );
}

#[test]
fn a_bad_label_key_reports_the_name_part() {
    let cm = json!({"metadata": {"name": "c", "namespace": "default", "labels": {"-x": "ok"}}});
    let errs = texts(&validate("", "ConfigMap", &cm, None));
    assert_eq!(
        errs,
        vec![
            "metadata.labels: Invalid value: \"-x\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        ]
    );
}

#[test]
fn invalid_message_prints_one_error_bare_and_several_in_brackets() {
    let one = vec![FieldError::required("spec.containers", "")];
    assert_eq!(
        invalid_message("", "Pod", "p", &one),
        "Pod \"p\" is invalid: spec.containers: Required value"
    );
    let several = vec![
        FieldError::required("spec.selector", ""),
        FieldError::invalid("spec.replicas", -1, "must be greater than or equal to 0"),
        FieldError::required("spec.selector", ""),
    ];
    assert_eq!(
        invalid_message("apps", "Deployment", "web", &several),
        "Deployment.apps \"web\" is invalid: [spec.selector: Required value, spec.replicas: Invalid value: -1: must be greater than or equal to 0]"
    );
    assert_eq!(invalid_message("", "Pod", "p", &[]), "Pod \"p\" is invalid");
}

#[test]
fn the_invalid_status_carries_one_cause_per_error() {
    let errs = vec![FieldError::not_supported(
        "spec.restartPolicy",
        "Sometimes",
        &["Always", "OnFailure", "Never"],
    )];
    let status = invalid_status("", "Pod", "p", &errs);
    assert_eq!(status["code"], 422);
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "FieldValueNotSupported"
    );
    assert_eq!(
        status["details"]["causes"][0]["field"],
        "spec.restartPolicy"
    );
    assert_eq!(
        status["details"]["causes"][0]["message"],
        "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
    );
    assert!(status["details"].get("group").is_none());
}

#[test]
fn a_pod_without_containers_needs_them() {
    assert_eq!(
        create("", "Pod", pod(json!([]))),
        vec!["spec.containers: Required value"]
    );
}

#[test]
fn a_pod_container_needs_a_label_name_unique_names_and_an_image() {
    let errs = create(
        "",
        "Pod",
        pod(json!([{"name": "Web", "image": "nginx"}, {"name": "Web"}])),
    );
    assert_eq!(
        errs[0],
        "spec.containers[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    );
    assert!(errs.contains(&"spec.containers[1].image: Required value".to_string()));
    assert!(errs.contains(&"spec.containers[1].name: Duplicate value: \"Web\"".to_string()));
}

#[test]
fn a_pod_restart_policy_outside_the_list_is_unsupported() {
    let mut p = pod(json!([{"name": "c", "image": "busybox"}]));
    p["spec"]["restartPolicy"] = json!("Sometimes");
    assert_eq!(
        create("", "Pod", p),
        vec![
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
        ]
    );
}

#[test]
fn a_volume_mount_must_name_an_existing_volume() {
    let p = pod(
        json!([{"name": "c", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]),
    );
    assert_eq!(
        create("", "Pod", p),
        vec!["spec.containers[0].volumeMounts[0].name: Not found: \"data\""]
    );
}

#[test]
fn duplicate_volume_names_are_reported() {
    let mut p = pod(json!([{"name": "c", "image": "busybox"}]));
    p["spec"]["volumes"] = json!([{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]);
    assert_eq!(
        create("", "Pod", p),
        vec!["spec.volumes[1].name: Duplicate value: \"v\""]
    );
}

#[test]
fn requests_above_limits_are_rejected_with_canonical_quantities() {
    let p = pod(
        json!([{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "2000m"}, "limits": {"cpu": "1"}}}]),
    );
    assert_eq!(
        create("", "Pod", p),
        vec![
            "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"
        ]
    );
}

#[test]
fn container_ports_must_be_in_range_and_use_a_known_protocol() {
    let p = pod(
        json!([{"name": "c", "image": "busybox", "ports": [{"containerPort": 70000, "protocol": "ICMP"}]}]),
    );
    assert_eq!(
        create("", "Pod", p),
        vec![
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
        ]
    );
}

#[test]
fn a_pod_update_may_only_change_images() {
    let old = pod(json!([{"name": "c", "image": "busybox:1"}]));
    let mut new = pod(json!([{"name": "c", "image": "busybox:2"}]));
    assert!(update("", "Pod", new.clone(), old.clone()).is_empty());
    new["spec"]["restartPolicy"] = json!("Never");
    let errs = update("", "Pod", new, old);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"), "{errs:?}");
}

#[test]
fn a_headless_service_needs_no_ports_but_a_plain_one_does() {
    let headless = json!({"metadata": {"name": "h", "namespace": "default"}, "spec": {"clusterIP": "None", "selector": {"a": "b"}}});
    assert!(create("", "Service", headless).is_empty());
    let plain = json!({"metadata": {"name": "s", "namespace": "default"}, "spec": {}});
    assert_eq!(
        create("", "Service", plain),
        vec!["spec.ports: Required value"]
    );
}

#[test]
fn service_ports_types_and_node_ports_are_checked() {
    let svc = json!({"metadata": {"name": "s", "namespace": "default"}, "spec": {"type": "NodePort", "ports": [{"port": 0, "nodePort": 80}]}});
    assert_eq!(
        create("", "Service", svc),
        vec![
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
        ]
    );
    let bad_type = json!({"metadata": {"name": "s", "namespace": "default"}, "spec": {"type": "Weird", "ports": [{"port": 80}]}});
    assert_eq!(
        create("", "Service", bad_type),
        vec![
            "spec.type: Unsupported value: \"Weird\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
        ]
    );
}

#[test]
fn a_service_cluster_ip_may_not_change_once_set() {
    let svc = |ip: &str| json!({"metadata": {"name": "s", "namespace": "default"}, "spec": {"clusterIP": ip, "ports": [{"port": 80}]}});
    assert_eq!(
        update("", "Service", svc("10.0.0.2"), svc("10.0.0.1")),
        vec!["spec.clusterIPs[0]: Invalid value: [\"10.0.0.2\"]: may not change once set"]
    );
    let mut omitted = svc("");
    omitted["spec"]
        .as_object_mut()
        .map(|s| s.remove("clusterIP"));
    assert!(update("", "Service", omitted, svc("10.0.0.1")).is_empty());
}

#[test]
fn metadata_name_and_namespace_are_immutable() {
    let cm = |name: &str| json!({"metadata": {"name": name, "namespace": "default", "resourceVersion": "1"}});
    assert_eq!(
        update("", "ConfigMap", cm("b"), cm("a")),
        vec!["metadata.name: Invalid value: \"b\": field is immutable"]
    );
}

#[test]
fn an_immutable_configmap_rejects_data_changes() {
    let old = json!({"metadata": {"name": "c", "namespace": "default"}, "immutable": true, "data": {"a": "1"}});
    let new = json!({"metadata": {"name": "c", "namespace": "default"}, "immutable": true, "data": {"a": "2"}});
    assert_eq!(
        update("", "ConfigMap", new, old),
        vec!["data: Forbidden: field is immutable when `immutable` is set"]
    );
}

#[test]
fn a_secret_type_is_immutable_and_its_data_keys_are_checked() {
    let s = |ty: &str| json!({"metadata": {"name": "s", "namespace": "default"}, "type": ty, "data": {"bad key": "eA=="}});
    let errs = update("", "Secret", s("kubernetes.io/tls"), s("Opaque"));
    assert_eq!(
        errs[0],
        "type: Invalid value: \"kubernetes.io/tls\": field is immutable"
    );
    assert!(errs.iter().any(|e| e.starts_with("data[bad key]: Invalid value: \"bad key\": a valid config key")));
    assert!(errs.contains(&"data[tls.crt]: Required value".to_string()));
}

#[test]
fn a_name_is_required_unless_generate_name_is_given() {
    let errs = create(
        "",
        "ConfigMap",
        json!({"metadata": {"namespace": "default"}}),
    );
    assert_eq!(
        errs,
        vec!["metadata.name: Required value: name or generateName is required"]
    );
    assert!(
        create(
            "",
            "ConfigMap",
            json!({"metadata": {"generateName": "web-", "namespace": "default"}})
        )
        .is_empty()
    );
}

#[test]
fn a_job_template_must_not_restart_always() {
    let job = json!({"metadata": {"name": "j", "namespace": "default", "uid": "u1"}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    assert_eq!(
        create("batch", "Job", job),
        vec![
            "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
        ]
    );
}

#[test]
fn a_cronjob_schedule_is_required_and_parsed() {
    let cj = |schedule: &str| json!({"metadata": {"name": "c", "namespace": "default"}, "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
    assert!(create("batch", "CronJob", cj("*/5 * * * *")).is_empty());
    assert_eq!(
        create("batch", "CronJob", cj("")),
        vec!["spec.schedule: Required value"]
    );
    assert_eq!(
        create("batch", "CronJob", cj("every day")),
        vec![
            "spec.schedule: Invalid value: \"every day\": expected exactly 5 fields, found 2: [every day]"
        ]
    );
    assert_eq!(
        create("batch", "CronJob", cj("61 * * * *")),
        vec![
            "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"
        ]
    );
}

#[test]
fn a_cronjob_time_zone_must_be_a_known_iana_name() {
    let cj = |tz: &str| json!({"metadata": {"name": "c", "namespace": "default"}, "spec": {"schedule": "0 9 * * *", "timeZone": tz, "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
    assert!(create("batch", "CronJob", cj("Europe/Berlin")).is_empty());
    assert!(create("batch", "CronJob", cj("Etc/UTC")).is_empty());
    assert_eq!(
        create("batch", "CronJob", cj("Mars/Olympus")),
        vec!["spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus"]
    );
    assert_eq!(
        create("batch", "CronJob", cj("europe/berlin")),
        vec!["spec.timeZone: Invalid value: \"europe/berlin\": unknown time zone europe/berlin"],
        "case matters, as for Go's LoadLocation"
    );
    assert_eq!(
        create("batch", "CronJob", cj("")),
        vec!["spec.timeZone: Invalid value: \"\": timeZone must be nil or non-empty string"]
    );
    assert_eq!(
        create("batch", "CronJob", cj("../etc/passwd")),
        vec!["spec.timeZone: Invalid value: \"../etc/passwd\": unknown time zone ../etc/passwd"]
    );
    assert_eq!(
        create("batch", "CronJob", cj("Local")),
        vec![
            "spec.timeZone: Invalid value: \"Local\": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
        ]
    );
}

#[test]
fn a_pvc_needs_access_modes_and_a_storage_request() {
    let pvc = json!({"metadata": {"name": "c", "namespace": "default"}, "spec": {}});
    assert_eq!(
        create("", "PersistentVolumeClaim", pvc),
        vec![
            "spec.accessModes: Required value: at least 1 access mode is required",
            "spec.resources[storage]: Required value"
        ]
    );
}

#[test]
fn a_claim_without_a_class_may_be_given_one_once_but_a_class_never_changes() {
    let claim = |class: Value| {
        let mut c = json!({"metadata": {"name": "c", "namespace": "default", "resourceVersion": "1"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        if !class.is_null() {
            c["spec"]["storageClassName"] = class;
        }
        c
    };
    assert!(
        update(
            "",
            "PersistentVolumeClaim",
            claim(json!("standard")),
            claim(Value::Null)
        )
        .is_empty()
    );
    let changed = update(
        "",
        "PersistentVolumeClaim",
        claim(json!("fast")),
        claim(json!("standard")),
    );
    assert_eq!(changed.len(), 1);
    assert!(
        changed[0].starts_with(
            "spec: Forbidden: spec is immutable after creation except resources.requests"
        ),
        "{changed:?}"
    );
    let classless = update(
        "",
        "PersistentVolumeClaim",
        claim(json!("standard")),
        claim(json!("")),
    );
    assert_eq!(classless.len(), 1, "\"\" chose no class: {classless:?}");
}

#[test]
fn an_hpa_max_must_not_be_below_min() {
    let hpa = json!({"metadata": {"name": "h", "namespace": "default"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 3, "maxReplicas": 2}});
    assert_eq!(
        create("autoscaling", "HorizontalPodAutoscaler", hpa),
        vec!["spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"]
    );
}

#[test]
fn an_ingress_path_needs_a_path_type() {
    let ing = json!({"metadata": {"name": "i", "namespace": "default"}, "spec": {"rules": [{"host": "a.example.com", "http": {"paths": [{"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
    assert_eq!(
        create("networking.k8s.io", "Ingress", ing),
        vec!["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"]
    );
}

#[test]
fn rbac_names_are_path_segments() {
    assert_eq!(
        validate_name("rbac.authorization.k8s.io", "ClusterRole", "system:Admin"),
        Vec::<String>::new()
    );
    assert_eq!(
        validate_name("rbac.authorization.k8s.io", "Role", "a/b"),
        vec!["may not contain '/'"]
    );
}

#[test]
fn statefulset_daemonset_and_replicaset_minimal_objects_are_valid_after_defaults() {
    let labels = json!({"app": "x"});
    for kind in ["StatefulSet", "DaemonSet", "ReplicaSet"] {
        let mut obj = deployment(labels.clone(), labels.clone());
        obj["kind"] = json!(kind);
        assert!(create("apps", kind, obj).is_empty(), "{kind}");
    }
}

#[test]
fn quantities_print_in_their_canonical_form() {
    let canon = |s: &str| Quantity::parse(s).map(|q| q.canonical());
    assert_eq!(canon("1000m").as_deref(), Some("1"));
    assert_eq!(canon("0.5").as_deref(), Some("500m"));
    assert_eq!(canon("2048Mi").as_deref(), Some("2Gi"));
    assert_eq!(canon("1.5Gi").as_deref(), Some("1536Mi"));
    assert_eq!(canon("2000").as_deref(), Some("2k"));
    assert_eq!(canon("abc"), None);
}

#[test]
fn go_json_escapes_html_characters_like_encoding_json() {
    assert_eq!(
        go_json(&json!({"a": "<b>&"})),
        "{\"a\":\"\\u003cb\\u003e\\u0026\"}"
    );
    assert_eq!(go_quote("tab\there"), "\"tab\\there\"");
}

#[test]
fn a_generate_name_may_end_in_a_dash_and_odd_bytes_do_not_panic() {
    assert!(names::check_name(NameRule::Subdomain, "web-", true).is_empty());
    assert!(!names::check_name(NameRule::Subdomain, "é-", true).is_empty());
}
