//! Review findings 7 and 8: the cache key must hold everything the answer
//! depends on. Under attack, junk query parameters left the key but were
//! still forwarded (an attacker's `/?s=<payload>` page was served to all);
//! the accepted content codings and the scheme were not in the key; custom
//! credential headers did not bypass the cache.

use super::*;

const CACHE: &str =
    "[site.cache]\nenabled = true\nttl = \"30s\"\nbypass_headers = [\"x-tenant\"]\n";

fn origin_requests(o: &Origin) -> u64 {
    o.stats.requests.load(std::sync::atomic::Ordering::Relaxed)
}

fn get(addr: SocketAddr, path: &str, extra: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n");
    raw(addr, req.as_bytes(), Duration::from_secs(5)).0
}

#[test]
fn a_dropped_query_is_not_forwarded_either() {
    let o = Origin::start();
    let e = Edge::start("poison-query", &config(o.addr, "", CACHE));
    let (st, _) = admin_post(e.admin, "/mode?site=test&mode=under_attack", Some(TOKEN));
    assert_eq!(st, 200);
    let resp = get(e.addr, "/poison?s=%3Cscript%3Ealert(1)%3C/script%3E", "");
    assert_eq!(parse_response(&resp).0, 404, "the origin's answer: {resp}");
    let heads = o.stats.recent_heads();
    assert!(
        heads.iter().any(|h| h.starts_with("GET /poison HTTP/1.1")),
        "{heads:?}"
    );
    assert!(
        !heads.iter().any(|h| h.contains("alert")),
        "the dropped query reached the origin: {heads:?}"
    );
}

#[test]
fn codings_scheme_and_credentials_keep_answers_apart() {
    let o = Origin::start();
    let e = Edge::start("poison-key", &config(o.addr, "", CACHE));
    let before = origin_requests(&o);
    get(e.addr, "/", "Accept-Encoding: br\r\n");
    get(e.addr, "/", "");
    assert_eq!(
        origin_requests(&o) - before,
        2,
        "an identity client must not get the br copy"
    );
    let resp = get(e.addr, "/", "");
    assert!(resp.contains("x-levee-cache: HIT"), "{resp}");
    let before = origin_requests(&o);
    for h in [
        "X-Api-Key: k1\r\n",
        "X-Api-Key: k2\r\n",
        "X-Auth-Token: t\r\n",
        "X-Tenant: 1\r\n",
        "Cookie: session=1\r\n",
    ] {
        let resp = get(e.addr, "/", h);
        assert!(!resp.contains("x-levee-cache"), "{h}: {resp}");
    }
    assert_eq!(
        origin_requests(&o) - before,
        5,
        "credentials bypass the cache"
    );
}
