//! The `openapi.v2` messages of paths, operations, parameters and responses, as tables.

use serde_json::Value;

use super::Error;
use super::spec::{
    EXTERNAL_DOCS, Field, Kind, Message, SCHEMA, SCHEMA_KIND, SECURITY_REQUIREMENT, field, map_of,
    plain,
};

use Kind::{Any, Bool, Double, Int64, Str};

pub(super) static PATHS: Message = Message {
    fields: &[],
    extensions: Some(1),
    entries: Some((2, &Kind::Msg(&PATH_ITEM))),
};

static PATH_ITEM: Message = plain(
    &[&[
        field("$ref", 1, Str),
        field("get", 2, Kind::Msg(&OPERATION)),
        field("put", 3, Kind::Msg(&OPERATION)),
        field("post", 4, Kind::Msg(&OPERATION)),
        field("delete", 5, Kind::Msg(&OPERATION)),
        field("options", 6, Kind::Msg(&OPERATION)),
        field("head", 7, Kind::Msg(&OPERATION)),
        field("patch", 8, Kind::Msg(&OPERATION)),
        field("parameters", 9, Kind::List(&PARAMETERS_ITEM)),
    ]],
    10,
);

static OPERATION: Message = plain(
    &[&[
        field("tags", 1, Kind::List(&Str)),
        field("summary", 2, Str),
        field("description", 3, Str),
        field("externalDocs", 4, Kind::Msg(&EXTERNAL_DOCS)),
        field("operationId", 5, Str),
        field("produces", 6, Kind::List(&Str)),
        field("consumes", 7, Kind::List(&Str)),
        field("parameters", 8, Kind::List(&PARAMETERS_ITEM)),
        field("responses", 9, Kind::Msg(&RESPONSES)),
        field("schemes", 10, Kind::List(&Str)),
        field("deprecated", 11, Bool),
        field("security", 12, Kind::List(&SECURITY_REQUIREMENT)),
    ]],
    13,
);

/// `ParametersItem`: a `$ref` to `#/parameters/…` or a parameter written out.
static PARAMETERS_ITEM: Kind = Kind::Choice(|value| Ok(reference_or(value, &PARAMETER)));

/// The `oneof` of `ParametersItem` and `ResponseValue`: member 2 is a `JsonReference`, taken when
/// the object has a `$ref`; member 1 is the thing written out.
fn reference_or(value: &Value, written_out: &'static Kind) -> (u32, &'static Kind) {
    if value.get("$ref").is_some() {
        (2, &JSON_REFERENCE)
    } else {
        (1, written_out)
    }
}

pub(super) static JSON_REFERENCE: Kind = Kind::Msg(&Message {
    fields: &[&[field("$ref", 1, Str), field("description", 2, Str)]],
    extensions: None,
    entries: None,
});

/// `Parameter`: `in` tells a body parameter from the four `NonBodyParameter` sub-schemas.
static PARAMETER: Kind = Kind::Choice(|value| match value.get("in").and_then(Value::as_str) {
    Some("body") => Ok((1, &BODY_PARAMETER)),
    Some("header" | "formData" | "query" | "path") => Ok((2, &NON_BODY_PARAMETER)),
    _ => Err(Error::expected(
        "a parameter whose `in` is body, query, path, header or formData",
    )),
});

static NON_BODY_PARAMETER: Kind =
    Kind::Choice(|value| match value.get("in").and_then(Value::as_str) {
        Some("header") => Ok((1, &HEADER_OR_PATH_PARAMETER)),
        Some("formData") => Ok((2, &QUERY_OR_FORM_PARAMETER)),
        Some("query") => Ok((3, &QUERY_OR_FORM_PARAMETER)),
        Some("path") => Ok((4, &HEADER_OR_PATH_PARAMETER)),
        _ => Err(Error::expected(
            "a parameter whose `in` is query, path, header or formData",
        )),
    });

pub(super) static BODY_PARAMETER: Kind = Kind::Msg(&plain(
    &[&[
        field("description", 1, Str),
        field("name", 2, Str),
        field("in", 3, Str),
        field("required", 4, Bool),
        field("schema", 5, Kind::Msg(&SCHEMA)),
    ]],
    6,
));

