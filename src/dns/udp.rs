//! The UDP transport of the host listener: one receive loop per CPU on a shared
//! socket; each datagram is parsed into a hickory [`Request`] and handed to the
//! [`Handler`]. On Linux datagrams come and go in batches (`recvmmsg`/`sendmmsg`).
//!
//! Why not hickory's own UDP transport: it receives and sends on one task, clears a
//! 4 KiB buffer per datagram, spawns a task per query and passes every answer through
//! a channel back to that one task; it reached ~75k queries/s where knot served
//! ~185k on the benchmark (benches/dns.rs). Here a query answered from the zone
//! completes on its first poll, without a task of its own; only one that has to wait
//! (forwarded upstream) is spawned, so a slow upstream never stalls the loop.

#[cfg(target_os = "linux")]
mod mmsg;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::MessageType;
use hickory_proto::rr::Record;
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::handler::{self, Handler};

/// The largest query accepted (EDNS's usual maximum; queries are far smaller).
const MAX_QUERY: usize = 4096;

/// Where the handler's encoded answer is left for the loop (or the waiting task) to send.
#[derive(Clone, Default)]
struct Slot(Arc<Mutex<Option<Vec<u8>>>>);

impl Slot {
    fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().ok()?.take()
    }
}

#[async_trait::async_trait]
impl ResponseHandler for Slot {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let (info, bytes) = handler::encode(response, Protocol::Udp)?;
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(bytes);
        }
        Ok(info)
    }
}

/// One receive loop: the socket, the handler, and the queries still waiting upstream
/// (dropped, and so aborted, with the loop).
struct Loop {
    handler: Handler,
    socket: Arc<UdpSocket>,
    waiting: JoinSet<()>,
}

impl Loop {
    /// Answer the datagram `query` from `from`: the answer, when it is ready at once.
    async fn answer(&mut self, query: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
        // Nothing can be sent back to port 0.
        if from.port() == 0 {
            return None;
        }
        let request = match Request::from_bytes(query.to_vec(), from, Protocol::Udp) {
            Ok(request) if request.metadata.message_type == MessageType::Query => request,
            Ok(_) => return None,
            Err(error) => {
                tracing::debug!(%error, %from, "undecodable DNS query");
                return handler::formerr(query);
            }
        };
        let slot = Slot::default();
        let handler = self.handler.clone();
        let sink = slot.clone();
        let mut answering = Box::pin(async move {
            handler.handle_request::<_, TokioTime>(&request, sink).await;
        });
        if futures::poll!(answering.as_mut()).is_ready() {
            return slot.take();
        }
        let socket = self.socket.clone();
        self.waiting.spawn(async move {
            answering.await;
            if let Some(bytes) = slot.take()
                && let Err(error) = socket.send_to(&bytes, from).await
            {
                tracing::debug!(%error, %from, "sending a DNS answer");
            }
        });
        while self.waiting.try_join_next().is_some() {}
        None
    }

    /// Send one answer, waiting for the socket if need be.
    async fn send(&self, bytes: &[u8], to: SocketAddr) {
        if let Err(error) = self.socket.send_to(bytes, to).await {
            tracing::debug!(%error, %to, "sending a DNS answer");
        }
    }
}

/// Receive and answer queries on `socket` until `shutdown`.
pub(crate) async fn serve(handler: Handler, socket: Arc<UdpSocket>, shutdown: CancellationToken) {
    let mut lp = Loop {
        handler,
        socket,
        waiting: JoinSet::new(),
    };
    tokio::select! {
        () = run(&mut lp) => {}
        () = shutdown.cancelled() => {}
    }
}

#[cfg(not(target_os = "linux"))]
async fn run(lp: &mut Loop) {
    let mut buf = vec![0u8; MAX_QUERY];
    loop {
        let (n, from) = match lp.socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(error) => {
                // ICMP errors from earlier sends surface here (ECONNREFUSED): not ours.
                tracing::debug!(%error, "DNS UDP receive");
                continue;
            }
        };
        if let Some(bytes) = lp.answer(&buf[..n], from).await {
            lp.send(&bytes, from).await;
        }
    }
}

#[cfg(target_os = "linux")]
async fn run(lp: &mut Loop) {
    use std::os::fd::AsRawFd;
    use tokio::io::Interest;

    let fd = lp.socket.as_raw_fd();
    let mut bufs = vec![0u8; MAX_QUERY * mmsg::BATCH];
    let mut received = Vec::with_capacity(mmsg::BATCH);
    let mut replies: Vec<(SocketAddr, Vec<u8>)> = Vec::with_capacity(mmsg::BATCH);
    loop {
        if lp.socket.readable().await.is_err() {
            return;
        }
        match lp.socket.try_io(Interest::READABLE, || {
            mmsg::recv(fd, &mut bufs, MAX_QUERY, &mut received)
        }) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(error) => {
                // ICMP errors from earlier sends surface here (ECONNREFUSED): not ours.
                tracing::debug!(%error, "DNS UDP receive");
                continue;
            }
        }
        for &(slot, len, from) in &received {
            let query = &bufs[slot * MAX_QUERY..slot * MAX_QUERY + len];
            if let Some(bytes) = lp.answer(query, from).await {
                replies.push((from, bytes));
            }
        }
        let mut sent = 0;
        while sent < replies.len() {
            match lp
                .socket
                .try_io(Interest::WRITABLE, || mmsg::send(fd, &replies[sent..]))
            {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        // What did not fit the socket's buffer goes out one by one, waiting for room.
        for (to, bytes) in &replies[sent..] {
            lp.send(bytes, *to).await;
        }
        replies.clear();
    }
}
