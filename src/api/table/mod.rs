//! Server-side `meta.k8s.io/v1` Table columns and row cells for the built-in kinds, as `kubectl get` asks for them.

// Each kind's printer mirrors Kubernetes' own (`pkg/printers/internalversion/printers.go`), read
// against the v1 JSON an API server stores. The server always prints the `-o wide` cells too
// (kubectl hides the priority-1 columns itself), so every row carries every column.

mod batch;
mod cluster;
mod core;
mod docs;
mod events;
mod format;
mod node;
mod pod;
mod quantity;
mod selector;
mod service;
mod storage;
mod workloads;

use serde_json::Value;

/// One column of a meta.k8s.io/v1 Table.
#[derive(Debug, Clone)]
pub struct Column {
    /// The column's header text (e.g. "Name", "Age").
    pub name: &'static str,
    /// "string" | "integer" | "number" | "boolean" | "date"
    pub type_: &'static str,
    /// "name" for the NAME column, else "".
    pub format: &'static str,
    /// The column's help text: what the cells hold.
    pub description: &'static str,
    /// 0 normal, 1 = only with -o wide.
    pub priority: i32,
}

impl Column {
    /// A column shown by plain `kubectl get`.
    const fn new(name: &'static str, type_: &'static str, description: &'static str) -> Self {
        Column {
            name,
            type_,
            format: "",
            description,
            priority: 0,
        }
    }

    /// A column kubectl shows only with `-o wide`.
    const fn wide(name: &'static str, type_: &'static str, description: &'static str) -> Self {
        Column {
            name,
            type_,
            format: "",
            description,
            priority: 1,
        }
    }

    /// The NAME column every printer but the event one starts with.
    const fn name() -> Self {
        Column {
            name: "Name",
            type_: "string",
            format: "name",
            description: docs::OBJECT_META_NAME,
            priority: 0,
        }
    }

    /// The AGE column: a string such as "5m", not a date, because the server formats it.
    const fn age() -> Self {
        Column::new("Age", "string", docs::OBJECT_META_CREATION_TIMESTAMP)
    }
}

type ColumnsFn = fn() -> Vec<Column>;
type CellsFn = fn(&Value, jiff::Timestamp) -> Vec<Value>;

/// A kind's printer: its columns and how one object becomes a row.
struct Printer {
    columns: ColumnsFn,
    cells: CellsFn,
}

