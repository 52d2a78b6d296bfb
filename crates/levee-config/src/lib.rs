//! Levee's configuration: the TOML schema, its defaults and its validation.
//!
//! This crate is pure: it turns text into a validated [`Config`] or into a
//! [`ConfigError`] that names the file, the line and the key path of what was
//! wrong (`levee.toml:12: site[0].origin[1].address: ...`). It never reads files,
//! opens sockets or looks at the clock; the caller passes the text in.
//!
//! Unknown keys are rejected everywhere (`deny_unknown_fields`): a typo in a
//! security setting must never be silently ignored.

mod crowdsec;
mod defense;
mod demo;
mod edge;
mod error;
mod fleet;
mod limits;
mod listener;
mod site;
mod types;
mod validate;
mod xdp;

pub use crowdsec::CrowdSec;
pub use defense::{parse_cidr_list, Cache, Defense, IgnoreQuery, ModeName, RuleAction};
pub use demo::demo;
pub use edge::*;
pub use error::ConfigError;
use error::{line_of, locate};
pub use fleet::{Fleet, Incidents};
pub use limits::{Http2, Limits};
pub use listener::{
    Acme, AcmeChallenge, Certificate, Listener, Tls, LETS_ENCRYPT, LETS_ENCRYPT_STAGING,
};
pub use site::*;
pub use types::{ByteSize, Cidr, Dur};
pub use validate::split_host_port;
use validate::validate;
pub use xdp::{Xdp, XdpMode};

use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the edge accepts client connections (`[[listener]]`).
    #[serde(default)]
    pub listener: Vec<Listener>,
    /// Certificates for TLS listeners, chosen by SNI.
    #[serde(default)]
    pub tls: Tls,
    /// Connection- and HTTP/1-level defenses.
    #[serde(default)]
    pub limits: Limits,
    /// HTTP/2 limits; every one is set explicitly on each connection.
    #[serde(default)]
    pub http2: Http2,
    /// Which peers may speak for clients (X-Forwarded-For, PROXY protocol).
    #[serde(default)]
    pub trust: Trust,
    /// The admin listener.
    #[serde(default)]
    pub admin: Admin,
    /// The JSON access log.
    #[serde(default)]
    pub access_log: AccessLog,
    /// Opt-in for `levee drill`.
    #[serde(default)]
    pub drill: Drill,
    /// Keys for the browser challenge (shared by every edge of a fleet).
    #[serde(default)]
    pub challenge: ChallengeKeys,
    /// Static block and allow lists (the admin API adds expiring blocks).
    #[serde(default)]
    pub lists: Lists,
    /// Protected sites (`[[site]]`), chosen by Host / SNI.
    #[serde(default)]
    pub site: Vec<Site>,
    /// The XDP packet filter the edge feeds (off unless `iface` is set).
    #[serde(default)]
    pub xdp: Xdp,
    /// How long logs are kept (on by default), enforced by the edge.
    #[serde(default)]
    pub retention: Retention,
    /// Several edges acting as one through Redis (off unless present).
    pub fleet: Option<Fleet>,
    /// Follow a CrowdSec Local API's decisions (off unless present).
    pub crowdsec: Option<CrowdSec>,
    /// Durable incident records.
    #[serde(default)]
    pub incidents: Incidents,
}

impl Config {
    /// The host names `[tls.acme]` certifies: its `hosts`, else every
    /// site's hosts that are not wildcards, addresses, or names a
    /// `[[tls.certificate]]` file already serves (lower case, each once).
    pub fn acme_hosts(&self) -> Vec<String> {
        let Some(a) = &self.tls.acme else {
            return Vec::new();
        };
        let given: Vec<&String> = if a.hosts.is_empty() {
            self.site
                .iter()
                .flat_map(|s| &s.hosts)
                .filter(|h| !h.starts_with("*.") && h.parse::<std::net::IpAddr>().is_err())
                .filter(|h| {
                    !self
                        .tls
                        .certificate
                        .iter()
                        .any(|c| c.server_names.iter().any(|n| n.eq_ignore_ascii_case(h)))
                })
                .collect()
        } else {
            a.hosts.iter().collect()
        };
        let mut out: Vec<String> = Vec::new();
        for h in given {
            let h = h.trim_end_matches('.').to_ascii_lowercase();
            if !out.contains(&h) {
                out.push(h);
            }
        }
        out
    }
}

