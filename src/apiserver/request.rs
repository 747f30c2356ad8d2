//! Reading a request: which endpoint a path names, its query parameters, and which
//! representation the client accepts (JSON, YAML, Table, PartialObjectMetadata).

use std::collections::HashMap;

use crate::api::error::ApiError;

/// What a URL path addresses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Route {
    Version,
    Health(String),
    LegacyVersions,
    GroupList,
    Group(String),
    ResourceList { group: String, version: String },
    OpenApiV2,
    OpenApiV3Index,
    OpenApiV3 { group: String, version: String },
    Resource(Target),
}

/// A resource endpoint: `/apis/G/V[/namespaces/NS]/RESOURCE[/NAME[/SUB]]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

/// Subresources of a namespace object, which share the shape `namespaces/NAME/X` with
/// namespaced collections.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

fn target(group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let t =
        |resource: &str, namespace: Option<&str>, name: Option<&&str>, sub: Option<&&str>| Target {
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
            namespace: namespace.map(str::to_owned),
            name: name.map(|s| s.to_string()),
            sub: sub.map(|s| s.to_string()),
        };
    // `NAME/proxy/...` carries a path of its own after the subresource.
    let fits = |more: &[&str]| more.len() <= 2 || more.get(1) == Some(&"proxy");
    match rest {
        ["namespaces", ns, resource, more @ ..] if !NAMESPACE_SUBRESOURCES.contains(resource) => {
            fits(more).then(|| t(resource, Some(ns), more.first(), more.get(1)))
        }
        [resource, more @ ..] if fits(more) => Some(t(resource, None, more.first(), more.get(1))),
        _ => None,
    }
}

/// Map a path to its route; `None` is a 404.
pub(crate) fn route(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    Some(match segs.as_slice() {
        ["version"] => Route::Version,
        [h @ ("healthz" | "livez" | "readyz"), ..] => Route::Health((*h).to_string()),
        ["api"] => Route::LegacyVersions,
        ["api", "v1"] => Route::ResourceList {
            group: String::new(),
            version: "v1".into(),
        },
        ["api", "v1", rest @ ..] => Route::Resource(target("", "v1", rest)?),
        ["apis"] => Route::GroupList,
        ["apis", g] => Route::Group((*g).to_string()),
        ["apis", g, v] => Route::ResourceList {
            group: (*g).into(),
            version: (*v).into(),
        },
        ["apis", g, v, rest @ ..] => Route::Resource(target(g, v, rest)?),
        ["openapi", "v2"] | ["swagger.json"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Index,
        ["openapi", "v3", "api", "v1"] => Route::OpenApiV3 {
            group: String::new(),
            version: "v1".into(),
        },
        ["openapi", "v3", "apis", g, v] => Route::OpenApiV3 {
            group: (*g).into(),
            version: (*v).into(),
        },
        _ => return None,
    })
}

/// Decoded query parameters.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query(HashMap<String, String>);

impl Query {
    pub(crate) fn parse(q: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// A boolean parameter as Go's strconv.ParseBool reads it.
    pub(crate) fn flag(&self, k: &str) -> bool {
        matches!(
            self.get(k),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True")
        )
    }

    /// A non-negative integer parameter; malformed values answer 400.
    pub(crate) fn number(&self, k: &str) -> Result<Option<u64>, ApiError> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid {k}: {v:?}"))),
        }
    }

    /// `dryRun=All` (the only value Kubernetes accepts).
    pub(crate) fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "Invalid dry run value: {other:?}; supported values: \"All\""
            ))),
        }
    }
}

/// What `includeObject` asks to put into Table rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IncludeObject {
    None,
    Metadata,
    Object,
}

/// The representation a response is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    Json,
    Yaml,
    Table(IncludeObject),
    /// `as=PartialObjectMetadata[List]`: objects reduced to their metadata.
    Metadata,
}

/// Choose the first acceptable media range of an `Accept` header.
pub(crate) fn negotiate(accept: Option<&str>, query: &Query) -> Result<Output, ApiError> {
    let accept = accept.unwrap_or("application/json");
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let mime = parts.next().unwrap_or("");
        let params: HashMap<&str, &str> = parts.filter_map(|p| p.split_once('=')).collect();
        match (mime, params.get("as").copied()) {
            ("application/json" | "*/*" | "application/*", Some("Table")) => {
                let include = match query.get("includeObject") {
                    Some("None") => IncludeObject::None,
                    Some("Object") => IncludeObject::Object,
                    _ => IncludeObject::Metadata,
                };
                return Ok(Output::Table(include));
            }
            (
                "application/json" | "*/*" | "application/*",
                Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
            ) => {
                return Ok(Output::Metadata);
            }
            ("application/json" | "*/*" | "application/*", None) => return Ok(Output::Json),
            ("application/yaml", None) => return Ok(Output::Yaml),
            _ => continue,
        }
    }
    Err(ApiError::not_acceptable(format!(
        "only the following media types are accepted: application/json, application/yaml (got {accept:?})"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(g: &str, r: &str, ns: Option<&str>, name: Option<&str>, sub: Option<&str>) -> Route {
        Route::Resource(Target {
            group: g.into(),
            version: "v1".into(),
            resource: r.into(),
            namespace: ns.map(Into::into),
            name: name.map(Into::into),
            sub: sub.map(Into::into),
        })
    }

    #[test]
    fn namespaced_and_cluster_paths_route_to_targets() {
        assert_eq!(
            route("/api/v1/namespaces/default/configmaps"),
            Some(t("", "configmaps", Some("default"), None, None))
        );
        assert_eq!(
            route("/apis/apps/v1/namespaces/d/deployments/web/scale"),
            Some(t(
                "apps",
                "deployments",
                Some("d"),
                Some("web"),
                Some("scale")
            ))
        );
        assert_eq!(
            route("/api/v1/namespaces/demo"),
            Some(t("", "namespaces", None, Some("demo"), None))
        );
        assert_eq!(
            route("/api/v1/namespaces/demo/finalize"),
            Some(t("", "namespaces", None, Some("demo"), Some("finalize")))
        );
        assert_eq!(route("/api/v1/pods"), Some(t("", "pods", None, None, None)));
        assert_eq!(route("/api/v1/namespaces/a/pods/b/log/extra"), None);
    }

    #[test]
    fn kubectl_get_accept_header_asks_for_a_table() {
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiate(Some(accept), &Query::default()).expect("ok"),
            Output::Table(IncludeObject::Metadata)
        );
        assert_eq!(
            negotiate(
                Some("application/vnd.kubernetes.protobuf, application/json"),
                &Query::default()
            )
            .expect("ok"),
            Output::Json
        );
        assert_eq!(
            negotiate(Some("text/html"), &Query::default())
                .expect_err("406")
                .code,
            406
        );
    }
}
