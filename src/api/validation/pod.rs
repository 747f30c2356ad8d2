//! PodSpec validation shared by Pods and every pod template: containers, ports, env, volumes, mounts, probes, resources.

use super::container::{validate_container_common, validate_handler, validate_probe};
use super::errors::{FieldError, Path};
use super::meta::{validate_annotations, validate_labels};
use super::names::{self, NameRule, check_name};
use super::{arr, int, s};
use serde_json::Value;

/// Whether the spec belongs to a Pod itself (stricter) or to a template.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SpecOf {
    Pod,
    Template,
}

/// Volume sources in the order `validateVolumeSource` checks them. The second
/// and later present sources are rejected under their own name (the Go code
/// spells downwardAPI's path "downwarAPI", kept for identical messages).
const VOLUME_SOURCES: [(&str, &str); 30] = [
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
];

const FILE_MODE_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// `ValidatePodTemplateSpec`: template metadata labels/annotations, then the spec.
pub fn validate_template(template: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let meta = template.get("metadata").unwrap_or(&Value::Null);
    errs.extend(validate_labels(
        meta.get("labels"),
        &path.child("metadata").child("labels"),
    ));
    errs.extend(validate_annotations(
        meta.get("annotations"),
        &path.child("metadata").child("annotations"),
    ));
    let spec = template.get("spec").unwrap_or(&Value::Null);
    errs.extend(validate_pod_spec(
        spec,
        &path.child("spec"),
        SpecOf::Template,
    ));
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// `ValidatePodSpec` (plus the pod-only image whitespace rule).
pub fn validate_pod_spec(spec: &Value, path: &Path, of: SpecOf) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec
        .get("terminationGracePeriodSeconds")
        .is_none_or(Value::is_null)
    {
        errs.push(FieldError::required(
            path.child("terminationGracePeriodSeconds"),
            "",
        ));
    }
    let (volumes, vol_errs) = validate_volumes(arr(spec, "volumes"), &path.child("volumes"));
    errs.extend(vol_errs);
    let containers = arr(spec, "containers");
    errs.extend(validate_containers(
        containers,
        &volumes,
        &path.child("containers"),
        &[],
    ));
    // Init container names must also differ from the regular ones.
    let regular: Vec<&str> = containers.iter().map(|c| s(c, "name")).collect();
    errs.extend(validate_containers(
        arr(spec, "initContainers"),
        &volumes,
        &path.child("initContainers"),
        &regular,
    ));
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for (i, c) in containers.iter().enumerate() {
            for (j, p) in arr(c, "ports").iter().enumerate() {
                let (hp, cp) = (
                    int(p, "hostPort").unwrap_or(0),
                    int(p, "containerPort").unwrap_or(0),
                );
                if (of == SpecOf::Pod || hp != 0) && hp != cp {
                    let f = path
                        .child("containers")
                        .index(i)
                        .child("ports")
                        .index(j)
                        .child("hostPort");
                    errs.push(FieldError::invalid(
                        f,
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }
    errs.extend(enum_field(
        spec,
        "restartPolicy",
        path,
        &["Always", "OnFailure", "Never"],
    ));
    errs.extend(enum_field(
        spec,
        "dnsPolicy",
        path,
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    ));
    errs.extend(validate_labels(
        spec.get("nodeSelector"),
        &path.child("nodeSelector"),
    ));
    if let Some(sc) = spec.get("securityContext") {
        for key in ["runAsUser", "runAsGroup", "fsGroup"] {
            errs.extend(id_range(sc, key, &path.child("securityContext")));
        }
    }
    if s(spec, "dnsPolicy") == "None" && spec.get("dnsConfig").is_none_or(Value::is_null) {
        errs.push(FieldError::required(
            path.child("dnsConfig"),
            "must provide `dnsConfig` when `dnsPolicy` is None",
        ));
    }
    for (key, rule) in [
        ("serviceAccountName", NameRule::Subdomain),
        ("nodeName", NameRule::Subdomain),
    ] {
        let v = s(spec, key);
        if !v.is_empty() {
            for msg in check_name(rule, v, false) {
                errs.push(FieldError::invalid(path.child(key), v, msg));
            }
        }
    }
    if let Some(ads) =
        int(spec, "activeDeadlineSeconds").filter(|v| !(1..=i64::from(i32::MAX)).contains(v))
    {
        errs.push(FieldError::invalid(
            path.child("activeDeadlineSeconds"),
            ads,
            names::inclusive_range_error(1, i64::from(i32::MAX)),
        ));
    }
    for key in ["hostname", "subdomain"] {
        let v = s(spec, key);
        if !v.is_empty() {
            for msg in names::dns1123_label(v) {
                errs.push(FieldError::invalid(path.child(key), v, msg));
            }
        }
    }
    errs.extend(validate_tolerations(
        arr(spec, "tolerations"),
        &path.child("tolerations"),
    ));
    let pcn = s(spec, "priorityClassName");
    if !pcn.is_empty() {
        for msg in names::dns1123_subdomain(pcn) {
            errs.push(FieldError::invalid(
                path.child("priorityClassName"),
                pcn,
                msg,
            ));
        }
    }
    if spec.get("preemptionPolicy").is_some_and(|v| !v.is_null()) {
        errs.extend(enum_field(
            spec,
            "preemptionPolicy",
            path,
            &["PreemptLowerPriority", "Never"],
        ));
    }
    if of == SpecOf::Pod {
        for list in ["containers", "initContainers"] {
            for (i, c) in arr(spec, list).iter().enumerate() {
                let image = s(c, "image");
                if image.trim() != image {
                    errs.push(FieldError::invalid(
                        path.child(list).index(i).child("image"),
                        image,
                        "must not have leading or trailing whitespace",
                    ));
                }
            }
        }
    }
    errs
}

/// A required enum: empty is Required, anything else outside the list NotSupported.
pub fn enum_field(v: &Value, key: &str, path: &Path, valid: &[&str]) -> Vec<FieldError> {
    let value = s(v, key);
    if value.is_empty() {
        vec![FieldError::required(path.child(key), "")]
    } else if !valid.contains(&value) {
        vec![FieldError::not_supported(path.child(key), value, valid)]
    } else {
        Vec::new()
    }
}

pub fn id_range(sc: &Value, key: &str, path: &Path) -> Vec<FieldError> {
    match int(sc, key) {
        Some(id) if !(0..=i64::from(i32::MAX)).contains(&id) => {
            vec![FieldError::invalid(
                path.child(key),
                id,
                names::inclusive_range_error(0, i64::from(i32::MAX)),
            )]
        }
        _ => Vec::new(),
    }
}

/// `ValidateVolumes`: returns the names of the volumes that validated, which
/// mounts may reference (a broken volume makes its mounts NotFound too).
fn validate_volumes(volumes: &[Value], path: &Path) -> (Vec<String>, Vec<FieldError>) {
    let mut ok_names: Vec<String> = Vec::new();
    let mut errs = Vec::new();
    for (i, vol) in volumes.iter().enumerate() {
        let p = path.index(i);
        let mut el = validate_volume_source(vol, &p);
        let name = s(vol, "name");
        if name.is_empty() {
            el.push(FieldError::required(p.child("name"), ""));
        } else {
            el.extend(
                names::dns1123_label(name)
                    .into_iter()
                    .map(|m| FieldError::invalid(p.child("name"), name, m)),
            );
        }
        if ok_names.iter().any(|n| n == name) {
            el.push(FieldError::duplicate(p.child("name"), name));
        }
        if el.is_empty() {
            ok_names.push(name.to_string());
        } else {
            errs.extend(el);
        }
    }
    (ok_names, errs)
}

fn validate_volume_source(vol: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut count = 0;
    for (key, err_name) in VOLUME_SOURCES {
        let Some(src) = vol.get(key).filter(|v| !v.is_null()) else {
            continue;
        };
        if count > 0 {
            errs.push(FieldError::forbidden(
                path.child(err_name),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        count += 1;
        let p = path.child(key);
        let required = |field: &str| {
            (s(src, field).is_empty()).then(|| FieldError::required(p.child(field), ""))
        };
        match key {
            "hostPath" => errs.extend(required("path")),
            "secret" => errs.extend(required("secretName")),
            "configMap" => errs.extend(required("name")),
            "persistentVolumeClaim" => errs.extend(required("claimName")),
            "nfs" => {
                errs.extend(required("server"));
                errs.extend(required("path"));
                if !s(src, "path").starts_with('/') {
                    errs.push(FieldError::invalid(
                        p.child("path"),
                        s(src, "path"),
                        "must be an absolute path",
                    ));
                }
            }
            _ => {}
        }
        if let Some(mode) = int(src, "defaultMode").filter(|m| !(0..=0o777).contains(m)) {
            errs.push(FieldError::invalid(
                p.child("defaultMode"),
                mode,
                FILE_MODE_MSG,
            ));
        }
        for (j, item) in arr(src, "items").iter().enumerate() {
            let ip = p.child("items").index(j);
            // downwardAPI items name a field, not a key.
            let required: &[&str] = if key == "downwardAPI" {
                &["path"]
            } else {
                &["key", "path"]
            };
            for &f in required {
                if s(item, f).is_empty() {
                    errs.push(FieldError::required(ip.child(f), ""));
                }
            }
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    errs
}

/// `validateContainers`, or `validateInitContainers` when `regular` holds the
/// names of the regular containers.
fn validate_containers<'a>(
    containers: &'a [Value],
    volumes: &[String],
    path: &Path,
    regular: &[&'a str],
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let init = path.as_str().ends_with("initContainers");
    if containers.is_empty() {
        if !init {
            errs.push(FieldError::required(path, ""));
        }
        return errs;
    }
    let mut seen: Vec<&str> = regular.to_vec();
    for (i, c) in containers.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(c, volumes, &p));
        let name = s(c, "name");
        if seen.contains(&name) {
            errs.push(FieldError::duplicate(p.child("name"), name));
        } else if !name.is_empty() || !init {
            seen.push(name);
        }
        let restartable = s(c, "restartPolicy") == "Always";
        if init && !restartable {
            for key in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if c.get(key).is_some_and(|v| !v.is_null()) {
                    errs.push(FieldError::forbidden(
                        p.child(key),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        } else {
            if let Some(lc) = c.get("lifecycle") {
                for hook in ["postStart", "preStop"] {
                    if let Some(h) = lc.get(hook).filter(|v| !v.is_null()) {
                        errs.extend(validate_handler(h, &p.child("lifecycle").child(hook)));
                    }
                }
            }
            for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
                if let Some(probe) = c.get(key).filter(|v| !v.is_null()) {
                    errs.extend(validate_probe(probe, key, &p.child(key)));
                }
            }
        }
        if !init && c.get("restartPolicy").is_some_and(|v| !v.is_null()) {
            errs.push(FieldError::forbidden(
                p.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        } else if init && !restartable && !s(c, "restartPolicy").is_empty() {
            errs.push(FieldError::not_supported(
                p.child("restartPolicy"),
                s(c, "restartPolicy"),
                &["Always"],
            ));
        }
    }
    // Host ports may not collide across the (regular) containers.
    let mut host_ports: Vec<String> = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        if init {
            host_ports.clear();
        }
        for (j, port) in arr(c, "ports").iter().enumerate() {
            let hp = int(port, "hostPort").unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!("{}/{}/{}", s(port, "protocol"), s(port, "hostIP"), hp);
            if host_ports.contains(&key) {
                errs.push(FieldError::duplicate(
                    path.index(i).child("ports").index(j).child("hostPort"),
                    key,
                ));
            } else {
                host_ports.push(key);
            }
        }
    }
    errs
}

fn validate_tolerations(tolerations: &[Value], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, t) in tolerations.iter().enumerate() {
        let p = path.index(i);
        let (key, op, effect) = (s(t, "key"), s(t, "operator"), s(t, "effect"));
        if !key.is_empty() {
            errs.extend(
                names::qualified_name(key)
                    .into_iter()
                    .map(|m| FieldError::invalid(p.child("key"), key, m)),
            );
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                p.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.get("tolerationSeconds").is_some_and(|v| !v.is_null()) && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = s(t, "value");
        match op {
            "Equal" | "" => {
                let msgs = names::label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        p.child("operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" if !value.is_empty() => errs.push(FieldError::invalid(
                p.child("operator"),
                value,
                "value must be empty when `operator` is 'Exists'",
            )),
            "Exists" => {}
            other => errs.push(FieldError::not_supported(
                p.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
        {
            errs.push(FieldError::not_supported(
                p.child("effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}
