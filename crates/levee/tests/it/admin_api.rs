//! The admin listener: health, metrics, status, and token-guarded reload.

use super::*;

#[test]
fn admin_endpoints_and_token() {
    let o = Origin::start();
    let e = Edge::start("admin", &config(o.addr, "", ""));
    assert_eq!(http_get(e.admin, "/healthz", &[]), (200, "ok\n".into()));
    let (s, status) = http_get(e.admin, "/status", &[]);
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["sites"][0]["name"], "test");
    assert_eq!(v["sites"][0]["origins"][0]["address"], o.addr.to_string());
    assert!(v["version"].is_string());
    let (s, m) = http_get(e.admin, "/metrics", &[]);
    assert_eq!(s, 200);
    assert!(m.contains("# TYPE levee_defense_total counter"));
    assert!(m.contains("process_resident_memory_bytes"));
    assert_eq!(admin_post(e.admin, "/reload", None).0, 401);
    assert_eq!(admin_post(e.admin, "/reload", Some("wrong")).0, 401);
    let (s, body) = admin_post(e.admin, "/reload", Some(TOKEN));
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("\"generation\":1"), "{body}");
    assert_eq!(http_get(e.admin, "/nope", &[]).0, 404);
}