/// The head shared by every non-body parameter sub-schema.
static PARAMETER_HEAD: [Field; 4] = [
    field("required", 1, Bool),
    field("in", 2, Str),
    field("description", 3, Str),
    field("name", 4, Str),
];

/// `QueryParameterSubSchema` and `FormDataParameterSubSchema` have the same layout.
pub(super) static QUERY_OR_FORM_PARAMETER: Kind = Kind::Msg(&plain(
    &[
        &PARAMETER_HEAD,
        &[field("allowEmptyValue", 5, Bool)],
        &primitive_run(6),
    ],
    23,
));

/// `HeaderParameterSubSchema` and `PathParameterSubSchema` have the same layout.
pub(super) static HEADER_OR_PATH_PARAMETER: Kind =
    Kind::Msg(&plain(&[&PARAMETER_HEAD, &primitive_run(5)], 22));

static PRIMITIVES_ITEMS: Message = plain(&[&primitive_run(1)], 18);

static HEADER: Kind = Kind::Msg(&plain(
    &[&primitive_run(1), &[field("description", 18, Str)]],
    19,
));

/// The run of primitive validation keywords that parameters, `PrimitivesItems` and `Header`
/// share, numbered from `first`.
const fn primitive_run(first: u32) -> [Field; 17] {
    [
        field("type", first, Str),
        field("format", first + 1, Str),
        field("items", first + 2, Kind::Msg(&PRIMITIVES_ITEMS)),
        field("collectionFormat", first + 3, Str),
        field("default", first + 4, Any),
        field("maximum", first + 5, Double),
        field("exclusiveMaximum", first + 6, Bool),
        field("minimum", first + 7, Double),
        field("exclusiveMinimum", first + 8, Bool),
        field("maxLength", first + 9, Int64),
        field("minLength", first + 10, Int64),
        field("pattern", first + 11, Str),
        field("maxItems", first + 12, Int64),
        field("minItems", first + 13, Int64),
        field("uniqueItems", first + 14, Bool),
        field("enum", first + 15, Kind::List(&Any)),
        field("multipleOf", first + 16, Double),
    ]
}

pub(super) static PARAMETER_DEFINITIONS: Message = map_of(&PARAMETER);

pub(super) static RESPONSE_DEFINITIONS: Message = map_of(&RESPONSE);

/// `Responses`: status codes (or `default`) to a response or a `$ref` to one.
static RESPONSES: Message = Message {
    fields: &[],
    extensions: Some(2),
    entries: Some((1, &Kind::Choice(|value| Ok(reference_or(value, &RESPONSE))))),
};

pub(super) static RESPONSE: Kind = Kind::Msg(&plain(
    &[&[
        field("description", 1, Str),
        field("schema", 2, Kind::Choice(schema_item)),
        field("headers", 3, Kind::Msg(&map_of(&HEADER))),
        field("examples", 4, Kind::Msg(&map_of(&Any))),
    ]],
    5,
));

pub(super) static FILE_SCHEMA: Kind = Kind::Msg(&plain(
    &[&[
        field("format", 1, Str),
        field("title", 2, Str),
        field("description", 3, Str),
        field("default", 4, Any),
        field("required", 5, Kind::List(&Str)),
        field("type", 6, Str),
        field("readOnly", 7, Bool),
        field("externalDocs", 8, Kind::Msg(&EXTERNAL_DOCS)),
        field("example", 9, Any),
    ]],
    10,
));

/// `SchemaItem`: a response body is a `FileSchema` only when its type is `file`.
fn schema_item(value: &Value) -> Result<(u32, &'static Kind), Error> {
    Ok(
        if value.get("type").and_then(Value::as_str) == Some("file") {
            (2, &FILE_SCHEMA)
        } else {
            (1, &SCHEMA_KIND)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitive_runs_line_up_with_the_proto() {
        // QueryParameterSubSchema: `multiple_of = 22`, `vendor_extension = 23`.
        assert_eq!(primitive_run(6)[16].number, 22);
        // PathParameterSubSchema: `items = 7`, `enum = 20`.
        assert_eq!(primitive_run(5)[2].number, 7);
        assert_eq!(primitive_run(5)[15].number, 20);
    }
}
