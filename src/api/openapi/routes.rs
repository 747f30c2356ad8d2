//! The paths and operations of one resource, laid out as the real API server lays them out.
//!
//! Collection, item, status and scale subresources, the all-namespaces list, the watch paths.

use super::definitions::Gvk;
use super::meta;
use super::operations::{
    ANY_MEDIA, BUILTIN_PATCH_MEDIA, CUSTOM_PATCH_MEDIA, LIST_MEDIA, OBJECT_MEDIA, Operation,
    PathItem, WATCH_MEDIA,
};
use super::params::{self, Param, query_set};
use super::registry::ResourceType;

/// A resource and the names of its kind's definitions in the document.
pub struct Subject<'a> {
    pub rt: &'a ResourceType,
    pub kind_definition: &'a str,
    pub list_definition: &'a str,
}

/// URL prefix of a group-version: `/api/v1` for the core group, `/apis/<group>/<version>` else.
pub fn group_version_prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// `AppsV1`, `RbacAuthorizationV1`, `CoreV1`: the group-version part of operation ids.
fn group_version_ident(group: &str, version: &str) -> String {
    let group = if group.is_empty() {
        "core"
    } else {
        group.trim_end_matches(".k8s.io")
    };
    let mut ident: String = group.split(['.', '-']).map(capitalized).collect();
    ident.push_str(&capitalized(version));
    ident
}

/// `apps_v1`, `rbacAuthorization_v1`, `core_v1`: the tag of a group-version's operations.
fn group_version_tag(group: &str, version: &str) -> String {
    let ident = group_version_ident(group, "");
    let mut chars = ident.chars();
    let head: String = chars
        .next()
        .map(|c| c.to_lowercase().collect())
        .unwrap_or_default();
    format!("{head}{}_{version}", chars.as_str())
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Every path of one resource with its operations; verbs the resource lacks get no operation,
/// and a path left with none is left out.
pub fn resource_paths(subject: &Subject) -> Vec<(String, PathItem)> {
    let routes = Routes::new(subject);
    let rt = subject.rt;
    let mut paths = vec![routes.collection(), routes.item()];
    if rt.subresources.contains(&"status") {
        paths.push(routes.status());
    }
    if rt.subresources.contains(&"scale") {
        paths.push(routes.scale());
    }
    if rt.namespaced {
        paths.push(routes.list_all_namespaces());
    }
    paths.extend(routes.watches());
    paths.retain(|(_, item)| !item.operations.is_empty());
    paths
}

/// The kinds of operation, each with its registry verb, HTTP method, `x-kubernetes-action` and
/// the words the real server builds its operation ids from.
#[derive(Clone, Copy)]
enum Act {
    List,
    Create,
    DeleteCollection,
    Read,
    Replace,
    Patch,
    Delete,
    Watch,
    WatchList,
}

impl Act {
    /// (verb, method, action, id word, id infix)
    fn spelling(
        self,
    ) -> (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    ) {
        match self {
            Act::List => ("list", "get", "list", "list", ""),
            Act::Create => ("create", "post", "post", "create", ""),
            Act::DeleteCollection => (
                "deletecollection",
                "delete",
                "deletecollection",
                "delete",
                "Collection",
            ),
            Act::Read => ("get", "get", "get", "read", ""),
            Act::Replace => ("update", "put", "put", "replace", ""),
            Act::Patch => ("patch", "patch", "patch", "patch", ""),
            Act::Delete => ("delete", "delete", "delete", "delete", ""),
            Act::Watch => ("watch", "get", "watch", "watch", ""),
            Act::WatchList => ("watch", "get", "watchlist", "watch", ""),
        }
    }
}

/// Whether an operation id names the scope: `listAppsV1NamespacedDeployment` versus
/// `listAppsV1DeploymentForAllNamespaces`.
#[derive(Clone, Copy, PartialEq)]
enum Scope {
    Own,
    AllNamespaces,
}

/// What every operation of one resource shares.
struct Routes<'a> {
    subject: &'a Subject<'a>,
    gvk: Gvk,
    gv_ident: String,
    tag: String,
    /// `/apis/apps/v1`
    prefix: String,
    /// `/namespaces/{namespace}` or nothing.
    scope_segment: &'static str,
}

impl<'a> Routes<'a> {
    fn new(subject: &'a Subject<'a>) -> Self {
        let rt = subject.rt;
        Self {
            subject,
            gvk: Gvk::of(rt),
            gv_ident: group_version_ident(&rt.group, &rt.version),
            tag: group_version_tag(&rt.group, &rt.version),
            prefix: group_version_prefix(&rt.group, &rt.version),
            scope_segment: if rt.namespaced {
                "/namespaces/{namespace}"
            } else {
                ""
            },
        }
    }

