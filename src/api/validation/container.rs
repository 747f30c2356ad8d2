//! Single-container checks: name, image, ports, env, envFrom, volume mounts, probes and lifecycle hooks.

use super::errors::{FieldError, Path};
use super::meta::nonnegative;
use super::names::{self, NameRule, check_name};
use super::pod::{enum_field, id_range};
use super::resources::validate_resources;
use super::{arr, int, s};
use serde_json::Value;

const ENV_FIELD_PATHS: [&str; 9] = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// `validateContainerCommon`.
pub fn validate_container_common(c: &Value, volumes: &[String], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = s(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    } else {
        errs.extend(
            names::dns1123_label(name)
                .into_iter()
                .map(|m| FieldError::invalid(path.child("name"), name, m)),
        );
    }
    if s(c, "image").is_empty() {
        errs.push(FieldError::required(path.child("image"), ""));
    }
    errs.extend(enum_field(
        c,
        "terminationMessagePolicy",
        path,
        &["File", "FallbackToLogsOnError"],
    ));
    errs.extend(validate_ports(arr(c, "ports"), &path.child("ports")));
    errs.extend(validate_env(arr(c, "env"), &path.child("env")));
    errs.extend(validate_env_from(arr(c, "envFrom"), &path.child("envFrom")));
    errs.extend(validate_mounts(
        arr(c, "volumeMounts"),
        volumes,
        &path.child("volumeMounts"),
    ));
    errs.extend(enum_field(
        c,
        "imagePullPolicy",
        path,
        &["Always", "IfNotPresent", "Never"],
    ));
    errs.extend(validate_resources(
        c.get("resources"),
        &path.child("resources"),
    ));
    if let Some(sc) = c.get("securityContext") {
        for key in ["runAsUser", "runAsGroup"] {
            errs.extend(id_range(sc, key, &path.child("securityContext")));
        }
    }
    errs
}

fn validate_ports(ports: &[Value], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names_seen: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        let name = s(port, "name");
        if !name.is_empty() {
            let msgs = names::port_name(name);
            if !msgs.is_empty() {
                errs.extend(
                    msgs.into_iter()
                        .map(|m| FieldError::invalid(p.child("name"), name, m)),
                );
            } else if names_seen.contains(&name) {
                errs.push(FieldError::duplicate(p.child("name"), name));
            } else {
                names_seen.push(name);
            }
        }
        match int(port, "containerPort").unwrap_or(0) {
            0 => errs.push(FieldError::required(p.child("containerPort"), "")),
            cp => errs.extend(
                names::port_num(cp)
                    .into_iter()
                    .map(|m| FieldError::invalid(p.child("containerPort"), cp, m)),
            ),
        }
        let hp = int(port, "hostPort").unwrap_or(0);
        if hp != 0 {
            errs.extend(
                names::port_num(hp)
                    .into_iter()
                    .map(|m| FieldError::invalid(p.child("hostPort"), hp, m)),
            );
        }
        errs.extend(enum_field(port, "protocol", &p, &["SCTP", "TCP", "UDP"]));
    }
    errs
}

/// Env var names follow the relaxed rule (GA since 1.34): printable ASCII but '='.
fn relaxed_env_name(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.is_empty() {
        errs.push("environment variable name must be non-empty".to_string());
    }
    if v.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
        errs.push("a valid environment variable name must consist only of printable ASCII characters other than '='".to_string());
    }
    errs
}

