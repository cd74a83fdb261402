//! A minimal keep-alive HTTP/1.1 client: one connection per simulated client, as a
//! browser tab keeps one to its sync server. Both servers are measured through it.

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub struct Connection {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> Result<Self, Error> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // The connection ends when the sender is dropped; errors show up on requests.
            let _ = conn.await;
        });
        Ok(Self { addr, sender })
    }

    /// POSTs a JSON body to `path_and_query`; the status and the (undecoded) body.
    pub async fn post(
        &mut self,
        path_and_query: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), Error> {
        self.sender.ready().await?;
        let request = hyper::Request::post(path_and_query)
            .header(hyper::header::HOST, self.addr.to_string())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// Waits until something accepts TCP connections on `addr`.
pub async fn wait_for_port(addr: SocketAddr, limit: Duration) -> Result<(), Error> {
    let started = std::time::Instant::now();
    loop {
        if TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if started.elapsed() > limit {
            return Err(format!("nothing listens on {addr} after {limit:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
