//! The checks that span keys (after the schema accepted the text): each names its key path.

use crate::*;

/// The shortest admin token accepted.
const MIN_TOKEN: usize = 16;
/// The shortest challenge master secret accepted.
const MIN_SECRET: usize = 32;
/// The shortest staff token accepted.
const MIN_STAFF_TOKEN: usize = 12;

pub(crate) fn validate(cfg: &Config) -> Result<(), (String, String)> {
    xdp::validate(&cfg.xdp)?;
    access_log(&cfg.access_log)?;
    if cfg.listener.is_empty() {
        return Err((
            "listener".into(),
            "no listener: add a [[listener]] table with address = \"0.0.0.0:80\"".into(),
        ));
    }
    let any_tls = cfg.listener.iter().any(|l| l.tls);
    if any_tls && cfg.tls.certificate.is_empty() && cfg.tls.acme.is_none() {
        let i = cfg.listener.iter().position(|l| l.tls).unwrap_or(0);
        return Err((
            format!("listener[{i}].tls"),
            "a TLS listener needs [tls.acme] (email = \"...\": certificates ordered automatically) or at least one [[tls.certificate]] (server_names, cert, key)"
                .into(),
        ));
    }
    if let Some(a) = &cfg.tls.acme {
        acme(cfg, a)?;
    }
    for (i, c) in cfg.tls.certificate.iter().enumerate() {
        if c.server_names.is_empty() {
            return Err((
                format!("tls.certificate[{i}].server_names"),
                "list at least one server name".into(),
            ));
        }
    }
    let l = &cfg.limits;
    for (name, v) in [
        ("max_connections", l.max_connections),
        ("max_connections_per_ip", l.max_connections_per_ip),
        ("max_connections_per_prefix", l.max_connections_per_prefix),
        ("max_requests_per_connection", l.max_requests_per_connection),
        ("max_headers", l.max_headers),
    ] {
        if v == 0 {
            return Err((format!("limits.{name}"), "must be at least 1".into()));
        }
    }
    if l.max_header_bytes.0 < 1024 {
        return Err((
            "limits.max_header_bytes".into(),
            "must be at least 1KiB".into(),
        ));
    }
    if l.max_uri_bytes.0 > l.max_header_bytes.0 {
        return Err((
            "limits.max_uri_bytes".into(),
            "must not exceed limits.max_header_bytes".into(),
        ));
    }
    let h = &cfg.http2;
    if h.max_concurrent_streams == 0 {
        return Err((
            "http2.max_concurrent_streams".into(),
            "must be at least 1".into(),
        ));
    }
    if !(16_384..=16_777_215).contains(&h.max_frame_size.0) {
        return Err((
            "http2.max_frame_size".into(),
            "must be between 16KiB and 16MiB-1 (RFC 9113)".into(),
        ));
    }
    if h.initial_stream_window.0 > 0x7fff_ffff || h.initial_connection_window.0 > 0x7fff_ffff {
        return Err((
            "http2.initial_stream_window".into(),
            "windows must be below 2^31".into(),
        ));
    }
    if h.flood_window.as_duration().is_zero() {
        return Err(("http2.flood_window".into(), "must be positive".into()));
    }
    // Secrets an attacker could guess offline or online: long enough to resist.
    if let Some(t) = cfg.admin.token.as_deref() {
        if t.len() < MIN_TOKEN {
            return Err((
                "admin.token".into(),
                format!("{} characters: use at least {MIN_TOKEN} random ones (e.g. `openssl rand -hex 24`), or remove the key", t.len()),
            ));
        }
    }
    if let Some(sec) = cfg.challenge.secret.as_deref() {
        if sec.len() < MIN_SECRET {
            return Err((
                "challenge.secret".into(),
                format!("{} characters: use at least {MIN_SECRET} random ones (one clearance lets an attacker test guesses offline)", sec.len()),
            ));
        }
    }
    if let Some(c) = &cfg.crowdsec {
        crowdsec(c)?;
    }
    if let Some(f) = &cfg.fleet {
        fleet(f, cfg.challenge.secret.is_some())?;
    }
    if cfg.incidents.webhook.is_some() {
        match cfg.incidents.webhook_secret.as_deref() {
            Some(s) if s.len() >= MIN_SECRET => {}
            _ => {
                return Err((
                    "incidents.webhook_secret".into(),
                    format!("a webhook needs a secret of at least {MIN_SECRET} characters to sign its alerts (the receiver checks X-Levee-Signature)"),
                ))
            }
        }
    }
    for (i, s) in cfg.site.iter().enumerate() {
        for (j, t) in s.challenge.staff_tokens.iter().enumerate() {
            if t.len() < MIN_STAFF_TOKEN {
                return Err((
                    format!("site[{i}].challenge.staff_tokens[{j}]"),
                    format!("{} characters: a staff token skips every challenge and queue; use at least {MIN_STAFF_TOKEN}", t.len()),
                ));
            }
        }
    }
    if cfg.site.is_empty() {
        return Err((
            "site".into(),
            "no site: add a [[site]] with name, hosts and at least one [[site.origin]]".into(),
        ));
    }
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (si, s) in cfg.site.iter().enumerate() {
        if s.name.is_empty()
            || !s
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err((
                format!("site[{si}].name"),
                "use letters, digits, '-', '_' or '.'".into(),
            ));
        }
        if s.hosts.is_empty() {
            return Err((format!("site[{si}].hosts"), "list at least one host".into()));
        }
        for h in &s.hosts {
            let h = h.to_ascii_lowercase();
            if h.is_empty() || h.contains(['/', ' ', '\t']) {
                return Err((
                    format!("site[{si}].hosts"),
                    format!("{h:?} is not a host name"),
                ));
            }
            if let Some((_, other)) = seen.iter().find(|(x, _)| *x == h) {
                return Err((
                    format!("site[{si}].hosts"),
                    format!("host {h:?} is already served by site[{other}]"),
                ));
            }
            seen.push((h, si));
        }
        if s.origin.is_empty() {
            return Err((
                format!("site[{si}].origin"),
                "add at least one [[site.origin]] with address = \"host:port\"".into(),
            ));
        }
        for (oi, o) in s.origin.iter().enumerate() {
            if split_host_port(&o.address).is_none() {
                return Err((
                    format!("site[{si}].origin[{oi}].address"),
                    format!("{:?} is not host:port", o.address),
                ));
            }
        }
        if s.max_concurrent_per_origin == 0 {
            return Err((
                format!("site[{si}].max_concurrent_per_origin"),
                "must be at least 1".into(),
            ));
        }
        for (ri, r) in s.route.iter().enumerate() {
            if r.paths.is_empty() || r.paths.iter().any(|p| !p.starts_with('/')) {
                return Err((
                    format!("site[{si}].route[{ri}].paths"),
                    "list path prefixes starting with '/'".into(),
                ));
            }
            for (ci, c) in r.special.iter().enumerate() {
                if !crate::SPECIAL_CATEGORIES.contains(&c.as_str()) {
                    return Err((
                        format!("site[{si}].route[{ri}].special[{ci}]"),
                        format!(
                            "{c:?} is not a special category; one of: {}",
                            crate::SPECIAL_CATEGORIES.join(", ")
                        ),
                    ));
                }
            }
        }
        let e = &s.egress;
        if !(e.alert_share > 0.0 && e.alert_share <= 1.0) {
            return Err((
                format!("site[{si}].egress.alert_share"),
                "a share between 0 and 1, e.g. 0.2".into(),
            ));
        }
        if e.window.as_duration() < std::time::Duration::from_secs(1) {
            return Err((format!("site[{si}].egress.window"), "at least 1s".into()));
        }
        if s.challenge.bits > 28 {
            return Err((
                format!("site[{si}].challenge.bits"),
                "at most 28 (each bit doubles the work; 16 is about half a second in a browser)"
                    .into(),
            ));
        }
        if let Some(hc) = &s.health {
            if !hc.path.starts_with('/') {
                return Err((
                    format!("site[{si}].health.path"),
                    "must start with '/'".into(),
                ));
            }
            if hc.rise == 0 || hc.fall == 0 {
                return Err((
                    format!("site[{si}].health"),
                    "rise and fall must be at least 1".into(),
                ));
            }
        }
    }
    Ok(())
}

