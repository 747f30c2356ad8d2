//! The built-in Ingress controller (networking.k8s.io/v1): an HTTP and HTTPS proxy
//! on host ports that routes by Ingress rules to Services through the pod network.
//!
//! It serves Ingresses of IngressClass `minke` (controller `minke.dev/ingress`,
//! created at bootstrap as the default class), or of any class with that
//! controller, and those naming no class while minke's is the default.
//!
//! - [`hosts`]: host names, exact and wildcard, as Kubernetes defines them.
//! - [`routes`]: host and path matching, as Kubernetes defines it.
//! - [`certs`]: `spec.tls` certificates from Secrets, chosen by SNI.
//! - [`proxy`]: the listeners and the forwarding of each request;
//!   [`backend`]: its connection to the backend.
//! - [`controller`]: watches, reloads, status, and [`start`].
//!
//! The proxy runs on the node, as a host-network ingress controller would: its
//! connections come from the node, so NetworkPolicies do not filter them.

pub mod backend;
pub mod certs;
pub mod controller;
pub mod hosts;
pub mod proxy;
pub mod routes;

pub use controller::{Addrs, CLASS, CONTROLLER, Config, Error, start};
