//! The edge as a CrowdSec bouncer, against Debian's real `crowdsec` Local
//! API (started here on loopback with its own configuration and SQLite
//! database): `cscli decisions add` makes the edge refuse a client within
//! the poll interval plus a second, deleting the decision lets it back, a
//! `captcha` decision sends it to the challenge, a dead Local API leaves the
//! list in place (and `/status` and the metrics say so), and a malformed
//! answer (from a test server) is ignored whole.

use super::*;

const KEY: &str = "levee-test-bouncer-key-0123456789";

/// Where `crowdsec` and `cscli` are: PATH, or where
/// `scripts/install-test-deps.sh` unpacked Debian's package.
fn crowdsec_bin(name: &str) -> Option<PathBuf> {
    let unpacked = PathBuf::from("/opt/levee-test/crowdsec/usr/bin").join(name);
    if unpacked.is_file() {
        return Some(unpacked);
    }
    let (code, out, _) = run("sh", &["-c", &format!("command -v {name}")]);
    (code == 0).then(|| PathBuf::from(out.trim()))
}

use super::redis_server::free_port;

/// A Local API of its own, killed on drop.
struct Lapi {
    child: Option<Child>,
    dir: PathBuf,
    cscli: PathBuf,
    crowdsec: PathBuf,
    port: u16,
}

