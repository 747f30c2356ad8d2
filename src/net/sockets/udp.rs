//! `wasi:sockets/udp` and `udp-create-socket` over the pod network: bind (started
//! and finished), `stream` with or without a remote address, and the incoming and
//! outgoing datagram streams on a [`udp::Socket`](crate::net::udp::Socket).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use wasmtime::component::Resource;
use wasmtime_wasi::p2::SocketError;
use wasmtime_wasi::p2::bindings::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Network,
};
use wasmtime_wasi_io::poll::{DynPollable, Pollable, subscribe};

use super::wasi::sockets::udp::{
    Host, HostIncomingDatagramStream, HostOutgoingDatagramStream, HostUdpSocket, IncomingDatagram,
    OutgoingDatagram,
};
use super::wasi::sockets::udp_create_socket;
use super::{PodSockets, code};
use crate::net::udp::{Datagram, MAX_DATAGRAM, Socket};
use crate::net::{NetError, PodNet};

/// Datagrams `check-send` allows at once.
const SEND_PERMITS: u64 = 64;

enum State {
    Unbound,
    BindStarted(SocketAddr),
    Bound(Arc<Socket>),
}

/// A guest's UDP socket.
pub struct UdpSocket {
    family: IpAddressFamily,
    pod: PodNet,
    state: State,
    /// Set by `stream` with a remote address.
    remote: Option<SocketAddr>,
    hop_limit: u8,
    receive_buffer: u64,
    send_buffer: u64,
}

#[wasmtime_wasi::async_trait]
impl Pollable for UdpSocket {
    // Binding finishes at once.
    async fn ready(&mut self) {}
}

/// The receiving side `stream` hands out.
pub struct IncomingDatagramStream {
    socket: Arc<Socket>,
    remote: Option<SocketAddr>,
    /// A datagram `subscribe`'s pollable took off the queue.
    waiting: Option<Datagram>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for IncomingDatagramStream {
    async fn ready(&mut self) {
        while self.waiting.is_none() {
            match self.socket.recv().await {
                Some(d) if self.accepts(&d) => self.waiting = Some(d),
                Some(_) => {}
                // Closed: nothing more will come; `receive` answers empty.
                None => return,
            }
        }
    }
}

impl IncomingDatagramStream {
    /// A connected stream only hears its remote address.
    fn accepts(&self, d: &Datagram) -> bool {
        self.remote.is_none_or(|r| r == d.from)
    }
}

/// The sending side `stream` hands out.
pub struct OutgoingDatagramStream {
    socket: Arc<Socket>,
    remote: Option<SocketAddr>,
    family: IpAddressFamily,
    permits: u64,
}

#[wasmtime_wasi::async_trait]
impl Pollable for OutgoingDatagramStream {
    // Sends never wait: a full receiver drops the datagram, as UDP does.
    async fn ready(&mut self) {}
}

fn err<T>(code: ErrorCode) -> Result<T, SocketError> {
    Err(code.into())
}

fn matches_family(family: IpAddressFamily, addr: SocketAddr) -> bool {
    match (family, addr.ip()) {
        (IpAddressFamily::Ipv4, IpAddr::V4(_)) => true,
        (IpAddressFamily::Ipv6, IpAddr::V6(v6)) => v6.to_ipv4_mapped().is_none(),
        _ => false,
    }
}

impl udp_create_socket::Host for PodSockets<'_> {
    fn create_udp_socket(
        &mut self,
        family: IpAddressFamily,
    ) -> Result<Resource<UdpSocket>, SocketError> {
        let pod = self.pod()?;
        Ok(self.table.push(UdpSocket {
            family,
            pod,
            state: State::Unbound,
            remote: None,
            hop_limit: 64,
            receive_buffer: 256 * 1024,
            send_buffer: 256 * 1024,
        })?)
    }
}

impl Host for PodSockets<'_> {}

