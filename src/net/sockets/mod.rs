//! `wasi:sockets` for guests, over the virtual pod network: TCP sockets that
//! bind, listen, accept and connect inside the cluster (and egress to the outside
//! when allowed), UDP sockets exchanging datagrams the same way, and name lookups
//! through the cluster DNS with the pod's search path. wasmtime-wasi's own
//! `network` and `instance-network` stay linked (they only hand out the capability
//! handle); `tcp`, `tcp-create-socket`, `udp`, `udp-create-socket` and
//! `ip-name-lookup` are ours and shadow wasmtime-wasi's host-socket versions.

mod lookup;
mod tcp;
mod udp;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::SocketError;
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode};

pub use lookup::ResolveStream;
pub use tcp::TcpSocket;
pub use udp::{IncomingDatagramStream, OutgoingDatagramStream, UdpSocket};

use super::{NetError, PodNet};

/// The bindings `bindgen!` makes of `wit/sockets.wit`.
#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "minke:net/sockets",
        imports: { default: trappable },
        require_store_data_send: true,
        trappable_error_type: {
            "wasi:sockets/network.error-code" => wasmtime_wasi::p2::SocketError,
        },
        with: {
            "wasi:io/poll": wasmtime_wasi_io::bindings::wasi::io::poll,
            "wasi:io/streams": wasmtime_wasi_io::bindings::wasi::io::streams,
            "wasi:io/error": wasmtime_wasi_io::bindings::wasi::io::error,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:sockets/network": wasmtime_wasi::p2::bindings::sockets::network,
            "wasi:sockets/tcp.tcp-socket": crate::net::sockets::TcpSocket,
            "wasi:sockets/udp.udp-socket": crate::net::sockets::UdpSocket,
            "wasi:sockets/udp.incoming-datagram-stream": crate::net::sockets::IncomingDatagramStream,
            "wasi:sockets/udp.outgoing-datagram-stream": crate::net::sockets::OutgoingDatagramStream,
            "wasi:sockets/ip-name-lookup.resolve-address-stream": crate::net::sockets::ResolveStream,
        },
    });
}
use bindings::wasi;

/// What the socket functions of one guest instance work with.
pub struct PodSockets<'a> {
    /// The instance's resource table.
    pub table: &'a mut ResourceTable,
    /// The pod's network (none: every operation is refused).
    pub pod: Option<&'a PodNet>,
}

/// [`HasData`] for [`PodSockets`].
pub struct HasSockets;

impl HasData for HasSockets {
    type Data<'a> = PodSockets<'a>;
}

// The error-code plumbing of `wasi:sockets/network`, which our interfaces use.
impl network::Host for PodSockets<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        error.downcast()
    }

    fn network_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        let err = self.table.get(&err)?;
        Ok(err.downcast_ref::<std::io::Error>().map(ErrorCode::from))
    }
}

impl network::HostNetwork for PodSockets<'_> {
    fn drop(&mut self, this: Resource<network::Network>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

/// Link our `tcp`, `tcp-create-socket`, `udp`, `udp-create-socket` and
/// `ip-name-lookup` over whatever the
/// linker has for them (wasmtime-wasi's host sockets).
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> PodSockets<'_>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    wasi::sockets::tcp::add_to_linker::<T, HasSockets>(linker, get)?;
    wasi::sockets::tcp_create_socket::add_to_linker::<T, HasSockets>(linker, get)?;
    wasi::sockets::udp::add_to_linker::<T, HasSockets>(linker, get)?;
    wasi::sockets::udp_create_socket::add_to_linker::<T, HasSockets>(linker, get)?;
    wasi::sockets::ip_name_lookup::add_to_linker::<T, HasSockets>(linker, get)?;
    linker.allow_shadowing(false);
    Ok(())
}

impl PodSockets<'_> {
    fn pod(&self) -> Result<PodNet, SocketError> {
        self.pod
            .cloned()
            .ok_or_else(|| ErrorCode::AccessDenied.into())
    }
}

/// The socket error a network failure is.
fn code(e: &NetError) -> ErrorCode {
    match e {
        NetError::Refused => ErrorCode::ConnectionRefused,
        NetError::Unreachable => ErrorCode::RemoteUnreachable,
        NetError::Denied => ErrorCode::AccessDenied,
        NetError::AddrInUse => ErrorCode::AddressInUse,
        NetError::AddrNotAvailable => ErrorCode::AddressNotBindable,
        NetError::Io(e) => match e.kind() {
            std::io::ErrorKind::ConnectionRefused => ErrorCode::ConnectionRefused,
            std::io::ErrorKind::TimedOut => ErrorCode::Timeout,
            std::io::ErrorKind::PermissionDenied => ErrorCode::AccessDenied,
            std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable => {
                ErrorCode::RemoteUnreachable
            }
            _ => ErrorCode::Unknown,
        },
    }
}
