//! Cached OpenAPI documents (v2, and v3 per group-version), rebuilt when CRDs change.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::Value;

use crate::api::openapi;
use crate::api::registry::Registry;
use crate::api::schema::field_extensions;

#[derive(Default)]
struct Docs {
    v2: Option<Value>,
    v2_proto: Option<bytes::Bytes>,
    v3: Option<(Value, BTreeMap<String, Value>)>,
}

/// Documents built once and reused until a CRD changes what is served.
#[derive(Default)]
pub(crate) struct Cache {
    docs: Mutex<Docs>,
}

impl Cache {
    /// Forget everything (a CRD changed).
    pub(crate) fn invalidate(&self) {
        if let Ok(mut d) = self.docs.lock() {
            *d = Docs::default();
        }
    }

    pub(crate) fn v2(&self, registry: &Registry) -> Value {
        if let Some(v) = self.docs.lock().ok().and_then(|d| d.v2.clone()) {
            return v;
        }
        let v = openapi::v2_document(&registry.all(), field_extensions);
        if let Ok(mut d) = self.docs.lock() {
            d.v2 = Some(v.clone());
        }
        v
    }

    /// The v2 document in the gnostic protobuf encoding kubectl asks for.
    pub(crate) fn v2_proto(
        &self,
        registry: &Registry,
    ) -> Result<bytes::Bytes, openapi::v2proto::Error> {
        if let Some(v) = self.docs.lock().ok().and_then(|d| d.v2_proto.clone()) {
            return Ok(v);
        }
        let v = bytes::Bytes::from(openapi::v2proto::encode(&self.v2(registry))?);
        if let Ok(mut d) = self.docs.lock() {
            d.v2_proto = Some(v.clone());
        }
        Ok(v)
    }

    fn with_v3<T>(
        &self,
        registry: &Registry,
        f: impl FnOnce(&(Value, BTreeMap<String, Value>)) -> T,
    ) -> T {
        if let Some(v3) = self.docs.lock().ok().and_then(|d| d.v3.clone()) {
            return f(&v3);
        }
        let built = openapi::v3_documents(&registry.all(), field_extensions);
        let out = f(&built);
        if let Ok(mut d) = self.docs.lock() {
            d.v3 = Some(built);
        }
        out
    }

    pub(crate) fn v3_index(&self, registry: &Registry) -> Value {
        self.with_v3(registry, |(index, _)| index.clone())
    }

    pub(crate) fn v3(&self, registry: &Registry, group: &str, version: &str) -> Option<Value> {
        let key = openapi::group_version_key(group, version);
        self.with_v3(registry, |(_, docs)| docs.get(&key).cloned())
    }
}
