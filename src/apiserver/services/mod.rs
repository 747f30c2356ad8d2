//! The Service registry's own steps around a write: ClusterIP and NodePort
//! allocation ([`allocate`], over the ranges in [`ip`] and [`port`], in the order of
//! [`bands`]) and the update strategy that keeps allocated values and drops those a
//! new type no longer uses ([`strategy`]).
//!
//! Admission calls [`allocate_create`] and [`allocate_update`] with the allocation
//! lock held until the object is stored; `prepare_update` runs on every update of
//! a Service before validation.

mod allocate;
mod bands;
mod fields;
mod ip;
mod port;
mod strategy;

pub(crate) use allocate::{allocate_create, allocate_update, is_services};
pub(crate) use strategy::prepare_update;