/// Split `host:port` (with `[v6]:port`), returning the host and the port.
pub fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let port = rest[end + 1..].strip_prefix(':')?;
        (&rest[..end], port)
    } else {
        let (h, p) = s.rsplit_once(':')?;
        if h.contains(':') {
            return None;
        }
        (h, p)
    };
    if host.is_empty() {
        return None;
    }
    Some((host, port.parse().ok()?))
}

/// A pseudonymised log needs its keys apart from the logs, and sane periods.
fn access_log(a: &crate::AccessLog) -> Result<(), (String, String)> {
    if let Some(raw) = a.raw_path.as_deref() {
        let why = if !a.pseudonymize {
            Some("a second, raw log is written beside a pseudonymised one: set pseudonymize = true (or use path alone for a raw log)".to_string())
        } else if matches!(a.path.as_str(), "-" | "off") || matches!(raw, "-" | "off" | "") {
            Some("both path and raw_path must be files".to_string())
        } else if raw == a.path {
            Some("must differ from path".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            return Err(("access_log.raw_path".into(), why));
        }
    }
    if !a.pseudonymize {
        return Ok(());
    }
    let Some(dir) = a.key_dir.as_deref().filter(|d| !d.trim().is_empty()) else {
        return Err((
            "access_log.key_dir".into(),
            "pseudonymize = true needs key_dir: a directory for the keys, apart from the logs (e.g. \"/var/lib/levee/keys\", mode 700)".into(),
        ));
    };
    for log in std::iter::once(a.path.as_str()).chain(a.raw_path.as_deref()) {
        if log == "-" || log == "off" {
            continue;
        }
        let log_dir = std::path::Path::new(log)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let key_dir = std::path::Path::new(dir);
        if key_dir == log_dir
            || key_dir.starts_with(log_dir) && log_dir != std::path::Path::new("/")
        {
            return Err((
                "access_log.key_dir".into(),
                format!("{dir:?} is in the access log's directory: keep the keys apart from the logs, or whoever holds the logs holds the keys"),
            ));
        }
    }
    if a.key_rotation.as_duration() < std::time::Duration::from_secs(1) {
        return Err(("access_log.key_rotation".into(), "at least 1s".into()));
    }
    Ok(())
}

fn crowdsec(c: &crate::CrowdSec) -> Result<(), (String, String)> {
    let scheme = c.lapi.split("://").next().unwrap_or("");
    if !c.lapi.contains("://") || !matches!(scheme, "http" | "https") {
        return Err((
            "crowdsec.lapi".into(),
            "give the Local API as http://HOST:PORT (or https://), e.g. http://127.0.0.1:8080"
                .into(),
        ));
    }
    match (&c.api_key, &c.api_key_file) {
        (Some(k), None) if !k.trim().is_empty() => {}
        (None, Some(f)) if !f.is_empty() => {}
        (Some(_), Some(_)) => {
            return Err((
                "crowdsec.api_key".into(),
                "give api_key or api_key_file, not both".into(),
            ))
        }
        _ => {
            return Err((
                "crowdsec.api_key".into(),
                "give the bouncer's key (cscli bouncers add levee), as api_key or api_key_file"
                    .into(),
            ))
        }
    }
    let secs = |d: crate::Dur| d.as_duration().as_secs_f64();
    if !(0.1..=3600.0).contains(&secs(c.poll)) {
        return Err((
            "crowdsec.poll".into(),
            "must be between 100ms and 1h".into(),
        ));
    }
    if c.timeout.as_duration().is_zero()
        || c.timeout.as_duration()
            > c.poll.as_duration().max(std::time::Duration::from_secs(1)) * 10
    {
        return Err((
            "crowdsec.timeout".into(),
            "must be positive and at most ten polls".into(),
        ));
    }
    if c.max_decisions == 0 {
        return Err(("crowdsec.max_decisions".into(), "must be at least 1".into()));
    }
    if c.push_blocks
        && (c.machine_id.as_deref().is_none_or(str::is_empty)
            || c.password.is_some() == c.password_file.is_some())
    {
        return Err((
            "crowdsec.push_blocks".into(),
            "needs machine_id and one of password or password_file (cscli machines add levee-edge)"
                .into(),
        ));
    }
    Ok(())
}

fn fleet(f: &crate::Fleet, secret: bool) -> Result<(), (String, String)> {
    let scheme = f.redis.split("://").next().unwrap_or("");
    if f.redis.is_empty() || !matches!(scheme, "redis" | "rediss") || !f.redis.contains("://") {
        return Err((
            "fleet.redis".into(),
            "give the store as redis://HOST:PORT (or rediss://:PASSWORD@HOST:PORT for TLS)".into(),
        ));
    }
    if !secret {
        return Err((
            "fleet".into(),
            "a fleet needs [challenge] secret, the same on every edge, so that a visitor cleared by one edge is not challenged again by another".into(),
        ));
    }
    let ms = |d: crate::Dur| d.as_duration().as_millis();
    if !(10..=250).contains(&ms(f.sync_every)) {
        return Err((
            "fleet.sync_every".into(),
            "must be between 10ms and 250ms (a fleet-wide limit holds to within one interval)"
                .into(),
        ));
    }
    for (key, d) in [
        ("timeout", f.timeout),
        ("connect_timeout", f.connect_timeout),
        ("open_for", f.open_for),
        ("edge_ttl", f.edge_ttl),
    ] {
        if d.as_duration().is_zero() {
            return Err((format!("fleet.{key}"), "must be positive".into()));
        }
    }
    if f.failures_to_open == 0 {
        return Err(("fleet.failures_to_open".into(), "must be at least 1".into()));
    }
    if let Some(n) = &f.name {
        if n.is_empty()
            || n.len() > 64
            || !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err((
                "fleet.name".into(),
                "1 to 64 letters, digits, '-', '_' or '.'".into(),
            ));
        }
    }
    Ok(())
}

