//! Batched datagram I/O on Linux: `recvmmsg`/`sendmmsg` move up to [`BATCH`]
//! datagrams per system call, as Knot and other fast DNS servers do; under load
//! the per-call cost, not the per-packet one, is what they save.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams per system call.
pub(crate) const BATCH: usize = 32;

/// One received datagram: which slot of the buffer holds it, its length, its sender.
pub(crate) type Received = (usize, usize, SocketAddr);

/// Receive up to [`BATCH`] datagrams without blocking into `bufs` (slots of `slot`
/// bytes); fills `received` and returns how many datagrams the call took.
pub(crate) fn recv(
    fd: RawFd,
    bufs: &mut [u8],
    slot: usize,
    received: &mut Vec<Received>,
) -> io::Result<usize> {
    received.clear();
    let count = (bufs.len() / slot).min(BATCH);
    // SAFETY: all-zero is a valid value for these plain C structs (null pointers,
    // zero lengths); every pointer set below points into `bufs`, `iovs` or `names`,
    // which outlive the call.
    let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
    let mut names: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    for (i, chunk) in bufs.chunks_exact_mut(slot).take(count).enumerate() {
        iovs[i] = libc::iovec {
            iov_base: chunk.as_mut_ptr().cast(),
            iov_len: slot,
        };
        msgs[i].msg_hdr.msg_name = (&raw mut names[i]).cast();
        msgs[i].msg_hdr.msg_namelen = socklen::<libc::sockaddr_storage>();
        msgs[i].msg_hdr.msg_iov = &raw mut iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `msgs[..count]` are initialised above and point at live buffers.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            msgs.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    for i in 0..n {
        // A truncated datagram (larger than a slot) is not a query we can read.
        if msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            continue;
        }
        if let Some(from) = from_storage(&names[i]) {
            received.push((i, msgs[i].msg_len as usize, from));
        }
    }
    Ok(n)
}

/// Send `replies` without blocking; returns how many went out (the rest would block).
pub(crate) fn send(fd: RawFd, replies: &[(SocketAddr, Vec<u8>)]) -> io::Result<usize> {
    let count = replies.len().min(BATCH);
    // SAFETY: as in `recv`; the pointers point into `replies`, `iovs` and `names`.
    let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
    let mut names: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    for (i, (to, bytes)) in replies.iter().take(count).enumerate() {
        let len = to_storage(*to, &mut names[i]);
        iovs[i] = libc::iovec {
            iov_base: bytes.as_ptr().cast_mut().cast(),
            iov_len: bytes.len(),
        };
        msgs[i].msg_hdr.msg_name = (&raw mut names[i]).cast();
        msgs[i].msg_hdr.msg_namelen = len;
        msgs[i].msg_hdr.msg_iov = &raw mut iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `msgs[..count]` are initialised above; sendmmsg only reads the buffers.
    let n = unsafe {
        libc::sendmmsg(
            fd,
            msgs.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
}

fn from_storage(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it can.
            let v4: &libc::sockaddr_in = unsafe { &*std::ptr::from_ref(storage).cast() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)),
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let v6: &libc::sockaddr_in6 = unsafe { &*std::ptr::from_ref(storage).cast() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(v6.sin6_addr.s6_addr),
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn to_storage(addr: SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let v4: &mut libc::sockaddr_in = unsafe { &mut *std::ptr::from_mut(storage).cast() };
            v4.sin_family = libc::AF_INET as libc::sa_family_t;
            v4.sin_port = a.port().to_be();
            v4.sin_addr = libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            };
            socklen::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let v6: &mut libc::sockaddr_in6 = unsafe { &mut *std::ptr::from_mut(storage).cast() };
            v6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            v6.sin6_port = a.port().to_be();
            v6.sin6_flowinfo = a.flowinfo();
            v6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            v6.sin6_scope_id = a.scope_id();
            socklen::<libc::sockaddr_in6>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_batch_goes_out_and_comes_back_with_its_senders() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (server_addr, client_addr) =
            (server.local_addr().unwrap(), client.local_addr().unwrap());
        let replies: Vec<_> = (0..3u8).map(|i| (server_addr, vec![i; 5])).collect();
        assert_eq!(send(client.as_raw_fd(), &replies).unwrap(), 3);
        let mut bufs = vec![0u8; 64 * BATCH];
        let mut received = Vec::new();
        // Loopback delivers during the send: all three are queued already.
        assert_eq!(
            recv(server.as_raw_fd(), &mut bufs, 64, &mut received).unwrap(),
            3
        );
        assert_eq!(received.len(), 3);
        assert!(
            received
                .iter()
                .all(|(_, len, from)| *len == 5 && *from == client_addr)
        );
        assert_eq!(received[1].0, 1);
        assert_eq!(&bufs[64..69], &[1; 5]);
    }
}
