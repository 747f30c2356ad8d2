//! `meta.k8s.io/v1` Table responses: the columns kubectl prints, computed by the server.

use serde_json::{Value, json};

use super::request::IncludeObject;
use super::response::partial_metadata;
use crate::api::registry::ResourceType;
use crate::api::table as printers;

/// Columns and cells of a custom resource: NAME, its `additionalPrinterColumns`, and
/// AGE unless the CRD lists its own.
fn custom_columns(rt: &ResourceType) -> Vec<Value> {
    let mut cols = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    for c in &rt.printer_columns {
        cols.push(json!({
            "name": c.get("name").cloned().unwrap_or(Value::Null),
            "type": c.get("type").cloned().unwrap_or(json!("string")),
            "format": c.get("format").cloned().unwrap_or(json!("")),
            "description": c.get("description").cloned().unwrap_or(json!("")),
            "priority": c.get("priority").cloned().unwrap_or(json!(0)),
        }));
    }
    if rt.printer_columns.is_empty() {
        cols.push(json!({"name": "Age", "type": "date", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0}));
    }
    cols
}

/// Evaluate the simple JSONPath forms CRDs use in printer columns (`.spec.replicas`,
/// `.status.conditions[0].type`).
fn simple_json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for part in path
        .trim_start_matches('.')
        .split('.')
        .filter(|p| !p.is_empty())
    {
        let (field, index) = match part.split_once('[') {
            Some((f, rest)) => (f, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        cur = cur.get(field)?;
        if let Some(i) = index {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

fn custom_cells(rt: &ResourceType, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let mut cells = vec![obj.pointer("/metadata/name").cloned().unwrap_or(json!(""))];
    for c in &rt.printer_columns {
        let path = c.get("jsonPath").and_then(Value::as_str).unwrap_or("");
        let v = simple_json_path(obj, path).cloned().unwrap_or(Value::Null);
        let is_date = c.get("type").and_then(Value::as_str) == Some("date");
        cells.push(if is_date {
            age_cell(v.as_str(), now)
        } else {
            v
        });
    }
    if rt.printer_columns.is_empty() {
        cells.push(age_cell(
            obj.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str),
            now,
        ));
    }
    cells
}

fn age_cell(ts: Option<&str>, now: jiff::Timestamp) -> Value {
    let Some(t) = ts.and_then(|s| s.parse::<jiff::Timestamp>().ok()) else {
        return json!("<unknown>");
    };
    let secs = now.as_second().saturating_sub(t.as_second()).max(0);
    json!(printers::human_duration(std::time::Duration::from_secs(
        secs.unsigned_abs()
    )))
}

/// Build a Table of `items`. `with_columns` is false for watch events after the first,
/// as the real server sends column definitions once.
pub(crate) fn table(
    rt: &ResourceType,
    items: &[Value],
    meta: Value,
    include: IncludeObject,
    with_columns: bool,
) -> Value {
    let now = jiff::Timestamp::now();
    let custom = rt.codec.is_none();
    let columns: Vec<Value> = if custom {
        custom_columns(rt)
    } else {
        printers::columns(&rt.group, &rt.resource)
            .into_iter()
            .map(|c| json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority}))
            .collect()
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let cells = if custom {
                custom_cells(rt, obj, now)
            } else {
                printers::cells(&rt.group, &rt.resource, obj, now)
            };
            let mut row = json!({ "cells": cells });
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial_metadata(obj),
                IncludeObject::Object => row["object"] = obj.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": if with_columns { Value::Array(columns) } else { json!([]) },
        "rows": rows,
    })
}
