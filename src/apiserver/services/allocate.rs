//! ClusterIP and NodePort allocation for Service creates and updates, as the
//! Service registry's `allocateCreate` / `allocateUpdate` do, with kube-apiserver's
//! error texts.
//!
//! The store is the allocation table: [`Allocations::from_store`] reads what every
//! stored Service holds, so a restart, a delete or a failed write needs no
//! bookkeeping (a deleted Service's address and ports are free once it is gone,
//! like Kubernetes' IPAddress objects), and no repair loop is needed. The caller
//! holds the API server's allocation lock from that read until the object is
//! stored, so two writes never take the same value.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use serde_json::{Value, json};

use super::fields::{
    allocates_node_ports, cluster_ip, cluster_ips, health_check_node_port, ip_families, name,
    needs_cluster_ip, needs_health_check, needs_node_port, node_port, node_ports, port_number,
    ports, ports_mut, spec_mut,
};
use super::ip::{IpPool, IpRange};
use super::port::{PortPool, PortRange};
use crate::api::error::ApiError;
use crate::api::registry::ResourceType;
use crate::api::validation::{FieldError, Path};
use crate::apiserver::Shared;
use crate::store::Store;

/// The addresses and ports stored Services hold, over the configured ranges.
#[derive(Debug, Clone)]
pub(crate) struct Allocations {
    ips: IpPool,
    ports: PortPool,
}

impl Allocations {
    /// Nothing allocated yet.
    pub(crate) fn new(ips: IpRange, ports: PortRange) -> Allocations {
        Allocations {
            ips: IpPool::new(ips),
            ports: PortPool::new(ports),
        }
    }

    /// What the Services stored under `prefix` hold.
    pub(crate) fn from_store(
        store: &Store,
        prefix: &str,
        ips: IpRange,
        ports: PortRange,
    ) -> Result<Allocations, ApiError> {
        let listing = store.list(prefix, None, 0).map_err(ApiError::internal)?;
        let mut all = Allocations::new(ips, ports);
        for item in &listing.items {
            all.record(&item.object);
        }
        Ok(all)
    }

    /// Note what one stored Service holds.
    pub(crate) fn record(&mut self, svc: &Value) {
        if needs_cluster_ip(svc) {
            let single = cluster_ip(svc).to_string();
            for ip in cluster_ips(svc).iter().chain([&single]) {
                if let Ok(ip) = ip.parse::<Ipv4Addr>() {
                    self.ips.mark(ip);
                }
            }
        }
        let health = Some(health_check_node_port(svc)).filter(|p| *p != 0);
        for port in node_ports(svc).into_iter().chain(health) {
            if let Ok(port) = u16::try_from(port) {
                self.ports.mark(port);
            }
        }
    }

    /// Allocate what a new Service needs: its cluster IP (unless headless or an
    /// ExternalName), node ports, and a health-check node port.
    pub(crate) fn create(&mut self, svc: &mut Value) -> Result<(), ApiError> {
        if needs_cluster_ip(svc) {
            self.cluster_ips(svc)?;
        }
        if needs_node_port(svc) {
            self.init_node_ports(svc)?;
        }
        if needs_health_check(svc) {
            self.health_check_node_port(svc)?;
        }
        Ok(())
    }

    /// Allocate what an update of `old` newly needs: a cluster IP when leaving
    /// ExternalName, node ports for ports that gained one, a health-check node port.
    /// What `old` holds is kept; what it no longer uses is free once stored.
    pub(crate) fn update(&mut self, old: &Value, svc: &mut Value) -> Result<(), ApiError> {
        if needs_cluster_ip(svc) && !needs_cluster_ip(old) {
            self.cluster_ips(svc)?;
        }
        if needs_node_port(svc) {
            self.update_node_ports(old, svc)?;
        }
        let port = health_check_node_port(svc);
        let kept = needs_health_check(old) && port != 0 && port == health_check_node_port(old);
        if needs_health_check(svc) && !kept {
            self.health_check_node_port(svc)?;
        }
        Ok(())
    }

