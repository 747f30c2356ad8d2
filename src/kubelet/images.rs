//! Images: what a container's `image` names and where its wasm comes from.
//!
//! Resolution, in order: the built-in images `minke/<name>` ([`builtin`], embedded
//! in the binary), the local [`Store`] (content-addressed under the data dir, filled
//! by `minke image import` and by pulls), then OCI registries ([`registry`]). The
//! kubelet's side of it — pull policy, events, back-off — is `kubelet::pull`.

mod auth;
mod builtin;
pub mod cli;
mod reference;
pub mod registry;
mod store;
mod wasm;

pub use auth::credentials_for;
pub use builtin::{builtin, builtin_names};
pub use reference::{DEFAULT_REGISTRY, Error as ReferenceError, Reference};
pub use registry::Credentials;
pub use store::{Error, Image, Result, Store, digest};
pub use wasm::{Kind as WasmKind, validate};
