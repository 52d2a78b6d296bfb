//! The browser challenge: a real headless Chromium solves it and loads the
//! page with its assets; bots, API clients and forms are treated as the
//! policy says; forged and replayed solutions are refused.

use super::browser::Browser;
use super::*;

fn challenge_edge(name: &str, o: &Origin, bits: u8) -> Edge {
    // A `[site.challenge]` table after `[[site.origin]]` belongs to the last site.
    let extra = format!(
        "\n[site.challenge]\nmode = \"always\"\nbits = {bits}\nexempt_paths = [\"/healthz\"]\nallow = [\"127.0.9.0/24\"]\n"
    );
    Edge::start(name, &config(o.addr, "", &extra))
}

#[test]
fn chromium_solves_the_challenge_and_loads_the_page_with_its_assets() {
    let o = Origin::start();
    let e = challenge_edge("challenge-browser", &o, 14);
    let dir = scratch("chromium-profile");
    let Some(b) = Browser::start(&dir) else {
        return;
    };
    b.call(
        "POST",
        "/url",
        Some(serde_json::json!({"url": e.url("/?from=test")})),
    );
    let start = Instant::now();
    loop {
        let title = b.call("GET", "/title", None)["value"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if title == "Levee demo site" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the page never loaded; title {title:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let cookies = b.call("GET", "/cookie", None);
    let clearance = cookies["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "levee_clearance")
        .cloned();
    let c = clearance.expect("clearance cookie set");
    assert_eq!(c["httpOnly"], true);
    // The original URL came back, and its stylesheet was fetched with the clearance.
    std::thread::sleep(Duration::from_millis(300));
    let heads = o.stats.recent_heads();
    assert!(
        heads.iter().any(|h| h.starts_with("GET /?from=test ")),
        "{heads:?}"
    );
    assert!(
        heads
            .iter()
            .any(|h| h.starts_with("GET /static/app.css") && h.contains("levee_clearance=")),
        "{heads:?}"
    );
    assert_eq!(e.metric("levee_challenges_solved_total"), 1.0);
    assert!(e.metric("levee_challenges_issued_total") >= 1.0);
    let log = e.access_log(3);
    assert!(
        log.iter()
            .any(|l| l["verdict"] == "challenge" && l["path"] == "/?from=test"),
        "{log:?}"
    );
}

/// The token of the challenge page in `body`.
pub(crate) fn token_of(body: &str) -> String {
    body.split("data-token=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap_or_else(|| panic!("no challenge token in {body}"))
        .to_string()
}

/// The first cookie a response sets (`name=value`).
pub(crate) fn cookie_of(resp: &str) -> String {
    resp.split("set-cookie: ")
        .nth(1)
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no cookie set in {resp}"))
        .to_string()
}

#[test]
fn who_is_not_shown_the_page_and_what_bad_solutions_get() {
    let o = Origin::start();
    let e = challenge_edge("challenge-policy", &o, 8);
    let html = [("Accept", "text/html,*/*")];
    // A bot that runs no JavaScript: the page, and the origin never sees it.
    let (s, body) = http_get(e.addr, "/secret-page", &html);
    assert_eq!(s, 403);
    assert!(body.contains("data-token="), "{body}");
    assert!(!o.saw("/secret-page"));
    // API clients: 429 with Retry-After, no page.
    let (resp, _) = raw(e.addr, b"GET /api/members/1 HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\nConnection: close\r\n\r\n", Duration::from_secs(3));
    assert!(
        resp.starts_with("HTTP/1.1 429") && resp.contains("retry-after: 5"),
        "{resp}"
    );
    // A form post without clearance: 503 with Retry-After, never a redirect that loses the body.
    let (resp, _) = raw(e.addr, b"POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Length: 9\r\nConnection: close\r\n\r\nuser=ada1", Duration::from_secs(3));
    assert!(
        resp.starts_with("HTTP/1.1 503")
            && resp.contains("retry-after: 5")
            && !resp.contains("location:"),
        "{resp}"
    );
    // Exempt paths (monitoring) and allow-listed networks (staff) pass.
    assert_eq!(http_get(e.addr, "/healthz", &html).0, 200);
    let mut c = connect_from("127.0.9.5".parse().unwrap(), e.addr).unwrap();
    c.write_all(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(read_until_close(&mut c, Duration::from_secs(3))
        .0
        .starts_with("HTTP/1.1 200"));
    // Solve it in Rust: the clearance works for the same User-Agent only.
    let token = token_of(&body);
    let counter = levee_challenge::solve(&token, 1 << 24).unwrap();
    let verify = format!("/.levee/challenge/verify?t={token}&c={counter}&r=%2Fsecret-page");
    let (resp, _) = raw(e.addr, format!("GET {verify} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: ua-1\r\nConnection: close\r\n\r\n").as_bytes(), Duration::from_secs(3));
    assert!(
        resp.starts_with("HTTP/1.1 303") && resp.contains("location: /secret-page"),
        "{resp}"
    );
    let cookie = cookie_of(&resp);
    let with = |ua: &str| {
        raw(e.addr, format!("GET /secret-page HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {ua}\r\nCookie: {cookie}\r\nAccept: text/html\r\nConnection: close\r\n\r\n").as_bytes(), Duration::from_secs(3)).0
    };
    assert!(
        with("ua-1").starts_with("HTTP/1.1 404"),
        "cleared request reaches the origin (which has no such page)"
    );
    assert!(
        with("other-ua").starts_with("HTTP/1.1 403"),
        "clearance replayed by another client"
    );
    // The same solution again: replayed. A wrong counter: not enough work. A forged token: refused.
    let (resp, _) = raw(
        e.addr,
        format!("GET {verify} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
        Duration::from_secs(3),
    );
    assert!(
        resp.starts_with("HTTP/1.1 403") && resp.contains("already used"),
        "{resp}"
    );
    let bad = (0..)
        .find(|&x| !levee_challenge::work_ok(&token, x, 8))
        .unwrap();
    let (resp, _) = raw(e.addr, format!("GET /.levee/challenge/verify?t={token}&c={bad}&r=%2F HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(), Duration::from_secs(3));
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    let (resp, _) = raw(e.addr, b"GET /.levee/challenge/verify?t=AAAA&c=1&r=%2F HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", Duration::from_secs(3));
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert_eq!(
        e.metric("levee_challenges_failed_total{reason=\"replayed\"}"),
        1.0
    );
    assert_eq!(
        e.metric("levee_challenges_failed_total{reason=\"insufficient_work\"}"),
        1.0
    );
    assert_eq!(
        e.metric("levee_challenges_failed_total{reason=\"malformed\"}"),
        1.0
    );
    // An open redirect through the verify endpoint is impossible.
    let t2 = http_get(e.addr, "/x", &html).1;
    let t2 = token_of(&t2);
    let c2 = levee_challenge::solve(&t2, 1 << 24).unwrap();
    let (resp, _) = raw(e.addr, format!("GET /.levee/challenge/verify?t={t2}&c={c2}&r=%2F%2Fevil.example HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(), Duration::from_secs(3));
    assert!(resp.contains("location: /\r\n"), "{resp}");
}

#[test]
fn staff_tokens_noscript_fallback_and_harder_work_for_marked_clients() {
    let o = Origin::start();
    let extra = "\n[site.challenge]\nmode = \"always\"\nbits = 8\nstaff_tokens = [\"staff-secret\"]\nnoscript_fallback = true\nfallback_wait = \"1s\"\nfallback_clearance_ttl = \"2m\"\n\n[http2]\nmax_ping_frames = 5\n";
    let e = Edge::start("challenge-extras", &config(o.addr, "", extra));
    let html = ("Accept", "text/html");
    // Staff tools carrying the token are never challenged.
    assert_eq!(
        http_get(
            e.addr,
            "/",
            &[html, ("Authorization", "Bearer staff-secret")]
        )
        .0,
        200
    );
    assert_eq!(
        http_get(e.addr, "/", &[html, ("Authorization", "Bearer nope")]).0,
        403
    );
    // No JavaScript: the page refreshes to the wait path; too early is refused, after the wait it clears (for 2 minutes).
    let page = http_get(e.addr, "/news", &[html]).1;
    assert!(page.contains("http-equiv=\"refresh\""), "{page}");
    let url = page
        .split("url=")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert!(url.starts_with("/.levee/challenge/wait?t="), "{url}");
    let get = |u: &str| {
        raw(e.addr, format!("GET {u} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: lynx\r\nConnection: close\r\n\r\n").as_bytes(), Duration::from_secs(3)).0
    };
    assert!(get(&url).starts_with("HTTP/1.1 403"));
    std::thread::sleep(Duration::from_millis(2100));
    let resp = get(&url);
    assert!(
        resp.starts_with("HTTP/1.1 303")
            && resp.contains("location: /news")
            && resp.contains("Max-Age=120"),
        "{resp}"
    );
    // A client the edge marked abusive (an HTTP/2 PING flood) is asked for more work.
    let before = page
        .split("data-bits=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(before, "8");
    let mut h = super::h2_frames::H2::connect(e.addr);
    for i in 0..20u64 {
        h.frame(super::h2_frames::PING, 0, 0, &i.to_be_bytes());
    }
    assert_eq!(
        h.goaway(Duration::from_secs(3)),
        Some(super::h2_frames::ENHANCE_YOUR_CALM)
    );
    e.await_defense("h2_ping_flood", 1.0);
    let page = http_get(e.addr, "/news", &[html]).1;
    let after = page
        .split("data-bits=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(after, "12");
}
