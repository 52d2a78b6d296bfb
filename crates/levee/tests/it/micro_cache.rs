//! The micro-cache: concurrent misses collapse into one origin request,
//! fresh copies are answered by the edge, junk query parameters are ignored
//! under attack, personal data is never cached, and a stale copy is served
//! when the origin is gone.

use super::*;

const CACHE: &str = r#"
[site.cache]
enabled = true
ttl = "5s"
stale = "60s"
keep_params = ["q"]
"#;

/// GET `path`; returns (status, the `x-levee-cache` value, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let (resp, _) = raw(addr, req.as_bytes(), Duration::from_secs(10));
    let label = resp
        .lines()
        .find_map(|l| l.strip_prefix("x-levee-cache: "))
        .unwrap_or("")
        .trim()
        .to_string();
    let (status, body) = parse_response(&resp);
    (status, label, body)
}

fn origin_requests(o: &Origin) -> u64 {
    o.stats.requests.load(std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn concurrent_misses_collapse_and_hits_never_reach_the_origin() {
    let o = Origin::start();
    let e = Edge::start("cache-collapse", &config(o.addr, "", CACHE));
    // 20 clients at once on the slow search page (150 ms at the origin).
    let before = origin_requests(&o);
    let addr = e.addr;
    let threads: Vec<_> = (0..20)
        .map(|_| std::thread::spawn(move || get(addr, "/search?q=levee")))
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(results.iter().all(|r| r.0 == 200), "{results:?}");
    assert!(results.iter().all(|r| r.2.contains("No results for levee")));
    assert_eq!(origin_requests(&o) - before, 1, "misses were not collapsed");
    assert_eq!(results.iter().filter(|r| r.1 == "MISS").count(), 1);
    // Fresh: answered by the edge.
    let (st, label, _) = get(e.addr, "/search?q=levee");
    assert_eq!((st, label.as_str()), (200, "HIT"));
    assert_eq!(origin_requests(&o) - before, 1);
    // Over HTTP/2 too.
    let url = format!("http://localhost:{}/search?q=levee", e.addr.port());
    let resolve = format!("localhost:{}:127.0.0.1", e.addr.port());
    let (code, out, err) = run(
        "curl",
        &[
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "--http2-prior-knowledge",
            "--resolve",
            &resolve,
            &url,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("HTTP/2 200") && out.contains("x-levee-cache: HIT"),
        "{out}"
    );
    assert_eq!(origin_requests(&o) - before, 1);
    // Another query is another page.
    assert_eq!(get(e.addr, "/search?q=other").1, "MISS");
    // Personal data (no-store at the origin) is never cached.
    get(e.addr, "/api/members/7");
    let (_, label, _) = get(e.addr, "/api/members/7");
    assert_eq!(label, "", "a no-store response was cached");
}

#[test]
fn junk_query_parameters_are_ignored_only_under_attack() {
    let o = Origin::start();
    let e = Edge::start("cache-junk", &config(o.addr, "", CACHE));
    assert_eq!(get(e.addr, "/search?q=a&cb=1").1, "MISS");
    assert_eq!(
        get(e.addr, "/search?q=a&cb=2").1,
        "MISS",
        "normal mode keeps the query"
    );
    let (st, _) = admin_post(e.admin, "/mode?site=test&mode=under_attack", Some(TOKEN));
    assert_eq!(st, 200);
    let before = origin_requests(&o);
    assert_eq!(get(e.addr, "/search?q=b&cb=1").1, "MISS");
    for i in 2..20 {
        let (st, label, _) = get(e.addr, &format!("/search?q=b&cb={i}&x{i}=y"));
        assert_eq!(
            (st, label.as_str()),
            (200, "HIT"),
            "cache-busting query {i}"
        );
    }
    assert_eq!(origin_requests(&o) - before, 1);
    // The kept parameter still selects the page.
    assert_eq!(get(e.addr, "/search?q=c&cb=1").1, "MISS");
}

/// An origin that answers one cacheable page, then goes away.
fn one_shot_origin() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let body = "cached page\n";
            let resp = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncache-control: max-age=1\r\nconnection: close\r\n\r\n{body}", body.len());
            let _ = s.write_all(resp.as_bytes());
        }
        // The listener is dropped: the origin is gone.
    });
    addr
}

#[test]
fn a_stale_copy_is_served_when_the_origin_is_gone() {
    let origin = one_shot_origin();
    let e = Edge::start("cache-stale", &config(origin, "", CACHE));
    let (st, label, body) = get(e.addr, "/page");
    assert_eq!((st, label.as_str()), (200, "MISS"));
    assert_eq!(body, "cached page\n");
    std::thread::sleep(Duration::from_millis(1300));
    // Past max-age=1: the origin is asked, refuses, and the stale copy answers.
    let (st, label, body) = get(e.addr, "/page");
    assert_eq!((st, label.as_str()), (200, "STALE"), "{body}");
    assert_eq!(body, "cached page\n");
    // An uncached page has nothing to fall back on.
    assert_eq!(get(e.addr, "/other").0, 502);
}

#[test]
fn routes_tagged_personal_are_never_cached() {
    let o = Origin::start();
    // The search page is cacheable at the origin; tagged, it is not cached.
    let extra = format!(
        "{CACHE}\n[[site.route]]\nname = \"search\"\npaths = [\"/search\"]\npersonal = true\nspecial = [\"political_opinions\"]\n"
    );
    let e = Edge::start("cache-personal", &config(o.addr, "", &extra));
    let before = origin_requests(&o);
    for _ in 0..3 {
        let (st, label, _) = get(e.addr, "/search?q=party");
        assert_eq!((st, label.as_str()), (200, ""));
    }
    assert_eq!(
        origin_requests(&o) - before,
        3,
        "a personal route was cached"
    );
    // Untagged pages still are.
    get(e.addr, "/static/app.css");
    assert_eq!(get(e.addr, "/static/app.css").1, "HIT");
}
