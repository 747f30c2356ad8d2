//! The object model: the kind registry, errors as `Status`, selectors, codecs.
pub mod error;
pub mod registry;
