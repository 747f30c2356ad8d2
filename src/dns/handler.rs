//! The request handler hickory-server calls for every DNS message: names in the
//! cluster zone (and reverse names of cluster IPs) are answered from the current
//! [`Zone`] snapshot, authoritatively; other names are forwarded upstream when pod
//! egress is allowed and are NXDOMAIN otherwise. The same handler serves the host
//! listener and in-process wire queries ([`Dns::answer`](super::Dns::answer)).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Record, RecordType};
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::NetError;
use hickory_server::net::runtime::{Time, TokioTime};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder};

use super::Inner;

/// Answers DNS messages for one cluster.
#[derive(Clone)]
pub(crate) struct Handler(pub(crate) Arc<Inner>);

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response: R,
    ) -> ResponseInfo {
        // RFC 6891: answer EDNS with EDNS, advertising at least 512 bytes.
        let edns = request.edns.as_ref().map(|asked| {
            let mut ours = Edns::new();
            ours.set_max_payload(asked.max_payload().max(512));
            ours.set_version(0);
            ours
        });
        let refuse = |code| Refusal {
            request,
            edns: edns.as_ref(),
            code,
        };
        if request.metadata.message_type != MessageType::Query {
            return refuse(ResponseCode::FormErr).send(response).await;
        }
        if request.metadata.op_code != OpCode::Query {
            return refuse(ResponseCode::NotImp).send(response).await;
        }
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return refuse(ResponseCode::BADVERS).send(response).await;
        }
        let Ok(info) = request.request_info() else {
            return refuse(ResponseCode::FormErr).send(response).await;
        };
        let query = info.query;
        if query.query_class() != DNSClass::IN
            || matches!(query.query_type(), RecordType::AXFR | RecordType::IXFR)
        {
            return refuse(ResponseCode::Refused).send(response).await;
        }
        let zone = self.0.zone().await;
        let egress = self.0.upstream.is_some();
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.recursion_available = egress;
        let Some(answer) = zone.lookup(query.name(), query.query_type()) else {
            return self.outside(request, edns.as_ref(), meta, response).await;
        };
        meta.authoritative = answer.authoritative;
        meta.response_code = answer.code;
        // An ExternalName's target is resolved upstream (when allowed), as CoreDNS does.
        let chased = match (answer.external, &self.0.upstream) {
            (Some(target), Some(upstream)) => {
                super::resolve::ask_upstream(upstream, target, query.query_type())
                    .await
                    .ok()
                    .map(|m| m.answers)
                    .unwrap_or_default()
            }
            _ => Vec::new(),
        };
        let built = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
            meta,
            answer.answers.iter().copied().chain(chased.iter()),
            answer.soa,
            std::iter::empty(),
            answer.additionals.iter().copied(),
        );
        send(response, built, request).await
    }
}

impl Handler {
    /// A name outside the zone: forwarded upstream, or NXDOMAIN when egress is denied.
    async fn outside<R: ResponseHandler>(
        &self,
        request: &Request,
        edns: Option<&Edns>,
        mut meta: Metadata,
        response: R,
    ) -> ResponseInfo {
        let Some(upstream) = &self.0.upstream else {
            meta.response_code = ResponseCode::NXDomain;
            let built = MessageResponseBuilder::new(&request.queries, edns).build_no_records(meta);
            return send(response, built, request).await;
        };
        let forwarded = match upstream.exchange(request.as_slice()).await {
            Ok(bytes) => Message::from_vec(&bytes).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let message = match forwarded {
            Ok(message) => message,
            Err(error) => {
                tracing::debug!(%error, "forwarding a DNS query upstream failed");
                meta.response_code = ResponseCode::ServFail;
                let built =
                    MessageResponseBuilder::new(&request.queries, edns).build_no_records(meta);
                return send(response, built, request).await;
            }
        };
        meta.response_code = message.metadata.response_code;
        meta.authentic_data = message.metadata.authentic_data;
        let built = MessageResponseBuilder::new(&request.queries, edns).build(
            meta,
            message.answers.iter(),
            message.authorities.iter(),
            std::iter::empty(),
            message.additionals.iter(),
        );
        send(response, built, request).await
    }
}

/// An error answer with no records.
struct Refusal<'a> {
    request: &'a Request,
    edns: Option<&'a Edns>,
    code: ResponseCode,
}

impl Refusal<'_> {
    async fn send<R: ResponseHandler>(self, response: R) -> ResponseInfo {
        let built = MessageResponseBuilder::new(&self.request.queries, self.edns)
            .error_msg(&self.request.metadata, self.code);
        send(response, built, self.request).await
    }
}

async fn send<'a, R: ResponseHandler>(
    mut response: R,
    built: MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    request: &Request,
) -> ResponseInfo {
    match response.send_response(built).await {
        Ok(info) => info,
        Err(error) => {
            tracing::debug!(%error, "sending a DNS response failed");
            let mut meta = Metadata::response_from_request(&request.metadata);
            meta.response_code = ResponseCode::ServFail;
            ResponseInfo::from(hickory_proto::op::Header {
                metadata: meta,
                counts: Default::default(),
            })
        }
    }
}

/// Encode `response` as it goes out over `protocol`: over UDP within 512 bytes unless
/// EDNS advertised more (RFC 1035 4.2.1); what does not fit is dropped and TC set.
pub(crate) fn encode<'a>(
    response: MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    protocol: Protocol,
) -> Result<(ResponseInfo, Vec<u8>), NetError> {
    let max = match protocol {
        Protocol::Udp => response.edns().map_or(512, |e| e.max_payload().max(512)),
        _ => u16::MAX,
    };
    let mut bytes = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(max);
    let info = response
        .destructive_emit(&mut encoder)
        .map_err(|e| NetError::from(e.to_string()))?;
    Ok((info, bytes))
}

/// A response sink that keeps the encoded message (for in-process queries).
#[derive(Clone)]
struct Capture {
    protocol: Protocol,
    out: Arc<Mutex<Option<Vec<u8>>>>,
}

#[async_trait::async_trait]
impl ResponseHandler for Capture {
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
        let (info, bytes) = encode(response, self.protocol)?;
        if let Ok(mut out) = self.out.lock() {
            *out = Some(bytes);
        }
        Ok(info)
    }
}

/// Answer one wire-format message as if it came over `protocol`; `None` when it is not
/// a query that deserves an answer (too short, garbled header, or a response).
pub(crate) async fn answer(handler: &Handler, query: &[u8], protocol: Protocol) -> Option<Vec<u8>> {
    // The source address only appears in hickory's logs.
    let src = SocketAddr::from(([0, 0, 0, 0], 0));
    let request = match Request::from_bytes(query.to_vec(), src, protocol) {
        Ok(request) => request,
        Err(error) => {
            tracing::debug!(%error, "undecodable DNS query");
            return formerr(query);
        }
    };
    if request.metadata.message_type == MessageType::Response {
        return None;
    }
    let capture = Capture {
        protocol,
        out: Arc::new(Mutex::new(None)),
    };
    handler
        .handle_request::<_, TokioTime>(&request, capture.clone())
        .await;
    capture.out.lock().ok()?.take()
}

/// FORMERR for a message whose header parsed but whose body did not (as hickory's
/// server answers); nothing for one shorter than a header or that is a response.
pub(crate) fn formerr(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    let mut header = [0u8; 12];
    header[..2].copy_from_slice(&query[..2]);
    // QR, the query's opcode and RD; RCODE 1.
    header[2] = 0x80 | (query[2] & 0x79);
    header[3] = 0x01;
    Some(header.to_vec())
}