/// Parse and validate a configuration. `file` is used in messages only.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    let de = toml::Deserializer::new(text);
    let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let line = inner.span().map(|s| line_of(text, s.start));
        let mut message = inner.message().trim().to_string();
        if message.is_empty() {
            // Some syntax errors carry no message of their own: say what a line needs.
            message = "invalid TOML: expected `key = value`, a [table] or an [[array of tables]]"
                .to_string();
        }
        ConfigError {
            file: file.to_string(),
            line,
            path,
            message,
        }
    })?;
    validate(&cfg).map_err(|(path, message)| ConfigError {
        file: file.to_string(),
        line: locate(text, &path),
        path,
        message,
    })?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    const MIN: &str = r#"
[[listener]]
address = "127.0.0.1:0"

[[site]]
name = "a"
hosts = ["a.test"]
[[site.origin]]
address = "127.0.0.1:3000"
"#;

    #[test]
    fn a_fleet_needs_a_store_url_and_a_shared_secret() {
        let secret = "[challenge]\nsecret = \"0123456789abcdef0123456789abcdef\"\n";
        let ok = format!("{MIN}{secret}[fleet]\nredis = \"redis://127.0.0.1:6379\"\n");
        let c = parse("t.toml", &ok).unwrap();
        let f = c.fleet.unwrap();
        assert_eq!(f.sync_every.as_duration().as_millis(), 250);
        assert!(parse("t.toml", MIN).unwrap().fleet.is_none());
        for (text, path, what) in [
            (
                format!("{MIN}[fleet]\nredis = \"redis://h:1\"\n"),
                "fleet",
                "[challenge] secret",
            ),
            (
                format!("{MIN}{secret}[fleet]\nredis = \"http://h:1\"\n"),
                "fleet.redis",
                "redis://",
            ),
            (
                format!("{MIN}{secret}[fleet]\nredis = \"redis://h:1\"\nsync_every = \"1s\"\n"),
                "fleet.sync_every",
                "250ms",
            ),
            (
                format!("{MIN}{secret}[fleet]\nredis = \"redis://h:1\"\nname = \"a b\"\n"),
                "fleet.name",
                "letters",
            ),
            (
                format!("{MIN}{secret}[fleet]\nredis = \"redis://h:1\"\nredsi = 1\n"),
                "fleet.redsi",
                "unknown field",
            ),
        ] {
            let e = parse("t.toml", &text).unwrap_err();
            assert!(e.path == path || e.to_string().contains(path), "{e}");
            assert!(e.to_string().contains(what), "{e}");
        }
    }

    #[test]
    fn crowdsec_needs_a_local_api_and_one_key() {
        let ok = format!("{MIN}[crowdsec]\nlapi = \"http://127.0.0.1:8080\"\napi_key = \"k\"\n");
        let c = parse("t.toml", &ok).unwrap().crowdsec.unwrap();
        assert_eq!(c.poll.as_duration().as_secs(), 10);
        assert_eq!(c.timeout.as_duration().as_secs(), 5);
        assert!(parse("t.toml", MIN).unwrap().crowdsec.is_none());
        for (extra, path, what) in [
            (
                "lapi = \"127.0.0.1:8080\"\napi_key = \"k\"",
                "crowdsec.lapi",
                "http://",
            ),
            (
                "lapi = \"http://h:1\"",
                "crowdsec.api_key",
                "cscli bouncers add",
            ),
            (
                "lapi = \"http://h:1\"\napi_key = \"k\"\napi_key_file = \"/k\"",
                "crowdsec.api_key",
                "not both",
            ),
            (
                "lapi = \"http://h:1\"\napi_key = \"k\"\npoll = \"10ms\"",
                "crowdsec.poll",
                "100ms",
            ),
            (
                "lapi = \"http://h:1\"\napi_key = \"k\"\nmax_decisions = 0",
                "crowdsec.max_decisions",
                "at least 1",
            ),
            (
                "lapi = \"http://h:1\"\napi_key = \"k\"\npush_blocks = true\nmachine_id = \"m\"",
                "crowdsec.push_blocks",
                "password",
            ),
            (
                "lapi = \"http://h:1\"\napi_kee = \"k\"",
                "crowdsec.api_kee",
                "unknown field",
            ),
        ] {
            let e = parse("t.toml", &format!("{MIN}[crowdsec]\n{extra}\n")).unwrap_err();
            assert!(e.path == path || e.to_string().contains(path), "{e}");
            assert!(e.to_string().contains(what), "{e}");
        }
    }

    #[test]
    fn minimal_config_parses_with_defaults() {
        let c = parse("t.toml", MIN).unwrap();
        assert_eq!(c.listener.len(), 1);
        assert!(c.listener[0].h2c);
        assert_eq!(c.limits.max_connections_per_ip, 256);
        assert_eq!(c.site[0].balance, Balance::RoundRobin);
        assert_eq!(c.http2.max_concurrent_streams, 100);
    }

    #[test]
    fn short_secrets_are_refused_with_their_key() {
        // Review finding 19: an empty staff token once matched `Bearer ` over HTTP/2.
        for (extra, key) in [
            ("[admin]\ntoken = \"short\"\n", "admin.token"),
            ("[challenge]\nsecret = \"tooshort\"\n", "challenge.secret"),
        ] {
            let e = parse("t.toml", &format!("{extra}{MIN}")).unwrap_err();
            assert_eq!(e.path, key, "{e}");
        }
        let text = format!("{MIN}[site.challenge]\nstaff_tokens = [\"\"]\n");
        let e = parse("t.toml", &text).unwrap_err();
        assert_eq!(e.path, "site[0].challenge.staff_tokens[0]", "{e}");
        assert!(parse(
            "t.toml",
            &format!("[admin]\ntoken = \"{}\"\n{MIN}", "x".repeat(16))
        )
        .is_ok());
    }

    #[test]
    fn route_tags_and_special_categories() {
        let text = format!("{MIN}[[site.route]]\nname = \"m\"\npaths = [\"/members\"]\nspecial = [\"political_opinions\"]\nexport = true\n");
        let c = parse("t.toml", &text).unwrap();
        assert!(c.site[0].route[0].is_personal() && c.site[0].route[0].private());
        let bad = text.replace("political_opinions", "politics");
        let e = parse("t.toml", &bad).unwrap_err();
        assert_eq!(e.path, "site[0].route[0].special[0]", "{e}");
        assert!(e.message.contains("political_opinions"), "{e}");
        // Pseudonym keys beside the logs are refused.
        let text = format!("[access_log]\npath = \"/var/log/levee/access.log\"\npseudonymize = true\nkey_dir = \"/var/log/levee/keys\"\n{MIN}");
        assert_eq!(
            parse("t.toml", &text).unwrap_err().path,
            "access_log.key_dir"
        );
        let text = text.replace("/var/log/levee/keys", "/var/lib/levee/keys");
        assert!(parse("t.toml", &text).is_ok());
    }

    #[test]
    fn unknown_key_names_path_and_line() {
        let text = MIN.replace(
            "address = \"127.0.0.1:3000\"",
            "adress = \"127.0.0.1:3000\"",
        );
        let e = parse("t.toml", &text).unwrap_err();
        assert_eq!(e.path, "site[0].origin[0].adress");
        assert_eq!(e.line, Some(9), "{e}");
        assert!(e.message.contains("unknown field `adress`"), "{e}");
        assert!(
            e.to_string()
                .starts_with("t.toml:9: site[0].origin[0].adress: "),
            "{e}"
        );
    }

    #[test]
    fn bad_duration_names_path_and_line() {
        let text = format!("{MIN}\n[limits]\nheader_timeout = \"ten seconds\"\n");
        let e = parse("t.toml", &text).unwrap_err();
        assert_eq!(e.path, "limits.header_timeout");
        assert_eq!(e.line, Some(12), "{e}");
        assert!(e.message.contains("duration"), "{e}");
    }

    #[test]
    fn bad_cidr_is_rejected() {
        let text = format!("{MIN}\n[trust]\nproxies = [\"10.0.0.0/33\"]\n");
        let e = parse("t.toml", &text).unwrap_err();
        assert_eq!(e.path, "trust.proxies[0]");
        assert!(e.message.contains("prefix length"), "{e}");
    }

    #[test]
    fn validation_errors_are_located() {
        let text = format!(
            "{MIN}\n[[site]]\nname = \"b\"\nhosts = [\"A.test\"]\n[[site.origin]]\naddress = \"x:1\"\n"
        );
        let e = parse("t.toml", &text).unwrap_err();
        assert_eq!(e.path, "site[1].hosts");
        assert_eq!(e.line, Some(13), "{e}");
        assert!(e.message.contains("already served by site[0]"), "{e}");

        let text = MIN.replace("127.0.0.1:3000", "no-port");
        let e = parse("t.toml", &text).unwrap_err();
        assert_eq!(e.path, "site[0].origin[0].address");
        assert_eq!(e.line, Some(9), "{e}");
    }

    #[test]
    fn routes_and_rate_limits() {
        let text = format!("{MIN}[site.rate_limit]\nper_ip = 100\n[[site.route]]\nname = \"login\"\npaths = [\"/login\"]\nper_ip = 5\nwindow = \"10s\"\n");
        let c = parse("t.toml", &text).unwrap();
        assert_eq!(c.site[0].rate_limit.per_ip, 100);
        assert_eq!(c.site[0].route[0].limit().per_ip, 5);
        let bad = text.replace("per_ip = 5", "per_ipp = 5");
        assert_eq!(
            parse("t.toml", &bad).unwrap_err().path,
            "site[0].route[0].per_ipp"
        );
    }

    #[test]
    fn tls_listener_needs_certificate() {
        let text = MIN.replace(
            "address = \"127.0.0.1:0\"",
            "address = \"127.0.0.1:0\"\ntls = true",
        );
        let e = parse("t.toml", &text).unwrap_err();
        assert_eq!(e.path, "listener[0].tls");
    }

    #[test]
    fn acme_is_checked_key_by_key() {
        let base = MIN.replace(
            "address = \"127.0.0.1:0\"",
            "address = \"127.0.0.1:0\"\ntls = true",
        ) + "\n[tls.acme]\nemail = \"ops@example.org\"\n";
        let c = parse("t.toml", &base).unwrap();
        let a = c.tls.acme.as_ref().unwrap();
        assert_eq!(a.directory, LETS_ENCRYPT);
        assert_eq!(a.challenge, AcmeChallenge::Auto);
        assert_eq!(c.acme_hosts(), vec!["a.test".to_string()]);
        for (extra, path) in [
            ("email = \"ops\"", "tls.acme.email"),
            ("directory = \"http://ca/dir\"", "tls.acme.directory"),
            ("hosts = [\"*.example.org\"]", "tls.acme.hosts[0]"),
            (
                "hosts = [\"a.example.org\", \"10.0.0.1\"]",
                "tls.acme.hosts[1]",
            ),
            ("hosts = [\"bad_name.org\"]", "tls.acme.hosts[0]"),
            ("challenge = \"http-01\"", "tls.acme.challenge"),
            ("retry = \"0s\"", "tls.acme.retry"),
            ("challeng = \"auto\"", "tls.acme.challeng"),
        ] {
            let text = if extra.starts_with("email") {
                base.replace("email = \"ops@example.org\"", extra)
            } else {
                format!("{base}{extra}\n")
            };
            let e = parse("t.toml", &text).unwrap_err();
            assert_eq!(e.path, path, "{extra}: {e}");
        }
        // Wildcard site hosts are left out of the default list.
        let wild = base.replace(
            "hosts = [\"a.test\"]",
            "hosts = [\"*.a.test\", \"Shop.A.test\"]",
        );
        assert_eq!(
            parse("t.toml", &wild).unwrap().acme_hosts(),
            vec!["shop.a.test".to_string()]
        );
        // A name a certificate file serves is not ordered again.
        let files = base.replace("hosts = [\"a.test\"]", "hosts = [\"a.test\", \"B.test\"]")
            + "[[tls.certificate]]\nserver_names = [\"b.test\"]\ncert = \"b.pem\"\nkey = \"b.key\"\n";
        assert_eq!(
            parse("t.toml", &files).unwrap().acme_hosts(),
            vec!["a.test".to_string()]
        );
    }

    #[test]
    fn syntax_error_has_line() {
        let e = parse("t.toml", "[[listener]\naddress = 1").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
    }

    #[test]
    fn demo_config_is_valid() {
        let a: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let c = demo(a, a, a, "tok");
        assert_eq!(c.site[0].hosts[0], "localhost");
        assert_eq!(c.drill.token.as_deref(), Some("tok"));
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("a:1"), Some(("a", 1)));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1", 80)));
        assert_eq!(split_host_port("::1:80"), None);
        assert_eq!(split_host_port(":80"), None);
        assert_eq!(split_host_port("a:99999"), None);
    }
}
#[cfg(test)]
mod fuzz_regressions {
    #[test]
    fn missing_value_has_a_message() {
        let e = super::parse("f.toml", "0 = ").unwrap_err();
        assert!(!e.message.is_empty(), "{e:?}");
        assert_eq!(e.line, Some(1));
    }
}

#[cfg(test)]
mod example_file {
    #[test]
    fn the_documented_example_parses() {
        let text = include_str!("../../../levee.example.toml");
        let c = super::parse("levee.example.toml", text).unwrap();
        assert_eq!(c.site.len(), 2);
        assert_eq!(c.listener.len(), 2);
        assert_eq!(c.site[1].balance, super::Balance::LeastOutstanding);
        assert!(c.acme_hosts().len() >= 2, "{:?}", c.acme_hosts());
    }
}
