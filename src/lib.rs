//! minke: a Kubernetes-compatible single-node cluster in one process.
pub mod api;
pub mod store;
