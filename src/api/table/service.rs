//! Rows for how traffic reaches pods: services, endpoints, endpoint slices, ingresses, ingress classes, network policies.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::Value;

use super::format::{NONE, Obj, UNKNOWN, format_labels, join_host_port, list_with_more, or_none};
use super::selector::format_label_selector;
use super::{Column, docs};

pub(super) fn service_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Type", "string", docs::SERVICE_SPEC_TYPE),
        Column::new("Cluster-IP", "string", docs::SERVICE_SPEC_CLUSTER_IP),
        Column::new("External-IP", "string", docs::SERVICE_SPEC_EXTERNAL_IPS),
        Column::new("Port(s)", "string", docs::SERVICE_SPEC_PORTS),
        Column::age(),
        Column::wide("Selector", "string", docs::SERVICE_SPEC_SELECTOR),
    ]
}

pub(super) fn service_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    // The v1→internal conversion makes spec.clusterIP authoritative over spec.clusterIPs; Go
    // prints "<none>" only when neither is set.
    let cluster_ip = match (
        o.str(&["spec", "clusterIP"]),
        o.strings(&["spec", "clusterIPs"]).first(),
    ) {
        ("", Some(first)) => first.to_string(),
        (ip, _) => or_none(ip),
    };
    vec![
        o.name().into(),
        o.str(&["spec", "type"]).into(),
        cluster_ip.into(),
        external_ip(o).into(),
        or_none(&port_string(o)).into(),
        o.age(now),
        format_labels(o.map(&["spec", "selector"])).into(),
    ]
}

