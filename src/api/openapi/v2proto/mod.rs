//! Encodes Swagger 2.0 JSON as the gnostic `openapi_v2.Document` protobuf kubectl reads from `/openapi/v2`.
//!
//! kubectl never asks for the JSON form of `/openapi/v2`; it decodes this protobuf (gnostic-models
//! `openapiv2/OpenAPIv2.proto`) for client-side validation, `kubectl explain
//! --output=plaintext-openapiv2`, the `fieldValidation` support probe and older code paths.
//! Kubernetes builds it by parsing its JSON with gnostic and marshalling the result; we walk the
//! JSON along tables of the proto's messages (`spec`) and write the wire format directly.
//!
//! What follows gnostic: objects become messages even when empty (kube-openapi tells a kind from a
//! map by `properties` being present); `x-…` keys become `NamedAny` vendor extensions whose
//! `Any.yaml` holds the value; oneofs (`additionalProperties`, parameters, responses, security
//! schemes) pick their member by the value's shape. Where it differs: keys gnostic would reject
//! are skipped rather than failing the whole document, and `Any.yaml` is flow-style (JSON) text.

mod encoder;
mod operations;
mod spec;
mod wire;

use serde_json::Value;

/// The media type kubectl sends in `Accept` for this document (kube-openapi's "deprecated" one).
/// A server should also take [`CONTENT_TYPE`] there, as kube-openapi does.
pub const ACCEPT: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The Content-Type of that answer. Not the `@` form kubectl asks for: client-go parses the
/// answer's Content-Type with Go's `mime.ParseMediaType`, which rejects `@` in a subtype and fails
/// the request ("mime: unexpected content after media subtype"), so kube-openapi answers that
/// Accept with this dot form.
pub const CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// Why a document could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value does not have the JSON type its Swagger 2.0 field needs; `at` is its JSON pointer.
    #[error("swagger document at {at:?}: expected {expected}")]
    Unexpected {
        /// The JSON pointer of the value within the document.
        at: String,
        /// A description of what was needed there (e.g. "a string", "an object").
        expected: &'static str,
    },
}

impl Error {
    fn expected(what: &'static str) -> Self {
        Error::Unexpected {
            at: String::new(),
            expected: what,
        }
    }

    /// Prefixes the location with the key or index it sat under, as the error travels up.
    fn within(self, segment: &str) -> Self {
        match self {
            Error::Unexpected { at, expected } => {
                let segment = segment.replace('~', "~0").replace('/', "~1");
                Error::Unexpected {
                    at: format!("/{segment}{at}"),
                    expected,
                }
            }
        }
    }
}

