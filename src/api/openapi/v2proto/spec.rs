//! The `openapi.v2` messages of gnostic's OpenAPIv2.proto as tables: which JSON key goes to which field number.

use serde_json::Value;

use super::Error;
use super::operations::{PARAMETER_DEFINITIONS, PATHS, RESPONSE_DEFINITIONS};

/// How a JSON value becomes a protobuf field.
pub(super) enum Kind {
    Str,
    Bool,
    Double,
    Int64,
    /// gnostic's `Any`: the value as YAML text in its field 2.
    Any,
    /// A JSON object as a nested message.
    Msg(&'static Message),
    /// A protobuf `oneof` wrapper message; the function picks the member field for the value.
    Choice(fn(&Value) -> Result<(u32, &'static Kind), Error>),
    /// A wrapper message whose repeated field 1 takes a lone value or each element of an array
    /// (`TypeItem`, `ItemsItem`, `StringArray`).
    OneOrMany(&'static Kind),
    /// A JSON array as a repeated field.
    List(&'static Kind),
}

/// One JSON key of an object and the field it fills.
pub(super) struct Field {
    pub(super) key: &'static str,
    pub(super) number: u32,
    pub(super) kind: Kind,
}

/// A message read from a JSON object.
///
/// Its named `fields` come first and in ascending number order; `extensions` and `entries`, the
/// repeated `Named*` pairs, follow them (a unit test holds the tables to that), so the encoder
/// writes fields in number order as Go's marshaller does.
pub(super) struct Message {
    /// Runs of fields; more than one where a message embeds the shared primitive-validation run.
    pub(super) fields: &'static [&'static [Field]],
    /// The `repeated NamedAny vendor_extension` field that takes the object's `x-…` keys.
    pub(super) extensions: Option<u32>,
    /// For map-like messages (definitions, paths, responses…): the field of the `Named*` pairs
    /// that every other key becomes, and the kind of their `value`.
    pub(super) entries: Option<(u32, &'static Kind)>,
}

pub(super) const fn field(key: &'static str, number: u32, kind: Kind) -> Field {
    Field { key, number, kind }
}

pub(super) const fn plain(fields: &'static [&'static [Field]], extensions: u32) -> Message {
    Message {
        fields,
        extensions: Some(extensions),
        entries: None,
    }
}

/// A message that is only a map: `repeated Named<value> additional_properties = 1`.
pub(super) const fn map_of(value: &'static Kind) -> Message {
    Message {
        fields: &[],
        extensions: None,
        entries: Some((1, value)),
    }
}

use Kind::{Any, Bool, Double, Int64, Str};

pub(super) static DOCUMENT: Message = plain(
    &[&[
        field("swagger", 1, Str),
        field("info", 2, Kind::Msg(&INFO)),
        field("host", 3, Str),
        field("basePath", 4, Str),
        field("schemes", 5, Kind::List(&Str)),
        field("consumes", 6, Kind::List(&Str)),
        field("produces", 7, Kind::List(&Str)),
        field("paths", 8, Kind::Msg(&PATHS)),
        field("definitions", 9, Kind::Msg(&SCHEMAS)),
        field("parameters", 10, Kind::Msg(&PARAMETER_DEFINITIONS)),
        field("responses", 11, Kind::Msg(&RESPONSE_DEFINITIONS)),
        field("security", 12, Kind::List(&SECURITY_REQUIREMENT)),
        field("securityDefinitions", 13, Kind::Msg(&SECURITY_DEFINITIONS)),
        field("tags", 14, Kind::List(&TAG)),
        field("externalDocs", 15, Kind::Msg(&EXTERNAL_DOCS)),
    ]],
    16,
);

static INFO: Message = plain(
    &[&[
        field("title", 1, Str),
        field("version", 2, Str),
        field("description", 3, Str),
        field("termsOfService", 4, Str),
        field("contact", 5, Kind::Msg(&CONTACT)),
        field("license", 6, Kind::Msg(&LICENSE)),
    ]],
    7,
);

static CONTACT: Message = plain(
    &[&[
        field("name", 1, Str),
        field("url", 2, Str),
        field("email", 3, Str),
    ]],
    4,
);

static LICENSE: Message = plain(&[&[field("name", 1, Str), field("url", 2, Str)]], 3);

pub(super) static EXTERNAL_DOCS: Message =
    plain(&[&[field("description", 1, Str), field("url", 2, Str)]], 3);

static TAG: Kind = Kind::Msg(&plain(
    &[&[
        field("name", 1, Str),
        field("description", 2, Str),
        field("externalDocs", 3, Kind::Msg(&EXTERNAL_DOCS)),
    ]],
    4,
));

/// `Definitions` and `Properties`: maps of `NamedSchema`.
static SCHEMAS: Message = map_of(&SCHEMA_KIND);

pub(super) static SCHEMA_KIND: Kind = Kind::Msg(&SCHEMA);

/// `Schema`, the deterministic JSON Schema subset Swagger 2.0 allows.
pub(super) static SCHEMA: Message = plain(
    &[&[
        field("$ref", 1, Str),
        field("format", 2, Str),
        field("title", 3, Str),
        field("description", 4, Str),
        field("default", 5, Any),
        field("multipleOf", 6, Double),
        field("maximum", 7, Double),
        field("exclusiveMaximum", 8, Bool),
        field("minimum", 9, Double),
        field("exclusiveMinimum", 10, Bool),
        field("maxLength", 11, Int64),
        field("minLength", 12, Int64),
        field("pattern", 13, Str),
        field("maxItems", 14, Int64),
        field("minItems", 15, Int64),
        field("uniqueItems", 16, Bool),
        field("maxProperties", 17, Int64),
        field("minProperties", 18, Int64),
        field("required", 19, Kind::List(&Str)),
        field("enum", 20, Kind::List(&Any)),
        field(
            "additionalProperties",
            21,
            Kind::Choice(additional_properties),
        ),
        field("type", 22, Kind::OneOrMany(&Str)),
        field("items", 23, Kind::OneOrMany(&SCHEMA_KIND)),
        field("allOf", 24, Kind::List(&SCHEMA_KIND)),
        field("properties", 25, Kind::Msg(&SCHEMAS)),
        field("discriminator", 26, Str),
        field("readOnly", 27, Bool),
        field("xml", 28, Kind::Msg(&XML)),
        field("externalDocs", 29, Kind::Msg(&EXTERNAL_DOCS)),
        field("example", 30, Any),
    ]],
    31,
);

static XML: Message = plain(
    &[&[
        field("name", 1, Str),
        field("namespace", 2, Str),
        field("prefix", 3, Str),
        field("attribute", 4, Bool),
        field("wrapped", 5, Bool),
    ]],
    6,
);

/// `SecurityRequirement`: scheme names to the scopes they need.
pub(super) static SECURITY_REQUIREMENT: Kind = Kind::Msg(&map_of(&Kind::OneOrMany(&Str)));

static SECURITY_DEFINITIONS: Message = map_of(&Kind::Choice(security_scheme));

static BASIC_SECURITY: Kind = Kind::Msg(&plain(
    &[&[field("type", 1, Str), field("description", 2, Str)]],
    3,
));

static API_KEY_SECURITY: Kind = Kind::Msg(&plain(
    &[&[
        field("type", 1, Str),
        field("name", 2, Str),
        field("in", 3, Str),
        field("description", 4, Str),
    ]],
    5,
));

static OAUTH2_HEAD: [Field; 3] = [
    field("type", 1, Str),
    field("flow", 2, Str),
    field("scopes", 3, Kind::Msg(&map_of(&Str))),
];

static OAUTH2_IMPLICIT: Kind = Kind::Msg(&plain(
    &[
        &OAUTH2_HEAD,
        &[
            field("authorizationUrl", 4, Str),
            field("description", 5, Str),
        ],
    ],
    6,
));

/// `Oauth2PasswordSecurity` and `Oauth2ApplicationSecurity` have the same layout.
static OAUTH2_TOKEN_ONLY: Kind = Kind::Msg(&plain(
    &[
        &OAUTH2_HEAD,
        &[field("tokenUrl", 4, Str), field("description", 5, Str)],
    ],
    6,
));

static OAUTH2_ACCESS_CODE: Kind = Kind::Msg(&plain(
    &[
        &OAUTH2_HEAD,
        &[
            field("authorizationUrl", 4, Str),
            field("tokenUrl", 5, Str),
            field("description", 6, Str),
        ],
    ],
    7,
));

fn additional_properties(value: &Value) -> Result<(u32, &'static Kind), Error> {
    match value {
        Value::Object(_) => Ok((1, &SCHEMA_KIND)),
        Value::Bool(_) => Ok((2, &Bool)),
        _ => Err(Error::expected("a schema or a boolean")),
    }
}

fn security_scheme(value: &Value) -> Result<(u32, &'static Kind), Error> {
    let text = |key| value.get(key).and_then(Value::as_str);
    match (text("type"), text("flow")) {
        (Some("basic"), _) => Ok((1, &BASIC_SECURITY)),
        (Some("apiKey"), _) => Ok((2, &API_KEY_SECURITY)),
        (Some("oauth2"), Some("implicit")) => Ok((3, &OAUTH2_IMPLICIT)),
        (Some("oauth2"), Some("password")) => Ok((4, &OAUTH2_TOKEN_ONLY)),
        (Some("oauth2"), Some("application")) => Ok((5, &OAUTH2_TOKEN_ONLY)),
        (Some("oauth2"), Some("accessCode")) => Ok((6, &OAUTH2_ACCESS_CODE)),
        _ => Err(Error::expected(
            "a security scheme of type basic, apiKey or oauth2 with a known flow",
        )),
    }
}

/// Every message table reachable from `DOCUMENT`, for the structural test below.
#[cfg(test)]
fn all_messages() -> Vec<&'static Message> {
    use super::operations::{
        BODY_PARAMETER, FILE_SCHEMA, HEADER_OR_PATH_PARAMETER, JSON_REFERENCE,
        QUERY_OR_FORM_PARAMETER, RESPONSE,
    };
    let mut found: Vec<&'static Message> = Vec::new();
    let mut todo = vec![&DOCUMENT];
    // Choices hide their members behind functions; list those members as roots too.
    for kind in [
        &JSON_REFERENCE,
        &BODY_PARAMETER,
        &QUERY_OR_FORM_PARAMETER,
        &HEADER_OR_PATH_PARAMETER,
        &RESPONSE,
        &FILE_SCHEMA,
        &BASIC_SECURITY,
        &API_KEY_SECURITY,
        &OAUTH2_IMPLICIT,
        &OAUTH2_TOKEN_ONLY,
        &OAUTH2_ACCESS_CODE,
    ] {
        if let Kind::Msg(message) = kind {
            todo.push(message);
        }
    }
    while let Some(message) = todo.pop() {
        if found.iter().any(|seen| std::ptr::eq(*seen, message)) {
            continue;
        }
        found.push(message);
        let kinds = message
            .fields
            .iter()
            .flat_map(|run| run.iter())
            .map(|f| &f.kind);
        for mut kind in kinds.chain(message.entries.map(|(_, kind)| kind)) {
            while let Kind::List(inner) | Kind::OneOrMany(inner) = kind {
                kind = inner;
            }
            if let Kind::Msg(inner) = kind {
                todo.push(inner);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_numbers_its_fields_ascending_and_before_its_pairs() {
        let messages = all_messages();
        assert!(
            messages.len() >= 25,
            "only {} message tables reached",
            messages.len()
        );
        for message in messages {
            let numbers: Vec<u32> = message
                .fields
                .iter()
                .flat_map(|run| run.iter())
                .map(|f| f.number)
                .collect();
            assert!(
                numbers.windows(2).all(|pair| pair[0] < pair[1]),
                "{numbers:?}"
            );
            for pair in [
                message.extensions,
                message.entries.map(|(number, _)| number),
            ]
            .into_iter()
            .flatten()
            {
                assert!(
                    numbers.last().is_none_or(|last| *last < pair),
                    "{numbers:?} then {pair}"
                );
            }
        }
    }
}