/// getServiceExternalIP: explicit external IPs, load-balancer ingress points, or the external name.
fn external_ip(o: Obj) -> String {
    let external_ips = o.strings(&["spec", "externalIPs"]);
    match o.str(&["spec", "type"]) {
        "ClusterIP" | "NodePort" => or_none(&external_ips.join(",")),
        "LoadBalancer" => {
            let ingress = load_balancer_ingress(o.child(&["status", "loadBalancer"]));
            if !external_ips.is_empty() {
                let mut all: Vec<&str> = ingress.iter().map(String::as_str).collect();
                all.extend(external_ips);
                all.join(",")
            } else if !ingress.is_empty() {
                ingress.join(",")
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => o.str(&["spec", "externalName"]).to_string(),
        _ => UNKNOWN.to_string(),
    }
}

/// The load balancer's ingress points, IP preferred over hostname, sorted and deduplicated. The
/// server prints wide rows, so Go's 16-character clipping for narrow output never applies.
fn load_balancer_ingress(status: Obj) -> Vec<String> {
    let points: BTreeSet<&str> = status
        .items(&["ingress"])
        .filter_map(|i| {
            [i.str(&["ip"]), i.str(&["hostname"])]
                .into_iter()
                .find(|s| !s.is_empty())
        })
        .collect();
    points.into_iter().map(str::to_string).collect()
}

/// makePortString: "80/TCP", or "80:30080/TCP" when a node port is allocated.
fn port_string(o: Obj) -> String {
    let ports: Vec<String> = o
        .items(&["spec", "ports"])
        .map(|p| {
            let (port, protocol) = (p.int(&["port"]), p.str(&["protocol"]));
            match p.int(&["nodePort"]) {
                node_port if node_port > 0 => format!("{port}:{node_port}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    ports.join(",")
}

pub(super) fn endpoints_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Endpoints", "string", docs::ENDPOINTS_SUBSETS),
        Column::age(),
    ]
}

pub(super) fn endpoints_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    vec![o.name().into(), format_endpoints(o).into(), o.age(now)]
}

/// formatEndpoints: the first three "ip:port" pairs (bare IPs for port-less subsets), then a count.
fn format_endpoints(o: Obj) -> String {
    const MAX: usize = 3;
    if o.len(&["subsets"]) == 0 {
        return NONE.to_string();
    }
    let mut list = Vec::new();
    let mut count = 0;
    for subset in o.items(&["subsets"]) {
        let ips: Vec<&str> = subset
            .items(&["addresses"])
            .map(|a| a.str(&["ip"]))
            .collect();
        let ports: Vec<i64> = subset.items(&["ports"]).map(|p| p.int(&["port"])).collect();
        if ports.is_empty() {
            // Headless services may have no ports.
            count += ips.len();
            list.extend(
                ips.iter()
                    .take(MAX.saturating_sub(list.len()))
                    .map(|ip| ip.to_string()),
            );
            continue;
        }
        for port in ports {
            count += ips.len();
            list.extend(
                ips.iter()
                    .take(MAX.saturating_sub(list.len()))
                    .map(|ip| join_host_port(ip, port)),
            );
        }
    }
    let joined = list.join(",");
    if count > list.len() {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

pub(super) fn endpoint_slice_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("AddressType", "string", docs::ENDPOINT_SLICE_ADDRESS_TYPE),
        Column::new("Ports", "string", docs::ENDPOINT_SLICE_PORTS),
        Column::new("Endpoints", "string", docs::ENDPOINT_SLICE_ENDPOINTS),
        Column::age(),
    ]
}

pub(super) fn endpoint_slice_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    // A port without a number is named; one with neither matches every port ("*").
    let ports: Vec<String> = o
        .items(&["ports"])
        .map(|p| match (p.opt_int(&["port"]), p.opt_str(&["name"])) {
            (Some(port), _) => port.to_string(),
            (None, Some(name)) => name.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let addresses: Vec<String> = o
        .items(&["endpoints"])
        .flat_map(|e| e.strings(&["addresses"]))
        .map(str::to_string)
        .collect();
    vec![
        o.name().into(),
        o.str(&["addressType"]).into(),
        list_with_more(&ports, 3).into(),
        list_with_more(&addresses, 3).into(),
        o.age(now),
    ]
}

pub(super) fn ingress_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new(
            "Class",
            "string",
            "The name of the IngressClass resource that should be used for additional configuration",
        ),
        Column::new(
            "Hosts",
            "string",
            "Hosts that incoming requests are matched against before the ingress rule",
        ),
        Column::new(
            "Address",
            "string",
            "Address is a list containing ingress points for the load-balancer",
        ),
        Column::new("Ports", "string", "Ports of TLS configurations that open"),
        Column::age(),
    ]
}

pub(super) fn ingress_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    let ports = if o.len(&["spec", "tls"]) > 0 {
        "80, 443"
    } else {
        "80"
    };
    vec![
        o.name().into(),
        o.opt_str(&["spec", "ingressClassName"])
            .unwrap_or(NONE)
            .into(),
        format_hosts(o).into(),
        load_balancer_ingress(o.child(&["status", "loadBalancer"]))
            .join(",")
            .into(),
        ports.into(),
        o.age(now),
    ]
}

/// formatHosts: the first three rule hosts, "*" when no rule names one. Go counts the rules
/// beyond three, named or not, which is what "+ N more" reports.
fn format_hosts(o: Obj) -> String {
    const MAX: usize = 3;
    let rules = o.len(&["spec", "rules"]);
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in o.items(&["spec", "rules"]) {
        if list.len() == MAX {
            more = true;
        }
        let host = rule.str(&["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        "*".to_string()
    } else if more {
        format!("{} + {} more...", list.join(","), rules - MAX)
    } else {
        list.join(",")
    }
}

pub(super) fn ingress_class_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new(
            "Controller",
            "string",
            "Controller that is responsible for handling this class",
        ),
        Column::new(
            "Parameters",
            "string",
            "A reference to a resource with additional parameters",
        ),
        Column::age(),
    ]
}

/// The default class is marked like the default storage class (kubernetes/kubernetes#134422).
pub(super) fn ingress_class_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    let mut name = o.name().to_string();
    if o.annotation("ingressclass.kubernetes.io/is-default-class") == Some("true") {
        name.push_str(" (default)");
    }
    let parameters = match o.at(&["spec", "parameters"]).map(Obj) {
        Some(p) => {
            let group = p
                .opt_str(&["apiGroup"])
                .map(|g| format!(".{g}"))
                .unwrap_or_default();
            format!("{}{group}/{}", p.str(&["kind"]), p.str(&["name"]))
        }
        None => NONE.to_string(),
    };
    vec![
        name.into(),
        o.str(&["spec", "controller"]).into(),
        parameters.into(),
        o.age(now),
    ]
}

pub(super) fn network_policy_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new(
            "Pod-Selector",
            "string",
            docs::NETWORK_POLICY_SPEC_POD_SELECTOR,
        ),
        Column::age(),
    ]
}

