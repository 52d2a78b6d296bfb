//! Alerts when an incident opens, changes mode or closes (`[incidents]
//! webhook`, `command`): a JSON body with the site, mode, incident id, the
//! peak rate so far and the first vectors. A webhook gets it as an HTTP POST
//! signed with HMAC-SHA-256 (`X-Levee-Signature: sha256=HEX` over
//! `TIMESTAMP.BODY`, the timestamp in `X-Levee-Timestamp`); a command gets
//! it on standard input. Delivery never slows the edge: alerts go through a
//! bounded queue (full: dropped and counted) to one task, and each delivery
//! has `alert_timeout`.

use ring::hmac;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Alerts waiting for delivery, at most.
const QUEUE: usize = 64;

/// Delivery counts, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct AlertCounts {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

/// The sending side, held by the incident recorder.
#[derive(Debug)]
pub(crate) struct Alerts {
    tx: Option<mpsc::Sender<serde_json::Value>>,
    pub counts: Arc<AlertCounts>,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            tx: None,
            counts: Arc::new(AlertCounts::default()),
        }
    }
}

/// A webhook URL, split.
#[derive(Debug, Clone)]
struct Hook {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

fn parse_hook(url: &str) -> Result<Hook, String> {
    let u: http::Uri = url
        .parse()
        .map_err(|e| format!("incidents.webhook: {url:?} is not a URL: {e}"))?;
    let tls = match u.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => {
            return Err(format!(
                "incidents.webhook: {url:?}: give an http:// or https:// URL"
            ))
        }
    };
    let host = u
        .host()
        .ok_or_else(|| format!("incidents.webhook: {url:?} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok(Hook {
        tls,
        port: u.port_u16().unwrap_or(if tls { 443 } else { 80 }),
        path: u
            .path_and_query()
            .map_or("/".into(), |p| p.as_str().to_string()),
        host,
    })
}

/// `sha256=HEX` of `ts.body` under `secret`.
pub(crate) fn signature(secret: &[u8], ts: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(ts.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("sha256={}", levee_privacy::ledger::hex(ctx.sign().as_ref()))
}

impl Alerts {
    /// Start the delivery task (on the current runtime) if `cfg` asks for alerts.
    pub(crate) fn start(cfg: &levee_config::Incidents) -> Result<Alerts, String> {
        let mut me = Alerts::default();
        let hook = cfg.webhook.as_deref().map(parse_hook).transpose()?;
        if hook.is_none() && cfg.command.is_empty() {
            return Ok(me);
        }
        let tls = match &hook {
            Some(h) if h.tls => Some(tokio_rustls::TlsConnector::from(
                crate::tls::client_config(None, "incidents.webhook").map_err(|e| e.to_string())?,
            )),
            _ => None,
        };
        let secret = cfg.webhook_secret.clone().unwrap_or_default().into_bytes();
        let command = cfg.command.clone();
        let timeout = cfg.alert_timeout.as_duration();
        let (tx, mut rx) = mpsc::channel::<serde_json::Value>(QUEUE);
        let counts = Arc::clone(&me.counts);
        tokio::spawn(async move {
            while let Some(alert) = rx.recv().await {
                let body = alert.to_string();
                if let Some(h) = &hook {
                    let r =
                        tokio::time::timeout(timeout, post(h, tls.as_ref(), &secret, &body)).await;
                    count(
                        &counts,
                        &r.unwrap_or_else(|_| Err("timed out".into())),
                        "webhook",
                    );
                }
                if !command.is_empty() {
                    let r = tokio::time::timeout(timeout, run(&command, &body)).await;
                    count(
                        &counts,
                        &r.unwrap_or_else(|_| Err("timed out".into())),
                        "command",
                    );
                }
            }
        });
        me.tx = Some(tx);
        Ok(me)
    }

    /// Queue an alert; never waits (a full queue drops it, counted).
    pub(crate) fn send(&self, alert: serde_json::Value) {
        if let Some(tx) = &self.tx {
            if tx.try_send(alert).is_err() {
                self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn metrics(&self) -> String {
        let c = &self.counts;
        format!(
            "# HELP levee_alerts_total incident alerts by outcome (webhook and command deliveries; dropped: the queue was full)\n# TYPE levee_alerts_total counter\nlevee_alerts_total{{result=\"sent\"}} {}\nlevee_alerts_total{{result=\"failed\"}} {}\nlevee_alerts_total{{result=\"dropped\"}} {}\n",
            c.sent.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed),
            c.dropped.load(Ordering::Relaxed)
        )
    }
}

fn count(c: &AlertCounts, r: &Result<(), String>, what: &str) {
    match r {
        Ok(()) => {
            c.sent.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            // The first failure is said; the rest are counted.
            if c.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                eprintln!("levee: alert {what} failed: {e} (further failures only counted: levee_alerts_total)");
            }
        }
    }
}

async fn post(
    h: &Hook,
    tls: Option<&tokio_rustls::TlsConnector>,
    secret: &[u8],
    body: &str,
) -> Result<(), String> {
    let ts = crate::clock::unix_ms() / 1000;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nUser-Agent: levee/{}\r\nX-Levee-Timestamp: {ts}\r\nX-Levee-Signature: {}\r\nConnection: close\r\n\r\n",
        h.path,
        h.host,
        body.len(),
        env!("CARGO_PKG_VERSION"),
        signature(secret, ts, body.as_bytes())
    );
    let tcp = tokio::net::TcpStream::connect((h.host.as_str(), h.port))
        .await
        .map_err(|e| format!("{}:{}: {e}", h.host, h.port))?;
    let mut answer = Vec::new();
    let mut io: Box<dyn Io> = match tls {
        Some(c) => {
            let name = rustls::pki_types::ServerName::try_from(h.host.clone())
                .map_err(|e| format!("{}: {e}", h.host))?;
            Box::new(
                c.connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?,
            )
        }
        None => Box::new(tcp),
    };
    io.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    io.write_all(body.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 512];
    while !answer.windows(2).any(|w| w == b"\r\n") && answer.len() < 4096 {
        let n = io.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&answer);
    let status = line.split_whitespace().nth(1).unwrap_or("");
    if status.starts_with('2') {
        Ok(())
    } else {
        Err(format!(
            "answered {:?}",
            line.lines().next().unwrap_or("nothing")
        ))
    }
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

async fn run(command: &[String], body: &str) -> Result<(), String> {
    let Some((prog, args)) = command.split_first() else {
        return Ok(());
    };
    let mut child = tokio::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{prog}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(body.as_bytes()).await;
    }
    let st = child.wait().await.map_err(|e| format!("{prog}: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{prog} exited with {st}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_signatures() {
        let h = parse_hook("https://hooks.example.org/levee?x=1").unwrap();
        assert!(h.tls && h.port == 443 && h.path == "/levee?x=1" && h.host == "hooks.example.org");
        let h = parse_hook("http://127.0.0.1:9999").unwrap();
        assert!(!h.tls && h.port == 9999 && h.path == "/");
        assert!(parse_hook("ftp://x/").is_err());
        assert!(parse_hook("not a url").is_err());
        let s = signature(b"Jefe", 0, b"");
        assert!(s.starts_with("sha256=") && s.len() == 7 + 64);
        assert_ne!(signature(b"k", 1, b"a"), signature(b"k", 2, b"a"));
    }
}