    /// Assign `clusterIP`/`clusterIPs`: `None` stays headless, an address asked for
    /// is taken if free and in range, otherwise a random one.
    fn cluster_ips(&mut self, svc: &mut Value) -> Result<(), ApiError> {
        let wanted = match cluster_ips(svc) {
            list if list.is_empty() && !cluster_ip(svc).is_empty() => {
                vec![cluster_ip(svc).to_string()]
            }
            list => list,
        };
        let errors = single_stack_errors(svc, &wanted);
        if !errors.is_empty() {
            return Err(invalid(name(svc), &errors));
        }
        let ip = match wanted.first().map(String::as_str) {
            Some("None") => "None".to_string(),
            None | Some("") => self
                .ips
                .allocate_next()
                .map_err(|e| ApiError::internal(format!("failed to allocate a serviceIP: {e}")))?
                .to_string(),
            Some(asked) => {
                let ip: Ipv4Addr = asked.parse().map_err(|_| {
                    ApiError::internal(format!("failed to parse service IP {asked:?}"))
                })?;
                self.ips.allocate(ip).map_err(|e| {
                    let error = FieldError::invalid(
                        Path::new("spec").child("clusterIPs"),
                        wanted.clone(),
                        format!("failed to allocate IP {asked}: {e}"),
                    );
                    invalid(name(svc), &[error])
                })?;
                asked.to_string()
            }
        };
        if let Some(spec) = spec_mut(svc) {
            spec.insert("clusterIP".into(), json!(ip));
            spec.insert("clusterIPs".into(), json!([ip]));
        }
        Ok(())
    }