pub(super) fn network_policy_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    vec![
        o.name().into(),
        format_label_selector(o.at(&["spec", "podSelector"])).into(),
        o.age(now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().expect("valid timestamp")
    }

    fn svc(spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:55:00Z"}, "spec": spec, "status": status})
    }

    #[test]
    fn node_port_service_shows_node_port_and_selector() {
        let obj = svc(
            json!({"type": "NodePort", "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"], "selector": {"app": "web"},
                   "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}]}),
            json!({}),
        );
        assert_eq!(
            service_cells(&obj, now()),
            [
                json!("web"),
                json!("NodePort"),
                json!("10.96.0.20"),
                json!("<none>"),
                json!("80:30080/TCP"),
                json!("5m"),
                json!("app=web")
            ]
        );
    }

    #[test]
    fn load_balancer_service_lists_ingress_then_external_ips() {
        let spec = json!({"type": "LoadBalancer", "clusterIP": "10.96.0.9", "externalIPs": ["1.2.3.4"],
                          "ports": [{"port": 443, "protocol": "TCP", "nodePort": 31443}, {"port": 53, "protocol": "UDP"}]});
        let status = json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}, {"hostname": "lb.example.com"}]}});
        let row = service_cells(&svc(spec, status), now());
        assert_eq!(row[3], json!("203.0.113.7,lb.example.com,1.2.3.4"));
        assert_eq!(row[4], json!("443:31443/TCP,53/UDP"));
        let pending = service_cells(&svc(json!({"type": "LoadBalancer"}), json!({})), now());
        assert_eq!(
            (&pending[2], &pending[3], &pending[4]),
            (&json!("<none>"), &json!("<pending>"), &json!("<none>"))
        );
    }

    #[test]
    fn headless_and_external_name_services() {
        let headless = service_cells(
            &svc(json!({"type": "ClusterIP", "clusterIP": "None"}), json!({})),
            now(),
        );
        assert_eq!(headless[2], json!("None"));
        let ext = service_cells(
            &svc(
                json!({"type": "ExternalName", "externalName": "db.example.com"}),
                json!({}),
            ),
            now(),
        );
        assert_eq!(
            (&ext[2], &ext[3]),
            (&json!("<none>"), &json!("db.example.com"))
        );
    }

    #[test]
    fn endpoints_show_three_addresses_then_a_count() {
        let obj = json!({"metadata": {"name": "web"}, "subsets": [
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]},
            {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]});
        assert_eq!(
            endpoints_cells(&obj, now())[1],
            json!("10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more...")
        );
        let v6 = json!({"subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]});
        assert_eq!(endpoints_cells(&v6, now())[1], json!("[fd00::1]:80"));
        assert_eq!(endpoints_cells(&json!({}), now())[1], json!("<none>"));
    }

    #[test]
    fn endpoint_slice_lists_ports_and_addresses() {
        let obj = json!({"metadata": {"name": "web-abc"}, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80}, {"name": "metrics"}, {}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]}]});
        let row = endpoint_slice_cells(&obj, now());
        assert_eq!(
            &row[1..4],
            [
                json!("IPv4"),
                json!("80,metrics,*"),
                json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...")
            ]
        );
        assert_eq!(endpoint_slice_cells(&json!({}), now())[2], json!("<unset>"));
    }

    #[test]
    fn ingress_shows_class_hosts_address_and_tls_ports() {
        let obj = json!({"metadata": {"name": "shop"}, "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}],
            "rules": [{"host": "a.example.com"}, {}, {"host": "b.example.com"}, {"host": "c.example.com"}, {"host": "d.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}});
        let row = ingress_cells(&obj, now());
        assert_eq!(
            &row[1..5],
            [
                json!("nginx"),
                json!("a.example.com,b.example.com,c.example.com + 2 more..."),
                json!("192.0.2.10"),
                json!("80, 443")
            ]
        );
        let bare = ingress_cells(&json!({"spec": {"rules": [{}]}}), now());
        assert_eq!(
            &bare[1..5],
            [json!("<none>"), json!("*"), json!(""), json!("80")]
        );
    }

    #[test]
    fn ingress_class_marks_the_default_and_shows_parameters() {
        let obj = json!({"metadata": {"name": "nginx", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
            "spec": {"controller": "k8s.io/ingress-nginx", "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "cfg"}}});
        let row = ingress_class_cells(&obj, now());
        assert_eq!(
            &row[..3],
            [
                json!("nginx (default)"),
                json!("k8s.io/ingress-nginx"),
                json!("IngressParameters.k8s.example.com/cfg")
            ]
        );
    }

    #[test]
    fn network_policy_shows_its_pod_selector() {
        let obj = json!({"metadata": {"name": "deny"}, "spec": {"podSelector": {}}});
        assert_eq!(network_policy_cells(&obj, now())[1], json!("<none>"));
        let web = json!({"spec": {"podSelector": {"matchLabels": {"app": "web"}}}});
        assert_eq!(network_policy_cells(&web, now())[1], json!("app=web"));
    }
}
