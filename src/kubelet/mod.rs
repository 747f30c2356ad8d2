//! The kubelet: runs the containers of the pods bound to its node as wasmtime
//! instances. So far: images ([`images`]: built-in, the local store, registry pulls
//! with the kubelet's pull policy and back-off in `pull`) and the engine that runs a
//! `wasi:cli/command` component or a wasip1 core module with its args, env, stdio and
//! memory limit ([`runtime`]). The pod workers, logs and exec come next (issue 4).

mod env;
mod events;
pub mod images;
mod lease;
pub mod pods;
pub(crate) mod pull;
pub mod runtime;
mod volumes;
mod worker;

pub use pods::{Kubelet, run};
