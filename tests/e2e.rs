//! The end-to-end suite: one test binary (linking minke and wasmtime once, not once per
//! file). Each module starts real clusters and drives them with real clients.

mod common;

mod autoscaling;
mod cli;
mod controllers;
mod crd;
mod cronjobs;
mod daemonsets;
mod deployments;
mod dns;
mod errors;
mod gc;
mod images;
mod ingress;
mod kube_client;
mod kubectl_read;
mod kubectl_versions;
mod kubectl_write;
mod lifecycle;
mod network;
mod network_policy;
mod pods;
mod portforward;
mod probes;
mod python_client;
mod quota;
mod restart;
mod scheduling;
mod services;
mod statefulsets;
mod volumes;
mod volumes_pv;
