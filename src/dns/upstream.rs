//! Forwarding names outside the cluster to upstream nameservers (the host's
//! `/etc/resolv.conf` ones by default), as CoreDNS's `forward . /etc/resolv.conf`:
//! the query goes out as the client sent it, over UDP, and again over TCP when the
//! answer comes back truncated; servers are tried in order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Why no upstream answer came.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// There is no upstream nameserver to ask.
    #[error("no upstream nameserver configured")]
    NoServers,
    /// Every server failed; the last failure.
    #[error("asking upstream nameserver {server}: {source}")]
    Exchange {
        /// The last server tried.
        server: SocketAddr,
        /// What went wrong with it.
        source: std::io::Error,
    },
    /// The query was not a DNS message.
    #[error("the query is too short to be a DNS message")]
    Malformed,
}

/// Where queries for names outside the cluster go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    servers: Vec<SocketAddr>,
    timeout: Duration,
}

/// How long one server gets to answer before the next is tried.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The largest DNS message over UDP we accept from upstream (EDNS maximum).
const MAX_UDP: usize = 4096;

impl Upstream {
    /// Forward to these servers, in order.
    pub fn servers(servers: Vec<SocketAddr>) -> Upstream {
        Upstream {
            servers,
            timeout: TIMEOUT,
        }
    }

    /// The `nameserver` lines of a resolv.conf file (port 53); none if it cannot be read.
    pub fn from_resolv_conf(path: &Path) -> Upstream {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "cannot read resolv.conf; no upstream DNS");
            String::new()
        });
        Upstream::servers(parse_resolv_conf(&text))
    }

    /// The host's nameservers (`/etc/resolv.conf`).
    pub fn system() -> Upstream {
        Upstream::from_resolv_conf(Path::new("/etc/resolv.conf"))
    }

    /// The servers asked, in order.
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// Send `query` (a whole DNS message) upstream and return the answer message.
    pub(crate) async fn exchange(&self, query: &[u8]) -> Result<Vec<u8>, Error> {
        if query.len() < 12 {
            return Err(Error::Malformed);
        }
        let mut last = Error::NoServers;
        for server in &self.servers {
            match self.exchange_with(*server, query).await {
                Ok(answer) => return Ok(answer),
                Err(source) => {
                    tracing::debug!(%server, error = %source, "upstream DNS server failed");
                    last = Error::Exchange {
                        server: *server,
                        source,
                    };
                }
            }
        }
        Err(last)
    }

    async fn exchange_with(&self, server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
        let answer = tokio::time::timeout(self.timeout, udp(server, query))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer over UDP")
            })??;
        // TC: the answer did not fit a datagram; ask again over TCP.
        if answer.get(2).is_some_and(|flags| flags & 0x02 != 0) {
            return tokio::time::timeout(self.timeout, tcp(server, query))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer over TCP")
                })?;
        }
        Ok(answer)
    }
}

async fn udp(server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = match server.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; MAX_UDP];
    loop {
        let n = socket.recv(&mut buf).await?;
        // Only the answer to this query (same ID) counts; anything else is ignored.
        if n >= 12 && buf[..2] == query[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn tcp(server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let len = u16::try_from(query.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "query too long"))?;
    let mut stream = TcpStream::connect(server).await?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let n = usize::from(stream.read_u16().await?);
    let mut answer = vec![0u8; n];
    stream.read_exact(&mut answer).await?;
    if n < 12 || answer[..2] != query[..2] {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "answer does not match the query",
        ));
    }
    Ok(answer)
}

/// The `nameserver` addresses of a resolv.conf (IPv6 zone suffixes are dropped).
fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            let addr = words.next()?;
            let addr = addr.split('%').next()?;
            addr.parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers_are_read_in_order() {
        let text = "# comment\nsearch example.com\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\noptions ndots:2\nnameserver bogus\n";
        assert_eq!(
            parse_resolv_conf(text),
            vec![
                "10.0.0.2:53".parse::<SocketAddr>().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
    }

    #[tokio::test]
    async fn a_dead_server_fails_over_to_the_next() {
        // A UDP server that answers every query with its own bytes plus the QR bit.
        let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = echo.recv_from(&mut buf).await {
                buf[2] |= 0x80;
                let _ = echo.send_to(&buf[..n], from).await;
            }
        });
        // A bound socket that never answers.
        let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut upstream = Upstream::servers(vec![dead.local_addr().unwrap(), addr]);
        upstream.timeout = Duration::from_millis(200);
        let query = [0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        let answer = upstream.exchange(&query).await.expect("answer");
        assert_eq!(answer[..2], [0x12, 0x34]);
        assert_eq!(answer[2] & 0x80, 0x80);
        assert!(matches!(
            Upstream::servers(vec![]).exchange(&query).await,
            Err(Error::NoServers)
        ));
    }
}