fn validate_env(vars: &[Value], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ev) in vars.iter().enumerate() {
        let p = path.index(i);
        let name = s(ev, "name");
        if name.is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        } else {
            errs.extend(
                relaxed_env_name(name)
                    .into_iter()
                    .map(|m| FieldError::invalid(p.child("name"), name, m)),
            );
        }
        let Some(from) = ev.get("valueFrom").filter(|v| !v.is_null()) else {
            continue;
        };
        let fp = p.child("valueFrom");
        let mut sources = 0;
        if let Some(fr) = from.get("fieldRef").filter(|v| !v.is_null()) {
            sources += 1;
            let frp = fp.child("fieldRef");
            let field_path = s(fr, "fieldPath");
            if s(fr, "apiVersion").is_empty() {
                errs.push(FieldError::required(frp.child("apiVersion"), ""));
            } else if field_path.is_empty() {
                errs.push(FieldError::required(frp.child("fieldPath"), ""));
            } else if let Some((base, _)) = field_path.split_once('[') {
                if base != "metadata.labels" && base != "metadata.annotations" {
                    errs.push(FieldError::invalid(
                        &frp,
                        base,
                        "does not support subscript",
                    ));
                }
            } else if !ENV_FIELD_PATHS.contains(&field_path) {
                errs.push(FieldError::not_supported(
                    frp.child("fieldPath"),
                    field_path,
                    &ENV_FIELD_PATHS,
                ));
            }
        }
        if from.get("resourceFieldRef").is_some_and(|v| !v.is_null()) {
            sources += 1;
        }
        for key in ["configMapKeyRef", "secretKeyRef"] {
            let Some(r) = from.get(key).filter(|v| !v.is_null()) else {
                continue;
            };
            sources += 1;
            let rp = fp.child(key);
            let ref_name = s(r, "name");
            errs.extend(
                names::dns1123_subdomain(ref_name)
                    .into_iter()
                    .map(|m| FieldError::invalid(rp.child("name"), ref_name, m)),
            );
            let k = s(r, "key");
            if k.is_empty() {
                errs.push(FieldError::required(rp.child("key"), ""));
            } else {
                errs.extend(
                    names::config_map_key(k)
                        .into_iter()
                        .map(|m| FieldError::invalid(rp.child("key"), k, m)),
                );
            }
        }
        if sources == 0 {
            errs.push(FieldError::invalid(
                &fp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !s(ev, "value").is_empty() {
            errs.push(FieldError::invalid(
                &fp,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if sources > 1 {
            errs.push(FieldError::invalid(
                &fp,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn validate_env_from(sources: &[Value], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ev) in sources.iter().enumerate() {
        let p = path.index(i);
        let prefix = s(ev, "prefix");
        if !prefix.is_empty() {
            errs.extend(
                relaxed_env_name(prefix)
                    .into_iter()
                    .map(|m| FieldError::invalid(p.child("prefix"), prefix, m)),
            );
        }
        let mut count = 0;
        for key in ["configMapRef", "secretRef"] {
            let Some(r) = ev.get(key).filter(|v| !v.is_null()) else {
                continue;
            };
            count += 1;
            let name = s(r, "name");
            if name.is_empty() {
                errs.push(FieldError::required(p.child(key).child("name"), ""));
            } else {
                errs.extend(
                    check_name(NameRule::Subdomain, name, true)
                        .into_iter()
                        .map(|m| FieldError::invalid(p.child(key).child("name"), name, m)),
                );
            }
        }
        // The Go code reports these on the list path, not the item.
        if count == 0 {
            errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if count > 1 {
            errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn validate_mounts(mounts: &[Value], volumes: &[String], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut mount_points: Vec<&str> = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = path.index(i);
        let name = s(m, "name");
        if name.is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        }
        if !volumes.iter().any(|v| v == name) {
            errs.push(FieldError::not_found(p.child("name"), name));
        }
        let mount_path = s(m, "mountPath");
        if mount_path.is_empty() {
            errs.push(FieldError::required(p.child("mountPath"), ""));
        }
        if mount_points.contains(&mount_path) {
            errs.push(FieldError::invalid(
                p.child("mountPath"),
                mount_path,
                "must be unique",
            ));
        }
        mount_points.push(mount_path);
        let sub_path = s(m, "subPath");
        if sub_path.starts_with('/') {
            // validateLocalDescendingPath is called with the list path in Go.
            errs.push(FieldError::invalid(
                path.child("subPath"),
                sub_path,
                "must be a relative path",
            ));
        }
        if sub_path.split(['/', '\\']).any(|seg| seg == "..") {
            errs.push(FieldError::invalid(
                path.child("subPath"),
                sub_path,
                "must not contain '..'",
            ));
        }
    }
    errs
}

/// A lifecycle or probe handler: exactly one of exec/httpGet/tcpSocket/grpc/sleep.
pub fn validate_handler(h: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut count = 0;
    for key in ["exec", "httpGet", "tcpSocket", "grpc", "sleep"] {
        let Some(a) = h.get(key).filter(|v| !v.is_null()) else {
            continue;
        };
        if count > 0 {
            errs.push(FieldError::forbidden(
                path.child(key),
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        count += 1;
        let p = path.child(key);
        match key {
            "exec" if arr(a, "command").is_empty() => {
                errs.push(FieldError::required(p.child("command"), ""))
            }
            "httpGet" => {
                if s(a, "path").is_empty() {
                    errs.push(FieldError::required(p.child("path"), ""));
                }
                errs.extend(port_num_or_name(a.get("port"), &p.child("port")));
                for header in arr(a, "httpHeaders") {
                    let hn = s(header, "name");
                    errs.extend(
                        names::http_header_name(hn)
                            .into_iter()
                            .map(|m| FieldError::invalid(p.child("httpHeaders"), hn, m)),
                    );
                }
                let scheme = s(a, "scheme");
                if scheme != "HTTP" && scheme != "HTTPS" {
                    errs.push(FieldError::not_supported(
                        p.child("scheme"),
                        scheme,
                        &["HTTP", "HTTPS"],
                    ));
                }
            }
            "tcpSocket" | "grpc" => errs.extend(port_num_or_name(a.get("port"), &p.child("port"))),
            _ => {}
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

pub fn validate_probe(probe: &Value, kind: &str, path: &Path) -> Vec<FieldError> {
    let mut errs = validate_handler(probe, path);
    for key in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        errs.extend(nonnegative(probe, key, path));
    }
    if kind != "readinessProbe" && int(probe, "successThreshold").is_some_and(|n| n != 1) {
        errs.push(FieldError::invalid(
            path.child("successThreshold"),
            int(probe, "successThreshold").unwrap_or(0),
            "must be 1",
        ));
    }
    errs
}

/// `ValidatePortNumOrName` for an IntOrString port.
pub fn port_num_or_name(port: Option<&Value>, path: &Path) -> Vec<FieldError> {
    match port {
        Some(Value::String(name)) => names::port_name(name)
            .into_iter()
            .map(|m| FieldError::invalid(path, name.as_str(), m))
            .collect(),
        Some(v) => {
            let n = v.as_i64().unwrap_or(0);
            names::port_num(n)
                .into_iter()
                .map(|m| FieldError::invalid(path, n, m))
                .collect()
        }
        None => names::port_num(0)
            .into_iter()
            .map(|m| FieldError::invalid(path, 0, m))
            .collect(),
    }
}
