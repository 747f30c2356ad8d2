//! `wasi:sockets/tcp` and `tcp-create-socket` over the pod network: the WASI
//! socket state machine (bind, listen, accept, connect, each started and
//! finished), with connections as in-memory pipes (or host sockets for egress)
//! turned into WASI input and output streams.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncWrite, WriteHalf};
use wasmtime::component::Resource;
use wasmtime_wasi::p2::SocketError;
use wasmtime_wasi::p2::bindings::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Network,
};
use wasmtime_wasi::p2::pipe::{AsyncReadStream, AsyncWriteStream};
use wasmtime_wasi_io::poll::{DynPollable, Pollable, subscribe};
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream};

use super::wasi::sockets::tcp::{Duration, Host, HostTcpSocket, ShutdownType};
use super::wasi::sockets::tcp_create_socket;
use super::{PodSockets, code};
use crate::net::{Conn, Listener, NetError, PodNet, Stream};

/// Bytes a guest may write before the stream asks it to wait.
const WRITE_BUDGET: usize = 64 * 1024;

type Connecting = Pin<Box<dyn Future<Output = Result<Conn, NetError>> + Send>>;

/// The write half of a connection, shared by its output stream and the socket
/// (which may shut it down).
#[derive(Clone)]
struct Writer(Arc<Mutex<WriteHalf<Stream>>>);

impl AsyncWrite for Writer {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.0.lock() {
            Ok(mut w) => Pin::new(&mut *w).poll_write(cx, buf),
            Err(_) => Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.0.lock() {
            Ok(mut w) => Pin::new(&mut *w).poll_flush(cx),
            Err(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.0.lock() {
            Ok(mut w) => Pin::new(&mut *w).poll_shutdown(cx),
            Err(_) => Poll::Ready(Ok(())),
        }
    }
}

enum State {
    Unbound,
    BindStarted(SocketAddr),
    Bound(SocketAddr),
    ListenStarted(Listener),
    Listening {
        listener: Listener,
        waiting: Option<Conn>,
    },
    Connecting(Connecting),
    Connected {
        local: SocketAddr,
        peer: SocketAddr,
        writer: Writer,
    },
    /// A connection attempt finished (its result not yet taken by `finish-connect`).
    ConnectDone(Result<Conn, NetError>),
    Closed,
}

/// Socket options: kept and reported; the in-memory network needs none of them.
struct Options {
    backlog: u64,
    keep_alive: bool,
    keep_alive_idle: Duration,
    keep_alive_interval: Duration,
    keep_alive_count: u32,
    hop_limit: u8,
    receive_buffer: u64,
    send_buffer: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            backlog: 128,
            keep_alive: false,
            keep_alive_idle: 7_200_000_000_000,
            keep_alive_interval: 75_000_000_000,
            keep_alive_count: 9,
            hop_limit: 64,
            receive_buffer: 256 * 1024,
            send_buffer: 256 * 1024,
        }
    }
}

/// A guest's TCP socket.
pub struct TcpSocket {
    family: IpAddressFamily,
    pod: PodNet,
    state: State,
    options: Options,
}

#[wasmtime_wasi::async_trait]
impl Pollable for TcpSocket {
    async fn ready(&mut self) {
        match &mut self.state {
            State::Connecting(f) => {
                let r = f.await;
                self.state = State::ConnectDone(r);
            }
            State::Listening { listener, waiting } if waiting.is_none() => {
                // `None` (closed): accept reports it; nothing more will arrive.
                if let Some(c) = listener.accept().await {
                    *waiting = Some(c);
                }
            }
            _ => {}
        }
    }
}

fn err<T>(code: ErrorCode) -> Result<T, SocketError> {
    Err(code.into())
}

impl TcpSocket {
    fn new(family: IpAddressFamily, pod: PodNet) -> TcpSocket {
        TcpSocket {
            family,
            pod,
            state: State::Unbound,
            options: Options::default(),
        }
    }

