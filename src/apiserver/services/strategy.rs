//! What the Service registry does to an update before it is validated: keep the
//! addresses and ports it allocated when a client resubmits an object without them
//! (`patchAllocatedValues`), keep `clusterIP` and `clusterIPs` in step
//! (`normalizeClusterIPs`), and wipe the allocated fields a new type no longer uses
//! so they are released (`dropTypeDependentFields`) — unless the client changed
//! them too, in which case validation has its say.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::fields::{
    cluster_ip, cluster_ips, health_check_node_port, ip_families, needs_cluster_ip,
    needs_health_check, needs_node_port, node_port, node_ports, ports, ports_mut, service_type,
    spec_mut,
};

/// Prepare `new`, an update of the stored Service `old`, in place.
pub(crate) fn prepare_update(old: &Value, new: &mut Value) {
    patch_allocated_values(old, new);
    normalize_cluster_ips(old, new);
    drop_type_dependent_fields(old, new);
}

/// Fill in allocated values the client left out, so a resubmitted manifest keeps them.
fn patch_allocated_values(old: &Value, new: &mut Value) {
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        let (ip, ips) = (cluster_ip(old).to_string(), cluster_ips(old));
        let (new_ip_empty, new_ips_empty) =
            (cluster_ip(new).is_empty(), cluster_ips(new).is_empty());
        if let Some(spec) = spec_mut(new) {
            if new_ip_empty && !ip.is_empty() {
                spec.insert("clusterIP".into(), json!(ip));
            }
            if new_ips_empty && !ips.is_empty() {
                spec.insert("clusterIPs".into(), json!(ips));
            }
        }
    }
    if needs_node_port(old) && needs_node_port(new) {
        // Ports both versions name can't be patched in elsewhere.
        let kept: HashSet<i64> = node_ports(old).into_iter().collect();
        let used: HashSet<i64> = node_ports(new)
            .into_iter()
            .filter(|p| kept.contains(p))
            .collect();
        // Old node ports by port name (the client may have changed anything else).
        let by_name: HashMap<String, i64> = ports(old)
            .iter()
            .map(|p| (port_name(p), node_port(p)))
            .collect();
        for p in ports_mut(new) {
            if node_port(p) == 0
                && let Some(&was) = by_name.get(&port_name(p))
                && was != 0
                && !used.contains(&was)
            {
                p["nodePort"] = json!(was);
            }
        }
    }
    if needs_health_check(old) && needs_health_check(new) && health_check_node_port(new) == 0 {
        let was = health_check_node_port(old);
        if let Some(spec) = spec_mut(new)
            && was != 0
        {
            spec.insert("healthCheckNodePort".into(), json!(was));
        }
    }
}

fn port_name(port: &Value) -> String {
    port.get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Keep `clusterIPs` in step with `clusterIP` for clients that know only the latter.
fn normalize_cluster_ips(old: &Value, new: &mut Value) {
    let (old_ip, old_ips) = (cluster_ip(old).to_string(), cluster_ips(old));
    let (new_ip, new_ips) = (cluster_ip(new).to_string(), cluster_ips(new));
    let Some(spec) = spec_mut(new) else { return };
    // An old client patched something else and sent no clusterIPs.
    if !old_ips.is_empty() && new_ips.is_empty() && old_ip == new_ip {
        spec.insert("clusterIPs".into(), json!(old_ips));
    }
    if old_ip != new_ip && old_ips == new_ips {
        if !old_ip.is_empty() && new_ip.is_empty() {
            // Clearing the singular clears the plural on the client's behalf.
            spec.remove("clusterIPs");
        } else {
            spec.insert("clusterIPs".into(), json!([new_ip]));
        }
    }
}

/// Wipe what the new type does not use, when the client did not change it.
fn drop_type_dependent_fields(old: &Value, new: &mut Value) {
    let same = |field: &str, new: &Value| {
        old.pointer(&format!("/spec/{field}")) == new.pointer(&format!("/spec/{field}"))
    };
    let mut wipe: Vec<&str> = Vec::new();
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        if cluster_ip(old) == cluster_ip(new) && cluster_ips(old) == cluster_ips(new) {
            wipe.extend(["clusterIP", "clusterIPs"]);
        } else if cluster_ip(new).is_empty() {
            // An emptied clusterIP is no value at all (Go omits it).
            wipe.push("clusterIP");
        }
        if ip_families(old) == ip_families(new) {
            wipe.push("ipFamilies");
        }
        if same("ipFamilyPolicy", new) {
            wipe.push("ipFamilyPolicy");
        }
    }
    let no_new_node_ports = {
        let had: HashSet<i64> = node_ports(old).into_iter().collect();
        node_ports(new).iter().all(|p| had.contains(p))
    };
    if needs_node_port(old) && !needs_node_port(new) && no_new_node_ports {
        for p in ports_mut(new) {
            if let Some(p) = p.as_object_mut() {
                p.remove("nodePort");
            }
        }
    }
    if needs_health_check(old) && !needs_health_check(new) && same("healthCheckNodePort", new) {
        wipe.push("healthCheckNodePort");
    }
    let (old_type, new_type) = (service_type(old).to_string(), service_type(new).to_string());
    if old_type == "LoadBalancer" && new_type != "LoadBalancer" {
        if same("allocateLoadBalancerNodePorts", new) {
            wipe.push("allocateLoadBalancerNodePorts");
        }
        if same("loadBalancerClass", new) {
            wipe.push("loadBalancerClass");
        }
    }
    if externally_accessible(old)
        && !externally_accessible(new)
        && same("externalTrafficPolicy", new)
    {
        wipe.push("externalTrafficPolicy");
    }
    if let Some(spec) = spec_mut(new) {
        for field in wipe {
            spec.remove(field);
        }
    }
    // A load balancer's status goes with the type.
    if new_type != "LoadBalancer"
        && let Some(lb) = new.pointer_mut("/status/loadBalancer")
    {
        *lb = json!({});
    }
}

