//! Resource quota evaluation, shared by quota admission (which checks one new object
//! against the quotas of its namespace) and the resourcequota controller (which keeps
//! each quota's `status.used` current): what an object uses, resource-list
//! arithmetic, and the error texts Kubernetes prints.

mod list;
mod pod;
mod usage;

pub use list::{ResourceList, add, exceeded, mask, negative, parse, pretty, remove_zeros, to_json};
pub use pod::{compute_usage, container_totals};
pub use usage::{
    STORAGE_CLASS_SUFFIX, charged_on_update, constraints, counted_resources, hard, matches,
    matching_resources, object_count_name, scope_selectors, total, usage,
};
