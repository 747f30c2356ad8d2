//! The ways applying a strategic merge patch can fail, and the HTTP status each one maps to.

/// Why a patch cannot be applied. `status()` says how the API edge should answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The original object or the patch (which one is the field) is not a JSON object.
    #[error("invalid JSON document: the {0} must be a JSON object")]
    NotAnObject(&'static str),
    /// A `$patch` directive has a value that is not allowed where it appears.
    #[error("unknown patch type: {directive} in map: {map}")]
    UnknownDirective {
        /// The directive's value, as JSON text.
        directive: String,
        /// The map or list element that holds the directive, as JSON text.
        map: String,
    },
    /// A list element of the patch carries `$patch: merge`.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// `$retainKeys` is not an array, or the patch sets a key it does not list.
    #[error("invalid patch format of retainKeys")]
    BadRetainKeys,
    /// A `$deleteFromPrimitiveList` key does not have the `$deleteFromPrimitiveList/<field>` form.
    #[error("invalid patch format of primitive list")]
    BadPrimitiveList,
    /// A `$setElementOrder` key does not have the `$setElementOrder/<field>` form.
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrder,
    /// The patch list's items do not appear in its `$setElementOrder` list in the same order.
    #[error("the order in patch list {patch} doesn't match $setElementOrder list {order}")]
    OrderMismatch {
        /// The patch list, as JSON text.
        patch: String,
        /// The `$setElementOrder` list, as JSON text.
        order: String,
    },
    /// An element of a list merged by key lacks the merge key.
    #[error("map: {map} does not contain declared merge key: {key}")]
    MissingMergeKey {
        /// The list element, as JSON text.
        map: String,
        /// The name of the missing merge key.
        key: String,
    },
    /// A list of objects is to be merged, but its field declares no merge key (field name held).
    #[error("cannot merge lists without merge key for {0}")]
    NoMergeKey(String),
    /// A list being merged has an element that is itself a list.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// The elements of the original and patch lists are not all of one JSON type.
    #[error("list element types are not identical")]
    MixedElementTypes,
    /// A `$setElementOrder` names a field whose list is empty in both object and patch.
    #[error("cannot order {0}: the list is empty in both the object and the patch")]
    NothingToOrder(String),
    /// A value has a different JSON type from the one the patch needs there.
    #[error("expected a {expected}, but received a {actual}")]
    WrongType {
        /// The JSON type needed (e.g. "array", "object").
        expected: &'static str,
        /// The JSON type found.
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
