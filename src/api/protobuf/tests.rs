//! Tests of the decoder against bodies captured from kubectl and hand-built edge cases.
//!
//! `fixtures/NAME.pb` is the body kubectl 1.32 POSTed for a command; `fixtures/NAME.json`
//! is the JSON body kubectl 1.31 POSTed for the same command (identical to 1.32's
//! `--dry-run=client -o json`). `autoscale_v2` is kubectl 1.33's, checked against its
//! dry-run output, as 1.31 creates autoscaling/v1 instead. `job_rich` and `csr_approve`
//! re-encode objects a capture server handed to kubectl (a CronJob, a CSR).

use serde_json::{Value, json};

use super::{Error, decode, is_envelope};

/// Decodes a fixture and compares with its JSON, key order included: the stored JSON
/// should be byte-for-byte what a JSON client would have sent.
fn check(pb: &[u8], json: &str) {
    let want: Value = serde_json::from_str(json).expect("fixture JSON parses");
    let got = decode(pb).expect("fixture decodes");
    assert_eq!(got, want);
    assert_eq!(
        serde_json::to_string(&got).ok(),
        serde_json::to_string(&want).ok(),
        "same keys, different order"
    );
}

macro_rules! fixtures {
    ($($test:ident: $name:literal,)*) => {$(
        #[test]
        fn $test() {
            check(
                include_bytes!(concat!("fixtures/", $name, ".pb")),
                include_str!(concat!("fixtures/", $name, ".json")),
            );
        }
    )*};
}

fixtures! {
    create_namespace_decodes_to_the_json_kubectl_sends: "namespace",
    create_configmap_decodes_to_the_json_kubectl_sends: "configmap",
    create_secret_generic_decodes_data_as_base64: "secret",
    create_secret_docker_registry_decodes_to_the_json_kubectl_sends: "docker",
    create_deployment_with_replicas_and_port_decodes_to_the_json_kubectl_sends: "deployment",
    create_deployment_with_zero_replicas_keeps_replicas_zero: "deployment0",
    create_deployment_with_two_images_decodes_both_containers: "deploy_multi",
    create_service_clusterip_decodes_int_target_ports: "service_clusterip",
    create_service_nodeport_decodes_to_the_json_kubectl_sends: "service_nodeport",
    create_service_loadbalancer_decodes_to_the_json_kubectl_sends: "svc_lb",
    create_service_externalname_decodes_to_the_json_kubectl_sends: "svc_ext",
    create_job_with_a_command_decodes_to_the_json_kubectl_sends: "job",
    create_job_from_a_cronjob_decodes_owner_references_and_annotations: "job_from",
    create_cronjob_decodes_its_job_template: "cronjob",
    create_quota_decodes_quantities_and_scopes: "quota",
    create_role_decodes_its_rules: "role",
    create_rolebinding_decodes_its_subjects: "rolebinding",
    create_clusterrole_decodes_non_resource_urls: "clusterrole",
    create_clusterrole_with_an_aggregation_rule_decodes_rules_as_null: "clusterrole_agg",
    create_clusterrolebinding_decodes_to_the_json_kubectl_sends: "clusterrolebinding",
    create_serviceaccount_decodes_to_the_json_kubectl_sends: "serviceaccount",
    create_pdb_with_a_percentage_decodes_a_string_int_or_string: "pdb",
    create_pdb_with_max_unavailable_decodes_an_int_int_or_string: "pdb_max",
    create_priorityclass_decodes_to_the_json_kubectl_sends: "priorityclass",
    create_ingress_decodes_rules_tls_and_the_default_backend: "ingress",
    create_token_decodes_null_audiences_and_a_null_expiration: "token",
    create_token_bound_to_a_pod_decodes_uid_by_its_json_name: "token_bound",
    autoscale_decodes_an_autoscaling_v1_hpa: "autoscale",
    autoscale_of_kubectl_1_33_decodes_an_autoscaling_v2_hpa: "autoscale_v2",
    auth_can_i_decodes_a_resource_access_review: "canI",
    auth_can_i_with_a_subresource_decodes_it: "canI_sub",
    auth_can_i_on_a_url_decodes_non_resource_attributes: "canI_nonres",
    auth_can_i_list_decodes_a_rules_review: "canI_list",
    auth_whoami_decodes_a_self_subject_review: "whoami",
    // kubectl copies the served CronJob's template: a PodSpec with volumes, probes, env
    // sources, affinity, quantities, security contexts… (inline structs and all).
    create_job_from_a_rich_cronjob_decodes_the_whole_pod_spec: "job_rich",
    // kubectl PUTs back the served CSR: server-set metadata, managedFields, times, extra.
    certificate_approve_decodes_server_metadata_times_and_managed_fields: "csr_approve",
}