impl PodSockets<'_> {
    fn udp(&mut self, this: &Resource<UdpSocket>) -> Result<&mut UdpSocket, SocketError> {
        Ok(self.table.get_mut(this)?)
    }

    /// Set a buffer size (WASI: zero is `invalid-argument`).
    fn set_buffer(
        &mut self,
        this: &Resource<UdpSocket>,
        value: u64,
        field: fn(&mut UdpSocket) -> &mut u64,
    ) -> Result<(), SocketError> {
        if value == 0 {
            return err(ErrorCode::InvalidArgument);
        }
        *field(self.udp(this)?) = value;
        Ok(())
    }
}

impl HostUdpSocket for PodSockets<'_> {
    fn start_bind(
        &mut self,
        this: Resource<UdpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> Result<(), SocketError> {
        self.table.get(&network)?;
        let addr: SocketAddr = local_address.into();
        let s = self.udp(&this)?;
        if !matches_family(s.family, addr) {
            return err(ErrorCode::InvalidArgument);
        }
        if !matches!(s.state, State::Unbound) {
            return err(ErrorCode::InvalidState);
        }
        s.state = State::BindStarted(addr);
        Ok(())
    }

    fn finish_bind(&mut self, this: Resource<UdpSocket>) -> Result<(), SocketError> {
        let s = self.udp(&this)?;
        let State::BindStarted(addr) = s.state else {
            return err(ErrorCode::NotInProgress);
        };
        match s.pod.bind_udp(addr) {
            Ok(socket) => {
                s.state = State::Bound(Arc::new(socket));
                Ok(())
            }
            Err(e) => {
                s.state = State::Unbound;
                err(code(&e))
            }
        }
    }

    fn stream(
        &mut self,
        this: Resource<UdpSocket>,
        remote_address: Option<IpSocketAddress>,
    ) -> Result<
        (
            Resource<IncomingDatagramStream>,
            Resource<OutgoingDatagramStream>,
        ),
        SocketError,
    > {
        let s = self.udp(&this)?;
        let State::Bound(socket) = &s.state else {
            return err(ErrorCode::InvalidState);
        };
        let remote = match remote_address.map(SocketAddr::from) {
            Some(r) if r.ip().is_unspecified() || r.port() == 0 || !matches_family(s.family, r) => {
                return err(ErrorCode::InvalidArgument);
            }
            r => r,
        };
        s.remote = remote;
        let incoming = IncomingDatagramStream {
            socket: socket.clone(),
            remote,
            waiting: None,
        };
        let outgoing = OutgoingDatagramStream {
            socket: socket.clone(),
            remote,
            family: s.family,
            permits: 0,
        };
        let incoming = self.table.push_child(incoming, &this)?;
        let outgoing = self.table.push_child(outgoing, &this)?;
        Ok((incoming, outgoing))
    }

    fn local_address(&mut self, this: Resource<UdpSocket>) -> Result<IpSocketAddress, SocketError> {
        match &self.udp(&this)?.state {
            State::Bound(socket) => Ok(socket.local_addr().into()),
            _ => err(ErrorCode::InvalidState),
        }
    }

    fn remote_address(
        &mut self,
        this: Resource<UdpSocket>,
    ) -> Result<IpSocketAddress, SocketError> {
        match self.udp(&this)?.remote {
            Some(r) => Ok(r.into()),
            None => err(ErrorCode::InvalidState),
        }
    }

    fn address_family(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<IpAddressFamily> {
        Ok(self.table.get(&this)?.family)
    }

    fn unicast_hop_limit(&mut self, this: Resource<UdpSocket>) -> Result<u8, SocketError> {
        Ok(self.udp(&this)?.hop_limit)
    }

    fn set_unicast_hop_limit(
        &mut self,
        this: Resource<UdpSocket>,
        value: u8,
    ) -> Result<(), SocketError> {
        if value == 0 {
            return err(ErrorCode::InvalidArgument);
        }
        self.udp(&this)?.hop_limit = value;
        Ok(())
    }

    fn receive_buffer_size(&mut self, this: Resource<UdpSocket>) -> Result<u64, SocketError> {
        Ok(self.udp(&this)?.receive_buffer)
    }

    fn set_receive_buffer_size(
        &mut self,
        this: Resource<UdpSocket>,
        value: u64,
    ) -> Result<(), SocketError> {
        self.set_buffer(&this, value, |s| &mut s.receive_buffer)
    }

    fn send_buffer_size(&mut self, this: Resource<UdpSocket>) -> Result<u64, SocketError> {
        Ok(self.udp(&this)?.send_buffer)
    }

    fn set_send_buffer_size(
        &mut self,
        this: Resource<UdpSocket>,
        value: u64,
    ) -> Result<(), SocketError> {
        self.set_buffer(&this, value, |s| &mut s.send_buffer)
    }

    fn subscribe(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(self.table, this)
    }

    fn drop(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl HostIncomingDatagramStream for PodSockets<'_> {
    fn receive(
        &mut self,
        this: Resource<IncomingDatagramStream>,
        max_results: u64,
    ) -> Result<Vec<IncomingDatagram>, SocketError> {
        let stream = self.table.get_mut(&this)?;
        let max = usize::try_from(max_results).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        while out.len() < max {
            let next = match stream.waiting.take() {
                Some(d) => d,
                None => match stream.socket.try_recv() {
                    Some(d) if stream.accepts(&d) => d,
                    Some(_) => continue,
                    None => break,
                },
            };
            out.push(IncomingDatagram {
                data: next.data,
                remote_address: next.from.into(),
            });
        }
        Ok(out)
    }

    fn subscribe(
        &mut self,
        this: Resource<IncomingDatagramStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(self.table, this)
    }

    fn drop(&mut self, this: Resource<IncomingDatagramStream>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl HostOutgoingDatagramStream for PodSockets<'_> {
    fn check_send(&mut self, this: Resource<OutgoingDatagramStream>) -> Result<u64, SocketError> {
        let stream = self.table.get_mut(&this)?;
        stream.permits = SEND_PERMITS;
        Ok(SEND_PERMITS)
    }

    fn send(
        &mut self,
        this: Resource<OutgoingDatagramStream>,
        datagrams: Vec<OutgoingDatagram>,
    ) -> Result<u64, SocketError> {
        let stream = self.table.get_mut(&this)?;
        if datagrams.is_empty() {
            return Ok(0);
        }
        if u64::try_from(datagrams.len()).unwrap_or(u64::MAX) > stream.permits {
            // WASI: sending more than `check-send` allowed is a trap-worthy misuse.
            return Err(SocketError::trap(wasmtime::format_err!(
                "unpermitted: argument exceeds permitted size"
            )));
        }
        let mut sent = 0;
        for d in datagrams {
            let to = match (d.remote_address.map(SocketAddr::from), stream.remote) {
                (Some(to), Some(remote)) if to != remote => {
                    return finish(sent, ErrorCode::InvalidArgument);
                }
                (Some(to), _) | (None, Some(to)) => to,
                (None, None) => return finish(sent, ErrorCode::InvalidArgument),
            };
            if !matches_family(stream.family, to) || to.port() == 0 {
                return finish(sent, ErrorCode::InvalidArgument);
            }
            if d.data.len() > MAX_DATAGRAM {
                return finish(sent, ErrorCode::DatagramTooLarge);
            }
            if let Err(e) = stream.socket.send(&d.data, to) {
                let code = match e {
                    NetError::Io(_) => ErrorCode::Unknown,
                    other => code(&other),
                };
                return finish(sent, code);
            }
            sent += 1;
            stream.permits -= 1;
        }
        Ok(sent)
    }

    fn subscribe(
        &mut self,
        this: Resource<OutgoingDatagramStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(self.table, this)
    }

    fn drop(&mut self, this: Resource<OutgoingDatagramStream>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

/// WASI's rule for a batch: what went out counts, an error only if nothing did.
fn finish(sent: u64, error: ErrorCode) -> Result<u64, SocketError> {
    if sent > 0 { Ok(sent) } else { err(error) }
}
