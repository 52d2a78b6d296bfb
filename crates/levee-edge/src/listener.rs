//! Accepting connections: caps at accept (before any TLS work), surviving
//! file-descriptor exhaustion, the PROXY header from trusted peers, the TLS
//! handshake deadline and the choice between HTTP/1 and HTTP/2.

use crate::conn::Rewind;
pub(crate) use crate::conn::{Peer, TlsInfo};
use crate::metrics::Reason;
use crate::Shared;
use bytes::{Buf, Bytes, BytesMut};
use levee_config::Listener;
use levee_http::proxy_proto;
use levee_limits::{CapExceeded, ConnPermit};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// Bind a listening socket with a deep backlog and address reuse.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::from_std(bind_std(addr, false)?)
}

/// Bind a non-blocking listening socket; with `reuse_port`, several sockets
/// (one per worker thread) share the address and the kernel spreads
/// connections over them.
pub(crate) fn bind_std(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        let _ = s.set_only_v6(true);
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    Ok(s.into())
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENFILE) | Some(libc::EMFILE))
}

/// Close a refused connection at once, with a reset rather than a FIN, so
/// the refusal costs no TIME_WAIT state.
fn refuse(sock: TcpStream) {
    let _ = socket2::SockRef::from(&sock).set_linger(Some(Duration::ZERO));
    drop(sock);
}

fn cap_reason(c: CapExceeded) -> Reason {
    match c {
        CapExceeded::Global => Reason::ConnCapGlobal,
        CapExceeded::PerIp => Reason::ConnCapIp,
        CapExceeded::PerPrefix => Reason::ConnCapPrefix,
    }
}

