//! `levee serve --demo`: the README's first command works with no configuration.

use super::*;

#[test]
fn demo_serves_the_demo_site() {
    let e = Edge::start_demo();
    let (s, home) = http_get(e.addr, "/", &[]);
    assert_eq!(s, 200);
    assert!(home.contains("/static/app.css"), "{home}");
    assert_eq!(http_get(e.addr, "/static/app.css", &[]).0, 200);
    let (s, m) = http_get(e.addr, "/api/members/42", &[]);
    assert_eq!(s, 200);
    assert!(m.contains("\"fake\":true"));
    let t = Instant::now();
    assert_eq!(http_get(e.addr, "/search?q=levee", &[]).0, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(140),
        "search should be slow"
    );
    let (resp, _) = raw(e.addr, b"POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 26\r\nConnection: close\r\n\r\nuser=ada&password=notdemo1", Duration::from_secs(5));
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
    let token = e
        .stderr()
        .iter()
        .find_map(|l| {
            l.strip_prefix("levee: drill token (GET /.well-known/levee-drill): ")
                .map(str::to_string)
        })
        .unwrap();
    assert_eq!(
        http_get(e.addr, "/.well-known/levee-drill", &[]).1.trim(),
        token
    );
    assert_eq!(http_get(e.admin, "/healthz", &[]).0, 200);
}
