//! Cluster DNS: the `cluster.local` zone built from Services, EndpointSlices and Pods
//! (records as CoreDNS's kubernetes plugin serves them), answered by a hickory-server
//! request handler.
//!
//! The layers follow hickory's: a transport (the host listener, or a caller handing
//! in wire messages through [`Dns::answer`]), one [`RequestHandler`] that dispatches
//! each question, and the backends — the zone snapshot for cluster names and
//! upstream nameservers for the rest. Guests resolve names through
//! [`Dns::lookup_ip`], which applies a pod's resolv.conf (search list, `ndots:5`).
//!
//! Where to start: [`Dns`]; the records are listed in `records.rs`, the zone
//! semantics (NXDOMAIN vs NODATA, CNAME chains) in `zone.rs`.
//!
//! [`RequestHandler`]: hickory_server::server::RequestHandler

mod handler;
mod listener;
mod records;
mod resolve;
mod server;
mod udp;
mod upstream;
mod watch;
mod zone;

pub use resolve::{Error as LookupError, NDOTS};
pub use server::{CLUSTER_DOMAIN, Config, Dns, Error};
pub use upstream::{Error as UpstreamError, Upstream};

pub(crate) use server::Inner;

#[cfg(test)]
mod tests;
