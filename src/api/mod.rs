//! The object model: the kind registry, errors as `Status`, selectors, codecs,
//! defaulting, validation, patches, Table printers and OpenAPI.
pub mod clock;
pub mod codec;
pub mod conversion;
pub mod defaults;
pub mod error;
pub mod finalizers;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod quantity;
pub mod quota;
pub mod registry;
pub mod schema;
pub mod selector;
pub mod table;
pub mod validation;
