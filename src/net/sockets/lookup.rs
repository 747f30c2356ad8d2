//! `wasi:sockets/ip-name-lookup`: names resolved as the pod's resolv.conf would
//! have it (the cluster DNS, its namespace first in the search path), in the
//! background; the stream hands the addresses out once the answer is in.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use wasmtime::component::Resource;
use wasmtime_wasi::p2::SocketError;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress, Network};
use wasmtime_wasi_io::poll::{DynPollable, Pollable, subscribe};

use super::PodSockets;
use super::wasi::sockets::ip_name_lookup::{Host, HostResolveAddressStream};
use crate::net::LookupError;

type Pending = Pin<Box<dyn Future<Output = Result<Vec<IpAddr>, LookupError>> + Send>>;

/// A lookup in progress, or its answer.
pub enum ResolveStream {
    /// Still resolving.
    Pending(Pending),
    /// The addresses not handed out yet.
    Done(std::vec::IntoIter<IpAddr>),
    /// The lookup failed.
    Failed(ErrorCode),
}

impl ResolveStream {
    fn settle(&mut self, r: Result<Vec<IpAddr>, LookupError>) {
        *self = match r {
            Ok(ips) => ResolveStream::Done(ips.into_iter()),
            Err(LookupError::NotFound) => ResolveStream::Failed(ErrorCode::NameUnresolvable),
            Err(LookupError::Temporary) => {
                ResolveStream::Failed(ErrorCode::TemporaryResolverFailure)
            }
        };
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for ResolveStream {
    async fn ready(&mut self) {
        if let ResolveStream::Pending(f) = self {
            let r = f.await;
            self.settle(r);
        }
    }
}

/// Whether `name` can be looked up at all: an IP literal, or a DNS name of
/// letters, digits, `-` and `_` in labels of 1–63 bytes (a trailing dot allowed).
fn valid(name: &str) -> bool {
    if name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok()
    {
        return true;
    }
    let bare = name.strip_suffix('.').unwrap_or(name);
    !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl Host for PodSockets<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<ResolveStream>, SocketError> {
        self.table.get(&network)?;
        if !valid(&name) {
            return Err(ErrorCode::InvalidArgument.into());
        }
        let pod = self.pod()?;
        let lookup: Pending = Box::pin(async move { pod.resolve(&name).await });
        Ok(self.table.push(ResolveStream::Pending(lookup))?)
    }
}

impl HostResolveAddressStream for PodSockets<'_> {
    fn resolve_next_address(
        &mut self,
        this: Resource<ResolveStream>,
    ) -> Result<Option<IpAddress>, SocketError> {
        let stream = self.table.get_mut(&this)?;
        if let ResolveStream::Pending(f) = stream {
            match f
                .as_mut()
                .poll(&mut Context::from_waker(std::task::Waker::noop()))
            {
                Poll::Pending => return Err(ErrorCode::WouldBlock.into()),
                Poll::Ready(r) => stream.settle(r),
            }
        }
        match stream {
            ResolveStream::Done(ips) => Ok(ips.next().map(ip_address)),
            ResolveStream::Failed(code) => Err((*code).into()),
            ResolveStream::Pending(_) => Err(ErrorCode::WouldBlock.into()),
        }
    }

    fn subscribe(
        &mut self,
        this: Resource<ResolveStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(self.table, this)
    }

    fn drop(&mut self, this: Resource<ResolveStream>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

/// An address as WASI spells it.
pub(super) fn ip_address(ip: IpAddr) -> IpAddress {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            IpAddress::Ipv4((a, b, c, d))
        }
        IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            IpAddress::Ipv6((a, b, c, d, e, f, g, h))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid;

    #[test]
    fn names_are_checked_before_lookup() {
        assert!(valid("web"));
        assert!(valid("web.default.svc.cluster.local."));
        assert!(valid("_http._tcp.web"));
        assert!(valid("10.96.0.1"));
        assert!(valid("[::1]"));
        assert!(!valid(""));
        assert!(!valid("a..b"));
        assert!(!valid("has space"));
        assert!(!valid(&"x".repeat(64)));
    }
}
