//! The Ingress controller: binds the proxy's host listeners, keeps its routes and
//! certificates current from watches of Ingresses, IngressClasses, Services and
//! TLS Secrets, and publishes the listen address in each served Ingress's
//! `status.loadBalancer.ingress`, as a cloud or bare-metal controller would.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::certs::{self, CertError, Certs, Resolver};
use super::proxy::{self, Proxy};
use super::routes::Routes;
use crate::net::Network;
use crate::net::watch::reflect;

/// The `spec.controller` of IngressClasses minke serves.
pub const CONTROLLER: &str = "minke.dev/ingress";
/// The IngressClass created at bootstrap (the cluster's default).
pub const CLASS: &str = "minke";
/// The annotation that makes an IngressClass the default.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
/// The annotation older Ingresses name their class with.
pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// Why the Ingress proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A host listener could not be bound.
    #[error("cannot listen on {addr} for ingress: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS setup failed.
    #[error("ingress TLS: {0}")]
    Tls(String),
}

impl From<CertError> for Error {
    fn from(e: CertError) -> Error {
        Error::Tls(e.to_string())
    }
}

/// Where the proxy listens on the host.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Plain HTTP (port 0 picks one); `None`: no HTTP listener.
    pub http: Option<SocketAddr>,
    /// HTTPS, certificates from Ingresses' `spec.tls`; `None`: no HTTPS listener.
    pub https: Option<SocketAddr>,
    /// The address published in Ingress status when a listener's is unspecified.
    pub node_address: IpAddr,
}

/// Where the proxy listens, once bound.
#[derive(Debug, Clone, Copy, Default)]
pub struct Addrs {
    /// The HTTP listener.
    pub http: Option<SocketAddr>,
    /// The HTTPS listener.
    pub https: Option<SocketAddr>,
}

async fn bind(addr: Option<SocketAddr>) -> Result<Option<TcpListener>, Error> {
    let Some(addr) = addr else { return Ok(None) };
    TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|source| Error::Listen { addr, source })
}

