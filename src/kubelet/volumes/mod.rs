//! Pod volumes on the host, each mounted into its guests as a WASI preopened dir at
//! the mount's `mountPath`.
//!
//! The pipeline follows the kubelet's volume manager: [`Volumes::sync`] sets every
//! volume of the pod up (and is called again every second while the pod runs, so
//! projected content stays current), then [`Volumes::mounts`] turns one
//! container's `volumeMounts` into preopens.
//!
//! - `configMap`, `secret`, `downwardAPI` and `projected` are payloads
//!   ([`projection`]) written by the kubelet's atomic writer ([`atomic`]): a fresh
//!   timestamped dir and one rename of `..data`, so a guest sees an update whole.
//!   A projected `serviceAccountToken` source writes no file: the API server
//!   accepts only the admin token, which must never reach a guest.
//! - `emptyDir` is a dir under the pod's dir, shared by its containers (also for
//!   `medium: Memory`; `sizeLimit` is not enforced).
//! - `hostPath` is allowed only under the cluster's host path root, after
//!   canonicalization, and `persistentVolumeClaim` mounts the bound PV's
//!   `hostPath`/`local` dir ([`host`]).
//! - `subPath`/`subPathExpr` mount part of a volume, resolved without following a
//!   symlink out of it ([`subpath`]).
//!
//! Guests cannot leave a preopen: wasmtime-wasi (cap-std) resolves every path, `..`
//! and symlink inside the preopened dir and refuses the rest.

mod atomic;
mod downward;
mod error;
mod host;
mod projection;
mod set;
mod subpath;

pub(super) use downward::resource;
pub use set::{Mount, Volumes};