/// `ExternallyAccessible`: LoadBalancer, NodePort, or ClusterIP with external IPs.
fn externally_accessible(svc: &Value) -> bool {
    match service_type(svc) {
        "LoadBalancer" | "NodePort" => true,
        "ClusterIP" => svc
            .pointer("/spec/externalIPs")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_port_svc() -> Value {
        json!({"metadata": {"name": "web"}, "spec": {
            "type": "NodePort", "clusterIP": "10.96.7.7", "clusterIPs": ["10.96.7.7"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "externalTrafficPolicy": "Cluster",
            "ports": [{"name": "http", "port": 80, "nodePort": 30080}, {"name": "https", "port": 443, "nodePort": 30443}]}})
    }

    #[test]
    fn a_resubmitted_manifest_keeps_its_allocated_address_and_ports() {
        let old = node_port_svc();
        let mut new = json!({"metadata": {"name": "web"}, "spec": {
            "type": "NodePort", "externalTrafficPolicy": "Cluster",
            "ports": [{"name": "https", "port": 443}, {"name": "http", "port": 8080}]}});
        prepare_update(&old, &mut new);
        assert_eq!(new["spec"]["clusterIP"], "10.96.7.7");
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.96.7.7"]));
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30443);
        assert_eq!(new["spec"]["ports"][1]["nodePort"], 30080);
    }

    #[test]
    fn a_node_port_another_port_now_uses_is_not_patched_in() {
        let old = node_port_svc();
        let mut new = node_port_svc();
        new["spec"]["ports"][1]["nodePort"] = json!(30080);
        new["spec"]["ports"][0]
            .as_object_mut()
            .map(|p| p.remove("nodePort"));
        prepare_update(&old, &mut new);
        assert!(new["spec"]["ports"][0].get("nodePort").is_none());
    }

    #[test]
    fn switching_to_cluster_ip_drops_node_ports_and_the_traffic_policy() {
        let old = node_port_svc();
        let mut new = node_port_svc();
        new["spec"]["type"] = json!("ClusterIP");
        prepare_update(&old, &mut new);
        assert!(new["spec"]["ports"][0].get("nodePort").is_none());
        assert!(new["spec"]["ports"][1].get("nodePort").is_none());
        assert!(new["spec"].get("externalTrafficPolicy").is_none());
        assert_eq!(new["spec"]["clusterIP"], "10.96.7.7");
    }

    #[test]
    fn node_ports_the_client_changed_are_left_for_validation() {
        let old = node_port_svc();
        let mut new = node_port_svc();
        new["spec"]["type"] = json!("ClusterIP");
        new["spec"]["ports"][0]["nodePort"] = json!(31000);
        prepare_update(&old, &mut new);
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 31000);
    }

    #[test]
    fn switching_to_external_name_drops_the_cluster_ip_and_families() {
        let old = node_port_svc();
        let mut new = node_port_svc();
        new["spec"]["type"] = json!("ExternalName");
        new["spec"]["externalName"] = json!("example.com");
        prepare_update(&old, &mut new);
        for f in [
            "clusterIP",
            "clusterIPs",
            "ipFamilies",
            "ipFamilyPolicy",
            "externalTrafficPolicy",
        ] {
            assert!(new["spec"].get(f).is_none(), "{f} kept");
        }
    }

    #[test]
    fn clearing_cluster_ip_clears_cluster_ips_for_old_clients() {
        let old = node_port_svc();
        let mut new = node_port_svc();
        new["spec"]["type"] = json!("ExternalName");
        new["spec"]["clusterIP"] = json!("");
        prepare_update(&old, &mut new);
        assert!(new["spec"].get("clusterIPs").is_none());
        assert!(new["spec"].get("clusterIP").is_none());
    }

    #[test]
    fn leaving_load_balancer_clears_its_status() {
        let mut old = node_port_svc();
        old["spec"]["type"] = json!("LoadBalancer");
        old["spec"]["allocateLoadBalancerNodePorts"] = json!(true);
        old["status"] = json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}});
        let mut new = old.clone();
        new["spec"]["type"] = json!("NodePort");
        prepare_update(&old, &mut new);
        assert_eq!(new["status"]["loadBalancer"], json!({}));
        assert!(new["spec"].get("allocateLoadBalancerNodePorts").is_none());
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
    }
}
