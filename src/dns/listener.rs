//! The host listener (`--dns-listen`): UDP and TCP on one address, both answered by
//! the cluster's [`Handler`] and stopped with the cluster. TCP uses hickory-server's
//! transport; UDP, where the queries per second are, our own loops (`udp.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::handler::Handler;
use super::udp;

/// How long an idle TCP connection is kept (hickory's per-connection timeout).
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Responses queued per TCP connection.
const TCP_BUFFER: usize = 32;
/// Attempts at finding an ephemeral port free for both UDP and TCP.
const PORT_ATTEMPTS: usize = 16;

/// Bind UDP and TCP on `addr`; with port 0, one ephemeral port free for both.
pub(crate) async fn bind(
    addr: SocketAddr,
) -> std::io::Result<(UdpSocket, TcpListener, SocketAddr)> {
    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        let udp = UdpSocket::bind(addr).await?;
        let bound = udp.local_addr()?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp, bound)),
            // The UDP port's TCP twin is taken: another ephemeral port may do.
            Err(e) if addr.port() == 0 && e.kind() == std::io::ErrorKind::AddrInUse => {
                last = Some(e)
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

/// Serve `handler` on the bound sockets until `shutdown`: one UDP receive loop per
/// CPU, and hickory's TCP transport.
pub(crate) fn serve(
    handler: Handler,
    udp: UdpSocket,
    tcp: TcpListener,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) {
    let udp = Arc::new(udp);
    let loops = std::thread::available_parallelism().map_or(2, |n| n.get());
    for _ in 0..loops {
        tasks.spawn(udp::serve(handler.clone(), udp.clone(), shutdown.clone()));
    }
    let mut server = Server::new(handler);
    server.register_listener(tcp, TCP_IDLE, TCP_BUFFER);
    let token = server.shutdown_token().clone();
    tasks.spawn(async move {
        let stop = shutdown.clone();
        // Cancelling hickory's token makes its tasks finish; `block_until_done` then returns.
        let cancel = async move {
            stop.cancelled().await;
            token.cancel();
            std::future::pending::<()>().await
        };
        tokio::select! {
            result = server.block_until_done() => {
                if !shutdown.is_cancelled() {
                    tracing::warn!(?result, "the DNS TCP listener stopped on its own");
                }
            }
            () = cancel => {}
        }
    });
}