    /// A socket for an established connection, and its two streams.
    fn connected(
        family: IpAddressFamily,
        pod: PodNet,
        conn: Conn,
    ) -> (TcpSocket, DynInputStream, DynOutputStream) {
        let (read, write) = tokio::io::split(conn.stream);
        let writer = Writer(Arc::new(Mutex::new(write)));
        let input: DynInputStream = Box::new(AsyncReadStream::new(read));
        let output: DynOutputStream = Box::new(AsyncWriteStream::new(WRITE_BUDGET, writer.clone()));
        let mut socket = TcpSocket::new(family, pod);
        socket.state = State::Connected {
            local: conn.local,
            peer: conn.peer,
            writer,
        };
        (socket, input, output)
    }

    fn check_family(&self, addr: SocketAddr) -> Result<(), SocketError> {
        let ok = match (self.family, addr.ip()) {
            (IpAddressFamily::Ipv4, IpAddr::V4(_)) => true,
            // IPv4-mapped addresses are not supported on IPv6 sockets (as in WASI).
            (IpAddressFamily::Ipv6, IpAddr::V6(v6)) => v6.to_ipv4_mapped().is_none(),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            err(ErrorCode::InvalidArgument)
        }
    }
}

impl tcp_create_socket::Host for PodSockets<'_> {
    fn create_tcp_socket(
        &mut self,
        family: IpAddressFamily,
    ) -> Result<Resource<TcpSocket>, SocketError> {
        let pod = self.pod()?;
        Ok(self.table.push(TcpSocket::new(family, pod))?)
    }
}

impl Host for PodSockets<'_> {}

impl PodSockets<'_> {
    fn socket(&mut self, this: &Resource<TcpSocket>) -> Result<&mut TcpSocket, SocketError> {
        Ok(self.table.get_mut(this)?)
    }

    /// Set an option that must not be zero (WASI: `invalid-argument` if it is).
    fn set_nonzero<V: Default + PartialEq>(
        &mut self,
        this: &Resource<TcpSocket>,
        value: V,
        field: fn(&mut Options) -> &mut V,
    ) -> Result<(), SocketError> {
        if value == V::default() {
            return err(ErrorCode::InvalidArgument);
        }
        *field(&mut self.socket(this)?.options) = value;
        Ok(())
    }

    /// Push a connection's socket (or just its streams) into the table.
    fn push_streams(
        &mut self,
        owner: &Resource<TcpSocket>,
        input: DynInputStream,
        output: DynOutputStream,
    ) -> Result<(Resource<DynInputStream>, Resource<DynOutputStream>), SocketError> {
        let input = self.table.push_child(input, owner)?;
        let output = self.table.push_child(output, owner)?;
        Ok((input, output))
    }
}

