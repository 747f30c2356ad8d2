//! Request and response bodies: JSON and YAML decoding with limits, typed round trips
//! and the `fieldValidation` modes (Strict, Warn, Ignore).

use serde_json::Value;

use super::error::ApiError;
use super::registry::ResourceType;

/// The largest request body the API accepts, as the real API server (3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Decode a body sent as JSON or YAML (by content type, JSON when absent).
pub fn decode(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    match mime {
        "" | "application/json" | "*/*" => decode_json(body),
        "application/yaml"
        | "application/x-yaml"
        | "text/yaml"
        | "application/apply-patch+yaml" => decode_yaml(body),
        "application/vnd.kubernetes.protobuf" => super::protobuf::decode(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding protobuf: {e}"))),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// Decode JSON, answering 400 with the parser's complaint.
pub fn decode_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))
}

/// Decode YAML. serde_yaml refuses alias expansion past a limit, which makes a
/// "billion laughs" document fail fast instead of exhausting memory.
pub fn decode_yaml(body: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("error decoding YAML: body is not UTF-8"))?;
    serde_yaml::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
}

/// How unknown or duplicate fields are treated (`?fieldValidation=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and warn (the default, as in Kubernetes).
    #[default]
    Warn,
    /// Refuse the request with 400.
    Strict,
}

impl FieldValidation {
    /// Parse the query parameter.
    pub fn parse(s: Option<&str>) -> Result<FieldValidation, ApiError> {
        match s {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}. Supported values are Ignore, Warn, Strict"
            ))),
        }
    }
}

/// Paths present in `input` but not in its typed round trip: the fields the kind does
/// not know. Nulls are not counted (they decode to "unset").
fn unknown_fields(input: &Value, known: &Value, path: &str, out: &mut Vec<String>) {
    match (input, known) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get(k) {
                    Some(kv) => unknown_fields(v, kv, &p, out),
                    None if !v.is_null() => out.push(p),
                    None => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                unknown_fields(x, y, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Pass an object through its kind's typed struct: type errors answer 400 as
/// "cannot be handled as a Kind"; unknown fields are handled per `mode`. Returns the
/// normalized object and any warnings. Custom resources pass through unchanged.
pub fn normalize(
    rt: &ResourceType,
    obj: Value,
    mode: FieldValidation,
) -> Result<(Value, Vec<String>), ApiError> {
    let Some(codec) = rt.codec else {
        return Ok((obj, Vec::new()));
    };
    let cannot = |why: String| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {why}",
            rt.kind, rt.version, rt.kind
        ))
    };
    let typed = codec(obj.clone()).map_err(|e| cannot(e.to_string()))?;
    let mut unknown = Vec::new();
    if mode != FieldValidation::Ignore {
        unknown_fields(&obj, &typed, "", &mut unknown);
    }
    let described: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    match mode {
        FieldValidation::Strict if !described.is_empty() => Err(cannot(format!(
            "strict decoding error: {}",
            described.join(", ")
        ))),
        _ => Ok((typed, described)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry::Registry;
    use serde_json::json;

    #[test]
    fn strict_validation_names_every_unknown_field() {
        let r = Registry::builtin();
        let t = r.lookup("apps", "v1", "deployments").expect("type");
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
            "spec": {"replicaz": 3, "selector": {}, "template": {"spec": {"containers": []}}}});
        let e = normalize(&t, obj.clone(), FieldValidation::Strict).expect_err("strict");
        assert_eq!(
            e.message,
            "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replicaz\""
        );
        let (out, warnings) = normalize(&t, obj, FieldValidation::Warn).expect("warn");
        assert_eq!(warnings, ["unknown field \"spec.replicaz\""]);
        assert!(out["spec"].get("replicaz").is_none());
    }

    #[test]
    fn wrong_types_are_a_bad_request() {
        let r = Registry::builtin();
        let t = r.lookup("apps", "v1", "deployments").expect("type");
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"}, "spec": {"replicas": "three"}});
        assert_eq!(
            normalize(&t, obj, FieldValidation::Strict)
                .expect_err("type")
                .code,
            400
        );
    }

    #[test]
    fn a_yaml_bomb_is_refused_quickly() {
        let mut doc = String::from(
            "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            doc.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 9].join(",")));
        }
        let e = decode_yaml(doc.as_bytes()).expect_err("bomb refused");
        assert_eq!(e.code, 400);
    }

    #[test]
    fn unknown_content_type_is_unsupported_media_type() {
        assert_eq!(
            decode("application/vnd.kubernetes.protobuf", b"k8s")
                .expect_err("400")
                .code,
            400
        );
        assert_eq!(decode("application/cbor", b"").expect_err("415").code, 415);
    }
}
