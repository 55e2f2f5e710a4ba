//! Listeners: accept, TLS handshake, HTTP/1.1 keep-alive or HTTP/2, connection limits, graceful
//! shutdown. Every request goes to [`Gateway::handle`].

use crate::{Gateway, ObjectGateway};
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

/// Open connections per listener; beyond it new connections are closed at once.
const MAX_CONNECTIONS: u32 = 4096;
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that has not sent complete request headers by then is disconnected (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(15);

/// A response body: whole (RPC) or streamed (large object reads).
pub type ResponseBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// A whole body as a [`ResponseBody`].
pub fn full(b: Full<Bytes>) -> ResponseBody {
    b.map_err(|never| match never {}).boxed_unsync()
}

/// What a listener serves: the RPC gateway or the object gateway.
pub trait Frontend: Send + Sync + 'static {
    fn serve_request(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        secure: bool,
    ) -> BoxFuture<'_, Response<ResponseBody>>;
}

impl Frontend for Gateway {
    fn serve_request(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        secure: bool,
    ) -> BoxFuture<'_, Response<ResponseBody>> {
        Box::pin(async move { self.handle(req, peer, secure).await.map(full) })
    }
}

impl Frontend for ObjectGateway {
    fn serve_request(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        secure: bool,
    ) -> BoxFuture<'_, Response<ResponseBody>> {
        Box::pin(self.handle(req, peer, secure))
    }
}

/// A bound listening socket, plain or TLS.
pub struct Listener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl Listener {
    pub async fn bind(addr: SocketAddr, tls: Option<Arc<rustls::ServerConfig>>) -> std::io::Result<Self> {
        let tcp = TcpListener::bind(addr).await?;
        Ok(Listener { tcp, tls: tls.map(TlsAcceptor::from) })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until `shutdown` turns true, then stops accepting and waits up to `drain` for open
    /// connections to finish their in-flight requests.
    pub async fn serve<F: Frontend>(self, gateway: Arc<F>, mut shutdown: watch::Receiver<bool>, drain: Duration) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS as usize));
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT).keep_alive(true);
        builder.http2().timer(TokioTimer::new());
        let builder = Arc::new(builder);
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.changed() => break,
                r = self.tcp.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Typically EMFILE: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "connection limit reached; closing new connection");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (gw, tls, builder, mut stop) = (gateway.clone(), self.tls.clone(), builder.clone(), shutdown.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let secure = tls.is_some();
                let svc = service_fn(move |req| {
                    let gw = gw.clone();
                    async move { Ok::<_, Infallible>(gw.serve_request(req, peer, secure).await) }
                });
                match tls {
                    Some(acceptor) => {
                        let Ok(Ok(s)) = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                        else {
                            return;
                        };
                        let conn = builder.serve_connection(TokioIo::new(s), svc);
                        tokio::pin!(conn);
                        tokio::select! {
                            _ = conn.as_mut() => {}
                            _ = stop.changed() => { conn.as_mut().graceful_shutdown(); let _ = conn.await; }
                        }
                    }
                    None => {
                        let conn = builder.serve_connection(TokioIo::new(stream), svc);
                        tokio::pin!(conn);
                        tokio::select! {
                            _ = conn.as_mut() => {}
                            _ = stop.changed() => { conn.as_mut().graceful_shutdown(); let _ = conn.await; }
                        }
                    }
                }
            });
        }
        // Every connection holds a permit: getting them all back means every connection closed.
        if tokio::time::timeout(drain, slots.acquire_many(MAX_CONNECTIONS)).await.is_err() {
            tracing::warn!("connections still open after the drain period; closing them");
        }
    }
}
