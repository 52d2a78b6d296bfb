//! Automatic certificates against Debian's real `pebble` (Let's Encrypt's
//! test CA), started here on loopback with `pebble-challtestsrv` as its DNS
//! (every name is 127.0.0.1): a site gets a certificate through
//! TLS-ALPN-01 and through HTTP-01 and is served with it (the client
//! trusts Pebble's root, nothing else does); HTTP-01 validation passes
//! while the site is pinned under attack with the challenge always on and
//! a one-request rate limit; a stored certificate is served at restart
//! without asking the CA; renewal under load fails no request; a CA that
//! is unreachable, then one that refuses, leave the old certificate
//! serving with the reason in the log and `/status`.

use super::redis_server::free_port;
use super::*;

fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A root and a leaf for 127.0.0.1 it signed (Pebble's own HTTPS).
fn pebble_https(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "levee test: pebble https root");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    p.subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "levee test: pebble");
    let leaf = p.signed_by(&key, &ca, &ca_key).unwrap();
    let (r, c, k) = (
        dir.join("https-root.pem"),
        dir.join("https.pem"),
        dir.join("https.key"),
    );
    std::fs::write(&r, ca.pem()).unwrap();
    std::fs::write(&c, leaf.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (r, c, k)
}

/// Pebble and its DNS; killed on drop.
struct Pebble {
    children: Vec<Child>,
    dir: PathBuf,
    pub directory: String,
    /// The root Pebble issues under, for the test's client only.
    pub root: PathBuf,
    /// The root of Pebble's own HTTPS (`[tls.acme] ca`).
    pub https_root: PathBuf,
    pub http_port: u16,
    pub tls_port: u16,
    /// pebble-challtestsrv's management port (to point a name elsewhere).
    pub dns_mgmt: u16,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Pebble {
    /// `validity`: seconds a certificate lasts; `blocked`: names refused.
    fn start(validity: u64, http_port: u16, tls_port: u16, blocked: &[&str]) -> Option<Pebble> {
        let (code, _, _) = run(
            "sh",
            &["-c", "command -v pebble && command -v pebble-challtestsrv"],
        );
        if code != 0 {
            eprintln!(
                "skipped: pebble is not installed (scripts/install-test-deps.sh installs it)"
            );
            return None;
        }
        Self::start_from("", validity, http_port, tls_port, blocked)
    }

    /// Debian 13's Pebble 2.6, which offers renewal information (ARI).
    fn start_ari(validity: u64, http_port: u16, tls_port: u16) -> Option<Pebble> {
        let bin = "/opt/levee-test/pebble-ari/usr/bin/";
        if !std::path::Path::new(bin).join("pebble").is_file() {
            eprintln!("skipped: Pebble 2.6 is not unpacked in {bin} (scripts/install-test-deps.sh does it)");
            return None;
        }
        Self::start_from(bin, validity, http_port, tls_port, &[])
    }

    /// `bin`: the directory of the binaries, or "" for PATH.
    fn start_from(
        bin: &str,
        validity: u64,
        http_port: u16,
        tls_port: u16,
        blocked: &[&str],
    ) -> Option<Pebble> {
        let dir = scratch("pebble");
        let (https_root, cert, key) = pebble_https(&dir);
        let (dns, dns_mgmt, listen, mgmt) = (free_port(), free_port(), free_port(), free_port());
        let log = |n: &str| std::fs::File::create(dir.join(n)).unwrap();
        let cts = Command::new(format!("{bin}pebble-challtestsrv"))
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_mgmt}")])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(log("challtestsrv.log"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut p = Pebble {
            children: vec![cts],
            dir: dir.clone(),
            directory: format!("https://127.0.0.1:{listen}/dir"),
            root: dir.join("root.pem"),
            https_root,
            http_port,
            tls_port,
            dns_mgmt,
        };
        wait_port(dns_mgmt, "pebble-challtestsrv");
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt}"),
            "certificate": cert, "privateKey": key,
            "httpPort": http_port, "tlsPort": tls_port,
            "ocspResponderURL": "", "externalAccountBindingRequired": false,
            "domainBlocklist": blocked,
            "certificateValidityPeriod": validity,
        }});
        std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
        let pebble = Command::new(format!("{bin}pebble"))
            .arg("-config")
            .arg(dir.join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            // No random sleeps, no rejected nonces, a fresh validation every order.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(log("pebble.log"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        p.children.push(pebble);
        wait_port(mgmt, "pebble");
        let (code, root, err) = run(
            "curl",
            &[
                "-s",
                "--cacert",
                p.https_root.to_str().unwrap(),
                &format!("https://127.0.0.1:{mgmt}/roots/0"),
            ],
        );
        assert_eq!(code, 0, "pebble's root: {err}");
        std::fs::write(&p.root, root).unwrap();
        Some(p)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pebble.log")).unwrap_or_default()
    }
}

