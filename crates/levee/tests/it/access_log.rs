//! The access log never slows requests: a full buffer drops lines and counts them.

use super::*;

#[test]
fn full_log_buffer_drops_and_counts_but_serves() {
    let o = Origin::start();
    let text = config(o.addr, "", "")
        .replace("path = \"ACCESS_LOG\"", "path = \"ACCESS_LOG\"\nbuffer = 5");
    let e = Edge::start("access-log-full", &text);
    let url = e.url("/healthz");
    let (code, out, err) = run("wrk", &["-t1", "-c8", "-d2s", &url]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("Non-2xx"), "{out}");
    std::thread::sleep(Duration::from_millis(200));
    let dropped = e.metric("levee_access_log_dropped_total");
    let written = e.metric("levee_access_log_lines_total");
    assert!(dropped > 0.0, "nothing dropped: {written} written");
    assert!(written > 0.0);
    // Every line that was written is whole JSON.
    let lines = e.access_log(1);
    assert!(lines.len() as f64 >= written - 1.0);
}

#[test]
fn log_is_reopened_on_reload_after_rotation() {
    let o = Origin::start();
    let e = Edge::start("access-log-rotate", &config(o.addr, "", ""));
    assert_eq!(http_get(e.addr, "/healthz", &[("X-Before", "1")]).0, 200);
    assert_eq!(e.access_log(1).len(), 1);
    // logrotate moves the file away, then signals the edge.
    let log = e.dir.join("access.log");
    std::fs::rename(&log, e.dir.join("access.log.1")).unwrap();
    e.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(http_get(e.addr, "/api/members/2", &[]).0, 200);
    let lines = e.access_log(1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["path"], "/api/members/2");
}