impl HostTcpSocket for PodSockets<'_> {
    fn start_bind(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> Result<(), SocketError> {
        self.table.get(&network)?;
        let addr: SocketAddr = local_address.into();
        let s = self.socket(&this)?;
        s.check_family(addr)?;
        if !matches!(s.state, State::Unbound) {
            return err(ErrorCode::InvalidState);
        }
        let ip = addr.ip();
        if !(ip.is_unspecified() || ip.is_loopback() || ip == s.pod.ip()) {
            return err(ErrorCode::AddressNotBindable);
        }
        s.state = State::BindStarted(addr);
        Ok(())
    }

    fn finish_bind(&mut self, this: Resource<TcpSocket>) -> Result<(), SocketError> {
        let s = self.socket(&this)?;
        match s.state {
            State::BindStarted(a) => {
                s.state = State::Bound(a);
                Ok(())
            }
            _ => err(ErrorCode::NotInProgress),
        }
    }

    fn start_connect(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        remote_address: IpSocketAddress,
    ) -> Result<(), SocketError> {
        self.table.get(&network)?;
        let remote: SocketAddr = remote_address.into();
        let s = self.socket(&this)?;
        s.check_family(remote)?;
        if remote.ip().is_unspecified() || remote.port() == 0 {
            return err(ErrorCode::InvalidArgument);
        }
        if !matches!(s.state, State::Unbound | State::Bound(_)) {
            return err(ErrorCode::InvalidState);
        }
        let pod = s.pod.clone();
        s.state = State::Connecting(Box::pin(async move { pod.connect(remote).await }));
        Ok(())
    }

    fn finish_connect(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> Result<(Resource<DynInputStream>, Resource<DynOutputStream>), SocketError> {
        let s = self.socket(&this)?;
        let result = match std::mem::replace(&mut s.state, State::Closed) {
            State::ConnectDone(r) => r,
            State::Connecting(mut f) => {
                match f
                    .as_mut()
                    .poll(&mut Context::from_waker(std::task::Waker::noop()))
                {
                    Poll::Ready(r) => r,
                    Poll::Pending => {
                        s.state = State::Connecting(f);
                        return err(ErrorCode::WouldBlock);
                    }
                }
            }
            other => {
                s.state = other;
                return err(ErrorCode::NotInProgress);
            }
        };
        let conn = result.map_err(|e| SocketError::from(code(&e)))?;
        let (socket, input, output) = TcpSocket::connected(s.family, s.pod.clone(), conn);
        *s = socket;
        self.push_streams(&this, input, output)
    }

    fn start_listen(&mut self, this: Resource<TcpSocket>) -> Result<(), SocketError> {
        let s = self.socket(&this)?;
        let State::Bound(addr) = s.state else {
            return err(ErrorCode::InvalidState);
        };
        let listener = s
            .pod
            .listen(addr)
            .map_err(|e| SocketError::from(code(&e)))?;
        s.state = State::ListenStarted(listener);
        Ok(())
    }

    fn finish_listen(&mut self, this: Resource<TcpSocket>) -> Result<(), SocketError> {
        let s = self.socket(&this)?;
        match std::mem::replace(&mut s.state, State::Closed) {
            State::ListenStarted(listener) => {
                s.state = State::Listening {
                    listener,
                    waiting: None,
                };
                Ok(())
            }
            other => {
                s.state = other;
                err(ErrorCode::NotInProgress)
            }
        }
    }

    fn accept(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> Result<
        (
            Resource<TcpSocket>,
            Resource<DynInputStream>,
            Resource<DynOutputStream>,
        ),
        SocketError,
    > {
        let s = self.socket(&this)?;
        let (family, pod) = (s.family, s.pod.clone());
        let State::Listening { listener, waiting } = &mut s.state else {
            return err(ErrorCode::InvalidState);
        };
        let conn = match waiting.take() {
            Some(c) => c,
            None => {
                match listener.poll_accept(&mut Context::from_waker(std::task::Waker::noop())) {
                    Poll::Ready(Some(c)) => c,
                    Poll::Ready(None) => return err(ErrorCode::InvalidState),
                    Poll::Pending => return err(ErrorCode::WouldBlock),
                }
            }
        };
        let (socket, input, output) = TcpSocket::connected(family, pod, conn);
        let socket = self.table.push(socket)?;
        let (input, output) = self.push_streams(&socket, input, output)?;
        Ok((socket, input, output))
    }

    fn local_address(&mut self, this: Resource<TcpSocket>) -> Result<IpSocketAddress, SocketError> {
        let s = self.socket(&this)?;
        match &s.state {
            State::Bound(a) => Ok((*a).into()),
            State::ListenStarted(l) | State::Listening { listener: l, .. } => {
                Ok(l.local_addr().into())
            }
            State::Connected { local, .. } => Ok((*local).into()),
            _ => err(ErrorCode::InvalidState),
        }
    }

    fn remote_address(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> Result<IpSocketAddress, SocketError> {
        match &self.socket(&this)?.state {
            State::Connected { peer, .. } => Ok((*peer).into()),
            _ => err(ErrorCode::InvalidState),
        }
    }

    fn is_listening(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<bool> {
        let s = self.table.get(&this)?;
        Ok(matches!(s.state, State::Listening { .. }))
    }

    fn address_family(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<IpAddressFamily> {
        Ok(self.table.get(&this)?.family)
    }

    fn set_listen_backlog_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> Result<(), SocketError> {
        let s = self.socket(&this)?;
        if value == 0 {
            return err(ErrorCode::InvalidArgument);
        }
        if matches!(s.state, State::Connecting(_) | State::Connected { .. }) {
            return err(ErrorCode::InvalidState);
        }
        s.options.backlog = value;
        Ok(())
    }

    fn keep_alive_enabled(&mut self, this: Resource<TcpSocket>) -> Result<bool, SocketError> {
        Ok(self.socket(&this)?.options.keep_alive)
    }

    fn set_keep_alive_enabled(
        &mut self,
        this: Resource<TcpSocket>,
        value: bool,
    ) -> Result<(), SocketError> {
        self.socket(&this)?.options.keep_alive = value;
        Ok(())
    }

    fn keep_alive_idle_time(&mut self, this: Resource<TcpSocket>) -> Result<Duration, SocketError> {
        Ok(self.socket(&this)?.options.keep_alive_idle)
    }

    fn set_keep_alive_idle_time(
        &mut self,
        this: Resource<TcpSocket>,
        value: Duration,
    ) -> Result<(), SocketError> {
        self.set_nonzero(&this, value, |o| &mut o.keep_alive_idle)
    }

    fn keep_alive_interval(&mut self, this: Resource<TcpSocket>) -> Result<Duration, SocketError> {
        Ok(self.socket(&this)?.options.keep_alive_interval)
    }

    fn set_keep_alive_interval(
        &mut self,
        this: Resource<TcpSocket>,
        value: Duration,
    ) -> Result<(), SocketError> {
        self.set_nonzero(&this, value, |o| &mut o.keep_alive_interval)
    }

    fn keep_alive_count(&mut self, this: Resource<TcpSocket>) -> Result<u32, SocketError> {
        Ok(self.socket(&this)?.options.keep_alive_count)
    }

    fn set_keep_alive_count(
        &mut self,
        this: Resource<TcpSocket>,
        value: u32,
    ) -> Result<(), SocketError> {
        self.set_nonzero(&this, value, |o| &mut o.keep_alive_count)
    }

    fn hop_limit(&mut self, this: Resource<TcpSocket>) -> Result<u8, SocketError> {
        Ok(self.socket(&this)?.options.hop_limit)
    }

    fn set_hop_limit(&mut self, this: Resource<TcpSocket>, value: u8) -> Result<(), SocketError> {
        if value == 0 {
            return err(ErrorCode::InvalidArgument);
        }
        self.socket(&this)?.options.hop_limit = value;
        Ok(())
    }

    fn receive_buffer_size(&mut self, this: Resource<TcpSocket>) -> Result<u64, SocketError> {
        Ok(self.socket(&this)?.options.receive_buffer)
    }

    fn set_receive_buffer_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> Result<(), SocketError> {
        self.set_nonzero(&this, value, |o| &mut o.receive_buffer)
    }

    fn send_buffer_size(&mut self, this: Resource<TcpSocket>) -> Result<u64, SocketError> {
        Ok(self.socket(&this)?.options.send_buffer)
    }

    fn set_send_buffer_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> Result<(), SocketError> {
        self.set_nonzero(&this, value, |o| &mut o.send_buffer)
    }

    fn subscribe(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(self.table, this)
    }

    fn shutdown(
        &mut self,
        this: Resource<TcpSocket>,
        how: ShutdownType,
    ) -> Result<(), SocketError> {
        let State::Connected { writer, .. } = &self.socket(&this)?.state else {
            return err(ErrorCode::InvalidState);
        };
        if matches!(how, ShutdownType::Send | ShutdownType::Both) {
            let mut writer = writer.clone();
            tokio::spawn(async move {
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut writer).await;
            });
        }
        Ok(())
    }

    fn drop(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