    fn rt(&self) -> &ResourceType {
        self.subject.rt
    }

    /// An operation, if the resource serves its verb. Its id reads like the real server's:
    /// `{word}{GroupVersion}{infix}{Namespaced}{Kind}{suffix}`, e.g.
    /// `deleteAppsV1CollectionNamespacedDeployment`, `readAppsV1NamespacedDeploymentStatus`.
    fn operation(
        &self,
        act: Act,
        scope: Scope,
        suffix: &str,
        description: String,
    ) -> Option<Operation> {
        let (verb, method, action, word, infix) = act.spelling();
        let scope_word = if self.rt().namespaced && scope == Scope::Own {
            "Namespaced"
        } else {
            ""
        };
        let (gv, kind) = (&self.gv_ident, &self.rt().kind);
        let id = format!("{word}{gv}{infix}{scope_word}{kind}{suffix}");
        let operation = || Operation::new(method, action, id, description, &self.tag, &self.gvk);
        self.rt().verbs.contains(&verb).then(operation)
    }

    /// Path parameters of this resource's paths (`{name}` first when there is one), then the
    /// given query options, then `pretty`.
    fn path_params(&self, name_of: Option<&str>, scope: Scope, query: &[&str]) -> Vec<Param> {
        let mut params: Vec<Param> = name_of.map(Param::name).into_iter().collect();
        if self.rt().namespaced && scope == Scope::Own {
            params.push(Param::namespace());
        }
        params.extend(query_set(query));
        params.extend(query_set(params::PATH_COMMON));
        params
    }

    fn collection_path(&self) -> String {
        format!(
            "{}{}/{}",
            self.prefix,
            self.scope_segment,
            self.rt().resource
        )
    }

    fn item_path(&self) -> String {
        format!("{}/{{name}}", self.collection_path())
    }

    fn collection(&self) -> (String, PathItem) {
        let kind = &self.rt().kind;
        let (object, list) = (self.subject.kind_definition, self.subject.list_definition);
        let listing = self
            .operation(
                Act::List,
                Scope::Own,
                "",
                format!("list or watch objects of kind {kind}"),
            )
            .map(|op| {
                op.with_params(params::LIST)
                    .responds("200", "OK", list, LIST_MEDIA)
            });
        let create = self
            .operation(Act::Create, Scope::Own, "", format!("create a {kind}"))
            .map(|op| {
                op.with_params(params::WRITE)
                    .with_body(object, ANY_MEDIA, true)
                    .responds("200", "OK", object, OBJECT_MEDIA)
                    .responds("201", "Created", object, OBJECT_MEDIA)
                    .responds("202", "Accepted", object, OBJECT_MEDIA)
            });
        let delete_all = self
            .operation(
                Act::DeleteCollection,
                Scope::Own,
                "",
                format!("delete collection of {kind}"),
            )
            .map(|op| deletes(op.with_params(params::DELETE_COLLECTION)));
        let operations = [listing, create, delete_all]
            .into_iter()
            .flatten()
            .collect();
        let params = self.path_params(None, Scope::Own, &[]);
        (self.collection_path(), PathItem { params, operations })
    }

    fn item(&self) -> (String, PathItem) {
        let kind = &self.rt().kind;
        let mut operations =
            self.object_operations("", "", &self.gvk, self.subject.kind_definition);
        let delete = self.operation(Act::Delete, Scope::Own, "", format!("delete a {kind}"));
        operations.extend(delete.map(|op| deletes(op.with_params(params::DELETE))));
        let params = self.path_params(Some(kind), Scope::Own, &[]);
        (self.item_path(), PathItem { params, operations })
    }

    /// The status subresource speaks the parent kind.
    fn status(&self) -> (String, PathItem) {
        let definition = self.subject.kind_definition;
        let operations = self.object_operations("Status", "status of ", &self.gvk, definition);
        let params = self.path_params(Some(&self.rt().kind), Scope::Own, &[]);
        (
            format!("{}/status", self.item_path()),
            PathItem { params, operations },
        )
    }

    /// The scale subresource speaks autoscaling/v1 Scale whatever the parent's group.
    fn scale(&self) -> (String, PathItem) {
        let scale = meta::scale_gvk();
        let operations = self.object_operations("Scale", "scale of ", &scale, meta::SCALE);
        let params = self.path_params(Some("Scale"), Scope::Own, &[]);
        (
            format!("{}/scale", self.item_path()),
            PathItem { params, operations },
        )
    }