/// Bind the listeners `config` asks for and start serving them and syncing the
/// routes; tasks stop on `shutdown`. With no listener asked for, nothing starts.
pub async fn start(
    config: Config,
    client: kube::Client,
    net: Network,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<Addrs, Error> {
    let (http, https) = (bind(config.http).await?, bind(config.https).await?);
    let local = |l: &Option<TcpListener>, asked: Option<SocketAddr>| match (l, asked) {
        (Some(l), Some(addr)) => l
            .local_addr()
            .map(Some)
            .map_err(|source| Error::Listen { addr, source }),
        _ => Ok(None),
    };
    let addrs = Addrs {
        http: local(&http, config.http)?,
        https: local(&https, config.https)?,
    };
    let Some(published) = addrs.http.or(addrs.https).map(|a| a.ip()) else {
        return Ok(addrs);
    };
    let published = if published.is_unspecified() {
        config.node_address
    } else {
        published
    };
    let resolver = Arc::new(Resolver::new()?);
    let proxy = Arc::new(Proxy::new(net, shutdown.clone()));
    if let Some(l) = http {
        tasks.spawn(proxy::serve(l, proxy.clone(), None));
    }
    if let Some(l) = https {
        let tls = certs::server_config(resolver.clone()).map_err(|e| Error::Tls(e.to_string()))?;
        tasks.spawn(proxy::serve(l, proxy.clone(), Some(tls.into())));
    }
    tasks.spawn(sync(client, proxy, resolver, published, shutdown));
    tracing::info!(http = ?addrs.http, https = ?addrs.https, "ingress proxy listening");
    Ok(addrs)
}

/// The watched objects the routes are built from.
struct Stores {
    ingresses: Store<Ingress>,
    classes: Store<IngressClass>,
    services: Store<Service>,
    secrets: Store<Secret>,
}

/// Rebuild routes and certificates on every change until `shutdown`.
async fn sync(
    client: kube::Client,
    proxy: Arc<Proxy>,
    resolver: Arc<Resolver>,
    published: IpAddr,
    shutdown: CancellationToken,
) {
    let all = watcher::Config::default;
    let (ingresses, a) = reflect(Api::<Ingress>::all(client.clone()), all());
    let (classes, b) = reflect(Api::<IngressClass>::all(client.clone()), all());
    let (services, c) = reflect(Api::<Service>::all(client.clone()), all());
    let (secrets, d) = reflect(
        Api::<Secret>::all(client.clone()),
        all().fields("type=kubernetes.io/tls"),
    );
    let stores = Stores {
        ingresses,
        classes,
        services,
        secrets,
    };
    let mut events = futures::stream::select_all([a, b, c, d]);
    loop {
        tokio::select! {
            ev = events.next() => {
                if ev.is_none() {
                    break;
                }
                // Let a burst of changes land before rebuilding once.
                while let Some(Some(())) = futures::FutureExt::now_or_never(events.next()) {}
                rebuild(&client, &stores, &proxy, &resolver, published).await;
            }
            () = shutdown.cancelled() => break,
        }
    }
    tracing::debug!("ingress sync stopped");
}

async fn rebuild(
    client: &kube::Client,
    stores: &Stores,
    proxy: &Proxy,
    resolver: &Resolver,
    published: IpAddr,
) {
    let classes = stores.classes.state();
    let mut served: Vec<Arc<Ingress>> = stores
        .ingresses
        .state()
        .into_iter()
        .filter(|i| is_served(i, &classes))
        .collect();
    served.sort_by(|a, b| {
        let key = |i: &Ingress| {
            (
                i.metadata.creation_timestamp.clone(),
                i.metadata.namespace.clone(),
                i.metadata.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    let ingresses = || served.iter().map(AsRef::as_ref);
    proxy.set_routes(Routes::build(ingresses(), |ns, name| {
        stores.services.get(&ObjectRef::new(name).within(ns))
    }));
    resolver.set(Certs::build(ingresses(), |ns, name| {
        stores.secrets.get(&ObjectRef::new(name).within(ns))
    }));
    for ing in &served {
        publish(client, ing, published).await;
    }
}

/// The default IngressClass: the newest of those annotated as the default.
pub fn default_class<C: std::borrow::Borrow<IngressClass>>(classes: &[C]) -> Option<&IngressClass> {
    classes
        .iter()
        .map(std::borrow::Borrow::borrow)
        .filter(|c| {
            c.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                .is_some_and(|v| v == "true")
        })
        .max_by_key(|c| c.metadata.creation_timestamp.clone())
}

/// Whether minke serves `ing`: its class (by `spec.ingressClassName`, else the
/// legacy annotation) is one whose controller is minke's, or it names none and
/// the default class is minke's (admission names it on create; this covers
/// Ingresses created before the class).
fn is_served(ing: &Ingress, classes: &[Arc<IngressClass>]) -> bool {
    let ours = |c: &IngressClass| {
        c.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(CONTROLLER)
    };
    let named = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .or_else(|| {
            ing.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(LEGACY_CLASS_ANNOTATION))
                .map(String::as_str)
        });
    match named {
        Some(name) => classes
            .iter()
            .any(|c| c.metadata.name.as_deref() == Some(name) && ours(c)),
        None => default_class(classes).is_some_and(ours),
    }
}

/// Set `status.loadBalancer.ingress` of `ing` to `[{ip}]` unless it says so already.
async fn publish(client: &kube::Client, ing: &Ingress, ip: IpAddr) {
    let ip = ip.to_string();
    let current: Vec<Option<&str>> = ing
        .status
        .iter()
        .flat_map(|s| s.load_balancer.iter())
        .flat_map(|lb| lb.ingress.iter().flatten())
        .map(|i| i.ip.as_deref())
        .collect();
    if current == [Some(ip.as_str())] {
        return;
    }
    let (Some(ns), Some(name)) = (&ing.metadata.namespace, &ing.metadata.name) else {
        return;
    };
    let api: Api<Ingress> = Api::namespaced(client.clone(), ns);
    let status = json!({"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}});
    if let Err(e) = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
    {
        tracing::debug!(ingress = %format!("{ns}/{name}"), error = %e, "publishing the ingress address");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, controller: &str, default: bool) -> Arc<IngressClass> {
        let annotations = if default {
            json!({(DEFAULT_CLASS_ANNOTATION): "true"})
        } else {
            json!({})
        };
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "annotations": annotations},
                "spec": {"controller": controller}
            }))
            .expect("class"),
        )
    }

    fn ingress(class: Option<&str>, legacy: Option<&str>) -> Ingress {
        let annotations = legacy.map_or(json!({}), |l| json!({(LEGACY_CLASS_ANNOTATION): l}));
        serde_json::from_value(json!({
            "metadata": {"name": "i", "namespace": "default", "annotations": annotations},
            "spec": {"ingressClassName": class}
        }))
        .expect("ingress")
    }

    #[test]
    fn ingresses_of_our_classes_or_of_none_when_ours_is_the_default_are_served() {
        let ours_default = [
            class(CLASS, CONTROLLER, true),
            class("nginx", "k8s.io/ingress-nginx", false),
        ];
        assert!(is_served(&ingress(Some(CLASS), None), &ours_default));
        assert!(is_served(&ingress(None, None), &ours_default));
        assert!(is_served(&ingress(None, Some(CLASS)), &ours_default));
        assert!(!is_served(&ingress(Some("nginx"), None), &ours_default));
        assert!(!is_served(&ingress(None, Some("nginx")), &ours_default));
        assert!(!is_served(&ingress(Some("absent"), None), &ours_default));
        let nginx_default = [
            class(CLASS, CONTROLLER, false),
            class("nginx", "k8s.io/ingress-nginx", true),
        ];
        assert!(!is_served(&ingress(None, None), &nginx_default));
        assert!(is_served(&ingress(Some(CLASS), None), &nginx_default));
    }

    #[test]
    fn the_newest_default_class_is_the_default() {
        let at = |c: Arc<IngressClass>, t: &str| {
            let mut c = (*c).clone();
            c.metadata.creation_timestamp = serde_json::from_value(json!(t)).ok();
            c
        };
        let classes = [
            at(class("old", CONTROLLER, true), "2024-01-01T00:00:00Z"),
            at(class("new", CONTROLLER, true), "2025-01-01T00:00:00Z"),
            at(class("newest", CONTROLLER, false), "2026-01-01T00:00:00Z"),
        ];
        let name = |c: Option<&IngressClass>| c.and_then(|c| c.metadata.name.clone());
        assert_eq!(name(default_class(&classes)).as_deref(), Some("new"));
        assert_eq!(name(default_class(&classes[2..])), None);
    }
}