/// An edge in front of `origin` for `host`, with a plain listener on
/// Pebble's HTTP port and a TLS one on its TLS port.
fn acme_config(
    o: &Origin,
    p: &Pebble,
    host: &str,
    state: &std::path::Path,
    acme: &str,
    site: &str,
) -> String {
    acme_config_on("127.0.0.1", o, p, host, state, acme, site)
}

/// The same, listening on `ip`.
fn acme_config_on(
    ip: &str,
    o: &Origin,
    p: &Pebble,
    host: &str,
    state: &std::path::Path,
    acme: &str,
    site: &str,
) -> String {
    config(o.addr, "", site)
        .replace(
            "[[listener]]\naddress = \"127.0.0.1:0\"",
            &format!(
                "[[listener]]\naddress = \"{ip}:{}\"\n[[listener]]\naddress = \"{ip}:{}\"\ntls = true",
                p.http_port, p.tls_port
            ),
        )
        .replace("hosts = [\"localhost\", \"127.0.0.1\", \"test.levee\"]", &format!("hosts = [\"{host}\", \"localhost\"]"))
        + &format!(
            "\n[tls.acme]\ndirectory = \"{}\"\nemail = \"ops@levee.test\"\nhosts = [\"{host}\"]\nca = \"{}\"\nstate_dir = \"{}\"\nretry = \"1s\"\nretry_max = \"2s\"\ntimeout = \"10s\"\n{acme}\n",
            p.directory,
            p.https_root.display(),
            state.display()
        )
}

/// `curl https://host/path` through the TLS port, trusting only `root`:
/// (exit code, the status or stderr).
fn fetch(port: u16, host: &str, root: &std::path::Path, path: &str) -> (i32, String) {
    fetch_at("127.0.0.1", port, host, root, path)
}

fn fetch_at(ip: &str, port: u16, host: &str, root: &std::path::Path, path: &str) -> (i32, String) {
    let resolve = format!("{host}:{port}:{ip}");
    let url = format!("https://{host}:{port}{path}");
    let (code, out, err) = run(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
            "--cacert",
            root.to_str().unwrap(),
            "--resolve",
            &resolve,
            &url,
        ],
    );
    (code, if code == 0 { out } else { err + &out })
}

/// `curl http://127.0.0.1:port/path` with `Host: host` (and `extra`
/// headers): the status.
fn plain_status(port: u16, host: &str, path: &str, extra: &[&str]) -> String {
    let host_field = format!("Host: {host}");
    let url = format!("http://127.0.0.1:{port}{path}");
    let mut args = vec![
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &host_field,
    ];
    for h in extra {
        args.extend(["-H", h]);
    }
    args.push(&url);
    run("curl", &args).1
}

fn status(e: &Edge) -> serde_json::Value {
    serde_json::from_str(&http_get(e.admin, "/status", &[]).1).unwrap()
}

fn wait_issued(e: &Edge, n: f64, secs: u64) {
    wait_orders(e, "issued", n, secs);
}

