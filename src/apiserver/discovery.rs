//! Discovery documents: `/version`, `/api`, `/apis`, `/apis/G`, and the resource
//! lists kubectl reads to map kinds, short names and categories to endpoints.

use serde_json::{Value, json};

use super::Shared;
use crate::api::error::ApiError;
use crate::api::registry::ResourceType;

/// The Kubernetes version minke speaks.
pub const KUBE_MINOR: &str = "32";

/// `GET /version`.
pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "gitVersion": format!("v1.{KUBE_MINOR}.0-minke.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "n/a (rust)",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
    })
}

/// `GET /api`.
pub(crate) fn legacy_versions(s: &Shared) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": s.settings.advertise}],
    })
}

/// Groups in registry order, each with its versions in preference order.
fn groups(s: &Shared) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for t in s.registry.all().iter().filter(|t| !t.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, versions)) if !versions.contains(&t.version) => {
                versions.push(t.version.clone())
            }
            Some(_) => {}
            None => out.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    out
}

fn group_doc(name: &str, versions: &[String]) -> Value {
    let gv = |v: &String| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({
        "name": name,
        "versions": versions.iter().map(gv).collect::<Vec<_>>(),
        "preferredVersion": versions.first().map(gv).unwrap_or(Value::Null),
    })
}

/// `GET /apis`.
pub(crate) fn group_list(s: &Shared) -> Value {
    let mut groups: Vec<Value> = groups(s).iter().map(|(g, vs)| group_doc(g, vs)).collect();
    groups.push(super::metrics::group_doc());
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/G`.
pub(crate) fn group(s: &Shared, name: &str) -> Result<Value, ApiError> {
    if name == super::metrics::GROUP {
        let mut doc = super::metrics::group_doc();
        doc["kind"] = json!("APIGroup");
        doc["apiVersion"] = json!("v1");
        return Ok(doc);
    }
    let (g, vs) = groups(s)
        .into_iter()
        .find(|(g, _)| g == name)
        .ok_or_else(ApiError::path_not_found)?;
    let mut doc = group_doc(&g, &vs);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Ok(doc)
}

fn resource_entry(t: &ResourceType) -> Value {
    let mut e = json!({
        "name": t.resource,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": t.verbs,
    });
    if !t.short_names.is_empty() {
        e["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        e["categories"] = json!(t.categories);
    }
    e
}

fn subresource_entry(t: &ResourceType, sub: &str) -> Value {
    let mut e = json!({
        "name": format!("{}/{sub}", t.resource),
        "singularName": "",
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": ["get", "patch", "update"],
    });
    match sub {
        "scale" => {
            e["group"] = json!("autoscaling");
            e["version"] = json!("v1");
            e["kind"] = json!("Scale");
        }
        "finalize" => e["verbs"] = json!(["update"]),
        "binding" => {
            e["kind"] = json!("Binding");
            e["verbs"] = json!(["create"]);
        }
        "log" => e["verbs"] = json!(["get"]),
        "exec" => {
            e["kind"] = json!("PodExecOptions");
            e["verbs"] = json!(["create", "get"]);
        }
        "portforward" => {
            e["kind"] = json!("PodPortForwardOptions");
            e["verbs"] = json!(["create", "get"]);
        }
        "proxy" => {
            e["kind"] = json!(format!("{}ProxyOptions", t.kind));
            e["verbs"] = json!(["create", "delete", "get", "patch", "update"]);
        }
        _ => {}
    }
    e
}

/// `GET /api/v1` or `GET /apis/G/V`.
pub(crate) fn resource_list(s: &Shared, group: &str, version: &str) -> Result<Value, ApiError> {
    let all = s.registry.all();
    let types: Vec<_> = all
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if group == super::metrics::GROUP && version == super::metrics::VERSION {
        return Ok(super::metrics::resource_list());
    }
    if types.is_empty() {
        return Err(ApiError::path_not_found());
    }
    let mut resources = Vec::new();
    for t in types {
        resources.push(resource_entry(t));
        for sub in &t.subresources {
            resources.push(subresource_entry(t, sub));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}
