//! The routing table of the Ingress proxy: Ingress rules compiled against the
//! Services they name, and the lookup of a request's host and path in it.
//!
//! Matching is Kubernetes': a rule's host is exact (`foo.example.com`) or a
//! wildcard that stands for exactly one DNS label (`*.example.com` matches
//! `a.example.com`, not `example.com` nor `a.b.example.com`); an exact host wins
//! over a wildcard, which wins over rules without a host, and only the winning
//! group's paths are tried (as ingress-nginx's server blocks behave). Paths are
//! `Exact` (the whole path, case-sensitive) or `Prefix` (whole `/`-separated
//! elements, a trailing `/` ignored; `ImplementationSpecific` is taken as
//! `Prefix`); the longest path wins, `Exact` before `Prefix` on a tie, then the
//! oldest Ingress. When nothing matches, the group's `defaultBackend` (of its
//! oldest Ingress that has one) serves, else the oldest Ingress's, else nothing.

use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};

use super::hosts::{ByHost, normalize};

/// Where a matched request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A Service port, at its ClusterIP (so the network balances over endpoints).
    Service {
        /// The ClusterIP and port.
        addr: SocketAddr,
        /// `namespace/name:port`, for logs.
        name: String,
    },
    /// A backend that cannot be reached (no such Service or port, a headless or
    /// ExternalName Service, a resource backend): answered 503.
    Unavailable(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Exact,
    Prefix,
}

#[derive(Debug, Clone)]
struct Route {
    kind: Kind,
    /// For `Prefix`, without its trailing `/` (so `/` is empty).
    path: String,
    backend: Backend,
}

impl Route {
    fn matches(&self, path: &str) -> bool {
        match self.kind {
            Kind::Exact => path == self.path,
            Kind::Prefix => {
                self.path.is_empty()
                    || path
                        .strip_prefix(self.path.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
        }
    }
}

/// The routes of one host (or of every host, for rules without one).
#[derive(Debug, Clone, Default)]
struct Group {
    routes: Vec<Route>,
    default: Option<Backend>,
}

impl Group {
    fn find(&self, path: &str) -> Option<&Backend> {
        self.routes
            .iter()
            .find(|r| r.matches(path))
            .map(|r| &r.backend)
            .or(self.default.as_ref())
    }

    /// Longest path first, `Exact` before `Prefix`; the sort is stable, so the
    /// order routes were added in (oldest Ingress first) breaks the rest.
    fn sort(&mut self) {
        self.routes
            .sort_by(|a, b| b.path.len().cmp(&a.path.len()).then(a.kind.cmp(&b.kind)));
    }
}

/// Every route of the Ingresses served.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    hosts: ByHost<Group>,
    any: Group,
    default: Option<Backend>,
}

impl Routes {
    /// Compile `ingresses` (oldest first); `service` finds a Service by namespace
    /// and name.
    pub fn build<'a, F>(ingresses: impl IntoIterator<Item = &'a Ingress>, service: F) -> Routes
    where
        F: Fn(&str, &str) -> Option<std::sync::Arc<Service>>,
    {
        let mut routes = Routes::default();
        for ing in ingresses {
            let ns = ing.metadata.namespace.as_deref().unwrap_or_default();
            let Some(spec) = &ing.spec else { continue };
            let default = spec
                .default_backend
                .as_ref()
                .map(|b| backend(ns, b, &service));
            if routes.default.is_none() {
                routes.default.clone_from(&default);
            }
            for rule in spec.rules.iter().flatten() {
                let group = match rule.host.as_deref() {
                    None | Some("") => &mut routes.any,
                    Some(h) => routes.hosts.entry(h),
                };
                if group.default.is_none() {
                    group.default.clone_from(&default);
                }
                for p in rule.http.iter().flat_map(|h| &h.paths) {
                    let path = p.path.clone().unwrap_or_else(|| "/".into());
                    let (kind, path) = match p.path_type.as_str() {
                        "Exact" => (Kind::Exact, path),
                        _ => (Kind::Prefix, path.trim_end_matches('/').to_string()),
                    };
                    group.routes.push(Route {
                        kind,
                        path,
                        backend: backend(ns, &p.backend, &service),
                    });
                }
            }
        }
        for g in routes
            .hosts
            .values_mut()
            .chain(std::iter::once(&mut routes.any))
        {
            g.sort();
        }
        routes
    }

