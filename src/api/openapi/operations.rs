//! Operations and path items, modelled once and rendered for OpenAPI 3.0 or Swagger 2.0.
//!
//! v3 carries bodies in requestBody/content; v2 in a body parameter with consumes/produces.

use serde_json::{Map, Value, json};

use super::definitions::Gvk;
use super::dialect::Dialect;
use super::params::{Param, query_set};

/// Media types an object comes back in. minke speaks JSON and YAML (no protobuf or CBOR), so
/// only those are promised.
pub const OBJECT_MEDIA: &[&str] = &["application/json", "application/yaml"];
/// A list may also be asked for as a watch stream.
pub const LIST_MEDIA: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/json;stream=watch",
];
pub const WATCH_MEDIA: &[&str] = &["application/json", "application/json;stream=watch"];
/// Bodies of create/replace/delete: any media type the server decodes.
pub const ANY_MEDIA: &[&str] = &["*/*"];
/// Patch bodies of built-in kinds. kubectl's client-side apply computes a strategic merge patch
/// from the v3 schemas exactly when the kind's PATCH operation lists this media type.
pub const BUILTIN_PATCH_MEDIA: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
/// Custom resources have no Go struct tags, hence no strategic merge patch; kubectl then sends
/// a JSON merge patch.
pub const CUSTOM_PATCH_MEDIA: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
];

/// A request body: which definition, in which media types.
#[derive(Clone, Debug)]
struct Body {
    definition: String,
    media: &'static [&'static str],
    required: bool,
}

/// A successful response: status code, its text, the definition returned.
#[derive(Clone, Debug)]
struct Response {
    code: &'static str,
    description: &'static str,
    definition: String,
    media: &'static [&'static str],
}

/// One operation of a path item, built up with the `with_*` / `responds` methods.
#[derive(Clone, Debug)]
pub struct Operation {
    /// Lower-case HTTP method, the key of the operation in its path item.
    method: &'static str,
    /// `x-kubernetes-action`: get, list, post, put, patch, delete, deletecollection, watch, watchlist.
    action: &'static str,
    id: String,
    description: String,
    tag: String,
    /// `x-kubernetes-group-version-kind`, by which kubectl finds a kind's operations.
    gvk: Gvk,
    /// Parameters of this operation alone (see `params::WRITE` for why they are not path-level).
    params: Vec<Param>,
    body: Option<Body>,
    responses: Vec<Response>,
}

impl Operation {
    pub fn new(
        method: &'static str,
        action: &'static str,
        id: String,
        description: String,
        tag: &str,
        gvk: &Gvk,
    ) -> Self {
        Self {
            method,
            action,
            id,
            description,
            tag: tag.to_owned(),
            gvk: gvk.clone(),
            params: Vec::new(),
            body: None,
            responses: Vec::new(),
        }
    }

    /// The kind this operation speaks, when it is not its resource's own (a scale subresource).
    pub fn for_kind(mut self, gvk: &Gvk) -> Self {
        self.gvk = gvk.clone();
        self
    }

    /// Declares query options from the `params` catalogue.
    pub fn with_params(mut self, names: &[&str]) -> Self {
        self.params.extend(query_set(names));
        self
    }

    pub fn with_body(
        mut self,
        definition: &str,
        media: &'static [&'static str],
        required: bool,
    ) -> Self {
        let definition = definition.to_owned();
        self.body = Some(Body {
            definition,
            media,
            required,
        });
        self
    }

    pub fn responds(
        mut self,
        code: &'static str,
        description: &'static str,
        definition: &str,
        media: &'static [&'static str],
    ) -> Self {
        let definition = definition.to_owned();
        self.responses.push(Response {
            code,
            description,
            definition,
            media,
        });
        self
    }

    fn render(&self, dialect: Dialect) -> Value {
        let mut op = Map::new();
        op.insert("description".into(), self.description.clone().into());
        op.insert("operationId".into(), self.id.clone().into());
        op.insert("tags".into(), json!([self.tag]));
        let mut params: Vec<Value> = self
            .params
            .iter()
            .map(|param| param.render(dialect))
            .collect();
        match (dialect, &self.body) {
            (Dialect::V3, Some(body)) => {
                let content = media_map(dialect, body.media, &body.definition);
                op.insert(
                    "requestBody".into(),
                    json!({"content": content, "required": body.required}),
                );
            }
            (Dialect::V2, Some(body)) => {
                params.push(json!({
                    "in": "body",
                    "name": "body",
                    "required": body.required,
                    "schema": dialect.schema_ref(&body.definition),
                }));
                op.insert("consumes".into(), json!(body.media));
            }
            (_, None) => {}
        }
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        if dialect == Dialect::V2 {
            let produces = self
                .responses
                .first()
                .map_or(OBJECT_MEDIA, |response| response.media);
            op.insert("produces".into(), json!(produces));
            op.insert("schemes".into(), json!(["https"]));
        }
        let mut responses = Map::new();
        for response in &self.responses {
            let mut rendered = Map::new();
            rendered.insert("description".into(), response.description.into());
            let schema = match dialect {
                Dialect::V3 => (
                    "content",
                    media_map(dialect, response.media, &response.definition),
                ),
                Dialect::V2 => ("schema", dialect.schema_ref(&response.definition)),
            };
            rendered.insert(schema.0.into(), schema.1);
            responses.insert(response.code.into(), Value::Object(rendered));
        }
        // Every request may be refused for want of credentials, as the real server declares.
        responses.insert("401".into(), json!({"description": "Unauthorized"}));
        op.insert("responses".into(), Value::Object(responses));
        op.insert("x-kubernetes-action".into(), self.action.into());
        op.insert(
            "x-kubernetes-group-version-kind".into(),
            self.gvk.to_value(),
        );
        Value::Object(op)
    }
}

/// One path: parameters shared by its operations, and the operations.
#[derive(Clone, Debug, Default)]
pub struct PathItem {
    pub params: Vec<Param>,
    pub operations: Vec<Operation>,
}

impl PathItem {
    pub fn render(&self, dialect: Dialect) -> Value {
        let mut item = Map::new();
        for operation in &self.operations {
            item.insert(operation.method.into(), operation.render(dialect));
        }
        if !self.params.is_empty() {
            let params = self
                .params
                .iter()
                .map(|param| param.render(dialect))
                .collect();
            item.insert("parameters".into(), Value::Array(params));
        }
        Value::Object(item)
    }
}

/// OpenAPI 3.0 `content`: each media type carries the same schema.
fn media_map(dialect: Dialect, media: &[&str], definition: &str) -> Value {
    let content: Map<String, Value> = media
        .iter()
        .map(|media_type| {
            (
                (*media_type).to_owned(),
                json!({"schema": dialect.schema_ref(definition)}),
            )
        })
        .collect();
    Value::Object(content)
}
