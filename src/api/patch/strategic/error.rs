//! The ways applying a strategic merge patch can fail, and the HTTP status each one maps to.

/// Why a patch cannot be applied. `status()` says how the API edge should answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid JSON document: the {0} must be a JSON object")]
    NotAnObject(&'static str),
    #[error("unknown patch type: {directive} in map: {map}")]
    UnknownDirective { directive: String, map: String },
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    #[error("invalid patch format of retainKeys")]
    BadRetainKeys,
    #[error("invalid patch format of primitive list")]
    BadPrimitiveList,
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrder,
    #[error("the order in patch list {patch} doesn't match $setElementOrder list {order}")]
    OrderMismatch { patch: String, order: String },
    #[error("map: {map} does not contain declared merge key: {key}")]
    MissingMergeKey { map: String, key: String },
    #[error("cannot merge lists without merge key for {0}")]
    NoMergeKey(String),
    #[error("lists of lists are not supported")]
    ListOfLists,
    #[error("list element types are not identical")]
    MixedElementTypes,
    #[error("cannot order {0}: the list is empty in both the object and the patch")]
    NothingToOrder(String),
    #[error("expected a {expected}, but received a {actual}")]
    WrongType {
        expected: &'static str,
        actual: &'static str,
    },
}

impl Error {
    /// 400 for a patch document that is malformed in itself, 422 for one that does not fit the
    /// object it is applied to.
    pub fn status(&self) -> u16 {
        match self {
            Error::NotAnObject(_)
            | Error::UnknownDirective { .. }
            | Error::MergeDirectiveInList
            | Error::BadRetainKeys
            | Error::BadPrimitiveList
            | Error::BadSetElementOrder
            | Error::OrderMismatch { .. } => 400,
            _ => 422,
        }
    }
}