    /// The backend for a request to `host` (from the `Host` header or the URI, any
    /// port stripped) and `path` (without the query).
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<&Backend> {
        let host = host.map(normalize).unwrap_or_default();
        let group = self.hosts.get(&host).unwrap_or(&self.any);
        group.find(path).or(self.default.as_ref())
    }
}

/// Resolve an Ingress backend in namespace `ns` to a Service port's ClusterIP.
fn backend<F>(ns: &str, b: &IngressBackend, service: &F) -> Backend
where
    F: Fn(&str, &str) -> Option<std::sync::Arc<Service>>,
{
    let Some(sb) = &b.service else {
        return Backend::Unavailable("resource backends are not supported".into());
    };
    let name = format!("{ns}/{}", sb.name);
    let Some(svc) = service(ns, &sb.name) else {
        return Backend::Unavailable(format!("service {name} not found"));
    };
    let spec = svc.spec.clone().unwrap_or_default();
    let Some(vip) = spec
        .cluster_ip
        .as_deref()
        .and_then(|ip| ip.parse::<IpAddr>().ok())
    else {
        return Backend::Unavailable(format!("service {name} has no ClusterIP"));
    };
    let wanted = sb.port.as_ref();
    let port = spec.ports.iter().flatten().find(|p| {
        p.protocol.as_deref().unwrap_or("TCP") == "TCP"
            && match wanted {
                Some(w) if w.number.is_some() => w.number == Some(p.port),
                Some(w) => w.name.is_some() && w.name == p.name,
                None => false,
            }
    });
    match port.and_then(|p| u16::try_from(p.port).ok()) {
        Some(port) => Backend::Service {
            addr: SocketAddr::new(vip, port),
            name: format!("{name}:{port}"),
        },
        None => Backend::Unavailable(format!("service {name} has no such port")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn ingress(ns: &str, spec: serde_json::Value) -> Ingress {
        serde_json::from_value(json!({"metadata": {"name": "i", "namespace": ns}, "spec": spec}))
            .expect("ingress")
    }

    /// Services `a`…`e`: ClusterIP 10.96.0.1x, port 80 named `http`.
    fn services(ns: &str, name: &str) -> Option<Arc<Service>> {
        let last = name.bytes().next().filter(u8::is_ascii_lowercase)? - b'a';
        (ns == "default" && last < 5).then(|| {
            Arc::new(
                serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"clusterIP": format!("10.96.0.1{last}"), "ports": [{"name": "http", "port": 80}]}
                }))
                .expect("service"),
            )
        })
    }

    fn to(svc: &str) -> serde_json::Value {
        json!({"service": {"name": svc, "port": {"number": 80}}})
    }

    fn path(p: &str, kind: &str, svc: &str) -> serde_json::Value {
        json!({"path": p, "pathType": kind, "backend": to(svc)})
    }

    /// Which service (by its ClusterIP's last digit, as a letter) answers.
    fn who(r: &Routes, host: Option<&str>, p: &str) -> Option<char> {
        match r.find(host, p)? {
            Backend::Service { addr, .. } => {
                let IpAddr::V4(v4) = addr.ip() else {
                    return None;
                };
                Some(char::from(b'a' + v4.octets()[3] - 10))
            }
            Backend::Unavailable(_) => Some('!'),
        }
    }

    #[test]
    fn prefix_matches_whole_path_elements_and_ignores_a_trailing_slash() {
        let ing = ingress(
            "default",
            json!({"rules": [{"http": {"paths": [
                path("/foo/", "Prefix", "a"),
                path("/aaa/bb", "Prefix", "b"),
            ]}}]}),
        );
        let r = Routes::build([&ing], services);
        assert_eq!(who(&r, None, "/foo"), Some('a'));
        assert_eq!(who(&r, None, "/foo/"), Some('a'));
        assert_eq!(who(&r, None, "/foo/bar"), Some('a'));
        assert_eq!(who(&r, None, "/foobar"), None);
        assert_eq!(who(&r, None, "/aaa/bb"), Some('b'));
        assert_eq!(who(&r, None, "/aaa/bbb"), None);
        assert_eq!(who(&r, None, "/"), None);
    }

    #[test]
    fn exact_needs_the_whole_path_and_longest_match_wins() {
        let ing = ingress(
            "default",
            json!({"rules": [{"http": {"paths": [
                path("/", "Prefix", "a"),
                path("/foo", "Exact", "b"),
                path("/foo", "Prefix", "c"),
                path("/foo/bar", "ImplementationSpecific", "d"),
            ]}}]}),
        );
        let r = Routes::build([&ing], services);
        assert_eq!(who(&r, None, "/foo"), Some('b'), "Exact wins a tie");
        assert_eq!(who(&r, None, "/foo/"), Some('c'));
        assert_eq!(who(&r, None, "/FOO"), Some('a'), "paths are case-sensitive");
        assert_eq!(who(&r, None, "/foo/bar/baz"), Some('d'));
        assert_eq!(who(&r, None, "/elsewhere"), Some('a'));
    }

    #[test]
    fn exact_hosts_beat_wildcards_which_cover_one_label_and_beat_hostless_rules() {
        let ing = ingress(
            "default",
            json!({"rules": [
                {"host": "foo.example.com", "http": {"paths": [path("/", "Prefix", "a")]}},
                {"host": "*.example.com", "http": {"paths": [path("/", "Prefix", "b")]}},
                {"http": {"paths": [path("/", "Prefix", "c")]}},
                {"host": "only.example.org", "http": {"paths": [path("/x", "Exact", "d")]}},
            ]}),
        );
        let r = Routes::build([&ing], services);
        assert_eq!(who(&r, Some("foo.example.com"), "/"), Some('a'));
        assert_eq!(who(&r, Some("Foo.Example.com:8080"), "/"), Some('a'));
        assert_eq!(who(&r, Some("bar.example.com"), "/"), Some('b'));
        assert_eq!(who(&r, Some("a.bar.example.com"), "/"), Some('c'));
        assert_eq!(who(&r, Some("example.com"), "/"), Some('c'));
        assert_eq!(who(&r, None, "/"), Some('c'));
        assert_eq!(who(&r, Some("127.0.0.1:10080"), "/"), Some('c'));
        // A host with rules does not fall through to hostless ones.
        assert_eq!(who(&r, Some("only.example.org"), "/x"), Some('d'));
        assert_eq!(who(&r, Some("only.example.org"), "/y"), None);
    }

    #[test]
    fn default_backends_serve_what_matches_nothing_oldest_ingress_first() {
        let older = ingress(
            "default",
            json!({
                "defaultBackend": to("a"),
                "rules": [{"host": "x.test", "http": {"paths": [path("/p", "Prefix", "b")]}}]
            }),
        );
        let newer = ingress(
            "default",
            json!({
                "defaultBackend": to("c"),
                "rules": [{"host": "y.test", "http": {"paths": [path("/p", "Prefix", "d")]}}, {"host": "x.test", "http": {"paths": [path("/p", "Prefix", "e")]}}]
            }),
        );
        let r = Routes::build([&older, &newer], services);
        assert_eq!(
            who(&r, Some("x.test"), "/p"),
            Some('b'),
            "the older Ingress wins"
        );
        assert_eq!(who(&r, Some("x.test"), "/q"), Some('a'));
        assert_eq!(who(&r, Some("y.test"), "/q"), Some('c'));
        assert_eq!(who(&r, Some("z.test"), "/"), Some('a'));
        assert_eq!(Routes::default().find(Some("x.test"), "/"), None);
    }

    #[test]
    fn backends_resolve_ports_by_number_or_name_and_report_what_is_missing() {
        let ing = ingress(
            "default",
            json!({"rules": [{"http": {"paths": [
                {"path": "/named", "pathType": "Prefix", "backend": {"service": {"name": "b", "port": {"name": "http"}}}},
                {"path": "/nope", "pathType": "Prefix", "backend": {"service": {"name": "zz", "port": {"number": 80}}}},
                {"path": "/port", "pathType": "Prefix", "backend": {"service": {"name": "a", "port": {"number": 81}}}},
            ]}}]}),
        );
        let r = Routes::build([&ing], services);
        assert_eq!(
            r.find(None, "/named"),
            Some(&Backend::Service {
                addr: "10.96.0.11:80".parse().expect("addr"),
                name: "default/b:80".into()
            })
        );
        assert_eq!(who(&r, None, "/nope"), Some('!'));
        assert_eq!(who(&r, None, "/port"), Some('!'));
    }
}
