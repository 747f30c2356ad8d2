//! The UDP transport of the host listener: one receive loop per CPU on a shared
//! socket, each datagram parsed into a hickory [`Request`] and handed to the
//! [`Handler`], the answer sent straight back from the task that received it.
//!
//! Why not hickory's own UDP transport: it receives and sends on one task, clears a
//! 4 KiB buffer per datagram, spawns a task per query and passes every answer through
//! a channel back to that one task; it topped out at ~75k queries/s against knot's
//! ~185k on the benchmark (benches/dns.rs). Here a query answered from the zone
//! completes on its first poll without a spawn; only one that has to wait (forwarded
//! upstream) becomes a task of its own, so a slow upstream never stalls the loop.

use std::net::SocketAddr;
use std::sync::Arc;

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

/// Answers sent straight to the client's address on the listening socket.
#[derive(Clone)]
struct Reply {
    socket: Arc<UdpSocket>,
    to: SocketAddr,
}

#[async_trait::async_trait]
impl ResponseHandler for Reply {
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
        self.socket.send_to(&bytes, self.to).await?;
        Ok(info)
    }
}

/// Receive and answer queries on `socket` until `shutdown`.
pub(crate) async fn serve(handler: Handler, socket: Arc<UdpSocket>, shutdown: CancellationToken) {
    let mut buf = vec![0u8; MAX_QUERY];
    // Queries still waiting (forwarded upstream); dropped, and so aborted, with the loop.
    let mut waiting = JoinSet::new();
    loop {
        let (n, from) = tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(error) => {
                    // ICMP errors from earlier sends surface here (ECONNREFUSED): not ours.
                    tracing::debug!(%error, "DNS UDP receive");
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        while waiting.try_join_next().is_some() {}
        // Nothing can be sent back to port 0.
        if from.port() == 0 {
            continue;
        }
        let datagram = &buf[..n];
        let request = match Request::from_bytes(datagram.to_vec(), from, Protocol::Udp) {
            Ok(request) if request.metadata.message_type == MessageType::Query => request,
            Ok(_) => continue,
            Err(error) => {
                tracing::debug!(%error, %from, "undecodable DNS query");
                if let Some(formerr) = handler::formerr(datagram) {
                    let _ = socket.send_to(&formerr, from).await;
                }
                continue;
            }
        };
        let reply = Reply {
            socket: socket.clone(),
            to: from,
        };
        let handler = handler.clone();
        let mut answering = Box::pin(async move {
            handler
                .handle_request::<_, TokioTime>(&request, reply)
                .await;
        });
        if futures::poll!(answering.as_mut()).is_pending() {
            waiting.spawn(answering);
        }
    }
}
