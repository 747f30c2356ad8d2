//! `nslookup NAME SERVER`: one A query over UDP (wasi:sockets udp) to SERVER port 53,
//! as busybox's nslookup asks a named server instead of the system resolver. The
//! name is asked as given (no search list).

use std::process::ExitCode;

use wasip2::clocks::monotonic_clock;
use wasip2::io::poll;
use wasip2::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasip2::sockets::udp::OutgoingDatagram;
use wasip2::sockets::{instance_network, udp_create_socket};

/// How long to wait for the answer, as busybox's default.
const TIMEOUT_NS: u64 = 5_000_000_000;

/// An A query for `name` with id `id`, recursion desired.
fn query(name: &str, id: u16) -> Option<Vec<u8>> {
    let mut q = Vec::with_capacity(name.len() + 18);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&[0, 1, 0, 1]);
    Some(q)
}

/// Skip a (possibly compressed) name at `at`: the offset after it.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)?;
        if len & 0xc0 == 0xc0 {
            return Some(at + 2);
        }
        at += 1;
        if len == 0 {
            return Some(at);
        }
        at += usize::from(len);
    }
}

/// The answer's rcode and A addresses, if `msg` answers query `id`.
fn parse(msg: &[u8], id: u16) -> Option<(u8, Vec<[u8; 4]>)> {
    if msg.len() < 12 || u16::from_be_bytes([msg[0], msg[1]]) != id {
        return None;
    }
    let rcode = msg[3] & 0x0f;
    let questions = u16::from_be_bytes([msg[4], msg[5]]);
    let answers = u16::from_be_bytes([msg[6], msg[7]]);
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(msg, at)? + 4;
    }
    let mut addrs = Vec::new();
    for _ in 0..answers {
        at = skip_name(msg, at)?;
        let fixed = msg.get(at..at + 10)?;
        let (rtype, len) = (u16::from_be_bytes([fixed[0], fixed[1]]), usize::from(u16::from_be_bytes([fixed[8], fixed[9]])));
        at += 10;
        let data = msg.get(at..at + len)?;
        if rtype == 1 && len == 4 {
            addrs.push([data[0], data[1], data[2], data[3]]);
        }
        at += len;
    }
    Some((rcode, addrs))
}

/// Send `q` to `server`:53 and wait for one datagram back.
fn exchange(server: (u8, u8, u8, u8), q: &[u8]) -> Result<Vec<u8>, String> {
    let err = |e: ErrorCode| e.name().to_string();
    let network = instance_network::instance_network();
    let socket = udp_create_socket::create_udp_socket(IpAddressFamily::Ipv4).map_err(err)?;
    let any = IpSocketAddress::Ipv4(Ipv4SocketAddress { port: 0, address: (0, 0, 0, 0) });
    socket.start_bind(&network, any).map_err(err)?;
    socket.subscribe().block();
    socket.finish_bind().map_err(err)?;
    let remote = IpSocketAddress::Ipv4(Ipv4SocketAddress { port: 53, address: server });
    let (incoming, outgoing) = socket.stream(Some(remote)).map_err(err)?;
    outgoing.subscribe().block();
    outgoing.check_send().map_err(err)?;
    outgoing.send(&[OutgoingDatagram { data: q.to_vec(), remote_address: None }]).map_err(err)?;
    let ready = incoming.subscribe();
    let timeout = monotonic_clock::subscribe_duration(TIMEOUT_NS);
    loop {
        let woken = poll::poll(&[&ready, &timeout]);
        if woken.contains(&0) {
            if let Some(d) = incoming.receive(1).map_err(err)?.pop() {
                return Ok(d.data);
            }
        } else {
            return Err("connection timed out; no servers could be reached".into());
        }
    }
}

pub(crate) fn nslookup_at(name: &str, server: &str) -> ExitCode {
    let Ok(ip) = server.parse::<std::net::Ipv4Addr>() else {
        eprintln!("nslookup: bad server address {server}");
        return ExitCode::FAILURE;
    };
    let [a, b, c, d] = ip.octets();
    println!("Server:\t\t{server}\nAddress:\t{server}:53\n");
    let id = 0x6d6b;
    let Some(q) = query(name, id) else {
        println!("** server can't find {name}: bad name");
        return ExitCode::FAILURE;
    };
    let answer = match exchange((a, b, c, d), &q) {
        Ok(bytes) => bytes,
        Err(e) => {
            println!(";; {e}");
            return ExitCode::FAILURE;
        }
    };
    match parse(&answer, id) {
        Some((0, addrs)) if !addrs.is_empty() => {
            println!("Name:\t{name}");
            for [a, b, c, d] in addrs {
                println!("Address: {a}.{b}.{c}.{d}");
            }
            ExitCode::SUCCESS
        }
        Some((3, _)) => {
            println!("** server can't find {name}: NXDOMAIN");
            ExitCode::FAILURE
        }
        Some((0, _)) => {
            println!("** server can't find {name}: NODATA");
            ExitCode::FAILURE
        }
        Some(_) => {
            println!("** server can't find {name}: SERVFAIL");
            ExitCode::FAILURE
        }
        None => {
            println!(";; malformed answer");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_round_trips_through_an_answer_with_a_compressed_name() {
        let q = query("web.default.svc.cluster.local", 7).unwrap();
        let mut answer = q.clone();
        answer[2] = 0x81;
        answer[3] = 0x80;
        answer[7] = 1;
        answer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 96, 0, 20]);
        assert_eq!(parse(&answer, 7), Some((0, vec![[10, 96, 0, 20]])));
        assert_eq!(parse(&answer, 8), None);
        assert!(query("a..b", 1).is_none());
    }
}