// ---- a minimal encoder for hand-built bodies ----

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint field.
fn v(tag: u32, value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(&mut out, u64::from(tag) << 3);
    varint(&mut out, value);
    out
}

/// A length-delimited field (string, bytes, message).
fn b(tag: u32, value: impl AsRef<[u8]>) -> Vec<u8> {
    let value = value.as_ref();
    let mut out = Vec::new();
    varint(&mut out, u64::from(tag) << 3 | 2);
    varint(&mut out, value.len() as u64);
    out.extend_from_slice(value);
    out
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = cat(&[b(1, api_version), b(2, kind)]);
    cat(&[
        b"k8s\x00".to_vec(),
        b(1, type_meta),
        b(2, raw),
        b(3, ""),
        b(4, ""),
    ])
}

fn meta(name: &str) -> Vec<u8> {
    b(1, cat(&[b(1, name)]))
}

// ---- envelope ----

#[test]
fn the_magic_prefix_marks_an_envelope() {
    assert!(is_envelope(b"k8s\x00"));
    assert!(!is_envelope(b"k8s"));
    assert!(!is_envelope(b"{\"kind\":\"Pod\"}"));
    assert!(matches!(decode(b"{}"), Err(Error::NotEnvelope)));
}

#[test]
fn an_unknown_kind_is_an_error_naming_it() {
    let body = envelope("example.com/v1", "Widget", &[]);
    let err = decode(&body).expect_err("no schema");
    assert!(matches!(err, Error::UnknownKind { .. }));
    assert_eq!(
        err.to_string(),
        "no protobuf schema for kind \"Widget\" of apiVersion \"example.com/v1\""
    );
}

#[test]
fn meta_kinds_decode_under_any_group_version() {
    // gracePeriodSeconds is a pointer: 0 is kept; dryRun is an omitempty slice.
    let raw = cat(&[v(1, 0), b(4, "Foreground")]);
    let got = decode(&envelope("apps/v1", "DeleteOptions", &raw)).expect("decodes");
    assert_eq!(
        got,
        json!({"kind": "DeleteOptions", "apiVersion": "apps/v1",
               "gracePeriodSeconds": 0, "propagationPolicy": "Foreground"})
    );
}

#[test]
fn an_eviction_carries_its_delete_options() {
    // Eviction{metadata = 1, deleteOptions = 2 {gracePeriodSeconds = 1, preconditions = 2 {uid = 1}}}
    let options = b(2, cat(&[v(1, 30), b(2, b(1, "u1"))]));
    let raw = cat(&[b(1, cat(&[b(1, "p"), b(3, "default")])), options]);
    let got = decode(&envelope("policy/v1", "Eviction", &raw)).expect("decodes");
    assert_eq!(
        got,
        json!({"kind": "Eviction", "apiVersion": "policy/v1",
               "metadata": {"name": "p", "namespace": "default", "creationTimestamp": null},
               "deleteOptions": {"gracePeriodSeconds": 30, "preconditions": {"uid": "u1"}}})
    );
}

// ---- malformed input ----

#[test]
fn every_truncation_of_every_fixture_returns_without_panicking() {
    for body in [
        &include_bytes!("fixtures/deployment.pb")[..],
        include_bytes!("fixtures/ingress.pb"),
        include_bytes!("fixtures/autoscale_v2.pb"),
    ] {
        for cut in 0..body.len() {
            let _ = decode(&body[..cut]);
        }
    }
}

#[test]
fn random_byte_changes_return_without_panicking() {
    // xorshift: deterministic, no dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for body in [
        &include_bytes!("fixtures/job_rich.pb")[..],
        include_bytes!("fixtures/csr_approve.pb"),
    ] {
        for _ in 0..1000 {
            let mut body = body.to_vec();
            for _ in 0..1 + next() % 4 {
                let at = (next() % body.len() as u64) as usize;
                body[at] = next() as u8;
            }
            let _ = decode(&body);
        }
    }
}

