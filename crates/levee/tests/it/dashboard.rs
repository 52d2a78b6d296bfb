//! The live dashboard: real headless Chromium loads it from the admin
//! listener alone, its charts fill during a drill flood, the token's
//! actions pin the mode, and without the token it offers no action and
//! names no address; its stream is capped and Host-checked.

use super::browser::Browser;
use super::incidents::{flood, incidents_config};
use super::*;
use std::io::{Read, Write};

fn js(b: &Browser, script: &str) -> serde_json::Value {
    b.script(script)
}

fn wait_for(b: &Browser, what: &str, script: &str, secs: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = js(b, script);
        if v.as_bool() == Some(true) || v.as_u64().is_some_and(|n| n > 0) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn chromium_shows_a_flood_live_acts_only_with_the_token_and_names_no_address_without_it() {
    let o = Origin::start();
    let dir = scratch("dashboard-flood");
    let e = Edge::start("dashboard-flood", &incidents_config(&o, &dir));
    let profile = scratch("dashboard-profile");
    let Some(b) = Browser::start_sized(&profile, "1280,1500") else {
        return;
    };
    let base = format!("http://{}", e.admin);
    b.open(&format!("{base}/dashboard"));
    wait_for(
        &b,
        "no snapshot arrived",
        "return Number(document.body.dataset.snapshots || 0) >= 2",
        20,
    );
    // Read-only: no action in the page, the actions box hidden.
    assert_eq!(
        js(&b, "return document.querySelectorAll('.action').length"),
        0
    );
    assert_eq!(
        js(&b, "return document.getElementById('actions').hidden"),
        true
    );
    let before = js(&b, "return Number(document.body.dataset.points || 0)")
        .as_u64()
        .unwrap();
    let mut peak_seen = 0.0;
    let mut points = Vec::new();
    std::thread::scope(|s| {
        let drill = s.spawn(|| flood(&e, &o, "400", "6"));
        // During the flood: the charts gain points and show the attack.
        for i in 0..6 {
            std::thread::sleep(Duration::from_millis(1500));
            if i == 3 {
                // Mid-flood, an operator drops one of the derived rules.
                let st: serde_json::Value =
                    serde_json::from_str(&http_get(e.admin, "/status", &[]).1).unwrap();
                let id = st["sites"][0]["defense"]["rules"][0]["id"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no rule derived mid-flood: {st}"));
                let (code, out, _) = run(
                    "curl",
                    &[
                        "-s",
                        "-w",
                        " %{http_code}",
                        "-X",
                        "DELETE",
                        "-H",
                        &format!("Authorization: Bearer {TOKEN}"),
                        &format!("http://{}/rules?site=test&id={id}", e.admin),
                    ],
                );
                assert!(code == 0 && out.ends_with(" 200"), "{out}");
                let st: serde_json::Value =
                    serde_json::from_str(&http_get(e.admin, "/status", &[]).1).unwrap();
                assert!(
                    st["sites"][0]["defense"]["rules"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|r| r["id"] != id),
                    "rule {id} still there: {st}"
                );
                let events = http_get(e.admin, "/events", &[]).1;
                assert!(events.contains("\"event\":\"rule_dropped\""), "{events}");
            }
            points.push(
                js(&b, "return Number(document.body.dataset.points || 0)")
                    .as_u64()
                    .unwrap(),
            );
            let peak = js(&b, "const d = sites[current]; return Math.max(0, ...d.t.map((_, i) => d.counts.reduce((a, c) => a + c[i], 0)))");
            peak_seen = f64::max(peak_seen, peak.as_f64().unwrap_or(0.0));
        }
        b.screenshot(&e.dir.join("dashboard.png"));
        // Nothing without the token names an address, even under attack.
        let text = js(&b, "return document.body.innerText")
            .as_str()
            .unwrap()
            .to_string();
        for a in ["127.0.0.1", "127.20.", "127.250.", &o.addr.to_string()] {
            assert!(!text.contains(a), "{a} shown without the token:\n{text}");
        }
        drill.join().unwrap();
    });
    eprintln!(
        "dashboard points {before} then {points:?}; peak {peak_seen} req/s; screenshot {}",
        e.dir.join("dashboard.png").display()
    );
    assert!(
        points.windows(2).filter(|w| w[1] > w[0]).count() >= 3,
        "{points:?}"
    );
    assert!(
        peak_seen > 200.0,
        "the chart never showed the flood: {peak_seen}"
    );
    assert_eq!(
        js(
            &b,
            "return document.querySelectorAll('#rps canvas, #lat canvas').length"
        ),
        2
    );
    // Everything the page loaded came from the admin listener.
    let resources = js(
        &b,
        "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href])",
    );
    for r in resources.as_array().unwrap() {
        assert!(
            r.as_str().unwrap().starts_with(&base),
            "{r} is not the admin listener's"
        );
    }
    // With the token: the actions appear, and pinning works.
    js(&b, &format!("document.getElementById('token').value = '{TOKEN}'; document.getElementById('use').click(); return true"));
    wait_for(
        &b,
        "the token was not accepted",
        "return document.getElementById('who').textContent.startsWith('operator')",
        10,
    );
    wait_for(
        &b,
        "no action appeared",
        "return document.querySelectorAll('.action').length",
        10,
    );
    let origins = js(&b, "return document.getElementById('origins').innerText");
    assert!(
        origins.as_str().unwrap().contains(&o.addr.to_string()),
        "{origins}"
    );
    js(&b, "document.getElementById('pin-mode').value = 'under_attack'; document.querySelector('.action-row button').click(); return true");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = http_get(e.admin, "/status", &[]);
        let st: serde_json::Value = serde_json::from_str(&body).unwrap();
        if st["sites"][0]["defense"]["pinned"] == "under_attack" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the page's Pin did not pin: {st}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_for(
        &b,
        "the page did not show the pin",
        "return document.getElementById('mode').textContent === 'under_attack'",
        10,
    );
    // Block and unblock from the page.
    js(&b, "document.getElementById('block-cidr').value = '127.0.77.0/24'; document.querySelectorAll('.action-row button')[1].click(); return true");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !http_get(e.admin, "/blocks", &[])
        .1
        .contains("127.0.77.0/24")
    {
        assert!(Instant::now() < deadline, "the page's Block did not block");
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_for(&b, "the block is not listed with a remove button", "return [...document.querySelectorAll('#blocks tr')].some(r => r.innerText.includes('127.0.77.0/24') && r.querySelector('button') !== null)", 10);
    b.screenshot(&e.dir.join("dashboard-operator.png"));
    js(&b, "[...document.querySelectorAll('#blocks tr')].find(r => r.innerText.includes('127.0.77.0/24')).querySelector('button').click(); return true");
    let deadline = Instant::now() + Duration::from_secs(10);
    while http_get(e.admin, "/blocks", &[])
        .1
        .contains("127.0.77.0/24")
    {
        assert!(
            Instant::now() < deadline,
            "the page's remove did not unblock"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Open a stream; the head and the first event (or the whole answer).
pub(super) fn stream(admin: SocketAddr, host: &str, token: Option<&str>) -> (TcpStream, String) {
    let mut s = TcpStream::connect(admin).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET /dashboard/stream HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        let t = String::from_utf8_lossy(&got);
        if t.contains("\ndata: ") && t.ends_with("\n\n")
            || !t.starts_with("HTTP/1.1 200") && t.contains("\r\n\r\n")
        {
            break;
        }
    }
    (s, String::from_utf8_lossy(&got).into_owned())
}

#[test]
fn the_stream_hides_addresses_without_the_token_is_capped_and_answers_no_other_host() {
    let o = Origin::start();
    let e = Edge::start("dashboard-stream", &config(o.addr, "", ""));
    assert_eq!(
        admin_post(e.admin, "/blocks?cidr=127.0.3.0/24&ttl=60", Some(TOKEN)).0,
        200
    );
    // An operator's block is an event (and so in an open incident's record).
    let events = http_get(e.admin, "/events", &[]).1;
    assert!(
        events.contains("\"event\":\"block\"") && events.contains("\"by\":\"operator\""),
        "{events}"
    );
    for _ in 0..20 {
        assert_eq!(http_get(e.addr, "/", &[]).0, 200);
    }
    let (_, open) = stream(e.admin, "127.0.0.1", None);
    assert!(
        open.starts_with("HTTP/1.1 200") && open.contains("text/event-stream"),
        "{open}"
    );
    assert!(open.contains("\"authorized\":false"), "{open}");
    for a in ["127.0.3.0", &o.addr.to_string()] {
        assert!(
            !open.contains(a),
            "{a} in the stream without the token:\n{open}"
        );
    }
    let (_, op) = stream(e.admin, "127.0.0.1", Some(TOKEN));
    assert!(
        op.contains("\"authorized\":true")
            && op.contains("127.0.3.0/24")
            && op.contains(&o.addr.to_string()),
        "{op}"
    );
    // A page on another name rebound to 127.0.0.1 reads nothing.
    let (_, rebound) = stream(e.admin, "levee.evil.example", None);
    assert!(rebound.starts_with("HTTP/1.1 421"), "{rebound}");
    // At most 8 streams at once; the ninth is refused, and a slot comes back when one ends.
    let mut held = Vec::new();
    for _ in 0..8 {
        let (s, t) = stream(e.admin, "127.0.0.1", None);
        assert!(t.starts_with("HTTP/1.1 200"), "{t}");
        held.push(s);
    }
    let (_, ninth) = stream(e.admin, "127.0.0.1", None);
    assert!(ninth.starts_with("HTTP/1.1 503"), "{ninth}");
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, again) = stream(e.admin, "127.0.0.1", None);
        if again.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "no slot came back: {again}");
        std::thread::sleep(Duration::from_millis(300));
    }
    // The page and its assets are embedded; the page says what it may load.
    let (s, page) = http_get(e.admin, "/dashboard", &[]);
    assert_eq!(s, 200);
    assert!(page.contains("/dashboard/uplot.js"));
    let (code, out, _) = run(
        "curl",
        &[
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            &format!("http://{}/dashboard", e.admin),
        ],
    );
    assert_eq!(code, 0);
    assert!(
        out.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{out}"
    );
    assert_eq!(http_get(e.admin, "/dashboard/uplot.js", &[]).0, 200);
    // Dropping a rule needs the token.
    assert_eq!(
        run(
            "curl",
            &[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "DELETE",
                &format!("http://{}/rules?site=test&id=1", e.admin)
            ]
        )
        .1,
        "401"
    );
}
