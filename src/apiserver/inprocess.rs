//! The in-process transport: a `tower::Service` that hands requests straight to the
//! API server, so components and tests use a real `kube::Client` without sockets.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body_util::BodyExt;

use super::ApiServer;
use super::response::{self, Body};
use crate::api::codec::MAX_BODY;
use crate::api::error::ApiError;

/// A `tower::Service` over [`ApiServer::handle`]; authenticated as the cluster itself.
#[derive(Clone, Debug)]
pub struct InProcess {
    api: ApiServer,
}

impl InProcess {
    /// Wrap a server.
    pub fn new(api: ApiServer) -> Self {
        InProcess { api }
    }

    /// A `kube::Client` talking to this server, default namespace `default`.
    pub fn client(self) -> kube::Client {
        kube::Client::new(self, "default")
    }
}

impl<B> tower::Service<Request<B>> for InProcess
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future =
        Pin<Box<dyn Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let api = self.api.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let bytes = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
                Ok(c) => c.to_bytes(),
                Err(e) => {
                    return Ok(response::error(&ApiError::bad_request(format!(
                        "reading the request body: {e}"
                    ))));
                }
            };
            Ok(api.handle(Request::from_parts(parts, bytes)).await)
        })
    }
}