    /// get/put/patch of one object: the item itself, or its status or scale subresource.
    /// `what` names it in descriptions; `definition` is what is read and written.
    fn object_operations(
        &self,
        suffix: &str,
        what: &str,
        gvk: &Gvk,
        definition: &str,
    ) -> Vec<Operation> {
        let kind = &self.rt().kind;
        let own = Scope::Own;
        let read = self
            .operation(
                Act::Read,
                own,
                suffix,
                format!("read {what}the specified {kind}"),
            )
            .map(|op| op.responds("200", "OK", definition, OBJECT_MEDIA));
        let replace = self
            .operation(
                Act::Replace,
                own,
                suffix,
                format!("replace {what}the specified {kind}"),
            )
            .map(|op| {
                written(
                    op.with_params(params::WRITE)
                        .with_body(definition, ANY_MEDIA, true),
                    definition,
                )
            });
        let patch_media = if self.rt().schema.is_some() {
            BUILTIN_PATCH_MEDIA
        } else {
            CUSTOM_PATCH_MEDIA
        };
        let patch = self
            .operation(
                Act::Patch,
                own,
                suffix,
                format!("partially update {what}the specified {kind}"),
            )
            .map(|op| {
                written(
                    op.with_params(params::PATCH)
                        .with_body(meta::PATCH, patch_media, true),
                    definition,
                )
            });
        [read, replace, patch]
            .into_iter()
            .flatten()
            .map(|op| op.for_kind(gvk))
            .collect()
    }

    /// Listing across namespaces: `/apis/apps/v1/deployments`; the list options are path-level.
    fn list_all_namespaces(&self) -> (String, PathItem) {
        let description = format!("list or watch objects of kind {}", self.rt().kind);
        let list = self.subject.list_definition;
        let operation = self
            .operation(
                Act::List,
                Scope::AllNamespaces,
                "ForAllNamespaces",
                description,
            )
            .map(|op| op.responds("200", "OK", list, LIST_MEDIA));
        let params = self.path_params(None, Scope::AllNamespaces, params::LIST);
        let path = format!("{}/{}", self.prefix, self.rt().resource);
        (
            path,
            PathItem {
                params,
                operations: operation.into_iter().collect(),
            },
        )
    }

    /// The deprecated `/watch/` paths; the list options are path-level there.
    fn watches(&self) -> Vec<(String, PathItem)> {
        let (kind, resource) = (&self.rt().kind, &self.rt().resource);
        let list_text = format!(
            "watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter \
             with a list operation instead."
        );
        let item_text = format!(
            "watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter \
             with a list operation instead, filtered to a single item with the 'fieldSelector' \
             parameter."
        );
        let watch = |act, scope, suffix, description: &str| -> Vec<Operation> {
            let operation = self.operation(act, scope, suffix, description.to_owned());
            operation
                .map(|op| op.responds("200", "OK", meta::WATCH_EVENT, WATCH_MEDIA))
                .into_iter()
                .collect()
        };
        let collection = format!("{}/watch{}/{resource}", self.prefix, self.scope_segment);
        let mut paths = vec![
            (
                format!("{collection}/{{name}}"),
                PathItem {
                    params: self.path_params(Some(kind), Scope::Own, params::LIST),
                    operations: watch(Act::Watch, Scope::Own, "", &item_text),
                },
            ),
            (
                collection,
                PathItem {
                    params: self.path_params(None, Scope::Own, params::LIST),
                    operations: watch(Act::WatchList, Scope::Own, "List", &list_text),
                },
            ),
        ];
        if self.rt().namespaced {
            let all = Scope::AllNamespaces;
            paths.push((
                format!("{}/watch/{resource}", self.prefix),
                PathItem {
                    params: self.path_params(None, all, params::LIST),
                    operations: watch(Act::WatchList, all, "ListForAllNamespaces", &list_text),
                },
            ));
        }
        paths
    }
}

/// Responses of put and patch: the object, as updated or as created.
fn written(op: Operation, definition: &str) -> Operation {
    op.responds("200", "OK", definition, OBJECT_MEDIA).responds(
        "201",
        "Created",
        definition,
        OBJECT_MEDIA,
    )
}

/// Body and responses of the two deletions.
fn deletes(op: Operation) -> Operation {
    op.with_body(meta::DELETE_OPTIONS, ANY_MEDIA, false)
        .responds("200", "OK", meta::STATUS, OBJECT_MEDIA)
        .responds("202", "Accepted", meta::STATUS, OBJECT_MEDIA)
}

#[cfg(test)]
pub(super) fn ident_and_tag(group: &str, version: &str) -> (String, String) {
    (
        group_version_ident(group, version),
        group_version_tag(group, version),
    )
}