impl Lapi {
    fn start() -> Option<Lapi> {
        let (Some(crowdsec), Some(cscli)) = (crowdsec_bin("crowdsec"), crowdsec_bin("cscli"))
        else {
            eprintln!(
                "skipped: crowdsec is not installed (scripts/install-test-deps.sh unpacks it)"
            );
            return None;
        };
        let dir = scratch("crowdsec-lapi");
        for d in ["data", "hub"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let port = free_port();
        let d = dir.display();
        std::fs::write(
            dir.join("config.yaml"),
            format!(
                "common:\n  daemonize: false\n  log_media: stdout\n  log_level: info\n  working_dir: .\nconfig_paths:\n  config_dir: {d}/\n  data_dir: {d}/data/\n  simulation_path: {d}/simulation.yaml\n  hub_dir: {d}/hub/\n  index_path: {d}/hub/.index.json\n  notification_dir: {d}/notifications/\n  plugin_dir: {d}/plugins/\ncrowdsec_service:\n  acquisition_path: {d}/acquis.yaml\ncscli:\n  output: human\ndb_config:\n  log_level: info\n  type: sqlite\n  use_wal: false\n  db_path: {d}/data/crowdsec.db\napi:\n  client:\n    insecure_skip_verify: false\n    credentials_path: {d}/local_api_credentials.yaml\n  server:\n    log_level: info\n    listen_uri: 127.0.0.1:{port}\n    profiles_path: {d}/profiles.yaml\n    trusted_ips:\n      - 127.0.0.1\nprometheus:\n  enabled: false\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.join("simulation.yaml"), "simulation: false\n").unwrap();
        std::fs::write(dir.join("hub/.index.json"), "{}").unwrap();
        std::fs::write(
            dir.join("profiles.yaml"),
            "name: default_ip_remediation\nfilters:\n - Alert.Remediation == true && Alert.GetScope() == \"Ip\"\ndecisions:\n - type: ban\n   duration: 4h\non_success: break\n",
        )
        .unwrap();
        let mut l = Lapi {
            child: None,
            dir,
            cscli,
            crowdsec,
            port,
        };
        let creds = l.dir.join("local_api_credentials.yaml");
        l.cscli(&[
            "machines",
            "add",
            "levee-test",
            "--password",
            "levee-test-pw",
            "--force",
            "-f",
            creds.to_str().unwrap(),
        ]);
        l.cscli(&["bouncers", "add", "levee", "-k", KEY]);
        l.up();
        Some(l)
    }

    fn up(&mut self) {
        let cfg = self.dir.join("config.yaml");
        let log = std::fs::File::create(self.dir.join("lapi.log")).unwrap();
        let child = Command::new(&self.crowdsec)
            .args(["-c", cfg.to_str().unwrap(), "-no-cs"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "the Local API did not start: {}",
                std::fs::read_to_string(self.dir.join("lapi.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn cscli(&self, args: &[&str]) -> String {
        let cfg = self.dir.join("config.yaml");
        let out = Command::new(&self.cscli)
            .args(["-c", cfg.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "cscli {args:?}: {text}");
        text
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Lapi {
    fn drop(&mut self) {
        self.down();
    }
}

use super::block_list::served;

/// How long until `served(src)` becomes `want`, at most `limit`.
fn until(e: &Edge, src: &str, want: bool, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if served(e, src) == want {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn status(e: &Edge) -> serde_json::Value {
    let (_, body) = http_get(
        e.admin,
        "/status",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
    );
    serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
}

fn bouncer_edge(name: &str, o: &Origin, lapi: &str) -> Edge {
    Edge::start(
        name,
        &config(
            o.addr,
            "",
            &format!("[crowdsec]\nlapi = \"{lapi}\"\napi_key = \"{KEY}\"\npoll = \"1s\"\ntimeout = \"1s\"\n"),
        ),
    )
}

#[test]
fn decisions_of_a_real_local_api_are_applied_removed_and_kept_when_it_dies() {
    let Some(mut lapi) = Lapi::start() else {
        return;
    };
    let o = Origin::start();
    let e = bouncer_edge("crowdsec", &o, &lapi.url());
    assert!(served(&e, "127.0.0.11"));
    // A ban: refused within the poll interval (1 s) plus 1 s.
    lapi.cscli(&[
        "decisions",
        "add",
        "--ip",
        "127.0.0.11",
        "--duration",
        "1h",
        "--reason",
        "levee test",
    ]);
    let took =
        until(&e, "127.0.0.11", false, Duration::from_secs(5)).expect("the ban was not applied");
    assert!(took <= Duration::from_secs(2), "applied after {took:?}");
    assert!(
        served(&e, "127.0.0.12"),
        "only the banned client is refused"
    );
    let s = status(&e);
    assert_eq!(s["sources"]["crowdsec"]["up"], true, "{s}");
    assert_eq!(s["sources"]["crowdsec"]["bans"], 1, "{s}");
    assert_eq!(e.metric("levee_crowdsec_lapi_up"), 1.0);
    assert_eq!(e.metric("levee_crowdsec_decisions{type=\"ban\"}"), 1.0);
    // Deleted: back within the poll interval plus 1 s.
    lapi.cscli(&["decisions", "delete", "--ip", "127.0.0.11"]);
    let took =
        until(&e, "127.0.0.11", true, Duration::from_secs(5)).expect("the ban was not lifted");
    assert!(took <= Duration::from_secs(2), "lifted after {took:?}");
    // An operator's block and CrowdSec's on one address are apart: lifting
    // CrowdSec's leaves the operator's.
    lapi.cscli(&["decisions", "add", "--ip", "127.0.0.17", "--duration", "1h"]);
    until(&e, "127.0.0.17", false, Duration::from_secs(5)).expect("the ban was not applied");
    let (code, _) = admin_post(e.admin, "/blocks?cidr=127.0.0.17&ttl=600", Some(TOKEN));
    assert_eq!(code, 200);
    lapi.cscli(&["decisions", "delete", "--ip", "127.0.0.17"]);
    let t = Instant::now();
    while status(&e)["sources"]["crowdsec"]["bans"] != 0 {
        assert!(t.elapsed() < Duration::from_secs(5), "{}", status(&e));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !served(&e, "127.0.0.17"),
        "CrowdSec lifted the operator's block"
    );
    // A captcha: the client gets the challenge page, the others the site.
    lapi.cscli(&[
        "decisions",
        "add",
        "--ip",
        "127.0.0.13",
        "--type",
        "captcha",
        "--duration",
        "1h",
    ]);
    let page = |src: &str| {
        let mut s = connect_from(src.parse().unwrap(), e.addr).unwrap();
        s.write_all(b"GET /welcome HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\nConnection: close\r\n\r\n").unwrap();
        read_until_close(&mut s, Duration::from_secs(2)).0
    };
    let t = Instant::now();
    while !page("127.0.0.13").contains("data-token=") {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no challenge for the captcha decision: {}",
            page("127.0.0.13")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!page("127.0.0.14").contains("data-token="));
    // The Local API dies: the list stays, and the edge says so.
    lapi.cscli(&["decisions", "add", "--ip", "127.0.0.15", "--duration", "1h"]);
    until(&e, "127.0.0.15", false, Duration::from_secs(5)).expect("the second ban was not applied");
    lapi.down();
    std::thread::sleep(Duration::from_secs(3));
    assert!(!served(&e, "127.0.0.15"), "the last list is kept");
    assert!(served(&e, "127.0.0.16"));
    let s = status(&e);
    let c = &s["sources"]["crowdsec"];
    assert_eq!(c["up"], false, "{s}");
    assert!(
        c["state"]
            .as_str()
            .unwrap()
            .contains("keeping the last list"),
        "{c}"
    );
    assert!(
        c["last_error"].as_str().unwrap().contains("unreachable"),
        "{c}"
    );
    assert_eq!(e.metric("levee_crowdsec_lapi_up"), 0.0);
    assert!(e.metric("levee_crowdsec_errors_total{kind=\"unreachable\"}") >= 1.0);
    assert!(
        e.stderr()
            .iter()
            .any(|l| l.contains("crowdsec") && l.contains("unreachable")),
        "{:?}",
        e.stderr()
    );
    // Back: followed again.
    lapi.up();
    let t = Instant::now();
    while status(&e)["sources"]["crowdsec"]["up"] != true {
        assert!(t.elapsed() < Duration::from_secs(5), "not followed again");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!served(&e, "127.0.0.15"));
}

/// A stand-in Local API whose second answer is malformed: the edge logs
/// it, applies nothing of it, and asks for the whole list again.
#[test]
fn a_malformed_stream_answer_is_logged_and_ignored_whole() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let asked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&asked);
    std::thread::spawn(move || {
        let started = Instant::now();
        for (i, conn) in listener.incoming().take(60).enumerate() {
            if started.elapsed() > Duration::from_secs(30) {
                break;
            }
            let Ok(mut c) = conn else { continue };
            let mut buf = [0u8; 4096];
            let n = c.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            seen.lock()
                .unwrap()
                .push(head.lines().next().unwrap_or("").to_string());
            let body = match i {
                0 => r#"{"new":[{"type":"ban","scope":"Ip","value":"127.0.0.21","duration":"1h","origin":"cscli","scenario":"t"}],"deleted":null}"#.to_string(),
                1 => r#"{"new":[{"type":"ban","scope":"Ip","value":"127.0.0.22","duration":"1h"},{"type":"ban","scope":"Ip","value":"127.0.0.999","duration":"1h"}],"deleted":[{"type":"ban","scope":"Ip","value":"127.0.0.21","duration":"-1s"}]}"#.to_string(),
                _ => r#"{"new":[{"type":"ban","scope":"Ip","value":"127.0.0.21","duration":"1h"}],"deleted":null}"#.to_string(),
            };
            let _ = c.write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes());
        }
    });
    let o = Origin::start();
    let e = bouncer_edge("crowdsec-malformed", &o, &format!("http://{addr}"));
    until(&e, "127.0.0.21", false, Duration::from_secs(5))
        .expect("the first answer was not applied");
    let t = Instant::now();
    while status(&e)["sources"]["crowdsec"]["malformed_answers"]
        .as_u64()
        .unwrap_or(0)
        < 1
    {
        assert!(t.elapsed() < Duration::from_secs(5), "{}", status(&e));
        std::thread::sleep(Duration::from_millis(100));
    }
    // Nothing of the malformed answer: neither its ban nor its deletion.
    assert!(
        served(&e, "127.0.0.22"),
        "a ban of a malformed answer was applied"
    );
    assert!(
        !served(&e, "127.0.0.21"),
        "a deletion of a malformed answer was applied"
    );
    let c = &status(&e)["sources"]["crowdsec"];
    assert!(
        c["last_error"]
            .as_str()
            .unwrap()
            .contains("new[1]: \"127.0.0.999\" is not an IP address"),
        "{c}"
    );
    assert!(
        e.stderr()
            .iter()
            .any(|l| l.contains("malformed answer, ignored")),
        "{:?}",
        e.stderr()
    );
    // The next call asked for the whole list again.
    std::thread::sleep(Duration::from_millis(1500));
    let asked = asked.lock().unwrap().clone();
    assert!(asked[0].contains("startup=true"), "{asked:?}");
    assert!(asked[1].contains("startup=false"), "{asked:?}");
    assert!(
        asked.get(2).is_some_and(|l| l.contains("startup=true")),
        "{asked:?}"
    );
}

/// With `push_blocks`, the edge's own automatic blocks reach the Local API
/// as alerts with a ban each, so the user's other servers learn from it.
#[test]
fn the_edges_automatic_blocks_are_pushed_to_the_local_api() {
    let Some(lapi) = Lapi::start() else { return };
    let o = Origin::start();
    let extra = format!(
        "{}rule_action = \"block\"\nauto_block_after = 20\nauto_block_ttl = \"60s\"\n[crowdsec]\nlapi = \"{}\"\napi_key = \"{KEY}\"\npoll = \"1s\"\ntimeout = \"5s\"\npush_blocks = true\nmachine_id = \"levee-test\"\npassword = \"levee-test-pw\"\n",
        super::adaptive_defense::FAST,
        lapi.url()
    );
    let e = Edge::start("crowdsec-push", &config(o.addr, "", &extra));
    let s = super::adaptive_defense::run_drill(&e, &o, "http-flood", "3", "3");
    assert!(s["legit_success"].as_f64().unwrap() >= 0.99, "{s}");
    let ev = super::adaptive_defense::events(&e);
    let cidr = ev
        .iter()
        .find(|v| v["event"] == "block" && v["added"] == true)
        .and_then(|v| v["cidr"].as_str())
        .unwrap_or_else(|| panic!("no automatic block: {ev:?}"))
        .to_string();
    let ip = cidr.trim_end_matches("/32").to_string();
    let t = Instant::now();
    loop {
        // The Local API's own answer for that address (its bouncer query).
        let (_, list, _) = run(
            "curl",
            &[
                "-sS",
                "-H",
                &format!("X-Api-Key: {KEY}"),
                &format!("{}/v1/decisions?ip={ip}", lapi.url()),
            ],
        );
        if list.contains("levee/auto-block") {
            assert!(
                list.contains(&ip) && list.contains("\"type\":\"ban\""),
                "{list}"
            );
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{ip} not pushed: {list}\n{}",
            status(&e)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // The edge counts the push once the Local API acknowledged it (under
    // load an acknowledgement can come after the timeout: the alerts are
    // then sent again, at least once in all).
    loop {
        let c = status(&e)["sources"]["crowdsec"].clone();
        if c["push"]["pushed"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{c}");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(e.metric("levee_crowdsec_alerts_pushed_total") >= 1.0);
}