/// Accept until shutdown.
pub(crate) async fn accept_loop(listener: TcpListener, cfg: Listener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => return,
        };
        let (sock, addr) = match accepted {
            Ok(x) => x,
            Err(e) if is_fd_exhaustion(&e) => {
                // Out of descriptors: back off and let connections finish rather than spin.
                shared.metrics.defend(Reason::AcceptFdExhausted);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(_) => {
                shared.metrics.defend(Reason::AcceptError);
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let ip = IpAddr::to_canonical(&addr.ip());
        if shared.is_blocked(ip) {
            refuse(sock);
            shared.refuse_connection(ip, Reason::Blocked, None, "tcp");
            continue;
        }
        let trusted = shared.state.load().cfg.trust.trusts(ip);
        let acquired = if cfg.proxy_protocol && trusted {
            // Counted against the real client once the PROXY header is read.
            None
        } else if trusted {
            // A trusted proxy carries many clients: only the global cap applies
            // (the per-address caps would cut everyone behind it).
            Some(shared.tracker.try_acquire_global(ip))
        } else {
            Some(shared.tracker.try_acquire(ip))
        };
        let permit = match acquired {
            None => None,
            Some(r) => match r {
                Ok(p) => Some(p),
                Err(c) => {
                    refuse(sock);
                    shared.refuse_connection(ip, cap_reason(c), None, "tcp");
                    continue;
                }
            },
        };
        shared
            .metrics
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        let peer = Peer {
            ip,
            trusted,
            tls: None,
        };
        tokio::spawn(connection(
            sock,
            peer,
            permit,
            cfg.clone(),
            Arc::clone(&shared),
        ));
    }
}

async fn connection(
    sock: TcpStream,
    mut peer: Peer,
    permit: Option<ConnPermit>,
    cfg: Listener,
    shared: Arc<Shared>,
) {
    let _ = sock.set_nodelay(true);
    let state = shared.state.load_full();
    let limits = &state.cfg.limits;
    let mut buf = BytesMut::new();
    let mut sock = sock;
    let _permit = match permit {
        Some(p) => p,
        None => {
            // Trusted load balancer: read its PROXY header within the deadline.
            let deadline =
                tokio::time::Instant::now() + limits.proxy_protocol_timeout.as_duration();
            let hdr = loop {
                match proxy_proto::parse(&buf) {
                    Ok(Some(h)) => break h,
                    Ok(None) => {}
                    Err(_) => {
                        shared.refuse_connection(peer.ip, Reason::ProxyHeaderBad, None, "tcp");
                        return;
                    }
                }
                buf.reserve(512);
                match tokio::time::timeout_at(deadline, sock.read_buf(&mut buf)).await {
                    Err(_) => {
                        shared.refuse_connection(peer.ip, Reason::ProxyHeaderTimeout, None, "tcp");
                        return;
                    }
                    Ok(Ok(0)) | Ok(Err(_)) => return,
                    Ok(Ok(_)) => {}
                }
            };
            buf.advance(hdr.len);
            if let Some(src) = hdr.source {
                peer.ip = IpAddr::to_canonical(&src.ip());
                peer.trusted = state.cfg.trust.trusts(peer.ip);
            }
            if shared.is_blocked(peer.ip) {
                refuse(sock);
                shared.refuse_connection(peer.ip, Reason::Blocked, None, "tcp");
                return;
            }
            match shared.tracker.try_acquire(peer.ip) {
                Ok(p) => p,
                Err(c) => {
                    refuse(sock);
                    shared.refuse_connection(peer.ip, cap_reason(c), None, "tcp");
                    return;
                }
            }
        }
    };
    if cfg.tls {
        drop(state);
        // Boxed: a TLS session is large; cleartext connections never carry its space.
        Box::pin(tls_connection(sock, buf, peer, shared)).await;
        return;
    }
    // Cleartext: HTTP/2 with prior knowledge starts with the client preface.
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    if cfg.h2c {
        let deadline = tokio::time::Instant::now() + limits.header_timeout.as_duration();
        while buf.len() < PREFACE.len() && PREFACE.starts_with(&buf) {
            buf.reserve(1024);
            match tokio::time::timeout_at(deadline, sock.read_buf(&mut buf)).await {
                Err(_) => {
                    shared.refuse_connection(peer.ip, Reason::HeaderTimeout, None, "http/1.1");
                    return;
                }
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => {}
            }
        }
        if buf.starts_with(PREFACE) {
            drop(state);
            Box::pin(crate::h2::serve(
                Rewind::new(Bytes::new(), sock),
                buf.freeze(),
                peer,
                shared,
            ))
            .await;
            return;
        }
    }
    drop(state);
    Box::pin(crate::h1::serve(
        Rewind::new(Bytes::new(), sock),
        buf,
        peer,
        shared,
    ))
    .await;
}

/// A TLS connection: the handshake under its deadline, then HTTP/2 or
/// HTTP/1 by ALPN.
async fn tls_connection(sock: TcpStream, buf: BytesMut, mut peer: Peer, shared: Arc<Shared>) {
    let state = shared.state.load_full();
    let limits = &state.cfg.limits;
    let Some(tls) = state.tls.clone() else { return };
    let deadline = tokio::time::Instant::now() + limits.tls_handshake_timeout.as_duration();
    // The ClientHello is read here first (for its JA4 fingerprint: rustls does
    // not expose the order of extensions), then replayed into rustls.
    let (mut sock, mut buf) = (sock, buf);
    // Parsed once, when it can finish (each read looks only at new records).
    let mut progress = levee_http::tls_hello::Progress::default();
    let ja4 = loop {
        if progress.ready(&buf) {
            match levee_http::tls_hello::parse(&buf) {
                levee_http::tls_hello::Hello::Complete(h) => break Some(h.ja4()),
                // Not a ClientHello: rustls refuses it with the right alert.
                levee_http::tls_hello::Hello::Invalid(_) => break None,
                levee_http::tls_hello::Hello::Partial => {}
            }
        }
        buf.reserve(4096);
        match tokio::time::timeout_at(deadline, sock.read_buf(&mut buf)).await {
            Err(_) => {
                shared.refuse_connection(peer.ip, Reason::TlsHandshakeTimeout, None, "tls");
                return;
            }
            Ok(Ok(0)) | Ok(Err(_)) => {
                shared.refuse_connection(peer.ip, Reason::TlsHandshakeFailed, None, "tls");
                return;
            }
            Ok(Ok(_)) => {}
        }
    };
    let io = Rewind::new(buf.freeze(), sock);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let hs = tokio::time::timeout_at(deadline, acceptor.accept(io)).await;
    let stream = match hs {
        Err(_) => {
            shared.refuse_connection(peer.ip, Reason::TlsHandshakeTimeout, None, "tls");
            return;
        }
        Ok(Err(_)) => {
            shared.refuse_connection(peer.ip, Reason::TlsHandshakeFailed, None, "tls");
            return;
        }
        Ok(Ok(s)) => s,
    };
    shared
        .metrics
        .tls_handshakes
        .fetch_add(1, Ordering::Relaxed);
    let (_, conn) = stream.get_ref();
    if conn.alpn_protocol() == Some(crate::tls::ACME_TLS_ALPN) {
        // A TLS-ALPN-01 validation: the handshake was the answer (RFC 8737 §3).
        shared.metrics.acme_alpn.fetch_add(1, Ordering::Relaxed);
        let mut stream = stream;
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            tokio::io::AsyncWriteExt::shutdown(&mut stream),
        )
        .await;
        return;
    }
    let h2 = conn.alpn_protocol() == Some(b"h2");
    peer.tls = Some(TlsInfo {
        ja4,
        version: match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLS",
        },
        sni: conn.server_name().map(str::to_ascii_lowercase),
    });
    drop(state);
    // Each protocol's state is boxed: an idle connection costs only what it uses.
    if h2 {
        Box::pin(crate::h2::serve(stream, Bytes::new(), peer, shared)).await;
    } else {
        Box::pin(crate::h1::serve(stream, BytesMut::new(), peer, shared)).await;
    }
}