/// Wait until `levee_acme_orders_total{result}` reaches `n`.
fn wait_orders(e: &Edge, result: &str, n: f64, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while e.metric(&format!("levee_acme_orders_total{{result=\"{result}\"}}")) < n {
        assert!(
            Instant::now() < deadline,
            "not {n} {result} after {secs}s: {:?}\n{}",
            e.stderr(),
            status(e)["sources"]["acme"]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_site_gets_certificates_through_tls_alpn_01_and_http_01_even_under_attack() {
    let (hp, tp) = (free_port(), free_port());
    let Some(p) = Pebble::start(3600, hp, tp, &[]) else {
        return;
    };
    let o = Origin::start();
    let state = scratch("acme-state");

    // TLS-ALPN-01 on the TLS listener.
    let host = "alpn.levee.test";
    let e = Edge::start(
        "acme-alpn",
        &acme_config(&o, &p, host, &state, "challenge = \"tls-alpn-01\"", ""),
    );
    wait_issued(&e, 1.0, 30);
    assert_eq!(
        fetch(tp, host, &p.root, "/api/members/2"),
        (0, "200".to_string())
    );
    assert!(e.metric("levee_acme_tls_alpn01_answered_total") >= 1.0);
    assert_eq!(e.metric("levee_acme_http01_answered_total"), 0.0);
    let left = e.metric(&format!(
        "levee_tls_certificate_expiry_seconds{{host=\"{host}\"}}"
    ));
    assert!((3000.0..=3600.0).contains(&left), "{left}");
    // The certificate is Pebble's: a client trusting another root refuses it.
    assert_ne!(fetch(tp, host, &p.https_root, "/").0, 0);
    // The key is kept for the owner only.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(state.join(format!("certs/{host}.key")))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "key mode {mode:o}");
    let st = status(&e);
    assert_eq!(st["sources"]["acme"]["hosts"][0]["state"], "valid", "{st}");
    assert_eq!(
        st["sources"]["acme"]["hosts"][0]["challenge"],
        "tls-alpn-01"
    );
    drop(e);

    // Restarted: the stored certificate serves at once, no new order.
    let e = Edge::start(
        "acme-restart",
        &acme_config(&o, &p, host, &state, "challenge = \"tls-alpn-01\"", ""),
    );
    assert_eq!(fetch(tp, host, &p.root, "/"), (0, "200".to_string()));
    assert_eq!(e.metric("levee_acme_orders_total{result=\"issued\"}"), 0.0);
    assert!(
        e.stderr()
            .iter()
            .any(|l| l.contains("serving the stored certificate")),
        "{:?}",
        e.stderr()
    );
    // The challenge path of a host Levee does not certify is the site's own.
    plain_status(
        hp,
        "localhost",
        "/.well-known/acme-challenge/origin-token",
        &[],
    );
    assert!(
        o.saw("/.well-known/acme-challenge/origin-token"),
        "the origin must get it"
    );
    // [tls.acme] changes need a restart: a reload says so and keeps running.
    let text = std::fs::read_to_string(&e.config)
        .unwrap()
        .replace("ops@levee.test", "other@levee.test");
    std::fs::write(&e.config, text).unwrap();
    let (st, body) = admin_post(e.admin, "/reload", Some(TOKEN));
    assert_ne!(st, 200, "{body}");
    assert!(body.contains("[tls.acme] changed"), "{body}");
    assert_eq!(fetch(tp, host, &p.root, "/"), (0, "200".to_string()));
    drop(e);

    // HTTP-01 on the plain listener, while the site is pinned under attack,
    // challenges every browser and allows one request a second per client
    // (Pebble validates from 127.0.0.1, as the test does).
    let host = "http.levee.test";
    let site = "[site.defense]\npin = \"under_attack\"\n[site.challenge]\nmode = \"always\"\n[site.rate_limit]\nper_ip = 1\nover = \"refuse\"\n";
    let e = Edge::start(
        "acme-http",
        &acme_config(&o, &p, host, &state, "challenge = \"http-01\"", site),
    );
    // The defenses are on: plain requests to the site are challenged or refused.
    let code = plain_status(hp, host, "/", &["Accept: text/html"]);
    assert_ne!(code, "200", "the site must be defended in this test");
    wait_issued(&e, 1.0, 30);
    assert!(e.metric("levee_acme_http01_answered_total") >= 1.0);
    let log = e.access_log(1);
    let validations: Vec<_> = log
        .iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/.well-known/acme-challenge/"))
        })
        .collect();
    assert!(!validations.is_empty());
    assert!(
        validations.iter().all(|r| r["status"] == 200),
        "{validations:?}"
    );
    // The site is served with its new certificate (the challenge page, as
    // the site asks, but over a certificate the client trusts).
    let (code, out) = fetch(tp, host, &p.root, "/");
    assert_eq!(code, 0, "{out}");
    // A guessed token gets nothing.
    let code = plain_status(hp, host, "/.well-known/acme-challenge/guess", &[]);
    assert_eq!(code, "404");
    assert!(p.log().contains("Issued certificate"), "{}", p.log());
}

#[test]
fn renewal_under_load_fails_no_request() {
    let (hp, tp) = (free_port(), free_port());
    // 18-second certificates: renewed every 12 s.
    let Some(p) = Pebble::start(18, hp, tp, &[]) else {
        return;
    };
    let o = Origin::start();
    let state = scratch("acme-renew");
    let host = "renew.levee.test";
    let e = Edge::start("acme-renew", &acme_config(&o, &p, host, &state, "", ""));
    wait_issued(&e, 1.0, 30);
    // Load for 20 s: h2load on kept-alive connections, and a new
    // connection (a new handshake, verified) every 100 ms from curl.
    let stop = Instant::now() + Duration::from_secs(20);
    let root = p.root.clone();
    let fresh = std::thread::spawn(move || {
        let (mut ok, mut failed) = (0, Vec::new());
        while Instant::now() < stop {
            match fetch(tp, "renew.levee.test", &root, "/api/members/2") {
                (0, s) if s == "200" => ok += 1,
                other => failed.push(other),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        (ok, failed)
    });
    let url = format!("https://{host}:{tp}/api/members/2");
    let to = format!("127.0.0.1:{tp}");
    let (code, out, err) = run(
        "h2load",
        &["-D", "20", "-c", "4", "-m", "2", "--connect-to", &to, &url],
    );
    let (ok, failed) = fresh.join().unwrap();
    assert_eq!(code, 0, "{err}");
    let issued = e.metric("levee_acme_orders_total{result=\"issued\"}");
    assert!(
        issued >= 2.0,
        "no renewal during the load: {:?}",
        e.stderr()
    );
    assert!(
        failed.is_empty(),
        "{} new connections failed: {failed:?}",
        failed.len()
    );
    assert!(ok > 50, "{ok}");
    let line = out
        .lines()
        .find(|l| l.starts_with("requests:"))
        .unwrap_or_default()
        .to_string();
    let codes = out
        .lines()
        .find(|l| l.starts_with("status codes:"))
        .unwrap_or_default()
        .to_string();
    assert!(line.contains(" 0 failed, 0 errored"), "{line}");
    assert!(
        codes.starts_with("status codes: ") && codes.contains(" 0 3xx, 0 4xx, 0 5xx"),
        "{codes}"
    );
    eprintln!(
        "renewals: {}, fresh connections: {ok}, h2load: {line} / {codes}",
        issued - 1.0
    );
}

#[test]
fn an_unreachable_then_refusing_ca_leaves_the_old_certificate_serving() {
    let (hp, tp) = (free_port(), free_port());
    let host = "keep.levee.test";
    // 40-second certificates: renewal due after 27 s.
    let p = match Pebble::start(40, hp, tp, &[]) {
        Some(p) => p,
        None => return,
    };
    let o = Origin::start();
    let state = scratch("acme-keep");
    let text = acme_config(&o, &p, host, &state, "", "");
    let e = Edge::start("acme-keep", &text);
    wait_issued(&e, 1.0, 30);
    let root = p.root.clone();
    // The CA goes away.
    drop(p);
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let st = status(&e);
        let h = &st["sources"]["acme"]["hosts"][0];
        if h["failures"].as_u64().unwrap_or(0) >= 1 {
            assert_eq!(
                h["state"], "renewal failing: serving the held certificate",
                "{h}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no failed renewal: {st}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        fetch(tp, host, &root, "/"),
        (0, "200".to_string()),
        "the old certificate must still serve"
    );
    let said = e.stderr();
    assert!(
        said.iter().any(|l| l.contains(host)
            && l.contains("keeping the certificate valid until")
            && l.contains("Connect")),
        "{said:?}"
    );
    // A CA that refuses the name; a new edge points at it, with the same
    // state directory (so it holds the old certificate).
    let refusing = Pebble::start(40, hp, tp, &[host]).unwrap();
    drop(e);
    let text = acme_config(&o, &refusing, host, &state, "", "");
    let e = Edge::start("acme-refused", &text);
    // The stored certificate is served at once...
    assert_eq!(fetch(tp, host, &root, "/"), (0, "200".to_string()));
    // ...and, once its renewal is due, the refusal is said and it stays.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if e.stderr().iter().any(|l| {
            l.contains(host)
                && l.contains("rejectedIdentifier")
                && l.contains("keeping the certificate")
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no refusal reported: {:?}",
            e.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let st = status(&e);
    let err = st["sources"]["acme"]["hosts"][0]["last_error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(err.contains("rejectedIdentifier"), "{st}");
    assert!(e.metric("levee_acme_orders_total{result=\"failed\"}") >= 1.0);
    assert_eq!(
        fetch(tp, host, &root, "/"),
        (0, "200".to_string()),
        "the old certificate must still serve"
    );
}

#[test]
fn a_fleet_orders_once_and_any_edge_answers_the_ca_tls_alpn_01() {
    fleet_orders_once("tls-alpn-01", "levee_acme_tls_alpn01_answered_total");
}

#[test]
fn a_fleet_orders_once_and_any_edge_answers_the_ca_http_01() {
    fleet_orders_once("http-01", "levee_acme_http01_answered_total");
}

fn fleet_orders_once(challenge: &str, answered: &str) {
    let acme = format!("challenge = \"{challenge}\"");
    let Some(redis) = super::redis_server::Redis::start("acme-fleet-redis") else {
        return;
    };
    let (hp, tp) = (free_port(), free_port());
    let Some(p) = Pebble::start(3600, hp, tp, &[]) else {
        return;
    };
    let host = "fleet.levee.test";
    // The CA reaches the name at 127.0.0.2: edge b, which does not order.
    let (code, _, err) = run(
        "curl",
        &[
            "-s",
            "-X",
            "POST",
            "-d",
            &format!("{{\"host\":\"{host}\",\"addresses\":[\"127.0.0.2\"]}}"),
            &format!("http://127.0.0.1:{}/add-a", p.dns_mgmt),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let o = Origin::start();
    let fleet = |name: &str| {
        format!(
            "[challenge]\nsecret = \"acme-fleet-secret-0123456789abcdef\"\n[fleet]\nredis = \"redis://127.0.0.1:{}\"\nname = \"{name}\"\n",
            redis.port
        )
    };
    let a = Edge::start(
        "acme-fleet-a",
        &(acme_config_on(
            "127.0.0.1",
            &o,
            &p,
            host,
            &scratch("acme-fleet-a"),
            &acme,
            "",
        ) + &fleet("a")),
    );
    let b = Edge::start(
        "acme-fleet-b",
        &(acme_config_on(
            "127.0.0.2",
            &o,
            &p,
            host,
            &scratch("acme-fleet-b"),
            &acme,
            "",
        ) + &fleet("b")),
    );
    wait_issued(&a, 1.0, 30);
    wait_orders(&b, "adopted", 1.0, 15);
    // One order in the fleet; the validation was answered by b, for a.
    assert_eq!(b.metric("levee_acme_orders_total{result=\"issued\"}"), 0.0);
    assert_eq!(
        p.log().matches("Issued certificate").count(),
        1,
        "{}",
        p.log()
    );
    assert!(b.metric(answered) >= 1.0, "{challenge}");
    assert_eq!(a.metric(answered), 0.0, "{challenge}");
    // Both serve it.
    assert_eq!(
        fetch_at("127.0.0.1", tp, host, &p.root, "/"),
        (0, "200".to_string())
    );
    assert_eq!(
        fetch_at("127.0.0.2", tp, host, &p.root, "/"),
        (0, "200".to_string())
    );
    // The store holds it sealed: no private key in the clear.
    let (_, stored, _) = run(
        "redis-cli",
        &[
            "-p",
            &redis.port.to_string(),
            "--no-raw",
            "GET",
            &format!("levee:v1:{{fleet}}:acme:cert:{host}"),
        ],
    );
    assert!(stored.len() > 500, "{stored}");
    assert!(
        !stored.contains("PRIVATE KEY") && !stored.contains("CERTIFICATE"),
        "{stored}"
    );
}

#[test]
fn a_ca_that_offers_renewal_information_sets_the_renewal_time() {
    let (hp, tp) = (free_port(), free_port());
    // Pebble 2.6 suggests a window of a day either side of two-thirds; of
    // a 30-second certificate, that is mostly past or after expiry.
    let Some(p) = Pebble::start_ari(30, hp, tp) else {
        return;
    };
    let o = Origin::start();
    let host = "ari.levee.test";
    let e = Edge::start(
        "acme-ari",
        &acme_config(&o, &p, host, &scratch("acme-ari"), "", ""),
    );
    wait_issued(&e, 1.0, 30);
    let parse = |v: &serde_json::Value| -> i64 {
        v.as_str()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .map(|t| t.as_second())
            .unwrap_or_else(|| panic!("not a time: {v}"))
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let h = loop {
        let st = status(&e);
        let h = st["sources"]["acme"]["hosts"][0].clone();
        if h["ari_window"].is_array() {
            break h;
        }
        assert!(
            Instant::now() < deadline,
            "no renewal window asked: {}\n{:?}",
            st["sources"]["acme"],
            e.stderr()
                .iter()
                .filter(|l| l.contains("acme"))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let (start, end) = (parse(&h["ari_window"][0]), parse(&h["ari_window"][1]));
    let (renew, not_after) = (parse(&h["renew_at"]), parse(&h["not_after"]));
    assert!(start < end, "{h}");
    // The renewal time is the CA's pick in its window, capped at
    // five-sixths of the lifetime (25 s of 30), not two-thirds.
    assert!(renew >= start && renew <= end.min(not_after - 5 + 1), "{h}");
    // The renewal comes, and its order names what it replaces.
    wait_issued(&e, 2.0, 40);
    let said = e.stderr();
    assert!(
        said.iter().any(|l| l.contains(host)
            && l.contains("certificate issued (replacing ")
            && l.contains("renewal information")),
        "{said:?}"
    );
}

#[test]
fn a_ca_answer_too_large_is_refused_not_held() {
    // A "CA" that answers its directory with 64 MiB (over the 1 MiB bound).
    let dir = scratch("acme-huge");
    let (root, cert, key) = pebble_https(&dir);
    let port = free_port();
    let script = r#"
import http.server, ssl
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.end_headers()
        self.wfile.write(b'{"x":"' + b'a' * (64 << 20) + b'"}')
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(('127.0.0.1', PORT), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain('CERT', 'KEY')
s.socket = c.wrap_socket(s.socket, server_side=True)
s.serve_forever()
"#
    .replace("PORT", &port.to_string())
    .replace("CERT", &cert.display().to_string())
    .replace("KEY", &key.display().to_string());
    struct Killed(Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Killed(
        Command::new("python3")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(port, "the stand-in CA");
    let o = Origin::start();
    let text = config(o.addr, "", "")
        .replace(
            "[[listener]]\naddress = \"127.0.0.1:0\"",
            "[[listener]]\naddress = \"127.0.0.1:0\"\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = true",
        )
        + &format!(
            "\n[tls.acme]\ndirectory = \"https://127.0.0.1:{port}/dir\"\nemail = \"ops@levee.test\"\nhosts = [\"huge.levee.test\"]\nca = \"{}\"\nstate_dir = \"{}\"\nretry = \"1s\"\ntimeout = \"10s\"\n",
            root.display(),
            dir.join("state").display()
        );
    let e = Edge::start("acme-huge", &text);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if e.stderr()
            .iter()
            .any(|l| l.contains("huge.levee.test") && l.contains("length limit exceeded"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", e.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    // The edge goes on (its admin answers; the failure is counted), and
    // never held the 64 MiB answer.
    assert!(e.metric("levee_acme_orders_total{result=\"failed\"}") >= 1.0);
    let rss = std::fs::read_to_string(format!("/proc/{}/status", e.child.id())).unwrap();
    let kib: u64 = rss
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    assert!(kib < 64 * 1024, "peak RSS {kib} KiB");
}