/// Finds the printer for a resource. Resources without one of their own get `None`.
fn printer(group: &str, resource: &str) -> Option<Printer> {
    use self::{batch as b, cluster as cl, core as c, events as e, node as n, pod as p};
    use self::{service as s, storage as st, workloads as w};
    let (columns, cells): (ColumnsFn, CellsFn) = match (group, resource) {
        ("", "pods") => (p::columns, p::cells),
        ("", "namespaces") => (c::namespace_columns, c::namespace_cells),
        ("", "configmaps") => (c::config_map_columns, c::config_map_cells),
        ("", "secrets") => (c::secret_columns, c::secret_cells),
        ("", "serviceaccounts") => (c::service_account_columns, c::service_account_cells),
        ("", "podtemplates") => (c::pod_template_columns, c::pod_template_cells),
        ("", "replicationcontrollers") => (
            c::replication_controller_columns,
            c::replication_controller_cells,
        ),
        ("", "resourcequotas") => (c::resource_quota_columns, c::resource_quota_cells),
        // Kubernetes registers no printer for these: they use the API server's default convertor.
        ("", "limitranges") | ("rbac.authorization.k8s.io", "roles" | "clusterroles") => {
            (cl::created_at_columns, cl::created_at_cells)
        }
        ("", "services") => (s::service_columns, s::service_cells),
        ("", "endpoints") => (s::endpoints_columns, s::endpoints_cells),
        ("", "nodes") => (n::columns, n::cells),
        ("", "events") => (e::columns, e::core_cells),
        ("events.k8s.io", "events") => (e::columns, e::events_api_cells),
        ("", "persistentvolumes") => (st::persistent_volume_columns, st::persistent_volume_cells),
        ("", "persistentvolumeclaims") => (st::claim_columns, st::claim_cells),
        ("storage.k8s.io", "storageclasses") => {
            (st::storage_class_columns, st::storage_class_cells)
        }
        ("apps", "deployments") => (w::deployment_columns, w::deployment_cells),
        ("apps", "replicasets") => (w::replica_set_columns, w::replica_set_cells),
        ("apps", "statefulsets") => (w::stateful_set_columns, w::stateful_set_cells),
        ("apps", "daemonsets") => (w::daemon_set_columns, w::daemon_set_cells),
        ("apps", "controllerrevisions") => {
            (w::controller_revision_columns, w::controller_revision_cells)
        }
        ("batch", "jobs") => (b::job_columns, b::job_cells),
        ("batch", "cronjobs") => (b::cron_job_columns, b::cron_job_cells),
        ("networking.k8s.io", "ingresses") => (s::ingress_columns, s::ingress_cells),
        ("networking.k8s.io", "ingressclasses") => {
            (s::ingress_class_columns, s::ingress_class_cells)
        }
        ("networking.k8s.io", "networkpolicies") => {
            (s::network_policy_columns, s::network_policy_cells)
        }
        ("discovery.k8s.io", "endpointslices") => {
            (s::endpoint_slice_columns, s::endpoint_slice_cells)
        }
        ("rbac.authorization.k8s.io", "rolebindings") => {
            (cl::role_binding_columns, cl::binding_cells)
        }
        ("rbac.authorization.k8s.io", "clusterrolebindings") => {
            (cl::cluster_role_binding_columns, cl::binding_cells)
        }
        ("autoscaling", "horizontalpodautoscalers") => (cl::hpa_columns, cl::hpa_cells),
        ("coordination.k8s.io", "leases") => (cl::lease_columns, cl::lease_cells),
        ("policy", "poddisruptionbudgets") => (cl::pdb_columns, cl::pdb_cells),
        ("apiextensions.k8s.io", "customresourcedefinitions") => (cl::crd_columns, cl::crd_cells),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

/// Columns for a resource (group "" for core, e.g. ("apps","deployments")). Unknown resources get the default NAME + AGE.
pub fn columns(group: &str, resource: &str) -> Vec<Column> {
    match printer(group, resource) {
        Some(p) => (p.columns)(),
        None => default_columns(),
    }
}

/// The cells of one row, same length and order as `columns(group, resource)`. `now` is the current time for AGE-like columns.
pub fn cells(group: &str, resource: &str, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    match printer(group, resource) {
        Some(p) => (p.cells)(obj, now),
        None => default_cells(obj, now),
    }
}

/// Human duration as kubectl/printers print it (duration.HumanDuration: "5s", "3m2s", "2d3h", "4y" ...).
pub fn human_duration(d: std::time::Duration) -> String {
    format::human_duration_nanos(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// What a custom resource without printer columns shows: its name and its age. The AGE column is
/// typed "date" there, as the apiextensions server declares it, though the cell is already an age.
fn default_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Age", "date", docs::OBJECT_META_CREATION_TIMESTAMP),
    ]
}

fn default_cells(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let o = format::Obj(obj);
    vec![o.name().into(), o.age(now)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RESOURCES: &[(&str, &str)] = &[
        ("", "pods"),
        ("", "namespaces"),
        ("", "services"),
        ("", "endpoints"),
        ("", "configmaps"),
        ("", "secrets"),
        ("", "serviceaccounts"),
        ("", "events"),
        ("", "nodes"),
        ("", "persistentvolumes"),
        ("", "persistentvolumeclaims"),
        ("", "resourcequotas"),
        ("", "limitranges"),
        ("", "replicationcontrollers"),
        ("", "podtemplates"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("apps", "controllerrevisions"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
        ("networking.k8s.io", "ingresses"),
        ("networking.k8s.io", "ingressclasses"),
        ("networking.k8s.io", "networkpolicies"),
        ("discovery.k8s.io", "endpointslices"),
        ("storage.k8s.io", "storageclasses"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "clusterroles"),
        ("rbac.authorization.k8s.io", "rolebindings"),
        ("rbac.authorization.k8s.io", "clusterrolebindings"),
        ("autoscaling", "horizontalpodautoscalers"),
        ("coordination.k8s.io", "leases"),
        ("policy", "poddisruptionbudgets"),
        ("events.k8s.io", "events"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("example.com", "widgets"),
    ];

    fn now() -> jiff::Timestamp {
        "2024-05-01T12:00:00Z".parse().expect("valid timestamp")
    }

    #[test]
    fn every_resource_gives_as_many_cells_as_columns_even_for_an_empty_object() {
        for (group, resource) in RESOURCES {
            for obj in [
                json!({}),
                json!(null),
                json!({"metadata": 5, "spec": "odd", "status": []}),
            ] {
                let cols = columns(group, resource);
                let row = cells(group, resource, &obj, now());
                assert_eq!(cols.len(), row.len(), "{group}/{resource} with {obj}");
            }
        }
    }

    #[test]
    fn only_the_name_column_has_the_name_format() {
        for (group, resource) in RESOURCES {
            let names: Vec<_> = columns(group, resource)
                .into_iter()
                .filter(|c| c.format == "name")
                .collect();
            assert_eq!(names.len(), 1, "{group}/{resource}");
            assert_eq!(names[0].name, "Name");
        }
    }

    #[test]
    fn an_unknown_resource_gets_name_and_age() {
        let cols = columns("example.com", "widgets");
        assert_eq!(
            cols.iter().map(|c| c.name).collect::<Vec<_>>(),
            ["Name", "Age"]
        );
        let obj = json!({"metadata": {"name": "w1", "creationTimestamp": "2024-05-01T11:58:00Z"}});
        assert_eq!(
            cells("example.com", "widgets", &obj, now()),
            [json!("w1"), json!("2m")]
        );
    }

    #[test]
    fn roles_use_the_default_convertor_with_created_at() {
        let obj =
            json!({"metadata": {"name": "reader", "creationTimestamp": "2024-04-01T08:09:10.5Z"}});
        let cols = columns("rbac.authorization.k8s.io", "roles");
        assert_eq!(cols[1].name, "Created At");
        assert_eq!(cols[1].type_, "date");
        let row = cells("rbac.authorization.k8s.io", "roles", &obj, now());
        assert_eq!(row, [json!("reader"), json!("2024-04-01T08:09:10Z")]);
        let undated = cells(
            "",
            "limitranges",
            &json!({"metadata": {"name": "lr"}}),
            now(),
        );
        assert_eq!(undated, [json!("lr"), json!("0001-01-01T00:00:00Z")]);
    }

    #[test]
    fn human_duration_of_a_std_duration_matches_kubectl() {
        use std::time::Duration;
        assert_eq!(human_duration(Duration::from_secs(5)), "5s");
        assert_eq!(human_duration(Duration::from_secs(3 * 60 + 2)), "3m2s");
        assert_eq!(human_duration(Duration::from_secs(51 * 3600)), "2d3h");
        assert_eq!(human_duration(Duration::from_secs(4 * 365 * 86400)), "4y");
    }
}
