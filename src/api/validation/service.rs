//! Service validation: ports, types, session affinity, cluster IPs, traffic policies, node port range, immutable cluster IPs.

use super::container::port_num_or_name;
use super::errors::{FieldError, Path};
use super::meta::validate_labels;
use super::names;
use super::{arr, int, s, set};
use serde_json::{Value, json};

const NODE_PORT_RANGE: (i64, i64) = (30000, 32767);

/// The cluster IPs as the registry sees them: `clusterIPs`, or the single
/// `clusterIP` when only that was given (the strategy syncs the two).
fn cluster_ips(svc: &Value) -> Vec<String> {
    let spec = svc.get("spec").unwrap_or(&Value::Null);
    let list: Vec<String> = arr(spec, "clusterIPs")
        .iter()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    if list.is_empty() && !s(spec, "clusterIP").is_empty() {
        vec![s(spec, "clusterIP").to_string()]
    } else {
        list
    }
}

fn is_headless(svc: &Value) -> bool {
    let ips = cluster_ips(svc);
    ips.len() == 1 && ips[0] == "None"
}

/// `ValidateService`.
pub fn service(svc: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = svc.get("spec").unwrap_or(&Value::Null);
    let sp = Path::new("spec");
    let ty = s(spec, "type");
    let ports = arr(spec, "ports");
    let headless = is_headless(svc);
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required(sp.child("ports"), ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless => {
            errs.push(FieldError::invalid(
                sp.child("clusterIPs").index(0),
                "None",
                format!("may not be set to 'None' for {ty} services"),
            ));
        }
        "ExternalName" => {
            if !arr(spec, "clusterIPs").is_empty() || !s(spec, "clusterIP").is_empty() {
                errs.push(FieldError::forbidden(
                    sp.child("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if !arr(spec, "ipFamilies").is_empty() {
                errs.push(FieldError::forbidden(
                    sp.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if set(spec, "ipFamilyPolicy") {
                errs.push(FieldError::forbidden(
                    sp.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            // A trailing dot marks the CNAME as fully qualified.
            let cname = s(spec, "externalName").trim_end_matches('.');
            if cname.is_empty() {
                errs.push(FieldError::required(sp.child("externalName"), ""));
            } else {
                errs.extend(
                    names::dns1123_subdomain(cname)
                        .into_iter()
                        .map(|m| FieldError::invalid(sp.child("externalName"), cname, m)),
                );
            }
        }
        _ => {}
    }
    let mut port_names: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        errs.extend(service_port(
            port,
            ports.len() > 1,
            &mut port_names,
            &sp.child("ports").index(i),
        ));
    }
    if spec.get("selector").is_some_and(Value::is_object) {
        errs.extend(validate_labels(spec.get("selector"), &sp.child("selector")));
    }
    match s(spec, "sessionAffinity") {
        "" => errs.push(FieldError::required(sp.child("sessionAffinity"), "")),
        "ClientIP" => {
            let cfg = sp.child("sessionAffinityConfig");
            let timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"));
            match timeout.and_then(Value::as_i64) {
                None => errs.push(FieldError::required(
                    cfg,
                    "when session affinity type is ClientIP",
                )),
                Some(t) if !(1..=86400).contains(&t) => errs.push(FieldError::invalid(
                    cfg.child("clientIP").child("timeoutSeconds"),
                    t,
                    "must be greater than 0 and less than 86400",
                )),
                Some(_) => {}
            }
        }
        "None" => {
            if set(spec, "sessionAffinityConfig") {
                errs.push(FieldError::forbidden(
                    sp.child("sessionAffinityConfig"),
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            sp.child("sessionAffinity"),
            other,
            &["ClientIP", "None"],
        )),
    }
    if ty != "ExternalName" {
        errs.extend(cluster_ip_fields(svc, &sp));
    }
    for (i, ip) in arr(spec, "externalIPs").iter().enumerate() {
        let ip = ip.as_str().unwrap_or_default();
        errs.extend(
            names::ip_address(ip)
                .into_iter()
                .map(|m| FieldError::invalid(sp.child("externalIPs").index(i), ip, m)),
        );
    }
    match ty {
        "" => errs.push(FieldError::required(sp.child("type"), "")),
        "ClusterIP" | "ExternalName" | "LoadBalancer" | "NodePort" => {}
        other => errs.push(FieldError::not_supported(
            sp.child("type"),
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    errs.extend(node_ports(ports, ty, &sp));
    let mut seen: Vec<(&str, i64)> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let key = (s(port, "protocol"), int(port, "port").unwrap_or(0));
        if seen.contains(&key) {
            // The Go code reports the internal ServicePort struct, marshalled with Go field names.
            let v = json!({"Name": "", "Protocol": key.0, "AppProtocol": null, "Port": key.1, "TargetPort": 0, "NodePort": 0});
            errs.push(FieldError::duplicate(sp.child("ports").index(i), v));
        }
        seen.push(key);
    }
    if !arr(spec, "loadBalancerSourceRanges").is_empty() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            sp.child("LoadBalancerSourceRanges"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if set(spec, "allocateLoadBalancerNodePorts") && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            sp.child("allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if ty == "LoadBalancer" && !set(spec, "allocateLoadBalancerNodePorts") {
        errs.push(FieldError::required("allocateLoadBalancerNodePorts", ""));
    }
    if set(spec, "loadBalancerClass") && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            sp.child("loadBalancerClass"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    errs.extend(traffic_policies(spec, ty, &sp));
    errs
}

fn service_port<'a>(
    port: &'a Value,
    require_name: bool,
    seen: &mut Vec<&'a str>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = s(port, "name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(
            names::dns1123_label(name)
                .into_iter()
                .map(|m| FieldError::invalid(path.child("name"), name, m)),
        );
        if seen.contains(&name) {
            errs.push(FieldError::duplicate(path.child("name"), name));
        } else {
            seen.push(name);
        }
    }
    let p = int(port, "port").unwrap_or(0);
    errs.extend(
        names::port_num(p)
            .into_iter()
            .map(|m| FieldError::invalid(path.child("port"), p, m)),
    );
    match s(port, "protocol") {
        "" => errs.push(FieldError::required(path.child("protocol"), "")),
        "TCP" | "UDP" | "SCTP" => {}
        other => errs.push(FieldError::not_supported(
            path.child("protocol"),
            other,
            &["SCTP", "TCP", "UDP"],
        )),
    }
    errs.extend(port_num_or_name(
        port.get("targetPort"),
        &path.child("targetPort"),
    ));
    if let Some(ap) = port.get("appProtocol").and_then(Value::as_str) {
        errs.extend(
            names::qualified_name(ap)
                .into_iter()
                .map(|m| FieldError::invalid(path.child("appProtocol"), ap, m)),
        );
    }
    errs
}

/// NodePort use by type, the allocator's range check, and duplicates per protocol.
fn node_ports(ports: &[Value], ty: &str, sp: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen: Vec<(&str, i64)> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let np = int(port, "nodePort").unwrap_or(0);
        if np == 0 {
            continue;
        }
        let path = sp.child("ports").index(i).child("nodePort");
        if ty == "ClusterIP" {
            errs.push(FieldError::forbidden(
                &path,
                "may not be used when `type` is 'ClusterIP'",
            ));
        } else if ty == "NodePort" || ty == "LoadBalancer" {
            // Reported by the node-port allocator in the real server, same field and text.
            if !(NODE_PORT_RANGE.0..=NODE_PORT_RANGE.1).contains(&np) {
                errs.push(FieldError::invalid(
                    &path,
                    np,
                    format!(
                        "provided port is not in the valid range. The range of valid ports is {}-{}",
                        NODE_PORT_RANGE.0, NODE_PORT_RANGE.1
                    ),
                ));
            }
        }
        let key = (s(port, "protocol"), np);
        if seen.contains(&key) {
            errs.push(FieldError::duplicate(&path, np));
        }
        seen.push(key);
    }
    errs
}

/// `ValidateServiceClusterIPsRelatedFields`.
fn cluster_ip_fields(svc: &Value, sp: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = svc.get("spec").unwrap_or(&Value::Null);
    let ips_path = sp.child("clusterIPs");
    let cluster_ip = s(spec, "clusterIP");
    let listed: Vec<&str> = arr(spec, "clusterIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if cluster_ip.is_empty() && !listed.is_empty() {
        errs.push(FieldError::invalid(
            &ips_path,
            listed.clone(),
            "must be empty when `clusterIP` is not specified",
        ));
    } else if !cluster_ip.is_empty() && !listed.is_empty() && listed[0] != cluster_ip {
        errs.push(FieldError::invalid(
            &ips_path,
            listed.clone(),
            "first value must match `clusterIP`",
        ));
    }
    let mut families: Vec<&str> = Vec::new();
    for (i, f) in arr(spec, "ipFamilies").iter().enumerate() {
        let f = f.as_str().unwrap_or_default();
        if f != "IPv4" && f != "IPv6" {
            errs.push(FieldError::not_supported(
                sp.child("ipFamilies").index(i),
                f,
                &["IPv4", "IPv6"],
            ));
        }
        if families.contains(&f) {
            errs.push(FieldError::duplicate(sp.child("ipFamilies").index(i), f));
        }
        families.push(f);
    }
    if let Some(policy) = spec.get("ipFamilyPolicy").and_then(Value::as_str)
        && !matches!(
            policy,
            "SingleStack" | "PreferDualStack" | "RequireDualStack"
        )
    {
        errs.push(FieldError::not_supported(
            sp.child("ipFamilyPolicy"),
            policy,
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
        ));
    }
    let ips = cluster_ips(svc);
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                errs.push(FieldError::invalid(
                    &ips_path,
                    ips.clone(),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        errs.extend(
            names::ip_address(ip)
                .into_iter()
                .map(|m| FieldError::invalid(ips_path.index(i), ip.as_str(), m)),
        );
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            &ips_path,
            ips.clone(),
            "may only hold up to 2 values",
        ));
    }
    errs
}

fn traffic_policies(spec: &Value, ty: &str, sp: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let external = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && !arr(spec, "externalIPs").is_empty());
    let etp = s(spec, "externalTrafficPolicy");
    if !external {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                sp.child("externalTrafficPolicy"),
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required(sp.child("externalTrafficPolicy"), ""));
    } else if etp != "Cluster" && etp != "Local" {
        errs.push(FieldError::not_supported(
            sp.child("externalTrafficPolicy"),
            etp,
            &["Cluster", "Local"],
        ));
    }
    let hc = int(spec, "healthCheckNodePort").unwrap_or(0);
    if hc != 0 && !(ty == "LoadBalancer" && etp == "Local") {
        errs.push(FieldError::invalid(
            sp.child("healthCheckNodePort"),
            hc,
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        ));
    }
    match spec.get("internalTrafficPolicy").and_then(Value::as_str) {
        None if matches!(ty, "NodePort" | "LoadBalancer" | "ClusterIP") => {
            errs.push(FieldError::required(sp.child("internalTrafficPolicy"), ""))
        }
        Some(p) if p != "Cluster" && p != "Local" => errs.push(FieldError::not_supported(
            sp.child("internalTrafficPolicy"),
            p,
            &["Cluster", "Local"],
        )),
        _ => {}
    }
    errs
}

/// `ValidateServiceUpdate`: the primary cluster IP (and family) cannot change.
/// A request without cluster IPs keeps the stored ones, as the registry does.
pub fn service_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ty = |v: &Value| {
        v.get("spec")
            .map(|sp| s(sp, "type").to_string())
            .unwrap_or_default()
    };
    if ty(new) == "ExternalName" || ty(old) == "ExternalName" {
        return errs;
    }
    let (new_ips, old_ips) = (cluster_ips(new), cluster_ips(old));
    if new_ips.is_empty() || (is_headless(new) && is_headless(old)) {
        return errs;
    }
    let path = Path::new("spec").child("clusterIPs");
    if new_ips.len() == old_ips.len() {
        for (i, ip) in old_ips.iter().enumerate() {
            if *ip != new_ips[i] {
                errs.push(FieldError::invalid(
                    path.index(i),
                    new_ips.clone(),
                    "may not change once set",
                ));
            }
        }
    } else if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
        errs.push(FieldError::invalid(
            path.index(0),
            new_ips.clone(),
            "may not change once set",
        ));
    }
    let fams = |v: &Value| -> Vec<String> {
        v.get("spec")
            .map(|sp| {
                arr(sp, "ipFamilies")
                    .iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (nf, of) = (fams(new), fams(old));
    if !nf.is_empty() && !of.is_empty() && nf[0] != of[0] {
        errs.push(FieldError::invalid(
            Path::new("spec").child("ipFamilies").index(0),
            nf,
            "may not change once set",
        ));
    }
    errs
}