#[test]
fn a_body_cut_inside_the_object_is_a_truncation_error() {
    let body = include_bytes!("fixtures/deployment.pb");
    // kubectl ends the envelope with the object (`raw`) and then the empty contentEncoding
    // and contentType; a cut anywhere in the object leaves its length pointing past the end.
    let end_of_raw = body.len() - 4;
    assert_eq!(body[end_of_raw..], [0x1a, 0, 0x22, 0]);
    for cut in end_of_raw - 150..end_of_raw {
        assert!(
            matches!(decode(&body[..cut]), Err(Error::Truncated)),
            "cut at {cut}"
        );
    }
}

#[test]
fn a_known_field_with_the_wrong_wire_type_is_an_error() {
    let raw = cat(&[b(1, cat(&[v(1, 5)]))]); // metadata.name as a varint
    let err = decode(&envelope("v1", "Namespace", &raw)).expect_err("wrong type");
    assert!(matches!(
        err,
        Error::WrongWireType {
            field: 1,
            got: 0,
            expected: 2
        }
    ));
}

#[test]
fn invalid_embedded_json_is_an_error() {
    let raw = cat(&[meta("r"), b(2, b(1, "{not json"))]);
    let err = decode(&envelope("apps/v1", "ControllerRevision", &raw)).expect_err("bad JSON");
    assert!(matches!(err, Error::EmbeddedJson(_)));
}

// ---- field semantics ----

#[test]
fn unknown_fields_of_every_wire_type_are_skipped() {
    let group = [0xab, 0x06, 0x08, 0x01, 0xac, 0x06]; // field 101: group {1: varint 1}
    let raw = cat(&[
        v(90, 7),
        meta("demo"),
        b(91, "from a newer kubectl"),
        vec![0xdd, 0x05, 1, 2, 3, 4],             // field 91 fixed32
        vec![0xe1, 0x05, 1, 2, 3, 4, 5, 6, 7, 8], // field 92 fixed64
        group.to_vec(),
    ]);
    let got = decode(&envelope("v1", "Namespace", &raw)).expect("decodes");
    // Unset non-pointer structs print as Go prints them: {} and creationTimestamp null.
    assert_eq!(
        got,
        json!({"kind": "Namespace", "apiVersion": "v1",
               "metadata": {"name": "demo", "creationTimestamp": null},
               "spec": {}, "status": {}})
    );
}

#[test]
fn omitempty_scalars_sent_empty_are_left_out_and_pointer_scalars_are_kept() {
    // ObjectMeta: name "x", generateName "" (omitempty), generation 0 (omitempty).
    let metadata = b(1, cat(&[b(1, "x"), b(2, ""), v(7, 0)]));
    // DeploymentSpec: replicas 0 (*int32), paused false (omitempty bool).
    let spec = b(2, cat(&[v(1, 0), v(7, 0)]));
    let got = decode(&envelope("apps/v1", "Deployment", &cat(&[metadata, spec]))).expect("ok");
    assert_eq!(
        got["metadata"],
        json!({"name": "x", "creationTimestamp": null})
    );
    assert_eq!(got["spec"]["replicas"], json!(0));
    assert!(got["spec"].get("paused").is_none());
    // selector is a pointer without omitempty: null; template and strategy are structs.
    assert_eq!(got["spec"]["selector"], Value::Null);
    assert_eq!(got["spec"]["strategy"], json!({}));
}