fn acme(cfg: &Config, a: &crate::listener::Acme) -> Result<(), (String, String)> {
    use crate::listener::AcmeChallenge;
    let err = |k: &str, m: &str| Err((format!("tls.acme.{k}"), m.to_string()));
    if !a.directory.starts_with("https://") {
        return err(
            "directory",
            "give the CA's directory URL over https://, e.g. https://acme-staging-v02.api.letsencrypt.org/directory (Let's Encrypt staging)",
        );
    }
    let e = a.email.trim();
    if e.is_empty()
        || e.starts_with("mailto:")
        || e.contains(char::is_whitespace)
        || !e
            .split_once('@')
            .is_some_and(|(u, d)| !u.is_empty() && d.contains('.'))
    {
        return err(
            "email",
            "give a contact address such as ops@example.org (the CA writes to it about expiry)",
        );
    }
    for (i, h) in a.hosts.iter().enumerate() {
        if let Err(m) = acme_host(h) {
            return Err((format!("tls.acme.hosts[{i}]"), format!("{h:?}: {m}")));
        }
    }
    if a.hosts.is_empty() {
        for h in cfg.acme_hosts() {
            if let Err(m) = acme_host(&h) {
                return Err((
                    "tls.acme.hosts".into(),
                    format!(
                        "{h:?} (a site's host): {m}; list the hosts to certify in tls.acme.hosts"
                    ),
                ));
            }
        }
    }
    if cfg.acme_hosts().is_empty() {
        return err(
            "hosts",
            "no host to certify: list hosts, or give the sites host names that are neither wildcards nor served by a [[tls.certificate]] file",
        );
    }
    if a.state_dir.trim().is_empty() {
        return err(
            "state_dir",
            "give a directory for the account and certificates",
        );
    }
    let tls = cfg.listener.iter().any(|l| l.tls);
    let plain = cfg.listener.iter().any(|l| !l.tls);
    match a.challenge {
        AcmeChallenge::TlsAlpn01 if !tls => {
            return err(
                "challenge",
                "tls-alpn-01 is answered on a TLS listener: add one (port 443), or use http-01",
            )
        }
        AcmeChallenge::Http01 if !plain => {
            return err(
                "challenge",
                "http-01 is answered on a plain listener: add one (port 80), or use tls-alpn-01",
            )
        }
        _ => {}
    }
    if a.retry.as_duration().is_zero() || a.retry_max.as_duration() < a.retry.as_duration() {
        return err("retry", "must be positive and at most retry_max");
    }
    if a.timeout.as_duration().is_zero() {
        return err("timeout", "must be positive");
    }
    Ok(())
}

/// A name a CA can certify with HTTP-01 or TLS-ALPN-01.
fn acme_host(h: &str) -> Result<(), &'static str> {
    if h.starts_with("*.") {
        return Err("a wildcard needs the DNS-01 challenge, which Levee does not answer; list the names, or give a certificate file for it");
    }
    if h.parse::<std::net::IpAddr>().is_ok() {
        return Err("an IP address: CAs certify host names");
    }
    let ok = !h.is_empty()
        && h.len() <= 253
        && h.contains('.')
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err("not a host name (letters, digits, '-' and dots; punycode for others)")
    }
}
