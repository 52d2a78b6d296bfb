//! Review finding 5: path policies judged the raw target, so
//! `/.well-known/../x` skipped an `always` challenge (the exempt path is on
//! by default) and `//login` skipped a route's limit. Now every policy and
//! the origin see one normalised path; what cannot be normalised is 400.

use super::*;

fn get_html(addr: SocketAddr, target: &str) -> String {
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
    );
    raw(addr, req.as_bytes(), Duration::from_secs(5)).0
}

#[test]
fn dot_segments_do_not_walk_around_the_challenge() {
    let o = Origin::start();
    let site = "[site.challenge]\nmode = \"always\"\n";
    let e = Edge::start("path-challenge", &config(o.addr, "", site));
    for t in [
        "/.well-known/../x-dot",
        "/.well-known/%2e%2e/x-enc?q=1",
        "/.well-known/%2E%2E/x-upper",
        "/.well-known/./../x-mixed",
    ] {
        let resp = get_html(e.addr, t);
        assert_eq!(parse_response(&resp).0, 403, "{t}: {resp}");
        assert!(
            resp.contains("x-levee-challenge: 1"),
            "{t} was not challenged: {resp}"
        );
    }
    // The exempt path itself still passes, normalised.
    let resp = get_html(e.addr, "/.well-known//./exempt-ok");
    assert_eq!(parse_response(&resp).0, 404, "the origin's answer: {resp}");
    assert!(
        o.saw("GET /.well-known/exempt-ok HTTP/1.1"),
        "{:?}",
        o.stats.recent_heads()
    );
    assert!(!o.saw("x-dot") && !o.saw("x-enc") && !o.saw("x-upper") && !o.saw("x-mixed"));
}

#[test]
fn the_origin_receives_the_path_the_policies_judged() {
    let o = Origin::start();
    let e = Edge::start("path-forward", &config(o.addr, "", ""));
    let resp = get_html(e.addr, "/a//b/./c/../%64?x=%2F");
    assert_eq!(parse_response(&resp).0, 404, "the origin's answer: {resp}");
    assert!(
        o.saw("GET /a/b/d?x=%2F HTTP/1.1"),
        "{:?}",
        o.stats.recent_heads()
    );
    // Absolute form with only a query: forwarded as `/?q`, not `?q`.
    let resp = get_html(e.addr, "http://localhost?abs=1");
    assert_eq!(parse_response(&resp).0, 200, "{resp}");
    assert!(
        o.saw("GET /?abs=1 HTTP/1.1"),
        "{:?}",
        o.stats.recent_heads()
    );
    for (t, why) in [
        ("/../etc/passwd-above", "above the root"),
        ("/a%2f..%2f..%2fx-encsl", "an encoded slash"),
        ("/a%zz-badesc", "a broken escape"),
        ("/a\\..\\x-bs", "a backslash"),
    ] {
        let before = e.defense("bad_target");
        let resp = get_html(e.addr, t);
        assert_eq!(parse_response(&resp).0, 400, "{t} ({why}): {resp}");
        assert!(resp.contains("bad_target"), "{resp}");
        assert_eq!(e.defense("bad_target"), before + 1.0, "{t}");
    }
    assert!(!o.saw("passwd-above") && !o.saw("x-encsl") && !o.saw("badesc") && !o.saw("x-bs"));
}

#[test]
fn route_limits_hold_whatever_the_spelling() {
    let o = Origin::start();
    let route =
        "[site.rate_limit]\nover = \"refuse\"\n\n[[site.route]]\nname = \"login\"\npaths = [\"/login\"]\nper_ip = 3\nwindow = \"10s\"\n";
    let e = Edge::start("path-route", &config(o.addr, "", route));
    let spellings = [
        "/login",
        "//login",
        "/./login",
        "/%6cogin",
        "/x/../login",
        "/login",
    ];
    let statuses: Vec<u16> = spellings
        .iter()
        .map(|t| parse_response(&get_html(e.addr, t)).0)
        .collect();
    assert_eq!(
        statuses,
        vec![404, 404, 404, 429, 429, 429],
        "{spellings:?}"
    );
}