#[test]
fn times_micro_times_and_managed_fields_print_as_json() {
    let time = cat(&[v(1, 1_795_460_400), v(2, 250_000_000)]);
    let managed = cat(&[
        b(1, "kubectl"),
        b(2, "Update"),
        b(3, "apps/v1"),
        b(4, time.clone()),
        b(6, "FieldsV1"),
        b(7, b(1, r#"{"f:spec":{}}"#)),
    ]);
    let metadata = b(1, cat(&[b(1, "l"), b(8, time.clone()), b(17, managed)]));
    let spec = b(2, cat(&[b(1, "me"), v(2, 15), b(3, time)]));
    let got = decode(&envelope(
        "coordination.k8s.io/v1",
        "Lease",
        &cat(&[metadata, spec]),
    ));
    let got = got.expect("decodes");
    assert_eq!(
        got["metadata"]["creationTimestamp"],
        json!("2026-11-23T19:00:00Z")
    );
    assert_eq!(
        got["metadata"]["managedFields"],
        json!([{"manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1",
                "time": "2026-11-23T19:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {}}}])
    );
    assert_eq!(
        got["spec"],
        json!({"holderIdentity": "me", "leaseDurationSeconds": 15,
               "acquireTime": "2026-11-23T19:00:00.250000Z"})
    );
}

#[test]
fn inline_structs_put_their_fields_beside_the_parents() {
    // Volume{name, volumeSource{configMap{localObjectReference{name}, defaultMode}}}
    let config_map = cat(&[b(1, b(1, "cm")), v(3, 420)]);
    let volume = cat(&[b(1, "v"), b(2, b(19, config_map))]);
    let container = cat(&[b(1, "c"), b(2, "img")]);
    let spec = b(2, cat(&[b(1, volume), b(2, container)]));
    let got = decode(&envelope("v1", "Pod", &cat(&[meta("p"), spec]))).expect("decodes");
    assert_eq!(
        got["spec"]["volumes"],
        json!([{"name": "v", "configMap": {"name": "cm", "defaultMode": 420}}])
    );
    assert_eq!(
        got["spec"]["containers"],
        json!([{"name": "c", "image": "img", "resources": {}}])
    );
}

#[test]
fn packed_and_unpacked_repeated_integers_both_decode() {
    let packed = b(4, [1, 2]); // PodSecurityContext.supplementalGroups = 4
    let unpacked = cat(&[v(4, 3)]);
    let spec = b(2, b(14, cat(&[packed, unpacked])));
    let got = decode(&envelope("v1", "Pod", &cat(&[meta("p"), spec]))).expect("decodes");
    assert_eq!(
        got["spec"]["securityContext"]["supplementalGroups"],
        json!([1, 2, 3])
    );
}

#[test]
fn a_repeated_message_field_merges_like_protobuf() {
    let raw = cat(&[b(1, b(1, "x")), b(1, b(11, cat(&[b(1, "k"), b(2, "v")])))]);
    let got = decode(&envelope("v1", "ConfigMap", &raw)).expect("decodes");
    assert_eq!(
        got["metadata"],
        json!({"name": "x", "creationTimestamp": null, "labels": {"k": "v"}})
    );
}

#[test]
fn raw_extensions_hold_json_or_a_nested_envelope() {
    let inner = envelope("v1", "ConfigMap", &meta("nested"));
    for (data, want) in [
        (
            br#"{"spec":{"replicas":1}}"#.to_vec(),
            json!({"spec": {"replicas": 1}}),
        ),
        (
            inner,
            json!({"kind": "ConfigMap", "apiVersion": "v1",
                   "metadata": {"name": "nested", "creationTimestamp": null}}),
        ),
    ] {
        let raw = cat(&[meta("r"), b(2, b(1, data)), v(3, 2)]);
        let got = decode(&envelope("apps/v1", "ControllerRevision", &raw)).expect("decodes");
        assert_eq!(got["data"], want);
        assert_eq!(got["revision"], json!(2));
    }
}

#[test]
fn string_list_maps_and_quantity_maps_decode() {
    // SubjectAccessReviewSpec.extra = 5: map<string, ExtraValue{items = 1}>.
    let extra = b(
        5,
        cat(&[b(1, "scopes"), b(2, cat(&[b(1, "a"), b(1, "b")]))]),
    );
    let spec = b(2, cat(&[b(3, "alice"), extra]));
    let got = decode(&envelope(
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        &spec,
    ));
    let got = got.expect("decodes");
    assert_eq!(
        got["spec"],
        json!({"user": "alice", "extra": {"scopes": ["a", "b"]}})
    );
    assert_eq!(got["status"], json!({"allowed": false}));
}

#[test]
fn events_v1_event_time_is_a_micro_time() {
    let time = cat(&[v(1, 1_795_460_400), v(2, 1_000)]);
    let raw = cat(&[meta("e"), b(2, time), b(4, "kubelet"), b(7, "Started")]);
    let got = decode(&envelope("events.k8s.io/v1", "Event", &raw)).expect("decodes");
    assert_eq!(got["eventTime"], json!("2026-11-23T19:00:00.000001Z"));
    assert_eq!(got["reportingController"], json!("kubelet"));
    assert_eq!(got["reason"], json!("Started"));
    // deprecatedFirstTimestamp is a non-pointer Time: null when unset.
    assert_eq!(got["deprecatedFirstTimestamp"], Value::Null);
}
