//! Persistent volumes: the PV controller (binding claims to volumes, [`claim`]
//! and [`volume`] sides over the shared [`binding`] writes and [`matching`]
//! rules), minke's local-path [`provisioner`], and in-use [`protection`].
//!
//! The flow is Kubernetes': a claim of a class that waits for its first consumer
//! stays Pending until the scheduler picks a node for a pod using it and writes
//! `volume.kubernetes.io/selected-node`; the PV controller then names the
//! class's provisioner on the claim, the provisioner makes a volume pre-bound to
//! it, and the PV controller completes the binding. Static volumes are matched
//! by class, size, access modes, selector and volume mode.

pub(crate) mod binding;
pub(crate) mod claim;
pub mod matching;
pub(crate) mod protection;
pub mod provisioner;
pub(crate) mod volume;

pub use binding::Error;
