//! minke: a Kubernetes-compatible single-node cluster in one process.
//!
//! Start with [`Cluster::builder`]: it opens the [`store`], starts the
//! [`apiserver`], the [`controllers`] and cluster [`dns`], and hands back a running
//! [`Cluster`] with a kubeconfig and an in-process `kube::Client`. The object model
//! (kinds, validation, patches, tables, OpenAPI) lives in [`api`].

#![warn(missing_docs)]

pub mod api;
pub mod apiserver;
mod bootstrap;
pub mod cluster;
pub mod controllers;
pub mod dns;
pub mod events;
pub mod kubeconfig;
pub mod kubelet;
pub mod net;
pub mod pki;
pub mod scheduler;
pub mod store;

pub use cluster::{Cluster, ClusterBuilder, Error};
