//! The apimachinery meta types every document carries, and the standard texts of a kind's fields.

use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    DeleteOptions, ListMeta, ObjectMeta, Patch, Status, WatchEvent,
};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;

use super::definitions::{self, Definitions, Gvk};

// Definition names of the meta types, as the real API server spells them (and as k8s-openapi's
// `JsonSchema::schema_name` returns them).
pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
pub const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";
pub const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
pub const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

pub const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
pub const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
pub const OBJECT_METADATA_DESCRIPTION: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
pub const LIST_METADATA_DESCRIPTION: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The kind a `scale` subresource speaks, whatever group its parent lives in.
pub fn scale_gvk() -> Gvk {
    Gvk::new("autoscaling", "v1", "Scale")
}

/// Adds the meta types that operations and kind schemas refer to. ObjectMeta comes in here too,
/// because a custom resource's schema refers to it without bringing it along.
pub fn add_meta_definitions(defs: &mut Definitions, with_scale: bool) {
    let schemas = [
        schemars::schema_for!(ObjectMeta),
        schemars::schema_for!(ListMeta),
        schemars::schema_for!(Status),
        schemars::schema_for!(DeleteOptions),
        schemars::schema_for!(Patch),
        schemars::schema_for!(WatchEvent<RawExtension>),
    ];
    for schema in schemas {
        definitions::add_schemars(schema, defs);
    }
    if with_scale && let Some(name) = definitions::add_schemars(schemars::schema_for!(Scale), defs)
    {
        definitions::mark_kind(defs, &name, &scale_gvk());
    }
}
