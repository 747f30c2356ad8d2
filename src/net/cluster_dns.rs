//! The cluster DNS inside the network: pods' name lookups (wasi:sockets and
//! wasi:http) resolve through it, and it answers DNS over UDP and TCP on the
//! kube-dns ClusterIP (10.96.0.10:53), as CoreDNS behind that Service would.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{LookupError, Network, Resolve, addr};
use crate::dns::Dns;

impl Resolve for Dns {
    fn lookup<'a>(
        &'a self,
        name: &'a str,
        namespace: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<IpAddr>, LookupError>> + Send + 'a>> {
        Box::pin(async move {
            self.lookup_ip(name, namespace).await.map_err(|e| {
                if e.is_not_found() {
                    LookupError::NotFound
                } else {
                    LookupError::Temporary
                }
            })
        })
    }
}

/// Serve DNS over TCP (length-prefixed messages) on the kube-dns ClusterIP until
/// the task is dropped.
pub async fn serve_tcp(net: Network, dns: Dns) {
    let at = SocketAddr::new(IpAddr::V4(addr::DNS_IP), 53);
    let mut listener = match net.listen_virtual(at) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(%at, error = %e, "cluster DNS not served in the network");
            return;
        }
    };
    while let Some(mut conn) = listener.accept().await {
        let dns = dns.clone();
        tokio::spawn(async move {
            loop {
                let Ok(len) = conn.stream.read_u16().await else {
                    return;
                };
                let mut query = vec![0; usize::from(len)];
                if conn.stream.read_exact(&mut query).await.is_err() {
                    return;
                }
                let Some(answer) = dns.answer_tcp(&query).await else {
                    return;
                };
                let Ok(n) = u16::try_from(answer.len()) else {
                    return;
                };
                let mut framed = n.to_be_bytes().to_vec();
                framed.extend_from_slice(&answer);
                if conn.stream.write_all(&framed).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Serve DNS over UDP on the kube-dns ClusterIP until the task is dropped; each
/// query is answered on a task of its own (a forwarded one may wait upstream).
pub async fn serve_udp(net: Network, dns: Dns) {
    let at = SocketAddr::new(IpAddr::V4(addr::DNS_IP), 53);
    let socket = match net.bind_udp(None, at) {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => {
            tracing::warn!(%at, error = %e, "cluster DNS (UDP) not served in the network");
            return;
        }
    };
    while let Some(query) = socket.recv().await {
        let (dns, socket) = (dns.clone(), socket.clone());
        tokio::spawn(async move {
            if let Some(answer) = dns.answer(&query.data).await
                && let Err(e) = socket.send(&answer, query.from)
            {
                tracing::debug!(to = %query.from, error = %e, "sending a DNS answer");
            }
        });
    }
}
