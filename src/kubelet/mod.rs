//! The kubelet: runs the containers of the pods bound to its node as wasmtime
//! instances — images ([`images`]), the engine ([`runtime`]), one worker per pod
//! with restarts, probes and graceful stop, CRI log files ([`logs`]), pod sandboxes for
//! exec and metrics ([`sandbox`]), volumes, env and events.

mod engine;
mod env;
pub mod exec;
pub mod images;
mod limits;
pub mod logs;
pub mod metrics;
pub mod node;
pub mod pods;
pub(crate) mod probes;
pub(crate) mod pull;
pub mod runtime;
pub mod sandbox;
pub mod serve;
mod status;
mod volumes;
pub(crate) mod worker;

pub use pods::{Config, Kubelet, run};
