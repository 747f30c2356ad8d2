//! Container resource requirements: resource names, quantities, and requests against limits.

use super::errors::{FieldError, Path};
use super::meta::IS_NEGATIVE;
use super::names;
use super::obj;
use crate::api::quantity::{self, Quantity};
use serde_json::Value;

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

/// Native resources (no domain or a kubernetes.io domain) other than hugepages may be overcommitted.
fn overcommit_allowed(name: &str) -> bool {
    let native = !name.contains('/') || name.contains("kubernetes.io/");
    native && !name.starts_with("hugepages-")
}

fn resource_name(name: &str, path: &Path) -> Vec<FieldError> {
    let mut errs: Vec<FieldError> = names::qualified_name(name)
        .into_iter()
        .map(|m| FieldError::invalid(path, name, m))
        .collect();
    if errs.is_empty() && !name.contains('/') && !is_standard_container_resource(name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "must be a standard resource type or fully qualified",
        ));
        errs.push(FieldError::invalid(
            path,
            name,
            "must be a standard resource for containers",
        ));
    }
    errs
}

fn quantity_at(name: &str, v: &Value, path: &Path, errs: &mut Vec<FieldError>) -> Option<Quantity> {
    match quantity::from_json(v) {
        Some(q) => {
            if q.is_negative() {
                errs.push(FieldError::invalid(path, q.canonical(), IS_NEGATIVE));
            }
            // Extended resources (a non-kubernetes.io domain) are counted in whole units.
            if !overcommit_allowed(name) && !name.starts_with("hugepages-") && !q.is_integer() {
                errs.push(FieldError::invalid(
                    path,
                    q.canonical(),
                    "must be an integer",
                ));
            }
            Some(q)
        }
        None => {
            errs.push(FieldError::invalid(
                path,
                quantity::raw(v),
                quantity::QUANTITY_FORMAT_ERROR,
            ));
            None
        }
    }
}

/// `ValidateContainerResourceRequirements`: names, non-negative values, requests <= limits.
pub fn validate_resources(res: Option<&Value>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(res) = res else { return errs };
    let (lim_path, req_path) = (path.child("limits"), path.child("requests"));
    let mut limits: Vec<(&str, Quantity)> = Vec::new();
    if let Some(map) = obj(res, "limits") {
        for (name, v) in map {
            let p = lim_path.key(name);
            errs.extend(resource_name(name, &p));
            if let Some(q) = quantity_at(name, v, &p, &mut errs) {
                limits.push((name, q));
            }
        }
    }
    if let Some(map) = obj(res, "requests") {
        for (name, v) in map {
            let p = req_path.key(name);
            errs.extend(resource_name(name, &p));
            let Some(q) = quantity_at(name, v, &p, &mut errs) else {
                continue;
            };
            match limits.iter().find(|(n, _)| n == name) {
                Some((_, lim)) if q.cmp(lim).is_ne() && !overcommit_allowed(name) => {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q.canonical(),
                        format!("must be equal to {name} limit of {}", lim.canonical()),
                    ))
                }
                Some((_, lim)) if q.cmp(lim).is_gt() => errs.push(FieldError::invalid(
                    &req_path,
                    q.canonical(),
                    format!(
                        "must be less than or equal to {name} limit of {}",
                        lim.canonical()
                    ),
                )),
                None if !overcommit_allowed(name) => errs.push(FieldError::required(
                    &lim_path,
                    "Limit must be set for non overcommitable resources",
                )),
                _ => {}
            }
        }
    }
    errs
}
