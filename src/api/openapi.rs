//! OpenAPI documents (interim: index and empty documents until the generator lands).
use std::sync::Arc;

use serde_json::{Value, json};

use super::registry::ResourceType;

/// `/openapi/v3`.
pub fn v3_index(types: &[Arc<ResourceType>]) -> Value {
    let mut paths = serde_json::Map::new();
    for t in types {
        let p = if t.group.is_empty() { format!("api/{}", t.version) } else { format!("apis/{}/{}", t.group, t.version) };
        paths.insert(p.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{p}")}));
    }
    json!({"paths": paths})
}

/// `/openapi/v3/...`.
pub fn v3_document(types: &[Arc<ResourceType>], group: &str, version: &str) -> Option<Value> {
    types.iter().any(|t| t.group == group && t.version == version).then(|| json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": {}, "components": {"schemas": {}}}))
}

/// `/openapi/v2`.
pub fn v2_document(_types: &[Arc<ResourceType>]) -> Value {
    json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": {}, "definitions": {}})
}