/// The protobuf encoding of a Swagger 2.0 document (as JSON), as `GET /openapi/v2` answers
/// `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`.
pub fn encode(swagger: &Value) -> Result<Vec<u8>, Error> {
    let object = swagger
        .as_object()
        .ok_or_else(|| Error::expected("a Swagger 2.0 document object"))?;
    let mut out = Vec::new();
    encoder::message(&mut out, &spec::DOCUMENT, object)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// One decoded field's payload.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Wire<'a> {
        Varint(u64),
        Fixed64(u64),
        Bytes(&'a [u8]),
    }

    fn varint(buf: &mut &[u8]) -> u64 {
        let (mut value, mut shift) = (0, 0);
        loop {
            let (&byte, rest) = buf.split_first().expect("truncated varint");
            *buf = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return value;
            }
            shift += 7;
        }
    }

    /// The fields of a message in wire order: a test-only protobuf decoder.
    fn decode(mut buf: &[u8]) -> Vec<(u32, Wire<'_>)> {
        let mut fields = Vec::new();
        while !buf.is_empty() {
            let key = varint(&mut buf);
            let payload = match key & 7 {
                0 => Wire::Varint(varint(&mut buf)),
                1 => {
                    let (bytes, rest) = buf.split_at(8);
                    buf = rest;
                    Wire::Fixed64(u64::from_le_bytes(bytes.try_into().unwrap()))
                }
                2 => {
                    let len = varint(&mut buf) as usize;
                    let (bytes, rest) = buf.split_at(len);
                    buf = rest;
                    Wire::Bytes(bytes)
                }
                other => panic!("wire type {other} is not one we write"),
            };
            fields.push((u32::try_from(key >> 3).unwrap(), payload));
        }
        fields
    }

    fn all(buf: &[u8], number: u32) -> Vec<Wire<'_>> {
        decode(buf)
            .into_iter()
            .filter(|(n, _)| *n == number)
            .map(|(_, w)| w)
            .collect()
    }

    fn bytes_all(buf: &[u8], number: u32) -> Vec<&[u8]> {
        all(buf, number)
            .into_iter()
            .map(|w| match w {
                Wire::Bytes(b) => b,
                other => panic!("field {number} is {other:?}, not length-delimited"),
            })
            .collect()
    }

    fn one(buf: &[u8], number: u32) -> &[u8] {
        match bytes_all(buf, number)[..] {
            [only] => only,
            ref many => panic!("field {number} occurs {} times", many.len()),
        }
    }

    fn text(buf: &[u8], number: u32) -> &str {
        std::str::from_utf8(one(buf, number)).unwrap()
    }

    /// Names of the `Named*` pairs in field `number`.
    fn names(buf: &[u8], number: u32) -> Vec<&str> {
        bytes_all(buf, number)
            .into_iter()
            .map(|pair| text(pair, 1))
            .collect()
    }

    /// The `value` of the `Named*` pair called `name` in field `number`.
    fn named<'a>(buf: &'a [u8], number: u32, name: &str) -> &'a [u8] {
        let pair = bytes_all(buf, number)
            .into_iter()
            .find(|pair| text(pair, 1) == name);
        one(
            pair.unwrap_or_else(|| panic!("no pair {name:?} in field {number}")),
            2,
        )
    }

    /// An `Any`'s YAML text, read back with a YAML parser.
    fn any(buf: &[u8]) -> Value {
        serde_yaml::from_str(text(buf, 2)).unwrap()
    }

    fn sample() -> Value {
        json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "paths": {
                "/api/v1/namespaces/{namespace}/configmaps/{name}": {
                    "parameters": [
                        {"$ref": "#/parameters/namespace"},
                        {"name": "name", "in": "path", "required": true, "type": "string", "uniqueItems": true}
                    ],
                    "patch": {
                        "consumes": ["application/merge-patch+json"],
                        "operationId": "patchCoreV1NamespacedConfigMap",
                        "parameters": [
                            {"name": "body", "in": "body", "required": true, "schema": {"type": "object"}},
                            {"name": "fieldValidation", "in": "query", "type": "string", "uniqueItems": true}
                        ],
                        "responses": {
                            "200": {"description": "OK", "schema": {"$ref": "#/definitions/io.k8s.api.core.v1.ConfigMap"}},
                            "401": {"description": "Unauthorized"}
                        },
                        "x-kubernetes-action": "patch",
                        "x-kubernetes-group-version-kind": {"group": "", "kind": "ConfigMap", "version": "v1"}
                    }
                },
                "x-paths-note": "kept"
            },
            "definitions": {
                "io.k8s.api.core.v1.ConfigMap": {
                    "description": "ConfigMap holds configuration data for pods to consume.",
                    "type": "object",
                    "properties": {
                        "data": {"type": "object", "additionalProperties": {"type": "string", "default": ""}},
                        "immutable": {"type": "boolean"},
                        "metadata": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "default": {}}
                    },
                    "required": ["metadata"],
                    "x-kubernetes-group-version-kind": [{"group": "", "kind": "ConfigMap", "version": "v1"}]
                },
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {
                    "type": "object",
                    "properties": {
                        "finalizers": {
                            "type": "array",
                            "items": {"type": "string", "default": ""},
                            "x-kubernetes-list-type": "set",
                            "x-kubernetes-patch-strategy": "merge"
                        }
                    }
                },
                "io.k8s.apimachinery.pkg.apis.meta.v1.Patch": {"type": "object", "properties": {}},
                "Limits": {"type": "integer", "minimum": -5, "maximum": 10.5, "maxLength": 3, "minLength": -1,
                           "enum": [1, "on", "no", "y"], "additionalProperties": false}
            },
            "parameters": {"namespace": {"name": "namespace", "in": "path", "required": true, "type": "string"}},
            "security": [{"BearerToken": []}],
            "securityDefinitions": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"}},
            "x-document-note": {"a": 1}
        })
    }

    fn definition<'a>(document: &'a [u8], name: &str) -> &'a [u8] {
        named(one(document, 9), 1, name)
    }

    #[test]
    fn document_fields_sit_at_their_proto_numbers() {
        let document = encode(&sample()).unwrap();
        assert_eq!(text(&document, 1), "2.0");
        let info = one(&document, 2);
        assert_eq!((text(info, 1), text(info, 2)), ("Kubernetes", "v1.33.0"));
        assert_eq!(
            names(one(&document, 9), 1),
            [
                "io.k8s.api.core.v1.ConfigMap",
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
                "Limits"
            ]
        );
        assert_eq!(names(&document, 16), ["x-document-note"]);
        assert_eq!(
            any(named(&document, 16, "x-document-note")),
            json!({"a": 1})
        );
    }

    #[test]
    fn a_definition_is_a_named_schema_with_extensions_as_named_any_yaml() {
        let document = encode(&sample()).unwrap();
        let config_map = definition(&document, "io.k8s.api.core.v1.ConfigMap");
        assert_eq!(
            text(config_map, 4),
            "ConfigMap holds configuration data for pods to consume."
        );
        assert_eq!(text(one(config_map, 22), 1), "object");
        assert_eq!(
            names(one(config_map, 25), 1),
            ["data", "immutable", "metadata"]
        );
        assert_eq!(bytes_all(config_map, 19), [b"metadata"]);
        assert_eq!(names(config_map, 31), ["x-kubernetes-group-version-kind"]);
        let gvk = any(named(config_map, 31, "x-kubernetes-group-version-kind"));
        assert_eq!(
            gvk,
            json!([{"group": "", "kind": "ConfigMap", "version": "v1"}])
        );
    }

    #[test]
    fn references_items_and_additional_properties_nest_schemas() {
        let document = encode(&sample()).unwrap();
        let properties = one(definition(&document, "io.k8s.api.core.v1.ConfigMap"), 25);
        let metadata = named(properties, 1, "metadata");
        assert_eq!(
            text(metadata, 1),
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert_eq!(any(one(metadata, 5)), json!({}));
        let data_values = one(one(named(properties, 1, "data"), 21), 1);
        assert_eq!(text(one(data_values, 22), 1), "string");
        assert_eq!(
            text(one(data_values, 5), 2),
            r#""""#,
            "an empty-string default is still written"
        );

        let object_meta = definition(&document, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
        let finalizers = named(one(object_meta, 25), 1, "finalizers");
        assert_eq!(text(one(one(one(finalizers, 23), 1), 22), 1), "string");
        assert_eq!(
            names(finalizers, 31),
            ["x-kubernetes-list-type", "x-kubernetes-patch-strategy"]
        );
    }

    #[test]
    fn empty_properties_still_reach_the_wire_because_kube_openapi_tells_kinds_from_maps_by_them() {
        let document = encode(&sample()).unwrap();
        let patch = definition(&document, "io.k8s.apimachinery.pkg.apis.meta.v1.Patch");
        assert_eq!(all(patch, 25), [Wire::Bytes(&[])]);
    }

    #[test]
    fn numbers_go_out_as_doubles_and_int64_varints_and_false_oneof_members_are_kept() {
        let document = encode(&sample()).unwrap();
        let limits = definition(&document, "Limits");
        assert_eq!(all(limits, 9), [Wire::Fixed64((-5.0f64).to_bits())]);
        assert_eq!(all(limits, 7), [Wire::Fixed64(10.5f64.to_bits())]);
        assert_eq!(all(limits, 11), [Wire::Varint(3)]);
        assert_eq!(all(limits, 12), [Wire::Varint(u64::MAX)]);
        assert_eq!(all(one(limits, 21), 2), [Wire::Varint(0)]);
    }

    #[test]
    fn yaml_1_1_booleans_in_any_stay_quoted_strings() {
        let document = encode(&sample()).unwrap();
        let values: Vec<&str> = bytes_all(definition(&document, "Limits"), 20)
            .into_iter()
            .map(|a| text(a, 2))
            .collect();
        assert_eq!(values, ["1", r#""on""#, r#""no""#, r#""y""#]);
    }

    #[test]
    fn characters_yaml_forbids_or_folds_are_escaped_in_any() {
        let value = "a\u{85}b\u{7f}c\u{2028}d\u{e9}";
        let document = encode(&json!({"definitions": {"A": {"default": value}}})).unwrap();
        let default = one(definition(&document, "A"), 5);
        assert_eq!(text(default, 2), "\"a\\u0085b\\u007fc\\u2028d\u{e9}\"");
        assert_eq!(any(default), json!(value));
    }

    #[test]
    fn paths_hold_path_items_with_operations_parameters_and_responses() {
        let document = encode(&sample()).unwrap();
        let paths = one(&document, 8);
        assert_eq!(names(paths, 1), ["x-paths-note"]);
        assert_eq!(
            decode(paths)[0].0,
            1,
            "vendor extensions (field 1) come before paths (field 2)"
        );
        let item = named(paths, 2, "/api/v1/namespaces/{namespace}/configmaps/{name}");

        let shared = bytes_all(item, 9);
        assert_eq!(text(one(shared[0], 2), 1), "#/parameters/namespace");
        let path_parameter = one(one(one(shared[1], 1), 2), 4);
        assert_eq!(
            (text(path_parameter, 4), text(path_parameter, 2)),
            ("name", "path")
        );
        assert_eq!(all(path_parameter, 1), [Wire::Varint(1)]);
        assert_eq!(all(path_parameter, 19), [Wire::Varint(1)]);

        let patch = one(item, 8);
        assert_eq!(text(patch, 5), "patchCoreV1NamespacedConfigMap");
        assert_eq!(bytes_all(patch, 7), [b"application/merge-patch+json"]);
        let parameters = bytes_all(patch, 8);
        let body = one(one(parameters[0], 1), 1);
        assert_eq!(text(one(one(body, 5), 22), 1), "object");
        let query = one(one(one(parameters[1], 1), 2), 3);
        assert_eq!(text(query, 4), "fieldValidation");

        let responses = one(patch, 9);
        assert_eq!(names(responses, 1), ["200", "401"]);
        let ok = one(named(responses, 1, "200"), 1);
        assert_eq!(text(ok, 1), "OK");
        assert_eq!(
            text(one(one(ok, 2), 1), 1),
            "#/definitions/io.k8s.api.core.v1.ConfigMap"
        );
        assert_eq!(
            names(patch, 13),
            ["x-kubernetes-action", "x-kubernetes-group-version-kind"]
        );
        let gvk = any(named(patch, 13, "x-kubernetes-group-version-kind"));
        assert_eq!(
            gvk,
            json!({"group": "", "kind": "ConfigMap", "version": "v1"})
        );
    }

    #[test]
    fn global_parameters_and_security_are_encoded() {
        let document = encode(&sample()).unwrap();
        let namespace = one(one(named(one(&document, 10), 1, "namespace"), 2), 4);
        assert_eq!(text(namespace, 4), "namespace");
        let requirement = bytes_all(&document, 12);
        assert_eq!(named(requirement[0], 1, "BearerToken"), b"");
        let bearer = one(named(one(&document, 13), 1, "BearerToken"), 2);
        assert_eq!(
            (text(bearer, 1), text(bearer, 2), text(bearer, 3)),
            ("apiKey", "authorization", "header")
        );
    }

    #[test]
    fn the_content_type_is_an_rfc_2045_token_pair_as_go_mime_parsing_requires() {
        let token = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
        };
        let (kind, subtype) = CONTENT_TYPE.split_once('/').unwrap();
        assert!(token(kind) && token(subtype), "{CONTENT_TYPE}");
        let (_, requested) = ACCEPT.split_once('/').unwrap();
        assert!(
            !token(requested),
            "kubectl's own Accept value is the one Go cannot parse back"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused_with_its_json_pointer() {
        let refused = |value: Value| match encode(&value) {
            Err(Error::Unexpected { at, expected }) => (at, expected),
            Ok(_) => panic!("{value} was accepted"),
        };
        assert_eq!(refused(json!([])).0, "");
        assert_eq!(
            refused(json!({"definitions": {"a/b": {"description": 5}}})),
            ("/definitions/a~1b/description".to_owned(), "a string")
        );
        let cookie =
            json!({"paths": {"/x": {"get": {"parameters": [{"name": "c", "in": "cookie"}]}}}});
        assert_eq!(refused(cookie).0, "/paths/~1x/get/parameters/0");
        assert_eq!(
            refused(json!({"definitions": {"A": {"maxLength": 1.5}}})).1,
            "an integer"
        );
    }

    #[test]
    fn minkes_own_v2_document_keeps_every_definition_and_group_version_kind() {
        let registry = crate::api::registry::Registry::builtin();
        let swagger =
            crate::api::openapi::v2_document(&registry.all(), crate::api::schema::field_extensions);
        let document = encode(&swagger).unwrap();
        let definitions = swagger["definitions"].as_object().unwrap();
        assert_eq!(
            names(one(&document, 9), 1),
            definitions.keys().map(String::as_str).collect::<Vec<_>>()
        );
        let deployment = definition(&document, "io.k8s.api.apps.v1.Deployment");
        let gvk = any(named(deployment, 31, "x-kubernetes-group-version-kind"));
        assert_eq!(
            gvk,
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
    }
}