    /// Node ports of a new Service: ports with the same number (say 53/TCP and
    /// 53/UDP) share one, asked-for ports are taken, the rest drawn at random.
    fn init_node_ports(&mut self, svc: &mut Value) -> Result<(), ApiError> {
        let allocate = allocates_node_ports(svc);
        let svc_name = name(svc).to_string();
        let asked: Vec<(i64, i64)> = ports(svc)
            .iter()
            .map(|p| (port_number(p), node_port(p)))
            .collect();
        let mut by_number: HashMap<i64, i64> = HashMap::new();
        for (i, p) in ports_mut(svc).iter_mut().enumerate() {
            let (number, wanted) = (port_number(p), node_port(p));
            if wanted == 0 && !allocate {
                continue;
            }
            match by_number.get(&number).copied() {
                None => {
                    let first_asked = asked
                        .iter()
                        .find(|(n, np)| *n == number && *np != 0)
                        .map(|(_, np)| *np);
                    let got = match first_asked {
                        Some(np) => self.claim(np, i, &svc_name)?,
                        None => self.next_node_port()?,
                    };
                    p["nodePort"] = json!(got);
                    by_number.insert(number, got);
                }
                Some(shared) if wanted == 0 => p["nodePort"] = json!(shared),
                Some(shared) if wanted != shared => {
                    self.claim(wanted, i, &svc_name)?;
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Node ports on update: what `old` held is kept, new asks are taken, ports
    /// without one get one drawn at random.
    fn update_node_ports(&mut self, old: &Value, svc: &mut Value) -> Result<(), ApiError> {
        let allocate = allocates_node_ports(svc);
        let svc_name = name(svc).to_string();
        let held: HashSet<i64> = node_ports(old).into_iter().collect();
        let mut taken_now = HashSet::new();
        for (i, p) in ports_mut(svc).iter_mut().enumerate() {
            let wanted = node_port(p);
            if wanted == 0 && !allocate {
                continue;
            }
            if wanted == 0 {
                p["nodePort"] = json!(self.next_node_port()?);
            } else if !held.contains(&wanted) && taken_now.insert(wanted) {
                self.claim(wanted, i, &svc_name)?;
            }
        }
        Ok(())
    }

    /// Take node port `port` for `spec.ports[index]`.
    fn claim(&mut self, port: i64, index: usize, svc: &str) -> Result<i64, ApiError> {
        self.ports.allocate(port).map(i64::from).map_err(|e| {
            let field = Path::new("spec")
                .child("ports")
                .index(index)
                .child("nodePort");
            invalid(svc, &[FieldError::invalid(field, port, e.to_string())])
        })
    }

    fn next_node_port(&mut self) -> Result<i64, ApiError> {
        self.ports
            .allocate_next()
            .map(i64::from)
            .map_err(|e| ApiError::internal(format!("failed to allocate a nodePort: {e}")))
    }

    /// The health-check node port: the one asked for, else one drawn at random.
    fn health_check_node_port(&mut self, svc: &mut Value) -> Result<(), ApiError> {
        let asked = health_check_node_port(svc);
        if asked != 0 {
            self.ports.allocate(asked).map_err(|e| {
                ApiError::internal(format!(
                    "failed to allocate requested HealthCheck NodePort {asked}: {e}"
                ))
            })?;
            return Ok(());
        }
        let port = self.ports.allocate_next().map_err(|e| {
            ApiError::internal(format!("failed to allocate a HealthCheck NodePort 0: {e}"))
        })?;
        if let Some(spec) = spec_mut(svc) {
            spec.insert("healthCheckNodePort".into(), json!(port));
        }
        Ok(())
    }
}

/// What a single-stack IPv4 cluster refuses (`initIPFamilyFields`): dual-stack
/// demands, IPv6 families and IPv6 cluster IPs.
fn single_stack_errors(svc: &Value, wanted: &[String]) -> Vec<FieldError> {
    let spec = Path::new("spec");
    let mut errors = Vec::new();
    let policy = svc
        .pointer("/spec/ipFamilyPolicy")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if policy == "SingleStack" && wanted.len() == 2 {
        errors.push(FieldError::invalid(
            spec.child("ipFamilyPolicy"),
            policy,
            "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
        ));
    }
    for (i, ip) in wanted.iter().enumerate() {
        if matches!(ip.parse::<IpAddr>(), Ok(IpAddr::V6(_))) {
            errors.push(FieldError::invalid(
                spec.child("clusterIPs").index(i),
                wanted.to_vec(),
                "IPv6 is not configured on this cluster",
            ));
        }
    }
    if !errors.is_empty() {
        return errors;
    }
    if policy == "RequireDualStack" {
        errors.push(FieldError::invalid(
            spec.child("ipFamilyPolicy"),
            policy,
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, family) in ip_families(svc).iter().enumerate() {
        if family != "IPv4" {
            errors.push(FieldError::invalid(
                spec.child("ipFamilies").index(i),
                family.as_str(),
                "not configured on this cluster",
            ));
        }
    }
    errors
}

/// 422 `Service "name" is invalid: ...`.
fn invalid(name: &str, errors: &[FieldError]) -> ApiError {
    crate::apiserver::handlers::invalid("", "Service", name, errors)
}

/// Whether `rt` is the core `services` resource.
pub(crate) fn is_services(rt: &ResourceType) -> bool {
    rt.group.is_empty() && rt.resource == "services"
}

/// What every stored Service holds, over this server's ranges.
fn stored(s: &Shared, rt: &ResourceType) -> Result<Allocations, ApiError> {
    let (network, prefix) = s.settings.service_cidr;
    Allocations::from_store(
        &s.store,
        &rt.key_prefix(None),
        IpRange::new(network, prefix),
        PortRange::default(),
    )
}

/// Allocate a new Service's cluster IP and ports. Hold the allocation lock.
pub(crate) fn allocate_create(
    s: &Shared,
    rt: &ResourceType,
    svc: &mut Value,
) -> Result<(), ApiError> {
    stored(s, rt)?.create(svc)
}

/// Allocate what an update of `old` newly needs. Hold the allocation lock.
pub(crate) fn allocate_update(
    s: &Shared,
    rt: &ResourceType,
    old: &Value,
    svc: &mut Value,
) -> Result<(), ApiError> {
    stored(s, rt)?.update(old, svc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Allocations {
        Allocations::new(
            IpRange::new(Ipv4Addr::new(10, 96, 0, 0), 12),
            PortRange::default(),
        )
    }

    fn svc(spec: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
    }

    fn message(e: &ApiError) -> &str {
        &e.message
    }

    #[test]
    fn a_new_service_gets_an_address_in_the_range() {
        let mut s = svc(json!({"type": "ClusterIP", "ports": [{"port": 80}]}));
        all().create(&mut s).expect("allocated");
        let ip: Ipv4Addr = s["spec"]["clusterIP"]
            .as_str()
            .expect("ip")
            .parse()
            .expect("v4");
        assert_eq!(
            u32::from(ip) >> 20,
            u32::from(Ipv4Addr::new(10, 96, 0, 0)) >> 20
        );
        assert_eq!(s["spec"]["clusterIPs"], json!([ip.to_string()]));
    }

    #[test]
    fn a_taken_address_is_refused_as_kubernetes_words_it() {
        let mut a = all();
        a.record(&svc(
            json!({"clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5"]}),
        ));
        let mut s = svc(json!({"clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5"]}));
        let e = a.create(&mut s).expect_err("taken");
        assert_eq!(e.code, 422);
        assert_eq!(
            message(&e),
            "Service \"web\" is invalid: spec.clusterIPs: Invalid value: [\"10.96.0.5\"]: failed to allocate IP 10.96.0.5: provided IP is already allocated"
        );
    }

    #[test]
    fn an_address_outside_the_range_is_refused_with_the_range_named() {
        let mut s = svc(json!({"clusterIP": "10.0.0.1"}));
        let e = all().create(&mut s).expect_err("outside");
        assert_eq!(
            message(&e),
            "Service \"web\" is invalid: spec.clusterIPs: Invalid value: [\"10.0.0.1\"]: failed to allocate IP 10.0.0.1: the provided IP (10.0.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/12"
        );
    }

    #[test]
    fn headless_and_external_name_services_get_no_address() {
        let mut a = all();
        let mut headless = svc(json!({"clusterIP": "None"}));
        a.create(&mut headless).expect("headless");
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        let mut external = svc(json!({"type": "ExternalName", "externalName": "example.com"}));
        a.create(&mut external).expect("external");
        assert!(external["spec"].get("clusterIP").is_none());
    }

    #[test]
    fn an_exhausted_range_answers_range_is_full() {
        let mut a = Allocations::new(
            IpRange::new(Ipv4Addr::new(10, 0, 0, 0), 30),
            PortRange::new(30000, 30000),
        );
        // A /30 has two usable addresses.
        let mut first = svc(json!({"ports": [{"port": 80}]}));
        let mut second = svc(json!({"ports": [{"port": 80}]}));
        a.create(&mut first).expect("first");
        a.create(&mut second).expect("second gets the last address");
        let mut third = svc(json!({}));
        let e = a.create(&mut third).expect_err("full");
        assert_eq!(e.code, 500);
        assert_eq!(
            message(&e),
            "Internal error occurred: failed to allocate a serviceIP: range is full"
        );
    }

    #[test]
    fn an_exhausted_port_range_answers_range_is_full() {
        let mut a = Allocations::new(
            IpRange::new(Ipv4Addr::new(10, 96, 0, 0), 12),
            PortRange::new(30000, 30000),
        );
        let mut first = svc(json!({"type": "NodePort", "ports": [{"port": 80}]}));
        a.create(&mut first).expect("first");
        assert_eq!(first["spec"]["ports"][0]["nodePort"], 30000);
        let mut second = svc(json!({"type": "NodePort", "ports": [{"port": 80}]}));
        let e = a.create(&mut second).expect_err("full");
        assert_eq!(
            message(&e),
            "Internal error occurred: failed to allocate a nodePort: range is full"
        );
    }

    #[test]
    fn a_taken_node_port_is_refused_on_its_port() {
        let mut a = all();
        a.record(&svc(
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
        ));
        let mut s = svc(
            json!({"type": "NodePort", "ports": [{"port": 81}, {"port": 80, "nodePort": 30080}]}),
        );
        let e = a.create(&mut s).expect_err("taken");
        assert_eq!(
            message(&e),
            "Service \"web\" is invalid: spec.ports[1].nodePort: Invalid value: 30080: provided port is already allocated"
        );
    }

    #[test]
    fn tcp_and_udp_of_one_port_share_a_node_port() {
        let mut s = svc(json!({"type": "NodePort", "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            {"name": "web", "port": 80, "protocol": "TCP"}]}));
        all().create(&mut s).expect("allocated");
        let p = &s["spec"]["ports"];
        assert_eq!(p[0]["nodePort"], p[1]["nodePort"]);
        assert_ne!(p[0]["nodePort"], p[2]["nodePort"]);
        let mut asked = svc(json!({"type": "NodePort", "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "nodePort": 30053}]}));
        all()
            .create(&mut asked)
            .expect("one port for both protocols");
    }

    #[test]
    fn load_balancers_may_skip_node_ports_but_keep_asked_ones() {
        let mut s = svc(
            json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false,
            "ports": [{"port": 80}, {"port": 81, "nodePort": 31081}]}),
        );
        all().create(&mut s).expect("allocated");
        assert!(s["spec"]["ports"][0].get("nodePort").is_none());
        assert_eq!(s["spec"]["ports"][1]["nodePort"], 31081);
    }

    #[test]
    fn a_local_load_balancer_gets_a_health_check_port() {
        let mut s = svc(
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
            "ports": [{"port": 80}]}),
        );
        all().create(&mut s).expect("allocated");
        let hc = s["spec"]["healthCheckNodePort"].as_i64().expect("hc");
        assert!((30000..=32767).contains(&hc));
        assert_ne!(Some(hc), s["spec"]["ports"][0]["nodePort"].as_i64());
    }

    #[test]
    fn an_update_keeps_held_ports_and_allocates_new_ones() {
        let old = svc(
            json!({"type": "NodePort", "clusterIP": "10.96.9.9", "clusterIPs": ["10.96.9.9"],
            "ports": [{"name": "a", "port": 80, "nodePort": 30080}]}),
        );
        let mut a = all();
        a.record(&old);
        let mut new = svc(
            json!({"type": "NodePort", "clusterIP": "10.96.9.9", "clusterIPs": ["10.96.9.9"],
            "ports": [{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81}]}),
        );
        a.update(&old, &mut new).expect("updated");
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
        let b = new["spec"]["ports"][1]["nodePort"].as_i64().expect("b");
        assert_ne!(b, 30080);
        assert_eq!(new["spec"]["clusterIP"], "10.96.9.9");
    }

    #[test]
    fn leaving_external_name_allocates_an_address() {
        let old = svc(json!({"type": "ExternalName", "externalName": "example.com"}));
        let mut new = svc(json!({"type": "ClusterIP", "ports": [{"port": 80}]}));
        all().update(&old, &mut new).expect("updated");
        assert!(
            new["spec"]["clusterIP"]
                .as_str()
                .is_some_and(|ip| ip.starts_with("10."))
        );
    }

    #[test]
    fn a_single_stack_cluster_refuses_ipv6_and_dual_stack() {
        let mut v6 = svc(json!({"clusterIP": "fd00::1", "clusterIPs": ["fd00::1"]}));
        assert_eq!(
            message(&all().create(&mut v6).expect_err("v6")),
            "Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: [\"fd00::1\"]: IPv6 is not configured on this cluster"
        );
        let mut dual = svc(json!({"ipFamilyPolicy": "RequireDualStack"}));
        assert_eq!(
            message(&all().create(&mut dual).expect_err("dual")),
            "Service \"web\" is invalid: spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services"
        );
    }

    #[test]
    fn recorded_services_hold_their_values_across_a_rebuild() {
        // What a restart sees: the stored objects, nothing else.
        let stored = svc(
            json!({"type": "NodePort", "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
            "ports": [{"port": 80, "nodePort": 30080}]}),
        );
        let mut a = all();
        a.record(&stored);
        let mut s = svc(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}));
        assert!(a.create(&mut s).is_err());
    }
}
