//! What a connection is, to everything after accept: who is on the other
//! end ([`Peer`]), a stream that replays bytes already read ([`Rewind`]),
//! and one that can be closed with a reset ([`Abortable`]). A leaf: it
//! depends on nothing else in the edge.

use bytes::Bytes;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    /// The client: the socket peer, or the PROXY header's source from a trusted peer.
    pub ip: IpAddr,
    /// The socket (or PROXY) peer is a trusted proxy: its X-Forwarded-For is believed.
    pub trusted: bool,
    /// TLS version and SNI, for TLS connections.
    pub tls: Option<TlsInfo>,
}

#[derive(Debug, Clone)]
pub(crate) struct TlsInfo {
    pub version: &'static str,
    pub sni: Option<String>,
    /// JA4 fingerprint of the ClientHello.
    pub ja4: Option<String>,
}

/// Connections the edge can close abortively: a reset instead of a FIN, so
/// that the kernel drops what is still queued for a client that does not
/// read (slow read) instead of holding it until the client drains it.
pub(crate) trait Abortable {
    fn reset_on_close(&self);
}

impl Abortable for Rewind<TcpStream> {
    fn reset_on_close(&self) {
        let _ = socket2::SockRef::from(&self.inner).set_linger(Some(Duration::ZERO));
    }
}

impl Abortable for tokio_rustls::server::TlsStream<Rewind<TcpStream>> {
    fn reset_on_close(&self) {
        self.get_ref().0.reset_on_close();
    }
}

/// A stream that first replays bytes already read from it.
pub(crate) struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    pub(crate) fn new(prefix: Bytes, inner: S) -> Self {
        Rewind { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if !me.prefix.is_empty() {
            let n = me.prefix.len().min(buf.remaining());
            buf.put_slice(&me.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut me.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
