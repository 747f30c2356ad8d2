//! Ingress (networking.k8s.io/v1), HorizontalPodAutoscaler (autoscaling) and the RBAC kinds.

use super::errors::{FieldError, Path};
use super::names::{self, NameRule, check_name};
use super::{arr, int, s, set};
use serde_json::{Value, json};

const INVALID_PATH_SEQUENCES: [&str; 5] = ["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: [&str; 2] = ["/..", "/."];
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

pub fn ingress(ing: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = ing.get("spec").unwrap_or(&Value::Null);
    let sp = Path::new("spec");
    let rules = arr(spec, "rules");
    if rules.is_empty() && !set(spec, "defaultBackend") {
        let v = spec.get("rules").cloned().unwrap_or(Value::Null);
        errs.push(FieldError::invalid(
            &sp,
            v,
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = spec.get("defaultBackend").filter(|v| !v.is_null()) {
        errs.extend(backend(b, &sp.child("defaultBackend")));
    }
    for (i, rule) in rules.iter().enumerate() {
        let rp = sp.child("rules").index(i);
        let host = s(rule, "host");
        if !host.is_empty() {
            if host.parse::<std::net::IpAddr>().is_ok() {
                errs.push(FieldError::invalid(
                    rp.child("host"),
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
            let msgs = if host.contains('*') {
                names::wildcard_dns1123_subdomain(host)
            } else {
                names::dns1123_subdomain(host)
            };
            errs.extend(
                msgs.into_iter()
                    .map(|m| FieldError::invalid(rp.child("host"), host, m)),
            );
        }
        let Some(http) = rule.get("http").filter(|v| !v.is_null()) else {
            continue;
        };
        let hp = rp.child("http");
        let paths = arr(http, "paths");
        if paths.is_empty() {
            errs.push(FieldError::required(hp.child("paths"), ""));
        }
        for (j, p) in paths.iter().enumerate() {
            errs.extend(http_path(p, &hp.child("paths").index(j)));
        }
    }
    for (i, tls) in arr(spec, "tls").iter().enumerate() {
        let tp = sp.child("tls").index(i);
        for (j, host) in arr(tls, "hosts")
            .iter()
            .filter_map(Value::as_str)
            .enumerate()
        {
            let msgs = if host.contains('*') {
                names::wildcard_dns1123_subdomain(host)
            } else {
                names::dns1123_subdomain(host)
            };
            errs.extend(
                msgs.into_iter()
                    .map(|m| FieldError::invalid(tp.child("hosts").index(j), host, m)),
            );
        }
        let secret = s(tls, "secretName");
        if !secret.is_empty() {
            errs.extend(
                names::dns1123_subdomain(secret)
                    .into_iter()
                    .map(|m| FieldError::invalid(tp.child("secretName"), secret, m)),
            );
        }
    }
    if let Some(class) = spec.get("ingressClassName").and_then(Value::as_str) {
        errs.extend(
            names::dns1123_subdomain(class)
                .into_iter()
                .map(|m| FieldError::invalid(sp.child("ingressClassName"), class, m)),
        );
    }
    errs
}

fn http_path(p: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(path_type) = p.get("pathType").and_then(Value::as_str) else {
        return vec![FieldError::required(
            path.child("pathType"),
            "pathType must be specified",
        )];
    };
    let value = s(p, "path");
    match path_type {
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errs.push(FieldError::invalid(
                    path.child("path"),
                    value,
                    "must be an absolute path",
                ));
            }
            for seq in INVALID_PATH_SEQUENCES
                .iter()
                .filter(|seq| value.contains(*seq))
            {
                errs.push(FieldError::invalid(
                    path.child("path"),
                    value,
                    format!("must not contain '{seq}'"),
                ));
            }
            for suffix in INVALID_PATH_SUFFIXES
                .iter()
                .filter(|suf| value.ends_with(*suf))
            {
                errs.push(FieldError::invalid(
                    path.child("path"),
                    value,
                    format!("cannot end with '{suffix}'"),
                ));
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errs.push(FieldError::invalid(
                    path.child("path"),
                    value,
                    "must be an absolute path",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            path.child("pathType"),
            other,
            &["Exact", "ImplementationSpecific", "Prefix"],
        )),
    }
    errs.extend(backend(
        p.get("backend").unwrap_or(&Value::Null),
        &path.child("backend"),
    ));
    errs
}

fn backend(b: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match (
        set(b, "resource"),
        b.get("service").filter(|v| !v.is_null()),
    ) {
        (true, Some(_)) => errs.push(FieldError::invalid(
            path,
            "",
            "cannot set both resource and service backends",
        )),
        (true, None) => {
            let r = b.get("resource").unwrap_or(&Value::Null);
            for key in ["kind", "name"] {
                if s(r, key).is_empty() {
                    errs.push(FieldError::required(path.child("resource").child(key), ""));
                }
            }
        }
        (false, Some(svc)) => {
            let name = s(svc, "name");
            let np = path.child("service").child("name");
            if name.is_empty() {
                errs.push(FieldError::required(&np, ""));
            } else {
                errs.extend(
                    check_name(NameRule::Dns1035, name, false)
                        .into_iter()
                        .map(|m| FieldError::invalid(&np, name, m)),
                );
            }
            let port = svc.get("port").unwrap_or(&Value::Null);
            let (port_name, number) = (s(port, "name"), int(port, "number").unwrap_or(0));
            let pp = path.child("service").child("port");
            if !port_name.is_empty() && number != 0 {
                errs.push(FieldError::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                ));
            } else if !port_name.is_empty() {
                errs.extend(
                    names::port_name(port_name)
                        .into_iter()
                        .map(|m| FieldError::invalid(pp.child("name"), port_name, m)),
                );
            } else if number != 0 {
                errs.extend(
                    names::port_num(number)
                        .into_iter()
                        .map(|m| FieldError::invalid(pp.child("number"), number, m)),
                );
            } else {
                errs.push(FieldError::required(
                    path,
                    "port name or number is required",
                ));
            }
        }
        (false, None) => errs.push(FieldError::invalid(
            path,
            "",
            "resource or service backend is required",
        )),
    }
    errs
}

/// `validateHorizontalPodAutoscalerSpec` (minReplicas lower bound 1, no scale-to-zero).
pub fn hpa(h: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = h.get("spec").unwrap_or(&Value::Null);
    let sp = Path::new("spec");
    let min = int(spec, "minReplicas");
    let max = int(spec, "maxReplicas").unwrap_or(0);
    if let Some(m) = min.filter(|m| *m < 1) {
        errs.push(FieldError::invalid(
            sp.child("minReplicas"),
            m,
            "must be greater than or equal to 1",
        ));
    }
    if max < 1 {
        errs.push(FieldError::invalid(
            sp.child("maxReplicas"),
            max,
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|m| max < m) {
        errs.push(FieldError::invalid(
            sp.child("maxReplicas"),
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    let target = spec.get("scaleTargetRef").unwrap_or(&Value::Null);
    let tp = sp.child("scaleTargetRef");
    for key in ["kind", "name"] {
        let v = s(target, key);
        if v.is_empty() {
            errs.push(FieldError::required(tp.child(key), ""));
        } else {
            errs.extend(
                names::path_segment_name(v, false)
                    .into_iter()
                    .map(|m| FieldError::invalid(tp.child(key), v, m)),
            );
        }
    }
    errs
}

fn policy_rules(role: &Value, namespaced: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, rule) in arr(role, "rules").iter().enumerate() {
        let p = Path::new("rules").index(i);
        if arr(rule, "verbs").is_empty() {
            errs.push(FieldError::required(
                p.child("verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = arr(rule, "nonResourceURLs");
        if !urls.is_empty() {
            if namespaced {
                errs.push(FieldError::invalid(
                    p.child("nonResourceURLs"),
                    urls.to_vec(),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !arr(rule, "apiGroups").is_empty()
                || !arr(rule, "resources").is_empty()
                || !arr(rule, "resourceNames").is_empty()
            {
                errs.push(FieldError::invalid(
                    p.child("nonResourceURLs"),
                    urls.to_vec(),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if arr(rule, "apiGroups").is_empty() {
            errs.push(FieldError::required(
                p.child("apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if arr(rule, "resources").is_empty() {
            errs.push(FieldError::required(
                p.child("resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    errs
}

pub fn role(r: &Value) -> Vec<FieldError> {
    policy_rules(r, true)
}

pub fn cluster_role(r: &Value) -> Vec<FieldError> {
    // An aggregated ClusterRole's rules are filled in by the controller.
    if set(r, "aggregationRule") {
        return Vec::new();
    }
    policy_rules(r, false)
}

fn binding(b: &Value, namespaced: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let rr = b.get("roleRef").unwrap_or(&Value::Null);
    let rp = Path::new("roleRef");
    let group = s(rr, "apiGroup");
    if group != RBAC_GROUP {
        errs.push(FieldError::not_supported(
            rp.child("apiGroup"),
            group,
            &[RBAC_GROUP],
        ));
    }
    let kind = s(rr, "kind");
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        errs.push(FieldError::not_supported(rp.child("kind"), kind, kinds));
    }
    let name = s(rr, "name");
    if name.is_empty() {
        errs.push(FieldError::required(rp.child("name"), ""));
    } else {
        errs.extend(
            names::path_segment_name(name, false)
                .into_iter()
                .map(|m| FieldError::invalid(rp.child("name"), name, m)),
        );
    }
    for (i, subject) in arr(b, "subjects").iter().enumerate() {
        let p = Path::new("subjects").index(i);
        let (name, group) = (s(subject, "name"), s(subject, "apiGroup"));
        if name.is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        }
        match s(subject, "kind") {
            "ServiceAccount" => {
                if !name.is_empty() {
                    errs.extend(
                        names::dns1123_subdomain(name)
                            .into_iter()
                            .map(|m| FieldError::invalid(p.child("name"), name, m)),
                    );
                }
                if !group.is_empty() {
                    errs.push(FieldError::not_supported(p.child("apiGroup"), group, &[""]));
                }
                if !namespaced && s(subject, "namespace").is_empty() {
                    errs.push(FieldError::required(p.child("namespace"), ""));
                }
            }
            "User" | "Group" => {
                if group != RBAC_GROUP {
                    errs.push(FieldError::not_supported(
                        p.child("apiGroup"),
                        group,
                        &[RBAC_GROUP],
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                p.child("kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    errs
}

pub fn role_binding(b: &Value) -> Vec<FieldError> {
    binding(b, true)
}

pub fn cluster_role_binding(b: &Value) -> Vec<FieldError> {
    binding(b, false)
}

/// roleRef cannot change; the internal RoleRef is printed with Go field names.
pub fn role_binding_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let rr = |v: &Value| {
        let r = v.get("roleRef").unwrap_or(&Value::Null);
        json!({"APIGroup": s(r, "apiGroup"), "Kind": s(r, "kind"), "Name": s(r, "name")})
    };
    if rr(new) != rr(old) {
        vec![FieldError::invalid(
            "roleRef",
            rr(new),
            "cannot change roleRef",
        )]
    } else {
        Vec::new()
    }
}
