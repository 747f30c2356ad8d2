//! Cached OpenAPI documents (v2, and v3 per group-version), rebuilt when CRDs change.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::api::registry::Registry;

/// Documents built once and reused until a CRD changes what is served.
#[derive(Default)]
pub(crate) struct Cache {
    docs: Mutex<HashMap<String, Value>>,
}

impl Cache {
    /// Forget everything (a CRD changed).
    pub(crate) fn invalidate(&self) {
        if let Ok(mut d) = self.docs.lock() {
            d.clear();
        }
    }

    fn get_or(&self, key: &str, build: impl FnOnce() -> Option<Value>) -> Option<Value> {
        if let Some(v) = self.docs.lock().ok().and_then(|d| d.get(key).cloned()) {
            return Some(v);
        }
        let v = build()?;
        if let Ok(mut d) = self.docs.lock() {
            d.insert(key.to_string(), v.clone());
        }
        Some(v)
    }

    pub(crate) fn v2(&self, registry: &Registry) -> Value {
        self.get_or("v2", || Some(crate::api::openapi::v2_document(&registry.all()))).unwrap_or_else(|| json!({}))
    }

    pub(crate) fn v3_index(&self, registry: &Registry) -> Value {
        self.get_or("v3", || Some(crate::api::openapi::v3_index(&registry.all()))).unwrap_or_else(|| json!({}))
    }

    pub(crate) fn v3(&self, registry: &Registry, group: &str, version: &str) -> Option<Value> {
        self.get_or(&format!("v3/{group}/{version}"), || crate::api::openapi::v3_document(&registry.all(), group, version))
    }
}
